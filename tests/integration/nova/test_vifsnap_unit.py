"""Unit tests (mocked engine client) of the VIF drivers and snapshot stores:
the bodies they send, the task-state protocol, and the error mapping."""

import base64
import json
import unittest
from unittest import mock

import ddt
from nova.compute import task_states
from nova import exception
from nova import objects
from nova.network import model as network_model
from oslo_config import cfg

from novadocker import client as engine_client
from novadocker.virt.docker import conf as docker_conf
from novadocker.virt.docker import snapshot
from novadocker.virt.docker import vifs

objects.register_all()

NET_ID = '3cb9bc59-5699-4588-a4b1-b87f96708bc6'
PORT_ID = 'ce531f90-199f-48c0-816c-13e38010b442'
UUID = '11111111-2222-3333-4444-555555555555'


def nova_vif(vif_type='bridge', bridge='brq3cb9bc59-56', mtu=1450, v4=True, dns=True):
    subnets = []
    if v4:
        subnets.append(network_model.Subnet(
            cidr='192.168.1.0/24', gateway=network_model.IP(address='192.168.1.1'),
            dns=[network_model.IP(address='192.168.1.53')] if dns else [],
            ips=[network_model.FixedIP(address='192.168.1.3'),
                 network_model.FixedIP(address='192.168.1.4')]))
    subnets.append(network_model.Subnet(
        cidr='fd37:44e8:ad06::/64', dns=[network_model.IP(address='fd37:44e8:ad06::53')],
        ips=[network_model.FixedIP(address='fd37:44e8:ad06::3', version=6)]))
    network = network_model.Network(id=NET_ID, bridge=bridge, subnets=subnets, mtu=mtu)
    return network_model.VIF(id=PORT_ID, address='FA:16:3E:4C:2C:30', network=network,
                             type=vif_type, devname='tapce531f90-19', ovs_interfaceid=PORT_ID)


def instance():
    return objects.Instance(uuid=UUID)


