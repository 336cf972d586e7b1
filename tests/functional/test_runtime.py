"""The runtime layer against real runc and conmon, with a busybox rootfs."""

import json
import os
import re
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from engine import errors
from engine.runtime import oci
from engine.runtime import monitor
from engine.runtime import spec
from tests import daemons

pytestmark = pytest.mark.functional

BUSYBOX = '/bin/busybox'
LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d|\S+Z) '
                      r'(stdout|stderr) ([FP]) (.*)$')

needs_tools = pytest.mark.skipif(
    not (os.geteuid() == 0 and os.path.exists(BUSYBOX) and shutil.which('conmon')
         and shutil.which('runc')),
    reason='needs root, busybox-static, runc and conmon')


def make_rootfs(path):
    bindir = os.path.join(path, 'bin')
    os.makedirs(bindir)
    shutil.copy(BUSYBOX, os.path.join(bindir, 'busybox'))
    applets = subprocess.run([BUSYBOX, '--list'], capture_output=True, check=True,
                             text=True).stdout.split()
    for applet in applets:
        if applet != 'busybox':
            os.symlink('busybox', os.path.join(bindir, applet))
    for d in ('etc', 'tmp', 'proc', 'sys', 'dev', 'data'):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    with open(os.path.join(path, 'etc/passwd'), 'w') as f:
        f.write('root:x:0:0:root:/root:/bin/sh\n'
                'daemon:x:1:1:daemon:/usr/sbin:/bin/false\n'
                'nobody:x:65534:65534:nobody:/home:/bin/false\n')
    with open(os.path.join(path, 'etc/group'), 'w') as f:
        f.write('root:x:0:\nwheel:x:10:root\nstaff:x:50:nobody,daemon\n'
                'nogroup:x:65534:\n')
    os.chmod(os.path.join(path, 'tmp'), 0o1777)
    return path


@pytest.fixture(scope='module')
def rootfs(tmp_path_factory):
    if not (os.geteuid() == 0 and os.path.exists(BUSYBOX)):
        pytest.skip('needs root and busybox-static')
    return make_rootfs(str(tmp_path_factory.mktemp('rootfs') / 'r'))


class Env:
    """A task service of its own (runc root, exec root, cgroup parent) per test."""

    def __init__(self, base, rootfs):
        self.base = base
        self.rootfs = rootfs
        self.cgroup_parent = '/novadocker-test-%s' % secrets.token_hex(4)
        self.runtime = oci.Runc(os.path.join(base, 'runc'))
        self.tasks = monitor.TaskService(self.runtime, os.path.join(base, 'run'))
        self.cids = []

    def spec(self, args, cid, **kw):
        kw.setdefault('hostname', 'box')
        return spec.generate(args, self.rootfs,
                             cgroups_path=spec.cgroups_path(self.cgroup_parent, cid), **kw)

    def create(self, args, cid=None, tty=False, stdin=False, stdin_once=False, **kw):
        cid = cid or 'c' + secrets.token_hex(8)
        self.cids.append(cid)
        s = self.spec(args, cid, terminal=tty, **kw)
        info = self.tasks.create(cid, self.bundle(cid), s, tty=tty, stdin=stdin,
                                 stdin_once=stdin_once)
        return cid, info

    def run(self, args, **kw):
        cid, info = self.create(args, **kw)
        self.tasks.start(cid)
        return cid, info

    def bundle(self, cid):
        return os.path.join(self.base, 'bundles', cid)

    def log(self, cid):
        with open(os.path.join(self.bundle(cid), 'ctr.log')) as f:
            return f.read()

    def cleanup(self):
        for cid in self.cids:
            try:
                self.tasks.delete(cid, force=True)
            except Exception:
                subprocess.run(['runc', '--root', self.runtime.state_root, 'delete', '-f',
                                cid], capture_output=True)
        oci.cleanup_cgroup_parent(self.cgroup_parent)


@pytest.fixture
def env(tmp_path, rootfs):
    if not (shutil.which('conmon') and shutil.which('runc')):
        pytest.skip('needs runc and conmon')
    e = Env(str(tmp_path), rootfs)
    try:
        yield e
    finally:
        e.cleanup()
        leftovers = [p for p in os.listdir('/sys/fs/cgroup')
                     if os.path.isdir(os.path.join('/sys/fs/cgroup', p,
                                                   e.cgroup_parent.strip('/')))]
        assert not leftovers, 'cgroups left behind in %s' % leftovers


