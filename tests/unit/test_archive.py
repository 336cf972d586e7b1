"""engine.archive: hostile layer tars, whiteouts, tar writers, decompression.

These tests change owners and create device nodes, so they need root.
"""

import bz2
import gzip
import importlib.util
import io
import lzma
import os
import socket
import stat
import struct
import tarfile

import pytest

from engine import archive
from engine import errors

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root')


# -- building tars -----------------------------------------------------------

class TarBuilder(object):
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode='w',
                                format=tarfile.PAX_FORMAT)

    def _add(self, name, type_, mode=0o644, data=None, **attrs):
        info = tarfile.TarInfo(name)
        info.type = type_
        info.mode = mode
        info.mtime = attrs.pop('mtime', 1000000000)
        for key, value in attrs.items():
            setattr(info, key, value)
        if data is not None:
            info.size = len(data)
            self.tar.addfile(info, io.BytesIO(data))
        else:
            self.tar.addfile(info)
        return self

    def file(self, name, data=b'data', mode=0o644, **attrs):
        return self._add(name, tarfile.REGTYPE, mode, data, **attrs)

    def dir(self, name, mode=0o755, **attrs):
        return self._add(name, tarfile.DIRTYPE, mode, **attrs)

    def symlink(self, name, target):
        return self._add(name, tarfile.SYMTYPE, 0o777, linkname=target)

    def hardlink(self, name, target):
        return self._add(name, tarfile.LNKTYPE, linkname=target)

    def device(self, name, type_, major, minor):
        return self._add(name, type_, 0o666, devmajor=major, devminor=minor)

    def fifo(self, name):
        return self._add(name, tarfile.FIFOTYPE)

    def raw(self, data):
        """Bytes appended as is (after the entries added so far)."""
        self.tar.fileobj.write(data)
        self.tar.offset += len(data)
        return self

    def stream(self, close=True):
        if close:
            self.tar.close()
        return io.BytesIO(self.buf.getvalue())


def huge_truncated_entry(name, size, data=b'x' * 1024):
    """A header claiming ``size`` bytes followed by far fewer."""
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT) + data


# -- a destination surrounded by sentinels -----------------------------------

def snapshot_tree(top, skip):
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == skip or dirpath.startswith(skip + '/'):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path == skip:
                continue
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(path, 'rb') as f:
                    content = f.read()
            found[path] = (st.st_mode, st.st_nlink, content)
    return found


HOST_PATHS = ('/escape', '/abs', '/etc/x', '/escaped', '/etc/.wh.passwd')


class Sandbox(object):
    def __init__(self, tmp_path):
        self.top = str(tmp_path)
        self.outside = os.path.join(self.top, 'outside')
        os.makedirs(os.path.join(self.outside, 'sub'))
        with open(os.path.join(self.outside, 'secret'), 'w') as f:
            f.write('secret')
        # Deep enough that '../../..' from dest stays inside the sandbox.
        self.dest = os.path.join(self.top, 'a', 'b', 'c', 'dest')
        os.makedirs(self.dest)
        self.before = snapshot_tree(self.top, self.dest)
        self.passwd_nlink = os.stat('/etc/passwd').st_nlink

    def path(self, *parts):
        return os.path.join(self.dest, *parts)

    def assert_contained(self):
        assert snapshot_tree(self.top, self.dest) == self.before
        for path in HOST_PATHS:
            assert not os.path.lexists(path), path
        assert os.stat('/etc/passwd').st_nlink == self.passwd_nlink


@pytest.fixture
def box(tmp_path):
    sandbox = Sandbox(tmp_path)
    yield sandbox
    sandbox.assert_contained()


def apply(box, builder, **kwargs):
    stream = builder.stream() if isinstance(builder, TarBuilder) else builder
    kwargs.setdefault('whiteouts', 'delete')
    return archive.apply_tar(stream, box.dest, **kwargs)


def assert_layer_error(box, builder, entry, words, **kwargs):
    with pytest.raises(errors.LayerError) as ctx:
        apply(box, builder, **kwargs)
    message = str(ctx.value)
    assert "'%s'" % entry in message, message
    assert words in message, message
    return message


