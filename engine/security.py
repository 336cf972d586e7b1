"""A container's security profile: HostConfig fields -> checked spec inputs.

Docker's rules are the reference (moby 20.10 daemon/daemon_unix.go
parseSecurityOpt, daemon/oci_linux.go, oci/devices_linux.go, runc's user and
sysctl checks), with one deliberate difference: what Docker only finds out
when the container starts (a seccomp profile that is not JSON, a device that
does not exist, a sysctl outside the container's namespaces) is refused here
at create with a 400, so no container is left behind that can never start.

``validate(config, host)`` runs at create, before anything is made, and
normalises the request's HostConfig in place; ``prepare_create`` resolves
``container:<name>`` namespace modes once the container service can look
them up; ``spec_options`` turns a stored container into the security
keyword arguments of ``engine.runtime.spec.generate`` when it starts.
"""

import ctypes
import errno
import os
import re
import stat

from oslo_log import log as logging

from engine import errors
from engine import util
from engine.runtime import seccomp
from engine.runtime import spec as spec_mod
from engine.snapshotters import local as local_snap

LOG = logging.getLogger(__name__)

_STR_LIST = 'list of strings'

# HostConfig fields this module honours, with their JSON types.
HOST_CONFIG_FIELDS = {
    'SecurityOpt': _STR_LIST, 'Devices': list, 'DeviceCgroupRules': _STR_LIST,
    'GroupAdd': _STR_LIST, 'Sysctls': dict, 'IpcMode': str, 'PidMode': str,
    'UTSMode': str, 'MaskedPaths': _STR_LIST, 'ReadonlyPaths': _STR_LIST,
}

# ---------------------------------------------------------------- SecurityOpt

_TRUE = ('1', 't', 'T', 'TRUE', 'true', 'True')
_FALSE = ('0', 'f', 'F', 'FALSE', 'false', 'False')
UNCONFINED = 'unconfined'
# Docker >= 23 (and the docker CLI 28, which sends it as is) names its
# default profile "builtin"; Docker 20.10 had no name for it.
BUILTIN = 'builtin'


class SecurityOptions:
    """What a HostConfig.SecurityOpt list asks for."""

    def __init__(self):
        self.no_new_privileges = None   # None: the engine's default
        self.seccomp = None             # None/BUILTIN, UNCONFINED or profile JSON text
        self.apparmor = ''
        self.labels = []


def parse_security_opt(opts):
    """Docker's parseSecurityOpt: 'key=value' (or the deprecated
    'key:value'), 'no-new-privileges' and 'disable' alone.

    Label options are accepted and have no effect, as on a Docker host
    without SELinux (this engine does not label containers); an AppArmor
    profile is recorded, and applied only where the kernel has AppArmor.
    """
    out = SecurityOptions()
    for opt in opts or ():
        if opt == 'no-new-privileges':
            out.no_new_privileges = True
            continue
        if opt == 'disable':
            out.labels.append('disable')
            continue
        if '=' in opt:
            key, value = opt.split('=', 1)
        elif ':' in opt:
            key, value = opt.split(':', 1)
        else:
            raise errors.InvalidArgument('invalid --security-opt 1: "%s"' % opt)
        if key == 'label':
            out.labels.append(value)
        elif key == 'apparmor':
            out.apparmor = value
        elif key == 'seccomp':
            out.seccomp = value
        elif key == 'no-new-privileges':
            if value in _TRUE:
                out.no_new_privileges = True
            elif value in _FALSE:
                out.no_new_privileges = False
            else:
                raise errors.InvalidArgument('invalid --security-opt 2: "%s"' % opt)
        else:
            # systempaths=unconfined too: the docker CLI turns it into
            # empty HostConfig.MaskedPaths and ReadonlyPaths, Docker's API
            # refuses it in SecurityOpt.
            raise errors.InvalidArgument('invalid --security-opt 2: "%s"' % opt)
    if out.seccomp not in (None, '', BUILTIN, UNCONFINED):
        seccomp.parse_profile(out.seccomp)   # 400 now rather than at start
    return out


# ---------------------------------------------------------------- capabilities

