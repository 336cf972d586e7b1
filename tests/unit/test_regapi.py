"""The registry routes (pull, push, login, search) over a real HTTP server
in this process, with a fake Distribution: auth header decoding, progress
streams and their throttling, errors before and after the header, events,
disconnecting clients, and credentials kept out of the logs."""

import base64
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest
from unittest import mock

import ddt

from engine import errors
from engine import events as events_mod
from engine import reference
from engine.api import http
from engine.api import registry_routes as rr
from engine.api import routes
from tests import daemons

SECRET = 'pa55-Secret-xyz'
DIGEST = 'sha256:' + 'ab' * 32


def b64url(obj, pad=True):
    text = base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()
    return text if pad else text.rstrip('=')


# -- pure helpers --------------------------------------------------------------

@ddt.ddt
class AuthHeaderTest(unittest.TestCase):
    def test_docker_cli_form_padded_and_not(self):
        creds = {'username': 'alice', 'password': SECRET, 'serveraddress': 'r:5000'}
        for pad in (True, False):
            auth = rr.decode_auth_header(b64url(creds, pad))
            self.assertEqual(creds, dict(auth))

    def test_standard_alphabet_taken_too(self):
        # '?>' encodes to '/' and '+' in the standard alphabet.
        creds = {'username': 'u??>>', 'password': '>>>???'}
        std = base64.b64encode(json.dumps(creds).encode()).decode()
        self.assertTrue(set('+/') & set(std))
        self.assertEqual(creds, dict(rr.decode_auth_header(std)))

    @ddt.data(None, '', '   ', b64url({}), b64url({'serveraddress': 'r:5000'}),
              b64url({'username': '', 'password': ''}), b64url({'email': 'a@b'}))
    def test_anonymous(self, header):
        self.assertIsNone(rr.decode_auth_header(header))

    def test_tokens_and_case_insensitive_keys(self):
        self.assertEqual({'identitytoken': 'tok'},
                         dict(rr.decode_auth_header(b64url({'IdentityToken': 'tok'}))))
        self.assertEqual({'registrytoken': 't2', 'username': 'bob'},
                         dict(rr.decode_auth_header(b64url({'RegistryToken': 't2',
                                                            'Username': 'bob',
                                                            'unknown': 1}))))

    def test_config_file_auth_field(self):
        auth = base64.b64encode(b'carol:' + SECRET.encode()).decode()
        self.assertEqual({'username': 'carol', 'password': SECRET},
                         dict(rr.decode_auth_header(b64url({'auth': auth}))))

    @ddt.data('!!!notbase64', base64.urlsafe_b64encode(b'not json').decode(),
              b64url([1, 2]), b64url('text'), b64url({'username': 5}),
              b64url({'password': ['x']}), b64url({'auth': 'bm9jb2xvbg=='}),
              'x' * (rr.MAX_AUTH_SIZE + 4))
    def test_malformed_is_400_naming_no_secret(self, header):
        with self.assertRaises(errors.InvalidArgument) as cm:
            rr.decode_auth_header(header)
        self.assertTrue(str(cm.exception).startswith('invalid X-Registry-Auth header'))
        self.assertNotIn(header[:12], str(cm.exception))

    def test_repr_hides_secrets(self):
        auth = rr.decode_auth_header(b64url({'username': 'alice', 'password': SECRET,
                                             'identitytoken': SECRET + 'tok'}))
        for text in (repr(auth), str(auth), '%s' % auth, '%r' % [auth]):
            self.assertNotIn(SECRET, text)
            self.assertIn('alice', text)


