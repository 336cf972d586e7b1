"""Find cgroups on v1, v2 and hybrid hosts and read their statistics.

A *hierarchy* is one mounted cgroup tree: on v1 one per controller (or
per group of co-mounted controllers, ``cpu,cpuacct``), on v2 the single
unified tree.  Hybrid hosts mount the v1 controllers and a v2 tree side by
side; runc then puts resources in the v1 controllers, so a hybrid host is
read as v1 (its v2 tree holds no controller we use).

Everything takes a ``root`` argument (default ``/``) naming where /proc
and /sys are, so unit tests can point the readers at a fake tree.
"""

import os

V1 = '1'
V2 = '2'

# memory.stat keys Docker reports on v1, in the names it uses.
V1_MEMORY_KEYS = (
    'cache', 'rss', 'rss_huge', 'mapped_file', 'dirty', 'writeback', 'pgpgin',
    'pgpgout', 'pgfault', 'pgmajfault', 'inactive_anon', 'active_anon',
    'inactive_file', 'active_file', 'unevictable', 'hierarchical_memory_limit',
    'hierarchical_memsw_limit', 'total_cache', 'total_rss', 'total_rss_huge',
    'total_mapped_file', 'total_dirty', 'total_writeback', 'total_pgpgin',
    'total_pgpgout', 'total_pgfault', 'total_pgmajfault', 'total_inactive_anon',
    'total_active_anon', 'total_inactive_file', 'total_active_file',
    'total_unevictable',
)

# memory.stat keys Docker reports on v2.
V2_MEMORY_KEYS = (
    'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped',
    'file_dirty', 'file_writeback', 'anon_thp', 'inactive_anon', 'active_anon',
    'inactive_file', 'active_file', 'unevictable', 'slab_reclaimable',
    'slab_unreclaimable', 'pgfault', 'pgmajfault', 'workingset_refault',
    'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan',
    'pgsteal', 'pgactivate', 'pgdeactivate', 'pglazyfree', 'pglazyfreed',
    'thp_fault_alloc', 'thp_collapse_alloc',
)

# Controllers whose files we read or write.
V1_CONTROLLERS = ('cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio')

_CLOCK_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100
_NS = 1000000000


def _unescape(path):
    # mountinfo escapes space, tab, newline and backslash as octal.
    out, i = [], 0
    while i < len(path):
        if path[i] == '\\' and i + 3 < len(path) and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return ''.join(out)


class Mounts:
    """The cgroup hierarchies mounted on a host.

    ``v1``: {controller: (mountpoint, root inside the hierarchy)};
    ``v2``: (mountpoint, root) of the unified tree or None;
    ``version``: V1 when any v1 controller we use is mounted (v1 and hybrid
    hosts), V2 on a unified host, None without cgroups.
    """

    def __init__(self, v1, v2):
        self.v1 = v1
        self.v2 = v2
        if any(c in v1 for c in V1_CONTROLLERS):
            self.version = V1
        elif v2 is not None:
            self.version = V2
        else:
            self.version = None

    @property
    def hybrid(self):
        return bool(self.v1) and self.v2 is not None

    @classmethod
    def from_mountinfo(cls, text, root='/'):
        v1, v2 = {}, None
        for line in text.splitlines():
            left, sep, right = line.partition(' - ')
            if not sep:
                continue
            fields = left.split()
            rfields = right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            fstype, options = rfields[0], rfields[2]
            mroot, mountpoint = _unescape(fields[3]), _unescape(fields[4])
            mountpoint = os.path.join(root, mountpoint.lstrip('/'))
            if fstype == 'cgroup2':
                if v2 is None:
                    v2 = (mountpoint, mroot)
            elif fstype == 'cgroup':
                for opt in options.split(','):
                    name = opt[5:] if opt.startswith('name=') else opt
                    if opt.startswith('name=') or opt in V1_CONTROLLERS or opt in (
                            'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event',
                            'hugetlb', 'rdma', 'misc'):
                        v1.setdefault(name, (mountpoint, mroot))
        return cls(v1, v2)

    @classmethod
    def probe(cls, root='/'):
        try:
            with open(os.path.join(root, 'proc/self/mountinfo')) as f:
                return cls.from_mountinfo(f.read(), root)
        except OSError:
            return cls({}, None)

    def controller_root(self, controller):
        """Directory of the hierarchy's top for ``controller`` (v1) or the v2 tree."""
        if self.version == V1:
            mount = self.v1.get(controller)
            return mount[0] if mount else None
        return self.v2[0] if self.v2 else None

    def controllers_v2(self):
        """Controllers the unified tree offers (empty on v1)."""
        if not self.v2:
            return set()
        text = read_text(os.path.join(self.v2[0], 'cgroup.controllers')) or ''
        return set(text.split())