def check_capabilities(host):
    for field in ('CapAdd', 'CapDrop'):
        for cap in host.get(field) or ():
            try:
                name = spec_mod.normalize_cap(cap)
            except errors.InvalidArgument as exc:
                raise errors.InvalidArgument('invalid %s: %s' % (field, exc))
            # Docker would create the container and fail every start with
            # runc's "unable to apply caps: operation not permitted".
            if field == 'CapAdd' and name != 'ALL' and name not in spec_mod.grantable_caps():
                raise errors.InvalidArgument(
                    'invalid CapAdd: capability "%s" is not available: the engine itself '
                    'does not hold it on this host' % name)


# ---------------------------------------------------------------- devices

_DEVICE_RULE = re.compile(r'^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$')
_MAX_WALK_ENTRIES = 100000


def check_device_mode(mode):
    """Docker's validDeviceMode: a non-empty subset of 'rwm'."""
    if not mode or len(mode) > 3 or any(ch not in 'rwm' for ch in mode) \
            or len(set(mode)) != len(mode):
        raise errors.InvalidArgument('bad mode specified: %s' % mode)
    return mode


def devices_from_path(path_on_host, path_in_container, permissions):
    """Docker's oci.DevicesFromPath: the device nodes a --device gives.

    A symlink is resolved first; a directory gives every device below it
    (its tree walked without following links).  Returns OCI device dicts
    with an 'access' key (their cgroup permissions).
    """
    resolved = path_on_host
    try:
        if stat.S_ISLNK(os.lstat(path_on_host).st_mode):
            resolved = os.path.realpath(path_on_host)
    except OSError:
        pass
    reason = 'no such file or directory'
    try:
        dev = spec_mod.device_from_path(resolved, path_in_container)
    except FileNotFoundError:
        dev = None
    except OSError as exc:
        dev, reason = None, exc.strerror or str(exc)
    else:
        reason = 'not a device node'
    if dev is not None:
        dev['access'] = permissions
        return [dev]
    found = []
    if os.path.isdir(resolved) and not os.path.islink(resolved):
        seen = 0
        for top, dirs, files in os.walk(resolved):
            dirs.sort()
            for name in sorted(files):
                seen += 1
                if seen > _MAX_WALK_ENTRIES:
                    raise errors.InvalidArgument(
                        'device directory %s holds more than %d entries'
                        % (path_on_host, _MAX_WALK_ENTRIES))
                full = os.path.join(top, name)
                try:
                    child = spec_mod.device_from_path(
                        full, path_in_container + full[len(resolved):])
                except OSError:
                    continue
                if child is not None:
                    child['access'] = permissions
                    found.append(child)
    if found:
        return found
    raise errors.InvalidArgument('error gathering device information while adding custom '
                                 'device "%s": %s' % (path_on_host, reason))


def normalize_devices(devices):
    """HostConfig.Devices with Docker CLI defaults filled in, each checked."""
    out = []
    for dev in devices or ():
        if not isinstance(dev, dict):
            raise errors.InvalidArgument('HostConfig.Devices entries must be objects')
        host_path = dev.get('PathOnHost')
        if not host_path:
            raise errors.InvalidArgument('HostConfig.Devices: PathOnHost is required')
        ctr_path = dev.get('PathInContainer') or host_path
        mode = dev.get('CgroupPermissions') or 'rwm'
        for value in (host_path, ctr_path, mode):
            if not isinstance(value, str):
                raise errors.InvalidArgument('HostConfig.Devices fields must be strings')
        for path in (host_path, ctr_path):
            if not path.startswith('/') or '\0' in path:
                raise errors.InvalidArgument('%s is not an absolute path' % path)
        if os.path.normpath(ctr_path) == '/':
            raise errors.InvalidArgument('a device cannot be mounted at /')
        check_device_mode(mode)
        devices_from_path(host_path, ctr_path, mode)   # exists and is a device
        out.append({'PathOnHost': host_path, 'PathInContainer': ctr_path,
                    'CgroupPermissions': mode})
    return out


def parse_device_rule(rule):
    """'c 1:3 rwm' -> an OCI device cgroup rule (Docker's format)."""
    m = _DEVICE_RULE.match(rule) if isinstance(rule, str) else None
    if not m:
        raise errors.InvalidArgument("invalid device cgroup rule format: '%s'" % (rule,))
    kind, major, minor, access = m.groups()
    out = {'allow': True, 'type': kind, 'access': access}
    for key, value in (('major', major), ('minor', minor)):
        if value != '*':
            number = int(value)
            if number >= 1 << 32:
                raise errors.InvalidArgument("invalid device cgroup rule format: '%s'" % rule)
            out[key] = number
    return out