def read_all(stream, timeout=20):
    """Everything an attach stream delivers until EOF, as {stream: bytes}."""
    out = {'stdout': b'', 'stderr': b''}
    deadline = time.monotonic() + timeout
    while True:
        item = stream.recv(timeout=max(0.1, deadline - time.monotonic()))
        if item is None:
            return out
        out[item[0]] += item[1]


def read_until(stream, pattern, timeout=20):
    """Read stdout/stderr until ``pattern`` (bytes regex) matches what came so far."""
    buf = b''
    deadline = time.monotonic() + timeout
    while not re.search(pattern, buf):
        item = stream.recv(timeout=max(0.1, deadline - time.monotonic()))
        if item is None:
            break
        buf += item[1]
    return buf


def run_to_exit(env, args, **kw):
    cid, _info = env.run(args, **kw)
    status = env.tasks.wait(cid, timeout=30)
    assert status is not None
    return cid, status


# ------------------------------------------------------------------ runtimes

def test_runtime_message_and_signals():
    stderr = ('time="2026-01-01T00:00:00Z" level=error msg="container \\"x\\" does not '
              'exist"\n')
    assert oci.runtime_message(stderr) == 'container "x" does not exist'
    assert oci.runtime_message('plain words\n') == 'plain words'
    assert oci.runtime_message('') == 'unknown error'
    assert oci.signal_number('SIGTERM') == 15
    assert oci.signal_number('kill') == 9
    assert oci.signal_number('10') == 10
    assert oci.signal_number(signal.SIGHUP) == 1
    for bad in ('SIGNOPE', '0', 99, ''):
        with pytest.raises(errors.InvalidArgument):
            oci.signal_number(bad)


def test_runtime_selection():
    ok, reason = oci.Runc('/tmp/novadocker-test-probe').available()
    assert ok, reason
    rt = oci.choose_runtime('', '/tmp/novadocker-test-probe')
    assert isinstance(rt, oci.Runc)
    assert rt.state_root == '/tmp/novadocker-test-probe'
    if oci.is_hybrid_cgroups():
        ok, reason = oci.Crun('/tmp/novadocker-test-probe2').available()
        assert not ok and 'hybrid' in reason
        with pytest.raises(errors.RuntimeFailure, match='crun'):
            oci.choose_runtime('crun', '/tmp/novadocker-test-probe2')
    with pytest.raises(errors.InvalidArgument):
        oci.load_runtime('nosuchruntime', '/tmp/novadocker-test-probe2')
    shutil.rmtree('/tmp/novadocker-test-probe', ignore_errors=True)
    shutil.rmtree('/tmp/novadocker-test-probe2', ignore_errors=True)


@needs_tools
def test_true_exits_zero(env):
    cid, info = env.create(['true'])
    assert info.pid > 0 and info.monitor_pid > 0
    assert env.tasks.state(cid)['status'] == 'created'
    assert env.tasks.monitor_alive(cid, info.monitor_pid)
    assert env.tasks.exit_status(cid) is None
    before = time.time()
    env.tasks.start(cid)
    code, finished_at, oom = env.tasks.wait(cid, timeout=30)
    assert (code, oom) == (0, False)
    assert before - 1 <= finished_at <= time.time() + 1
    assert env.tasks.state(cid)['status'] == 'stopped'
    assert not env.tasks.monitor_alive(cid, info.monitor_pid)
    env.tasks.delete(cid)
    assert env.tasks.state(cid) is None
    assert env.tasks.exit_status(cid) is None
    assert cid not in env.tasks.known_tasks()
    env.tasks.delete(cid)       # missing is not an error


@needs_tools
def test_log_has_both_streams_and_exit_code(env):
    cid, status = run_to_exit(env, ['sh', '-c', 'echo out; echo err >&2; exit 3'])
    assert status[0] == 3
    lines = [LOG_LINE.match(line) for line in env.log(cid).splitlines()]
    assert all(lines), env.log(cid)
    assert [(m.group(2), m.group(3), m.group(4)) for m in lines] == [
        ('stdout', 'F', 'out'), ('stderr', 'F', 'err')]


