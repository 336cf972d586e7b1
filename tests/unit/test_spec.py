"""OCI spec generation, seccomp conversion and image user resolution."""

import json
import os
import unittest

import ddt
import pytest

from engine import errors
from engine.runtime import seccomp
from engine.runtime import spec

ROOTFS = '/var/lib/novadocker/rootfs/x'
DOCKER_DEFAULT_CAPS = {
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD',
    'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP',
    'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'}
HAVE_PROFILE = os.path.exists(seccomp.DEFAULT_PROFILE)


def gen(**kw):
    kw.setdefault('seccomp_profile', None)
    return spec.generate(['sh', '-c', 'true'], ROOTFS, **kw)


# ------------------------------------------------------------------ capabilities

@ddt.ddt
class TestCapabilities(unittest.TestCase):

    def test_default_is_dockers(self):
        assert set(spec.capability_set()) == DOCKER_DEFAULT_CAPS

    def test_mask_of_default_set_matches_docker(self):
        mask = sum(1 << spec.ALL_CAPS.index(c) for c in spec.DEFAULT_CAPS)
        assert '%016x' % mask == '00000000a80425fb'

    @ddt.data('net_admin', 'NET_ADMIN', 'cap_net_admin', 'CAP_NET_ADMIN')
    def test_add_accepts_any_spelling(self, name):
        assert 'CAP_NET_ADMIN' in spec.capability_set(cap_add=[name])

    def test_drop(self):
        caps = spec.capability_set(cap_drop=['chown', 'CAP_KILL'])
        assert set(caps) == DOCKER_DEFAULT_CAPS - {'CAP_CHOWN', 'CAP_KILL'}

    def test_drop_all_then_add(self):
        assert spec.capability_set(cap_add=['NET_RAW'], cap_drop=['ALL']) == ['CAP_NET_RAW']

    def test_add_wins_over_drop(self):
        assert 'CAP_KILL' in spec.capability_set(cap_add=['KILL'], cap_drop=['KILL'])

    def test_add_all(self):
        assert spec.capability_set(cap_add=['all']) == list(spec.grantable_caps())

    def test_add_all_drop_one(self):
        caps = spec.capability_set(cap_add=['ALL'], cap_drop=['SYS_ADMIN'])
        assert 'CAP_SYS_ADMIN' not in caps and len(caps) == len(spec.grantable_caps()) - (
            'CAP_SYS_ADMIN' in spec.grantable_caps())

    def test_privileged_gets_everything_grantable(self):
        assert spec.capability_set(cap_drop=['ALL'], privileged=True) == list(
            spec.grantable_caps())

    @ddt.data('CAP_BOGUS', 'nosuch', '', None)
    def test_unknown_capability(self, name):
        with pytest.raises(errors.InvalidArgument):
            spec.capability_set(cap_add=[name])


# ------------------------------------------------------------------ generate

