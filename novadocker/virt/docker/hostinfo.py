"""Host facts and resources, from the engine's /info only.

nova-compute is unprivileged and may run in a test process where /sys and
os.uname are poisoned: everything here comes from the engine (NCPU,
MemTotal, Architecture, ServerVersion, and the ``HostFacts`` it adds for
us: uptime, available memory, load, the space of its root filesystem).
"""

import json

import os_resource_classes as orc
from oslo_utils import units
from oslo_utils import versionutils

from nova.compute import utils as compute_utils
from nova.objects import fields
import nova.conf

CONF = nova.conf.CONF

HYPERVISOR_TYPE = fields.HVType.DOCKER        # 'docker'
VM_MODE = fields.VMMode.EXE                    # a process tree, not a machine


def facts(info):
    return info.get('HostFacts') or {}


def architecture(info):
    try:
        return fields.Architecture.canonicalize(info.get('Architecture') or '')
    except Exception:
        return fields.Architecture.X86_64


def hypervisor_version(info):
    version = (info.get('ServerVersion') or '0').split('-')[0].split('+')[0]
    try:
        return versionutils.convert_version_to_int(version)
    except Exception:
        return 0


def disk_gb(info):
    """(total, free) GB of the engine's root filesystem."""
    hf = facts(info)
    total = hf.get('RootDirBytesTotal') or 0
    free = hf.get('RootDirBytesFree') or 0
    return int(total // units.Gi), int(free // units.Gi)


def available_resource(info, nodename, used_vcpus, used_memory_mb):
    """The dict get_available_resource returns (nova's ComputeNode fields)."""
    vcpus = int(info.get('NCPU') or 0)
    memory_mb = int((info.get('MemTotal') or 0) // units.Mi)
    avail = facts(info).get('MemAvailable')
    if avail is not None:
        used_memory_mb = max(used_memory_mb, memory_mb - int(avail // units.Mi))
    total_gb, free_gb = disk_gb(info)
    arch = architecture(info)
    return {
        'vcpus': vcpus,
        'memory_mb': memory_mb,
        'local_gb': total_gb,
        'vcpus_used': used_vcpus,
        'memory_mb_used': used_memory_mb,
        'local_gb_used': total_gb - free_gb,
        'hypervisor_type': HYPERVISOR_TYPE,
        'hypervisor_version': hypervisor_version(info),
        'hypervisor_hostname': nodename,
        'cpu_info': json.dumps({'arch': arch, 'vendor': None, 'model': None,
                                'features': [],
                                'topology': {'cores': vcpus, 'threads': 1, 'sockets': 1}}),
        'disk_available_least': free_gb,
        'numa_topology': None,
        'supported_instances': [(arch, HYPERVISOR_TYPE, VM_MODE)],
    }


def inventory(info, ratios):
    """VCPU, MEMORY_MB and DISK_GB inventories with Nova's reserved amounts
    (reserved_host_cpus, reserved_host_memory_mb, reserved_host_disk_mb)
    and the allocation ratios ``ratios`` (ComputeDriver._get_allocation_ratios:
    the *_allocation_ratio options, else what placement has, else the
    initial_* options)."""
    vcpus = int(info.get('NCPU') or 0)
    memory_mb = int((info.get('MemTotal') or 0) // units.Mi)
    total_gb, _ = disk_gb(info)
    inv = {}
    if vcpus:
        inv[orc.VCPU] = {
            'total': vcpus, 'min_unit': 1, 'max_unit': vcpus, 'step_size': 1,
            'allocation_ratio': ratios[orc.VCPU],
            'reserved': CONF.reserved_host_cpus}
    if memory_mb:
        inv[orc.MEMORY_MB] = {
            'total': memory_mb, 'min_unit': 1, 'max_unit': memory_mb, 'step_size': 1,
            'allocation_ratio': ratios[orc.MEMORY_MB],
            'reserved': CONF.reserved_host_memory_mb}
    if total_gb:
        inv[orc.DISK_GB] = {
            'total': total_gb, 'min_unit': 1, 'max_unit': total_gb, 'step_size': 1,
            'allocation_ratio': ratios[orc.DISK_GB],
            'reserved': compute_utils.convert_mb_to_ceil_gb(CONF.reserved_host_disk_mb)}
    return inv


def cpu_stats(info):
    """get_host_cpu_stats: the engine gives load, not tick counters; report
    what is known and zeros for the rest (the keys Nova expects)."""
    load = facts(info).get('LoadAverage') or [0, 0, 0]
    return {'kernel': 0, 'idle': 0, 'user': 0, 'iowait': 0, 'frequency': 0,
            'load_average': load}


def uptime_string(info, now_text):
    """An ``uptime``-like line, as libvirt's get_host_uptime returns."""
    hf = facts(info)
    seconds = hf.get('UptimeSeconds')
    if seconds is None:
        raise NotImplementedError('the engine does not report the host uptime')
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    load = hf.get('LoadAverage') or [0.0, 0.0, 0.0]
    up = ('%d day%s, %2d:%02d' % (days, '' if days == 1 else 's', hours, minutes)
          if days else '%2d:%02d' % (hours, minutes))
    return ' %s up %s,  load average: %s' % (now_text, up,
                                              ', '.join('%.2f' % x for x in load))
