"""``DockerInc::Docker::Container``: a container on a novadocker engine.

Template-compatible with Heat's retired contrib plugin (heat_docker): the
same property and attribute names and meanings, with these differences a
template author may notice:

* host configuration (ports, binds, links, limits, capabilities...) goes in
  at create time, as every Docker API since 1.24 requires (the contrib
  plugin passed it at start and broke there);
* a missing image is pulled first; an error inside the pull stream fails
  the resource with the registry's message;
* a container that exits non-zero before it is seen running fails the
  resource with its logs; one that exits 0 (a one-shot job) completes;
* suspend pauses the container (its processes frozen, memory kept) and
  resume unpauses it; the contrib plugin stopped and restarted it;
* memory, cpu_shares and restart_policy change in place on the running
  container; any other change replaces it;
* ``networks`` joins user-defined networks (DockerInc::Docker::Network or
  any engine network), with aliases.
"""

import re
import time

from oslo_config import cfg

from heat.common import exception
from heat.common.i18n import _
from heat.engine import attributes
from heat.engine import constraints
from heat.engine import properties
from heat.engine import resource
from heat.engine import support

from heat_plugin import client as plugin_client
from novadocker import client as engine_client

# Linux capabilities Docker accepts in CapAdd/CapDrop, without the CAP_
# prefix (as the contrib plugin spelt them), plus ALL.
CAPABILITIES = (
    'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF',
    'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH',
    'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE',
    'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN',
    'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP',
    'SETGID', 'SETPCAP', 'SETUID', 'SYSLOG', 'SYS_ADMIN', 'SYS_BOOT',
    'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE',
    'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM',
    'ALL',
)

RESTART_POLICIES = ('', 'no', 'always', 'on-failure', 'unless-stopped')

# Docker's reference grammar (distribution/reference), enough to refuse a
# malformed image at validation instead of at pull time.
_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_DOMAIN = r'(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?' \
          r'(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)'
IMAGE_RE = re.compile(
    r'^(?:%(d)s/)?%(c)s(?:/%(c)s)*(?::[\w][\w.-]{0,127})?'
    r'(?:@sha256:[0-9a-f]{64})?$' % {'d': _DOMAIN, 'c': _COMPONENT})
PORT_SPEC_RE = re.compile(r'^([0-9]{1,5})(?:/(tcp|udp|sctp))?$')


def split_image(ref):
    """(fromImage, tag) for POST /images/create: a digest reference is
    pulled whole; a reference without tag means :latest."""
    if '@' in ref:
        return ref, None
    name, sep, tag = ref.rpartition(':')
    if sep and '/' not in tag:
        return name, tag
    return ref, 'latest'


def port_key(spec):
    """'80' / 80 / '53/udp' -> '80/tcp' / '53/udp'; ValueError if bad."""
    m = PORT_SPEC_RE.match(str(spec).strip())
    if not m or not 0 < int(m.group(1)) < 65536:
        raise ValueError(_('"%s" is not a port: use PORT or PORT/PROTOCOL '
                           '(tcp, udp, sctp), PORT from 1 to 65535') % spec)
    return '%d/%s' % (int(m.group(1)), m.group(2) or 'tcp')


def _host_binding(value, key):
    """One host side of port_bindings: 8080, '8080', '127.0.0.1:8080',
    '127.0.0.1:' (any port on that address), or {HostIp, HostPort}."""
    if isinstance(value, dict):
        unknown = set(value) - {'HostIp', 'HostPort'}
        if unknown:
            raise ValueError(_('port_bindings["%(k)s"]: unknown keys %(u)s '
                               '(HostIp, HostPort)') %
                             {'k': key, 'u': ', '.join(sorted(unknown))})
        ip, port = value.get('HostIp') or '', value.get('HostPort')
    elif isinstance(value, (int, str)) and not isinstance(value, bool):
        text = str(value)
        ip, _sep, port = text.rpartition(':')
    else:
        raise ValueError(_('port_bindings["%s"]: a host port, "IP:PORT" or '
                           '{HostIp, HostPort} expected') % key)
    port = '' if port is None else str(port)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(_('port_bindings["%(k)s"]: host port "%(p)s" is not '
                           'a port from 1 to 65535') % {'k': key, 'p': port})
    return {'HostIp': ip, 'HostPort': port}