# -- hostile entries ---------------------------------------------------------

@pytest.mark.parametrize('name', ['../escape', 'a/../../escape',
                                  './../../../../escape'])
def test_dotdot_escape_is_refused(box, name):
    assert_layer_error(box, TarBuilder().file(name), name,
                       'path escapes the layer')


def test_absolute_path_is_kept_inside(box):
    apply(box, TarBuilder().file('/abs/path', b'abs'))
    with open(box.path('abs', 'path'), 'rb') as f:
        assert f.read() == b'abs'


def test_symlink_to_root_is_resolved_inside(box):
    apply(box, TarBuilder().symlink('link', '/').dir('etc')
          .file('link/etc/x', b'inside'))
    assert open(box.path('etc', 'x')).read() == 'inside'
    assert os.readlink(box.path('link')) == '/'


def test_symlink_climbing_out_is_resolved_inside(box):
    apply(box, TarBuilder().symlink('up', '../../..')
          .file('up/escaped', b'inside'))
    assert open(box.path('escaped')).read() == 'inside'


def test_symlink_to_outside_dir_in_chain(box):
    apply(box, TarBuilder().symlink('out', box.outside)
          .file('out/secret', b'overwritten?'))
    # The absolute target is taken inside the layer: dest/<outside>/secret.
    inside = box.path(box.outside.lstrip('/'), 'secret')
    assert open(inside).read() == 'overwritten?'


def test_preexisting_symlink_in_dest_is_resolved_inside(box):
    os.symlink(box.outside, box.path('pre'))
    os.symlink('../../../../outside', box.path('rel'))
    apply(box, TarBuilder().file('pre/secret', b'1').file('rel/secret', b'2'))
    assert open(box.path(box.outside.lstrip('/'), 'secret')).read() == '1'
    assert open(box.path('outside', 'secret')).read() == '2'


def test_file_replaces_symlink_without_following_it(box):
    target = os.path.join(box.outside, 'secret')
    apply(box, TarBuilder().symlink('link', target).file('link', b'new'))
    assert not os.path.islink(box.path('link'))
    assert open(box.path('link')).read() == 'new'


def test_directory_replaces_symlink_without_following_it(box):
    apply(box, TarBuilder().symlink('link', box.outside)
          .dir('link', mode=0o700, uid=1234))
    assert stat.S_ISDIR(os.lstat(box.path('link')).st_mode)
    assert os.stat(box.path('link')).st_uid == 1234


def test_symlink_loop_is_refused(box):
    assert_layer_error(box, TarBuilder().symlink('loop', 'loop')
                       .file('loop/x'), 'loop/x', 'symbolic links')


def test_file_as_parent_is_refused(box):
    assert_layer_error(box, TarBuilder().file('f').file('f/x'), 'f/x',
                       'not a directory')


@pytest.mark.parametrize('target', ['/etc/passwd', 'etc/passwd'])
def test_hardlink_to_host_file_is_refused(box, target):
    assert_layer_error(box, TarBuilder().hardlink('pw', target), 'pw',
                       'does not exist in the layer')


def test_hardlink_escaping_is_refused(box):
    assert_layer_error(box, TarBuilder().hardlink('x', '../x'), 'x',
                       'escapes the layer')


def test_hardlink_through_symlink_is_resolved_inside(box):
    builder = TarBuilder().symlink('out', box.outside) \
        .hardlink('h', 'out/secret')
    assert_layer_error(box, builder, 'h', 'does not exist in the layer')
    builder = TarBuilder().symlink('root', '/').hardlink('h2', 'root/etc/passwd')
    assert_layer_error(box, builder, 'h2', 'does not exist in the layer')


def test_hardlink_to_directory_is_refused(box):
    assert_layer_error(box, TarBuilder().dir('d').hardlink('h', 'd'), 'h',
                       'directory')


