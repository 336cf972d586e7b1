"""Event filters and times, ps output, prune filters and the change walk
(engine.events, engine.inspect_extras, engine.housekeeping)."""

import os
import shutil
import stat
import tempfile
import time
import unittest

import ddt

from engine import errors
from engine import events
from engine import housekeeping
from engine import inspect_extras
from engine.snapshotters import lowerview

NOW = 1_700_000_000 * 1_000_000_000


def container_event(action='start', cid='c' * 64, name='web', image='busybox', **attrs):
    attributes = {'name': name, 'image': image}
    attributes.update(attrs)
    return {'Type': 'container', 'Action': action, 'scope': 'local',
            'Actor': {'ID': cid, 'Attributes': attributes}}


def image_event(action='tag', iid='sha256:' + 'a' * 64, name='busybox:latest', **attrs):
    attributes = {'name': name}
    attributes.update(attrs)
    return {'Type': 'image', 'Action': action, 'scope': 'local',
            'Actor': {'ID': iid, 'Attributes': attributes}}


@ddt.ddt
class EventTimeTest(unittest.TestCase):

    @ddt.unpack
    @ddt.data(
        ('1700000000', NOW),
        ('1700000000.5', NOW + 500_000_000),
        ('1700000000.000000001', NOW + 1),
        ('1700000000.123456789', NOW + 123_456_789),
        ('2023-11-14T22:13:20Z', NOW),
        ('2023-11-14T22:13:20.25Z', NOW + 250_000_000),
        ('2023-11-14T23:13:20+01:00', NOW),
        ('10m', NOW - 600 * 1_000_000_000),
        ('1h30m', NOW - 5400 * 1_000_000_000),
        ('1.5s', NOW - 1_500_000_000),
    )
    def test_values(self, text, expected):
        self.assertEqual(expected, events.parse_time(text, now_ns=NOW))

    @ddt.data('', None)
    def test_empty_is_none(self, text):
        self.assertIsNone(events.parse_time(text))

    @ddt.data('yesterday', '10x', '1700000000.abc', '2023-13-45T00:00:00Z', '1h-2m')
    def test_invalid(self, text):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            events.parse_time(text, now_ns=NOW)
        self.assertIn(text, str(ctx.exception))


