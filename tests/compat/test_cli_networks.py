"""Networks through the real docker CLI: the default bridge, user-defined
networks, static addresses, aliases, links, connect/disconnect, modes and
external (Neutron-shaped) bridges.

Every test reads the effect back from inside a container (``ip addr``,
``ip route``, /etc/hosts, an httpd fetched with wget) or from the host
(bridges, iptables rules).  Note: the test image's static busybox wget
crashes with ``-q`` or ``-T``; the tests call it without them.
"""

import ipaddress
import json
import re
import subprocess
import time
import uuid

import pytest

from tests import daemons
from tests import netfree
from tests.compat.conftest import inspect, wait_for

# tests/netleaks.py checks this module for leaked veths, bridges, rules, leases.
NET_LEAK_CHECK = True

pytestmark = pytest.mark.compat

HTTPD = 'echo hello-from-$(hostname) > /tmp/index.html; exec httpd -f -p 80 -h /tmp'


# tests/netleaks.py checks this module for leaked veths, bridges, rules...
NET_LEAK_CHECK = True


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def fails(res, message):
    assert res.returncode != 0, res.stdout
    assert message in res.stderr, res.stderr
    return res


@pytest.fixture
def nets(engine, docker_cli):
    """``nets(prefix)`` -> a fresh network name; removed at teardown."""
    made = []
    suffix = uuid.uuid4().hex[:6]

    def make(prefix='n'):
        name = 'cn-%s-%s-%d' % (prefix, suffix, len(made))
        made.append(name)
        return name
    yield make
    for name in made:
        # Containers of the test may still sit on the network (the names
        # fixture can be torn down after this one): remove them first.
        status, net = daemons.api_json(engine.sock, 'GET', '/networks/%s' % name, timeout=60)
        if status == 200:
            for cid in (net.get('Containers') or {}):
                daemons.api(engine.sock, 'DELETE', '/containers/%s?force=1&v=1' % cid,
                            timeout=60)
        daemons.api(engine.sock, 'DELETE', '/networks/%s' % name, timeout=60)


@pytest.fixture
def test_bridge():
    """A Linux bridge made by the test (an external network's, Neutron's)."""
    name = 'ndx' + uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'link', 'add', name, 'type', 'bridge'], check=True)
    subprocess.run(['ip', 'link', 'set', name, 'up'], check=True)
    yield name
    subprocess.run(['ip', 'link', 'del', name], capture_output=True)


def addr_of(text, ifname):
    """The inet address/prefix of ``ifname`` in `ip addr` output."""
    block = re.split(r'\n(?=\d+: )', text)
    for b in block:
        if re.match(r'\d+: %s[@:]' % ifname, b):
            m = re.search(r'inet (\S+)', b)
            return m.group(1) if m else None
    return None


def test_default_bridge_gives_eth0_and_default_route(engine, docker_cli, names):
    net = json.loads(ok(docker_cli(['network', 'inspect', 'bridge'])).stdout)[0]
    subnet = ipaddress.ip_network(net['IPAM']['Config'][0]['Subnet'])
    gateway = net['IPAM']['Config'][0]['Gateway']
    name = names('def')
    out = ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                         'ip addr; echo ==; ip route; echo ==; cat /etc/hosts; hostname'])).stdout
    addrs, routes, hosts = out.split('==\n')
    ip = addr_of(addrs, 'eth0')
    assert ip and ipaddress.ip_interface(ip).ip in subnet
    assert 'default via %s dev eth0' % gateway in routes
    # Docker's own line: <ip>\t<hostname>
    hostname = hosts.strip().splitlines()[-1]
    assert '%s\t%s' % (ipaddress.ip_interface(ip).ip, hostname) in hosts
    # The subnet is routed on no other device of the host (chosen to avoid).
    routes_host = subprocess.run(['ip', '-4', 'route'], capture_output=True, text=True).stdout
    bridge_dev = net['Options']['com.docker.network.bridge.name']
    for line in routes_host.splitlines():
        if line.startswith(str(subnet)):
            assert 'dev %s' % bridge_dev in line
    # Stopped: the endpoint stays listed with its address cleared.
    data = inspect(engine, name)
    assert data['NetworkSettings']['Networks']['bridge']['IPAddress'] == ''
    assert data['NetworkSettings']['Networks']['bridge']['NetworkID'] == net['Id']
    assert data['NetworkSettings']['SandboxKey'] == ''


