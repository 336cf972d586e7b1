"""Docker 20.10 with its networking switched on, as the networking tests'
and benchmarks' reference peer.

The shared ``dockerd`` fixture runs Docker with ``--bridge none
--iptables=false``: enough for containers, useless for networks.  This one
gives Docker a default bridge of its own (a uniquely named Linux bridge with
an address from a free /24, passed with ``--bridge``), its own pool for
user-defined networks (``--default-address-pool``, another free /16 slice),
iptables on and the userland proxy on (Docker's defaults), so ``-p
127.0.0.1:P:80`` goes through docker-proxy as on any Docker host.

Shared-host manners: the subnets are chosen to avoid every route on the host;
at scrub every user network is removed through Docker (Docker deletes their
bridges and rules), then our bridge and every iptables rule naming it, then
Docker's own chains if no other dockerd is running and they were not there
before we started.
"""

import ipaddress
import os
import random
import subprocess
import time

from tests import daemons


def host_routes():
    """Every IPv4 network the host routes (main table and the others)."""
    out = subprocess.run(['ip', '-4', 'route', 'show', 'table', 'all'],
                         capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        word = line.split()[0] if line.split() else ''
        if word in ('default', 'broadcast', 'local', 'unreachable'):
            word = line.split()[1] if word != 'default' else ''
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return nets


def free_subnet(prefixlen=24, within='10.0.0.0/8', avoid=()):
    """A random subnet of ``within`` overlapping no host route nor ``avoid``."""
    parent = ipaddress.ip_network(within)
    taken = host_routes() + [ipaddress.ip_network(a) for a in avoid]
    count = 2 ** (prefixlen - parent.prefixlen)
    for _ in range(200):
        index = random.randrange(1, count - 1)
        base = int(parent.network_address) + index * 2 ** (32 - prefixlen)
        net = ipaddress.ip_network('%s/%d' % (ipaddress.ip_address(base),
                                              prefixlen))
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError('no free /%d in %s' % (prefixlen, within))


def iptables_lines(table):
    out = subprocess.run(['iptables-save', '-t', table], capture_output=True,
                         text=True).stdout
    return out.splitlines()


def delete_rules_mentioning(words):
    """``iptables -D`` every rule of filter/nat naming one of ``words``."""
    for table in ('filter', 'nat'):
        for line in iptables_lines(table):
            if not line.startswith('-A '):
                continue
            tokens = line.split()
            if any(w in tokens for w in words):
                subprocess.run(['iptables', '-w', '-t', table, '-D'] + tokens[1:],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)


DOCKER_CHAINS = {'filter': ['DOCKER', 'DOCKER-ISOLATION-STAGE-1',
                            'DOCKER-ISOLATION-STAGE-2', 'DOCKER-USER'],
                 'nat': ['DOCKER']}


def docker_chains_present():
    found = set()
    for table, chains in DOCKER_CHAINS.items():
        declared = {line[1:].split()[0] for line in iptables_lines(table)
                    if line.startswith(':')}
        found |= {(table, c) for c in chains if c in declared}
    return found


def remove_docker_chains(chains):
    """Docker leaves its chains behind on shutdown: remove the jumps to
    them, then flush and delete them."""
    names = {c for _, c in chains}
    for table in ('filter', 'nat'):
        for line in iptables_lines(table):
            tokens = line.split()
            if line.startswith('-A ') and tokens[1] not in names and \
                    '-j' in tokens and tokens[tokens.index('-j') + 1] in names:
                subprocess.run(['iptables', '-w', '-t', table, '-D'] + tokens[1:],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for table, chain in sorted(chains):
        subprocess.run(['iptables', '-w', '-t', table, '-F', chain],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for table, chain in sorted(chains):
        subprocess.run(['iptables', '-w', '-t', table, '-X', chain],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def other_dockerds(exclude_pid=None):
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit() and int(entry) != exclude_pid:
            try:
                with open('/proc/%s/cmdline' % entry, 'rb') as f:
                    argv0 = f.read().split(b'\0')[0]
            except OSError:
                continue
            if os.path.basename(argv0) == b'dockerd':
                pids.append(int(entry))
    return pids


class NetDockerd(daemons.Dockerd):
    """A private Docker 20.10 with bridge networking, iptables and the
    userland proxy. ``.bridge``, ``.subnet`` (its default bridge),
    ``.pool`` (user networks)."""

    def __init__(self, base, userland_proxy=True):
        super().__init__(base)
        self.bridge = 'ndpd%04x' % random.randrange(0x10000)
        self.subnet = free_subnet(24)
        self.pool = free_subnet(20, avoid=[self.subnet])
        self.userland_proxy = userland_proxy
        self.chains_before = None
        self.root = self.data_root

    def command(self):
        cmd = [daemons.DOCKERD,
               '--config-file', self.config,
               '--data-root', self.data_root,
               '--exec-root', self.exec_root,
               '--host', self.url,
               '--pidfile', self.pidfile,
               '--bridge', self.bridge,
               '--default-address-pool',
               'base=%s,size=24' % self.pool,
               '--userland-proxy=%s' % str(self.userland_proxy).lower(),
               '--ip6tables=false',
               '--storage-driver', self.storage_driver]
        if self.debug:
            cmd.append('--debug')
        return cmd

    def start(self, timeout=90):
        if self.running():
            return self
        if self.chains_before is None:
            self.chains_before = docker_chains_present()
        # Docker wants a non-default bridge made for it; it keeps the address
        # it finds there.
        subprocess.run(['ip', 'link', 'add', self.bridge, 'type', 'bridge'],
                       check=False, stderr=subprocess.DEVNULL)
        gateway = '%s/%d' % (next(self.subnet.hosts()), self.subnet.prefixlen)
        subprocess.run(['ip', 'addr', 'replace', gateway, 'dev', self.bridge],
                       check=True)
        subprocess.run(['ip', 'link', 'set', self.bridge, 'up'], check=True)
        return super().start(timeout)

    def remove_all_networks(self):
        if not self.running():
            return
        try:
            status, nets = self.api_json('GET', '/networks', timeout=30)
        except Exception:
            return
        for net in nets or []:
            if net.get('Name') not in ('bridge', 'host', 'none'):
                try:
                    self.api('DELETE', '/networks/' + net['Id'], timeout=60)
                except Exception:
                    pass

    def scrub(self, remove=True):
        self.remove_all_containers()
        self.remove_all_networks()
        pid = self.proc.pid if self.proc else None
        self.stop()
        daemons.scrub(self.base, remove=remove)
        delete_rules_mentioning([self.bridge, str(self.subnet)])
        subprocess.run(['ip', 'link', 'del', self.bridge],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Docker's own chains: ours to remove only if they appeared with us
        # and no other dockerd may be using them now.
        new = docker_chains_present() - (self.chains_before or set())
        if new and not other_dockerds(exclude_pid=pid):
            remove_docker_chains(new)


def start_net_dockerd(busybox_archive, userland_proxy=True):
    base = daemons.short_tmpdir('nd-netdk-')
    dk = NetDockerd(base, userland_proxy=userland_proxy)
    try:
        dk.start()
        dk.load(busybox_archive)
    except BaseException:
        log = dk.log_tail()
        dk.scrub()
        raise RuntimeError('could not start a networking dockerd; log:\n' + log)
    # Docker answers /_ping before its bridge rules are all in place.
    time.sleep(0.2)
    return dk
