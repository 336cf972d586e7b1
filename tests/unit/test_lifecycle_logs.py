"""Log options and rotation file handling (engine/logrotate.py) and reading
across rotated files (engine/logs.py), with conmon's rotation simulated."""

import os
import shutil
import tempfile
import threading
import time
import unittest

import ddt

from engine import errors
from engine import logrotate
from engine import logs
from engine import util


@ddt.ddt
class ParseSizeTest(unittest.TestCase):

    @ddt.data(
        ('0', 0), ('7', 7), ('100k', 100000), ('100K', 100000), ('10m', 10000000),
        ('1g', 1000000000), ('1.5k', 1500), ('2kb', 2000), ('2KB', 2000), ('1KiB', 1000),
        ('20MB', 20000000), ('5b', 5), ('3 m', 3000000), ('1t', 10 ** 12),
    )
    @ddt.unpack
    def test_parses_as_docker(self, text, expected):
        self.assertEqual(expected, logrotate.parse_size(text))

    @ddt.data(
        ('abc', "invalid size: 'abc'"), ('-1', "invalid size: '-1'"), ('', 'invalid size'),
        ('10q', "invalid suffix: 'q'"), ('10kbb', "invalid suffix: 'kbb'"),
        ('10kx', "invalid suffix: 'kx'"), ('1.2.3k', 'invalid size'), ('k', 'invalid size'),
        (None, 'invalid size'),
    )
    @ddt.unpack
    def test_rejects(self, text, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            logrotate.parse_size(text)
        self.assertIn(message, str(ctx.exception))


@ddt.ddt
class ValidateLogConfigTest(unittest.TestCase):

    @ddt.data(
        (None, {'Type': 'json-file', 'Config': {}}),
        ({'Type': ''}, {'Type': 'json-file', 'Config': {}}),
        ({'Type': 'k8s-file', 'Config': {'max-size': '1m'}},
         {'Type': 'k8s-file', 'Config': {'max-size': '1m'}}),
        ({'Config': {'max-size': '1k', 'max-file': '3', 'compress': 'false', 'mode': 'blocking'}},
         {'Type': 'json-file', 'Config': {'max-size': '1k', 'max-file': '3',
                                         'compress': 'false', 'mode': 'blocking'}}),
        ({'Config': {'max-file': '3'}}, {'Type': 'json-file', 'Config': {'max-file': '3'}}),
        ({'Config': {'compress': 'true', 'max-file': '3', 'max-size': '1k'}},
         {'Type': 'json-file', 'Config': {'compress': 'true', 'max-file': '3',
                                         'max-size': '1k'}}),
    )
    @ddt.unpack
    def test_accepts(self, config, expected):
        self.assertEqual(expected, logrotate.validate_log_config(config))

    @ddt.data(
        ({'Config': {'foo': '1'}}, "unknown log opt 'foo' for json-file log driver"),
        ({'Type': 'k8s-file', 'Config': {'foo': '1'}},
         "unknown log opt 'foo' for k8s-file log driver"),
        ({'Config': {'max-size': '0'}}, 'max-size must be a positive number'),
        ({'Config': {'max-size': '99999999p'}}, "invalid size: '99999999p'"),
        ({'Config': {'max-size': '1k', 'max-file': '0'}}, 'max-file cannot be less than 1'),
        ({'Config': {'max-file': '-2'}}, 'max-file cannot be less than 1'),
        ({'Config': {'max-file': '1e3'}}, 'strconv.Atoi: parsing "1e3"'),
        ({'Config': {'compress': 'true', 'max-size': '1k'}},
         'compress cannot be true when max-file is less than 2 or max-size is not set'),
        ({'Config': {'compress': 'true', 'max-file': '3'}},
         'compress cannot be true when max-file is less than 2 or max-size is not set'),
        ({'Config': {'compress': 'maybe'}}, 'strconv.ParseBool'),
        ({'Config': {'tag': '{{.Name}}'}}, "log opt 'tag' is not supported"),
        ({'Config': {'mode': 'non-blocking'}}, 'non-blocking'),
        ({'Config': {'mode': 'x'}}, 'logger: logging mode not supported: x'),
        ({'Config': {'max-size': 10}}, 'must map names to strings'),
        ({'Config': ['max-size']}, 'must map names to strings'),
        ({'Type': 'syslog'}, "log driver 'syslog' is not supported"),
        ({'Type': 'foo'}, 'error looking up logging plugin foo: plugin "foo" not found'),
        ({'Type': 3}, 'Type must be a string'),
        ('json-file', 'LogConfig must be a JSON object'),
    )
    @ddt.unpack
    def test_rejects(self, config, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            logrotate.validate_log_config(config)
        self.assertIn(message, str(ctx.exception))

    def test_engine_defaults_fill_missing_limits(self):
        out = logrotate.validate_log_config({}, with_defaults=True)
        self.assertEqual({'max-size': '20m', 'max-file': '5'}, out['Config'])
        out = logrotate.validate_log_config({'Config': {'max-size': '1m'}}, with_defaults=True)
        self.assertEqual({'max-size': '1m'}, out['Config'])  # Docker: max-file defaults to 1
        out = logrotate.validate_log_config({'Config': {'max-file': '2'}}, with_defaults=True)
        self.assertEqual({'max-size': '20m', 'max-file': '2'}, out['Config'])

    def test_limits(self):
        self.assertEqual((None, 1), logrotate.limits({}))
        self.assertEqual((100000, 3), logrotate.limits({'max-size': '100k', 'max-file': '3'}))
        self.assertEqual((None, 1), logrotate.container_limits({'LogConfig': {'Config': {}}}))


class _Dir(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='nd-logrotate-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.log = os.path.join(self.dir, 'container.log')
        self.n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, count=1, stream='stdout'):
        """Append full records to the current file, as conmon does."""
        with open(self.log, 'ab') as f:
            for _ in range(count):
                f.write(b'2024-01-01T00:00:%02d.%09d+00:00 %s F n%d\n'
                        % (self.n // 1000000000 % 60, self.n % 1000000000,
                           stream.encode(), self.n))
                self.n += 1

    def conmon_rotate(self):
        """conmon's reopen: open .tmp with O_TRUNC|O_CREAT, rename it over the log."""
        tmp = self.path('container.log.tmp')
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
        os.close(fd)
        os.rename(tmp, self.log)

    def numbered(self):
        return sorted(int(n.rsplit('.', 1)[1]) for n in os.listdir(self.dir)
                      if n.rsplit('.', 1)[1].isdigit())

    def read_all(self, **kw):
        return [int(e[2].split(b'n')[1]) for e in logs.read(self.log, **kw)]


class AdoptTest(_Dir):

    def test_rotation_keeps_max_file_and_order(self):
        self.write(3)
        logrotate.adopt(self.log, 3)
        self.assertEqual([1, 2], self.numbered())  # the current and the next one
        self.assertEqual(os.stat(self.log).st_ino,
                         os.stat(self.path('container.log.1')).st_ino)
        self.assertEqual(os.stat(self.path('container.log.tmp')).st_ino,
                         os.stat(self.path('container.log.2')).st_ino)
        for _ in range(5):
            self.conmon_rotate()
            self.write(3)
            logrotate.adopt(self.log, 3)
        # 6 files written: the 3 newest kept, plus the empty next one.
        self.assertEqual([4, 5, 6, 7], self.numbered())
        self.assertEqual(0, os.path.getsize(self.path('container.log.7')))
        self.assertEqual(list(range(9, 18)), self.read_all())
        self.assertEqual([15, 16, 17], self.read_all(tail=3))
        self.assertEqual(list(range(11, 18)), self.read_all(tail=7))
        self.assertEqual(list(range(9, 18)), self.read_all(tail=100))
        self.assertEqual([], self.read_all(tail=0))

    def test_nothing_lost_when_engine_is_one_rotation_late(self):
        self.write(2)
        logrotate.adopt(self.log, 5)
        self.conmon_rotate()   # uses the pre-created file
        self.write(2)
        self.conmon_rotate()   # no pre-created file: conmon makes its own
        self.write(2)
        logrotate.adopt(self.log, 5)
        self.assertEqual(list(range(6)), self.read_all())

    def test_engine_down_keeps_bounded_newest(self):
        """Several rotations with no engine: the pre-created file survives,
        the ones after it are dropped, the newest is there, in order."""
        self.write(2)
        logrotate.adopt(self.log, 2)
        for _ in range(4):
            self.conmon_rotate()
            self.write(2)
        logrotate.adopt(self.log, 2)
        self.assertEqual([2, 3, 8, 9], self.read_all())
        self.assertEqual(3, len(self.numbered()))  # 2 kept + next

    def test_late_adopt_renumbers_the_unused_precreated_file(self):
        self.write(1)
        logrotate.adopt(self.log, 9)        # 1 current, 2 pre-created
        self.conmon_rotate()                # 2 current
        self.write(1)
        self.conmon_rotate()                # conmon's own file, not numbered
        # The engine, from a view before that rotation, pre-creates 3.
        open(self.path('container.log.3'), 'w').close()
        os.link(self.path('container.log.3'), self.path('container.log.tmp'))
        self.write(1)
        logrotate.adopt(self.log, 9)
        cur = os.stat(self.log).st_ino
        tmp = os.stat(self.path('container.log.tmp')).st_ino
        seqs = {os.stat(self.path('container.log.%d' % s)).st_ino: s for s in self.numbered()}
        self.assertGreater(seqs[tmp], seqs[cur])
        self.conmon_rotate()
        self.write(1)
        logrotate.adopt(self.log, 9)
        self.assertEqual([0, 1, 2, 3], self.read_all())

    def test_prepare_start_numbers_a_big_previous_run(self):
        self.write(2)   # 2 records of ~47 bytes
        logrotate.prepare_start(self.log, 150)
        self.assertFalse(os.path.exists(self.log))
        self.write(1)  # the next run's conmon makes a new file
        logrotate.adopt(self.log, 5)
        self.assertEqual([0, 1, 2], self.read_all())
        self.assertEqual(2, len([s for s in self.numbered()
                                 if os.path.getsize(self.path('container.log.%d' % s))]))

    def test_prepare_start_appends_to_a_small_previous_run(self):
        self.write(1)
        logrotate.adopt(self.log, 5)
        ino = os.stat(self.log).st_ino
        logrotate.prepare_start(self.log, 1000)
        self.assertEqual(ino, os.stat(self.log).st_ino)
        self.write(1)
        logrotate.adopt(self.log, 5)
        self.assertEqual([0, 1], self.read_all())

    def test_prepare_start_without_rotation_keeps_appending(self):
        self.write(2)
        open(self.path('container.log.tmp'), 'w').close()  # crashed conmon's leftover
        logrotate.prepare_start(self.log, None)
        self.assertTrue(os.path.exists(self.log))
        self.assertFalse(os.path.exists(self.path('container.log.tmp')))
        self.write(1)
        self.assertEqual([0, 1, 2], self.read_all())

    def test_log_files_without_rotation(self):
        self.assertEqual([], logrotate.log_files(self.log))
        self.write(1)
        self.assertEqual([(self.log, None, os.stat(self.log).st_ino)],
                         logrotate.log_files(self.log))

    def test_filters_across_files(self):
        self.write(2)
        logrotate.adopt(self.log, 3)
        self.conmon_rotate()
        self.write(2, stream='stderr')
        logrotate.adopt(self.log, 3)
        self.assertEqual([0, 1], self.read_all(stderr=False))
        self.assertEqual([2, 3], self.read_all(stdout=False))
        base = util.parse_rfc3339_ns('2024-01-01T00:00:00Z')
        self.assertEqual([1, 2], [int(e[2].split(b'n')[1]) for e in logs.read(
            self.log, since_ns=base + 1, until_ns=base + 2)])


class CompressTest(_Dir):

    def test_rotated_files_compressed_and_read(self):
        self.write(2)
        self.assertEqual([], logrotate.adopt(self.log, 3))
        rotated = []
        for _ in range(3):
            self.conmon_rotate()
            self.write(2)
            rotated = logrotate.adopt(self.log, 3)
        # three kept: two rotated (to compress) and the current
        self.assertEqual([self.path('container.log.2'), self.path('container.log.3')], rotated)
        for path in rotated:
            logrotate.compress_file(path)
            self.assertFalse(os.path.exists(path))
            self.assertTrue(os.path.exists(path + '.gz'))
        self.assertEqual(list(range(2, 8)), self.read_all())
        self.assertEqual([5, 6, 7], self.read_all(tail=3))
        # the next rotations prune the compressed files as the plain ones
        self.conmon_rotate()
        self.write(2)
        self.assertEqual([self.path('container.log.4')], logrotate.adopt(self.log, 3))
        self.assertFalse(os.path.exists(self.path('container.log.2.gz')))
        self.assertEqual(list(range(4, 10)), self.read_all())

    def test_compress_of_a_pruned_file_leaves_nothing(self):
        self.write(1)
        logrotate.adopt(self.log, 2)
        path = self.path('container.log.1')
        os.unlink(path)
        logrotate.compress_file(path)
        self.assertFalse(os.path.exists(path + '.gz'))
        self.assertFalse(os.path.exists(path + '.gz.tmp'))

    def test_plain_file_compressed_after_listing_is_read_from_gz(self):
        self.write(3)
        logrotate.adopt(self.log, 3)
        path = self.path('container.log.1')
        self.conmon_rotate()
        logrotate.adopt(self.log, 3)
        logrotate.compress_file(path)
        with logrotate.open_log_file(path) as f:
            self.assertEqual(3, len(f.read().splitlines()))


class FollowTest(_Dir):

    def test_follow_reads_across_rotations(self):
        self.write(1)
        logrotate.adopt(self.log, 2)
        got = []
        running = threading.Event()
        running.set()

        def reader():
            for e in logs.read(self.log, follow=True, is_running=running.is_set,
                               poll_interval=0.01):
                if e is not None:
                    got.append(int(e[2].split(b'n')[1]))

        t = threading.Thread(target=reader)
        t.start()
        for _ in range(6):
            time.sleep(0.05)
            self.write(3)
            self.conmon_rotate()
            logrotate.adopt(self.log, 2)
        self.write(2)
        time.sleep(0.1)
        running.clear()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(list(range(21)), got)