@ddt.ddt
class ReferenceTest(unittest.TestCase):
    @ddt.unpack
    @ddt.data(('busybox', 'latest', 'docker.io/library/busybox:latest'),
              ('busybox:1.36', '', 'docker.io/library/busybox:1.36'),
              ('busybox:1.36', '2', 'docker.io/library/busybox:2'),
              ('busybox:', 'latest', 'docker.io/library/busybox:latest'),
              ('127.0.0.1:5000/ns/app', DIGEST, '127.0.0.1:5000/ns/app@' + DIGEST),
              ('127.0.0.1:5000/ns/app:old', DIGEST, '127.0.0.1:5000/ns/app@' + DIGEST),
              ('localhost/app@' + DIGEST, '', 'localhost/app@' + DIGEST),
              ('busybox', '', 'docker.io/library/busybox'))
    def test_pull_reference(self, from_image, tag, expected):
        self.assertEqual(expected, str(rr.pull_reference(from_image, tag)))

    @ddt.unpack
    @ddt.data(('UPPER/case', '', 'repository name must be lowercase'),
              ('busybox::', '', 'invalid reference format'),
              ('busybox@sha256:abc', '', 'invalid reference format'),
              ('busybox', 'sha256:abc', 'invalid checksum digest length'),
              ('busybox', 'bad tag!', 'invalid tag format'),
              ('busybox', 'md5:' + 'a' * 32, 'unsupported digest algorithm'),
              ('', 'latest', 'repository name must have at least one component'))
    def test_bad_pull_reference(self, from_image, tag, message):
        with self.assertRaises(errors.InvalidArgument) as cm:
            rr.pull_reference(from_image, tag)
        self.assertIn(message, str(cm.exception))

    def test_push_reference(self):
        self.assertEqual('127.0.0.1:5000/a:v1', str(rr.push_reference('127.0.0.1:5000/a', 'v1')))
        self.assertEqual('127.0.0.1:5000/a', str(rr.push_reference('127.0.0.1:5000/a', '')))
        with self.assertRaises(errors.InvalidArgument) as cm:
            rr.push_reference('127.0.0.1:5000/a@' + DIGEST, '')
        self.assertEqual('cannot push a digest reference', str(cm.exception))
        with self.assertRaises(errors.InvalidArgument):
            rr.push_reference('127.0.0.1:5000/a', ':x')

    def test_platform(self):
        self.assertEqual('linux/amd64', rr.check_platform('Linux/AMD64'))
        self.assertEqual('linux/arm/v7', rr.check_platform('linux/arm/v7'))
        self.assertIsNone(rr.check_platform(''))
        for bad in ('linux//x', 'a/b/c/d', 'linux/$x'):
            with self.assertRaises(errors.InvalidArgument):
                rr.check_platform(bad)
        with self.assertRaises(errors.InvalidArgument) as cm:
            rr.check_platform('windows/amd64')
        self.assertIn('operating system is not supported', str(cm.exception))


class EncodingTest(unittest.TestCase):
    def test_go_field_order_and_escapes(self):
        line = rr.encode_message({'id': 'abc', 'progressDetail': {'current': 1, 'total': 4},
                                  'status': 'Downloading'})
        self.assertTrue(line.endswith(b'\r\n'))
        self.assertEqual(b'{"status":"Downloading","progressDetail":{"current":1,"total":4},'
                         b'"progress":"[============>                                      ]'
                         b'       1B/4B","id":"abc"}\r\n', line.replace(b'\\u003e', b'>'))
        self.assertIn(b'\\u003e', line)  # Go escapes '>' in strings
        self.assertEqual({'status': 'x', 'progressDetail': {}},
                         json.loads(rr.encode_message({'progressDetail': {}, 'status': 'x',
                                                       'progress': 'stale'})))
        self.assertEqual('[=========================>                         ]'
                         '      10B/20B', json.loads(rr.encode_message(
                             {'progressDetail': {'current': 10, 'total': 20},
                              'progress': '[=>] other text'}))['progress'])

    def test_human_size_and_bar(self):
        self.assertEqual('500B', rr.human_size(500))
        self.assertEqual('1.234kB', rr.human_size(1234))
        self.assertEqual('2.22MB', rr.human_size(2220094))
        self.assertEqual('[==================================================>]   2.22MB/2.22MB',
                         rr.progress_bar(2220094, 2220094))
        self.assertEqual(' 32.77kB', rr.progress_bar(32768, 0))
        self.assertEqual('', rr.progress_bar(0, 0))


