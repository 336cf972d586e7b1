"""Network drivers, loaded by name through stevedore (``engine.network_drivers``).

``bridge``: a Linux bridge the engine owns, host-local IPAM, per-network
NAT/forward rules (engine/networks/firewall.py); ``host`` and ``null``: no
plumbing; ``external``: an existing bridge (a Neutron port's) with the
address given per endpoint and no IPAM of the engine's own.
"""

import fcntl
import ipaddress
import os
import random
import re
import shutil
import subprocess

from oslo_log import log as logging

from engine import errors
from engine import util
from engine.networks import netns

LOG = logging.getLogger(__name__)

SUBNETS_LOCK = '/run/novadocker/subnets.lock'
BRIDGE_OWNERS = '/run/novadocker/bridges'
# Host-wide, one JSON file per network with host state (a bridge, rules):
# which engine root made it.  An engine whose root is deleted without
# ``purge-networks`` leaves these, and ``purge-orphans`` finds its bridges
# and rules by them.  /run is emptied at boot, as the bridges are.
NETWORK_OWNERS = '/run/novadocker/networks'
_IFNAME = re.compile(r'^(?!\.\.?$)[a-zA-Z0-9_.-]{1,15}$')  # Linux refuses . and ..
MAC_RE = re.compile(r'^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$')

OPT_BRIDGE_NAME = 'com.docker.network.bridge.name'
OPT_MTU = 'com.docker.network.driver.mtu'


class Context:
    """What drivers share: configuration, the CNI runner, the firewall."""

    def __init__(self, conf, root, exec_root, tag, cni, firewall, ipam_dir, rules_dir=None,
                 owners_dir=NETWORK_OWNERS):
        self.conf, self.root, self.exec_root, self.tag = conf, root, exec_root, tag
        self.cni, self.firewall, self.ipam_dir = cni, firewall, ipam_dir
        self.rules_dir = rules_dir
        self.owners_dir = owners_dir

    # Which networks' rules this engine installed (marker files): rules
    # whose network record is gone are found and removed from these.
    def remember_rules(self, tag, bridge=None):
        if self.rules_dir:
            util.makedirs(self.rules_dir, 0o700)
            util.atomic_write(os.path.join(self.rules_dir, tag), '', mode=0o600, sync=False)
        util.makedirs(self.owners_dir, 0o755)
        util.atomic_write_json(os.path.join(self.owners_dir, tag),
                               {'root': self.root, 'bridge': bridge or ''},
                               mode=0o644, sync=False)

    def forget_rules(self, tag):
        paths = [os.path.join(self.owners_dir, tag)]
        if self.rules_dir:
            paths.append(os.path.join(self.rules_dir, tag))
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def rule_tags(self):
        try:
            return sorted(os.listdir(self.rules_dir)) if self.rules_dir else []
        except FileNotFoundError:
            return []


def purge_orphans(firewall, owners_dir=NETWORK_OWNERS):
    """Remove the bridges and rules of networks whose engine root is gone
    (deleted without ``purge-networks``); returns what was removed, as
    ``(tag, bridge, root)``.  A network of a root that exists is never
    touched."""
    removed = []
    try:
        names = sorted(os.listdir(owners_dir))
    except FileNotFoundError:
        return removed
    with subnet_lock():
        records = {}
        for tag in names:
            try:
                rec = util.read_json(os.path.join(owners_dir, tag)) or {}
                records[tag] = (rec.get('root') or '', rec.get('bridge') or '')
            except (OSError, ValueError, AttributeError):
                continue
        # A bridge name comes back (the default bridge's, above all): one a
        # live root's network names now is that network's, not the orphan's.
        live_bridges = {b for r, b in records.values() if r and os.path.isdir(r)}
        for tag, (root, bridge) in records.items():
            path = os.path.join(owners_dir, tag)
            if not root or os.path.isdir(root):
                continue
            firewall.remove_network(tag)
            if bridge and bridge not in live_bridges and not _claimed_by_live(bridge) \
                    and is_bridge(bridge):
                try:
                    ip_cmd('link del dev %s' % bridge)
                except errors.RuntimeFailure as exc:
                    LOG.warning('removing bridge %s of the vanished root %s: %s',
                                bridge, root, exc)
                    continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            removed.append((tag, bridge, root))
        # Rules no record accounts for (made before records were kept, or
        # their record lost) whose interfaces are all gone: nothing of
        # theirs is left to filter.  A network being made has its bridge
        # before its rules, under this lock.
        live_tags = {t for t, (r, _b) in records.items() if r and os.path.isdir(r)}
        for tag, devs in sorted(firewall.tag_devices().items()):
            if tag in live_tags or tag in records or not devs or \
                    any(link_exists(d) for d in devs):
                continue
            firewall.remove_network(tag)
            removed.append((tag, '', ''))
    if removed:
        firewall.remove_chains_if_empty()
    return removed


