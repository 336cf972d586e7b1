"""The network core with the real engine, kernel and CNI plugins: netns
files, the networks API, teardown after an engine SIGKILL, check and
purge-networks."""

import ipaddress
import json
import os
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest

from engine import util
from engine.networks import netns
from tests import daemons
from tests import netfree
from tests.conftest import run_docker

pytestmark = pytest.mark.functional


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True)


def test_netns_file_made_without_forking_and_removed():
    d = tempfile.mkdtemp(prefix='ndns-')
    path = os.path.join(d, 'c1')
    try:
        before = os.getpid(), sh('ls /proc/self/task | wc -l').stdout
        netns.create(path)
        assert os.getpid() == before[0]
        out = sh('nsenter --net=%s ip -o link' % path).stdout
        assert '1: lo:' in out and 'UP' in out.split('1: lo:')[1].split('\n')[0]
        assert len(out.strip().splitlines()) == 1  # only loopback
        # A namespace of its own, not ours.
        assert os.stat(path).st_ino != os.stat('/proc/self/ns/net').st_ino
        with pytest.raises(FileExistsError):
            netns.create(path)
        assert netns.list_dir(d) == ['c1']
        netns.remove(path)
        assert not os.path.exists(path)
        assert path not in open('/proc/self/mountinfo').read()
        netns.remove(path)  # idempotent
    finally:
        if os.path.exists(path):
            netns.remove(path)
        os.rmdir(d)


def _api(eng, method, path, body=None):
    return daemons.api_json(eng.sock, method, path, body)


def test_api_shapes_and_errors(engine):
    subnet = netfree.free_subnet()
    name = 'fn-' + uuid.uuid4().hex[:8]
    status, created = _api(engine, 'POST', '/networks/create', {
        'Name': name, 'IPAM': {'Config': [{'Subnet': str(subnet),
                                           'IPRange': str(list(subnet.subnets(1))[1])}]},
        'Labels': {'a': 'b'}})
    assert status == 201, created
    try:
        status, net = _api(engine, 'GET', '/networks/%s' % created['Id'][:10])
        assert status == 200
        assert list(net) == ['Name', 'Id', 'Created', 'Scope', 'Driver', 'EnableIPv6', 'IPAM',
                             'Internal', 'Attachable', 'Ingress', 'ConfigFrom', 'ConfigOnly',
                             'Containers', 'Options', 'Labels']
        assert not [k for k in net if k.startswith('_')]
        assert net['IPAM']['Config'][0]['Subnet'] == str(subnet)
        # As Docker: only what was configured (no gateway was).
        assert 'Gateway' not in net['IPAM']['Config'][0]
        assert net['IPAM']['Config'][0]['IPRange'] == str(list(subnet.subnets(1))[1])
        # The bridge exists on the host at once, with the gateway address.
        br = 'br-' + created['Id'][:12]
        assert str(subnet.network_address + 1) in sh('ip -4 addr show %s' % br).stdout
        # Docker's codes.
        assert _api(engine, 'POST', '/networks/create', {'Name': name})[0] == 409
        assert _api(engine, 'POST', '/networks/create', {
            'Name': name + 'x', 'IPAM': {'Config': [{'Subnet': str(subnet)}]}})[0] == 403
        assert _api(engine, 'POST', '/networks/create', {'Name': 'host'})[0] == 403
        assert _api(engine, 'POST', '/networks/create', {'Name': 'x1', 'Driver': 'host'})[0] == 403
        assert _api(engine, 'POST', '/networks/create', {'Name': 'x1', 'Driver': 'nope'})[0] == 404
        assert _api(engine, 'POST', '/networks/create', {'Name': 'bad name'})[0] == 400
        assert _api(engine, 'POST', '/networks/create', {'Name': 5})[0] == 400
        assert _api(engine, 'POST', '/networks/create', {
            'Name': 'x2', 'Options': {'a': 1}})[0] == 400
        assert _api(engine, 'DELETE', '/networks/none')[0] == 403
        assert _api(engine, 'GET', '/networks/nonexistent-zz')[0] == 404
        status, body = _api(engine, 'POST', '/containers/create', {
            'Image': 'busybox', 'HostConfig': {'NetworkMode': 'bridge'},
            'NetworkingConfig': {'EndpointsConfig': {'bridge': {'Aliases': ['x']}}}})
        assert status == 400
        assert body['message'] == ('network-scoped alias is supported only for containers in '
                                   'user defined networks')
        status, body = _api(engine, 'POST', '/containers/create', {
            'Image': 'busybox', 'HostConfig': {'NetworkMode': name},
            'NetworkingConfig': {'EndpointsConfig': {name: {'MacAddress': 'zz:zz'}}}})
        assert status == 400 and 'not a valid mac address' in body['message']
        status, body = _api(engine, 'GET', '/networks?filters=%7B%22type%22%3A%5B%22x%22%5D%7D')
        assert status == 400
    finally:
        assert _api(engine, 'DELETE', '/networks/%s' % name)[0] == 204
    assert sh('ip link show br-%s' % created['Id'][:12]).returncode != 0
    assert created['Id'][:12] not in sh('iptables -S NOVADOCKER-FORWARD').stdout