@needs_tools
def test_create_failure_reports_runtime_message_and_cleans_up(env):
    cid = 'cfail' + secrets.token_hex(4)
    with pytest.raises(errors.RuntimeFailure, match='executable file not found'):
        env.create(['nosuchbinary'], cid=cid)
    assert env.tasks.state(cid) is None
    assert cid not in env.tasks.known_tasks()


@needs_tools
def test_unknown_container_errors(env):
    with pytest.raises(errors.NotFound):
        env.tasks.start('nosuchcontainer')
    with pytest.raises(errors.NotFound):
        env.tasks.kill('nosuchcontainer', 'SIGTERM')
    assert env.tasks.state('nosuchcontainer') is None
    with pytest.raises(errors.Conflict):
        env.tasks.attach('nosuchcontainer')
    with pytest.raises(errors.InvalidArgument):
        env.tasks.create('../evil', env.bundle('x'), env.spec(['true'], 'x'))


@needs_tools
def test_recreate_replaces_stopped_but_not_running(env):
    cid, _ = env.run(['true'])
    assert env.tasks.wait(cid, timeout=30)[0] == 0
    # an exited container is created again under the same id (docker start)
    env.tasks.create(cid, env.bundle(cid), env.spec(['sh', '-c', 'exit 5'], cid))
    assert env.tasks.exit_status(cid) is None
    env.tasks.start(cid)
    assert env.tasks.wait(cid, timeout=30)[0] == 5

    cid, info = env.run(['sleep', '100'])
    with pytest.raises(errors.Conflict):
        env.tasks.create(cid, env.bundle(cid), env.spec(['true'], cid))
    assert env.tasks.state(cid)['status'] == 'running'
    assert env.tasks.monitor_alive(cid, info.monitor_pid)


@needs_tools
def test_oom_kill_is_reported(env):
    cid, _ = env.run(['sh', '-c', 'x=$(head -c 300000000 /dev/zero | tr "\\0" a); echo $x'],
                     resources={'memory': {'limit': 32 << 20, 'swap': 32 << 20}})
    code, _finished, oom = env.tasks.wait(cid, timeout=60)
    assert oom is True and code == 137


@needs_tools
def test_join_network_namespace_and_update(env):
    first, info = env.run(['sleep', '100'])
    probe = ['sh', '-c', 'readlink /proc/self/ns/net']
    cid, _ = env.create(probe, network='container:%d' % info.pid)
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        joined = read_all(stream)['stdout'].strip()
    assert joined.decode() == os.readlink('/proc/%d/ns/net' % info.pid)
    cid, _ = env.create(probe, network='host')
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        host = read_all(stream)['stdout'].strip()
    assert host.decode() == os.readlink('/proc/self/ns/net')

    env.tasks.update(first, {'memory': {'limit': 64 << 20}})
    limit_file = os.path.join('/sys/fs/cgroup/memory', env.cgroup_parent.strip('/'), first,
                              'memory.limit_in_bytes')
    if os.path.exists(limit_file):
        with open(limit_file) as f:
            assert int(f.read()) == 64 << 20
    env.tasks.resize(first, 10, 10)        # no tty: ignored, not an error


# ------------------------------------------------------------------ attach

@needs_tools
def test_attach_before_start_separates_streams(env):
    cid, _ = env.create(['sh', '-c', 'echo one; echo two >&2; echo three'])
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        out = read_all(stream)
    assert out == {'stdout': b'one\nthree\n', 'stderr': b'two\n'}
    assert env.tasks.wait(cid, timeout=30)[0] == 0


@needs_tools
def test_stdin_once_close_ends_input(env):
    cid, _ = env.create(['cat'], stdin=True, stdin_once=True)
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        big = b'x' * 100000 + b'\n'      # larger than one conmon packet
        stream.send_stdin(b'hello\n')
        assert read_until(stream, b'hello\n') == b'hello\n'
        stream.send_stdin(big)
        assert read_until(stream, b'x\n$') == big
        stream.close_stdin()
        assert read_all(stream) == {'stdout': b'', 'stderr': b''}
    assert env.tasks.wait(cid, timeout=30)[0] == 0