def _claimed_by_live(bridge):
    """Whether an engine whose root exists claims ``bridge`` as its default
    bridge (BRIDGE_OWNERS)."""
    try:
        with open(os.path.join(BRIDGE_OWNERS, bridge)) as f:
            owner = f.read().strip()
    except OSError:
        return False
    return bool(owner) and os.path.isdir(owner)


def ip_cmd(*commands):
    """Run iproute2 commands in one process (``ip -batch``)."""
    proc = subprocess.run(['ip', '-batch', '-'], input='\n'.join(commands).encode(),
                          capture_output=True, timeout=30)
    if proc.returncode != 0:
        raise errors.RuntimeFailure('ip %s failed: %s' % (
            '; '.join(commands), proc.stderr.decode(errors='replace').strip()))


def check_mtu(mtu):
    """An MTU option (network or endpoint): empty, or 68 (IPv4's minimum) to 65535."""
    if mtu in (None, ''):
        return
    try:
        if not 68 <= int(mtu) <= 65535:
            raise ValueError
    except (TypeError, ValueError):
        raise errors.InvalidArgument('invalid MTU %r: it must be a number between 68 '
                                     'and 65535' % (mtu,))


def link_exists(name):
    return os.path.exists('/sys/class/net/%s' % name)


def is_bridge(name):
    return os.path.isdir('/sys/class/net/%s/bridge' % name)


def bridge_ports(name):
    try:
        return sorted(os.listdir('/sys/class/net/%s/brif' % name))
    except OSError:
        return []


def host_routes(path='/proc/net/route'):
    """IPv4 networks routed on the host (the default route excluded)."""
    nets = []
    try:
        with open(path) as f:
            next(f)
            for line in f:
                p = line.split()
                dest, mask = int(p[1], 16), int(p[7], 16)
                if mask == 0:
                    continue
                net = ipaddress.IPv4Network(
                    (ipaddress.IPv4Address(dest.to_bytes(4, 'little')),
                     bin(mask).count('1')), strict=False)
                nets.append((p[0], net))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return nets


def parse_pools(entries):
    """``["172.17.0.0/16", "192.168.0.0/16:20"]`` -> [(base network, prefix)]."""
    pools = []
    for entry in entries:
        base, _, size = entry.partition(':')
        net = ipaddress.ip_network(base.strip(), strict=False)
        prefix = int(size) if size else net.prefixlen
        if prefix < net.prefixlen or prefix > 30:
            raise errors.InvalidArgument('invalid address pool %r: size must be within %d..30'
                                         % (entry, net.prefixlen))
        pools.append((net, prefix))
    return pools