@ddt.ddt
class BridgeVIFDriverTest(unittest.TestCase):
    def setUp(self):
        self.client = mock.Mock(spec=engine_client.EngineClient)
        self.client.get.return_value = {'Options': {'bridge': 'brq3cb9bc59-56'}}
        self.client.inspect_container.return_value = {'NetworkSettings': {'Networks': {}}}
        self.driver = vifs.BridgeVIFDriver(self.client)

    def test_endpoint_from_the_port(self):
        ep = self.driver.endpoint(instance(), nova_vif())
        self.assertEqual({
            'IPAMConfig': {'IPv4Address': '192.168.1.3'}, 'MacAddress': 'fa:16:3e:4c:2c:30',
            'DriverOpts': {'prefixlen': '24', 'gateway': '192.168.1.1', 'mtu': '1450',
                           'dns': '192.168.1.53,fd37:44e8:ad06::53',
                           'host_ifname': 'tapce531f90-19'}}, ep)

    def test_takes_the_engine_wrapper_or_the_client(self):
        wrapper = mock.Mock(client=self.client)
        self.assertIs(self.client, vifs.BridgeVIFDriver(wrapper).client)

    def test_network_mode_and_config_for_create(self):
        self.assertEqual('none', self.driver.network_mode([]))
        self.assertIsNone(self.driver.networking_config(instance(), []))
        self.assertEqual('nova-' + NET_ID, self.driver.network_mode([nova_vif()]))
        cfg_ = self.driver.networking_config(instance(), [nova_vif()])
        self.assertEqual(['nova-' + NET_ID], list(cfg_['EndpointsConfig']))

    def test_network_made_on_first_use(self):
        self.client.get.side_effect = engine_client.EngineNotFound('x', 404)
        self.driver.ensure_network(nova_vif())
        self.client.post.assert_called_once_with('/networks/create', json_body={
            'Name': 'nova-' + NET_ID, 'Driver': 'external',
            'Options': {'bridge': 'brq3cb9bc59-56', 'create_bridge': 'true', 'mtu': '1450'},
            'Labels': {vifs.LABEL_NETWORK_ID: NET_ID, vifs.LABEL_VIF_DRIVER: 'bridge'}})

    def test_network_on_another_bridge_is_an_error(self):
        self.client.get.return_value = {'Options': {'bridge': 'other'}}
        with self.assertRaises(exception.VirtualInterfacePlugException):
            self.driver.ensure_network(nova_vif())

    @ddt.data({'v4': False}, {'bridge': None})
    def test_unusable_ports_are_refused(self, kw):
        with self.assertRaises(exception.VirtualInterfacePlugException):
            self.driver.plug(instance(), nova_vif(**kw), 'cid')
        self.client.post.assert_not_called()

    def test_plug_connects_a_running_container(self):
        self.driver.plug(instance(), nova_vif(), 'cid')
        self.client.post.assert_called_once_with(
            '/networks/nova-%s/connect' % NET_ID,
            json_body={'Container': 'cid',
                       'EndpointConfig': self.driver.endpoint(instance(), nova_vif())})

    @ddt.data({'MacAddress': 'fa:16:3e:4c:2c:30'},
              {'MacAddress': '', 'IPAMConfig': {'IPv4Address': '192.168.1.3'}})
    def test_plug_of_a_port_already_there_does_nothing(self, current):
        self.client.inspect_container.return_value = {
            'NetworkSettings': {'Networks': {'nova-' + NET_ID: current}}}
        self.driver.plug(instance(), nova_vif(), 'cid')
        self.client.post.assert_not_called()

    def test_second_port_on_the_same_network_is_refused(self):
        self.client.inspect_container.return_value = {'NetworkSettings': {'Networks': {
            'nova-' + NET_ID: {'MacAddress': 'fa:16:3e:00:00:01'}}}}
        with self.assertRaises(exception.VirtualInterfacePlugException) as ctx:
            self.driver.plug(instance(), nova_vif(), 'cid')
        self.assertIn('one port per network', str(ctx.exception))

    def test_plug_retries_once_when_the_network_vanished(self):
        self.client.post.side_effect = [
            engine_client.EngineNotFound('POST x: network nova-x not found', 404,
                                         'network nova-x not found'), None]
        self.driver.plug(instance(), nova_vif(), 'cid')
        self.assertEqual(2, self.client.post.call_count)

    @ddt.data(
        (engine_client.EngineNotFound('x', 404, 'No such container: cid'),
         exception.InstanceNotFound),
        (engine_client.EngineUnavailable('the engine at x is unreachable'),
         exception.HypervisorUnavailable),
        (engine_client.EngineBadRequest('x', 400, 'invalid MTU'),
         exception.VirtualInterfacePlugException))
    @ddt.unpack
    def test_plug_errors(self, error, nova_error):
        self.client.post.side_effect = error
        with self.assertRaises(nova_error):
            self.driver.plug(instance(), nova_vif(), 'cid')

    @ddt.data(engine_client.EngineNotFound('x', 404),
              engine_client.EngineClientError('x', 500, 'container c is not connected to '
                                                        'network n'))
    def test_unplug_is_idempotent(self, error):
        self.client.post.side_effect = error
        self.driver.unplug(instance(), nova_vif(), 'cid')

    def test_unplug_of_the_last_port_removes_the_network(self):
        self.client.containers.return_value = []
        self.driver.unplug(instance(), nova_vif(), 'cid')
        self.client.post.assert_called_once_with(
            '/networks/nova-%s/disconnect' % NET_ID, json_body={'Container': 'cid',
                                                                'Force': True})
        self.client.delete.assert_called_once_with('/networks/nova-' + NET_ID)

    def test_cleanup_removes_only_unused_networks(self):
        self.client.containers.return_value = [{'Id': 'other'}]
        self.driver.cleanup(instance(), [nova_vif()])
        self.client.containers.assert_called_once_with(
            all=True, filters={'network': ['nova-' + NET_ID]})
        self.client.delete.assert_not_called()
        self.client.containers.return_value = []
        self.driver.cleanup(instance(), [nova_vif()])
        self.client.delete.assert_called_once_with('/networks/nova-' + NET_ID)

    def test_network_kept_for_an_instance_being_spawned(self):
        other = objects.Instance(uuid='99999999-2222-3333-4444-555555555555')
        self.client.containers.return_value = []
        self.driver.networking_config(other, [nova_vif()])  # other's create is coming
        self.driver.cleanup(instance(), [nova_vif()])
        self.client.delete.assert_not_called()
        self.driver.plug(other, nova_vif(), 'cid')          # other is a user now
        self.driver.cleanup(instance(), [nova_vif()])
        self.client.delete.assert_called_once_with('/networks/nova-' + NET_ID)
        self.assertEqual({}, vifs._pending)

    def test_failed_spawn_cleanup_releases_its_claim(self):
        self.client.containers.return_value = []
        self.driver.networking_config(instance(), [nova_vif()])
        self.driver.cleanup(instance(), [nova_vif()])
        self.client.delete.assert_called_once_with('/networks/nova-' + NET_ID)
        self.assertEqual({}, vifs._pending)

    @ddt.data(403, 404, 409)
    def test_cleanup_races_are_fine(self, status):
        self.client.containers.return_value = []
        cls = {404: engine_client.EngineNotFound,
               409: engine_client.EngineConflict}.get(status, engine_client.EngineClientError)
        self.client.delete.side_effect = cls('x', status)
        self.driver.cleanup(instance(), [nova_vif()])


