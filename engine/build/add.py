"""What ADD does beyond COPY, and COPY/ADD's --chown, as Docker 20.10's
classic builder does them.

* Local archives: a source file that is a tar (plain, gzip, bzip2 or xz:
  Docker 20.10's list, zstd is copied as a file) is extracted into the
  destination directory.  What decides is the content, not the name: the
  decompressed data must start with a valid tar header.  Extraction is the
  engine's hostile-layer extraction (``engine.archive.apply_tar``): no entry
  lands outside the destination directory, symlinks (also those of the
  image) resolve inside it as in Docker's chrooted untar, hardlinks only
  reach entries of the archive, device nodes are skipped, sizes, entry
  counts and free space are bounded.  Owners in the archive are kept (also
  with --chown, which Docker 20.10 ignores for archives).
* URLs (http, https): downloaded with ``requests`` into a private directory
  (redirects and time limited, size bounded), saved under the last component
  of the URL's path, mode 0600, mtime from Last-Modified (else the epoch);
  never extracted.  A failure is "ADD failed: ..." naming the URL and why.
* --chown=user[:group]: names are looked up in the destination image's
  /etc/passwd and /etc/group (read without leaving its root), numbers are
  taken as they are, a user alone means the group of the same name.
"""

import email.utils
import errno
import os
import socket
import stat
import tarfile
import time
import urllib.parse

import requests
from oslo_log import log as logging

from engine import archive
from engine import errors
from engine.build import dockerfile as df
from engine.runtime import spec as spec_mod

LOG = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Go's http.Client follows 10 redirects.
MAX_REDIRECTS = 10
# (connect, read) seconds: a stalled server fails the build, not hang it;
# a server dripping bytes is stopped after FETCH_DEADLINE seconds in all.
FETCH_TIMEOUT = (30, 120)
FETCH_DEADLINE = 3600
# An error page quoted in the message is cut here.
_MAX_ERROR_BODY = 4096
_MAX_ID = 2 ** 31 - 1

_ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'


def is_url(source):
    """moby's urlutil.IsURL: http:// or https://."""
    return source.startswith(('http://', 'https://'))


# -- archives ---------------------------------------------------------------

def is_archive(path):
    """True when ``path`` is a tar, plain or gzip/bzip2/xz-compressed, as
    moby's isArchivePath decides (its first tar header reads)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                     os.O_CLOEXEC)
    except OSError:
        return False
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return False
    with os.fdopen(fd, 'rb') as f:
        try:
            magic = f.read(4)
            if magic == _ZSTD_MAGIC:
                return False    # Docker 20.10 does not decompress zstd
            f.seek(0)
            block = archive.read_exact(archive.decompressed_stream(f), 512)
        except Exception:  # noqa: BLE001 - corrupt data: not an archive
            return False
    if len(block) < 512 or block == b'\0' * 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block, 'utf-8', 'surrogateescape')
    except tarfile.HeaderError:
        return False
    return True


def extract(path, target, max_size=0, layer_limits=None):
    """Extract the archive at ``path`` into the directory ``target`` with
    the hostile-layer rules (see the module doc)."""
    layer_limits = layer_limits or archive.LayerLimits()
    try:
        with open(path, 'rb') as f:
            with archive.limits(layer_limits):
                archive.apply_tar(archive.decompressed_stream(f), target,
                                  whiteouts='delete', max_size=max_size)
    except (errors.InsufficientStorage, df.BuildError):
        raise
    except errors.LayerError as exc:
        raise df.BuildError('failed to copy files: %s' % _archive_words(
            str(exc)))
    except (OSError, EOFError, ValueError) as exc:
        raise df.BuildError('failed to copy files: cannot read the archive: '
                            '%s' % exc)


def _archive_words(message):
    return message.replace('layer entry', 'archive entry') \
        .replace('the layer', 'the archive').replace('a layer', 'an archive')


# -- URLs -------------------------------------------------------------------

def url_filename(url):
    """The name a downloaded file gets: the last component of the URL's
    path (Docker's filepath.Base), or BuildError."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise df.BuildError('ADD failed: invalid URL %s: %s' % (url, exc))
    if not parts.hostname:
        raise df.BuildError('ADD failed: invalid URL %s: no host' % url)
    path = parts.path
    name = path.rstrip('/').rpartition('/')[2] if path.strip('/') else ''
    if not name or path.endswith('/') or name in ('.', '..'):
        raise df.BuildError('ADD failed: cannot determine filename for '
                            'source %s' % url)
    return urllib.parse.unquote(name)


def _reason(exc, url=None):
    """Words for why a request failed, as Go's net errors say them."""
    text = str(exc)
    host = port = None
    if url:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == 'https' else 80)
        except ValueError:
            port = None
    refused = 'dial tcp %s:%s: connect: connection refused' % (host, port) \
        if host else 'connect: connection refused'
    unknown = 'dial tcp: lookup %s: no such host' % host if host \
        else 'no such host'
    inner, seen = exc, set()
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, socket.gaierror):
            return unknown
        if isinstance(inner, ConnectionRefusedError) or (
                isinstance(inner, OSError) and
                inner.errno == errno.ECONNREFUSED):
            return refused
        nxt = inner.__cause__ or inner.__context__
        if nxt is None and inner.args and isinstance(inner.args[0], BaseException):
            nxt = inner.args[0]
        if nxt is None and hasattr(inner, 'reason') and \
                isinstance(inner.reason, BaseException):
            nxt = inner.reason
        inner = nxt
    if isinstance(exc, requests.exceptions.Timeout):
        return 'timeout (no answer within %d seconds)' % FETCH_TIMEOUT[1]
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return 'stopped after %d redirects' % MAX_REDIRECTS
    if 'Name or service not known' in text or \
            'Temporary failure in name resolution' in text or \
            'No address associated' in text:
        return unknown
    if 'Connection refused' in text:
        return refused
    return text


