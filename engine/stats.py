"""``GET /containers/{id}/stats``: Docker's StatsJSON from the container's cgroup.

A sample is taken per client once a second (Docker's collector interval).
Each sample carries the previous one's CPU figures as ``precpu_stats`` so
clients compute CPU % from the difference; ``stream=false`` waits for a
second sample for the same reason, ``one-shot=true`` does not.  A
container that is not running yields Docker's empty stats (zeroes, only
name and id set), as does one whose cgroup vanished mid-sample.
"""

import copy
import os
import time

from engine import cgroups
from engine import util
from engine.runtime import spec as spec_mod

INTERVAL = 1.0


def _machine_memory():
    try:
        with open('/proc/meminfo') as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def _empty_cpu():
    return {'cpu_usage': {'total_usage': 0, 'percpu_usage': [], 'usage_in_kernelmode': 0,
                          'usage_in_usermode': 0},
            'system_cpu_usage': 0, 'online_cpus': 0,
            'throttling_data': {'periods': 0, 'throttled_periods': 0, 'throttled_time': 0}}


class Sample:
    """One reading of a container, before rendering."""

    def __init__(self, read_ns=0, cpu=None, memory=None, pids=None, blkio=None, networks=None):
        self.read_ns = read_ns
        self.cpu = cpu or _empty_cpu()
        self.memory = memory or {}
        self.pids = pids or {}
        self.blkio = blkio
        self.networks = networks or {}


class StatsService:
    def __init__(self, cgroup_parent, mounts=None):
        self.cgroup_parent = cgroup_parent
        self.mounts = mounts
        self.machine_memory = _machine_memory()
        self.online_cpus = os.sysconf('SC_NPROCESSORS_ONLN')

    def _mounts(self):
        if self.mounts is None:
            self.mounts = cgroups.Mounts.probe()
        return self.mounts

    def sample(self, c):
        """A Sample of running container ``c``, or an empty one."""
        pid = c.state.get('Pid') or 0
        if not c.is_running() or not pid:
            return Sample()
        cg = cgroups.locate(spec_mod.cgroups_path(self.cgroup_parent, c.id),
                            self._mounts(), pid=pid)
        if not cg.exists():
            return Sample()
        raw = cgroups.read_stats(cg, self.machine_memory)
        system = cgroups.system_cpu_usage()
        now = time.time_ns()
        cpu = raw['cpu_stats']
        cpu['system_cpu_usage'] = system
        cpu['online_cpus'] = self.online_cpus
        networks = {}
        mode = c.host_config.get('NetworkMode') or 'default'
        if mode != 'host' and not mode.startswith('container:'):
            # The process's own view of /proc/net is its network namespace.
            networks = cgroups.net_dev(pid)
            if any(name != 'lo' for name in networks):
                networks.pop('lo', None)
        if not c.is_running():
            return Sample()
        return Sample(now, cpu, raw['memory_stats'], raw['pids_stats'], raw['blkio_stats'],
                      networks)

    def render(self, c, current, previous):
        """Docker's StatsJSON (with Go's omitempty rules) for two samples."""
        return {
            'read': _time(current.read_ns),
            'preread': _time(previous.read_ns if previous else 0),
            'pids_stats': _omit_zero(current.pids),
            'blkio_stats': current.blkio if current.blkio is not None
            else {k: None for k in cgroups.BLKIO_KEYS},
            'num_procs': 0,
            'storage_stats': {},
            'cpu_stats': _cpu_json(current.cpu),
            'precpu_stats': _cpu_json(previous.cpu if previous else _empty_cpu()),
            'memory_stats': _omit_zero(current.memory),
            'name': c.record['Name'],
            'id': c.id,
            **({'networks': current.networks} if current.networks else {}),
        }

    def stats(self, c, stream=True, one_shot=False, stop=None, sleep=time.sleep):
        """Yield StatsJSON dicts: one for ``stream=False``, else until ``stop()``."""
        previous = None
        if not stream and not one_shot and c.is_running():
            previous = self.sample(c)
            sleep(INTERVAL)
        while True:
            current = self.sample(c)
            yield self.render(c, current, previous)
            if not stream:
                return
            previous = current
            deadline = time.monotonic() + INTERVAL
            while time.monotonic() < deadline:
                if stop is not None and stop():
                    return
                sleep(min(0.2, max(0, deadline - time.monotonic())))


def _time(ns):
    return util.rfc3339_ns(ns) if ns else util.ZERO_TIME


def _omit_zero(d):
    return {k: v for k, v in d.items() if v}


def _cpu_json(cpu):
    cpu = copy.deepcopy(cpu)
    usage = cpu['cpu_usage']
    if not usage.get('percpu_usage'):
        usage.pop('percpu_usage', None)
    for key in ('system_cpu_usage', 'online_cpus'):
        if not cpu.get(key):
            cpu.pop(key, None)
    return cpu
