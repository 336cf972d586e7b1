"""OCI runtime spec generation with Docker's default security profile.

``generate`` builds the ``config.json`` of a bundle from plain inputs;
``process_spec`` builds the process object ``runc exec --process`` takes,
consistent with the container's; ``resolve_user`` turns Docker's ``--user``
string into ids by reading the image's passwd and group files without ever
leaving the rootfs.
"""

import functools
import os
import resource
import stat

from engine import errors
from engine.runtime import seccomp

OCI_VERSION = '1.0.2'

DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = (
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD',
    'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP',
    'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
)

# Every capability by number, as of Linux 6.x.
ALL_CAPS = (
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER',
    'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
    'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST',
    'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
    'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
    'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
    'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
    'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
    'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
    'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
    'CAP_CHECKPOINT_RESTORE',
)

MASKED_PATHS = (
    '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys',
    '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
    '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
    '/sys/devices/virtual/powercap',
)

READONLY_PATHS = (
    '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
)

# (path, type, major, minor): the nodes every container gets.
DEFAULT_DEVICES = (
    ('/dev/null', 'c', 1, 3),
    ('/dev/zero', 'c', 1, 5),
    ('/dev/full', 'c', 1, 7),
    ('/dev/random', 'c', 1, 8),
    ('/dev/urandom', 'c', 1, 9),
    ('/dev/tty', 'c', 5, 0),
)

# Docker's device cgroup (runc's defaults plus Docker's spec): deny all,
# allow mknod of anything (the node is still useless unless allowed below),
# then the default nodes, /dev/console, ptys, ptmx and /dev/net/tun.  (Docker's
# spec also denies /dev/fuse, a no-op after deny-all that cgroup v1 cannot
# express once c *:* m is allowed.)
DEFAULT_DEVICE_RULES = (
    {'allow': False, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'access': 'm'},
    {'allow': True, 'type': 'b', 'access': 'm'},
    {'allow': True, 'type': 'c', 'major': 1, 'minor': 3, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 1, 'minor': 8, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 1, 'minor': 7, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 5, 'minor': 0, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 5, 'minor': 1, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 1, 'minor': 5, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 1, 'minor': 9, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 136, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 5, 'minor': 2, 'access': 'rwm'},
    {'allow': True, 'type': 'c', 'major': 10, 'minor': 200, 'access': 'rwm'},
)

NOFILE_LIMIT = 1048576
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

UNCONFINED = 'unconfined'
_CAP_SYS_RESOURCE = 24


@functools.lru_cache(maxsize=1)
def default_nofile():
    """RLIMIT_NOFILE for containers: Docker's 1048576, or as close as we may.

    Raising a hard limit needs CAP_SYS_RESOURCE (and stays under
    fs.nr_open); an engine without it (e.g. nested in a sandbox) would make
    every create fail, so we clamp to its own hard limit then.
    """
    limit = NOFILE_LIMIT
    try:
        with open('/proc/sys/fs/nr_open') as f:
            limit = min(limit, int(f.read()))
    except (OSError, ValueError):
        pass
    capeff = _status_mask('CapEff') or 0
    if not capeff & (1 << _CAP_SYS_RESOURCE):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < limit:
            limit = hard
    return limit


def normalize_cap(name):
    """'net_admin', 'CAP_NET_ADMIN' -> 'CAP_NET_ADMIN'; 'all' -> 'ALL'.

    Docker's rules (NormalizeLegacyCapabilities): upper-cased, CAP_ added
    when missing, nothing stripped; an unknown name is refused.
    """
    if not isinstance(name, str):
        raise errors.InvalidArgument('unknown capability: %r' % (name,))
    name = name.upper()
    if name == 'ALL':
        return name
    if not name.startswith('CAP_'):
        name = 'CAP_' + name
    if name not in ALL_CAPS:
        raise errors.InvalidArgument('unknown capability: "%s"' % name)
    return name


def _status_mask(field):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


@functools.lru_cache(maxsize=1)
def grantable_caps():
    """Every capability the engine itself holds in its bounding set.

    'ALL' and privileged mean these: a runtime cannot grant a capability the
    engine lacks (e.g. an engine nested in a restricted sandbox).
    """
    mask = _status_mask('CapBnd')
    if mask is None:
        return ALL_CAPS
    return tuple(c for i, c in enumerate(ALL_CAPS) if mask & (1 << i))


