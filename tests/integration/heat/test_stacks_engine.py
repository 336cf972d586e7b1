"""Stacks through real Heat (EngineService, convergence) on a real engine.

Every check reads the effect back from the engine: the networks Heat made
are looked up by the stack-id label the plugin sets, and by name.
"""

import os
import random
import urllib.request
import uuid

from heat.common import template_format

from heat_plugin import network
from tests import registries
from tests.integration.heat import base
from tests.integration.heat import realengine
from tests.integration.heat import stackharness

NET = 'DockerInc::Docker::Network'
TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'etc', 'heat', 'templates')


def example(name):
    """An example template from etc/heat/templates, parsed as heat does."""
    with open(os.path.join(TEMPLATES, name)) as f:
        return template_format.parse(f.read())


# The /16 the tests' subnets come from, random per run: several engines on
# this host (other test runs) must not be asked for the same range.
P = '10.%d' % random.randint(200, 250)


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
            subnet=P + '.7.0/24', gateway=P + '.7.254', name=name,
            internal=True, labels={'tier': 'backend'}))
        self.assertState(('CREATE', 'COMPLETE'), db_stack)

        status, info = self.inspect(name)
        self.assertEqual(200, status, info)
        self.assertEqual('bridge', info['Driver'])
        self.assertTrue(info['Internal'])
        self.assertEqual([{'Subnet': P + '.7.0/24',
                           'Gateway': P + '.7.254'}],
                         [{k: c.get(k) for k in ('Subnet', 'Gateway')}
                          for c in info['IPAM']['Config']])
        self.assertEqual('backend', info['Labels']['tier'])
        self.assertEqual('net', info['Labels'][network.LABEL_RESOURCE])

        stk = self.load_stack('netstack')
        res = stk['net']
        self.assertEqual(info['Id'], res.resource_id)
        self.assertEqual(info['Id'], res.FnGetAtt('id'))
        self.assertEqual(name, res.FnGetAtt('name'))
        self.assertEqual(P + '.7.0/24', res.FnGetAtt('subnet'))
        self.assertEqual(P + '.7.254', res.FnGetAtt('gateway'))
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
            subnet=P + '.8.0/24'))
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        [old] = self.stack_networks(db_stack)

        db_stack = self.update_stack('netupd', net_template(
            subnet=P + '.9.0/24', labels={'v': '2'}))
        self.assertState(('UPDATE', 'COMPLETE'), db_stack)
        [new] = self.stack_networks(db_stack)
        self.assertNotEqual(old['Id'], new['Id'])
        self.assertEqual(P + '.9.0/24', new['IPAM']['Config'][0]['Subnet'])
        self.assertEqual('2', new['Labels']['v'])
        self.assertEqual(404, self.inspect(old['Id'])[0])
        res = self.load_stack('netupd')['net']
        self.assertEqual(new['Id'], res.resource_id)
        self.assertEqual(P + '.9.0/24', res.FnGetAtt('subnet'))

    def test_replacing_a_named_network_needs_a_new_name(self):
        name = 'fixed-%s' % uuid.uuid4().hex[:8]
        db_stack = self.create_stack('netfixed', net_template(
            name=name, subnet=P + '.11.0/24'))
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        [old] = self.stack_networks(db_stack)
        db_stack = self.update_stack('netfixed', net_template(
            name=name, subnet=P + '.12.0/24'))
        self.assertState(('UPDATE', 'FAILED'), db_stack)
        self.assertIn('the network this update replaces still holds the '
                      'name: give the new one another name',
                      db_stack.status_reason)
        # The old network is untouched; a new name then goes through.
        self.assertEqual(P + '.11.0/24',
                         self.inspect(name)[1]['IPAM']['Config'][0]['Subnet'])
        db_stack = self.update_stack('netfixed', net_template(
            name=name + '-2', subnet=P + '.12.0/24'))
        self.assertState(('UPDATE', 'COMPLETE'), db_stack)
        [new] = self.stack_networks(db_stack)
        self.assertEqual(name + '-2', new['Name'])
        self.assertEqual(404, self.inspect(old['Id'])[0])

    def test_engine_refusal_fails_readably_and_leaves_nothing(self):
        # Two networks on overlapping subnets: the engine refuses the
        # second; the stack fails naming the reason, and deleting the
        # failed stack removes the first one too.
        tmpl = net_template(subnet=P + '.10.0/24')
        tmpl['resources']['net2'] = {
            'type': NET, 'depends_on': 'net',
            'properties': {'subnet': P + '.10.128/25'}}
        db_stack = self.create_stack('netbroken', tmpl)
        self.assertState(('CREATE', 'FAILED'), db_stack)
        self.assertIn('could not create network netbroken-net2-',
                      db_stack.status_reason)
        self.assertIn(P + '.10', db_stack.status_reason)
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


