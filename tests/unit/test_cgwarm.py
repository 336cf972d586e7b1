"""engine.runtime.cgwarm: finding the engine's own cgroup.procs and the
warmer's bursts of moves, over fake cgroup trees (a plain file stands in
for cgroup.procs)."""

import os
import shutil
import tempfile
import threading
import time
import unittest
from unittest import mock

from engine.runtime import cgwarm
from engine.runtime import monitor
from tests.unit.test_limits_cgroups import write

HYBRID = """\
25 30 0:23 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
32 25 0:30 / /sys/fs/cgroup/pids rw shared:16 - cgroup cgroup rw,pids
"""

V1_ONLY = """\
27 25 0:25 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
32 25 0:30 /lxc/box /sys/fs/cgroup/pids rw shared:16 - cgroup cgroup rw,pids
"""



class OwnProcsFileTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='cgwarm')
        self.addCleanup(shutil.rmtree, self.root)

    def test_hybrid_host_uses_the_v2_tree(self):
        write(self.root, 'proc/self/mountinfo', HYBRID)
        write(self.root, 'proc/self/cgroup',
              '2:pids:/system.slice/novadocker.service\n'
              '1:name=systemd:/system.slice/novadocker.service\n'
              '0::/system.slice/novadocker.service\n')
        want = write(self.root, 'sys/fs/cgroup/unified/system.slice/novadocker.service/'
                     'cgroup.procs', '')
        write(self.root, 'sys/fs/cgroup/pids/system.slice/novadocker.service/cgroup.procs', '')
        self.assertEqual(want, cgwarm.own_procs_file(self.root))

    def test_v1_host_uses_a_v1_hierarchy_mounted_from_a_subtree(self):
        write(self.root, 'proc/self/mountinfo', V1_ONLY)
        write(self.root, 'proc/self/cgroup', '2:pids:/lxc/box/engine\n'
                                             '1:name=systemd:/engine\n')
        # Only the pids hierarchy has the group: the systemd one is skipped.
        want = write(self.root, 'sys/fs/cgroup/pids/engine/cgroup.procs', '')
        self.assertEqual(want, cgwarm.own_procs_file(self.root))

    def test_the_locator_reads_the_mounts_once_and_the_group_every_time(self):
        write(self.root, 'proc/self/mountinfo', HYBRID)
        write(self.root, 'proc/self/cgroup', '0::/a\n')
        first = write(self.root, 'sys/fs/cgroup/unified/a/cgroup.procs', '')
        second = write(self.root, 'sys/fs/cgroup/unified/b/cgroup.procs', '')
        locate = cgwarm.OwnCgroup(self.root)
        with mock.patch.object(cgwarm.cgroups.Mounts, 'probe',
                               wraps=cgwarm.cgroups.Mounts.probe) as probe:
            self.assertEqual(first, locate())
            # Moved by its supervisor: the next move follows it.
            write(self.root, 'proc/self/cgroup', '0::/b\n')
            self.assertEqual(second, locate())
        self.assertEqual(1, probe.call_count)

    def test_no_cgroups(self):
        write(self.root, 'proc/self/mountinfo', '')
        write(self.root, 'proc/self/cgroup', '')
        self.assertIsNone(cgwarm.own_procs_file(self.root))

    def test_this_host(self):
        procs = cgwarm.own_procs_file()
        if procs is None:
            self.skipTest('no cgroup hierarchy mounted here')
        self.assertTrue(procs.endswith('/cgroup.procs'), procs)
        self.assertTrue(os.path.exists(procs), procs)


class MigrationWarmerTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='cgwarm')
        self.addCleanup(shutil.rmtree, self.dir)
        self.procs = os.path.join(self.dir, 'cgroup.procs')
        open(self.procs, 'w').close()
        self.located = []

    def locate(self):
        self.located.append(self.procs)
        return self.procs

    def warmer(self, **kw):
        kw.setdefault('interval', 0.001)
        kw.setdefault('hold', 0.05)
        w = cgwarm.MigrationWarmer(locate=self.locate, pid=4242, **kw)
        self.addCleanup(w.stop)
        return w

    def wait_for(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('condition not reached in %ss' % timeout)
            time.sleep(0.005)

    def wait_idle(self, w):
        # Idle: the move count stops changing for several intervals.
        last = -1
        while w.moves != last:
            last = w.moves
            time.sleep(w.hold + 0.05)

    def test_a_kick_moves_this_pid_into_the_located_group_then_stops(self):
        w = self.warmer()
        w.kick()
        self.wait_for(lambda: w.moves >= 3)
        self.wait_idle(w)
        with open(self.procs) as f:
            self.assertEqual('4242', f.read())  # each move opens and writes anew
        self.assertEqual(len(self.located), w.moves)  # located before every move
        self.assertTrue(w.enabled)
        moves = w.moves
        time.sleep(0.1)
        self.assertEqual(moves, w.moves)  # idle until the next kick
        w.kick()
        self.wait_for(lambda: w.moves > moves)

    def test_without_a_pid_it_moves_the_process_it_runs_in(self):
        w = cgwarm.MigrationWarmer(locate=self.locate, interval=0.001, hold=0.05)
        self.addCleanup(w.stop)
        self.assertTrue(w.move())
        with open(self.procs) as f:
            self.assertEqual(str(os.getpid()), f.read())

    def test_one_thread_for_many_kicks(self):
        w = self.warmer(hold=0.2)
        before = threading.active_count()
        for _ in range(20):
            w.kick()
        self.assertLessEqual(threading.active_count(), before + 1)
        self.wait_for(lambda: w.moves >= 1)

    def test_kicks_extend_the_burst(self):
        clock = [100.0]
        w = self.warmer(clock=lambda: clock[0], hold=1.0)
        w.kick()
        self.wait_for(lambda: w.moves >= 2)
        clock[0] = 100.9
        w.kick()                 # deadline now 101.9
        clock[0] = 101.5
        moves = w.moves
        self.wait_for(lambda: w.moves >= moves + 2)
        clock[0] = 102.0         # past the deadline: the thread goes idle
        self.wait_idle(w)

    def test_an_error_switches_it_off_for_good(self):
        os.unlink(self.procs)
        w = self.warmer()
        with self.assertLogs('engine.runtime.cgwarm', 'INFO') as logs:
            w.kick()
            self.wait_for(lambda: not w.enabled)
        self.assertIn('Not warming the cgroup migration lock', logs.output[0])
        self.assertIn(self.procs, logs.output[0])
        open(self.procs, 'w').close()
        w.kick()
        time.sleep(0.05)
        self.assertEqual(0, w.moves)
        with open(self.procs) as f:
            self.assertEqual('', f.read())

    def test_no_group_found_switches_it_off(self):
        w = cgwarm.MigrationWarmer(locate=lambda: None, interval=0.001, hold=0.05)
        self.addCleanup(w.stop)
        w.kick()
        self.wait_for(lambda: not w.enabled)
        self.assertEqual(0, w.moves)

    def test_stop_ends_the_thread(self):
        w = self.warmer(hold=60)
        w.kick()
        self.wait_for(lambda: w.moves >= 1)
        w.stop()
        self.wait_for(lambda: w._thread is None)
        moves = w.moves
        time.sleep(0.05)
        self.assertEqual(moves, w.moves)


class TaskServiceKicksTest(unittest.TestCase):
    """The task service warms the lock before each runtime create and exec."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='cgwarm')
        self.addCleanup(shutil.rmtree, self.dir)
        self.warmer = mock.Mock()
        self.tasks = monitor.TaskService(mock.Mock(), self.dir, warmer=self.warmer)

    def test_default_is_no_warmer(self):
        tasks = monitor.TaskService(mock.Mock(), self.dir)
        self.assertFalse(tasks.warmer.enabled)
        tasks.warmer.kick()

    def test_create_kicks_before_the_runtime_runs(self):
        order = []
        self.warmer.kick.side_effect = lambda: order.append('kick')

        class Spawned(Exception):
            pass

        def spawn(*args):
            order.append('conmon')
            raise Spawned()
        bundle = os.path.join(self.dir, 'bundle')
        with mock.patch.object(self.tasks, '_spawn_conmon', side_effect=spawn):
            with self.assertRaises(Spawned):
                self.tasks.create('a' * 64, bundle, {'process': {}})
            self.assertEqual(['kick', 'conmon'], order)
            # The same when conmon starts before the spec is there.
            self.tasks.runtime.streams_spec = True
            with self.assertRaises(Spawned):
                self.tasks.begin_create('a' * 64, bundle)
        self.assertEqual(['kick', 'conmon'] * 2, order)

    def test_exec_kicks(self):
        cid = 'b' * 64
        os.makedirs(self.tasks.task_dir(cid))
        with mock.patch.object(monitor.execs, 'start', return_value='proc') as start:
            self.assertEqual('proc', self.tasks.exec(cid, {'args': ['true']}))
        self.warmer.kick.assert_called_once_with()
        start.assert_called_once()

    def test_exec_in_a_container_not_running_does_not_kick(self):
        with self.assertRaises(Exception):
            self.tasks.exec('c' * 64, {'args': ['true']})
        self.warmer.kick.assert_not_called()
