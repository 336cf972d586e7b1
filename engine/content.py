"""Content-addressed blob store.

Blobs live at ``<root>/blobs/sha256/<hex>``.  Ingestion streams into a
temporary file under ``<root>/ingest``, hashing as it goes, fsyncs it,
verifies the digest and only then renames it into place: a blob is never
visible under its digest unless its bytes match it.
"""

import hashlib
import io
import os
import re
import shutil
import tempfile
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


class ContentStore(object):

    def __init__(self, root):
        self.root = root
        self.blob_dir = os.path.join(root, 'blobs', 'sha256')
        self.ingest_dir = os.path.join(root, 'ingest')
        util.makedirs(self.blob_dir)
        util.makedirs(self.ingest_dir)

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
        """Remove a blob; a missing blob is not an error."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    # -- writing ---------------------------------------------------------

    def ingest(self, fileobj, expected_digest=None, max_size=0):
        """Stream ``fileobj`` into the store; return ``(digest, size)``.

        ``expected_digest`` is verified before the blob becomes visible (a
        mismatch raises ContentError naming both digests).  ``max_size``
        (0 = unlimited) bounds the blob; exceeding it raises InvalidArgument.
        """
        if expected_digest is not None:
            validate_digest(expected_digest)
        fd, tmp = _mkstemp(self.ingest_dir)
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, 'wb') as out:
                while True:
                    chunk = fileobj.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if max_size and size > max_size:
                        raise errors.InvalidArgument(
                            'content is larger than the limit of %d bytes'
                            % max_size)
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = 'sha256:' + h.hexdigest()
            if expected_digest is not None and digest != expected_digest:
                raise errors.ContentError(
                    'digest mismatch: expected %s, got %s'
                    % (expected_digest, digest))
            final = self.path(digest)
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o644)
                os.rename(tmp, final)
                util.fsync_dir(self.blob_dir)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return digest, size

    def write(self, data, expected=None):
        """Store bytes; return their digest."""
        digest = sha256_digest(data)
        if expected is not None and validate_digest(expected) != digest:
            raise errors.ContentError('digest mismatch: expected %s, got %s'
                                      % (expected, digest))
        if self.has(digest):
            return digest
        got, _ = self.ingest(io.BytesIO(data), digest)
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


def _mkstemp(directory):
    return tempfile.mkstemp(dir=directory, prefix='ingest-')
