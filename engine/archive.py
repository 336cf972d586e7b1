"""Layer tarballs: applying hostile ones safely, and writing them.

Layer tars come from registries and from users, so every entry is treated
as an attack.  Extraction never resolves a path through the kernel's view of
the host: each parent component is opened relative to the previous one with
O_NOFOLLOW, and symlinks met on the way are resolved by hand, as if the
destination directory were ``/`` (the way a container will see them).  The
final component is always created or changed without following links.

Whiteouts follow the Docker/OCI layer format (``.wh.NAME`` deletes NAME from
lower layers, ``.wh..wh..opq`` makes a directory opaque).  They are either
turned into overlayfs' own upper-dir form (``whiteouts='overlay'``) or
carried out on a full copy of the parent (``whiteouts='delete'``).

Limits: ``max_size`` bounds the file data of a layer; the entry count and
the free-space reserve of the destination's filesystem come from the
``limits`` context (``with archive.limits(...)``) the image store sets
around an unpack, or the module defaults.  Free space is checked against the
running total of the layer, so many small entries cannot fill the disk
either.
"""

import bz2
import contextlib
import contextvars
import errno
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile

from oslo_log import log as logging

from engine import content as content_mod
from engine import errors

LOG = logging.getLogger(__name__)

WHITEOUT_PREFIX = '.wh.'
WHITEOUT_OPAQUE = '.wh..wh..opq'
# aufs bookkeeping entries ('.wh..wh.plnk', '.wh..wh.aufs') carry nothing a
# layer needs; Docker skips them too.
WHITEOUT_META_PREFIX = '.wh..wh.'
OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque'

_CHUNK = 1 << 20
_MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Errors that say the host is in trouble, not that the layer is bad.
# Entries (inodes) one layer may create when nobody configured a limit.
DEFAULT_MAX_ENTRIES = 1000000
_HOST_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS,
                          errno.ENOMEM, errno.EMFILE, errno.ENFILE))


class LayerLimits(object):
    """Bounds of one unpack beyond ``max_size``.

    ``max_entries`` (0 = unlimited) caps the tar entries of a layer;
    ``min_free`` bytes and ``min_free_percent`` of the destination's
    filesystem are kept free.  ``hint`` names the settings in messages.
    """

    def __init__(self, max_entries=DEFAULT_MAX_ENTRIES, min_free=0,
                 min_free_percent=0, entries_hint='', space_hint='',
                 size_hint=''):
        self.max_entries = max_entries
        self.min_free = min_free
        self.min_free_percent = min_free_percent
        self.entries_hint = entries_hint
        self.space_hint = space_hint
        self.size_hint = size_hint


_LIMITS = contextvars.ContextVar('layer_limits', default=LayerLimits())


