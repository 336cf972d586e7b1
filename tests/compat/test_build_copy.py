"""COPY and ADD, completely: --chown, --from, local archives and URLs.

Interop tests send the same context to Docker 20.10's classic builder (the
``dockerd`` fixture) and to the engine and compare what a container of the
built image sees (owners, modes, contents) or the error; the other tests
check the engine through the docker CLI (DOCKER_BUILDKIT=0) and the API,
reading every result back from a container of the built image."""

import bz2
import functools
import gzip
import http.server
import io
import json
import lzma
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import urllib.parse
import uuid

import pytest

from tests.compat.conftest import NOKIT

from tests import daemons
from tests.compat.test_build_context_interop import API, build, demux

pytestmark = pytest.mark.compat

# A layer size limit the busybox image fits in.
LIMIT = 16 << 20
STAT = 'stat -c "%n %u:%g %a" $(find /out | sort)'


# -- helpers -------------------------------------------------------------------

def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    """A tar of (name, kind, data[, header attributes]) entries; kinds: f
    file, d dir, l symlink, h hardlink, c char device."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=fmt) as tf:
        for entry in entries:
            name, kind, data = entry[:3]
            attrs = entry[3] if len(entry) > 3 else {}
            info = tarfile.TarInfo(name)
            info.mtime = 1600000000
            info.mode = 0o755 if kind == 'd' else 0o644
            for k, v in attrs.items():
                setattr(info, k, v)
            if kind == 'f':
                data = data.encode() if isinstance(data, str) else data
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {'d': tarfile.DIRTYPE, 'l': tarfile.SYMTYPE,
                         'h': tarfile.LNKTYPE, 'c': tarfile.CHRTYPE}[kind]
            if kind in 'lh':
                info.linkname = data
            if kind == 'c':
                info.devmajor, info.devminor = 1, 3
            tf.addfile(info)
    return buf.getvalue()


def context(dockerfile, files=()):
    return tar_bytes((('Dockerfile', 'f', dockerfile),) + tuple(files))


def run_script(sock, tag, script, remove_image=True):
    """Output of ``sh -c script`` in a container of ``tag``."""
    status, _, body = daemons.api(
        sock, 'POST', API + '/containers/create',
        {'Image': tag, 'Cmd': ['sh', '-c', script],
         'HostConfig': {'NetworkMode': 'none'}}, timeout=60)
    assert status == 201, body
    cid = json.loads(body)['Id']
    try:
        daemons.api(sock, 'POST', API + '/containers/%s/start' % cid,
                    timeout=60, expect=204)
        daemons.api(sock, 'POST', API + '/containers/%s/wait' % cid,
                    timeout=60, expect=200)
        _, _, logs = daemons.api(
            sock, 'GET', API + '/containers/%s/logs?stdout=1&stderr=1' % cid,
            timeout=60)
        return demux(logs)
    finally:
        daemons.api(sock, 'DELETE', API + '/containers/%s?force=1' % cid,
                    timeout=60)
        if remove_image:
            remove_image_tag(sock, tag)


def remove_image_tag(sock, tag):
    daemons.api(sock, 'DELETE', API + '/images/%s?force=1' % tag, timeout=60)


def outcome(sock, dockerfile, files=(), script=STAT, **params):
    """'ERROR: message' or what ``script`` prints in the built image."""
    error, text, tag = build(sock, context(dockerfile, files), **params)
    if error is not None:
        return 'ERROR: ' + error
    return run_script(sock, tag, script)


def both(engine, dockerd, dockerfile, files=(), script=STAT):
    theirs = outcome(dockerd.sock, dockerfile, files, script)
    ours = outcome(engine.sock, dockerfile, files, script)
    return ours, theirs


def build_tagged(sock, dockerfile, name, files=()):
    """Build and tag as ``name`` (the same name on both daemons)."""
    error, text, tag = build(sock, context(dockerfile, files))
    assert error is None, text
    repo, _, version = name.rpartition(':')
    daemons.api(sock, 'POST', API + '/images/%s/tag?%s' % (
        tag, urllib.parse.urlencode({'repo': repo, 'tag': version})),
        timeout=60, expect=201)
    remove_image_tag(sock, tag)


def stream_of(sock, dockerfile, files=(), **params):
    """(error, stream text, tag) of a build; the caller removes the tag."""
    return build(sock, context(dockerfile, files), **params)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def http_files(tmp_path_factory):
    """A throwaway http server on 127.0.0.1 serving a temp directory:
    (base URL, directory path)."""
    root = tmp_path_factory.mktemp('www')
    (root / 'file.txt').write_text('hello url\n')
    (root / 'data.tar').write_bytes(tar_bytes((('t/f', 'f', 'in tar\n'),)))
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % server.server_address[1], root
    server.shutdown()
    server.server_close()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


FILES = (('a.txt', 'f', 'a\n'), ('d/x', 'f', 'x\n', {'uid': 5, 'gid': 6}),
         ('s/suid', 'f', 's\n', {'mode': 0o6755}))
ARCHIVE = tar_bytes((
    ('t', 'd', None, {'uid': 9, 'gid': 9, 'mode': 0o700}),
    ('t/f', 'f', 'tf\n', {'uid': 5, 'gid': 6, 'mode': 0o640}),
    ('t/hard', 'h', 't/f', {'uid': 5, 'gid': 6, 'mode': 0o640}),
    ('t/link', 'l', '/etc/passwd'),
))


# -- --chown ---------------------------------------------------------------------

CHOWNS = [
    'COPY --chown=daemon a.txt /out/',
    'COPY --chown=nobody:daemon a.txt d /out/',
    'COPY --chown=7:nogroup a.txt /out/',
    'COPY --chown=daemon:77 a.txt /out/',
    'COPY --chown=1000 a.txt /out/',
    'ARG U=daemon\nENV G=nogroup\nCOPY --chown=${U}:$G a.txt /out/',
    'COPY --chown=5:5 d /out',
    'COPY --chown= a.txt /out/',
    'COPY d /out/',
    'ADD --chown=daemon d /out/',
    # setuid and setgid bits: what survives the chown.
    'COPY s /out/',
    'COPY s/suid /out/',
    'COPY --chown=5:5 s /out/',
    # Parents COPY makes belong to the --chown owner as well.
    'COPY --chown=5:5 a.txt /out/p/q/r',
    # An existing destination directory keeps its owner.
    'RUN mkdir -p /out && chown 3:3 /out\nCOPY --chown=5:5 d /out/',
    # The error cases, with Docker's words.
    'COPY --chown=nobody a.txt /out/',
    'COPY --chown=daemon:nogrp a.txt /out/',
    'COPY --chown=nosuchuser a.txt /out/',
    'COPY --chown=1:2:3 a.txt /out/',
    'COPY --chmod=755 a.txt /out/',
    'COPY --foo=1 a.txt /out/',
    'ADD --from=busybox a.txt /out/',
]


@pytest.mark.parametrize('instr', CHOWNS)
def test_chown_as_docker(engine, dockerd, instr):
    ours, theirs = both(engine, dockerd, 'FROM busybox\n%s\n' % instr, FILES)
    assert ours == theirs


def test_chown_through_the_cli(docker_cli, tmp_path, images_to_remove):
    """docker build -t (DOCKER_BUILDKIT=0) from a directory, then docker run
    reads the owners back; the --chown value is part of the cache key."""
    ctx = tmp_path / 'ctx'
    (ctx / 'sub').mkdir(parents=True)
    (ctx / 'sub' / 'f').write_text('f\n')
    (ctx / 'Dockerfile').write_text(
        'FROM busybox\nARG WHO=daemon\nCOPY --chown=$WHO:nogroup sub /srv/\n')
    tag = 'compat-copy-chown-%s' % uuid.uuid4().hex[:8]
    images_to_remove.append(tag)
    res = docker_cli(['build', '-t', tag, str(ctx)], env=NOKIT)
    assert res.returncode == 0, res.stderr
    res = docker_cli(['run', '--rm', tag, 'stat', '-c', '%u:%g', '/srv',
                      '/srv/f'])
    assert res.stdout.split() == ['1:65534', '1:65534']
    res = docker_cli(['build', '-t', tag, '--build-arg', 'WHO=nobody',
                      str(ctx)], env=NOKIT)
    assert res.returncode == 0, res.stderr
    assert 'Using cache' not in res.stdout.split('COPY')[1]
    res = docker_cli(['run', '--rm', tag, 'stat', '-c', '%u', '/srv/f'])
    assert res.stdout.split() == ['65534']


# -- --from ----------------------------------------------------------------------

@pytest.fixture
def source_image(engine, dockerd):
    """An image named alike on both daemons with files of other owners."""
    name = 'compat-copy-src-%s:latest' % uuid.uuid4().hex[:8]
    dockerfile = ('FROM busybox\n'
                  'RUN mkdir -p /src/sub && echo hi > /src/f && '
                  'echo deep > /src/sub/g && chown 5:6 /src/f && '
                  'chown -R 7:8 /src/sub && chmod 4750 /src/f && '
                  'chmod 700 /src && ln -s /etc/passwd /src/abs && '
                  'ln -s ../../../../etc/group /src/rel\n')
    for sock in (engine.sock, dockerd.sock):
        build_tagged(sock, dockerfile, name)
    yield name
    for sock in (engine.sock, dockerd.sock):
        remove_image_tag(sock, name)


FROMS = [
    'COPY --from={src} /src /out',
    'COPY --from={src} /src/ /out/',
    'COPY --from={src} /src/f /src/sub /out/',
    'COPY --from={src} --chown=daemon /src /out/',
    'COPY --from={src} /src/s* /out/',
    # Symlink sources resolve inside the source image's root.
    'COPY --from={src} /src/abs /src/rel /out/',
    'COPY --from={src} /nope /out/',
    'COPY --from={src} /nope* /out/',
    'COPY --from={src} ../../src/f /out/',
    'COPY --from=busybox:latest /etc/passwd /out/',
]


@pytest.mark.parametrize('instr', FROMS)
def test_copy_from_image_as_docker(engine, dockerd, source_image, instr):
    script = STAT + '; cat /out/f /out/abs /out/rel 2>/dev/null | head -3'
    ours, theirs = both(engine, dockerd, 'FROM busybox\n%s\n'
                        % instr.format(src=source_image), FILES, script)
    assert ours == theirs


def test_copy_from_unknown_image(engine):
    error, _, _ = stream_of(engine.sock, 'FROM busybox\n'
                            'COPY --from=nosuchimage:1 /x /out/\n')
    assert error.startswith('invalid from flag value nosuchimage:1')


def test_copy_from_stage(engine, dockerd):
    """COPY --from a named stage and a stage index (needs the build loop's
    multi-stage support)."""
    dockerfile = ('FROM busybox AS first\n'
                  'RUN mkdir /src && echo one > /src/f && chown 5:6 /src/f\n'
                  'FROM busybox\n'
                  'RUN echo two > /two\n'
                  'FROM busybox\n'
                  'COPY --from=first /src/f /out/f1\n'
                  'COPY --from=1 /two /out/\n')
    script = STAT + '; cat /out/f1 /out/two'
    theirs = outcome(dockerd.sock, dockerfile, (), script)
    ours = outcome(engine.sock, dockerfile, (), script)
    if 'multi-stage builds are not supported yet' in ours:
        pytest.skip('multi-stage builds are the build loop\'s part')
    assert ours == theirs


def test_copy_from_cache_follows_the_source(engine, source_image):
    """The cache key is the content copied: the same source hits, another
    content (here: other owners) misses."""
    dockerfile = 'FROM busybox\nCOPY --from=%s /src /out/\n'
    error, text, tag = stream_of(engine.sock, dockerfile % source_image)
    assert error is None, text
    error, text, tag2 = stream_of(engine.sock, dockerfile % source_image)
    assert error is None, text
    assert 'Using cache' in text.split('Step 2/2')[1]
    other = 'compat-copy-other-%s:latest' % uuid.uuid4().hex[:8]
    build_tagged(engine.sock, 'FROM %s\nRUN chown 9:9 /src/f\n' % source_image,
                 other)
    try:
        error, text, tag3 = stream_of(engine.sock, dockerfile % other)
        assert error is None, text
        assert 'Using cache' not in text.split('Step 2/2')[1]
        assert run_script(engine.sock, tag3, 'stat -c %u:%g /out/f') == '9:9\n'
    finally:
        for t in (tag, tag2, other):
            remove_image_tag(engine.sock, t)


def _mounts_under(root):
    with open('/proc/self/mountinfo') as f:
        return [line for line in f if root in line]


def test_copy_from_unmounts_even_on_error(engine, source_image):
    before = _mounts_under(engine.root)
    for instr in ('COPY --from=%s /src/f /nope/ /out/' % source_image,
                  'COPY --from=%s /src/f /out/\nRUN false' % source_image,
                  'COPY --from=%s --chown=nouser /src/f /out/' % source_image):
        error, _, _ = stream_of(engine.sock, 'FROM busybox\n%s\n' % instr)
        assert error
    assert _mounts_under(engine.root) == before
    tmp = os.path.join(engine.root, 'images', 'tmp')
    assert [n for n in os.listdir(tmp) if n.startswith('build-')] == []


# -- ADD of local archives ---------------------------------------------------------

ARCHIVES = [
    ('ADD a.tar /out/', ('a.tar', 'f', ARCHIVE)),
    ('ADD a.tar /out', ('a.tar', 'f', ARCHIVE)),
    ('ADD a.tgz /out/z.tar', ('a.tgz', 'f', gzip.compress(ARCHIVE))),
    ('ADD a.bz /out/', ('a.bz', 'f', bz2.compress(ARCHIVE))),
    ('ADD a.xz /out/', ('a.xz', 'f', lzma.compress(ARCHIVE))),
    ('ADD *.tar /out/', ('a.tar', 'f', ARCHIVE)),
    # --chown does not apply to what an archive holds (Docker 20.10).
    ('ADD --chown=daemon a.tar /out/', ('a.tar', 'f', ARCHIVE)),
    # Only the content decides: these are copied as they are.
    ('ADD a.gz /out/', ('a.gz', 'f', gzip.compress(b'not a tar'))),
    ('ADD a.tar /out/', ('a.tar', 'f', 'plain text')),
    ('ADD a.tar /out/', ('a.tar', 'f', b'\0' * 1024)),
    ('ADD d /out/', ('d/a.tar', 'f', ARCHIVE)),
    ('COPY a.tar /out/', ('a.tar', 'f', ARCHIVE)),
    # Absolute names land under the destination.
    ('ADD a.tar /out/', ('a.tar', 'f', tar_bytes((('/abs/x', 'f', 'x'),)))),
    # Whiteouts in an archive delete (Docker's untar honours them).
    ('RUN mkdir /out && touch /out/keep /out/gone\nADD a.tar /out/',
     ('a.tar', 'f', tar_bytes((('.wh.gone', 'f', ''), ('n', 'f', 'n'))))),
    ('ADD a.tar /out/', ('a.tar', 'f', tar_bytes(
        (('h', 'h', '../../etc/passwd'),)))),
]


@pytest.mark.parametrize('instr,entry', ARCHIVES)
def test_add_archive_as_docker(engine, dockerd, instr, entry):
    script = (STAT + '; stat -c "%n %h %F" /out/t/hard /out/t/link 2>&1;'
              'cat /out/t/f /out/a.tar 2>/dev/null | head -c 100; '
              'md5sum /out/a.gz 2>/dev/null')
    ours, theirs = both(engine, dockerd, 'FROM busybox\n%s\n' % instr,
                        (entry,), script)
    if theirs.startswith('ERROR:'):
        # Both refuse; the words of Docker's untar process differ.
        assert ours.startswith('ERROR: failed to copy files: '), ours
    else:
        assert ours == theirs


def test_add_zstd_is_copied_not_extracted(engine, dockerd, tmp_path):
    """Docker 20.10 does not decompress zstd archives (the engine's layer
    code can): ADD copies the file as it is."""
    if not shutil.which('zstd'):
        pytest.skip('the zstd command is not installed')
    (tmp_path / 'a.tar').write_bytes(ARCHIVE)
    subprocess.run(['zstd', '-q', str(tmp_path / 'a.tar')], check=True)
    data = (tmp_path / 'a.tar.zst').read_bytes()
    ours, theirs = both(engine, dockerd, 'FROM busybox\nADD a.tar.zst /out/\n',
                        (('a.tar.zst', 'f', data),))
    assert ours == theirs
    assert '/out/a.tar.zst 0:0 644' in ours


HOSTILE = {
    'climbs out': tar_bytes((('../../../evil', 'f', 'x'),)),
    'writes through an absolute link': tar_bytes((
        ('lnk', 'l', '/etc'), ('lnk/pwned', 'f', 'x'))),
    'writes through a climbing link': tar_bytes((
        ('lnk', 'l', '../../../../etc'), ('lnk/pwned', 'f', 'x'))),
    'hardlinks out': tar_bytes((('h', 'h', '/../../etc/shadow'),)),
    'replaces the dest with a link': tar_bytes((
        ('.', 'd', None), ('x', 'l', '/etc'), ('x/pwned', 'f', 'x'))),
    'device node': tar_bytes((('null', 'c', None), ('ok', 'f', 'ok'))),
}


@pytest.mark.parametrize('name', sorted(HOSTILE))
def test_add_hostile_archive(engine, name):
    """Nothing an archive holds reaches outside the destination: the build
    is refused, or everything lands under /out (links resolved inside it,
    as Docker's chrooted untar); device nodes are not created."""
    dockerfile = 'FROM busybox\nRUN mkdir /out\nADD a.tar /out/\n'
    error, text, tag = stream_of(engine.sock, dockerfile,
                                 (('a.tar', 'f', HOSTILE[name]),))
    if error is not None:
        assert error.startswith('failed to copy files: archive entry'), error
        return
    seen = run_script(engine.sock, tag,
                      'ls /etc/pwned /evil /pwned 2>&1; '
                      'find /out -type c -o -type b; cat /etc/passwd | head -1; '
                      'find / -xdev -name pwned 2>/dev/null')
    assert 'No such file or directory' in seen
    assert seen.count('No such file') == 3, seen
    assert '/out/null' not in seen
    assert 'root:x:0:0' in seen
    for line in seen.splitlines():
        if line.endswith('/pwned'):
            assert line.startswith('/out/'), seen


def test_add_archive_size_bounded(engine_factory):
    """An archive that unpacks beyond the layer limit is refused."""
    eng = engine_factory(config='[engine]\nmax_layer_size = %d\n' % LIMIT)
    big = tar_bytes((('big', 'f', b'\0' * (LIMIT + 4096)),))
    error, _, _ = build(eng.sock, context(
        'FROM busybox\nADD a.tgz /out/\n', (('a.tgz', 'f', gzip.compress(big)),)))
    assert error is not None and 'larger than the limit of %d' % LIMIT in error


def test_add_archive_through_the_cli(docker_cli, tmp_path, images_to_remove):
    ctx = tmp_path / 'ctx'
    ctx.mkdir()
    (ctx / 'app.tar.gz').write_bytes(gzip.compress(ARCHIVE))
    (ctx / 'Dockerfile').write_text('FROM busybox\nADD app.tar.gz /opt/app\n')
    tag = 'compat-copy-add-%s' % uuid.uuid4().hex[:8]
    images_to_remove.append(tag)
    res = docker_cli(['build', '-t', tag, str(ctx)], env=NOKIT)
    assert res.returncode == 0, res.stderr
    res = docker_cli(['run', '--rm', tag, 'sh', '-c',
                      'cat /opt/app/t/f; stat -c "%u:%g %a" /opt/app/t/f '
                      '/opt/app/t; ls /opt/app'])
    assert res.stdout == 'tf\n5:6 640\n9:9 700\nt\n'


# -- ADD of URLs ---------------------------------------------------------------------

URLS = [
    'ADD {url}/file.txt /out/',
    'ADD {url}/file.txt /out/n',
    'ADD {url}/data.tar /out/',
    'ADD --chown=daemon {url}/file.txt /out/',
    'ADD {url}/file.txt?x=1 /out/',
    'ADD {url}/file.txt a.txt /out/',
    'ADD {url}/file.txt *.nothing a.txt /out/',
    'ADD {url}/ /out/',
    'ADD {url}/file.txt a.txt /out',
    'ADD {url}/nope /out/',
    'COPY {url}/file.txt /out/',
]


@pytest.mark.parametrize('instr', URLS)
def test_add_url_as_docker(engine, dockerd, http_files, instr):
    url, _ = http_files
    script = 'stat -c "%n %u:%g %a %s" $(find /out | sort); cat /out/*'
    ours, theirs = both(engine, dockerd, 'FROM busybox\n%s\n'
                        % instr.format(url=url), FILES, script)
    assert ours == theirs


def test_add_url_mtime_from_last_modified(engine, http_files):
    url, root = http_files
    os.utime(root / 'file.txt', (1500000000, 1500000000))
    seen = outcome(engine.sock, 'FROM busybox\nADD %s/file.txt /out/\n' % url,
                   (), 'stat -c "%Y %a" /out/file.txt; cat /out/file.txt')
    assert seen == '1500000000 600\nhello url\n'


def test_add_url_refused(engine, dockerd):
    url = 'http://127.0.0.1:%d/x.txt' % free_port()
    ours, theirs = both(engine, dockerd, 'FROM busybox\nADD %s /out/\n' % url)
    assert ours == theirs
    assert url in ours and 'connection refused' in ours


def test_add_url_unknown_host(engine):
    url = 'http://nosuchhost.invalid/x.txt'
    error, _, _ = stream_of(engine.sock, 'FROM busybox\nADD %s /out/\n' % url)
    assert error == ('ADD failed: Get "%s": dial tcp: lookup '
                     'nosuchhost.invalid: no such host' % url)


def test_add_url_cache_by_content(engine, http_files):
    """Downloaded every time; the cache hits while the content is the
    same, misses when it changed."""
    url, root = http_files
    (root / 'c.txt').write_text('one\n')
    dockerfile = 'FROM busybox\nADD %s/c.txt /out/\n' % url
    tags = []
    try:
        error, text, tag = stream_of(engine.sock, dockerfile)
        tags.append(tag)
        assert error is None, text
        error, text, tag = stream_of(engine.sock, dockerfile)
        tags.append(tag)
        assert error is None, text
        assert 'Using cache' in text.split('Step 2/2')[1]
        (root / 'c.txt').write_text('two\n')
        error, text, tag = stream_of(engine.sock, dockerfile)
        tags.append(tag)
        assert error is None, text
        assert 'Using cache' not in text.split('Step 2/2')[1]
        assert run_script(engine.sock, tag, 'cat /out/c.txt',
                          remove_image=False) == 'two\n'
    finally:
        for t in tags:
            remove_image_tag(engine.sock, t)


def test_add_url_size_bounded_and_cleaned(engine_factory, http_files):
    url, root = http_files
    (root / 'big.bin').write_bytes(b'\0' * (LIMIT + 1))
    eng = engine_factory(config='[engine]\nmax_layer_size = %d\n' % LIMIT)
    error, _, _ = build(eng.sock, context('FROM busybox\nADD %s/big.bin /out/\n'
                                          % url))
    assert error is not None and 'larger than the limit of %d' % LIMIT in error
    assert url + '/big.bin' in error
    tmp = os.path.join(eng.root, 'images', 'tmp')
    assert os.listdir(tmp) == []


def test_add_url_through_the_cli(docker_cli, http_files, images_to_remove):
    url, _ = http_files
    tag = 'compat-copy-url-%s' % uuid.uuid4().hex[:8]
    images_to_remove.append(tag)
    res = docker_cli(['build', '-t', tag, '-'], env=NOKIT,
                     input='FROM busybox\nADD %s/file.txt /srv/\n' % url)
    assert res.returncode == 0, res.stderr
    res = docker_cli(['run', '--rm', tag, 'sh', '-c',
                      'cat /srv/file.txt; stat -c %a /srv/file.txt'])
    assert res.stdout == 'hello url\n600\n'
    res = docker_cli(['build', '-t', tag, '-'], env=NOKIT,
                     input='FROM busybox\nADD %s/none.txt /srv/\n' % url)
    assert res.returncode != 0
    assert 'ADD failed: failed to GET %s/none.txt with status 404' % url \
        in res.stderr
