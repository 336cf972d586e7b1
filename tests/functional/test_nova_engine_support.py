"""What the engine offers the Nova driver beyond the container basics:
PUT /containers/{id}/archive (files into a container before it starts,
or while it runs) and the HostFacts of /info."""

import io
import json
import os
import tarfile

import pytest

from tests.conftest import engine_info


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == 'dir':
                info.type = tarfile.DIRTYPE
                info.mode = 0o700
                tf.addfile(info)
            elif kind == 'symlink':
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tf.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o600
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _create(engine, cmd):
    status, body = engine.api_json('POST', '/containers/create',
                                   {'Image': 'busybox:latest', 'Cmd': cmd})
    assert status == 201, body
    return body['Id']


def _run_and_logs(engine, cid):
    engine.api('POST', '/containers/%s/start' % cid, expect=204)
    engine.api('POST', '/containers/%s/wait' % cid, expect=200, timeout=60)
    _, _, data = engine.api('GET', '/containers/%s/logs?stdout=1&stderr=1' % cid)
    out = b''
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i + 4:i + 8], 'big')
        out += data[i + 8:i + 8 + size]
        i += 8 + size
    return out.decode()


def test_put_archive_before_start_reaches_the_container(engine):
    cid = _create(engine, ['sh', '-c', 'cat /root/.ssh/k /var/lib/nova/m.json; '
                                       'stat -c %a /root/.ssh /root/.ssh/k'])
    try:
        data = _tar([('root/.ssh', None, 'dir'), ('root/.ssh/k', b'ssh-ed25519 AAA\n', 'file'),
                     ('var/lib/nova/m.json', b'{"a": 1}\n', 'file')])
        engine.api('PUT', '/containers/%s/archive?path=/' % cid, data,
                   headers={'Content-Type': 'application/x-tar'}, expect=200)
        out = _run_and_logs(engine, cid)
        assert out.split('\n') == ['ssh-ed25519 AAA', '{"a": 1}', '700', '600', '']
    finally:
        engine.api('DELETE', '/containers/%s?force=1' % cid)


def test_put_archive_into_a_directory_and_confined(engine, tmp_path):
    cid = _create(engine, ['sh', '-c', 'cat /tmp/x; ls /tmp/up 2>&1; cat /etc/escaped'])
    try:
        # A symlink to / in the tar, then a file through it: it lands in
        # the container's root, never on the host.
        data = _tar([('x', b'in tmp\n', 'file'), ('up', '/', 'symlink'),
                     ('up/etc/escaped', b'confined\n', 'file')])
        engine.api('PUT', '/containers/%s/archive?path=/tmp' % cid, data,
                   headers={'Content-Type': 'application/x-tar'}, expect=200)
        assert not os.path.exists('/etc/escaped')
        # A missing directory is a 404, as in Docker.
        status, _, body = engine.api('PUT', '/containers/%s/archive?path=/no/such' % cid,
                                     _tar([('y', b'y', 'file')]),
                                     headers={'Content-Type': 'application/x-tar'})
        assert status == 404, body
        assert b'/no/such' in body
        out = _run_and_logs(engine, cid)
        assert out.startswith('in tmp\n'), out
    finally:
        engine.api('DELETE', '/containers/%s?force=1' % cid)


def test_put_archive_to_a_missing_container_is_404(engine):
    status, _, _ = engine.api('PUT', '/containers/no-such-%d/archive?path=/' % os.getpid(),
                              _tar([('y', b'y', 'file')]))
    assert status == 404


def test_info_host_facts(engine):
    facts = engine_info(engine)['HostFacts']
    assert facts['UptimeSeconds'] > 0
    assert 0 < facts['MemAvailable'] <= engine_info(engine)['MemTotal']
    assert len(facts['LoadAverage']) == 3
    st = os.statvfs(engine.root)
    assert facts['RootDirBytesTotal'] == st.f_blocks * st.f_frsize
    assert 0 < facts['RootDirBytesFree'] <= facts['RootDirBytesTotal']
    json.dumps(facts)


@pytest.mark.parametrize('path', ['', 'relative'])
def test_put_archive_needs_an_absolute_path(engine, path):
    cid = _create(engine, ['true'])
    try:
        status, _, _ = engine.api('PUT', '/containers/%s/archive?path=%s' % (cid, path),
                                  _tar([('y', b'y', 'file')]))
        assert status == 400
    finally:
        engine.api('DELETE', '/containers/%s?force=1' % cid)
