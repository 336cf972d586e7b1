"""The ports module's output drives Debian's CNI portmap plugin for real.

A network namespace, a bridge and a veth made by the CNI bridge plugin (with
host-local IPAM in a temporary directory), a TCP and a UDP server inside the
namespace, then portmap ADD with ``cni_port_mappings`` of what the
PortAllocator reserved (and holds with its sockets, as the engine will): the
host reaches the servers through 127.0.0.1:<host port>.  Everything made
here is removed at the end, failure or not: portmap DEL (its per-container
chains), bridge DEL, the bridge device, the namespace, the IPAM directory.
The shared CNI-HOSTPORT-* chains portmap creates on first use are left
alone: other engines on this host use them too.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from engine.networks import ports as P
from tests import netfree

pytestmark = pytest.mark.functional

CNI_PATH = '/usr/lib/cni'

SERVER = r'''
import socket, sys, threading
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', 80)); s.listen()
    while True:
        c, peer = s.accept(); c.sendall(b'hello from the netns ' + peer[0].encode()); c.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 53))
    while True:
        data, peer = u.recvfrom(100); u.sendto(b'echo ' + data, peer)
threading.Thread(target=udp, daemon=True).start()
print('ready', flush=True)
tcp()
'''


def _need(*paths):
    for path in paths:
        if not os.path.exists(path):
            pytest.skip('%s is not installed' % path)
    if os.geteuid() != 0:
        pytest.skip('needs root')


def _cni(plugin, command, conf, cid, netns, ifname='eth0'):
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid,
               CNI_NETNS=netns, CNI_IFNAME=ifname, CNI_PATH=CNI_PATH)
    res = subprocess.run([os.path.join(CNI_PATH, plugin)], input=json.dumps(conf),
                         capture_output=True, text=True, env=env, timeout=60)
    if res.returncode != 0:
        raise RuntimeError('CNI %s %s failed (%d): %s %s'
                           % (plugin, command, res.returncode, res.stdout, res.stderr))
    return json.loads(res.stdout) if res.stdout.strip() else None


def _nat_rules():
    return subprocess.run(['iptables', '-w', '-t', 'nat', '-S'], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture
def sandbox():
    """(cid, netns path, bridge conf, bridge result); all removed at the end."""
    _need(os.path.join(CNI_PATH, 'bridge'), os.path.join(CNI_PATH, 'portmap'),
          os.path.join(CNI_PATH, 'host-local'))
    tag = uuid.uuid4().hex[:6]
    cid = 'ndportstest' + uuid.uuid4().hex
    netns_name = 'ndpt-' + tag
    bridge = 'ndpt' + tag
    ipam_dir = tempfile.mkdtemp(prefix='ndpt-ipam-')
    subnet = netfree.free_subnet()
    netns = '/run/netns/' + netns_name
    conf = {'cniVersion': '1.0.0', 'name': 'ndpt-' + tag, 'type': 'bridge',
            'bridge': bridge, 'isGateway': True, 'ipMasq': False, 'hairpinMode': True,
            'ipam': {'type': 'host-local', 'dataDir': ipam_dir,
                     'ranges': [[{'subnet': str(subnet)}]]}}
    state = {'bridge_added': False, 'portmap': None}
    try:
        subprocess.run(['ip', 'netns', 'add', netns_name], check=True)
        state['bridge_added'] = True
        result = _cni('bridge', 'ADD', conf, cid, netns)
        yield cid, netns, conf, result, state
    finally:
        errors = []
        if state['portmap'] is not None:
            try:
                _cni('portmap', 'DEL', state['portmap'], cid, netns)
            except Exception as exc:   # noqa: BLE001 (collected, raised below)
                errors.append(exc)
        if state['bridge_added']:
            try:
                _cni('bridge', 'DEL', conf, cid, netns)
            except Exception as exc:   # noqa: BLE001
                errors.append(exc)
        subprocess.run(['ip', 'link', 'del', bridge], capture_output=True)
        subprocess.run(['ip', 'netns', 'del', netns_name], capture_output=True)
        shutil.rmtree(ipam_dir, ignore_errors=True)
        # nothing of ours is left
        links = subprocess.run(['ip', '-o', 'link'], capture_output=True, text=True).stdout
        assert bridge not in links
        assert not os.path.exists(netns)
        if errors:
            raise errors[0]
        assert cid not in _nat_rules()


def _container_ip(result):
    return result['ips'][0]['address'].split('/')[0]


def _fetch(port):
    """What the TCP server in the namespace says through 127.0.0.1:port;
    with snat it names the bridge's gateway as its peer, not 127.0.0.1."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=5) as c:
                reply = c.recv(100)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert reply.startswith(b'hello from the netns '), reply
    return reply


def test_cni_port_mappings_drive_portmap(sandbox):
    cid, netns, conf, result, state = sandbox
    # the servers live in the namespace: start them there
    server = subprocess.Popen(['ip', 'netns', 'exec', os.path.basename(netns),
                               'python3', '-c', SERVER],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alloc = P.PortAllocator()
    try:
        assert server.stdout.readline().strip() == 'ready', server.stderr.read()
        # -p 127.0.0.1::80 -p 0.0.0.0::80 -p 53/udp
        specs = P.parse({'ExposedPorts': {'80/tcp': {}, '53/udp': {}}},
                        {'PortBindings': {'80/tcp': [{'HostIp': '127.0.0.1'},
                                                     {'HostIp': '0.0.0.0'}],
                                          '53/udp': [{}]}})
        bindings = alloc.allocate(cid, specs)
        mappings = P.cni_port_mappings(bindings)
        assert {m['protocol'] for m in mappings} == {'tcp', 'udp'}
        pm_conf = {'cniVersion': '1.0.0', 'name': conf['name'], 'type': 'portmap',
                   'capabilities': {'portMappings': True}, 'snat': True,
                   'runtimeConfig': {'portMappings': mappings}, 'prevResult': result}
        state['portmap'] = pm_conf
        _cni('portmap', 'ADD', pm_conf, cid, netns)

        # the rules name the container's address and our host ports
        rules = _nat_rules()
        tcps = [b for b in bindings if b.proto == 'tcp']
        udp = next(b for b in bindings if b.proto == 'udp')
        assert {b.host_ip for b in tcps} == {'127.0.0.1', '0.0.0.0'}
        assert '--to-destination %s:80' % _container_ip(result) in rules

        # TCP through 127.0.0.1 while our allocator holds the host ports
        for tcp in tcps:
            assert _fetch(tcp.host_port).split()[-1].decode() == result['ips'][0]['gateway']

        # UDP too
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(b'ping', ('127.0.0.1', udp.host_port))
            assert u.recvfrom(100)[0] == b'echo ping'

        # portmap DEL removes this container's chain; our hold is released
        _cni('portmap', 'DEL', pm_conf, cid, netns)
        state['portmap'] = None
        after = _nat_rules()
        assert '--to-destination %s:80' % _container_ip(result) not in after
        alloc.release(cid)
        for tcp in tcps:
            with socket.socket() as s:
                s.bind(('127.0.0.1', tcp.host_port))
    finally:
        alloc.release(cid)
        server.kill()
        server.wait()
