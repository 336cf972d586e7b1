"""Instance <-> container: names, labels, the create body, power states,
and the small state the engine cannot hold for us.

Pure functions of their arguments (no engine calls), so the unit tests
cover them without an engine.
"""

import io
import json
import os
import re
import shlex
import tarfile
import tempfile
import time

from nova.compute import power_state

NAME_PREFIX = 'nova-'
LABEL_UUID = 'org.openstack.nova.instance-uuid'
LABEL_NAME = 'org.openstack.nova.instance-name'
LABEL_HOST = 'org.openstack.nova.host'
LABEL_VCPUS = 'org.openstack.nova.flavor-vcpus'
LABEL_MEMORY = 'org.openstack.nova.flavor-memory-mb'
LABEL_META_PREFIX = 'org.openstack.nova.meta.'

# Where instance metadata lands inside the container, for software in it
# that wants it (the labels carry it for the engine's side).
METADATA_PATH = '/var/lib/nova/metadata.json'
AUTHORIZED_KEYS = '/root/.ssh/authorized_keys'

MiB = 1024 * 1024
CFS_PERIOD = 100000      # microseconds, the kernel's and Docker's default
STATE_FILE = 'novadocker-state.json'

# Exit codes of a process ended by SIGTERM or SIGKILL (128 + signal): what
# power_off leaves behind; any other failure exit means the guest crashed.
_STOP_EXIT_CODES = (0, 128 + 9, 128 + 15)


def container_name(instance):
    return NAME_PREFIX + instance.uuid


def labels(instance, host):
    out = {
        LABEL_UUID: instance.uuid,
        LABEL_NAME: instance.name,
        LABEL_HOST: host,
        LABEL_VCPUS: str(instance.flavor.vcpus),
        LABEL_MEMORY: str(instance.flavor.memory_mb),
    }
    for key, value in (instance.metadata or {}).items():
        out[LABEL_META_PREFIX + key] = str(value)
    return out


def host_filter(host):
    """The label filter of every container this driver made on ``host``."""
    return [LABEL_UUID, '%s=%s' % (LABEL_HOST, host)]


_HOSTNAME_BAD = re.compile(r'[^a-z0-9-]+')


def hostname(instance):
    """instance.hostname (Nova's sanitised display name), else the instance
    name, made a valid RFC 1123 label of at most 63 characters."""
    name = instance.hostname or instance.name
    name = _HOSTNAME_BAD.sub('-', name.lower()).strip('-')[:63].strip('-')
    return name or 'instance'


def command(image_meta):
    """The image's ``os_command_line`` property, if any, as the container's
    command (as nova-docker read it); else the image's own CMD."""
    props = image_meta.properties
    if props.obj_attr_is_set('os_command_line') and props.os_command_line:
        return shlex.split(props.os_command_line)
    return None


def create_body(instance, image_id, image_meta, host, conf, network_mode='none'):
    """The POST /containers/create body for ``instance``.

    * memory: the flavor's MB as a hard limit, no swap beyond it unless the
      flavor has swap;
    * vCPUs per ``[docker]cpu_policy``: shares weigh (1024 per vCPU),
      quota caps (vCPUs x the CFS period), both does both;
    * a TTY with stdin held open by the engine's monitor: an instance whose
      image runs a shell stays up, as a VM's console would, and its console
      log is readable text.
    """
    flavor = instance.flavor
    memory = int(flavor.memory_mb) * MiB
    swap = int(flavor.swap or 0) * MiB
    host_config = {
        'Memory': memory,
        'MemorySwap': memory + swap,
        'Privileged': bool(conf.docker.privileged),
        'NetworkMode': network_mode,
        'RestartPolicy': {'Name': 'no'},
    }
    vcpus = max(int(flavor.vcpus), 1)
    if conf.docker.cpu_policy in ('shares', 'both'):
        host_config['CpuShares'] = 1024 * vcpus
    if conf.docker.cpu_policy in ('quota', 'both'):
        host_config['CpuPeriod'] = CFS_PERIOD
        host_config['CpuQuota'] = CFS_PERIOD * vcpus
    body = {
        'Image': image_id,
        'Hostname': hostname(instance),
        'Labels': labels(instance, host),
        'Tty': True,
        'OpenStdin': True,
        'AttachStdin': False,
        'HostConfig': host_config,
    }
    cmd = command(image_meta)
    if cmd:
        body['Cmd'] = cmd
    return body


