"""Content-addressed blob store.

Blobs live at ``<root>/blobs/sha256/<hex>``.  Ingestion streams into a
temporary file under ``<root>/ingest``, hashing as it goes, fsyncs it,
verifies the digest and only then renames it into place: a blob is never
visible under its digest unless its bytes match it.

Two things protect the disk and the blobs of operations in flight:

* ``SpaceGuard`` refuses writes that would eat into the free-space reserve of
  a filesystem (``InsufficientStorage``, HTTP 507), counting the running
  total of what an operation writes, not each write alone.
* A ``Lease`` holds blobs an operation ingested or deduplicated against until
  it has recorded them (or given up): ``delete`` leaves leased blobs alone.
  The lease is taken under the store's lock before the blob is looked for,
  so a concurrent delete either happens before (and the ingest writes the
  blob anew) or is refused.
"""

import collections
import errno
import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import time

from oslo_log import log as logging

from engine import errors
from engine import util

LOG = logging.getLogger(__name__)

CHUNK = 1 << 20
_DIGEST_RE = re.compile(r'^sha256:[a-f0-9]{64}$')
_HEX_RE = re.compile(r'^[a-f0-9]{64}$')


def validate_digest(digest):
    """Return ``digest`` when it is a well-formed sha256 digest."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        if isinstance(digest, str) and ':' in digest and \
                not digest.startswith('sha256:'):
            raise errors.InvalidArgument(
                'unsupported digest algorithm: %s' % digest.split(':', 1)[0])
        raise errors.InvalidArgument('invalid digest format: %r' % (digest,))
    return digest


def sha256_digest(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


# Re-exported: the store raises it, callers catch it from here or errors.
InsufficientStorage = errors.InsufficientStorage


_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def space_error(exc, what, hint=''):
    """InsufficientStorage for an OSError that says the disk is full, else None."""
    if isinstance(exc, OSError) and exc.errno in _SPACE_ERRNOS:
        return InsufficientStorage(
            'not enough space on the engine\'s disk for %s: %s%s'
            % (what, exc.strerror, hint))
    return None


class SpaceGuard(object):
    """Keeps a reserve of free space (and inodes) on one filesystem.

    Call ``claim(nbytes, inodes)`` before writing.  ``statvfs`` is looked at
    again whenever what was claimed since the last look could have used up
    the room left above the reserve, and at least every ``RECHECK`` bytes, so
    the running total of an operation is what counts, and writes of other
    operations are noticed.  The reserve is the larger of ``min_free`` bytes
    and ``min_free_percent`` of the filesystem; inodes keep the same percent.
    """

    RECHECK = 16 << 20
    RECHECK_INODES = 4096

    def __init__(self, path, what, min_free=0, min_free_percent=0, hint=''):
        self.path = path
        self.what = what
        self.min_free = max(0, int(min_free or 0))
        self.min_free_percent = max(0, min(100, int(min_free_percent or 0)))
        self.hint = hint
        self.claimed = 0
        self._room = None           # (bytes, inodes) above the reserve
        self._pending = [0, 0]      # claimed since the last look

    def _look(self):
        st = os.statvfs(self.path)
        total = st.f_blocks * st.f_frsize
        reserve = max(self.min_free, total * self.min_free_percent // 100)
        room_bytes = st.f_bavail * st.f_frsize - reserve
        if st.f_files:
            room_inodes = st.f_favail - st.f_files * self.min_free_percent // 100
        else:
            room_inodes = float('inf')  # no inode limit (btrfs, tmpfs 0 …)
        self._room = (room_bytes, room_inodes, reserve)
        self._pending = [0, 0]

    def claim(self, nbytes, inodes=0):
        pb, pi = self._pending
        if self._room is None or \
                pb + nbytes > min(self._room[0], self.RECHECK) or \
                pi + inodes > min(self._room[1], self.RECHECK_INODES):
            self._look()
            room_bytes, room_inodes, reserve = self._room
            if nbytes > room_bytes or inodes > room_inodes:
                raise InsufficientStorage(
                    'not enough space on the engine\'s disk for %s: after %d '
                    'bytes it would leave less than %d bytes (or %d%% of the '
                    'inodes) free on the filesystem of %s%s'
                    % (self.what, self.claimed, reserve,
                       self.min_free_percent, self.path, self.hint))
        self._pending[0] += nbytes
        self._pending[1] += inodes
        self.claimed += nbytes


class Ingested(tuple):
    """``(digest, size)`` of an ingest; ``created`` tells whether this call
    put the blob in the store (False: it was there already)."""

    def __new__(cls, digest, size, created):
        self = super().__new__(cls, (digest, size))
        self.created = created
        return self

    @property
    def digest(self):
        return self[0]

    @property
    def size(self):
        return self[1]


class Lease(object):
    """Blobs held for one operation; ``ContentStore.delete`` skips them.

    A context manager: leaving it releases every blob it holds.
    """

    def __init__(self, store):
        self.store = store
        self.digests = collections.Counter()

    def _add_locked(self, digest):
        self.store._leased[digest] += 1
        self.digests[digest] += 1

    def add(self, digest):
        validate_digest(digest)
        with self.store._lease_lock:
            self._add_locked(digest)

    def drop(self, digest):
        """Give up this lease's holds on ``digest``."""
        with self.store._lease_lock:
            n = self.digests.pop(digest, 0)
            if n:
                self.store._leased[digest] -= n
                if self.store._leased[digest] <= 0:
                    del self.store._leased[digest]

    def release(self):
        for d in list(self.digests):
            self.drop(d)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class ContentStore(object):

    def __init__(self, root):
        self.root = root
        self.blob_dir = os.path.join(root, 'blobs', 'sha256')
        self.ingest_dir = os.path.join(root, 'ingest')
        util.makedirs(self.blob_dir)
        util.makedirs(self.ingest_dir)
        self._lease_lock = threading.RLock()
        self._leased = collections.Counter()

    # -- paths -----------------------------------------------------------

    def path(self, digest):
        validate_digest(digest)
        return os.path.join(self.blob_dir, digest[7:])

    def has(self, digest):
        try:
            return os.path.isfile(self.path(digest))
        except errors.InvalidArgument:
            return False

    def size(self, digest):
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise errors.NotFound('content %s not found' % digest)

    def open(self, digest):
        try:
            return open(self.path(digest), 'rb')
        except FileNotFoundError:
            raise errors.NotFound('content %s not found' % digest)

    def read(self, digest, max_size=0):
        with self.open(digest) as f:
            if max_size:
                data = f.read(max_size + 1)
                if len(data) > max_size:
                    raise errors.InvalidArgument(
                        'content %s is larger than %d bytes' % (digest, max_size))
                return data
            return f.read()

    def list(self):
        """Yield the digests of all blobs."""
        try:
            names = os.listdir(self.blob_dir)
        except FileNotFoundError:
            return
        for name in sorted(names):
            if _HEX_RE.match(name):
                yield 'sha256:' + name

    def delete(self, digest):
        """Remove a blob unless a lease holds it; returns whether it went.

        A missing blob is not an error.
        """
        path = self.path(digest)
        with self._lease_lock:
            if self._leased.get(digest):
                LOG.debug('Blob %s is leased by an operation in progress; '
                          'not deleting it', digest)
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
        return True

    # -- leases ----------------------------------------------------------

    def lease(self):
        """A new, empty Lease (use it as a context manager)."""
        return Lease(self)

    def leased(self):
        """The digests some lease holds right now."""
        with self._lease_lock:
            return set(self._leased)

    # -- writing ---------------------------------------------------------

    def ingest(self, fileobj, expected_digest=None, max_size=0, lease=None,
               guard=None, limit_hint=''):
        """Stream ``fileobj`` into the store; return ``(digest, size)``.

        The result is an ``Ingested`` tuple whose ``created`` tells whether
        the blob is new (False when the store had it already).
        ``expected_digest`` is verified before the blob becomes visible (a
        mismatch raises ContentError naming both digests).  ``max_size``
        (0 = unlimited) bounds the blob; exceeding it raises InvalidArgument
        (``limit_hint`` is appended to that message, to name the setting).
        ``lease`` (a Lease) holds the blob from before it is looked for:
        nothing deletes it until the lease is released.  ``guard`` (a
        SpaceGuard) is asked before every chunk is written; a full disk
        raises InsufficientStorage, never a bare OSError.
        """
        if expected_digest is not None:
            validate_digest(expected_digest)
        with self.writer(max_size, guard, limit_hint) as w:
            while True:
                chunk = fileobj.read(CHUNK)
                if not chunk:
                    break
                w.write(chunk)
            return w.commit(expected_digest, lease=lease)

    def writer(self, max_size=0, guard=None, limit_hint=''):
        """A blob written piece by piece (``write``), for producers that
        push their bytes (a diff, a tar being made); ``commit`` makes it
        visible, as ``ingest`` does; leaving the ``with`` without a commit
        removes it.  Limits and guard as for ``ingest``."""
        return BlobWriter(self, max_size, guard, limit_hint)

    def write(self, data, expected=None, lease=None):
        """Store bytes; return their digest (``lease``: see ingest)."""
        digest = sha256_digest(data)
        if expected is not None and validate_digest(expected) != digest:
            raise errors.ContentError('digest mismatch: expected %s, got %s'
                                      % (expected, digest))
        if lease is None and self.has(digest):
            return digest
        got, _ = self.ingest(io.BytesIO(data), digest, lease=lease)
        return got

    # -- maintenance -----------------------------------------------------

    def cleanup(self, max_age=0):
        """Remove ingest temporaries older than ``max_age`` seconds.

        Only call with ``max_age=0`` when no ingest can be running (start-up).
        """
        removed = 0
        now = time.time()
        try:
            names = os.listdir(self.ingest_dir)
        except FileNotFoundError:
            return 0
        for name in names:
            p = os.path.join(self.ingest_dir, name)
            try:
                if max_age and now - os.lstat(p).st_mtime < max_age:
                    continue
                os.unlink(p)
                removed += 1
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
        if removed:
            LOG.info('Removed %d stale ingest file(s) from %s', removed,
                     self.ingest_dir)
        return removed

    def check(self, expected=None, full=False):
        """Return a list of problem strings.

        ``expected`` optionally maps digests the caller relies on to their
        size (or None): each must be present with that size.  ``full``
        rehashes every blob in the store; otherwise only names and sizes are
        checked.
        """
        problems = []
        for digest, size in (expected or {}).items():
            try:
                actual = self.size(digest)
            except (errors.NotFound, errors.InvalidArgument):
                problems.append('blob %s is missing' % digest)
                continue
            if size is not None and actual != size:
                problems.append('blob %s has size %d, expected %d'
                                % (digest, actual, size))
        try:
            names = os.listdir(self.blob_dir)
        except FileNotFoundError:
            return problems + ['blob directory %s is missing' % self.blob_dir]
        for name in sorted(names):
            p = os.path.join(self.blob_dir, name)
            if not _HEX_RE.match(name):
                problems.append('unexpected file %s in the blob directory' % p)
                continue
            if not os.path.isfile(p) or os.path.islink(p):
                problems.append('blob %s is not a regular file' % p)
                continue
            if full:
                h = hashlib.sha256()
                with open(p, 'rb') as f:
                    for chunk in iter(lambda: f.read(CHUNK), b''):
                        h.update(chunk)
                if h.hexdigest() != name:
                    problems.append('blob sha256:%s does not match its content '
                                    '(sha256:%s)' % (name, h.hexdigest()))
        return problems


