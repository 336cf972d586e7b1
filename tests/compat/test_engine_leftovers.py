"""What a crash leaves half-removed is collected at the next start: runtime
state, cgroups, mounts, container directories and snapshots."""

import glob
import os
import signal
import time

import pytest

pytestmark = pytest.mark.compat


def _cgroups(cid):
    return glob.glob('/sys/fs/cgroup/*/novadocker-*/%s' % cid)


def test_crash_after_forgetting_a_container_leaks_nothing(engine_factory, docker_cli):
    eng = engine_factory()
    res = docker_cli(['run', '-d', 'busybox', 'sleep', '300'], host=eng.url)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    info = eng.api_json('GET', '/containers/%s/json' % cid)[1]
    pid = info['State']['Pid']
    cdir = os.path.join(eng.root, 'containers', cid)
    assert _cgroups(cid) and os.path.ismount(os.path.join(cdir, 'rootfs'))
    # The engine dies right after deleting the record of an auto-removed
    # container whose process had exited: its runtime state, cgroups, mount,
    # directory and snapshot are still there.
    eng.kill()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.unlink(os.path.join(cdir, 'container.json'))
    check = eng.check()
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'leftover' in check.stdout
    eng.start()
    assert not os.path.exists(cdir)
    assert _cgroups(cid) == []
    runtime_root = os.path.join(eng.root, 'run', 'runtime')
    assert cid not in os.listdir(runtime_root)
    eng.stop()
    check_after = eng.check()
    assert check_after.returncode == 0
    assert 'leftover' not in check_after.stdout
    eng.start()