@ddt.ddt
class EventFilterTest(unittest.TestCase):

    @ddt.data({'type': ['container', 'image']}, {'event': ['die']},
              {'container': ['web']}, {'label': ['a=b', 'c']}, {'scope': ['local']},
              {'daemon': ['x']}, {'volume': ['v']}, {'network': ['n']}, {})
    def test_valid(self, filters):
        self.assertEqual(filters, events.validate_filters(filters))

    @ddt.unpack
    @ddt.data(({'foo': ['bar']}, "invalid filter 'foo'"),
              ({'type': ['bogus']}, "invalid filter 'type=bogus'"),
              ({'scope': ['galaxy']}, "invalid filter 'scope=galaxy'"),
              ({'Container': ['x']}, "invalid filter 'Container'"))
    def test_invalid(self, filters, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            events.validate_filters(filters)
        self.assertEqual(message, str(ctx.exception))

    @ddt.unpack
    @ddt.data(
        ({'type': ['container']}, container_event(), True),
        ({'type': ['image']}, container_event(), False),
        ({'type': ['image', 'container']}, container_event(), True),
        ({'event': ['start']}, container_event('start'), True),
        ({'event': ['stop']}, container_event('start'), False),
        ({'event': ['die', 'start']}, container_event('start'), True),
        # exec_* actions carry the command: a bare name matches by prefix.
        ({'event': ['exec_start']}, container_event('exec_start: sh -c x'), True),
        ({'event': ['exec_die']}, container_event('exec_die'), True),
        ({'event': ['exec']}, container_event('exec_die'), False),
        # container: the ID or the name, by prefix.
        ({'container': ['web']}, container_event(name='web'), True),
        ({'container': ['we']}, container_event(name='web'), True),
        ({'container': ['ccc']}, container_event(), True),
        ({'container': ['db']}, container_event(name='web'), False),
        ({'container': ['db', 'web']}, container_event(name='web'), True),
        ({'container': ['busybox']}, image_event(name='busybox'), True),
        ({'container': ['web']}, image_event(), False),
        # image: the ID, the reference or the name without its tag.
        ({'image': ['busybox']}, container_event(image='busybox'), True),
        ({'image': ['busybox']}, container_event(image='busybox:1.36'), True),
        ({'image': ['busybox:1.36']}, container_event(image='busybox:1.36'), True),
        ({'image': ['alpine']}, container_event(image='busybox'), False),
        ({'image': ['busybox']}, image_event(name='busybox:latest'), True),
        ({'image': ['sha256:' + 'a' * 64]}, image_event(name='x'), True),
        # labels: all must match; key alone or key=value.
        ({'label': ['a']}, container_event(a='1'), True),
        ({'label': ['a=1']}, container_event(a='1'), True),
        ({'label': ['a=2']}, container_event(a='1'), False),
        ({'label': ['a', 'b']}, container_event(a='1'), False),
        ({'label': ['a=1', 'b=2']}, container_event(a='1', b='2'), True),
        ({'scope': ['local']}, container_event(), True),
        ({'scope': ['swarm']}, container_event(), False),
        ({'type': ['container'], 'event': ['die'], 'container': ['web']},
         container_event('die', name='web'), True),
        ({'type': ['container'], 'event': ['die'], 'container': ['web']},
         container_event('start', name='web'), False),
    )
    def test_matches(self, filters, event, expected):
        self.assertEqual(expected, events.matches(event, filters))


class EventBusReplayTest(unittest.TestCase):

    def _bus(self, count=5, size=100):
        bus = events.EventBus(size=size)
        published = []
        for i in range(count):
            published.append(bus.publish('container', 'a%d' % i, 'id%d' % i, {'name': 'n%d' % i}))
            time.sleep(0.002)
        return bus, published

    def _replay(self, bus, since=None, until=None, match=None):
        out = []
        for e in bus.subscribe(since, until, match=match, stop=lambda: True, poll=0.01):
            if e is None:
                break
            out.append(e['Action'])
        return out

    def test_since_and_until_window(self):
        bus, pub = self._bus()
        got = self._replay(bus, pub[1]['timeNano'], pub[3]['timeNano'])
        self.assertEqual(['a1', 'a2', 'a3'], got)

    def test_until_alone_replays_everything_before_it(self):
        bus, pub = self._bus()
        self.assertEqual(['a0', 'a1', 'a2'], self._replay(bus, None, pub[2]['timeNano']))

    def test_no_since_no_replay(self):
        bus, _ = self._bus()
        self.assertEqual([], self._replay(bus))

    def test_filter_applies_to_replay(self):
        bus, pub = self._bus()
        got = self._replay(bus, 0, time.time_ns(),
                           match=lambda e: events.matches(e, {'container': ['n3']}))
        self.assertEqual(['a3'], got)

    def test_ring_is_bounded(self):
        bus, _ = self._bus(count=20, size=8)
        self.assertEqual(['a%d' % i for i in range(12, 20)],
                         self._replay(bus, 0, time.time_ns()))

    def test_past_until_ends_stream(self):
        bus, pub = self._bus(count=2)
        started = time.monotonic()
        got = [e['Action'] for e in bus.subscribe(0, pub[1]['timeNano'], poll=5)
               if e is not None]
        self.assertEqual(['a0', 'a1'], got)
        self.assertLess(time.monotonic() - started, 4)

    def test_legacy_fields(self):
        bus = events.EventBus()
        e = bus.publish('container', 'start', 'cid', {'image': 'busybox', 'name': 'x'})
        self.assertEqual(('start', 'cid', 'busybox'), (e['status'], e['id'], e['from']))
        e = bus.publish('image', 'tag', 'sha256:x', {'name': 'a:b'})
        self.assertEqual(('tag', 'sha256:x'), (e['status'], e['id']))
        self.assertNotIn('from', e)
        e = bus.publish('volume', 'create', 'v', {})
        self.assertNotIn('status', e)


@ddt.ddt
class PsTest(unittest.TestCase):
    EF = ('UID          PID    PPID  C STIME TTY          TIME CMD\n'
          'root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n'
          'root         100       1  0 10:01 ?        00:00:00 sleep 300\n'
          'root         101     100  0 10:01 ?        00:00:00 sh -c sleep 300 & sleep 300\n')

    def test_keeps_only_container_pids(self):
        out = inspect_extras.parse_ps_output(self.EF, [100, 101])
        self.assertEqual(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
                         out['Titles'])
        self.assertEqual([['root', '100', '1', '0', '10:01', '?', '00:00:00', 'sleep 300'],
                          ['root', '101', '100', '0', '10:01', '?', '00:00:00',
                           'sh -c sleep 300 & sleep 300']], out['Processes'])

    def test_thread_rows_follow_their_process(self):
        text = ('  PID TTY      STAT   TIME COMMAND\n'
                '  100 ?        -      0:00 app\n'
                '    - -        Sl     0:00 -\n'
                '  200 ?        -      0:00 other\n'
                '    - -        Sl     0:00 -\n')
        out = inspect_extras.parse_ps_output(text, [100])
        self.assertEqual([['100', '?', '-', '0:00', 'app'], ['-', '-', 'Sl', '0:00', '-']],
                         out['Processes'])

    def test_no_pid_column(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            inspect_extras.parse_ps_output('USER COMMAND\nroot init\n', [1])
        self.assertEqual("Couldn't find PID field in ps output", str(ctx.exception))

    @ddt.data('-ef', 'aux', '-o pid,comm', '-o pid=PID', '-eo pid,user')
    def test_ps_args_allowed(self, args):
        inspect_extras.validate_ps_args(args)

    @ddt.unpack
    @ddt.data(('-o user=PID', 'specifying "user=PID" is not allowed'),
              ('-o comm=PIDX', 'specifying "comm=PIDX" is not allowed'),
              ('a\0b', 'ps_args must not contain NUL characters'),
              ('x' * 2000, 'ps_args is too long (2000 characters, at most 1024)'))
    def test_ps_args_refused(self, args, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            inspect_extras.validate_ps_args(args)
        self.assertEqual(message, str(ctx.exception))


@ddt.ddt
class PruneFilterTest(unittest.TestCase):

    @ddt.unpack
    @ddt.data(
        ({}, {}, True),
        ({'label': ['a']}, {'a': '1'}, True),
        ({'label': ['a=2']}, {'a': '1'}, False),
        ({'label': ['a', 'b']}, {'a': '1'}, False),
        ({'label!': ['a']}, {'a': '1'}, False),
        ({'label!': ['a']}, {}, True),
        ({'label!': ['a=2']}, {'a': '1'}, True),
        # label!: excluded only when every one of them matches (Docker's AND).
        ({'label!': ['a', 'b']}, {'a': '1'}, True),
        ({'label': ['a'], 'label!': ['b']}, {'a': '1', 'b': '2'}, False),
    )
    def test_labels(self, filters, labels, expected):
        self.assertEqual(expected, housekeeping._labels_match(filters, labels))

    def test_until(self):
        self.assertIsNone(housekeeping._until({}))
        self.assertEqual(NOW, housekeeping._until({'until': ['1700000000']}))
        with self.assertRaises(errors.InvalidArgument) as ctx:
            housekeeping._until({'until': ['yesterday']})
        self.assertEqual('failed to parse value as time or duration: "yesterday"',
                         str(ctx.exception))
        with self.assertRaises(errors.InvalidArgument) as ctx:
            housekeeping._until({'until': ['1h', '2h']})
        self.assertEqual('more than one until filter specified', str(ctx.exception))

    @ddt.data('foo', 'dangling', 'status')
    def test_unknown_container_prune_filter(self, key):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            housekeeping._check_filters({key: ['x']}, housekeeping.CONTAINER_PRUNE_FILTERS)
        self.assertEqual("invalid filter '%s'" % key, str(ctx.exception))


class ChangesWalkTest(unittest.TestCase):
    """The change list over real directories: an image of two overlay
    layers and a container's upper dir (whiteouts are 0/0 char devices)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bottom = self.mk('bottom', {'bin/sh': 'sh', 'bin/ls': 'ls', 'etc/passwd': 'root',
                                         'usr/lib/a': 'a', 'home/u/f': 'f', 'tmp/': None})
        self.top = self.mk('top', {'usr/lib/b': 'b'})
        self.whiteout(os.path.join(self.top, 'home'))
        self.lower = lowerview.LowerView([self.top, self.bottom])
        # Same mtimes below and above: only real changes count.
        self.upper = os.path.join(self.tmp, 'upper')
        os.mkdir(self.upper)

    def mk(self, name, files):
        root = os.path.join(self.tmp, name)
        os.makedirs(root)
        for rel, content in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path.rstrip('/')), exist_ok=True)
            if content is None:
                os.makedirs(path, exist_ok=True)
            else:
                with open(path, 'w') as f:
                    f.write(content)
                os.utime(path, (1000, 1000))
        return root

    @staticmethod
    def whiteout(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))

    def up(self, rel, content=''):
        path = os.path.join(self.upper, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(content)
        return path

    def updir(self, rel):
        os.makedirs(os.path.join(self.upper, rel), exist_ok=True)
        src = os.path.join(self.bottom, rel)
        if os.path.isdir(src):
            st = os.stat(src)
            os.chmod(os.path.join(self.upper, rel), stat.S_IMODE(st.st_mode))

    def changes(self):
        return [(c['Kind'], c['Path']) for c in inspect_extras.changes(self.upper, self.lower)]

    def test_lower_view_merges_layers(self):
        self.assertIsNotNone(self.lower.find('/usr/lib/a'))
        self.assertIsNotNone(self.lower.find('/usr/lib/b'))
        self.assertIsNone(self.lower.find('/home/u/f'))   # whited out by the top layer
        self.assertIsNone(self.lower.find('/nope'))
        self.assertEqual({'a', 'b'}, self.lower.children('/usr/lib'))
        self.assertNotIn('home', self.lower.children(''))

    def test_add_modify_delete(self):
        self.up('x')                                # added at the root
        self.updir('bin')
        self.up('bin/sh', 'patched')                # modified (size and mtime)
        self.whiteout(os.path.join(self.upper, 'bin/ls'))
        self.updir('tmp')
        self.up('tmp/a/b/c')
        self.assertEqual([(0, '/bin'), (2, '/bin/ls'), (0, '/bin/sh'), (0, '/tmp'),
                          (1, '/tmp/a'), (1, '/tmp/a/b'), (1, '/tmp/a/b/c'), (1, '/x')],
                         self.changes())

    def test_copied_up_but_unchanged_file_is_not_a_change(self):
        self.updir('etc')
        path = self.up('etc/passwd', 'root')
        os.utime(path, (1000, 1000))
        self.assertEqual([], self.changes())

    def test_opaque_directory_deletes_what_it_hid(self):
        self.updir('usr')
        self.updir('usr/lib')
        os.setxattr(os.path.join(self.upper, 'usr/lib'), 'trusted.overlay.opaque', b'y')
        self.up('usr/lib/new')
        self.assertEqual([(0, '/usr'), (0, '/usr/lib'), (2, '/usr/lib/a'), (2, '/usr/lib/b'),
                          (1, '/usr/lib/new')], self.changes())

    def test_runtime_mount_points_are_hidden(self):
        # What runc makes for /proc, /sys and the /etc bind mounts when the
        # image lacks them: Docker keeps these in its init layer.
        for d in ('proc', 'sys', 'dev/pts'):
            os.makedirs(os.path.join(self.upper, d))
        self.updir('etc')
        self.up('etc/hosts')
        self.up('etc/resolv.conf')
        self.up('etc/hostname')
        self.assertEqual([], self.changes())
        self.up('dev/mine')
        self.assertEqual([(0, '/dev'), (1, '/dev/mine')], self.changes())

    def test_mode_change_of_a_directory(self):
        self.updir('tmp')
        os.chmod(os.path.join(self.upper, 'tmp'), 0o700)
        self.assertEqual([(0, '/tmp')], self.changes())

    def test_full_copy_compares_every_entry(self):
        # vfs: the container's directory is a whole copy of the image.
        full = os.path.join(self.tmp, 'full')
        shutil.copytree(self.bottom, full, symlinks=True)
        for d in ('bin', 'etc', 'home', 'tmp', 'usr'):
            shutil.copystat(os.path.join(self.bottom, d), os.path.join(full, d))
        with open(os.path.join(full, 'etc/passwd'), 'w') as f:
            f.write('changed!')
        os.unlink(os.path.join(full, 'bin/ls'))
        shutil.rmtree(os.path.join(full, 'home'))
        stats = {}
        found = inspect_extras.changes(full, lowerview.LowerView([self.bottom]),
                                       full_copy=True, stats=stats)
        self.assertEqual([(0, '/bin'), (2, '/bin/ls'), (0, '/etc'), (0, '/etc/passwd'),
                          (2, '/home')], [(c['Kind'], c['Path']) for c in found])
        self.assertEqual(len('changed!'), inspect_extras.changes_size(stats))

    def test_changes_size_counts_files_once(self):
        a = self.up('big', 'x' * 1000)
        os.link(a, os.path.join(self.upper, 'big2'))
        self.updir('bin')
        self.up('bin/sh', 'patched')
        self.whiteout(os.path.join(self.upper, 'bin/ls'))
        stats = {}
        inspect_extras.changes(self.upper, self.lower, stats=stats)
        self.assertEqual(1000 + len('patched'), inspect_extras.changes_size(stats))

    def test_symlinked_directory_is_not_followed(self):
        # A container swapped a directory for a symlink to a host path: the
        # walk reports the symlink and never lists what it points to.
        host_dir = os.path.join(self.tmp, 'hostsecret')
        os.makedirs(host_dir)
        with open(os.path.join(host_dir, 'key'), 'w') as f:
            f.write('secret')
        os.symlink(host_dir, os.path.join(self.upper, 'tmp'))
        stats = {}
        found = inspect_extras.changes(self.upper, self.lower, stats=stats)
        self.assertEqual([(0, '/tmp')], [(c['Kind'], c['Path']) for c in found])
        self.assertEqual(len(host_dir), inspect_extras.changes_size(stats))


class ImageEventAttributesTest(unittest.TestCase):

    class FakeImages(object):
        class Img(object):
            config = {'config': {'Labels': {'team': 'a', 'name': 'from-label'}}}

        def resolve(self, ref):
            if ref != 'sha256:present':
                raise errors.NoSuchImage(ref)
            return self.Img()

    def test_labels_then_name(self):
        attrs = events.image_attributes(self.FakeImages(), 'sha256:present', {'name': 'x:1'})
        self.assertEqual({'team': 'a', 'name': 'x:1'}, attrs)

    def test_deleted_image_has_no_labels(self):
        attrs = events.image_attributes(self.FakeImages(), 'sha256:gone', {'name': 'sha256:gone'})
        self.assertEqual({'name': 'sha256:gone'}, attrs)

    def test_reference_text(self):
        self.assertEqual('myimg:v1', events.reference_text('myimg', 'v1'))
        self.assertEqual('myimg:latest', events.reference_text('myimg', None))
        self.assertEqual('reg.example:5000/a/b:2', events.reference_text('reg.example:5000/a/b', '2'))
        self.assertEqual('', events.reference_text(None, 'v1'))
        self.assertEqual('', events.reference_text('BAD NAME', None))


class SizeCacheTest(unittest.TestCase):

    class Snap(object):
        def __init__(self):
            self.calls = 0
            self.size = 10

        def changes_size(self, key):
            self.calls += 1
            return self.size

    class C(object):
        def __init__(self, status='exited'):
            self.id = 'c1'
            self.state = {'Status': status, 'StartedAt': 'a', 'FinishedAt': 'b'}

        def is_running(self):
            return self.state['Status'] in ('running', 'paused')

    def test_stopped_container_is_measured_once_per_state(self):
        snap, c = self.Snap(), self.C()
        cache = housekeeping.SizeCache(snap, ttl=0)
        self.assertEqual(10, cache.size_rw(c))
        snap.size = 20
        self.assertEqual(10, cache.size_rw(c))
        self.assertEqual(1, snap.calls)
        c.state['FinishedAt'] = 'later'      # it ran again: measured again
        self.assertEqual(20, cache.size_rw(c))

    def test_running_container_is_measured_again_after_the_ttl(self):
        snap, c = self.Snap(), self.C('running')
        cache = housekeeping.SizeCache(snap, ttl=60)
        cache.size_rw(c)
        cache.size_rw(c)
        self.assertEqual(1, snap.calls)
        cache.ttl = 0
        snap.size = 30
        self.assertEqual(30, cache.size_rw(c))

    def test_entries_go_with_their_containers(self):
        snap, c = self.Snap(), self.C()
        cache = housekeeping.SizeCache(snap)
        cache.size_rw(c)
        self.assertEqual(1, len(cache._entries))
        del c
        self.assertEqual(0, len(cache._entries))
