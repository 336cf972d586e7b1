import io
import json
import unittest

from engine import errors
from engine import logs
from engine import stdio
from engine import util
from engine.api import http
from engine.api import router


class ChunkedReaderTest(unittest.TestCase):
    def test_decodes_chunks(self):
        body = b'5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n'
        r = http.ChunkedReader(io.BytesIO(body))
        self.assertEqual(b'hel', r.read(3))
        self.assertEqual(b'lo world', r.read())
        self.assertEqual(b'', r.read())

    def test_truncated_body_is_an_error(self):
        r = http.ChunkedReader(io.BytesIO(b'10\r\nshort'))
        with self.assertRaises(errors.InvalidArgument):
            r.read()

    def test_bad_size(self):
        r = http.ChunkedReader(io.BytesIO(b'zz\r\n'))
        with self.assertRaises(errors.InvalidArgument):
            r.read()


class RouterTest(unittest.TestCase):
    def setUp(self):
        self.r = router.Router()
        self.r.add('GET', '/images/{name:.+}/json', 'inspect')
        self.r.add('POST', '/containers/{id}/start', 'start')

    def test_image_names_with_slashes(self):
        func, params = self.r.match('GET', '/images/localhost:5000/a/b:1/json')
        self.assertEqual('inspect', func)
        self.assertEqual('localhost:5000/a/b:1', params['name'])

    def test_head_uses_get(self):
        self.assertEqual('inspect', self.r.match('HEAD', '/images/x/json')[0])

    def test_wrong_method(self):
        with self.assertRaises(router.MethodNotAllowed):
            self.r.match('GET', '/containers/abc/start')

    def test_unknown(self):
        with self.assertRaises(errors.NotFound):
            self.r.match('GET', '/nope')


class FramingTest(unittest.TestCase):
    def test_frame_header(self):
        self.assertEqual(b'\x02\x00\x00\x00\x00\x00\x00\x03err', stdio.frame(2, b'err'))


class LogsTest(unittest.TestCase):
    def test_parse_full_and_partial(self):
        self.assertEqual(('2024-01-01T00:00:00.000000001+00:00', 1, b'hi\n'),
                         logs.parse_line(b'2024-01-01T00:00:00.000000001+00:00 stdout F hi\n'))
        self.assertEqual(2, logs.parse_line(b'2024-01-01T00:00:00Z stderr P part\n')[1])
        self.assertEqual(b'part', logs.parse_line(b'2024-01-01T00:00:00Z stderr P part\n')[2])
        self.assertIsNone(logs.parse_line(b'garbage\n'))

    def test_read_tail_since_and_streams(self):
        import tempfile
        with tempfile.NamedTemporaryFile() as f:
            for i in range(5):
                f.write(b'2024-01-01T00:00:0%d.000000000+00:00 %s F line%d\n'
                        % (i, b'stdout' if i % 2 == 0 else b'stderr', i))
            f.write(b'2024-01-01T00:00:09.0+00:00 stdout F unfinished')  # no newline yet
            f.flush()
            all_entries = list(logs.read(f.name))
            self.assertEqual(5, len(all_entries))
            self.assertEqual([b'line3\n', b'line4\n'], [e[2] for e in logs.read(f.name, tail=2)])
            self.assertEqual([b'line0\n', b'line2\n', b'line4\n'],
                             [e[2] for e in logs.read(f.name, stderr=False)])
            since = util.parse_rfc3339_ns('2024-01-01T00:00:03Z')
            self.assertEqual([b'line3\n', b'line4\n'],
                             [e[2] for e in logs.read(f.name, since_ns=since)])
            self.assertEqual([], list(logs.read(f.name, tail=0)))

    def test_docker_timestamp(self):
        self.assertEqual('2024-01-01T00:00:00.000000001Z',
                         logs.docker_timestamp('2024-01-01T00:00:00.000000001+00:00'))


class TimeArgTest(unittest.TestCase):
    def test_unix_and_rfc3339(self):
        self.assertEqual(1_500_000_000, util.parse_time_arg('1.5'))
        self.assertEqual(0, util.parse_time_arg(''))
        self.assertEqual(util.parse_rfc3339_ns('2024-01-01T00:00:00Z'),
                         util.parse_time_arg('2024-01-01T00:00:00Z'))
        with self.assertRaises(errors.InvalidArgument):
            util.parse_time_arg('yesterday')


class EventBusTest(unittest.TestCase):
    def test_replay_and_filter(self):
        from engine import events
        bus = events.EventBus()
        bus.publish('container', 'start', 'abc', {'name': 'x'})
        bus.publish('image', 'tag', 'sha256:1')
        got = []
        for e in bus.subscribe(since_ns=0, until_ns=10 ** 19, match=lambda e: e['Type'] == 'container',
                               stop=lambda: True):
            if e is None:
                break
            got.append(e)
        self.assertEqual(['start'], [e['Action'] for e in got])
        self.assertEqual('abc', json.loads(json.dumps(got[0]))['id'])