class TestGenerate:

    def test_basics(self):
        s = gen(env=['PATH=/bin', 'A=b'], cwd='/srv', user=(5, 6, [7, 8]), terminal=True,
                hostname='web', readonly_rootfs=True, labels={'a': 'b', 'n': 1},
                cgroups_path=spec.cgroups_path('novadocker-t1', 'abc'))
        assert s['ociVersion'] == '1.0.2'
        p = s['process']
        assert p['args'] == ['sh', '-c', 'true']
        assert p['env'] == ['PATH=/bin', 'A=b']
        assert p['cwd'] == '/srv'
        assert p['user'] == {'uid': 5, 'gid': 6, 'additionalGids': [7, 8]}
        assert p['terminal'] is True
        assert p['noNewPrivileges'] is True
        assert p['rlimits'] == [{'type': 'RLIMIT_NOFILE', 'hard': spec.default_nofile(),
                                 'soft': spec.default_nofile()}]
        assert s['root'] == {'path': ROOTFS, 'readonly': True}
        assert s['hostname'] == 'web'
        assert s['annotations'] == {'a': 'b', 'n': '1'}
        assert s['linux']['cgroupsPath'] == '/novadocker-t1/abc'
        json.dumps(s)

    def test_capabilities_follow_docker(self):
        caps = gen()['process']['capabilities']
        for kind in ('bounding', 'effective', 'permitted'):
            assert set(caps[kind]) == DOCKER_DEFAULT_CAPS
        assert caps['inheritable'] == [] and caps['ambient'] == []

    def test_console_size(self):
        assert gen(terminal=True, console_size=(24, 80))['process']['consoleSize'] == {
            'height': 24, 'width': 80}
        assert 'consoleSize' not in gen(console_size=(24, 80))['process']

    def test_default_env_has_path(self):
        assert gen()['process']['env'] == [spec.DEFAULT_PATH_ENV]

    def test_mounts(self):
        mounts = {m['destination']: m for m in gen()['mounts']}
        assert list(mounts) == ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup',
                                '/dev/mqueue', '/dev/shm']
        assert mounts['/dev']['type'] == 'tmpfs'
        pts = mounts['/dev/pts']['options']
        assert {'newinstance', 'ptmxmode=0666', 'gid=5'} <= set(pts)
        assert 'size=65536k' in mounts['/dev/shm']['options']
        assert 'ro' in mounts['/sys']['options'] and 'nosuid' in mounts['/sys']['options']
        assert mounts['/sys/fs/cgroup']['type'] == 'cgroup'
        assert 'ro' in mounts['/sys/fs/cgroup']['options']
        assert mounts['/dev/mqueue']['type'] == 'mqueue'

    def test_shm_size(self):
        mounts = {m['destination']: m for m in gen(shm_size=1 << 30)['mounts']}
        assert 'size=1048576k' in mounts['/dev/shm']['options']

    def test_extra_mounts_follow_and_replace_defaults(self):
        hosts = spec.bind_mount('/run/x/hosts', '/etc/hosts')
        shm = spec.bind_mount('/dev/shm', '/dev/shm')
        mounts = gen(mounts=[hosts, shm])['mounts']
        dests = [m['destination'] for m in mounts]
        assert dests[-2:] == ['/etc/hosts', '/dev/shm']
        assert dests.count('/dev/shm') == 1
        assert hosts['options'] == ['rbind', 'rprivate']
        assert spec.bind_mount('/a', '/b', readonly=True)['options'][-1] == 'ro'

    def test_relative_mount_destination_rejected(self):
        with pytest.raises(errors.InvalidArgument):
            gen(mounts=[spec.bind_mount('/a', 'etc/hosts')])

    def test_masked_and_readonly_paths(self):
        linux = gen()['linux']
        assert set(linux['maskedPaths']) == {
            '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys',
            '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
            '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
            '/sys/devices/virtual/powercap'}
        assert set(linux['readonlyPaths']) == {
            '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'}

    def test_devices(self):
        linux = gen()['linux']
        paths = {d['path']: (d['type'], d['major'], d['minor']) for d in linux['devices']}
        assert paths == {'/dev/null': ('c', 1, 3), '/dev/zero': ('c', 1, 5),
                         '/dev/full': ('c', 1, 7), '/dev/random': ('c', 1, 8),
                         '/dev/urandom': ('c', 1, 9), '/dev/tty': ('c', 5, 0)}
        rules = linux['resources']['devices']
        assert rules[0] == {'allow': False, 'access': 'rwm'}
        assert {'allow': True, 'type': 'c', 'access': 'm'} in rules
        assert {'allow': True, 'type': 'b', 'access': 'm'} in rules
        for _, kind, major, minor in spec.DEFAULT_DEVICES:
            assert {'allow': True, 'type': kind, 'major': major, 'minor': minor,
                    'access': 'rwm'} in rules

    def test_resources_merge(self):
        res = gen(resources={'memory': {'limit': 1 << 20}, 'devices': [
            {'allow': True, 'type': 'c', 'major': 4, 'minor': 1, 'access': 'r'}]})
        res = res['linux']['resources']
        assert res['memory'] == {'limit': 1 << 20}
        assert res['devices'][0] == {'allow': False, 'access': 'rwm'}
        assert res['devices'][-1]['major'] == 4

    def test_privileged(self):
        s = gen(privileged=True, seccomp_profile=seccomp.DEFAULT_PROFILE)
        linux = s['linux']
        assert 'seccomp' not in linux
        assert 'maskedPaths' not in linux and 'readonlyPaths' not in linux
        assert linux['resources']['devices'] == [{'allow': True, 'access': 'rwm'}]
        mounts = {m['destination']: m for m in s['mounts']}
        assert 'ro' not in mounts['/sys']['options']
        assert set(s['process']['capabilities']['bounding']) == set(spec.grantable_caps())

    def test_namespaces_default(self):
        kinds = {ns['type']: ns for ns in gen()['linux']['namespaces']}
        assert set(kinds) == {'mount', 'network', 'ipc', 'pid', 'uts'}
        assert all('path' not in ns for ns in kinds.values())

    def test_network_host(self):
        s = gen(network='host', hostname='h')
        assert 'network' not in {ns['type'] for ns in s['linux']['namespaces']}

    def test_network_container_pid_and_path(self):
        nets = [ns for ns in gen(network='container:1234')['linux']['namespaces']
                if ns['type'] == 'network']
        assert nets == [{'type': 'network', 'path': '/proc/1234/ns/net'}]
        nets = [ns for ns in gen(network='container:/run/netns/x')['linux']['namespaces']
                if ns['type'] == 'network']
        assert nets == [{'type': 'network', 'path': '/run/netns/x'}]

    def test_joined_uts_sets_no_hostname(self):
        assert 'hostname' not in gen(uts='container:77', hostname='h')

    def test_ipc_pid_host(self):
        kinds = {ns['type'] for ns in gen(ipc='host', pid='host')['linux']['namespaces']}
        assert 'ipc' not in kinds and 'pid' not in kinds

    @pytest.mark.parametrize('mode', ['bogus', 'container:', 'container:abc'])
    def test_bad_network_mode(self, mode):
        with pytest.raises(errors.InvalidArgument):
            gen(network=mode)

    def test_invalid_inputs(self):
        with pytest.raises(errors.InvalidArgument):
            spec.generate(['true'], 'relative/rootfs')
        with pytest.raises(errors.InvalidArgument):
            spec.generate([], ROOTFS)
        with pytest.raises(errors.InvalidArgument):
            spec.generate(['true'], ROOTFS, cwd='relative')

    @pytest.mark.skipif(not HAVE_PROFILE, reason='no containers-common seccomp profile')
    def test_seccomp_default_and_unconfined(self):
        assert gen(seccomp_profile=seccomp.DEFAULT_PROFILE)['linux']['seccomp'][
            'defaultAction'] == 'SCMP_ACT_ERRNO'
        assert 'seccomp' not in gen(seccomp_profile='unconfined')['linux']

    def test_exec_process_spec_inherits(self):
        base = gen(env=['PATH=/bin', 'A=1'], cwd='/w', user=(3, 4, [5]),
                   cap_add=['NET_ADMIN'])
        p = spec.exec_process_spec(base, ['ls'], env=['A=2', 'B=3'], tty=True)
        assert p['env'] == ['PATH=/bin', 'A=2', 'B=3']
        assert p['cwd'] == '/w'
        assert p['user'] == {'uid': 3, 'gid': 4, 'additionalGids': [5]}
        assert p['terminal'] is True
        assert p['capabilities'] == base['process']['capabilities']
        assert p['noNewPrivileges'] is True
        assert p['rlimits'] == base['process']['rlimits']
        p = spec.exec_process_spec(base, ['ls'], user=(0, 0, []), cwd='/', privileged=True)
        assert p['user'] == {'uid': 0, 'gid': 0}
        assert set(p['capabilities']['bounding']) == set(spec.grantable_caps())


