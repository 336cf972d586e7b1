"""Unit tests of the driver's helpers (ddt, mocks, no engine): power-state
mapping, create bodies, files for injection, error mapping, resources.
They live here because they import Nova (collected with --integration=nova).
"""

import io
import json
import os
import tarfile
import tempfile
import types
from unittest import mock

import ddt
import testtools
from nova.compute import power_state
from nova import exception
from nova import objects
from oslo_config import cfg
from oslo_config import fixture as config_fixture

from novadocker import client as client_mod
from novadocker.virt.docker import conf as docker_conf
from novadocker.virt.docker import containers
from novadocker.virt.docker import engine as engine_mod
from novadocker.virt.docker import hostinfo
from novadocker.virt.docker import images

objects.register_all()


def _conf(**docker):
    conf = cfg.ConfigOpts()
    # A group object of this ConfigOpts' own: overrides live in the group,
    # and conf.GROUP is shared by every ConfigOpts that registers it.
    conf.register_group(cfg.OptGroup(docker_conf.GROUP.name))
    docker_conf.register_opts(conf)
    conf.register_opt(cfg.StrOpt('instances_path', default='/nonexistent'))
    conf([], project='test')
    for k, v in docker.items():
        conf.set_override(k, v, group='docker')
    return conf


def _instance(**kw):
    flavor = types.SimpleNamespace(memory_mb=kw.pop('memory_mb', 512), vcpus=kw.pop('vcpus', 2),
                                   swap=kw.pop('swap', 0))
    base = dict(uuid='11111111-2222-4333-8444-555555555555', name='instance-00000001',
                hostname='web-1', flavor=flavor, metadata={}, display_name='web 1',
                availability_zone='nova', project_id='p1', key_data=None)
    base.update(kw)
    return types.SimpleNamespace(**base)


def _state(status, **kw):
    st = {'Status': status, 'ExitCode': 0, 'OOMKilled': False, 'Error': ''}
    st.update(kw)
    return {'State': st}


@ddt.ddt
class TestPowerStates(testtools.TestCase):

    @ddt.unpack
    @ddt.data(
        ('running', {}, False, power_state.RUNNING),
        ('restarting', {}, False, power_state.RUNNING),
        ('paused', {}, False, power_state.PAUSED),
        ('paused', {}, True, power_state.SUSPENDED),
        ('created', {}, False, power_state.SHUTDOWN),
        ('created', {'Error': 'exec: no such file'}, False, power_state.CRASHED),
        ('exited', {'ExitCode': 0}, False, power_state.SHUTDOWN),
        ('exited', {'ExitCode': 143}, False, power_state.SHUTDOWN),
        ('exited', {'ExitCode': 137}, False, power_state.SHUTDOWN),
        ('exited', {'ExitCode': 1}, False, power_state.CRASHED),
        ('exited', {'ExitCode': 137, 'OOMKilled': True}, False, power_state.CRASHED),
        ('dead', {}, False, power_state.CRASHED),
        ('removing', {}, False, power_state.NOSTATE),
    )
    def test_mapping(self, status, extra, suspended, expected):
        self.assertEqual(expected, containers.power_state_of(_state(status, **extra), suspended))

    def test_nothing_is_nostate(self):
        self.assertEqual(power_state.NOSTATE, containers.power_state_of(None))