class TestExampleTemplates(stackharness.RealEngineStackTestCase):
    """etc/heat/templates, each run through Heat on the real engine."""

    def stack_containers(self, stack_name):
        """The engine's containers Heat made for ``stack_name`` (their names
        are Heat's physical names, ``<stack>-<resource>-<suffix>``)."""
        return [c for c in realengine.containers(self.engine)
                if any(n.startswith('/%s-' % stack_name) for n in c['Names'])]

    def inspect(self, container_id):
        status, info = self.engine.api_json(
            'GET', '/containers/%s/json' % container_id)
        self.assertEqual(200, status, info)
        return info

    def test_web_linked(self):
        port = registries.free_port()
        db_stack = self.create_stack('web', example('web-linked.yaml'),
                                     params={'web_port': port})
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        stk = self.load_stack('web')
        web = self.inspect(stk['web'].resource_id)
        backend = self.inspect(stk['backend'].resource_id)
        self.assertTrue(web['State']['Running'])
        self.assertTrue(backend['State']['Running'])

        # The published port answers on 127.0.0.1 with the page the web
        # container fetched from the backend through the link.
        self.assertEqual('web in front of: hello from the backend\n',
                         base.http_get('http://127.0.0.1:%d/' % port))
        # Attributes are the engine's own values.
        self.assertEqual(web['NetworkSettings']['IPAddress'],
                         stk['web'].FnGetAtt('network_ip'))
        self.assertEqual(backend['NetworkSettings']['IPAddress'],
                         stk['backend'].FnGetAtt('network_ip'))
        self.assertTrue(stk['web'].FnGetAtt('network_ip'))
        self.assertEqual(str(port), stk['web'].FnGetAtt('network_tcp_ports'))
        self.assertEqual('http://127.0.0.1:%d/' % port, self.outputs('web')['url'])
        self.assertIn('web up, backend says: hello from the backend',
                      stk['web'].FnGetAtt('logs'))
        self.assertEqual(2, len(self.stack_containers('web')))

        # Suspend pauses both containers; the page does not answer.
        self.assertState(('SUSPEND', 'COMPLETE'), self.suspend_stack('web'))
        for res in ('web', 'backend'):
            state = self.inspect(stk[res].resource_id)['State']
            self.assertTrue(state['Paused'], (res, state))
        self.assertRaises(OSError, urllib.request.urlopen,
                          'http://127.0.0.1:%d/' % port, timeout=1)
        self.assertState(('RESUME', 'COMPLETE'), self.resume_stack('web'))
        for res in ('web', 'backend'):
            state = self.inspect(stk[res].resource_id)['State']
            self.assertFalse(state['Paused'], (res, state))
            self.assertTrue(state['Running'], (res, state))
        self.assertIn('hello from the backend',
                      base.http_get('http://127.0.0.1:%d/' % port))

        # In place: memory changes on the running web container.
        db_stack = self.update_stack('web', example('web-linked.yaml'),
                                     params={'web_port': port,
                                             'web_memory': 96 * 1024 * 1024})
        self.assertState(('UPDATE', 'COMPLETE'), db_stack)
        stk = self.load_stack('web')
        self.assertEqual(web['Id'], stk['web'].resource_id)
        after = self.inspect(web['Id'])
        self.assertEqual(96 * 1024 * 1024, after['HostConfig']['Memory'])
        self.assertEqual(web['State']['StartedAt'],
                         after['State']['StartedAt'])

        # By replacement: a new message makes a new backend, and the web
        # container (linked to the backend's id) is replaced with it, on
        # the same host port (the old one frees it before Heat creates the
        # replacement).
        db_stack = self.update_stack('web', example('web-linked.yaml'),
                                     params={'web_port': port,
                                             'web_memory': 96 * 1024 * 1024,
                                             'message': 'second edition'})
        self.assertState(('UPDATE', 'COMPLETE'), db_stack)
        stk = self.load_stack('web')
        self.assertNotEqual(backend['Id'], stk['backend'].resource_id)
        self.assertNotEqual(web['Id'], stk['web'].resource_id)
        self.assertEqual('web in front of: second edition\n',
                         base.http_get('http://127.0.0.1:%d/' % port))
        self.assertEqual(404, self.engine.api_json(
            'GET', '/containers/%s/json' % web['Id'])[0])
        ids = {c['Id'] for c in self.stack_containers('web')}
        self.assertEqual({stk['backend'].resource_id, stk['web'].resource_id},
                         ids)

        self.assertIsNone(self.delete_stack('web'))
        self.assertEqual([], self.stack_containers('web'))
        self.assertRaises(OSError, urllib.request.urlopen,
                          'http://127.0.0.1:%d/' % port, timeout=1)

    def test_app_network(self):
        port = registries.free_port()
        db_stack = self.create_stack('appnet', example('app-network.yaml'),
                                     params={'app_port': port,
                                             'subnet': P + '.20.0/24'})
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        stk = self.load_stack('appnet')
        net_id = stk['net'].resource_id
        status, net = self.engine.api_json('GET', '/networks/%s' % net_id)
        self.assertEqual(200, status, net)
        self.assertEqual(P + '.20.0/24', net['IPAM']['Config'][0]['Subnet'])
        self.assertEqual(P + '.20.0/24', self.outputs('appnet')['subnet'])
        # Both containers are on it, with the addresses Heat reports.
        for res in ('db', 'app'):
            info = self.inspect(stk[res].resource_id)
            endpoint = info['NetworkSettings']['Networks'][net['Name']]
            self.assertTrue(endpoint['IPAddress'].startswith(P + '.20.'),
                            endpoint)
            self.assertEqual(endpoint['IPAddress'],
                             stk[res].FnGetAtt('network_ip'))
        # app found db by its alias on the network and serves what it read.
        self.assertEqual('app read: record from db\n',
                         base.http_get('http://127.0.0.1:%d/' % port))
        self.assertIn('app up, db says: record from db', self.outputs('appnet')['app_logs'])

        self.assertIsNone(self.delete_stack('appnet'))
        self.assertEqual([], self.stack_containers('appnet'))
        self.assertEqual(404, self.engine.api_json(
            'GET', '/networks/%s' % net_id)[0])

    def test_broken_template_fails_readably_and_leaves_nothing(self):
        # The web container's image cannot be pulled (nothing listens on
        # 127.0.0.1:9): the stack fails naming the image and the engine's
        # reason; deleting it removes the backend Heat made first.
        tmpl = example('web-linked.yaml')
        tmpl['resources']['web']['properties']['image'] = \
            '127.0.0.1:9/missing/web:1.0'
        db_stack = self.create_stack('broken', tmpl,
                                     params={'web_port': registries.free_port()})
        self.assertState(('CREATE', 'FAILED'), db_stack)
        self.assertIn('resources.web: could not pull image '
                      '127.0.0.1:9/missing/web:1.0', db_stack.status_reason)
        self.assertEqual(1, len(self.stack_containers('broken')))
        self.assertIsNone(self.delete_stack('broken'))
        self.assertEqual([], self.stack_containers('broken'))


