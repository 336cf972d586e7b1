"""Per-container network files for the modes this engine offers today.

``none`` and the default get a private network namespace with loopback;
``host`` shares the host's; ``container:<id>`` joins another container's.
The files themselves are made by engine/networks/etcfiles.py (Docker's
layout); this module maps today's modes onto it until the network service
takes over the call.
"""

from engine.networks import etcfiles

# Kept for callers of the old module.
HOSTS_BASE = etcfiles.HOSTS_DEFAULT


class HostNetworkFiles:
    def __init__(self, host_resolv='/etc/resolv.conf', host_hosts='/etc/hosts'):
        self.files = etcfiles.EtcFiles(host_resolv=host_resolv, host_hosts=host_hosts)

    def write_etc_files(self, path, mode, hostname, domainname='', host_config=None):
        """Write hostname, hosts, resolv.conf under ``path``; return their paths."""
        host_config = host_config or {}
        ctx = etcfiles.EtcContext(
            mode='host' if mode == 'host' else 'none', hostname=hostname,
            domainname=domainname,
            # No bridge yet: a private namespace has loopback only, so the
            # container's own name maps to a loopback address (Debian's
            # 127.0.1.1) rather than to nothing.
            addresses=[] if mode in ('host', 'none') else ['127.0.1.1'],
            # host-gateway needs the default bridge's address: none yet.
            extra_hosts=etcfiles.resolve_extra_hosts(host_config.get('ExtraHosts'), None),
            dns=host_config.get('Dns') or [], dns_search=host_config.get('DnsSearch') or [],
            dns_options=host_config.get('DnsOptions') or [])
        return self.files.write(path, ctx)
