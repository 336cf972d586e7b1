"""engine/networks/ports.py against Docker 20.10 itself (the dockerd fixture).

The same ``docker run -p …`` flags go to Docker 20.10 (its own CLI, on a
user-defined bridge network made here: the fixture's daemon has no default
bridge); the Config and HostConfig Docker's CLI produced go through our
parse / PortAllocator / views, and the answers must match: NetworkSettings.Ports
exactly (random host ports aside: both must come from the kernel's range),
the /containers/json Ports list, the 400 messages and the conflict messages.
Docker holds host ports the way we do (dockerd runs with
--userland-proxy=false, which binds each host port without listening), so
each daemon's container is removed before the other side reserves its ports.
"""

import json
import socket
import urllib.parse
import uuid

import pytest

from engine import errors
from engine.networks import ports as P
from tests import daemons
from tests import netfree
from tests.conftest import run_docker

RANDOM = 'random'


@pytest.fixture
def docker_net(dockerd):
    """A user-defined bridge network in Docker 20.10; removed at the end
    with every container on it."""
    name = 'ndpt-%s' % uuid.uuid4().hex[:8]
    subnet = netfree.free_subnet()
    res = run_docker(['network', 'create', '--subnet', str(subnet), name],
                     dockerd.url, cli=daemons.DOCKER_CLI_2010)
    assert res.returncode == 0, res.stderr
    try:
        yield name
    finally:
        status, items = dockerd.api_json('GET', '/containers/json?all=1')
        for item in items or ():
            if name in (item.get('NetworkSettings') or {}).get('Networks', {}):
                dockerd.api('DELETE', '/containers/%s?force=1' % item['Id'])
        run_docker(['network', 'rm', name], dockerd.url, cli=daemons.DOCKER_CLI_2010)


def _docker_run(dockerd, net, flags):
    """docker create + start with Docker 20.10's CLI -> (inspect, ps row,
    start error or None); the container is removed before returning."""
    res = run_docker(['create', '--network', net] + flags + ['busybox', 'sleep', '60'],
                     dockerd.url, cli=daemons.DOCKER_CLI_2010)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    try:
        status, _, body = dockerd.api('POST', '/containers/%s/start' % cid)
        start_error = None if status == 204 else json.loads(body)['message']
        _, info = dockerd.api_json('GET', '/containers/%s/json' % cid)
        query = urllib.parse.quote(json.dumps({'id': [cid]}))
        _, rows = dockerd.api_json('GET', '/containers/json?all=1&filters=' + query)
        return info, rows[0]['Ports'], start_error
    finally:
        dockerd.api('DELETE', '/containers/%s?force=1' % cid)


def _ours(info, alloc, cid):
    specs = P.parse(info['Config'], info['HostConfig'])
    bindings = alloc.allocate(cid, specs)
    exposed = info['Config'].get('ExposedPorts')
    return P.settings_view(exposed, bindings), P.summary_view(exposed, bindings)


def _normalise(settings, summary, random_keys, port_range):
    """Random host ports -> RANDOM (after checking they are in the range)."""
    lo, hi = port_range
    out = {}
    for key, entries in settings.items():
        if entries is not None and key in random_keys:
            for e in entries:
                assert lo <= int(e['HostPort']) <= hi, (key, e, port_range)
            entries = [dict(e, HostPort=RANDOM) for e in entries]
        out[key] = entries
    rows = []
    for row in summary:
        if 'PublicPort' in row and '%d/%s' % (row['PrivatePort'], row['Type']) in random_keys:
            row = dict(row, PublicPort=RANDOM)
        rows.append(row)
    return out, sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def test_views_match_docker(dockerd, docker_net):
    base = netfree.free_ports(10)
    flags = ['-p', '127.0.0.1:%d:80' % base,
             '-p', '%d:81/udp' % (base + 1),
             '-p', '82',                                   # random
             '--expose', '90', '--expose', '91/udp',      # exposed, not published
             '-p', '%d-%d:83' % (base + 2, base + 4),      # one port of a host range
             '-p', '[::1]:%d:84' % (base + 5),             # IPv6 HostIp, IPv4 container
             '-p', '%d:85' % (base + 6), '-p', '%d:85' % (base + 7),
             '-p', '%d-%d:86-87' % (base + 8, base + 9)]
    kernel_range = P.dynamic_port_range()
    info, docker_summary, error = _docker_run(dockerd, docker_net, flags)
    assert error is None, error
    alloc = P.PortAllocator()
    try:
        settings, summary = _ours(info, alloc, 'interop-a')
    finally:
        alloc.release('interop-a')
    docker_view = _normalise(info['NetworkSettings']['Ports'], docker_summary,
                             {'82/tcp'}, kernel_range)
    our_view = _normalise(settings, summary, {'82/tcp'}, kernel_range)
    assert docker_view == our_view
    # key order is Go's (sorted map keys), and so is ours
    assert list(settings) == sorted(info['NetworkSettings']['Ports'])
    assert settings['84/tcp'] is None and settings['90/tcp'] is None
    assert settings['83/tcp'] == [{'HostIp': '0.0.0.0', 'HostPort': str(base + 2)}]