class _Handler:
    """Just enough of an http Handler for ProgressStream."""

    def __init__(self, fail_after=None):
        self.out = []
        self.fail_after = fail_after
        self.close_connection = False
        self.connection = mock.Mock()
        self.wfile = self
        self.headers_sent = 0

    def send_response(self, code):
        self.headers_sent += 1

    def send_common_headers(self):
        pass

    def send_header(self, k, v):
        pass

    def end_headers(self):
        pass

    def flush(self):
        pass

    def write(self, data):
        if self.fail_after is not None and len(self.out) >= self.fail_after:
            raise BrokenPipeError('gone')
        self.out.append(data)

    def messages(self):
        lines = []
        for chunk in self.out:
            body = chunk.split(b'\r\n', 1)[1][:-2] if b'\r\n' in chunk else b''
            for line in body.splitlines():
                if line.strip():
                    lines.append(json.loads(line))
        return lines


class ProgressStreamTest(unittest.TestCase):
    def setUp(self):
        self.now = 0.0
        self.handler = _Handler()
        self.out = rr.ProgressStream(self.handler, clock=lambda: self.now)

    def test_rate_limited_per_layer_final_always_sent(self):
        total = 100000
        for i in range(1, total + 1, 10):  # 10000 updates within 1 s
            self.now = i / total
            self.out({'status': 'Downloading', 'id': 'aaa',
                      'progressDetail': {'current': i, 'total': total}})
            self.out({'status': 'Downloading', 'id': 'bbb',
                      'progressDetail': {'current': i, 'total': total}})
        self.out({'status': 'Downloading', 'id': 'aaa',
                  'progressDetail': {'current': total, 'total': total}})
        self.out({'status': 'Download complete', 'id': 'bbb', 'progressDetail': {}})
        msgs = self.handler.messages()
        for layer in ('aaa', 'bbb'):
            mine = [m for m in msgs if m['id'] == layer]
            self.assertLessEqual(len(mine), 13, mine)  # ~1 s / 100 ms, plus ends
            self.assertGreaterEqual(len(mine), 10)
        last_a = [m for m in msgs if m['id'] == 'aaa'][-1]
        self.assertEqual(total, last_a['progressDetail']['current'])
        # b's last update was held back, then flushed before its status.
        b = [m for m in msgs if m['id'] == 'bbb']
        self.assertEqual('Download complete', b[-1]['status'])
        self.assertEqual(99991, b[-2]['progressDetail']['current'])

    def test_pulling_from_waits_for_the_next_line(self):
        out = rr.ProgressStream(self.handler, hold_first='Pulling from ')
        out({'status': 'Pulling from app', 'id': 'v1'})
        self.assertEqual(0, self.handler.headers_sent)
        with self.assertRaises(errors.NotFound):
            out.fail(errors.NotFound('manifest unknown'))
        out({'status': 'Pulling fs layer', 'id': 'aaa', 'progressDetail': {}})
        self.assertEqual(['Pulling from app', 'Pulling fs layer'],
                         [m['status'] for m in self.handler.messages()])
        # A lone first line still goes out when the work ends.
        handler = _Handler()
        out = rr.ProgressStream(handler, hold_first='Pulling from ')
        out({'status': 'Pulling from app', 'id': 'v1'})
        self.assertIsNotNone(out.finish())
        self.assertEqual(['Pulling from app'], [m['status'] for m in handler.messages()])

    def test_status_lines_are_never_dropped(self):
        for i in range(50):
            self.out({'status': 'Waiting', 'id': 'l%d' % i, 'progressDetail': {}})
        self.assertEqual(50, len(self.handler.messages()))

    def test_error_before_any_line_is_raised(self):
        exc = errors.NotFound('manifest unknown')
        with self.assertRaises(errors.NotFound):
            self.out.fail(exc)
        self.assertEqual(0, self.handler.headers_sent)

    def test_error_after_a_line_goes_in_the_stream(self):
        self.out({'status': 'Pulling from x', 'id': 'latest'})
        self.out.fail(rr_error('layer lied'))
        self.assertEqual({'errorDetail': {'message': 'layer lied'}, 'error': 'layer lied'},
                         self.handler.messages()[-1])

    def test_client_gone_drops_output_and_never_raises(self):
        handler = _Handler(fail_after=2)
        out = rr.ProgressStream(handler)
        for i in range(10):
            out({'status': 'Extracting %d' % i, 'id': 'x'})
        self.assertTrue(out.client_gone)
        self.assertTrue(handler.close_connection)
        self.assertIsNone(out.finish())

    def test_threads_do_not_interleave_lines(self):
        def worker(n):
            for i in range(200):
                self.out({'status': 'Extracting', 'id': 'layer%d' % n,
                          'progressDetail': {}})
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(800, len(self.handler.messages()))


