"""The content-addressed blob store (engine.content)."""

import hashlib
import io
import os
import shutil
import tempfile
import unittest

from engine import content
from engine import errors


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class FailingReader(object):
    """Yields some bytes, then fails like a dropped connection."""

    def __init__(self, data):
        self.data = io.BytesIO(data)

    def read(self, n=-1):
        chunk = self.data.read(min(n, 1000) if n and n > 0 else 1000)
        if not chunk:
            raise OSError('connection reset')
        return chunk


class ContentStoreTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        self.cs = content.ContentStore(self.root)

    def ingest_dir_entries(self):
        return os.listdir(os.path.join(self.root, 'ingest'))

    def test_ingest_and_read(self):
        data = os.urandom(3 * content.CHUNK + 17)
        d, size = self.cs.ingest(io.BytesIO(data))
        self.assertEqual((digest_of(data), len(data)), (d, size))
        self.assertTrue(self.cs.has(d))
        self.assertEqual(data, self.cs.read(d))
        self.assertEqual(len(data), self.cs.size(d))
        self.assertEqual(os.path.join(self.root, 'blobs', 'sha256', d[7:]),
                         self.cs.path(d))
        with self.cs.open(d) as f:
            self.assertEqual(data[:10], f.read(10))
        self.assertEqual([d], list(self.cs.list()))
        self.assertEqual([], self.ingest_dir_entries())

    def test_expected_digest_mismatch_leaves_nothing(self):
        wrong = digest_of(b'other')
        with self.assertRaises(errors.ContentError) as cm:
            self.cs.ingest(io.BytesIO(b'data'), wrong)
        self.assertIn(wrong, str(cm.exception))
        self.assertIn(digest_of(b'data'), str(cm.exception))
        self.assertFalse(self.cs.has(digest_of(b'data')))
        self.assertFalse(self.cs.has(wrong))
        self.assertEqual([], self.ingest_dir_entries())
        self.assertEqual([], list(self.cs.list()))

    def test_expected_digest_match(self):
        d, _ = self.cs.ingest(io.BytesIO(b'abc'), digest_of(b'abc'))
        self.assertEqual(digest_of(b'abc'), d)

    def test_max_size(self):
        with self.assertRaises(errors.InvalidArgument):
            self.cs.ingest(io.BytesIO(b'x' * 101), max_size=100)
        self.assertEqual([], self.ingest_dir_entries())
        self.assertEqual([], list(self.cs.list()))
        self.cs.ingest(io.BytesIO(b'x' * 100), max_size=100)

    def test_broken_stream_leaves_nothing(self):
        self.assertRaises(OSError, self.cs.ingest, FailingReader(b'y' * 5000))
        self.assertEqual([], self.ingest_dir_entries())
        self.assertEqual([], list(self.cs.list()))

    def test_write_dedupes(self):
        d1 = self.cs.write(b'hello')
        d2 = self.cs.write(b'hello', expected=digest_of(b'hello'))
        self.assertEqual(d1, d2)
        self.assertEqual([d1], list(self.cs.list()))
        self.assertRaises(errors.ContentError, self.cs.write, b'hello',
                          digest_of(b'bye'))
        d3, _ = self.cs.ingest(io.BytesIO(b'hello'))
        self.assertEqual(d1, d3)

    def test_ingest_tells_whether_the_blob_is_new(self):
        first = self.cs.ingest(io.BytesIO(b'same'))
        again = self.cs.ingest(io.BytesIO(b'same'))
        self.assertTrue(first.created)
        self.assertFalse(again.created)
        self.assertEqual(tuple(first), tuple(again))
        self.assertEqual(digest_of(b'same'), again.digest)

    def test_leased_blob_is_not_deleted(self):
        with self.cs.lease() as lease:
            d, _ = self.cs.ingest(io.BytesIO(b'held'), lease=lease)
            self.assertEqual({d}, self.cs.leased())
            self.assertFalse(self.cs.delete(d))
            self.assertTrue(self.cs.has(d))
        self.assertEqual(set(), self.cs.leased())
        self.assertTrue(self.cs.delete(d))

    def test_space_guard_refuses_with_507_and_leaves_nothing(self):
        st = os.statvfs(self.root)
        guard = content.SpaceGuard(self.root, 'a test blob',
                                   min_free=st.f_blocks * st.f_frsize,
                                   hint=' (the reserve option)')
        with self.assertRaises(content.InsufficientStorage) as cm:
            self.cs.ingest(io.BytesIO(b'x' * 100), guard=guard)
        self.assertEqual(507, cm.exception.status)
        self.assertIn('not enough space', str(cm.exception))
        self.assertIn('the reserve option', str(cm.exception))
        self.assertEqual([], self.ingest_dir_entries())
        self.assertEqual([], list(self.cs.list()))

    def test_bad_digests_never_become_paths(self):
        for bad in ('sha256:../../etc/passwd', 'sha256:' + 'A' * 64,
                    'md5:abc', '', None, 'sha256:' + 'a' * 63):
            self.assertRaises(errors.InvalidArgument, self.cs.path, bad)
            self.assertFalse(self.cs.has(bad))
        self.assertRaises(errors.InvalidArgument, self.cs.ingest,
                          io.BytesIO(b''), 'sha512:' + 'a' * 128)

    def test_missing(self):
        d = digest_of(b'nothing')
        self.assertRaises(errors.NotFound, self.cs.open, d)
        self.assertRaises(errors.NotFound, self.cs.size, d)
        self.assertFalse(self.cs.delete(d))

    def test_delete(self):
        d = self.cs.write(b'x')
        self.assertTrue(self.cs.delete(d))
        self.assertFalse(self.cs.has(d))

    def test_read_limit(self):
        d = self.cs.write(b'x' * 10)
        self.assertEqual(b'x' * 10, self.cs.read(d, max_size=10))
        self.assertRaises(errors.InvalidArgument, self.cs.read, d, 9)

    def test_cleanup_removes_stale_ingests(self):
        stale = os.path.join(self.root, 'ingest', 'ingest-stale')
        with open(stale, 'wb') as f:
            f.write(b'partial')
        os.utime(stale, (1, 1))
        fresh = os.path.join(self.root, 'ingest', 'ingest-fresh')
        open(fresh, 'wb').close()
        self.assertEqual(1, self.cs.cleanup(max_age=3600))
        self.assertEqual(['ingest-fresh'], self.ingest_dir_entries())
        self.assertEqual(1, self.cs.cleanup())
        self.assertEqual([], self.ingest_dir_entries())

    def test_check(self):
        good = self.cs.write(b'good')
        bad = self.cs.write(b'bad')
        self.assertEqual([], self.cs.check())
        self.assertEqual([], self.cs.check(full=True))
        with open(self.cs.path(bad), 'wb') as f:
            f.write(b'tampered')
        # Fast mode does not rehash...
        self.assertEqual([], self.cs.check())
        # ...but sees sizes and presence of what the caller relies on.
        missing = digest_of(b'missing')
        problems = self.cs.check({good: 4, bad: 3, missing: None})
        self.assertEqual(2, len(problems), problems)
        self.assertIn('has size 8, expected 3', problems[0])
        self.assertIn(missing, problems[1])
        problems = self.cs.check(full=True)
        self.assertEqual(1, len(problems))
        self.assertIn(bad, problems[0])
        self.assertIn('does not match', problems[0])
        open(os.path.join(self.root, 'blobs', 'sha256', 'junk'), 'w').close()
        self.assertIn('unexpected file', self.cs.check()[0])
