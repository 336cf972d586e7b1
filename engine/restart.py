"""Restart policies: no, always, on-failure[:N], unless-stopped.

Modelled on Docker's restartmanager:

* the delay before a restart starts at 100 ms and doubles with each
  consecutive restart, up to one minute; it falls back to 100 ms once the
  container ran for 10 s or more, and when a client starts it;
* ``on-failure`` restarts non-zero exits only, at most MaximumRetryCount
  times (0: no limit); the count (RestartCount) is reset by a client's start;
* a stop or kill through the API marks the container manually stopped
  (``HasBeenManuallyStopped``, persisted) and cancels its policy until the
  next start: it does not come back;
* when the engine starts, ``always`` containers are started even if they
  were stopped by hand, ``unless-stopped`` ones only if they were not;
  ``on-failure`` ones whose non-zero exit was not a manual stop are
  restarted within their retry budget (exits while the engine was down go
  through the normal exit path, with its backoff).

While it waits out the delay a container is ``restarting`` (Running and
Restarting true in inspect, as Docker shows it).  One scheduler thread
holds every pending restart; stop, kill and rm cancel a pending restart
under the container's lock, so a cancelled restart never starts anything.
"""

import heapq
import itertools
import signal
import threading
import time

from oslo_log import log as logging

from engine import errors
from engine import util

LOG = logging.getLogger(__name__)

NO, ALWAYS, ON_FAILURE, UNLESS_STOPPED = 'no', 'always', 'on-failure', 'unless-stopped'
POLICIES = (NO, ALWAYS, ON_FAILURE, UNLESS_STOPPED)

FIRST_DELAY = 0.1          # seconds, Docker's defaultTimeout
MAX_DELAY = 60.0           # Docker's maxRestartTimeout
BACKOFF_MULTIPLIER = 2
RESET_AFTER_RUNNING = 10.0  # a run this long resets the backoff

RESTARTING = 'restarting'


def validate_restart_policy(policy, auto_remove=False):
    """Check a HostConfig.RestartPolicy; return it normalised.

    Raises InvalidArgument with Docker's messages.  ``None`` or an empty
    name means "no" (what clients send when no policy is given).
    """
    if policy is None:
        policy = {}
    if not isinstance(policy, dict):
        raise errors.InvalidArgument('HostConfig.RestartPolicy must be an object')
    name = policy.get('Name')
    if name is None:
        name = ''
    if not isinstance(name, str):
        raise errors.InvalidArgument('HostConfig.RestartPolicy.Name must be a string')
    count = policy.get('MaximumRetryCount')
    if count is None:
        count = 0
    if isinstance(count, bool) or not isinstance(count, int):
        raise errors.InvalidArgument('HostConfig.RestartPolicy.MaximumRetryCount must be '
                                     'an integer')
    if name in (ALWAYS, UNLESS_STOPPED, NO):
        if count != 0:
            raise errors.InvalidArgument(
                "maximum retry count cannot be used with restart policy '%s'" % name)
    elif name == ON_FAILURE:
        if count < 0:
            raise errors.InvalidArgument('maximum retry count cannot be negative')
        if count > 2 ** 31 - 1:
            raise errors.InvalidArgument('maximum retry count %d is too large' % count)
    elif name == '':
        # Docker accepts an empty name (older clients send it) as "no".
        name, count = NO, 0
    else:
        raise errors.InvalidArgument("invalid restart policy '%s'" % name)
    if auto_remove and name != NO:
        raise errors.InvalidArgument(
            'conflicting options: cannot specify both --restart and --rm')
    return {'Name': name, 'MaximumRetryCount': count}


def policy_of(host_config):
    """(name, maximum retry count) of a stored HostConfig."""
    policy = (host_config or {}).get('RestartPolicy') or {}
    name = policy.get('Name') or NO
    count = policy.get('MaximumRetryCount') or 0
    return (name if name in POLICIES else NO), int(count)