def rr_error(message):
    return errors.EngineError(message)


@ddt.ddt
class SearchFilterTest(unittest.TestCase):
    @ddt.unpack
    @ddt.data(({}, (False, None, None)),
              ({'is-official': ['true']}, (False, True, None)),
              ({'is-official': ['0']}, (False, False, None)),
              ({'is-automated': ['1']}, (True, None, None)),
              ({'stars': ['3', '10']}, (False, None, 10)))
    def test_filters(self, parsed, expected):
        self.assertEqual(expected, rr.search_filters(parsed))

    @ddt.unpack
    @ddt.data(({'nope': ['1']}, "invalid filter 'nope'"),
              ({'is-official': ['maybe']}, "invalid filter 'is-official=[maybe]'"),
              ({'is-official': ['true', 'false']}, "invalid filter 'is-official="),
              ({'stars': ['many']}, "invalid filter 'stars=many'"))
    def test_bad_filters(self, parsed, message):
        with self.assertRaises(errors.InvalidArgument) as cm:
            rr.search_filters(parsed)
        self.assertIn(message, str(cm.exception))


# -- the routes over HTTP, with a fake Distribution ---------------------------------

class FakeDistribution:
    """Records calls; ``script`` (a list) drives what pull/push do:
    dicts are progress messages, exceptions are raised, callables run."""

    def __init__(self):
        self.calls = []
        self.script = []
        self.finished = threading.Event()
        self.search_results = []
        self.login_error = None

    def _run(self, progress):
        for step in self.script:
            if isinstance(step, BaseException):
                raise step
            if callable(step):
                step()
            else:
                progress(step)
        self.finished.set()

    def pull(self, reference, auth=None, platform=None, progress=None):
        self.calls.append(('pull', reference, auth, platform))
        self._run(progress)
        return 'sha256:' + 'cd' * 32

    def push(self, reference, auth=None, progress=None):
        self.calls.append(('push', reference, auth))
        self._run(progress)
        return DIGEST

    def login(self, server, auth):
        self.calls.append(('login', server, auth))
        if self.login_error:
            raise self.login_error
        return {'Status': 'Login Succeeded', 'IdentityToken': ''}

    def search(self, term, limit=25, auth=None):
        self.calls.append(('search', term, limit, auth))
        return self.search_results

    def list_tags(self, reference, auth=None):
        self.calls.append(('tags', reference, auth))
        return ['1', '2']


class FakeImages:
    def __init__(self):
        self.tags = {'127.0.0.1:5000/app:v1': 'sha256:' + '11' * 32,
                     '127.0.0.1:5000/app:v2': 'sha256:' + '11' * 32}

    def exists(self, ref):
        return reference.normalize(ref) in self.tags

    def images(self):
        img = mock.Mock()
        img.repo_tags = sorted(self.tags)
        return [img]

    def resolve(self, ref):
        if reference.normalize(ref) not in self.tags:
            raise errors.NoSuchImage(ref)
        img = mock.Mock()
        img.config = {'config': {'Labels': {'team': 'blue'}}}
        return img


class RouteTestBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='regapi-')
        self.sock = os.path.join(self.dir, 'api.sock')
        self.dist = FakeDistribution()
        eng = mock.MagicMock()
        eng.conf.engine.api_request_limit = 1 << 20
        eng.events = events_mod.EventBus()
        eng.images = FakeImages()
        eng.distribution = self.dist
        self.eng = eng
        self.server = http.UnixServer(self.sock, routes.build(eng))
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, method, path, body=None, headers=None):
        return daemons.api(self.sock, method, path, body, headers=headers, timeout=20)

    def lines(self, data):
        return [json.loads(line) for line in data.splitlines() if line.strip()]


