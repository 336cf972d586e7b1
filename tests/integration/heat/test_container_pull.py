"""A container whose image the engine lacks: the resource pulls it from a
real registry (Debian's docker-registry on 127.0.0.1, tests/registries),
then creates and starts it; ``docker_endpoint`` picks the engine, whatever
heat.conf says.
"""

from oslo_config import cfg

from heat.engine import resources
from heat.engine import scheduler
from heat.tests import utils

from heat_plugin import container
from tests import daemons
from tests import registries
from tests.integration.heat import base
from tests.integration.heat import realengine

TYPE = 'DockerInc::Docker::Container'
_registry = []


def setUpModule():
    reg = registries.DockerRegistry(daemons.short_tmpdir('nd-heat-reg-'))
    _registry.append(reg)
    reg.start()


def tearDownModule():
    for reg in _registry:
        reg.stop()
        daemons.scrub(reg.base)
    _registry.clear()


class TestPullMissingImage(base.HeatTestCase):

    def setUp(self):
        super().setUp()
        self.eng = realengine.engine()
        resources.global_env().register_class(TYPE, container.DockerContainer)
        # Only docker_endpoint names the engine: the default leads nowhere.
        cfg.CONF.set_override('engine_url', 'unix:///nonexistent/engine.sock',
                              group='novadocker')
        cfg.CONF.set_override('action_retry_limit', 0)
        reg = _registry[0]
        self.ref = '%s/library/busybox:heatpull' % reg.host
        repo = self.ref.rsplit(':', 1)[0]
        self.eng.api('POST', '/images/busybox:latest/tag?repo=%s&tag=heatpull'
                     % repo, expect=201)
        status, _, body = self.eng.api(
            'POST', '/images/%s/push?tag=heatpull' % repo, timeout=120)
        self.assertEqual(200, status, body)
        self.assertNotIn(b'errorDetail', body)
        # The engine forgets the reference: creating the container needs a
        # pull.
        self.eng.api('DELETE', '/images/%s' % self.ref, expect=200)
        status, _ = self.eng.api_json('GET', '/images/%s/json' % self.ref)
        self.assertEqual(404, status)

    def test_create_pulls_then_runs(self):
        stk = utils.parse_stack({
            'heat_template_version': '2021-04-16',
            'resources': {'c': {'type': TYPE, 'properties': {
                'docker_endpoint': self.eng.url, 'image': self.ref,
                'cmd': ['sh', '-c', 'echo pulled and running; '
                                    'trap "exit 0" TERM; sleep 300 & wait']}}}})
        stk.store()
        res = stk['c']
        scheduler.TaskRunner(res.create)()
        self.assertEqual((res.CREATE, res.COMPLETE), res.state)
        status, info = self.eng.api_json(
            'GET', '/containers/%s/json' % res.resource_id)
        self.assertEqual(200, status, info)
        self.assertTrue(info['State']['Running'])
        self.assertEqual(self.ref, info['Config']['Image'])
        status, image = self.eng.api_json('GET', '/images/%s/json' % self.ref)
        self.assertEqual(200, status, image)
        self.assertEqual('pulled and running', res.FnGetAtt('logs_tail'))
        scheduler.TaskRunner(res.delete)()
        status, _ = self.eng.api_json(
            'GET', '/containers/%s/json' % res.resource_id)
        self.assertEqual(404, status)

    def test_unknown_tag_fails_with_the_registry_reason(self):
        stk = utils.parse_stack({
            'heat_template_version': '2021-04-16',
            'resources': {'c': {'type': TYPE, 'properties': {
                'docker_endpoint': self.eng.url,
                'image': self.ref.replace(':heatpull', ':nosuchtag')}}}})
        stk.store()
        res = stk['c']
        before = realengine.containers(self.eng)
        err = self.assertRaises(Exception, scheduler.TaskRunner(res.create))
        self.assertIn('could not pull image', str(err))
        self.assertIn('nosuchtag', str(err))
        self.assertIsNone(res.resource_id)
        self.assertEqual(before, realengine.containers(self.eng))
