"""Published ports: parsing, host port reservation and Docker's views.

What Docker 20.10 does, and so what we do (checked against dockerd 20.10.24):

* Only ports listed in ``Config.ExposedPorts`` are published.  ``docker run
  -p`` adds every published port to ExposedPorts itself; a raw API client
  that sends ``PortBindings`` for a port it does not expose gets nothing
  published (Docker silently ignores it; so do we).
* ``HostConfig.PublishAllPorts`` (``-P``) gives every exposed port without
  a binding one random host port on all addresses.
* A binding's ``HostPort`` is ``""``/``"0"`` (a random port), ``"N"`` or
  ``"N-M"`` (Docker picks one free port of the range).  ``HostIp`` ``""``
  means all IPv4 addresses (shown as ``0.0.0.0``).
* Random ports come from the kernel's ``net.ipv4.ip_local_port_range``
  (32768-60999 on a stock kernel; Docker 20.10 falls back to 49153-60999
  only when the file cannot be read), handed out sequentially after the
  last one given, as Docker's portallocator does.
* Docker with ``--userland-proxy=false`` (the mode that works like ours:
  the kernel forwards, nothing listens) publishes an IPv6 ``HostIp`` only to
  a container that has an IPv6 address, and lists no ``::`` twin for
  ``HostIp ""``: an IPv4-only container shows ``"80/tcp": null`` for
  ``-p [::1]:8080:80``.  The CNI portmap plugin likewise skips a mapping
  whose hostIP family differs from the container's address, so listing it
  would be a lie.  (Docker with its default userland proxy additionally
  lists ``{"HostIp": "::", ...}``: that proxy is a process relaying IPv6
  to the container's IPv4 address, which we do not run.)

A reserved host port is held by a socket bound to it (never listening, so
it answers no one; the kernel's DNAT from portmap runs before any local
delivery).  The socket is bound *without* SO_REUSEADDR: on Linux two
sockets may share a port only when both set SO_REUSEADDR and neither
listens, so leaving it unset on ours makes every other bind of that port
fail, whatever options the other process sets.  A bound socket that never
connected leaves no TIME_WAIT, so a released port is reusable at once.
"""

import dataclasses
import errno
import ipaddress
import re
import socket
import threading

from oslo_log import log as logging

from engine import errors

LOG = logging.getLogger(__name__)

PROTOCOLS = ('tcp', 'udp', 'sctp')

# Docker 20.10's fallback when ip_local_port_range cannot be read.
FALLBACK_RANGE = (49153, 60999)
PORT_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range'

# Every reserved port holds a file descriptor in the engine: bound the
# number one container may publish so a hostile request cannot exhaust the
# engine's descriptors (Docker has no limit; `-p 1-65535:1-65535` is the
# only real use that hits it).
MAX_PUBLISHED = 8192

_DIGITS = re.compile(r'^[0-9]{1,5}$')


class _PortKey:
    """What PortSpec and Binding share: the container port's key and the
    host address as Docker shows it."""

    @property
    def key(self):
        return '%d/%s' % (self.port, self.proto)

    @property
    def display_ip(self):
        return self.host_ip or '0.0.0.0'

    @property
    def ipv6(self):
        return ':' in self.host_ip


@dataclasses.dataclass(frozen=True)
class PortSpec(_PortKey):
    """One binding to publish, as asked: container port/proto -> host.

    ``host_ip`` is '' (all IPv4 addresses) or a normalised address;
    ``host_port``..``host_port_end`` is the host range to choose from,
    (0, 0) for a random port of the allocator's range.
    """
    port: int
    proto: str
    host_ip: str = ''
    host_port: int = 0
    host_port_end: int = 0


@dataclasses.dataclass(frozen=True)
class Binding(_PortKey):
    """A published port as it is: the host port chosen."""
    port: int
    proto: str
    host_ip: str
    host_port: int


# --------------------------------------------------------------------------
# Parsing and validation (at create)


