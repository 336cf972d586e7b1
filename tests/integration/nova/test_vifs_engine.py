"""The VIF drivers on the real engine (real runc/conmon, CNI, kernel).

Nova's own network model objects (nova.network.model) describe the ports;
the containers are plugged into Linux bridges the tests make on the host
(uniquely named ``ndpv*``, removed at teardown), and everything is read
back from inside the containers and from the host. The module's leak check
(tests/netleaks.py) fails the last test if a veth, namespace, rule or
engine network is left behind.
"""

import ipaddress
import subprocess
import uuid

import pytest

from nova import exception
from nova import objects
from nova.network import model as network_model

from novadocker import client as engine_client
from novadocker.virt.docker import vifs
from tests import netfree
from tests.conftest import run_docker
from tests.fakeovs import FakeOvs

NET_LEAK_CHECK = True

objects.register_all()


@pytest.fixture
def bridge_factory():
    made = []

    def make():
        name = 'ndpv%s' % uuid.uuid4().hex[:8]
        subprocess.run(['ip', 'link', 'add', name, 'type', 'bridge'], check=True)
        made.append(name)
        subprocess.run(['ip', 'link', 'set', name, 'up'], check=True)
        return name
    yield make
    for name in made:
        subprocess.run(['ip', 'link', 'del', name], stderr=subprocess.DEVNULL)


@pytest.fixture
def client(engine):
    c = engine_client.EngineClient(engine.url, timeout=60)
    yield c
    c.close()


@pytest.fixture
def containers(client):
    made = []
    yield made
    for cid in made:
        try:
            client.delete('/containers/%s' % cid, params={'force': True})
        except engine_client.EngineNotFound:
            pass


def neutron_network(bridge, subnet, mtu=1400, dns=('192.0.2.53',), network_id=None):
    """A Nova network model as the Neutron API gives it to the driver."""
    gw = subnet.network_address + 1
    sub = network_model.Subnet(
        cidr=str(subnet), gateway=network_model.IP(address=str(gw), type='gateway'),
        dns=[network_model.IP(address=d, type='dns') for d in dns], ips=[])
    v6 = network_model.Subnet(cidr='fd00:%s::/64' % uuid.uuid4().hex[:4], ips=[],
                              gateway=network_model.IP(address=None, type='gateway'))
    return network_model.Network(id=network_id or str(uuid.uuid4()), bridge=bridge,
                                 label='private', subnets=[sub, v6], meta={'mtu': mtu})


def port(network, host_index, mac):
    """A VIF of ``network`` with its ``host_index``-th IPv4 address (and an
    IPv6 one the engine does not configure)."""
    net = network_model.Network(**{k: v for k, v in network.items() if k != 'meta'},
                                **network['meta'])
    subnets = []
    for s in network['subnets']:
        s = network_model.Subnet(**{k: v for k, v in s.items() if k not in ('meta', 'ips')})
        cidr = ipaddress.ip_network(s['cidr'])
        s['ips'] = [network_model.FixedIP(address=str(cidr.network_address + host_index))]
        subnets.append(s)
    net['subnets'] = subnets
    port_id = str(uuid.uuid4())
    return network_model.VIF(id=port_id, address=mac, network=net, type='bridge',
                             devname=('tap' + port_id)[:14], ovs_interfaceid=None)


def instance():
    return objects.Instance(uuid=str(uuid.uuid4()))


def create(client, containers, driver, inst, network_info):
    body = {'Image': 'busybox', 'Cmd': ['sleep', '600'],
            'HostConfig': {'NetworkMode': driver.network_mode(network_info)}}
    netcfg = driver.networking_config(inst, network_info)
    if netcfg:
        body['NetworkingConfig'] = netcfg
    cid = client.post('/containers/create', params={'name': 'nova-' + inst.uuid},
                      json_body=body)['Id']
    containers.append(cid)
    for vif in network_info:
        driver.plug(inst, vif, cid)
    return cid


def start(client, cid):
    client.post('/containers/%s/start' % cid)


def sh(engine, cid, cmd, check=True):
    res = run_docker(['exec', cid, 'sh', '-c', cmd], engine.url)
    if check:
        assert res.returncode == 0, (cmd, res.stdout, res.stderr)
    return res.stdout


def bridge_ports(bridge):
    out = subprocess.run(['ip', '-o', 'link', 'show', 'master', bridge],
                         capture_output=True, text=True).stdout
    return [ln.split(':')[1].strip().split('@')[0] for ln in out.splitlines()]


