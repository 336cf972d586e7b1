"""SIGKILL of the engine in the middle of import, load and commit.

Whatever moment the kill lands, the restarted engine shows no image under a
name that is not complete, the store check passes, and the same operation
works again.
"""

import io
import json
import os
import subprocess
import tarfile
import time

import pytest

pytestmark = [pytest.mark.compat, pytest.mark.slow]

BIG = 96 << 20


def _layer_tar(path, size):
    """A rootfs-like tar with one big incompressible file."""
    with tarfile.open(path, 'w') as tf:
        for name in ('bin', 'data'):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        info = tarfile.TarInfo('data/blob')
        info.size = size
        with open('/dev/urandom', 'rb') as rnd:
            tf.addfile(info, rnd)  # copies exactly info.size bytes


def _docker_archive(path, layer_path, tag):
    """A one-layer `docker save` archive around ``layer_path``."""
    import hashlib
    h = hashlib.sha256()
    with open(layer_path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    diff_id = 'sha256:' + h.hexdigest()
    config = json.dumps({
        'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['sh']},
        'created': '2024-01-01T00:00:00Z',
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
        'history': [{'created': '2024-01-01T00:00:00Z', 'created_by': 'test'}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + '.json'
    manifest = json.dumps([{'Config': config_name, 'RepoTags': [tag],
                            'Layers': ['layer/layer.tar']}]).encode()
    with tarfile.open(path, 'w') as tf:
        for name, data in ((config_name, config), ('manifest.json', manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        tf.add(layer_path, 'layer/layer.tar')


def _busy_dirs(root):
    return [os.path.join(root, 'content', 'ingest'), os.path.join(root, 'images', 'tmp')]


def _kill_when_busy(eng, proc, deadline=60):
    """SIGKILL the engine once it has started writing temporary data."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(os.listdir(d) for d in _busy_dirs(eng.root) if os.path.isdir(d)):
            time.sleep(0.05)
            eng.kill()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    eng.kill()
    return True


def _names(docker_cli, eng):
    res = docker_cli(['images', '--format', '{{.Repository}}:{{.Tag}}'], host=eng.url)
    assert res.returncode == 0, res.stderr
    return set(res.stdout.split())


def _restart_and_check(eng):
    check = eng.check()
    assert check.returncode == 0, check.stdout + check.stderr
    eng.start()


@pytest.fixture
def big_rootfs(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('big') / 'rootfs.tar')
    _layer_tar(path, BIG)
    return path


@pytest.mark.parametrize('how', ['load', 'import'])
def test_kill_during_load_or_import(engine_factory, docker_cli, big_rootfs, tmp_path, how):
    eng = engine_factory(load_busybox=False)
    if how == 'load':
        src = str(tmp_path / 'big-image.tar')
        _docker_archive(src, big_rootfs, 'big:1')
        cmd = ['load', '-i', src]
    else:
        src = big_rootfs
        cmd = ['import', src, 'big:1']
    proc = subprocess.Popen(['/usr/local/bin/docker', '-H', eng.url] + cmd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(eng.env, DOCKER_CLI_HINTS='false'))
    killed = _kill_when_busy(eng, proc)
    proc.communicate(timeout=60)
    assert killed, 'the %s finished before the engine could be killed' % how
    _restart_and_check(eng)
    # The interrupted image is not there, not even half.
    assert 'big:1' not in _names(docker_cli, eng)
    assert not any(os.listdir(d) for d in _busy_dirs(eng.root) if os.path.isdir(d))
    # And the same operation succeeds now.
    res = docker_cli(cmd, host=eng.url, timeout=300)
    assert res.returncode == 0, res.stderr
    assert 'big:1' in _names(docker_cli, eng)
    # The image holds data only (no shell): its size shows the layer is whole.
    info = docker_cli(['image', 'inspect', 'big:1'], host=eng.url)
    assert info.returncode == 0
    assert json.loads(info.stdout)[0]['Size'] >= BIG


def test_kill_during_commit(engine_factory, docker_cli):
    eng = engine_factory()
    res = docker_cli(['run', '--name', 'bigc', 'busybox', 'sh', '-c',
                      'dd if=/dev/urandom of=/big bs=1M count=%d 2>/dev/null' % (BIG >> 20)],
                     host=eng.url, timeout=120)
    assert res.returncode == 0, res.stderr
    proc = subprocess.Popen(['/usr/local/bin/docker', '-H', eng.url, 'commit', 'bigc',
                             'committed:1'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(eng.env, DOCKER_CLI_HINTS='false'))
    killed = _kill_when_busy(eng, proc)
    proc.communicate(timeout=60)
    assert killed, 'the commit finished before the engine could be killed'
    _restart_and_check(eng)
    assert 'committed:1' not in _names(docker_cli, eng)
    res = docker_cli(['commit', 'bigc', 'committed:1'], host=eng.url, timeout=300)
    assert res.returncode == 0, res.stderr
    res = docker_cli(['run', '--rm', 'committed:1', 'sh', '-c', 'wc -c < /big'], host=eng.url)
    assert res.stdout.strip() == str(BIG), res.stderr


@pytest.mark.parametrize('spec_written', [False, True])
def test_start_cut_short_while_runc_read_its_spec(engine_factory, docker_cli, spec_written):
    """A kill while runc waits for its spec in the bundle's FIFO (see
    engine/runtime/monitor.py, PendingCreate) leaves config.json a FIFO,
    with the plain copy beside it once the spec was written: the restarted
    engine puts the plain file back (or drops the FIFO), so nothing ever
    blocks reading it, and the container starts."""
    from engine.runtime import monitor
    import stat
    eng = engine_factory()
    res = docker_cli(['create', '--name', 'cut', 'busybox', 'echo', 'started'], host=eng.url)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    bundle = os.path.join(eng.root, 'containers', cid, 'bundle')
    config = os.path.join(bundle, 'config.json')
    eng.kill()
    os.makedirs(bundle, exist_ok=True)
    if os.path.lexists(config):
        os.unlink(config)
    os.mkfifo(config)
    if spec_written:
        with open(os.path.join(bundle, monitor.SPEC_NEXT), 'w') as f:
            f.write('{"ociVersion": "1.0.2"}')
    eng.start()
    if spec_written:
        assert stat.S_ISREG(os.lstat(config).st_mode)
        with open(config) as f:
            assert json.load(f) == {'ociVersion': '1.0.2'}
    else:
        assert not os.path.lexists(config)
    assert not os.path.lexists(os.path.join(bundle, monitor.SPEC_NEXT))
    res = docker_cli(['start', '-a', 'cut'], host=eng.url, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == 'started', res.stderr