# ---------------------------------------------------------------- namespaces

_IPC_MODES = ('', 'private', 'shareable', 'none', 'host')


def check_namespace_modes(config, host):
    ipc = host.get('IpcMode') or ''
    if ipc not in _IPC_MODES and not _container_ref(ipc):
        raise errors.InvalidArgument('invalid IPC mode: %s' % ipc)
    pid = host.get('PidMode') or ''
    if pid not in ('', 'private', 'host') and not _container_ref(pid):
        raise errors.InvalidArgument('invalid PID mode: %s' % pid)
    uts = host.get('UTSMode') or ''
    if uts not in ('', 'private', 'host'):
        raise errors.InvalidArgument('invalid UTS mode: %s' % uts)
    if uts == 'host' and config.get('Hostname'):
        raise errors.InvalidArgument('conflicting options: hostname and the UTS mode')


def _container_ref(mode):
    """'container:<ref>' -> ref, else None."""
    kind, sep, ref = mode.partition(':')
    if kind == 'container' and sep and ref:
        return ref
    return None


# ---------------------------------------------------------------- sysctls

# Namespaced sysctls Docker (and runc) let a container set.
_IPC_SYSCTLS = frozenset((
    'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall',
    'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'))
_SYSCTL_KEY = re.compile(r'^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$')
_MAX_SYSCTL_VALUE = 4096

# What Docker sets in a container with a network namespace of its own:
# unprivileged ping and low ports without CAP_NET_BIND_SERVICE.
DEFAULT_NET_SYSCTLS = (('net.ipv4.ping_group_range', '0 2147483647'),
                       ('net.ipv4.ip_unprivileged_port_start', '0'))


def check_sysctls(sysctls, network_mode, ipc_mode, uts_mode):
    """runc's rules, checked at create: only sysctls of a namespace the
    container has of its own.  Keys are plain dotted names (runc turns dots
    into path separators under /proc/sys: nothing may climb out of it)."""
    for key, value in (sysctls or {}).items():
        if not isinstance(value, str):
            raise errors.InvalidArgument('HostConfig.Sysctls values must be strings')
        if not _SYSCTL_KEY.match(key):
            raise errors.InvalidArgument('invalid sysctl name "%s"' % key)
        if len(value) > _MAX_SYSCTL_VALUE or any(ch in value for ch in '\0\n'):
            raise errors.InvalidArgument('invalid value for sysctl "%s"' % key)
        if key in _IPC_SYSCTLS or key.startswith('fs.mqueue.'):
            if ipc_mode == 'host':
                raise errors.InvalidArgument(
                    'sysctl "%s" is not allowed in the hosts ipc namespace' % key)
            continue
        if key.startswith('net.'):
            if network_mode == 'host':
                raise errors.InvalidArgument(
                    'sysctl "%s" not allowed in host network namespace' % key)
            continue
        if uts_mode != 'host':
            if key == 'kernel.domainname':
                continue
            if key == 'kernel.hostname':
                raise errors.InvalidArgument(
                    'sysctl "%s" is not allowed as it conflicts with the OCI "hostname" '
                    'field' % key)
        raise errors.InvalidArgument('sysctl "%s" is not in a separate kernel namespace' % key)


# ---------------------------------------------------------------- create

# Bounds on what one request may ask for: each entry costs work at create
# and at every start (a device directory is walked, a profile parsed).
MAX_ENTRIES = {'SecurityOpt': 64, 'Devices': 256, 'DeviceCgroupRules': 256,
               'GroupAdd': 1024, 'Sysctls': 256, 'MaskedPaths': 256, 'ReadonlyPaths': 256}


def _check_types(host):
    for name, kind in HOST_CONFIG_FIELDS.items():
        value = host.get(name)
        if value is None:
            continue
        if kind is _STR_LIST:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise errors.InvalidArgument('HostConfig.%s must be a list of strings' % name)
        elif not isinstance(value, kind):
            raise errors.InvalidArgument('HostConfig.%s must be %s' % (
                name, {str: 'a string', list: 'an array', dict: 'an object'}[kind]))
        if name in MAX_ENTRIES and len(value) > MAX_ENTRIES[name]:
            raise errors.InvalidArgument('HostConfig.%s has more than %d entries'
                                         % (name, MAX_ENTRIES[name]))


