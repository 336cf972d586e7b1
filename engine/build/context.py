"""The build context: what ``POST /build`` receives, made safe to copy from.

Body kinds (as Docker's classic builder and CLI send them):

* a tar, plain or compressed (gzip, bzip2, xz, zstd: sniffed from its magic
  bytes), extracted with the engine's hostile-layer rules
  (``engine.archive.apply_tar``): no entry lands outside the context, device
  nodes are skipped, sizes and entry counts are bounded, free space is kept;
* a bare Dockerfile (the body is not a tar): the context is that one file;
* ``remote=`` a git repository, a URL or a local path, fetched with the
  system git (``--depth 1``, ``#ref:subdir`` fragment), in a clean
  environment that never prompts, under a timeout.  Other URLs (a tar or a
  Dockerfile over http) are refused: this engine does not download them.

The body is streamed to disk, never held in memory.  The Dockerfile text is
read first; then ``.dockerignore`` is applied to the extracted tree (the
Dockerfile and .dockerignore themselves are removed when they are ignored,
as Docker does, after the builder got their text).

``sources()`` resolves COPY/ADD sources with Docker's rules and
``checksum()`` digests them for the build cache.  ``close()`` removes
everything the context made.
"""

import collections
import hashlib
import io
import os
import re
import stat
import subprocess
import tarfile
import tempfile

from oslo_log import log as logging

from engine import archive
from engine import chroot
from engine import errors
from engine.build import dockerignore

LOG = logging.getLogger(__name__)

DEFAULT_DOCKERFILE = 'Dockerfile'
# Bounds of what is read into memory: the Dockerfile and .dockerignore.
MAX_DOCKERFILE_SIZE = 16 << 20
MAX_DOCKERIGNORE_SIZE = 4 << 20
_CHUNK = 1 << 20
_HINT = ' (the [engine] max_archive_size option)'

Source = collections.namedtuple('Source', 'rel path is_dir')


class Limits(object):
    """Bounds of one context.

    ``max_size``: bytes of the uncompressed tar, of the file data it
    unpacks to, and of a git checkout (0: no bound).  ``layer_limits``: an
    ``archive.LayerLimits`` (entries, free-space reserve).  ``git_timeout``:
    seconds a git fetch may take.
    """

    def __init__(self, max_size=0, layer_limits=None, git_timeout=300,
                 size_hint=_HINT):
        self.max_size = max_size or 0
        self.layer_limits = layer_limits or archive.LayerLimits()
        self.git_timeout = git_timeout
        self.size_hint = size_hint

    @classmethod
    def for_store(cls, store, git_timeout=300):
        """The limits an image store applies to docker load and import:
        ``[engine] max_archive_size``, ``max_layer_entries`` and the
        free-space reserve (``min_free_space``, ``min_free_percent``)."""
        return cls(max_size=store.max_archive_size,
                   layer_limits=store.layer_limits(),
                   git_timeout=git_timeout)


def _param(params, name, default=''):
    value = (params or {}).get(name)
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if value is None:
        return default
    return str(value)


class _CountingReader(io.RawIOBase):
    """Counts what is read and refuses more than ``limit`` bytes."""

    def __init__(self, raw, limit, hint):
        self._raw = raw
        self._limit = limit
        self._hint = hint
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buf):
        data = self._raw.read(len(buf))
        if not data:
            return 0
        self.count += len(data)
        if self._limit and self.count > self._limit + 1024 * 10:
            # A tar carries headers and end blocks beyond the file data.
            raise errors.InvalidArgument(
                'the build context is larger than the limit of %d bytes%s'
                % (self._limit, self._hint))
        buf[:len(data)] = data
        return len(data)


def _looks_like_tar(block):
    """A 512-byte block that is a tar header: ustar magic, or (v7 tars) a
    valid header checksum; an all-zero block is an empty archive."""
    if len(block) < 512:
        return False
    if block[257:262] == b'ustar':
        return True
    if block == b'\0' * 512:
        return True
    try:
        stored = int(block[148:156].replace(b'\0', b' ').strip() or b'-1', 8)
    except ValueError:
        return False
    return stored in tarfile.calc_chksums(block)