def test_running_container_views_and_reachability(engine, docker_cli, names):
    web = names('web')
    ok(docker_cli(['run', '-d', '--name', web, 'busybox', 'sh', '-c', HTTPD]))
    data = inspect(engine, web)
    ns = data['NetworkSettings']
    ep = ns['Networks']['bridge']
    assert ep['IPAddress'] and ep['IPPrefixLen'] > 0 and ep['EndpointID']
    assert ns['IPAddress'] == ep['IPAddress'] and ns['Gateway'] == ep['Gateway']
    assert ns['SandboxKey'].endswith('/netns/' + data['Id'])
    assert data['HostConfig']['NetworkMode'] == 'default'
    out = ok(docker_cli(['run', '--rm', 'busybox', 'wget', '-O-',
                         'http://%s/' % ep['IPAddress']])).stdout
    assert 'hello-from-' in out
    listed = json.loads(ok(docker_cli(['network', 'inspect', 'bridge'])).stdout)[0]
    assert listed['Containers'][data['Id']]['IPv4Address'] == '%s/%d' % (
        ep['IPAddress'], ep['IPPrefixLen'])
    ps = ok(docker_cli(['ps', '--filter', 'name=' + web, '--format',
                        '{{.Networks}}'])).stdout.strip()
    assert ps == 'bridge'


def test_user_network_resolution_by_name_alias_and_short_id(engine, docker_cli, names, nets):
    net = nets('res')
    subnet = netfree.free_subnet()
    ok(docker_cli(['network', 'create', '--subnet', str(subnet), net]))
    web = names('web')
    cid = ok(docker_cli(['run', '-d', '--name', web, '--network', net,
                         '--network-alias', 'www', 'busybox', 'sh', '-c', HTTPD])).stdout.strip()
    for target in (web, 'www', cid[:12]):
        out = ok(docker_cli(['run', '--rm', '--network', net, 'busybox', 'wget', '-O-',
                             'http://%s/' % target])).stdout
        assert out.strip() == 'hello-from-%s' % cid[:12]
    # A peer that joins later is added in place to the running container's hosts.
    late = names('late')
    ok(docker_cli(['run', '-d', '--name', late, '--network', net, 'busybox', 'sleep', '60']))
    hosts = ok(docker_cli(['exec', web, 'cat', '/etc/hosts'])).stdout
    late_ip = inspect(engine, late)['NetworkSettings']['Networks'][net]['IPAddress']
    assert re.search(r'^%s\s.*\b%s\b' % (re.escape(late_ip), re.escape(late)), hosts, re.M), hosts
    ok(docker_cli(['rm', '-f', late]))
    hosts = ok(docker_cli(['exec', web, 'cat', '/etc/hosts'])).stdout
    assert late not in hosts
    # A rename is seen by the peers.
    ok(docker_cli(['rename', web, web + '-new']))
    out = ok(docker_cli(['run', '--rm', '--network', net, 'busybox', 'wget', '-O-',
                         'http://%s-new/' % web])).stdout
    assert out.strip() == 'hello-from-%s' % cid[:12]
    ok(docker_cli(['rename', web + '-new', web]))  # the names fixture removes it
    # Aliases carry the short id on user-defined networks, as Docker's.
    aliases = inspect(engine, web)['NetworkSettings']['Networks'][net]['Aliases']
    assert 'www' in aliases and cid[:12] in aliases


