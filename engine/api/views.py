"""Render engine objects in the shapes of Docker's API JSON."""

import shlex
import time

from engine import mounts as mounts_mod
from engine import security
from engine import resources
from engine import util


def _human_duration(seconds):
    seconds = int(seconds)
    if seconds < 1:
        return 'Less than a second'
    if seconds == 1:
        return '1 second'
    if seconds < 60:
        return '%d seconds' % seconds
    minutes = seconds // 60
    if minutes == 1:
        return 'About a minute'
    if minutes < 60:
        return '%d minutes' % minutes
    hours = round(seconds / 3600)
    if hours == 1:
        return 'About an hour'
    if hours < 48:
        return '%d hours' % hours
    if hours < 24 * 7 * 2:
        return '%d days' % (hours // 24)
    if hours < 24 * 30 * 2:
        return '%d weeks' % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return '%d months' % (hours // 24 // 30)
    return '%d years' % (hours // 24 // 365)


def status_text(state, now=None):
    now = now or time.time()
    status = state['Status']
    if status in ('running', 'paused'):
        text = 'Up ' + _human_duration(now - util.parse_rfc3339(state['StartedAt']))
        return text + ' (Paused)' if status == 'paused' else text
    if status == 'exited':
        finished = util.parse_rfc3339(state['FinishedAt'])
        if not finished:
            return 'Exited (%d)' % state['ExitCode']
        return 'Exited (%d) %s ago' % (state['ExitCode'], _human_duration(now - finished))
    if status == 'restarting':
        finished = util.parse_rfc3339(state['FinishedAt'])
        return 'Restarting (%d) %s ago' % (state['ExitCode'], _human_duration(now - finished))
    if status == 'removing':
        return 'Removal In Progress'
    if status == 'dead':
        return 'Dead'
    return 'Created'


def _endpoint_view(ep, running, started):
    out = {k: v for k, v in ep.items() if not k.startswith('_')}
    out.setdefault('DNSNames', None)
    if not running:
        # Docker 20.10: operational data cleared; the network's id appears
        # once the container has been attached (started) a first time.
        out['MacAddress'] = ''
        if not started:
            out['NetworkID'] = ''
    return out


def _network_settings(c):
    """Docker's NetworkSettings from the record's (engine/networks)."""
    settings = c.record.get('NetworkSettings') or {}
    running = c.is_running()
    started = c.state.get('StartedAt', util.ZERO_TIME) != util.ZERO_TIME
    networks = {name: _endpoint_view(ep, running, started)
                for name, ep in (settings.get('Networks') or {}).items()}
    default = (settings.get('Networks') or {}).get('bridge') or {}
    return {
        'Bridge': '', 'SandboxID': c.id if running and settings.get('SandboxKey') else '',
        'SandboxKey': settings.get('SandboxKey') or '',
        'HairpinMode': False, 'LinkLocalIPv6Address': '', 'LinkLocalIPv6PrefixLen': 0,
        'Ports': ports_view(c), 'SecondaryIPAddresses': None, 'SecondaryIPv6Addresses': None,
        'EndpointID': default.get('EndpointID', ''), 'Gateway': default.get('Gateway', ''),
        'GlobalIPv6Address': '', 'GlobalIPv6PrefixLen': 0,
        'IPAddress': default.get('IPAddress', ''), 'IPPrefixLen': default.get('IPPrefixLen', 0),
        'IPv6Gateway': '', 'MacAddress': default.get('MacAddress', '') if running else '',
        'Networks': networks,
    }


def ports_view(c):
    """NetworkSettings.Ports (set by the daemon: the ports module's view)."""
    return PORTS_VIEW(c) if PORTS_VIEW else {}


def ports_summary(c):
    """/containers/json Ports (the ports module's summary view)."""
    return PORTS_SUMMARY(c) if PORTS_SUMMARY else []


PORTS_VIEW = None
PORTS_SUMMARY = None


def container_inspect(c, exec_ids=()):
    r = c.record
    host_config = security.host_config_defaults(r['HostConfig'])
    host_config.setdefault('Binds', None)
    host_config.setdefault('PortBindings', {})
    host_config.setdefault('AutoRemove', False)
    host_config.setdefault('VolumeDriver', '')
    host_config.setdefault('VolumesFrom', None)
    for key, value in resources.INSPECT_DEFAULTS.items():
        host_config.setdefault(key, value)
    return {
        'Id': r['Id'],
        'Created': r['Created'],
        'Path': r['Path'],
        'Args': r['Args'],
        'State': dict(r['State']),
        'Image': r['Image'],
        'ResolvConfPath': r.get('ResolvConfPath', ''),
        'HostnamePath': r.get('HostnamePath', ''),
        'HostsPath': r.get('HostsPath', ''),
        'LogPath': c.log_path,
        'Name': r['Name'],
        'RestartCount': r.get('RestartCount', 0),
        'Driver': r.get('Driver', ''),
        'Platform': 'linux',
        **security.inspect_fields(r),
        'ExecIDs': list(exec_ids) or None,
        'HostConfig': host_config,
        'GraphDriver': {'Name': r.get('Driver', ''), 'Data': None},
        'Mounts': mounts_mod.container_mounts_view(r.get('MountPoints')),
        'Config': dict(r['Config'], Image=r.get('ImageName', r['Config'].get('Image'))),
        'NetworkSettings': _network_settings(c),
    }


def command_text(c):
    r = c.record
    return ' '.join([r['Path']] + [shlex.quote(a) if ' ' in a or not a else a for a in r['Args']])


def container_summary(c, size=False):
    r = c.record
    mode = r['HostConfig'].get('NetworkMode') or 'default'
    out = {
        'Id': r['Id'],
        'Names': [r['Name']],
        'Image': r.get('ImageName') or r['Image'],
        'ImageID': r['Image'],
        'Command': command_text(c),
        'Created': int(util.parse_rfc3339(r['Created'])),
        'Ports': ports_summary(c),
        'Labels': r['Config'].get('Labels') or {},
        'State': r['State']['Status'],
        'Status': status_text(r['State']),
        'HostConfig': {'NetworkMode': mode},
        'NetworkSettings': {'Networks': _network_settings(c)['Networks']},
        'Mounts': mounts_mod.container_mounts_view(r.get('MountPoints')),
    }
    return out
