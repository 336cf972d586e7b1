"""How a local layer is compressed for a push: pigz where installed (all
cores, same bytes whatever the thread count), zlib otherwise; a failed
compression never becomes a blob."""

import gzip
import io
import os
import shutil
import tarfile
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


class IncompressibleTest(unittest.TestCase):
    """Random or already compressed layers are wrapped in gzip's stored
    blocks: valid gzip, the same bytes every time, no deflate work."""

    def write(self, data):
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        return path

    def test_random_layer_is_stored_not_deflated(self):
        data = os.urandom(2 * 1024 * 1024)
        path = self.write(data)
        outs = []
        for _ in range(2):
            with open(path, 'rb') as f:
                self.assertTrue(push.incompressible(f))
                self.assertEqual(0, f.tell())
                reader = push._compressor(f)
                self.assertIsInstance(reader, push._GzipReader)
                outs.append(_read_all(reader))
        self.assertEqual(outs[0], outs[1])
        self.assertEqual(data, gzip.decompress(outs[0]))
        # Stored blocks: a few bytes of framing per 64 KiB, no more.
        self.assertLess(len(outs[0]), len(data) * 1.001 + 64)

    def test_tar_of_a_random_file_is_stored(self):
        # A layer as the engine writes it: a tar header first, zero padding
        # to a 10 KiB record at the end; neither may decide for the data.
        buf = io.BytesIO()
        data = os.urandom(5 * 1024 * 1024)
        with tarfile.open(fileobj=buf, mode='w') as tar:
            ti = tarfile.TarInfo('snap.bin')
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        path = self.write(buf.getvalue())
        with open(path, 'rb') as f:
            self.assertTrue(push.incompressible(f))
            self.assertIsInstance(push._compressor(f), push._GzipReader)

    def test_any_compressible_sample_keeps_deflate(self):
        for data in (os.urandom(600000) + b'x' * 200000,
                     b'x' * 200000 + os.urandom(600000),
                     b'small' * 100):
            path = self.write(data)
            with open(path, 'rb') as f:
                self.assertFalse(push.incompressible(f))
                self.assertEqual(0, f.tell())
