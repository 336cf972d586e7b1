"""The build context's rules next to Docker 20.10's classic builder: the
same context tar goes to both daemons through ``POST /build`` and the
outcome (the error message, or the files COPY put in the image) must be the
same."""

import io
import json
import tarfile
import urllib.parse
import uuid

import pytest

from tests import daemons

pytestmark = pytest.mark.compat

API = '/v1.41'


def make_tar(dockerfile, entries=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        for name, kind, data in (('Dockerfile', 'f', dockerfile),) + \
                tuple(entries):
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == 'f':
                data = data.encode()
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
            elif kind == 'l':
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tf.addfile(info)
            elif kind == 'd':
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
    return buf.getvalue()


def build(sock, body, **params):
    """(error message or None, stream text, image tag)."""
    tag = 'interop-ctx-%s:latest' % uuid.uuid4().hex[:8]
    query = dict(t=tag, rm='1', forcerm='1', **params)
    status, _, data = daemons.api(
        sock, 'POST', API + '/build?' + urllib.parse.urlencode(query),
        body=body, headers={'Content-Type': 'application/x-tar'},
        timeout=120)
    if status != 200:
        return json.loads(data)['message'], '', tag
    error, text = None, []
    for line in data.decode().splitlines():
        if not line.strip():
            continue
        msg = json.loads(line)
        if 'errorDetail' in msg:
            error = msg['errorDetail'].get('message') or msg.get('error')
        text.append(msg.get('stream') or '')
    return error, ''.join(text), tag


def demux(data):
    """The payload of a non-tty log stream (8-byte frame headers)."""
    out, i = b'', 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i + 4:i + 8], 'big')
        out += data[i + 8:i + 8 + size]
        i += 8 + size
    return out.decode()


def run_cat(sock, tag, path):
    """What ``find`` lists under ``path`` in the built image, plus the
    contents of its regular files (the image is removed afterwards)."""
    from tests.compat.test_build_copy import run_script
    return run_script(sock, tag, 'cd %s && find . | sort && '
                                 'find . -type f | sort | xargs cat' % path)


FILES = (('a.txt', 'f', 'a\n'), ('b.txt', 'f', 'b\n'),
         ('dir/x.txt', 'f', 'x\n'), ('dir/sub/y.txt', 'f', 'y\n'),
         ('dir/link', 'l', '/etc/passwd'),
         ('abs_out', 'l', '/etc/passwd'),
         ('rel_out', 'l', '../../../../../../etc/passwd'),
         ('to_a', 'l', 'a.txt'), ('to_dir', 'l', '/dir'))

ERRORS = [
    ('COPY nope /x\n', {}),
    ('COPY dir/nope /x\n', {}),
    ('COPY *.nothing /x/\n', {}),
    ('COPY a.txt b.txt /x\n', {}),
    ('COPY *.txt /x\n', {}),
    ('COPY abs_out /x\n', {}),
    ('COPY rel_out /x\n', {}),
    ('ADD nope /x\n', {}),
    ('COPY a.txt /x\n', {'dockerfile': 'missing.df'}),
    ('COPY a.txt /x\n', {'dockerfile': '../../etc/passwd'}),
    ('COPY a.txt /x\n', {'dockerfile': 'dir/link'}),
    ('COPY ../a.txt /x\n', {}),
    ('COPY dir/../../a.txt /x\n', {}),
    ('COPY ../*.txt /x/\n', {}),
    ('COPY dir/link /x\n', {}),
]


@pytest.mark.parametrize('instr,params', ERRORS)
def test_same_error_as_docker(engine, dockerd, instr, params):
    body = make_tar('FROM busybox\n' + instr, FILES)
    theirs = build(dockerd.sock, body, **params)[0]
    ours = build(engine.sock, body, **params)[0]
    assert theirs is not None
    assert ours == theirs


COPIES = [
    'COPY /a.txt //b.txt /out/',
    'COPY /dir/../b.txt ./a.txt /out/',
    'COPY dir /out/',
    'COPY d?r/*.txt /out/',
    'COPY to_a to_dir /out/',
    'COPY . /out/',
]


@pytest.mark.parametrize('instr', COPIES)
def test_same_files_as_docker(engine, dockerd, instr):
    body = make_tar('FROM busybox\n' + instr + '\n', FILES)
    results = []
    for sock in (dockerd.sock, engine.sock):
        error, text, tag = build(sock, body)
        assert error is None, text
        results.append(run_cat(sock, tag, '/out'))
    assert results[1] == results[0]


@pytest.mark.parametrize('ignore,params', [
    ('b.txt\ndir\n!dir/x.txt\nDockerfile\n', {}),
    ('*\n', {}),
    ('.dockerignore\ndir/sub\n', {'dockerfile': 'dir/sub/y.txt'}),
])
def test_dockerignore_in_a_sent_context(engine, dockerd, ignore, params):
    """Docker's daemon does not apply .dockerignore to a context it is sent
    (the client did), but hides the Dockerfile and .dockerignore from COPY
    when they are ignored."""
    files = FILES + (('.dockerignore', 'f', ignore),)
    dockerfile = 'FROM busybox\nCOPY . /out/\n'
    files = tuple((n, k, dockerfile if n == 'dir/sub/y.txt' else d)
                  for n, k, d in files)
    body = make_tar(dockerfile, files)
    results = []
    for sock in (dockerd.sock, engine.sock):
        error, text, tag = build(sock, body, **params)
        assert error is None, text
        results.append(run_cat(sock, tag, '/out'))
    assert results[1] == results[0]
