"""Docker reference parsing and normalisation (engine.reference)."""

import unittest

import ddt

from engine import errors
from engine import reference


@ddt.ddt
class ParseTest(unittest.TestCase):

    @ddt.unpack
    @ddt.data(
        ('busybox', 'docker.io/library/busybox:latest', 'busybox:latest'),
        ('busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'),
        ('library/busybox', 'docker.io/library/busybox:latest',
         'busybox:latest'),
        ('docker.io/busybox', 'docker.io/library/busybox:latest',
         'busybox:latest'),
        ('index.docker.io/library/busybox:x',
         'docker.io/library/busybox:x', 'busybox:x'),
        ('user/app', 'docker.io/user/app:latest', 'user/app:latest'),
        ('localhost/app', 'localhost/app:latest', 'localhost/app:latest'),
        ('localhost:5000/a/b:tag', 'localhost:5000/a/b:tag',
         'localhost:5000/a/b:tag'),
        ('quay.io/org/img:v1.0-rc_1', 'quay.io/org/img:v1.0-rc_1',
         'quay.io/org/img:v1.0-rc_1'),
        ('Registry.Example/app', 'Registry.Example/app:latest',
         'Registry.Example/app:latest'),
        ('a__b-c/e---f.g', 'docker.io/a__b-c/e---f.g:latest',
         'a__b-c/e---f.g:latest'),
        ('[::1]:5000/app:t', '[::1]:5000/app:t', '[::1]:5000/app:t'),
    )
    def test_normalise(self, text, full, familiar):
        ref = reference.parse(text, default_tag=True)
        self.assertEqual(full, str(ref))
        self.assertEqual(familiar, ref.familiar())
        self.assertEqual(full, reference.normalize(text))

    def test_digest_forms(self):
        d = 'sha256:' + 'a' * 64
        ref = reference.parse('busybox@' + d, default_tag=True)
        self.assertIsNone(ref.tag)
        self.assertEqual(d, ref.digest)
        self.assertEqual('busybox@' + d, ref.familiar())
        ref = reference.parse('localhost:5000/x:tag@' + d)
        self.assertEqual(('tag', d), (ref.tag, ref.digest))
        self.assertEqual('localhost:5000/x', ref.familiar_name())
        self.assertEqual('localhost:5000/x:tag@' + d, str(ref))

    def test_no_default_tag(self):
        ref = reference.parse('busybox')
        self.assertIsNone(ref.tag)
        self.assertEqual('docker.io/library/busybox', str(ref))
        self.assertEqual('busybox', ref.familiar_name())
        self.assertEqual('docker.io/library/busybox', ref.name)

    def test_nested_hub_path_keeps_library(self):
        # library/a/b is not an official image: nothing to shorten beyond
        # the domain.
        ref = reference.parse('library/a/b')
        self.assertEqual('library/a/b', ref.familiar_name())

    @ddt.unpack
    @ddt.data(
        ('Busybox', 'repository name must be lowercase'),
        ('docker.io/User/app', 'repository name must be lowercase'),
        ('busybox:bad/tag', 'invalid reference format'),
        ('busybox:' + 'a' * 129, 'invalid reference format'),
        ('busybox:-tag', 'invalid reference format'),
        ('busybox@sha256:abc', 'invalid reference format'),
        ('busybox@sha256:' + 'g' * 64, 'invalid reference format'),
        ('busybox@sha256:' + 'a' * 63 + 'A', 'invalid checksum digest'),
        ('busybox@sha256:' + 'a' * 65, 'invalid checksum digest length'),
        ('a' * 64, 'cannot specify 64-byte hexadecimal strings'),
        ('', 'at least one component'),
        ('/busybox', 'invalid reference format'),
        ('busybox/', 'invalid reference format'),
        ('bu sy', 'invalid reference format'),
        ('a' * 256, 'must not be more than 255 characters'),
    )
    def test_invalid(self, text, message):
        with self.assertRaises(errors.InvalidArgument) as cm:
            reference.parse(text)
        self.assertIn(message, str(cm.exception))
        self.assertEqual(400, cm.exception.status)

    def test_uppercase_message_is_dockers(self):
        with self.assertRaises(errors.InvalidArgument) as cm:
            reference.parse('UPPER')
        self.assertEqual('invalid reference format: repository name must be '
                         'lowercase', str(cm.exception))

    def test_tag_128_is_fine(self):
        self.assertEqual('a' * 128, reference.parse('b:' + 'a' * 128).tag)

    @ddt.data('latest', 'v1.0', '_x', 'A-b.C_d', 'a' * 128)
    def test_valid_tags(self, tag):
        self.assertEqual(tag, reference.validate_tag(tag))

    @ddt.data('', '.x', '-x', 'a/b', 'a:b', 'a' * 129, None)
    def test_invalid_tags(self, tag):
        self.assertRaises(errors.InvalidArgument, reference.validate_tag, tag)

    def test_parse_repository_refuses_tags(self):
        self.assertEqual('docker.io/library/x',
                         str(reference.parse_repository('x')))
        self.assertRaises(errors.InvalidArgument,
                          reference.parse_repository, 'x:y')


@ddt.ddt
class IdTest(unittest.TestCase):
    ID = 'sha256:' + '0123456789abcdef' * 4

    def test_full_id(self):
        self.assertTrue(reference.is_full_id(self.ID))
        self.assertTrue(reference.is_full_id(self.ID[7:]))
        self.assertFalse(reference.is_full_id(self.ID[:20]))
        self.assertEqual(self.ID, reference.full_id(self.ID[7:]))
        self.assertEqual(self.ID, reference.full_id(self.ID))
        self.assertRaises(errors.InvalidArgument, reference.full_id, 'abc')

    @ddt.data('0', '0123', '0123456789ab', 'sha256:0123', 'sha256:')
    def test_prefix(self, text):
        if text == 'sha256:':
            self.assertFalse(reference.is_id_prefix(text))
            return
        self.assertTrue(reference.is_id_prefix(text))
        self.assertTrue(reference.matches_id_prefix(self.ID, text))

    @ddt.data('busybox', 'abc:1', 'ABC', 'sha256:xyz', '')
    def test_names_are_not_ids(self, text):
        self.assertFalse(reference.is_id_prefix(text))

    def test_prefix_mismatch(self):
        self.assertFalse(reference.matches_id_prefix(self.ID, '1'))
        self.assertFalse(reference.matches_id_prefix(self.ID, 'sha256:1'))

    def test_short_id(self):
        self.assertEqual('0123456789ab', reference.short_id(self.ID))
        self.assertEqual('0123456789ab', reference.short_id(self.ID[7:]))
