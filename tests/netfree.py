"""Free host resources for networking tests: a subnet no route overlaps,
host ports nobody holds.  Both are only free *now*: other engines and tests
run on this host at the same time, so callers stay tolerant."""

import ipaddress
import socket
import subprocess
import uuid

_STYPES = (socket.SOCK_STREAM, socket.SOCK_DGRAM)


def host_routes():
    """Every IPv4 network the host routes (all tables), as ip_network."""
    out = subprocess.run(['ip', '-4', 'route', 'show', 'table', 'all'],
                         capture_output=True, text=True, check=True).stdout
    nets = []
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        word = words[0]
        if word in ('broadcast', 'local', 'unreachable', 'blackhole', 'prohibit') \
                and len(words) > 1:
            word = words[1]
        if word == 'default':
            continue
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return nets


def free_subnet(prefix='10.0.0.0/8', size=24):
    """A random /size inside ``prefix`` that overlaps no host route."""
    used = host_routes()
    candidates = list(ipaddress.ip_network(prefix).subnets(new_prefix=size))
    start = uuid.uuid4().int % len(candidates)
    for i in range(len(candidates)):
        net = candidates[(start + i) % len(candidates)]
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError('no free /%d in %s' % (size, prefix))


def _bindable(port):
    for stype in _STYPES:
        try:
            with socket.socket(socket.AF_INET, stype) as s:
                s.bind(('0.0.0.0', port))
        except OSError:
            return False
    return True


def free_ports(count=1):
    """The first of ``count`` consecutive ports free for TCP and UDP on
    every address (taken from the kernel's ephemeral choice)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('0.0.0.0', 0))
            base = s.getsockname()[1]
        if base + count <= 65536 and all(_bindable(p) for p in range(base, base + count)):
            return base
    raise RuntimeError('no %d free consecutive ports' % count)
