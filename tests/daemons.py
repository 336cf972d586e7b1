"""Start, talk to and tear down private daemons: our engine and Docker 20.10.

Shared by tests/conftest.py, benchmarks/run.py and anything else that needs a
throw-away daemon on its own socket and data root.  Nothing here depends on a
system daemon; every path lives under a directory the caller owns.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MKIMAGE = os.path.join(REPO, 'tools', 'mkimage.py')
DOCKER_CLI = '/usr/local/bin/docker'
DOCKER_CLI_2010 = '/usr/bin/docker'
DOCKERD = '/usr/sbin/dockerd'


def engine_binary():
    """The novadocker-engine console script of the interpreter running us."""
    candidate = os.path.join(os.path.dirname(sys.executable), 'novadocker-engine')
    if os.path.exists(candidate):
        return candidate
    candidate = os.path.join(REPO, '.venv', 'bin', 'novadocker-engine')
    if os.path.exists(candidate):
        return candidate
    return shutil.which('novadocker-engine') or 'novadocker-engine'


# --------------------------------------------------------------------------
# HTTP over a unix socket


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client on an AF_UNIX socket: the cheapest client we can have."""

    def __init__(self, path, timeout=60):
        super().__init__('localhost', timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class APIError(Exception):
    def __init__(self, status, body, method='', path=''):
        self.status = status
        self.body = body
        super().__init__('%s %s -> %s: %s' % (method, path, status,
                                             body[:500] if body else ''))


def api(sock_path, method, path, body=None, headers=None, timeout=60,
        expect=None):
    """One request; returns (status, headers dict, body bytes).

    ``body`` may be bytes, a file object or something JSON-serialisable.
    With ``expect`` (a status or tuple of them) other statuses raise APIError.
    """
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, bytearray)) \
            and not hasattr(body, 'read'):
        body = json.dumps(body).encode()
        hdrs.setdefault('Content-Type', 'application/json')
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        result = resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()
    if expect is not None:
        ok = (expect,) if isinstance(expect, int) else tuple(expect)
        if result[0] not in ok:
            raise APIError(result[0], data, method, path)
    return result


def api_json(sock_path, method, path, body=None, **kw):
    status, _, data = api(sock_path, method, path, body, **kw)
    return status, (json.loads(data) if data.strip() else None)


def ping(sock_path, timeout=2):
    try:
        status, _, data = api(sock_path, 'GET', '/_ping', timeout=timeout)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and data.strip() == b'OK'


def load_image(sock_path, archive_path, timeout=300):
    """POST /images/load; raise if the status or the JSON stream reports an error."""
    with open(archive_path, 'rb') as f:
        status, _, data = api(sock_path, 'POST', '/images/load?quiet=1', f,
                              headers={'Content-Type': 'application/x-tar'},
                              timeout=timeout)
    if status != 200:
        raise APIError(status, data, 'POST', '/images/load')
    for line in data.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and (msg.get('error') or msg.get('errorDetail')):
            raise APIError(status, line, 'POST', '/images/load')
    return data


def build_busybox_archive(dest_dir, name='busybox.tar', rootfs=False):
    """Run tools/mkimage.py; returns the path of the archive it wrote."""
    out = os.path.join(dest_dir, name)
    cmd = [sys.executable, MKIMAGE, '-o', out]
    if rootfs:
        cmd.append('--rootfs')
    subprocess.run(cmd, check=True)
    return out


# --------------------------------------------------------------------------
# Leftover processes, mounts and runtime state


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def _ancestors():
    """Our own PID and those of our parents: never kill the caller's chain."""
    pids = set()
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open('/proc/%d/stat' % pid) as f:
                pid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def pids_mentioning(path, exclude=()):
    """PIDs whose command line contains ``path`` (our daemons, monitors, shims)."""
    skip = set(exclude) | _ancestors()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in skip:
            continue
        if path in _cmdline(pid):
            found.append(pid)
    return found


def _container_entries(root):
    """(IDs with a record, IDs without) of the directories under
    ``root``/containers, in one listing."""
    base = os.path.join(root, 'containers')
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return set(), set()
    with_record = {n for n in names if os.path.exists(os.path.join(base, n, 'container.json'))}
    return with_record, set(names) - with_record


def container_dirs(root):
    """IDs of the container directories under an engine root that hold a
    record: not the start the engine keeps prepared while idle
    (engine/warmstart.py), which has a directory and no record."""
    return _container_entries(root)[0]


def prepared_start_ids(root):
    """IDs of the starts the engine at ``root`` prepared ahead, if any."""
    return _container_entries(root)[1]


def monitors_of(root, exclude_prepared=True):
    """conmon processes of the engine at ``root``, less the one waiting for
    the start it prepared ahead."""
    skip = prepared_start_ids(root) if exclude_prepared else set()
    found = []
    for pid in pids_mentioning(root):
        cmd = _cmdline(pid)
        if 'conmon' in cmd and not any(cid in cmd for cid in skip):
            found.append(pid)
    return found


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        return state != 'Z'
    except (OSError, IndexError):
        return False


