"""Networks: records, drivers, and each container's network namespace.

NetworkService owns the network records (engine/networks/store.py), the
drivers (engine/networks/drivers.py, loaded by stevedore), the CNI runner
and the firewall, and the per-container sandbox: a persistent network
namespace file ``<exec_root>/netns/<container id>`` made at start, its
endpoints attached by CNI ADD (in parallel with ``runc create``), detached
by CNI DEL at stop.
"""

import copy
import ipaddress
import os
import re
import threading
import time

from oslo_log import log as logging

from engine import errors
from engine import util
from engine.networks import cni as cni_mod
from engine.networks import drivers as drivers_mod
from engine.networks import etcfiles
from engine.networks import firewall as firewall_mod
from engine.networks import netns
from engine.networks import ports as ports_mod
from engine.networks import store as store_mod

LOG = logging.getLogger(__name__)

PREDEFINED = {'bridge': 'bridge', 'host': 'host', 'none': 'null'}
NoSuchNetwork = store_mod.NoSuchNetwork
_KEY = re.compile(r'^[^=]+$')


def mode_of(host_config):
    return (host_config or {}).get('NetworkMode') or 'default'


def network_name_of(mode):
    """The network a container's NetworkMode names (None for container:<id>)."""
    if mode in ('default', 'bridge'):
        return 'bridge'
    if mode.startswith('container:'):
        return None
    return mode


def empty_endpoint():
    return {'IPAMConfig': None, 'Links': None, 'Aliases': None, 'NetworkID': '',
            'EndpointID': '', 'Gateway': '', 'IPAddress': '', 'IPPrefixLen': 0,
            'IPv6Gateway': '', 'GlobalIPv6Address': '', 'GlobalIPv6PrefixLen': 0,
            'MacAddress': '', 'DriverOpts': None}


def public(d):
    return {k: v for k, v in d.items() if not k.startswith('_')}