class TestImageStacks(stackharness.RealEngineStackTestCase):

    def test_built_image_runs_and_goes_with_the_stack(self):
        port = registries.free_port()
        db_stack = self.create_stack('imgstack', example('built-image.yaml'),
                                     params={'port': port})
        self.assertState(('CREATE', 'COMPLETE'), db_stack)
        stk = self.load_stack('imgstack')
        ref = stk['site_image'].resource_id
        self.assertTrue(ref.startswith('imgstack-site_image-'), ref)
        self.assertTrue(ref.endswith(':latest'), ref)
        status, info = self.engine.api_json('GET', '/images/%s/json' % ref)
        self.assertEqual(200, status, info)
        self.assertEqual(info['Id'], stk['site_image'].FnGetAtt('id'))
        self.assertEqual(info['Size'], stk['site_image'].FnGetAtt('size'))
        status, cinfo = self.engine.api_json(
            'GET', '/containers/%s/json' % stk['site'].resource_id)
        self.assertEqual(info['Id'], cinfo['Image'])
        # The COPY'd file over the published port; the RUN's over the logs.
        self.assertEqual('baked into the image\n',
                         base.http_get('http://127.0.0.1:%d/' % port))
        self.assertEqual('hello from RUN\n', base.http_get(
            'http://127.0.0.1:%d/built.txt' % port))
        self.assertIn('hello from RUN', stk['site'].FnGetAtt('logs'))
        outputs = self.outputs('imgstack')
        self.assertEqual(ref, outputs['image'])
        self.assertEqual(info['Id'], outputs['image_id'])
        self.assertEqual('http://127.0.0.1:%d/' % port, outputs['url'])

        self.assertIsNone(self.delete_stack('imgstack'))
        self.assertEqual(404, self.engine.api_json(
            'GET', '/images/%s/json' % ref)[0])
        self.assertEqual(404, self.engine.api_json(
            'GET', '/containers/%s/json' % cinfo['Id'])[0])
        # busybox, which it was built from, is still there.
        self.assertEqual(200, self.engine.api_json(
            'GET', '/images/busybox:latest/json')[0])

    def test_failing_build_fails_readably_and_leaves_nothing(self):
        tmpl = {
            'heat_template_version': '2021-04-16',
            'resources': {'img': {
                'type': 'DockerInc::Docker::Image',
                'properties': {'name': 'heat-broken-build:1',
                               'dockerfile': 'FROM busybox:latest\n'
                                             'RUN echo no such package >&2; exit 7\n'}}},
        }
        db_stack = self.create_stack('imgbroken', tmpl)
        self.assertState(('CREATE', 'FAILED'), db_stack)
        self.assertIn('could not build image heat-broken-build:1',
                      db_stack.status_reason)
        self.assertIn('7', db_stack.status_reason)
        self.assertIsNone(self.delete_stack('imgbroken'))
        self.assertEqual(404, self.engine.api_json(
            'GET', '/images/heat-broken-build:1/json')[0])
        self.assertEqual([], realengine.containers(self.engine))

    def _create_refused(self, name, tmpl):
        """The error EngineService.create_stack answers with (over RPC it
        travels wrapped in ExpectedException)."""
        from oslo_messaging.rpc import dispatcher
        try:
            self.create_stack(name, tmpl)
        except dispatcher.ExpectedException as exc:
            return exc.exc_info[1]
        self.fail('create_stack accepted %s' % name)

    def test_validation(self):
        tmpl = {'heat_template_version': '2021-04-16',
                'resources': {'img': {'type': 'DockerInc::Docker::Image',
                                      'properties': {}}}}
        err = self._create_refused('imgval', tmpl)
        self.assertIn('give either dockerfile', str(err))
        tmpl['resources']['img']['properties'] = {'pull': 'Bad Ref'}
        err = self._create_refused('imgval2', tmpl)
        self.assertIn("pull 'Bad Ref' is not a valid image reference",
                      str(err))
        self.assertIsNone(self.db_stack('imgval'))
        self.assertIsNone(self.db_stack('imgval2'))


def test_every_example_template_is_exercised_here():
    """A template added under etc/heat/templates without a stack test here
    fails this (each is run through Heat above by its file name)."""
    with open(__file__) as f:
        source = f.read()
    names = sorted(n for n in os.listdir(TEMPLATES) if n.endswith('.yaml'))
    self_check = "example('%s')"
    missing = [n for n in names if self_check % n not in source]
    assert names and not missing, missing