def _scoped_resolve(root, rel, follow_last=True):
    """Resolve ``rel`` inside ``root`` as if ``root`` were '/' (moby's
    FollowSymlinkInScope, see engine.chroot).  Returns the host path, which
    may not exist.
    """
    try:
        return chroot.resolve(root, rel, follow_last=follow_last)
    except chroot.TooManyLinks:
        raise errors.InvalidArgument(
            '%s: too many levels of symbolic links' % rel)


def remove_tree(path):
    """rm -rf that survives hostile trees: never follows symlinks, and does
    not recurse (shutil.rmtree does, and a context may be deeper than
    Python's recursion limit or than PATH_MAX): each directory met is
    moved up into ``path`` itself before it is emptied, so no path is ever
    longer than two components below ``path``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    base = os.open(path, flags)
    counter = 0
    try:
        while True:
            with os.scandir(base) as it:
                names = [(e.name, e.is_dir(follow_symlinks=False))
                         for e in it]
            if not names:
                break
            for name, is_dir in names:
                if not is_dir:
                    os.unlink(name, dir_fd=base)
                    continue
                fd = os.open(name, flags, dir_fd=base)
                try:
                    with os.scandir(fd) as it:
                        children = [(e.name, e.is_dir(follow_symlinks=False))
                                    for e in it]
                    for child, child_is_dir in children:
                        if not child_is_dir:
                            os.unlink(child, dir_fd=fd)
                            continue
                        while True:
                            counter += 1
                            flat = '.rm-%d' % counter
                            if os.path.lexists(os.path.join(path, flat)):
                                continue
                            os.rename(child, flat, src_dir_fd=fd,
                                      dst_dir_fd=base)
                            break
                finally:
                    os.close(fd)
                os.rmdir(name, dir_fd=base)
    finally:
        os.close(base)
    os.rmdir(path)


def _quiet_remove(path):
    try:
        remove_tree(path)
    except OSError as exc:
        LOG.warning('cannot remove the build context %s: %s', path, exc)


class BuildContext(object):
    """An extracted build context; see the module docstring."""

    def __init__(self, tmpdir, root, dockerfile, dockerfile_name):
        self.tmpdir = tmpdir
        self.root = root
        self.dockerfile = dockerfile
        self.dockerfile_name = dockerfile_name
        self.kind = None

    # -- construction ------------------------------------------------------

    @classmethod
    def from_request(cls, stream, headers, params, workdir, limits=None):
        """Make the context of one ``POST /build`` (see the module doc).

        ``workdir`` is a private directory; the context lives in a new
        directory under it, removed by close() and on any failure here.
        """
        limits = limits or Limits()
        tmpdir = tempfile.mkdtemp(prefix='context-', dir=workdir)
        try:
            root = os.path.join(tmpdir, 'root')
            remote = _param(params, 'remote')
            dockerfile_name = _param(params, 'dockerfile') or \
                DEFAULT_DOCKERFILE
            if remote:
                root, kind = _fetch_remote(remote, tmpdir, limits)
            else:
                os.mkdir(root, 0o755)
                kind = _extract_body(stream, root, limits)
                if kind == 'dockerfile':
                    dockerfile_name = DEFAULT_DOCKERFILE
            text, dockerfile_name = _read_dockerfile(root, dockerfile_name)
            # The client applied .dockerignore to a body it sent (Docker's
            # daemon then only hides the Dockerfile and .dockerignore when
            # they are ignored); nobody did for a git checkout.
            _apply_dockerignore(root, dockerfile_name, full=(kind == 'git'))
            ctx = cls(tmpdir, root, text, dockerfile_name)
            ctx.kind = kind
            return ctx
        except BaseException:
            _quiet_remove(tmpdir)
            raise

    def close(self):
        if self.tmpdir is not None:
            _quiet_remove(self.tmpdir)
            self.tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- COPY / ADD sources ------------------------------------------------

    def sources(self, patterns, dest_is_dir, cmd='COPY'):
        """COPY/ADD sources in the context; see resolve_sources."""
        return resolve_sources(self.root, patterns, dest_is_dir, cmd,
                               in_context=True)

    def checksum(self, sources):
        return checksum(sources)


def resolve_sources(root, patterns, dest_is_dir, cmd='COPY',
                    in_context=True):
    """Docker's classic builder rules for COPY/ADD sources under ``root``.

    A leading '/' or './' is dropped (sources are relative to the root); a
    path climbing out with '..' is refused, symlinks resolve inside the
    root, never out of it (as Docker 20.10); a source
    with wildcards matches context paths with Go's filepath.Match (a
    matched directory is copied whole, not searched further).  Returns a
    list of Source(rel, path, is_dir): ``rel`` as Docker names it (the
    matched or given path), ``path`` the host path of what is copied (a
    source that is a symlink is followed, inside the root; symlinks inside
    a copied directory are copied as links).  Errors carry Docker's words.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    found = []
    for orig in patterns:
        found.extend(_one_source(root, orig, cmd, in_context))
    if not found:
        raise errors.InvalidArgument(
            '%s failed: no source files were specified' % cmd)
    if len(found) > 1 and not dest_is_dir:
        raise errors.InvalidArgument(
            'When using %s with more than one source file, the destination '
            'must be a directory and end with a /' % cmd)
    return found


