"""Per-container monitoring with conmon: the engine's task service.

Every container runs under its own conmon, which runs ``<runtime> create``,
holds the container's stdio, writes its log (k8s-file format: ``RFC3339NANO
stdout|stderr F|P text``), serves an attach socket, takes resize requests on
a control fifo and records the exit code.  conmon daemonises, so containers
outlive the engine; everything the engine needs later is in files:

exec_root/
  exits/<cid>        exit code as decimal text (conmon --exit-dir); its
                     mtime is the moment the container finished
  t/<cid>/           per-container monitor dir (conmon --persist-dir):
      exit, oom      conmon's persisted exit code; ``oom`` exists after an
                     OOM kill of the container's cgroup
      conmon.pid     the monitor's pid      pid   the container's init pid
      meta.json      bundle, tty, stdin, log path   conmon.err  conmon's stderr
      x-<id>/        one dir per exec (process.json, pid, runc log)
  s/<cid>            conmon's symlink to the bundle (--socket-dir-path); the
                     bundle holds ``attach`` (SOCK_SEQPACKET) and the
                     ``ctl``/``winsz`` fifos.  We reach them through an
                     O_PATH fd (/proc/self/fd/N/attach) so the 108-byte
                     sun_path limit never bites, whatever the paths' length.

Attach protocol (conmon 2.1.6): each packet from conmon is one chunk of
output prefixed by one byte, 2 = stdout, 3 = stderr (a tty container only
ever sends 2); each packet we send is written to the container's stdin
(conmon reads at most 32767 bytes per packet, so we send smaller ones).
When our side shuts down writing (or closes), conmon closes the container's
stdin unless it was started with --leave-stdin-open (our stdin_once=False).
conmon closes the socket when the container has exited and its output is
drained.  Resize: the line ``1 <height> <width>\\n`` on the ``ctl`` fifo
(conmon refuses sizes above 1000).
"""

import collections
import fcntl
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import stat
import subprocess
import time

from oslo_log import log as logging

from engine import cgroups
from engine import errors
from engine import util
from engine.runtime import cgwarm
from engine.runtime import execs
from engine.runtime import oci

LOG = logging.getLogger(__name__)

ExecProcess = execs.ExecProcess

TaskInfo = collections.namedtuple('TaskInfo', ['pid', 'monitor_pid'])

STDOUT = 'stdout'
STDERR = 'stderr'
_STREAMS = {1: 'stdin', 2: STDOUT, 3: STDERR}

# conmon reads attach packets into a 32 KiB buffer (one byte kept for NUL).
_MAX_STDIN_PACKET = 32 * 1024 - 1
_RECV_SIZE = 64 * 1024
_WIN_RESIZE_EVENT = 1
_MAX_WINSIZE = 1000
_CID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$')

CREATE_TIMEOUT = 120.0


class _AlreadyExists(Exception):
    pass


def _check_cid(cid):
    if not isinstance(cid, str) or not _CID_RE.match(cid):
        raise errors.InvalidArgument('invalid container id for the runtime: %r' % (cid,))
    return cid


def _read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode(errors='replace').strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_int(path):
    text = _read_text(path)
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _unlink(path):
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass


def pid_cmdline(pid):
    """argv of process ``pid`` as a list of str ([] when it is gone)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            raw = f.read()
    except (OSError, ValueError):
        return []
    return [a.decode(errors='replace') for a in raw.split(b'\0') if a]


class AttachStream:
    """A connection to a container's conmon attach socket (SOCK_SEQPACKET).

    recv() -> ('stdout'|'stderr', bytes), or None once conmon closed the
    connection (container exited and its output was drained).
    send_stdin(data) writes to the container's stdin; close_stdin() ends our
    input (conmon then closes the container's stdin unless the container was
    created with stdin_once=False); close() drops the connection.
    fileno() is for select/poll; the socket is blocking unless you call
    setblocking(False).
    """

    def __init__(self, sock):
        self._sock = sock
        self._stdin_closed = False

    def fileno(self):
        return self._sock.fileno()

    def setblocking(self, flag):
        self._sock.setblocking(flag)

    def recv(self, timeout=None):
        """One output chunk as (stream name, bytes), or None at EOF.

        With a timeout, raises TimeoutError when nothing arrives in time.
        A non-blocking stream raises BlockingIOError when nothing is ready.
        """
        if timeout is not None:
            r, _, _ = select.select([self._sock], [], [], timeout)
            if not r:
                raise TimeoutError('no output from the container within %ss' % timeout)
        while True:
            try:
                data = self._sock.recv(_RECV_SIZE)
            except ConnectionResetError:
                return None
            if not data:
                return None
            stream = _STREAMS.get(data[0])
            if stream is None:
                LOG.warning('Unexpected attach packet type %d from conmon', data[0])
                continue
            if len(data) == 1:
                continue
            return stream, data[1:]

    def send_stdin(self, data):
        """Write bytes to the container's stdin (blocking until conmon takes them)."""
        if self._stdin_closed:
            raise errors.Conflict('stdin of this attach session is closed')
        view = memoryview(data)
        try:
            while view:
                chunk = view[:_MAX_STDIN_PACKET]
                self._sock.sendall(chunk)
                view = view[len(chunk):]
        except (BrokenPipeError, ConnectionResetError):
            raise errors.Conflict('the container is no longer accepting input')

    def close_stdin(self):
        """Signal end of input (shutdown SHUT_WR) while still reading output."""
        if self._stdin_closed:
            return
        self._stdin_closed = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self._stdin_closed = True
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The spec as a plain file while config.json is still the FIFO conmon's
# runtime reads it from (see PendingCreate).
SPEC_NEXT = '.config.json.next'
# Largest spec streamed through the FIFO; a larger one waits for a plain file.
SPEC_PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032


def _is_fifo(path):
    try:
        return stat.S_ISFIFO(os.lstat(path).st_mode)
    except OSError:
        return False


