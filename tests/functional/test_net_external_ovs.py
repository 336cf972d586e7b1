"""External networks where the engine makes the veth itself, on the real
engine, kernel and CNI plugins: on an Open vSwitch bridge (``-o
ovs_bridge=BR``, with a fake ovs-vsctl on the engine's PATH,
tests/fakeovs.py, since Open vSwitch is not installed on the test hosts),
and on a Linux bridge for endpoints that name their host end
(``host_ifname``, Nova's tap name), with the bridge made on demand (``-o
create_bridge=true``). The veths, the container's address, MAC, MTU,
routes and resolv.conf are real and read back; what the engine asked of
Open vSwitch is read from the fake's record. Traffic on OVS is proven by
moving the host end into a namespace of the test's own that plays the
gateway; a real Open vSwitch test runs where one exists.
"""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from tests import netfree
from tests.conftest import EngineFactory, run_docker
from tests.fakeovs import FakeOvs

pytestmark = pytest.mark.functional


@pytest.fixture(scope='module')
def ovs_engine(busybox_archive, docker_config_dir, tmp_path_factory):
    fake = FakeOvs(str(tmp_path_factory.mktemp('ovs')), bridges=('br-fake',))
    factory = EngineFactory(busybox_archive, docker_config_dir)
    old = os.environ['PATH']
    os.environ['PATH'] = fake.path  # the engine process inherits it
    try:
        eng = factory.start()
    finally:
        os.environ['PATH'] = old
    eng.fake_ovs = fake
    yield eng
    failures = factory.finish()
    assert not failures, failures


@pytest.fixture(scope='module')
def net_leak_targets(ovs_engine):
    return [ovs_engine]


@pytest.fixture
def gateway_ns():
    name = 'ndpg%s' % uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    yield name
    subprocess.run(['ip', 'netns', 'del', name], stderr=subprocess.DEVNULL)


def api(eng, method, path, body=None):
    return eng.api_json(method, path, body)


def dk(eng, *args, check=True):
    res = run_docker(list(args), eng.url)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res.stdout if check else res


def link(name, netns=None):
    cmd = ['ip', '-j', '-d', 'link', 'show', name]
    if netns:
        cmd[1:1] = ['-n', netns]
    res = subprocess.run(cmd, capture_output=True, text=True)
    return json.loads(res.stdout)[0] if res.returncode == 0 else None


def endpoint(ip, mac, gw, host_ifname, port_id, vm_uuid):
    return {'IPAMConfig': {'IPv4Address': ip}, 'MacAddress': mac,
            'DriverOpts': {'prefixlen': '24', 'gateway': gw, 'mtu': '1400',
                           'dns': '192.0.2.53', 'iface_id': port_id,
                           'vm_uuid': vm_uuid, 'host_ifname': host_ifname}}


def add_port_calls(fake, ifname):
    return [c for c in fake.calls() if 'add-port' in c and ifname in c]


def del_port_calls(fake, ifname):
    return [c for c in fake.calls() if 'del-port' in c and ifname in c]


def test_ovs_bridge_must_exist(ovs_engine):
    name = 'ndp-ovs-' + uuid.uuid4().hex[:6]
    status, body = api(ovs_engine, 'POST', '/networks/create', {
        'Name': name, 'Driver': 'external', 'Options': {'ovs_bridge': 'br-none'}})
    assert status == 400, body
    assert body['message'] == 'Open vSwitch bridge br-none does not exist'
    assert ['--timeout=10', 'br-exists', 'br-none'] in ovs_engine.fake_ovs.calls()