def port_bindings(bindings):
    """The port_bindings property as Docker's HostConfig.PortBindings."""
    out = {}
    for spec, value in (bindings or {}).items():
        key = port_key(spec)
        values = value if isinstance(value, list) else [value]
        out[key] = [_host_binding(v, spec) for v in values]
    return out


def binds(volumes):
    """The volumes property: ``{SOURCE: TARGET}`` binds (SOURCE a host path
    or a volume name, TARGET ``/path`` or ``/path:ro``, or ``{bind: /path,
    ro: true}`` as docker-py spelt it), or ``{/path: {}}`` for an anonymous
    volume.  Returns (Binds, Volumes)."""
    out_binds, anonymous = [], {}
    for source, target in (volumes or {}).items():
        if target in ({}, None, ''):
            if not source.startswith('/'):
                raise ValueError(_('volumes["%s"]: an anonymous volume needs '
                                   'an absolute container path') % source)
            anonymous[source] = {}
            continue
        if isinstance(target, dict):
            path = target.get('bind')
            mode = 'ro' if target.get('ro') else 'rw'
        else:
            path, _sep, mode = str(target).partition(':')
            mode = mode or 'rw'
        if not path or not path.startswith('/'):
            raise ValueError(_('volumes["%s"]: the container path must be '
                             'absolute') % source)
        if mode not in ('ro', 'rw'):
            raise ValueError(_('volumes["%(s)s"]: mode "%(m)s" (ro or rw)') %
                             {'s': source, 'm': mode})
        out_binds.append('%s:%s:%s' % (source, path, mode))
    return out_binds, anonymous


def demux_logs(raw, tty):
    """A logs answer as text: a tty container's is the raw stream; the
    others are Docker's multiplexed frames (8-byte header each)."""
    if tty:
        return raw.decode('utf-8', 'replace')
    out, pos = [], 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4:pos + 8], 'big')
        out.append(raw[pos + 8:pos + 8 + size])
        pos += 8 + size
    return b''.join(out).decode('utf-8', 'replace')


