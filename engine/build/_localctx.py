"""A minimal build context until engine.build.context (ctx's part) lands:
a tar body (safe extraction) or a bare Dockerfile body.  Delete on merge."""

import collections
import glob
import hashlib
import io
import os
import shutil
import stat

from engine import archive
from engine import errors

Source = collections.namedtuple('Source', 'rel path is_dir')
MAX_DOCKERFILE = 1 << 20


class _Prefixed(io.RawIOBase):
    def __init__(self, head, rest):
        self._head = head
        self._rest = rest

    def readable(self):
        return True

    def readinto(self, buf):
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def _is_archive(head):
    if head[:2] == b'\x1f\x8b' or head[:3] == b'BZh' or head[:6] == b'\xfd7zXZ\x00':
        return True
    return len(head) >= 262 and head[257:262] == b'ustar'


class BuildContext:
    def __init__(self, root, dockerfile_name):
        self.root = root
        self.dockerfile_name = dockerfile_name
        self.dockerfile = ''

    @classmethod
    def from_request(cls, stream, headers, params, workdir, limits=None):
        if params.get('remote'):
            raise errors.InvalidArgument('remote build contexts are not supported yet')
        root = os.path.join(workdir, 'context')
        os.mkdir(root, 0o700)
        head = stream.read(512)
        name = params.get('dockerfile') or 'Dockerfile'
        if _is_archive(head):
            body = io.BufferedReader(_Prefixed(head, stream))
            try:
                archive.apply_tar(archive.decompressed_stream(body), root,
                                  whiteouts='delete')
            except errors.EngineError as exc:
                raise errors.InvalidArgument('invalid build context: %s' % exc)
        else:
            data = head + stream.read(MAX_DOCKERFILE + 1 - len(head))
            if len(data) > MAX_DOCKERFILE:
                raise errors.InvalidArgument('the Dockerfile is larger than %d bytes'
                                             % MAX_DOCKERFILE)
            name = 'Dockerfile'
            with open(os.path.join(root, name), 'wb') as f:
                f.write(data)
        ctx = cls(root, name)
        path = ctx._inside(name)
        try:
            with open(path, 'rb') as f:
                ctx.dockerfile = f.read(MAX_DOCKERFILE).decode('utf-8', 'replace')
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise errors.InvalidArgument(
                'Cannot locate specified Dockerfile: %s' % name)
        return ctx

    def _inside(self, rel):
        norm = os.path.normpath('/' + rel).lstrip('/')
        path = os.path.join(self.root, norm)
        real = os.path.realpath(path)
        if real != self.root and not real.startswith(self.root + '/'):
            raise errors.InvalidArgument('forbidden path outside the build context: %s' % rel)
        return path

    def sources(self, patterns, dest_is_dir=False):
        out = []
        for pat in patterns:
            norm = os.path.normpath('/' + pat).lstrip('/')
            self._inside(norm)
            matches = sorted(glob.glob(os.path.join(glob.escape(self.root), norm)))
            if not norm:
                matches = [self.root]
            if not matches:
                raise errors.InvalidArgument(
                    'COPY failed: file not found in build context or excluded by '
                    '.dockerignore: stat %s: file does not exist' % pat)
            for m in matches:
                rel = os.path.relpath(m, self.root)
                real = os.path.realpath(m)
                if real != self.root and not real.startswith(self.root + '/'):
                    raise errors.InvalidArgument(
                        'forbidden path outside the build context: %s' % pat)
                out.append(Source(rel, m, os.path.isdir(m) and not os.path.islink(m)))
        return out

    def checksum(self, sources):
        h = hashlib.sha256()
        for src in sources:
            for path in _walk(src.path):
                st = os.lstat(path)
                rel = os.path.relpath(path, self.root)
                h.update(('%s\0%o\0' % (rel, st.st_mode)).encode())
                if stat.S_ISREG(st.st_mode):
                    with open(path, 'rb') as f:
                        for chunk in iter(lambda: f.read(1 << 20), b''):
                            h.update(chunk)
                elif stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(path).encode())
        return h.hexdigest()

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


def _walk(path):
    yield path
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirs, files in os.walk(path):
            dirs.sort()
            for n in sorted(dirs + files):
                yield os.path.join(dirpath, n)