@contextlib.contextmanager
def limits(layer_limits):
    """Apply ``layer_limits`` to every apply_tar of this thread inside."""
    token = _LIMITS.set(layer_limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


def _xattr_allowed(name):
    """Only xattrs an image may legitimately carry.

    ``trusted.*`` would let a layer forge overlayfs metadata (opaque dirs,
    redirects), ``security.selinux`` and ACLs belong to the host; file
    capabilities are part of images (ping, etc.).  ``user.overlay.*`` is
    overlayfs metadata when mounted with ``userxattr``.
    """
    if name == 'security.capability':
        return True
    return name.startswith('user.') and not name.startswith('user.overlay.')


class _StreamError(Exception):
    """Reading the layer stream failed (truncated, corrupt compression)."""


class _GuardedReader(io.RawIOBase):
    """Tags every failure of the source stream so it is never mistaken for
    a failure to write into the destination."""

    def __init__(self, raw):
        self._raw = raw

    def readable(self):
        return True

    def read(self, size=-1):
        try:
            return self._raw.read(size)
        except Exception as exc:
            raise _StreamError(str(exc) or exc.__class__.__name__) from exc

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


class PrefixedReader(io.RawIOBase):
    """Replays the bytes peeked for magic detection, then the rest."""

    def __init__(self, prefix, raw):
        self._prefix = prefix
        self._raw = raw

    def readable(self):
        return True

    def readinto(self, buf):
        if self._prefix:
            n = min(len(buf), len(self._prefix))
            buf[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._raw.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def _open_zstd(fileobj):
    try:
        import zstandard
    except ImportError:
        raise errors.LayerError(
            'layer is zstd-compressed, which needs the zstandard Python '
            'module; it is not installed on this engine host')
    return zstandard.ZstdDecompressor().stream_reader(fileobj)


_MAGIC = (
    (b'\x1f\x8b', lambda f: gzip.GzipFile(fileobj=f, mode='rb')),
    (b'BZh', bz2.BZ2File),
    (b'\xfd7zXZ\x00', lzma.LZMAFile),
    (b'\x28\xb5\x2f\xfd', _open_zstd),
)


def decompressed_stream(fileobj):
    """Return a file object yielding ``fileobj``'s bytes decompressed.

    The format is detected from its magic bytes (gzip, bzip2, xz, zstd) and
    data is decompressed as it is read; anything else is passed through as
    an uncompressed tar.
    """
    prefix = b''
    while len(prefix) < 6:
        chunk = fileobj.read(6 - len(prefix))
        if not chunk:
            break
        prefix += chunk
    stream = io.BufferedReader(PrefixedReader(prefix, fileobj), _CHUNK)
    for magic, opener in _MAGIC:
        if prefix.startswith(magic):
            return opener(stream)
    return stream


def _clean_parts(name):
    """Lexically clean a tar path into components relative to the layer root.

    Leading '/' and './' are dropped (an absolute name means "from the
    layer's root", as Docker treats it); a '..' climbing above the root is
    an escape attempt.
    """
    parts = []
    for comp in name.split('/'):
        if comp in ('', '.'):
            continue
        if comp == '..':
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(comp)
    return parts


def _lstat_at(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove_at(dir_fd, name):
    """rm -rf of one name inside an open directory, never following links."""
    st = _lstat_at(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _is_overlay_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _fd_is_opaque(fd):
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE_XATTR) == b'y'
    except OSError:
        return False


class _EntryError(Exception):
    """A reason to reject the entry being applied (message without name)."""


class _ScopedRoot(object):
    """Path resolution confined to a directory, as if it were '/'."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS & ~os.O_NOFOLLOW)

    def close(self):
        os.close(self.fd)

    def open_dir(self, parts, create=None):
        """Open the directory at ``parts`` and return ``(fd, real_parts)``.

        Symlinks are followed but confined to the root; ``real_parts`` is
        the symlink-free path that was reached.  Missing directories are
        made with ``create(parent_fd, name, real_parts)`` when given, else
        FileNotFoundError is raised.  The caller closes the returned fd.
        """
        stack = []          # (fd, name) of each directory below the root
        pending = list(parts)
        links = 0
        try:
            while pending:
                comp = pending.pop(0)
                if comp in ('', '.'):
                    continue
                if comp == '..':
                    if stack:
                        os.close(stack.pop()[0])
                    continue
                cur = stack[-1][0] if stack else self.fd
                fd, target = self._step(cur, comp, stack, create)
                if target is not None:
                    links += 1
                    if links > _MAX_SYMLINKS:
                        raise _EntryError('too many levels of symbolic links')
                    if target.startswith('/'):
                        while stack:
                            os.close(stack.pop()[0])
                    pending[:0] = target.split('/')
                    continue
                stack.append((fd, comp))
            real = [name for _, name in stack]
            fd = stack.pop()[0] if stack else os.dup(self.fd)
            return fd, real
        finally:
            for fd, _ in stack:
                os.close(fd)

    @staticmethod
    def _step(cur, comp, stack, create):
        """Open one component: (fd, None), or (None, symlink target)."""
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=cur), None
        except FileNotFoundError:
            if create is None:
                raise
            create(cur, comp, [name for _, name in stack] + [comp])
            return os.open(comp, _DIR_FLAGS, dir_fd=cur), None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        st = _lstat_at(cur, comp)
        if st is not None and stat.S_ISLNK(st.st_mode):
            return None, os.readlink(comp, dir_fd=cur)
        raise _EntryError('a parent path component %r is not a directory'
                          % comp)


class _LayerApplier(object):
    """Applies one layer tar; see apply_tar."""

    def __init__(self, dest_dir, whiteouts, max_size, lower_lookup):
        if whiteouts not in ('overlay', 'delete'):
            raise ValueError('whiteouts must be overlay or delete')
        self.root = _ScopedRoot(dest_dir)
        self.overlay = whiteouts == 'overlay'
        self.max_size = max_size
        self.lower_lookup = lower_lookup
        self.limits = _LIMITS.get()
        self.space = content_mod.SpaceGuard(
            self.root.fd, 'unpacking the layer',
            min_free=self.limits.min_free,
            min_free_percent=self.limits.min_free_percent,
            hint=self.limits.space_hint)
        self.entries = 0
        self.written = 0
        self.dir_times = {}     # real path -> (atime_ns, mtime_ns)
        # Paths this layer created or changed, with all their ancestors: an
        # opaque marker must only clear what came from lower layers.
        self.touched = set()
        self._cached = None     # (parts, fd, real) of the last parent

    def close(self):
        self._drop_parent()
        self.root.close()

    def _parent(self, parts):
        """Open (creating) a parent directory, reusing the last one: tars
        list siblings together, and resolving from the root every time
        costs an open per path component."""
        key = tuple(parts)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1], self._cached[2]
        self._drop_parent()
        fd, real = self.root.open_dir(parts, self._mkparent)
        self._cached = (key, fd, real)
        return fd, real

    def _drop_parent(self):
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _remove(self, dir_fd, name):
        """rm -rf of one name.  Removing a directory or a symlink can change
        where a path resolves, so the cached parent is not reused (it may be
        in use right now, so it is closed later, not here)."""
        st = _lstat_at(dir_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self._cached = self._cached and (None,) + self._cached[1:]
        _remove_at(dir_fd, name)

    # -- entry point -------------------------------------------------------

    def apply(self, tf):
        max_entries = self.limits.max_entries
        for member in _members(tf):
            self.entries += 1
            if max_entries and self.entries > max_entries:
                raise errors.LayerError(
                    'layer entry %r: the layer has more than %d entries%s'
                    % (member.name, max_entries, self.limits.entries_hint))
            # Every entry costs an inode and about a block, whatever its size.
            self.space.claim(4096, 1)
            try:
                self._apply_member(tf, member)
            except _EntryError as exc:
                raise errors.LayerError('layer entry %r: %s'
                                        % (member.name, exc))
            except _StreamError as exc:
                raise errors.LayerError(
                    'layer entry %r: the layer is truncated or corrupt (%s)'
                    % (member.name, exc))
            except (ValueError, OverflowError) as exc:
                # NUL bytes in names, owners beyond 32 bits and the like.
                raise errors.LayerError('layer entry %r: invalid entry (%s)'
                                        % (member.name, exc))
            except OSError as exc:
                full = content_mod.space_error(
                    exc, 'layer entry %r' % member.name,
                    self.limits.space_hint)
                if full is not None:
                    raise full
                if exc.errno in _HOST_ERRNOS:
                    raise errors.EngineError(
                        'cannot apply layer entry %r: %s'
                        % (member.name, exc.strerror))
                raise errors.LayerError('layer entry %r: %s'
                                        % (member.name,
                                           exc.strerror or exc))
        self._set_dir_times()
        return self.written

    def _apply_member(self, tf, member):
        if member.size < 0 or member.uid < 0 or member.gid < 0:
            raise _EntryError('negative size or owner in the header')
        parts = _clean_parts(member.name)
        if parts is None:
            raise _EntryError('path escapes the layer')
        base = parts[-1] if parts else ''
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts[:-1], base)
            return
        if not parts:
            self._root_entry(member)
            return
        if member.ischr() or member.isblk():
            if member.ischr() and member.devmajor == 0 and \
                    member.devminor == 0:
                # Some builders ship overlayfs-form whiteouts; honour them.
                self._whiteout(parts[:-1], WHITEOUT_PREFIX + base)
            else:
                LOG.warning('layer entry %r: device nodes are not created '
                            'from layers; skipped', member.name)
            return
        kinds = ((member.isreg, self._regular), (member.isdir, self._dir),
                 (member.issym, self._symlink), (member.islnk, self._hardlink),
                 (member.isfifo, self._fifo))
        for test, handler in kinds:
            if test():
                pfd, real = self._parent(parts[:-1])
                handler(tf, member, pfd, base, real + [base])
                return
        LOG.warning('layer entry %r: unsupported tar entry type %r; skipped',
                    member.name, member.type)

    # -- bookkeeping -------------------------------------------------------

    def _touch(self, real):
        for i in range(1, len(real) + 1):
            self.touched.add('/'.join(real[:i]))

    def _account(self, size):
        if self.max_size and self.written + size > self.max_size:
            raise _EntryError('the layer is larger than the limit of %d '
                              'bytes%s' % (self.max_size,
                                           self.limits.size_hint))
        if size > content_mod.SpaceGuard.RECHECK:
            # A header no disk could satisfy is a bad layer, not a full disk.
            free = os.statvfs(self.root.fd)
            if size > free.f_bavail * free.f_frsize:
                raise _EntryError('claims %d bytes, more than the free disk '
                                  'space' % size)
        self.space.claim(size)
        self.written += size

    def _mkparent(self, parent_fd, name, real):
        """Create a directory the tar implies but does not list.

        In an overlay upper dir it may already exist in a lower layer: copy
        that one's owner and mode so the merged view keeps them.
        """
        os.mkdir(name, 0o755, dir_fd=parent_fd)
        self._touch(real)
        lower = self.lower_lookup('/'.join(real)) \
            if self.lower_lookup else None
        if lower is None:
            return
        try:
            st = os.lstat(lower)
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):
            os.chown(name, st.st_uid, st.st_gid, dir_fd=parent_fd,
                     follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent_fd)
            self.dir_times['/'.join(real)] = (st.st_atime_ns, st.st_mtime_ns)

    # -- metadata ----------------------------------------------------------

    @staticmethod
    def _xattrs(member):
        for key, value in member.pax_headers.items():
            if not key.startswith('SCHILY.xattr.'):
                continue
            name = key[len('SCHILY.xattr.'):]
            if _xattr_allowed(name):
                yield name, value.encode('utf-8', 'surrogateescape')
            else:
                LOG.debug('layer entry %r: dropping xattr %s',
                          member.name, name)

    def _set_meta_fd(self, fd, member):
        """Owner, mode, xattrs on an open file or directory, in the order
        that keeps them: chown clears setuid bits and file capabilities."""
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for name, value in self._xattrs(member):
            os.setxattr(fd, name, value)

    @staticmethod
    def _times(member):
        try:
            ns = int(member.mtime * 1_000_000_000)
            return ns, ns
        except (OverflowError, ValueError, TypeError):
            return None

    def _set_times_at(self, pfd, name, member):
        times = self._times(member)
        if times is None:
            return
        try:
            os.utime(name, ns=times, dir_fd=pfd, follow_symlinks=False)
        except (OverflowError, ValueError):
            LOG.debug('layer entry %r: unusable mtime', member.name)

    def _set_dir_times(self):
        for rel, times in self.dir_times.items():
            parts = rel.split('/') if rel else []
            try:
                fd, _ = self.root.open_dir(parts)
            except (OSError, _EntryError):
                continue    # replaced or deleted later in the layer
            try:
                os.utime(fd, ns=times)
            except (OverflowError, ValueError):
                pass
            finally:
                os.close(fd)

    # -- entry kinds -------------------------------------------------------

    def _replace(self, pfd, name):
        """Make room for a new non-directory entry."""
        self._remove(pfd, name)

    def _root_entry(self, member):
        if not member.isdir():
            raise _EntryError('the layer root must be a directory')
        self._set_meta_fd(self.root.fd, member)
        times = self._times(member)
        if times:
            self.dir_times[''] = times

    def _regular(self, tf, member, pfd, name, real):
        self._account(member.size)
        self._replace(pfd, name)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                     os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            self._copy_data(tf, member, fd)
            self._set_meta_fd(fd, member)
        finally:
            os.close(fd)
        self._set_times_at(pfd, name, member)
        self._touch(real)

    @staticmethod
    def _copy_data(tf, member, fd):
        src = tf.extractfile(member)
        remaining = member.size
        try:
            while remaining:
                chunk = src.read(min(_CHUNK, remaining))
                if not chunk:
                    raise _StreamError('unexpected end of data')
                _write_all(fd, chunk)
                remaining -= len(chunk)
        except tarfile.TarError as exc:
            raise _StreamError(str(exc)) from exc

    def _dir(self, tf, member, pfd, name, real):
        st = _lstat_at(pfd, name)
        if st is None or not stat.S_ISDIR(st.st_mode):
            self._replace(pfd, name)
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            self._set_meta_fd(fd, member)
        finally:
            os.close(fd)
        times = self._times(member)
        if times:
            self.dir_times['/'.join(real)] = times
        self._touch(real)

    def _symlink(self, tf, member, pfd, name, real):
        # The target is stored as is: it is only ever resolved inside the
        # layer (by open_dir) or inside the container's root.
        self._replace(pfd, name)
        os.symlink(member.linkname, name, dir_fd=pfd)
        os.chown(name, member.uid, member.gid, dir_fd=pfd,
                 follow_symlinks=False)
        self._set_times_at(pfd, name, member)
        self._touch(real)

    def _fifo(self, tf, member, pfd, name, real):
        self._replace(pfd, name)
        os.mkfifo(name, 0o600, dir_fd=pfd)
        # O_NONBLOCK: opening a fifo for reading must not wait for a writer.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW |
                     os.O_CLOEXEC, dir_fd=pfd)
        try:
            self._set_meta_fd(fd, member)
        finally:
            os.close(fd)
        self._set_times_at(pfd, name, member)
        self._touch(real)

    def _hardlink(self, tf, member, pfd, name, real):
        tparts = _clean_parts(member.linkname)
        if tparts is None:
            raise _EntryError('hardlink target %r escapes the layer'
                              % member.linkname)
        if not tparts:
            raise _EntryError('hardlink to the layer root')
        try:
            tfd, _ = self.root.open_dir(tparts[:-1])
        except (FileNotFoundError, NotADirectoryError, _EntryError):
            tfd = None
        try:
            tst = _lstat_at(tfd, tparts[-1]) if tfd is not None else None
            if tst is not None and self.overlay and _is_overlay_whiteout(tst):
                tst = None
            if tst is None:
                self._hardlink_from_lower(member, pfd, name, real)
                return
            if stat.S_ISDIR(tst.st_mode):
                raise _EntryError('hardlink to a directory')
            cur = _lstat_at(pfd, name)
            if cur is not None and (cur.st_dev, cur.st_ino) == \
                    (tst.st_dev, tst.st_ino):
                return      # duplicate entry: already this very file
            self._replace(pfd, name)
            os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd,
                    follow_symlinks=False)
            self._touch(real)
        finally:
            if tfd is not None:
                os.close(tfd)

    def _hardlink_from_lower(self, member, pfd, name, real):
        """A hardlink to a file of a lower layer (overlay mode only).

        Files in different layers cannot share an inode, so the new name
        gets a copy of the lower file, as overlayfs' copy-up would do.
        """
        tparts = _clean_parts(member.linkname)
        lower = None
        if self.lower_lookup and not self._hidden_by_layer(tparts):
            lower = self.lower_lookup('/'.join(tparts))
        if lower is None:
            raise _EntryError('hardlink target %r does not exist in the '
                              'layer' % member.linkname)
        src = os.open(lower, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                      os.O_CLOEXEC)
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):
                raise _EntryError('hardlink target %r is not a regular file'
                                  % member.linkname)
            self._account(st.st_size)
            self._replace(pfd, name)
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                          os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
            try:
                while True:
                    chunk = os.read(src, _CHUNK)
                    if not chunk:
                        break
                    _write_all(dst, chunk)
                os.fchown(dst, st.st_uid, st.st_gid)
                os.fchmod(dst, stat.S_IMODE(st.st_mode))
                for xname in os.listxattr(src):
                    if _xattr_allowed(xname):
                        os.setxattr(dst, xname, os.getxattr(src, xname))
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst)
        finally:
            os.close(src)
        self._touch(real)

    def _hidden_by_layer(self, parts):
        """True when this layer's own whiteouts or opaque directories hide
        ``parts`` of the lower layers."""
        for i in range(len(parts)):
            try:
                fd, _ = self.root.open_dir(parts[:i])
            except (OSError, _EntryError):
                return False
            try:
                if _fd_is_opaque(fd):
                    return True
                st = _lstat_at(fd, parts[i])
                if st is not None and _is_overlay_whiteout(st):
                    return True
            finally:
                os.close(fd)
        return False

    # -- whiteouts ---------------------------------------------------------

    def _whiteout(self, parent_parts, base):
        if base == WHITEOUT_OPAQUE:
            self._opaque(parent_parts)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return
        target = base[len(WHITEOUT_PREFIX):]
        if target in ('', '.', '..') or '/' in target:
            raise _EntryError('whiteout of an invalid name')
        if self.overlay:
            pfd, real = self.root.open_dir(parent_parts, self._mkparent)
        else:
            try:
                pfd, real = self.root.open_dir(parent_parts)
            except (FileNotFoundError, NotADirectoryError):
                return      # nothing there to delete
        try:
            self._remove(pfd, target)
            if self.overlay:
                os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0),
                         dir_fd=pfd)
            self._touch(real + [target])
        finally:
            os.close(pfd)

    def _opaque(self, parent_parts):
        if self.overlay:
            fd, real = self.root.open_dir(parent_parts, self._mkparent)
            try:
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b'y')
            finally:
                os.close(fd)
            self._touch(real)
            return
        try:
            fd, real = self.root.open_dir(parent_parts)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            self._prune_untouched(fd, real)
        finally:
            os.close(fd)
        self._touch(real)

    def _prune_untouched(self, top_fd, top_real):
        """Delete what lower layers left under a now-opaque directory.

        Entries this layer already wrote stay, whatever their order in the
        tar relative to the marker; directories they live in are walked
        into rather than removed.
        """
        stack = [(os.dup(top_fd), '/'.join(top_real))]
        try:
            while stack:
                fd, rel = stack.pop()
                try:
                    for name in os.listdir(fd):
                        child = rel + '/' + name if rel else name
                        if child not in self.touched:
                            self._remove(fd, name)
                            continue
                        st = _lstat_at(fd, name)
                        if st is not None and stat.S_ISDIR(st.st_mode):
                            stack.append(
                                (os.open(name, _DIR_FLAGS, dir_fd=fd), child))
                finally:
                    os.close(fd)
        finally:
            for fd, _ in stack:
                os.close(fd)


def read_exact(stream, n):
    """Up to ``n`` bytes from ``stream``: fewer only at its end."""
    data = b''
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def apply_tar(stream, dest_dir, whiteouts='overlay', max_size=0,
              lower_lookup=None):
    """Apply the uncompressed layer tar read from ``stream`` into ``dest_dir``.

    ``whiteouts`` is 'overlay' (``dest_dir`` is an empty overlayfs upper
    layer: whiteouts become 0/0 char devices and the opaque xattr) or
    'delete' (``dest_dir`` is a full copy of the parent: whiteouts delete).
    ``max_size`` bounds the bytes of file data (0: no bound).
    ``lower_lookup(relpath)``, for overlay mode, returns the host path of
    that file as the layers below see it, or None; it lets hardlinks reach
    files of lower layers and implied directories keep their lower owner
    and mode.

    The stream is read to its end, so a digest computed while reading
    covers every byte.  Returns the bytes of file data written.  A hostile
    or malformed entry raises LayerError naming it; ``dest_dir`` is then in
    an undefined state and the caller discards it.
    """
    guarded = io.BufferedReader(_GuardedReader(stream), _CHUNK)
    applier = _LayerApplier(dest_dir, whiteouts, max_size, lower_lookup)
    try:
        try:
            tf = tarfile.open(fileobj=guarded, mode='r|', errorlevel=2,
                              encoding='utf-8', errors='surrogateescape')
        except tarfile.ReadError as exc:
            if 'empty file' in str(exc):
                return 0        # an empty stream is an empty layer
            raise errors.LayerError('not a tar archive: %s' % exc)
        except _StreamError as exc:
            raise errors.LayerError('cannot read the layer: %s' % exc)
        try:
            written = applier.apply(tf)
        finally:
            tf.close()
        _drain(guarded)
        return written
    finally:
        applier.close()


def _members(tf):
    """Iterate a streamed tar, turning read failures into LayerError."""
    while True:
        try:
            member = tf.next()
        except _StreamError as exc:
            raise errors.LayerError(
                'the layer is truncated or corrupt: %s' % exc)
        except (tarfile.TarError, EOFError, ValueError) as exc:
            raise errors.LayerError(
                'the layer is truncated or malformed: %s' % exc)
        if member is None:
            return
        yield member


def _drain(reader):
    try:
        while reader.read(_CHUNK):
            pass
    except _StreamError as exc:
        raise errors.LayerError('the layer is corrupt after its end: %s'
                                % exc)


# ---------------------------------------------------------------------------
# Writing tars


def _iter_tree(root_fd):
    """Yield ``(relpath, dir_fd, name, stat)`` for a tree, depth first.

    Names are sorted, a directory comes before its contents, and every
    directory is entered through an O_NOFOLLOW fd so a tree changing under
    us (a running container) cannot lead the walk outside it.  ``dir_fd``
    is valid until the next item is requested.
    """
    stack = [(os.dup(root_fd), '', iter(sorted(os.listdir(root_fd))))]
    try:
        while stack:
            fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            st = _lstat_at(fd, name)
            if st is None:
                continue
            rel = prefix + name
            yield rel, fd, name, st
            if stat.S_ISDIR(st.st_mode):
                try:
                    cfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue    # vanished or replaced meanwhile
                stack.append((cfd, rel + '/', iter(sorted(os.listdir(cfd)))))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


class _ExactReader(object):
    """Reads exactly ``size`` bytes of a file that may change while read:
    pads with zeros if it shrank, stops at ``size`` if it grew."""

    def __init__(self, fd, size):
        self._fd = fd
        self._left = size
        self.short = False

    def read(self, n=-1):
        if n < 0 or n > self._left:
            n = self._left
        data = os.read(self._fd, n) if n else b''
        if len(data) < n:
            self.short = True
            data += b'\0' * (n - len(data))
        self._left -= len(data)
        return data


class _Appender(object):
    """A write-only stream with the ``tell`` tarfile's plain write mode
    asks for (the bytes written so far)."""

    def __init__(self, out):
        self._out = out
        self._n = 0

    def write(self, data):
        self._out.write(data)
        self._n += len(data)
        return len(data)

    def tell(self):
        return self._n


class _TarWriter(object):
    """Writes entries of a tree into a PAX tar, hardlinks by inode.
    ``data_bytes``: the file data written (what unpacking the tar counts
    as the layer's size)."""

    # File data moves in pieces of this size straight to ``out`` (tarfile's
    # stream mode would copy every piece through its own buffer).  The
    # tar's bytes do not depend on it: records are padded to RECORDSIZE.
    PIECE = 1 << 20

    def __init__(self, out):
        self._tar = tarfile.open(fileobj=_Appender(out), mode='w',
                                 format=tarfile.PAX_FORMAT, encoding='utf-8',
                                 errors='surrogateescape')
        self._tar.copybufsize = self.PIECE
        self._links = {}
        self.data_bytes = 0

    def close(self):
        self._tar.close()

    @staticmethod
    def _info(rel, st):
        info = tarfile.TarInfo(rel)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ''
        # Whole seconds, like Docker: sub-second times make layers differ
        # for no reason.
        info.mtime = int(st.st_mtime)
        return info

    def add(self, rel, dir_fd, name, st):
        """Add one entry found by _iter_tree.  Sockets are skipped."""
        mode = st.st_mode
        info = self._info(rel, st)
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            self._add_with_fd(info, dir_fd, name, st, _DIR_FLAGS)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                info.type = tarfile.LNKTYPE
                info.linkname = self._links[key]
                self._tar.addfile(info)
                return
            if st.st_nlink > 1:
                self._links[key] = rel
            info.type = tarfile.REGTYPE
            info.size = st.st_size
            self._add_with_fd(info, dir_fd, name, st,
                              os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                              os.O_CLOEXEC)
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self._tar.addfile(info)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) \
                else tarfile.BLKTYPE
            info.devmajor = os.major(st.st_rdev)
            info.devminor = os.minor(st.st_rdev)
            self._tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self._tar.addfile(info)
        else:
            LOG.debug('not archiving %s: a socket', rel)

    def _add_with_fd(self, info, dir_fd, name, st, flags):
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError, OSError) as exc:
            if getattr(exc, 'errno', None) in _HOST_ERRNOS:
                raise
            LOG.warning('not archiving %s: %s', info.name, exc)
            return
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                LOG.warning('not archiving %s: replaced while archiving',
                            info.name)
                return
            xattrs = {}
            for xname in os.listxattr(fd):
                if _xattr_allowed(xname):
                    value = os.getxattr(fd, xname)
                    xattrs['SCHILY.xattr.' + xname] = value.decode(
                        'utf-8', 'surrogateescape')
            info.pax_headers = xattrs
            if info.type == tarfile.REGTYPE:
                reader = _ExactReader(fd, info.size)
                self._tar.addfile(info, reader)
                self.data_bytes += info.size
                if reader.short:
                    LOG.warning('%s shrank while archiving; padded',
                                info.name)
            else:
                self._tar.addfile(info)
        finally:
            os.close(fd)

    def add_marker(self, rel, st):
        """An empty regular file: Docker whiteouts and opaque markers."""
        info = self._info(rel, st) if st is not None \
            else tarfile.TarInfo(rel)
        info.type = tarfile.REGTYPE
        info.size = 0
        if st is None:
            info.mode, info.mtime, info.uname, info.gname = 0, 0, '', ''
        else:
            info.mode &= 0o777
        self._tar.addfile(info)


def _open_root(path):
    return os.open(path, _DIR_FLAGS & ~os.O_NOFOLLOW)


def write_tree_tar(src_dir, out):
    """Write all of ``src_dir`` (not the directory itself) as a tar.

    Numeric owners, names relative ('bin/sh', 'etc/'), sorted, hardlinks
    kept, image-worthy xattrs kept, sockets skipped.
    """
    root = _open_root(src_dir)
    writer = _TarWriter(out)
    try:
        for rel, dir_fd, name, st in _iter_tree(root):
            writer.add(rel, dir_fd, name, st)
        writer.close()
    finally:
        os.close(root)


def _is_opaque(dir_fd, name):
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE_XATTR) == b'y'
    except OSError:
        return False
    finally:
        os.close(fd)


def _whiteout_name(rel):
    head, _, base = rel.rpartition('/')
    return (head + '/' if head else '') + WHITEOUT_PREFIX + base


def diff_overlay_upper(upper_dir, out):
    """Write an overlayfs upper dir as a Docker layer tar.

    0/0 char devices become ``.wh.NAME`` files and opaque directories get a
    ``.wh..wh..opq`` entry after their own; overlayfs' trusted xattrs are
    never copied.  Returns the bytes of file data written.
    """
    root = _open_root(upper_dir)
    writer = _TarWriter(out)
    try:
        if _fd_is_opaque(root):
            writer.add_marker(WHITEOUT_OPAQUE, os.fstat(root))
        for rel, dir_fd, name, st in _iter_tree(root):
            if _is_overlay_whiteout(st):
                writer.add_marker(_whiteout_name(rel), st)
                continue
            writer.add(rel, dir_fd, name, st)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(dir_fd, name):
                writer.add_marker(rel + '/' + WHITEOUT_OPAQUE, st)
        writer.close()
        return writer.data_bytes
    finally:
        os.close(root)


def _changed(old, new, lower_path, dir_fd, name):
    """Docker's notion of a changed entry (pkg/archive/changes)."""
    if stat.S_IFMT(old.st_mode) != stat.S_IFMT(new.st_mode):
        return True
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != \
            (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    if stat.S_ISDIR(new.st_mode):
        # A directory's size and mtime follow its entries; those are
        # compared one by one instead.
        return False
    if old.st_size != new.st_size or old.st_mtime_ns != new.st_mtime_ns:
        return True
    if stat.S_ISLNK(new.st_mode):
        return os.readlink(lower_path) != os.readlink(name, dir_fd=dir_fd)
    if stat.S_ISREG(new.st_mode):
        return _capability(lower_path) != _capability_at(dir_fd, name)
    return False


def _capability(path):
    try:
        return os.getxattr(path, 'security.capability',
                           follow_symlinks=False)
    except OSError:
        return None


def _capability_at(dir_fd, name):
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                     os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.getxattr(fd, 'security.capability')
    except OSError:
        return None
    finally:
        os.close(fd)


def _lower_children(lower_dir, rel):
    """Names in the lower copy of directory ``rel``, or None if it is not
    a real directory there (the lower tree is a committed, trusted copy)."""
    path = os.path.join(lower_dir, rel) if rel else lower_dir
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return os.listdir(path)


def _upper_children(dir_fd, name):
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


class _PendingDirs(object):
    """The directories enclosing the walk's position in diff_trees.

    A directory is written only when something at or below it changed, and
    then before that change, so the tar carries its owner and mode.
    """

    def __init__(self, writer):
        self._writer = writer
        self._stack = []    # [rel, dir_fd, name, st, written]

    def enter(self, parent):
        while self._stack and self._stack[-1][0] != parent:
            self._stack.pop()

    def push(self, rel, dir_fd, name, st):
        self._stack.append([rel, dir_fd, name, st, False])

    def flush(self):
        for item in self._stack:
            if not item[4]:
                self._writer.add(*item[:4])
                item[4] = True


def _write_deletions(writer, pending, lower_dir, rel, upper_names):
    lower_names = _lower_children(lower_dir, rel)
    if lower_names is None:
        return
    gone = sorted(set(lower_names) - set(upper_names))
    if gone:
        pending.flush()
    for name in gone:
        writer.add_marker((rel + '/' if rel else '') + WHITEOUT_PREFIX + name,
                          None)


def diff_trees(lower_dir, upper_dir, out):
    """Write what ``upper_dir`` (a full copy) changed against ``lower_dir``.

    Changed and added entries are written with the directories above them;
    deleted entries become ``.wh.NAME`` (one for a whole deleted directory).
    Like Docker, a file counts as changed when its type, mode, owner,
    device, size, mtime, symlink target or file capability differ; contents
    are not compared.  Returns the bytes of file data written.
    """
    root = _open_root(upper_dir)
    writer = _TarWriter(out)
    pending = _PendingDirs(writer)
    lower_dirs = {''}   # upper directories that are directories below too
    try:
        _write_deletions(writer, pending, lower_dir, '', os.listdir(root))
        for rel, dir_fd, name, st in _iter_tree(root):
            parent = rel.rpartition('/')[0]
            pending.enter(parent)
            lower_path = os.path.join(lower_dir, rel)
            old = _lstat_path(lower_path) if parent in lower_dirs else None
            changed = old is None or _changed(old, st, lower_path,
                                              dir_fd, name)
            if not stat.S_ISDIR(st.st_mode):
                if changed:
                    pending.flush()
                    writer.add(rel, dir_fd, name, st)
                continue
            pending.push(rel, dir_fd, name, st)
            if changed:
                pending.flush()
            if old is not None and stat.S_ISDIR(old.st_mode):
                lower_dirs.add(rel)
                _write_deletions(writer, pending, lower_dir, rel,
                                 _upper_children(dir_fd, name))
        writer.close()
        return writer.data_bytes
    finally:
        os.close(root)


def _lstat_path(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