def kill_pids(pids, grace=3.0):
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    pids = [p for p in pids if _alive(p)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def runtime_delete_all(base):
    """``runc|crun --root R delete -f ID`` for every container state under ``base``.

    runc keeps <root>/<id>/state.json, crun <root>/<id>/status; deleting with
    -f kills the container's processes (thawing a paused one first).
    """
    deleted = []
    for dirpath, dirnames, filenames in os.walk(base):
        for marker, tool in (('state.json', 'runc'), ('status', 'crun')):
            if marker not in filenames:
                continue
            cid = os.path.basename(dirpath)
            rroot = os.path.dirname(dirpath)
            # Only the runtimes' own state files: the engine may keep files
            # with the same names in its store.
            key = 'init_process_pid' if tool == 'runc' else 'bundle'
            try:
                with open(os.path.join(dirpath, marker)) as f:
                    state = json.load(f)
                if not isinstance(state, dict) or key not in state:
                    continue
            except (OSError, ValueError):
                continue
            binary = shutil.which(tool)
            if not binary:
                continue
            subprocess.run([binary, '--root', rroot, 'delete', '-f', cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30)
            deleted.append(cid)
    return deleted


def _unescape_mount(path):
    return (path.replace('\\040', ' ').replace('\\011', '\t')
            .replace('\\012', '\n').replace('\\134', '\\'))


def mounts_under(base):
    base = os.path.realpath(base).rstrip('/') + '/'
    found = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mp = _unescape_mount(line.split()[4])
            if (mp + '/').startswith(base):
                found.append(mp)
    return found


def unmount_under(base):
    for mp in sorted(set(mounts_under(base)), key=len, reverse=True):
        subprocess.run(['umount', '-l', mp], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def engine_roots_under(base, depth=3):
    """Engine state directories at most ``depth`` levels under ``base``."""
    found = []
    for dirpath, dirnames, _files in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        if rel != '.' and rel.count(os.sep) + 1 >= depth:
            dirnames[:] = []
        if {'networks', 'containers'} <= set(dirnames):
            found.append(dirpath)
            dirnames[:] = []
    return found


def scrub(base, remove=True, purge=True):
    """Kill everything that lives under ``base``, remove the bridges and
    rules of the engines whose roots are there (``purge``: callers that
    purge their engine themselves say False), unmount it, remove it."""
    if not os.path.isdir(base):
        return
    runtime_delete_all(base)
    kill_pids(pids_mentioning(base))
    roots = engine_roots_under(base)
    for root in roots if purge else ():
        subprocess.run([engine_binary(), '--root', root, 'purge-networks'],
                       capture_output=True, timeout=120)
    # A killed engine leaves its (now empty) parent cgroup behind.
    from engine.runtime import oci
    for root in roots:
        oci.cleanup_cgroup_parent(oci.engine_cgroup_parent(root))
    unmount_under(base)
    if remove:
        for _ in range(3):
            try:
                shutil.rmtree(base)
                break
            except FileNotFoundError:
                break
            except OSError:
                unmount_under(base)
                time.sleep(0.2)


def _log_tail(path, n=40):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return ''


def _wait_ping(sock, proc, deadline, what, log_path):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('%s exited with %s before answering /_ping; '
                               'log %s:\n%s' % (what, proc.returncode, log_path,
                                                _log_tail(log_path)))
        if os.path.exists(sock) and ping(sock):
            return
        time.sleep(0.05)
    raise RuntimeError('%s did not answer /_ping on %s in time; log %s:\n%s'
                       % (what, sock, log_path, _log_tail(log_path)))


def _stop_process(proc, timeout):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --------------------------------------------------------------------------
# Our engine


class _ApiDaemon:
    """What both daemons offer through their API socket (``self.sock``)."""

    def api(self, method, path, body=None, **kw):
        return api(self.sock, method, path, body, **kw)

    def api_json(self, method, path, body=None, **kw):
        return api_json(self.sock, method, path, body, **kw)

    def load(self, archive_path):
        return load_image(self.sock, archive_path)

    def remove_all_containers(self):
        """Ask the daemon itself to force-remove every container; best effort."""
        if not self.running():
            return
        try:
            status, items = self.api_json('GET', '/containers/json?all=1',
                                          timeout=30)
        except Exception:
            return
        if status != 200 or not isinstance(items, list):
            return
        for c in items:
            try:
                self.api('DELETE', '/containers/%s?force=1&v=1' % c['Id'],
                         timeout=60)
            except Exception:
                pass

    def log_tail(self, n=60):
        return _log_tail(self.log_path, n)


STARTED_ROOTS = {}  # engine root -> the test that first started an engine on it


class Engine(_ApiDaemon):
    """One private novadocker-engine: its own root, socket and log file.

    start/stop/kill/restart keep the same root, so a test can SIGKILL the
    engine and start it again on the state it left behind.
    """

    def __init__(self, base, config_file=None, debug=True, extra_args=(),
                 binary=None, docker_config=None, action='serve'):
        self.base = base
        # The subcommand is explicit: the bare form (no action) is meant to
        # serve as well, but being explicit does not depend on that default.
        self.action = action
        self.root = os.path.join(base, 'root')
        self.sock = os.path.join(base, 'engine.sock')
        self.url = 'unix://' + self.sock
        self.log_path = os.path.join(base, 'engine.log')
        self.config_file = config_file
        self.debug = debug
        self.extra_args = list(extra_args)
        self.binary = binary or engine_binary()
        self.proc = None
        self.env = dict(os.environ, DOCKER_HOST=self.url)
        if docker_config:
            self.env['DOCKER_CONFIG'] = docker_config
        os.makedirs(base, exist_ok=True)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self):
        cmd = [self.binary, '--root', self.root, '--host', self.url]
        if self.config_file:
            cmd += ['--config-file', self.config_file]
        if self.debug:
            cmd.append('--debug')
        return cmd + self.extra_args + ([self.action] if self.action else [])

    def start(self, timeout=60):
        if self.running():
            return self
        # Who started which root: a leak found at the end of a test session
        # (tests/conftest.py) is named with the test that made it.
        STARTED_ROOTS.setdefault(self.root, os.environ.get('PYTEST_CURRENT_TEST', ''))
        log = open(self.log_path, 'ab')
        try:
            log.write(('\n==== start %s: %s\n' % (
                time.strftime('%H:%M:%S'), ' '.join(self.command()))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdout=log,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        _wait_ping(self.sock, self.proc, time.monotonic() + timeout,
                   'novadocker-engine', self.log_path)
        return self

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        _stop_process(self.proc, timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        """SIGKILL the daemon only (its containers and monitors stay)."""
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, timeout=60):
        self.stop()
        return self.start(timeout)

    def check(self, timeout=120):
        """``novadocker-engine --root ROOT check``: CompletedProcess (text)."""
        return subprocess.run([self.binary, '--root', self.root, 'check'],
                              capture_output=True, text=True, timeout=timeout)

    def scrub(self, remove=True):
        """Stop the daemon and kill/unmount/delete everything under base;
        then remove the bridges and rules the engine made on the host."""
        if self.running():
            self.stop(10)
        scrub(self.base, remove=False, purge=False)
        self.purge_networks()
        if remove:
            scrub(self.base, remove=True, purge=False)

    def purge_networks(self, timeout=120):
        """``novadocker-engine --root ROOT purge-networks`` (no container runs)."""
        if not os.path.isdir(self.root):
            return None
        return subprocess.run([self.binary, '--root', self.root, 'purge-networks'],
                              capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------
# Docker 20.10 (Debian's docker.io), only as anchor and interop peer


class Dockerd(_ApiDaemon):
    """A private dockerd with its own containerd, all under ``base``.

    The path is kept short: unix socket paths (containerd's among them) must
    fit in 108 bytes.
    """

    def __init__(self, base, storage_driver='overlay2', debug=False):
        self.base = base
        self.data_root = os.path.join(base, 'data')
        self.exec_root = os.path.join(base, 'exec')
        self.sock = os.path.join(base, 'docker.sock')
        self.url = 'unix://' + self.sock
        self.pidfile = os.path.join(base, 'docker.pid')
        self.log_path = os.path.join(base, 'dockerd.log')
        self.config = os.path.join(base, 'daemon.json')
        self.storage_driver = storage_driver
        self.debug = debug
        self.proc = None
        self.env = dict(os.environ, DOCKER_HOST=self.url)
        os.makedirs(base, exist_ok=True)

    def command(self):
        cmd = [DOCKERD,
               '--config-file', self.config,
               '--data-root', self.data_root,
               '--exec-root', self.exec_root,
               '--host', self.url,
               '--pidfile', self.pidfile,
               '--bridge', 'none',
               '--iptables=false', '--ip-masq=false', '--ip6tables=false',
               '--userland-proxy=false',
               '--storage-driver', self.storage_driver]
        if self.debug:
            cmd.append('--debug')
        return cmd

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=90):
        if self.running():
            return self
        with open(self.config, 'w') as f:
            f.write('{}\n')
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(self.command(), stdout=log,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        _wait_ping(self.sock, self.proc, time.monotonic() + timeout,
                   'dockerd', self.log_path)
        return self

    def containerd_pids(self):
        """The containerd dockerd started for us (not any system one)."""
        return [p for p in pids_mentioning(self.exec_root)
                if os.path.basename(_cmdline(p).split(' ')[0]) == 'containerd']

    def shim_pids(self):
        return [p for p in pids_mentioning(self.exec_root)
                if 'containerd-shim' in _cmdline(p).split(' ')[0]]

    def stop(self, timeout=30):
        _stop_process(self.proc, timeout)

    def scrub(self, remove=True):
        self.remove_all_containers()
        self.stop()
        scrub(self.base, remove=remove, purge=False)


def short_tmpdir(prefix):
    """A fresh directory under /tmp with a short path (socket length limits)."""
    return tempfile.mkdtemp(prefix=prefix, dir='/tmp')
