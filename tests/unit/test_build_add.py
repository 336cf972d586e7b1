"""engine.build.add (archives, URLs, --chown), engine.build.copystep (flags,
--from wiring) and the executor's copy rules (owners, modes)."""

import bz2
import contextlib
import functools
import gzip
import http.server
import io
import lzma
import os
import socket
import stat
import tarfile
import tempfile
import threading
import unittest
from unittest import mock

import ddt

from engine import archive
from engine import errors
from engine.build import add
from engine.build import context as context_mod
from engine.build import copystep
from engine.build import dockerfile as df
from engine.build import executor


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as tf:
        for name, kind, data, attrs in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1600000000
            for k, v in attrs.items():
                setattr(info, k, v)
            if kind == 'f':
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                info.type = {'d': tarfile.DIRTYPE, 'l': tarfile.SYMTYPE,
                             'h': tarfile.LNKTYPE}[kind]
                info.linkname = data or ''
                tf.addfile(info)
    return buf.getvalue()


TAR = tar_of([('dir', 'd', None, {'mode': 0o700, 'uid': 9, 'gid': 9}),
              ('dir/f', 'f', b'data', {'mode': 0o640, 'uid': 5, 'gid': 6})])


class TmpMixin(object):
    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name

    def write(self, rel, data, mode=0o644):
        path = os.path.join(self.tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(path, mode)
        return path


@ddt.ddt
class IsArchiveTest(TmpMixin, unittest.TestCase):
    @ddt.data(
        ('plain', TAR, True),
        ('gzip', gzip.compress(TAR), True),
        ('bzip2', bz2.compress(TAR), True),
        ('xz', lzma.compress(TAR), True),
        ('v7 header', tar_of([('f', 'f', b'x', {})])[:512] + b'\0' * 1024,
         True),
        # Docker 20.10 does not decompress zstd: copied as a file.
        ('zstd', b'\x28\xb5\x2f\xfd' + b'\0' * 600, False),
        ('gzip of text', gzip.compress(b'hello'), False),
        ('text', b'hello world\n' * 100, False),
        ('empty', b'', False),
        ('short', TAR[:100], False),
        ('zeros', b'\0' * 2048, False),
        ('bad checksum', TAR[:148] + b'9999999\0' + TAR[156:], False),
        ('corrupt gzip', b'\x1f\x8b' + b'\xff' * 600, False),
        ('corrupt xz', b'\xfd7zXZ\x00' + b'\xff' * 600, False),
    )
    @ddt.unpack
    def test_content_decides(self, name, data, want):
        self.assertEqual(add.is_archive(self.write('x.tar', data)), want, name)

    def test_not_a_regular_file(self):
        os.mkfifo(os.path.join(self.tmp, 'fifo'))
        self.assertFalse(add.is_archive(os.path.join(self.tmp, 'fifo')))
        self.assertFalse(add.is_archive(self.tmp))
        self.assertFalse(add.is_archive(os.path.join(self.tmp, 'missing')))
        os.symlink(self.write('t.tar', TAR), os.path.join(self.tmp, 'lnk'))
        self.assertFalse(add.is_archive(os.path.join(self.tmp, 'lnk')))


class ExtractTest(TmpMixin, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.dest = os.path.join(self.tmp, 'root', 'out')
        os.makedirs(self.dest)

    def extract(self, data, **kw):
        add.extract(self.write('a.tgz', gzip.compress(data)), self.dest, **kw)

    def test_owners_modes_kept(self):
        self.extract(TAR)
        st = os.lstat(os.path.join(self.dest, 'dir', 'f'))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (5, 6, 0o640))
        st = os.lstat(os.path.join(self.dest, 'dir'))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (9, 0o700))
        self.assertEqual(int(st.st_mtime), 1600000000)

    def test_escape_refused(self):
        with self.assertRaises(df.BuildError) as cm:
            self.extract(tar_of([('../../evil', 'f', b'x', {})]))
        self.assertIn('archive entry', str(cm.exception))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'evil')))

    def test_links_stay_inside(self):
        self.extract(tar_of([('lnk', 'l', '/', {}),
                             ('lnk/pwned', 'f', b'x', {}),
                             ('up', 'l', '../../..', {}),
                             ('up/pwned2', 'f', b'x', {})]))
        self.assertEqual(sorted(os.listdir(self.dest)),
                         ['lnk', 'pwned', 'pwned2', 'up'])
        self.assertEqual(sorted(os.listdir(os.path.join(self.tmp, 'root'))),
                         ['out'])

    def test_hardlink_out_refused(self):
        with self.assertRaises(df.BuildError):
            self.extract(tar_of([('h', 'h', '../../etc/passwd', {})]))

    def test_size_limit(self):
        with self.assertRaises(df.BuildError) as cm:
            self.extract(tar_of([('big', 'f', b'\0' * 5000, {})]),
                         max_size=4096)
        self.assertIn('larger than the limit of 4096', str(cm.exception))

    def test_entry_limit(self):
        limits = archive.LayerLimits(max_entries=2)
        with self.assertRaises(df.BuildError) as cm:
            self.extract(tar_of([('f%d' % i, 'f', b'', {}) for i in range(5)]),
                         layer_limits=limits)
        self.assertIn('more than 2 entries', str(cm.exception))


