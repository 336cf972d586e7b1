"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, as Docker 20.10 writes them.

The engine writes the three files into the container's directory before
``runc create``; the runtime spec bind-mounts them over the image's. Their
content follows Docker 20.10 (libnetwork's ``etchosts`` and ``resolvconf``
packages and ``daemon/links``) byte for byte, so what a process inside sees
is what it would see under Docker:

/etc/hosts (``render_hosts``)
    ``host`` mode without ``--add-host``: a copy of the host's /etc/hosts.
    Every other mode (``host`` with ``--add-host`` included): Docker's six
    localhost/IPv6 lines, then the ``--add-host`` entries in the order given,
    then (default bridge) one line per legacy link
    ``<ip>\\t<alias> <target hostname> <target name>`` (the name left out when it
    equals the alias), then one ``<ip>\\t<fqdn> <hostname>`` line per address
    of the container itself (none in ``none`` mode). Docker's embedded DNS
    is replaced here by lines for the peers on shared user-defined networks
    (``<ip>\\t<name> <aliases…> <short id>``), one per peer IP, sorted by
    address, after everything else: a name the user mapped with
    ``--add-host`` or the container's own hostname still wins, as they win
    over DNS under Docker.

/etc/resolv.conf (``render_resolv``)
    ``host`` mode without DNS options: a copy of the host's file. Otherwise,
    when ``--dns``, ``--dns-search`` or ``--dns-option`` is given: Docker's
    ``resolvconf.Build`` (``search``, ``nameserver`` lines, ``options``), each
    list replacing the host's own, the host's nameservers kept as they are
    when only search or options are given. Without them: the host's file
    with loopback nameservers removed (IPv6 ones too unless the container
    has IPv6), falling back to Google's public resolvers. DNS servers of an
    external (Neutron) endpoint count as ``--dns`` when the user gave none.
    Like Docker, the host's file is /run/systemd/resolve/resolv.conf when
    /etc/resolv.conf names only systemd-resolved's 127.0.0.53.

/etc/hostname
    The container's hostname and a newline (no domain).

