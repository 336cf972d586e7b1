"""Resource limits: HostConfig -> OCI ``linux.resources`` and rlimits.

Docker's rules are the reference (moby daemon/daemon_unix.go
verifyPlatformContainerResources, adaptContainerSettings, getMemoryResources,
getCPUResources; container/container_unix.go UpdateContainer): the same
checks in the same order, the same messages, the same warnings when the
host lacks a controller (the limit is discarded, the create succeeds).
What Docker leaves to the runtime to fail at start (negative CPU shares,
unknown ulimit names, rlimits the engine cannot grant) is refused here with
a 400, so no container is created that could never start.

``HostInfo.probe()`` reads what this host's cgroups offer (v1, v2 or
hybrid); ``validate_create`` / ``validate_update`` check a request;
``oci_resources`` / ``update_resources`` / ``rlimits`` build what runc takes.
"""

import functools
import os
import re
import resource

from engine import cgroups
from engine import errors

MIN_MEMORY = 6291456             # 6 MiB, Docker's linuxMinMemory
MIN_CPU_SHARES = 2               # the kernel's bounds for cpu.shares (v1)
MAX_CPU_SHARES = 262144
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
CFS_PERIOD = 100000              # microseconds; Docker's period for NanoCpus
_INT64_MAX = 2 ** 63 - 1
_CAP_SYS_RESOURCE = 24

_INT = int
_BOOL = bool
_LIST = list

# HostConfig resource fields and their JSON types (None is always allowed).
HOST_CONFIG_TYPES = {
    'Memory': _INT, 'MemoryReservation': _INT, 'MemorySwap': _INT,
    'MemorySwappiness': _INT, 'OomKillDisable': _BOOL, 'OomScoreAdj': _INT,
    'KernelMemory': _INT, 'KernelMemoryTCP': _INT,
    'CpuShares': _INT, 'NanoCpus': _INT, 'CpuPeriod': _INT, 'CpuQuota': _INT,
    'CpuRealtimePeriod': _INT, 'CpuRealtimeRuntime': _INT, 'CpusetCpus': str,
    'CpusetMems': str, 'CpuCount': _INT, 'CpuPercent': _INT,
    'PidsLimit': _INT, 'BlkioWeight': _INT, 'Ulimits': _LIST, 'ShmSize': _INT,
    'IOMaximumIOps': _INT, 'IOMaximumBandwidth': _INT,
}

# Docker's inspect shows every Resources key, zero-valued when unset.
INSPECT_DEFAULTS = {
    'CpuShares': 0, 'Memory': 0, 'NanoCpus': 0, 'CgroupParent': '', 'BlkioWeight': 0,
    'BlkioWeightDevice': None, 'BlkioDeviceReadBps': None, 'BlkioDeviceWriteBps': None,
    'BlkioDeviceReadIOps': None, 'BlkioDeviceWriteIOps': None, 'CpuPeriod': 0,
    'CpuQuota': 0, 'CpuRealtimePeriod': 0, 'CpuRealtimeRuntime': 0, 'CpusetCpus': '',
    'CpusetMems': '', 'Devices': None, 'DeviceCgroupRules': None, 'DeviceRequests': None,
    'KernelMemory': 0, 'KernelMemoryTCP': 0, 'MemoryReservation': 0, 'MemorySwap': 0,
    'MemorySwappiness': None, 'OomKillDisable': False, 'PidsLimit': None, 'Ulimits': None,
    'CpuCount': 0, 'CpuPercent': 0, 'IOMaximumIOps': 0, 'IOMaximumBandwidth': 0,
    'OomScoreAdj': 0, 'ShmSize': DEFAULT_SHM_SIZE,
}