# ------------------------------------------------------------------ seccomp

SYNTHETIC = {
    'defaultAction': 'SCMP_ACT_ERRNO',
    'defaultErrnoRet': 38,
    'archMap': [
        {'architecture': 'SCMP_ARCH_X86_64',
         'subArchitectures': ['SCMP_ARCH_X86', 'SCMP_ARCH_X32']},
        {'architecture': 'SCMP_ARCH_AARCH64', 'subArchitectures': ['SCMP_ARCH_ARM']},
    ],
    'syscalls': [
        {'names': ['read', 'write'], 'action': 'SCMP_ACT_ALLOW', 'args': [],
         'includes': {}, 'excludes': {}},
        {'names': ['chroot'], 'action': 'SCMP_ACT_ALLOW', 'args': None,
         'includes': {'caps': ['CAP_SYS_CHROOT']}, 'excludes': {}},
        {'names': ['chroot'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1,
         'includes': {}, 'excludes': {'caps': ['CAP_SYS_CHROOT']}},
        {'names': ['arch_prctl'], 'action': 'SCMP_ACT_ALLOW',
         'includes': {'arches': ['amd64', 'x32']}},
        {'names': ['setns'], 'action': 'SCMP_ACT_ALLOW',
         'includes': {'caps': ['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT']}},
        {'names': ['newfancy'], 'action': 'SCMP_ACT_ALLOW',
         'includes': {'minKernel': '6.20'}},
        {'names': ['oldish'], 'action': 'SCMP_ACT_ALLOW',
         'includes': {'minKernel': '4.8'}},
        {'names': ['notonarm'], 'action': 'SCMP_ACT_ALLOW',
         'excludes': {'arches': ['arm64']}},
        {'names': ['personality'], 'action': 'SCMP_ACT_ALLOW',
         'args': [{'index': 0, 'value': 8, 'valueTwo': 0, 'op': 'SCMP_CMP_EQ'}]},
    ],
}
AMD64 = ('amd64', 'SCMP_ARCH_X86_64')
ARM64 = ('arm64', 'SCMP_ARCH_AARCH64')


def names_by_action(converted):
    out = {}
    for call in converted['syscalls']:
        for name in call['names']:
            out.setdefault(name, []).append(call['action'])
    return out


class TestSeccomp:

    def test_synthetic_amd64_defaults(self):
        out = seccomp.convert(SYNTHETIC, spec.DEFAULT_CAPS, arch=AMD64, kernel=(6, 1),
                              kernel_options={})
        assert out['defaultAction'] == 'SCMP_ACT_ERRNO'
        assert out['defaultErrnoRet'] == 38
        assert out['architectures'] == ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86',
                                        'SCMP_ARCH_X32']
        by = names_by_action(out)
        assert by['chroot'] == ['SCMP_ACT_ALLOW']
        assert 'arch_prctl' in by and 'notonarm' in by and 'oldish' in by
        assert 'setns' not in by          # needs SYS_ADMIN too
        assert 'newfancy' not in by       # kernel too old
        pers = [c for c in out['syscalls'] if c['names'] == ['personality']][0]
        assert pers['args'] == [{'index': 0, 'value': 8, 'valueTwo': 0,
                                 'op': 'SCMP_CMP_EQ'}]

    def test_synthetic_without_chroot_cap_on_arm(self):
        out = seccomp.convert(SYNTHETIC, ['CAP_KILL'], arch=ARM64, kernel=(6, 20),
                              kernel_options={})
        assert out['architectures'] == ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']

        chroot = [c for c in out['syscalls'] if c['names'] == ['chroot']]
        assert chroot == [{'names': ['chroot'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]
        by = names_by_action(out)
        assert 'arch_prctl' not in by and 'notonarm' not in by
        assert 'newfancy' in by

    def test_subarches_the_kernel_cannot_run_are_dropped(self):
        no_x32 = {'CONFIG_IA32_EMULATION': 'y', 'CONFIG_SECCOMP': 'y'}
        out = seccomp.convert(SYNTHETIC, spec.DEFAULT_CAPS, arch=AMD64, kernel=(6, 1),
                              kernel_options=no_x32)
        assert out['architectures'] == ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']
        out = seccomp.convert(SYNTHETIC, spec.DEFAULT_CAPS, arch=AMD64, kernel=(6, 1),
                              kernel_options={'CONFIG_SECCOMP': 'y'})
        assert out['architectures'] == ['SCMP_ARCH_X86_64']

    def test_caps_without_prefix(self):
        out = seccomp.convert(SYNTHETIC, ['sys_admin', 'SYS_CHROOT'], arch=AMD64,
                              kernel=(6, 1))
        assert 'setns' in names_by_action(out)

    def test_cache_follows_file_changes(self, tmp_path):
        path = str(tmp_path / 'p.json')
        with open(path, 'w') as f:
            json.dump(SYNTHETIC, f)
        first = seccomp.load_profile(path)
        assert seccomp.load_profile(path) is first
        changed = dict(SYNTHETIC, defaultAction='SCMP_ACT_KILL')
        with open(path, 'w') as f:
            json.dump(changed, f)
        os.utime(path, ns=(1, 1))
        assert seccomp.load_profile(path)['defaultAction'] == 'SCMP_ACT_KILL'

    def test_bad_profiles(self, tmp_path):
        with pytest.raises(errors.InvalidArgument):
            seccomp.load_profile(str(tmp_path / 'missing.json'))
        bad = tmp_path / 'bad.json'
        bad.write_text('{not json')
        with pytest.raises(errors.InvalidArgument):
            seccomp.load_profile(str(bad))

    @pytest.mark.skipif(not HAVE_PROFILE, reason='no containers-common seccomp profile')
    def test_real_profile_follows_capabilities(self):
        # A syscall no rule names gets the default action (ERRNO): Docker's
        # profile lists nothing for bpf without CAP_SYS_ADMIN, podman's an ERRNO.
        default = names_by_action(seccomp.for_container(spec.DEFAULT_CAPS))
        assert default['chroot'] == ['SCMP_ACT_ALLOW']
        assert default.get('bpf', ['SCMP_ACT_ERRNO']) == ['SCMP_ACT_ERRNO']
        assert 'SCMP_ACT_ALLOW' in default['read']
        no_chroot = names_by_action(seccomp.for_container(
            spec.capability_set(cap_drop=['SYS_CHROOT'])))
        assert no_chroot.get('chroot', ['SCMP_ACT_ERRNO']) == ['SCMP_ACT_ERRNO']
        admin = names_by_action(seccomp.for_container(
            spec.capability_set(cap_add=['SYS_ADMIN'])))
        assert admin['bpf'] == ['SCMP_ACT_ALLOW']

    @pytest.mark.skipif(not HAVE_PROFILE, reason='no containers-common seccomp profile')
    def test_for_container_returns_fresh_dicts(self):
        a = seccomp.for_container(spec.DEFAULT_CAPS)
        a['syscalls'].clear()
        assert seccomp.for_container(spec.DEFAULT_CAPS)['syscalls']


# ------------------------------------------------------------------ users

PASSWD = ('root:x:0:0:root:/root:/bin/sh\n'
          '# comment\n'
          'daemon:x:1:1:daemon:/usr/sbin:/bin/false\n'
          'nobody:x:65534:65534:nobody:/home:/bin/false\n'
          'app:x:1000:1000::/app:/bin/sh\n')
GROUP = ('root:x:0:\nwheel:x:10:root\nstaff:x:50:nobody,app\napp:x:1000:\n'
         'nogroup:x:65534:\nextra:x:70:app\n')


@pytest.fixture
def image(tmp_path):
    root = tmp_path / 'rootfs'
    (root / 'etc').mkdir(parents=True)
    (root / 'etc' / 'passwd').write_text(PASSWD)
    (root / 'etc' / 'group').write_text(GROUP)
    return root


class TestResolveUser:

    def test_unknown_user(self, image):
        with pytest.raises(errors.InvalidArgument,
                           match='unable to find user xyz: no matching entries in passwd file'):
            spec.resolve_user(str(image), 'xyz')

    def test_unknown_group(self, image):
        with pytest.raises(errors.InvalidArgument,
                           match='unable to find group nope: no matching entries in group file'):
            spec.resolve_user(str(image), 'app:nope')

    def test_id_out_of_range(self, image):
        with pytest.raises(errors.InvalidArgument):
            spec.resolve_user(str(image), '99999999999')

    def test_no_passwd_file(self, tmp_path):
        (tmp_path / 'etc').mkdir()
        assert spec.resolve_user(str(tmp_path), '') == (0, 0, [])
        assert spec.resolve_user(str(tmp_path), '12:34') == (12, 34, [])
        with pytest.raises(errors.InvalidArgument, match='unable to find user app'):
            spec.resolve_user(str(tmp_path), 'app')


USER_CASES = [
    ('', (0, 0, [10])), ('root', (0, 0, [10])), ('0', (0, 0, [10])),
    ('nobody', (65534, 65534, [50])), ('65534', (65534, 65534, [50])),
    ('app', (1000, 1000, [50, 70])), ('4242', (4242, 0, [])),
    ('4242:4343', (4242, 4343, [])), ('app:staff', (1000, 50, [])),
    ('nobody:70', (65534, 70, [])), ('1000:wheel', (1000, 10, [])),
]


@pytest.mark.parametrize('user,expected', USER_CASES)
def test_resolve_user_forms(image, user, expected):
    assert spec.resolve_user(str(image), user) == expected


class TestHostileRootfs:
    """The image's files are read as if the rootfs were /, never the host's."""

    @pytest.fixture
    def host_file(self, tmp_path):
        # Stands for the host's /etc/passwd: a user only the host knows.
        path = tmp_path / 'host-passwd'
        path.write_text('hostonly:x:777:777::/:/bin/sh\n')
        return path

    def test_absolute_symlink_stays_inside(self, image, host_file):
        os.unlink(image / 'etc' / 'passwd')
        os.symlink(str(host_file), image / 'etc' / 'passwd')
        with pytest.raises(errors.InvalidArgument, match='unable to find user hostonly'):
            spec.resolve_user(str(image), 'hostonly')

    def test_symlink_to_hosts_real_passwd(self, image):
        os.unlink(image / 'etc' / 'passwd')
        os.symlink('/etc/passwd', image / 'etc' / 'passwd')   # points at itself inside
        with pytest.raises(errors.InvalidArgument, match='unable to find user root'):
            spec.resolve_user(str(image), 'root')

    def test_dotdot_symlink_stays_inside(self, image, host_file):
        os.unlink(image / 'etc' / 'passwd')
        rel = os.path.relpath(str(host_file), str(image / 'etc'))
        os.symlink(rel, image / 'etc' / 'passwd')
        with pytest.raises(errors.InvalidArgument, match='unable to find user hostonly'):
            spec.resolve_user(str(image), 'hostonly')

    def test_etc_directory_symlink_stays_inside(self, tmp_path, host_file):
        root = tmp_path / 'r2'
        root.mkdir()
        outside = tmp_path / 'outside-etc'
        outside.mkdir()
        (outside / 'passwd').write_text('hostonly:x:777:777::/:/bin/sh\n')
        os.symlink(str(outside), root / 'etc')
        with pytest.raises(errors.InvalidArgument, match='unable to find user hostonly'):
            spec.resolve_user(str(root), 'hostonly')

    def test_symlink_inside_the_rootfs_is_followed(self, image):
        os.rename(image / 'etc' / 'passwd', image / 'etc' / 'passwd.real')
        os.symlink('/etc/../etc/passwd.real', image / 'etc' / 'passwd')
        assert spec.resolve_user(str(image), 'app')[0] == 1000

    def test_symlink_loop(self, image):
        os.unlink(image / 'etc' / 'passwd')
        os.symlink('passwd2', image / 'etc' / 'passwd')
        os.symlink('passwd', image / 'etc' / 'passwd2')
        with pytest.raises(errors.InvalidArgument, match='unable to find user app'):
            spec.resolve_user(str(image), 'app')

    def test_fifo_does_not_hang(self, image):
        os.unlink(image / 'etc' / 'passwd')
        os.mkfifo(image / 'etc' / 'passwd')
        assert spec.resolve_user(str(image), '') == (0, 0, [])

    def test_directory_instead_of_file(self, image):
        os.unlink(image / 'etc' / 'group')
        os.mkdir(image / 'etc' / 'group')
        assert spec.resolve_user(str(image), 'app') == (1000, 1000, [])
