"""Hostile or unlucky clients: malformed bodies, slow readers, races, and
requests the engine cannot honour.  Each answer is a clear 4xx and the store
stays consistent."""

import concurrent.futures
import json
import os
import socket
import time

import pytest


pytestmark = pytest.mark.compat


def _raw(sock_path, data, read=True, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(data)
    if not read:
        return s
    out = b''
    while b'\r\n\r\n' not in out:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    head, _, body = out.partition(b'\r\n\r\n')
    length = 0
    for line in head.split(b'\r\n'):
        if line.lower().startswith(b'content-length:'):
            length = int(line.split(b':', 1)[1])
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    s.close()
    return head + b'\r\n\r\n' + body


def _status(response):
    return int(response.split(b' ', 2)[1])


@pytest.mark.parametrize('size', [b'-1', b'+10', b'0x10', b'1_0', b'ffffffffffffffffff'])
def test_malformed_chunk_sizes_are_refused(engine, size):
    body = size + b'\r\n' + b'x' * 4096 + b'\r\n0\r\n\r\n'
    resp = _raw(engine.sock, b'POST /v1.44/containers/create HTTP/1.1\r\nHost: x\r\n'
                b'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' + body)
    assert _status(resp) == 400, resp[:200]
    assert b'malformed chunk' in resp


def test_chunk_longer_than_its_size_is_refused(engine):
    body = b'2\r\n{}xx\r\n0\r\n\r\n'
    resp = _raw(engine.sock, b'POST /v1.44/containers/create HTTP/1.1\r\nHost: x\r\n'
                b'Transfer-Encoding: chunked\r\n\r\n' + body)
    assert _status(resp) == 400, resp[:200]


def test_an_export_nobody_reads_does_not_block_stop(engine, docker_cli, names):
    name = names('export')
    assert docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '300']).returncode == 0
    cid = engine.api_json('GET', '/containers/%s/json' % name)[1]['Id']
    # Ask for the export and never read it: the socket buffers fill and the
    # engine's writer blocks.
    slow = _raw(engine.sock, b'GET /v1.44/containers/%s/export HTTP/1.1\r\nHost: x\r\n\r\n'
                % cid.encode(), read=False)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        res = docker_cli(['stop', '-t', '1', name], timeout=30)
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - t0 < 15
        # Removal waits for the export to end, and says so.
        res = docker_cli(['rm', name])
        assert res.returncode != 0
        assert 'being exported' in res.stderr
    finally:
        slow.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if docker_cli(['rm', name]).returncode == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail('the container could not be removed after the export ended')
    assert not os.listdir(os.path.join(engine.root, 'run', 'exports'))


def test_rmi_force_refuses_an_image_a_running_container_uses(engine, docker_cli, names):
    name = names('rmi')
    assert docker_cli(['tag', 'busybox:latest', 'rmi-force-test:1']).returncode == 0
    try:
        res = docker_cli(['run', '-d', '--name', name, 'rmi-force-test:1', 'sleep', '300'])
        assert res.returncode == 0, res.stderr
        image_id = engine.api_json('GET', '/images/rmi-force-test:1/json')[1]['Id']
        res = docker_cli(['rmi', '-f', image_id])
        assert res.returncode != 0
        assert 'running container' in res.stderr
        assert engine.api_json('GET', '/images/%s/json' % image_id)[0] == 200
        # Once it stops, a forced removal of the tag works (the image stays
        # for the stopped container, as Docker keeps it).
        assert docker_cli(['rm', '-f', name]).returncode == 0
    finally:
        docker_cli(['rmi', 'rmi-force-test:1'])


def test_inspect_while_a_named_create_runs_never_500s(engine, names):
    name = names('race')
    statuses = []

    def inspect_loop():
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            status, _, _ = engine.api('GET', '/containers/%s/json' % name)
            statuses.append(status)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        fut = pool.submit(inspect_loop)
        for _ in range(10):
            status, _, body = engine.api('POST', '/containers/create?name=' + name,
                                         {'Image': 'busybox', 'Cmd': ['true']})
            assert status == 201, body
            engine.api('DELETE', '/containers/%s?force=1' % name, expect=204)
        fut.result()
    assert set(statuses) <= {200, 404}, sorted(set(statuses))