def _docker(eng, *args):
    res = run_docker(list(args), eng.url)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_sigkill_restart_tears_down_exited_and_keeps_running(engine_factory):
    eng = engine_factory()
    keep = _docker(eng, 'run', '-d', 'busybox', 'sleep', '300').strip()
    short = _docker(eng, 'run', '-d', 'busybox', 'sleep', '2').strip()
    root = eng.root
    ns_dir = os.path.join(root, 'run', 'netns')
    assert sorted(os.listdir(ns_dir)) == sorted([keep, short])
    keep_ip = _docker(eng, 'inspect', '-f', '{{.NetworkSettings.IPAddress}}', keep).strip()
    short_ip = _docker(eng, 'inspect', '-f', '{{.NetworkSettings.IPAddress}}', short).strip()
    bridge = _docker(eng, 'network', 'inspect', '-f',
                     '{{index .Options "com.docker.network.bridge.name"}}', 'bridge').strip()
    assert len(os.listdir('/sys/class/net/%s/brif' % bridge)) == 2
    eng.kill()
    time.sleep(3)   # the short one exits while the engine is away
    eng.start()
    assert os.listdir(ns_dir) == [keep]
    assert len(os.listdir('/sys/class/net/%s/brif' % bridge)) == 1
    ipam = os.path.join(root, 'networks', 'ipam')
    leases = [f for d in os.listdir(ipam) for f in os.listdir(os.path.join(ipam, d))]
    assert keep_ip in leases and short_ip not in leases
    assert _docker(eng, 'inspect', '-f', '{{.NetworkSettings.IPAddress}}', keep).strip() == keep_ip
    out = _docker(eng, 'run', '--rm', 'busybox', 'ping', '-c', '1', '-W', '3', keep_ip)
    assert '1 packets received' in out
    # Connect/disconnect still work on the survivor (its netns file outlived the engine).
    net = 'fk-' + uuid.uuid4().hex[:6]
    _docker(eng, 'network', 'create', net)
    _docker(eng, 'network', 'connect', net, keep)
    assert 'eth1' in _docker(eng, 'exec', keep, 'ip', 'addr')
    _docker(eng, 'rm', '-f', keep)
    _docker(eng, 'network', 'rm', net)
    assert os.listdir(ns_dir) == []


def test_check_reports_leftovers_and_purge_removes_host_side(engine_factory):
    eng = engine_factory()
    cid = _docker(eng, 'run', '-d', 'busybox', 'sleep', '300').strip()
    bridge = _docker(eng, 'network', 'inspect', '-f',
                     '{{index .Options "com.docker.network.bridge.name"}}', 'bridge').strip()
    net_id = _docker(eng, 'network', 'inspect', '-f', '{{.Id}}', 'bridge').strip()
    eng.kill()
    # The container dies behind the engine's back: its netns, lease and veth stay.
    daemons.runtime_delete_all(eng.base)
    daemons.kill_pids(daemons.pids_mentioning(eng.base))
    res = eng.check()
    assert res.returncode == 0   # all of it is removed by the next start
    assert 'network namespace %s without a running container' % cid[:12] in res.stdout
    assert 'without an endpoint' in res.stdout      # its IPAM lease
    assert 'bridge %s has 1 ports for 0 running containers' % bridge in res.stdout
    assert 'iptables rules' not in res.stdout
    # The next start removes them: CNI DEL (lease, veth), the namespace file.
    eng.start()
    eng.stop()
    res = eng.check()
    assert res.returncode == 0 and 'leftover' not in res.stdout, res.stdout
    assert os.listdir('/sys/class/net/%s/brif' % bridge) == []
    eng.start()
    eng.remove_all_containers()
    eng.stop()
    purge = eng.purge_networks()
    assert purge.returncode == 0, purge.stderr
    assert not os.path.exists('/sys/class/net/%s' % bridge)
    assert net_id[:12] not in sh('iptables -S NOVADOCKER-FORWARD').stdout
    assert net_id[:12] not in sh('iptables -t nat -S NOVADOCKER-POSTROUTING').stdout
    assert os.listdir(os.path.join(eng.root, 'run', 'netns')) == []


