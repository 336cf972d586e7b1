"""The v2 metadata cache: kept across restarts, and never an obstacle to
starting when a crash left it cut short."""

import os
import shutil
import tempfile
import unittest

from engine.registry import metadata

DIFF = 'sha256:' + 'a' * 64
BLOB = 'sha256:' + 'b' * 64


class V2MetadataTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)

    def test_survives_a_restart(self):
        md = metadata.V2Metadata(self.root)
        md.add(DIFF, BLOB, 10, 'application/x', repo='reg:5000/a')
        md.add(DIFF, BLOB, 10, 'application/x', repo='reg:5000/b')
        again = metadata.V2Metadata(self.root)
        self.assertEqual([{'digest': BLOB, 'size': 10, 'media_type': 'application/x',
                           'repos': ['reg:5000/a', 'reg:5000/b']}], again.blobs(DIFF))
        # Only the file itself: no temporary files left behind.
        self.assertEqual(['v2metadata.json'], os.listdir(self.root))

    def test_cut_short_file_starts_empty(self):
        for junk in (b'', b'{"layers": {"sha256:', b'[1, 2]', b'{"layers": 5}'):
            with open(os.path.join(self.root, 'v2metadata.json'), 'wb') as f:
                f.write(junk)
            md = metadata.V2Metadata(self.root)
            self.assertEqual([], md.blobs(DIFF))
            md.add(DIFF, BLOB, 1, 'application/x')
            self.assertEqual(1, len(metadata.V2Metadata(self.root).blobs(DIFF)))


if __name__ == '__main__':
    unittest.main()