def _bad(msg):
    return errors.InvalidArgument(msg)


def _echo(text, limit=64):
    """A user's value inside a message, cut short if it is huge."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + '...'


def _bad_spec(text):
    # Docker's daemon wording (daemon/container.go validateHostConfig).
    return _bad('invalid port specification: "%s"' % _echo(text))


def _parse_number(text, allow_zero=False):
    if not isinstance(text, str) or not _DIGITS.match(text):
        return None
    value = int(text)
    if value > 65535 or (value == 0 and not allow_zero):
        return None
    return value


def parse_port_range(text):
    """'80' -> (80, 80); '8000-8010' -> (8000, 8010); None when invalid."""
    if not isinstance(text, str):
        return None
    lo, sep, hi = text.partition('-')
    start = _parse_number(lo)
    end = _parse_number(hi) if sep else start
    if start is None or end is None or end < start:
        return None
    return start, end


def split_proto_port(key):
    """'80/tcp' -> ('80', 'tcp'); '80' and '80/' -> ('80', 'tcp'), as
    Docker's nat.SplitProtoPort; the protocol is lowercased and checked."""
    port, sep, proto = key.partition('/')
    proto = (proto or 'tcp').lower()
    if proto not in PROTOCOLS:
        raise _bad('invalid proto: %s' % _echo(proto))
    return port, proto


def parse_port_key(key):
    """An ExposedPorts/PortBindings key -> (start, end, proto); 400 if bad."""
    if not isinstance(key, str):
        raise _bad('invalid port specification: %s' % _echo(repr(key)))
    port, proto = split_proto_port(key)
    rng = parse_port_range(port)
    if rng is None:
        raise _bad_spec(port)
    return rng[0], rng[1], proto


def _parse_host_ip(value, key):
    if value is None or value == '':
        return ''
    if not isinstance(value, str):
        raise _bad('invalid HostIp for %s: must be a string' % _echo(key))
    text = value
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    try:
        if '%' in text:
            raise ValueError(text)
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise _bad('invalid IP address: %s' % _echo(value)) from None
    return str(addr)


def _parse_host_port(value, key):
    """HostPort -> (start, end); (0, 0) means a random port."""
    if value is None or value == '' or value == '0':
        return 0, 0
    if not isinstance(value, str):
        raise _bad('invalid HostPort for %s: must be a string' % _echo(key))
    rng = parse_port_range(value)
    if rng is None:
        raise _bad_spec(value)
    return rng


def exposed_ports(exposed):
    """ExposedPorts (dict, list or None) -> sorted [(port, proto)], ranges
    expanded; 400 on a bad key."""
    if exposed is None:
        return []
    if not isinstance(exposed, (dict, list)):
        raise _bad('ExposedPorts must be an object')
    out = set()
    for key in exposed:
        start, end, proto = parse_port_key(key)
        out.update((p, proto) for p in range(start, end + 1))
    return sorted(out, key=lambda pp: (pp[0], pp[1]))


def _expand_binding(start, end, proto, item, key):
    if item is None:
        item = {}
    if not isinstance(item, dict):
        raise _bad('invalid port binding for %s: must be an object' % _echo(key))
    host_ip = _parse_host_ip(item.get('HostIp'), key)
    hp_start, hp_end = _parse_host_port(item.get('HostPort'), key)
    if start == end:
        return [PortSpec(start, proto, host_ip, hp_start, hp_end)]
    if hp_start == 0:
        return [PortSpec(p, proto, host_ip, 0, 0) for p in range(start, end + 1)]
    if hp_end - hp_start != end - start:
        # go-connections' wording for `-p 8000-8002:80-81`.
        raise _bad('invalid ranges specified for container and host Ports: '
                   '%d-%d and %s' % (start, end, _echo(item.get('HostPort'))))
    return [PortSpec(start + i, proto, host_ip, hp_start + i, hp_start + i)
            for i in range(end - start + 1)]


