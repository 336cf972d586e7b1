"""Unit tests of engine/security.py (and the spec/seccomp parts it drives)."""

import json
import os
import types
import unittest
from unittest import mock

import ddt

from engine import errors
from engine import security
from engine.runtime import seccomp
from engine.runtime import spec

ALLOW_ALL = {'defaultAction': 'SCMP_ACT_ALLOW'}


def profile_opt(profile):
    return 'seccomp=' + json.dumps(profile)


@ddt.ddt
class SecurityOptTest(unittest.TestCase):

    @ddt.data(
        ([], None, None, ''),
        (['no-new-privileges'], True, None, ''),
        (['no-new-privileges=false'], False, None, ''),
        (['no-new-privileges:true'], True, None, ''),
        (['no-new-privileges=0'], False, None, ''),
        (['no-new-privileges=T'], True, None, ''),
        (['seccomp=unconfined'], None, 'unconfined', ''),
        (['seccomp:unconfined'], None, 'unconfined', ''),
        (['seccomp=builtin'], None, 'builtin', ''),
        (['apparmor=docker-default'], None, None, 'docker-default'),
        (['label=disable', 'label:user:USER', 'disable'], None, None, ''),
        ([profile_opt(ALLOW_ALL)], None, json.dumps(ALLOW_ALL), ''),
    )
    @ddt.unpack
    def test_accepted(self, opts, nnp, seccomp_value, apparmor):
        out = security.parse_security_opt(opts)
        self.assertEqual(nnp, out.no_new_privileges)
        self.assertEqual(seccomp_value, out.seccomp)
        self.assertEqual(apparmor, out.apparmor)

    @ddt.data(
        ('foo', 'invalid --security-opt 1: "foo"'),
        ('', 'invalid --security-opt 1: ""'),
        ('seccomp', 'invalid --security-opt 1: "seccomp"'),
        ('foo=bar', 'invalid --security-opt 2: "foo=bar"'),
        ('systempaths=unconfined', 'invalid --security-opt 2: "systempaths=unconfined"'),
        ('no-new-privileges=maybe', 'invalid --security-opt 2: "no-new-privileges=maybe"'),
        ('seccomp=notjson', 'Decoding seccomp profile failed'),
        ('seccomp=[1, 2]', 'Decoding seccomp profile failed: the profile must be a JSON object'),
        (profile_opt({'defaultAction': 'SCMP_ACT_NOPE'}),
         'string SCMP_ACT_NOPE is not a valid action for seccomp'),
        (profile_opt({'defaultAction': 'SCMP_ACT_NOTIFY'}), 'SCMP_ACT_NOTIFY'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_Z80']}),
         'string SCMP_ARCH_Z80 is not a valid arch for seccomp'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86'],
                      'archMap': [{'architecture': 'SCMP_ARCH_X86_64'}]}),
         "use either 'architectures' or 'archMap'"),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': ['mkdir'], 'action': 'SCMP_ACT_KILLALL'}]}), 'SCMP_ACT_KILLALL'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'name': 'mkdir', 'names': ['rmdir'], 'action': 'SCMP_ACT_ERRNO'}]}),
         "use either 'name' or 'names'"),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': -1}]}), 'errnoRet'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO',
             'args': [{'index': 9, 'value': 1, 'op': 'SCMP_CMP_EQ'}]}]}), 'index'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO',
             'args': [{'index': 0, 'value': 1, 'op': 'SCMP_CMP_LIKE'}]}]}),
         'SCMP_CMP_LIKE is not a valid operator'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': [1], 'action': 'SCMP_ACT_ERRNO'}]}), 'list of strings'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '/run/agent.sock'}),
         'listenerPath'),
        (profile_opt({'defaultAction': 'SCMP_ACT_ALLOW', 'flags': ['FLAG_X']}),
         'not a valid seccomp flag'),
    )
    @ddt.unpack
    def test_refused(self, opt, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.parse_security_opt([opt])
        self.assertIn(message, str(ctx.exception))

    def test_empty_profile_disables_seccomp(self):
        self.assertTrue(seccomp.is_disabled(seccomp.parse_profile('{}')))
        self.assertIsNone(seccomp.for_container_inline(spec.DEFAULT_CAPS, '{}'))
        self.assertNotIn('seccomp', spec.generate(['true'], '/r', seccomp_profile={})['linux'])

    def test_inline_profile_converted(self):
        profile = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 122},
            {'names': ['chroot'], 'action': 'SCMP_ACT_ERRNO',
             'includes': {'caps': ['CAP_SYS_ADMIN']}}]}
        out = seccomp.for_container_inline(spec.DEFAULT_CAPS, json.dumps(profile))
        self.assertEqual('SCMP_ACT_ALLOW', out['defaultAction'])
        self.assertEqual([{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO',
                           'errnoRet': 122}], out['syscalls'])

    def test_oversized_profile(self):
        with self.assertRaises(errors.InvalidArgument):
            seccomp.parse_profile(' ' * (seccomp.MAX_PROFILE_SIZE + 1))