def engine_networks(client):
    return sorted(n['Name'] for n in client.get('/networks')
                  if n['Name'].startswith(vifs.NETWORK_PREFIX))


def test_bridge_vifs_configure_the_port_inside_and_two_instances_ping(
        engine, client, containers, bridge_factory):
    driver = vifs.BridgeVIFDriver(client)
    br = bridge_factory()
    subnet = netfree.free_subnet()
    network = neutron_network(br, subnet, mtu=1400, dns=('192.0.2.53', '192.0.2.54'))
    vif_a = port(network, 10, 'fa:16:3e:00:00:0a')
    vif_b = port(network, 11, 'fa:16:3e:00:00:0b')
    a, b = instance(), instance()
    assert driver.network_mode([]) == 'none'
    ca = create(client, containers, driver, a, [vif_a])
    cb = create(client, containers, driver, b, [vif_b])
    name = vifs.NETWORK_PREFIX + network['id']
    assert engine_networks(client).count(name) == 1  # one engine network per Neutron one
    net = client.get('/networks/%s' % name)
    assert (net['Driver'], net['Options']['bridge']) == ('external', br)
    assert net['Labels'][vifs.LABEL_NETWORK_ID] == network['id']
    start(client, ca)
    start(client, cb)

    out = sh(engine, ca, 'ip -o link show eth0; ip -o -4 addr show eth0; ip route; '
                         'cat /etc/resolv.conf')
    assert 'link/ether fa:16:3e:00:00:0a' in out
    assert 'mtu 1400' in out
    assert 'inet %s/24' % (subnet.network_address + 10) in out
    assert 'default via %s dev eth0' % (subnet.network_address + 1) in out
    assert 'nameserver 192.0.2.53' in out and 'nameserver 192.0.2.54' in out
    assert 'eth1' not in sh(engine, ca, 'ip -o link')  # the IPv6 subnet adds nothing
    assert sorted(bridge_ports(br)) == sorted([vif_a['devname'], vif_b['devname']])
    ping = sh(engine, ca, 'ping -c 2 -W 2 %s' % (subnet.network_address + 11))
    assert '2 packets received' in ping

    # plug is idempotent (the driver may call it again, e.g. on reboot).
    driver.plug(a, vif_a, ca)
    assert len(bridge_ports(br)) == 2

    # Hard reboot (stop/start): the engine plugs the port again.
    client.post('/containers/%s/stop' % ca, params={'t': 0})
    assert len(bridge_ports(br)) == 1
    start(client, ca)
    assert 'inet %s/24' % (subnet.network_address + 10) in sh(engine, ca, 'ip -o -4 addr')
    assert '2 packets received' in sh(engine, ca, 'ping -c 2 -W 2 %s'
                                      % (subnet.network_address + 11))

    # Destroy a: its network stays for b; destroying b too lets cleanup remove it.
    driver.unplug(a, vif_a, ca)
    client.delete('/containers/%s' % ca, params={'force': True})
    driver.unplug(a, vif_a, ca)  # idempotent, container gone
    driver.cleanup(a, [vif_a])
    assert name in engine_networks(client)
    assert len(bridge_ports(br)) == 1
    driver.unplug(b, vif_b, cb)
    client.delete('/containers/%s' % cb, params={'force': True})
    driver.cleanup(b, [vif_b])
    driver.cleanup(b, [vif_b])  # idempotent
    assert name not in engine_networks(client)
    assert bridge_ports(br) == []