class PendingCreate:
    """A container create under way: see TaskService.begin_create."""

    def __init__(self, tasks, cid, bundle_dir, tty, stdin, stdin_once, log_path,
                 log_size_max):
        self.tasks = tasks
        self.cid = cid
        self.bundle_dir = bundle_dir
        self.tty, self.stdin, self.stdin_once = tty, stdin, stdin_once
        self.log_path = log_path
        self.log_size_max = log_size_max
        self.tdir = None
        self.proc = None
        self.sync_r = None
        self.fifo_fd = None
        self.pipe_size = 0
        self.done = False

    @property
    def spec_path(self):
        return os.path.join(self.bundle_dir, 'config.json')

    def _prepare(self):
        self.tdir, self.log_path = self.tasks._prepare_task(
            self.cid, self.bundle_dir, self.tty, self.stdin, self.stdin_once, self.log_path)

    def start_early(self):
        """conmon and the runtime start now and wait for the spec in a FIFO.

        We hold the FIFO open for reading and writing, so the runtime's
        open never blocks and its read waits for the spec; closing it
        unwritten gives the runtime an end of file, and it fails."""
        self._prepare()
        path = self.spec_path
        _unlink(path)
        os.mkfifo(path, 0o600)
        try:
            self.fifo_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                fcntl.fcntl(self.fifo_fd, F_SETPIPE_SZ, SPEC_PIPE_SIZE)
            except OSError:
                pass  # the default size; a larger spec goes through a file
            self.pipe_size = fcntl.fcntl(self.fifo_fd, F_GETPIPE_SZ)
            self.proc, self.sync_r = self._spawn()
        except BaseException:
            self._close_fifo()
            _unlink(path)
            raise

    def monitor_alive(self):
        """conmon (daemonised: not the process we ran) still waits for the spec."""
        return self.tasks.monitor_alive(self.cid, self.tasks.monitor_pid(self.cid))

    def _spawn(self):
        return self.tasks._spawn_conmon(
            self.cid, self.bundle_dir, self.tdir, self.log_path, self.tty, self.stdin,
            self.stdin_once, self.log_size_max)

    def _take_monitor(self):
        """(proc, sync_r) of the early conmon, now the caller's to wait for."""
        taken = self.proc, self.sync_r
        self.proc = self.sync_r = None
        return taken

    def _close_fifo(self):
        if self.fifo_fd is not None:
            os.close(self.fifo_fd)
            self.fifo_fd = None

    def finish(self, spec):
        """Create the container from ``spec``; TaskInfo(pid, monitor_pid)."""
        if bool(spec.get('process', {}).get('terminal')) != self.tty:
            spec = dict(spec)
            spec['process'] = dict(spec['process'], terminal=self.tty)
        data = json.dumps(spec, sort_keys=True).encode()
        try:
            if self.proc is not None and len(data) <= min(self.pipe_size, SPEC_PIPE_SIZE):
                info = self._finish_streamed(data)
            else:
                if self.proc is not None:
                    self.abort()  # started early, but the spec does not fit the pipe
                info = self._finish_plain(data)
        except _AlreadyExists:
            info = self._replace_stopped(data)
        self.done = True
        return info

    def _finish_streamed(self, data):
        # The plain file is written while the runtime reads the stream;
        # it replaces the FIFO once the create is over, whatever its outcome.
        try:
            written = os.write(self.fifo_fd, data)
            if written != len(data):
                raise errors.RuntimeFailure('the spec did not fit the pipe to the runtime')
            util.atomic_write(os.path.join(self.bundle_dir, SPEC_NEXT), data, sync=False)
            return self.tasks._wait_created(self.cid, *self._take_monitor())
        finally:
            self._close_fifo()
            self.tasks.settle_spec(self.bundle_dir)

    def _finish_plain(self, data):
        if self.tdir is None:
            self._prepare()
        util.atomic_write(self.spec_path, data, sync=False)
        return self.tasks._wait_created(self.cid, *self._spawn())

    def _replace_stopped(self, data):
        tasks = self.tasks
        state = tasks.runtime.state(self.cid)
        if state is None or state.get('status') != 'stopped':
            raise errors.Conflict('container %s already exists in the runtime (%s)'
                                  % (self.cid, (state or {}).get('status', 'unknown')))
        # A stopped leftover (e.g. restarting an exited container whose
        # runtime state was never deleted): replace it.
        LOG.info('Replacing stopped runtime state of container %s', self.cid)
        tasks.runtime.delete(self.cid, force=True)
        self.tdir = None
        return self._finish_plain(data)

    def abort(self):
        """Give up: a runtime waiting for the spec reads an end of file and
        fails; conmon reports it, and its files go."""
        if self.proc is None:
            self._close_fifo()
            return
        proc, sync_r = self._take_monitor()
        # Gone first: a runtime that has not opened it yet fails to (an open
        # with no writer left would wait for ever); one that has reads EOF.
        _unlink(self.spec_path)
        self._close_fifo()
        try:
            self.tasks._wait_created(self.cid, proc, sync_r)
        except errors.EngineError:
            pass  # the failure we caused
        except _AlreadyExists:
            pass
        else:
            # The runtime made a container from an empty spec: cannot be,
            # but never leave one behind.
            self.tasks._abort_create(self.cid, self.tasks.monitor_pid(self.cid))
        finally:
            self.tasks.settle_spec(self.bundle_dir)
            self.tdir = None  # gone with the failed create