def _check_paths(paths, field):
    for path in paths or ():
        if not path.startswith('/') or '\0' in path:
            raise errors.InvalidArgument('HostConfig.%s: %r is not an absolute path'
                                         % (field, path))


def validate(config, host):
    """Check the security fields of a create request; normalise ``host``.

    Raises InvalidArgument (400) naming what is wrong; nothing is created.
    """
    _check_types(host)
    parse_security_opt(host.get('SecurityOpt'))
    check_capabilities(host)
    check_namespace_modes(config, host)
    if host.get('Devices'):
        host['Devices'] = normalize_devices(host['Devices'])
    for rule in host.get('DeviceCgroupRules') or ():
        parse_device_rule(rule)
    for group in host.get('GroupAdd') or ():
        if not group or ':' in group or '\0' in group:
            raise errors.InvalidArgument('Unable to find group %s: no matching entries in '
                                         'group file' % group)
        gid = spec_mod._parse_id(group)
        if gid is not None:
            spec_mod._check_range(gid)
    _check_paths(host.get('MaskedPaths'), 'MaskedPaths')
    _check_paths(host.get('ReadonlyPaths'), 'ReadonlyPaths')
    network = host.get('NetworkMode') or 'default'
    if config.get('NetworkDisabled'):
        network = 'none'
    check_sysctls(host.get('Sysctls'), network, host.get('IpcMode') or '',
                  host.get('UTSMode') or '')


def prepare_create(host, lookup):
    """Defaults Docker records at create, and ``container:<name>`` IPC and
    PID modes resolved to the full ID (the container must exist now).

    ``lookup(ref)`` returns a container or raises NotFound.
    """
    for field in ('IpcMode', 'PidMode'):
        ref = _container_ref(host.get(field) or '')
        if ref:
            try:
                other = lookup(ref)
            except errors.NotFound:
                raise errors.InvalidArgument('No such container: %s' % ref)
            host[field] = 'container:' + other.id
    host['IpcMode'] = host.get('IpcMode') or 'private'
    # Docker's generateSecurityOpt: containers sharing the host's IPC or PID
    # namespace, or privileged, get label=disable unless labels were given
    # (SELinux or not).
    opts = host.get('SecurityOpt') or []
    if (host['IpcMode'] == 'host' or host.get('PidMode') == 'host' or host.get('Privileged')) \
            and not any(o.split('=')[0] == 'label' for o in opts):
        host['SecurityOpt'] = opts + ['label=disable']
    host.setdefault('PidMode', '')
    host.setdefault('UTSMode', '')
    host.setdefault('Devices', [])
    if not host.get('Privileged'):
        if host.get('MaskedPaths') is None:
            host['MaskedPaths'] = list(spec_mod.MASKED_PATHS)
        if host.get('ReadonlyPaths') is None:
            host['ReadonlyPaths'] = list(spec_mod.READONLY_PATHS)


# ---------------------------------------------------------------- start

def apparmor_enabled():
    try:
        with open('/sys/module/apparmor/parameters/enabled') as f:
            return f.read().strip() == 'Y'
    except OSError:
        return False


def default_no_new_privileges():
    from engine import conf
    return bool(conf.engine_option('no_new_privileges'))


def default_seccomp_profile():
    """The profile path containers get by default ([engine] seccomp_profile)."""
    from engine import conf
    return conf.engine_option('seccomp_profile') or seccomp.DEFAULT_PROFILE


def resolve_user(c, user_string):
    """(uid, gid, additional gids) of ``user_string`` in container ``c``:
    Docker's getUser, its primary group first, then the supplementary
    groups from the image, then HostConfig.GroupAdd."""
    uid, gid, sgids = spec_mod.resolve_user(c.rootfs, user_string)
    extra = [gid] + list(sgids) + resolve_group_add(c.rootfs, c.host_config.get('GroupAdd'))
    seen = []
    for g in extra:
        if g not in seen:
            seen.append(g)
    return uid, gid, seen