class DockerContainer(resource.Resource):
    """A container, created, started and removed through the engine API."""

    support_status = support.SupportStatus(version='27.0.0')

    PROPERTIES = (
        DOCKER_ENDPOINT, HOSTNAME, USER, MEMORY, PORT_SPECS, PRIVILEGED, TTY,
        OPEN_STDIN, STDIN_ONCE, ENV, CMD, DNS, IMAGE, VOLUMES, VOLUMES_FROM,
        PORT_BINDINGS, LINKS, NAME, RESTART_POLICY, CAP_ADD, CAP_DROP,
        READ_ONLY, CPU_SHARES, DEVICES, CPU_SET, NETWORKS,
    ) = (
        'docker_endpoint', 'hostname', 'user', 'memory', 'port_specs',
        'privileged', 'tty', 'open_stdin', 'stdin_once', 'env', 'cmd', 'dns',
        'image', 'volumes', 'volumes_from', 'port_bindings', 'links', 'name',
        'restart_policy', 'cap_add', 'cap_drop', 'read_only', 'cpu_shares',
        'devices', 'cpu_set', 'networks',
    )

    _RESTART_POLICY_KEYS = (POLICY_NAME, POLICY_MAXIMUM_RETRY_COUNT) = (
        'Name', 'MaximumRetryCount')
    _DEVICE_KEYS = (PATH_ON_HOST, PATH_IN_CONTAINER, PERMISSIONS) = (
        'path_on_host', 'path_in_container', 'permissions')
    _NETWORK_KEYS = (NETWORK, ALIASES) = ('network', 'aliases')

    ATTRIBUTES = (
        INFO, NETWORK_INFO, NETWORK_IP, NETWORK_GATEWAY, NETWORK_TCP_PORTS,
        NETWORK_UDP_PORTS, LOGS, LOGS_HEAD, LOGS_TAIL,
    ) = (
        'info', 'network_info', 'network_ip', 'network_gateway',
        'network_tcp_ports', 'network_udp_ports', 'logs', 'logs_head',
        'logs_tail',
    )

    properties_schema = {
        DOCKER_ENDPOINT: properties.Schema(
            properties.Schema.STRING,
            _('Engine API endpoint (unix:///path/to.sock or https://host:port);'
              ' by default [novadocker] engine_url from heat.conf.'),
            default=None),
        HOSTNAME: properties.Schema(
            properties.Schema.STRING, _('Hostname of the container.'),
            default=''),
        USER: properties.Schema(
            properties.Schema.STRING,
            _('User (name or UID[:GID]) the command runs as.'), default=''),
        MEMORY: properties.Schema(
            properties.Schema.INTEGER,
            _('Memory limit in bytes; 0 for none. Changes in place.'),
            default=0, constraints=[constraints.Range(min=0)],
            update_allowed=True),
        PORT_SPECS: properties.Schema(
            properties.Schema.LIST,
            _('Ports the container exposes: PORT or PORT/PROTOCOL.')),
        PRIVILEGED: properties.Schema(
            properties.Schema.BOOLEAN,
            _('Run the container privileged.'), default=False),
        TTY: properties.Schema(
            properties.Schema.BOOLEAN, _('Allocate a pseudo-tty.'),
            default=False),
        OPEN_STDIN: properties.Schema(
            properties.Schema.BOOLEAN, _('Keep stdin open.'), default=False),
        STDIN_ONCE: properties.Schema(
            properties.Schema.BOOLEAN,
            _('Close stdin after the first attached client detaches.'),
            default=False),
        ENV: properties.Schema(
            properties.Schema.LIST,
            _('Environment variables, each "NAME=value".')),
        CMD: properties.Schema(
            properties.Schema.LIST,
            _('Command and arguments; empty for the image\'s own.'),
            default=[]),
        DNS: properties.Schema(
            properties.Schema.LIST, _('DNS server addresses.')),
        IMAGE: properties.Schema(
            properties.Schema.STRING,
            _('Image reference (pulled when the engine lacks it).'),
            required=True),
        VOLUMES: properties.Schema(
            properties.Schema.MAP,
            _('Binds {SOURCE: "/path[:ro]"} (SOURCE a host path or volume '
              'name) or anonymous volumes {"/path": {}}.'),
            default={}),
        VOLUMES_FROM: properties.Schema(
            properties.Schema.LIST,
            _('Containers whose volumes to mount too.'), default=[]),
        PORT_BINDINGS: properties.Schema(
            properties.Schema.MAP,
            _('Published ports: {"PORT[/PROTOCOL]": HOSTPORT | "IP:PORT" | '
              '{HostIp, HostPort} | a list of those}.')),
        LINKS: properties.Schema(
            properties.Schema.MAP,
            _('Links to other containers: {NAME: ALIAS}.')),
        NAME: properties.Schema(
            properties.Schema.STRING,
            _('Container name; by default the resource\'s physical name.')),
        RESTART_POLICY: properties.Schema(
            properties.Schema.MAP,
            _('What the engine does when the container exits. Changes in '
              'place.'),
            schema={
                POLICY_NAME: properties.Schema(
                    properties.Schema.STRING, _('Policy name.'), default='',
                    constraints=[constraints.AllowedValues(
                        RESTART_POLICIES)]),
                POLICY_MAXIMUM_RETRY_COUNT: properties.Schema(
                    properties.Schema.INTEGER,
                    _('Restarts before giving up (on-failure only).'),
                    default=0, constraints=[constraints.Range(min=0)]),
            },
            default={}, update_allowed=True),
        CAP_ADD: properties.Schema(
            properties.Schema.LIST,
            _('Capabilities to add (without the CAP_ prefix).'),
            schema=properties.Schema(
                properties.Schema.STRING, _('A capability.'),
                constraints=[constraints.AllowedValues(CAPABILITIES)]),
            default=[]),
        CAP_DROP: properties.Schema(
            properties.Schema.LIST,
            _('Capabilities to drop (without the CAP_ prefix).'),
            schema=properties.Schema(
                properties.Schema.STRING, _('A capability.'),
                constraints=[constraints.AllowedValues(CAPABILITIES)]),
            default=[]),
        READ_ONLY: properties.Schema(
            properties.Schema.BOOLEAN,
            _('Mount the root file system read-only.'), default=False),
        CPU_SHARES: properties.Schema(
            properties.Schema.INTEGER,
            _('Relative CPU weight; 0 for the default. Changes in place.'),
            default=0, constraints=[constraints.Range(min=0)],
            update_allowed=True),
        DEVICES: properties.Schema(
            properties.Schema.LIST,
            _('Host devices to give the container.'),
            schema=properties.Schema(
                properties.Schema.MAP,
                schema={
                    PATH_ON_HOST: properties.Schema(
                        properties.Schema.STRING, _('Device on the host.'),
                        required=True),
                    PATH_IN_CONTAINER: properties.Schema(
                        properties.Schema.STRING,
                        _('Path in the container; the host path if empty.'),
                        default=''),
                    PERMISSIONS: properties.Schema(
                        properties.Schema.STRING, _('cgroup permissions.'),
                        default='rwm',
                        constraints=[constraints.AllowedValues(
                            ['r', 'w', 'm', 'rw', 'rm', 'wm', 'rwm'])]),
                }),
            default=[]),
        CPU_SET: properties.Schema(
            properties.Schema.STRING,
            _('CPUs the container may run on (e.g. "0-1" or "0,1").')),
        NETWORKS: properties.Schema(
            properties.Schema.LIST,
            _('User-defined networks to join, the first at create.'),
            schema=properties.Schema(
                properties.Schema.MAP,
                schema={
                    NETWORK: properties.Schema(
                        properties.Schema.STRING,
                        _('Network name or id.'), required=True),
                    ALIASES: properties.Schema(
                        properties.Schema.LIST,
                        _('Names the container answers to there.'),
                        default=[]),
                }),
            default=[]),
    }

    attributes_schema = {
        INFO: attributes.Schema(
            _('The container\'s inspect document.'),
            type=attributes.Schema.MAP),
        NETWORK_INFO: attributes.Schema(
            _('Its NetworkSettings.'), type=attributes.Schema.MAP),
        NETWORK_IP: attributes.Schema(
            _('Its IP address (default bridge, else its first network).'),
            type=attributes.Schema.STRING),
        NETWORK_GATEWAY: attributes.Schema(
            _('Its gateway address.'), type=attributes.Schema.STRING),
        NETWORK_TCP_PORTS: attributes.Schema(
            _('Published TCP host ports, comma-separated.'),
            type=attributes.Schema.STRING),
        NETWORK_UDP_PORTS: attributes.Schema(
            _('Published UDP host ports, comma-separated.'),
            type=attributes.Schema.STRING),
        LOGS: attributes.Schema(
            _('Its output (stdout and stderr).'),
            type=attributes.Schema.STRING),
        LOGS_HEAD: attributes.Schema(
            _('The first line of its output.'),
            type=attributes.Schema.STRING),
        LOGS_TAIL: attributes.Schema(
            _('The last line of its output.'), type=attributes.Schema.STRING),
    }

    # -- engine access ---------------------------------------------------

    def engine(self):
        return plugin_client.resource_engine(self)

    def _container_name(self):
        return self.properties[self.NAME] or self.physical_resource_name()

    # -- validation ------------------------------------------------------

    def validate(self):
        super().validate()
        props = self.properties
        endpoint = props[self.DOCKER_ENDPOINT]
        if endpoint:
            try:
                plugin_client.engine_for(endpoint).close()
            except ValueError as exc:
                raise exception.StackValidationFailed(
                    message=_('docker_endpoint: %s') % exc)
        image = props[self.IMAGE]
        if image is not None and not IMAGE_RE.match(image):
            raise exception.StackValidationFailed(
                message=_('image "%s" is not a valid image reference '
                          '(e.g. busybox, busybox:1.36, '
                          'registry:5000/team/app@sha256:<64 hex>)') % image)
        try:
            for spec in props[self.PORT_SPECS] or []:
                port_key(spec)
            port_bindings(props[self.PORT_BINDINGS])
            binds(props[self.VOLUMES])
        except ValueError as exc:
            raise exception.StackValidationFailed(message=str(exc))
        name = props[self.NAME]
        if name and not re.match(r'^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$', name):
            raise exception.StackValidationFailed(
                message=_('name "%s": letters, digits, "_", "." and "-" only, '
                          'starting with a letter or digit') % name)
        for entry in props[self.ENV] or []:
            if not isinstance(entry, str) or entry.startswith('='):
                raise exception.StackValidationFailed(
                    message=_('env: "%s" is not NAME=value') % entry)
        policy = props[self.RESTART_POLICY] or {}
        if (policy.get(self.POLICY_MAXIMUM_RETRY_COUNT) and
                policy.get(self.POLICY_NAME) != 'on-failure'):
            raise exception.StackValidationFailed(
                message=_('restart_policy: MaximumRetryCount applies only to '
                          'Name on-failure'))
        both = set(props[self.CAP_ADD]) & set(props[self.CAP_DROP])
        if both:
            raise exception.StackValidationFailed(
                message=_('cap_add and cap_drop both name %s') %
                ', '.join(sorted(both)))
        if props[self.NETWORKS] and props[self.LINKS]:
            # The engine, as Docker, links only on the default bridge.
            raise exception.ResourcePropertyConflict(self.NETWORKS,
                                                     self.LINKS)

    # -- the create body -------------------------------------------------

    def _restart_policy(self, policy):
        policy = policy or {}
        name = policy.get(self.POLICY_NAME) or 'no'
        return {'Name': name,
                'MaximumRetryCount': policy.get(
                    self.POLICY_MAXIMUM_RETRY_COUNT) or 0}

    def create_body(self):
        """POST /containers/create body: config plus HostConfig (and the
        first network), as Docker API 1.24+ wants them."""
        props = self.properties
        bindings = port_bindings(props[self.PORT_BINDINGS])
        exposed = {port_key(s): {} for s in props[self.PORT_SPECS] or []}
        exposed.update({k: {} for k in bindings})
        bind_list, anonymous = binds(props[self.VOLUMES])
        host = {
            'Binds': bind_list or None,
            'PortBindings': bindings or None,
            'Links': ['%s:%s' % (n, a) for n, a in
                      (props[self.LINKS] or {}).items()] or None,
            'Dns': props[self.DNS] or None,
            'VolumesFrom': props[self.VOLUMES_FROM] or None,
            'Privileged': props[self.PRIVILEGED],
            'ReadonlyRootfs': props[self.READ_ONLY],
            'CapAdd': props[self.CAP_ADD] or None,
            'CapDrop': props[self.CAP_DROP] or None,
            'Memory': props[self.MEMORY] or 0,
            'CpuShares': props[self.CPU_SHARES] or 0,
            'CpusetCpus': props[self.CPU_SET] or '',
            'Devices': [{'PathOnHost': d[self.PATH_ON_HOST],
                         'PathInContainer': (d[self.PATH_IN_CONTAINER] or
                                             d[self.PATH_ON_HOST]),
                         'CgroupPermissions': d[self.PERMISSIONS]}
                        for d in props[self.DEVICES]] or None,
            'RestartPolicy': self._restart_policy(props[self.RESTART_POLICY]),
        }
        body = {
            'Image': props[self.IMAGE],
            'Hostname': props[self.HOSTNAME] or '',
            'User': props[self.USER] or '',
            'Cmd': props[self.CMD] or None,
            'Env': props[self.ENV] or None,
            'Tty': props[self.TTY],
            'OpenStdin': props[self.OPEN_STDIN],
            'StdinOnce': props[self.STDIN_ONCE],
            'AttachStdin': False,
            'ExposedPorts': exposed or None,
            'Volumes': anonymous or None,
            'HostConfig': {k: v for k, v in host.items() if v is not None},
        }
        networks = props[self.NETWORKS]
        if networks:
            first = networks[0]
            body['HostConfig']['NetworkMode'] = first[self.NETWORK]
            body['NetworkingConfig'] = {'EndpointsConfig': {
                first[self.NETWORK]: {'Aliases': first[self.ALIASES] or None}}}
        return {k: v for k, v in body.items() if v is not None}

    # -- create ----------------------------------------------------------

    def _ensure_image(self, eng, image):
        try:
            eng.inspect_image(image)
            return
        except engine_client.EngineNotFound:
            pass
        from_image, tag = split_image(image)
        try:
            eng.stream_json('POST', '/images/create',
                            params={'fromImage': from_image, 'tag': tag},
                            timeout=max(eng.timeout, 600))
        except engine_client.EngineClientError as exc:
            raise exception.Error(_('could not pull image %(i)s: %(e)s') %
                                  {'i': image, 'e': exc.explanation})

    def handle_create(self):
        eng = self.engine()
        props = self.properties
        self._ensure_image(eng, props[self.IMAGE])
        try:
            created = eng.post('/containers/create',
                               params={'name': self._container_name()},
                               json_body=self.create_body())
        except engine_client.EngineClientError as exc:
            raise exception.Error(_('the engine refused the container: %s') %
                                  exc.explanation)
        container_id = created['Id']
        # Recorded before start: a failed start still leaves an id for
        # Heat's delete to remove.
        self.resource_id_set(container_id)
        try:
            for extra in props[self.NETWORKS][1:]:
                eng.post('/networks/%s/connect' % extra[self.NETWORK],
                         json_body={'Container': container_id,
                                    'EndpointConfig': {
                                        'Aliases': extra[self.ALIASES] or
                                        None}})
            eng.post('/containers/%s/start' % container_id)
        except engine_client.EngineClientError as exc:
            raise exception.Error(_('the engine could not start the '
                                    'container: %s') % exc.explanation)
        return container_id

    def _inspect(self, container_id=None):
        return self.engine().inspect_container(container_id or
                                               self.resource_id)

    def _fail_with_logs(self, state, container_id):
        logs = self._logs(container_id, tail=20).strip()
        raise exception.ResourceInError(
            resource_status=state.get('Status', 'exited'),
            status_reason=_('the container exited with code %(c)s; the end of '
                            'its logs: %(l)s') %
            {'c': state.get('ExitCode'), 'l': logs or _('(no output)')})

    def check_create_complete(self, container_id):
        info = self._inspect(container_id)
        state = info['State']
        if info.get('RestartCount') and state.get('ExitCode'):
            # Under a restart policy a failing command does not stay
            # exited: the engine restarts it.  A restart before the
            # resource is even complete is a crash loop.
            self._fail_with_logs(state, container_id)
        if state.get('Running') and not state.get('Restarting'):
            # Running once is not enough: a command that fails at once is
            # still "running" for a moment.  Complete once it has kept
            # running for startup_grace seconds since we first saw it.
            grace = cfg.CONF.novadocker.startup_grace
            now = time.monotonic()
            seen = getattr(self, '_first_seen_running', None)
            if seen is None or seen[0] != container_id:
                seen = self._first_seen_running = (container_id, now)
            remaining = seen[1] + grace - now
            if remaining <= 0:
                return True
            # Heat's scheduler waits between checks in service; under test
            # it does not, so do not spin on the engine.
            time.sleep(min(remaining, 0.1))
            return False
        if state.get('ExitCode'):
            self._fail_with_logs(state, container_id)
        # Exited 0 before we looked: a one-shot job that did its work.
        return state.get('Status') == 'exited'

    # -- delete ----------------------------------------------------------

    def handle_delete(self):
        if self.resource_id is None:
            return None
        eng = self.engine()
        try:
            if eng.inspect_container(self.resource_id)['State'].get('Paused'):
                # A suspended container is frozen: thaw it so that it can
                # act on the stop signal instead of waiting out the timeout.
                eng.post('/containers/%s/unpause' % self.resource_id)
            eng.post('/containers/%s/stop' % self.resource_id,
                     params={'t': 10}, timeout=max(eng.timeout, 30))
            eng.delete('/containers/%s' % self.resource_id,
                       params={'v': True, 'force': True})
        except engine_client.EngineNotFound:
            pass    # already gone counts as deleted
        return self.resource_id

    def check_delete_complete(self, container_id):
        if container_id is None:
            return True
        try:
            self._inspect(container_id)
        except engine_client.EngineNotFound:
            return True
        return False

    # -- suspend / resume ------------------------------------------------

    def handle_suspend(self):
        if self.resource_id is None:
            return None
        state = self._inspect()['State']
        # Only a running container has processes to freeze.
        if state.get('Running') and not state.get('Paused'):
            self.engine().post('/containers/%s/pause' % self.resource_id)
        return self.resource_id

    def check_suspend_complete(self, container_id):
        if container_id is None:
            return True
        state = self._inspect(container_id)['State']
        return bool(state.get('Paused')) or not state.get('Running')

    def handle_resume(self):
        if self.resource_id is None:
            return None
        state = self._inspect()['State']
        if state.get('Paused'):
            self.engine().post('/containers/%s/unpause' % self.resource_id)
        return self.resource_id

    def check_resume_complete(self, container_id):
        if container_id is None:
            return True
        state = self._inspect(container_id)['State']
        return not state.get('Paused')

    # -- check -----------------------------------------------------------

    def handle_check(self):
        """``openstack stack check``: the container exists and runs (or is
        paused by a suspend)."""
        try:
            state = self._inspect()['State']
        except engine_client.EngineNotFound:
            raise exception.Error(_('container %s no longer exists on the '
                                    'engine') % self.resource_id)
        if not state.get('Running'):
            raise exception.Error(
                _('container %(id)s is not running: %(s)s (exit code %(c)s)')
                % {'id': self.resource_id, 's': state.get('Status'),
                   'c': state.get('ExitCode')})

    # -- update ----------------------------------------------------------

    def handle_update(self, json_snippet, tmpl_diff, prop_diff):
        """memory, cpu_shares and restart_policy change on the running
        container (POST /containers/{id}/update); every other property is
        not update_allowed, so Heat replaces the container for those."""
        if not prop_diff:
            return
        body = {}
        if self.MEMORY in prop_diff:
            memory = prop_diff[self.MEMORY] or 0
            if not memory:
                # Docker's update reads 0 as "unchanged": lifting a limit
                # takes a new container.
                raise resource.UpdateReplace(self.name)
            body['Memory'] = memory
            # Swap follows memory (Docker's default of twice the memory),
            # or a lower memory than the old swap limit is refused.
            body['MemorySwap'] = memory * 2
        if self.CPU_SHARES in prop_diff:
            body['CpuShares'] = prop_diff[self.CPU_SHARES] or 0
        if self.RESTART_POLICY in prop_diff:
            body['RestartPolicy'] = self._restart_policy(
                prop_diff[self.RESTART_POLICY])
        try:
            self.engine().post('/containers/%s/update' % self.resource_id,
                               json_body=body)
        except engine_client.EngineClientError as exc:
            raise exception.Error(_('the engine could not update the '
                                    'container: %s') % exc.explanation)

    # -- replacement -----------------------------------------------------

    def prepare_for_replace(self):
        """Heat creates the replacement before it deletes this container:
        free what the two cannot share.  A fixed ``name`` is moved aside
        (renamed) and published host ports are released (stopped), else the
        new container would be refused; restore_prev_rsrc undoes both on a
        rollback."""
        if self.resource_id is None:
            return
        eng = self.engine()
        try:
            info = eng.inspect_container(self.resource_id)
        except engine_client.EngineNotFound:
            return
        name = info['Name'].lstrip('/')
        if self.properties[self.NAME]:
            aside = '%s-replaced-%s' % (name, self.resource_id[:12])
            eng.post('/containers/%s/rename' % self.resource_id,
                     params={'name': aside})
            self.data_set('replaced_name', name)
        if self.properties[self.PORT_BINDINGS] and info['State']['Running']:
            eng.post('/containers/%s/stop' % self.resource_id,
                     params={'t': 10}, timeout=max(eng.timeout, 30))
            self.data_set('stopped_for_replace', 'true')

    def restore_prev_rsrc(self, convergence=False):
        """Rollback after a failed replacement (convergence engine): this
        container comes back under its name, running again if
        prepare_for_replace stopped it."""
        if not convergence:
            # The legacy (non-convergence) engine calls this on the new
            # resource; not supported: Heat's default is convergence.
            return
        prev = self
        data = prev.data()
        eng = prev.engine()
        try:
            if data.get('replaced_name'):
                eng.post('/containers/%s/rename' % prev.resource_id,
                         params={'name': data['replaced_name']})
                prev.data_delete('replaced_name')
            if data.get('stopped_for_replace'):
                eng.post('/containers/%s/start' % prev.resource_id)
                prev.data_delete('stopped_for_replace')
        except engine_client.EngineNotFound:
            pass

    # -- attributes ------------------------------------------------------

    def _logs(self, container_id=None, tail=None):
        cid = container_id or self.resource_id
        eng = self.engine()
        tty = eng.inspect_container(cid)['Config'].get('Tty', False)
        resp = eng.request('GET', '/containers/%s/logs' % cid,
                           params={'stdout': True, 'stderr': True,
                                   'tail': tail}, expect_json=False)
        return demux_logs(resp.content, tty)

    @staticmethod
    def _published(ports, proto):
        out = []
        for key, bound in sorted((ports or {}).items()):
            if key.endswith('/' + proto) and bound:
                out.extend(b['HostPort'] for b in bound if b.get('HostPort'))
        return ','.join(out)

    def _resolve_attribute(self, name):
        if self.resource_id is None:
            return None
        try:
            if name in (self.LOGS, self.LOGS_HEAD, self.LOGS_TAIL):
                logs = self._logs()
                lines = logs.splitlines()
                if name == self.LOGS:
                    return logs
                if not lines:
                    return ''
                return lines[0] if name == self.LOGS_HEAD else lines[-1]
            info = self._inspect()
        except engine_client.EngineNotFound:
            return None
        net = info.get('NetworkSettings') or {}
        if name == self.INFO:
            return info
        if name == self.NETWORK_INFO:
            return net
        if name in (self.NETWORK_IP, self.NETWORK_GATEWAY):
            key = 'IPAddress' if name == self.NETWORK_IP else 'Gateway'
            if net.get(key):
                return net[key]
            for endpoint in (net.get('Networks') or {}).values():
                if endpoint and endpoint.get(key):
                    return endpoint[key]
            return ''
        if name == self.NETWORK_TCP_PORTS:
            return self._published(net.get('Ports'), 'tcp')
        if name == self.NETWORK_UDP_PORTS:
            return self._published(net.get('Ports'), 'udp')
        return None

    def get_reference_id(self):
        return self.resource_id


def resource_mapping():
    return {'DockerInc::Docker::Container': DockerContainer}
