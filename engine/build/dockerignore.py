"""``.dockerignore`` semantics, as Docker's CLI and classic builder apply them.

Docker reads the file line by line (moby ``builder/dockerignore.ReadAll``):
a UTF-8 BOM on the first line is dropped, lines starting with ``#`` are
comments, surrounding blanks are trimmed, empty lines are skipped; a leading
``!`` makes an exception (re-inclusion); each pattern is cleaned like Go's
``filepath.Clean`` and loses a leading ``/``.  Matching follows
``pkg/fileutils.PatternMatcher``: patterns are Go ``filepath.Match`` globs
plus ``**`` (any number of directories, even none); every pattern is tried
in order and the last one that matches decides; a pattern also matches a
path when it matches the path's leading directories of the same depth (so
``foo`` excludes ``foo/bar``).

A directory that is excluded is not walked, unless an exception pattern
names something inside it (its text starts with ``dir/``): Docker then
walks it and keeps what the exceptions re-include.
"""

import re

from engine import errors


def go_clean(path):
    """Go's ``filepath.Clean`` (lexical; '..' never climbs above '/')."""
    if path == '':
        return '.'
    rooted = path.startswith('/')
    out = []
    for comp in path.split('/'):
        if comp in ('', '.'):
            continue
        if comp == '..':
            if out and out[-1] != '..':
                out.pop()
            elif not rooted:
                out.append('..')
            continue
        out.append(comp)
    cleaned = '/'.join(out)
    if rooted:
        return '/' + cleaned
    return cleaned or '.'


def _class_regex(pattern, i):
    """Translate the Go character class starting after '[' at ``i``.

    Returns (regex, index after ']').  Go: ``[`` ``^``? then one or more
    ``c``, ``\\c`` or ``lo-hi``; an empty or unclosed class is a syntax
    error.
    """
    n = len(pattern)
    out = '['
    if i < n and pattern[i] == '^':
        out += '^'
        i += 1
    count = 0
    while True:
        if i >= n:
            raise errors.InvalidArgument('syntax error in pattern')
        ch = pattern[i]
        if ch == ']' and count:
            return out + ']', i + 1
        lo, i = _class_char(pattern, i)
        if i < n and pattern[i] == '-':
            hi, i = _class_char(pattern, i + 1)
            if hi < lo:
                raise errors.InvalidArgument('syntax error in pattern')
            out += re.escape(lo) + '-' + re.escape(hi)
        else:
            out += re.escape(lo)
        count += 1


def _class_char(pattern, i):
    n = len(pattern)
    if i >= n or pattern[i] in '-]':
        raise errors.InvalidArgument('syntax error in pattern')
    if pattern[i] == '\\':
        i += 1
        if i >= n:
            raise errors.InvalidArgument('syntax error in pattern')
    return pattern[i], i + 1


def glob_regex(pattern, double_star=False):
    """Regex source for a Go ``filepath.Match`` pattern over '/' paths.

    ``*`` and ``?`` never match '/'; ``\\`` escapes the next character.
    With ``double_star`` (dockerignore), ``**`` matches any number of path
    components, as moby's PatternMatcher.  Malformed patterns raise
    InvalidArgument('syntax error in pattern'), Go's ErrBadPattern.
    """
    out = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == '*':
            if double_star and i + 1 < n and pattern[i + 1] == '*':
                i += 2
                if i < n and pattern[i] == '/':
                    i += 1          # "**/" is the same as "**"
                out.append('.*' if i >= n else '(?:.*/)?')
                continue
            while i < n and pattern[i] == '*':
                i += 1
            out.append('[^/]*')
            continue
        if ch == '?':
            out.append('[^/]')
        elif ch == '[':
            regex, i = _class_regex(pattern, i + 1)
            out.append(regex)
            continue
        elif ch == '\\':
            i += 1
            if i >= n:
                raise errors.InvalidArgument('syntax error in pattern')
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return ''.join(out)


def compile_glob(pattern, double_star=False):
    return re.compile(glob_regex(pattern, double_star), re.DOTALL)


def has_wildcards(path):
    """Go's containsWildcards: an unescaped ``*``, ``?`` or ``[``."""
    i = 0
    while i < len(path):
        if path[i] == '\\':
            i += 2
            continue
        if path[i] in '*?[':
            return True
        i += 1
    return False


def read_lines(data):
    """The patterns of a .dockerignore (bytes or str), as Docker reads it."""
    if isinstance(data, bytes):
        data = data.decode('utf-8', 'surrogateescape')
    if data.startswith('\ufeff'):
        data = data[1:]
    patterns = []
    for line in data.splitlines():
        if line.startswith('#'):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith('!')
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line.startswith('/'):
                line = line[1:]
        patterns.append('!' + line if invert else line)
    return patterns


class Pattern(object):
    __slots__ = ('text', 'exclusion', 'regex', 'depth')

    def __init__(self, text, exclusion):
        self.text = text
        self.exclusion = exclusion
        self.regex = compile_glob(text, double_star=True)
        self.depth = len(text.split('/'))

    def match(self, path):
        return self.regex.fullmatch(path) is not None


class Matcher(object):
    """Docker's PatternMatcher over the lines of a .dockerignore.

    ``lines`` are raw lines (comments and blanks allowed) or the text of the
    file; a malformed pattern raises InvalidArgument naming it.
    """

    def __init__(self, lines):
        if isinstance(lines, (str, bytes)):
            lines = read_lines(lines)
        else:
            lines = read_lines('\n'.join(lines))
        self.patterns = []
        for line in lines:
            line = go_clean(line.strip())
            exclusion = line.startswith('!')
            if exclusion:
                line = line[1:]
                if not line:
                    raise errors.InvalidArgument(
                        'illegal exclusion pattern: "!" in .dockerignore')
            try:
                self.patterns.append(Pattern(line, exclusion))
            except errors.InvalidArgument:
                raise errors.InvalidArgument(
                    '.dockerignore: syntax error in pattern %r' % line)
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def __bool__(self):
        return bool(self.patterns)

    def matches(self, relpath):
        """PatternMatcher.Matches: is ``relpath`` (context-relative, '/'
        separated) excluded by the patterns?"""
        path = go_clean(relpath)
        parent = path.rsplit('/', 1)[0] if '/' in path else '.'
        parent_dirs = parent.split('/')
        matched = False
        for pattern in self.patterns:
            # An exception only matters once something matched, an
            # exclusion only until something did (last match wins).
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match and parent != '.' and \
                    pattern.depth <= len(parent_dirs):
                match = pattern.match(
                    '/'.join(parent_dirs[:pattern.depth]))
            if match:
                matched = not pattern.exclusion
        return matched

    def excluded(self, relpath, is_dir=False):
        """True when ``relpath`` is left out of the context."""
        return self.matches(relpath)

    def must_walk(self, relpath):
        """An excluded directory Docker still walks: an exception pattern
        names something inside it."""
        prefix = go_clean(relpath) + '/'
        return any(p.exclusion and (p.text + '/').startswith(prefix)
                   for p in self.patterns)