# The fields `docker update` changes (UpdateContainer), besides RestartPolicy.
UPDATABLE = ('BlkioWeight', 'CpuShares', 'NanoCpus', 'CpuPeriod', 'CpuQuota', 'CpusetCpus',
             'CpusetMems', 'Memory', 'MemorySwap', 'MemoryReservation', 'KernelMemory',
             'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'PidsLimit')

# go-units' ulimit names (moby's --ulimit), as RLIMIT_* for the OCI spec.
ULIMITS = {
    'core': 'RLIMIT_CORE', 'cpu': 'RLIMIT_CPU', 'data': 'RLIMIT_DATA',
    'fsize': 'RLIMIT_FSIZE', 'locks': 'RLIMIT_LOCKS', 'memlock': 'RLIMIT_MEMLOCK',
    'msgqueue': 'RLIMIT_MSGQUEUE', 'nice': 'RLIMIT_NICE', 'nofile': 'RLIMIT_NOFILE',
    'nproc': 'RLIMIT_NPROC', 'rss': 'RLIMIT_RSS', 'rtprio': 'RLIMIT_RTPRIO',
    'rttime': 'RLIMIT_RTTIME', 'sigpending': 'RLIMIT_SIGPENDING', 'stack': 'RLIMIT_STACK',
}
_RLIM_INFINITY = 2 ** 64 - 1


class HostInfo:
    """What this host's cgroups can limit (moby's sysinfo.SysInfo)."""

    def __init__(self, version=None, memory_limit=False, swap_limit=False,
                 memory_reservation=False, oom_kill_disable=False, memory_swappiness=False,
                 cpu_shares=False, cpu_cfs=False, cpu_realtime=False, cpuset=False,
                 cpus='', mems='', blkio_weight=False, pids_limit=False, ncpu=1,
                 can_raise_rlimits=True, oom_score_adj_floor=-1000):
        self.version = version
        self.memory_limit = memory_limit
        self.swap_limit = swap_limit
        self.memory_reservation = memory_reservation
        self.oom_kill_disable = oom_kill_disable
        self.memory_swappiness = memory_swappiness
        self.kernel_memory = False  # deprecated by the kernel; never offered
        self.cpu_shares = cpu_shares
        self.cpu_cfs = cpu_cfs
        self.cpu_realtime = cpu_realtime
        self.cpuset = cpuset
        self.cpus = cpus
        self.mems = mems
        self.blkio_weight = blkio_weight
        self.pids_limit = pids_limit
        self.ncpu = ncpu
        self.can_raise_rlimits = can_raise_rlimits
        self.oom_score_adj_floor = oom_score_adj_floor

    @classmethod
    def probe(cls, mounts=None, root='/'):
        mounts = mounts or cgroups.Mounts.probe(root)
        try:
            ncpu = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            ncpu = os.cpu_count() or 1
        can_raise = _has_cap(_CAP_SYS_RESOURCE, root)
        floor = -1000 if can_raise else _own_oom_score_adj(root)
        common = dict(ncpu=ncpu, can_raise_rlimits=can_raise, oom_score_adj_floor=floor)
        if mounts.version == cgroups.V2:
            ctrls = mounts.controllers_v2()
            top = mounts.v2[0]
            return cls(
                version=cgroups.V2, memory_limit='memory' in ctrls,
                swap_limit='memory' in ctrls, memory_reservation='memory' in ctrls,
                cpu_shares='cpu' in ctrls, cpu_cfs='cpu' in ctrls, cpuset='cpuset' in ctrls,
                cpus=_first_text(top, ('cpuset.cpus.effective',)) if 'cpuset' in ctrls else '',
                mems=_first_text(top, ('cpuset.mems.effective',)) if 'cpuset' in ctrls else '',
                blkio_weight='io' in ctrls, pids_limit='pids' in ctrls, **common)
        if mounts.version != cgroups.V1:
            return cls(**common)

        def has(ctrl, *names):
            top = mounts.controller_root(ctrl)
            return bool(top) and any(os.path.exists(os.path.join(top, n)) for n in names)
        cpuset_top = mounts.controller_root('cpuset')
        return cls(
            version=cgroups.V1,
            memory_limit=mounts.controller_root('memory') is not None,
            swap_limit=has('memory', 'memory.memsw.limit_in_bytes'),
            memory_reservation=has('memory', 'memory.soft_limit_in_bytes'),
            oom_kill_disable=has('memory', 'memory.oom_control'),
            memory_swappiness=has('memory', 'memory.swappiness'),
            cpu_shares=has('cpu', 'cpu.shares'),
            cpu_cfs=has('cpu', 'cpu.cfs_quota_us') and has('cpu', 'cpu.cfs_period_us'),
            cpu_realtime=has('cpu', 'cpu.rt_runtime_us'),
            cpuset=cpuset_top is not None,
            cpus=_first_text(cpuset_top, ('cpuset.cpus',)) if cpuset_top else '',
            mems=_first_text(cpuset_top, ('cpuset.mems',)) if cpuset_top else '',
            blkio_weight=has('blkio', 'blkio.weight', 'blkio.bfq.weight'),
            pids_limit=mounts.controller_root('pids') is not None, **common)

    def info_fields(self):
        """The /info keys Docker derives from its SysInfo."""
        return {
            'MemoryLimit': self.memory_limit, 'SwapLimit': self.swap_limit,
            'KernelMemory': False, 'KernelMemoryTCP': False,
            'CpuCfsPeriod': self.cpu_cfs, 'CpuCfsQuota': self.cpu_cfs,
            'CPUShares': self.cpu_shares, 'CPUSet': self.cpuset,
            'PidsLimit': self.pids_limit, 'OomKillDisable': self.oom_kill_disable,
            'CgroupVersion': self.version or '1',
        }

    def info_warnings(self):
        """The WARNING lines Docker's /info gives for missing controllers."""
        out = []
        v2 = self.version == cgroups.V2
        if not self.memory_limit:
            out.append('WARNING: No memory limit support')
        if not self.swap_limit:
            out.append('WARNING: No swap limit support')
        if not self.oom_kill_disable and not v2:
            out.append('WARNING: No oom kill disable support')
        if not self.cpu_cfs:
            out.append('WARNING: No cpu cfs quota support')
            out.append('WARNING: No cpu cfs period support')
        if not self.cpu_shares:
            out.append('WARNING: No cpu shares support')
        if not self.cpuset:
            out.append('WARNING: No cpuset support')
        if not self.blkio_weight:
            out.append('WARNING: No io.weight support' if v2
                       else 'WARNING: No blkio weight support')
        if not self.pids_limit:
            out.append('WARNING: No pids limit support')
        return out


def _first_text(top, names):
    for name in names:
        text = cgroups.read_text(os.path.join(top, name))
        if text is not None:
            return text
    return ''


def _status_mask(field, root='/'):
    try:
        with open(os.path.join(root, 'proc/self/status')) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _has_cap(bit, root='/'):
    mask = _status_mask('CapEff', root)
    return True if mask is None else bool(mask & (1 << bit))


def _own_oom_score_adj(root='/'):
    text = cgroups.read_text(os.path.join(root, 'proc/self/oom_score_adj'))
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


@functools.lru_cache(maxsize=1)
def host_info():
    """This host's HostInfo, probed once per engine process."""
    return HostInfo.probe()


# ------------------------------------------------------------------ parsing

def parse_list(text):
    """'0-2,5' -> {0, 1, 2, 5} (moby's parsers.ParseUintList)."""
    out = set()
    if text == '':
        return out
    for part in text.split(','):
        lo, dash, hi = part.partition('-')
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError('invalid format: %s' % text)
        if dash:
            a, b = int(lo), int(hi)
            if b < a or b - a > 65536:
                raise ValueError('invalid format: %s' % text)
            out.update(range(a, b + 1))
        else:
            out.add(int(lo))
    return out


def _value(host, name):
    value = host.get(name)
    kind = HOST_CONFIG_TYPES.get(name)
    if value is None:
        return None
    if kind is _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.InvalidArgument('HostConfig.%s must be an integer' % name)
        if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            raise errors.InvalidArgument('HostConfig.%s is out of range: %d' % (name, value))
    elif kind is not None and not isinstance(value, kind):
        raise errors.InvalidArgument('HostConfig.%s has the wrong type' % name)
    return value


def _ints(host):
    return {name: _value(host, name) for name in HOST_CONFIG_TYPES}


# --------------------------------------------------------------- validation

def _verify(r, info, update):
    """moby's verifyPlatformContainerResources on ``r`` (a dict it adjusts);
    returns the warnings."""
    w = []
    g = lambda k: r.get(k) or 0  # noqa: E731
    if r.get('MemorySwappiness') == -1:
        r['MemorySwappiness'] = None
    if g('Memory') != 0 and g('Memory') < MIN_MEMORY:
        raise errors.InvalidArgument('Minimum memory limit allowed is 6MB')
    if g('MemorySwap') < -1:
        raise errors.InvalidArgument('Invalid MemorySwap %d: use -1 for unlimited swap'
                                     % g('MemorySwap'))
    if g('Memory') > 0 and not info.memory_limit:
        w.append('Your kernel does not support memory limit capabilities or the cgroup is '
                 'not mounted. Limitation discarded.')
        r['Memory'], r['MemorySwap'] = 0, -1
    if g('Memory') > 0 and g('MemorySwap') != -1 and not info.swap_limit:
        w.append('Your kernel does not support swap limit capabilities or the cgroup is not '
                 'mounted. Memory limited without swap.')
        r['MemorySwap'] = -1
    if g('Memory') > 0 and g('MemorySwap') > 0 and g('MemorySwap') < g('Memory'):
        raise errors.InvalidArgument('Minimum memoryswap limit should be larger than memory '
                                     'limit, see usage')
    if g('Memory') == 0 and g('MemorySwap') > 0 and not update:
        raise errors.InvalidArgument('You should always set the Memory limit when using '
                                     'Memoryswap limit, see usage')
    if r.get('MemorySwappiness') is not None and not info.memory_swappiness:
        w.append('Your kernel does not support memory swappiness capabilities or the cgroup '
                 'is not mounted. Memory swappiness discarded.')
        r['MemorySwappiness'] = None
    swappiness = r.get('MemorySwappiness')
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise errors.InvalidArgument('Invalid value: %d, valid memory swappiness range is '
                                     '0-100' % swappiness)
    if g('MemoryReservation') > 0 and not info.memory_reservation:
        w.append('Your kernel does not support memory soft limit capabilities or the cgroup '
                 'is not mounted. Limitation discarded.')
        r['MemoryReservation'] = 0
    if 0 < g('MemoryReservation') < MIN_MEMORY:
        raise errors.InvalidArgument('Minimum memory reservation allowed is 6MB')
    if g('Memory') > 0 and g('MemoryReservation') > 0 and g('Memory') < g('MemoryReservation'):
        raise errors.InvalidArgument('Minimum memory limit can not be less than memory '
                                     'reservation limit, see usage')
    for name in ('KernelMemory', 'KernelMemoryTCP'):
        if g(name):
            raise errors.InvalidArgument(
                'HostConfig.%s is not supported: kernel memory limits are deprecated by '
                'Linux and not offered by this engine' % name)
    if r.get('OomKillDisable') is not None and not info.oom_kill_disable:
        if r['OomKillDisable']:
            w.append('Your kernel does not support OomKillDisable. OomKillDisable discarded.')
        r['OomKillDisable'] = None
    if r.get('OomKillDisable') and g('Memory') == 0:
        w.append('OOM killer is disabled for the container, but no memory limit is set, this '
                 'can result in the system running out of resources.')
    if r.get('PidsLimit') is not None and not info.pids_limit:
        if r['PidsLimit'] > 0:
            w.append('Your kernel does not support PIDs limit capabilities or the cgroup is '
                     'not mounted. PIDs limit discarded.')
        r['PidsLimit'] = None

    if g('NanoCpus') > 0 and g('CpuPeriod') > 0:
        raise errors.InvalidArgument('Conflicting options: Nano CPUs and CPU Period cannot '
                                     'both be set')
    if g('NanoCpus') > 0 and g('CpuQuota') > 0:
        raise errors.InvalidArgument('Conflicting options: Nano CPUs and CPU Quota cannot '
                                     'both be set')
    if g('NanoCpus') > 0 and not info.cpu_cfs:
        raise errors.InvalidArgument('NanoCPUs can not be set, as your kernel does not '
                                     'support CPU CFS scheduler or the cgroup is not mounted')
    if g('NanoCpus') < 0 or g('NanoCpus') > info.ncpu * 10 ** 9:
        raise errors.InvalidArgument('Range of CPUs is from 0.01 to %d.00, as there are only '
                                     '%d CPUs available' % (info.ncpu, info.ncpu))
    if g('CpuShares') > 0 and not info.cpu_shares:
        w.append('Your kernel does not support CPU shares or the cgroup is not mounted. '
                 'Shares discarded.')
        r['CpuShares'] = 0
    if g('CpuShares') < 0:
        raise errors.InvalidArgument('Invalid CpuShares %d: CPU shares can not be negative'
                                     % g('CpuShares'))
    if info.version == cgroups.V1 and g('CpuShares'):
        # runc writes cpu.shares and fails the start when the kernel clamps it.
        if g('CpuShares') < MIN_CPU_SHARES:
            raise errors.InvalidArgument('Invalid CpuShares %d: the minimum allowed cpu-shares '
                                         'is %d' % (g('CpuShares'), MIN_CPU_SHARES))
        if g('CpuShares') > MAX_CPU_SHARES:
            raise errors.InvalidArgument('Invalid CpuShares %d: the maximum allowed cpu-shares '
                                         'is %d' % (g('CpuShares'), MAX_CPU_SHARES))
    if (g('CpuPeriod') or g('CpuQuota')) and not info.cpu_cfs:
        w.append('Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.')
        r['CpuPeriod'] = r['CpuQuota'] = 0
    if g('CpuPeriod') != 0 and not 1000 <= g('CpuPeriod') <= 1000000:
        raise errors.InvalidArgument('CPU cfs period can not be less than 1ms (i.e. 1000) or '
                                     'larger than 1s (i.e. 1000000)')
    if g('CpuQuota') < -1:
        raise errors.InvalidArgument('Invalid CpuQuota %d: use -1 for no quota' % g('CpuQuota'))
    if 0 < g('CpuQuota') < 1000:
        raise errors.InvalidArgument('CPU cfs quota can not be less than 1ms (i.e. 1000)')
    if g('CpuPercent') > 0:
        w.append('linux does not support CPU percent. Percent discarded.')
        r['CpuPercent'] = 0
    if g('CpuCount'):
        raise errors.InvalidArgument('HostConfig.CpuCount is only supported on Windows')
    for name in ('CpuRealtimePeriod', 'CpuRealtimeRuntime'):
        if g(name):
            raise errors.InvalidArgument('HostConfig.%s (realtime CPU scheduling) is not '
                                         'supported by this engine yet' % name)

    if (r.get('CpusetCpus') or r.get('CpusetMems')) and not info.cpuset:
        w.append('Your kernel does not support cpuset or the cgroup is not mounted. Cpuset '
                 'discarded.')
        r['CpusetCpus'] = r['CpusetMems'] = ''
    for key, label, avail, what in (('CpusetCpus', 'cpus', info.cpus, 'CPUs'),
                                    ('CpusetMems', 'mems', info.mems, 'memory nodes')):
        wanted = r.get(key) or ''
        if not wanted:
            continue
        try:
            requested = parse_list(wanted)
        except ValueError as exc:
            raise errors.InvalidArgument('Invalid value %s for cpuset %s: %s'
                                         % (wanted, label, exc))
        try:
            available = parse_list(avail)
        except ValueError:
            available = set()
        if not requested <= available:
            raise errors.InvalidArgument('Requested %s are not available - requested %s, '
                                         'available: %s' % (what, wanted, avail))

    if g('BlkioWeight') > 0 and not info.blkio_weight:
        w.append('Your kernel does not support Block I/O weight or the cgroup is not mounted. '
                 'Weight discarded.')
        r['BlkioWeight'] = 0
    if g('BlkioWeight') > 0 and not 10 <= g('BlkioWeight') <= 1000:
        raise errors.InvalidArgument('Range of blkio weight is from 10 to 1000')
    if g('BlkioWeight') < 0:
        raise errors.InvalidArgument('Range of blkio weight is from 10 to 1000')
    if g('IOMaximumBandwidth') or g('IOMaximumIOps'):
        raise errors.InvalidArgument('Invalid QoS settings: linux does not support Maximum IO '
                                     'Bandwidth or Maximum IO IOps')
    return w


def _verify_settings(r, info):
    """The non-resource checks of verifyPlatformContainerSettings we own."""
    shm = r.get('ShmSize') or 0
    if shm < 0:
        raise errors.InvalidArgument('SHM size can not be less than 0')
    adj = r.get('OomScoreAdj') or 0
    if not -1000 <= adj <= 1000:
        raise errors.InvalidArgument('Invalid value %d, range for oom score adj is '
                                     '[-1000, 1000]' % adj)
    if adj < info.oom_score_adj_floor:
        raise errors.InvalidArgument(
            'Invalid value %d for oom score adj: below %d needs CAP_SYS_RESOURCE, which '
            'this engine does not have' % (adj, info.oom_score_adj_floor))
    r['Ulimits'] = check_ulimits(r.get('Ulimits'), info)


def check_ulimits(ulimits, info=None):
    """Validate [{Name, Soft, Hard}]; names as go-units knows them."""
    if ulimits is None:
        return None
    if not isinstance(ulimits, list):
        raise errors.InvalidArgument('HostConfig.Ulimits must be an array')
    hard_cap = None
    if info is not None and not info.can_raise_rlimits:
        hard_cap = resource.getrlimit
    out = []
    for ul in ulimits:
        if not isinstance(ul, dict):
            raise errors.InvalidArgument('HostConfig.Ulimits entries must be objects with '
                                         'Name, Soft and Hard')
        name, soft, hard = ul.get('Name'), ul.get('Soft'), ul.get('Hard')
        if not isinstance(name, str) or name not in ULIMITS:
            raise errors.InvalidArgument('invalid ulimit type: %s' % (name,))
        for label, v in (('soft', soft), ('hard', hard)):
            if isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= _INT64_MAX:
                raise errors.InvalidArgument('invalid ulimit %s value for %s: %r (want -1 for '
                                             'unlimited or a non-negative integer)'
                                             % (label, name, v))
        s, h = _rlim(soft), _rlim(hard)
        if s > h:
            raise errors.InvalidArgument('ulimit soft limit must be less than or equal to hard '
                                         'limit: %d > %d' % (soft, hard))
        if hard_cap is not None:
            own = hard_cap(getattr(resource, ULIMITS[name]))[1]
            own = _RLIM_INFINITY if own == resource.RLIM_INFINITY else own
            if h > own:
                raise errors.InvalidArgument(
                    'ulimit %s: hard limit %d is above what this engine may grant (%d): it '
                    'lacks CAP_SYS_RESOURCE' % (name, hard, own))
        out = [u for u in out if u['Name'] != name]
        out.append({'Name': name, 'Soft': soft, 'Hard': hard})
    return out


def _rlim(v):
    return _RLIM_INFINITY if v == -1 else v


def validate_create(host, info=None):
    """Check and complete the resource fields of a create's HostConfig in place.

    Returns Docker's warnings; raises InvalidArgument (400) for impossible
    values.  Afterwards the record holds what inspect shows.
    """
    info = info or host_info()
    r = _ints(host)
    r['CpusetCpus'] = host.get('CpusetCpus') or ''
    r['CpusetMems'] = host.get('CpusetMems') or ''
    r['Ulimits'] = host.get('Ulimits')
    warnings = _verify(r, info, update=False)
    _verify_settings(r, info)
    # adaptContainerSettings
    if (r.get('Memory') or 0) > 0 and not r.get('MemorySwap'):
        r['MemorySwap'] = r['Memory'] * 2
    if not r.get('ShmSize'):
        r['ShmSize'] = DEFAULT_SHM_SIZE
    if r.get('OomKillDisable') is None:
        r['OomKillDisable'] = False
    if r.get('PidsLimit') is not None and r['PidsLimit'] <= 0:
        r['PidsLimit'] = None  # 0 and -1 both mean unlimited
    for key, value in r.items():
        if value is None and key not in ('MemorySwappiness', 'PidsLimit', 'Ulimits'):
            value = INSPECT_DEFAULTS.get(key, 0)
        host[key] = value
    return warnings


def validate_update(body, current, info=None):
    """An update request against a container's HostConfig ``current``.

    Returns (new HostConfig, OCI resources for runc update, warnings).
    Raises InvalidArgument (400) for impossible values and Conflict (409)
    for Docker's conflicting-update rules.
    """
    info = info or host_info()
    if not isinstance(body, dict):
        raise errors.InvalidArgument('update config must be a JSON object')
    for name in HOST_CONFIG_TYPES:
        if name not in UPDATABLE and name in body:
            value = body[name]
            unchanged = value in (None, 0, '', [], False) or value == current.get(name)
            if name == 'MemorySwappiness' and value == -1:
                unchanged = True
            if not unchanged:
                raise errors.InvalidArgument('HostConfig.%s cannot be changed by an update: '
                                             'create a new container' % name)
    r = {name: _value(body, name) for name in UPDATABLE if name not in ('CpusetCpus',
                                                                         'CpusetMems')}
    for name in ('CpusetCpus', 'CpusetMems'):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise errors.InvalidArgument('HostConfig.%s must be a string' % name)
        r[name] = value or ''
    warnings = _verify(r, info, update=True)
    g = lambda k: r.get(k) or 0  # noqa: E731
    cur = lambda k: current.get(k) or 0  # noqa: E731
    for mine, theirs, message in (
            ('NanoCpus', 'CpuPeriod', 'Nano CPUs cannot be updated as CPU Period has already '
                                      'been set'),
            ('NanoCpus', 'CpuQuota', 'Nano CPUs cannot be updated as CPU Quota has already '
                                     'been set'),
            ('CpuPeriod', 'NanoCpus', 'CPU Period cannot be updated as NanoCPUs has already '
                                      'been set'),
            ('CpuQuota', 'NanoCpus', 'CPU Quota cannot be updated as NanoCPUs has already '
                                     'been set')):
        if g(mine) > 0 and cur(theirs) > 0:
            raise errors.Conflict('Conflicting options: ' + message)
    new = dict(current)
    for name in ('BlkioWeight', 'CpuShares', 'NanoCpus', 'CpuPeriod', 'CpuQuota', 'CpusetCpus',
                 'CpusetMems', 'MemorySwap', 'MemoryReservation'):
        if r.get(name):
            new[name] = r[name]
    if g('Memory'):
        # The kernel refuses a memory limit above the memory+swap limit.
        if g('Memory') > cur('MemorySwap') and g('MemorySwap') == 0:
            raise errors.Conflict('Memory limit should be smaller than already set memoryswap '
                                  'limit, update the memoryswap at the same time')
        new['Memory'] = r['Memory']
    if (new.get('Memory') or 0) > 0 and (new.get('MemorySwap') or 0) > 0 \
            and new['MemorySwap'] < new['Memory']:
        raise errors.InvalidArgument('Minimum memoryswap limit should be larger than memory '
                                     'limit, see usage')
    if (new.get('Memory') or 0) > 0 and (new.get('MemoryReservation') or 0) > new['Memory']:
        raise errors.InvalidArgument('Minimum memory limit can not be less than memory '
                                     'reservation limit, see usage')
    if 'PidsLimit' in body and body['PidsLimit'] is not None and info.pids_limit:
        # Docker records 0 for "unlimited" here (and applies -1).
        new['PidsLimit'] = max(body['PidsLimit'], 0)
    oci = oci_resources(r, info, update=True)
    if 'PidsLimit' in body and body['PidsLimit'] is not None and body['PidsLimit'] <= 0 \
            and info.pids_limit:
        oci['pids'] = {'limit': -1}
    return new, oci, warnings


# ------------------------------------------------------------------- OCI

def oci_resources(host, info=None, update=False):
    """linux.resources for runc from a (validated) HostConfig.

    Unset fields stay out, so runc leaves the cgroup's value alone (which
    also makes the same shape right for ``runc update``).
    """
    g = lambda k: host.get(k) or 0  # noqa: E731
    out = {}
    memory = {}
    if g('Memory') > 0:
        memory['limit'] = g('Memory')
    if g('MemoryReservation') > 0:
        memory['reservation'] = g('MemoryReservation')
    if g('MemorySwap') > 0 or (update and g('MemorySwap') == -1):
        memory['swap'] = g('MemorySwap')
    if host.get('MemorySwappiness') is not None and not update:
        memory['swappiness'] = host['MemorySwappiness']
    if host.get('OomKillDisable') is not None and not update and \
            (info is None or info.oom_kill_disable):
        memory['disableOOMKiller'] = bool(host['OomKillDisable'])
    if memory:
        out['memory'] = memory
    cpu = {}
    if g('CpuShares') > 0:
        cpu['shares'] = g('CpuShares')
    if g('NanoCpus') > 0:
        cpu['period'] = CFS_PERIOD
        cpu['quota'] = g('NanoCpus') * CFS_PERIOD // 10 ** 9
    if g('CpuPeriod'):
        cpu['period'] = g('CpuPeriod')
    if g('CpuQuota'):
        cpu['quota'] = g('CpuQuota')
    if host.get('CpusetCpus'):
        cpu['cpus'] = host['CpusetCpus']
    if host.get('CpusetMems'):
        cpu['mems'] = host['CpusetMems']
    if cpu:
        out['cpu'] = cpu
    if g('PidsLimit') > 0:
        out['pids'] = {'limit': g('PidsLimit')}
    if g('BlkioWeight') > 0:
        out['blockIO'] = {'weight': g('BlkioWeight')}
    return out


def rlimits(host, default_nofile):
    """process.rlimits: the engine's default nofile, overridden by Ulimits."""
    limits = {'RLIMIT_NOFILE': (default_nofile, default_nofile)}
    for ul in host.get('Ulimits') or ():
        limits[ULIMITS[ul['Name']]] = (_rlim(ul['Soft']), _rlim(ul['Hard']))
    return [{'type': kind, 'soft': soft, 'hard': hard}
            for kind, (soft, hard) in limits.items()]


_MEMORY_BUSY = re.compile(r'unable to set memory limit to (\d+) \(current usage: (\d+)')


def explain_update_failure(message):
    """The runtime's words on a failed live update, for a user."""
    m = _MEMORY_BUSY.search(message)
    if m:
        return ('cannot set the memory limit to %s bytes: the container uses %s bytes now and '
                'the kernel cannot reclaim enough' % m.groups())
    return message
