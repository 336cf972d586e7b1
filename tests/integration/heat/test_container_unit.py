"""Unit tests of DockerInc::Docker::Container on real Heat (HeatTestCase):
properties to the engine's create body, validation messages, the lifecycle
against a mocked engine, and the plugin_dirs shim as heat-engine loads it.
The real-engine tests are in test_container_engine.py.
"""

import pathlib
from unittest import mock

import ddt
from oslo_config import cfg

from heat.common import exception
from heat.engine import environment
from heat.engine import resources
from heat.tests import utils

from heat_plugin import client as plugin_client
from heat_plugin import container
from heat_plugin import resources as plugin_resources
from novadocker import client as engine_client
from tests.integration.heat import base

TYPE = 'DockerInc::Docker::Container'
SHIM_DIR = str(pathlib.Path(__file__).parents[3] / 'etc' / 'heat' / 'plugins')


def template(**props):
    props.setdefault('image', 'busybox')
    return {'heat_template_version': '2021-04-16',
            'resources': {'c': {'type': TYPE, 'properties': props}}}


class ContainerTestCase(base.HeatTestCase):

    def setUp(self):
        super().setUp()
        resources.global_env().register_class(TYPE, container.DockerContainer)

    def resource(self, **props):
        stk = utils.parse_stack(template(**props))
        return stk['c']

    def validate_error(self, **props):
        stk = utils.parse_stack(template(**props))
        return str(self.assertRaises(exception.StackValidationFailed,
                                     stk.validate))


