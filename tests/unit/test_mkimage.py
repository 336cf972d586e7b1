"""tools/mkimage.py: a reproducible busybox image in the docker save layout."""

import hashlib
import importlib.util
import io
import json
import os
import stat
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'mkimage', os.path.join(REPO, 'tools', 'mkimage.py'))
mkimage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mkimage)

pytestmark = pytest.mark.skipif(not os.path.exists(mkimage.DEFAULT_BUSYBOX),
                                reason='busybox-static is not installed')


def _members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else None)
                for m in tar.getmembers()}


@pytest.fixture(scope='module')
def archive():
    return mkimage.build_archive()


def test_output_is_reproducible(archive):
    again = mkimage.build_archive()
    assert again == archive
    assert mkimage.build_rootfs_tar() == mkimage.build_rootfs_tar()


def test_archive_layout(archive):
    data, image_id = archive
    files = _members(data)
    manifest = json.loads(files['manifest.json'][1])
    assert len(manifest) == 1
    entry = manifest[0]
    assert entry['RepoTags'] == ['busybox:latest']
    config_bytes = files[entry['Config']][1]
    assert 'sha256:' + hashlib.sha256(config_bytes).hexdigest() == image_id
    config = json.loads(config_bytes)
    assert config['config']['Cmd'] == ['sh']
    assert any(e.startswith('PATH=') for e in config['config']['Env'])
    assert config['os'] == 'linux'
    assert config['architecture'] == mkimage.host_arch()
    (layer_path,) = entry['Layers']
    layer = files[layer_path][1]
    assert config['rootfs']['diff_ids'] == [
        'sha256:' + hashlib.sha256(layer).hexdigest()]
    layer_dir = layer_path.split('/')[0]
    assert files[layer_dir + '/VERSION'][1] == b'1.0'
    assert json.loads(files[layer_dir + '/json'][1])['id'] == layer_dir
    repos = json.loads(files['repositories'][1])
    assert repos == {'busybox': {'latest': layer_dir}}
    non_empty = [h for h in config['history'] if not h.get('empty_layer')]
    assert len(non_empty) == len(config['rootfs']['diff_ids'])
    assert all(h['created_by'] for h in config['history'])


def test_rootfs_layout():
    files = _members(mkimage.build_rootfs_tar())
    applets = mkimage.busybox_applets(mkimage.DEFAULT_BUSYBOX)
    assert 'sh' in applets and 'ls' in applets
    for applet in applets:
        member = files['bin/' + applet][0]
        assert member.islnk() and member.linkname == 'bin/busybox'
    assert files['bin/busybox'][0].mode & 0o111
    tmp = files['tmp'][0] if 'tmp' in files else files['tmp/'][0]
    assert stat.S_IMODE(tmp.mode) == 0o1777
    passwd = files['etc/passwd'][1].decode()
    assert [line.split(':')[0] for line in passwd.splitlines()] == [
        'root', 'daemon', 'nobody']
    assert files['etc/group'][1].startswith(b'root:x:0:')
    for d in ('root', 'home', 'var'):
        assert (files.get(d) or files.get(d + '/'))[0].isdir()
    assert all(m.mtime == mkimage.EPOCH and m.uid == 0 and m.gid == 0
               for m, _ in files.values())


def test_symlink_mode():
    files = _members(mkimage.build_rootfs_tar(links='sym'))
    assert files['bin/sh'][0].issym()
    assert files['bin/sh'][0].linkname == 'busybox'


def test_cli_writes_files(tmp_path):
    out = tmp_path / 'img.tar'
    assert mkimage.main(['-o', str(out), '--tag', 'example/bb:1']) == 0
    files = _members(out.read_bytes())
    assert json.loads(files['manifest.json'][1])[0]['RepoTags'] == [
        'example/bb:1']
    rootfs = tmp_path / 'rootfs.tar'
    assert mkimage.main(['-o', str(rootfs), '--rootfs']) == 0
    assert 'bin/busybox' in _members(rootfs.read_bytes())