def _sort_key(spec):
    # Docker's nat.SortPortMap order: larger requested host port first,
    # then larger container port, tcp before the others.  It decides which
    # binding gets the first random port and the order within a port's list.
    return (-spec.host_port, -spec.port, spec.proto != 'tcp')


def _joins_other_namespace(host_config):
    mode = host_config.get('NetworkMode')
    return isinstance(mode, str) and mode.startswith('container:')


def _publishes(host_config):
    # Docker counts a key with an empty list as publishing (len(PortBindings)).
    return bool(host_config.get('PortBindings')) or host_config.get('PublishAllPorts') is True


def validate_network_mode(config, host_config):
    """Docker's conflicts between ports and ``container:<id>`` mode, 400.

    Call it with the *request's* Config, before the image's defaults are
    merged: Docker checks what the client asked (an image that EXPOSEs a
    port can still join another container's namespace).
    """
    config = config or {}
    host_config = host_config or {}
    if not _joins_other_namespace(host_config):
        return
    if _publishes(host_config):
        raise _bad('conflicting options: port publishing and the container type network mode')
    if config.get('ExposedPorts'):
        raise _bad('conflicting options: port exposing and the container type network mode')


def parse(config, host_config):
    """ExposedPorts + PortBindings + PublishAllPorts -> [PortSpec] to publish.

    Everything is validated (400 with Docker's words where Docker has them);
    bindings of ports that are not exposed are checked and dropped, as
    Docker does.  ``host`` and ``none`` modes publish nothing (Docker
    discards the bindings); ``container:<id>`` with bindings or
    PublishAllPorts is Docker's 400 "conflicting options: port publishing
    and the container type network mode".  ``config`` is the Config with
    the image's ExposedPorts merged in (``-P`` publishes the image's EXPOSE).
    """
    config = config or {}
    host_config = host_config or {}
    exposed = exposed_ports(config.get('ExposedPorts'))
    bindings = host_config.get('PortBindings')
    if bindings is None:
        bindings = {}
    if not isinstance(bindings, dict):
        raise _bad('PortBindings must be an object')
    publish_all = host_config.get('PublishAllPorts')
    if publish_all is not None and not isinstance(publish_all, bool):
        raise _bad('PublishAllPorts must be a boolean')

    asked = {}
    total = 0
    for key, items in bindings.items():
        start, end, proto = parse_port_key(key)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise _bad('invalid port bindings for %s: must be a list' % _echo(key))
        for item in items:
            specs = _expand_binding(start, end, proto, item, key)
            total += len(specs)
            if total > MAX_PUBLISHED:
                raise _bad('too many published ports (at most %d)' % MAX_PUBLISHED)
            for spec in specs:
                asked.setdefault((spec.port, spec.proto), []).append(spec)

    if _joins_other_namespace(host_config) and _publishes(host_config):
        raise _bad('conflicting options: port publishing and the container type network mode')
    if host_config.get('NetworkMode') in ('host', 'none'):
        return []

    out = []
    for port, proto in exposed:
        specs = asked.get((port, proto))
        if specs:
            out.extend(specs)
        elif publish_all:
            out.append(PortSpec(port, proto))
        if len(out) > MAX_PUBLISHED:
            raise _bad('too many published ports (at most %d)' % MAX_PUBLISHED)
    out.sort(key=_sort_key)
    return out


# --------------------------------------------------------------------------
# Host port reservation (at start)


def dynamic_port_range(path=PORT_RANGE_FILE):
    """The kernel's ephemeral range, as Docker 20.10 reads it."""
    try:
        with open(path) as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        LOG.info('cannot read %s: using the port range %d-%d', path, *FALLBACK_RANGE)
        return FALLBACK_RANGE
    if not (0 < lo <= hi <= 65535):
        return FALLBACK_RANGE
    return lo, hi