def test_hot_attach_and_detach_on_a_running_instance(engine, client, containers,
                                                     bridge_factory):
    driver = vifs.BridgeVIFDriver(client)
    br1, br2 = bridge_factory(), bridge_factory()
    s1 = netfree.free_subnet()
    s2 = netfree.free_subnet()
    while s2.overlaps(s1):
        s2 = netfree.free_subnet()
    vif1 = port(neutron_network(br1, s1, mtu=1450), 5, 'fa:16:3e:00:01:05')
    vif2 = port(neutron_network(br2, s2, mtu=1380, dns=()), 6, 'fa:16:3e:00:02:06')
    inst = instance()
    cid = create(client, containers, driver, inst, [vif1])
    start(client, cid)
    assert 'eth1' not in sh(engine, cid, 'ip -o link')

    driver.plug(inst, vif2, cid)   # attach_interface
    out = sh(engine, cid, 'ip -o link show eth1; ip -o -4 addr show eth1; ip route')
    assert 'link/ether fa:16:3e:00:02:06' in out and 'mtu 1380' in out
    assert 'inet %s/24' % (s2.network_address + 6) in out
    # The first port keeps the default route.
    assert 'default via %s dev eth0' % (s1.network_address + 1) in out
    assert len(bridge_ports(br2)) == 1

    driver.unplug(inst, vif2, cid)  # detach_interface
    assert sh(engine, cid, 'ip link show eth1', check=False) == ''
    assert bridge_ports(br2) == []
    assert 'inet %s/24' % (s1.network_address + 5) in sh(engine, cid, 'ip -o -4 addr')
    # Its network has no user left: gone with the port.
    assert vifs.NETWORK_PREFIX + vif2['network']['id'] not in engine_networks(client)
    assert vifs.NETWORK_PREFIX + vif1['network']['id'] in engine_networks(client)

    driver.unplug(inst, vif1, cid)
    client.delete('/containers/%s' % cid, params={'force': True})
    driver.cleanup(inst, [vif1, vif2])
    assert engine_networks(client) == []
    assert bridge_ports(br1) == []


def test_missing_bridge_is_made_and_ports_are_named_as_nova_names_them(
        engine, client, containers):
    """As os-vif does for Linux bridge VIFs: the bridge is made when missing
    (and left for Neutron's agent); the host end is the VIF's devname."""
    driver = vifs.BridgeVIFDriver(client)
    br = 'ndpv%s' % uuid.uuid4().hex[:8]
    subnet = netfree.free_subnet()
    vif = port(neutron_network(br, subnet, mtu=1420), 5, 'fa:16:3e:00:06:05')
    inst = instance()
    try:
        cid = create(client, containers, driver, inst, [vif])
        start(client, cid)
        assert bridge_ports(br) == [vif['devname']]
        host_end = subprocess.run(['ip', '-o', 'link', 'show', vif['devname']],
                                  capture_output=True, text=True).stdout
        assert 'mtu 1420' in host_end and 'master %s' % br in host_end
        out = sh(engine, cid, 'ip -o link show eth0; ip -o -4 addr show eth0')
        assert 'fa:16:3e:00:06:05' in out and 'inet %s/24' % (subnet.network_address + 5) in out
        driver.unplug(inst, vif, cid)
        assert bridge_ports(br) == []
        client.delete('/containers/%s' % cid, params={'force': True})
        driver.cleanup(inst, [vif])
        assert engine_networks(client) == []
        assert subprocess.run(['ip', 'link', 'show', br], capture_output=True).returncode == 0
    finally:
        subprocess.run(['ip', 'link', 'del', br], stderr=subprocess.DEVNULL)


def test_plug_errors_are_nova_errors_and_leave_nothing(engine, client, containers,
                                                      bridge_factory):
    driver = vifs.BridgeVIFDriver(client)
    subnet = netfree.free_subnet()
    bad = port(neutron_network('ndpv-name-too-long', subnet), 5, 'fa:16:3e:00:03:05')
    inst = instance()
    with pytest.raises(exception.VirtualInterfacePlugException) as err:
        driver.network_mode([bad])
    assert 'ndpv-name-too-long' in str(err.value)
    assert engine_networks(client) == []

    br = bridge_factory()
    no_ip = port(neutron_network(br, subnet), 5, 'fa:16:3e:00:03:06')
    for s in no_ip['network']['subnets']:
        s['ips'] = []
    with pytest.raises(exception.VirtualInterfacePlugException) as err:
        driver.networking_config(inst, [no_ip])
    assert 'IPv4' in str(err.value)

    good = port(neutron_network(br, subnet), 7, 'fa:16:3e:00:03:07')
    with pytest.raises(exception.InstanceNotFound):
        driver.plug(inst, good, 'no-such-container-' + uuid.uuid4().hex[:6])
    driver.cleanup(inst, [good, bad])
    assert engine_networks(client) == []


def test_unreachable_engine_is_hypervisor_unavailable(tmp_path):
    c = engine_client.EngineClient('unix://%s/none.sock' % tmp_path, timeout=2)
    driver = vifs.BridgeVIFDriver(c)
    vif = port(neutron_network('ndpvx', ipaddress.ip_network('10.0.0.0/24')), 5,
               'fa:16:3e:00:04:05')
    with pytest.raises(exception.HypervisorUnavailable):
        driver.plug(instance(), vif, 'x')