PULL_SCRIPT = [
    {'status': 'Pulling from app', 'id': 'v1'},
    {'status': 'Pulling fs layer', 'id': 'aaa', 'progressDetail': {}},
    {'status': 'Downloading', 'id': 'aaa', 'progressDetail': {'current': 10, 'total': 20}},
    {'status': 'Downloading', 'id': 'aaa', 'progressDetail': {'current': 20, 'total': 20}},
    {'status': 'Pull complete', 'id': 'aaa', 'progressDetail': {}},
    {'status': 'Digest: ' + DIGEST},
    {'status': 'Status: Downloaded newer image for 127.0.0.1:5000/app:v1'},
]


@ddt.ddt
class PullRouteTest(RouteTestBase):
    def test_pull_streams_progress_and_passes_auth(self):
        self.dist.script = list(PULL_SCRIPT)
        header = b64url({'username': 'alice', 'password': SECRET})
        status, hdrs, data = self.api(
            'POST', '/v1.44/images/create?fromImage=127.0.0.1:5000/app&tag=v1'
                    '&platform=linux/amd64', headers={'X-Registry-Auth': header})
        self.assertEqual(200, status)
        self.assertEqual('application/json', hdrs['content-type'])
        self.assertEqual('chunked', hdrs['transfer-encoding'])
        msgs = self.lines(data)
        self.assertEqual([m['status'] for m in PULL_SCRIPT], [m['status'] for m in msgs])
        self.assertEqual('[=========================>                         ]'
                         '      10B/20B', msgs[2]['progress'])
        call = self.dist.calls[0]
        self.assertEqual(('pull', '127.0.0.1:5000/app:v1', 'linux/amd64'),
                         (call[0], call[1], call[3]))
        self.assertEqual({'username': 'alice', 'password': SECRET}, dict(call[2]))

    def test_anonymous_empty_header(self):
        self.dist.script = [{'status': 'Status: Image is up to date for busybox:latest'}]
        status, _, data = self.api('POST', '/images/create?fromImage=busybox&tag=latest',
                                   headers={'X-Registry-Auth': 'e30='})
        self.assertEqual(200, status)
        self.assertIsNone(self.dist.calls[0][2])
        self.assertEqual('docker.io/library/busybox:latest', self.dist.calls[0][1])

    def test_malformed_header_is_400(self):
        status, hdrs, data = self.api('POST', '/images/create?fromImage=busybox&tag=latest',
                                      headers={'X-Registry-Auth': '%%%'})
        self.assertEqual(400, status)
        # The engine closes after an error and says so: keep-alive clients
        # (docker-py) must not reuse the connection.
        self.assertEqual('close', hdrs['connection'])
        self.assertTrue(json.loads(data)['message'].startswith(
            'invalid X-Registry-Auth header'))
        self.assertEqual([], self.dist.calls)

    @ddt.unpack
    @ddt.data(('UPPER/case', 'latest', 'invalid reference format: repository name must '
                                       'be lowercase'),
              ('busybox', 'sha256:abc', 'invalid checksum digest length'),
              ('busybox', 'a:b:c', 'invalid digest format'),
              ('busybox@sha256:abc', '', 'invalid reference format'),
              ('busybox::', '', 'invalid reference format'))
    def test_bad_reference_is_400(self, from_image, tag, message):
        status, _, data = self.api('POST', '/images/create?fromImage=%s&tag=%s'
                                   % (from_image, tag))
        self.assertEqual(400, status, data)
        self.assertEqual(message, json.loads(data)['message'])
        self.assertEqual([], self.dist.calls)

    def test_error_before_progress_is_an_http_error(self):
        # "Pulling from" alone does not begin the response (Docker sends it
        # once the manifest is there).
        self.dist.script = PULL_SCRIPT[:1] + [errors.NotFound('manifest for 127.0.0.1:5000/app:nope not '
                                            'found: manifest unknown')]
        status, hdrs, data = self.api('POST', '/images/create?fromImage=127.0.0.1:5000/app'
                                              '&tag=nope')
        self.assertEqual(404, status)
        self.assertIn('manifest unknown', json.loads(data)['message'])

    def test_error_after_progress_is_in_the_stream(self):
        self.dist.script = PULL_SCRIPT[:3] + [
            errors.RegistryError('digest mismatch for layer aaa')
            if hasattr(errors, 'RegistryError') else errors.EngineError('digest mismatch')]
        status, _, data = self.api('POST', '/images/create?fromImage=127.0.0.1:5000/app'
                                           '&tag=v1')
        self.assertEqual(200, status)
        last = self.lines(data)[-1]
        self.assertIn('digest mismatch', last['error'])
        self.assertEqual(last['error'], last['errorDetail']['message'])
        self.assertEqual('Pulling from app', self.lines(data)[0]['status'])

    def test_bug_after_progress_is_reported_in_the_stream(self):
        self.dist.script = PULL_SCRIPT[:2] + [KeyError('x')]
        status, _, data = self.api('POST', '/images/create?fromImage=app&tag=v1')
        self.assertEqual(200, status)
        self.assertIn('internal error (KeyError)', self.lines(data)[-1]['error'])

    def test_all_tags_when_no_tag(self):
        self.dist.script = [{'status': 'ok'}]
        status, _, data = self.api('POST', '/images/create?fromImage=127.0.0.1:5000/app')
        self.assertEqual(200, status)
        self.assertEqual(['127.0.0.1:5000/app:1', '127.0.0.1:5000/app:2'],
                         [c[1] for c in self.dist.calls if c[0] == 'pull'])

    def test_no_distribution_is_501(self):
        self.eng.distribution = None
        status, _, data = self.api('POST', '/images/create?fromImage=busybox&tag=1')
        self.assertEqual(501, status)
        self.assertIn('not supported by this engine yet', json.loads(data)['message'])

    def test_many_fast_updates_are_throttled(self):
        self.dist.script = [{'status': 'Downloading', 'id': 'aaa',
                             'progressDetail': {'current': i, 'total': 5000}}
                            for i in range(1, 5001)]
        status, _, data = self.api('POST', '/images/create?fromImage=app&tag=v1')
        msgs = self.lines(data)
        self.assertLess(len(msgs), 200)
        self.assertEqual(5000, msgs[-1]['progressDetail']['current'])

    def test_client_disconnect_mid_pull(self):
        """The pull goes on to its end; the request's thread then ends."""
        release = threading.Event()
        self.dist.script = PULL_SCRIPT[:2] + [lambda: release.wait(10)] + PULL_SCRIPT[2:]
        before = threading.active_count()
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        s.sendall(b'POST /images/create?fromImage=app&tag=v1 HTTP/1.1\r\nHost: x\r\n'
                  b'Content-Length: 0\r\n\r\n')
        got = b''
        while b'Pulling fs layer' not in got:
            got += s.recv(65536)
        s.close()
        release.set()
        self.assertTrue(self.dist.finished.wait(10))
        deadline = time.monotonic() + 10
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertLessEqual(threading.active_count(), before)