@needs_tools
def test_stdin_left_open_without_stdin_once(env):
    cid, _ = env.create(['cat'], stdin=True, stdin_once=False)
    first = env.tasks.attach(cid)
    env.tasks.start(cid)
    first.send_stdin(b'a\n')
    assert read_until(first, b'a\n') == b'a\n'
    first.close_stdin()
    first.close()
    second = env.tasks.attach(cid)
    second.send_stdin(b'b\n')
    assert read_until(second, b'b\n') == b'b\n'
    assert env.tasks.state(cid)['status'] == 'running'
    assert env.tasks.exit_status(cid) is None
    env.tasks.kill(cid, signal.SIGKILL)
    assert read_all(second)['stderr'] == b''
    second.close()
    assert env.tasks.wait(cid, timeout=30)[0] == 137


@needs_tools
def test_tty_attach_and_resize(env):
    cid, _ = env.create(['sh', '-c', 'while read x; do stty size; done'], tty=True,
                        stdin=True)
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        env.tasks.resize(cid, 33, 77)
        seen = b''
        for _ in range(50):
            stream.send_stdin(b'x\n')
            seen += read_until(stream, rb'\d+ \d+\r\n')
            if b'33 77\r\n' in seen:
                break
        assert b'33 77\r\n' in seen
        # everything a tty container prints arrives as stdout
        env.tasks.kill(cid, signal.SIGKILL)
        assert read_all(stream)['stderr'] == b''
    assert env.tasks.wait(cid, timeout=30)[0] == 137


# ------------------------------------------------------------------ signals, pause

@needs_tools
def test_kill_sigterm_and_sigkill(env):
    script = 'trap "exit 42" TERM; echo ready; while true; do sleep 0.05; done'
    cid, _ = env.create(['sh', '-c', script])
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        assert read_until(stream, b'ready') == b'ready\n'
        env.tasks.kill(cid, 'SIGTERM')
        assert env.tasks.wait(cid, timeout=30)[0] == 42

    cid, _ = env.run(['sleep', '100'])
    env.tasks.kill(cid, signal.SIGKILL)
    assert env.tasks.wait(cid, timeout=30)[0] == 137
    with pytest.raises(errors.Conflict):
        env.tasks.kill(cid, signal.SIGKILL)


@needs_tools
def test_pause_resume(env):
    cid, info = env.run(['sleep', '100'])
    assert env.tasks.pids(cid) == [info.pid]
    env.tasks.pause(cid)
    assert env.tasks.state(cid)['status'] == 'paused'
    with pytest.raises(errors.Conflict):
        env.tasks.delete(cid)
    env.tasks.resume(cid)
    assert env.tasks.state(cid)['status'] == 'running'
    with pytest.raises(errors.Conflict):
        env.tasks.delete(cid)
    env.tasks.pause(cid)
    env.tasks.delete(cid, force=True)       # even while frozen
    assert env.tasks.state(cid) is None
    assert env.tasks.exit_status(cid) is None
    assert not env.tasks.monitor_alive(cid, info.monitor_pid)


# ------------------------------------------------------------------ exec

@needs_tools
def test_exec_non_tty(env):
    cid, _ = env.run(['sleep', '100'], env=[spec.DEFAULT_PATH_ENV, 'FOO=bar'])
    cspec = env.spec(['sleep', '100'], cid, env=[spec.DEFAULT_PATH_ENV, 'FOO=bar'])
    proc = env.tasks.exec(cid, spec.exec_process_spec(
        cspec, ['sh', '-c', 'echo $FOO $BAZ; echo e >&2; exit 7'], env=['BAZ=qux']))
    try:
        assert proc.wait(30) == 7
        assert os.read(proc.stdout, 100) == b'bar qux\n'
        assert os.read(proc.stderr, 100) == b'e\n'
        assert proc.pid and proc.pid != proc.runtime_pid
    finally:
        proc.close()

    proc = env.tasks.exec(cid, spec.exec_process_spec(cspec, ['cat']), stdin=True)
    try:
        os.write(proc.stdin, b'through stdin\n')
        os.close(proc.stdin)
        proc.stdin = None
        assert proc.wait(30) == 0
        assert os.read(proc.stdout, 100) == b'through stdin\n'
    finally:
        proc.close()

    proc = env.tasks.exec(cid, spec.exec_process_spec(cspec, ['/no/such']))
    try:
        assert proc.wait(30) != 0
        assert 'no such file' in (proc.error or '').lower()
    finally:
        proc.close()