@pytest.fixture
def ovs_engine(engine_factory, tmp_path, monkeypatch):
    """An engine of the test's own with a fake ovs-vsctl on its PATH
    (Open vSwitch is not installed here; tests/fakeovs.py)."""
    fake = FakeOvs(str(tmp_path / 'ovs'), bridges=('br-int',))
    monkeypatch.setenv('PATH', fake.path)
    eng = engine_factory()
    monkeypatch.undo()
    eng.fake_ovs = fake
    return eng


def test_ovs_vifs_plug_into_the_integration_bridge_with_neutron_ids(ovs_engine):
    """Nova's OVS VIF (as the Neutron fixture gives it: type ovs, bridge
    br-int, devname tap<port id>, ovs_interfaceid) through the ovs driver."""
    c = engine_client.EngineClient(ovs_engine.url, timeout=60)
    containers = []
    driver = vifs.OvsVIFDriver(c)
    subnet = netfree.free_subnet()
    vif = port(neutron_network('br-int', subnet, mtu=1450), 3, 'fa:16:3e:4c:2c:30')
    vif['type'] = 'ovs'
    vif['ovs_interfaceid'] = vif['id']
    inst = instance()
    try:
        cid = create(c, containers, driver, inst, [vif])
        net = c.get('/networks/%s' % (vifs.NETWORK_PREFIX + vif['network']['id']))
        assert net['Options']['ovs_bridge'] == 'br-int'
        start(c, cid)
        add = [call for call in ovs_engine.fake_ovs.calls() if 'add-port' in call]
        assert len(add) == 1 and vif['devname'] in add[0] and 'br-int' in add[0]
        assert {'external-ids:iface-id=' + vif['id'], 'external-ids:vm-uuid=' + inst.uuid,
                'external-ids:attached-mac=fa:16:3e:4c:2c:30',
                'external-ids:iface-status=active'} <= set(add[0])
        host_end = subprocess.run(['ip', '-o', 'link', 'show', vif['devname']],
                                  capture_output=True, text=True).stdout
        assert 'mtu 1450' in host_end
        out = sh(ovs_engine, cid, 'ip -o link show eth0; ip -o -4 addr show eth0')
        assert 'link/ether fa:16:3e:4c:2c:30' in out
        assert 'inet %s/24' % (subnet.network_address + 3) in out
        driver.unplug(inst, vif, cid)
        assert subprocess.run(['ip', 'link', 'show', vif['devname']],
                              capture_output=True).returncode != 0
        assert [call for call in ovs_engine.fake_ovs.calls()
                if 'del-port' in call and vif['devname'] in call]
        c.delete('/containers/%s' % cid, params={'force': True})
        driver.cleanup(inst, [vif])
        assert engine_networks(c) == []
    finally:
        for cid in containers:
            try:
                c.delete('/containers/%s' % cid, params={'force': True})
            except engine_client.EngineNotFound:
                pass
        c.close()


def test_attach_to_a_stopped_instance_takes_effect_at_start(engine, client, containers,
                                                            bridge_factory):
    """Nova attaches interfaces to SHUTOFF instances too: the port is
    recorded and plugged when the instance is powered on."""
    driver = vifs.BridgeVIFDriver(client)
    br = bridge_factory()
    subnet = netfree.free_subnet()
    vif1 = port(neutron_network(br, subnet), 5, 'fa:16:3e:00:05:05')
    vif2 = port(neutron_network(br, subnet), 6, 'fa:16:3e:00:05:06')  # another network
    inst = instance()
    cid = create(client, containers, driver, inst, [vif1])
    driver.plug(inst, vif2, cid)
    assert bridge_ports(br) == []  # nothing plugged while it is not running
    start(client, cid)
    out = sh(engine, cid, 'ip -o link show eth1; ip -o -4 addr show eth1')
    assert 'fa:16:3e:00:05:06' in out and 'inet %s/24' % (subnet.network_address + 6) in out
    assert len(bridge_ports(br)) == 2
    client.post('/containers/%s/stop' % cid, params={'t': 0})
    driver.unplug(inst, vif2, cid)
    driver.cleanup(inst, [vif2])
    start(client, cid)
    assert sh(engine, cid, 'ip link show eth1', check=False) == ''
    assert len(bridge_ports(br)) == 1
    driver.unplug(inst, vif1, cid)
    client.delete('/containers/%s' % cid, params={'force': True})
    driver.cleanup(inst, [vif1, vif2])
    assert engine_networks(client) == []