class OvsVIFDriverTest(unittest.TestCase):
    def test_ovs_network_and_endpoint_options(self):
        client = mock.Mock(spec=engine_client.EngineClient)
        client.get.side_effect = engine_client.EngineNotFound('x', 404)
        driver = vifs.OvsVIFDriver(client)
        vif = nova_vif('ovs', bridge='br-int')
        driver.ensure_network(vif)
        body = client.post.call_args[1]['json_body']
        self.assertEqual({'ovs_bridge': 'br-int', 'mtu': '1450'}, body['Options'])
        opts = driver.endpoint(instance(), vif)['DriverOpts']
        self.assertEqual((PORT_ID, UUID, 'tapce531f90-19'),
                         (opts['iface_id'], opts['vm_uuid'], opts['host_ifname']))


    def test_hybrid_plug_is_refused(self):
        client = mock.Mock(spec=engine_client.EngineClient)
        vif = nova_vif('ovs', bridge='br-int')
        vif['details'] = {'ovs_hybrid_plug': True, 'port_filter': True}
        with self.assertRaises(exception.VirtualInterfacePlugException) as ctx:
            vifs.OvsVIFDriver(client).network_mode([vif])
        self.assertIn('iptables_hybrid', str(ctx.exception))
        client.post.assert_not_called()


class NoopVIFDriverTest(unittest.TestCase):
    def test_no_network(self):
        client = mock.Mock()
        driver = vifs.NoopVIFDriver(client)
        self.assertEqual('none', driver.network_mode([nova_vif()]))
        self.assertIsNone(driver.networking_config(instance(), [nova_vif()]))
        driver.plug(instance(), nova_vif(), 'cid')
        driver.unplug(instance(), nova_vif(), 'cid')
        driver.cleanup(instance(), [nova_vif()])
        self.assertEqual([], client.mock_calls)


def make_conf(**docker):
    conf = cfg.ConfigOpts()
    # A group object of its own: oslo.config keeps overrides in the group.
    conf.register_opts(docker_conf.ALL, group='docker')
    conf([], project='novadocker-test')
    for k, v in docker.items():
        conf.set_override(k, v, group='docker')
    return conf


PUSH_OK = [{'status': 'The push refers to repository [r/nova/img]'},
           {'status': 'latest: digest: sha256:%s size: 527' % ('d' * 64)},
           {'aux': {'Tag': 'latest', 'Digest': 'sha256:' + 'd' * 64, 'Size': 527}}]