def _str_map(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise errors.InvalidArgument('%s must be an object of strings' % what)
    return dict(value)


# How long removing a network waits for auto-removed containers to leave it.
DRAIN_TIMEOUT = 30


class NetworkService:
    def __init__(self, conf, root, exec_root, tag, events):
        self.conf, self.root, self.tag, self.events = conf, root, tag, events
        self.store = store_mod.NetworkStore(root)
        self.netns_dir = util.makedirs(os.path.join(exec_root, 'netns'), 0o711)
        self.ipam_dir = os.path.join(self.store.dir, 'ipam')
        self.cni = cni_mod.CNIRunner(conf.network.cni_path, conf.network.cni_timeout)
        self.firewall = firewall_mod.Firewall()
        self.ctx = drivers_mod.Context(conf, root, exec_root, tag, self.cni, self.firewall,
                                       self.ipam_dir, os.path.join(self.store.dir, 'rules'))
        self._drivers = {}
        self._lock = threading.RLock()
        # Auto-removed containers are gone from the API before their network
        # is torn down (``docker run --rm`` returns at once): until then their
        # endpoints still hold the network, so removing it waits for them.
        self._draining = {}  # container id -> ids of the networks it is leaving
        self._drained = threading.Condition(self._lock)
        self.containers = None   # set by the daemon: ContainerService
        self.peers_changed = None  # set by the daemon: f(container ids) rewrites /etc/hosts
        self.etc = etcfiles.EtcFiles()
        self.ports = ports_mod.PortAllocator()

    def driver(self, name):
        if name not in self._drivers:
            self._drivers[name] = drivers_mod.load(name, self.ctx)
        return self._drivers[name]

    # -- startup ----------------------------------------------------------------
    def start(self):
        """Load records, make the predefined networks, re-ensure host sides."""
        self.store.load()
        self._ensure_predefined()
        for net in self.store.list():
            if net['Driver'] == 'bridge':
                try:
                    self.driver('bridge').create(net)
                except errors.EngineError as exc:
                    LOG.warning('network %s: cannot make its host side: %s', net['Name'], exc)

    def load(self):
        self.store.load()

    def _new_record(self, name, driver, **kw):
        rec = {'Name': name, 'Id': util.new_id(), 'Created': util.rfc3339_ns(time.time_ns()),
            'Scope': 'local', 'Driver': driver, 'EnableIPv6': False,
            'IPAM': {'Driver': 'default', 'Options': None, 'Config': []},
            'Internal': False, 'Attachable': False, 'Ingress': False,
            'ConfigFrom': {'Network': ''}, 'ConfigOnly': False, 'Options': {}, 'Labels': {}}
        rec.update(kw)
        return rec

    def _ensure_predefined(self):
        for name in ('host', 'none'):
            if not self.store.by_name(name):
                self.store.save(self._new_record(name, PREDEFINED[name]))
        if self.store.by_name('bridge'):
            return
        rec = self._new_record('bridge', 'bridge')
        bridge = self._claim_default_bridge()
        subnet = self.conf.network.default_bridge_subnet
        if subnet:
            try:
                subnet = str(ipaddress.IPv4Network(subnet, strict=False))
            except ValueError:
                raise errors.InvalidArgument('[network] default_bridge_subnet %r is not an IPv4 '
                                             'CIDR' % subnet)
        rec.update({'_bridge': bridge, '_subnet': subnet or '', '_gateway': '', '_iprange': '',
                    '_mtu': 0, '_user_subnet': False, '_adopt_bridge': True})
        try:
            self.driver('bridge').allocate(rec, [])
        except errors.EngineError as exc:
            self._release_default_bridge(bridge)
            raise errors.InvalidArgument('cannot make the default bridge network: %s' % exc)
        rec['Options'] = {
            'com.docker.network.bridge.default_bridge': 'true',
            'com.docker.network.bridge.enable_icc': 'true',
            'com.docker.network.bridge.enable_ip_masquerade': 'true',
            'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
            'com.docker.network.bridge.name': bridge,
            'com.docker.network.driver.mtu': str(self.conf.network.mtu or 1500)}
        rec['IPAM']['Config'] = [{'Subnet': rec['_subnet'], 'Gateway': rec['_gateway']}]
        self.store.save(rec)

    def _owner_file(self, name):
        return os.path.join(drivers_mod.BRIDGE_OWNERS, name)

    def _claim_default_bridge(self):
        name = self.conf.network.default_bridge
        util.makedirs(drivers_mod.BRIDGE_OWNERS, 0o755)
        with drivers_mod.subnet_lock():
            path = self._owner_file(name)
            try:
                with open(path) as f:
                    owner = f.read().strip()
            except OSError:
                owner = None
            if owner is None or owner == self.root or not os.path.isdir(owner):
                if owner is None and drivers_mod.link_exists(name):
                    return 'nd' + self.tag  # someone else's device of that name
                util.atomic_write(path, self.root + '\n', mode=0o644)
                return name
        return 'nd' + self.tag

    def _release_default_bridge(self, name):
        path = self._owner_file(name)
        try:
            with open(path) as f:
                if f.read().strip() == self.root:
                    os.unlink(path)
        except OSError:
            pass

    # -- API: networks ------------------------------------------------------------
    def get(self, ref):
        return self.store.get(ref)

    def create(self, body):
        if not isinstance(body, dict):
            raise errors.InvalidArgument('network config must be a JSON object')
        name = body.get('Name')
        if not isinstance(name, str) or not name:
            raise errors.InvalidArgument('network name is required (Name)')
        if not store_mod.NAME_RE.match(name) or len(name) > 128:
            raise errors.InvalidArgument('invalid network name %r: only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                                         'are allowed' % name)
        driver_name = body.get('Driver') or 'bridge'
        if not isinstance(driver_name, str):
            raise errors.InvalidArgument('Driver must be a string')
        for key in ('Internal', 'Attachable', 'Ingress', 'EnableIPv6', 'CheckDuplicate'):
            if body.get(key) is not None and not isinstance(body[key], bool):
                raise errors.InvalidArgument('%s must be a boolean' % key)
        if body.get('EnableIPv6'):
            raise errors.InvalidArgument('IPv6 networks are not supported by this engine')
        if body.get('Ingress'):
            raise errors.Forbidden('ingress networks need swarm mode, which this engine does '
                                   'not offer')
        if body.get('ConfigOnly') or body.get('ConfigFrom'):
            raise errors.InvalidArgument('config-only networks are not supported by this engine')
        options = _str_map(body.get('Options'), 'Options')
        labels = _str_map(body.get('Labels'), 'Labels')
        if body.get('IPAM') is not None and not isinstance(body['IPAM'], dict):
            raise errors.InvalidArgument('IPAM must be a JSON object')
        if driver_name in ('host', 'null'):
            raise errors.Forbidden('only one instance of "%s" network is allowed' % driver_name)
        drv = self.driver(driver_name)
        with self._lock:
            if name in PREDEFINED:
                raise errors.Forbidden('operation is not permitted on predefined %s network '
                                       % name)
            if self.store.by_name(name):
                raise errors.Conflict('network with name %s already exists' % name)
            others = [n for n in self.store.list() if n['Driver'] == 'bridge']
            fields = drv.validate_create(dict(body, Options=options), others)
            rec = self._new_record(name, driver_name, Internal=bool(body.get('Internal')),
                                   Attachable=bool(body.get('Attachable')), Options=options,
                                   Labels=labels)
            rec['IPAM']['Options'] = {}
            rec.update(fields)
            if driver_name == 'bridge':
                drv.allocate(rec, others)
            try:
                self.store.save(rec)
            except BaseException:
                drv.delete(rec)
                raise
        self._event('create', rec)
        return {'Id': rec['Id'], 'Warning': ''}

    def _event(self, action, net, **attrs):
        attrs = dict(name=net['Name'], type=net['Driver'], **attrs)
        self.events.publish('network', action, net['Id'], attrs)

    def _users(self, net, running_only=False):
        """(container, endpoint) of every container with an endpoint on ``net``."""
        out = []
        for c in self.containers.list() if self.containers else ():
            eps = (c.record.get('NetworkSettings') or {}).get('Networks') or {}
            for ep in eps.values():
                if ep.get('NetworkID') == net['Id'] and (not running_only or c.is_running()):
                    out.append((c, ep))
        return out

    def view(self, net):
        out = public(net)
        containers = {}
        for c, ep in self._users(net, running_only=True):
            if net['Driver'] in ('host', 'null') or ep.get('EndpointID'):
                containers[c.id] = {
                    'Name': c.name, 'EndpointID': ep.get('EndpointID', ''),
                    'MacAddress': ep.get('MacAddress', ''),
                    'IPv4Address': '%s/%d' % (ep['IPAddress'], ep['IPPrefixLen'])
                    if ep.get('IPAddress') else '',
                    'IPv6Address': ''}
        out['Containers'] = containers
        keys = ['Name', 'Id', 'Created', 'Scope', 'Driver', 'EnableIPv6', 'IPAM', 'Internal',
                'Attachable', 'Ingress', 'ConfigFrom', 'ConfigOnly', 'Containers', 'Options',
                'Labels']
        return {k: out.get(k) for k in keys}

    def list(self, filters=None):
        filters = filters or {}
        allowed = {'name', 'id', 'driver', 'label', 'type', 'scope', 'dangling'}
        for key in filters:
            if key not in allowed:
                raise errors.InvalidArgument('invalid filter %r' % key)
        out = []
        for net in self.store.list():
            if self._matches(net, filters):
                out.append(self.view(net))
        return out

    def _matches(self, net, filters):
        if filters.get('name') and not any(v in net['Name'] for v in filters['name']):
            return False
        if filters.get('id') and not any(net['Id'].startswith(v) or v in net['Id']
                                         for v in filters['id']):
            return False
        if filters.get('driver') and net['Driver'] not in filters['driver']:
            return False
        if filters.get('scope') and 'local' not in filters['scope']:
            return False
        for t in filters.get('type') or ():
            if t not in ('custom', 'builtin'):
                raise errors.InvalidArgument('invalid filter: \'type\'=\'%s\'' % t)
        if filters.get('type'):
            builtin = net['Name'] in PREDEFINED
            if ('builtin' in filters['type']) != builtin and len(set(filters['type'])) == 1:
                return False
        if not _labels_match(net.get('Labels') or {}, filters.get('label')):
            return False
        for d in filters.get('dangling') or ():
            if d.lower() not in ('true', 'false', '1', '0'):
                raise errors.InvalidArgument('invalid filter \'dangling=%s\'' % d)
            want = d.lower() in ('true', '1')
            dangling = net['Name'] not in PREDEFINED and not self._users(net)
            if dangling != want:
                return False
        return True

    def inspect(self, ref):
        return self.view(self.get(ref))

    def remove(self, ref):
        with self._lock:
            net = self.get(ref)
            if net['Name'] in PREDEFINED:
                raise errors.Forbidden('%s is a pre-defined network and cannot be removed'
                                       % net['Name'])
            if not self._drained.wait_for(lambda: not self._draining_from(net['Id']),
                                          timeout=DRAIN_TIMEOUT):
                raise errors.Conflict('network %s: removed containers are still being '
                                      'disconnected from it, try again' % net['Name'])
            net = self.get(net['Id'])  # the lock was released while waiting
            if self._users(net, running_only=True):
                raise errors.Forbidden('error while removing network: network %s id %s has '
                                       'active endpoints' % (net['Name'], net['Id']))
            self.driver(net['Driver']).delete(net)
            self.store.delete(net)
        self._event('destroy', net)

    def prune(self, filters, until_ns=None):
        filters = filters or {}
        until = until_ns / 1e9 if until_ns is not None else None
        deleted = []
        for net in self.store.list():
            if net['Name'] in PREDEFINED or self._users(net, running_only=True):
                continue
            if until is not None and util.parse_rfc3339(net['Created']) >= until:
                continue
            if not _labels_match(net.get('Labels') or {}, filters.get('label')):
                continue
            if filters.get('label!') and _labels_match(net.get('Labels') or {},
                                                       filters['label!'], any_=True):
                continue
            try:
                self.remove(net['Id'])
                deleted.append(net['Name'])
            except errors.EngineError as exc:
                LOG.info('prune: keeping network %s: %s', net['Name'], exc)
        return {'NetworksDeleted': deleted or None}

    # -- containers' endpoints -----------------------------------------------------
    def _endpoint(self, net, settings, cid=None):
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise errors.InvalidArgument('endpoint settings must be a JSON object')
        for key in ('Aliases', 'Links', 'DNSNames'):
            v = settings.get(key)
            if v is not None and (not isinstance(v, list) or
                                  not all(isinstance(a, str) for a in v)):
                raise errors.InvalidArgument('EndpointSettings.%s must be a list of strings'
                                             % key)
        ipam = settings.get('IPAMConfig')
        if ipam is not None and not isinstance(ipam, dict):
            raise errors.InvalidArgument('IPAMConfig must be a JSON object')
        if ipam and ipam.get('IPv6Address'):
            raise errors.InvalidArgument('IPv6 addresses are not supported by this engine')
        mac = settings.get('MacAddress') or ''
        if not isinstance(mac, str) or (mac and not drivers_mod.MAC_RE.match(mac)):
            raise errors.InvalidArgument('%s is not a valid mac address' % (mac,))
        opts = _str_map(settings.get('DriverOpts'), 'DriverOpts')
        settings = dict(settings, DriverOpts=opts or None, MacAddress=mac.lower().replace(
            '-', ':'))
        if net['Driver'] in ('host', 'null'):
            if ipam and ipam.get('IPv4Address') or settings.get('Aliases') or mac:
                raise errors.InvalidArgument('network %s does not take addresses, MACs or '
                                             'aliases' % net['Name'])
        self.driver(net['Driver']).validate_endpoint(net, settings)
        ep = empty_endpoint()
        ep.update({'IPAMConfig': {'IPv4Address': ipam['IPv4Address']}
                   if ipam and ipam.get('IPv4Address') else None,
                   'Links': settings.get('Links') or None,
                   'Aliases': list(settings.get('Aliases') or []) or None,
                   'NetworkID': net['Id'], 'MacAddress': settings['MacAddress'],
                   'DriverOpts': settings['DriverOpts'],
                   '_mac': settings['MacAddress']})
        return ep

    def container_settings(self, config, host_config, networking):
        """At create: NetworkSettings for the record (endpoints without addresses)."""
        mode = mode_of(host_config)
        endpoints = (networking or {}).get('EndpointsConfig') or {}
        if not isinstance(endpoints, dict):
            raise errors.InvalidArgument('NetworkingConfig.EndpointsConfig must be an object')
        settings = {'SandboxKey': '', 'Ports': None, 'Networks': {}}
        ports_mod.parse(config, host_config)  # 400 on bad -p/-P/EXPOSE input
        if self.containers is not None:
            self.check_links(host_config)
        name = network_name_of(mode)
        if name is None:
            if endpoints:
                raise errors.InvalidArgument('conflicting options: container type network '
                                             'can\'t be used with links or endpoint settings')
            return settings
        try:
            net = self.get(name)
        except errors.NotFound:
            # Docker looks the network up at start ("network X not found"
            # from `docker run`): the endpoint waits for it.
            if endpoints or config.get('MacAddress'):
                raise
            settings['Networks'][name] = empty_endpoint()
            return settings
        if net['Driver'] == 'host' and mode != 'host':
            host_config['NetworkMode'] = 'host'
        if net['Driver'] == 'null' and mode != 'none':
            host_config['NetworkMode'] = 'none'
        first = self._find_settings(endpoints, net, name)
        if config.get('MacAddress'):
            first = dict(first or {}, MacAddress=first.get('MacAddress') if first and first.get(
                'MacAddress') else config['MacAddress'])
        settings['Networks'][net['Name']] = self._endpoint(net, first)
        for ref, es in endpoints.items():
            if ref in (mode, 'default') or ref == name:
                continue  # the CLI names the mode's own network "default"
            other = self.get(ref)
            if other['Name'] in settings['Networks']:
                continue
            if other['Driver'] in ('host', 'null') or net['Driver'] in ('host', 'null'):
                raise errors.InvalidArgument('container cannot be connected to network %s with '
                                             'network mode %s' % (other['Name'], mode))
            settings['Networks'][other['Name']] = self._endpoint(other, es)
        return settings

    @staticmethod
    def _find_settings(endpoints, net, name):
        for key in (name, net['Name'], net['Id'], 'default'):
            if key in endpoints:
                return endpoints[key]
        for key, value in endpoints.items():
            if len(key) >= 3 and net['Id'].startswith(key):
                return value
        return None

    def ensure_settings(self, c):
        """Records made before networking existed get their endpoints now."""
        if 'NetworkSettings' not in c.record:
            c.record['NetworkSettings'] = self.container_settings(
                c.config, c.host_config, None)
        return c.record['NetworkSettings']

    def sandbox_up(self, c, ports=None):
        """Make the container's namespace and start attaching its endpoints.

        Returns (netns path or None for the host's, join): ``join()`` waits
        for the attachments (CNI ADD, run while ``runc create`` runs) and
        raises their error; ``join`` is None when nothing is attached.
        """
        settings = self.ensure_settings(c)
        mode = mode_of(c.host_config)
        if mode == 'host':
            return None, None
        self._link_targets(c, must_run=True)
        for name, ep in settings['Networks'].items():
            try:
                net = self.store.get(ep.get('NetworkID') or name)
            except errors.NotFound:
                raise errors.NotFound('network %s not found' % name)
            if not ep.get('NetworkID'):
                ep.update(self._endpoint(net, None))
        bindings = []
        if self._first_bridge(c):
            bindings = self.ports.allocate(c.id, ports_mod.parse(c.config, c.host_config))
        ports = ports_mod.cni_port_mappings(bindings) or None
        settings['Ports'] = ports_mod.to_record(bindings) if bindings else None
        path = os.path.join(self.netns_dir, c.id)
        try:
            netns.remove(path)  # a stale one from a crash
            netns.create(path)
        except BaseException:
            self.ports.release(c.id)
            raise
        settings['SandboxKey'] = path
        todo = [(name, ep) for name, ep in settings['Networks'].items()
                if ep.get('NetworkID')]
        if not any(self._attachable(ep) for _, ep in todo):
            return path, None
        failure = []

        def work():
            try:
                self._attach_all(c, path, todo, ports)
            except BaseException as exc:
                failure.append(exc)

        t = threading.Thread(target=work, name='cni-add-' + c.id[:12], daemon=True)
        t.start()

        def join():
            t.join()
            if failure:
                raise failure[0]
        return path, join

    def _attachable(self, ep):
        try:
            net = self.store.get(ep['NetworkID'])
        except errors.NotFound:
            return True  # fails in _attach_all with a clear message
        return net['Driver'] not in ('host', 'null')

    def _attach_all(self, c, path, todo, ports):
        index = 0
        has_gateway = False
        first_bridge = True
        for name, ep in todo:
            try:
                net = self.store.get(ep['NetworkID'])
            except errors.NotFound:
                raise errors.NotFound('network %s not found' % name)
            if net['Driver'] in ('host', 'null'):
                continue
            ep['_ifname'] = 'eth%d' % index
            index += 1
            mine = ports if (first_bridge and net['Driver'] == 'bridge') else None
            if net['Driver'] == 'bridge':
                first_bridge = False
            self._attach(c, net, path, ep, mine, has_gateway)
            has_gateway = has_gateway or bool(ep.get('Gateway'))

    def _attach(self, c, net, path, ep, ports, has_gateway):
        fields = self.driver(net['Driver']).attach(net, path, c.id, ep, ports, has_gateway)
        ep['_dns'] = fields.pop('DNS', [])
        ep['_ports'] = ports or None
        ep.update(fields)
        ep['EndpointID'] = util.new_id()
        if net['Name'] != 'bridge' and net['Driver'] == 'bridge':
            aliases = list(ep.get('Aliases') or [])
            if c.id[:12] not in aliases:
                aliases.append(c.id[:12])
            ep['Aliases'] = aliases

    def started(self, c):
        """After a start: Docker's connect events, peers' /etc/hosts."""
        for name, ep in (c.record.get('NetworkSettings') or {}).get('Networks', {}).items():
            try:
                net = self.store.get(ep['NetworkID'])
            except errors.NotFound:
                continue
            self._event('connect', net, container=c.id)
        self._notify_peers(c)

    def renamed(self, c):
        self._notify_peers(c)

    def draining(self, c):
        """``c`` is leaving the API before its network is torn down (auto-remove):
        its endpoints keep their networks busy until ``sandbox_down`` ends."""
        if not (c.record.get('NetworkSettings') or {}).get('SandboxKey'):
            return  # nothing for sandbox_down to do: it would never be called
        nets = {ep.get('NetworkID') for ep in self._networks(c).values() if ep.get('_ifname')}
        if nets:
            with self._lock:
                self._draining[c.id] = nets

    def _draining_from(self, net_id):
        return any(net_id in nets for nets in self._draining.values())

    def sandbox_down(self, c):
        """CNI DEL of every attached endpoint, then the namespace; idempotent."""
        try:
            return self._sandbox_down(c)
        finally:
            with self._lock:
                if self._draining.pop(c.id, None) is not None:
                    self._drained.notify_all()

    def _sandbox_down(self, c):
        settings = c.record.get('NetworkSettings')
        if not settings:
            return []
        path = settings.get('SandboxKey') or ''
        gone = []
        for name, ep in settings.get('Networks', {}).items():
            if ep.get('_ifname'):
                try:
                    net = self.store.get(ep['NetworkID'])
                    self.driver(net['Driver']).detach(net, path, c.id, ep, ep.get('_ports'))
                    gone.append(net)
                except errors.EngineError as exc:
                    LOG.warning('detaching %s from network %s: %s', c.id[:12], name, exc)
            self._clear(ep)
        if path.startswith(self.netns_dir + os.sep):
            try:
                netns.remove(path)
            except errors.EngineError as exc:
                LOG.warning('%s', exc)
        settings['SandboxKey'] = ''
        self.ports.release(c.id)
        settings['Ports'] = None
        return gone

    @staticmethod
    def _clear(ep):
        keep_mac = ep.get('_mac') or ''
        for key in ('_ifname', '_dns', '_ports', '_had_gateway'):
            ep.pop(key, None)
        ep.update(EndpointID='', Gateway='', IPAddress='', IPPrefixLen=0, MacAddress=keep_mac)
        if ep.get('Aliases'):
            pass

    def stopped(self, c, nets):
        for net in nets:
            self._event('disconnect', net, container=c.id)
        self._notify_peers(c)

    # -- peers (name resolution through /etc/hosts) -----------------------------------
    def peers(self, c):
        """(ip, [names]) of the containers sharing a user-defined network with ``c``."""
        mine = {ep['NetworkID'] for ep in self._networks(c).values()
                if ep.get('EndpointID') and self._user_defined(ep['NetworkID'])}
        out = []
        for other in self.containers.list() if self.containers else ():
            if other.id == c.id or not other.is_running():
                continue
            for ep in self._networks(other).values():
                if ep.get('NetworkID') in mine and ep.get('IPAddress'):
                    names = [other.name] + [a for a in ep.get('Aliases') or ()
                                            if a != other.name]
                    if other.id[:12] not in names:
                        names.append(other.id[:12])
                    out.append((ep['IPAddress'], names))
        return out

    def _user_defined(self, net_id):
        try:
            net = self.store.get(net_id)
        except errors.NotFound:
            return False
        return net['Name'] not in PREDEFINED and net['Driver'] == 'bridge'

    @staticmethod
    def _networks(c):
        return (c.record.get('NetworkSettings') or {}).get('Networks') or {}

    def _notify_peers(self, c, extra=None):
        if self.peers_changed is None:
            return
        mine = {ep.get('NetworkID') for ep in self._networks(c).values()} | {extra}
        mine = {n for n in mine if n and self._user_defined(n)}
        if not mine:
            return
        cids = [o.id for o in self.containers.list() if o.id != c.id and o.is_running()
                and mine & {ep.get('NetworkID') for ep in self._networks(o).values()}]
        if cids:
            try:
                self.peers_changed(cids)
            except Exception:
                LOG.exception('updating /etc/hosts of peers of %s', c.id[:12])

    # -- /etc files (engine/networks/etcfiles.py), links -------------------------------
    @staticmethod
    def etc_mode(c):
        mode = mode_of(c.host_config)
        if mode in ('default', 'bridge', 'host', 'none'):
            return {'default': 'bridge'}.get(mode, mode)
        if mode.startswith('container:'):
            return 'container'
        return 'user'

    def etc_context(self, c):
        host = c.host_config
        bridge = self.store.by_name('bridge') or {}
        return etcfiles.EtcContext(
            mode=self.etc_mode(c), hostname=c.config.get('Hostname') or '',
            domainname=c.config.get('Domainname') or '', addresses=self.addresses(c),
            peers=self.peers(c), links=self.link_entries(c),
            extra_hosts=etcfiles.resolve_extra_hosts(host.get('ExtraHosts'),
                                                     bridge.get('_gateway')),
            dns=host.get('Dns') or [], dns_search=host.get('DnsSearch') or [],
            dns_options=host.get('DnsOptions') or [], network_dns=self.dns_servers(c))

    def write_etc(self, c):
        """At start, before runc create: the container's three files."""
        if self.etc_mode(c) == 'container':
            other = self.containers.get(mode_of(c.host_config).split(':', 1)[1])
            return etcfiles.joined_paths(other.path)
        return self.etc.write(c.path, self.etc_context(c))

    def update_etc(self, c, etc_paths=None):
        """/etc/hosts rewritten in place (bind-mounted: never renamed over)."""
        if self.etc_mode(c) == 'container':
            return
        self.etc.update_hosts(c.path, self.etc_context(c))

    def check_links(self, host_config):
        """At create: every linked container exists (400 otherwise, as Docker)."""
        for link in host_config.get('Links') or ():
            name, _ = etcfiles.parse_link(link)
            try:
                self.containers.get(name)
            except errors.NotFound:
                raise errors.InvalidArgument('could not get container for %s' % name)

    def stored_links(self, links, parent):
        """Docker's stored form of HostConfig.Links: '/target:/parent/alias'."""
        out = []
        for link in links:
            name, alias = etcfiles.parse_link(link)
            try:
                name = self.containers.get(name).name
            except errors.NotFound:
                raise errors.InvalidArgument('could not get container for %s' % name)
            out.append('/%s:/%s/%s' % (name, parent, alias))
        return out

    def _link_targets(self, c, must_run=False):
        out = []
        for link in c.host_config.get('Links') or ():
            name, alias = etcfiles.parse_link(link)
            try:
                target = self.containers.get(name)
            except errors.NotFound:
                if must_run:
                    raise errors.InvalidArgument('could not get container for %s' % name)
                continue
            if must_run and not target.is_running():
                raise errors.Conflict('Cannot link to a non running container: /%s AS /%s/%s'
                                      % (target.name, c.name, alias))
            out.append((alias, target))
        return out

    def _shared_ip(self, c, target):
        mine = {ep.get('NetworkID') for ep in self._networks(c).values()}
        for ep in self._networks(target).values():
            if ep.get('NetworkID') in mine and ep.get('IPAddress'):
                return ep['IPAddress']
        return ''

    def link_entries(self, c):
        out = []
        for alias, target in self._link_targets(c):
            ip = self._shared_ip(c, target)
            if ip:
                out.append((alias, ip, target.name, target.config.get('Hostname') or ''))
        return out

    def link_env(self, c):
        """Legacy --link environment variables (default bridge only, as Docker)."""
        if self.etc_mode(c) != 'bridge':
            return []
        env = []
        for alias, target in self._link_targets(c):
            ip = self._shared_ip(c, target)
            if not ip:
                continue
            env += etcfiles.link_env(alias, etcfiles.LinkTarget(
                name=target.name, ip=ip,
                exposed_ports=list((target.config.get('ExposedPorts') or {}).keys()),
                env=target.config.get('Env') or [],
                hostname=target.config.get('Hostname') or ''), parent_name=c.name)
        return env

    # -- published ports (engine/networks/ports.py) ------------------------------------
    def ports_view(self, c):
        settings = c.record.get('NetworkSettings') or {}
        bindings = None
        if c.is_running() and settings.get('SandboxKey') and self._first_bridge(c):
            bindings = ports_mod.from_record(settings.get('Ports') or [])
        return ports_mod.settings_view(c.config.get('ExposedPorts'), bindings)

    def ports_summary(self, c):
        settings = c.record.get('NetworkSettings') or {}
        bindings = None
        if c.is_running() and settings.get('SandboxKey') and self._first_bridge(c):
            bindings = ports_mod.from_record(settings.get('Ports') or [])
        return ports_mod.summary_view(c.config.get('ExposedPorts'), bindings)

    def _first_bridge(self, c):
        for ep in self._networks(c).values():
            try:
                if self.store.get(ep.get('NetworkID')).get('Driver') == 'bridge':
                    return True
            except errors.NotFound:
                continue
        return False

    def restore_ports(self):
        """At engine startup: running containers' host ports are held again."""
        for c in self.containers.list() if self.containers else ():
            data = (c.record.get('NetworkSettings') or {}).get('Ports')
            if c.is_running() and data:
                self.ports.restore(c.id, ports_mod.from_record(data))

    def addresses(self, c):
        return [ep['IPAddress'] for ep in self._networks(c).values() if ep.get('IPAddress')]

    def dns_servers(self, c):
        """DNS servers given by external endpoints (DriverOpts dns), in order."""
        out = []
        for ep in self._networks(c).values():
            for server in ((ep.get('DriverOpts') or {}).get('dns') or '').split(','):
                if server.strip() and server.strip() not in out:
                    out.append(server.strip())
        return out

    # -- connect/disconnect ----------------------------------------------------------
    def connect(self, ref, body):
        if not isinstance(body, dict) or not isinstance(body.get('Container'), str):
            raise errors.InvalidArgument('Container is required')
        net = self.get(ref)
        c = self.containers.get(body['Container'])
        mode = mode_of(c.host_config)
        with c.lock:
            settings = self.ensure_settings(c)
            if mode.startswith('container:'):
                raise errors.Forbidden('container sharing network namespace with another '
                                       'container or host cannot be connected to any other '
                                       'network')
            if mode == 'host' or net['Driver'] == 'host':
                raise errors.Forbidden('container cannot be disconnected from host network or '
                                       'connected to host network')
            if settings['Networks'] and (net['Driver'] == 'null' or 'none' in settings['Networks']):
                raise errors.Forbidden('container cannot be connected to multiple networks with '
                                       'one of the networks in private (none) mode')
            if net['Name'] in settings['Networks']:
                raise errors.Forbidden('endpoint with name %s already exists in network %s'
                                       % (c.name, net['Name']))
            ep = self._endpoint(net, body.get('EndpointConfig'), c.id)
            if c.is_running():
                used = {e.get('_ifname') for e in settings['Networks'].values()}
                n = 0
                while 'eth%d' % n in used:
                    n += 1
                ep['_ifname'] = 'eth%d' % n
                has_gw = any(e.get('Gateway') for e in settings['Networks'].values())
                try:
                    self._attach(c, net, settings['SandboxKey'], ep, None, has_gw)
                except BaseException:
                    ep.pop('_ifname', None)
                    raise
            settings['Networks'][net['Name']] = ep
            c.save()
        if c.is_running():  # Docker announces only a live connection
            self._event('connect', net, container=c.id)
            self._refresh_own_etc(c, net)

    def disconnect(self, ref, body):
        if not isinstance(body, dict) or not isinstance(body.get('Container'), str):
            raise errors.InvalidArgument('Container is required')
        net = self.get(ref)
        c = self.containers.get(body['Container'])
        with c.lock:
            settings = self.ensure_settings(c)
            ep = settings['Networks'].get(net['Name'])
            if ep is None or ep.get('NetworkID') != net['Id']:
                raise errors.EngineError('container %s is not connected to network %s'
                                         % (c.id, net['Name']))  # Docker's 500
            if net['Driver'] == 'host' and c.is_running():
                raise errors.Forbidden('container cannot be disconnected from host network or '
                                       'connected to host network')
            if ep.get('_ifname'):
                self.driver(net['Driver']).detach(net, settings['SandboxKey'], c.id, ep,
                                                  ep.get('_ports'))
            del settings['Networks'][net['Name']]
            c.save()
        self._event('disconnect', net, container=c.id)
        if c.is_running():
            self._refresh_own_etc(c, net)

    def _refresh_own_etc(self, c, net):
        """After a hot plug or unplug: the container's files, then its peers'."""
        try:
            if net['Driver'] == 'external' and \
                    self.etc_mode(c) != 'container':
                self.etc.write(c.path, self.etc_context(c))  # DNS servers may change
            else:
                self.update_etc(c)
        except (OSError, errors.EngineError) as exc:
            LOG.warning('updating /etc files of %s: %s', c.id[:12], exc)
        if self.peers_changed:
            self._notify_peers(c, extra=net['Id'])

    # -- check, collect, purge ----------------------------------------------------------
    def _orphans(self, live_ids):
        """What containers that no longer run left on the host: namespace
        files, IPAM leases, and rules of networks whose record is gone."""
        live = set(live_ids)
        spaces = [fn for fn in netns.list_dir(self.netns_dir) if fn not in live]
        leases = []
        for net in self.store.list():
            if net['Driver'] == 'bridge':
                for ip, (owner, ifname) in self.driver('bridge').lease_owners(net).items():
                    if owner not in live:
                        leases.append((net, ip, owner, ifname))
        mine = {n['Id'][:12] for n in self.store.list()}
        tags = [t for t in self.ctx.rule_tags() if t not in mine]
        return spaces, leases, tags

    def leftover_notes(self, live_ids):
        """For `check`: what the next start removes."""
        spaces, leases, tags = self._orphans(live_ids)
        notes = ['network namespace %s without a running container' % fn[:12] for fn in spaces]
        notes += ['IPAM lease %s on network %s without an endpoint' % (ip, net['Name'])
                  for net, ip, _, _ in leases]
        notes += ['iptables rules of removed network %s' % tag for tag in tags]
        live = set(live_ids)
        for net in self.store.list():
            br = net.get('_bridge') if net['Driver'] == 'bridge' else None
            if br:
                ports = drivers_mod.bridge_ports(br)
                users = self._users_running_ids(net, live)
                if len(ports) > len(users):
                    notes.append('bridge %s has %d ports for %d running containers' % (
                        br, len(ports), len(users)))
        return notes

    def collect(self, live_ids):
        """At startup, after reconcile: remove what `leftover_notes` lists."""
        spaces, leases, tags = self._orphans(live_ids)
        for net, ip, owner, ifname in leases:
            path = os.path.join(self.netns_dir, owner)
            LOG.info('releasing the address %s of gone container %s', ip, owner[:12])
            try:
                # Any mapping makes portmap tear down the container's chain
                # (found by network and container id): the real ones are lost.
                self.cni.delete(self.driver('bridge').conflist(net, ports=[{}]), owner,
                                path if netns.is_netns(path) else '', ifname or 'eth0',
                                {'portMappings': [_ANY_MAPPING]})
            except errors.EngineError as exc:
                LOG.warning('CNI DEL for gone container %s: %s', owner[:12], exc)
                self.driver('bridge').drop_lease(net, ip)
        for fn in spaces:
            LOG.info('removing the network namespace of gone container %s', fn[:12])
            try:
                netns.remove(os.path.join(self.netns_dir, fn))
            except errors.EngineError as exc:
                LOG.warning('%s', exc)
        for tag in tags:
            try:
                self.firewall.remove_network(tag)
                self.ctx.forget_rules(tag)
            except errors.EngineError as exc:
                LOG.warning('removing rules of removed network %s: %s', tag, exc)

    def _users_running_ids(self, net, live):
        return [c.id for c, ep in self._users(net) if c.id in live and ep.get('_ifname')]

    def purge(self):
        """Remove every bridge, rule and lease this engine made (no container may run)."""
        for c in self.containers.list() if self.containers else ():
            eps = self._networks(c).values()
            if (c.record.get('NetworkSettings') or {}).get('SandboxKey') or \
                    any(ep.get('_ifname') for ep in eps):
                self.sandbox_down(c)  # CNI DEL: portmap's chains, leases
                c.save()
        self.collect(set())
        for net in self.store.list():
            if net['Driver'] == 'bridge':
                self.driver('bridge').delete(net)
                if net['Name'] == 'bridge':
                    self._release_default_bridge(net['_bridge'])
        for fn in netns.list_dir(self.netns_dir):
            netns.remove(os.path.join(self.netns_dir, fn))
        for tag in self.ctx.rule_tags():
            self.firewall.remove_network(tag)
            self.ctx.forget_rules(tag)
        self.firewall.remove_chains_if_empty()


_ANY_MAPPING = {'hostPort': 1, 'containerPort': 1, 'protocol': 'tcp'}


def _labels_match(labels, wanted, any_=False):
    if not wanted:
        return True
    results = []
    for w in wanted:
        k, sep, v = w.partition('=')
        results.append(k in labels and (not sep or labels[k] == v))
    return any(results) if any_ else all(results)
