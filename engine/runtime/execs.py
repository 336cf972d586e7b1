"""Processes run inside a running container (``docker exec``).

A foreground ``runc exec`` runs as the engine's child: it passes our pipes
straight to the process (non-tty), or, for a tty, allocates the
container-side pty itself and copies between it and the pty we hand it as
stdio (runc 1.1 ignores --console-socket unless detached, and a detached
exec would leave us no way to collect the exit code).  runc exits with the
process's exit code and forwards signals to it.
"""

import errno
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import termios

from engine import errors
from engine.runtime import oci


def _read_int(path):
    try:
        with open(path, 'rb') as f:
            return int(f.read().strip() or b'x')
    except (FileNotFoundError, ValueError):
        return None


def set_winsize(fd, height, width):
    """TIOCSWINSZ on a pty fd."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', int(height), int(width), 0, 0))


class ExecProcess:
    """A process run in a container by a foreground ``runc exec`` child.

    Non-tty: ``stdin`` (fd or None), ``stdout`` and ``stderr`` are pipe fds
    owned by this object (the process writes straight into them; runc
    passes them through).  Tty: ``master`` is the pty master fd (read output,
    write input; read() maps the EIO at the end to b'').  runc copies
    between this pty and the container-side pty it allocates, and applies our
    size on SIGWINCH, which resize() sends it.
    ``pid`` is the exec'd process's host pid (None until runc reported it);
    ``runtime_pid`` is the runc child's.  wait() returns the exit code (runc
    passes it through; 128+N after signal N).  When runc itself could not
    start the process, ``error`` holds its message.
    """

    def __init__(self, popen, workdir, tty, master=None, stdin=None, stdout=None,
                 stderr=None):
        self._popen = popen
        self._workdir = workdir
        self.tty = tty
        self.master = master
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._pid = None
        self.exit_code = None

    @property
    def runtime_pid(self):
        return self._popen.pid

    @property
    def pid(self):
        if self._pid is None:
            self._pid = _read_int(os.path.join(self._workdir, 'pid'))
        return self._pid

    @property
    def error(self):
        """runc's own error message, if it failed to run the process."""
        msgs = []
        try:
            with open(os.path.join(self._workdir, 'runc.log'), 'rb') as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get('level') in ('error', 'fatal') and rec.get('msg'):
                        msgs.append(rec['msg'])
        except FileNotFoundError:
            return None
        return '; '.join(msgs) or None

    def poll(self):
        code = self._popen.poll()
        if code is not None:
            self._finish(code)
        return self.exit_code

    def wait(self, timeout=None):
        """Block until the process ends; its exit code."""
        if self.exit_code is None:
            code = self._popen.wait(timeout)
            self._finish(code)
        return self.exit_code

    def _finish(self, code):
        if self.exit_code is None:
            self.pid  # read the pid file before it goes
            self.exit_code = code if code >= 0 else 128 - code

    def read(self, n=65536):
        """Read output from the pty master (tty) or stdout (non-tty); b'' at EOF."""
        fd = self.master if self.tty else self.stdout
        try:
            return os.read(fd, n)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b''
            raise

    def resize(self, height, width):
        if not self.tty or self.master is None:
            raise errors.Conflict('exec session has no tty to resize')
        set_winsize(self.master, height, width)
        if self._popen.poll() is None:
            try:
                self._popen.send_signal(signal.SIGWINCH)
            except ProcessLookupError:
                pass

    def kill(self, sig=signal.SIGKILL):
        """Signal the exec'd process (or runc, which forwards, before its pid is known)."""
        sig = oci.signal_number(sig)
        pid = self.pid
        if pid is not None and self._popen.poll() is None:
            try:
                os.kill(pid, sig)
                return
            except ProcessLookupError:
                return
        if self._popen.poll() is None:
            self._popen.send_signal(sig)

    def take_stdin(self):
        """The fd the client's input goes to, now the caller's to write to
        and to close, once: the pipe's write end (non-tty; closing it is the
        process's end of input), or a duplicate of the pty master (tty).
        close() leaves it alone, so no fd is closed twice: a second close of
        a number the engine has meanwhile reused would close someone else's
        file, and a late write would go into it."""
        if self.tty:
            return os.dup(self.master) if self.master is not None else None
        fd, self.stdin = self.stdin, None
        return fd

    def close(self):
        """Release fds and the exec's files (after wait())."""
        for name in ('master', 'stdin', 'stdout', 'stderr'):
            fd = getattr(self, name)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, None)
        if self._popen.poll() is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


def start(runtime, cid, workdir, process_file, tty=False, stdin=False, console_size=None):
    """Launch ``runtime exec`` of ``process_file`` in container ``cid``; an ExecProcess.

    ``workdir`` (existing, owned by the exec) receives the pid file and
    runc's log.  Returns at once; the process may still be starting.
    """
    cmd = runtime.exec_command(cid, process_file, os.path.join(workdir, 'pid'),
                               log_file=os.path.join(workdir, 'runc.log'))
    env = {'PATH': os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}
    try:
        if tty:
            master, slave = os.openpty()
            try:
                if console_size:
                    set_winsize(master, *console_size)
                popen = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                                         env=env, start_new_session=True)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return ExecProcess(popen, workdir, True, master=master)
        popen = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env, start_new_session=True)
    except OSError as exc:
        raise errors.RuntimeFailure('cannot run %s exec: %s' % (runtime.name, exc))
    # Hand out raw fds; the Popen file objects would close them on collection.
    fds = {}
    for name in ('stdin', 'stdout', 'stderr'):
        f = getattr(popen, name)
        if f is not None:
            fds[name] = os.dup(f.fileno())
            f.close()
            setattr(popen, name, None)
    return ExecProcess(popen, workdir, False, stdin=fds.get('stdin'),
                       stdout=fds.get('stdout'), stderr=fds.get('stderr'))