def should_restart(policy, exit_code, manually_stopped, restart_count):
    """Docker's ShouldRestart: restart after this exit?  (The caller handles
    a cancelled policy, which never restarts.)"""
    name, max_count = policy
    if name == ALWAYS:
        return True
    if name == UNLESS_STOPPED:
        return not manually_stopped
    if name == ON_FAILURE:
        if max_count and restart_count >= max_count:
            return False
        return exit_code != 0
    return False


def should_start_at_startup(policy, exit_code, manually_stopped, restart_count):
    """A stopped container the engine finds when it starts: start it?"""
    name, max_count = policy
    if name == ALWAYS:
        return True
    if name == UNLESS_STOPPED:
        return not manually_stopped
    if name == ON_FAILURE:
        return (not manually_stopped and exit_code != 0
                and (not max_count or restart_count < max_count))
    return False


def next_delay(previous, ran_for):
    """The delay before the next restart, given the previous one (0: none yet)
    and how long the container ran before this exit."""
    if ran_for >= RESET_AFTER_RUNNING:
        previous = 0
    if not previous:
        return FIRST_DELAY
    return min(previous * BACKOFF_MULTIPLIER, MAX_DELAY)


class _Pending:
    __slots__ = ('token', 'cancelled')

    def __init__(self, token):
        self.token = token
        self.cancelled = False


