"""The overlay and vfs snapshotters on the real kernel: layers, whiteouts,
mounts, diffs, shared layers, many layers, crash leftovers."""

import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from engine import errors
from engine.snapshotters import local
from engine.snapshotters import overlay
from engine.snapshotters import vfs

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root and mount'),
]

CLASSES = {'overlay': overlay.OverlaySnapshotter, 'vfs': vfs.VfsSnapshotter}


# -- helpers -----------------------------------------------------------------

class Layer(object):
    """Builds a layer tar in memory."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode='w',
                                format=tarfile.PAX_FORMAT)

    def _info(self, name, type_, mode, **attrs):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = type_, mode, 1500000000
        for key, value in attrs.items():
            setattr(info, key, value)
        return info

    def dir(self, name, mode=0o755, **attrs):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, **attrs))
        return self

    def file(self, name, data=b'', mode=0o644, **attrs):
        info = self._info(name, tarfile.REGTYPE, mode, **attrs)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, name, target):
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, 0o777,
                                    linkname=target))
        return self

    def hardlink(self, name, target):
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, 0o644,
                                    linkname=target))
        return self

    def stream(self):
        self.tar.close()
        return io.BytesIO(self.buf.getvalue())


def tree_state(top):
    """Everything a container would see of a tree, mtimes of files in whole
    seconds (what a tar keeps), directories' mtimes ignored."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                     st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                with open(path, 'rb') as f:
                    entry += [f.read(), int(st.st_mtime)]
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            state[rel] = tuple(entry)
    return state