def test_static_ip_and_mac_survive_restart(engine, docker_cli, names, nets):
    net = nets('static')
    subnet = netfree.free_subnet()
    ip = str(subnet.network_address + 77)
    ok(docker_cli(['network', 'create', '--subnet', str(subnet), net]))
    name = names('st')
    ok(docker_cli(['run', '-d', '--name', name, '--network', net, '--ip', ip,
                   '--mac-address', '02:42:ac:11:00:99', 'busybox', 'sleep', '60']))
    for _ in range(2):
        out = ok(docker_cli(['exec', name, 'ip', 'addr', 'show', 'eth0'])).stdout
        assert 'inet %s/%d' % (ip, subnet.prefixlen) in out
        assert 'link/ether 02:42:ac:11:00:99' in out
        ok(docker_cli(['restart', '-t', '0', name]))


def test_static_ip_rules_as_docker(docker_cli, names, nets):
    fails(docker_cli(['run', '--rm', '--ip', '172.17.0.50', 'busybox', 'true']),
          'user specified IP address is supported on user defined networks only')
    net = nets('nosub')
    ok(docker_cli(['network', 'create', net]))
    fails(docker_cli(['run', '--rm', '--network', net, '--ip', '10.1.1.1', 'busybox', 'true']),
          'user specified IP address is supported only when connecting to networks with user '
          'configured subnets')
    fails(docker_cli(['run', '--rm', '--network', 'no-such-net-here', 'busybox', 'true']),
          'network no-such-net-here not found')


def test_network_create_errors(docker_cli, nets):
    net = nets('err')
    subnet = netfree.free_subnet()
    ok(docker_cli(['network', 'create', '--subnet', str(subnet), net]))
    fails(docker_cli(['network', 'create', net]), 'network with name %s already exists' % net)
    fails(docker_cli(['network', 'create', '--subnet', str(subnet), nets('dup')]),
          'Pool overlaps with other one on this address space')
    fails(docker_cli(['network', 'create', '--subnet', '10.0.0.0/40', nets('bad')]),
          'invalid subnet')
    fails(docker_cli(['network', 'rm', 'bridge']),
          'bridge is a pre-defined network and cannot be removed')
    fails(docker_cli(['network', 'rm', 'no-such-network-x']), 'no-such-network-x')
    # The host's own routes are never overlapped.
    fails(docker_cli(['network', 'create', '--subnet', '192.0.2.0/25', nets('host')]),
          'Pool overlaps')


def test_user_bridge_options_internal_and_host_side(engine, docker_cli, names, nets):
    net = nets('opt')
    brname = 'ndt' + uuid.uuid4().hex[:8]
    ok(docker_cli(['network', 'create', '--internal', '-o',
                   'com.docker.network.bridge.name=' + brname, '-o',
                   'com.docker.network.driver.mtu=1400', '--label', 'tier=test', net]))
    data = json.loads(ok(docker_cli(['network', 'inspect', net])).stdout)[0]
    assert data['Internal'] is True and data['Labels'] == {'tier': 'test'}
    assert open('/sys/class/net/%s/mtu' % brname).read().strip() == '1400'
    rules = subprocess.run(['iptables', '-S', 'NOVADOCKER-FORWARD'], capture_output=True,
                           text=True).stdout
    assert '-i %s ! -o %s -m comment --comment %s -j DROP' % (brname, brname, data['Id'][:12]) \
        in rules
    nat = subprocess.run(['iptables', '-t', 'nat', '-S', 'NOVADOCKER-POSTROUTING'],
                         capture_output=True, text=True).stdout
    assert data['Id'][:12] not in nat  # internal: no masquerading
    out = ok(docker_cli(['run', '--rm', '--network', net, 'busybox', 'sh', '-c',
                         'ip link show eth0; ip route'])).stdout
    assert 'mtu 1400' in out
    ok(docker_cli(['network', 'rm', net]))
    assert not subprocess.run(['ip', 'link', 'show', brname], capture_output=True).returncode == 0
    rules = subprocess.run(['iptables', '-S', 'NOVADOCKER-FORWARD'], capture_output=True,
                           text=True).stdout
    assert data['Id'][:12] not in rules


