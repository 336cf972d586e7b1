"""Validate a container create request and merge it with its image's config.

Docker's rules: the image's Env is the base that the request's Env
overrides by key; an Entrypoint in the request drops the image's Cmd unless
the request gives one too; ``Entrypoint: [""]`` clears it; WorkingDir, User,
StopSignal fall back to the image's.  Fields this engine cannot honour yet
are refused when set, so a tenant never gets a silently weaker container.
"""

import copy
import re

from engine import errors
from engine import mounts
from engine import security
from engine import resources
from engine import logrotate
from engine import restart
from engine.networks import etcfiles
from engine.networks import ports
from engine.runtime import oci
from engine.runtime import spec as spec_mod

_STR_LIST = 'list of strings'

CONFIG_TYPES = {
    'Hostname': str, 'Domainname': str, 'User': str, 'AttachStdin': bool,
    'AttachStdout': bool, 'AttachStderr': bool, 'Tty': bool, 'OpenStdin': bool,
    'StdinOnce': bool, 'Env': _STR_LIST, 'Cmd': _STR_LIST, 'Entrypoint': _STR_LIST,
    'Image': str, 'WorkingDir': str, 'Labels': dict, 'StopSignal': str,
    'StopTimeout': int, 'ExposedPorts': dict, 'Volumes': dict, 'ArgsEscaped': bool,
    'NetworkDisabled': bool, 'MacAddress': str, 'OnBuild': _STR_LIST,
    'Healthcheck': dict, 'Shell': _STR_LIST,
}

# HostConfig fields honoured by this engine today.
HOST_CONFIG_SUPPORTED = {
    'NetworkMode': str, 'AutoRemove': bool, 'RestartPolicy': dict,
    'Privileged': bool, 'CapAdd': _STR_LIST, 'CapDrop': _STR_LIST,
    'ReadonlyRootfs': bool, 'ConsoleSize': list, 'LogConfig': dict,
    'Init': bool,
    # Storage (engine/mounts.py checks the contents).
    'Binds': _STR_LIST, 'Mounts': list, 'Tmpfs': dict, 'VolumesFrom': _STR_LIST,
    'VolumeDriver': str,
    # /etc/hosts and resolv.conf (engine/networks/etcfiles.py checks them).
    'Dns': _STR_LIST, 'DnsSearch': _STR_LIST, 'DnsOptions': _STR_LIST, 'ExtraHosts': _STR_LIST,
    # Networks (engine/networks: ports.py, etcfiles.py check them).
    'PortBindings': dict, 'PublishAllPorts': bool, 'Links': _STR_LIST,
}
HOST_CONFIG_SUPPORTED.update(resources.HOST_CONFIG_TYPES)  # limits: engine/resources.py

# The security profile's fields: engine/security.py checks them in full.
HOST_CONFIG_SUPPORTED.update({name: _STR_LIST if kind == _STR_LIST else kind
                              for name, kind in security.HOST_CONFIG_FIELDS.items()})

NETWORK_MODES_FALLBACK = ('', 'default', 'bridge')
_NETWORK_REF = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$')  # names and ids

# Both are served by the logs API from conmon's k8s-file log; json-file is
# Docker's default name and what clients (docker-py) expect to read logs from.
LOG_DRIVERS = logrotate.LOG_DRIVERS  # options and rotation: engine/logrotate.py
DEFAULT_LOG_DRIVER = 'json-file'

# Fields whose "unset" value is not zero in what clients send.
HOST_CONFIG_UNSET = {'MemorySwappiness': -1, 'PidsLimit': -1}


def _is_zero(value):
    if value in (None, 0, '', False):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_zero(v) for v in value) if value else True
    if isinstance(value, dict):
        return all(_is_zero(v) for v in value.values())
    return False


def _check_type(section, name, value, kind):
    if value is None:
        return
    if kind is _STR_LIST:
        if isinstance(value, str) and name in ('Cmd', 'Entrypoint', 'Shell'):
            return  # Docker accepts a bare string for these
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.InvalidArgument('%s.%s must be a list of strings' % (section, name))
        return
    if kind is int and isinstance(value, bool):
        raise errors.InvalidArgument('%s.%s must be an integer' % (section, name))
    if not isinstance(value, kind):
        raise errors.InvalidArgument('%s.%s must be %s, not %s' % (
            section, name, {str: 'a string', bool: 'a boolean', int: 'an integer',
                            dict: 'an object', list: 'an array'}[kind], type(value).__name__))