def _one_source(root, orig, cmd, in_context):
    # Docker trims one leading '/', then one './'.
    path = orig[1:] if orig.startswith('/') else orig
    if path.startswith('./'):
        path = path[2:]
    if dockerignore.has_wildcards(path):
        try:
            regex = dockerignore.compile_glob(path)
        except errors.InvalidArgument:
            return []   # Docker ignores filepath.Match's error: no match
        return list(_walk_matches(root, regex, cmd))
    return [_single_source(root, path, cmd, in_context)]


def _escapes(path):
    """A path that lexically climbs out of the context: Docker refuses it
    (a symlink pointing out is resolved inside instead)."""
    cleaned = dockerignore.go_clean(path)
    return cleaned == '..' or cleaned.startswith('../')


def _forbidden(path):
    # Docker 20.10's words, empty parentheses included.
    return 'forbidden path outside the build context: %s ()' % path


def _single_source(root, path, cmd, in_context):
    if _escapes(path):
        raise errors.InvalidArgument('%s failed: %s' % (cmd, _forbidden(path)))
    real = _scoped_resolve(root, path)
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        shown = dockerignore.go_clean(path) if path else '.'
        if in_context:
            raise errors.InvalidArgument(
                '%s failed: file not found in build context or excluded by '
                '.dockerignore: stat %s: file does not exist' % (cmd, shown))
        raise errors.InvalidArgument(
            '%s failed: stat %s: file does not exist' % (cmd, shown))
    rel = dockerignore.go_clean(path) if path else '.'
    return Source(rel, real, stat.S_ISDIR(st.st_mode))


def _sorted_entries(path):
    try:
        return iter(sorted(os.scandir(path), key=lambda e: e.name))
    except OSError:
        return iter(())


def _walk_matches(root, regex, cmd):
    """Walk ``root`` depth first in lexical order, as Go's filepath.Walk,
    yielding matches; a matched directory is not entered.  The walk does
    not follow symlinks, but a matched symlink is resolved inside the
    root.  Iterative: a hostile tree may be thousands of levels deep."""
    stack = [('', _sorted_entries(root))]
    while stack:
        rel, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        child = rel + '/' + entry.name if rel else entry.name
        if regex.fullmatch(child):
            yield _single_source(root, child, cmd, True)
        elif entry.is_dir(follow_symlinks=False):
            stack.append((child, _sorted_entries(entry.path)))


# -- checksum ---------------------------------------------------------------

def checksum(sources, owners=False):
    """A stable hex digest of what COPY/ADD would copy from ``sources``.

    Covers each source's name, and for everything under it: relative path,
    file type and permission bits, symlink targets (never followed) and
    file contents (hashed in chunks).  Times are left out (Docker's tarsum
    ignores them); so are owners unless ``owners`` (COPY --from keeps the
    owners of the source image, a context's files get COPY's own).
    """
    h = hashlib.sha256()
    for src in sources:
        h.update(b'S\0%s\0' % _b(src.rel))
        try:
            st = os.stat(src.path)
            _hash_entry(h, '', src.path, st, owners)
            if stat.S_ISDIR(st.st_mode):
                _hash_tree(h, src.path, owners)
        except OSError as exc:
            # ENAMETOOLONG from a hostile depth, a fifo, and the like.
            raise errors.InvalidArgument('cannot read %s in the build '
                                         'context: %s'
                                         % (src.rel, exc.strerror or exc))
    return h.hexdigest()