def hierarchy_path(mount, path):
    """Directory of cgroup ``path`` (as /proc/PID/cgroup names it) in the
    hierarchy ``mount`` ((mountpoint, root) from Mounts)."""
    mountpoint, mroot = mount
    path = '/' + path.strip('/')
    # A hierarchy mounted from a sub-tree (inside a container) names groups
    # relative to that sub-tree.
    if mroot not in ('', '/') and (path == mroot or path.startswith(mroot.rstrip('/') + '/')):
        path = path[len(mroot.rstrip('/')):] or '/'
    return os.path.join(mountpoint, path.lstrip('/'))


class Cgroup:
    """One container's cgroup: a directory per controller (v1) or one (v2)."""

    def __init__(self, version, dirs):
        self.version = version
        self.dirs = dirs        # v1: {controller: dir}; v2: {'': dir}

    def path(self, controller, name):
        base = self.dirs.get('' if self.version == V2 else controller)
        return os.path.join(base, name) if base else None

    def read(self, controller, name):
        path = self.path(controller, name)
        return read_text(path) if path else None

    def exists(self):
        return any(os.path.isdir(d) for d in self.dirs.values())


def locate(cgroups_path, mounts=None, pid=None, root='/'):
    """The Cgroup of a container.

    ``cgroups_path``: the OCI cgroupsPath runc was given (absolute, from the
    top of each hierarchy).  With ``pid`` the process's own
    /proc/<pid>/cgroup is preferred, as it is the truth when it exists.
    """
    mounts = mounts or Mounts.probe(root)
    paths = {}
    if pid:
        text = read_text(os.path.join(root, 'proc/%d/cgroup' % int(pid)))
        for line in (text or '').splitlines():
            parts = line.split(':', 2)
            if len(parts) != 3:
                continue
            if parts[0] == '0' and parts[1] == '':
                paths[''] = parts[2]
            for ctrl in parts[1].split(','):
                if ctrl:
                    paths[ctrl] = parts[2]
    if mounts.version == V2:
        rel = paths.get('', cgroups_path)
        return Cgroup(V2, {'': hierarchy_path(mounts.v2, rel)} if mounts.v2 else {})
    dirs = {}
    for ctrl in V1_CONTROLLERS:
        mount = mounts.v1.get(ctrl)
        if mount:
            dirs[ctrl] = hierarchy_path(mount, paths.get(ctrl, cgroups_path))
    return Cgroup(V1, dirs)


def from_runc_paths(paths):
    """The Cgroup runc recorded in its state.json ``cgroup_paths`` (or None)."""
    if not isinstance(paths, dict):
        return None
    paths = {k: v for k, v in paths.items()
             if isinstance(k, str) and isinstance(v, str) and v.startswith('/sys/fs/cgroup/')}
    if 'memory' in paths:
        return Cgroup(V1, {c: paths[c] for c in V1_CONTROLLERS if c in paths})
    if '' in paths:
        return Cgroup(V2, {'': paths['']})
    return None


# ----------------------------------------------------------------- reading

def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, ValueError):
        return None


def _int(text, default=0):
    if text is None:
        return default
    text = text.strip()
    if text == 'max':
        return None
    try:
        return int(text.split()[0]) if text else default
    except ValueError:
        return default