class PushRouteTest(RouteTestBase):
    PUSH_SCRIPT = [
        {'status': 'The push refers to repository [127.0.0.1:5000/app]'},
        {'status': 'Preparing', 'id': 'aaa', 'progressDetail': {}},
        {'status': 'Pushing', 'id': 'aaa', 'progressDetail': {'current': 5, 'total': 9}},
        {'status': 'Pushed', 'id': 'aaa', 'progressDetail': {}},
        {'status': 'v1: digest: %s size: 527' % DIGEST, 'progressDetail': {},
         'aux': {'Tag': 'v1', 'Digest': DIGEST, 'Size': 527}},
    ]

    def test_push_streams_and_publishes(self):
        self.dist.script = list(self.PUSH_SCRIPT)
        header = b64url({'username': 'alice', 'password': SECRET})
        status, hdrs, data = self.api('POST', '/images/127.0.0.1:5000/app/push?tag=v1',
                                      headers={'X-Registry-Auth': header})
        self.assertEqual(200, status)
        msgs = self.lines(data)
        self.assertEqual('The push refers to repository [127.0.0.1:5000/app]',
                         msgs[0]['status'])
        self.assertEqual({'progressDetail': {},
                          'aux': {'Tag': 'v1', 'Digest': DIGEST, 'Size': 527}}, msgs[-1])
        self.assertEqual({'status': 'v1: digest: %s size: 527' % DIGEST}, msgs[-2])
        self.assertEqual(('push', '127.0.0.1:5000/app:v1'), self.dist.calls[0][:2])
        self.assertEqual(SECRET, self.dist.calls[0][2]['password'])

    def test_push_all_local_tags_without_tag(self):
        self.dist.script = self.PUSH_SCRIPT[:1] + [
            {'status': 'Pushed', 'id': 'aaa', 'progressDetail': {}}]
        status, _, data = self.api('POST', '/images/127.0.0.1:5000/app/push')
        self.assertEqual(200, status)
        self.assertEqual(['127.0.0.1:5000/app:v1', '127.0.0.1:5000/app:v2'],
                         [c[1] for c in self.dist.calls])
        # The repository is named once, each tag's layers reported.
        self.assertEqual(['The push refers to repository [127.0.0.1:5000/app]',
                          'Pushed', 'Pushed'], [m['status'] for m in self.lines(data)])

    def test_old_clients_send_auth_in_the_body(self):
        self.dist.script = []
        status, _, _ = self.api('POST', '/images/127.0.0.1:5000/app/push?tag=v1',
                                body={'username': 'bob', 'password': SECRET})
        self.assertEqual(200, status)
        self.assertEqual('bob', self.dist.calls[0][2]['username'])
        status, _, _ = self.api('POST', '/images/127.0.0.1:5000/app/push?tag=v1',
                                body={})  # docker-py without credentials
        self.assertEqual(200, status)
        self.assertIsNone(self.dist.calls[1][2])
        status, _, data = self.api('POST', '/images/127.0.0.1:5000/app/push?tag=v1',
                                   body=b'[1]', headers={'Content-Type': 'application/json'})
        self.assertEqual(400, status)
        self.assertIn('Bad parameters and missing X-Registry-Auth', json.loads(data)['message'])

    def test_missing_local_image_is_404_before_any_byte(self):
        status, _, data = self.api('POST', '/images/127.0.0.1:5000/nope/push?tag=latest')
        self.assertEqual(404, status)
        self.assertEqual('An image does not exist locally with the tag: 127.0.0.1:5000/nope',
                         json.loads(data)['message'])
        status, _, data = self.api('POST', '/images/127.0.0.1:5000/nope/push')
        self.assertEqual(404, status)
        status, _, data = self.api('POST', '/images/127.0.0.1:5000/app/push?tag=v9')
        self.assertEqual(404, status)
        self.assertEqual('tag does not exist: 127.0.0.1:5000/app:v9', json.loads(data)['message'])
        self.assertEqual([], self.dist.calls)

    def test_bad_references(self):
        for path, message in (
                ('/images/UPPER/case/push?tag=1', 'must be lowercase'),
                ('/images/127.0.0.1:5000/app/push?tag=a:b', 'invalid tag format'),
                ('/images/127.0.0.1:5000/app@%s/push' % DIGEST,
                 'cannot push a digest reference')):
            status, _, data = self.api('POST', path)
            self.assertEqual(400, status, path)
            self.assertIn(message, json.loads(data)['message'])

    def test_error_during_push_is_in_the_stream(self):
        self.dist.script = self.PUSH_SCRIPT[:1] + [errors.EngineError('blob upload unknown')]
        status, _, data = self.api('POST', '/images/127.0.0.1:5000/app/push?tag=v1')
        self.assertEqual(200, status)
        self.assertEqual('blob upload unknown', self.lines(data)[-1]['error'])