def test_ovs_port_plugged_with_neutron_ids_addressed_and_unplugged(ovs_engine, gateway_ns):
    eng, fake = ovs_engine, ovs_engine.fake_ovs
    net, ctr = 'ndp-ovs-' + uuid.uuid4().hex[:6], 'ndp-ovsc-' + uuid.uuid4().hex[:6]
    subnet = netfree.free_subnet()
    gw, ip = str(subnet.network_address + 1), str(subnet.network_address + 5)
    mac = 'fa:16:3e:%02x:%02x:05' % tuple(uuid.uuid4().bytes[:2])
    port_id, vm_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    tap = ('tap' + port_id)[:14]
    status, body = api(eng, 'POST', '/networks/create', {
        'Name': net, 'Driver': 'external', 'Options': {'ovs_bridge': 'br-fake'}})
    assert status == 201, body
    try:
        status, body = api(eng, 'POST', '/containers/create?name=' + ctr, {
            'Image': 'busybox', 'Cmd': ['sleep', '600'],
            'HostConfig': {'NetworkMode': net},
            'NetworkingConfig': {'EndpointsConfig': {net: endpoint(
                ip, mac, gw, tap, port_id, vm_uuid)}}})
        assert status == 201, body
        assert link(tap) is None  # nothing on the host before the start
        status, body = api(eng, 'POST', '/containers/%s/start' % ctr)
        assert status == 204, body

        # The host end: a veth named as Nova names it, MTU set, and added
        # to the OVS bridge with Neutron's external ids.
        host = link(tap)
        assert host['linkinfo']['info_kind'] == 'veth' and host['mtu'] == 1400
        calls = add_port_calls(fake, tap)
        assert len(calls) == 1
        assert calls[0][:7] == ['--timeout=10', '--', '--may-exist', 'add-port', 'br-fake',
                                tap, '--']
        assert set(calls[0][10:]) == {
            'external-ids:iface-id=' + port_id, 'external-ids:vm-uuid=' + vm_uuid,
            'external-ids:attached-mac=' + mac, 'external-ids:iface-status=active'}
        # The container end.
        out = dk(eng, 'exec', ctr, 'sh', '-c', 'ip -o link show eth0; ip -o -4 addr show eth0; '
                                               'ip route; cat /etc/resolv.conf')
        assert 'link/ether %s' % mac in out and 'mtu 1400' in out
        assert 'inet %s/24' % ip in out
        assert 'default via %s dev eth0' % gw in out
        assert 'nameserver 192.0.2.53' in out
        ep = eng.api_json('GET', '/containers/%s/json' % ctr)[1][
            'NetworkSettings']['Networks'][net]
        assert (ep['IPAddress'], ep['IPPrefixLen'], ep['Gateway'], ep['MacAddress']) == (
            ip, 24, gw, mac)

        # Traffic: the host end, moved into the test's gateway namespace, answers.
        subprocess.run(['ip', 'link', 'set', tap, 'netns', gateway_ns], check=True)
        for cmd in (['addr', 'add', '%s/24' % gw, 'dev', tap], ['link', 'set', tap, 'up']):
            subprocess.run(['ip', '-n', gateway_ns] + cmd, check=True)
        ping = dk(eng, 'exec', ctr, 'ping', '-c', '2', '-W', '2', gw)
        assert '2 packets received' in ping
        subprocess.run(['ip', '-n', gateway_ns, 'link', 'set', tap, 'netns', '1'], check=True)

        # Hot unplug: gone inside, gone from the host and from OVS.
        status, body = api(eng, 'POST', '/networks/%s/disconnect' % net, {'Container': ctr})
        assert status == 200, body
        assert dk(eng, 'exec', ctr, 'ip', 'link', 'show', 'eth0', check=False).returncode != 0
        assert link(tap) is None
        assert len(del_port_calls(fake, tap)) == 1

        # Hot plug on the running container, then removal takes it all away.
        status, body = api(eng, 'POST', '/networks/%s/connect' % net, {
            'Container': ctr, 'EndpointConfig': endpoint(ip, mac, gw, tap, port_id, vm_uuid)})
        assert status == 200, body
        assert link(tap) is not None and len(add_port_calls(fake, tap)) == 2
        assert 'inet %s/24' % ip in dk(eng, 'exec', ctr, 'ip', '-o', '-4', 'addr')
        status, body = api(eng, 'DELETE', '/containers/%s?force=1' % ctr)
        assert status == 204, body
        assert link(tap) is None
        assert len(del_port_calls(fake, tap)) == 2
    finally:
        api(eng, 'DELETE', '/containers/%s?force=1' % ctr)
        api(eng, 'DELETE', '/networks/%s' % net)
    assert api(eng, 'GET', '/networks/%s' % net)[0] == 404