@needs_tools
def test_exec_tty_and_resize(env):
    cid, _ = env.run(['sleep', '100'])
    cspec = env.spec(['sleep', '100'], cid)
    proc = env.tasks.exec(cid, spec.exec_process_spec(
        cspec, ['sh', '-c', 'stty size; tty; exit 5'], tty=True), tty=True,
        console_size=(20, 30))
    out = b''
    try:
        while True:
            chunk = proc.read()
            if not chunk:
                break
            out += chunk
        assert proc.wait(30) == 5
    finally:
        proc.close()
    assert b'20 30\r\n' in out
    assert re.search(rb'/dev/pts/\d+', out)

    proc = env.tasks.exec(cid, spec.exec_process_spec(
        cspec, ['sh', '-c', 'while read x; do stty size; done'], tty=True), tty=True)
    try:
        seen = b''
        for _ in range(50):
            proc.resize(40, 50)        # as a client does on each SIGWINCH
            os.write(proc.master, b'x\n')
            answer = re.compile(rb'x\r\n(.*\r\n)')
            deadline = time.monotonic() + 2
            start = len(seen)
            while not answer.search(seen, start) and time.monotonic() < deadline:
                r, _, _ = select.select([proc.master], [], [], 0.5)
                if r:
                    seen += proc.read()
            if b'40 50\r\n' in seen:
                break
        assert b'40 50\r\n' in seen
        proc.kill(signal.SIGKILL)
        assert proc.wait(30) == 137
    finally:
        proc.close()


# ------------------------------------------------------------------ engine death

SURVIVOR = textwrap.dedent('''
    import json, sys
    from engine.runtime import oci, monitor, spec
    base, rootfs, cid, parent = sys.argv[1:5]
    tasks = monitor.TaskService(oci.Runc(base + '/runc'), base + '/run')
    s = spec.generate(['sh', '-c', 'while [ ! -e /data/stop ]; do echo tick; sleep 0.05; done; exit 9'],
                      rootfs, cgroups_path=spec.cgroups_path(parent, cid),
                      mounts=[spec.bind_mount(base + '/data', '/data')])
    info = tasks.create(cid, base + '/bundles/' + cid, s)
    tasks.start(cid)
    print(json.dumps(info._asdict()), flush=True)
    sys.stdin.read()
''')