@ddt.ddt
class CapabilityTest(unittest.TestCase):

    @ddt.data(
        (['net_admin'], [], None),
        (['CAP_NET_ADMIN', 'all'], ['chown'], None),
        (['NOT_A_CAP'], [], 'invalid CapAdd: unknown capability: "CAP_NOT_A_CAP"'),
        ([], ['cap_bogus'], 'invalid CapDrop: unknown capability: "CAP_BOGUS"'),
        ([' net_admin'], [], 'invalid CapAdd: unknown capability: "CAP_ NET_ADMIN"'),
    )
    @ddt.unpack
    def test_check(self, add, drop, message):
        host = {'CapAdd': add, 'CapDrop': drop}
        if message is None:
            security.check_capabilities(host)
            return
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.check_capabilities(host)
        self.assertEqual(message, str(ctx.exception))

    def test_cap_the_engine_lacks(self):
        with mock.patch.object(spec, 'grantable_caps', return_value=spec.DEFAULT_CAPS):
            with self.assertRaises(errors.InvalidArgument) as ctx:
                security.check_capabilities({'CapAdd': ['sys_admin']})
            self.assertIn('capability "CAP_SYS_ADMIN" is not available', str(ctx.exception))
            security.check_capabilities({'CapAdd': ['ALL'], 'CapDrop': ['SYS_ADMIN']})

    def test_docker_tweak_rules(self):
        with mock.patch.object(spec, 'grantable_caps', return_value=spec.ALL_CAPS):
            self.assertEqual(spec.ALL_CAPS, tuple(spec.capability_set(privileged=True)))
            # ALL added: everything but the drops, even when ALL is dropped too.
            caps = spec.capability_set(['ALL'], ['CHOWN'])
            self.assertNotIn('CAP_CHOWN', caps)
            self.assertEqual(len(spec.ALL_CAPS) - 1, len(caps))
            self.assertEqual(list(spec.ALL_CAPS), spec.capability_set(['ALL'], ['ALL']))
        # ALL dropped: only the adds.
        self.assertEqual(['CAP_NET_RAW'], spec.capability_set(['net_raw'], ['ALL']))
        # An add wins over a drop of the same capability.
        self.assertIn('CAP_CHOWN', spec.capability_set(['CHOWN'], ['CHOWN']))
        self.assertNotIn('CAP_KILL', spec.capability_set([], ['kill']))