def test_network_ls_filters_and_prune(engine, docker_cli, nets):
    a, b = nets('fa'), nets('fb')
    ok(docker_cli(['network', 'create', '--label', 'keep=yes', a]))
    ok(docker_cli(['network', 'create', b]))
    custom = ok(docker_cli(['network', 'ls', '--filter', 'type=custom', '--format',
                            '{{.Name}}'])).stdout.split()
    assert a in custom and b in custom and 'bridge' not in custom
    builtin = ok(docker_cli(['network', 'ls', '--filter', 'type=builtin', '--format',
                             '{{.Name}}'])).stdout.split()
    assert sorted(builtin) == ['bridge', 'host', 'none']
    labelled = ok(docker_cli(['network', 'ls', '--filter', 'label=keep=yes', '--format',
                              '{{.Name}}'])).stdout.split()
    assert labelled == [a]
    drivers = ok(docker_cli(['network', 'ls', '--filter', 'driver=null', '--format',
                             '{{.Name}}'])).stdout.split()
    assert drivers == ['none']
    out = ok(docker_cli(['network', 'prune', '-f', '--filter', 'label!=keep=yes'])).stdout
    assert b in out and a not in out
    listed = ok(docker_cli(['network', 'ls', '--format', '{{.Name}}'])).stdout.split()
    assert b not in listed and a in listed


def test_connect_disconnect_running_and_stopped(engine, docker_cli, names, nets):
    net = nets('conn')
    subnet = netfree.free_subnet()
    ok(docker_cli(['network', 'create', '--subnet', str(subnet), net]))
    name = names('cd')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '60']))
    ip = str(subnet.network_address + 9)
    ok(docker_cli(['network', 'connect', '--ip', ip, '--alias', 'extra', net, name]))
    out = ok(docker_cli(['exec', name, 'ip', 'addr'])).stdout
    assert addr_of(out, 'eth1') == '%s/%d' % (ip, subnet.prefixlen)
    assert addr_of(out, 'eth0')
    fails(docker_cli(['network', 'connect', net, name]), 'already exists in network')
    fails(docker_cli(['network', 'rm', net]), 'has active endpoints')
    fails(docker_cli(['network', 'disconnect', 'none', name]), 'is not connected to network none')
    ok(docker_cli(['network', 'disconnect', net, name]))
    out = ok(docker_cli(['exec', name, 'ip', 'addr'])).stdout
    assert addr_of(out, 'eth1') is None and addr_of(out, 'eth0')
    # Stopped: recorded only, plumbed at the next start.
    ok(docker_cli(['stop', '-t', '0', name]))
    ok(docker_cli(['network', 'connect', net, name]))
    ep = inspect(engine, name)['NetworkSettings']['Networks'][net]
    assert ep['IPAddress'] == '' and ep['EndpointID'] == ''
    ok(docker_cli(['start', name]))
    out = ok(docker_cli(['exec', name, 'ip', 'addr'])).stdout
    assert ipaddress.ip_interface(addr_of(out, 'eth1')).ip in subnet


def test_legacy_link_env_and_hosts(engine, docker_cli, names):
    web = names('lw')
    ok(docker_cli(['run', '-d', '--name', web, '--expose', '80', 'busybox', 'sh', '-c', HTTPD]))
    ip = inspect(engine, web)['NetworkSettings']['IPAddress']
    out = ok(docker_cli(['run', '--rm', '--link', '%s:backend' % web, 'busybox', 'sh', '-c',
                         'env; echo ==; cat /etc/hosts; echo ==; wget -O- http://backend/']))
    env, hosts, body = out.stdout.split('==\n')
    assert 'BACKEND_PORT_80_TCP_ADDR=%s' % ip in env
    assert 'BACKEND_PORT=tcp://%s:80' % ip in env
    assert re.search(r'^%s\tbackend\b' % re.escape(ip), hosts, re.M), hosts
    assert 'hello-from-' in body
    fails(docker_cli(['run', '--rm', '--link', 'no-such-container-zz:x', 'busybox', 'true']),
          'could not get container for no-such-container-zz')


