"""A container start prepared ahead of time: conmon and runc already running.

Before runc creates a container it has to be started itself: conmon is
executed and loads its libraries, forks runc, and runc's Go runtime comes up
and reads the spec.  With a runtime that reads its spec as a stream (see
``PendingCreate`` in engine/runtime/monitor.py) all of that can happen before
the spec exists, so while the engine is idle we start it for a container
that does not exist yet: a fresh container ID, its directory, and conmon
with runc waiting on the bundle's ``config.json`` FIFO.

The next container created with the shape that conmon was started for (no
TTY, no stdin, the engine's default log size limit) takes that ID and that
waiting conmon; its first start writes the spec into the FIFO and saves the
4 ms or so that conmon and runc need to get there.  Any other container is
created as before.  A new one is prepared once the engine has seen no
create or start for ``idle`` seconds, so it never competes with a burst of
starts for the CPU.

Nothing is left behind on the way out:

* a prepared start that no container took is given up when the engine
  stops: runc reads an end of file and fails, conmon reports it, and its
  files and the directory go;
* a container that took one and is removed (or the engine stops) before its
  first start gives it up the same way;
* if the engine dies, it held the FIFO's only writer, so runc reads an end of
  file and conmon exits; the record-less directory and conmon's files are
  collected by the next start (``ContainerService.load_all`` and the
  runtime leftovers), as after any crash during a create.
"""

import collections
import os
import shutil
import subprocess
import threading
import time

from oslo_log import log as logging

from engine import util

LOG = logging.getLogger(__name__)

# A prepared start: the container ID it is for, the container's directory
# and the PendingCreate whose conmon waits for the spec.
Prepared = collections.namedtuple('Prepared', 'cid path pending')

# After this many failures in a row the engine stops preparing starts.
MAX_FAILURES = 3


class WarmStart:
    """Keeps one container start prepared (see the module's doc).

    ``tasks``: the TaskService; ``root``: the containers directory;
    ``log_size_max``: the log limit conmon gets (the engine's default, so
    containers with the default log configuration fit); ``idle``: seconds
    without a create or start before a new start is prepared.
    """

    def __init__(self, tasks, root, log_size_max=None, idle=0.3):
        self.tasks = tasks
        self.root = root
        self.log_size_max = log_size_max
        self.idle = idle
        self._cond = threading.Condition()
        self._prepared = None
        self._last_use = time.monotonic()
        self._closed = False
        self._failures = 0
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name='warm-start', daemon=True)
        self._thread.start()

    def fits(self, tty, stdin, log_size_max):
        """Whether a container of this shape can take the prepared start."""
        return not tty and not stdin and log_size_max == self.log_size_max

    def touch(self):
        """A create or start is happening: wait before preparing again."""
        with self._cond:
            self._last_use = time.monotonic()

    def take(self):
        """The prepared start (now the caller's), or None."""
        with self._cond:
            prepared, self._prepared = self._prepared, None
            self._last_use = time.monotonic()
            self._cond.notify_all()
        if prepared is not None and not prepared.pending.monitor_alive():
            LOG.info('the start prepared for %s had ended; giving it up', prepared.cid[:12])
            self.discard(prepared)
            return None
        return prepared

    def discard(self, prepared, remove_dir=True):
        """Give up a prepared start: conmon and runc end, their files go."""
        try:
            prepared.pending.abort()
        except Exception as exc:  # never leave the directory because of it
            LOG.warning('giving up the start prepared for %s: %s', prepared.cid[:12], exc)
            try:
                self.tasks.delete(prepared.cid, force=True)
            except Exception as exc:
                LOG.warning('releasing the start prepared for %s: %s', prepared.cid[:12], exc)
        if remove_dir:
            shutil.rmtree(prepared.path, ignore_errors=True)

    def close(self):
        with self._cond:
            self._closed = True
            prepared, self._prepared = self._prepared, None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if prepared is not None:
            self.discard(prepared)

    # -- the preparing thread ------------------------------------------------
    def _wait_turn(self):
        """Block until a start should be prepared; False once closed."""
        with self._cond:
            while not self._closed:
                if self._prepared is None:
                    left = self._last_use + self.idle - time.monotonic()
                    if left <= 0:
                        return True
                    self._cond.wait(left)
                else:
                    self._cond.wait()
            return False

    def _run(self):
        while self._wait_turn():
            try:
                prepared = self._prepare()
            except Exception as exc:
                self._failures += 1
                if self._failures >= MAX_FAILURES:
                    LOG.warning('cannot prepare container starts ahead (%s); starts '
                                'are prepared when they happen from now on', exc)
                    return
                LOG.info('preparing a container start ahead failed: %s', exc)
                with self._cond:
                    self._last_use = time.monotonic() + 5 * self.idle
                continue
            if prepared is None:
                return  # the runtime cannot be started ahead
            self._failures = 0
            with self._cond:
                if not self._closed:
                    self._prepared = prepared
                    continue
            self.discard(prepared)
            return

    def _prepare(self):
        cid = util.new_id()
        path = os.path.join(self.root, cid)
        os.makedirs(path, mode=0o700)
        try:
            bundle = os.path.join(path, 'bundle')
            os.makedirs(bundle, mode=0o700)
            pending = self.tasks.begin_create(
                cid, bundle, log_path=os.path.join(path, 'container.log'),
                log_size_max=self.log_size_max, kick=False)
        except BaseException:
            self.tasks.delete(cid, force=True)
            shutil.rmtree(path, ignore_errors=True)
            raise
        prepared = Prepared(cid, path, pending)
        if pending.proc is None:  # a runtime that wants a plain file
            self.discard(prepared)
            return None
        try:
            # conmon forks its monitor and exits: reap it now, not at start.
            pending.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return prepared
