"""How a local layer is compressed for a push: pigz where installed (all
cores, same bytes whatever the thread count), zlib otherwise; a failed
compression never becomes a blob."""

import gzip
import os
import shutil
import tempfile
import unittest

from engine import content as content_mod
from engine import errors
from engine.registry import push


def _read_all(reader):
    out = b''
    while True:
        data = reader.read()
        if not data:
            return out
        out += data


class CompressTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.data = os.urandom(300000) + b'x' * 300000
        self.path = os.path.join(self.tmp, 'layer.tar')
        with open(self.path, 'wb') as f:
            f.write(self.data)

    @unittest.skipUnless(shutil.which('pigz'), 'needs pigz')
    def test_pigz_output_is_a_gzip_of_the_layer_without_name_or_time(self):
        with open(self.path, 'rb') as f:
            reader = push._compressor(f)
            self.assertIsInstance(reader, push._PigzReader)
            try:
                out = _read_all(reader)
            finally:
                reader.close()
        self.assertEqual(self.data, gzip.decompress(out))
        self.assertEqual(b'\x00\x00\x00\x00', out[4:8])  # mtime 0
        self.assertFalse(out[3] & 0x08)                   # no file name

    def test_zlib_output_is_a_gzip_of_the_layer(self):
        with open(self.path, 'rb') as f:
            out = _read_all(push._GzipReader(f))
        self.assertEqual(self.data, gzip.decompress(out))
        self.assertEqual(b'\x00\x00\x00\x00', out[4:8])

    def test_a_failed_compression_is_an_error_and_no_blob(self):
        store = content_mod.ContentStore(os.path.join(self.tmp, 'content'))
        with open(self.path, 'rb') as f:
            reader = push._PigzReader(f, shutil.which('false') or '/bin/false')
            try:
                with self.assertRaisesRegex(errors.EngineError, 'pigz exited with status 1'):
                    store.ingest(reader)
            finally:
                reader.close()
        blobs = os.path.join(self.tmp, 'content', 'blobs', 'sha256')
        self.assertEqual([], os.listdir(blobs) if os.path.isdir(blobs) else [])
        self.assertEqual([], [n for n in os.listdir(store.ingest_dir)])

    def test_without_pigz_zlib_is_used(self):
        saved = os.environ.get('PATH')
        os.environ['PATH'] = self.tmp
        try:
            with open(self.path, 'rb') as f:
                self.assertIsInstance(push._compressor(f), push._GzipReader)
        finally:
            os.environ['PATH'] = saved


if __name__ == '__main__':
    unittest.main()
