"""Engines configured differently: the vfs snapshotter, the runtime choice,
two engines side by side, and refusals at start-up."""

import os
import stat
import subprocess
import time

import pytest

from tests import daemons

pytestmark = pytest.mark.compat


def _docker(eng, docker_cli, args, **kw):
    return docker_cli(args, host=eng.url, **kw)


def test_vfs_snapshotter_runs_commits_and_exports(engine_factory, docker_cli, tmp_path):
    eng = engine_factory(config='[engine]\nsnapshotter = vfs\n')
    info = eng.api_json('GET', '/info')[1]
    assert info['Driver'] == 'vfs'
    res = _docker(eng, docker_cli, ['run', '--name', 'v1', 'busybox', 'sh', '-c',
                                    'echo vfs > /made; rm /bin/ls; cat /made'])
    assert res.returncode == 0, res.stderr
    assert res.stdout == 'vfs\n'
    res = _docker(eng, docker_cli, ['commit', 'v1', 'vfs-commit:1'])
    assert res.returncode == 0, res.stderr
    res = _docker(eng, docker_cli, ['run', '--rm', 'vfs-commit:1', 'sh', '-c',
                                    'cat /made; test -e /bin/ls || echo ls-gone'])
    assert res.stdout == 'vfs\nls-gone\n', res.stderr
    out = tmp_path / 'v1.tar'
    res = _docker(eng, docker_cli, ['export', '-o', str(out), 'v1'])
    assert res.returncode == 0, res.stderr
    names = subprocess.run(['tar', 'tf', str(out)], capture_output=True, text=True).stdout.split()
    assert 'made' in [n.lstrip('./') for n in names]
    # vfs keeps full copies: the container's snapshot is a directory of its own.
    assert _docker(eng, docker_cli, ['rm', 'v1']).returncode == 0


def test_two_engines_side_by_side_do_not_see_each_other(engine_factory, docker_cli):
    a = engine_factory()
    b = engine_factory()
    res = _docker(a, docker_cli, ['run', '-d', '--name', 'only-in-a', 'busybox', 'sleep', '30'])
    assert res.returncode == 0, res.stderr
    assert 'only-in-a' in _docker(a, docker_cli, ['ps', '--format', '{{.Names}}']).stdout
    assert 'only-in-a' not in _docker(b, docker_cli, ['ps', '-a', '--format', '{{.Names}}']).stdout
    # Same name on the other engine is free.
    res = _docker(b, docker_cli, ['run', '-d', '--name', 'only-in-a', 'busybox', 'sleep', '30'])
    assert res.returncode == 0, res.stderr
    assert _docker(a, docker_cli, ['rm', '-f', 'only-in-a']).returncode == 0
    assert 'only-in-a' in _docker(b, docker_cli, ['ps', '--format', '{{.Names}}']).stdout


def test_socket_mode_is_0660(engine_factory):
    eng = engine_factory(load_busybox=False)
    assert oct(os.stat(eng.sock).st_mode & 0o777) == oct(0o660)


