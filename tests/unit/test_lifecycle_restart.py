"""Restart policy decisions, backoff and validation (engine/restart.py)."""

import threading
import time
import unittest

import ddt

from engine import errors
from engine import restart


@ddt.ddt
class ValidateTest(unittest.TestCase):

    @ddt.data(
        (None, False, {'Name': 'no', 'MaximumRetryCount': 0}),
        ({}, False, {'Name': 'no', 'MaximumRetryCount': 0}),
        ({'Name': ''}, False, {'Name': 'no', 'MaximumRetryCount': 0}),
        ({'Name': '', 'MaximumRetryCount': 3}, False, {'Name': 'no', 'MaximumRetryCount': 0}),
        ({'Name': 'no'}, True, {'Name': 'no', 'MaximumRetryCount': 0}),
        ({'Name': 'always'}, False, {'Name': 'always', 'MaximumRetryCount': 0}),
        ({'Name': 'unless-stopped'}, False, {'Name': 'unless-stopped', 'MaximumRetryCount': 0}),
        ({'Name': 'on-failure'}, False, {'Name': 'on-failure', 'MaximumRetryCount': 0}),
        ({'Name': 'on-failure', 'MaximumRetryCount': 4}, False,
         {'Name': 'on-failure', 'MaximumRetryCount': 4}),
    )
    @ddt.unpack
    def test_accepts(self, policy, auto_remove, expected):
        self.assertEqual(expected, restart.validate_restart_policy(policy, auto_remove))

    @ddt.data(
        ({'Name': 'sometimes'}, False, "invalid restart policy 'sometimes'"),
        ({'Name': 'always', 'MaximumRetryCount': 1}, False,
         "maximum retry count cannot be used with restart policy 'always'"),
        ({'Name': 'no', 'MaximumRetryCount': 1}, False,
         "maximum retry count cannot be used with restart policy 'no'"),
        ({'Name': 'on-failure', 'MaximumRetryCount': -1}, False,
         'maximum retry count cannot be negative'),
        ({'Name': 'on-failure', 'MaximumRetryCount': True}, False, 'must be an integer'),
        ({'Name': 'on-failure', 'MaximumRetryCount': 1 << 40}, False, 'too large'),
        ({'Name': 3}, False, 'Name must be a string'),
        ('always', False, 'must be an object'),
        ({'Name': 'always'}, True, 'cannot specify both --restart and --rm'),
        ({'Name': 'on-failure', 'MaximumRetryCount': 2}, True,
         'cannot specify both --restart and --rm'),
    )
    @ddt.unpack
    def test_rejects(self, policy, auto_remove, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            restart.validate_restart_policy(policy, auto_remove)
        self.assertIn(message, str(ctx.exception))


@ddt.ddt
class DecisionTest(unittest.TestCase):

    @ddt.data(
        # policy, exit code, manually stopped, restart count, restart?
        (('no', 0), 1, False, 0, False),
        (('always', 0), 0, False, 0, True),
        (('always', 0), 0, True, 7, True),
        (('unless-stopped', 0), 0, False, 0, True),
        (('unless-stopped', 0), 3, True, 0, False),
        (('on-failure', 0), 0, False, 0, False),
        (('on-failure', 0), 1, False, 100, True),
        (('on-failure', 2), 1, False, 1, True),
        (('on-failure', 2), 1, False, 2, False),
        (('on-failure', 2), 137, True, 0, True),  # runtime: manual stop cancels elsewhere
    )
    @ddt.unpack
    def test_should_restart(self, policy, code, manual, count, expected):
        self.assertEqual(expected, restart.should_restart(policy, code, manual, count))

    @ddt.data(
        (('no', 0), 1, False, 0, False),
        (('always', 0), 0, True, 0, True),      # always comes back, even stopped by hand
        (('unless-stopped', 0), 0, True, 0, False),
        (('unless-stopped', 0), 137, False, 0, True),
        (('on-failure', 0), 137, True, 0, False),
        (('on-failure', 0), 0, False, 0, False),
        (('on-failure', 3), 1, False, 2, True),
        (('on-failure', 3), 1, False, 3, False),
    )
    @ddt.unpack
    def test_should_start_at_startup(self, policy, code, manual, count, expected):
        self.assertEqual(expected, restart.should_start_at_startup(policy, code, manual, count))

    @ddt.data(
        (0, 0.0, 0.1),
        (0.1, 0.0, 0.2),
        (0.2, 9.9, 0.4),
        (25.6, 1.0, 51.2),
        (51.2, 1.0, 60.0),
        (60.0, 1.0, 60.0),
        (60.0, 10.0, 0.1),   # ran 10 s: back to the first delay
        (0.4, 30.0, 0.1),
    )
    @ddt.unpack
    def test_next_delay(self, previous, ran_for, expected):
        self.assertAlmostEqual(expected, restart.next_delay(previous, ran_for))

    def test_policy_of_unknown_name_is_no(self):
        self.assertEqual(('no', 0), restart.policy_of({'RestartPolicy': {'Name': 'x'}}))
        self.assertEqual(('no', 0), restart.policy_of({}))


class _FakeContainer:
    def __init__(self, cid='c' * 64, policy=None, status='running'):
        self.id = cid
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.removed = False
        self.config = {}
        self.record = {
            'HostConfig': {'RestartPolicy': policy or {'Name': 'always'}},
            'RestartCount': 0, 'State': {'Status': status, 'StartedAt': '', 'ExitCode': 0},
        }
        self.saved = 0

    @property
    def host_config(self):
        return self.record['HostConfig']

    @property
    def state(self):
        return self.record['State']

    @property
    def status(self):
        return self.record['State']['Status']

    def save(self):
        self.saved += 1


class _FakeService:
    def __init__(self):
        self.restarted = []
        self.done = threading.Event()

    def policy_restart(self, cid, take):
        if take():
            self.restarted.append(cid)
        self.done.set()


class ManagerTest(unittest.TestCase):

    def setUp(self):
        self.service = _FakeService()
        self.manager = restart.RestartManager(self.service)
        self.manager.startup_done()
        self.addCleanup(self.manager.close)

    def test_policy_read_from_record_at_every_exit(self):
        """docker update changes HostConfig.RestartPolicy: the next exit obeys it."""
        c = _FakeContainer(policy={'Name': 'no', 'MaximumRetryCount': 0})
        self.assertIsNone(self.manager.after_exit(c, 1, 0))
        c.record['HostConfig']['RestartPolicy'] = {'Name': 'on-failure', 'MaximumRetryCount': 1}
        self.assertEqual(0.1, self.manager.after_exit(c, 1, 0))
        self.assertEqual('restarting', c.status)
        self.assertTrue(c.state['Restarting'] and c.state['Running'])
        self.assertEqual(1, c.record['RestartCount'])
        c.record['State'] = {'Status': 'exited', 'StartedAt': ''}
        self.assertIsNone(self.manager.after_exit(c, 1, 0))  # budget spent

    def test_backoff_doubles_per_consecutive_restart(self):
        c = _FakeContainer()
        delays = [self.manager.after_exit(c, 0, 0.5) for _ in range(4)]
        self.assertEqual([0.1, 0.2, 0.4, 0.8], delays)
        self.assertEqual(0.1, self.manager.after_exit(c, 0, 12))

    def test_start_rearms(self):
        c = _FakeContainer()
        self.manager.on_manual_signal(c, 15)
        self.assertTrue(c.record['HasBeenManuallyStopped'])
        self.assertIsNone(self.manager.after_exit(c, 0, 0))
        c.record['RestartCount'] = 3
        self.manager.on_start(c)
        self.assertEqual(0, c.record['RestartCount'])
        self.assertFalse(c.record['HasBeenManuallyStopped'])
        self.assertEqual(0.1, self.manager.after_exit(c, 0, 0))

    def test_other_signal_does_not_cancel_with_stop_signal_configured(self):
        c = _FakeContainer()
        c.config['StopSignal'] = 'SIGINT'
        self.manager.on_manual_signal(c, 1)  # SIGHUP: not the stop signal
        self.assertTrue(c.record['HasBeenManuallyStopped'])
        self.assertEqual(0.1, self.manager.after_exit(c, 0, 0))  # always ignores manual

    def test_scheduled_restart_runs(self):
        c = _FakeContainer()
        self.manager.schedule(c, 0.05)
        self.assertTrue(self.service.done.wait(5))
        self.assertEqual([c.id], self.service.restarted)
        self.assertFalse(self.manager.pending(c.id))

    def test_cancel_before_due_starts_nothing(self):
        c = _FakeContainer(status='restarting')
        self.manager.schedule(c, 0.2)
        self.assertTrue(self.manager.pending(c.id))
        with c.lock:  # as ContainerService calls it
            self.assertTrue(self.manager.on_manual_signal(c, 9))
        self.assertEqual('exited', c.status)
        self.assertFalse(c.state['Running'])
        self.assertFalse(self.manager.pending(c.id))
        time.sleep(0.4)
        self.assertEqual([], self.service.restarted)
        self.assertFalse(self.service.done.is_set())

    def test_reschedule_replaces_pending(self):
        c = _FakeContainer()
        self.manager.schedule(c, 0.3)
        self.manager.schedule(c, 0.05)
        self.assertTrue(self.service.done.wait(5))
        time.sleep(0.4)
        self.assertEqual([c.id], self.service.restarted)

    def test_close_drops_pending_and_thread(self):
        c = _FakeContainer()
        self.manager.schedule(c, 0.2)
        thread = self.manager._thread
        self.manager.close()
        self.assertFalse(thread.is_alive())
        time.sleep(0.3)
        self.assertEqual([], self.service.restarted)

    def test_no_restart_before_startup_done(self):
        manager = restart.RestartManager(self.service)
        self.addCleanup(manager.close)
        c = _FakeContainer()
        manager.schedule(c, 0.01)
        time.sleep(0.3)
        self.assertEqual([], self.service.restarted)
        manager.startup_done()
        self.assertTrue(self.service.done.wait(5))
        self.assertEqual([c.id], self.service.restarted)

    def test_startup_picks_policies(self):
        always = _FakeContainer('a' * 64, {'Name': 'always'}, 'exited')
        unless = _FakeContainer('b' * 64, {'Name': 'unless-stopped'}, 'exited')
        pending = _FakeContainer('d' * 64, {'Name': 'on-failure'}, 'restarting')
        for c in (always, unless):
            c.record['State']['StartedAt'] = '2024-01-01T00:00:00Z'
            c.record['HasBeenManuallyStopped'] = True
        never = _FakeContainer('e' * 64, {'Name': 'always'}, 'exited')  # never started
        manager = restart.RestartManager(self.service)
        self.addCleanup(manager.close)
        manager.startup([always, unless, pending, never])
        self.assertTrue(manager.pending(always.id))
        self.assertFalse(always.record['HasBeenManuallyStopped'])
        self.assertFalse(manager.pending(unless.id))
        self.assertTrue(manager.pending(pending.id))
        self.assertFalse(manager.pending(never.id))
        self.assertEqual('exited', never.status)


class StatusTextTest(unittest.TestCase):

    def test_restarting_as_docker_ps_shows_it(self):
        from engine.api import views
        state = {'Status': 'restarting', 'ExitCode': 1,
                 'FinishedAt': '2024-01-01T00:00:00Z', 'StartedAt': '2024-01-01T00:00:00Z'}
        now = 1704067202.5  # 2.5 s later
        self.assertEqual('Restarting (1) 2 seconds ago', views.status_text(state, now))