def validate_create(body):
    """Check a /containers/create body; return (config, host_config) copies."""
    if not isinstance(body, dict):
        raise errors.InvalidArgument('container config must be a JSON object')
    config = {k: v for k, v in body.items() if k not in ('HostConfig', 'NetworkingConfig')}
    host = body.get('HostConfig')
    if host is None:
        host = {}
    if not isinstance(host, dict):
        raise errors.InvalidArgument('HostConfig must be a JSON object')
    for name, kind in CONFIG_TYPES.items():
        _check_type('Config', name, config.get(name), kind)
    if isinstance(config.get('Cmd'), str):
        config['Cmd'] = [config['Cmd']]
    if isinstance(config.get('Entrypoint'), str):
        config['Entrypoint'] = [config['Entrypoint']]
    if not config.get('Image'):
        raise errors.InvalidArgument('Config.Image is required')
    # Anonymous volumes: the keys are checked with the other mounts.
    for path in config.get('Volumes') or {}:
        mounts.parse_config_volume(path)
    # Accepted by Docker's schema but not honoured here yet: refuse rather
    # than run a container that silently lacks what was asked.
    health = config.get('Healthcheck') or {}
    if health.get('Test') and health['Test'] != ['NONE']:
        raise errors.InvalidArgument('Config.Healthcheck is not supported by this engine yet')
    for env in config.get('Env') or []:
        if env.startswith('=') or not env:
            raise errors.InvalidArgument('invalid environment variable: %r' % env)
    labels = config.get('Labels') or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise errors.InvalidArgument('Config.Labels values must be strings')
    for name, value in host.items():
        kind = HOST_CONFIG_SUPPORTED.get(name)
        if kind is not None:
            _check_type('HostConfig', name, value, kind)
        elif not _is_zero(value) and value != HOST_CONFIG_UNSET.get(name):
            raise errors.InvalidArgument(
                'HostConfig.%s is not supported by this engine yet' % name)
    restart.validate_restart_policy(host.get('RestartPolicy'), host.get('AutoRemove'))
    logrotate.validate_log_config(host.get('LogConfig'))
    if host.get('Init'):
        raise errors.InvalidArgument('HostConfig.Init is not supported by this engine yet')
    if config.get('NetworkDisabled'):
        host['NetworkMode'] = 'none'
    mode = host.get('NetworkMode') or 'default'
    if mode.startswith('container:') and not mode.split(':', 1)[1]:
        raise errors.InvalidArgument('invalid network mode %r: container:<name|id>' % mode)
    if not mode.startswith('container:') and not _NETWORK_REF.match(mode):
        raise errors.InvalidArgument('invalid network mode %r: bridge, host, none, '
                                     'container:<name|id> or a network name' % mode)
    security.validate(config, host)
    etcfiles.validate(config, host)
    ports.validate_network_mode(config, host)
    if config.get('StopSignal'):
        parse_signal(config['StopSignal'])
    console = host.get('ConsoleSize')
    if console is not None:
        check_console_size(console, 'HostConfig.ConsoleSize')
    networking = body.get('NetworkingConfig') or {}
    if not isinstance(networking, dict):
        raise errors.InvalidArgument('NetworkingConfig must be a JSON object')
    return copy.deepcopy(config), copy.deepcopy(host)


def check_console_size(size, what):
    """[height, width] of a terminal: two integers in 0..65535."""
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535
                       for v in size)):
        raise errors.InvalidArgument('%s must be [height, width] with values 0-65535' % what)


def check_terminal_size(height, width):
    if not (0 < height <= 65535 and 0 < width <= 65535):
        raise errors.InvalidArgument('invalid terminal size %sx%s: height and width must be '
                                     '1-65535' % (height, width))


# 'SIGTERM', 'TERM', '15' -> signal number; bad names raise InvalidArgument.
parse_signal = oci.signal_number


def merge_image_config(config, image_config):
    """Fill the request's config with the image's defaults, as Docker does."""
    img = image_config or {}
    out = dict(config)
    out['Env'] = spec_mod.merge_env(img.get('Env'), config.get('Env'))
    entrypoint = config.get('Entrypoint')
    if entrypoint is None:
        out['Entrypoint'] = img.get('Entrypoint')
        if config.get('Cmd') is None:
            out['Cmd'] = img.get('Cmd')
    else:
        if entrypoint == ['']:
            out['Entrypoint'] = None
        if config.get('Cmd') is None:
            out['Cmd'] = None
    for key in ('WorkingDir', 'User', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'):
        if not config.get(key) and img.get(key):
            out[key] = img[key]
    for key in ('Labels', 'ExposedPorts', 'Volumes'):
        merged = dict(img.get(key) or {})
        merged.update(config.get(key) or {})
        out[key] = merged or None
    args = (out.get('Entrypoint') or []) + (out.get('Cmd') or [])
    if not args:
        raise errors.InvalidArgument('No command specified')
    for key in ('Tty', 'OpenStdin', 'StdinOnce', 'AttachStdin', 'AttachStdout', 'AttachStderr'):
        out[key] = bool(out.get(key))
    out.setdefault('Hostname', '')
    out.setdefault('Domainname', '')
    out['WorkingDir'] = out.get('WorkingDir') or ''
    out['User'] = out.get('User') or ''
    return out, args