def test_second_engine_on_the_same_root_is_refused(engine_factory):
    eng = engine_factory(load_busybox=False)
    proc = subprocess.run([daemons.engine_binary(), '--root', eng.root, '--host',
                           'unix://' + eng.sock + '.2'], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode != 0
    assert 'another engine is using the root' in proc.stderr


@pytest.mark.parametrize('host, message', [
    ('tcp://127.0.0.1:2375', 'TCP needs TLS'),
    ('unix://relative.sock', 'absolute socket path'),
])
def test_unsupported_hosts_are_refused(tmp_path, host, message):
    proc = subprocess.run([daemons.engine_binary(), '--root', str(tmp_path / 'root'),
                           '--host', host], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_unusable_runtime_is_refused_with_its_reason(tmp_path):
    conf = tmp_path / 'engine.conf'
    conf.write_text('[engine]\nruntime = no-such-runtime\n')
    proc = subprocess.run([daemons.engine_binary(), '--root', str(tmp_path / 'root'),
                           '--host', 'unix://%s/e.sock' % tmp_path, '--config-file',
                           str(conf)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert 'no-such-runtime' in proc.stderr
    assert not os.path.exists(tmp_path / 'e.sock')


def test_root_keeps_its_snapshotter(engine_factory):
    eng = engine_factory(config='[engine]\nsnapshotter = vfs\n')
    eng.stop()
    proc = subprocess.run([daemons.engine_binary(), '--root', eng.root, '--host',
                           eng.url], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert 'holds vfs snapshots but the configuration asks for overlay' in proc.stderr
    # The check command follows the root, whatever the configuration says.
    assert eng.check().returncode == 0
    eng.start()


def _cgroup_of(pid):
    with open('/proc/%d/cgroup' % pid) as f:
        return f.read()


@pytest.mark.parametrize('warm', [True, False])
def test_cgroup_lock_warming_leaves_the_engine_where_it_was(engine_factory, docker_cli, warm):
    """Warming (engine/runtime/cgwarm.py) moves the engine into its own
    cgroup on this host, around runs and execs, and never anywhere else;
    ``warm_cgroup_lock = false`` switches it off."""
    eng = engine_factory(config='[engine]\nwarm_cgroup_lock = %s\n' % warm)
    before = _cgroup_of(eng.pid)
    res = _docker(eng, docker_cli, ['run', '--rm', 'busybox', 'true'])
    assert res.returncode == 0, res.stderr
    res = _docker(eng, docker_cli, ['run', '-d', '--name', 'warm', 'busybox', 'sleep', '30'])
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    res = _docker(eng, docker_cli, ['exec', 'warm', 'cat', '/proc/self/cgroup'])
    assert res.returncode == 0, res.stderr
    # runc moved the exec into the container's cgroups.
    assert cid in res.stdout
    assert _docker(eng, docker_cli, ['rm', '-f', 'warm']).returncode == 0
    assert _cgroup_of(eng.pid) == before
    with open(eng.log_path) as f:
        log = f.read()
    assert 'Not warming the cgroup migration lock' not in log
    assert ('Warming the cgroup migration lock through' in log) == warm


def _conmon_runtime(cid):
    """The runtime path (-r) of the conmon watching container ``cid``."""
    for pid in daemons.pids_mentioning(cid):
        argv = daemons._cmdline(pid).split()
        if argv and os.path.basename(argv[0]) == 'conmon' and '-r' in argv:
            return argv[argv.index('-r') + 1]
    raise AssertionError('no conmon found for %s' % cid)


@pytest.mark.parametrize('sealed', [True, False])
def test_runc_runs_from_a_sealed_copy(engine_factory, docker_cli, sealed):
    """``runtime_sealed_copy`` (engine/runtime/sealed.py): conmon runs runc
    from the engine's sealed in-memory copy of it, which nothing can write,
    and containers and execs work from it; false runs runc from its file."""
    eng = engine_factory(config='[engine]\nruntime_sealed_copy = %s\n' % sealed)
    res = _docker(eng, docker_cli, ['run', '-d', 'busybox', 'sleep', '30'])
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    runtime = _conmon_runtime(cid)
    if sealed:
        assert runtime.startswith('/proc/%d/fd/' % eng.pid)
        assert os.readlink(runtime) == '/memfd:novadocker:runc (deleted)'
        fd = os.open(runtime, os.O_WRONLY)
        try:
            with pytest.raises(PermissionError):
                os.write(fd, b'\x7fELF')
        finally:
            os.close(fd)
        with open(runtime, 'rb') as copy, open('/usr/sbin/runc', 'rb') as orig:
            assert copy.read() == orig.read()
    else:
        assert runtime == '/usr/sbin/runc'
    res = _docker(eng, docker_cli, ['exec', cid, 'echo', 'from-exec'])
    assert res.returncode == 0 and res.stdout.strip() == 'from-exec', res.stderr
    res = _docker(eng, docker_cli, ['run', '--rm', 'busybox', 'echo', 'ran'])
    assert res.returncode == 0 and res.stdout.strip() == 'ran', res.stderr
    assert _docker(eng, docker_cli, ['rm', '-f', cid]).returncode == 0
    with open(eng.log_path) as f:
        log = f.read()
    assert ('Running /usr/sbin/runc from a sealed in-memory copy' in log) == sealed


@pytest.mark.parametrize('stream', [True, False])
def test_starts_with_and_without_the_streamed_spec(engine_factory, docker_cli, stream):
    """``stream_spec`` (engine/runtime/monitor.py, PendingCreate): conmon and
    runc start before the spec exists and read it from a FIFO; either way
    containers run, exec, fail to start with runc's own message and leave
    nothing behind, and config.json ends up a plain file."""
    eng = engine_factory(config='[engine]\nstream_spec = %s\n' % stream)
    res = _docker(eng, docker_cli, ['run', '--rm', 'busybox', 'echo', 'streamed'])
    assert res.returncode == 0 and res.stdout.strip() == 'streamed', res.stderr
    res = _docker(eng, docker_cli, ['run', '-d', '-e', 'X=' + 'y' * 3000, 'busybox',
                                    'sleep', '30'])
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    config = os.path.join(eng.root, 'containers', cid, 'bundle', 'config.json')
    assert os.path.isfile(config) and not os.path.islink(config)
    res = _docker(eng, docker_cli, ['exec', cid, 'sh', '-c', 'echo ${#X}'])
    assert res.returncode == 0 and res.stdout.strip() == '3000', res.stderr
    assert _docker(eng, docker_cli, ['rm', '-f', cid]).returncode == 0
    res = _docker(eng, docker_cli, ['run', '--rm', '--name', 'nostart', 'busybox',
                                    'no-such-command'])
    assert res.returncode == 127
    assert 'executable file not found' in res.stderr
    assert _docker(eng, docker_cli, ['ps', '-aq']).stdout.strip() == ''
    assert not daemons.monitors_of(eng.root)


def _prepared_start(eng, not_in=(), timeout=15):
    """The ID of the start the engine prepared ahead, once conmon and runc
    wait for its spec (engine/warmstart.py)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for cid in daemons.prepared_start_ids(eng.root) - set(not_in):
            cmds = [daemons._cmdline(p) for p in daemons.pids_mentioning(cid)]
            if any(' create ' in c for c in cmds) and any('conmon' in c for c in cmds):
                return cid
        time.sleep(0.05)
    raise AssertionError('no start prepared under %s' % eng.root)


def _eventually(pred, timeout=15):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.05)
    return pred()


def _gone(cid, path, timeout=15):
    deadline = time.monotonic() + timeout
    while (daemons.pids_mentioning(cid) or os.path.exists(path)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    return not daemons.pids_mentioning(cid) and not os.path.exists(path)


def test_warm_start_is_taken_by_a_default_container_and_never_leaks(
        engine_factory, docker_cli):
    """``warm_start`` (engine/warmstart.py): while idle the engine keeps conmon
    and runc waiting on the FIFO of a container that does not exist yet; the
    next container of the default shape takes its ID and runs; other shapes
    do not take it; a container removed or pruned before its first start, a
    create that fails and the engine's stop each give it up, leaving no
    process and no directory."""
    eng = engine_factory()
    containers = os.path.join(eng.root, 'containers')
    first = _prepared_start(eng)
    config = os.path.join(containers, first, 'bundle', 'config.json')
    assert stat.S_ISFIFO(os.stat(config).st_mode)
    res = _docker(eng, docker_cli, ['create', '--name', 'warm1', 'busybox', 'echo', 'taken'])
    assert res.returncode == 0 and res.stdout.strip() == first, res.stderr
    res = _docker(eng, docker_cli, ['start', '-a', 'warm1'])
    assert res.returncode == 0 and res.stdout.strip() == 'taken', res.stderr
    assert stat.S_ISREG(os.stat(config).st_mode)
    assert _eventually(lambda: not daemons.monitors_of(eng.root))  # ended with it

    # Another shape starts its own conmon: the prepared start stays.
    second = _prepared_start(eng, not_in=[first])
    res = _docker(eng, docker_cli, ['run', '--rm', '-t', 'busybox', 'echo', 'tty'])
    assert res.returncode == 0 and res.stdout.strip() == 'tty', res.stderr
    res = _docker(eng, docker_cli, ['run', '--rm', '--log-opt', 'max-size=1m', 'busybox',
                                    'echo', 'small log'])
    assert res.returncode == 0 and res.stdout.strip() == 'small log', res.stderr
    # (an auto-removed container's directory goes just after its record)
    assert _eventually(lambda: daemons.prepared_start_ids(eng.root) == {second})

    # Taken, then removed before its first start: given up.
    res = _docker(eng, docker_cli, ['create', 'busybox', 'true'])
    assert res.returncode == 0 and res.stdout.strip() == second, res.stderr
    assert _docker(eng, docker_cli, ['rm', second]).returncode == 0
    assert _gone(second, os.path.join(containers, second))

    # Taken by a create that fails (the name is in use): given up.
    third = _prepared_start(eng, not_in=[first, second])
    res = _docker(eng, docker_cli, ['create', '--name', 'warm1', 'busybox', 'true'])
    assert res.returncode != 0 and 'already in use' in res.stderr
    assert _gone(third, os.path.join(containers, third))

    # `docker run --rm` with the default shape runs in the prepared start.
    fourth = _prepared_start(eng, not_in=[first, second, third])
    res = _docker(eng, docker_cli, ['run', '--rm', '--network', 'none', 'busybox',
                                    'echo', 'run'])
    assert res.returncode == 0 and res.stdout.strip() == 'run', res.stderr
    assert _gone(fourth, os.path.join(containers, fourth))

    # Taken, then pruned before its first start: given up.
    assert _docker(eng, docker_cli, ['rm', 'warm1']).returncode == 0
    fifth = _prepared_start(eng, not_in=[first, second, third, fourth])
    res = _docker(eng, docker_cli, ['create', 'busybox', 'true'])
    assert res.returncode == 0 and res.stdout.strip() == fifth, res.stderr
    assert _docker(eng, docker_cli, ['container', 'prune', '-f']).returncode == 0
    assert _gone(fifth, os.path.join(containers, fifth))

    # The engine's stop gives up the last one.
    sixth = _prepared_start(eng, not_in=[first, second, third, fourth, fifth])
    eng.stop()
    assert not daemons.pids_mentioning(eng.root)
    assert os.listdir(containers) == []
    assert sixth not in os.listdir(os.path.join(eng.root, 'run', 't'))


def test_warm_start_after_an_engine_crash(engine_factory, docker_cli):
    """SIGKILL of the engine: runc reads an end of file where its spec was to
    come, so the prepared conmon and runc end on their own (the one a
    created container took as well); the store checks clean and the next
    start collects the directory and runs the created container."""
    eng = engine_factory()
    taken = _prepared_start(eng)
    res = _docker(eng, docker_cli, ['create', '--name', 'took', 'busybox', 'echo', 'after'])
    assert res.returncode == 0 and res.stdout.strip() == taken, res.stderr
    spare = _prepared_start(eng, not_in=[taken])
    eng.kill()
    assert _eventually(lambda: not daemons.pids_mentioning(eng.root))
    check = eng.check()
    assert check.returncode == 0, check.stdout + check.stderr
    eng.start()
    assert not os.path.exists(os.path.join(eng.root, 'containers', spare))
    res = _docker(eng, docker_cli, ['start', '-a', 'took'])
    assert res.returncode == 0 and res.stdout.strip() == 'after', res.stderr
    assert _docker(eng, docker_cli, ['rm', 'took']).returncode == 0


def test_warm_start_off_prepares_nothing(engine_factory, docker_cli):
    eng = engine_factory(config='[engine]\nwarm_start = false\n')
    res = _docker(eng, docker_cli, ['run', '--rm', 'busybox', 'echo', 'cold'])
    assert res.returncode == 0 and res.stdout.strip() == 'cold', res.stderr
    time.sleep(1.0)  # well past the idle delay before a start is prepared
    assert _eventually(lambda: daemons.prepared_start_ids(eng.root) == set())
    assert not daemons.monitors_of(eng.root, exclude_prepared=False)