class RestartManager:
    """Decides and schedules policy restarts for a ContainerService."""

    def __init__(self, service):
        self.service = service
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._heap = []            # (due monotonic, seq, cid, _Pending)
        self._pending = {}         # cid -> _Pending
        self._delay = {}           # cid -> last backoff delay (0: reset)
        self._cancelled = set()    # cids whose policy a manual stop cancelled
        self._seq = itertools.count()
        self._stopped = False
        self._startup_done = threading.Event()
        self._thread = None
        self._workers = set()

    # -- hooks called by ContainerService (with the container's lock held) --

    def on_start(self, c):
        """A client starts the container: re-arm the policy (Docker resets
        the restart manager, RestartCount and HasBeenManuallyStopped)."""
        with self._lock:
            self._cancel_pending_locked(c.id)
            self._delay.pop(c.id, None)
            self._cancelled.discard(c.id)
        c.record['RestartCount'] = 0
        c.record['HasBeenManuallyStopped'] = False

    def on_manual_signal(self, c, sig):
        """stop, kill or rm -f through the API, before the signal is sent.

        Returns True when the container was waiting to restart: the
        restart is cancelled (the container is now exited) or, for a
        signal that does not cancel it, nothing is to be signalled.
        """
        stop_signal = c.config.get('StopSignal')
        cancels = True
        if stop_signal and sig != signal.SIGKILL:
            # Docker cancels the policy only for the container's own stop
            # signal or SIGKILL when the container configures one.
            from engine import containerconfig
            try:
                cancels = containerconfig.parse_signal(stop_signal) == sig
            except errors.EngineError:
                cancels = True
        if cancels:
            with self._lock:
                self._cancelled.add(c.id)
        if not c.record.get('HasBeenManuallyStopped'):
            c.record['HasBeenManuallyStopped'] = True
            c.save()
        if c.status != RESTARTING:
            return False
        if cancels:
            self.cancel(c)
        return True

    def cancel(self, c):
        """Stop a pending restart: the container stays exited (lock held)."""
        with self._lock:
            self._cancel_pending_locked(c.id)
        if c.status == RESTARTING:
            state = c.record['State']
            state.update(Status='exited', Running=False, Restarting=False)
            c.save()
            c.cond.notify_all()

    def forget(self, c):
        """The container is being removed."""
        with self._lock:
            self._cancel_pending_locked(c.id)
            self._delay.pop(c.id, None)
            self._cancelled.discard(c.id)

    def after_exit(self, c, code, ran_for, state=None):
        """Decide, with the lock held, whether the exit restarts; if so put
        ``state`` (the exit's new State, by default the record's) in the
        restarting state and return the delay (schedule() it once the die
        event is out)."""
        policy = policy_of(c.host_config)
        if policy[0] == NO:
            return None
        with self._lock:
            if c.id in self._cancelled or self._stopped:
                return None
        if not should_restart(policy, code, bool(c.record.get('HasBeenManuallyStopped')),
                              c.record.get('RestartCount', 0)):
            return None
        with self._lock:
            delay = next_delay(self._delay.get(c.id, 0), ran_for)
            self._delay[c.id] = delay
        c.record['RestartCount'] = c.record.get('RestartCount', 0) + 1
        if state is None:
            state = c.record['State']
        state.update(Status=RESTARTING, Running=True, Restarting=True, Paused=False, Pid=0,
                     FinishedAt=util.rfc3339())
        return delay

    # -- scheduling ---------------------------------------------------------

    def schedule(self, c, delay):
        """Start ``c`` after ``delay`` seconds unless cancelled meanwhile."""
        with self._lock:
            if self._stopped:
                return
            self._cancel_pending_locked(c.id)
            pending = _Pending(next(self._seq))
            self._pending[c.id] = pending
            heapq.heappush(self._heap, (time.monotonic() + delay, pending.token, c.id, pending))
            self._ensure_thread()
            self._cond.notify_all()

    def pending(self, cid):
        with self._lock:
            p = self._pending.get(cid)
            return p is not None and not p.cancelled

    def _cancel_pending_locked(self, cid):
        p = self._pending.pop(cid, None)
        if p is not None:
            p.cancelled = True

    def _ensure_thread(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name='restart-scheduler',
                                            daemon=True)
            self._thread.start()

    def _run(self):
        with self._lock:
            while not self._stopped:
                # Drop cancelled entries so they hold nothing until their due time.
                while self._heap and self._heap[0][3].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, cid, pending = self._heap[0]
                left = due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                if pending.cancelled:
                    continue
                worker = threading.Thread(target=self._restart, args=(cid, pending),
                                          name='restart-%s' % cid[:12], daemon=True)
                self._workers.add(worker)
                worker.start()

    def _restart(self, cid, pending):
        try:
            # As Docker, no policy restart before the engine finished starting.
            while not self._startup_done.wait(1.0):
                if pending.cancelled or self._stopped:
                    return
            self.service.policy_restart(cid, lambda: self._take(cid, pending))
        except Exception:
            LOG.exception('restarting container %s failed', cid[:12])
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _take(self, cid, pending):
        """Under the container's lock: is this restart still wanted?"""
        with self._lock:
            if pending.cancelled or self._stopped or self._pending.get(cid) is not pending:
                return False
            del self._pending[cid]
            return True

    # -- engine start and stop ---------------------------------------------

    def startup(self, containers):
        """After reconcile: start what the policies say should run."""
        for c in containers:
            with c.lock:
                if c.removed:
                    continue
                if c.status == RESTARTING:
                    # The engine stopped while this restart was pending.
                    self.schedule(c, FIRST_DELAY)
                    continue
                if c.status != 'exited' or c.state.get('StartedAt') in (None, '', util.ZERO_TIME):
                    continue
                policy = policy_of(c.host_config)
                if not should_start_at_startup(
                        policy, c.state.get('ExitCode', 0),
                        bool(c.record.get('HasBeenManuallyStopped')),
                        c.record.get('RestartCount', 0)):
                    continue
                LOG.info('restart policy %s: starting container %s', policy[0], c.id[:12])
                # Docker's start-up start re-arms the policy; on-failure keeps
                # its count so the retry budget still holds.
                c.record['HasBeenManuallyStopped'] = False
                c.record['State'].update(Status=RESTARTING, Running=True, Restarting=True)
                c.save()
                self.schedule(c, FIRST_DELAY)

    def startup_done(self):
        self._startup_done.set()

    def close(self):
        """Engine shutdown: pending restarts stay recorded (the next start
        picks them up); nothing more is started."""
        with self._lock:
            self._stopped = True
            for p in self._pending.values():
                p.cancelled = True
            self._pending.clear()
            self._heap = []
            self._cond.notify_all()
            thread = self._thread
        self._startup_done.set()
        if thread is not None:
            thread.join(5)