@needs_tools
def test_container_outlives_its_creator(env):
    cid = 'surv' + secrets.token_hex(4)
    env.cids.append(cid)
    data = os.path.join(env.base, 'data')
    os.makedirs(data)
    creator = subprocess.Popen(
        [sys.executable, '-c', SURVIVOR, env.base, env.rootfs, cid, env.cgroup_parent],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    info = json.loads(creator.stdout.readline())
    creator.kill()           # SIGKILL: no cleanup of any kind in the creator
    creator.wait()
    creator.stdin.close()
    creator.stdout.close()
    assert env.tasks.monitor_alive(cid, info['monitor_pid'])
    assert env.tasks.state(cid)['status'] == 'running'
    size = len(env.log(cid))
    deadline = time.monotonic() + 10
    while len(env.log(cid)) == size and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(env.log(cid)) > size, 'output stopped reaching the log'
    assert env.tasks.exit_status(cid) is None
    # another service instance (a restarted engine) reattaches from files alone
    with env.tasks.attach(cid) as stream:
        assert read_until(stream, b'tick\n', timeout=10).endswith(b'tick\n')
    open(os.path.join(data, 'stop'), 'w').close()
    code, _finished, oom = env.tasks.wait(cid, info['monitor_pid'], timeout=30)
    assert (code, oom) == (9, False)


# ------------------------------------------------------------------ security defaults

def _status_fields(text):
    return dict(line.split(':\t', 1) for line in text.splitlines() if ':\t' in line)


@needs_tools
def test_default_security_profile(env):
    script = ('cat /proc/self/status; echo ---; ip -o link; echo ---; '
              'test -c /proc/keys && echo keys-masked; '
              'test -c /proc/timer_list && echo timer-masked; '
              'echo 1 > /proc/sysrq-trigger || echo sysrq-ro; '
              'touch /sys/x 2>/dev/null || echo sys-ro; '
              'ls /dev; ulimit -n; hostname')
    cid, _ = env.create(['sh', '-c', script])
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        out = read_all(stream)['stdout'].decode()
    status, links, rest = out.split('---\n')
    fields = _status_fields(status)
    assert fields['Seccomp'] == '2'
    assert fields['NoNewPrivs'] == '1'
    assert fields['CapEff'] == '00000000a80425fb'
    assert fields['CapBnd'] == '00000000a80425fb'
    assert fields['CapInh'] == '0000000000000000'
    # network none: a fresh namespace with only loopback, brought up by runc
    assert len(links.strip().splitlines()) == 1 and 'lo:' in links and 'UP' in links
    for word in ('keys-masked', 'timer-masked', 'sysrq-ro', 'sys-ro'):
        assert word in rest
    devs = set(rest.split())
    assert {'null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm',
            'mqueue'} <= devs
    assert str(spec.default_nofile()) in rest.split()
    assert rest.split()[-1] == 'box'


@needs_tools
def test_readonly_rootfs(env):
    cid, _ = env.create(['sh', '-c', 'touch /x 2>&1; touch /tmp/y 2>&1; true'],
                        readonly_rootfs=True)
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        out = read_all(stream)['stdout']
    assert out.count(b'Read-only file system') == 2
    assert not os.path.exists(os.path.join(env.rootfs, 'x'))


@needs_tools
def test_seccomp_blocks_what_caps_allow(env):
    # With CAP_SYS_ADMIN, only the seccomp profile stands between the
    # container and swapon(2); unconfined it reaches the kernel's checks.
    probe = ['sh', '-c', 'swapon /dev/null 2>&1; true']
    cid, _ = env.create(probe, cap_add=['SYS_ADMIN'])
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        confined = read_all(stream)['stdout']
    cid, _ = env.create(probe, cap_add=['SYS_ADMIN'], seccomp_profile='unconfined')
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        unconfined = read_all(stream)['stdout']
    assert b'Operation not permitted' in confined
    assert b'Operation not permitted' not in unconfined


@needs_tools
def test_privileged_and_cap_drop(env):
    cid, _ = env.create(['sh', '-c', 'cat /proc/self/status; test -c /proc/keys '
                         '|| echo keys-visible'], privileged=True)
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        out = read_all(stream)['stdout'].decode()
    fields = _status_fields(out)
    assert fields['Seccomp'] == '0'
    assert fields['CapEff'] == _status_fields(open('/proc/self/status').read())['CapBnd']
    assert 'keys-visible' in out

    cid, _ = env.create(['sh', '-c', 'cat /proc/self/status; chown 1 /tmp 2>&1; true'],
                        cap_drop=['ALL'], cap_add=['NET_RAW'])
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        out = read_all(stream)['stdout'].decode()
    assert _status_fields(out)['CapEff'] == '%016x' % (1 << 13)
    assert 'Operation not permitted' in out


@needs_tools
def test_user_from_image(env):
    user = spec.resolve_user(env.rootfs, 'nobody')
    assert user == (65534, 65534, [50])
    cid, _ = env.create(['id'], user=user)
    with env.tasks.attach(cid) as stream:
        env.tasks.start(cid)
        out = read_all(stream)['stdout']
    assert out.startswith(b'uid=65534(nobody) gid=65534(nogroup) groups=')
    assert b'50(staff)' in out


# -- the spec streamed to a runtime that is already starting (PendingCreate) --

def _config(env, cid):
    return os.path.join(env.bundle(cid), 'config.json')


@needs_tools
def test_streamed_spec_creates_the_container_and_leaves_a_plain_config(env):
    cid = 'st' + secrets.token_hex(6)
    env.cids.append(cid)
    pending = env.tasks.begin_create(cid, env.bundle(cid))
    # conmon and runc are started and wait for the spec in a FIFO.
    assert stat.S_ISFIFO(os.lstat(_config(env, cid)).st_mode)
    deadline = time.monotonic() + 5
    while not any('runc' in daemons._cmdline(p) for p in daemons.pids_mentioning(cid)):
        assert time.monotonic() < deadline, 'runc did not start before the spec was there'
        time.sleep(0.01)
    time.sleep(0.2)
    assert env.tasks.state(cid) is None
    s = env.spec(['sh', '-c', 'exit 7'], cid)
    info = pending.finish(s)
    assert info.pid > 0 and env.tasks.state(cid)['status'] == 'created'
    # What runc read is kept as a plain file (exec reads it).
    assert stat.S_ISREG(os.lstat(_config(env, cid)).st_mode)
    with open(_config(env, cid)) as f:
        assert json.load(f) == json.loads(json.dumps(s))
    assert not os.path.lexists(os.path.join(env.bundle(cid), monitor.SPEC_NEXT))
    env.tasks.start(cid)
    assert env.tasks.wait(cid, timeout=30)[0] == 7


@needs_tools
@pytest.mark.parametrize('delay', [0, 0.3])
def test_aborted_streamed_create_leaves_nothing(env, delay):
    """Given up right away (runc may not have opened the FIFO yet) or once
    runc waits in it: no hang, no process, no runtime state, no FIFO."""
    cid = 'ab' + secrets.token_hex(6)
    env.cids.append(cid)
    pending = env.tasks.begin_create(cid, env.bundle(cid))
    time.sleep(delay)
    started = time.monotonic()
    pending.abort()
    assert time.monotonic() - started < 10
    assert env.tasks.state(cid) is None
    assert cid not in env.tasks.known_tasks()
    assert not os.path.lexists(_config(env, cid))
    deadline = time.monotonic() + 5
    while daemons.pids_mentioning(cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not daemons.pids_mentioning(cid)


@needs_tools
def test_failed_streamed_create_reports_the_runtime_message(env):
    cid = 'sf' + secrets.token_hex(6)
    env.cids.append(cid)
    pending = env.tasks.begin_create(cid, env.bundle(cid))
    with pytest.raises(errors.RuntimeFailure, match='executable file not found'):
        pending.finish(env.spec(['nosuchbinary'], cid))
    assert env.tasks.state(cid) is None
    assert cid not in env.tasks.known_tasks()
    assert stat.S_ISREG(os.lstat(_config(env, cid)).st_mode)


@needs_tools
def test_a_spec_larger_than_the_pipe_goes_through_a_file(env, monkeypatch):
    monkeypatch.setattr(monitor, 'SPEC_PIPE_SIZE', 4096)
    cid = 'lg' + secrets.token_hex(6)
    env.cids.append(cid)
    pending = env.tasks.begin_create(cid, env.bundle(cid))
    s = env.spec(['sh', '-c', 'test ${#BIG} = 8000'], cid,
                 env=['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'BIG=' + 'x' * 8000])
    pending.finish(s)
    assert stat.S_ISREG(os.lstat(_config(env, cid)).st_mode)
    env.tasks.start(cid)
    assert env.tasks.wait(cid, timeout=30)[0] == 0


@needs_tools
def test_streamed_create_replaces_a_stopped_leftover(env):
    cid, _ = env.run(['true'])
    assert env.tasks.wait(cid, timeout=30)[0] == 0
    pending = env.tasks.begin_create(cid, env.bundle(cid))
    pending.finish(env.spec(['sh', '-c', 'exit 5'], cid))
    env.tasks.start(cid)
    assert env.tasks.wait(cid, timeout=30)[0] == 5


def test_settle_spec_puts_the_plain_file_back(tmp_path):
    tasks = monitor.TaskService(oci.Runc(str(tmp_path / 'runc')), str(tmp_path / 'run'))
    bundle = tmp_path / 'b'
    bundle.mkdir()
    config = bundle / 'config.json'
    os.mkfifo(config)
    (bundle / monitor.SPEC_NEXT).write_text('{"ociVersion": "1.0.2"}')
    tasks.settle_spec(str(bundle))
    assert config.read_text() == '{"ociVersion": "1.0.2"}'
    assert not (bundle / monitor.SPEC_NEXT).exists()
    tasks.settle_spec(str(bundle))  # a plain file stays
    assert config.read_text() == '{"ociVersion": "1.0.2"}'
    config.unlink()
    os.mkfifo(config)
    tasks.settle_spec(str(bundle))  # a FIFO with nothing to put back goes
    assert not os.path.lexists(config)