class LoginRouteTest(RouteTestBase):
    def test_login(self):
        status, data = daemons.api_json(self.sock, 'POST', '/auth', {
            'username': 'alice', 'password': SECRET, 'serveraddress': '127.0.0.1:5000'})
        self.assertEqual(200, status)
        self.assertEqual({'Status': 'Login Succeeded', 'IdentityToken': ''}, data)
        call = self.dist.calls[0]
        self.assertEqual(('login', '127.0.0.1:5000'), call[:2])
        self.assertEqual(SECRET, call[2]['password'])

    def test_default_server_is_docker_hub(self):
        daemons.api_json(self.sock, 'POST', '/auth', {'username': 'a', 'password': 'b'})
        self.assertEqual('https://index.docker.io/v1/', self.dist.calls[0][1])

    def test_refused(self):
        exc_type = getattr(errors, 'Unauthorized', None)
        if exc_type is None:
            class exc_type(errors.EngineError):
                status = 401
        self.dist.login_error = exc_type('login attempt to http://127.0.0.1:5000/v2/ '
                                         'failed with status: 401 Unauthorized')
        status, data = daemons.api_json(self.sock, 'POST', '/auth', {
            'username': 'alice', 'password': SECRET, 'serveraddress': '127.0.0.1:5000'})
        self.assertEqual(401, status)
        self.assertIn('401 Unauthorized', data['message'])
        self.assertNotIn(SECRET, json.dumps(data))

    def test_bad_bodies(self):
        for body in (b'', b'[1]', b'{"username": 1}', b'{bad'):
            status, _, data = self.api('POST', '/auth', body,
                                       headers={'Content-Type': 'application/json'})
            self.assertEqual(400, status, body)
        self.assertEqual([], self.dist.calls)


