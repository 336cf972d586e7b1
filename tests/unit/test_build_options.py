"""The /build request's options: target, pull, cachefrom, forcerm and the
X-Registry-Config credentials (engine.api.build_route, engine.build)."""

import base64
import json
import types
import unittest

import ddt

from engine import build as build_mod
from engine import errors
from engine.api import build_route
from engine.api import http


def request(query=None, headers=None):
    handler = types.SimpleNamespace(headers=dict(headers or {}))
    q = {k: (v if isinstance(v, list) else [v]) for k, v in (query or {}).items()}
    return http.Request(handler, 'POST', '/build', q, '1.41')


def registry_config(doc):
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


@ddt.ddt
class OptionsTest(unittest.TestCase):

    def test_defaults(self):
        opts = build_route.options(request())
        self.assertEqual(('', False, [], None, {}), (
            opts.target, opts.pull, opts.cachefrom, opts.forcerm, opts.registry_auth))
        self.assertTrue(opts.remove_failed)

    @ddt.unpack
    @ddt.data(({}, True), ({'forcerm': '1'}, True), ({'forcerm': '0'}, False),
              ({'rm': '0'}, False), ({'rm': '0', 'forcerm': '1'}, True))
    def test_failed_container_removal(self, query, removed):
        self.assertEqual(removed, build_route.options(request(query)).remove_failed)

    def test_target_pull_cachefrom(self):
        opts = build_route.options(request({
            'target': 'Build', 'pull': '1', 'cachefrom': json.dumps(['a:1', 'b'])}))
        self.assertEqual(('build', True, ['a:1', 'b']),
                         (opts.target, opts.pull, opts.cachefrom))

    @ddt.data('{"a": 1}', '[1]', '"x"', '[')
    def test_bad_cachefrom(self, value):
        with self.assertRaises(errors.InvalidArgument):
            build_route.options(request({'cachefrom': value}))

    def test_registry_config(self):
        header = registry_config({
            'https://index.docker.io/v1/': {'username': 'hub', 'password': 'p1'},
            '127.0.0.1:5000': {'auth': base64.b64encode(b'me:secret').decode()},
            'anon.example': {}})
        auths = build_route.options(request(headers={'X-Registry-Config': header})).registry_auth
        self.assertEqual({'https://index.docker.io/v1/', '127.0.0.1:5000'}, set(auths))
        self.assertEqual('hub', build_mod._auth_for(auths, 'docker.io')['username'])
        self.assertEqual('me', build_mod._auth_for(auths, '127.0.0.1:5000')['username'])
        self.assertIsNone(build_mod._auth_for(auths, 'other.example'))

    @ddt.data('!!!', registry_config([1]), registry_config({'r': 'x'}),
              registry_config({'r': {'username': 5}}))
    def test_bad_registry_config(self, header):
        with self.assertRaises(errors.InvalidArgument) as err:
            build_route.options(request(headers={'X-Registry-Config': header}))
        self.assertEqual(400, err.exception.status)


class PrepareTest(unittest.TestCase):
    """Stages and targets are checked before any step runs."""

    def prepare(self, text, **kw):
        ctx = types.SimpleNamespace(dockerfile=text)
        return build_mod.Builder.prepare(None, ctx, build_mod.BuildOptions(**kw))

    def test_target_cuts_after_its_stage(self):
        text = 'ARG X=1\nFROM a AS one\nRUN 1\nFROM b AS two\nRUN 2\nFROM c\nRUN 3\n'
        self.assertEqual(['ARG', 'FROM', 'RUN', 'FROM', 'RUN'],
                         [i.cmd for i in self.prepare(text, target='TWO')])
        self.assertEqual(7, len(self.prepare(text)))
        with self.assertRaises(build_mod.df.BuildError) as err:
            self.prepare(text, target='three')
        self.assertEqual('failed to reach build target three in Dockerfile',
                         str(err.exception))

    def test_labels_go_to_the_built_stage(self):
        instrs = self.prepare('FROM a AS one\nFROM b\n', target='one', labels={'k': 'v'})
        self.assertEqual(['FROM', 'LABEL'], [i.cmd for i in instrs])

    def test_duplicate_stage_names_pass_prepare(self):
        # Docker reports them in the stream, when the second FROM runs.
        self.assertEqual(2, len(self.prepare('FROM a AS x\nFROM b AS X\n')))
