"""The build context: tar bodies (plain, compressed, hostile), bare
Dockerfiles, git remotes made by the test, .dockerignore, COPY sources and
their checksum, and cleanup."""

import gzip
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import unittest

import ddt

from engine import archive
from engine import errors
from engine.build import context

DOCKERFILE = b'FROM busybox\nCOPY . /ctx/\n'


def make_tar(entries, comp=''):
    """A tar in memory from (name, kind, data[, mode]) entries; kinds: f
    file, d dir, l symlink, h hardlink, c char device, b block device."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:' + comp) as tf:
        for entry in entries:
            name, kind, data = entry[:3]
            info = tarfile.TarInfo(name)
            info.mode = entry[3] if len(entry) > 3 else 0o644
            info.mtime = 1700000000
            if kind == 'f':
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == 'd':
                info.type = tarfile.DIRTYPE
                info.mode = entry[3] if len(entry) > 3 else 0o755
            elif kind == 'l':
                info.type = tarfile.SYMTYPE
                info.linkname = data
            elif kind == 'h':
                info.type = tarfile.LNKTYPE
                info.linkname = data
            elif kind in 'cb':
                info.type = tarfile.CHRTYPE if kind == 'c' else tarfile.BLKTYPE
                info.devmajor, info.devminor = 1, 3
            tf.addfile(info)
    buf.seek(0)
    return buf


def huge_header_tar(name='big', size=1 << 40, data=b'x' * 1000):
    """A tar whose header claims ``size`` bytes but carries ``data``."""
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    return io.BytesIO(header + data)


def git(*args, cwd=None):
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@x',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@x',
               GIT_CONFIG_GLOBAL='/dev/null', GIT_CONFIG_NOSYSTEM='1')
    return subprocess.run(('git',) + args, cwd=cwd, env=env, check=True,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE).stdout.decode().strip()


class Base(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ctx-test-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.workdir = os.path.join(self.tmp, 'work')
        os.mkdir(self.workdir)

    def ctx(self, body, params=None, limits=None):
        ctx = context.BuildContext.from_request(
            body, {'Content-Type': 'application/x-tar'}, params or {},
            self.workdir, limits)
        self.addCleanup(ctx.close)
        return ctx

    def assertRefused(self, body, regex, params=None, limits=None,
                      exc=errors.InvalidArgument):
        with self.assertRaisesRegex(exc, regex):
            self.ctx(body, params, limits)
        # Nothing of a failed context is left behind.
        self.assertEqual([], os.listdir(self.workdir))

    def listing(self, root):
        out = []
        for dirpath, dirs, files in os.walk(root):
            for name in dirs + files:
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
        return sorted(out)


@ddt.ddt
class TestBodies(Base):

    @ddt.data('', 'gz', 'bz2', 'xz')
    def test_tar_kinds(self, comp):
        ctx = self.ctx(make_tar([('Dockerfile', 'f', DOCKERFILE),
                                 ('src/a.txt', 'f', b'hello')], comp))
        self.assertEqual('tar', ctx.kind)
        self.assertEqual(DOCKERFILE.decode(), ctx.dockerfile)
        self.assertEqual('Dockerfile', ctx.dockerfile_name)
        with open(os.path.join(ctx.root, 'src', 'a.txt'), 'rb') as f:
            self.assertEqual(b'hello', f.read())

    def test_gzip_stream_of_a_file(self):
        # What `docker build - < context.tar.gz` sends.
        raw = make_tar([('Dockerfile', 'f', DOCKERFILE)]).getvalue()
        ctx = self.ctx(io.BytesIO(gzip.compress(raw)))
        self.assertEqual(DOCKERFILE.decode(), ctx.dockerfile)

    def test_bare_dockerfile(self):
        ctx = self.ctx(io.BytesIO(b'FROM busybox\nRUN echo hi\n'),
                       params={'dockerfile': 'ignored.df'})
        self.assertEqual('dockerfile', ctx.kind)
        self.assertEqual('FROM busybox\nRUN echo hi\n', ctx.dockerfile)
        self.assertEqual(['Dockerfile'], os.listdir(ctx.root))

    def test_short_bare_dockerfile(self):
        ctx = self.ctx(io.BytesIO(b'FROM scratch'))
        self.assertEqual('FROM scratch', ctx.dockerfile)

    def test_bare_dockerfile_too_big(self):
        big = io.BytesIO(b'#' * (context.MAX_DOCKERFILE_SIZE + 10))
        self.assertRefused(big, 'the Dockerfile is larger than')

    def test_bom_dropped(self):
        ctx = self.ctx(io.BytesIO(b'\xef\xbb\xbfFROM scratch\n'))
        self.assertEqual('FROM scratch\n', ctx.dockerfile)

    def test_empty_body(self):
        self.assertRefused(io.BytesIO(b''),
                           '^Cannot locate specified Dockerfile: Dockerfile$')

    def test_no_dockerfile_in_tar(self):
        self.assertRefused(make_tar([('a', 'f', b'x')]),
                           'Cannot locate specified Dockerfile: Dockerfile')

    def test_lowercase_fallback(self):
        ctx = self.ctx(make_tar([('dockerfile', 'f', DOCKERFILE)]))
        self.assertEqual('dockerfile', ctx.dockerfile_name)
        self.assertEqual(DOCKERFILE.decode(), ctx.dockerfile)

    def test_dockerfile_param(self):
        ctx = self.ctx(make_tar([('Dockerfile', 'f', b'FROM a\n'),
                                 ('sub/Build.df', 'f', b'FROM b\n')]),
                       params={'dockerfile': ['sub/Build.df']})
        self.assertEqual('FROM b\n', ctx.dockerfile)
        self.assertEqual('sub/Build.df', ctx.dockerfile_name)

    @ddt.data('../../../../etc/passwd', 'a/../../x', '..')
    def test_dockerfile_climbing_out_forbidden(self, name):
        self.assertRefused(make_tar([('Dockerfile', 'f', b'FROM a\n')]),
                           '^forbidden path outside the build context: '
                           '%s \\(\\)$' % re.escape(name),
                           params={'dockerfile': name})

    @ddt.data('/etc/passwd', 'link', 'dir/up')
    def test_dockerfile_stays_inside(self, name):
        body = make_tar([('Dockerfile', 'f', b'FROM a\n'),
                         ('link', 'l', '/etc/passwd'),
                         ('dir/up', 'l', '../../../../etc/passwd')])
        self.assertRefused(body, 'Cannot locate specified Dockerfile',
                           params={'dockerfile': name})

    def test_dockerfile_is_a_directory(self):
        self.assertRefused(make_tar([('Dockerfile', 'd', None)]),
                           'Cannot locate specified Dockerfile')

    def test_corrupt_gzip(self):
        data = gzip.compress(make_tar([('Dockerfile', 'f', DOCKERFILE)])
                             .getvalue())
        self.assertRefused(io.BytesIO(data[:40]), 'build context')


class TestHostileTars(Base):

    def test_dotdot(self):
        self.assertRefused(make_tar([('Dockerfile', 'f', DOCKERFILE),
                                     ('a/../../evil', 'f', b'x')]),
                           "entry 'a/../../evil': path escapes the build "
                           "context")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'evil')))

    def test_absolute_names_land_inside(self):
        ctx = self.ctx(make_tar([('/Dockerfile', 'f', DOCKERFILE),
                                 ('/etc/evil', 'f', b'x')]))
        self.assertEqual(['Dockerfile', 'etc', 'etc/evil'],
                         self.listing(ctx.root))

    def test_symlink_escape_then_write_through(self):
        outside = os.path.join(self.tmp, 'outside')
        os.mkdir(outside)
        ctx = self.ctx(make_tar([
            ('Dockerfile', 'f', DOCKERFILE),
            ('esc', 'l', outside),
            ('esc/pwned', 'f', b'x'),
            ('rel', 'l', '../../../../../../' + outside.lstrip('/')),
            ('rel/pwned2', 'f', b'x'),
        ]))
        self.assertEqual([], os.listdir(outside))
        # The writes were resolved inside the context, as if it were '/'.
        inside = ctx.root + outside
        self.assertEqual(['pwned', 'pwned2'], sorted(os.listdir(inside)))
        self.assertTrue(os.path.islink(os.path.join(ctx.root, 'esc')))

    def test_hardlink_out_refused(self):
        self.assertRefused(make_tar([('Dockerfile', 'f', DOCKERFILE),
                                     ('h', 'h', '../../etc/passwd')]),
                           'escapes the build context')

    def test_device_nodes_skipped(self):
        ctx = self.ctx(make_tar([('Dockerfile', 'f', DOCKERFILE),
                                 ('dev/null', 'c', None),
                                 ('dev/sda', 'b', None)]))
        self.assertEqual(['Dockerfile'], self.listing(ctx.root))

    def test_huge_declared_size(self):
        self.assertRefused(huge_header_tar(), "entry 'big'")

    def test_huge_declared_size_over_limit(self):
        limits = context.Limits(max_size=1 << 20)
        self.assertRefused(huge_header_tar(size=2 << 20), 'larger than the '
                           'limit of 1048576 bytes', limits=limits)

    def test_size_limit(self):
        body = make_tar([('Dockerfile', 'f', DOCKERFILE),
                         ('a', 'f', b'x' * 600000), ('b', 'f', b'y' * 600000)])
        self.assertRefused(body, 'larger than the limit of 1000000 bytes',
                           limits=context.Limits(max_size=1000000))

    def test_size_limit_counts_decompressed_bytes(self):
        raw = make_tar([('Dockerfile', 'f', DOCKERFILE)] +
                       [('d%d' % i, 'd', None) for i in range(3000)])
        body = io.BytesIO(gzip.compress(raw.getvalue()))
        self.assertRefused(body, 'larger than the limit of 100000 bytes',
                           limits=context.Limits(max_size=100000))

    def test_entry_limit(self):
        body = make_tar([('Dockerfile', 'f', DOCKERFILE)] +
                        [('f%d' % i, 'f', b'') for i in range(20)])
        limits = context.Limits(layer_limits=archive.LayerLimits(
            max_entries=10, entries_hint=' (hint)'))
        self.assertRefused(body, 'more than 10 entries \\(hint\\)',
                           limits=limits)

    def test_failure_half_way_leaves_nothing(self):
        # Many good entries are written before the bad one is met.
        entries = [('Dockerfile', 'f', DOCKERFILE)]
        entries += [('d%d/f' % i, 'f', b'z' * 1000) for i in range(50)]
        entries += [('../evil', 'f', b'x')]
        self.assertRefused(make_tar(entries), 'escapes')

    def test_truncated(self):
        raw = make_tar([('Dockerfile', 'f', DOCKERFILE),
                        ('a', 'f', b'x' * 5000)]).getvalue()
        self.assertRefused(io.BytesIO(raw[:1024 + 700]), 'truncated')

    def test_streams_without_reading_all(self):
        # A body read in small pieces: never asked for everything at once.
        raw = make_tar([('Dockerfile', 'f', DOCKERFILE),
                        ('big', 'f', b'q' * (3 << 20))]).getvalue()

        class Body(io.RawIOBase):
            pos = 0
            biggest = 0

            def readable(self):
                return True

            def read(self, n=-1):
                self.biggest = max(self.biggest, n)
                assert n is not None and n >= 0, 'read everything'
                data = raw[self.pos:self.pos + n]
                self.pos += len(data)
                return data

        body = Body()
        ctx = self.ctx(body)
        self.assertLessEqual(body.biggest, 1 << 20)
        self.assertEqual(3 << 20, os.path.getsize(os.path.join(ctx.root,
                                                               'big')))

    def test_deep_tree(self):
        # Deeper than Python's recursion limit: every walk is iterative.
        deep = '/'.join(['d'] * 1500)
        ctx = self.ctx(make_tar([('Dockerfile', 'f', DOCKERFILE),
                                 (deep + '/x', 'f', b'1'),
                                 (deep + '/y.txt', 'f', b'2')]))
        context._prune(ctx.root, context.dockerignore.Matcher('**/x\n'))
        self.assertFalse(os.path.exists(os.path.join(ctx.root, deep, 'x')))
        srcs = ctx.sources([deep + '/*.txt'], False)
        self.assertEqual(deep + '/y.txt', srcs[0].rel)
        self.assertEqual([('d', True)],
                         [(s.rel, s.is_dir) for s in ctx.sources(['d*'],
                                                                 True)])
        ctx.checksum(ctx.sources(['d'], True))
        ctx.close()
        self.assertEqual([], os.listdir(self.workdir))

    def test_remove_tree_beyond_path_max(self):
        top = os.path.join(self.tmp, 'deep')
        os.mkdir(top)
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        for i in range(2500):   # 2500 * 3 characters > PATH_MAX
            os.mkdir('dd', dir_fd=fd)
            if i % 500 == 0:
                os.symlink('/etc', 'link', dir_fd=fd)
                with open(os.open('f', os.O_WRONLY | os.O_CREAT, 0o600,
                                  dir_fd=fd), 'w') as f:
                    f.write('x')
            nfd = os.open('dd', os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(fd)
        context.remove_tree(top)
        self.assertFalse(os.path.lexists(top))
        self.assertTrue(os.path.isdir('/etc'))

    def test_close_removes_everything(self):
        ctx = context.BuildContext.from_request(
            make_tar([('Dockerfile', 'f', DOCKERFILE),
                      ('d/x', 'f', b'1', 0o000), ('d', 'd', None, 0o000)]),
            {}, {}, self.workdir)
        self.assertEqual(1, len(os.listdir(self.workdir)))
        ctx.close()
        ctx.close()     # idempotent
        self.assertEqual([], os.listdir(self.workdir))


class TestDockerignore(Base):

    def test_tar_body_as_docker(self):
        # Docker 20.10's daemon leaves a sent context as it is (the client
        # applied .dockerignore) but for the Dockerfile and .dockerignore.
        ctx = self.ctx(make_tar([
            ('Dockerfile', 'f', DOCKERFILE),
            ('.dockerignore', 'f', b'*.log\n.dockerignore\n'),
            ('a.log', 'f', b'x'), ('b.txt', 'f', b'x')]))
        self.assertEqual(['Dockerfile', 'a.log', 'b.txt'],
                         self.listing(ctx.root))

    def test_ignored_custom_dockerfile_removed(self):
        ctx = self.ctx(make_tar([
            ('Dockerfile', 'f', b'FROM a\n'),
            ('sub/build.df', 'f', DOCKERFILE),
            ('.dockerignore', 'f', b'sub\n')]),
            params={'dockerfile': 'sub/build.df'})
        self.assertEqual(DOCKERFILE.decode(), ctx.dockerfile)
        self.assertEqual(['.dockerignore', 'Dockerfile', 'sub'],
                         self.listing(ctx.root))

    def tree(self, files, links=()):
        root = os.path.join(self.tmp, 'tree')
        for rel in files:
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write('x')
        for rel, target in links:
            os.symlink(target, os.path.join(root, rel))
        return root

    def test_prune(self):
        root = self.tree(['a.log', 'b.txt', 'build/out', 'build/keep',
                          'nested/x/y/tmp/f', 'nested/x/z', 'sub/c.log'])
        matcher = context.dockerignore.Matcher(
            '# secrets\n*.log\nbuild\n!build/keep\nnested/**/tmp\n')
        context._prune(root, matcher)
        self.assertEqual(
            ['b.txt', 'build', 'build/keep', 'nested', 'nested/x',
             'nested/x/y', 'nested/x/z', 'sub', 'sub/c.log'],
            self.listing(root))

    def test_prune_does_not_follow_links(self):
        outside = os.path.join(self.tmp, 'outside')
        os.mkdir(outside)
        with open(os.path.join(outside, 'keep'), 'w') as f:
            f.write('x')
        root = self.tree(['f'], links=[('link', outside)])
        context._prune(root, context.dockerignore.Matcher('link\n'))
        self.assertEqual(['keep'], os.listdir(outside))
        self.assertEqual(['f'], os.listdir(root))
        context._prune(root, context.dockerignore.Matcher('*\n!link/keep'))
        self.assertEqual(['keep'], os.listdir(outside))

    def test_ignored_dockerfile_still_read(self):
        # Docker: the builder gets the Dockerfile and .dockerignore even
        # when they are ignored, but COPY cannot see them.
        ctx = self.ctx(make_tar([
            ('Dockerfile', 'f', DOCKERFILE),
            ('.dockerignore', 'f', b'Dockerfile\n.dockerignore\n'),
            ('app', 'f', b'x')]))
        self.assertEqual(DOCKERFILE.decode(), ctx.dockerfile)
        self.assertEqual(['app'], os.listdir(ctx.root))
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'stat Dockerfile: file does not exist'):
            ctx.sources(['Dockerfile'], False)

    def test_bad_pattern(self):
        self.assertRefused(make_tar([('Dockerfile', 'f', DOCKERFILE),
                                     ('.dockerignore', 'f', b'a[\n')]),
                           'syntax error in pattern')


@ddt.ddt
class TestSources(Base):

    def setUp(self):
        super().setUp()
        self.outside = os.path.join(self.tmp, 'outside')
        os.mkdir(self.outside)
        with open(os.path.join(self.outside, 'secret'), 'w') as f:
            f.write('secret')
        self.c = self.ctx(make_tar([
            ('Dockerfile', 'f', DOCKERFILE),
            ('a.txt', 'f', b'a'), ('b.txt', 'f', b'b'), ('c.md', 'f', b'c'),
            ('dir/x.txt', 'f', b'x'), ('dir/sub/y.txt', 'f', b'y'),
            ('dir/link', 'l', '/etc/passwd'),
            ('to_a', 'l', 'a.txt'),
            ('to_dir', 'l', '/dir'),
            ('escape', 'l', self.outside + '/secret'),
            ('escape_rel', 'l', '../../../../../../../etc/passwd'),
            ('star*', 'f', b's'),
        ]))

    def rels(self, patterns, dest_is_dir=True):
        return [(s.rel, s.is_dir) for s in self.c.sources(patterns,
                                                          dest_is_dir)]

    def test_file(self):
        srcs = self.c.sources(['a.txt'], False)
        self.assertEqual([('a.txt', os.path.join(self.c.root, 'a.txt'),
                           False)], [tuple(s) for s in srcs])

    @ddt.data('../a.txt', '../../../../a.txt', 'dir/../../a.txt', '..')
    def test_climbing_out_forbidden(self, pattern):
        # Docker 20.10's words, empty parentheses included.
        with self.assertRaises(errors.InvalidArgument) as cm:
            self.c.sources([pattern], False)
        self.assertEqual('COPY failed: forbidden path outside the build '
                         'context: %s ()' % pattern, str(cm.exception))

    def test_climbing_glob_matches_nothing(self):
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'no source files were specified'):
            self.c.sources(['../*.txt'], True)

    @ddt.data('/a.txt', './a.txt', 'dir/../a.txt', '//a.txt')
    def test_paths_resolve_inside(self, pattern):
        srcs = self.c.sources([pattern], False)
        self.assertEqual(os.path.join(self.c.root, 'a.txt'), srcs[0].path)
        self.assertEqual('a.txt', os.path.basename(srcs[0].rel))

    def test_dot_is_the_context(self):
        self.assertEqual([('.', True)], self.rels(['.']))
        self.assertEqual(self.c.root, self.c.sources(['.'], True)[0].path)

    def test_directory(self):
        self.assertEqual([('dir', True)], self.rels(['dir'], False))

    def test_glob(self):
        self.assertEqual([('a.txt', False), ('b.txt', False)],
                         self.rels(['*.txt']))
        self.assertEqual([('dir/x.txt', False)], self.rels(['dir/*.txt']))
        self.assertEqual([('a.txt', False), ('b.txt', False),
                          ('c.md', False)], self.rels(['[a-c].*']))
        self.assertEqual([('dir', True)], self.rels(['d?r']))

    def test_escaped_wildcard_is_not_a_glob(self):
        # Docker's containsWildcards skips escaped characters, and the path
        # is then looked up as written, backslash included.
        self.assertEqual([('star*', False)], self.rels(['star*'], False))
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    r'stat star\\\*: file does not exist'):
            self.c.sources(['star\\*'], False)

    def test_symlinked_source_followed_inside(self):
        self.assertEqual(os.path.join(self.c.root, 'a.txt'),
                         self.c.sources(['to_a'], False)[0].path)
        self.assertEqual('to_a', self.c.sources(['to_a'], False)[0].rel)
        src = self.c.sources(['to_dir'], False)[0]
        self.assertEqual((os.path.join(self.c.root, 'dir'), True),
                         (src.path, src.is_dir))

    @ddt.data('escape', 'escape_rel', 'dir/link', 'nope', 'dir/nope')
    def test_symlink_out_or_missing_not_found(self, name):
        with self.assertRaises(errors.InvalidArgument) as cm:
            self.c.sources([name], False)
        self.assertEqual(
            'COPY failed: file not found in build context or excluded by '
            '.dockerignore: stat %s: file does not exist' % name,
            str(cm.exception))

    def test_add_names_itself(self):
        with self.assertRaisesRegex(errors.InvalidArgument, '^ADD failed'):
            self.c.sources(['nope'], False, cmd='ADD')

    def test_glob_no_match(self):
        with self.assertRaisesRegex(
                errors.InvalidArgument,
                '^COPY failed: no source files were specified$'):
            self.c.sources(['*.nothing'], True)

    def test_many_sources_need_a_dir(self):
        with self.assertRaisesRegex(
                errors.InvalidArgument,
                '^When using COPY with more than one source file, the '
                'destination must be a directory and end with a /$'):
            self.c.sources(['*.txt'], False)
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'more than one source file'):
            self.c.sources(['a.txt', 'b.txt'], False)

    def test_symlink_inside_copied_dir_is_kept(self):
        # The checksum covers the link itself, not /etc/passwd.
        srcs = self.c.sources(['dir'], True)
        before = self.c.checksum(srcs)
        os.unlink(os.path.join(self.c.root, 'dir', 'link'))
        os.symlink('/etc/shadow', os.path.join(self.c.root, 'dir', 'link'))
        self.assertNotEqual(before, self.c.checksum(srcs))


class TestChecksum(Base):

    ENTRIES = [('Dockerfile', 'f', DOCKERFILE), ('d/a', 'f', b'1'),
               ('d/b/c', 'f', b'2', 0o755), ('d/l', 'l', 'a'),
               ('f', 'f', b'file')]

    def digest(self, entries, patterns=('d', 'f')):
        ctx = self.ctx(make_tar(entries))
        return ctx.checksum(ctx.sources(list(patterns), True)), ctx

    def test_stable_across_contexts(self):
        a, _ = self.digest(self.ENTRIES)
        b, _ = self.digest(self.ENTRIES)
        self.assertEqual(a, b)
        self.assertEqual(64, len(a))

    def test_ignores_times_and_owners(self):
        a, ctx = self.digest(self.ENTRIES)
        path = os.path.join(ctx.root, 'd', 'a')
        os.utime(path, (1, 1))
        os.chown(path, 1234, 5678)
        self.assertEqual(a, ctx.checksum(ctx.sources(['d', 'f'], True)))

    def changed(self, index, entry):
        entries = list(self.ENTRIES)
        entries[index] = entry
        a, _ = self.digest(self.ENTRIES)
        b, _ = self.digest(entries)
        self.assertNotEqual(a, b)

    def test_content(self):
        self.changed(1, ('d/a', 'f', b'9'))

    def test_mode(self):
        self.changed(2, ('d/b/c', 'f', b'2', 0o644))

    def test_link_target(self):
        self.changed(3, ('d/l', 'l', 'b'))

    def test_name(self):
        self.changed(1, ('d/A', 'f', b'1'))

    def test_source_name(self):
        a, ctx = self.digest(self.ENTRIES)
        os.rename(os.path.join(ctx.root, 'f'), os.path.join(ctx.root, 'g'))
        self.assertNotEqual(a, ctx.checksum(ctx.sources(['d', 'g'], True)))

    def test_big_file_streamed(self):
        a, _ = self.digest([('Dockerfile', 'f', DOCKERFILE),
                            ('f', 'f', b'z' * (5 << 20))], ['f'])
        b, _ = self.digest([('Dockerfile', 'f', DOCKERFILE),
                            ('f', 'f', b'z' * (5 << 20) + b'!')], ['f'])
        self.assertNotEqual(a, b)


class TestGitRemote(Base):

    def setUp(self):
        super().setUp()
        self.repo = os.path.join(self.tmp, 'repo')
        os.mkdir(self.repo)
        git('init', '-q', '-b', 'main', cwd=self.repo)
        self.write('Dockerfile', 'FROM busybox\nCOPY . /app/\n')
        self.write('sub/Dockerfile', 'FROM scratch\n')
        self.write('sub/data.txt', 'v1')
        self.write('.dockerignore', '*.secret\n')
        self.write('x.secret', 'no')
        git('add', '-A', cwd=self.repo)
        git('commit', '-qm', 'one', cwd=self.repo)
        git('tag', 'v1', cwd=self.repo)
        self.first = git('rev-parse', 'HEAD', cwd=self.repo)
        self.write('sub/data.txt', 'v2')
        git('commit', '-qam', 'two', cwd=self.repo)
        git('branch', 'other', cwd=self.repo)
        self.bare = os.path.join(self.tmp, 'bare.git')
        git('clone', '-q', '--bare', self.repo, self.bare)

    def write(self, rel, text):
        path = os.path.join(self.repo, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)

    def remote(self, remote, **params):
        params['remote'] = remote
        return self.ctx(None, params=params)

    def read(self, ctx, rel):
        with open(os.path.join(ctx.root, rel)) as f:
            return f.read()

    def test_local_path(self):
        ctx = self.remote(self.repo)
        self.assertEqual('git', ctx.kind)
        self.assertEqual('FROM busybox\nCOPY . /app/\n', ctx.dockerfile)
        self.assertEqual('v2', self.read(ctx, 'sub/data.txt'))
        # .dockerignore applies to a git context too.
        self.assertFalse(os.path.exists(os.path.join(ctx.root, 'x.secret')))
        # A shallow fetch: one commit.
        self.assertEqual('1', git('rev-list', '--count', 'HEAD',
                                  cwd=ctx.root))

    def test_bare_repository_and_file_url(self):
        for remote in (self.bare, 'file://' + self.bare):
            ctx = self.remote(remote)
            self.assertEqual('v2', self.read(ctx, 'sub/data.txt'))

    def test_ref_and_subdir(self):
        ctx = self.remote(self.bare + '#v1:sub')
        self.assertEqual('FROM scratch\n', ctx.dockerfile)
        self.assertEqual('v1', self.read(ctx, 'data.txt'))
        self.assertEqual(['Dockerfile', 'data.txt'],
                         sorted(os.listdir(ctx.root)))

    def test_branch_and_commit(self):
        self.assertEqual('v2', self.read(self.remote(self.repo + '#other'),
                                         'sub/data.txt'))
        ctx = self.remote(self.repo + '#' + self.first)
        self.assertEqual('v1', self.read(ctx, 'sub/data.txt'))

    def test_dockerfile_param(self):
        ctx = self.remote(self.repo, dockerfile='sub/Dockerfile')
        self.assertEqual('FROM scratch\n', ctx.dockerfile)

    def test_unknown_ref(self):
        self.assertRefused(None, 'error fetching', params={
            'remote': self.repo + '#nosuchref'})

    def test_subdir_errors(self):
        self.assertRefused(None, 'not a directory', params={
            'remote': self.repo + '#main:sub/data.txt'})
        self.assertRefused(None, 'not within git root', params={
            'remote': self.repo + '#main:../..'})

    def test_not_a_repository(self):
        plain = os.path.join(self.tmp, 'plain')
        os.mkdir(plain)
        self.assertRefused(None, '^remote %s: not a git repository$' % plain,
                           params={'remote': plain})
        self.assertRefused(None, 'no such directory', params={
            'remote': os.path.join(self.tmp, 'missing')})

    def test_http_url_refused(self):
        self.assertRefused(None, 'downloading a build context or a '
                           'Dockerfile from a URL is not supported',
                           params={'remote': 'https://example.com/ctx.tar'})

    def test_unrecognised_remote(self):
        self.assertRefused(None, 'could not be recognized as URL',
                           params={'remote': 'nonsense'})

    def test_option_injection(self):
        self.assertRefused(None, 'could not be recognized as URL', params={
            'remote': '--upload-pack=touch /tmp/x'})

    def test_size_limit(self):
        self.assertRefused(None, 'larger than the limit of 10 bytes',
                           params={'remote': self.repo},
                           limits=context.Limits(max_size=10))

    def test_git_environment_is_clean(self):
        env = context._git_env('/h')
        self.assertEqual('0', env['GIT_TERMINAL_PROMPT'])
        self.assertEqual('/dev/null', env['GIT_CONFIG_GLOBAL'])
        self.assertNotIn('SSH_AUTH_SOCK', env)

    def test_is_git_remote(self):
        for remote in ('git://h/r', 'git@h:r', 'github.com/a/b',
                       'https://h/r.git', 'https://h/r.git#ref:dir', '/p',
                       'file:///p'):
            self.assertTrue(context.is_git_remote(remote), remote)
        for remote in ('https://h/ctx.tar', 'http://h/Dockerfile', 'x'):
            self.assertFalse(context.is_git_remote(remote), remote)