def _b(text):
    return text.encode('utf-8', 'surrogateescape')


def _hash_entry(h, rel, path, st, owners=False):
    mode = st.st_mode
    h.update(b'E\0%s\0%o\0' % (_b(rel), mode & 0o177777))
    if owners:
        h.update(b'O\0%d:%d\0' % (st.st_uid, st.st_gid))
    if stat.S_ISLNK(mode):
        h.update(b'L\0%s\0' % _b(os.readlink(path)))
    elif stat.S_ISREG(mode):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fh = hashlib.sha256()
            size = 0
            while True:
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                fh.update(chunk)
        finally:
            os.close(fd)
        h.update(b'F\0%d\0%s\0' % (size, fh.hexdigest().encode()))


def _hash_tree(h, top, owners=False):
    stack = ['']
    while stack:
        rel = stack.pop()
        base = os.path.join(top, rel) if rel else top
        entries = sorted(os.scandir(base), key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            child = rel + '/' + entry.name if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            _hash_entry(h, child, entry.path, st, owners)
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(child)
        stack.extend(reversed(subdirs))


# -- body kinds -------------------------------------------------------------

def _extract_body(stream, root, limits):
    """Extract the request body into ``root``; 'tar' or 'dockerfile'."""
    if stream is None:
        return 'tar'
    try:
        data = archive.decompressed_stream(stream)
        block = archive.read_exact(data, 512)
    except (OSError, EOFError, ValueError) as exc:
        raise errors.InvalidArgument(
            'cannot read the build context: %s' % exc)
    if not block:
        return 'tar'        # an empty body is an empty context
    if not _looks_like_tar(block):
        _write_dockerfile(block, data, root)
        return 'dockerfile'
    counted = _CountingReader(archive.PrefixedReader(block, data), limits.max_size,
                              limits.size_hint)
    layer_limits = limits.layer_limits
    try:
        with archive.limits(layer_limits):
            archive.apply_tar(counted, root, whiteouts='delete',
                              max_size=limits.max_size)
    except errors.InsufficientStorage:
        raise
    except errors.LayerError as exc:
        raise errors.InvalidArgument('invalid build context: %s'
                                     % _context_words(str(exc)))
    return 'tar'


def _context_words(message):
    """archive's layer messages, said of a build context."""
    return message.replace('layer entry', 'entry') \
        .replace('the layer', 'the build context')


def _write_dockerfile(block, data, root):
    """The body is a bare Dockerfile: spool it (bounded) into the context."""
    fd = os.open(os.path.join(root, DEFAULT_DOCKERFILE),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o644)
    try:
        size = 0
        chunk = block
        while chunk:
            size += len(chunk)
            if size > MAX_DOCKERFILE_SIZE:
                raise errors.InvalidArgument(
                    'the Dockerfile is larger than %d bytes'
                    % MAX_DOCKERFILE_SIZE)
            archive._write_all(fd, chunk)
            try:
                chunk = data.read(_CHUNK)
            except (OSError, EOFError, ValueError) as exc:
                raise errors.InvalidArgument(
                    'cannot read the Dockerfile: %s' % exc)
    finally:
        os.close(fd)


def _read_bounded(path, limit, what):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise errors.InvalidArgument('%s is not a regular file' % what)
        if st.st_size > limit:
            raise errors.InvalidArgument('%s is larger than %d bytes'
                                         % (what, limit))
        chunks = []
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks)
    finally:
        os.close(fd)


