"""Stacks through real Heat (EngineService, convergence) on a real engine.

Every check reads the effect back from the engine: the networks Heat made
are looked up by the stack-id label the plugin sets, and by name.
"""

import uuid

from heat_plugin import network
from tests.integration.heat import realengine
from tests.integration.heat import stackharness

NET = 'DockerInc::Docker::Network'


def net_template(subnet=None, gateway=None, name=None, internal=False,
                 labels=None):
    props = {'internal': internal}
    for key, value in (('subnet', subnet), ('gateway', gateway),
                       ('name', name), ('labels', labels)):
        if value is not None:
            props[key] = value
    return {
        'heat_template_version': '2021-04-16',
        'resources': {'net': {'type': NET, 'properties': props}},
        'outputs': {
            'id': {'value': {'get_attr': ['net', 'id']}},
            'subnet': {'value': {'get_attr': ['net', 'subnet']}},
            'gateway': {'value': {'get_attr': ['net', 'gateway']}},
            'ref': {'value': {'get_resource': 'net'}},
        },
    }


class TestNetworkStacks(stackharness.RealEngineStackTestCase):

    def stack_networks(self, db_stack):
        return realengine.networks(
            self.engine, '%s=%s' % (network.LABEL_STACK_ID, db_stack.id))

    def inspect(self, ref):
        status, info = self.engine.api_json('GET', '/networks/%s' % ref)
        return status, info

    def test_create_read_back_and_delete(self):
        name = 'hnet-%s' % uuid.uuid4().hex[:8]
        db_stack = self.create_stack('netstack', net_template(
            subnet='10.231.7.0/24', gateway='10.231.7.254', name=name,
            internal=True, labels={'tier': 'backend'}))
        self.assertState(('CREATE', 'COMPLETE'), db_stack)

        status, info = self.inspect(name)
        self.assertEqual(200, status, info)
        self.assertEqual('bridge', info['Driver'])
        self.assertTrue(info['Internal'])
        self.assertEqual([{'Subnet': '10.231.7.0/24',
                           'Gateway': '10.231.7.254'}],
                         [{k: c.get(k) for k in ('Subnet', 'Gateway')}
                          for c in info['IPAM']['Config']])
        self.assertEqual('backend', info['Labels']['tier'])
        self.assertEqual('net', info['Labels'][network.LABEL_RESOURCE])

        stk = self.load_stack('netstack')
        res = stk['net']
        self.assertEqual(info['Id'], res.resource_id)
        self.assertEqual(info['Id'], res.FnGetAtt('id'))
        self.assertEqual(name, res.FnGetAtt('name'))
        self.assertEqual('10.231.7.0/24', res.FnGetAtt('subnet'))
        self.assertEqual('10.231.7.254', res.FnGetAtt('gateway'))
        self.assertEqual(info['Id'], res.FnGetRefId())

        self.assertIsNone(self.delete_stack('netstack'))
        status, _ = self.inspect(name)
        self.assertEqual(404, status)
        self.assertEqual([], self.stack_networks(db_stack))

    def test_defaults_engine_chooses_subnet(self):
        db_stack = self.create_stack('netdefault', net_template())
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        [info] = self.stack_networks(db_stack)
        # The default name is Heat's physical resource name.
        self.assertTrue(info['Name'].startswith('netdefault-net-'),
                        info['Name'])
        self.assertFalse(info['Internal'])
        res = self.load_stack('netdefault')['net']
        subnet = info['IPAM']['Config'][0]['Subnet']
        self.assertTrue(subnet)
        self.assertEqual(subnet, res.FnGetAtt('subnet'))
        self.assertEqual(info['IPAM']['Config'][0]['Gateway'],
                         res.FnGetAtt('gateway'))
        self.assertIsNone(self.delete_stack('netdefault'))
        self.assertEqual([], self.stack_networks(db_stack))

    def test_update_replaces_network(self):
        db_stack = self.create_stack('netupd', net_template(
            subnet='10.231.8.0/24'))
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        [old] = self.stack_networks(db_stack)

        db_stack = self.update_stack('netupd', net_template(
            subnet='10.231.9.0/24', labels={'v': '2'}))
        self.assertState(('UPDATE', 'COMPLETE'), db_stack)
        [new] = self.stack_networks(db_stack)
        self.assertNotEqual(old['Id'], new['Id'])
        self.assertEqual('10.231.9.0/24', new['IPAM']['Config'][0]['Subnet'])
        self.assertEqual('2', new['Labels']['v'])
        self.assertEqual(404, self.inspect(old['Id'])[0])
        res = self.load_stack('netupd')['net']
        self.assertEqual(new['Id'], res.resource_id)
        self.assertEqual('10.231.9.0/24', res.FnGetAtt('subnet'))

    def test_engine_refusal_fails_readably_and_leaves_nothing(self):
        # Two networks on overlapping subnets: the engine refuses the
        # second; the stack fails naming the reason, and deleting the
        # failed stack removes the first one too.
        tmpl = net_template(subnet='10.231.10.0/24')
        tmpl['resources']['net2'] = {
            'type': NET, 'depends_on': 'net',
            'properties': {'subnet': '10.231.10.128/25'}}
        db_stack = self.create_stack('netbroken', tmpl)
        self.assertState(('CREATE', 'FAILED'), db_stack)
        self.assertIn('could not create network netbroken-net2-',
                      db_stack.status_reason)
        self.assertIn('10.231.10', db_stack.status_reason)
        self.assertEqual(1, len(self.stack_networks(db_stack)))
        self.assertIsNone(self.delete_stack('netbroken'))
        self.assertEqual([], self.stack_networks(db_stack))

    def test_name_taken_fails_readably(self):
        name = 'taken-%s' % uuid.uuid4().hex[:8]
        self.engine.api('POST', '/networks/create', {'Name': name},
                        expect=201)
        self.addCleanup(self.engine.api, 'DELETE', '/networks/%s' % name)
        db_stack = self.create_stack('nettaken', net_template(name=name))
        self.assertState(('CREATE', 'FAILED'), db_stack)
        self.assertIn('network with name %s already exists' % name,
                      db_stack.status_reason)
        self.assertIsNone(self.delete_stack('nettaken'))
        # The engine's own network, not Heat's, is untouched.
        self.assertEqual(200, self.inspect(name)[0])
        self.assertEqual([], self.stack_networks(db_stack))
