"""Learn the moment a container's monitor exits, without being its parent.

conmon daemonises, so the engine cannot waitpid() on it; a pidfd becomes
readable when any process terminates.  One thread watches all of them.
"""

import os
import selectors
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class ExitWatcher:
    def __init__(self, on_exit):
        self._on_exit = on_exit
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending = []
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name='exit-watcher', daemon=True)
        self._thread.start()

    @staticmethod
    def open_pidfd(pid):
        """A pidfd for ``pid`` or None when that process is gone."""
        try:
            return os.pidfd_open(pid)
        except ProcessLookupError:
            return None

    def watch(self, key, pidfd):
        """Call ``on_exit(key)`` once the process behind ``pidfd`` ends.

        The watcher owns ``pidfd`` from here on.
        """
        with self._lock:
            self._pending.append((key, pidfd))
        os.write(self._wake_w, b'x')

    def stop(self):
        self._stopped = True
        os.write(self._wake_w, b'x')
        self._thread.join(5)

    def _run(self):
        while not self._stopped:
            for selkey, _ in self._selector.select():
                if selkey.data is None:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                key, pidfd = selkey.data
                self._selector.unregister(pidfd)
                os.close(pidfd)
                threading.Thread(target=self._notify, args=(key,),
                                 name='exit-%s' % str(key)[:12], daemon=True).start()
            with self._lock:
                pending, self._pending = self._pending, []
            for key, pidfd in pending:
                self._selector.register(pidfd, selectors.EVENT_READ, (key, pidfd))

    def _notify(self, key):
        try:
            self._on_exit(key)
        except Exception:
            LOG.exception('handling the exit of %s failed', key)