def _read_dockerfile(root, name):
    """Docker's withDockerfileFromContext: the Dockerfile's text, looked up
    inside the context (a default name falls back to 'dockerfile')."""
    rel = name.replace('\\', '/')
    if _escapes(rel):
        raise errors.InvalidArgument(_forbidden(name))
    path = _scoped_resolve(root, rel)
    if not os.path.exists(path) and name == DEFAULT_DOCKERFILE:
        lower = _scoped_resolve(root, name.lower())
        if os.path.exists(lower):
            path, name = lower, name.lower()
    if not os.path.exists(path):
        raise errors.InvalidArgument(
            'Cannot locate specified Dockerfile: %s' % name)
    if os.path.isdir(path):
        raise errors.InvalidArgument(
            'Cannot locate specified Dockerfile: %s (it is a directory)'
            % name)
    data = _read_bounded(path, MAX_DOCKERFILE_SIZE, 'the Dockerfile')
    text = data.decode('utf-8', 'surrogateescape')
    if text.startswith('\ufeff'):
        text = text[1:]
    return text, name


def _apply_dockerignore(root, dockerfile_name, full):
    """Apply .dockerignore: with ``full``, remove everything it excludes;
    otherwise only the Dockerfile and .dockerignore themselves when it
    excludes them (Docker 20.10's daemon: the builder got their text, COPY
    does not see them)."""
    path = os.path.join(root, '.dockerignore')
    if not os.path.lexists(path) or os.path.islink(path) or \
            not os.path.isfile(path):
        return
    data = _read_bounded(path, MAX_DOCKERIGNORE_SIZE, '.dockerignore')
    matcher = dockerignore.Matcher(data)
    if not matcher:
        return
    if full:
        _prune(root, matcher)
        return
    for name in ('.dockerignore', dockerfile_name):
        if not matcher.matches(name):
            continue
        target = _scoped_resolve(root, name, follow_last=False)
        if os.path.lexists(target) and not os.path.isdir(target) or \
                os.path.islink(target):
            os.unlink(target)


def _prune(root, matcher):
    """Remove what ``matcher`` excludes, never following symlinks; an
    excluded directory is walked only when an exception may re-include
    something inside it (Docker's walker)."""
    stack = ['']
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            entries = list(it)
        for entry in entries:
            child = rel + '/' + entry.name if rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if not matcher.excluded(child, is_dir):
                if is_dir:
                    stack.append(child)
            elif is_dir and matcher.has_exclusions and \
                    matcher.must_walk(child):
                stack.append(child)
            elif is_dir:
                remove_tree(entry.path)
            else:
                os.unlink(entry.path)


# -- remote contexts --------------------------------------------------------

_GIT_PREFIXES = ('git://', 'github.com/', 'git@')
_GIT_URL_SUFFIX = re.compile(r'\.git(?:#.+)?$')


def is_git_remote(remote):
    """moby's urlutil.IsGitURL, plus local paths and file:// URLs."""
    if remote.startswith(('/', 'file://')):
        return True
    if remote.startswith(_GIT_PREFIXES):
        return True
    return remote.startswith(('http://', 'https://')) and \
        bool(_GIT_URL_SUFFIX.search(remote))


def _fetch_remote(remote, tmpdir, limits):
    if remote.startswith(('http://', 'https://')) and \
            not is_git_remote(remote):
        raise errors.InvalidArgument(
            'remote %s: downloading a build context or a Dockerfile from a '
            'URL is not supported by this engine (it has no network access '
            'for builds); send the context in the request body or name a '
            'git repository' % remote)
    if not is_git_remote(remote):
        raise errors.InvalidArgument(
            'remoteURL (%s) could not be recognized as URL' % remote)
    return _git_checkout(remote, tmpdir, limits), 'git'


def _git_env(home):
    return {
        'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'HOME': home,
        'LANG': 'C',
        'LC_ALL': 'C',
        # Never ask anyone for anything: no terminal, no askpass helper.
        'GIT_TERMINAL_PROMPT': '0',
        'GIT_ASKPASS': '/bin/false',
        'SSH_ASKPASS': '/bin/false',
        'GIT_SSH_COMMAND': 'ssh -o BatchMode=yes -o '
                           'StrictHostKeyChecking=accept-new',
        # No configuration of the host's users or system applies.
        'GIT_CONFIG_NOSYSTEM': '1',
        'GIT_CONFIG_GLOBAL': '/dev/null',
        'GIT_ALLOW_PROTOCOL': 'file:git:http:https:ssh',
    }