def test_linux_bridge_networks_refuse_ovs_options(ovs_engine):
    br = 'ndpx%s' % uuid.uuid4().hex[:6]
    subprocess.run(['ip', 'link', 'add', br, 'type', 'bridge'], check=True)
    net = 'ndp-ovs-' + uuid.uuid4().hex[:6]
    try:
        assert api(ovs_engine, 'POST', '/networks/create', {
            'Name': net, 'Driver': 'external', 'Options': {'bridge': br}})[0] == 201
        status, body = api(ovs_engine, 'POST', '/containers/create', {
            'Image': 'busybox', 'Cmd': ['true'], 'HostConfig': {'NetworkMode': net},
            'NetworkingConfig': {'EndpointsConfig': {net: endpoint(
                '10.9.8.5', 'fa:16:3e:00:00:05', '10.9.8.1', 'tapx', 'p', 'v')}}})
        assert status == 400 and 'Open vSwitch' in body['message'], body
    finally:
        api(ovs_engine, 'DELETE', '/networks/%s' % net)
        subprocess.run(['ip', 'link', 'del', br], stderr=subprocess.DEVNULL)


def _real_ovs():
    if not shutil.which('ovs-vsctl'):
        return False
    return subprocess.run(['ovs-vsctl', '--timeout=5', 'show'],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _real_ovs(), reason='Open vSwitch is not installed here (or its '
                                            'ovsdb-server is not running)')
def test_real_open_vswitch_two_ports_ping_and_unplug(engine_factory):
    """Where Open vSwitch exists: two containers on a bridge of the test's
    own reach each other, the ports carry Neutron's ids, removal empties it."""
    eng = engine_factory()
    br = 'ndpo%s' % uuid.uuid4().hex[:6]
    net = 'ndp-ovs-' + uuid.uuid4().hex[:6]
    subprocess.run(['ovs-vsctl', '--timeout=10', 'add-br', br], check=True)
    subnet = netfree.free_subnet()
    gw = str(subnet.network_address + 1)
    names, taps = [], []
    try:
        subprocess.run(['ip', 'link', 'set', br, 'up'], check=True)
        status, body = api(eng, 'POST', '/networks/create', {
            'Name': net, 'Driver': 'external', 'Options': {'ovs_bridge': br}})
        assert status == 201, body
        for i in (5, 6):
            name, port_id = 'ndp-ovsr-%s-%d' % (uuid.uuid4().hex[:4], i), str(uuid.uuid4())
            tap = ('tap' + port_id)[:14]
            status, body = api(eng, 'POST', '/containers/create?name=' + name, {
                'Image': 'busybox', 'Cmd': ['sleep', '600'],
                'HostConfig': {'NetworkMode': net},
                'NetworkingConfig': {'EndpointsConfig': {net: endpoint(
                    str(subnet.network_address + i), 'fa:16:3e:00:00:%02x' % i, gw, tap,
                    port_id, str(uuid.uuid4()))}}})
            assert status == 201, body
            names.append(name)
            taps.append((tap, port_id))
            assert api(eng, 'POST', '/containers/%s/start' % name)[0] == 204
        ports = subprocess.run(['ovs-vsctl', 'list-ports', br], capture_output=True,
                               text=True, check=True).stdout.split()
        assert sorted(ports) == sorted(t for t, _ in taps)
        for tap, port_id in taps:
            got = subprocess.run(['ovs-vsctl', 'get', 'Interface', tap,
                                  'external_ids:iface-id'], capture_output=True, text=True,
                                 check=True).stdout.strip().strip('"')
            assert got == port_id
        ping = dk(eng, 'exec', names[0], 'ping', '-c', '2', '-W', '2',
                  str(subnet.network_address + 6))
        assert '2 packets received' in ping
        for name in names:
            assert api(eng, 'DELETE', '/containers/%s?force=1' % name)[0] == 204
        assert subprocess.run(['ovs-vsctl', 'list-ports', br], capture_output=True,
                              text=True).stdout.split() == []
    finally:
        for name in names:
            api(eng, 'DELETE', '/containers/%s?force=1' % name)
        api(eng, 'DELETE', '/networks/%s' % net)
        subprocess.run(['ovs-vsctl', '--timeout=10', '--if-exists', 'del-br', br])