def _bridge_of(eng):
    out = _docker(eng, 'network', 'inspect', '-f',
                  '{{index .Options "com.docker.network.bridge.name"}} '
                  '{{(index .IPAM.Config 0).Subnet}}', 'bridge').split()
    return out[0], ipaddress.ip_network(out[1])


def test_side_by_side_engines_get_their_own_bridge_and_subnet(engine, engine_factory):
    first = _bridge_of(engine)
    other = engine_factory()
    second = _bridge_of(other)
    assert first[0] != second[0]
    assert not first[1].overlaps(second[1])
    # novadocker0 when no live engine claims it (another engine on this host
    # may hold it while the session engine got nd<tag>), nd<tag> otherwise.
    assert second[0] == 'novadocker0' or second[0].startswith('nd'), second[0]
    # Each subnet is routed on its own bridge only.
    routes = sh('ip -4 route').stdout
    for dev, subnet in (first, second):
        lines = [line for line in routes.splitlines() if line.startswith(str(subnet) + ' ')]
        assert lines and all('dev %s ' % dev in line + ' ' for line in lines), routes
    out = _docker(other, 'run', '--rm', 'busybox', 'ip', 'route')
    assert 'default via %s' % (second[1].network_address + 1) in out


def test_default_bridge_subnet_overlapping_a_route_is_a_startup_error(engine_factory):
    eng = engine_factory.make(config='[network]\ndefault_bridge_subnet = 192.0.2.0/25\n')
    with pytest.raises(RuntimeError) as info:
        eng.start(timeout=30)
    assert 'Pool overlaps' in str(info.value) and '192.0.2.0/24' in str(info.value)


def test_default_bridge_subnet_configured(engine_factory):
    subnet = netfree.free_subnet(size=24)
    eng = engine_factory.start(config='[network]\ndefault_bridge_subnet = %s\n' % subnet)
    assert _bridge_of(eng)[1] == subnet
    out = _docker(eng, 'run', '--rm', 'busybox', 'ip', 'addr', 'show', 'eth0')
    assert 'inet %s/24' % (subnet.network_address + 2) in out


def _fetch(url):
    import urllib.request
    try:
        return urllib.request.urlopen(url, timeout=3).read()
    except OSError:
        return None