@pytest.mark.parametrize('path, body, message', [
    ('/containers/create', {'Image': 'busybox', 'Healthcheck': {'Test': ['CMD', 'true']}},
     'Healthcheck'),
    ('/containers/create', {'Image': 'busybox', 'HostConfig': {'ConsoleSize': [-1, 5]}},
     'ConsoleSize'),
])
def test_requests_the_engine_cannot_honour_are_refused(engine, path, body, message):
    status, data = engine.api_json('POST', path, body)
    assert status == 400
    assert message in data['message']


def test_numbers_and_signals_out_of_range(engine, docker_cli, names):
    name = names('range')
    res = docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                      'trap "exit 0" TERM; sleep 300 & wait'])
    assert res.returncode == 0, res.stderr
    status, data = engine.api_json('POST', '/containers/%s/kill?signal=%%C2%%B2' % name)
    assert status == 400 and 'Invalid signal' in data['message']
    status, data = engine.api_json('POST', '/containers/%s/resize?h=0&w=70000' % name)
    assert status in (400, 409)
    eid = engine.api_json('POST', '/containers/%s/exec' % name,
                          {'Cmd': 'true', 'ConsoleSize': [24, 80]})[1]['Id']
    status, _, _ = engine.api('POST', '/exec/%s/start' % eid, {'Detach': True})
    assert status == 200
    deadline = time.monotonic() + 10
    while engine.api_json('GET', '/exec/%s/json' % eid)[1]['Running'] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.api_json('GET', '/exec/%s/json' % eid)[1]['ExitCode'] == 0
    status, data = engine.api_json('POST', '/containers/%s/exec' % name,
                                   {'Cmd': ['true'], 'ConsoleSize': [1, 2, 3]})
    assert status == 400
    # A huge stop timeout is a long wait, not a crash.
    status, _, body = engine.api('POST', '/containers/%s/stop?t=100000000000' % name)
    assert status == 204, body


def test_a_crash_between_runtime_start_and_the_record_is_adopted(engine_factory, docker_cli):
    eng = engine_factory()
    res = docker_cli(['run', '-d', '--name', 'adopt', 'busybox', 'sleep', '300'], host=eng.url)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    pid = eng.api_json('GET', '/containers/adopt/json')[1]['State']['Pid']
    eng.kill()
    # What a crash right after the runtime started the container leaves: the
    # record still says "created".
    path = os.path.join(eng.root, 'containers', cid, 'container.json')
    with open(path) as f:
        record = json.load(f)
    record['State'].update(Status='created', Running=False, Pid=0)
    with open(path, 'w') as f:
        json.dump(record, f)
    eng.start()
    state = eng.api_json('GET', '/containers/adopt/json')[1]['State']
    assert state['Status'] == 'running'
    assert state['Pid'] == pid
    res = docker_cli(['stop', '-t', '1', 'adopt'], host=eng.url)
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 10
    while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists('/proc/%d' % pid)


def test_connections_beyond_the_cap_get_503_and_the_engine_recovers(engine_factory):
    eng = engine_factory(config='[engine]\nmax_connections = 8\n', load_busybox=False)
    idle = []
    try:
        for _ in range(8):
            s = socket.socket(socket.AF_UNIX)
            s.connect(eng.sock)
            idle.append(s)
        # The engine accepts the idle ones in its own time (slowly on a
        # loaded machine): until all eight hold a slot a probe is served.
        deadline = time.monotonic() + 10
        while True:
            resp = _raw(eng.sock, b'GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n')
            if _status(resp) != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert _status(resp) == 503
        assert b'max_connections' in resp
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if eng.api('GET', '/_ping')[0] == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail('the engine did not serve again once the idle connections closed')
