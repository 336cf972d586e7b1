"""OCI runtime drivers (runc, crun) and how the engine picks one.

Each driver is a thin wrapper over the runtime's command line with a
private ``--root`` (``state_root``), so several engines can run side by side
without seeing each other's containers.  Creation is not here: conmon runs
``<runtime> create`` (see ``engine.runtime.monitor``); everything else the
engine asks of the runtime is.
"""

import json
import os
import re
import shutil
import signal as _signal
import subprocess
import threading
import time

from oslo_log import log as logging
from stevedore import driver as sd_driver

from engine import errors
from engine import util

LOG = logging.getLogger(__name__)

NAMESPACE = 'engine.runtimes'
PREFERENCE = ('runc', 'crun')

_LOGRUS_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def runtime_message(text):
    """The human part of a runtime's stderr (runc logs logrus lines)."""
    text = (text or '').strip()
    msgs = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = _LOGRUS_MSG.search(line)
        if m:
            try:
                msgs.append(json.loads('"%s"' % m.group(1)))
            except ValueError:
                msgs.append(m.group(1))
        else:
            msgs.append(line)
    return '; '.join(dict.fromkeys(msgs)) or 'unknown error'


def signal_number(sig):
    """'SIGTERM', 'TERM', '15' or 15 -> 15 (InvalidArgument otherwise)."""
    if isinstance(sig, int):
        num = sig
    else:
        text = str(sig).strip().upper()
        if text.isascii() and text.isdecimal():
            num = int(text)
        else:
            if not text.startswith('SIG'):
                text = 'SIG' + text
            try:
                num = int(getattr(_signal.Signals, text))
            except AttributeError:
                raise errors.InvalidArgument('Invalid signal: %s' % sig)
    if not 0 < num <= 64:
        raise errors.InvalidArgument('Invalid signal: %s' % sig)
    return num


def is_hybrid_cgroups():
    """True when cgroup v1 controllers and a cgroup v2 tree are both mounted."""
    v1 = v2 = False
    try:
        with open('/proc/self/mountinfo') as f:
            for line in f:
                fields = line.split(' - ', 1)
                if len(fields) != 2:
                    continue
                fstype = fields[1].split(' ', 1)[0]
                mountpoint = fields[0].split(' ')[4]
                if fstype == 'cgroup2' and mountpoint != '/sys/fs/cgroup':
                    v2 = True
                elif fstype == 'cgroup':
                    v1 = True
    except OSError:
        return False
    return v1 and v2


def engine_cgroup_parent(root):
    """The cgroup (in every hierarchy) under which the engine at ``root``
    puts its containers."""
    return 'novadocker-' + util.root_tag(root)


def cgroup_parent_paths(parent, base='/sys/fs/cgroup'):
    """The directories of the cgroup ``parent`` that exist, in every hierarchy."""
    parent = parent.strip('/')
    if not parent:
        return []
    candidates = [os.path.join(base, parent)]
    try:
        for entry in sorted(os.listdir(base)):
            candidates.append(os.path.join(base, entry, parent))
    except OSError:
        pass
    return [path for path in candidates if os.path.isdir(path)]


def cleanup_cgroup_parent(parent):
    """Remove the (empty) per-engine parent cgroup in every hierarchy.

    Runtimes remove a container's own cgroup on delete but never the parent
    they created for it.  Non-empty or busy groups are left alone.
    """
    for path in cgroup_parent_paths(parent):
        # Deepest first: a parent may be several levels deep.
        for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