def tar_names(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [m.name for m in tf]


@pytest.fixture(params=sorted(CLASSES))
def snap(request, tmp_path):
    return CLASSES[request.param](str(tmp_path / 'root'))


@pytest.fixture
def overlay_snap(tmp_path):
    return overlay.OverlaySnapshotter(str(tmp_path / 'root'))


@pytest.fixture
def mounter(tmp_path):
    """mount(snapshotter, key) -> target; everything unmounted at the end."""
    targets = []

    def do_mount(snapshotter, key):
        target = str(tmp_path / ('mnt%d' % len(targets)))
        os.mkdir(target)
        snapshotter.mount(key, target)
        targets.append((snapshotter, target))
        return target

    try:
        yield do_mount
    finally:
        for snapshotter, target in reversed(targets):
            snapshotter.unmount(target)
        for leftover in sorted(local.mounts_under(str(tmp_path)),
                               reverse=True):
            subprocess.call(['umount', '-l', leftover])
        assert not local.mounts_under(str(tmp_path))


def layer1():
    return (Layer().dir('bin').file('bin/busybox', b'\x7fELF' * 64,
                                    mode=0o4755, gid=50)
            .hardlink('bin/sh', 'bin/busybox')
            .symlink('bin/ls', 'busybox')
            .dir('etc').file('etc/passwd', b'root:x:0:0\n')
            .file('etc/hosts', b'127.0.0.1 localhost\n')
            .dir('usr').dir('usr/share').dir('usr/share/doc')
            .file('usr/share/doc/a', b'a').file('usr/share/doc/b', b'b')
            .dir('opq', mode=0o750, uid=5)
            .file('opq/old1', b'1').dir('opq/sub').file('opq/sub/old2', b'2')
            .stream())


def layer2():
    return (Layer().dir('etc').file('etc/.wh.hosts')
            .file('etc/motd', b'hello\n')
            .dir('opq', mode=0o750, uid=5).file('opq/.wh..wh..opq')
            .file('opq/new', b'new')
            .file('usr/share/doc/.wh.a')
            .stream())


EXPECTED_AFTER_L2 = {
    'bin', 'bin/busybox', 'bin/sh', 'bin/ls', 'etc', 'etc/passwd',
    'etc/motd', 'usr', 'usr/share', 'usr/share/doc', 'usr/share/doc/b',
    'opq', 'opq/new',
}


# -- end to end --------------------------------------------------------------

def test_layers_container_diff_and_reapply(snap, mounter):
    assert snap.apply_layer('l1', None, layer1()) == 256 + 11 + 20 + 1 + 1 \
        + 1 + 1
    assert snap.apply_layer('l2', 'l1', layer2()) == 6 + 3
    snap.prepare('c1', 'l2')
    root = mounter(snap, 'c1')
    state = tree_state(root)
    assert set(state) == EXPECTED_AFTER_L2
    assert state['bin/busybox'][1:4] == (0o4755, 0, 50)
    assert state['opq'][1:3] == (0o750, 5)
    assert os.stat(os.path.join(root, 'bin', 'sh')).st_nlink == 2

    # What a container does.
    with open(os.path.join(root, 'etc', 'passwd'), 'a') as f:
        f.write('nobody:x:65534:65534\n')
    os.unlink(os.path.join(root, 'etc', 'motd'))
    subprocess.check_call(['rm', '-rf', os.path.join(root, 'usr', 'share',
                                                     'doc')])
    os.makedirs(os.path.join(root, 'newdir'))
    with open(os.path.join(root, 'newdir', 'f'), 'w') as f:
        f.write('f')
    os.chmod(os.path.join(root, 'opq', 'new'), 0o600)
    modified = tree_state(root)
    snap.unmount(root)
    assert not local.is_mounted(root)
    snap.unmount(root)      # not mounted: not an error

    out = io.BytesIO()
    snap.diff('c1', out)
    assert tar_names(out.getvalue()) == [
        'etc', 'etc/.wh.motd', 'etc/passwd', 'newdir', 'newdir/f', 'opq',
        'opq/new', 'usr', 'usr/share', 'usr/share/.wh.doc']

    snap.apply_layer('l3', 'l2', io.BytesIO(out.getvalue()))
    ro = mounter(snap, 'l3')
    assert tree_state(ro) == modified
    with pytest.raises(OSError):
        open(os.path.join(ro, 'etc', 'x'), 'w')
    assert snap.check() == []


def test_committed_single_layer_mount(snap, mounter):
    snap.apply_layer('l1', None, layer1())
    ro = mounter(snap, 'l1')
    assert sorted(os.listdir(ro)) == ['bin', 'etc', 'opq', 'usr']


def test_prepare_without_parent(snap, mounter):
    snap.prepare('scratch', None)
    root = mounter(snap, 'scratch')
    assert os.listdir(root) == []
    with open(os.path.join(root, 'f'), 'w') as f:
        f.write('x')
    out = io.BytesIO()
    snap.diff('scratch', out)
    assert tar_names(out.getvalue()) == ['f']


def test_two_containers_share_a_parent(snap, mounter):
    snap.apply_layer('l1', None, Layer().file('big', b'x' * (1 << 20))
                     .stream())
    snap.prepare('c1', 'l1')
    snap.prepare('c2', 'l1')
    r1, r2 = mounter(snap, 'c1'), mounter(snap, 'c2')
    with open(os.path.join(r1, 'only-in-c1'), 'w') as f:
        f.write('1')
    assert not os.path.exists(os.path.join(r2, 'only-in-c1'))
    assert open(os.path.join(r2, 'big'), 'rb').read(1) == b'x'
    assert snap.usage('l1') >= 1 << 20
    if snap.name == 'overlay':
        # The image layer is shared, not copied.
        assert snap.usage('c2') < 64 << 10
    else:
        assert snap.usage('c2') >= 1 << 20
    assert {k for k, _, _ in snap.list()} == {'l1', 'c1', 'c2'}


def test_hardlink_to_lower_layer_file(snap, mounter):
    snap.apply_layer('l1', None, layer1())
    snap.apply_layer('l2', 'l1', Layer().hardlink('bin/sh2', 'bin/busybox')
                     .stream())
    root = mounter(snap, 'l2')
    with open(os.path.join(root, 'bin', 'sh2'), 'rb') as f:
        assert f.read() == b'\x7fELF' * 64


def test_whited_out_hardlink_target_is_refused(snap):
    snap.apply_layer('l1', None, layer1())
    with pytest.raises(errors.LayerError, match="'etc/h'"):
        snap.apply_layer('l2', 'l1', Layer().file('etc/.wh.hosts')
                         .hardlink('etc/h', 'etc/hosts').stream())


def test_seventy_layers(snap, tmp_path, mounter):
    # A long root makes absolute lowerdir paths overflow a page.
    snap = snap.__class__(str(tmp_path / ('r' * 200) / 'root'))
    parent = None
    for i in range(70):
        layer = Layer().file('layer-%02d' % i, b'%d' % i)
        if i:
            layer.file('.wh.layer-%02d' % (i - 1))
        snap.apply_layer('layer%d' % i, parent, layer.stream())
        parent = 'layer%d' % i
    snap.prepare('c', parent)
    root = mounter(snap, 'c')
    assert os.listdir(root) == ['layer-69']
    ro = mounter(snap, parent)
    assert os.listdir(ro) == ['layer-69']


# -- failures and bookkeeping ------------------------------------------------

def test_hostile_layer_leaves_nothing(snap, tmp_path):
    snap.apply_layer('l1', None, layer1())
    before = sorted(os.listdir(snap.snapshots_dir))
    bad = Layer().file('ok', b'1').file('../../escape', b'x').stream()
    with pytest.raises(errors.LayerError, match="'../../escape'"):
        snap.apply_layer('l2', 'l1', bad)
    assert not snap.exists('l2')
    assert sorted(os.listdir(snap.snapshots_dir)) == before
    assert not os.path.exists(str(tmp_path / 'escape'))
    assert snap.check() == []


def test_max_size(snap):
    with pytest.raises(errors.LayerError, match='limit of 100 bytes'):
        snap.apply_layer('l1', None, Layer().file('a', b'x' * 101).stream(),
                         max_size=100)
    assert snap.apply_layer('l1', None, Layer().file('a', b'x' * 100)
                            .stream(), max_size=100) == 100


def test_key_and_parent_rules(snap):
    snap.apply_layer('l1', None, layer1())
    with pytest.raises(errors.Conflict):
        snap.apply_layer('l1', None, layer1())
    with pytest.raises(errors.NotFound):
        snap.prepare('c', 'nope')
    snap.prepare('c', 'l1')
    with pytest.raises(errors.InvalidArgument):
        snap.prepare('c2', 'c')
    with pytest.raises(errors.Conflict):
        snap.remove('l1')
    snap.remove('c')
    snap.remove('l1')
    snap.remove('l1')       # missing: not an error
    assert list(snap.list()) == []
    assert os.listdir(snap.snapshots_dir) == [local.EMPTY_DIR]


def test_state_survives_restart(snap):
    snap.apply_layer('l1', None, layer1())
    snap.prepare('c', 'l1')
    again = snap.__class__(snap.root)
    assert sorted(again.list()) == [('c', 'l1', 'active'),
                                    ('l1', None, 'committed')]
    assert again.check() == []


def test_cleanup_of_simulated_leftovers(snap):
    snap.apply_layer('l1', None, layer1())
    tmp = os.path.join(snap.snapshots_dir, local.TMP_PREFIX + 'abc', 'fs')
    os.makedirs(tmp)
    open(os.path.join(tmp, 'half'), 'w').close()
    os.makedirs(os.path.join(snap.snapshots_dir, '999', 'fs'))
    open(os.path.join(snap.root, '.tmp-meta'), 'w').close()
    assert len(snap.check()) == 3
    assert len(snap.cleanup()) == 3
    assert snap.check() == []
    assert snap.exists('l1')


def test_check_reports_damage(snap):
    snap.apply_layer('l1', None, layer1())
    snap.apply_layer('l2', 'l1', layer2())
    meta_path = os.path.join(snap.root, 'metadata.json')
    with open(meta_path) as f:
        meta = json.load(f)
    meta['snapshots']['l1']['id'] = 4242
    meta['snapshots']['ghost'] = {'id': 4343, 'parent': 'gone',
                                  'kind': 'committed'}
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    problems = '\n'.join(snap.__class__(snap.root).check())
    assert 'snapshot l1: directory' in problems
    assert 'snapshot ghost: parent gone does not exist' in problems
    assert 'not referenced by any snapshot' in problems


CHILD = textwrap.dedent('''
    import sys
    from engine.snapshotters import overlay, vfs
    cls = {'overlay': overlay.OverlaySnapshotter, 'vfs': vfs.VfsSnapshotter}
    snap = cls[sys.argv[1]](sys.argv[2])
    sys.stdout.write('ready\\n')
    sys.stdout.flush()
    snap.apply_layer('big', None, sys.stdin.buffer)
''')


def test_sigkill_during_apply_leaves_only_cleanable_leftovers(snap):
    snap.apply_layer('l1', None, layer1())
    data = Layer().file('a', b'a' * (4 << 20)).file('b', b'b').stream() \
        .getvalue()
    child = subprocess.Popen([sys.executable, '-c', CHILD, snap.name,
                              snap.root], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b'ready\n'
        child.stdin.write(data[:1 << 20])
        child.stdin.flush()
        # Wait until the child is extracting, then kill it mid-layer.
        tmp_dirs = []
        for _ in range(500):
            tmp_dirs = [n for n in os.listdir(snap.snapshots_dir)
                        if n.startswith(local.TMP_PREFIX)]
            if tmp_dirs and os.path.exists(os.path.join(
                    snap.snapshots_dir, tmp_dirs[0], 'fs', 'a')):
                break
            time.sleep(0.01)
        assert tmp_dirs
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdin.close()
        child.stdout.close()
    again = snap.__class__(snap.root)
    assert not again.exists('big')
    assert again.check() != []
    again.cleanup()
    assert again.check() == []
    assert [k for k, _, _ in again.list()] == ['l1']


def test_hardlink_into_opaque_dir_of_same_layer_is_refused(snap):
    snap.apply_layer('l1', None, layer1())
    with pytest.raises(errors.LayerError, match="'h'"):
        snap.apply_layer('l2', 'l1', Layer().dir('opq')
                         .file('opq/.wh..wh..opq')
                         .hardlink('h', 'opq/old1').stream())


def test_implied_parent_keeps_lower_owner_and_mode(snap, mounter):
    snap.apply_layer('l1', None, Layer().dir('srv', mode=0o710, uid=33,
                                             gid=34).stream())
    snap.apply_layer('l2', 'l1', Layer().file('srv/x', b'x')
                     .file('srv/.wh.nothing').stream())
    st = os.stat(os.path.join(mounter(snap, 'l2'), 'srv'))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == \
        (0o710, 33, 34)


def test_container_renames_and_recreates_directories(snap, mounter):
    """Renaming a lower directory must give a self-contained diff (no
    overlayfs redirects), and a directory deleted then recreated must hide
    the old contents."""
    snap.apply_layer('l1', None, layer1())
    snap.apply_layer('l2', 'l1', layer2())
    snap.prepare('c', 'l2')
    root = mounter(snap, 'c')
    subprocess.check_call(['mv', os.path.join(root, 'usr', 'share'),
                           os.path.join(root, 'usr', 'moved')])
    subprocess.check_call(['rm', '-rf', os.path.join(root, 'bin')])
    os.mkdir(os.path.join(root, 'bin'), 0o711)
    with open(os.path.join(root, 'bin', 'fresh'), 'w') as f:
        f.write('fresh')
    modified = tree_state(root)
    assert 'usr/moved/doc/b' in modified
    assert sorted(p for p in modified if p.startswith('bin/')) == \
        ['bin/fresh']
    out = io.BytesIO()
    snap.diff('c', out)
    snap.apply_layer('l3', 'l2', io.BytesIO(out.getvalue()))
    assert tree_state(mounter(snap, 'l3')) == modified


def test_root_metadata_follows_the_layers(snap, mounter):
    snap.apply_layer('l1', None, Layer().dir('.', mode=0o700, uid=3)
                     .stream())
    snap.apply_layer('l2', 'l1', Layer().file('f').stream())
    snap.prepare('c', 'l2')
    for key in ('l2', 'c'):
        st = os.stat(mounter(snap, key))
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, 3), key


def test_a_container_snapshot_is_durable_before_it_is_published(snap, monkeypatch):
    """Before the rename that publishes a new active snapshot, its directory
    entries are fsynced: for overlay one fsync of the directory holding the
    (empty) fs and work, for vfs every directory of the copied tree."""
    snap.apply_layer('base', None, layer1())
    synced = []
    real = local.util.fsync_dir

    def fsync_dir(path):
        synced.append((path, sorted(os.listdir(path))))
        real(path)

    monkeypatch.setattr(local.util, 'fsync_dir', fsync_dir)
    snap.prepare('c1', 'base')
    tmp = [(p, names) for p, names in synced
           if os.path.basename(os.path.dirname(p)) == 'snapshots'
           and os.path.basename(p).startswith(local.TMP_PREFIX)]
    assert len(tmp) == 1  # the snapshot's own directory, still under its temporary name
    published = [p for p, _ in synced].index(snap.snapshots_dir)
    assert [p for p, _ in synced].index(tmp[0][0]) < published
    if isinstance(snap, overlay.OverlaySnapshotter):
        assert tmp[0][1] == ['fs', 'work']
        # Not the two empty directories themselves: their parent's fsync
        # covers them.
        assert not any(os.path.basename(p) in ('fs', 'work') for p, _ in synced)
    else:
        assert any(p.startswith(tmp[0][0] + os.sep) for p, _ in synced[:published])
