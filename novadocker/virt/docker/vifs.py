"""How a Neutron port reaches a container: the VIF drivers.

Loaded by name (``[docker] vif_driver``) from the ``novadocker.vif_drivers``
stevedore namespace:

* ``bridge``: Linux bridge VIFs (Neutron's linuxbridge agent, or any bridge
  named by the port's network). Each Neutron network gets one engine
  network of the ``external`` driver on the port's bridge (``nova-<network
  id>``, made on first use, removed by :meth:`cleanup` once no container uses
  it; the bridge itself is made when missing, as os-vif does); each port
  becomes an endpoint with the port's MAC, its fixed IPv4 address and
  prefix, the subnet's gateway, the network's MTU and the subnet's DNS
  servers. The engine (root) makes the veth pair, its host end named as
  Nova names it (the VIF's ``devname``), and addresses the container end
  through CNI; nova-compute only calls the engine API.
* ``ovs``: the same path, on an engine network with ``ovs_bridge=<the port's
  integration bridge>``: the engine adds the host end of the veth (named
  as Nova names it, the VIF's ``devname``) to the Open vSwitch bridge with
  Neutron's external ids (iface-id, attached-mac, vm-uuid, iface-status) so
  that the OVS agent wires the port.
* ``noop``: no networking (the container gets only a loopback).

The driver calls, per instance: ``network_mode(network_info)`` and
``networking_config(instance, network_info)`` for the container create body
(the first VIF is the container's own network: Docker-style engines take
its endpoint settings only at create), then ``plug`` for every VIF (a no-op
for one already attached; a hot plug on a running container), ``unplug``
(idempotent; it also removes the engine network when that port was its
last user) and, after the container is gone, ``cleanup``.
"""

import ipaddress
import threading

from oslo_log import log as logging

from novadocker import client as engine_client

LOG = logging.getLogger(__name__)

NETWORK_PREFIX = 'nova-'
LABEL_NETWORK_ID = 'org.openstack.nova.network-id'
LABEL_VIF_DRIVER = 'org.openstack.nova.vif-driver'

# One lock per engine network name: a network is made, checked for users
# and removed by one caller at a time in this process (spawns and deletes
# run concurrently in nova-compute). Threading locks are green locks under
# eventlet, as nova-compute monkey-patches threading.
_locks_guard = threading.Lock()
_locks = {}


def _network_lock(name):
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


# Instances of this process about to use an engine network (between the
# create body being made and the port being attached): a concurrent cleanup
# for another instance must not remove the network under them. One
# nova-compute serves one engine, so this process sees every user to come.
_pending = {}


def _add_pending(name, instance_uuid):
    with _network_lock(name):
        _pending.setdefault(name, set()).add(instance_uuid)


def _drop_pending(name, instance_uuid):
    with _network_lock(name):
        users = _pending.get(name)
        if users is not None:
            users.discard(instance_uuid)
            if not users:
                del _pending[name]


def _nova_exception():
    # Imported late: the package must import without Nova (config generator).
    from nova import exception
    return exception


def engine_client_of(engine):
    """The raw EngineClient: the driver's engine wrapper (``.client``) or a
    client itself. The helpers here map its errors to Nova's themselves."""
    return getattr(engine, 'client', engine)


class VIFDriver:
    """The interface (and the ``noop`` behaviour)."""

    name = None

    def __init__(self, engine):
        self.engine = engine
        self.client = engine_client_of(engine)

    def network_mode(self, network_info):
        """HostConfig.NetworkMode of the container create."""
        return 'none'

    def networking_config(self, instance, network_info):
        """NetworkingConfig of the container create (None: nothing to give)."""
        return None

    def plug(self, instance, vif, container_id):
        pass

    def unplug(self, instance, vif, container_id):
        pass

    def cleanup(self, instance, network_info):
        pass


class NoopVIFDriver(VIFDriver):
    """No network at all: the instance has only its loopback."""

    name = 'noop'


_warned_ports = set()


def _devname(vif):
    return vif.get('devname') or ('tap' + str(vif.get('id')))[:14]


class _PortSettings:
    """What an endpoint needs from one Nova VIF (nova.network.model.VIF)."""

    def __init__(self, vif):
        network = vif.get('network') or {}
        self.port_id = vif.get('id')
        self.mac = (vif.get('address') or '').lower()
        self.network_id = network.get('id')
        self.bridge = network.get('bridge')
        meta = network.get('meta') or {}
        self.mtu = meta.get('mtu')
        self.ip = self.prefixlen = self.gateway = None
        self.dns = []
        ignored = []
        for subnet in network.get('subnets') or ():
            for server in subnet.get('dns') or ():
                addr = server.get('address') if isinstance(server, dict) else server
                if addr and addr not in self.dns:
                    self.dns.append(addr)
            cidr = subnet.get('cidr')
            try:
                net = ipaddress.ip_network(cidr, strict=False) if cidr else None
            except ValueError:
                net = None
            for ip in subnet.get('ips') or ():
                addr = ip.get('address')
                if net is None or net.version != 4 or self.ip is not None:
                    if addr:
                        ignored.append(addr)
                    continue
                self.ip, self.prefixlen = addr, net.prefixlen
                gw = (subnet.get('gateway') or {}).get('address')
                if gw and ipaddress.ip_address(gw) in net:
                    self.gateway = gw
        # The engine's endpoints carry one IPv4 address: IPv6 and further
        # addresses are not configured (said once per port, in the log).
        if ignored and self.port_id not in _warned_ports:
            _warned_ports.add(self.port_id)
            LOG.warning('port %s: only %s is configured in the container; not %s',
                        self.port_id, self.ip, ', '.join(ignored))