def _flat_keyed(text):
    """'key value' lines -> {key: int}."""
    out = {}
    for line in (text or '').splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _blkio_v1(text):
    """'8:0 Read 4096' lines -> Docker's BlkioStatEntry dicts ('Total' dropped
    only when the kernel prints the grand total without a device)."""
    out = []
    for line in (text or '').splitlines():
        parts = line.split()
        if len(parts) != 3 or ':' not in parts[0]:
            continue
        major, _, minor = parts[0].partition(':')
        try:
            out.append({'major': int(major), 'minor': int(minor), 'op': parts[1],
                        'value': int(parts[2])})
        except ValueError:
            continue
    return out


def _io_v2(text):
    """io.stat lines -> (bytes entries, ios entries) in Docker's shape."""
    service_bytes, serviced = [], []
    for line in (text or '').splitlines():
        parts = line.split()
        if not parts or ':' not in parts[0]:
            continue
        major, _, minor = parts[0].partition(':')
        try:
            major, minor = int(major), int(minor)
        except ValueError:
            continue
        kv = {}
        for item in parts[1:]:
            k, _, v = item.partition('=')
            try:
                kv[k] = int(v)
            except ValueError:
                pass
        for key, op, target in (('rbytes', 'read', service_bytes),
                                ('wbytes', 'write', service_bytes),
                                ('rios', 'read', serviced), ('wios', 'write', serviced)):
            target.append({'major': major, 'minor': minor, 'op': op, 'value': kv.get(key, 0)})
    return service_bytes, serviced


def read_stats(cg, machine_memory=0):
    """Statistics of a cgroup as Docker's stats fields (without read times).

    Returns {'cpu_stats', 'memory_stats', 'pids_stats', 'blkio_stats'}.
    """
    if cg.version == V2:
        return _read_v2(cg, machine_memory)
    return _read_v1(cg, machine_memory)


def _empty_blkio():
    return {k: [] for k in BLKIO_KEYS}


BLKIO_KEYS = ('io_service_bytes_recursive', 'io_serviced_recursive', 'io_queue_recursive',
              'io_service_time_recursive', 'io_wait_time_recursive', 'io_merged_recursive',
              'io_time_recursive', 'sectors_recursive')


def _read_v1(cg, machine_memory):
    acct = _flat_keyed(cg.read('cpuacct', 'cpuacct.stat'))
    percpu = [int(v) for v in (cg.read('cpuacct', 'cpuacct.usage_percpu') or '').split()
              if v.isdigit()]
    throttle = _flat_keyed(cg.read('cpu', 'cpu.stat'))
    cpu = {
        'cpu_usage': {
            'total_usage': _int(cg.read('cpuacct', 'cpuacct.usage')) or 0,
            'percpu_usage': percpu,
            'usage_in_kernelmode': acct.get('system', 0) * _NS // _CLOCK_TICKS,
            'usage_in_usermode': acct.get('user', 0) * _NS // _CLOCK_TICKS,
        },
        'throttling_data': {
            'periods': throttle.get('nr_periods', 0),
            'throttled_periods': throttle.get('nr_throttled', 0),
            'throttled_time': throttle.get('throttled_time', 0),
        },
    }
    raw = _flat_keyed(cg.read('memory', 'memory.stat'))
    limit = _int(cg.read('memory', 'memory.limit_in_bytes')) or 0
    if machine_memory and limit > machine_memory:
        limit = machine_memory
    memory = {
        'usage': _int(cg.read('memory', 'memory.usage_in_bytes')) or 0,
        'max_usage': _int(cg.read('memory', 'memory.max_usage_in_bytes')) or 0,
        'stats': {k: raw.get(k, 0) for k in V1_MEMORY_KEYS},
        'failcnt': _int(cg.read('memory', 'memory.failcnt')) or 0,
        'limit': limit,
    }
    pids = {'current': _int(cg.read('pids', 'pids.current')) or 0,
            'limit': _int(cg.read('pids', 'pids.max')) or 0}
    blkio = _empty_blkio()
    for key, name in (('io_service_bytes_recursive', 'io_service_bytes_recursive'),
                      ('io_serviced_recursive', 'io_serviced_recursive')):
        # CFQ/BFQ-less kernels keep only the throttle counters, as here.
        entries = _blkio_v1(cg.read('blkio', 'blkio.' + name))
        if not entries:
            entries = _blkio_v1(cg.read('blkio', 'blkio.throttle.' + name))
        blkio[key] = entries
    return {'cpu_stats': cpu, 'memory_stats': memory, 'pids_stats': pids,
            'blkio_stats': blkio}


