"""Networks through docker-py (what heat/nova-style clients use)."""

import uuid

import docker
import pytest

from tests import netfree

# tests/netleaks.py checks this module for leaked veths, bridges, rules, leases.
NET_LEAK_CHECK = True

pytestmark = pytest.mark.compat


@pytest.fixture
def client(engine):
    c = docker.DockerClient(base_url=engine.url, timeout=120)
    yield c
    c.close()


def test_network_lifecycle_and_static_connect(client):
    name = 'pyn-' + uuid.uuid4().hex[:8]
    subnet = netfree.free_subnet()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
    net = client.networks.create(name, driver='bridge', ipam=ipam, labels={'by': 'py'},
                                 check_duplicate=True)
    box = None
    try:
        assert net.attrs['IPAM']['Config'][0]['Subnet'] == str(subnet)
        assert [n.name for n in client.networks.list(names=[name])] == [name]
        assert name in [n.name for n in client.networks.list(filters={'label': 'by=py'})]
        box = client.containers.run('busybox', ['sleep', '60'], detach=True)
        ip = str(subnet.network_address + 20)
        net.connect(box, ipv4_address=ip, aliases=['pybox'])
        net.reload()
        assert net.attrs['Containers'][box.id]['IPv4Address'] == '%s/%d' % (ip, subnet.prefixlen)
        code, out = box.exec_run(['ip', 'addr', 'show', 'eth1'])
        assert code == 0 and ('inet %s/' % ip).encode() in out
        box.reload()
        assert 'pybox' in box.attrs['NetworkSettings']['Networks'][name]['Aliases']
        with pytest.raises(docker.errors.APIError) as info:
            net.remove()
        assert info.value.status_code == 403
        net.disconnect(box)
        code, out = box.exec_run(['ip', 'addr'])
        assert b'eth1' not in out
    finally:
        if box is not None:
            box.remove(force=True)
        net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(name)
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.get('bridge').remove()
    assert info.value.status_code == 403


def test_run_on_network_with_ports(client):
    name = 'pyp-' + uuid.uuid4().hex[:8]
    client.networks.create(name)
    port = netfree.free_ports()
    try:
        box = client.containers.run(
            'busybox', ['sh', '-c', 'echo py > /tmp/index.html; exec httpd -f -p 80 -h /tmp'],
            detach=True, network=name, ports={'80/tcp': ('127.0.0.1', port)})
        try:
            box.reload()
            assert box.ports == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': str(port)}]}
            assert box.attrs['NetworkSettings']['Networks'][name]['IPAddress']
        finally:
            box.remove(force=True)
    finally:
        client.networks.get(name).remove()
