"""Unit tests of DockerInc::Docker::Image on HeatTestCase: validation
messages, the reference containers get, and the build request (the engine
client is a mock here; test_stacks_engine.py builds on a real engine)."""

import io
import json
import tarfile
import uuid
from unittest import mock

import ddt

from heat.common import exception
from heat.engine import resources
from heat.tests import utils

from heat_plugin import client as plugin_client
from heat_plugin import image
from tests.integration.heat import base

IMG = 'DockerInc::Docker::Image'
DOCKERFILE = 'FROM busybox\n'


def template(**props):
    return {'heat_template_version': '2021-04-16',
            'resources': {'img': {'type': IMG, 'properties': props}}}


@ddt.ddt
class TestImageUnit(base.HeatTestCase):

    def setUp(self):
        super().setUp()
        resources.global_env().register_class(IMG, image.DockerImage)

    def img(self, **props):
        stk = utils.parse_stack(template(**props))
        return stk, stk['img']

    @ddt.data(
        ({}, 'give either dockerfile'),
        ({'dockerfile': DOCKERFILE, 'pull': 'busybox'},
         'give either dockerfile'),
        ({'pull': 'busybox', 'name': 'x'}, 'pull'),
        ({'pull': 'Busybox'}, "pull 'Busybox' is not a valid image reference"),
        ({'dockerfile': DOCKERFILE, 'name': 'my app'},
         "name 'my app' is not a valid image reference"),
    )
    @ddt.unpack
    def test_validation_refuses(self, props, message):
        stk, _ = self.img(**props)
        err = self.assertRaises(exception.HeatException, stk.validate)
        self.assertIn(message, str(err))

    @ddt.data(
        ({'pull': 'registry:5000/team/app:1.2'}, 'registry:5000/team/app:1.2'),
        ({'dockerfile': DOCKERFILE, 'name': 'my/app'}, 'my/app:latest'),
        ({'dockerfile': DOCKERFILE, 'name': 'localhost:5000/app'},
         'localhost:5000/app:latest'),
        ({'dockerfile': DOCKERFILE, 'name': 'my/app:v2'}, 'my/app:v2'),
    )
    @ddt.unpack
    def test_reference(self, props, expected):
        stk, res = self.img(**props)
        stk.validate()
        self.assertEqual(expected, res.reference())

    def test_build_request(self):
        stk, res = self.img(dockerfile=DOCKERFILE + 'COPY a/b.txt /\n',
                            files={'a/b.txt': 'bee'},
                            build_args={'X': '1'})
        stk.validate()
        res.uuid = str(uuid.uuid4())
        res.id = 1
        res.action = res.CREATE
        client = mock.Mock()
        self.patchobject(plugin_client, 'engine_for', return_value=client)
        ref = res.handle_create()
        # The default name: Heat's physical name, lowercased, :latest.
        self.assertEqual(res.physical_resource_name().lower() + ':latest',
                         ref)
        method, path = client.stream_json.call_args[0]
        kw = client.stream_json.call_args[1]
        self.assertEqual(('POST', '/build'), (method, path))
        self.assertEqual(ref, kw['params']['t'])
        self.assertEqual({'X': '1'}, json.loads(kw['params']['buildargs']))
        with tarfile.open(fileobj=io.BytesIO(kw['data'])) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar}
        self.assertEqual({'Dockerfile': (DOCKERFILE +
                                         'COPY a/b.txt /\n').encode(),
                          'a/b.txt': b'bee'}, files)

    def test_pulled_image_is_left_on_delete(self):
        _, res = self.img(pull='busybox:1')
        res.resource_id = 'busybox:1'
        client = mock.Mock()
        self.patchobject(plugin_client, 'engine_for', return_value=client)
        res.handle_delete()
        client.delete.assert_not_called()