@ddt.ddt
class UrlFilenameTest(unittest.TestCase):
    @ddt.data(('http://h/a/b.txt', 'b.txt'), ('https://h:8080/x?y=1#z', 'x'),
              ('http://h/a%20b', 'a b'), ('http://h/dir/file.tar.gz', 'file.tar.gz'))
    @ddt.unpack
    def test_name(self, url, want):
        self.assertEqual(add.url_filename(url), want)

    @ddt.data('http://h/', 'http://h', 'http://h/dir/', 'http://h/..',
              'http:///x', 'http://[::1/x', 'http://h:99999/x')
    def test_refused(self, url):
        with self.assertRaises(df.BuildError) as cm:
            add.url_filename(url)
        self.assertTrue(str(cm.exception).startswith('ADD failed: '))
        self.assertIn(url, str(cm.exception))


@ddt.ddt
class LastModifiedTest(unittest.TestCase):
    @ddt.data(('Wed, 21 Oct 2015 07:28:00 GMT', 1445412480), (None, 0),
              ('', 0), ('garbage', 0), ('Mon, 01 Jan 1900 00:00:00 GMT', 0))
    @ddt.unpack
    def test_parse(self, value, want):
        self.assertEqual(add._last_modified(value), want)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == '/loop':
            self.send_response(302)
            self.send_header('Location', '/loop')
            self.end_headers()
            return
        if self.path == '/moved':
            self.send_response(301)
            self.send_header('Location', '/f.txt')
            self.end_headers()
            return
        if self.path == '/nodate':
            body = b'no date'
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