@ddt.ddt
class TestCreateBody(testtools.TestCase):

    def _body(self, conf=None, image_props=None, **inst):
        meta = objects.ImageMeta.from_dict({'properties': image_props or {}})
        return containers.create_body(_instance(**inst), 'sha256:abc', meta, 'host1',
                                      conf or _conf(), 'none')

    @ddt.unpack
    @ddt.data(('shares', 2048, None, None), ('quota', None, 100000, 200000),
              ('both', 2048, 100000, 200000))
    def test_cpu_policy(self, policy, shares, period, quota):
        hc = self._body(_conf(cpu_policy=policy))['HostConfig']
        self.assertEqual((shares, period, quota),
                         (hc.get('CpuShares'), hc.get('CpuPeriod'), hc.get('CpuQuota')))

    @ddt.unpack
    @ddt.data((512, 0, 512 * 2 ** 20), (256, 128, 384 * 2 ** 20))
    def test_memory_and_swap(self, memory_mb, swap, memory_swap):
        hc = self._body(memory_mb=memory_mb, swap=swap)['HostConfig']
        self.assertEqual(memory_mb * 2 ** 20, hc['Memory'])
        self.assertEqual(memory_swap, hc['MemorySwap'])

    def test_labels_metadata_and_defaults(self):
        body = self._body(metadata={'role': 'db'})
        self.assertEqual({containers.LABEL_UUID: '11111111-2222-4333-8444-555555555555',
                          containers.LABEL_NAME: 'instance-00000001',
                          containers.LABEL_HOST: 'host1', containers.LABEL_VCPUS: '2',
                          containers.LABEL_MEMORY: '512',
                          'org.openstack.nova.meta.role': 'db'}, body['Labels'])
        self.assertEqual('sha256:abc', body['Image'])
        self.assertTrue(body['Tty'] and body['OpenStdin'])
        self.assertFalse(body['HostConfig']['Privileged'])
        self.assertEqual({'Name': 'no'}, body['HostConfig']['RestartPolicy'])
        self.assertNotIn('Cmd', body)

    def test_privileged_only_when_configured(self):
        self.assertTrue(self._body(_conf(privileged=True))['HostConfig']['Privileged'])

    def test_os_command_line_is_the_command(self):
        body = self._body(image_props={'os_command_line': "sh -c 'echo hi; sleep 5'"})
        self.assertEqual(['sh', '-c', 'echo hi; sleep 5'], body['Cmd'])

    @ddt.unpack
    @ddt.data(('web-1', 'instance-1', 'web-1'), (None, 'instance-0000002a', 'instance-0000002a'),
              ('Web_Server.Example', 'x', 'web-server-example'), ('a' * 80, 'x', 'a' * 63),
              ('---', 'x', 'instance'))
    def test_hostname(self, hostname, name, expected):
        self.assertEqual(expected, containers.hostname(_instance(hostname=hostname, name=name)))


class TestInjection(testtools.TestCase):

    def test_files_metadata_and_key(self):
        inst = _instance(metadata={'a': 'b'}, key_data='ssh-ed25519 AAAA k\n')
        files = containers.files_for(inst, [('/etc/motd', b'hi'), ('/x', 'text')],
                                     _conf(inject_key=True))
        by_path = {p: (d, m) for p, d, m in files}
        self.assertEqual((b'hi', 0o644), by_path['/etc/motd'])
        self.assertEqual(b'text', by_path['/x'][0])
        self.assertEqual({'a': 'b'}, json.loads(by_path[containers.METADATA_PATH][0])['meta'])
        self.assertEqual((b'ssh-ed25519 AAAA k\n', 0o600), by_path[containers.AUTHORIZED_KEYS])
        self.assertNotIn(containers.AUTHORIZED_KEYS,
                         {p for p, _, _ in containers.files_for(inst, [], _conf())})

    def test_tar_lists_only_ssh_dirs(self):
        data = containers.injection_tar([('/root/.ssh/authorized_keys', b'k', 0o600),
                                         ('/var/lib/nova/metadata.json', b'{}', 0o644)])
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            members = {m.name: (m.isdir(), m.mode) for m in tf.getmembers()}
        self.assertEqual({'root/.ssh': (True, 0o700), 'root/.ssh/authorized_keys': (False, 0o600),
                          'var/lib/nova/metadata.json': (False, 0o644)}, members)

    def test_tar_refuses_dot_dot(self):
        self.assertRaises(ValueError, containers.injection_tar, [('/etc/../x', b'', 0o644)])


