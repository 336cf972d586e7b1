"""Per-container network files for the modes this engine offers today.

``none`` and the default get a private network namespace with loopback;
``host`` shares the host's; ``container:<id>`` joins another container's.
Each container gets its own /etc/hostname, /etc/hosts and /etc/resolv.conf
written into its directory and bind-mounted by the runtime spec.
"""

import ipaddress
import os

from engine import util

HOSTS_BASE = ('127.0.0.1\tlocalhost\n'
              '::1\tlocalhost ip6-localhost ip6-loopback\n'
              'fe00::0\tip6-localnet\n'
              'ff00::0\tip6-mcastprefix\n'
              'ff02::1\tip6-allnodes\n'
              'ff02::2\tip6-allrouters\n')

FALLBACK_NAMESERVERS = ('8.8.8.8', '8.8.4.4')


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ''


def container_resolv_conf(host_text):
    """The host's resolv.conf without loopback resolvers a private netns cannot reach."""
    lines = []
    servers = 0
    for line in host_text.splitlines():
        parts = line.split()
        if parts and parts[0] == 'nameserver' and len(parts) > 1:
            try:
                if ipaddress.ip_address(parts[1].split('%')[0]).is_loopback:
                    continue
            except ValueError:
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += ['nameserver %s' % ns for ns in FALLBACK_NAMESERVERS]
    return '\n'.join(lines).strip() + '\n'


class HostNetworkFiles:
    def __init__(self, host_resolv='/etc/resolv.conf', host_hosts='/etc/hosts'):
        self.host_resolv = host_resolv
        self.host_hosts = host_hosts

    def write_etc_files(self, path, mode, hostname, domainname=''):
        """Write hostname, hosts, resolv.conf under ``path``; return their paths."""
        fqdn = '%s.%s' % (hostname, domainname) if domainname else hostname
        if mode == 'host':
            hosts = _read(self.host_hosts) or HOSTS_BASE
            resolv = _read(self.host_resolv)
        else:
            hosts = HOSTS_BASE
            resolv = container_resolv_conf(_read(self.host_resolv))
        if mode != 'host':
            own = '%s %s' % (fqdn, hostname) if fqdn != hostname else hostname
            hosts += '127.0.1.1\t%s\n' % own
        files = {'hostname': hostname + '\n', 'hosts': hosts, 'resolv.conf': resolv}
        out = {}
        for name, text in files.items():
            target = os.path.join(path, name)
            util.atomic_write(target, text, mode=0o644, sync=False)
            out[name] = target
        return out