def capability_set(cap_add=(), cap_drop=(), privileged=False):
    """The container's capabilities, following Docker's TweakCapabilities.

    Privileged gets all; ``ALL`` added gives all but the drops; ``ALL``
    dropped gives only the adds; else Docker's defaults less the drops plus
    the adds (an explicit add wins over a drop of the same name).
    """
    adds = [normalize_cap(c) for c in cap_add or ()]
    drops = [normalize_cap(c) for c in cap_drop or ()]
    if privileged:
        return list(grantable_caps())
    if 'ALL' in adds:
        caps = set(grantable_caps()) - set(drops)
    elif 'ALL' in drops:
        caps = set(adds)
    else:
        caps = (set(DEFAULT_CAPS) - set(drops)) | set(adds)
    caps.discard('ALL')
    return [c for c in ALL_CAPS if c in caps]


def cgroups_path(parent, cid):
    """The OCI cgroupsPath of container ``cid`` under the engine's ``parent``.

    ``parent`` should name the engine ('/novadocker-<tag>') so engines side
    by side never share a cgroup.
    """
    parent = '/' + parent.strip('/') if parent else ''
    return '%s/%s' % (parent, cid)


def bind_mount(source, destination, readonly=False, propagation='rprivate'):
    """An OCI bind mount entry, e.g. for /etc/hosts written per container."""
    options = ['rbind', propagation]
    if readonly:
        options.append('ro')
    return {'destination': destination, 'type': 'bind', 'source': source,
            'options': options}