class OciRuntime:
    """An OCI runtime binary driven through its command line.

    ``state_root`` is given to every call as ``--root`` so each engine keeps
    its containers apart.  Errors raise ``RuntimeFailure`` carrying the
    runtime's own message, ``NotFound`` for an unknown container and
    ``Conflict`` when the container's state forbids the operation.
    """

    name = None
    default_path = None
    _probe_cache = {}
    _probe_lock = threading.Lock()

    # Copies its own binary on every container start unless it runs from
    # a sealed copy (engine/runtime/sealed.py).
    clones_itself = False
    # Reads config.json as a stream, once, without waiting for its end: it
    # can be handed a FIFO the spec is written to while it starts
    # (engine/runtime/monitor.py, PendingCreate).
    streams_spec = False

    def __init__(self, state_root, path=None):
        self.state_root = state_root
        self.path = path or shutil.which(self.name) or self.default_path
        # What is executed: ``path`` itself, or a sealed copy of it.
        self.exec_path = self.path
        os.makedirs(state_root, mode=0o700, exist_ok=True)

    def __repr__(self):
        return '<%s %s root=%s>' % (type(self).__name__, self.path, self.state_root)

    # -- probing -------------------------------------------------------

    def available(self):
        """(ok, reason): can this runtime run containers on this host?

        Probed once per binary and cached for the process's life.
        """
        key = (type(self).__name__, self.path)
        with self._probe_lock:
            if key not in self._probe_cache:
                self._probe_cache[key] = self._probe()
            return self._probe_cache[key]

    def _probe(self):
        if not self.path or not os.access(self.path, os.X_OK):
            return False, '%s is not installed' % self.name
        try:
            proc = subprocess.run([self.path, '--version'], capture_output=True,
                                  timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return False, '%s does not run: %s' % (self.path, exc)
        if proc.returncode != 0:
            return False, '%s --version failed: %s' % (
                self.path, runtime_message(proc.stderr.decode(errors='replace')))
        self.version = proc.stdout.decode(errors='replace').splitlines()[0:1]
        return True, ''

    # -- plumbing ------------------------------------------------------

    def base_args(self):
        """Global arguments, also handed to conmon as --runtime-arg."""
        return ['--root', self.state_root]

    def base_args_joined(self):
        """Global arguments as single words, for conmon's --runtime-arg."""
        return ['--root=%s' % self.state_root]

    def _run(self, args, cid=None, input=None, ok_missing=False):
        cmd = [self.exec_path] + self.base_args() + list(args)
        try:
            proc = subprocess.run(cmd, input=input, capture_output=True,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except OSError as exc:
            raise errors.RuntimeFailure('cannot run %s: %s' % (self.path, exc))
        if proc.returncode == 0:
            return proc.stdout
        msg = runtime_message(proc.stderr.decode(errors='replace'))
        low = msg.lower()
        if 'container does not exist' in low or "container doesn't exist" in low:
            if ok_missing:
                return None
            raise errors.NotFound('No such container in the runtime: %s' % cid)
        if ('not running' in low or 'not paused' in low or 'is paused' in low
                or 'not stopped' in low or 'already' in low
                or 'cannot start' in low or 'container is stopped' in low
                or 'process already finished' in low):
            raise errors.Conflict('%s %s: %s' % (self.name, args[0], msg))
        raise errors.RuntimeFailure('%s %s failed: %s' % (self.name, args[0], msg))

    # -- operations ----------------------------------------------------

    def start(self, cid):
        """Run the user process of a created container."""
        self._run(['start', cid], cid)

    def kill(self, cid, signal=_signal.SIGTERM, all=False):
        """Send ``signal`` (number or name) to the init process, or to all with all=True."""
        args = ['kill']
        if all:
            args.append('--all')
        self._run(args + [cid, str(signal_number(signal))], cid)

    def pause(self, cid):
        self._run(['pause', cid], cid)

    def resume(self, cid):
        self._run(['resume', cid], cid)

    def state(self, cid):
        """The runtime's state dict (status: created|running|paused|stopped) or None."""
        out = self._run(['state', cid], cid, ok_missing=True)
        if out is None:
            return None
        try:
            return json.loads(out)
        except ValueError:
            raise errors.RuntimeFailure('%s state printed invalid JSON' % self.name)

    def delete(self, cid, force=False):
        """Remove the container from the runtime; a missing one is not an error.

        Without force a running container raises Conflict.
        """
        args = ['delete'] + (['--force'] if force else []) + [cid]
        self._run(args, cid, ok_missing=True)

    def ps(self, cid):
        """Host pids of every process in the container."""
        out = self._run(['ps', '--format', 'json', cid], cid)
        try:
            pids = json.loads(out or b'null')
        except ValueError:
            raise errors.RuntimeFailure('%s ps printed invalid JSON' % self.name)
        return [int(p) for p in pids or ()]

    def update(self, cid, resources):
        """Apply OCI linux.resources (dict) to a live container."""
        self._run(['update', '--resources', '-', cid], cid,
                  input=json.dumps(resources).encode())

    def exec_command(self, cid, process_file, pid_file, log_file=None):
        """The argv of a foreground ``exec`` of ``process_file`` (used by execs)."""
        args = [self.exec_path] + self.base_args()
        if log_file:
            args += ['--log', log_file, '--log-format', 'json']
        return args + ['exec', '--process', process_file, '--pid-file', pid_file, cid]


class Runc(OciRuntime):
    """runc (https://github.com/opencontainers/runc).

    Four operations are done here instead of by a runc process, each saving
    the start of a Go binary (3 to 8 ms): ``start`` of a freshly created
    container and ``delete`` of one whose processes are gone, on the hot
    path of every ``docker run``, and ``pause`` and ``resume`` of a live
    one, twice in every commit and Nova snapshot.  They follow runc's own
    on-disk protocol (stable since runc 1.0) and fall back to the command
    when anything differs from what they expect.
    """

    name = 'runc'
    default_path = '/usr/sbin/runc'
    clones_itself = True  # runc 1.1's CVE-2019-5736 defence (see sealed.py)
    streams_spec = True   # one json.Decoder.Decode of config.json
    fifo_timeout = 10.0
    # Where runc's cgroup paths must lead for the engine to touch them.
    cgroup_root = '/sys/fs/cgroup/'
    # Freezing: attempts as runc 1.1 makes them, and how long a v2 group
    # may take to report itself frozen.
    freeze_attempts = 1000
    freeze_timeout = 10.0

    def start(self, cid):
        """What ``runc start`` does: read the byte ``runc init`` writes to the
        exec fifo; once it has, init execs the container's process."""
        fifo = os.path.join(self.state_root, cid, 'exec.fifo')
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return super().start(cid)  # not a created container: let runc say why
        try:
            got = _drain_fifo(fd, self.fifo_timeout)
        finally:
            os.close(fd)
        if not got:
            return super().start(cid)
        try:
            os.unlink(fifo)
        except FileNotFoundError:
            pass

    def delete(self, cid, force=False):
        """Remove a stopped container's cgroups and state without runc."""
        if not self._delete_stopped(cid):
            super().delete(cid, force=force)

    def _load_state(self, cid):
        """runc's state.json of ``cid``: a dict, None when there is none,
        False when it cannot be read."""
        try:
            with open(os.path.join(self.state_root, cid, 'state.json'), 'rb') as f:
                state = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return False
        return state if isinstance(state, dict) else False

    def _delete_stopped(self, cid):
        state_dir = os.path.join(self.state_root, cid)
        state = self._load_state(cid)
        if state is None:
            return not os.path.isdir(state_dir)  # gone already: nothing to do
        if state is False:
            return False
        if _process_alive(state.get('init_process_pid'), state.get('init_process_start')):
            return False
        paths = state.get('cgroup_paths') or {}
        if not isinstance(paths, dict):
            return False
        for path in paths.values():
            if not isinstance(path, str) or not path.startswith(self.cgroup_root):
                return False
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                return False  # still populated (a straggler): runc --force copes
        shutil.rmtree(state_dir, ignore_errors=True)
        return True


    def pause(self, cid):
        """What ``runc pause`` does: freeze the container's cgroup.  runc
        keeps nothing else: ``runc state`` reads the freezer."""
        if not self._freeze(cid, True):
            super().pause(cid)

    def resume(self, cid):
        """What ``runc resume`` does: thaw the container's cgroup."""
        if not self._freeze(cid, False):
            super().resume(cid)

    def _freezer(self, cid):
        """('v1' or 'v2', directory) of the freezer runc uses for a live
        ``cid``, or None: then runc itself must do it (and say why not)."""
        state = self._load_state(cid)
        if not state or not _process_alive(state.get('init_process_pid'),
                                           state.get('init_process_start')):
            return None
        paths = state.get('cgroup_paths')
        if not isinstance(paths, dict):
            return None
        # runc's v1 manager (v1 and hybrid hosts) uses the v1 freezer; on a
        # unified host its only path is the v2 group.
        for key, kind, name in (('freezer', 'v1', 'freezer.state'),
                                ('', 'v2', 'cgroup.freeze')):
            path = paths.get(key)
            if isinstance(path, str) and path.startswith(self.cgroup_root) \
                    and '/../' not in path + '/' and os.path.exists(os.path.join(path, name)):
                return kind, path
            if key == 'freezer' and path is not None:
                return None  # a v1 freezer runc knows but we cannot see
        return None

    def _freeze(self, cid, frozen):
        where = self._freezer(cid)
        if where is None:
            return False
        kind, path = where
        try:
            if kind == 'v1':
                self._freeze_v1(path, frozen)
            else:
                self._freeze_v2(path, frozen)
        except OSError as exc:
            raise errors.RuntimeFailure('%s %s failed: %s' % (
                self.name, 'pause' if frozen else 'resume', exc))
        return True

    def _freeze_v1(self, path, frozen):
        state_file = os.path.join(path, 'freezer.state')
        if not frozen:
            _write_file(state_file, 'THAWED')
            return
        # As runc 1.1 does: a v1 group may stay FREEZING while processes
        # appear in it (an exec joining), so write again, and now and then
        # thaw and let it settle.
        try:
            for attempt in range(self.freeze_attempts):
                if attempt % 50 == 49:
                    _write_file(state_file, 'THAWED')
                    time.sleep(0.01)
                _write_file(state_file, 'FROZEN')
                state = _read_file(state_file).strip()
                if state == 'FROZEN':
                    return
                if state != 'FREEZING':
                    raise OSError('freezer state is %r after writing FROZEN' % state)
            raise OSError('unable to freeze')
        except BaseException:
            try:
                _write_file(state_file, 'THAWED')  # never leave it half frozen
            except OSError:
                pass
            raise

    def _freeze_v2(self, path, frozen):
        want = '1' if frozen else '0'
        _write_file(os.path.join(path, 'cgroup.freeze'), want)
        events = os.path.join(path, 'cgroup.events')
        deadline = time.monotonic() + self.freeze_timeout
        while True:
            for line in _read_file(events).splitlines():
                key, _, value = line.partition(' ')
                if key == 'frozen' and value.strip() == want:
                    return
            if time.monotonic() > deadline:
                if frozen:
                    try:
                        _write_file(os.path.join(path, 'cgroup.freeze'), '0')
                    except OSError:
                        pass
                raise OSError('the cgroup did not report itself %s' % (
                    'frozen' if frozen else 'thawed'))
            time.sleep(0.001)


def _write_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read_file(path):
    with open(path) as f:
        return f.read()


class Crun(OciRuntime):
    """crun; it refuses hosts that mount cgroup v1 and v2 side by side."""

    name = 'crun'
    default_path = '/usr/bin/crun'

    def _probe(self):
        ok, reason = super()._probe()
        if not ok:
            return ok, reason
        if is_hybrid_cgroups():
            return False, ('crun does not support this host: cgroup v1 and v2 are '
                           'mounted side by side ("hybrid"); use runc')
        return True, ''


def _drain_fifo(fd, timeout):
    """Read a fifo until its writer closes it; True when data came."""
    import select
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    got = False
    deadline = timeout * 1000
    while True:
        if not poller.poll(deadline):
            return got
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            continue
        if not data:
            return got
        got = True


def _process_alive(pid, start_time):
    """Is ``pid`` still the process that started at ``start_time`` (clock ticks)?"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = stat[stat.rfind(b')') + 2:].split()
    if fields and fields[0] == b'Z':
        return False  # a zombie runs nothing; its parent reaps it
    return str(start_time) == fields[19].decode() if len(fields) > 19 else True


def load_runtime(name, state_root):
    """Instantiate the runtime registered as ``name`` under engine.runtimes."""
    try:
        mgr = sd_driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                      invoke_args=(state_root,))
    except Exception as exc:  # stevedore raises several types
        raise errors.InvalidArgument('unknown OCI runtime %r: %s' % (name, exc))
    return mgr.driver


def choose_runtime(preferred_name, state_root):
    """The runtime named ``preferred_name`` if it works here, else raise.

    With an empty name: the first of runc, crun that is available.
    """
    if preferred_name:
        rt = load_runtime(preferred_name, state_root)
        ok, reason = rt.available()
        if not ok:
            raise errors.RuntimeFailure('OCI runtime %s is not usable: %s'
                                        % (preferred_name, reason))
        return rt
    reasons = []
    for name in PREFERENCE:
        try:
            rt = load_runtime(name, state_root)
        except errors.EngineError as exc:
            reasons.append(str(exc))
            continue
        ok, reason = rt.available()
        if ok:
            LOG.info('Using OCI runtime %s (%s)', name, rt.path)
            return rt
        reasons.append(reason)
    raise errors.RuntimeFailure('no usable OCI runtime: %s' % '; '.join(reasons))
