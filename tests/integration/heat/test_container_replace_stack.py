"""Replacement through real Heat (EngineService, convergence) on a real
engine, for a container with a fixed name and a published host port: Heat
creates the new container before it deletes the old one, so the plugin must
move the old one aside (prepare_for_replace) or the engine refuses the
name and the port.
"""

from tests import registries
from tests.integration.heat import base
from tests.integration.heat import stackharness


def template(port, message):
    return {
        'heat_template_version': '2021-04-16',
        'resources': {'web': {
            'type': 'DockerInc::Docker::Container',
            'properties': {
                'image': 'busybox',
                'name': 'heat-fixed-web',
                'port_bindings': {'80/tcp': '127.0.0.1:%d' % port},
                'cmd': ['sh', '-c',
                        'mkdir -p /www; echo %s > /www/index.html; '
                        'trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
                        % message],
            }}}}


class TestReplaceFixedNameAndPort(stackharness.RealEngineStackTestCase):

    def test_same_name_and_port_across_replacement(self):
        port = registries.free_port()
        self.assertState(('CREATE', 'COMPLETE'),
                         self.create_stack('fixed', template(port, 'one')))
        old_id = self.load_stack('fixed')['web'].resource_id
        self.assertEqual('one\n', base.http_get('http://127.0.0.1:%d/' % port))

        self.assertState(('UPDATE', 'COMPLETE'),
                         self.update_stack('fixed', template(port, 'two')))
        new_id = self.load_stack('fixed')['web'].resource_id
        self.assertNotEqual(old_id, new_id)
        status, info = self.engine.api_json('GET',
                                            '/containers/%s/json' % new_id)
        self.assertEqual(200, status, info)
        self.assertEqual('/heat-fixed-web', info['Name'])
        self.assertEqual('two\n', base.http_get('http://127.0.0.1:%d/' % port))
        status, _info = self.engine.api_json('GET',
                                             '/containers/%s/json' % old_id)
        self.assertEqual(404, status)

        self.assertIsNone(self.delete_stack('fixed'))
        status, _info = self.engine.api_json('GET',
                                             '/containers/%s/json' % new_id)
        self.assertEqual(404, status)