def resolve_group_add(rootfs, groups):
    """GroupAdd names from the image's /etc/group; numbers taken as they are."""
    if not groups:
        return []
    rows = spec_mod._read_db(rootfs, 'etc/group') or []
    out = []
    for name in groups:
        for row in rows:
            if len(row) >= 3 and spec_mod._parse_id(row[2]) is not None and \
                    (row[0] == name or row[2] == name):
                out.append(int(row[2]))
                break
        else:
            gid = spec_mod._parse_id(name)
            if gid is None:
                raise errors.InvalidArgument('Unable to find group %s: no matching entries '
                                             'in group file' % name)
            out.append(spec_mod._check_range(gid))
    return out


def _joined_container(c, field, lookup):
    """The running container whose namespace ``c`` joins (IpcMode/PidMode)."""
    ref = _container_ref(c.host_config.get(field) or '')
    try:
        other = lookup(ref)
    except errors.NotFound:
        other = None
    return ref, other


# A shareable container's /dev/shm is a tmpfs the engine mounts in the
# container's directory (Docker's ShmPath): containers joining its IPC
# namespace bind the same tmpfs, which a mount inside the donor's own mount
# namespace would not allow.
SHM_DIR = 'shm'
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _shareable_shm(c):
    path = os.path.join(c.path, SHM_DIR)
    os.makedirs(path, mode=0o755, exist_ok=True)
    if not os.path.ismount(path):
        size = c.host_config.get('ShmSize') or spec_mod.DEFAULT_SHM_SIZE
        local_snap.sys_mount('shm', path, 'tmpfs', _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                             'mode=1777,size=%d' % int(size))
    return spec_mod.bind_mount(path, '/dev/shm')


def release_ipc(container_path):
    """Unmount a shareable container's /dev/shm tmpfs (after it stopped, or
    before its directory goes); lazily, as joined containers may still hold
    it.  Nothing to do for other containers."""
    path = os.path.join(container_path, SHM_DIR)
    if _libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            LOG.warning('cannot unmount %s: %s', path, os.strerror(err))
            return
    try:
        os.rmdir(path)
    except OSError:
        pass


def _ipc_options(c, lookup):
    """(ipc mode for spec.generate, /dev/shm mount or None, keep default shm)."""
    mode = c.host_config.get('IpcMode') or 'private'
    if mode == 'none':
        return 'private', None, False
    if mode == 'host':
        return 'host', spec_mod.bind_mount('/dev/shm', '/dev/shm'), True
    if mode == 'shareable':
        return 'private', _shareable_shm(c), True
    ref = _container_ref(mode)
    if not ref:
        return 'private', None, True
    ref, other = _joined_container(c, 'IpcMode', lookup)
    what = "can't join IPC of container " + ref
    if other is None:
        raise errors.Conflict('%s: No such container: %s' % (what, ref))
    if not other.is_running() or not other.state.get('Pid'):
        raise errors.Conflict('%s: container %s is not running' % (what, other.id))
    other_mode = other.host_config.get('IpcMode') or 'private'
    if other_mode == 'host':
        return 'host', spec_mod.bind_mount('/dev/shm', '/dev/shm'), True
    shm = os.path.join(other.path, SHM_DIR)
    if other_mode != 'shareable' or not os.path.ismount(shm):
        raise errors.Conflict('%s: non-shareable IPC (hint: use IpcMode:shareable for the '
                              'donor container)' % what)
    return 'container:%d' % other.state['Pid'], spec_mod.bind_mount(shm, '/dev/shm'), True


def _pid_option(c, lookup):
    mode = c.host_config.get('PidMode') or ''
    if mode == 'host':
        return 'host'
    if not _container_ref(mode):
        return 'private'
    ref, other = _joined_container(c, 'PidMode', lookup)
    if other is None:
        raise errors.Conflict('cannot join PID of a non running container: %s' % ref)
    if not other.is_running() or not other.state.get('Pid'):
        raise errors.Conflict('container %s is not running' % other.id)
    return 'container:%d' % other.state['Pid']