@ddt.ddt
class TestCreateBody(ContainerTestCase):

    def test_minimal(self):
        body = self.resource().create_body()
        self.assertEqual('busybox', body['Image'])
        self.assertNotIn('Cmd', body)
        self.assertEqual({'Name': 'no', 'MaximumRetryCount': 0},
                         body['HostConfig']['RestartPolicy'])
        self.assertNotIn('NetworkingConfig', body)

    @ddt.data(
        ({'port_specs': ['80', 53, '53/udp']}, 'ExposedPorts',
         {'80/tcp': {}, '53/tcp': {}, '53/udp': {}}),
        ({'cmd': ['sh', '-c', 'echo hi']}, 'Cmd', ['sh', '-c', 'echo hi']),
        ({'env': ['A=1', 'B=two']}, 'Env', ['A=1', 'B=two']),
        ({'hostname': 'web', 'user': 'nobody'}, 'Hostname', 'web'),
        ({'tty': True, 'open_stdin': True, 'stdin_once': True}, 'Tty', True),
        ({'volumes': {'/data': {}}}, 'Volumes', {'/data': {}}),
    )
    @ddt.unpack
    def test_config(self, props, key, expected):
        self.assertEqual(expected, self.resource(**props).create_body()[key])

    @ddt.data(
        ({'port_bindings': {'80': 8080}}, 'PortBindings',
         {'80/tcp': [{'HostIp': '', 'HostPort': '8080'}]}),
        ({'port_bindings': {'80/tcp': '127.0.0.1:8080'}}, 'PortBindings',
         {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}]}),
        ({'port_bindings': {'53/udp': [{'HostIp': '127.0.0.1',
                                        'HostPort': '5353'}, 5354]}},
         'PortBindings',
         {'53/udp': [{'HostIp': '127.0.0.1', 'HostPort': '5353'},
                     {'HostIp': '', 'HostPort': '5354'}]}),
        ({'port_bindings': {'80': '127.0.0.1:'}}, 'PortBindings',
         {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': ''}]}),
        ({'links': {'db': 'database'}}, 'Links', ['db:database']),
        ({'dns': ['10.0.0.2']}, 'Dns', ['10.0.0.2']),
        ({'volumes': {'/srv/data': '/data', 'vol1': '/v:ro',
                      '/etc/hosts': {'bind': '/h', 'ro': True}}}, 'Binds',
         ['/srv/data:/data:rw', 'vol1:/v:ro', '/etc/hosts:/h:ro']),
        ({'volumes_from': ['other']}, 'VolumesFrom', ['other']),
        ({'privileged': True}, 'Privileged', True),
        ({'read_only': True}, 'ReadonlyRootfs', True),
        ({'cap_add': ['NET_ADMIN'], 'cap_drop': ['MKNOD']}, 'CapAdd',
         ['NET_ADMIN']),
        ({'memory': 67108864}, 'Memory', 67108864),
        ({'cpu_shares': 512}, 'CpuShares', 512),
        ({'cpu_set': '0'}, 'CpusetCpus', '0'),
        ({'devices': [{'path_on_host': '/dev/null'}]}, 'Devices',
         [{'PathOnHost': '/dev/null', 'PathInContainer': '/dev/null',
           'CgroupPermissions': 'rwm'}]),
        ({'restart_policy': {'Name': 'on-failure', 'MaximumRetryCount': 3}},
         'RestartPolicy', {'Name': 'on-failure', 'MaximumRetryCount': 3}),
        ({'networks': [{'network': 'backend', 'aliases': ['db']}]},
         'NetworkMode', 'backend'),
    )
    @ddt.unpack
    def test_host_config_at_create(self, props, key, expected):
        host = self.resource(**props).create_body()['HostConfig']
        self.assertEqual(expected, host[key])

    def test_bound_ports_are_exposed(self):
        body = self.resource(port_bindings={'80': 8080}).create_body()
        self.assertEqual({'80/tcp': {}}, body['ExposedPorts'])

    def test_first_network_aliases(self):
        body = self.resource(networks=[
            {'network': 'a', 'aliases': ['x']}, {'network': 'b'}]).create_body()
        self.assertEqual({'EndpointsConfig': {'a': {'Aliases': ['x']}}},
                         body['NetworkingConfig'])

    @ddt.data(('busybox', ('busybox', 'latest')),
              ('busybox:1.36', ('busybox', '1.36')),
              ('localhost:5000/a/b', ('localhost:5000/a/b', 'latest')),
              ('localhost:5000/a/b:v1', ('localhost:5000/a/b', 'v1')),
              ('b@sha256:' + 'a' * 64, ('b@sha256:' + 'a' * 64, None)))
    @ddt.unpack
    def test_split_image(self, ref, expected):
        self.assertEqual(expected, container.split_image(ref))

    def test_demux_logs(self):
        raw = (b'\x01\x00\x00\x00\x00\x00\x00\x03hi\n'
               b'\x02\x00\x00\x00\x00\x00\x00\x04err\n')
        self.assertEqual('hi\nerr\n', container.demux_logs(raw, False))
        self.assertEqual('raw', container.demux_logs(b'raw', True))


@ddt.ddt
class TestValidation(ContainerTestCase):

    def test_valid_template(self):
        stk = utils.parse_stack(template(
            image='localhost:5000/team/app:1.0', port_specs=['80'],
            port_bindings={'80/tcp': 8080}, cap_add=['NET_ADMIN'],
            restart_policy={'Name': 'on-failure', 'MaximumRetryCount': 2}))
        self.assertIsNone(stk.validate())

    @ddt.data(
        ({'image': 'Not/Valid:ref!'}, 'not a valid image reference'),
        ({'image': 'busybox:'}, 'not a valid image reference'),
        ({'port_specs': ['http']}, '"http" is not a port'),
        ({'port_specs': ['70000']}, '"70000" is not a port'),
        ({'port_specs': ['80/icmp']}, '"80/icmp" is not a port'),
        ({'port_bindings': {'80': 'x:abc'}}, 'host port "abc"'),
        ({'port_bindings': {'eighty': 80}}, '"eighty" is not a port'),
        ({'port_bindings': {'80': {'Port': 1}}}, 'unknown keys Port'),
        ({'cap_add': ['NOT_A_CAP']}, 'NOT_A_CAP'),
        ({'cap_drop': ['CAP_CHOWN']}, 'CAP_CHOWN'),
        ({'cap_add': ['CHOWN'], 'cap_drop': ['CHOWN']},
         'cap_add and cap_drop both name CHOWN'),
        ({'restart_policy': {'Name': 'sometimes'}}, 'sometimes'),
        ({'restart_policy': {'Name': 'always', 'MaximumRetryCount': 2}},
         'MaximumRetryCount applies only to Name on-failure'),
        ({'volumes': {'/src': 'relative'}}, 'must be absolute'),
        ({'volumes': {'/src': '/dst:rx'}}, 'mode "rx"'),
        ({'name': '-bad'}, 'name "-bad"'),
        ({'env': ['=x']}, 'env: "=x"'),
        ({'memory': -1}, 'memory'),
        ({'docker_endpoint': 'http://10.0.0.1:2375'}, 'TCP needs TLS'),
        ({'devices': [{'path_on_host': '/dev/null', 'permissions': 'x'}]},
         'permissions'),
    )
    @ddt.unpack
    def test_invalid(self, props, message):
        self.assertIn(message, self.validate_error(**props))

    def test_networks_with_links_conflict(self):
        stk = utils.parse_stack(template(networks=[{'network': 'n'}],
                                         links={'a': 'b'}))
        err = self.assertRaises(exception.ResourcePropertyConflict,
                                stk.validate)
        self.assertIn('networks, links', str(err))


class TestLifecycleMockedEngine(ContainerTestCase):
    """The calls the resource makes; the real engine proves their effect
    (test_container_engine.py)."""

    def setUp(self):
        super().setUp()
        self.eng = mock.Mock(spec=engine_client.EngineClient)
        self.eng.timeout = 60
        self.patchobject(plugin_client, 'engine_for', return_value=self.eng)

    def test_pulls_missing_image_then_creates_and_starts(self):
        self.eng.inspect_image.side_effect = engine_client.EngineNotFound('x')
        self.eng.post.side_effect = [{'Id': 'abc'}, None]
        res = self.resource(image='localhost:5000/app:v2')
        self.assertEqual('abc', res.handle_create())
        self.eng.stream_json.assert_called_once_with(
            'POST', '/images/create',
            params={'fromImage': 'localhost:5000/app', 'tag': 'v2'},
            timeout=600)
        self.assertEqual('/containers/abc/start',
                         self.eng.post.call_args_list[1][0][0])

    def test_pull_stream_error_fails_with_message(self):
        self.eng.inspect_image.side_effect = engine_client.EngineNotFound('x')
        self.eng.stream_json.side_effect = engine_client.StreamError(
            'manifest unknown')
        res = self.resource(image='nosuch')
        err = self.assertRaises(exception.Error, res.handle_create)
        self.assertIn('could not pull image nosuch: manifest unknown',
                      str(err))
        self.eng.post.assert_not_called()

    def test_nonzero_exit_fails_with_logs(self):
        res = self.resource()
        self.eng.inspect_container.return_value = {
            'State': {'Running': False, 'Status': 'exited', 'ExitCode': 3},
            'Config': {'Tty': True}}
        self.eng.request.return_value = mock.Mock(content=b'boom\n')
        err = self.assertRaises(exception.ResourceInError,
                                res.check_create_complete, 'abc')
        self.assertIn('exited with code 3', str(err))
        self.assertIn('boom', str(err))

    def test_restarted_while_running_fails_with_logs(self):
        # Caught while running again after a crash (restart policy).
        res = self.resource(restart_policy={'Name': 'always'})
        self.eng.inspect_container.return_value = {
            'RestartCount': 1, 'Config': {'Tty': True},
            'State': {'Running': True, 'Status': 'running', 'ExitCode': 4}}
        self.eng.request.return_value = mock.Mock(content=b'no db\n')
        err = self.assertRaises(exception.ResourceInError,
                                res.check_create_complete, 'abc')
        self.assertIn('exited with code 4', str(err))
        self.assertIn('no db', str(err))

    def test_running_completes_after_startup_grace(self):
        cfg.CONF.set_override('startup_grace', 0.3, group='novadocker')
        res = self.resource()
        self.eng.inspect_container.return_value = {
            'RestartCount': 0, 'State': {'Running': True, 'ExitCode': 0}}
        checks = 0
        while not res.check_create_complete('abc'):
            checks += 1
        self.assertGreaterEqual(checks, 2)

    def test_delete_of_vanished_container(self):
        res = self.resource()
        res.resource_id = 'abc'
        self.eng.post.side_effect = engine_client.EngineNotFound('gone')
        self.eng.inspect_container.side_effect = \
            engine_client.EngineNotFound('gone')
        self.assertEqual('abc', res.handle_delete())
        self.assertTrue(res.check_delete_complete('abc'))

    def test_update_memory_to_unlimited_replaces(self):
        res = self.resource(memory=1 << 26)
        res.resource_id = 'abc'
        self.assertRaises(container.resource.UpdateReplace, res.handle_update,
                          None, None, {'memory': 0})


class TestPluginShim(base.HeatTestCase):

    def test_loaded_like_heat_engine(self):
        cfg.CONF.set_override('plugin_dirs', [SHIM_DIR])
        env = environment.Environment({}, user_env=False)
        resources._load_global_resources(env)
        cls = env.get_class(TYPE)
        self.assertIs(container.DockerContainer, cls)
        # Every resource family the plugin maps comes through the shim.
        mapping = plugin_resources.resource_mapping()
        self.assertGreaterEqual(len(mapping), 2)
        for name, klass in mapping.items():
            self.assertIs(klass, env.get_class(name), name)

    def test_engine_url_option(self):
        self.assertEqual('unix:///run/novadocker/engine.sock',
                         cfg.CONF.novadocker.engine_url)
        cfg.CONF.set_override('engine_url', 'unix:///tmp/x.sock',
                              group='novadocker')
        self.assertEqual('unix:///tmp/x.sock', plugin_client.engine_for().url)
        self.assertEqual('unix:///other.sock',
                         plugin_client.engine_for('unix:///other.sock').url)
        # The contrib plugin's tcp:// endpoints mean TLS here.
        self.assertEqual('https://10.0.0.2:2376',
                         plugin_client.engine_for('tcp://10.0.0.2:2376').url)

    def test_contrib_template_validates(self):
        # The contrib plugin's documented example and its long-form
        # port_bindings, links and volumes.
        resources.global_env().register_class(TYPE, container.DockerContainer)
        stk = utils.parse_stack({
            'heat_template_version': '2013-05-23',
            'resources': {'my_docker_container': {
                'type': TYPE,
                'properties': {
                    'image': 'cirros',
                    'docker_endpoint': 'tcp://192.168.1.2:2376',
                    'port_specs': ['80'],
                    'port_bindings': {'80/tcp': [{'HostPort': '80'}]},
                    'links': {'db': 'db'},
                    'volumes': {'/data': {}},
                    'restart_policy': {'Name': 'always',
                                       'MaximumRetryCount': 0}}}}})
        self.assertIsNone(stk.validate())
        host = stk['my_docker_container'].create_body()['HostConfig']
        self.assertEqual({'80/tcp': [{'HostIp': '', 'HostPort': '80'}]},
                         host['PortBindings'])