def _read_v2(cg, machine_memory):
    stat = _flat_keyed(cg.read('cpu', 'cpu.stat'))
    cpu = {
        'cpu_usage': {
            'total_usage': stat.get('usage_usec', 0) * 1000,
            'percpu_usage': [],
            'usage_in_kernelmode': stat.get('system_usec', 0) * 1000,
            'usage_in_usermode': stat.get('user_usec', 0) * 1000,
        },
        'throttling_data': {
            'periods': stat.get('nr_periods', 0),
            'throttled_periods': stat.get('nr_throttled', 0),
            'throttled_time': stat.get('throttled_usec', 0) * 1000,
        },
    }
    raw = _flat_keyed(cg.read('memory', 'memory.stat'))
    limit = _int(cg.read('memory', 'memory.max'))
    if limit is None or (machine_memory and limit > machine_memory):
        limit = machine_memory
    events = _flat_keyed(cg.read('memory', 'memory.events'))
    memory = {
        'usage': _int(cg.read('memory', 'memory.current')) or 0,
        'max_usage': 0,
        'stats': {k: raw.get(k, 0) for k in V2_MEMORY_KEYS},
        'failcnt': events.get('oom', 0),
        'limit': limit or 0,
    }
    pids = {'current': _int(cg.read('pids', 'pids.current')) or 0,
            'limit': _int(cg.read('pids', 'pids.max')) or 0}
    blkio = {k: None for k in BLKIO_KEYS}
    service_bytes, _ = _io_v2(cg.read('io', 'io.stat'))
    blkio['io_service_bytes_recursive'] = service_bytes
    return {'cpu_stats': cpu, 'memory_stats': memory, 'pids_stats': pids,
            'blkio_stats': blkio}


def oom_kills(cg):
    """How many processes the kernel OOM-killed in this cgroup (None if unknown)."""
    if cg.version == V2:
        events = _flat_keyed(cg.read('memory', 'memory.events'))
        return events.get('oom_kill') if events else None
    control = _flat_keyed(cg.read('memory', 'memory.oom_control'))
    return control.get('oom_kill') if control else None


def system_cpu_usage(root='/'):
    """Host CPU time in nanoseconds, as Docker computes it from /proc/stat."""
    text = read_text(os.path.join(root, 'proc/stat')) or ''
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == 'cpu':
            try:
                ticks = sum(int(v) for v in parts[1:8])
            except ValueError:
                return 0
            return ticks * _NS // _CLOCK_TICKS
    return 0


def net_dev(pid, root='/'):
    """{interface: Docker NetworkStats} from /proc/<pid>/net/dev (its netns)."""
    text = read_text(os.path.join(root, 'proc/%d/net/dev' % int(pid)))
    out = {}
    for line in (text or '').splitlines()[2:]:
        name, sep, rest = line.partition(':')
        if not sep:
            continue
        values = rest.split()
        if len(values) < 16:
            continue
        try:
            v = [int(x) for x in values[:16]]
        except ValueError:
            continue
        out[name.strip()] = {
            'rx_bytes': v[0], 'rx_packets': v[1], 'rx_errors': v[2], 'rx_dropped': v[3],
            'tx_bytes': v[8], 'tx_packets': v[9], 'tx_errors': v[10], 'tx_dropped': v[11],
        }
    return out