def host_has_ipv6():
    """Whether an IPv6 socket can be bound here (Docker's IsV6Listenable)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(('::1', 0))
        return True
    except OSError:
        return False


def _overlaps(ip_a, ip_b):
    """Whether reservations on two host addresses of one family collide."""
    wild = ('', '0.0.0.0', '::')
    if (':' in ip_a) != (':' in ip_b):
        return False
    return ip_a == ip_b or ip_a in wild or ip_b in wild


def _sock_type(proto):
    if proto == 'udp':
        return socket.SOCK_DGRAM, 0
    if proto == 'sctp':
        return socket.SOCK_STREAM, getattr(socket, 'IPPROTO_SCTP', 132)
    return socket.SOCK_STREAM, 0


def _listen_name(binding):
    """Go's net.Listen network name and address, for Docker's bind errors."""
    if binding.ipv6:
        return '%s6' % binding.proto, '[%s]:%d' % (binding.host_ip, binding.host_port)
    return '%s4' % binding.proto, '%s:%d' % (binding.display_ip, binding.host_port)


class _Unavailable(Exception):
    """The host port is taken by someone else (not fatal for random picks)."""


def hold_port(binding):
    """A socket bound to the binding's host address and port, or None when
    the protocol has no sockets on this kernel (then nothing on the host can
    take the port either).  Raises _Unavailable when the port is in use."""
    stype, proto = _sock_type(binding.proto)
    family = socket.AF_INET6 if binding.ipv6 else socket.AF_INET
    try:
        sock = socket.socket(family, stype, proto)
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT,
                         errno.EAFNOSUPPORT) and binding.proto == 'sctp':
            return None
        # EMFILE and the like: the engine's trouble, not the request's.
        raise errors.EngineError('cannot reserve host port %s %s: %s'
                                 % (*_listen_name(binding), exc.strerror or exc)) from None
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            addr = (binding.host_ip, binding.host_port, 0, 0)
        else:
            addr = (binding.host_ip or '0.0.0.0', binding.host_port)
        if stype == socket.SOCK_DGRAM:
            # Nobody reads it: keep what could queue up small.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        network, where = _listen_name(binding)
        text = 'listen %s %s: bind: %s' % (network, where,
                                           (exc.strerror or str(exc)).lower())
        if exc.errno == errno.EADDRINUSE:
            raise _Unavailable(text) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise _bad(text) from None
        raise errors.EngineError(text) from None
    return sock


class PortAllocator:
    """Host ports for published container ports, one per engine.

    Thread-safe.  A container has one set of published ports: ``allocate``
    replaces what the container held, and is all-or-nothing (on failure
    the container holds nothing).
    """

    def __init__(self, range_=None, ipv6=None):
        lo, hi = range_ or dynamic_port_range()
        if not (0 < lo <= hi <= 65535):
            raise ValueError('bad port range %r' % ((lo, hi),))
        self.range = (lo, hi)
        self._ipv6 = host_has_ipv6() if ipv6 is None else ipv6
        self._lock = threading.Lock()
        self._held = {}          # cid -> [(Binding, socket or None)]
        self._by_port = {}       # (proto, host port) -> [host ip] held
        self._last = {}          # (host ip, proto) -> last random port given

    # -- internal helpers (called with the lock held)

    def _taken(self, binding):
        held = self._by_port.get((binding.proto, binding.host_port), ())
        return any(_overlaps(ip, binding.host_ip) for ip in held)

    def _index(self, binding):
        self._by_port.setdefault((binding.proto, binding.host_port), []).append(binding.host_ip)

    def _unindex(self, binding):
        key = (binding.proto, binding.host_port)
        held = self._by_port.get(key, [])
        if binding.host_ip in held:
            held.remove(binding.host_ip)
        if not held:
            self._by_port.pop(key, None)

    def _drop(self, entries):
        for binding, sock in entries:
            self._unindex(binding)
            if sock is not None:
                sock.close()

    def _hold(self, binding, got):
        """Hold exactly ``binding``; appended to ``got`` and indexed."""
        if self._taken(binding):
            raise errors.Conflict('Bind for %s:%d failed: port is already allocated'
                                  % (binding.display_ip, binding.host_port))
        try:
            sock = hold_port(binding)
        except _Unavailable as exc:
            raise errors.Conflict(str(exc)) from None
        got.append((binding, sock))
        self._index(binding)
        return binding

    def _hold_one_of(self, spec, candidates, got):
        for port in candidates:
            binding = Binding(spec.port, spec.proto, spec.host_ip, port)
            if self._taken(binding):
                continue
            try:
                sock = hold_port(binding)
            except _Unavailable:
                continue
            got.append((binding, sock))
            self._index(binding)
            return binding
        raise errors.Conflict('all ports are allocated')

    def _random_candidates(self, last_key):
        lo, hi = self.range
        last = self._last.get(last_key, hi)
        start = last + 1 if lo <= last < hi else lo
        yield from range(start, hi + 1)
        yield from range(lo, start)

    def _hold_spec(self, spec, got):
        if spec.host_port and spec.host_port == spec.host_port_end:
            return self._hold(Binding(spec.port, spec.proto, spec.host_ip, spec.host_port), got)
        if spec.host_port:
            return self._hold_one_of(spec, range(spec.host_port, spec.host_port_end + 1), got)
        # Docker keeps one sequence per host address and protocol.
        last_key = (spec.display_ip, spec.proto)
        binding = self._hold_one_of(spec, self._random_candidates(last_key), got)
        self._last[last_key] = binding.host_port
        return binding

    # -- API

    def allocate(self, cid, specs, container_ipv6=False):
        """Reserve host ports for ``specs`` -> [Binding] (same order).

        IPv6 HostIp specs are kept only for a container with an IPv6
        address (``container_ipv6``), as Docker does without its userland
        proxy.  Conflicts raise errors.Conflict with Docker's message:
        'Bind for 0.0.0.0:18080 failed: port is already allocated' (held by
        this engine), 'listen tcp4 0.0.0.0:18080: bind: address already in
        use' (taken by another process), 'all ports are allocated'.
        """
        ipv6 = container_ipv6 and self._ipv6
        got = []
        with self._lock:
            self._drop(self._held.pop(cid, []))
            try:
                for spec in specs:
                    if spec.ipv6 and not ipv6:
                        continue
                    binding = self._hold_spec(spec, got)
                    if ipv6 and spec.host_ip == '':
                        # Docker's IPv6 twin of an all-addresses binding
                        # (20.10 picks the twin's random port separately;
                        # one port for both is what later Docker does).
                        self._hold(Binding(spec.port, spec.proto, '::', binding.host_port), got)
            except BaseException:
                self._drop(got)
                raise
            if got:
                self._held[cid] = got
        return [b for b, _ in got]

    def release(self, cid):
        """Free every host port of the container (idempotent)."""
        with self._lock:
            self._drop(self._held.pop(cid, []))

    def restore(self, cid, bindings):
        """Re-reserve a running container's ports after an engine restart.

        Returns a list of messages, one per port that could not be
        reserved again (taken meanwhile); the others are held.
        """
        problems = []
        got = []
        with self._lock:
            self._drop(self._held.pop(cid, []))
            for binding in bindings:
                try:
                    self._hold(binding, got)
                except errors.EngineError as exc:
                    problems.append('%s -> %s: %s' % (binding.key, binding.host_port, exc))
            if got:
                self._held[cid] = got
        for msg in problems:
            LOG.warning('container %s: published port not reserved again: %s',
                        cid[:12], msg)
        return problems

    def reserved(self, cid=None):
        """[Binding] held for one container, or for all of them."""
        with self._lock:
            if cid is not None:
                return [b for b, _ in self._held.get(cid, [])]
            return [b for entries in self._held.values() for b, _ in entries]


# --------------------------------------------------------------------------
# Stored form, CNI and API views


def to_record(bindings):
    """[Binding] -> JSON-safe list (NetworkSettings.Ports in the record)."""
    return [{'ContainerPort': b.port, 'Protocol': b.proto,
             'HostIp': b.host_ip, 'HostPort': b.host_port} for b in bindings or ()]


def from_record(data):
    """The stored list -> [Binding]; malformed entries are skipped (logged)."""
    out = []
    if not isinstance(data, list):
        return out
    for item in data:
        try:
            port, proto = item['ContainerPort'], item['Protocol']
            host_ip, host_port = item.get('HostIp') or '', item['HostPort']
            if (not isinstance(port, int) or not 0 < port <= 65535
                    or proto not in PROTOCOLS
                    or not isinstance(host_port, int) or not 0 < host_port <= 65535):
                raise ValueError(item)
            if host_ip:
                host_ip = str(ipaddress.ip_address(host_ip))
        except (KeyError, TypeError, ValueError):
            LOG.warning('ignoring a malformed published port record: %r', item)
            continue
        out.append(Binding(port, proto, host_ip, host_port))
    return out


def cni_port_mappings(bindings):
    """The portmap plugin's runtimeConfig.portMappings.

    HostIp '' goes without hostIP: portmap then maps every address of each
    family the container has, which covers the ``::`` twin of such a
    binding (so the twin is not sent again).  An explicit address, wildcard
    or not, goes as hostIP: portmap keeps a mapping only for the container
    addresses of its family and matches ``-d <ip>`` (iptables reads
    ``-d 0.0.0.0`` as any address, checked with the plugin).
    """
    bindings = list(bindings or ())
    all_addresses = {(b.port, b.proto, b.host_port) for b in bindings if b.host_ip == ''}
    out = []
    for b in bindings:
        if b.host_ip == '::' and (b.port, b.proto, b.host_port) in all_addresses:
            continue
        entry = {'hostPort': b.host_port, 'containerPort': b.port, 'protocol': b.proto}
        if b.host_ip:
            entry['hostIP'] = b.host_ip
        out.append(entry)
    return out


def _exposed_lenient(exposed):
    """Exposed (port, proto) pairs, skipping keys that do not parse (views
    must never fail on a stored record)."""
    out = set()
    for key in exposed or ():
        try:
            start, end, proto = parse_port_key(key)
        except errors.EngineError:
            continue
        out.update((p, proto) for p in range(start, end + 1))
    return out


def _port_sort(pp):
    return (pp[0], pp[1])


def settings_view(exposed, bindings):
    """NetworkSettings.Ports as Docker shows it (inspect, `docker port`).

    ``bindings`` None means no network endpoint (not running, or a host,
    none or container: mode): Docker shows ``{}``.  Otherwise every
    exposed port, ``null`` when unpublished.  Keys sort as Go sorts map
    keys (as strings).
    """
    if bindings is None:
        return {}
    view = {'%d/%s' % pp: None for pp in _exposed_lenient(exposed)}
    for b in bindings:
        entry = {'HostIp': b.display_ip, 'HostPort': str(b.host_port)}
        if view.get(b.key) is None:
            view[b.key] = []
        view[b.key].append(entry)
    return {k: view[k] for k in sorted(view)}


def summary_view(exposed, bindings):
    """/containers/json "Ports" (what `docker ps` renders as
    ``0.0.0.0:18080->80/tcp``); [] when ``bindings`` is None."""
    if bindings is None:
        return []
    published = {(b.port, b.proto) for b in bindings}
    rows = [((port, proto), {'PrivatePort': port, 'Type': proto})
            for port, proto in _exposed_lenient(exposed) - published]
    rows += [((b.port, b.proto), {'IP': b.display_ip, 'PrivatePort': b.port,
                                  'PublicPort': b.host_port, 'Type': b.proto})
             for b in bindings]
    rows.sort(key=lambda row: _port_sort(row[0]))
    return [row for _, row in rows]