@ddt.ddt
class RegistrySnapshotStoreTest(unittest.TestCase):
    def setUp(self):
        self.client = mock.Mock(spec=engine_client.EngineClient)
        self.client.inspect_container.return_value = {
            'Id': 'cid', 'Config': {'Labels': {'org.openstack.nova.instance-uuid': UUID,
                                               'app': 'web'}}}
        self.client.post.return_value = {'Id': 'sha256:' + 'a' * 64}
        self.client.stream_json.return_value = PUSH_OK
        self.glance = mock.Mock()
        self.calls = mock.Mock()   # one timeline of task states and engine calls
        self.calls.attach_mock(self.client, 'client')
        self.calls.attach_mock(self.glance, 'glance')
        self.conf = make_conf(registry_url='https://reg.example.com:5000/')
        self.store = snapshot.RegistrySnapshotStore(self.client, self.conf,
                                                    image_api=self.glance)

    def update_task_state(self, task_state, expected_state=task_states.IMAGE_SNAPSHOT):
        self.calls.update_task_state(task_state, expected_state)

    def names(self):
        return [c[0] for c in self.calls.mock_calls]

    def test_protocol_order_and_bodies(self):
        self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        # After the push, the local tag goes while Glance is told.
        self.assertEqual(['update_task_state', 'client.inspect_container', 'client.post',
                          'update_task_state', 'client.stream_json'], self.names()[:5])
        self.assertEqual({'glance.update', 'client.delete'}, set(self.names()[5:]))
        self.assertEqual(7, len(self.names()))
        states = [c[1] for c in self.calls.mock_calls if c[0] == 'update_task_state']
        self.assertEqual([(task_states.IMAGE_PENDING_UPLOAD, task_states.IMAGE_SNAPSHOT),
                          (task_states.IMAGE_UPLOADING, task_states.IMAGE_PENDING_UPLOAD)],
                         states)
        path, = self.client.post.call_args[0]
        kw = self.client.post.call_args[1]
        self.assertEqual('/commit', path)
        self.assertEqual({'container': 'cid', 'repo': 'reg.example.com:5000/nova/img',
                          'tag': 'latest', 'pause': True,
                          'comment': 'snapshot of instance %s' % UUID}, kw['params'])
        self.assertEqual({'Labels': {'app': 'web'}}, kw['json_body'])
        method, push_path = self.client.stream_json.call_args[0]
        self.assertEqual(('POST', '/images/reg.example.com%3A5000%2Fnova%2Fimg/push'),
                         (method, push_path))
        ref = 'reg.example.com:5000/nova/img@sha256:' + 'd' * 64
        props = {snapshot.PROP_REF: ref, snapshot.PROP_ID: 'sha256:' + 'a' * 64}
        self.glance.update.assert_called_once_with(
            'ctx', 'img', {'container_format': 'docker', 'disk_format': 'raw',
                           'properties': props}, data=mock.ANY, purge_props=False)
        data = self.glance.update.call_args[1]['data']
        self.assertEqual(json.dumps(props, sort_keys=True).encode(), data.read())
        self.client.delete.assert_called_once_with(
            '/images/reg.example.com%3A5000%2Fnova%2Fimg%3Alatest')

    def test_inspected_container_is_not_inspected_again(self):
        found = self.client.inspect_container.return_value
        self.store.snapshot('ctx', instance(), found, 'img', self.update_task_state)
        self.assertEqual(['update_task_state', 'client.post', 'update_task_state',
                          'client.stream_json'], self.names()[:4])
        self.assertEqual({'glance.update', 'client.delete'}, set(self.names()[4:]))

    def test_glance_failure_after_the_push_untags_once(self):
        self.glance.update.side_effect = exception.ImageNotFound(image_id='img')
        with self.assertRaises(exception.ImageNotFound):
            self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        self.client.delete.assert_called_once_with(
            '/images/reg.example.com%3A5000%2Fnova%2Fimg%3Alatest')

    def test_container_gone_before_the_commit_is_instance_not_found(self):
        found = self.client.inspect_container.return_value
        self.client.post.side_effect = engine_client.EngineNotFound(
            'No such container: cid', 404)
        with self.assertRaises(exception.InstanceNotFound):
            self.store.snapshot('ctx', instance(), found, 'img', self.update_task_state)
        self.glance.update.assert_not_called()
        self.client.delete.assert_not_called()

    @ddt.data(({}, {}),
              ({'registry_username': 'u', 'registry_password': 'p'},
               {'username': 'u', 'password': 'p', 'serveraddress': 'reg:5000'}))
    @ddt.unpack
    def test_registry_auth_header(self, opts, doc):
        store = snapshot.RegistrySnapshotStore(
            self.client, make_conf(registry_url='reg:5000', **opts), image_api=self.glance)
        store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        header = self.client.stream_json.call_args[1]['headers']['X-Registry-Auth']
        self.assertEqual(doc, json.loads(base64.urlsafe_b64decode(header)))

    def test_namespace_empty(self):
        store = snapshot.RegistrySnapshotStore(
            self.client, make_conf(registry_url='reg', registry_namespace=''),
            image_api=self.glance)
        self.assertEqual('reg/img', store.repository('img'))

    def test_digest_from_the_status_line_when_no_aux(self):
        self.client.stream_json.return_value = PUSH_OK[:2]
        self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        props = self.glance.update.call_args[0][2]['properties']
        self.assertTrue(props[snapshot.PROP_REF].endswith('@sha256:' + 'd' * 64))

    def test_no_digest_is_an_error(self):
        self.client.stream_json.return_value = PUSH_OK[:1]
        with self.assertRaises(snapshot.SnapshotFailed):
            self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        self.glance.update.assert_not_called()
        self.client.delete.assert_called_once()

    def test_no_registry_url_fails_before_anything(self):
        store = snapshot.RegistrySnapshotStore(self.client, make_conf(), image_api=self.glance)
        with self.assertRaises(snapshot.SnapshotFailed) as ctx:
            store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        self.assertIn('registry_url', str(ctx.exception))
        self.assertEqual([], self.calls.mock_calls)

    @ddt.data(
        (engine_client.StreamError('connection refused', 200), snapshot.SnapshotFailed),
        (engine_client.EngineClientError('x', 500, 'boom'), snapshot.SnapshotFailed),
        (engine_client.EngineUnavailable('engine gone'), exception.HypervisorUnavailable))
    @ddt.unpack
    def test_push_errors_name_the_registry_and_untag(self, error, nova_error):
        self.client.stream_json.side_effect = error
        with self.assertRaises(nova_error) as ctx:
            self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        if nova_error is snapshot.SnapshotFailed:
            self.assertIn('reg.example.com:5000', str(ctx.exception))
        self.glance.update.assert_not_called()
        self.client.delete.assert_called_once()

    @ddt.data('inspect_container', 'post')
    def test_container_gone_is_instance_not_found_and_nothing_to_untag(self, call):
        getattr(self.client, call).side_effect = engine_client.EngineNotFound(
            'x', 404, 'No such container: cid')
        with self.assertRaises(exception.InstanceNotFound):
            self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        self.client.delete.assert_not_called()
        self.client.stream_json.assert_not_called()

    def test_deleted_while_snapshotting_untags_and_does_not_push(self):
        def update(task_state, expected_state=task_states.IMAGE_SNAPSHOT):
            if task_state == task_states.IMAGE_UPLOADING:
                raise exception.UnexpectedDeletingTaskStateError(
                    instance_uuid=UUID, expected=expected_state, actual='deleting')
        with self.assertRaises(exception.UnexpectedDeletingTaskStateError):
            self.store.snapshot('ctx', instance(), 'cid', 'img', update)
        self.client.stream_json.assert_not_called()
        self.client.delete.assert_called_once()

    def test_glance_error_still_untags(self):
        self.glance.update.side_effect = exception.ImageNotFound(image_id='img')
        with self.assertRaises(exception.ImageNotFound):
            self.store.snapshot('ctx', instance(), 'cid', 'img', self.update_task_state)
        self.client.delete.assert_called_once()