def power_state_of(inspect, suspended=False):
    """Nova's power state of a container from its inspect document.

    running -> RUNNING; paused -> PAUSED, or SUSPENDED when the driver
    suspended it; created (never started, e.g. power_on=False) and exited
    after a stop -> SHUTDOWN; exited on its own with a failure, killed by
    the OOM killer, failed to start, or dead -> CRASHED; anything else
    (removing) -> NOSTATE.
    """
    if not inspect:
        return power_state.NOSTATE
    state = inspect.get('State') or {}
    status = state.get('Status')
    if status in ('running', 'restarting'):
        return power_state.RUNNING
    if status == 'paused':
        return power_state.SUSPENDED if suspended else power_state.PAUSED
    if status == 'created':
        return power_state.CRASHED if state.get('Error') else power_state.SHUTDOWN
    if status == 'exited':
        if state.get('OOMKilled') or state.get('Error') or \
                state.get('ExitCode', 0) not in _STOP_EXIT_CODES:
            return power_state.CRASHED
        return power_state.SHUTDOWN
    if status == 'dead':
        return power_state.CRASHED
    return power_state.NOSTATE


# -- files that reach the container ------------------------------------------

def injection_tar(files):
    """A tar (bytes) of ``files``: ``[(absolute path, bytes, mode)]``, with
    the parent directories they need, for PUT /containers/{id}/archive at
    ``/``."""
    buf = io.BytesIO()
    now = int(time.time())
    dirs = set()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for path, data, mode in files:
            parts = [p for p in path.split('/') if p]
            if not parts or any(p in ('.', '..') for p in parts):
                raise ValueError('injected file path %r is not a clean absolute path' % path)
            # Parents the image lacks are made by the engine (root, 0755);
            # only .ssh is listed, for its 0700 (sshd insists on it).
            for i in range(1, len(parts)):
                d = '/'.join(parts[:i])
                if d in dirs or parts[i - 1] != '.ssh':
                    continue
                dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o700
                info.mtime = now
                tf.addfile(info)
            info = tarfile.TarInfo('/'.join(parts))
            info.size = len(data)
            info.mode = mode
            info.mtime = now
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def files_for(instance, injected_files, conf):
    """What spawn puts into the container: Nova's injected files, the
    instance metadata as JSON, and the key pair when ``inject_key``."""
    files = []
    for path, contents in injected_files or []:
        data = contents if isinstance(contents, bytes) else str(contents).encode()
        files.append((path, data, 0o644))
    meta = {
        'uuid': instance.uuid,
        'name': instance.display_name,
        'hostname': hostname(instance),
        'meta': dict(instance.metadata or {}),
        'availability_zone': instance.availability_zone,
        'project_id': instance.project_id,
    }
    files.append((METADATA_PATH, json.dumps(meta, indent=2, sort_keys=True).encode(), 0o644))
    if conf.docker.inject_key and instance.key_data:
        files.append((AUTHORIZED_KEYS, instance.key_data.rstrip('\n').encode() + b'\n', 0o600))
    return files


# -- state the engine cannot hold -------------------------------------------

class StateFile:
    """``<instances_path>/<uuid>/novadocker-state.json``.

    The engine's freezer holds a paused and a suspended instance the same
    way, and labels cannot change after create, so whether the instance is
    *suspended* lives here, where it survives a nova-compute restart (and
    an engine restart, which keeps frozen containers frozen).
    """

    def __init__(self, instances_path, instance_uuid):
        self.dir = os.path.join(instances_path, instance_uuid)
        self.path = os.path.join(self.dir, STATE_FILE)

    def read(self):
        try:
            with open(self.path) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def update(self, **values):
        data = self.read()
        data.update(values)
        os.makedirs(self.dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix='.state-')
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f)
        os.replace(tmp, self.path)

    @property
    def suspended(self):
        return bool(self.read().get('suspended'))

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self.dir)     # only if nothing else of Nova's is in it
        except OSError:
            pass