def _default_mounts(privileged, shm_size):
    sys_opts = ['nosuid', 'noexec', 'nodev'] + ([] if privileged else ['ro'])
    return [
        {'destination': '/proc', 'type': 'proc', 'source': 'proc',
         'options': ['nosuid', 'noexec', 'nodev']},
        {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs',
         'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
        {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',
         'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666',
                     'mode=0620', 'gid=5']},
        {'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs',
         'options': list(sys_opts)},
        {'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup',
         'options': ['nosuid', 'noexec', 'nodev', 'relatime']
         + ([] if privileged else ['ro'])},
        {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue',
         'options': ['nosuid', 'noexec', 'nodev']},
        {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm',
         'options': ['nosuid', 'noexec', 'nodev', 'mode=1777',
                     'size=%dk' % max(1, shm_size // 1024)]},
    ]


def _namespaces(network, ipc='private', pid='private', uts='private'):
    nss = [{'type': 'mount'}]

    def add(kind, mode, label):
        mode = mode or 'private'
        if mode in _PRIVATE_MODES:
            nss.append({'type': kind})
        elif mode == 'host':
            pass
        elif mode.startswith(('container:', 'ns:')):
            target = mode.split(':', 1)[1]
            if target.isdigit():
                target = '/proc/%s/ns/%s' % (target, _NS_FILES[kind])
            if not target.startswith('/'):
                raise errors.InvalidArgument(
                    '%s mode %s must name a pid or an absolute namespace path'
                    % (label, mode))
            nss.append({'type': kind, 'path': target})
        else:
            raise errors.InvalidArgument('invalid %s mode: %s' % (label, mode))

    add('network', network, 'network')
    add('ipc', ipc, 'IPC')
    add('pid', pid, 'PID')
    add('uts', uts, 'UTS')
    return nss


_PRIVATE_MODES = ('private', 'none', 'shareable', 'bridge', 'default')
_NS_FILES = {'network': 'net', 'ipc': 'ipc', 'pid': 'pid', 'uts': 'uts'}


def _capabilities(caps):
    caps = list(caps)
    # Docker (since 20.10.14) leaves inheritable empty so file capabilities
    # cannot be regained by non-root users; ambient stays empty.
    return {'bounding': list(caps), 'effective': list(caps),
            'permitted': list(caps), 'inheritable': [], 'ambient': []}


def process_spec(args, env=None, cwd='/', user=(0, 0, ()), terminal=False,
                 caps=None, no_new_privileges=True, apparmor_profile=None,
                 rlimits=None, oom_score_adj=None, console_size=None):
    """The OCI ``process`` object; also what ``runc exec --process`` reads.

    ``user``: (uid, gid, additional_gids) as ``resolve_user`` returns.
    ``caps``: the container's capability list (default: Docker's); for an
    exec pass the container's own so the exec is no stronger than it.
    """
    if not args or not all(isinstance(a, str) for a in args):
        raise errors.InvalidArgument('no command specified')
    uid, gid, extra = user
    proc = {
        'terminal': bool(terminal),
        'user': {'uid': int(uid), 'gid': int(gid)},
        'args': list(args),
        'env': list(env) if env is not None else [DEFAULT_PATH_ENV],
        'cwd': cwd or '/',
        'capabilities': _capabilities(DEFAULT_CAPS if caps is None else caps),
        'noNewPrivileges': bool(no_new_privileges),
        'rlimits': list(rlimits) if rlimits is not None else [
            {'type': 'RLIMIT_NOFILE', 'hard': default_nofile(), 'soft': default_nofile()}],
    }
    if not proc['cwd'].startswith('/'):
        raise errors.InvalidArgument('the working directory %r is invalid: it needs '
                                     'to be an absolute path' % proc['cwd'])
    if extra:
        proc['user']['additionalGids'] = [int(g) for g in extra]
    if apparmor_profile:
        proc['apparmorProfile'] = apparmor_profile
    if oom_score_adj is not None:
        proc['oomScoreAdj'] = int(oom_score_adj)
    if terminal and console_size:
        proc['consoleSize'] = {'height': int(console_size[0]),
                               'width': int(console_size[1])}
    return proc


def merge_env(base, override):
    """Docker's env merge: 'K=V' entries of ``override`` replace same-K entries."""
    out = list(base or ())
    index = {e.split('=', 1)[0]: i for i, e in enumerate(out)}
    for entry in override or ():
        key = entry.split('=', 1)[0]
        if key in index:
            out[index[key]] = entry
        else:
            index[key] = len(out)
            out.append(entry)
    return out


def exec_process_spec(container_spec, args, env=None, cwd=None, user=None, tty=False,
                      privileged=False, console_size=None):
    """The process for ``docker exec`` in a container created from ``container_spec``.

    Inherits the container's capabilities, noNewPrivileges, AppArmor profile,
    rlimits, env (``env`` entries override), cwd and user unless given
    (``user`` as (uid, gid, additional_gids)).  ``privileged`` grants every
    capability, as ``docker exec --privileged`` does.
    """
    base = container_spec.get('process') or {}
    if user is None:
        u = base.get('user') or {}
        user = (u.get('uid', 0), u.get('gid', 0), u.get('additionalGids') or ())
    caps = (grantable_caps() if privileged
            else (base.get('capabilities') or {}).get('bounding', DEFAULT_CAPS))
    return process_spec(
        args, env=merge_env(base.get('env') or [DEFAULT_PATH_ENV], env),
        cwd=cwd or base.get('cwd') or '/', user=user, terminal=tty, caps=caps,
        no_new_privileges=base.get('noNewPrivileges', True),
        apparmor_profile=base.get('apparmorProfile'),
        rlimits=base.get('rlimits'), oom_score_adj=base.get('oomScoreAdj'),
        console_size=console_size)


# Directories of /dev runc leaves out when it gives a privileged container the
# host's devices (libcontainer/devices.GetDevices).
_HOST_DEV_SKIP = ('pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev')
_MAX_HOST_DEVICES = 16384


def device_from_path(path, host_path=None):
    """The OCI device dict of the node at ``path`` (not following a final
    symlink), or None if it is not a character or block device."""
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = 'c'
    elif stat.S_ISBLK(st.st_mode):
        kind = 'b'
    else:
        return None
    return {'path': host_path or path, 'type': kind, 'major': os.major(st.st_rdev),
            'minor': os.minor(st.st_rdev), 'fileMode': stat.S_IMODE(st.st_mode),
            'uid': st.st_uid, 'gid': st.st_gid}


def host_devices(root='/dev'):
    """Every device node under the host's /dev, as runc gives a privileged
    container: pts, shm, fd and mqueue skipped, as is /dev/console."""
    out = []

    def walk(directory):
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if len(out) >= _MAX_HOST_DEVICES:
                return
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _HOST_DEV_SKIP:
                    walk(entry.path)
                continue
            if entry.name == 'console':
                continue
            try:
                dev = device_from_path(entry.path)
            except OSError:
                continue
            if dev is not None:
                out.append(dev)

    walk(root)
    return out


def _dedupe_devices(devs):
    """One node per path: the last given wins (a user --device over a default)."""
    by_path = {}
    for dev in devs:
        by_path.pop(dev['path'], None)
        by_path[dev['path']] = dev
    return list(by_path.values())


def generate(args, rootfs, env=None, cwd='/', user=(0, 0, ()), terminal=False,
             hostname='', domainname='', readonly_rootfs=False, network='none', ipc='private',
             pid='private', uts='private', mounts=(), labels=None,
             cgroups_path=None, resources=None, privileged=False, cap_add=(),
             cap_drop=(), seccomp_profile=seccomp.DEFAULT_PROFILE,
             no_new_privileges=True, apparmor_profile=None, shm_size=None,
             sysctls=None, devices=(), masked_paths=None, readonly_paths=None,
             oom_score_adj=None, console_size=None, device_rules=(), shm=True):
    """Build an OCI runtime spec (dict, ociVersion 1.0.2) with Docker's defaults.

    args: the process argv (list of str); env: list of 'K=V' (default: PATH
    only); cwd: absolute path; user: (uid, gid, additional_gids);
    terminal: allocate a pty; hostname, domainname: set in the new UTS namespace;
    rootfs: absolute path of the root filesystem; readonly_rootfs: mount it ro.
    network: 'none' or 'private' (new netns; runc brings up lo), 'host' (no
    netns), 'container:<pid>' or 'container:/path/to/netns' (join it); ipc,
    pid and uts accept the same forms ('host', 'private', 'container:...').
    mounts: extra OCI mount dicts (see ``bind_mount``); one whose destination
    equals a default mount replaces that default.  labels: dict -> annotations.
    cgroups_path: OCI cgroupsPath (see ``cgroups_path()``).  resources: OCI
    linux.resources (memory, cpu, pids...) merged over the device rules.
    privileged: all capabilities and devices, no seccomp, no masked or
    read-only paths, rw /sys.  cap_add/cap_drop: names with or without CAP_,
    'ALL' allowed.  seccomp_profile: path of a Docker-format profile, or
    None/'unconfined', or a parsed Docker-format profile (a dict).  devices:
    extra OCI device dicts (also allowed in the device cgroup; an 'access'
    key gives their cgroup permissions); privileged containers also get every
    device node of the host's /dev.  device_rules: extra OCI device cgroup
    rules, after the devices'.  masked_paths/readonly_paths: None for
    Docker's defaults (none when privileged), else the list to use.
    shm_size: bytes of /dev/shm (64 MiB default); shm=False: no /dev/shm
    (IpcMode none).
    console_size: (height, width) of the tty from its first instant.
    """
    if not rootfs or not os.path.isabs(rootfs):
        raise errors.InvalidArgument('rootfs must be an absolute path: %r' % (rootfs,))
    caps = capability_set(cap_add, cap_drop, privileged)
    shm_size = DEFAULT_SHM_SIZE if shm_size in (None, 0) else int(shm_size)
    if shm_size < 0:
        raise errors.InvalidArgument('SHM size can not be less than 0')

    proc = process_spec(args, env=env, cwd=cwd, user=user, terminal=terminal,
                        caps=caps, no_new_privileges=no_new_privileges,
                        apparmor_profile=None if privileged else apparmor_profile,
                        oom_score_adj=oom_score_adj, console_size=console_size)

    all_mounts = _default_mounts(privileged, shm_size)
    if not shm:
        all_mounts = [m for m in all_mounts if m['destination'] != '/dev/shm']
    extra = [dict(m) for m in mounts or ()]
    for m in extra:
        if not m.get('destination', '').startswith('/'):
            raise errors.InvalidArgument('mount destination %r is not an absolute path'
                                         % m.get('destination'))
    wanted = {os.path.normpath(m['destination']) for m in extra}
    all_mounts = [m for m in all_mounts if m['destination'] not in wanted]
    # A user mount over /dev must not hide the default /dev/* mounts' parents
    # order: defaults first, then user mounts, as Docker does.
    all_mounts.extend(extra)

    linux = {
        'namespaces': _namespaces(network, ipc=ipc, pid=pid, uts=uts),
        'resources': {'devices': [dict(r) for r in DEFAULT_DEVICE_RULES]},
        'devices': [],
    }
    for path, kind, major, minor in DEFAULT_DEVICES:
        linux['devices'].append({'path': path, 'type': kind, 'major': major,
                                 'minor': minor, 'fileMode': 0o666, 'uid': 0, 'gid': 0})
    if privileged:
        linux['devices'].extend(host_devices())
    for dev in devices or ():
        dev = dict(dev)
        access = dev.pop('access', 'rwm')
        linux['devices'].append(dev)
        linux['resources']['devices'].append(
            {'allow': True, 'type': dev.get('type', 'c'), 'major': dev.get('major'),
             'minor': dev.get('minor'), 'access': access})
    linux['devices'] = _dedupe_devices(linux['devices'])
    linux['resources']['devices'].extend(dict(r) for r in device_rules or ())
    if privileged:
        linux['resources']['devices'] = [{'allow': True, 'access': 'rwm'}]
    else:
        if seccomp_profile and seccomp_profile != UNCONFINED:
            if isinstance(seccomp_profile, dict):
                if not seccomp.is_disabled(seccomp_profile):
                    linux['seccomp'] = seccomp.convert(seccomp_profile, caps)
            else:
                linux['seccomp'] = seccomp.for_container(caps, seccomp_profile)
    if masked_paths is not None or not privileged:
        linux['maskedPaths'] = list(MASKED_PATHS if masked_paths is None else masked_paths)
    if readonly_paths is not None or not privileged:
        linux['readonlyPaths'] = list(READONLY_PATHS if readonly_paths is None
                                      else readonly_paths)
    if resources:
        for key, value in resources.items():
            if key == 'devices':
                linux['resources']['devices'].extend(value)
            else:
                linux['resources'][key] = value
    if cgroups_path:
        linux['cgroupsPath'] = cgroups_path
    if sysctls:
        linux['sysctl'] = {str(k): str(v) for k, v in sysctls.items()}

    spec = {
        'ociVersion': OCI_VERSION,
        'process': proc,
        'root': {'path': rootfs, 'readonly': bool(readonly_rootfs)},
        'mounts': all_mounts,
        'linux': linux,
    }
    has_uts = any(ns['type'] == 'uts' and 'path' not in ns for ns in linux['namespaces'])
    if hostname and has_uts:
        spec['hostname'] = hostname
    if domainname and has_uts:
        # The kernel's NIS domain name, as Docker sets it.  runc 1.1 ignores
        # the spec field (1.2 applies it) but applies the sysctl.
        spec['domainname'] = domainname
        linux.setdefault('sysctl', {}).setdefault('kernel.domainname', domainname)
    if labels:
        spec['annotations'] = {str(k): str(v) for k, v in labels.items()}
    return spec


# ---------------------------------------------------------------- users

_MAX_ID = 2 ** 31 - 1
_MAX_DB_SIZE = 16 * 1024 * 1024
_MAX_SYMLINKS = 40


def _open_in_root(rootfs, relpath):
    """Open ``relpath`` for reading as if ``rootfs`` were ``/``.

    Symlinks are resolved inside the rootfs (an absolute target restarts at
    the rootfs, ``..`` stops at it), like a chroot would, so a hostile image
    cannot make us read host files.  Returns an fd of a regular file, or
    None when the path does not exist (or loops, or is not a regular file).
    """
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [root_fd]          # fds of the directories walked so far
    opened = [root_fd]
    try:
        pending = [p for p in relpath.split('/') if p not in ('', '.')]
        links = 0
        while pending:
            name = pending.pop(0)
            if name == '..':
                if len(stack) > 1:
                    stack.pop()
                continue
            try:
                fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=stack[-1])
            except (FileNotFoundError, NotADirectoryError):
                return None
            opened.append(fd)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    return None
                target = os.readlink(name, dir_fd=stack[-1])
                parts = [p for p in target.split('/') if p not in ('', '.')]
                if target.startswith('/'):
                    del stack[1:]
                pending = parts + pending
                continue
            if pending:
                if not stat.S_ISDIR(st.st_mode):
                    return None
                stack.append(fd)
                continue
            if not stat.S_ISREG(st.st_mode):
                return None
            # Reopen the O_PATH fd for reading: no path lookup happens again.
            return os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_CLOEXEC)
        return None
    finally:
        for fd in opened:
            os.close(fd)


def _read_db(rootfs, path):
    try:
        fd = _open_in_root(rootfs, path)
    except OSError:
        return None
    if fd is None:
        return None
    with os.fdopen(fd, 'rb') as f:
        data = f.read(_MAX_DB_SIZE + 1)
    if len(data) > _MAX_DB_SIZE:
        raise errors.InvalidArgument('%s in the image is too large' % path)
    rows = []
    for line in data.decode('utf-8', 'replace').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        rows.append(line.split(':'))
    return rows


def _parse_id(text):
    """Go's strconv.Atoi as runc uses it: a signed decimal, or None."""
    body = text[1:] if text[:1] in '+-' else text
    if body and body.isascii() and body.isdecimal():
        return int(text)
    return None


def _check_range(value):
    if not 0 <= value <= _MAX_ID:
        raise errors.InvalidArgument('uids and gids must be in range 0-%d' % _MAX_ID)
    return value


def _row_id(row, index):
    value = _parse_id(row[index]) if len(row) > index else None
    return value


def resolve_user(rootfs, user_string):
    """Docker's ``--user`` -> (uid, gid, supplementary gids) from the image's files.

    runc's GetExecUser rules: 'user[:group]', each a name or a number; a
    number is always an id (its passwd/group entry, when there is one, gives
    the rest); '' means uid 0.  Names are looked up in the rootfs'
    /etc/passwd and /etc/group (read without leaving the rootfs).  The
    supplementary groups are those listing the user by name, only when no
    group was given.  Unknown names raise InvalidArgument with runc's words
    ("unable to find user xyz: no matching entries in passwd file").
    """
    user_part, _, rest = (user_string or '').partition(':')
    group_part = rest.split(':', 1)[0]
    uid_arg = _parse_id(user_part)
    gid_arg = _parse_id(group_part)

    passwd = _read_db(rootfs, 'etc/passwd') or []
    entry = None
    for row in passwd:
        if len(row) < 4:
            continue
        row_uid = _row_id(row, 2)
        if not user_part:
            match = row_uid == 0
        elif uid_arg is not None:
            match = row_uid == uid_arg
        else:
            match = row[0] == user_part
        if match and row_uid is not None:
            entry = row
            break
    name = None
    uid, gid = 0, 0
    if entry is not None:
        name = entry[0]
        uid = _row_id(entry, 2)
        gid = _row_id(entry, 3) or 0
    elif user_part:
        if uid_arg is None:
            raise errors.InvalidArgument('unable to find user %s: no matching entries in '
                                         'passwd file' % user_part)
        uid = _check_range(uid_arg)

    extra = []
    if group_part or name is not None:
        groups = _read_db(rootfs, 'etc/group') or []
        if group_part:
            for row in groups:
                if len(row) < 3 or _row_id(row, 2) is None:
                    continue
                if (row[0] == group_part if gid_arg is None else _row_id(row, 2) == gid_arg):
                    gid = _row_id(row, 2)
                    break
            else:
                if gid_arg is None:
                    raise errors.InvalidArgument('unable to find group %s: no matching '
                                                 'entries in group file' % group_part)
                gid = _check_range(gid_arg)
        else:
            for row in groups:
                if len(row) >= 4 and _row_id(row, 2) is not None:
                    members = row[3].split(',')
                    if name in members:
                        extra.append(_row_id(row, 2))
    return uid, gid, extra