class _SubnetLock:
    """Host-wide: two engines never pick the same subnet or device at once."""

    def __enter__(self):
        util.makedirs(os.path.dirname(SUBNETS_LOCK), 0o755)
        self.fd = os.open(SUBNETS_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


subnet_lock = _SubnetLock


def taken_subnets(others, own_bridge=None):
    taken = [net for dev, net in host_routes() if dev != own_bridge]
    for rec in others:
        for cfg in (rec.get('IPAM') or {}).get('Config') or ():
            try:
                taken.append(ipaddress.ip_network(cfg['Subnet'], strict=False))
            except (KeyError, ValueError):
                pass
    return taken


def choose_subnet(pools, taken):
    for base, prefix in pools:
        for cand in base.subnets(new_prefix=prefix):
            if not any(cand.overlaps(t) for t in taken):
                return cand
    raise errors.Forbidden('could not find an available, non-overlapping IPv4 address pool '
                           'among the defaults to assign to the network')


class NetworkDriver:
    name = None
    builtin_only = False

    def __init__(self, ctx):
        self.ctx = ctx

    def validate_create(self, request, others):
        raise errors.InvalidArgument('network driver %s cannot create networks' % self.name)

    def create(self, net):
        pass

    def delete(self, net):
        pass

    def validate_endpoint(self, net, settings):
        return settings

    def attach(self, net, sandbox, cid, endpoint, ports=None, has_gateway=False):
        return {}

    def detach(self, net, sandbox, cid, endpoint, ports=None):
        pass

    def leftovers(self, net, live_endpoints):
        return []


class HostDriver(NetworkDriver):
    name = 'host'
    builtin_only = True


class NullDriver(NetworkDriver):
    name = 'null'
    builtin_only = True


def _endpoint_ip(endpoint):
    return ((endpoint.get('IPAMConfig') or {}).get('IPv4Address') or '').strip()


def _result_fields(result, ifname):
    """IPAddress, IPPrefixLen, Gateway, MacAddress from a CNI result."""
    out = {'IPAddress': '', 'IPPrefixLen': 0, 'Gateway': '', 'MacAddress': ''}
    ifaces = result.get('interfaces') or []
    for i, iface in enumerate(ifaces):
        if iface.get('sandbox') and iface.get('name') == ifname:
            out['MacAddress'] = iface.get('mac', '')
    for ip in result.get('ips') or ():
        iface = ipaddress.ip_interface(ip['address'])
        if iface.version != 4:
            continue
        out['IPAddress'], out['IPPrefixLen'] = str(iface.ip), iface.network.prefixlen
        out['Gateway'] = ip.get('gateway', '')
        break
    out['DNS'] = (result.get('dns') or {}).get('nameservers') or []
    return out


class BridgeDriver(NetworkDriver):
    name = 'bridge'

    def validate_create(self, request, others):
        opts = dict(request.get('Options') or {})
        ipam = request.get('IPAM') or {}
        if not isinstance(ipam, dict):
            raise errors.InvalidArgument('IPAM must be a JSON object')
        if (ipam.get('Driver') or 'default') != 'default':
            raise errors.InvalidArgument('IPAM driver %r is not supported: only "default"'
                                         % ipam['Driver'])
        configs = ipam.get('Config') or []
        if not isinstance(configs, list) or len(configs) > 1:
            raise errors.InvalidArgument('IPAM.Config: one IPv4 pool at most is supported')
        bridge = opts.get(OPT_BRIDGE_NAME) or ''
        if bridge and not _IFNAME.match(bridge):
            raise errors.InvalidArgument('invalid bridge name %r: at most 15 letters, digits, '
                                         '"_", "." or "-"' % bridge)
        mtu = opts.get(OPT_MTU)
        check_mtu(mtu)
        cfg = dict(configs[0]) if configs else {}
        subnet = gateway = iprange = None
        if cfg.get('Subnet'):
            subnet = _network(cfg['Subnet'], 'subnet')
            if subnet.version != 4:
                raise errors.InvalidArgument('IPv6 subnets are not supported by this engine')
        elif cfg.get('Gateway') or cfg.get('IPRange'):
            raise errors.InvalidArgument('a gateway or an IP range needs a subnet (--subnet)')
        if cfg.get('IPRange'):
            iprange = _network(cfg['IPRange'], 'ip-range')
            if not iprange.subnet_of(subnet):
                raise errors.InvalidArgument('ip-range %s is not inside the subnet %s'
                                             % (iprange, subnet))
        if cfg.get('Gateway'):
            try:
                gateway = ipaddress.ip_address(cfg['Gateway'])
            except ValueError:
                raise errors.InvalidArgument('invalid gateway address %r' % cfg['Gateway'])
            if gateway not in subnet:
                raise errors.InvalidArgument('no matching subnet for gateway %s' % gateway)
        if subnet is not None:
            if subnet.prefixlen > 30:
                raise errors.InvalidArgument('subnet %s is too small: at most /30' % subnet)
            for other in others:
                for oc in (other.get('IPAM') or {}).get('Config') or ():
                    if oc.get('Subnet') and subnet.overlaps(
                            ipaddress.ip_network(oc['Subnet'], strict=False)):
                        raise errors.Forbidden('Pool overlaps with other one on this address '
                                               'space')
        return {'_bridge': bridge, '_subnet': str(subnet) if subnet else '',
                '_gateway': str(gateway) if gateway else '',
                '_iprange': str(iprange) if iprange else '', '_mtu': int(mtu) if mtu else 0,
                '_user_subnet': subnet is not None}

    def allocate(self, net, others):
        """Choose subnet and bridge (under the host-wide lock) and make the bridge."""
        with subnet_lock():
            if not net['_bridge']:
                net['_bridge'] = 'br-' + net['Id'][:12]
            if link_exists(net['_bridge']) and not net.get('_adopt_bridge'):
                raise errors.Conflict('bridge %s already exists on the host' % net['_bridge'])
            taken = taken_subnets(others, own_bridge=net['_bridge'])
            if net['_subnet']:
                subnet = ipaddress.ip_network(net['_subnet'])
                clash = [t for t in taken if t.overlaps(subnet)]
                if clash:
                    raise errors.Forbidden('Pool overlaps with other one on this address space '
                                           '(%s is routed on the host)' % clash[0])
            else:
                subnet = choose_subnet(parse_pools(self.ctx.conf.network.default_address_pools),
                                       taken)
                net['_subnet'] = str(subnet)
            user_gateway = bool(net['_gateway'])
            if not user_gateway:
                net['_gateway'] = str(next(subnet.hosts()))
            self.create(net)
        # Docker shows what the user configured, and the gateway it chose
        # only for a subnet it chose too.
        cfg = {'Subnet': net['_subnet']}
        if user_gateway or not net.get('_user_subnet'):
            cfg['Gateway'] = net['_gateway']
        if net['_iprange']:
            cfg['IPRange'] = net['_iprange']
        net['IPAM']['Config'] = [cfg]

    def mtu(self, net):
        return net.get('_mtu') or self.ctx.conf.network.mtu or 0

    def create(self, net):
        br, prefix = net['_bridge'], ipaddress.ip_network(net['_subnet']).prefixlen
        cmds = []
        if not link_exists(br):
            cmds.append('link add name %s type bridge' % br)
        if self.mtu(net):
            cmds.append('link set dev %s mtu %d' % (br, self.mtu(net)))
        cmds.append('addr replace %s/%d dev %s' % (net['_gateway'], prefix, br))
        cmds.append('link set dev %s up' % br)
        ip_cmd(*cmds)
        self.ctx.remember_rules(net['Id'][:12], br)
        self.ctx.firewall.add_network(net['Id'][:12], br, net['_subnet'],
                                      internal=net.get('Internal', False))

    def delete(self, net):
        self.ctx.firewall.remove_network(net['Id'][:12])
        self.ctx.forget_rules(net['Id'][:12])
        if net.get('_bridge') and is_bridge(net['_bridge']):
            try:
                ip_cmd('link del dev %s' % net['_bridge'])
            except errors.RuntimeFailure as exc:
                LOG.warning('removing bridge %s: %s', net['_bridge'], exc)
        shutil.rmtree(os.path.join(self.ctx.ipam_dir, net['Id']), ignore_errors=True)

    def validate_endpoint(self, net, settings):
        ip = _endpoint_ip(settings)
        if ip:
            if not net.get('_user_subnet'):
                if net['Name'] == 'bridge':
                    raise errors.InvalidArgument('user specified IP address is supported on user '
                                                 'defined networks only')
                raise errors.InvalidArgument('user specified IP address is supported only when '
                                             'connecting to networks with user configured '
                                             'subnets')
            try:
                addr = ipaddress.IPv4Address(ip)
            except ValueError:
                raise errors.InvalidArgument('invalid IPv4 address: %s' % ip)
            subnet = ipaddress.ip_network(net['_subnet'])
            if addr not in subnet:
                raise errors.InvalidArgument('invalid address %s: it is not in the subnet %s of '
                                             'network %s' % (ip, subnet, net['Name']))
            if str(addr) == net['_gateway'] or addr in (subnet.network_address,
                                                        subnet.broadcast_address):
                raise errors.InvalidArgument('address %s is not available on network %s' %
                                             (ip, net['Name']))
        if settings.get('Aliases') and net['Name'] == 'bridge':
            raise errors.InvalidArgument('network-scoped alias is supported only for containers '
                                         'in user defined networks')
        return settings

    def conflist(self, net, ports=None):
        subnet = ipaddress.ip_network(net['_subnet'])
        rng = {'subnet': str(subnet), 'gateway': net['_gateway']}
        if net.get('_iprange'):
            r = ipaddress.ip_network(net['_iprange'])
            hosts = list(r.hosts()) if r.num_addresses <= 4 else None
            rng['rangeStart'] = str(hosts[0] if hosts else r.network_address + 1)
            rng['rangeEnd'] = str(hosts[-1] if hosts else r.broadcast_address - 1)
        bridge = {'type': 'bridge', 'bridge': net['_bridge'], 'isGateway': True,
                  'ipMasq': False, 'hairpinMode': True,
                  'capabilities': {'ips': True, 'mac': True},
                  'ipam': {'type': 'host-local', 'dataDir': self.ctx.ipam_dir,
                           'ranges': [[rng]], 'routes': [{'dst': '0.0.0.0/0'}]}}
        if self.mtu(net):
            bridge['mtu'] = self.mtu(net)
        plugins = [bridge]
        if ports:
            plugins.append({'type': 'portmap', 'snat': True,
                            'capabilities': {'portMappings': True}})
        return {'cniVersion': '1.0.0', 'name': net['Id'], 'plugins': plugins}

    @staticmethod
    def runtime_config(endpoint, ports):
        rc = {}
        ip = _endpoint_ip(endpoint)
        if ip:
            rc['ips'] = ['%s/32' % ip]  # host-local matches the address, not the prefix
        if endpoint.get('MacAddress'):
            rc['mac'] = endpoint['MacAddress']
        if ports:
            rc['portMappings'] = ports
        return rc

    def attach(self, net, sandbox, cid, endpoint, ports=None, has_gateway=False):
        if not is_bridge(net['_bridge']):
            self.create(net)  # e.g. removed by hand: make the host side again
        rc = self.runtime_config(endpoint, ports)
        if 'ips' in rc:
            prefix = ipaddress.ip_network(net['_subnet']).prefixlen
            rc['ips'] = ['%s/%d' % (_endpoint_ip(endpoint), prefix)]
        result = self.ctx.cni.add(self.conflist(net, ports), cid, sandbox,
                                  endpoint['_ifname'], rc)
        return _result_fields(result, endpoint['_ifname'])

    def detach(self, net, sandbox, cid, endpoint, ports=None):
        rc = self.runtime_config(endpoint, ports)
        if 'ips' in rc:
            prefix = ipaddress.ip_network(net['_subnet']).prefixlen
            rc['ips'] = ['%s/%d' % (_endpoint_ip(endpoint), prefix)]
        netns_ok = sandbox and netns.is_netns(sandbox)  # not a stale file after a reboot
        self.ctx.cni.delete(self.conflist(net, ports), cid, sandbox if netns_ok else '',
                            endpoint['_ifname'], rc)

    def lease_owners(self, net):
        """{ip: (container id, ifname)} from host-local's lease files."""
        d = os.path.join(self.ctx.ipam_dir, net['Id'])
        out = {}
        for fn in os.listdir(d) if os.path.isdir(d) else ():
            try:
                ipaddress.ip_address(fn)
            except ValueError:
                continue
            try:
                with open(os.path.join(d, fn)) as f:
                    words = f.read().split()
            except OSError:
                words = []
            out[fn] = (words[0] if words else '', words[1] if len(words) > 1 else '')
        return out

    def drop_lease(self, net, ip):
        try:
            os.unlink(os.path.join(self.ctx.ipam_dir, net['Id'], ip))
        except OSError:
            pass


# Values written into OVSDB external ids: ids and MACs, nothing ovs-vsctl
# would parse as syntax.
_OVS_ID = re.compile(r'^[A-Za-z0-9._:-]{1,64}$')


def ovs_vsctl(*args):
    """Run ``ovs-vsctl --timeout=10 ARGS`` (argv, no shell); the
    CompletedProcess. ovs-vsctl is found on the engine's PATH."""
    try:
        return subprocess.run(['ovs-vsctl', '--timeout=10'] + list(args),
                              capture_output=True, timeout=30)
    except FileNotFoundError:
        raise errors.InvalidArgument('Open vSwitch is not installed: there is no ovs-vsctl '
                                     'on the engine\'s PATH')
    except subprocess.TimeoutExpired:
        raise errors.RuntimeFailure('ovs-vsctl %s timed out' % ' '.join(args))


def _ovs_check(proc, what):
    if proc.returncode != 0:
        raise errors.RuntimeFailure('ovs-vsctl failed %s: %s' % (
            what, proc.stderr.decode(errors='replace').strip() or
            'exit status %d' % proc.returncode))


class ExternalDriver(NetworkDriver):
    """An existing Linux bridge (Neutron's), or with ``-o ovs_bridge=BR`` an
    existing Open vSwitch bridge; the engine never changes or deletes the
    bridge. ``-o create_bridge=true`` lets it create a missing Linux bridge
    (as os-vif does for Nova's Linux bridge VIFs; Neutron's agent then wires
    it and removes it once empty).

    By default the CNI bridge plugin plugs the endpoint. When the endpoint
    names its host end (DriverOpts ``host_ifname``, as Nova names it, e.g.
    ``tap<port id>``: what Neutron's agents look for), and always on an OVS
    bridge, the engine makes the veth pair itself: the host end goes on the
    bridge (on OVS with Neutron's external ids: ``iface_id``, ``vm_uuid``,
    the endpoint's MAC, iface-status active, so the OVS agent wires the
    port) and the other end into the container through CNI's host-device
    plugin, with the same static addressing.
    """
    name = 'external'

    def validate_create(self, request, others):
        opts = request.get('Options') or {}
        bridge = opts.get('bridge') or ''
        ovs_bridge = opts.get('ovs_bridge') or ''
        create = str(opts.get('create_bridge') or '').lower() in ('1', 'true', 'yes')
        if bridge and ovs_bridge:
            raise errors.InvalidArgument('give -o bridge=<linux bridge> or -o ovs_bridge=<Open '
                                         'vSwitch bridge>, not both')
        if not bridge and not ovs_bridge:
            raise errors.InvalidArgument('the external driver needs -o bridge=<existing linux '
                                         'bridge> (or -o ovs_bridge=<existing Open vSwitch '
                                         'bridge>)')
        if ovs_bridge:
            if create:
                raise errors.InvalidArgument('create_bridge is for Linux bridges only')
            if not _IFNAME.match(ovs_bridge):
                raise errors.InvalidArgument('invalid OVS bridge name %r' % ovs_bridge)
            proc = ovs_vsctl('br-exists', ovs_bridge)
            if proc.returncode == 2:
                raise errors.InvalidArgument('Open vSwitch bridge %s does not exist'
                                             % ovs_bridge)
            _ovs_check(proc, 'checking bridge %s' % ovs_bridge)
        elif not _IFNAME.match(bridge):
            raise errors.InvalidArgument('invalid bridge name %r: at most 15 letters, digits, '
                                         '"_", "." or "-"' % bridge)
        elif create and link_exists(bridge) and not is_bridge(bridge):
            raise errors.InvalidArgument('%s exists and is not a Linux bridge' % bridge)
        elif not create and not is_bridge(bridge):
            raise errors.InvalidArgument('bridge %s does not exist (or is not a Linux bridge)'
                                         % bridge)
        mtu = opts.get('mtu')
        check_mtu(mtu)
        ipam = request.get('IPAM') or {}
        if (ipam.get('Config') or []):
            raise errors.InvalidArgument('the external driver has no IPAM: give addresses per '
                                         'endpoint')
        fields = {'_bridge': bridge, '_mtu': int(mtu) if mtu else 0, 'IPAM': {
            'Driver': 'null', 'Options': None, 'Config': []}}
        if ovs_bridge:
            fields['_ovs_bridge'] = ovs_bridge
        if create:
            fields['_create_bridge'] = True
        return fields

    def validate_endpoint(self, net, settings):
        ip = _endpoint_ip(settings)
        opts = settings.get('DriverOpts') or {}
        if not ip or not opts.get('prefixlen'):
            raise errors.InvalidArgument('network %s has no IPAM: the endpoint needs '
                                         'IPAMConfig.IPv4Address and DriverOpts prefixlen'
                                         % net['Name'])
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            raise errors.InvalidArgument('invalid IPv4 address: %s' % ip)
        try:
            prefix = int(opts['prefixlen'])
            if not 0 < prefix <= 32:
                raise ValueError
        except ValueError:
            raise errors.InvalidArgument('invalid prefixlen %r: 1-32' % opts['prefixlen'])
        if opts.get('gateway'):
            try:
                gw = ipaddress.IPv4Address(opts['gateway'])
            except ValueError:
                raise errors.InvalidArgument('invalid gateway %r' % opts['gateway'])
            if gw not in ipaddress.ip_network('%s/%d' % (addr, prefix), strict=False):
                raise errors.InvalidArgument('gateway %s is not in %s/%d' % (gw, addr, prefix))
        check_mtu(opts.get('mtu'))
        for server in (opts.get('dns') or '').split(','):
            if server.strip():
                try:
                    ipaddress.ip_address(server.strip())
                except ValueError:
                    raise errors.InvalidArgument('invalid DNS server %r' % server)
        if opts.get('host_ifname') and not _IFNAME.match(opts['host_ifname']):
            raise errors.InvalidArgument('invalid host_ifname %r: at most 15 letters, '
                                         'digits, "_", "." or "-"' % opts['host_ifname'])
        for key in ('iface_id', 'vm_uuid'):
            if opts.get(key) and not net.get('_ovs_bridge'):
                raise errors.InvalidArgument('%s is for networks on an Open vSwitch bridge '
                                             '(-o ovs_bridge=)' % key)
            if opts.get(key) and not _OVS_ID.match(opts[key]):
                raise errors.InvalidArgument('invalid %s %r' % (key, opts[key]))
        return settings

    @staticmethod
    def _static_ipam(endpoint, has_gateway):
        opts = endpoint.get('DriverOpts') or {}
        addr = {'address': '%s/%s' % (_endpoint_ip(endpoint), opts['prefixlen'])}
        ipam = {'type': 'static', 'addresses': [addr]}
        if opts.get('gateway'):
            addr['gateway'] = opts['gateway']
            if not has_gateway:
                ipam['routes'] = [{'dst': '0.0.0.0/0', 'gw': opts['gateway']}]
        dns = [s.strip() for s in (opts.get('dns') or '').split(',') if s.strip()]
        if dns:
            ipam['dns'] = {'nameservers': dns}
        return ipam

    @staticmethod
    def _mtu(net, endpoint):
        mtu = (endpoint.get('DriverOpts') or {}).get('mtu') or net.get('_mtu')
        return int(mtu) if mtu else 0

    @staticmethod
    def own_veth(net, endpoint):
        """Whether the engine makes this endpoint's veth itself (see above)."""
        return bool(net.get('_ovs_bridge') or
                    (endpoint.get('DriverOpts') or {}).get('host_ifname'))

    def conflist(self, net, endpoint, has_gateway):
        if self.own_veth(net, endpoint):
            plugin = {'type': 'host-device', 'device': self.veth_names(endpoint)[1],
                      'ipam': self._static_ipam(endpoint, has_gateway)}
            return {'cniVersion': '1.0.0', 'name': net['Id'], 'plugins': [plugin]}
        plugin = {'type': 'bridge', 'bridge': net['_bridge'], 'isGateway': False,
                  'ipMasq': False, 'capabilities': {'mac': True},
                  'ipam': self._static_ipam(endpoint, has_gateway)}
        if self._mtu(net, endpoint):
            plugin['mtu'] = self._mtu(net, endpoint)
        return {'cniVersion': '1.0.0', 'name': net['Id'], 'plugins': [plugin]}

    def _ensure_bridge(self, net):
        if is_bridge(net['_bridge']):
            return
        if not net.get('_create_bridge'):
            raise errors.InvalidArgument('bridge %s of network %s does not exist'
                                         % (net['_bridge'], net['Name']))
        with subnet_lock():  # host-wide: another engine may be making it too
            if not is_bridge(net['_bridge']):
                ip_cmd('link add name %s type bridge' % net['_bridge'],
                       'link set dev %s up' % net['_bridge'])
                LOG.info('created Linux bridge %s for network %s', net['_bridge'],
                         net['Name'])

    # -- the engine's own veth (named host end; Open vSwitch) ------------------------

    @staticmethod
    def veth_names(endpoint):
        """(host end, container end before the move) of the endpoint's veth;
        chosen at attach and kept in the endpoint record."""
        if endpoint.get('_veth_ifnames'):
            return tuple(endpoint['_veth_ifnames'])
        opts = endpoint.get('DriverOpts') or {}
        token = util.new_id()[:11]
        return (opts.get('host_ifname') or 'ndo' + token, 'ndc' + token)

    def _veth_attach(self, net, sandbox, cid, endpoint, has_gateway):
        opts = endpoint.get('DriverOpts') or {}
        host_if, peer = self.veth_names(endpoint)
        if link_exists(host_if):
            raise errors.Conflict('host interface %s already exists' % host_if)
        if not net.get('_ovs_bridge'):
            self._ensure_bridge(net)
        mac = endpoint.get('MacAddress') or random_mac()
        mtu = self._mtu(net, endpoint)
        mtu_arg = ' mtu %d' % mtu if mtu else ''
        endpoint['_veth_ifnames'] = [host_if, peer]
        ip_cmd('link add name %s%s type veth peer name %s%s address %s'
               % (host_if, mtu_arg, peer, mtu_arg, mac))
        try:
            if net.get('_ovs_bridge'):
                ip_cmd('link set dev %s up' % host_if)
                ids = {'iface-id': opts.get('iface_id') or cid,
                       'iface-status': 'active', 'attached-mac': mac}
                if opts.get('vm_uuid'):
                    ids['vm-uuid'] = opts['vm_uuid']
                args = ['--', '--may-exist', 'add-port', net['_ovs_bridge'], host_if,
                        '--', 'set', 'Interface', host_if]
                args += ['external-ids:%s=%s' % kv for kv in sorted(ids.items())]
                _ovs_check(ovs_vsctl(*args), 'adding %s to %s' % (host_if, net['_ovs_bridge']))
            else:
                ip_cmd('link set dev %s master %s' % (host_if, net['_bridge']),
                       'link set dev %s up' % host_if)
            result = self.ctx.cni.add(self.conflist(net, endpoint, has_gateway), cid, sandbox,
                                      endpoint['_ifname'], {})
        except BaseException:
            self._veth_unplug(net, endpoint)
            raise
        out = _result_fields(result, endpoint['_ifname'])
        out['MacAddress'] = out['MacAddress'] or mac
        return out

    def _veth_unplug(self, net, endpoint):
        host_if, peer = self.veth_names(endpoint)
        if net.get('_ovs_bridge'):
            proc = ovs_vsctl('--if-exists', 'del-port', net['_ovs_bridge'], host_if)
            if proc.returncode != 0:
                LOG.warning('ovs-vsctl del-port %s %s: %s', net['_ovs_bridge'], host_if,
                            proc.stderr.decode(errors='replace').strip())
        for name in (host_if, peer):  # the pair goes with either end
            if link_exists(name):
                try:
                    ip_cmd('link del dev %s' % name)
                except errors.RuntimeFailure as exc:
                    LOG.warning('removing %s: %s', name, exc)
                break

    def attach(self, net, sandbox, cid, endpoint, ports=None, has_gateway=False):
        if self.own_veth(net, endpoint):
            endpoint['_had_gateway'] = has_gateway
            out = self._veth_attach(net, sandbox, cid, endpoint, has_gateway)
            out['DNS'] = [s.strip() for s in ((endpoint.get('DriverOpts') or {}).get('dns')
                                               or '').split(',') if s.strip()]
            return out
        self._ensure_bridge(net)
        endpoint['_had_gateway'] = has_gateway
        rc = {'mac': endpoint['MacAddress']} if endpoint.get('MacAddress') else {}
        result = self.ctx.cni.add(self.conflist(net, endpoint, has_gateway), cid, sandbox,
                                  endpoint['_ifname'], rc)
        out = _result_fields(result, endpoint['_ifname'])
        dns = [s.strip() for s in ((endpoint.get('DriverOpts') or {}).get('dns') or '').split(',')
               if s.strip()]
        out['DNS'] = dns
        return out

    def detach(self, net, sandbox, cid, endpoint, ports=None):
        netns_ok = sandbox and netns.is_netns(sandbox)  # not a stale file after a reboot
        try:
            self.ctx.cni.delete(self.conflist(net, endpoint, endpoint.get('_had_gateway', True)),
                                cid, sandbox if netns_ok else '', endpoint['_ifname'], {})
        finally:
            if self.own_veth(net, endpoint):
                self._veth_unplug(net, endpoint)
                endpoint.pop('_veth_ifnames', None)


def _network(text, what):
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise errors.InvalidArgument('invalid %s %r: not a CIDR' % (what, text))
    if str(net.network_address) != text.split('/')[0]:
        pass  # Docker accepts 10.1.2.3/24 and uses 10.1.2.0/24
    return net


def random_mac():
    return '02:42:%02x:%02x:%02x:%02x' % tuple(random.randrange(256) for _ in range(4))


def load(name, ctx):
    from stevedore import driver
    try:
        mgr = driver.DriverManager('engine.network_drivers', name, invoke_on_load=True,
                                   invoke_args=(ctx,))
    except Exception:
        raise errors.NotFound('plugin "%s" not found' % name)
    return mgr.driver