class TestStateFile(testtools.TestCase):

    def test_suspended_marker_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            st = containers.StateFile(d, 'u1')
            self.assertFalse(st.suspended)
            st.update(suspended=True)
            self.assertTrue(containers.StateFile(d, 'u1').suspended)
            st.remove()
            st.remove()
            self.assertEqual([], os.listdir(d))


@ddt.ddt
class TestErrorMapping(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.engine = engine_mod.Engine(_conf(engine_url='unix:///run/x.sock'), host='h1')
        self.inst = _instance()

    def _raise(self, exc, **kw):
        with self.engine.errors(**kw):
            raise exc

    def test_unreachable_is_hypervisor_unavailable_naming_the_url(self):
        err = self.assertRaises(exception.HypervisorUnavailable, self._raise,
                                client_mod.EngineUnavailable('connection refused'))
        self.assertIn('unix:///run/x.sock', str(err))
        self.assertIn('connection refused', str(err))

    def test_engine_5xx_with_a_failure_class_is_that_failure(self):
        err = self.assertRaises(exception.ImageUnacceptable, self._raise,
                                client_mod.EngineUnavailable('registry down', 502),
                                failure=lambda reason: exception.ImageUnacceptable(
                                    image_id='i', reason=reason))
        self.assertIn('registry down', str(err))

    def test_not_found_for_an_instance(self):
        self.assertRaises(exception.InstanceNotFound, self._raise,
                          client_mod.EngineNotFound('No such container'), instance=self.inst)

    @ddt.data(exception.InstancePowerOffFailure, exception.InstanceDeployFailure)
    def test_other_errors_use_the_failure_class(self, cls):
        err = self.assertRaises(cls, self._raise,
                                client_mod.EngineConflict('container is paused', 409),
                                instance=self.inst, failure=cls)
        self.assertIn('container is paused', str(err))

    def test_other_errors_default_to_nova_exception(self):
        err = self.assertRaises(exception.NovaException, self._raise,
                                client_mod.EngineClientError('disk full', 500))
        self.assertIn('disk full', str(err))

    def test_remove_of_a_missing_container_is_false(self):
        self.engine.client = mock.Mock()
        self.engine.client.delete.side_effect = client_mod.EngineNotFound('gone', 404)
        self.assertFalse(self.engine.remove('c1'))

    def test_logs_are_unframed_and_capped(self):
        frames = b''.join(b'\x01\x00\x00\x00' + len(x).to_bytes(4, 'big') + x
                          for x in [b'a' * 10, b'b' * 10, b'tail\n'])
        resp = mock.Mock(headers={'Content-Type': 'application/vnd.docker.multiplexed-stream'})
        resp.iter_content.return_value = [frames]
        self.engine.client = mock.Mock()
        self.engine.client.request.return_value = resp
        self.assertEqual(b'b' * 3 + b'tail\n', self.engine.logs('c1', 8))


class TestHostInfo(testtools.TestCase):
    INFO = {'NCPU': 8, 'MemTotal': 16 * 2 ** 30, 'Architecture': 'x86_64',
            'ServerVersion': '0.1.0',
            'HostFacts': {'UptimeSeconds': 90061.0, 'MemAvailable': 10 * 2 ** 30,
                          'LoadAverage': [0.5, 0.25, 0.0],
                          'RootDirBytesTotal': 100 * 2 ** 30,
                          'RootDirBytesFree': 40 * 2 ** 30}}

    def setUp(self):
        super().setUp()
        self.fixture = self.useFixture(config_fixture.Config(hostinfo.CONF))

    def test_available_resource(self):
        res = hostinfo.available_resource(self.INFO, 'node1', 3, 1024)
        self.assertEqual((8, 16384, 100, 3, 60, 40, 40),
                         (res['vcpus'], res['memory_mb'], res['local_gb'], res['vcpus_used'],
                          res['local_gb_used'], res['disk_available_least'],
                          res['disk_available_least']))
        # Used memory: what the host really uses, when more than flavors say.
        self.assertEqual(6 * 1024, res['memory_mb_used'])
        self.assertEqual(('docker', 1000, 'node1'), (res['hypervisor_type'],
                                                     res['hypervisor_version'],
                                                     res['hypervisor_hostname']))
        self.assertEqual([('x86_64', 'docker', 'exe')], res['supported_instances'])

    def test_inventory_reserved_and_ratios(self):
        self.fixture.config(reserved_host_cpus=1, reserved_host_memory_mb=512,
                            reserved_host_disk_mb=1025)
        inv = hostinfo.inventory(self.INFO, {'VCPU': 4.0, 'MEMORY_MB': 1.5, 'DISK_GB': 1.0})
        self.assertEqual({'total': 8, 'min_unit': 1, 'max_unit': 8, 'step_size': 1,
                          'allocation_ratio': 4.0, 'reserved': 1}, inv['VCPU'])
        self.assertEqual((16384, 1.5, 512), (inv['MEMORY_MB']['total'],
                                             inv['MEMORY_MB']['allocation_ratio'],
                                             inv['MEMORY_MB']['reserved']))
        self.assertEqual((100, 2), (inv['DISK_GB']['total'], inv['DISK_GB']['reserved']))

    def test_uptime(self):
        self.assertEqual(' 10:00:00 up 1 day,  1:01,  load average: 0.50, 0.25, 0.00',
                         hostinfo.uptime_string(self.INFO, '10:00:00'))
        self.assertRaises(NotImplementedError, hostinfo.uptime_string, {}, 'x')


@ddt.ddt
class TestImageHelpers(testtools.TestCase):

    @ddt.unpack
    @ddt.data(('busybox', 'busybox:latest'), ('r:5000/ns/app', 'r:5000/ns/app:latest'),
              ('r:5000/ns/app:v1', 'r:5000/ns/app:v1'),
              ('r:5000/ns/app@sha256:' + 'a' * 64, 'r:5000/ns/app@sha256:' + 'a' * 64))
    def test_normalize_ref(self, ref, expected):
        self.assertEqual(expected, images.normalize_ref(ref))

    def test_registry_auth_only_for_the_configured_registry(self):
        conf = _conf(registry_url='reg:5000', registry_username='u', registry_password='p')
        self.assertEqual({'username': 'u', 'password': 'p', 'serveraddress': 'reg:5000'},
                         images.registry_auth(conf, 'reg:5000/nova/x@sha256:1'))
        self.assertIsNone(images.registry_auth(conf, 'other:5000/nova/x'))
        self.assertIsNone(images.registry_auth(_conf(), 'reg:5000/nova/x'))
        # A registry_url written with a scheme names the same registry.
        conf = _conf(registry_url='https://reg:5000/', registry_username='u')
        self.assertEqual('reg:5000',
                         images.registry_auth(conf, 'reg:5000/nova/x@sha256:1')['serveraddress'])

    def test_expire_keeps_used_and_young_and_removes_only_own_refs(self):
        with tempfile.TemporaryDirectory() as d:
            conf = _conf(remove_unused_images_after=100)
            conf.set_override('instances_path', d)
            eng = mock.Mock()
            eng.inspect_image.return_value = {'Id': 'x'}
            eng.containers_of_image.return_value = []
            fetcher = images.ImageFetcher(eng, conf)
            fetcher.remember('sha256:old', 'reg/a@sha256:1', now=1000)
            fetcher.remember('sha256:used', 'reg/b:latest', now=1000)
            fetcher.remember('sha256:young', 'reg/c:latest', now=1950)
            self.assertEqual(['sha256:old'], fetcher.expire({'sha256:used'}, now=2000))
            eng.remove_image.assert_called_once_with('reg/a@sha256:1')
            with open(os.path.join(d, images.CACHE_FILE)) as f:
                left = json.load(f)
            self.assertEqual({'sha256:used', 'sha256:young'}, set(left))
            self.assertEqual(2000, left['sha256:used']['last_used'])
