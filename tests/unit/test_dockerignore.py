"""Docker's .dockerignore semantics (moby builder/dockerignore and
pkg/fileutils.PatternMatcher), over the examples of Docker's documentation."""

import unittest

import ddt

from engine import errors
from engine.build import dockerignore

DOC_EXAMPLE = """
# comment
*/temp*
*/*/temp*
temp?
"""


@ddt.ddt
class TestMatcher(unittest.TestCase):

    @ddt.data(
        # Docker's documented example file.
        (DOC_EXAMPLE, 'somedir/temporary.txt', True),
        (DOC_EXAMPLE, 'somedir/temp', True),
        (DOC_EXAMPLE, 'somedir/temp/inner/file', True),
        (DOC_EXAMPLE, 'somedir/subdir/temporary.txt', True),
        (DOC_EXAMPLE, 'tempa', True),
        (DOC_EXAMPLE, 'tempb', True),
        (DOC_EXAMPLE, 'temp', False),
        (DOC_EXAMPLE, 'temporary.txt', False),
        (DOC_EXAMPLE, 'a/b/c/temporary.txt', False),
        (DOC_EXAMPLE, 'comment', False),
        # "**" matches any number of directories, including none.
        ('**/*.go', 'main.go', True),
        ('**/*.go', 'a/b/c/x.go', True),
        ('**/*.go', 'a/b/c/x.gox', False),
        ('a/**/z', 'a/z', True),
        ('a/**/z', 'a/b/c/z', True),
        ('a/**', 'a/b/c', True),
        # Exceptions, last match wins (the documented README examples).
        ('*.md\n!README.md', 'README.md', False),
        ('*.md\n!README.md', 'CHANGES.md', True),
        ('*.md\n!README*.md\nREADME-secret.md', 'README-secret.md', True),
        ('*.md\n!README*.md\nREADME-secret.md', 'README-public.md', False),
        ('*.md\nREADME-secret.md\n!README*.md', 'README-secret.md', False),
        # Leading "/" and "./" are dropped, patterns are cleaned.
        ('/foo', 'foo', True),
        ('./bar', 'bar', True),
        ('a/../b', 'b', True),
        ('a//b/', 'a/b', True),
        # A pattern matching a directory excludes its content.
        ('foo', 'foo/bar/baz', True),
        ('foo/bar', 'foo/bar/baz/qux', True),
        ('foo/bar', 'foo', False),
        ('*', 'anything/at/all', True),
        # Comments only at the very start of a line; blanks trimmed.
        ('#foo', '#foo', False),
        ('  #foo', '#foo', True),
        ('  spaced  ', 'spaced', True),
        ('\n\n', 'x', False),
        # Go filepath.Match syntax.
        ('f[a-c]o', 'fbo', True),
        ('f[a-c]o', 'fdo', False),
        ('f[^a-c]o', 'fdo', True),
        ('f\\*o', 'f*o', True),
        ('f\\*o', 'fxo', False),
        ('f?o', 'f/o', False),
        ('*.txt', 'dir/x.txt', False),
        ('a.b', 'axb', False),
        ('a$', 'a$', True),
        # The Dockerfile and .dockerignore match like any other file.
        ('Dockerfile\n.dockerignore', '.dockerignore', True),
    )
    @ddt.unpack
    def test_excluded(self, text, path, expected):
        self.assertEqual(expected, dockerignore.Matcher(text).excluded(path))

    def test_list_of_lines(self):
        m = dockerignore.Matcher(['# c', '', '*.log', '!keep.log'])
        self.assertTrue(m.excluded('x.log'))
        self.assertFalse(m.excluded('keep.log'))
        self.assertTrue(m.has_exclusions)

    def test_bom_is_dropped(self):
        m = dockerignore.Matcher('\ufeffsecret\n'.encode('utf-8'))
        self.assertTrue(m.excluded('secret'))

    def test_empty(self):
        self.assertFalse(dockerignore.Matcher('# only a comment\n'))

    @ddt.data('!', '  !  ')
    def test_lone_exclamation(self, text):
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'illegal exclusion pattern'):
            dockerignore.Matcher(text)

    @ddt.data('a[', '[]', 'a[b-]', 'x\\')
    def test_bad_pattern(self, text):
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'syntax error in pattern'):
            dockerignore.Matcher(text)

    @ddt.data(
        ('dir\n!dir/keep', 'dir', True),
        ('dir\n!dir/sub/keep', 'dir/sub', True),
        ('dir\n!dir/keep', 'other', False),
        # Docker only looks at the text of the exception.
        ('dir\n!**/keep', 'dir', False),
        ('dir', 'dir', False),
    )
    @ddt.unpack
    def test_must_walk(self, text, path, expected):
        self.assertEqual(expected,
                         dockerignore.Matcher(text).must_walk(path))


@ddt.ddt
class TestHelpers(unittest.TestCase):

    @ddt.data(('', '.'), ('.', '.'), ('/', '/'), ('a/./b', 'a/b'),
              ('a/../..', '..'), ('/../a', '/a'), ('//a//b/', '/a/b'),
              ('./a', 'a'), ('a/b/../../..', '..'))
    @ddt.unpack
    def test_go_clean(self, path, expected):
        self.assertEqual(expected, dockerignore.go_clean(path))

    @ddt.data(('*', True), ('a?', True), ('[ab]', True), ('a\\*', False),
              ('plain/path', False))
    @ddt.unpack
    def test_has_wildcards(self, path, expected):
        self.assertEqual(expected, dockerignore.has_wildcards(path))

    @ddt.data(('*.txt', 'a.txt', True), ('*.txt', 'd/a.txt', False),
              ('d/*', 'd/a', True), ('**', 'a/b', False),
              ('[!a]', '!', True), ('[!a]', 'b', False))
    @ddt.unpack
    def test_copy_glob_is_go_filepath_match(self, pattern, path, expected):
        # COPY uses filepath.Match: no "**" magic, '*' stops at '/'.
        regex = dockerignore.compile_glob(pattern)
        self.assertEqual(expected, regex.fullmatch(path) is not None)