class BlobWriter(object):
    """A blob being ingested: hashed as it is written to a temporary file
    under ``ingest``; ``commit`` syncs it, checks it and renames it into
    place."""

    def __init__(self, store, max_size=0, guard=None, limit_hint=''):
        self.store = store
        self.max_size = max_size
        self.guard = guard
        self.limit_hint = limit_hint
        self.h = hashlib.sha256()
        self.size = 0
        self.tmp = None
        try:
            fd, self.tmp = _mkstemp(store.ingest_dir)
            self.out = os.fdopen(fd, 'wb')
            if guard is not None:
                guard.claim(0, 1)
        except BaseException as e:
            self._fail(e)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()

    def _fail(self, e):
        """Remove the temporary file; raise ``e`` (a full disk as
        InsufficientStorage)."""
        self.abort()
        raise space_error(e, 'a blob', self.limit_hint) or e

    def write(self, chunk):
        try:
            self.size += len(chunk)
            if self.max_size and self.size > self.max_size:
                raise errors.InvalidArgument(
                    'content is larger than the limit of %d bytes%s'
                    % (self.max_size, self.limit_hint))
            if self.guard is not None:
                self.guard.claim(len(chunk))
            self.h.update(chunk)
            self.out.write(chunk)
        except BaseException as e:
            self._fail(e)
        return len(chunk)

    def flush(self):
        pass

    def commit(self, expected_digest=None, lease=None):
        """The blob under its digest; an ``Ingested``.  ``lease`` holds it
        from before it is looked for (see ContentStore.ingest)."""
        store = self.store
        created = False
        try:
            self.out.flush()
            os.fsync(self.out.fileno())
            self.out.close()
            digest = 'sha256:' + self.h.hexdigest()
            if expected_digest is not None and digest != expected_digest:
                raise errors.ContentError(
                    'digest mismatch: expected %s, got %s'
                    % (expected_digest, digest))
            final = store.path(digest)
            with store._lease_lock:
                if lease is not None:
                    lease._add_locked(digest)
                if os.path.exists(final):
                    os.unlink(self.tmp)
                else:
                    os.chmod(self.tmp, 0o644)
                    os.rename(self.tmp, final)
                    created = True
                self.tmp = None
            if created:
                util.fsync_dir(store.blob_dir)
        except BaseException as e:
            self._fail(e)
        return Ingested(digest, self.size, created)

    def abort(self):
        """Drop what was written (nothing once committed)."""
        if self.tmp is None:
            return
        try:
            self.out.close()
        except (OSError, AttributeError):
            pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
        self.tmp = None


def _mkstemp(directory):
    return tempfile.mkstemp(dir=directory, prefix='ingest-')