class FetchTest(TmpMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.www = tempfile.mkdtemp()
        with open(os.path.join(cls.www, 'f.txt'), 'w') as f:
            f.write('content\n')
        os.utime(os.path.join(cls.www, 'f.txt'), (1500000000, 1500000000))
        with open(os.path.join(cls.www, 'big'), 'wb') as f:
            f.write(b'\0' * 10000)
        handler = functools.partial(_Handler, directory=cls.www)
        cls.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        cls.thread = threading.Thread(target=cls.server.serve_forever,
                                      daemon=True)
        cls.thread.start()
        cls.url = 'http://127.0.0.1:%d' % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        context_mod.remove_tree(cls.www)

    def test_success(self):
        name, path = add.fetch(self.url + '/f.txt?q=1', self.tmp)
        self.assertEqual(name, 'f.txt')
        self.assertTrue(path.startswith(self.tmp + '/'))
        with open(path) as f:
            self.assertEqual(f.read(), 'content\n')
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(int(st.st_mtime), 1500000000)

    def test_without_last_modified(self):
        _, path = add.fetch(self.url + '/nodate', self.tmp)
        self.assertEqual(int(os.stat(path).st_mtime), 0)

    def test_redirect_followed(self):
        name, path = add.fetch(self.url + '/moved', self.tmp)
        self.assertEqual(name, 'moved')     # the URL's name, as Docker
        with open(path) as f:
            self.assertEqual(f.read(), 'content\n')

    def test_redirect_loop(self):
        with self.assertRaises(df.BuildError) as cm:
            add.fetch(self.url + '/loop', self.tmp)
        self.assertIn('stopped after 10 redirects', str(cm.exception))

    def test_404(self):
        with self.assertRaises(df.BuildError) as cm:
            add.fetch(self.url + '/none', self.tmp)
        self.assertTrue(str(cm.exception).startswith(
            'ADD failed: failed to GET %s/none with status 404 File not '
            'found: <!DOCTYPE HTML>' % self.url), str(cm.exception))

    def test_refused(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        url = 'http://127.0.0.1:%d/x' % port
        with self.assertRaises(df.BuildError) as cm:
            add.fetch(url, self.tmp)
        self.assertEqual(str(cm.exception),
                         'ADD failed: Get "%s": dial tcp 127.0.0.1:%d: '
                         'connect: connection refused' % (url, port))

    def test_size_bound(self):
        with self.assertRaises(df.BuildError) as cm:
            add.fetch(self.url + '/big', self.tmp, max_size=4096, hint=' (h)')
        self.assertIn('larger than the limit of 4096 bytes (h)',
                      str(cm.exception))

    def test_overall_deadline(self):
        with mock.patch.object(add, 'FETCH_DEADLINE', -1):
            with self.assertRaises(df.BuildError) as cm:
                add.fetch(self.url + '/big', self.tmp)
        self.assertIn('timeout', str(cm.exception))

    def test_space_guard_claims(self):
        guard = mock.Mock()
        add.fetch(self.url + '/big', self.tmp, space_guard=guard)
        self.assertEqual(sum(c.args[0] for c in guard.claim.call_args_list),
                         10000)

    def test_timeout_words(self):
        import requests
        self.assertIn('timeout', add._reason(requests.exceptions.ReadTimeout()))


@ddt.ddt
class ChownTest(TmpMixin, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, 'rootfs')
        self.write('rootfs/etc/passwd',
                   'root:x:0:0:root:/root:/bin/sh\n'
                   'daemon:x:1:1::/:/bin/false\n'
                   'app:x:1000:1000::/:/bin/sh\n'
                   'broken:x:notanumber:1::/:/bin/sh\n')
        self.write('rootfs/etc/group', 'root:x:0:\ndaemon:x:1:\n'
                   'staff:x:50:\napp:x:1001:\n')

    @ddt.data(('daemon', (1, 1)), ('app', (1000, 1001)),
              ('daemon:staff', (1, 50)), ('7:staff', (7, 50)),
              ('app:77', (1000, 77)), ('1000', (1000, 1000)),
              ('0:0', (0, 0)), ('+5:6', (5, 6)))
    @ddt.unpack
    def test_resolved(self, value, want):
        self.assertEqual(add.resolve_chown(self.root, value), want)

    @ddt.data(
        ('nobody', "can't find uid for user nobody: no such user: nobody"),
        ('root:nogrp', "can't find gid for group nogrp: no such group: nogrp"),
        ('staff', "can't find uid for user staff: no such user: staff"),
        ('broken:0', "can't find uid for user broken: no such user: broken"),
        ('1:2:3', 'invalid chown string format: 1:2:3'),
        ('-1', "can't find uid for user -1: ids must be in range"),
        ('1:4294967296', "can't find gid for group 4294967296: ids must be"),
    )
    @ddt.unpack
    def test_refused(self, value, words):
        with self.assertRaises(df.BuildError) as cm:
            add.resolve_chown(self.root, value)
        self.assertTrue(str(cm.exception).startswith(
            'unable to convert uid/gid chown string to host mapping: ' + words),
            str(cm.exception))

    def test_files_read_inside_the_root(self):
        """A passwd that is a symlink to the host's never reads the host's."""
        os.unlink(os.path.join(self.root, 'etc', 'passwd'))
        hostile = self.write('host-passwd', 'evil:x:4242:4242::/:/bin/sh\n')
        os.symlink(hostile, os.path.join(self.root, 'etc', 'passwd'))
        with self.assertRaises(df.BuildError):
            add.resolve_chown(self.root, 'evil')
        os.unlink(os.path.join(self.root, 'etc', 'passwd'))
        os.symlink('../../host-passwd',
                   os.path.join(self.root, 'etc', 'passwd'))
        with self.assertRaises(df.BuildError):
            add.resolve_chown(self.root, 'evil')

    def test_no_passwd(self):
        """scratch: names cannot be found, numbers can."""
        empty = os.path.join(self.tmp, 'empty')
        os.mkdir(empty)
        self.assertEqual(add.resolve_chown(empty, '5:6'), (5, 6))
        with self.assertRaises(df.BuildError):
            add.resolve_chown(empty, 'root')


def _ins(text):
    return df.parse('FROM busybox\n' + text)[1]


@ddt.ddt
class FlagsTest(unittest.TestCase):
    @ddt.data(('COPY --chown=a:b --from=s x y', {'chown': 'a:b', 'from': 's'}),
              ('ADD --chown=$U x y', {'chown': '$U'}),
              ('COPY --from= x y', {}),
              ('COPY --chown= x y', {'chown': ''}),
              ('COPY x y', {}))
    @ddt.unpack
    def test_taken(self, line, want):
        self.assertEqual(copystep.parse_flags(_ins(line)), want)

    @ddt.data(('COPY --foo=1 x y', 'dockerfile parse error line 2: Unknown flag: foo'),
              ('ADD --from=s x y', 'dockerfile parse error line 2: Unknown flag: from'),
              ('COPY --chown x y', 'dockerfile parse error line 2: Missing a value '
                                   'on flag: chown'),
              ('COPY --chmod=755 x y', 'the --chmod option requires BuildKit.'),
              ('ADD --chmod=755 x y', 'the --chmod option requires BuildKit.'))
    @ddt.unpack
    def test_refused(self, line, words):
        try:
            ins = _ins(line)
        except df.BuildError as exc:     # the parser may refuse it first
            self.assertIn('chown', str(exc))
            return
        with self.assertRaises(df.BuildError) as cm:
            copystep.parse_flags(ins)
        self.assertTrue(str(cm.exception).startswith(words), str(cm.exception))


class CopyIntoTest(TmpMixin, unittest.TestCase):
    """executor._copy_into: owners, modes, setuid bits, directories made."""

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, 'rootfs')
        os.makedirs(os.path.join(self.root, 'existing'))
        os.chown(os.path.join(self.root, 'existing'), 3, 3)
        src = self.write('src/sub/f', 'f', mode=0o755)
        os.chown(src, 5, 6)
        os.chmod(src, 0o6755)
        os.chown(os.path.join(self.tmp, 'src', 'sub'), 7, 8)
        os.symlink('/etc/passwd', os.path.join(self.tmp, 'src', 'lnk'))
        self.sources = [context_mod.Source('src', os.path.join(self.tmp, 'src'),
                                           True)]

    def owners(self, rel):
        st = os.lstat(os.path.join(self.root, rel))
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    def test_context_copy_is_root_owned(self):
        executor._copy_into(self.root, self.sources, '/a/b/', '/')
        self.assertEqual(self.owners('a'), (0, 0, 0o755))
        self.assertEqual(self.owners('a/b/sub'), (0, 0, 0o755))
        # Docker 20.10 chowns last: the kernel drops setuid/setgid.
        self.assertEqual(self.owners('a/b/sub/f'), (0, 0, 0o755))
        self.assertEqual(os.readlink(os.path.join(self.root, 'a/b/lnk')),
                         '/etc/passwd')

    def test_chown_owns_what_it_makes(self):
        executor._copy_into(self.root, self.sources, '/a/b', '/', owner=(4, 4))
        self.assertEqual(self.owners('a'), (4, 4, 0o755))
        self.assertEqual(self.owners('a/b'), (4, 4, 0o755))
        self.assertEqual(self.owners('a/b/sub/f'), (4, 4, 0o755))
        self.assertEqual(self.owners('a/b/lnk')[:2], (4, 4))

    def test_existing_directory_keeps_its_owner(self):
        executor._copy_into(self.root, self.sources, '/existing/', '/',
                            owner=(4, 4))
        self.assertEqual(self.owners('existing')[:2], (3, 3))
        self.assertEqual(self.owners('existing/sub')[:2], (4, 4))

    def test_keep_owners(self):
        executor._copy_into(self.root, self.sources, 'rel', '/work', owner=None)
        self.assertEqual(self.owners('work'), (0, 0, 0o755))
        self.assertEqual(self.owners('work/rel/sub'), (7, 8, 0o755))
        self.assertEqual(self.owners('work/rel/sub/f'), (5, 6, 0o6755))

    def test_extract_goes_to_unpack(self):
        tar = self.write('a.tar', TAR)
        seen = []
        executor._copy_into(self.root, [context_mod.Source('a.tar', tar, False)],
                            '/x', '/', owner=(4, 4), extract={tar},
                            unpack=lambda p, t: seen.append((p, t)))
        self.assertEqual(seen, [(tar, os.path.join(self.root, 'x'))])
        # The directory an archive goes to is root's, whatever --chown says.
        self.assertEqual(self.owners('x'), (0, 0, 0o755))


class CopyStepTest(TmpMixin, unittest.TestCase):
    """copystep.copy_step's --from wiring, with a fake builder."""

    def setUp(self):
        super().setUp()
        self.src_root = os.path.join(self.tmp, 'image')
        self.write('image/app/bin', 'x')
        self.builder = mock.Mock()
        self.builder.executor.cached.return_value = None
        self.builder.executor.copy.return_value = 'sha256:new'
        self.builder._step_done.side_effect = lambda new, out: new

        @contextlib.contextmanager
        def view(image_id):
            self.viewed = image_id
            yield self.src_root
        self.builder.executor.image_view = view

    def run_step(self, line, resolve_from, config=None, args=None):
        opts = mock.Mock(nocache=False)
        return copystep.copy_step(self.builder, None, 'sha256:parent',
                                  config or {}, _ins(line), args or {}, opts,
                                  lambda text: None, resolve_from)

    def test_from_uses_the_resolver_and_keeps_owners(self):
        asked = []
        new = self.run_step('COPY --from=build --chown=$U /app/bin /out/',
                            lambda v: asked.append(v) or 'sha256:src',
                            args={'U': 'daemon'})
        self.assertEqual(new, 'sha256:new')
        self.assertEqual(asked, ['build'])
        self.assertEqual(self.viewed, 'sha256:src')
        args, kw = self.builder.executor.copy.call_args
        self.assertEqual(kw['chown'], 'daemon')
        self.assertTrue(kw['keep_owners'])
        self.assertEqual([s.rel for s in args[3]], ['app/bin'])
        cmd = args[2]['Cmd'][-1]
        self.assertTrue(cmd.startswith('#(nop) COPY --chown=daemonfile:'), cmd)
        self.assertTrue(cmd.endswith(' in /out/ '), cmd)

    def test_from_missing_source(self):
        with self.assertRaises(Exception) as cm:
            self.run_step('COPY --from=0 /nope /out/', lambda v: 'sha256:src')
        self.assertEqual(str(cm.exception),
                         'COPY failed: stat nope: file does not exist')

    def test_from_resolver_errors_pass_through(self):
        def refuse(value):
            raise df.BuildError('invalid from flag value %s: index out of '
                                'bounds' % value)
        with self.assertRaises(df.BuildError) as cm:
            self.run_step('COPY --from=5 /x /out/', refuse)
        self.assertEqual(str(cm.exception),
                         'invalid from flag value 5: index out of bounds')
        self.builder.executor.copy.assert_not_called()

    def test_from_other_failures_worded_as_docker(self):
        def pull_fails(value):
            raise df.BuildError('registry is not reachable')
        with self.assertRaises(df.BuildError) as cm:
            self.run_step('COPY --from=img:1 /x /out/', pull_fails)
        self.assertEqual(str(cm.exception), 'invalid from flag value img:1: '
                                            'registry is not reachable')

    def test_from_empty_stage(self):
        """A stage FROM scratch with nothing in it: an empty root."""
        self.src_root = os.path.join(self.tmp, 'empty')
        os.mkdir(self.src_root)
        with self.assertRaises(errors.InvalidArgument) as cm:
            self.run_step('COPY --from=0 /x /out/', lambda v: None)
        self.assertIsNone(self.viewed)
        self.assertEqual(str(cm.exception),
                         'COPY failed: stat x: file does not exist')

    def test_copy_of_a_url_refused(self):
        with self.assertRaises(df.BuildError) as cm:
            self.run_step('COPY http://h/x /out/', None)
        self.assertEqual(str(cm.exception),
                         "COPY failed: source can't be a URL for COPY")


if __name__ == '__main__':
    unittest.main()