def test_hardlink_inside_layer(box):
    apply(box, TarBuilder().dir('bin').file('bin/a', b'x', mode=0o4755)
          .hardlink('bin/b', 'bin/a').hardlink('bin/b', 'bin/a'))
    a, b = os.stat(box.path('bin', 'a')), os.stat(box.path('bin', 'b'))
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)


def test_devices_are_skipped_fifo_is_created(box, caplog):
    apply(box, TarBuilder().device('null', tarfile.CHRTYPE, 1, 3)
          .device('sda', tarfile.BLKTYPE, 8, 0).fifo('pipe'))
    assert not os.path.lexists(box.path('null'))
    assert not os.path.lexists(box.path('sda'))
    assert stat.S_ISFIFO(os.lstat(box.path('pipe')).st_mode)
    assert 'device nodes are not created' in caplog.text


def test_petabyte_entry_is_refused(box):
    builder = TarBuilder().raw(huge_truncated_entry('huge', 1 << 50))
    assert_layer_error(box, builder.stream(close=False), 'huge',
                       'free disk space')


def test_truncated_entry_is_refused(box):
    builder = TarBuilder().raw(huge_truncated_entry('cut', 10 << 20))
    assert_layer_error(box, builder.stream(close=False), 'cut', 'truncated')


def test_truncated_header_is_refused(box):
    data = TarBuilder().file('a').file('b').stream().getvalue()
    with pytest.raises(errors.LayerError):
        apply(box, io.BytesIO(data[:512 * 3 + 100]))


def test_garbage_is_refused(box):
    with pytest.raises(errors.LayerError):
        apply(box, io.BytesIO(b'not a tar at all' * 100))


@pytest.mark.parametrize('attrs,entry,words', [
    ({'pax_headers': {'path': 'a\x00b'}}, 'a\\x00b', 'invalid entry'),
    ({'uid': 1 << 40}, 'f', 'invalid entry'),
    ({'pax_headers': {'size': '-5'}}, 'f', 'negative size or owner'),
    ({'pax_headers': {'uid': '-1'}}, 'f', 'negative size or owner'),
])
def test_invalid_headers(box, attrs, entry, words):
    assert_layer_error(box, TarBuilder().file('f', b'abc', **attrs), entry,
                       words)


def test_max_size(box):
    builder = TarBuilder().file('a', b'x' * 600).file('b', b'y' * 600)
    assert_layer_error(box, builder, 'b', 'larger than the limit of 1000',
                       max_size=1000)


def test_max_entries(box):
    builder = TarBuilder()
    for i in range(11):
        builder.file('f%d' % i, b'')
    with archive.limits(archive.LayerLimits(max_entries=10,
                                            entries_hint=' (opt)')):
        assert_layer_error(box, builder, 'f10', 'more than 10 entries (opt)')