class TaskService:
    """The engine's facade over one OCI runtime and conmon.

    ``runtime``: an ``oci.OciRuntime``; ``exec_root``: a directory for
    volatile state of this engine (exit files, sockets); ``conmon_path``:
    the conmon binary.  Containers are identified by the caller's ids
    (usually the 64-hex container id).
    """

    def __init__(self, runtime, exec_root, conmon_path='conmon', no_sync_log=True,
                 warmer=None, stream_spec=True):
        self.runtime = runtime
        # Start conmon and the runtime before the spec is there, when the
        # runtime can read it as a stream (see PendingCreate).
        self.stream_spec = stream_spec
        # Kicked before runc moves a process into a cgroup (see cgwarm).
        self.warmer = warmer if warmer is not None else cgwarm.NoWarmer()
        self.exec_root = os.path.abspath(exec_root)
        self.conmon_path = shutil.which(conmon_path) or conmon_path
        self.no_sync_log = no_sync_log
        self.exit_dir = util.makedirs(os.path.join(self.exec_root, 'exits'))
        self.task_root = util.makedirs(os.path.join(self.exec_root, 't'))
        self.socket_dir = util.makedirs(os.path.join(self.exec_root, 's'))

    # -- paths -----------------------------------------------------------

    def task_dir(self, cid):
        return os.path.join(self.task_root, _check_cid(cid))

    def exit_file(self, cid):
        return os.path.join(self.exit_dir, _check_cid(cid))

    def known_tasks(self):
        """ids of containers this service has monitor state for (for recovery)."""
        try:
            return sorted(os.listdir(self.task_root))
        except FileNotFoundError:
            return []

    def monitor_pid(self, cid):
        """The conmon pid recorded for ``cid`` (or None)."""
        return _read_int(os.path.join(self.task_dir(cid), 'conmon.pid'))

    def task_meta(self, cid):
        """What create() recorded: bundle, tty, stdin, stdin_once, log_path ({} if none)."""
        return util.read_json(os.path.join(self.task_dir(cid), 'meta.json'), {}) or {}

    def container_pid(self, cid):
        return _read_int(os.path.join(self.task_dir(cid), 'pid'))

    # -- lifecycle -------------------------------------------------------

    def create(self, cid, bundle_dir, spec, tty=False, stdin=False, stdin_once=False,
               log_path=None, log_size_max=None):
        """Write the bundle's config.json and create the container under conmon.

        Returns TaskInfo(pid, monitor_pid) once the runtime created the
        container, before its process runs user code (start() does that).
        ``tty``: conmon allocates and holds the pty (spec must say terminal).
        ``stdin``: keep a stdin pipe open for attach; ``stdin_once``: close
        the container's stdin as soon as an attached client half-closes
        (close_stdin) or disconnects -- any client, conmon cannot tell
        one that never meant to send input.
        ``log_path``: k8s-file log (default BUNDLE/ctr.log).  Raises
        RuntimeFailure with the runtime's message when creation fails.
        """
        return self.begin_create(cid, bundle_dir, tty, stdin, stdin_once, log_path,
                                 log_size_max, early=False).finish(spec)

    def begin_create(self, cid, bundle_dir, tty=False, stdin=False, stdin_once=False,
                     log_path=None, log_size_max=None, early=True, kick=True):
        """``create`` in two steps: a PendingCreate whose ``finish(spec)``
        creates the container (see create) and ``abort()`` gives up.

        ``early``: with a runtime that reads its spec as a stream (runc),
        conmon and the runtime start now, with config.json a FIFO, and wait
        for the spec there while the caller builds it: their start-up
        (about 4 ms) overlaps the caller's work.  Otherwise, and for other
        runtimes, everything happens in ``finish``.  ``kick``: warm the
        cgroup lock (engine/runtime/cgwarm.py) for a create about to run."""
        if kick:
            self.warmer.kick()
        _check_cid(cid)
        pending = PendingCreate(self, cid, os.path.abspath(bundle_dir), bool(tty),
                                bool(stdin), bool(stdin_once), log_path, log_size_max)
        if early and self.stream_spec and self.runtime.streams_spec:
            pending.start_early()
        return pending

    def _prepare_task(self, cid, bundle_dir, tty, stdin, stdin_once, log_path):
        """The task directory, its meta.json and the bundle's leftovers gone."""
        util.makedirs(bundle_dir)
        tdir = self.task_dir(cid)
        if os.path.isdir(tdir):
            pid = self.monitor_pid(cid)
            if pid and self.monitor_alive(cid, pid):
                raise errors.Conflict('container %s already has a running monitor' % cid)
            shutil.rmtree(tdir, ignore_errors=True)
        util.makedirs(tdir)
        _unlink(self.exit_file(cid))
        for name in ('attach', 'ctl', 'winsz', SPEC_NEXT):
            _unlink(os.path.join(bundle_dir, name))
        log_path = os.path.abspath(log_path or os.path.join(bundle_dir, 'ctr.log'))
        util.makedirs(os.path.dirname(log_path))
        util.atomic_write_json(os.path.join(tdir, 'meta.json'), {
            'bundle': bundle_dir, 'tty': bool(tty), 'stdin': bool(stdin),
            'stdin_once': bool(stdin_once), 'log_path': log_path}, sync=False)
        return tdir, log_path

    def _spawn_conmon(self, cid, bundle_dir, tdir, log_path, tty, stdin, stdin_once,
                      log_size_max):
        """Start conmon (which runs ``runtime create``); returns (proc, sync_r)."""
        cmd = [self.conmon_path, '--api-version', '1',
               '-r', self.runtime.exec_path,
               '-b', bundle_dir, '-c', cid, '-u', cid, '-n', cid,
               '-p', os.path.join(tdir, 'pid'),
               '-P', os.path.join(tdir, 'conmon.pid'),
               '--exit-dir', self.exit_dir, '-0', tdir,
               '-l', 'k8s-file:' + log_path,
               '--socket-dir-path', self.socket_dir]
        for arg in self.runtime.base_args_joined():
            cmd += ['--runtime-arg', arg]
        if tty:
            cmd.append('-t')
        if stdin:
            cmd.append('-i')
            if not stdin_once:
                cmd.append('--leave-stdin-open')
        if log_size_max:
            cmd += ['--log-size-max', str(int(log_size_max))]
        if self.no_sync_log:
            cmd.append('--no-sync-log')

        sync_r, sync_w = os.pipe()
        env = {'_OCI_SYNCPIPE': str(sync_w),
               'PATH': os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}
        err_path = os.path.join(tdir, 'conmon.err')
        try:
            with open(err_path, 'ab') as errf:
                try:
                    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf,
                                            stderr=errf, pass_fds=(sync_w,), env=env,
                                            cwd=tdir, start_new_session=True)
                except OSError as exc:
                    raise errors.RuntimeFailure('cannot run conmon (%s): %s'
                                                % (self.conmon_path, exc))
        except BaseException:
            os.close(sync_r)
            raise
        finally:
            os.close(sync_w)
        return proc, sync_r

    def _wait_created(self, cid, proc, sync_r):
        """conmon's report of the runtime's create: TaskInfo, or the failure
        raised (``_AlreadyExists`` when the runtime knows the id already)."""
        try:
            msg = self._read_sync(sync_r, proc)
            proc.wait()
        finally:
            os.close(sync_r)
        monitor_pid = self.monitor_pid(cid)
        pid = msg.get('data') if isinstance(msg, dict) else None
        if not isinstance(pid, int) or pid <= 0:
            reason = (msg or {}).get('message') if isinstance(msg, dict) else None
            if not reason:
                reason = _read_text(os.path.join(self.task_dir(cid), 'conmon.err')) or \
                    'conmon exited with status %s' % proc.returncode
            reason = oci.runtime_message(reason)
            exists = 'already exists' in reason or 'container with id exists' in reason
            self._abort_create(cid, monitor_pid, keep_runtime_state=exists)
            if exists:
                raise _AlreadyExists(reason)
            raise errors.RuntimeFailure('failed to create the container: %s'
                                        % reason)
        return TaskInfo(pid, monitor_pid)

    def settle_spec(self, bundle_dir):
        """Make the bundle's config.json a plain file again if a create that
        streamed it ended before it was put in place (an engine crash)."""
        path = os.path.join(bundle_dir, 'config.json')
        nxt = os.path.join(bundle_dir, SPEC_NEXT)
        if os.path.exists(nxt):
            os.replace(nxt, path)
        elif _is_fifo(path):
            _unlink(path)

    @staticmethod
    def _read_sync(fd, proc):
        buf = b''
        deadline = time.monotonic() + CREATE_TIMEOUT
        while b'\n' not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.RuntimeFailure('conmon did not report the container within '
                                            '%d s' % CREATE_TIMEOUT)
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        line = buf.split(b'\n', 1)[0].strip()
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            LOG.warning('conmon sync pipe sent %r', line[:200])
            return None

    def _abort_create(self, cid, monitor_pid, keep_runtime_state=False):
        if not keep_runtime_state:
            try:
                self.runtime.delete(cid, force=True)
            except errors.EngineError as exc:
                LOG.debug('cleanup of failed create %s: %s', cid, exc)
        if monitor_pid and self.monitor_alive(cid, monitor_pid):
            self._wait_pid_gone(monitor_pid, 2.0)
        shutil.rmtree(self.task_dir(cid), ignore_errors=True)
        _unlink(self.exit_file(cid))
        _unlink(os.path.join(self.socket_dir, cid))

    def start(self, cid):
        """Let the created container's process run."""
        self.runtime.start(_check_cid(cid))

    def kill(self, cid, sig=signal.SIGTERM, all=False):
        self.runtime.kill(_check_cid(cid), sig, all=all)

    def pause(self, cid):
        self.runtime.pause(_check_cid(cid))

    def resume(self, cid):
        self.runtime.resume(_check_cid(cid))

    def state(self, cid):
        """The runtime's state dict, or None if it does not know the container."""
        return self.runtime.state(_check_cid(cid))

    def pids(self, cid):
        return self.runtime.ps(_check_cid(cid))

    def update(self, cid, resources):
        self.runtime.update(_check_cid(cid), resources)

    def delete(self, cid, force=False):
        """Remove the container from the runtime and drop the monitor's files.

        Without force a running container raises Conflict.  Missing is fine.
        With force, waits (briefly) for conmon to record the exit before the
        files go, so no exit file reappears afterwards.
        """
        _check_cid(cid)
        monitor_pid = self.monitor_pid(cid)
        self.runtime.delete(cid, force=force)
        if monitor_pid and self.monitor_alive(cid, monitor_pid):
            self._wait_pid_gone(monitor_pid, 5.0)
        tdir = self.task_dir(cid)
        bundle = self.task_meta(cid).get('bundle')
        if bundle:
            for name in ('attach', 'ctl', 'winsz'):
                _unlink(os.path.join(bundle, name))
        shutil.rmtree(tdir, ignore_errors=True)
        _unlink(self.exit_file(cid))
        _unlink(os.path.join(self.socket_dir, cid))

    # -- exit ------------------------------------------------------------

    def exit_status(self, cid):
        """(exit_code, finished_at epoch float, oom_killed) or None while not exited.

        A container killed by signal N reports 128+N (conmon's convention).
        """
        path = self.exit_file(cid)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        code = _read_int(path)
        if code is None:
            # conmon writes the file in one go; an empty one is being written
            code = _read_int(os.path.join(self.task_dir(cid), 'exit'))
            if code is None:
                return None
        oom = (os.path.exists(os.path.join(self.task_dir(cid), 'oom'))
               or self._oom_killed_in_cgroup(cid))
        return code, st.st_mtime, oom

    def _oom_killed_in_cgroup(self, cid):
        """Should conmon miss an OOM kill, the kernel counted it in the
        container's memory cgroup, which stays until the runtime deletes it."""
        state_root = getattr(self.runtime, 'state_root', None)
        if not state_root:
            return False
        try:
            state = util.read_json(os.path.join(state_root, cid, 'state.json')) or {}
        except (OSError, ValueError):
            return False
        cg = cgroups.from_runc_paths(state.get('cgroup_paths') if isinstance(state, dict)
                                     else None)
        return bool(cg and cgroups.oom_kills(cg))

    def monitor_alive(self, cid, monitor_pid):
        """True if ``monitor_pid`` is alive and is the conmon of ``cid``."""
        if not monitor_pid:
            return False
        argv = pid_cmdline(int(monitor_pid))
        if not argv or 'conmon' not in os.path.basename(argv[0]):
            return False
        try:
            i = argv.index('-c')
        except ValueError:
            return False
        return i + 1 < len(argv) and argv[i + 1] == cid

    def monitor_fd(self, cid, monitor_pid=None):
        """A pidfd of the container's conmon (readable once it exits) or None.

        conmon writes the exit file before it exits, so when this fd turns
        readable exit_status() has the answer.  The caller closes the fd.
        """
        monitor_pid = monitor_pid or self.monitor_pid(cid)
        if not monitor_pid:
            return None
        try:
            fd = os.pidfd_open(monitor_pid)
        except ProcessLookupError:
            return None
        # The pidfd pins the process; check it is ours after opening it.
        if not self.monitor_alive(cid, monitor_pid):
            os.close(fd)
            return None
        return fd

    def wait(self, cid, monitor_pid=None, timeout=None):
        """Block until the container exited; exit_status() (None on timeout)."""
        status = self.exit_status(cid)
        if status is not None:
            return status
        fd = self.monitor_fd(cid, monitor_pid)
        if fd is not None:
            try:
                r, _, _ = select.select([fd], [], [], timeout)
                if not r:
                    return None
            finally:
                os.close(fd)
        return self.exit_status(cid)

    @staticmethod
    def _wait_pid_gone(pid, timeout):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            r, _, _ = select.select([fd], [], [], timeout)
            return bool(r)
        finally:
            os.close(fd)

    # -- stdio -----------------------------------------------------------

    def _bundle_fd(self, cid):
        try:
            return os.open(os.path.join(self.socket_dir, _check_cid(cid)),
                           os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise errors.Conflict('container %s is not running (no monitor)' % cid)

    def attach(self, cid):
        """Connect to the container's stdio through conmon; an AttachStream."""
        dfd = self._bundle_fd(cid)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.connect('/proc/self/fd/%d/attach' % dfd)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise errors.Conflict('cannot attach to container %s: %s' % (cid, exc))
        finally:
            os.close(dfd)
        return AttachStream(sock)

    def resize(self, cid, height, width):
        """Set the tty size of a tty container (clamped to conmon's 0..1000).

        A no-op for containers without a tty: conmon never drains its resize
        fifo then, and enough writes would block it for good.
        """
        if not self.task_meta(cid).get('tty'):
            return
        height = max(0, min(int(height), _MAX_WINSIZE))
        width = max(0, min(int(width), _MAX_WINSIZE))
        dfd = self._bundle_fd(cid)
        try:
            try:
                fd = os.open('ctl', os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except OSError:
                fd = os.open('/proc/self/fd/%d/ctl' % dfd,
                             os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise errors.Conflict('cannot resize container %s: %s' % (cid, exc.strerror))
        finally:
            os.close(dfd)
        try:
            os.write(fd, b'%d %d %d\n' % (_WIN_RESIZE_EVENT, height, width))
        except OSError as exc:
            raise errors.Conflict('cannot resize container %s: %s' % (cid, exc.strerror))
        finally:
            os.close(fd)

    # -- exec ------------------------------------------------------------

    def exec(self, cid, process, tty=False, stdin=False, console_size=None):
        """Run ``process`` (an OCI process dict, see spec.process_spec) in the container.

        Starts a foreground ``runc exec`` as the engine's child and returns
        an ExecProcess at once (not waiting for the process).  ``tty``:
        output and input go through ExecProcess.master; else pipes.
        ``console_size``: (height, width) applied before the process starts.
        """
        _check_cid(cid)
        tdir = self.task_dir(cid)
        if not os.path.isdir(tdir):
            raise errors.Conflict('container %s is not running' % cid)
        self.warmer.kick()
        workdir = os.path.join(tdir, 'x-' + secrets.token_hex(6))
        os.mkdir(workdir, 0o700)
        process = dict(process, terminal=bool(tty))
        if tty and console_size:
            # runc sizes the container-side pty before the process runs only
            # from consoleSize; its own SIGWINCH-driven copy comes too late.
            process['consoleSize'] = {'height': int(console_size[0]),
                                      'width': int(console_size[1])}
        pfile = os.path.join(workdir, 'process.json')
        util.atomic_write_json(pfile, process, sync=False)
        try:
            return execs.start(self.runtime, cid, workdir, pfile, tty=tty, stdin=stdin,
                               console_size=console_size)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