class GlanceSnapshotStoreTest(unittest.TestCase):
    def test_archive_uploaded_reference_emptied_and_untagged(self):
        client = mock.Mock(spec=engine_client.EngineClient)
        client.inspect_container.return_value = {'Id': 'cid', 'Config': {}}
        client.post.return_value = {'Id': 'sha256:' + 'b' * 64}
        resp = mock.Mock()
        resp.iter_content.return_value = iter([b'tar', b'ball'])  # spooled, then uploaded
        client.request.return_value = resp
        uploaded = {}

        def update(ctx, image_id, metadata, data=None, purge_props=False):
            uploaded['metadata'] = metadata
            uploaded['data'] = b''.join(iter(lambda: data.read(3), b''))
        glance = mock.Mock()
        glance.update.side_effect = update
        states = []
        store = snapshot.GlanceSnapshotStore(client, make_conf(), image_api=glance)
        store.snapshot('ctx', instance(), 'cid', 'img',
                       lambda task_state, expected_state=None: states.append(task_state))
        self.assertEqual([task_states.IMAGE_PENDING_UPLOAD, task_states.IMAGE_UPLOADING],
                         states)
        self.assertEqual(b'tarball', uploaded['data'])
        self.assertEqual({snapshot.PROP_REF: '', snapshot.PROP_ID: 'sha256:' + 'b' * 64},
                         uploaded['metadata']['properties'])
        client.request.assert_called_once_with(
            'GET', '/images/novadocker-snapshot%2Fimg%3Alatest/get', stream=True)
        resp.close.assert_called_once()
        client.delete.assert_called_once_with('/images/novadocker-snapshot%2Fimg%3Alatest')