def test_running_total_of_small_entries_keeps_the_reserve(tmp_path):
    """Each 1 MiB entry fits the free space; their sum does not.  The
    unpack stops before the disk is full, with 507, not ENOSPC."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    os.system('mount -t tmpfs -o size=16m tmpfs %s' % disk)
    try:
        dest = disk / 'dest'
        dest.mkdir()
        builder = TarBuilder()
        for i in range(40):
            builder.file('f%02d' % i, b'\0' * (1 << 20))
        data = builder.stream().getvalue()
        with pytest.raises(errors.EngineError) as ei:
            archive.apply_tar(io.BytesIO(data), str(dest))
        assert ei.value.status == 507
        assert 'not enough space' in str(ei.value)
        for name in os.listdir(str(dest)):
            os.unlink(str(dest / name))
        # With a reserve, the unpack stops short of it.
        with archive.limits(archive.LayerLimits(min_free=4 << 20)):
            with pytest.raises(errors.EngineError) as ei:
                archive.apply_tar(io.BytesIO(data), str(dest))
        assert ei.value.status == 507
        st = os.statvfs(str(disk))
        assert st.f_bavail * st.f_frsize >= 3 << 20
    finally:
        os.system('umount -l %s' % disk)


def test_returns_file_bytes_and_reads_to_eof(box):
    data = TarBuilder().file('a', b'x' * 600).dir('d') \
        .file('d/b', b'y' * 100).stream().getvalue() + b'\0' * 8192

    class Counting(io.BytesIO):
        seen = 0

        def read(self, n=-1):
            chunk = super().read(n)
            Counting.seen += len(chunk)
            return chunk

    assert apply(box, Counting(data)) == 700
    assert Counting.seen == len(data)


def test_empty_stream_is_an_empty_layer(box):
    assert apply(box, io.BytesIO(b'')) == 0


# -- ordinary semantics ------------------------------------------------------

def test_duplicates_last_wins(box):
    apply(box, TarBuilder().file('f', b'one').file('f', b'two')
          .dir('d', mode=0o700).dir('d', mode=0o750))
    assert open(box.path('f')).read() == 'two'
    assert stat.S_IMODE(os.stat(box.path('d')).st_mode) == 0o750


def test_file_replaces_directory_and_back(box):
    apply(box, TarBuilder().dir('d').file('d/x').file('d', b'file')
          .file('e').dir('e').file('e/y'))
    assert open(box.path('d')).read() == 'file'
    assert os.path.isfile(box.path('e', 'y'))


def test_metadata_owner_mode_setuid_mtime(box):
    apply(box, TarBuilder()
          .dir('d', mode=0o1777, uid=7, gid=8, mtime=1234567890)
          .file('d/su', mode=0o4755, uid=1000, gid=1001, mtime=1111111111)
          .symlink('d/l', 'su'))
    d, su = os.stat(box.path('d')), os.stat(box.path('d', 'su'))
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid) == (0o1777, 7, 8)
    # Set after its entries were created.
    assert d.st_mtime == 1234567890
    assert (stat.S_IMODE(su.st_mode), su.st_uid, su.st_gid) == \
        (0o4755, 1000, 1001)
    assert su.st_mtime == 1111111111


# vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW (13).
CAP_NET_RAW = struct.pack('<IIIII', 0x02000001, 1 << 13, 0, 0, 0)


def test_xattrs_filtered(box):
    headers = {'SCHILY.xattr.user.keep': 'yes',
               'SCHILY.xattr.security.capability': CAP_NET_RAW.decode(
                   'utf-8', 'surrogateescape'),
               'SCHILY.xattr.trusted.overlay.opaque': 'y',
               'SCHILY.xattr.user.overlay.redirect': '/x',
               'SCHILY.xattr.security.selinux': 'system_u:object_r:x'}
    apply(box, TarBuilder().file('f', mode=0o755, pax_headers=headers)
          .dir('d', pax_headers={'SCHILY.xattr.trusted.overlay.opaque': 'y'}))
    assert os.getxattr(box.path('f'), 'security.capability') == CAP_NET_RAW
    assert sorted(os.listxattr(box.path('f'))) in (
        ['security.capability', 'user.keep'],
        ['security.capability', 'security.selinux', 'user.keep'])
    assert 'trusted.overlay.opaque' not in os.listxattr(box.path('d'))


def test_long_pax_names(box):
    name = '/'.join(['x' * 100] * 4) + '/' + 'f' * 200
    apply(box, TarBuilder().file(name, b'long'))
    assert open(box.path(*name.split('/'))).read() == 'long'


def test_root_entry_sets_root_metadata(box):
    apply(box, TarBuilder().dir('./', mode=0o711).file('./a'))
    assert stat.S_IMODE(os.stat(box.dest).st_mode) == 0o711


# -- whiteouts ---------------------------------------------------------------

def test_overlay_whiteouts(box):
    apply(box, TarBuilder().dir('etc').file('etc/.wh.gone', b'')
          .dir('opq').file('opq/.wh..wh..opq', b'').file('opq/new')
          .file('implied/.wh.x', b'').file('.wh..wh.plnk', b''),
          whiteouts='overlay')
    st = os.lstat(box.path('etc', 'gone'))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(box.path('opq'), 'trusted.overlay.opaque') == b'y'
    assert stat.S_ISCHR(os.lstat(box.path('implied', 'x')).st_mode)
    assert not os.path.lexists(box.path('.wh..wh.plnk'))


def test_overlay_form_whiteout_in_tar(box):
    os.makedirs(box.path('d'))
    open(box.path('d', 'f'), 'w').close()
    apply(box, TarBuilder().device('d/f', tarfile.CHRTYPE, 0, 0))
    assert not os.path.lexists(box.path('d', 'f'))


def test_delete_whiteouts_and_opaque(box):
    for rel in ('etc/gone', 'etc/keep', 'tree/a/b', 'opq/old/deep',
                'opq/sub/old'):
        os.makedirs(box.path(os.path.dirname(rel)), exist_ok=True)
        open(box.path(rel), 'w').close()
    apply(box, TarBuilder().file('etc/.wh.gone', b'').file('.wh.tree', b'')
          .file('opq/before', b'b').file('opq/sub/new', b'n')
          .file('opq/.wh..wh..opq', b'').file('opq/after', b'a')
          .file('missing/.wh.x', b''))
    assert not os.path.lexists(box.path('etc', 'gone'))
    assert os.path.exists(box.path('etc', 'keep'))
    assert not os.path.lexists(box.path('tree'))
    assert sorted(os.listdir(box.path('opq'))) == ['after', 'before', 'sub']
    assert os.listdir(box.path('opq', 'sub')) == ['new']


def test_whiteout_through_symlink_stays_inside(box):
    apply(box, TarBuilder().symlink('out', box.outside)
          .file('out/.wh.secret', b''))


@pytest.mark.parametrize('name', ['.wh..', 'd/.wh..'])
def test_invalid_whiteouts(box, name):
    assert_layer_error(box, TarBuilder().file(name, b''), name,
                       'whiteout of an invalid name')


# -- decompression -----------------------------------------------------------

@pytest.mark.parametrize('compress', [lambda d: d, gzip.compress,
                                      bz2.compress, lzma.compress])
def test_decompressed_stream(box, compress):
    data = TarBuilder().file('f', b'z' * 5000).stream().getvalue()
    stream = archive.decompressed_stream(io.BytesIO(compress(data)))
    assert stream.read() == data


def test_zstd_without_module_is_a_layer_error():
    if importlib.util.find_spec('zstandard'):
        pytest.skip('zstandard is installed')
    with pytest.raises(errors.LayerError, match='zstd'):
        archive.decompressed_stream(io.BytesIO(b'\x28\xb5\x2f\xfd' + b'0' * 9))


def test_corrupt_gzip_layer(box):
    data = gzip.compress(TarBuilder().file('f', b'z' * 50000)
                         .stream().getvalue())
    cut = data[:len(data) // 2] + b'garbage' * 10
    with pytest.raises(errors.LayerError):
        apply(box, archive.decompressed_stream(io.BytesIO(cut)))


# -- writing tars ------------------------------------------------------------

def read_tar(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf}, [m.name for m in tf]


def make_tree(top):
    os.makedirs(os.path.join(top, 'etc'))
    os.makedirs(os.path.join(top, 'bin'))
    with open(os.path.join(top, 'bin', 'busybox'), 'wb') as f:
        f.write(b'\x7fELF' * 100)
    os.chown(os.path.join(top, 'bin', 'busybox'), 0, 50)
    os.chmod(os.path.join(top, 'bin', 'busybox'), 0o4755)
    os.link(os.path.join(top, 'bin', 'busybox'), os.path.join(top, 'bin', 'sh'))
    os.symlink('/bin/busybox', os.path.join(top, 'bin', 'ls'))
    with open(os.path.join(top, 'etc', 'passwd'), 'w') as f:
        f.write('root:x:0:0::/root:/bin/sh\n')
    os.chown(os.path.join(top, 'etc', 'passwd'), 1000, 1000)
    os.setxattr(os.path.join(top, 'etc', 'passwd'), 'user.k', b'v\xff')
    os.setxattr(os.path.join(top, 'etc', 'passwd'), 'trusted.t', b'x')
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(top, 'sock'))
    sock.close()
    os.mkfifo(os.path.join(top, 'fifo'))


def test_write_tree_tar_roundtrip(tmp_path):
    src, dst = str(tmp_path / 'src'), str(tmp_path / 'dst')
    os.mkdir(src)
    os.mkdir(dst)
    make_tree(src)
    out = io.BytesIO()
    archive.write_tree_tar(src, out)
    members, order = read_tar(out.getvalue())
    assert order == ['bin', 'bin/busybox', 'bin/ls', 'bin/sh', 'etc',
                     'etc/passwd', 'fifo']
    assert b'bin/\0' in out.getvalue()     # directories end with '/'
    assert members['bin/sh'].islnk()
    assert members['bin/sh'].linkname == 'bin/busybox'
    assert members['bin/busybox'].mode == 0o4755
    assert members['etc/passwd'].uid == 1000
    assert members['etc/passwd'].uname == ''
    assert 'SCHILY.xattr.trusted.t' not in members['etc/passwd'].pax_headers
    archive.apply_tar(io.BytesIO(out.getvalue()), dst, whiteouts='delete')
    assert os.getxattr(os.path.join(dst, 'etc', 'passwd'), 'user.k') == \
        b'v\xff'
    assert os.stat(os.path.join(dst, 'bin', 'sh')).st_nlink == 2
    again = io.BytesIO()
    archive.write_tree_tar(dst, again)
    assert again.getvalue() == out.getvalue()   # deterministic


def test_diff_overlay_upper(tmp_path):
    upper = str(tmp_path)
    os.makedirs(os.path.join(upper, 'etc'))
    os.makedirs(os.path.join(upper, 'opq'))
    os.mknod(os.path.join(upper, 'etc', 'gone'), stat.S_IFCHR,
             os.makedev(0, 0))
    os.setxattr(os.path.join(upper, 'opq'), 'trusted.overlay.opaque', b'y')
    open(os.path.join(upper, 'opq', 'new'), 'w').close()
    out = io.BytesIO()
    archive.diff_overlay_upper(upper, out)
    members, order = read_tar(out.getvalue())
    assert order == ['etc', 'etc/.wh.gone', 'opq', 'opq/.wh..wh..opq',
                     'opq/new']
    os.setxattr(upper, 'trusted.overlay.opaque', b'y')
    out = io.BytesIO()
    archive.diff_overlay_upper(upper, out)
    assert read_tar(out.getvalue())[1][0] == '.wh..wh..opq'
    assert members['etc/.wh.gone'].isreg()
    assert members['opq'].pax_headers == {}


def test_diff_trees(tmp_path):
    lower, upper = str(tmp_path / 'lower'), str(tmp_path / 'upper')
    os.mkdir(lower)
    make_tree(lower)
    os.makedirs(os.path.join(lower, 'var', 'lib', 'deep'))
    open(os.path.join(lower, 'var', 'lib', 'deep', 'f'), 'w').close()
    os.makedirs(os.path.join(lower, 'usr', 'share'))
    os.unlink(os.path.join(lower, 'sock'))
    import subprocess
    subprocess.check_call(['cp', '-a', lower, upper])
    empty = io.BytesIO()
    archive.diff_trees(lower, upper, empty)
    assert read_tar(empty.getvalue())[1] == []
    with open(os.path.join(upper, 'etc', 'passwd'), 'a') as f:
        f.write('more\n')
    os.unlink(os.path.join(upper, 'bin', 'ls'))
    subprocess.check_call(['rm', '-rf', os.path.join(upper, 'var', 'lib')])
    os.chmod(os.path.join(upper, 'usr', 'share'), 0o700)
    os.makedirs(os.path.join(upper, 'new', 'dir'))
    out = io.BytesIO()
    archive.diff_trees(lower, upper, out)
    members, order = read_tar(out.getvalue())
    assert order == ['bin', 'bin/.wh.ls', 'etc', 'etc/passwd', 'new',
                     'new/dir', 'usr', 'usr/share', 'var', 'var/.wh.lib']