def test_modes_none_host_and_container(engine, docker_cli, names):
    out = ok(docker_cli(['run', '--rm', '--network', 'none', 'busybox', 'ip', 'addr'])).stdout
    assert addr_of(out, 'lo') == '127.0.0.1/8' and 'eth0' not in out
    host_links = subprocess.run(['ip', '-o', 'link'], capture_output=True, text=True).stdout
    out = ok(docker_cli(['run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link'])).stdout
    assert 'eth0' in out and len(out.splitlines()) >= len(host_links.splitlines()) - 5
    owner = names('own')
    ok(docker_cli(['run', '-d', '--name', owner, 'busybox', 'sleep', '60']))
    mine = addr_of(ok(docker_cli(['exec', owner, 'ip', 'addr'])).stdout, 'eth0')
    out = ok(docker_cli(['run', '--rm', '--network', 'container:' + owner, 'busybox',
                         'ip', 'addr'])).stdout
    assert addr_of(out, 'eth0') == mine
    info = json.loads(ok(docker_cli(['info', '--format', '{{json .}}'])).stdout)
    assert 'bridge' in info['Plugins']['Network']
    assert not [w for w in info.get('Warnings') or () if 'bridge' in w]


def test_external_bridge_hot_plug_and_unplug(engine, docker_cli, names, nets, test_bridge):
    net = nets('ext')
    fails(docker_cli(['network', 'create', '-d', 'external', '-o', 'bridge=ndnosuch0', net]),
          'bridge ndnosuch0 does not exist')
    ok(docker_cli(['network', 'create', '-d', 'external', '-o', 'bridge=' + test_bridge, net]))
    data = json.loads(ok(docker_cli(['network', 'inspect', net])).stdout)[0]
    assert data['IPAM'] == {'Driver': 'null', 'Options': None, 'Config': []}
    subnet = netfree.free_subnet()
    gw, a_ip, b_ip = (str(subnet.network_address + n) for n in (1, 5, 6))
    a = names('exa')
    ok(docker_cli(['run', '-d', '--name', a, '--network', 'none', 'busybox', 'sleep', '60']))
    fails(docker_cli(['network', 'connect', net, a]), 'one of the networks in private (none) mode')
    ok(docker_cli(['network', 'disconnect', 'none', a]))
    fails(docker_cli(['network', 'connect', net, a]), 'has no IPAM')
    ok(docker_cli(['network', 'connect', '--ip', a_ip, '--driver-opt', 'prefixlen=24',
                   '--driver-opt', 'gateway=' + gw, '--driver-opt', 'mtu=1400',
                   '--driver-opt', 'dns=%s' % gw, net, a]))
    out = ok(docker_cli(['exec', a, 'sh', '-c', 'ip addr; echo ==; ip route; echo ==; '
                         'cat /etc/resolv.conf'])).stdout
    addrs, routes, resolv = out.split('==\n')
    assert addr_of(addrs, 'eth0') == '%s/24' % a_ip
    assert 'mtu 1400' in addrs
    assert 'default via %s dev eth0' % gw in routes
    assert 'nameserver %s' % gw in resolv
    b = names('exb')
    ok(docker_cli(['run', '-d', '--name', b, '--network',
                   'name=%s,ip=%s,mac-address=02:42:0a:4d:03:06,driver-opt=prefixlen=24'
                   % (net, b_ip), 'busybox', 'sleep', '60']))
    out = ok(docker_cli(['exec', b, 'ip', 'addr', 'show', 'eth0'])).stdout
    assert 'link/ether 02:42:0a:4d:03:06' in out
    ok(docker_cli(['exec', b, 'ping', '-c', '1', '-W', '3', a_ip]))
    ports_before = sorted(subprocess.run(['ls', '/sys/class/net/%s/brif' % test_bridge],
                                         capture_output=True, text=True).stdout.split())
    assert len(ports_before) == 2
    ok(docker_cli(['network', 'disconnect', net, a]))
    out = ok(docker_cli(['exec', a, 'ip', 'addr'])).stdout
    assert addr_of(out, 'eth0') is None
    ports_after = sorted(subprocess.run(['ls', '/sys/class/net/%s/brif' % test_bridge],
                                        capture_output=True, text=True).stdout.split())
    assert len(ports_after) == 1
    ok(docker_cli(['rm', '-f', b]))
    assert subprocess.run(['ls', '/sys/class/net/%s/brif' % test_bridge],
                          capture_output=True, text=True).stdout.split() == []