class BridgeVIFDriver(VIFDriver):
    """Linux bridge VIFs through the engine's ``external`` networks."""

    name = 'bridge'

    # -- what differs between bridge and ovs ------------------------------------

    def network_options(self, port, vif):
        if not port.bridge:
            raise self._plug_error(vif, 'the port\'s network names no bridge')
        # As os-vif does for Linux bridge VIFs: the bridge is made when
        # missing (Neutron's agent wires it, and removes it once empty).
        return {'bridge': port.bridge, 'create_bridge': 'true'}

    def endpoint_options(self, instance, port, vif):
        # The host end is named as Nova names it (tap + 11 characters of the
        # port id): what Neutron's agent and operators look for on the host.
        return {'host_ifname': _devname(vif)}

    # -- names and bodies -------------------------------------------------------

    @staticmethod
    def network_name(vif):
        network_id = (vif.get('network') or {}).get('id')
        return NETWORK_PREFIX + str(network_id)

    def endpoint(self, instance, vif):
        """EndpointSettings for the port: MAC, IPv4/prefix, gateway, MTU, DNS."""
        port = _PortSettings(vif)
        if not port.ip:
            raise self._plug_error(vif, 'the port has no fixed IPv4 address (this engine '
                                        'configures IPv4 endpoints only)')
        opts = {'prefixlen': str(port.prefixlen)}
        if port.gateway:
            opts['gateway'] = port.gateway
        if port.mtu:
            opts['mtu'] = str(int(port.mtu))
        if port.dns:
            opts['dns'] = ','.join(port.dns)
        opts.update(self.endpoint_options(instance, port, vif))
        ep = {'IPAMConfig': {'IPv4Address': port.ip}, 'DriverOpts': opts}
        if port.mac:
            ep['MacAddress'] = port.mac
        return ep

    # -- the interface ----------------------------------------------------------

    def network_mode(self, network_info):
        if not network_info:
            return 'none'
        return self.ensure_network(network_info[0])

    def networking_config(self, instance, network_info):
        if not network_info:
            return None
        vif = network_info[0]
        endpoint = self.endpoint(instance, vif)
        # Until plug (or cleanup) for this instance, the network is kept.
        _add_pending(self.network_name(vif), instance.uuid)
        name = self.ensure_network(vif)
        return {'EndpointsConfig': {name: endpoint}}

    def plug(self, instance, vif, container_id):
        name = self.network_name(vif)
        _add_pending(name, instance.uuid)
        try:
            self._plug(instance, vif, container_id, name)
        finally:
            _drop_pending(name, instance.uuid)

    def _plug(self, instance, vif, container_id, name):
        endpoint = self.endpoint(instance, vif)
        for attempt in (1, 2):
            self.ensure_network(vif)
            attached = self._container_networks(instance, container_id)
            current = attached.get(name)
            if current is not None:
                if self._same_port(current, endpoint):
                    return  # given at create, or plugged before
                raise self._plug_error(
                    vif, 'the container already has a port on network %s (MAC %s); the engine '
                         'takes one port per network and container'
                         % (vif['network']['id'], current.get('MacAddress')))
            try:
                self.client.post('/networks/%s/connect' % name,
                                 json_body={'Container': container_id,
                                            'EndpointConfig': endpoint})
                LOG.info('plugged port %s (%s) into %s', vif.get('id'),
                         endpoint.get('MacAddress'), name, instance=instance)
                return
            except engine_client.EngineNotFound as exc:
                if 'container' in exc.explanation.lower():
                    raise _nova_exception().InstanceNotFound(instance_id=instance.uuid)
                # The network went away under us (a concurrent cleanup): once more.
                if attempt == 2:
                    self._raise(instance, vif, exc, 'plugging')
            except engine_client.EngineClientError as exc:
                self._raise(instance, vif, exc, 'plugging')

    def unplug(self, instance, vif, container_id):
        name = self.network_name(vif)
        try:
            self.client.post('/networks/%s/disconnect' % name,
                             json_body={'Container': container_id, 'Force': True})
            LOG.info('unplugged port %s from %s', vif.get('id'), name, instance=instance)
        except engine_client.EngineNotFound:
            pass  # the container or the network is gone: nothing is plugged
        except engine_client.EngineClientError as exc:
            if not (exc.status == 500 and 'is not connected' in exc.explanation):
                self._raise(instance, vif, exc, 'unplugging')
        # A detached port may have been the network's last user on this host
        # (detach_interface has no cleanup call of its own).
        self.cleanup(instance, [vif])

    def cleanup(self, instance, network_info):
        for vif in network_info or ():
            name = self.network_name(vif)
            _drop_pending(name, instance.uuid)
            with _network_lock(name):
                if _pending.get(name):
                    continue  # another instance is being plugged into it
                try:
                    users = self.client.containers(all=True, filters={'network': [name]})
                    if users:
                        continue
                    self.client.delete('/networks/%s' % name)
                    LOG.info('removed engine network %s (no container uses it)', name,
                             instance=instance)
                except engine_client.EngineNotFound:
                    pass
                except engine_client.EngineClientError as exc:
                    if exc.status in (403, 409):
                        continue  # taken into use meanwhile (another instance)
                    self._raise(instance, vif, exc, 'removing the engine network of')

    # -- helpers ----------------------------------------------------------------

    def ensure_network(self, vif):
        """The engine network of the VIF's Neutron network, made if missing."""
        port = _PortSettings(vif)
        name = self.network_name(vif)
        options = self.network_options(port, vif)
        with _network_lock(name):
            try:
                net = self.client.get('/networks/%s' % name)
            except engine_client.EngineNotFound:
                net = None
            except engine_client.EngineClientError as exc:
                self._raise(None, vif, exc, 'looking up the network of')
            if net is not None:
                have = net.get('Options') or {}
                if any(have.get(k) != options.get(k) for k in ('bridge', 'ovs_bridge')):
                    raise self._plug_error(vif, 'engine network %s is on %s, not on %s' % (
                        name, have, options))
                return name
            body = {'Name': name, 'Driver': 'external', 'Options': options,
                    'Labels': {LABEL_NETWORK_ID: str(port.network_id),
                               LABEL_VIF_DRIVER: self.name}}
            if port.mtu:
                body['Options'] = dict(options, mtu=str(int(port.mtu)))
            try:
                self.client.post('/networks/create', json_body=body)
                LOG.info('created engine network %s on %s', name, options)
            except engine_client.EngineConflict:
                pass  # made by another engine client meanwhile
            except engine_client.EngineClientError as exc:
                self._raise(None, vif, exc, 'creating the engine network of')
        return name

    @staticmethod
    def _same_port(current, endpoint):
        # A created container shows its configured address (IPAMConfig) but
        # no MAC yet; a running one shows the MAC the port has.
        mac = (current.get('MacAddress') or '').lower()
        if mac:
            return mac == endpoint.get('MacAddress', '')
        return ((current.get('IPAMConfig') or {}).get('IPv4Address') ==
                endpoint['IPAMConfig']['IPv4Address'])

    def _container_networks(self, instance, container_id):
        try:
            c = self.client.inspect_container(container_id)
        except engine_client.EngineNotFound:
            raise _nova_exception().InstanceNotFound(instance_id=instance.uuid)
        except engine_client.EngineClientError as exc:
            self._raise(instance, None, exc, 'inspecting the container of')
        return (c.get('NetworkSettings') or {}).get('Networks') or {}

    @staticmethod
    def _plug_error(vif, reason):
        return _nova_exception().VirtualInterfacePlugException(
            'cannot plug port %s: %s' % ((vif or {}).get('id'), reason))

    @staticmethod
    def _raise(instance, vif, exc, doing):
        ex = _nova_exception()
        if isinstance(exc, engine_client.EngineUnavailable):
            raise ex.HypervisorUnavailable(str(exc))
        what = 'port %s' % vif.get('id') if vif else 'instance'
        if instance is not None:
            what += ' of instance %s' % instance.uuid
        raise ex.VirtualInterfacePlugException(
            '%s %s failed: %s' % (doing, what, getattr(exc, 'explanation', exc)))


class OvsVIFDriver(BridgeVIFDriver):
    """Open vSwitch VIFs: the engine adds the veth's host end to the OVS
    bridge with ovs-vsctl (it is root; nova-compute is not)."""

    name = 'ovs'

    def network_options(self, port, vif):
        if not port.bridge:
            raise self._plug_error(vif, 'the port\'s network names no OVS bridge')
        if (vif.get('details') or {}).get('ovs_hybrid_plug'):
            # Neutron's iptables_hybrid firewall filters on a per-port Linux
            # bridge (qbr) this driver does not make: plugging the port
            # straight into OVS would leave its security groups unenforced.
            raise self._plug_error(
                vif, 'the port asks for hybrid plugging (Neutron\'s iptables_hybrid '
                     'firewall), which novadocker does not do; use the openvswitch '
                     'firewall driver of the Neutron OVS agent')
        return {'ovs_bridge': port.bridge}

    def endpoint_options(self, instance, port, vif):
        port_id = vif.get('ovs_interfaceid') or vif.get('id')
        return {'iface_id': str(port_id), 'vm_uuid': str(instance.uuid),
                'host_ifname': _devname(vif)}
