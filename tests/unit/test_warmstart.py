"""engine.warmstart: when a start is prepared, who may take it, and that a
prepared start is always given up (never leaked) on every way out.  A fake
TaskService stands in for conmon and runc; the real ones are exercised in
tests/compat/test_engine_options.py::test_warm_start*."""

import os
import shutil
import tempfile
import threading
import time
import unittest

from engine import warmstart


class FakePending:
    def __init__(self, tasks, cid, streamed=True):
        self.tasks = tasks
        self.cid = cid
        self.proc = FakeProc() if streamed else None
        self.aborted = False

    def monitor_alive(self):
        return self.tasks.monitor_alive(self.cid, self.tasks.monitor_pid(self.cid))

    def abort(self):
        self.aborted = True
        self.tasks.alive.discard(self.cid)
        if self.tasks.abort_error:
            raise RuntimeError(self.tasks.abort_error)


class FakeProc:
    def wait(self, timeout=None):
        return 0


class FakeTasks:
    def __init__(self, fail=0, streamed=True):
        self.fail = fail
        self.streamed = streamed
        self.made = []
        self.alive = set()
        self.deleted = []
        self.abort_error = None
        self.kicks = []
        self.made_event = threading.Event()

    def begin_create(self, cid, bundle, log_path=None, log_size_max=None, kick=True):
        self.kicks.append(kick)
        if self.fail:
            self.fail -= 1
            raise OSError('no conmon here')
        assert os.path.isdir(bundle) and log_path.startswith(os.path.dirname(bundle))
        pending = FakePending(self, cid, self.streamed)
        pending.log_size_max = log_size_max
        self.made.append(pending)
        self.alive.add(cid)
        self.made_event.set()
        return pending

    def monitor_pid(self, cid):
        return 4242 if cid in self.alive else None

    def monitor_alive(self, cid, pid):
        return bool(pid) and cid in self.alive

    def delete(self, cid, force=False):
        self.deleted.append(cid)
        self.alive.discard(cid)


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met in %.1f s' % timeout)
        time.sleep(0.005)


class WarmStartTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='warmstart')
        self.addCleanup(shutil.rmtree, self.root)

    def make(self, tasks, **kw):
        kw.setdefault('idle', 0.05)
        warm = warmstart.WarmStart(tasks, self.root, log_size_max=20000000, **kw)
        warm.start()
        self.addCleanup(warm.close)
        return warm

    def test_prepares_one_start_with_its_directory_and_bundle(self):
        tasks = FakeTasks()
        warm = self.make(tasks)
        wait_for(lambda: tasks.made)
        time.sleep(0.2)
        self.assertEqual(1, len(tasks.made))  # one at a time, however long idle
        cid = tasks.made[0].cid
        self.assertEqual([cid], os.listdir(self.root))
        self.assertTrue(os.path.isdir(os.path.join(self.root, cid, 'bundle')))
        self.assertEqual(20000000, tasks.made[0].log_size_max)
        self.assertEqual([False], tasks.kicks)  # no cgroup warming for it
        prepared = warm.take()
        self.assertEqual(cid, prepared.cid)
        self.assertIs(tasks.made[0], prepared.pending)
        self.assertIsNone(warm.take())

    def test_only_containers_of_its_shape_fit(self):
        warm = warmstart.WarmStart(FakeTasks(), self.root, log_size_max=100)
        self.assertTrue(warm.fits(False, False, 100))
        self.assertFalse(warm.fits(True, False, 100))
        self.assertFalse(warm.fits(False, True, 100))
        self.assertFalse(warm.fits(False, False, None))
        self.assertFalse(warm.fits(False, False, 200))

    def test_waits_for_the_engine_to_be_idle_before_preparing_again(self):
        tasks = FakeTasks()
        warm = self.make(tasks, idle=0.3)
        wait_for(lambda: tasks.made)
        warm.take()
        for _ in range(5):  # creates and starts keep coming
            time.sleep(0.1)
            warm.touch()
        self.assertEqual(1, len(tasks.made))
        wait_for(lambda: len(tasks.made) == 2)

    def test_a_prepared_start_whose_monitor_died_is_given_up_not_taken(self):
        tasks = FakeTasks()
        warm = self.make(tasks, idle=5)
        tasks.made_event.wait(7)
        cid = tasks.made[0].cid
        tasks.alive.discard(cid)  # conmon was killed
        self.assertIsNone(warm.take())
        self.assertTrue(tasks.made[0].aborted)
        self.assertEqual([], os.listdir(self.root))

    def test_close_gives_up_the_prepared_start_and_its_directory(self):
        tasks = FakeTasks()
        warm = self.make(tasks)
        wait_for(lambda: tasks.made)
        warm.close()
        self.assertTrue(tasks.made[0].aborted)
        self.assertEqual([], os.listdir(self.root))
        time.sleep(0.2)
        self.assertEqual(1, len(tasks.made))  # nothing prepared after close

    def test_discard_removes_the_directory_even_when_the_abort_fails(self):
        tasks = FakeTasks()
        warm = self.make(tasks)
        wait_for(lambda: tasks.made)
        prepared = warm.take()
        tasks.abort_error = 'conmon went away'
        warm.discard(prepared)
        self.assertEqual([prepared.cid], tasks.deleted)  # released by force instead
        self.assertFalse(os.path.exists(prepared.path))

    def test_discard_can_leave_the_directory_to_the_caller(self):
        tasks = FakeTasks()
        warm = self.make(tasks)
        wait_for(lambda: tasks.made)
        prepared = warm.take()
        warm.discard(prepared, remove_dir=False)
        self.assertTrue(prepared.pending.aborted)
        self.assertTrue(os.path.isdir(prepared.path))

    def test_failures_leave_nothing_and_stop_after_a_few(self):
        tasks = FakeTasks(fail=10)
        warm = self.make(tasks, idle=0.01)
        wait_for(lambda: len(tasks.kicks) == warmstart.MAX_FAILURES)
        time.sleep(0.3)
        self.assertEqual(warmstart.MAX_FAILURES, len(tasks.kicks))  # gave up
        self.assertEqual([], os.listdir(self.root))
        self.assertIsNone(warm.take())

    def test_a_failure_is_retried(self):
        tasks = FakeTasks(fail=1)
        warm = self.make(tasks, idle=0.01)
        wait_for(lambda: tasks.made)
        self.assertIsNotNone(warm.take())

    def test_a_runtime_that_wants_a_plain_file_gets_no_prepared_start(self):
        tasks = FakeTasks(streamed=False)
        warm = self.make(tasks)
        wait_for(lambda: tasks.kicks)
        time.sleep(0.2)
        self.assertEqual(1, len(tasks.kicks))
        self.assertTrue(tasks.made[0].aborted)
        self.assertEqual([], os.listdir(self.root))
        self.assertIsNone(warm.take())


if __name__ == '__main__':
    unittest.main()
