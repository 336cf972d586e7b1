"""Unit tests of DockerInc::Docker::Network on HeatTestCase: validation
messages and the engine request built from each property combination (the
engine client is a mock here; tests/integration/heat/test_stacks_engine.py
runs the same resource against a real engine)."""

from unittest import mock
import uuid

import ddt

from heat.common import exception
from heat.engine import resources
from heat.tests import utils

from heat_plugin import client as plugin_client
from heat_plugin import network
from tests.integration.heat import base

NET = 'DockerInc::Docker::Network'


def template(**props):
    return {'heat_template_version': '2021-04-16',
            'resources': {'net': {'type': NET, 'properties': props}}}


@ddt.ddt
class TestNetworkUnit(base.HeatTestCase):

    def setUp(self):
        super().setUp()
        resources.global_env().register_class(NET, network.DockerNetwork)

    def net(self, **props):
        stk = utils.parse_stack(template(**props))
        return stk, stk['net']

    @ddt.data(
        ({'subnet': 'not-a-cidr'}, 'not-a-cidr'),
        ({'subnet': 'fd00::/64'}, 'supports IPv4 subnets only'),
        ({'subnet': '10.0.0.0/24', 'gateway': '10.0.1.1'},
         'gateway 10.0.1.1 is not inside the subnet 10.0.0.0/24'),
        ({'subnet': '10.0.0.0/24', 'gateway': 'nope'}, 'nope'),
        ({'name': '-bad'}, "invalid network name '-bad'"),
        ({'name': 'a b'}, "invalid network name 'a b'"),
        ({'name': 'x' * 129}, 'length'),
        ({'driver': 'overlay'}, 'overlay'),
        ({'internal': 'maybe'}, 'maybe'),
    )
    @ddt.unpack
    def test_validation_refuses(self, props, message):
        stk, _ = self.net(**props)
        err = self.assertRaises(exception.StackValidationFailed, stk.validate)
        self.assertIn(message, str(err))

    def test_gateway_without_subnet_names_both(self):
        stk, _ = self.net(gateway='10.0.0.1')
        err = self.assertRaises(exception.ResourcePropertyDependency,
                                stk.validate)
        self.assertIn('gateway', str(err))
        self.assertIn('subnet', str(err))

    @ddt.data(
        ({}, None, False),
        ({'subnet': '10.9.0.0/16'}, {'Subnet': '10.9.0.0/16'}, False),
        ({'subnet': '10.9.0.5/16', 'gateway': '10.9.255.254',
          'internal': True},
         {'Subnet': '10.9.0.0/16', 'Gateway': '10.9.255.254'}, True),
        ({'name': 'web_net.1', 'labels': {'a': 'b'}}, None, False),
    )
    @ddt.unpack
    def test_create_body(self, props, ipam_config, internal):
        stk, res = self.net(**props)
        stk.validate()
        client = mock.Mock()
        client.post.return_value = {'Id': 'n1', 'Warning': ''}
        self.patchobject(plugin_client, 'engine_for', return_value=client)
        res.uuid = str(uuid.uuid4())
        res.id = 1
        res.action = res.CREATE
        self.assertEqual('n1', res.handle_create())
        path = client.post.call_args[0][0]
        body = client.post.call_args[1]['json_body']
        self.assertEqual('/networks/create', path)
        self.assertEqual(props.get('name') or res.physical_resource_name(),
                         body['Name'])
        self.assertEqual('bridge', body['Driver'])
        self.assertEqual(internal, body['Internal'])
        self.assertEqual(stk.id, body['Labels'][network.LABEL_STACK_ID])
        for key, value in (props.get('labels') or {}).items():
            self.assertEqual(value, body['Labels'][key])
        if ipam_config is None:
            self.assertNotIn('IPAM', body)
        else:
            self.assertEqual([ipam_config], body['IPAM']['Config'])

    def test_delete_of_a_gone_network_counts_as_deleted(self):
        from novadocker import client as engine_client
        _, res = self.net()
        res.resource_id = 'gone'
        client = mock.Mock()
        client.delete.side_effect = engine_client.EngineNotFound(
            'no such network', 404)
        self.patchobject(plugin_client, 'engine_for', return_value=client)
        state = res.handle_delete()
        self.assertTrue(res.check_delete_complete(state))

    def test_delete_retries_while_endpoints_leave(self):
        from novadocker import client as engine_client
        _, res = self.net()
        res.resource_id = 'busy'
        client = mock.Mock()
        client.delete.side_effect = [
            engine_client.EngineClientError('has active endpoints', 403),
            None]
        self.patchobject(plugin_client, 'engine_for', return_value=client)
        self.patchobject(network.time, 'sleep')
        state = res.handle_delete()
        self.assertFalse(state[0])
        self.assertTrue(res.check_delete_complete(state))
        self.assertEqual(2, client.delete.call_count)