def _parse_git_remote(remote):
    """Split ``url#ref:subdir`` (Docker's fragment); github.com/ and plain
    local paths get their scheme."""
    url, _, fragment = remote.partition('#')
    ref, _, subdir = fragment.partition(':')
    if url.startswith('github.com/'):
        url = 'https://' + url
    return url, ref, subdir


def _git(args, cwd, env, timeout, what):
    try:
        proc = subprocess.run(['git'] + args, cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise errors.InvalidArgument('%s: git took longer than %d seconds'
                                     % (what, timeout))
    except FileNotFoundError:
        raise errors.EngineError('git is not installed on the engine host')
    if proc.returncode != 0:
        lines = proc.stdout.decode('utf-8', 'replace').strip().splitlines()
        fatal = [line for line in lines if line.startswith('fatal:')]
        raise _GitFailed((fatal or lines or
                          ['git exited with %d' % proc.returncode])[0])
    return proc.stdout


class _GitFailed(Exception):
    pass


def _git_checkout(remote, tmpdir, limits):
    url, ref, subdir = _parse_git_remote(remote)
    if url.startswith('-'):
        raise errors.InvalidArgument('remote %s: invalid git URL' % remote)
    if url.startswith('/'):
        if not os.path.isdir(url):
            raise errors.InvalidArgument(
                'remote %s: no such directory on the engine host' % url)
    home = os.path.join(tmpdir, 'home')
    os.mkdir(home, 0o700)
    checkout = os.path.join(tmpdir, 'git')
    os.mkdir(checkout, 0o755)
    env = _git_env(home)
    timeout = limits.git_timeout
    what = 'remote %s' % remote
    try:
        _git(['init', '-q'], checkout, env, timeout, what)
        _git(['remote', 'add', 'origin', '--', url], checkout, env, timeout,
             what)
        target = ref or 'HEAD'
        try:
            _git(['fetch', '-q', '--depth', '1', 'origin', '--', target],
                 checkout, env, timeout, what)
            target = 'FETCH_HEAD'
        except _GitFailed:
            try:
                # A "dumb" HTTP server cannot serve a shallow fetch; Docker
                # then fetches the ref in full.
                _git(['fetch', '-q', 'origin', '--', target], checkout, env,
                     timeout, what)
                target = 'FETCH_HEAD'
            except _GitFailed:
                if not ref:
                    raise
                # A commit id may not be fetchable by name: fetch everything.
                _git(['fetch', '-q', 'origin'], checkout, env, timeout, what)
                target = ref
        # --no-guess: a name that is only a remote branch must not make
        # git create a local branch (which --detach refuses).
        _git(['checkout', '-q', '--no-guess', '--detach', target, '--'],
             checkout, env, timeout, what)
        if os.path.exists(os.path.join(checkout, '.gitmodules')):
            _git(['submodule', 'update', '--init', '--recursive',
                  '--depth=1'], checkout, env, timeout, what)
    except _GitFailed as exc:
        text = str(exc)
        if 'not a git repository' in text or \
                'does not appear to be a git repository' in text:
            raise errors.InvalidArgument(
                '%s: not a git repository' % what)
        raise errors.InvalidArgument('%s: error fetching: %s' % (what, exc))
    root = checkout
    if subdir:
        cleaned = dockerignore.go_clean(subdir)
        if cleaned == '..' or cleaned.startswith('../'):
            raise errors.InvalidArgument(
                'error setting git context, %r not within git root' % subdir)
        root = _scoped_resolve(checkout, subdir)
        if not os.path.isdir(root):
            raise errors.InvalidArgument(
                'error setting git context, not a directory: %s' % subdir)
    _check_tree_limits(root, limits)
    return root


def _check_tree_limits(root, limits):
    """A checkout is bounded like a tar context."""
    max_entries = limits.layer_limits.max_entries
    size = entries = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
        entries += len(dirnames) + len(filenames)
        if limits.max_size and size > limits.max_size:
            raise errors.InvalidArgument(
                'the build context is larger than the limit of %d bytes%s'
                % (limits.max_size, limits.size_hint))
        if max_entries and entries > max_entries:
            raise errors.InvalidArgument(
                'the build context has more than %d entries%s'
                % (max_entries, limits.layer_limits.entries_hint))
