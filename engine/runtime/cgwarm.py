"""Keep the kernel's cgroup migration lock warm while containers start.

Every process runc puts in a cgroup (the init of ``runc create``, the
process of ``runc exec``) is moved by a write to ``cgroup.procs``.  The
kernel serialises such moves with one global lock, taken for writing
(``cgroup_threadgroup_rwsem``, a per-CPU rwsem).  Before that lock can be
taken after a quiet spell the kernel waits for an RCU grace period, 7 to 12
ms on our hosts, and runc waits with it: that single wait is about a
quarter of ``runc create``.  Once a writer has gone through, the lock stays
fast until a grace period after the last writer left.

So when a container is about to be created or started, or an exec about to
run, a thread of the engine moves the engine into the cgroup it is already
in (a move that changes nothing; the kernel still takes the lock) and
repeats that every few milliseconds for a short while.  The grace period is
then waited for while the engine mounts the rootfs and writes the spec, and
while conmon and runc start up; runc's own move finds the lock warm.  The
thread sleeps in the kernel, so it costs no CPU worth counting.

The engine's cgroup is read from ``/proc/self/cgroup`` before every move,
so an engine moved by its supervisor is never moved back.  Any error (a
read-only cgroupfs, a cgroup that refuses the write) switches the warmer
off for the life of the engine.
"""

import os
import threading
import time

from oslo_log import log as logging

from engine import cgroups

LOG = logging.getLogger(__name__)


def own_procs_file(root='/', mounts=None):
    """The ``cgroup.procs`` of the cgroup this process is in, or None.

    The v2 tree when one is mounted (a hybrid host's has no controllers,
    so nothing there depends on where the engine sits), else the engine's
    group in the first mounted v1 hierarchy.  ``mounts``: the host's
    cgroups.Mounts, when the caller has them already.
    """
    mounts = mounts or cgroups.Mounts.probe(root)
    text = cgroups.read_text(os.path.join(root, 'proc/self/cgroup')) or ''
    v2_path, v1_paths = None, {}
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        if parts[0] == '0' and parts[1] == '':
            v2_path = parts[2]
            continue
        for ctrl in parts[1].split(','):
            name = ctrl[5:] if ctrl.startswith('name=') else ctrl
            if name:
                v1_paths.setdefault(name, parts[2])
    candidates = []
    if mounts.v2 is not None and v2_path is not None:
        candidates.append((mounts.v2, v2_path))
    for name in sorted(v1_paths):
        if name in mounts.v1:
            candidates.append((mounts.v1[name], v1_paths[name]))
    for mount, path in candidates:
        procs = os.path.join(cgroups.hierarchy_path(mount, path), 'cgroup.procs')
        if os.path.exists(procs):
            return procs
    return None


class OwnCgroup:
    """A ``locate`` for MigrationWarmer: the hierarchies are read once (the
    engine's mountinfo grows with every running container), the engine's
    place in them at every call."""

    def __init__(self, root='/'):
        self.root = root
        self._mounts = None

    def __call__(self):
        if self._mounts is None:
            self._mounts = cgroups.Mounts.probe(self.root)
        return own_procs_file(self.root, self._mounts)


class MigrationWarmer:
    """Moves this process into its own cgroup while ``kick()`` was recent.

    ``interval``: seconds between moves (well under a grace period);
    ``hold``: how long after the last kick the moves go on (longer than
    ``runc create`` takes on a busy host).  ``locate``: returns the
    cgroup.procs file to write to (None: nothing to do).
    """

    def __init__(self, locate=None, pid=None, interval=0.005, hold=0.25,
                 clock=time.monotonic):
        self.locate = locate or OwnCgroup()
        self.pid = pid  # None: this process, read at each move (a fork may follow)
        self.interval = interval
        self.hold = hold
        self.clock = clock
        self.enabled = True
        self.moves = 0
        self._deadline = 0.0
        self._thread = None
        self._cond = threading.Condition()

    def kick(self):
        """A runtime is about to move a process into a cgroup: warm the lock."""
        with self._cond:
            if not self.enabled:
                return
            self._deadline = max(self._deadline, self.clock() + self.hold)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name='cgroup-warmer',
                                                daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def stop(self):
        """Switch off; the thread ends after its current move."""
        with self._cond:
            self.enabled = False
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while self.enabled and self.clock() >= self._deadline:
                    self._cond.wait()
                if not self.enabled:
                    self._thread = None
                    return
            if not self.move():
                return
            time.sleep(self.interval)

    def move(self):
        """One move of this process into the cgroup it is in; False once off."""
        procs = None
        try:
            procs = self.locate()
            if procs is None:
                raise OSError('this process is in no cgroup we can find')
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(self.pid or os.getpid()).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            LOG.info('Not warming the cgroup migration lock (through %s): %s',
                     procs or 'no cgroup.procs', exc)
            with self._cond:
                self.enabled = False
                self._thread = None
            return False
        if not self.moves:
            LOG.debug('Warming the cgroup migration lock through %s', procs)
        self.moves += 1
        return True


class NoWarmer:
    """What a TaskService uses when warming is switched off."""

    enabled = False
    moves = 0

    def kick(self):
        pass

    def stop(self):
        pass