def spec_options(c, lookup, network_private):
    """Keyword arguments of spec.generate for container ``c``'s security.

    ``lookup(ref)`` finds another container (IPC and PID sharing);
    ``network_private``: the container has a network namespace of its own
    (Docker then sets its two default net sysctls).  Also returns 'mounts'
    (a /dev/shm to share), which the caller adds to its own.
    """
    host = c.host_config
    opts = parse_security_opt(host.get('SecurityOpt'))
    privileged = bool(host.get('Privileged'))
    if opts.seccomp in (None, '', BUILTIN):
        profile = default_seccomp_profile()
    elif opts.seccomp == UNCONFINED:
        profile = UNCONFINED
    else:
        profile = seccomp.parse_profile(opts.seccomp)
    nnp = opts.no_new_privileges
    if nnp is None:
        nnp = default_no_new_privileges()
    apparmor = None
    if opts.apparmor and opts.apparmor != UNCONFINED and apparmor_enabled():
        apparmor = opts.apparmor
    devices = []
    for dev in host.get('Devices') or ():
        if privileged and dev['PathOnHost'] == dev['PathInContainer']:
            continue   # the host's /dev is there already
        devices.extend(devices_from_path(dev['PathOnHost'], dev['PathInContainer'],
                                         'rwm' if privileged else dev['CgroupPermissions']))
    sysctls = {}
    if network_private:
        for key, value in DEFAULT_NET_SYSCTLS:
            if os.path.exists('/proc/sys/' + key.replace('.', '/')):
                sysctls[key] = value
    sysctls.update(host.get('Sysctls') or {})
    ipc, shm_mount, keep_shm = _ipc_options(c, lookup)
    uts = 'host' if host.get('UTSMode') == 'host' else None
    out = {
        'user': resolve_user(c, c.config.get('User') or ''),
        'privileged': privileged,
        'cap_add': host.get('CapAdd') or (),
        'cap_drop': host.get('CapDrop') or (),
        'seccomp_profile': profile,
        'no_new_privileges': nnp,
        'apparmor_profile': apparmor,
        'devices': devices,
        'device_rules': [parse_device_rule(r) for r in host.get('DeviceCgroupRules') or ()],
        'sysctls': sysctls or None,
        'masked_paths': host.get('MaskedPaths'),
        'readonly_paths': host.get('ReadonlyPaths'),
        'ipc': ipc,
        'pid': _pid_option(c, lookup),
        'shm': keep_shm,
        'mounts': [shm_mount] if shm_mount else [],
    }
    if uts:
        out['uts'] = uts
    return out


def inspect_fields(record):
    """Top-level inspect keys as Docker shows them on a host without SELinux
    (this engine never labels): the AppArmor profile asked for shows until
    the first start, which sets it to what applies ('' without AppArmor)."""
    try:
        profile = parse_security_opt(record['HostConfig'].get('SecurityOpt')).apparmor
    except errors.InvalidArgument:
        profile = ''
    started = record.get('State', {}).get('StartedAt', util.ZERO_TIME) != util.ZERO_TIME
    if started and not apparmor_enabled():
        profile = ''
    return {'MountLabel': '', 'ProcessLabel': '', 'AppArmorProfile': profile}


def host_config_defaults(host):
    """HostConfig keys Docker always shows, for records made before this
    module set them at create."""
    out = dict(host)
    for key, value in (('SecurityOpt', None), ('CapAdd', None), ('CapDrop', None),
                       ('GroupAdd', None), ('Devices', []), ('DeviceCgroupRules', None),
                       ('IpcMode', 'private'), ('PidMode', ''), ('UTSMode', ''),
                       ('Privileged', False), ('ReadonlyRootfs', False)):
        out.setdefault(key, value)
    if not out.get('Privileged'):
        out.setdefault('MaskedPaths', list(spec_mod.MASKED_PATHS))
        out.setdefault('ReadonlyPaths', list(spec_mod.READONLY_PATHS))
    else:
        out.setdefault('MaskedPaths', None)
        out.setdefault('ReadonlyPaths', None)
    return out


def info_security_options():
    """/info SecurityOptions, as Docker lists them."""
    out = []
    profile = default_seccomp_profile()
    if profile != UNCONFINED:
        name = BUILTIN if profile == seccomp.DEFAULT_PROFILE else profile
        out.append('name=seccomp,profile=%s' % name)
    if apparmor_enabled():
        out.insert(0, 'name=apparmor')
    if default_no_new_privileges():
        out.append('name=no-new-privileges')
    return out