def test_network_events(engine, docker_cli, names, nets):
    since = str(time.time())
    net = nets('ev')
    ok(docker_cli(['network', 'create', net]))
    name = names('ev')
    cid = ok(docker_cli(['run', '-d', '--name', name, '--network', net, 'busybox',
                         'sleep', '60'])).stdout.strip()
    ok(docker_cli(['rm', '-f', name]))
    ok(docker_cli(['network', 'rm', net]))
    out = ok(docker_cli(['events', '--since', since, '--until', str(time.time() + 1),
                         '--filter', 'type=network', '--format',
                         '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} '
                         '{{.Actor.Attributes.container}}'])).stdout.splitlines()
    mine = [line for line in out if (' %s ' % net) in line]
    assert mine == ['create %s bridge <no value>' % net, 'connect %s bridge %s' % (net, cid),
                    'disconnect %s bridge %s' % (net, cid), 'destroy %s bridge <no value>' % net], out


def test_published_ports_views_release_and_publish_all(engine, docker_cli, names):
    port = netfree.free_ports()
    name = names('pub')
    ok(docker_cli(['run', '-d', '--name', name, '-p', '127.0.0.1:%d:80' % port, '--expose',
                   '81', 'busybox', 'sh', '-c', HTTPD]))
    body = wait_for(lambda: _fetch('http://127.0.0.1:%d/' % port), what='published port')
    assert body.startswith(b'hello-from-')
    assert ok(docker_cli(['port', name])).stdout.strip() == '80/tcp -> 127.0.0.1:%d' % port
    ports = inspect(engine, name)['NetworkSettings']['Ports']
    assert ports == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': str(port)}], '81/tcp': None}
    ps = ok(docker_cli(['ps', '--filter', 'name=' + name, '--format', '{{.Ports}}'])).stdout
    assert '127.0.0.1:%d->80/tcp' % port in ps and '81/tcp' in ps
    # The host port is held: another container cannot take it.
    other = names('pub2')
    fails(docker_cli(['run', '-d', '--name', other, '-p', '127.0.0.1:%d:80' % port, 'busybox',
                      'true']), 'port is already allocated')
    ok(docker_cli(['rm', '-f', name, other]))
    # Released at removal: the port is bindable again.
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', port))
    assert _fetch('http://127.0.0.1:%d/' % port) is None
    # -P publishes what the container exposes on random ports.
    name3 = names('pall')
    ok(docker_cli(['run', '-d', '--name', name3, '-P', '--expose', '80', 'busybox', 'sh', '-c',
                   HTTPD]))
    binding = inspect(engine, name3)['NetworkSettings']['Ports']['80/tcp'][0]
    assert int(binding['HostPort']) > 0
    body = wait_for(lambda: _fetch('http://127.0.0.1:%s/' % binding['HostPort']),
                    what='-P port')
    assert body.startswith(b'hello-from-')


def _fetch(url):
    import urllib.request
    try:
        return urllib.request.urlopen(url, timeout=3).read()
    except OSError:
        return None


def test_user_networks_are_isolated_from_each_other(engine, docker_cli, names, nets):
    a_net, b_net = nets('isa'), nets('isb')
    ok(docker_cli(['network', 'create', a_net]))
    ok(docker_cli(['network', 'create', b_net]))
    web = names('isow')
    ok(docker_cli(['run', '-d', '--name', web, '--network', a_net, 'busybox', 'sh', '-c', HTTPD]))
    ip = inspect(engine, web)['NetworkSettings']['Networks'][a_net]['IPAddress']
    same = ok(docker_cli(['run', '--rm', '--network', a_net, 'busybox', 'ping', '-c', '1',
                          '-W', '2', ip]))
    assert '1 packets received' in same.stdout
    other = docker_cli(['run', '--rm', '--network', b_net, 'busybox', 'ping', '-c', '1',
                        '-W', '2', ip])
    assert other.returncode != 0 and '0 packets received' in other.stdout