def test_linux_bridge_named_host_end_and_bridge_made_on_demand(ovs_engine):
    """``-o create_bridge=true``: a missing Linux bridge is made (and never
    removed by the engine); an endpoint with ``host_ifname`` gets the
    engine's own veth with that host end on the bridge."""
    eng = ovs_engine
    br = 'ndpx%s' % uuid.uuid4().hex[:6]
    net = 'ndp-lb-' + uuid.uuid4().hex[:6]
    subnet = netfree.free_subnet()
    gw = str(subnet.network_address + 1)
    names = []
    try:
        status, body = api(eng, 'POST', '/networks/create', {
            'Name': net, 'Driver': 'external', 'Options': {'bridge': br}})
        assert status == 400 and br in body['message'], body
        status, body = api(eng, 'POST', '/networks/create', {
            'Name': net, 'Driver': 'external',
            'Options': {'bridge': br, 'create_bridge': 'true'}})
        assert status == 201, body
        assert link(br) is None  # made when a port needs it
        taps = []
        for i in (5, 6):
            name = 'ndp-lbc-%s-%d' % (uuid.uuid4().hex[:4], i)
            tap = 'tapndp%s%d' % (uuid.uuid4().hex[:6], i)
            ep = endpoint(str(subnet.network_address + i), 'fa:16:3e:00:07:%02x' % i, gw,
                          tap, None, None)
            for key in ('iface_id', 'vm_uuid'):
                del ep['DriverOpts'][key]
            status, body = api(eng, 'POST', '/containers/create?name=' + name, {
                'Image': 'busybox', 'Cmd': ['sleep', '600'], 'HostConfig': {'NetworkMode': net},
                'NetworkingConfig': {'EndpointsConfig': {net: ep}}})
            assert status == 201, body
            names.append(name)
            taps.append(tap)
            assert api(eng, 'POST', '/containers/%s/start' % name)[0] == 204
        assert link(br)['linkinfo']['info_kind'] == 'bridge'
        for tap in taps:
            assert link(tap)['master'] == br and link(tap)['mtu'] == 1400
        out = dk(eng, 'exec', names[0], 'sh', '-c', 'ip -o link show eth0; ip -o -4 addr; '
                                                    'ip route')
        assert 'fa:16:3e:00:07:05' in out and 'inet %s/24' % (subnet.network_address + 5) in out
        assert 'default via %s dev eth0' % gw in out
        ping = dk(eng, 'exec', names[0], 'ping', '-c', '2', '-W', '2',
                  str(subnet.network_address + 6))
        assert '2 packets received' in ping
        # Stop and start: the same named host end comes back.
        assert api(eng, 'POST', '/containers/%s/stop?t=0' % names[0])[0] == 204
        assert link(taps[0]) is None
        assert api(eng, 'POST', '/containers/%s/start' % names[0])[0] == 204
        assert link(taps[0])['master'] == br
        for name in names:
            assert api(eng, 'DELETE', '/containers/%s?force=1' % name)[0] == 204
        assert all(link(tap) is None for tap in taps)
        assert api(eng, 'DELETE', '/networks/%s' % net)[0] == 204
        assert link(br) is not None  # the bridge is not the engine's to remove
        assert not [c for c in eng.fake_ovs.calls() if any(t in c for t in taps)]
    finally:
        for name in names:
            api(eng, 'DELETE', '/containers/%s?force=1' % name)
        api(eng, 'DELETE', '/networks/%s' % net)
        subprocess.run(['ip', 'link', 'del', br], stderr=subprocess.DEVNULL)