``update_hosts`` rewrites /etc/hosts in place (the file is bind-mounted
into a running container: renaming a new file over it would leave the
container with the old inode). As Docker 20.10 does for the entries it adds
and removes at run time (``etchosts.Add``/``Delete`` keep every other line),
lines that a process inside the container added are kept; a restart
(``write``) starts the file afresh, as Docker's ``etchosts.Build`` does.
"""

import dataclasses
import ipaddress
import os
import re
import threading
import weakref

from engine import errors

HOSTS_DEFAULT = ('127.0.0.1\tlocalhost\n'
                 '::1\tlocalhost ip6-localhost ip6-loopback\n'
                 'fe00::0\tip6-localnet\n'
                 'ff00::0\tip6-mcastprefix\n'
                 'ff02::1\tip6-allnodes\n'
                 'ff02::2\tip6-allrouters\n')

# libnetwork/resolvconf: defaultIPv4Dns, defaultIPv6Dns.
DEFAULT_IPV4_DNS = ('nameserver 8.8.8.8', 'nameserver 8.8.4.4')
DEFAULT_IPV6_DNS = ('nameserver 2001:4860:4860::8888', 'nameserver 2001:4860:4860::8844')

HOST_GATEWAY = 'host-gateway'
SYSTEMD_RESOLVED_CONF = '/run/systemd/resolve/resolv.conf'
DEFAULT_HOST_RESOLV = '/etc/resolv.conf'

MODES = ('host', 'none', 'bridge', 'user', 'container')
FILES = ('hostname', 'hosts', 'resolv.conf')

# The regular expressions of libnetwork/resolvconf and resolvconf/dns, with
# Go's RE2 classes spelt out: Go's \s is [\t\n\f\r ] and its \w ASCII only.
_S = r'[\t\n\f\r ]'
_NS = r'[^\t\n\f\r ]'
_IPV4_BLOCK = r'(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9]|)[0-9])'
_IPV4 = r'(?:%s\.){3}%s' % (_IPV4_BLOCK, _IPV4_BLOCK)
_IPV6 = r'(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4})(?:%[0-9A-Za-z_]+)?'
_IP_LOCALHOST = r'(?:(?:127\.(?:[0-9]{1,3}\.){2}[0-9]{1,3})|(?:::1)$)'
_LOCALHOST_NS_RE = re.compile(r'^nameserver%s+%s%s*\n*' % (_S, _IP_LOCALHOST, _S), re.M)
_IPV6_NS_RE = re.compile(r'^nameserver%s+%s%s*\n*' % (_S, _IPV6, _S), re.M)
_NS_RE = re.compile(r'^%s*nameserver%s*((%s)|(%s))%s*$' % (_S, _S, _IPV4, _IPV6, _S))
_SEARCH_RE = re.compile(r'^%s*search%s*((?:%s+%s*)*)$' % (_S, _S, _NS, _S))
_OPTIONS_RE = re.compile(r'^%s*options%s*((?:%s+%s*)*)$' % (_S, _S, _NS, _S))

# docker/cli opts: validateDomain (used for --dns-search).
_ALPHA_RE = re.compile(r'[a-zA-Z]')
_DOMAIN_RE = re.compile(
    r'^((?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))'
    r'(?:\.(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?%s*$' % _S)

# Characters that would split or end a line of /etc/hosts or resolv.conf.
_CONTROL_RE = re.compile(r'[\x00-\x1f\x7f]')
# A name we put on a peer's or a link's line: one field, no comment.
_BAD_NAME_RE = re.compile(r'[\x00-\x20\x7f#]')

# update_hosts keeps the lines a container added to its /etc/hosts; a file
# grown past this (the container can write what it likes) is not read back.
MAX_KEPT_HOSTS = 1 << 20


@dataclasses.dataclass
class EtcContext:
    """What the three files are made of; the caller (containers/networks) fills it.

    mode: 'host', 'none', 'bridge' (the default network), 'user' (user-defined
        or external networks), 'container' (joined: see ``joined_paths``).
    hostname, domainname: Config.Hostname and Config.Domainname.
    addresses: this container's own IP addresses, IPv4 then IPv6 of each
        endpoint, endpoints in connect order (Docker writes one own line each).
    peers: [(ip, [name, alias…, short id])] of the containers on the
        user-defined networks this one shares (one entry per peer IP).
    links: [(alias, ip, target name, target hostname)] legacy links; the
        target hostname is its Config.Hostname (its short id by default).
        On the default bridge they become Docker's link lines; on a
        user-defined network (where Docker's DNS answers link aliases) the
        alias is added to the peer line of that IP.
    extra_hosts: HostConfig.ExtraHosts, "name:ip", host-gateway already
        resolved (``resolve_extra_hosts``).
    dns, dns_search, dns_options: HostConfig.Dns, DnsSearch, DnsOptions.
    network_dns: DNS servers of external endpoints, used when dns is empty.
    ipv6: every network the container joined at start has IPv6 enabled
        (Docker drops the host's IPv6 nameservers at each join of a network
        without IPv6; none mode joins such a network).
    """
    mode: str = 'bridge'
    hostname: str = ''
    domainname: str = ''
    addresses: list = dataclasses.field(default_factory=list)
    peers: list = dataclasses.field(default_factory=list)
    links: list = dataclasses.field(default_factory=list)
    extra_hosts: list = dataclasses.field(default_factory=list)
    dns: list = dataclasses.field(default_factory=list)
    dns_search: list = dataclasses.field(default_factory=list)
    dns_options: list = dataclasses.field(default_factory=list)
    network_dns: list = dataclasses.field(default_factory=list)
    ipv6: bool = False


# -- resolv.conf, as libnetwork/resolvconf reads and writes it ---------------

def _lines(text):
    """resolvconf.getLines: split on newlines, drop what follows a '#'."""
    return [line.split('#', 1)[0] for line in text.split('\n')]


def get_nameservers(text, kind=None):
    """Nameserver addresses (kind 4 or 6 keeps one family only)."""
    out = []
    for line in _lines(text):
        m = _NS_RE.match(line)
        if not m:
            continue
        if kind == 4 and not m.group(2):
            continue
        if kind == 6 and not m.group(3):
            continue
        out.append(m.group(1))
    return out


def get_search_domains(text):
    """The last ``search`` line's domains."""
    domains = []
    for line in _lines(text):
        m = _SEARCH_RE.match(line)
        if m:
            domains = m.group(1).split()
    return domains


def get_options(text):
    """The last ``options`` line's options."""
    options = []
    for line in _lines(text):
        m = _OPTIONS_RE.match(line)
        if m:
            options = m.group(1).split()
    return options


def filter_resolv(text, ipv6):
    """resolvconf.FilterResolvDNS: drop loopback (and, without IPv6, IPv6)
    nameservers; none left -> Google's public resolvers."""
    cleaned = _LOCALHOST_NS_RE.sub('', text)
    if not ipv6:
        cleaned = _IPV6_NS_RE.sub('', cleaned)
    if not get_nameservers(cleaned):
        dns = list(DEFAULT_IPV4_DNS)
        if ipv6:
            dns += DEFAULT_IPV6_DNS
        cleaned += '\n' + '\n'.join(dns)
    return cleaned


def build_resolv(dns, dns_search, dns_options):
    """resolvconf.Build: search line, nameserver lines, options line."""
    out = []
    if dns_search:
        search = ' '.join(dns_search)
        if search.strip(' ') != '.':
            out.append('search %s\n' % search)
    out += ['nameserver %s\n' % server for server in dns]
    if dns_options:
        options = ' '.join(dns_options)
        if options.strip(' '):
            out.append('options %s\n' % options)
    return ''.join(out)


def render_resolv(ctx, host_text):
    """The container's resolv.conf for ``ctx`` given the host's file."""
    dns = list(ctx.dns) or list(ctx.network_dns)
    if dns or ctx.dns_search or ctx.dns_options:
        return build_resolv(dns or get_nameservers(host_text),
                            ctx.dns_search or get_search_domains(host_text),
                            ctx.dns_options or get_options(host_text))
    if ctx.mode == 'host':
        return host_text
    # setupDNS filters with IPv6 assumed; each endpoint join then filters
    # again with its network's IPv6 setting (updateDNS), dropping the IPv6
    # fallback servers too when the network has no IPv6.
    text = filter_resolv(host_text, True)
    if not ctx.ipv6:
        text = filter_resolv(text, False)
    return text


# -- /etc/hosts ---------------------------------------------------------------

def _own_names(hostname, domainname):
    """sandbox.updateHostsFile: '<fqdn> <first label>' when there is a dot."""
    fqdn = '%s.%s' % (hostname, domainname) if domainname else hostname
    parts = fqdn.split('.', 1)
    return '%s %s' % (fqdn, parts[0]) if len(parts) == 2 else hostname


def _unique(names):
    """Names in order, each once; names that would break the line are left
    out (aliases come from API requests of other tenants' containers)."""
    seen = set()
    out = []
    for name in names:
        if name and name not in seen and not _BAD_NAME_RE.search(name):
            seen.add(name)
            out.append(name)
    return out


def _ip_key(ip):
    try:
        addr = ipaddress.ip_address(ip)
        return (addr.version, int(addr), ip)
    except ValueError:
        return (9, 0, ip)


def _peer_lines(ctx):
    names = {}
    for ip, peer_names in ctx.peers:
        names.setdefault(ip, []).extend(peer_names)
    if ctx.mode == 'user':
        for alias, ip, target_name, _ in ctx.links:
            names.setdefault(ip, [target_name.lstrip('/')]).append(alias)
    own = set(ctx.addresses)
    return ['%s\t%s\n' % (ip, ' '.join(_unique(names[ip])))
            for ip in sorted(names, key=_ip_key)
            if ip not in own and _unique(names[ip])]


def render_hosts(ctx, host_text=None):
    """The container's /etc/hosts for ``ctx``; ``host_text``: the host's."""
    if ctx.mode == 'host' and not ctx.extra_hosts:
        return host_text if host_text is not None else HOSTS_DEFAULT
    out = [HOSTS_DEFAULT]
    for entry in ctx.extra_hosts:
        name, ip = entry.split(':', 1)
        if not _CONTROL_RE.search(entry):  # validate() refused these already
            out.append('%s\t%s\n' % (ip, name))
    if ctx.mode == 'bridge':
        for alias, ip, target_name, target_hostname in ctx.links:
            names = [alias, target_hostname]
            target_name = target_name.lstrip('/')
            if alias != target_name:
                names.append(target_name)
            names = [n for n in names if n and not _BAD_NAME_RE.search(n)]
            if names:
                out.append('%s\t%s\n' % (ip, ' '.join(names)))
    if ctx.mode != 'host':
        own = _own_names(ctx.hostname, ctx.domainname)
        out += ['%s\t%s\n' % (ip, own) for ip in ctx.addresses]
        out += _peer_lines(ctx)
    return ''.join(out)


def render_hostname(ctx):
    return ctx.hostname + '\n'


# -- the files -----------------------------------------------------------------

def _read(path):
    try:
        with open(path, errors='surrogateescape') as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _write_in_place(path, text, mode=0o644):
    """Rewrite ``path`` keeping its inode (a bind mount of it stays live)."""
    data = text.encode(errors='surrogateescape')
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


class EtcFiles:
    """Writes a container's hostname, hosts and resolv.conf (one per engine)."""

    GENERATED = '.hosts.generated'  # what we last wrote, to tell the container's own lines

    def __init__(self, host_resolv=DEFAULT_HOST_RESOLV, host_hosts='/etc/hosts',
                 resolved_resolv=SYSTEMD_RESOLVED_CONF):
        self.host_resolv = host_resolv
        self.host_hosts = host_hosts
        self.resolved_resolv = resolved_resolv
        self._locks = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()

    def _lock(self, path):
        with self._locks_guard:
            lock = self._locks.get(path)
            if lock is None:
                lock = self._locks[path] = threading.Lock()
            return lock

    def host_resolv_text(self, for_copy=False):
        """The host's resolv.conf as Docker picks it (resolvconf.Path).

        ``for_copy``: host mode without DNS options copies /etc/resolv.conf
        itself (the container shares the host's loopback resolver)."""
        text = _read(self.host_resolv)
        if (not for_copy and self.resolved_resolv and text is not None
                and get_nameservers(text) == ['127.0.0.53']):
            alt = _read(self.resolved_resolv)
            if alt is not None:
                return alt
        return text or ''

    def render(self, ctx):
        """{file name: content} for ``ctx``."""
        if ctx.mode not in MODES or ctx.mode == 'container':
            raise ValueError('EtcFiles.render: mode %r has no files of its own' % ctx.mode)
        host_copy = ctx.mode == 'host' and not (ctx.dns or ctx.network_dns
                                               or ctx.dns_search or ctx.dns_options)
        return {
            'hostname': render_hostname(ctx),
            'hosts': render_hosts(ctx, _read(self.host_hosts) if ctx.mode == 'host' else None),
            'resolv.conf': render_resolv(ctx, self.host_resolv_text(for_copy=host_copy)),
        }

    def write(self, container_dir, ctx):
        """Write the three files into ``container_dir``; return {name: path}.

        Files are rewritten in place when they exist: a container joined to
        this one's network (``container:`` mode) bind-mounts them too."""
        out = {}
        for name, text in self.render(ctx).items():
            path = os.path.join(container_dir, name)
            with self._lock(path):
                _write_in_place(path, text)
                if name == 'hosts':
                    _write_in_place(os.path.join(container_dir, self.GENERATED), text)
            out[name] = path
        return out

    def update_hosts(self, container_dir, ctx):
        """Rewrite /etc/hosts in place for a new ``ctx`` (peers joined or left).

        Lines a process inside the container added since our last write stay
        (appended after ours), as Docker's run-time updates keep them.
        Returns the path, or None when the container has no hosts file yet."""
        path = os.path.join(container_dir, 'hosts')
        generated_path = os.path.join(container_dir, self.GENERATED)
        text = render_hosts(ctx, _read(self.host_hosts) if ctx.mode == 'host' else None)
        with self._lock(path):
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                return None  # never started: write() will make it
            with os.fdopen(fd, 'r+', errors='surrogateescape') as f:
                current = f.read(MAX_KEPT_HOSTS + 1)
                previous = _read(generated_path)
                if len(current) > MAX_KEPT_HOSTS or previous is None:
                    extra = []
                else:
                    extra = _foreign_lines(current, previous)
                ours = set(_split_lines(text))
                new = text + ''.join(line for line in extra if line not in ours)
                f.seek(0)
                f.write(new)
                f.truncate()
            _write_in_place(generated_path, text)
        return path


def _split_lines(text):
    """Lines, each ending in a newline (only '\n' ends a line in these files)."""
    if not text:
        return []
    return [line + '\n' for line in text.split('\n')[:-1 if text.endswith('\n') else None]]


def _foreign_lines(current, generated):
    """Lines of ``current`` that are not (as many times) in ``generated``."""
    budget = {}
    for line in _split_lines(generated):
        budget[line] = budget.get(line, 0) + 1
    out = []
    for line in _split_lines(current):
        if budget.get(line):
            budget[line] -= 1
        elif line.strip():
            out.append(line)
    return out


def joined_paths(joined_container_dir):
    """The files a ``container:<id>`` container uses: the joined one's (as Docker)."""
    return {name: os.path.join(joined_container_dir, name) for name in FILES}


def resolve_extra_hosts(extra_hosts, gateway):
    """Replace ``host-gateway`` by ``gateway`` (the default bridge's address).

    No gateway known -> 400 with Docker's message."""
    out = []
    for entry in extra_hosts or ():
        name, ip = entry.split(':', 1)
        if ip == HOST_GATEWAY:
            if not gateway:
                raise errors.InvalidArgument('unable to derive the IP value for host-gateway')
            ip = str(gateway)
        out.append('%s:%s' % (name, ip))
    return out


# -- validation (at create) ---------------------------------------------------

def _is_ip(value):
    """Go's net.ParseIP: IPv4 or IPv6, no zone, surrounding spaces ignored."""
    value = value.strip()
    if '%' in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_str_list(host_config, field):
    values = host_config.get(field) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise errors.InvalidArgument('HostConfig.%s must be a list of strings' % field)
    return values


def validate_extra_host(value):
    """opts.ValidateExtraHost of Docker 20.10: "name:ip", split on the first colon."""
    parts = value.split(':', 1)
    if len(parts) != 2 or not parts[0] or _CONTROL_RE.search(parts[0]):
        raise errors.InvalidArgument('bad format for add-host: "%s"' % value)
    if parts[1] != HOST_GATEWAY and not _is_ip(parts[1]):
        raise errors.InvalidArgument('invalid IP address in add-host: "%s"' % parts[1])
    return value


def validate_dns_search(value):
    """docker/cli opts.ValidateDNSSearch: a domain name shorter than 255 or '.'."""
    if value.strip(' ') == '.':
        return value
    m = _DOMAIN_RE.match(value) if _ALPHA_RE.search(value) else None
    if m is None or len(m.group(1)) >= 255:
        raise errors.InvalidArgument('HostConfig.DnsSearch: %s is not a valid domain' % value)
    return value


def parse_link(value):
    """opts.ParseLink: 'name', 'name:alias' or the stored '/name:/parent/alias'
    -> (name, alias); Docker's messages."""
    if not value:
        raise errors.InvalidArgument('empty string specified for links')
    if _CONTROL_RE.search(value):
        raise errors.InvalidArgument('bad format for links: %s' % value)
    parts = value.split(':')
    if len(parts) > 2:
        raise errors.InvalidArgument('bad format for links: %s' % value)
    if len(parts) == 1:
        return value, value
    if parts[0].startswith('/'):
        return parts[0][1:], parts[1].rsplit('/', 1)[-1]
    return parts[0], parts[1]


def validate(config, host_config):
    """Check Dns, DnsSearch, DnsOptions, ExtraHosts, Links, Hostname at create.

    Docker 20.10's daemon checks ExtraHosts and Links with these messages and
    the network-mode conflicts; its CLI checks Dns and DnsSearch (the daemon
    writes whatever it gets): we check them too, with the CLI's wording,
    and refuse control characters anywhere they would land in a file.
    Returns nothing; raises errors.InvalidArgument (400)."""
    config = config or {}
    host_config = host_config or {}
    mode = host_config.get('NetworkMode') or 'default'
    for field in ('Hostname', 'Domainname'):
        value = config.get(field) or ''
        if isinstance(value, str) and _CONTROL_RE.search(value):
            raise errors.InvalidArgument('Config.%s %r contains a control character'
                                         % (field, value))
    for server in _check_str_list(host_config, 'Dns'):
        if not _is_ip(server):
            raise errors.InvalidArgument('HostConfig.Dns: %s is not an ip address' % server)
    for domain in _check_str_list(host_config, 'DnsSearch'):
        validate_dns_search(domain)
    for option in _check_str_list(host_config, 'DnsOptions'):
        if not option.strip() or _CONTROL_RE.search(option):
            raise errors.InvalidArgument('HostConfig.DnsOptions: invalid option %r' % option)
    for entry in _check_str_list(host_config, 'ExtraHosts'):
        validate_extra_host(entry)
    links = _check_str_list(host_config, 'Links')
    for link in links:
        parse_link(link)
    # runconfig.validateNetContainerMode / registerLinks: these conflicts.
    if mode.startswith('container:'):
        if config.get('Hostname'):
            raise errors.InvalidArgument('conflicting options: hostname and the network mode')
        if links:
            raise errors.InvalidArgument(
                "conflicting options: container type network can't be used with links. "
                'This would result in undefined behavior')
        if host_config.get('Dns'):
            raise errors.InvalidArgument('conflicting options: dns and the network mode')
        if host_config.get('ExtraHosts'):
            raise errors.InvalidArgument(
                'conflicting options: custom host-to-IP mapping and the network mode')
    if mode == 'host' and links:
        raise errors.InvalidArgument(
            "conflicting options: host type networking can't be used with links. "
            'This would result in undefined behavior')


# -- legacy link environment (daemon/links) ------------------------------------

@dataclasses.dataclass
class LinkTarget:
    """The linked container, as ``link_env`` needs it.

    name: its name without the leading '/' (Docker's link name is
        /<parent name>/<alias>, see ``link_env``).
    ip: its address on the default bridge.
    exposed_ports: its Config.ExposedPorts keys ('80/tcp', '53/udp', '8080').
    env: its Config.Env ('KEY=value' strings).
    hostname: its Config.Hostname (for the /etc/hosts link line).
    """
    name: str
    ip: str
    exposed_ports: list = dataclasses.field(default_factory=list)
    env: list = dataclasses.field(default_factory=list)
    hostname: str = ''


def _port(key):
    number, _, proto = str(key).partition('/')
    return int(number), (proto or 'tcp').lower()


def _sorted_ports(ports):
    # nat.Sort with links' order: by number, tcp first at equal numbers.
    return sorted({_port(p) for p in ports}, key=lambda p: (p[0], p[1] != 'tcp', p[1]))


def _next_contiguous(ports, value, index):
    if index + 1 == len(ports):
        return index
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def link_env(alias, target, parent_name=None):
    """The environment variables Docker 20.10 sets for ``--link target:alias``.

    ``alias`` is the link alias, with ``parent_name`` the linking container's
    name (with or without its '/'); or Docker's full link name
    '/parent/alias' with no parent_name. ``target``: a LinkTarget. Returns a
    list of 'KEY=value' in Docker's order; the caller puts them after PATH,
    HOSTNAME (and TERM) and before the container's own Config.Env, which
    overrides them (container.CreateDaemonEnvironment); keys are unique."""
    if parent_name is None:
        if not alias.startswith('/'):
            raise ValueError('link_env needs the parent name or a /parent/alias link name')
        name = alias
    else:
        name = '/%s/%s' % (parent_name.strip('/'), alias)
    prefix = name.rsplit('/', 1)[-1].upper().replace('-', '_')
    ip = target.ip
    ports = _sorted_ports(target.exposed_ports)
    env = []
    if ports:
        env.append('%s_PORT=%s://%s:%d' % (prefix, ports[0][1], ip, ports[0][0]))
    i = 0
    while i < len(ports):
        number, proto = ports[i]
        j = _next_contiguous(ports, number, i)
        if j > i + 1:
            base = '%s_PORT_%d_%s' % (prefix, number, proto.upper())
            env += ['%s_START=%s://%s:%d' % (base, proto, ip, number),
                    '%s_ADDR=%s' % (base, ip),
                    '%s_PROTO=%s' % (base, proto),
                    '%s_PORT_START=%d' % (base, number)]
            end_number, end_proto = ports[j]
            end = '%s_PORT_%d_%s' % (prefix, number, end_proto.upper())
            env += ['%s_END=%s://%s:%d' % (end, end_proto, ip, end_number),
                    '%s_PORT_END=%d' % (end, end_number)]
            i = j + 1
        else:
            i += 1
    for number, proto in ports:
        base = '%s_PORT_%d_%s' % (prefix, number, proto.upper())
        env += ['%s=%s://%s:%d' % (base, proto, ip, number),
                '%s_ADDR=%s' % (base, ip),
                '%s_PORT=%d' % (base, number),
                '%s_PROTO=%s' % (base, proto)]
    env.append('%s_NAME=%s' % (prefix, name))
    for item in target.env or ():
        key, sep, value = item.partition('=')
        if not sep or key in ('HOME', 'PATH'):
            continue  # Docker skips these two, added by builds
        env.append('%s_ENV_%s=%s' % (prefix, key, value))
    # A port range repeats the _ADDR and _PROTO of its first port; runc sets
    # the list with setenv, so a repeated key keeps its first place and its
    # last value. That is what a process under Docker sees: do it here so
    # the result does not depend on the runtime.
    merged = {}
    for item in env:
        key, _, value = item.partition('=')
        merged[key] = value
    return ['%s=%s' % item for item in merged.items()]