def _bindable(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind(('127.0.0.1', port))
            return True
        except OSError:
            return False


def test_published_port_survives_engine_sigkill_and_is_released_at_stop(engine_factory):
    eng = engine_factory()
    port = netfree.free_ports()
    cid = _docker(eng, 'run', '-d', '-p', '127.0.0.1:%d:80' % port, 'busybox', 'sh', '-c',
                  'echo up > /tmp/index.html; exec httpd -f -p 80 -h /tmp').strip()
    deadline = time.monotonic() + 20
    while _fetch('http://127.0.0.1:%d/' % port) != b'up\n' and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _fetch('http://127.0.0.1:%d/' % port) == b'up\n'
    eng.kill()
    assert _bindable(port)   # the engine's holding socket died with it
    eng.start()
    assert not _bindable(port)   # held again for the running container
    assert _fetch('http://127.0.0.1:%d/' % port) == b'up\n'
    assert _docker(eng, 'port', cid).strip() == '80/tcp -> 127.0.0.1:%d' % port
    assert cid in sh('iptables -t nat -S').stdout   # portmap's rules name the container
    _docker(eng, 'stop', '-t', '0', cid)
    assert _bindable(port)
    assert _fetch('http://127.0.0.1:%d/' % port) is None
    assert cid not in sh('iptables -t nat -S').stdout


def test_crash_mid_removal_of_a_publishing_container_leaves_no_portmap_rules(engine_factory):
    eng = engine_factory()
    port = netfree.free_ports()
    cid = _docker(eng, 'run', '-d', '-p', '127.0.0.1:%d:80' % port, 'busybox',
                  'sleep', '300').strip()
    assert cid in sh('iptables -t nat -S').stdout
    eng.kill()
    # The engine died right after deleting the record: only host leftovers remain.
    daemons.runtime_delete_all(eng.base)
    daemons.kill_pids(daemons.pids_mentioning(eng.base))
    os.unlink(os.path.join(eng.root, 'containers', cid, 'container.json'))
    eng.start()
    assert cid not in sh('iptables -t nat -S').stdout
    assert os.listdir(os.path.join(eng.root, 'run', 'netns')) == []
    assert _bindable(port)


def test_purge_after_crash_removes_portmap_rules(engine_factory):
    eng = engine_factory()
    port = netfree.free_ports()
    cid = _docker(eng, 'run', '-d', '-p', '127.0.0.1:%d:80' % port, 'busybox',
                  'sleep', '300').strip()
    eng.kill()
    daemons.runtime_delete_all(eng.base)
    daemons.kill_pids(daemons.pids_mentioning(eng.base))
    daemons.unmount_under(eng.base)
    res = eng.purge_networks()
    assert res.returncode == 0, res.stderr
    assert cid not in sh('iptables -t nat -S').stdout
    ipam = os.path.join(eng.root, 'networks', 'ipam')
    assert not os.path.exists(ipam) or not [
        f for d in os.listdir(ipam) for f in os.listdir(os.path.join(ipam, d))
        if f[0].isdigit()]


def test_engine_refused_at_start_leaves_no_bridge(tmp_path):
    conf = tmp_path / 'engine.conf'
    conf.write_text('[engine]\nruntime = no-such-runtime\n'
                    '[network]\ndefault_bridge = ndnotmine0\n')
    root = str(tmp_path / 'root')
    proc = subprocess.run([daemons.engine_binary(), '--root', root, '--host',
                           'unix://%s/e.sock' % tmp_path, '--config-file', str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and 'no-such-runtime' in proc.stderr
    tag = util.root_tag(root)
    for dev in ('ndnotmine0', 'nd' + tag):
        assert not os.path.exists('/sys/class/net/' + dev)


def test_network_rm_right_after_run_rm_waits_for_the_teardown(engine):
    """`docker run --rm` returns as soon as the container is gone from the
    API, before its CNI DEL has finished: a `network rm` right after must
    wait for that teardown (not race it), and nothing may be left."""
    name = 'fn-' + uuid.uuid4().hex[:8]
    for _ in range(5):
        status, net = _api(engine, 'POST', '/networks/create', {
            'Name': name, 'IPAM': {'Config': [{'Subnet': str(netfree.free_subnet())}]}})
        assert status == 201, net
        status, c = _api(engine, 'POST', '/containers/create', {
            'Image': 'busybox', 'Cmd': ['true'],
            'HostConfig': {'AutoRemove': True, 'NetworkMode': name}})
        assert status == 201, c
        wait = daemons.UnixHTTPConnection(engine.sock, timeout=60)
        try:
            wait.request('POST', '/containers/%s/wait?condition=removed' % c['Id'])
            resp = wait.getresponse()
            assert _api(engine, 'POST', '/containers/%s/start' % c['Id'])[0] == 204
            assert resp.status == 200 and json.loads(resp.read())['StatusCode'] == 0
        finally:
            wait.close()
        # No pause: the container is gone, its teardown may still run.
        status, body = _api(engine, 'DELETE', '/networks/' + name)
        assert status == 204, body
        assert not os.path.exists('/sys/class/net/br-' + net['Id'][:12])
        ipam = os.path.join(engine.root, 'networks', 'ipam', net['Id'])
        assert not os.path.exists(ipam) or not [
            f for f in os.listdir(ipam) if f[0].isdigit()], os.listdir(ipam)


def _list_filtered(filters):
    return '/containers/json?all=1&filters=' + urllib.parse.quote(json.dumps(filters))


def test_containers_filter_network_by_name_and_id_prefix(engine):
    """Docker's ``network`` filter of GET /containers/json: a network's name
    or a prefix of its id, created (not running) containers included with
    all=1. The Nova driver asks it whether a network still has users."""
    name = 'fn-' + uuid.uuid4().hex[:8]
    status, created = _api(engine, 'POST', '/networks/create', {'Name': name})
    assert status == 201, created
    made = []
    try:
        for mode in (name, 'none'):
            status, c = _api(engine, 'POST', '/containers/create', {
                'Image': 'busybox', 'Cmd': ['true'], 'HostConfig': {'NetworkMode': mode}})
            assert status == 201, c
            made.append(c['Id'])
        for value in (name, created['Id'], created['Id'][:12]):
            status, found = _api(engine, 'GET', _list_filtered({'network': [value]}))
            assert status == 200
            assert [c['Id'] for c in found] == [made[0]], value
        status, found = _api(engine, 'GET', _list_filtered({'network': ['none']}))
        assert [c['Id'] for c in found] == [made[1]]
        status, found = _api(engine, 'GET', _list_filtered({'network': ['fn-no-such-net']}))
        assert (status, found) == (200, [])
    finally:
        for cid in made:
            _api(engine, 'DELETE', '/containers/%s?force=1' % cid)
        _api(engine, 'DELETE', '/networks/%s' % name)