def fetch(url, dest_dir, max_size=0, space_guard=None, hint=''):
    """Download ``url`` into ``dest_dir``/<name>; returns (name, path).

    The body is streamed to disk, never held in memory, and bounded by
    ``max_size`` (0: unbounded) and the free-space reserve of
    ``space_guard`` (a content.SpaceGuard)."""
    name = url_filename(url)
    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    # The host's proxy settings apply (as Go's ProxyFromEnvironment), but
    # not its .netrc credentials nor CA bundle overrides.
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))
    try:
        try:
            resp = session.get(url, stream=True, timeout=FETCH_TIMEOUT,
                               allow_redirects=True)
        except requests.exceptions.InvalidURL as exc:
            raise df.BuildError('ADD failed: invalid URL %s: %s' % (url, exc))
        except requests.exceptions.RequestException as exc:
            raise df.BuildError('ADD failed: Get "%s": %s'
                                % (url, _reason(exc, url)))
        with resp:
            if resp.status_code >= 400 or resp.status_code < 200:
                body = b''
                try:
                    for chunk in resp.iter_content(1024):
                        body += chunk
                        if len(body) >= _MAX_ERROR_BODY:
                            break
                except requests.exceptions.RequestException:
                    pass
                text = body[:_MAX_ERROR_BODY].decode('utf-8', 'replace')
                raise df.BuildError('ADD failed: failed to GET %s with status '
                                    '%d %s: %s' % (url, resp.status_code,
                                                   resp.reason or '',
                                                   text.strip()))
            path = os.path.join(dest_dir, 'download')
            os.mkdir(path, 0o700)
            path = os.path.join(path, name)
            _save(resp, url, path, max_size, space_guard, hint)
            mtime = _last_modified(resp.headers.get('Last-Modified'))
            os.utime(path, (mtime, mtime))
    finally:
        session.close()
    return name, path


def _save(resp, url, path, max_size, space_guard, hint):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        size = 0
        deadline = time.monotonic() + FETCH_DEADLINE
        try:
            for chunk in resp.iter_content(_CHUNK):
                if time.monotonic() > deadline:
                    raise df.BuildError('ADD failed: reading %s: timeout (more '
                                        'than %d seconds)' % (url, FETCH_DEADLINE))
                size += len(chunk)
                if max_size and size > max_size:
                    raise df.BuildError(
                        'ADD failed: %s is larger than the limit of %d '
                        'bytes%s' % (url, max_size, hint))
                if space_guard is not None:
                    space_guard.claim(len(chunk))
                archive._write_all(fd, chunk)
        except requests.exceptions.RequestException as exc:
            raise df.BuildError('ADD failed: reading %s: %s'
                                % (url, _reason(exc, url)))
    finally:
        os.close(fd)


def _last_modified(value):
    """Seconds since the epoch of a Last-Modified header; 0 without one
    (Docker sets the zero time, which its Chtimes turns into the epoch)."""
    if not value:
        return 0
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0
    if parsed is None:
        return 0
    try:
        return max(0, int(parsed.timestamp()))
    except (OverflowError, ValueError, OSError):
        return 0


# -- --chown ------------------------------------------------------------------

def _chown_error(text):
    return df.BuildError('unable to convert uid/gid chown string to host '
                         'mapping: %s' % text)


def _parse_number(text):
    """Go's strconv.Atoi: an optionally signed decimal, or None."""
    body = text[1:] if text[:1] in '+-' else text
    if body and body.isascii() and body.isdecimal():
        return int(text)
    return None


def _lookup(rootfs, db, name, what):
    number = _parse_number(name)
    if number is not None:
        if not 0 <= number <= _MAX_ID:
            raise _chown_error("can't find %s for %s %s: ids must be in range "
                               "0-%d" % ('uid' if what == 'user' else 'gid',
                                         what, name, _MAX_ID))
        return number
    for row in spec_mod._read_db(rootfs, db) or ():
        if len(row) >= 3 and row[0] == name:
            value = _parse_number(row[2])
            if value is not None and 0 <= value <= _MAX_ID:
                return value
    raise _chown_error("can't find %s for %s %s: no such %s: %s"
                       % ('uid' if what == 'user' else 'gid', what, name,
                          what, name))


def resolve_chown(rootfs, chown):
    """``--chown`` value -> (uid, gid), names from ``rootfs``; BuildError
    with Docker's words when it cannot be done."""
    parts = chown.split(':')
    if len(parts) > 2:
        raise _chown_error('invalid chown string format: %s' % chown)
    user = parts[0]
    group = parts[1] if len(parts) == 2 else parts[0]
    try:
        uid = _lookup(rootfs, 'etc/passwd', user, 'user')
        gid = _lookup(rootfs, 'etc/group', group, 'group')
    except errors.InvalidArgument as exc:
        if isinstance(exc, df.BuildError):
            raise
        raise _chown_error(str(exc))
    return uid, gid