class SearchRouteTest(RouteTestBase):
    def setUp(self):
        super().setUp()
        self.dist.search_results = [
            {'name': '127.0.0.1:5000/busybox', 'description': '', 'star_count': 0,
             'is_official': False, 'is_automated': True},
            {'name': '127.0.0.1:5000/busy/app', 'description': 'tags: v1',
             'star_count': 0, 'is_official': False, 'is_automated': False}]

    def search(self, query):
        return daemons.api_json(self.sock, 'GET', '/images/search?' + query)

    def test_results_in_docker_form(self):
        status, data = self.search('term=127.0.0.1:5000/busy&limit=10')
        self.assertEqual(200, status)
        self.assertEqual(['star_count', 'is_official', 'name', 'is_automated', 'description'],
                         list(data[0]))
        self.assertEqual([False, False], [d['is_automated'] for d in data])
        self.assertEqual(('search', '127.0.0.1:5000/busy', 10, None), self.dist.calls[0])

    def test_filters(self):
        self.assertEqual([], self.search('term=127.0.0.1:5000/b&filters=' +
                                         '{"is-official":{"true":true}}')[1])
        self.assertEqual(2, len(self.search('term=127.0.0.1:5000/b&filters=' +
                                            '{"is-official":["false"]}')[1]))
        self.assertEqual([], self.search('term=127.0.0.1:5000/b&filters=' +
                                         '{"stars":["1"]}')[1])
        self.assertEqual([], self.search('term=127.0.0.1:5000/b&filters=' +
                                         '{"is-automated":["true"]}')[1])

    def test_bad_requests(self):
        for query, message in (
                ('term=x&limit=abc', 'invalid limit specified'),
                ('term=x&limit=-1', 'invalid limit specified'),
                ('term=x&limit=101', 'limit 101 is outside the range of [1, 100]'),
                ('term=x&filters={"color":["red"]}', "invalid filter 'color'"),
                ('term=https://127.0.0.1:5000/x', 'should not have a scheme'),
                ('term=x', None)):
            status, data = self.search(query)
            if message is None:
                self.assertEqual(200, status)
                continue
            self.assertEqual(400, status, query)
            self.assertIn(message, data['message'])


class NoCredentialsInLogsTest(RouteTestBase):
    def test_headers_and_bodies_never_logged(self):
        logger = logging.getLogger('engine')
        records = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = lambda rec: records.append(rec.getMessage())
        logger.addHandler(handler)
        old = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            header = b64url({'username': 'alice', 'password': SECRET})
            self.dist.script = [errors.EngineError('registry down')]
            self.api('POST', '/images/create?fromImage=app&tag=v1',
                     headers={'X-Registry-Auth': header})
            self.dist.script = PULL_SCRIPT[:1] + [ValueError('boom')]
            self.api('POST', '/images/create?fromImage=app&tag=v1',
                     headers={'X-Registry-Auth': header})
            self.api('POST', '/images/create?fromImage=app&tag=v1',
                     headers={'X-Registry-Auth': header + '%%'})
            self.dist.login_error = errors.EngineError('login failed')
            daemons.api_json(self.sock, 'POST', '/auth',
                             {'username': 'alice', 'password': SECRET})
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old)
        self.assertTrue(any('/images/create' in r for r in records), records)
        text = '\n'.join(records)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(header[:20], text)


if __name__ == '__main__':
    unittest.main()