def test_publish_all_matches_docker(dockerd, docker_net):
    flags = ['-P', '--expose', '95-96', '--expose', '97/udp']
    info, docker_summary, error = _docker_run(dockerd, docker_net, flags)
    assert error is None, error
    alloc = P.PortAllocator()
    try:
        settings, summary = _ours(info, alloc, 'interop-b')
    finally:
        alloc.release('interop-b')
    keys = {'95/tcp', '96/tcp', '97/udp'}
    rng = P.dynamic_port_range()
    assert (_normalise(info['NetworkSettings']['Ports'], docker_summary, keys, rng)
            == _normalise(settings, summary, keys, rng))


@pytest.mark.parametrize('bindings', [
    {'abc': [{}]},
    {'65536/tcp': [{}]},
    {'80/tcp': [{'HostPort': 'abc'}]},
    {'80/tcp': [{'HostPort': '65536'}]},
    {'80/tcp': [{'HostPort': '18010-18000'}]},
])
def test_rejections_match_docker(dockerd, bindings):
    body = {'Image': 'busybox', 'Cmd': ['true'],
            'HostConfig': {'PortBindings': bindings, 'NetworkMode': 'none'}}
    status, data = dockerd.api_json('POST', '/containers/create', body)
    if status == 201:
        dockerd.api('DELETE', '/containers/%s?force=1' % data['Id'])
    assert status == 400, data
    with pytest.raises(errors.InvalidArgument) as ctx:
        P.parse(body, body['HostConfig'])
    assert str(ctx.value) == data['message']


def test_conflict_messages_match_docker(dockerd, docker_net):
    port, taken = netfree.free_ports(), netfree.free_ports()
    # Docker: a second container on a port the first holds
    res = run_docker(['run', '-d', '--network', docker_net, '-p', '%d:80' % port,
                      'busybox', 'sleep', '60'], dockerd.url, cli=daemons.DOCKER_CLI_2010)
    assert res.returncode == 0, res.stderr
    try:
        _, _, docker_conflict = _docker_run(dockerd, docker_net, ['-p', '%d:80' % port])
    finally:
        dockerd.api('DELETE', '/containers/%s?force=1' % res.stdout.strip())
    # Docker: a port another process has bound
    holder = socket.socket()
    holder.bind(('0.0.0.0', taken))
    holder.listen()
    try:
        _, _, docker_taken = _docker_run(dockerd, docker_net, ['-p', '%d:80' % taken])
        alloc = P.PortAllocator()
        spec = P.PortSpec(80, 'tcp', '', taken, taken)
        with pytest.raises(errors.Conflict) as ctx:
            alloc.allocate('interop-c', [spec])
        ours_taken = str(ctx.value)
    finally:
        holder.close()
    alloc = P.PortAllocator()
    spec = P.PortSpec(80, 'tcp', '', port, port)
    try:
        alloc.allocate('interop-d', [spec])
        with pytest.raises(errors.Conflict) as ctx:
            alloc.allocate('interop-e', [spec])
    finally:
        alloc.release('interop-d')
    # Docker prefixes "driver failed programming external connectivity on
    # endpoint NAME (ID): "; the rest is ours word for word.
    assert docker_conflict.endswith(': ' + str(ctx.value)), docker_conflict
    assert docker_taken.endswith(': ' + ours_taken), docker_taken