@ddt.ddt
class DeviceTest(unittest.TestCase):

    @ddt.data('r', 'rw', 'rwm', 'mrw', 'm')
    def test_good_modes(self, mode):
        self.assertEqual(mode, security.check_device_mode(mode))

    @ddt.data('', 'rwx', 'rr', 'rwmr', 'RW')
    def test_bad_modes(self, mode):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.check_device_mode(mode)
        self.assertIn('bad mode specified', str(ctx.exception))

    @ddt.data(
        ('c 1:3 rwm', {'allow': True, 'type': 'c', 'major': 1, 'minor': 3, 'access': 'rwm'}),
        ('b *:* m', {'allow': True, 'type': 'b', 'access': 'm'}),
        ('a 7:* r', {'allow': True, 'type': 'a', 'major': 7, 'access': 'r'}),
    )
    @ddt.unpack
    def test_rules(self, rule, expected):
        self.assertEqual(expected, security.parse_device_rule(rule))

    @ddt.data('x 1:3 rwm', 'c 1:3 rwmx', 'c 1 rwm', 'c 1:3', ' c 1:3 r', 'c 99999999999:1 r', 5)
    def test_bad_rules(self, rule):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.parse_device_rule(rule)
        self.assertIn('invalid device cgroup rule format', str(ctx.exception))

    def test_defaults_filled(self):
        out = security.normalize_devices([{'PathOnHost': '/dev/null'}])
        self.assertEqual([{'PathOnHost': '/dev/null', 'PathInContainer': '/dev/null',
                           'CgroupPermissions': 'rwm'}], out)

    @ddt.data(
        ({'PathOnHost': '/dev/nope-x'},
         'error gathering device information while adding custom device "/dev/nope-x": '
         'no such file or directory'),
        ({'PathOnHost': '/etc/hostname'}, 'not a device node'),
        ({'PathOnHost': 'dev/null'}, 'dev/null is not an absolute path'),
        ({'PathOnHost': '/dev/null', 'PathInContainer': 'x'}, 'x is not an absolute path'),
        ({'PathOnHost': '/dev/null', 'PathInContainer': '/'}, 'cannot be mounted at /'),
        ({'PathOnHost': 5}, 'must be strings'),
        ({}, 'PathOnHost is required'),
        ('/dev/null', 'must be objects'),
    )
    @ddt.unpack
    def test_bad_devices(self, dev, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.normalize_devices([dev])
        self.assertIn(message, str(ctx.exception))

    def test_directory_of_devices(self):
        devs = security.devices_from_path('/dev/net', '/dev/n', 'rw') \
            if os.path.isdir('/dev/net') else []
        for dev in devs:
            self.assertTrue(dev['path'].startswith('/dev/n/'))
            self.assertEqual('rw', dev['access'])

    def test_spec_devices_and_rules(self):
        dev = dict(spec.device_from_path('/dev/null', '/dev/mynull'), access='r')
        s = spec.generate(['true'], '/r', devices=[dev],
                          device_rules=[security.parse_device_rule('c 10:229 rw')])
        paths = [d['path'] for d in s['linux']['devices']]
        self.assertIn('/dev/mynull', paths)
        self.assertNotIn('access', s['linux']['devices'][-1])
        rules = s['linux']['resources']['devices']
        self.assertEqual({'allow': True, 'type': 'c', 'major': 1, 'minor': 3, 'access': 'r'},
                         rules[-2])
        self.assertEqual({'allow': True, 'type': 'c', 'major': 10, 'minor': 229,
                          'access': 'rw'}, rules[-1])

    def test_privileged_gets_host_devices_once(self):
        s = spec.generate(['true'], '/r', privileged=True)
        paths = [d['path'] for d in s['linux']['devices']]
        self.assertEqual(len(paths), len(set(paths)))
        self.assertIn('/dev/null', paths)
        self.assertNotIn('/dev/console', paths)
        self.assertFalse(any(p.startswith(('/dev/pts/', '/dev/shm/')) for p in paths))
        self.assertEqual([{'allow': True, 'access': 'rwm'}],
                         s['linux']['resources']['devices'])

    def test_host_devices_walk(self):
        with mock.patch('os.scandir', side_effect=OSError('gone')):
            self.assertEqual([], spec.host_devices('/dev'))


@ddt.ddt
class SysctlAndModesTest(unittest.TestCase):

    @ddt.data(
        ({'kernel.shmmax': '1'}, 'default', '', ''),
        ({'kernel.sem': '1 2 3 4', 'fs.mqueue.msg_max': '100'}, 'default', '', ''),
        ({'net.core.somaxconn': '10'}, 'none', '', ''),
        ({'kernel.domainname': 'x'}, 'default', '', ''),
    )
    @ddt.unpack
    def test_allowed(self, sysctls, net, ipc, uts):
        security.check_sysctls(sysctls, net, ipc, uts)

    @ddt.data(
        ({'vm.swappiness': '1'}, 'default', '', '', 'is not in a separate kernel namespace'),
        ({'kernel.hostname': 'x'}, 'default', '', '', 'conflicts with the OCI "hostname"'),
        ({'kernel.domainname': 'x'}, 'default', '', 'host', 'not in a separate kernel'),
        ({'net.core.somaxconn': '1'}, 'host', '', '', 'not allowed in host network namespace'),
        ({'kernel.shmmax': '1'}, 'default', 'host', '', 'not allowed in the hosts ipc'),
        ({'net.ipv4/../../kernel/core_pattern': 'x'}, 'default', '', '', 'invalid sysctl name'),
        ({'net..x': '1'}, 'default', '', '', 'invalid sysctl name'),
        ({'net': '1'}, 'default', '', '', 'invalid sysctl name'),
        ({'net.core.somaxconn': 1}, 'default', '', '', 'values must be strings'),
        ({'net.core.somaxconn': '1\n2'}, 'default', '', '', 'invalid value'),
    )
    @ddt.unpack
    def test_refused(self, sysctls, net, ipc, uts, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.check_sysctls(sysctls, net, ipc, uts)
        self.assertIn(message, str(ctx.exception))

    @ddt.data(
        ({'IpcMode': 'bogus'}, {}, 'invalid IPC mode: bogus'),
        ({'IpcMode': 'container:'}, {}, 'invalid IPC mode: container:'),
        ({'PidMode': 'bogus'}, {}, 'invalid PID mode: bogus'),
        ({'PidMode': 'shareable'}, {}, 'invalid PID mode: shareable'),
        ({'UTSMode': 'container:x'}, {}, 'invalid UTS mode: container:x'),
        ({'UTSMode': 'host'}, {'Hostname': 'h'}, 'conflicting options: hostname and the UTS'),
    )
    @ddt.unpack
    def test_bad_modes(self, host, config, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.check_namespace_modes(config, host)
        self.assertIn(message, str(ctx.exception))

    @ddt.data(*[{'IpcMode': m} for m in ('', 'private', 'shareable', 'none', 'host',
                                         'container:x')])
    def test_good_ipc_modes(self, host):
        security.check_namespace_modes({}, host)

    def test_prepare_create_resolves_and_defaults(self):
        other = types.SimpleNamespace(id='f' * 64)

        def lookup(ref):
            if ref == 'donor':
                return other
            raise errors.NoSuchContainer(ref)
        host = {'IpcMode': 'container:donor', 'PidMode': 'container:donor'}
        security.prepare_create(host, lookup)
        self.assertEqual('container:' + 'f' * 64, host['IpcMode'])
        self.assertEqual('container:' + 'f' * 64, host['PidMode'])
        self.assertEqual(list(spec.MASKED_PATHS), host['MaskedPaths'])
        host = {'PidMode': 'container:gone'}
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.prepare_create(host, lookup)
        self.assertEqual('No such container: gone', str(ctx.exception))
        host = {'Privileged': True, 'MaskedPaths': []}
        security.prepare_create(host, lookup)
        self.assertEqual([], host['MaskedPaths'])
        self.assertEqual(['label=disable'], host['SecurityOpt'])
        self.assertNotIn('ReadonlyPaths', host)
        self.assertEqual('private', host['IpcMode'])
        host = {'PidMode': 'host', 'SecurityOpt': ['label=level:s0']}
        security.prepare_create(host, lookup)
        self.assertEqual(['label=level:s0'], host['SecurityOpt'])

    @ddt.data(
        ({'SecurityOpt': 'x'}, 'HostConfig.SecurityOpt must be a list of strings'),
        ({'Sysctls': ['a=b']}, 'HostConfig.Sysctls must be an object'),
        ({'Sysctls': 5}, 'HostConfig.Sysctls must be an object'),
        ({'Devices': {'PathOnHost': '/dev/null'}}, 'HostConfig.Devices must be an array'),
        ({'IpcMode': 5}, 'HostConfig.IpcMode must be a string'),
        ({'GroupAdd': [5]}, 'HostConfig.GroupAdd must be a list of strings'),
        ({'GroupAdd': ['a:b']}, 'Unable to find group a:b'),
        ({'GroupAdd': ['99999999999']}, 'uids and gids must be in range'),
        ({'MaskedPaths': ['proc/kcore']}, 'is not an absolute path'),
        ({'Devices': [{'PathOnHost': '/dev/null'}] * 257}, 'more than 256 entries'),
        ({'Sysctls': {'net.a%d' % i: '1' for i in range(300)}}, 'more than 256 entries'),
    )
    @ddt.unpack
    def test_validate_types(self, host, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.validate({}, host)
        self.assertIn(message, str(ctx.exception))


PASSWD = ('root:x:0:0:root:/root:/bin/sh\n'
          'daemon:x:1:1:daemon:/usr/sbin:/bin/false\n'
          'nobody:x:65534:65534:nobody:/home:/bin/false\n'
          'app:x:1000:1000::/app:/bin/sh\n')
GROUP = ('root:x:0:\n'
         'daemon:x:1:\n'
         'staff:x:50:app,nobody\n'
         'app:x:1000:\n'
         'nogroup:x:65534:\n')


@ddt.ddt
class UserTest(unittest.TestCase):

    def setUp(self):
        import tempfile
        self.tmp = tempfile.TemporaryDirectory()
        self.rootfs = self.tmp.name
        os.makedirs(os.path.join(self.rootfs, 'etc'))
        with open(os.path.join(self.rootfs, 'etc/passwd'), 'w') as f:
            f.write(PASSWD)
        with open(os.path.join(self.rootfs, 'etc/group'), 'w') as f:
            f.write(GROUP)

    def tearDown(self):
        self.tmp.cleanup()

    def container(self, group_add=None):
        return types.SimpleNamespace(rootfs=self.rootfs,
                                     host_config={'GroupAdd': group_add})

    @ddt.data(
        ('', (0, 0, [0])),
        ('nobody', (65534, 65534, [65534, 50])),
        ('app', (1000, 1000, [1000, 50])),
        ('1000', (1000, 1000, [1000, 50])),
        ('4242', (4242, 0, [0])),
        ('1000:1000', (1000, 1000, [1000])),
        ('nobody:staff', (65534, 50, [50])),
        ('nobody:777', (65534, 777, [777])),
        (':1000', (0, 1000, [1000])),
        ('app:', (1000, 1000, [1000, 50])),
        ('daemon:root:ignored', (1, 0, [0])),
    )
    @ddt.unpack
    def test_resolve(self, user, expected):
        self.assertEqual(expected, security.resolve_user(self.container(), user))

    def test_group_add(self):
        c = self.container(['daemon', '777', 'staff', '1'])
        self.assertEqual((65534, 65534, [65534, 50, 1, 777]),
                         security.resolve_user(c, 'nobody'))

    @ddt.data(
        ('nobody2', None, 'unable to find user nobody2: no matching entries in passwd file'),
        ('nobody:nogroup2', None,
         'unable to find group nogroup2: no matching entries in group file'),
        ('-1', None, 'uids and gids must be in range 0-2147483647'),
        ('4294967296', None, 'uids and gids must be in range 0-2147483647'),
        ('0:-5', None, 'uids and gids must be in range 0-2147483647'),
        ('', ['nosuch'], 'Unable to find group nosuch: no matching entries in group file'),
    )
    @ddt.unpack
    def test_errors(self, user, group_add, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            security.resolve_user(self.container(group_add), user)
        self.assertEqual(message, str(ctx.exception))

    def test_no_passwd_file(self):
        os.unlink(os.path.join(self.rootfs, 'etc/passwd'))
        self.assertEqual((5, 0, [0]), security.resolve_user(self.container(), '5'))
        with self.assertRaises(errors.InvalidArgument):
            security.resolve_user(self.container(), 'nobody')


class SpecOptionsTest(unittest.TestCase):
    """What a stored container turns into at start (no runtime involved)."""

    def container(self, host, user=''):
        import tempfile
        tmp = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__('shutil').rmtree(tmp))
        os.makedirs(os.path.join(tmp, 'etc'))
        with open(os.path.join(tmp, 'etc/passwd'), 'w') as f:
            f.write(PASSWD)
        with open(os.path.join(tmp, 'etc/group'), 'w') as f:
            f.write(GROUP)
        return types.SimpleNamespace(rootfs=tmp, host_config=host, config={'User': user},
                                     id='a' * 64)

    def no_lookup(self, ref):
        raise errors.NoSuchContainer(ref)

    def test_defaults(self):
        opts = security.spec_options(self.container({}), self.no_lookup, True)
        self.assertEqual(security.default_seccomp_profile(), opts['seccomp_profile'])
        self.assertTrue(opts['no_new_privileges'])
        self.assertEqual('private', opts['ipc'])
        self.assertEqual('private', opts['pid'])
        self.assertNotIn('uts', opts)
        self.assertEqual((0, 0, [0]), opts['user'])
        self.assertEqual('0', opts['sysctls']['net.ipv4.ip_unprivileged_port_start'])
        opts = security.spec_options(self.container({}), self.no_lookup, False)
        self.assertIsNone(opts['sysctls'])

    def test_options(self):
        host = {'SecurityOpt': ['seccomp=unconfined', 'no-new-privileges=false',
                                'apparmor=foo'],
                'IpcMode': 'none', 'UTSMode': 'host', 'PidMode': 'host',
                'Sysctls': {'net.ipv4.ip_unprivileged_port_start': '80'},
                'DeviceCgroupRules': ['c 10:229 rw'],
                'Devices': [{'PathOnHost': '/dev/null', 'PathInContainer': '/dev/n',
                             'CgroupPermissions': 'r'}]}
        with mock.patch.object(security, 'apparmor_enabled', return_value=False):
            opts = security.spec_options(self.container(host), self.no_lookup, True)
        self.assertEqual('unconfined', opts['seccomp_profile'])
        self.assertFalse(opts['no_new_privileges'])
        self.assertIsNone(opts['apparmor_profile'])
        self.assertFalse(opts['shm'])
        self.assertEqual('host', opts['uts'])
        self.assertEqual('host', opts['pid'])
        self.assertEqual('80', opts['sysctls']['net.ipv4.ip_unprivileged_port_start'])
        self.assertEqual([{'allow': True, 'type': 'c', 'major': 10, 'minor': 229,
                           'access': 'rw'}], opts['device_rules'])
        self.assertEqual(['/dev/n'], [d['path'] for d in opts['devices']])
        self.assertEqual('r', opts['devices'][0]['access'])
        s = spec.generate(['true'], '/r', **{k: v for k, v in opts.items() if k != 'mounts'})
        self.assertNotIn('/dev/shm', [m['destination'] for m in s['mounts']])
        self.assertFalse(s['process']['noNewPrivileges'])
        self.assertNotIn('seccomp', s['linux'])

    def test_inline_profile_reaches_the_spec(self):
        profile = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [
            {'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 122}]}
        opts = security.spec_options(self.container({'SecurityOpt': [profile_opt(profile)]}),
                                     self.no_lookup, True)
        s = spec.generate(['true'], '/r', **{k: v for k, v in opts.items() if k != 'mounts'})
        self.assertEqual('SCMP_ACT_ALLOW', s['linux']['seccomp']['defaultAction'])

    def test_joined_namespaces(self):
        donor = types.SimpleNamespace(id='d' * 64, is_running=lambda: True,
                                      state={'Pid': 4321}, path='/containers/d',
                                      host_config={'IpcMode': 'shareable'})
        host = {'IpcMode': 'container:' + donor.id, 'PidMode': 'container:' + donor.id}
        # The donor's engine-side /dev/shm tmpfs is what the joiner binds.
        with mock.patch('os.path.ismount', lambda p: p == '/containers/d/shm'):
            opts = security.spec_options(self.container(host), lambda ref: donor, True)
        self.assertEqual('container:4321', opts['ipc'])
        self.assertEqual('container:4321', opts['pid'])
        self.assertEqual([('/containers/d/shm', '/dev/shm')],
                         [(m['source'], m['destination']) for m in opts['mounts']])
        with self.assertRaises(errors.Conflict) as ctx:
            security.spec_options(self.container(host), lambda ref: donor, True)
        self.assertIn('non-shareable IPC', str(ctx.exception))
        donor.host_config = {'IpcMode': 'private'}
        with self.assertRaises(errors.Conflict) as ctx:
            security.spec_options(self.container(host), lambda ref: donor, True)
        self.assertIn('non-shareable IPC', str(ctx.exception))
        donor.host_config = {'IpcMode': 'host'}
        opts = security.spec_options(self.container(host), lambda ref: donor, True)
        self.assertEqual('host', opts['ipc'])
        self.assertEqual(['/dev/shm'], [m['source'] for m in opts['mounts']])
        donor.is_running = lambda: False
        with self.assertRaises(errors.Conflict) as ctx:
            security.spec_options(self.container({'PidMode': host['PidMode']}),
                                  lambda ref: donor, True)
        self.assertEqual('container %s is not running' % donor.id, str(ctx.exception))

    def test_privileged_skips_same_path_devices(self):
        host = {'Privileged': True, 'Devices': [
            {'PathOnHost': '/dev/null', 'PathInContainer': '/dev/null',
             'CgroupPermissions': 'r'},
            {'PathOnHost': '/dev/null', 'PathInContainer': '/dev/n2',
             'CgroupPermissions': 'r'}]}
        opts = security.spec_options(self.container(host), self.no_lookup, True)
        self.assertEqual(['/dev/n2'], [d['path'] for d in opts['devices']])
        self.assertEqual('rwm', opts['devices'][0]['access'])


class InspectTest(unittest.TestCase):

    def test_host_config_defaults(self):
        out = security.host_config_defaults({})
        self.assertEqual('private', out['IpcMode'])
        self.assertEqual([], out['Devices'])
        self.assertIsNone(out['SecurityOpt'])
        self.assertEqual(list(spec.MASKED_PATHS), out['MaskedPaths'])
        out = security.host_config_defaults({'Privileged': True})
        self.assertIsNone(out['MaskedPaths'])

    def test_apparmor_profile_until_started(self):
        record = {'HostConfig': {'SecurityOpt': ['apparmor=foo']},
                  'State': {'StartedAt': '0001-01-01T00:00:00Z'}}
        with mock.patch.object(security, 'apparmor_enabled', return_value=False):
            self.assertEqual('foo', security.inspect_fields(record)['AppArmorProfile'])
            record['State']['StartedAt'] = '2026-01-01T00:00:00Z'
            self.assertEqual({'MountLabel': '', 'ProcessLabel': '', 'AppArmorProfile': ''},
                             security.inspect_fields(record))

    def test_info(self):
        self.assertIn('name=no-new-privileges', security.info_security_options())
        self.assertIn('name=seccomp,profile=builtin', security.info_security_options())


class DefaultProfileTest(unittest.TestCase):

    @unittest.skipUnless(os.path.exists(seccomp.DOCKER_PROFILE), "no Docker profile")
    def test_docker_profile_is_the_default(self):
        self.assertEqual(seccomp.DOCKER_PROFILE, seccomp.DEFAULT_PROFILE)
        names = {}
        for rule in seccomp.for_container(spec.DEFAULT_CAPS)['syscalls']:
            for n in rule['names']:
                names.setdefault(n, []).append(rule['action'])
        # Docker's profile: keyctl and unshare are not allowed by default,
        # unlike containers-common's.
        self.assertNotIn('SCMP_ACT_ALLOW', names.get('keyctl', []))
        self.assertNotIn('SCMP_ACT_ALLOW', names.get('unshare', []))
        self.assertIn('SCMP_ACT_ALLOW', names['mkdir'])
