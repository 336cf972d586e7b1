"""engine.chroot: resolving paths inside a hostile root as a chroot would."""

import os
import stat
import tempfile
import unittest

import ddt

from engine import chroot


@ddt.ddt
class ResolveTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.base = self._tmp.name
        # The "host" beside the root: nothing may ever resolve to it.
        os.mkdir(os.path.join(self.base, 'host'))
        with open(os.path.join(self.base, 'host', 'secret'), 'w') as f:
            f.write('host')
        self.root = os.path.join(self.base, 'root')
        for d in ('etc', 'usr/lib', 'data'):
            os.makedirs(os.path.join(self.root, d))
        self._file('etc/passwd')
        self._file('usr/lib/libc')
        links = {
            'abs': '/etc',                       # absolute: from the root
            'rel': 'usr/lib',
            'up': '../../../../host',            # climbs: stops at the root
            'upfile': '../../../../etc/passwd',
            'hostabs': self.base + '/host',      # a host path, not in root
            'usr/lib/back': '../../etc',
            'loop1': 'loop2', 'loop2': 'loop1',
            'dangling': '/made/here',
            'file_link': 'etc/passwd',
        }
        for name, target in links.items():
            os.symlink(target, os.path.join(self.root, name))

    def _file(self, rel, data='x'):
        with open(os.path.join(self.root, rel), 'w') as f:
            f.write(data)

    def _in(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    @ddt.data(
        ('/etc/passwd', 'etc/passwd'),
        ('etc/passwd', 'etc/passwd'),
        ('//etc//./passwd', 'etc/passwd'),
        ('/abs/passwd', 'etc/passwd'),
        ('rel/libc', 'usr/lib/libc'),
        ('../../../etc/passwd', 'etc/passwd'),
        ('/etc/../../../etc/passwd', 'etc/passwd'),
        ('up', 'host'),                 # inside the root, not the host's
        ('upfile', 'etc/passwd'),
        ('hostabs/secret', None),
        ('usr/lib/back/passwd', 'etc/passwd'),
        ('/', ''),
        ('..', ''),
    )
    @ddt.unpack
    def test_stays_inside(self, path, want):
        got = chroot.resolve(self.root, path)
        if want is None:
            # An absolute host path is taken as a path inside the root.
            want = (self.base + '/host/secret').lstrip('/')
        self.assertEqual(got, self._in(want))
        self.assertTrue(os.path.realpath(got).startswith(self.root))

    def test_follow_last(self):
        self.assertEqual(chroot.resolve(self.root, 'abs', follow_last=False),
                         self._in('abs'))
        self.assertEqual(chroot.resolve(self.root, 'abs'), self._in('etc'))
        # Links on the way are always followed.
        self.assertEqual(
            chroot.resolve(self.root, 'abs/passwd', follow_last=False),
            self._in('etc/passwd'))

    def test_missing_is_named(self):
        self.assertEqual(chroot.resolve(self.root, 'nope/x/../y'),
                         self._in('nope/y'))
        self.assertEqual(chroot.resolve(self.root, 'dangling'),
                         self._in('made/here'))
        self.assertFalse(os.path.exists(self._in('made')))

    @ddt.data('nope', 'nope/x', 'dangling', 'etc/passwd/x', 'file_link/x')
    def test_must_exist(self, path):
        with self.assertRaises(chroot.NotFound) as cm:
            chroot.resolve(self.root, path, must_exist=True)
        self.assertEqual(cm.exception.path, path)
        self.assertIsNone(chroot.exists(self.root, path))

    def test_exists(self):
        self.assertEqual(chroot.exists(self.root, '/abs/passwd'),
                         self._in('etc/passwd'))
        self.assertIsNone(chroot.exists(self.root, 'loop1'))

    @ddt.data('loop1', 'loop1/x', 'data/../loop2')
    def test_too_many_links(self, path):
        for kw in ({}, {'create_dirs': True}, {'must_exist': True}):
            with self.assertRaises(chroot.TooManyLinks):
                chroot.resolve(self.root, path, **kw)

    def test_forty_links_is_fine_forty_one_is_not(self):
        os.mkdir(self._in('chain'))
        for i in range(41):
            os.symlink('l%d' % (i + 1), self._in('chain/l%d' % i))
        os.mkdir(self._in('chain/l41'))
        self.assertEqual(chroot.resolve(self.root, 'chain/l1'),
                         self._in('chain/l41'))
        with self.assertRaises(chroot.TooManyLinks):
            chroot.resolve(self.root, 'chain/l0')

    def test_create_dirs(self):
        old = os.umask(0o077)
        try:
            got = chroot.resolve(self.root, '/new/deep/dir', create_dirs=True)
        finally:
            os.umask(old)
        self.assertEqual(got, self._in('new/deep/dir'))
        for rel in ('new', 'new/deep', 'new/deep/dir'):
            st = os.lstat(self._in(rel))
            self.assertTrue(stat.S_ISDIR(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o755)
            self.assertEqual((st.st_uid, st.st_gid), (os.geteuid(), os.getegid()))

    def test_create_dirs_through_links(self):
        got = chroot.resolve(self.root, 'dangling/x', create_dirs=True)
        self.assertEqual(got, self._in('made/here/x'))
        self.assertTrue(os.path.isdir(got))
        got = chroot.resolve(self.root, 'up/y', create_dirs=True)
        self.assertEqual(got, self._in('host/y'))
        self.assertFalse(os.path.exists(os.path.join(self.base, 'host', 'y')))

    @ddt.data(('etc/passwd/x', '/etc/passwd'), ('file_link', '/etc/passwd'),
              ('abs/passwd', '/etc/passwd'))
    @ddt.unpack
    def test_create_dirs_refuses_a_file(self, path, component):
        with self.assertRaises(chroot.NotADirectory) as cm:
            chroot.resolve(self.root, path, create_dirs=True)
        self.assertEqual(cm.exception.component, component)
        self.assertIn(component, str(cm.exception))


if __name__ == '__main__':
    unittest.main()
