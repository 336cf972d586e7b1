"""What the overlay and vfs snapshotters share: directories on local disk.

Layout under ``root``::

    metadata.json           key -> {id, parent, kind}; rewritten atomically
    snapshots/empty/        an empty directory (bottom layer, empty parent)
    snapshots/<id>/fs/      the snapshot's tree
    snapshots/tmp-*/        work in progress; never referenced by metadata

Snapshot directories are named by small numbers, not by key, so overlay
mount options stay short.  A snapshot is built in a ``tmp-*`` directory,
synced, renamed to its number and only then recorded in metadata.json: after
a SIGKILL there is at most a directory that no key points to, which
``cleanup()`` removes.
"""

import ctypes
import errno
import os
import shutil
import stat
import subprocess
import tempfile
import threading

from oslo_log import log as logging

from engine import errors
from engine import inspect_extras
from engine.snapshotters import lowerview
from engine.snapshotters import base
from engine import util

LOG = logging.getLogger(__name__)

COMMITTED = 'committed'
ACTIVE = 'active'
EMPTY_DIR = 'empty'
TMP_PREFIX = 'tmp-'

_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path):
    """Flush the filesystem holding ``path``: a snapshot's files must be on
    disk before metadata says it exists."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _unescape_mountinfo(field):
    # /proc/self/mountinfo escapes space, tab, newline and backslash in octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == '\\' and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return ''.join(out)


def mount_points():
    with open('/proc/self/mountinfo') as f:
        return [_unescape_mountinfo(line.split()[4]) for line in f]


def is_mounted(target):
    # os.path.ismount misses bind mounts within one filesystem.
    return os.path.realpath(target) in mount_points()


def mounts_under(path):
    prefix = os.path.realpath(path).rstrip('/') + '/'
    return [m for m in mount_points() if m.startswith(prefix)]


def run_mount(args, cwd=None):
    """Run mount(8); ``cwd`` lets options name directories relatively."""
    proc = subprocess.run(['mount'] + list(args), cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise errors.EngineError('mount failed: %s'
                                 % (proc.stderr.strip() or proc.returncode))


MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
# mount(2) takes at most one page of options.
MOUNT_DATA_LIMIT = 4000

_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def sys_mount(source, target, fstype, flags=0, data=''):
    """mount(2) without a mount(8) process: every container start mounts."""
    if _libc.mount(source.encode(), os.fsencode(target), fstype.encode(), flags,
                   data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise errors.EngineError('mount of %s on %s failed: %s'
                                 % (fstype, target, os.strerror(err)))


def unmount(target):
    """umount2(2); a target that is not mounted (or missing) is fine."""
    if _libc.umount2(os.fsencode(target), 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return
    raise errors.Conflict('cannot unmount %s: %s' % (target, os.strerror(err)))


def disk_usage(path):
    """Bytes allocated to the tree at ``path``, each inode counted once."""
    seen = set()
    total = 0
    for dirpath, dirnames, filenames, dirfd in os.fwalk(path):
        for name in dirnames + filenames:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def remove_tree(path):
    """rm -rf, refusing to descend into anything mounted below ``path``."""
    busy = mounts_under(path)
    if busy:
        raise errors.Conflict('%s is in use: %s is mounted' % (path, busy[0]))
    shutil.rmtree(path, ignore_errors=False, onerror=_ignore_missing)


def _ignore_missing(func, path, exc_info):
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


class LocalSnapshotter(base.Snapshotter):
    """Metadata, atomic creation, removal, cleanup and checks.

    Subclasses fill new snapshot directories (``_fill_layer``,
    ``_fill_active``) and implement mount and diff.
    """

    def __init__(self, root, **kwargs):
        super().__init__(root, **kwargs)
        self._lock = threading.RLock()
        self.snapshots_dir = util.makedirs(os.path.join(root, 'snapshots'))
        self.empty_dir = util.makedirs(os.path.join(self.snapshots_dir,
                                                    EMPTY_DIR), 0o755)
        self._meta_path = os.path.join(root, 'metadata.json')
        self._meta = util.read_json(self._meta_path,
                                    {'next_id': 1, 'snapshots': {}})

    # -- metadata ----------------------------------------------------------

    def _records(self):
        return self._meta['snapshots']

    def _save(self):
        util.atomic_write_json(self._meta_path, self._meta, mode=0o600)

    def _record(self, key):
        rec = self._records().get(key)
        if rec is None:
            raise errors.NotFound('snapshot %s does not exist' % key)
        return rec

    def _dir(self, key):
        return os.path.join(self.snapshots_dir, str(self._record(key)['id']))

    def _fs(self, key):
        return os.path.join(self._dir(key), 'fs')

    def _chain(self, key):
        """Keys from ``key`` down to the bottom layer."""
        chain = []
        while key is not None:
            if key in chain:
                raise errors.EngineError('snapshot %s: parent loop' % key)
            chain.append(key)
            key = self._record(key)['parent']
        return chain

    def _allocate_id(self):
        n = self._meta['next_id']
        while os.path.lexists(os.path.join(self.snapshots_dir, str(n))):
            n += 1
        self._meta['next_id'] = n + 1
        return n

    # -- creation ----------------------------------------------------------

    def _check_new(self, key, parent):
        if key in self._records():
            raise errors.Conflict('snapshot %s already exists' % key)
        if parent is None:
            return
        rec = self._records().get(parent)
        if rec is None:
            raise errors.NotFound('parent snapshot %s does not exist'
                                  % parent)
        if rec['kind'] != COMMITTED:
            raise errors.InvalidArgument('parent snapshot %s is not '
                                         'committed' % parent)

    def _create(self, key, parent, kind, fill):
        """Build a snapshot with ``fill(tmp_dir)`` and publish it."""
        with self._lock:
            self._check_new(key, parent)
        tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.snapshots_dir)
        try:
            os.chmod(tmp, 0o700)
            result = fill(tmp)
            if kind == COMMITTED:
                syncfs(tmp)
            else:
                self._sync_active(tmp)
            with self._lock:
                self._check_new(key, parent)
                n = self._allocate_id()
                final = os.path.join(self.snapshots_dir, str(n))
                os.rename(tmp, final)
                util.fsync_dir(self.snapshots_dir)
                self._records()[key] = {'id': n, 'parent': parent,
                                        'kind': kind}
                try:
                    self._save()
                except BaseException:
                    del self._records()[key]
                    raise
            return result
        except BaseException:
            if os.path.lexists(tmp):
                remove_tree(tmp)
            raise

    def _new_fs(self, tmp, parent):
        """An empty tree whose root looks like the parent's root."""
        fs = os.path.join(tmp, 'fs')
        os.mkdir(fs)
        src = self._fs(parent) if parent is not None else self.empty_dir
        st = os.stat(src)
        os.chown(fs, st.st_uid, st.st_gid)
        os.chmod(fs, stat.S_IMODE(st.st_mode) if parent is not None
                 else 0o755)
        return fs

    def apply_layer(self, key, parent, stream, max_size=0):
        """See Snapshotter; returns the bytes of file data in the layer
        (Docker's layer size), the same for every snapshotter."""
        return self._create(key, parent, COMMITTED,
                            lambda tmp: self._fill_layer(tmp, parent, stream,
                                                         max_size))

    def prepare(self, key, parent):
        self._create(key, parent, ACTIVE,
                     lambda tmp: self._fill_active(tmp, parent))

    def _fill_layer(self, tmp, parent, stream, max_size):
        raise NotImplementedError

    def change_dirs(self, key):
        raise NotImplementedError

    def changes(self, key):
        """Docker's change list (docker diff) of the active snapshot ``key``."""
        upper, lowers, full_copy = self.change_dirs(key)
        return inspect_extras.changes(upper, lowerview.LowerView(lowers), full_copy)

    def changes_size(self, key):
        """Docker's SizeRw: bytes of the files the snapshot added or changed."""
        upper, lowers, full_copy = self.change_dirs(key)
        stats = {}
        inspect_extras.changes(upper, lowerview.LowerView(lowers), full_copy, stats)
        return inspect_extras.changes_size(stats)

    def _fill_active(self, tmp, parent):
        raise NotImplementedError

    def _sync_active(self, tmp):
        """Make a new active snapshot durable before it is published: the
        entries of each of its directories.  Much cheaper than flushing
        the whole filesystem on every container create."""
        for dirpath, _, _ in os.walk(tmp):
            util.fsync_dir(dirpath)

    # -- queries -----------------------------------------------------------

    def exists(self, key):
        with self._lock:
            return key in self._records()

    def list(self):
        with self._lock:
            items = [(k, r['parent'], r['kind'])
                     for k, r in sorted(self._records().items())]
        return iter(items)

    def kind(self, key):
        with self._lock:
            return self._record(key)['kind']

    def usage(self, key):
        with self._lock:
            path = self._dir(key)
        return disk_usage(path)

    # -- removal -----------------------------------------------------------

    def remove(self, key):
        with self._lock:
            rec = self._records().get(key)
            if rec is None:
                return
            children = [k for k, r in self._records().items()
                        if r['parent'] == key]
            if children:
                raise errors.Conflict(
                    'snapshot %s is the parent of %d other snapshot(s), '
                    'e.g. %s' % (key, len(children), children[0]))
            path = os.path.join(self.snapshots_dir, str(rec['id']))
            busy = mounts_under(path)
            if busy:
                raise errors.Conflict('snapshot %s is in use: %s is mounted'
                                      % (key, busy[0]))
            del self._records()[key]
            try:
                self._save()
            except BaseException:
                self._records()[key] = rec
                raise
        # Unreferenced now: a crash before this finishes leaves a directory
        # that cleanup() removes.
        remove_tree(path)

    # -- maintenance -------------------------------------------------------

    def _leftovers(self):
        """Directories and files that no metadata record accounts for."""
        with self._lock:
            used = {str(r['id']) for r in self._records().values()}
        found = []
        for name in sorted(os.listdir(self.snapshots_dir)):
            if name != EMPTY_DIR and name not in used:
                found.append(os.path.join(self.snapshots_dir, name))
        for name in sorted(os.listdir(self.root)):
            if name.startswith('.tmp-'):
                found.append(os.path.join(self.root, name))
        return found

    def cleanup(self):
        """Remove what interrupted work left behind; safe at start-up."""
        removed = []
        for path in self._leftovers():
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    remove_tree(path)
                else:
                    os.unlink(path)
                removed.append(path)
            except (OSError, errors.EngineError) as exc:
                LOG.warning('could not remove leftover %s: %s', path, exc)
        if removed:
            LOG.info('removed %d leftover snapshot item(s): %s',
                     len(removed), ', '.join(removed))
        return removed

    def check(self):
        """Human-readable problems with the snapshot store; [] when sound."""
        problems = []
        with self._lock:
            records = dict(self._records())
        for key, rec in sorted(records.items()):
            problems.extend(self._check_record(key, rec, records))
        for path in self._leftovers():
            problems.append('%s is not referenced by any snapshot (left by '
                            'interrupted work; cleanup removes it)' % path)
        if not os.path.isdir(self.empty_dir) or os.listdir(self.empty_dir):
            problems.append('%s must be an empty directory' % self.empty_dir)
        return problems

    def _check_record(self, key, rec, records):
        problems = []
        path = os.path.join(self.snapshots_dir, str(rec['id']))
        if not os.path.isdir(os.path.join(path, 'fs')):
            problems.append('snapshot %s: directory %s/fs is missing'
                            % (key, path))
        parent = rec['parent']
        if parent is not None:
            if parent not in records:
                problems.append('snapshot %s: parent %s does not exist'
                                % (key, parent))
            elif records[parent]['kind'] != COMMITTED:
                problems.append('snapshot %s: parent %s is not committed'
                                % (key, parent))
        if rec['kind'] not in (COMMITTED, ACTIVE):
            problems.append('snapshot %s: unknown kind %r'
                            % (key, rec['kind']))
        seen = set()
        cur = key
        while cur is not None and cur in records:
            if cur in seen:
                problems.append('snapshot %s: its parents form a loop' % key)
                break
            seen.add(cur)
            cur = records[cur]['parent']
        return problems

    def unmount(self, target):
        unmount(target)
