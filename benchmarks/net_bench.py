"""The network section of benchmarks/run.py: our engine next to Docker 20.10
with its networking on (tests/netdocker.py: its own default bridge,
iptables, userland proxy: Docker's defaults).

i. ``run --rm busybox true`` on the default bridge network through the API
   (create with AutoRemove, wait condition=removed, start, read the wait),
   interleaved run by run, medians; target at most 0.3x Docker's time;
j. loopback throughput through a published port: a container serves a
   256 MiB file from a tmpfs with busybox httpd, published on
   127.0.0.1:<port>; a Python client on the host reads it all. Our engine
   goes through CNI portmap's DNAT (route_localnet + SNAT); Docker through
   its userland proxy (docker-proxy owns 127.0.0.1 ports). MB/s, ratio;
k. the same to a host address that is not loopback: the default bridge's
   gateway (an address the daemon itself put on the host; the host's eth0
   is never contacted), where both daemons use the kernel's DNAT path.

The section starts its own networking dockerd (the harness's dockerd runs
with networking off) and uses the harness's engine.
"""

import json
import socket
import time

from tests import daemons, netdocker

API = '/v1.41'
DOCKER = 'docker'
OURS = 'novadocker'
PAYLOAD_MIB = 256

TARGETS = {
    'run_rm_bridge_api': ('ratio_max', 0.3),
    'run_rm_bridge_cli': ('ratio_max', 0.3),
}


class _Side:
    """What run.py's interleaved() needs of a target: a name and a socket."""

    def __init__(self, name, daemon):
        self.name = name
        self.d = daemon
        self.sock = daemon.sock
        self.url = daemon.url

    def remove_all(self):
        self.d.remove_all_containers()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def gateway_of(target):
    status, net = daemons.api_json(target.sock, 'GET', API + '/networks/bridge')
    if status != 200:
        raise RuntimeError('%s: GET /networks/bridge -> %s' % (target.name, status))
    return net['IPAM']['Config'][0]['Gateway']


class Server:
    """busybox httpd serving /srv/big (PAYLOAD_MIB of zeros, on a tmpfs)
    published on ``host_ip:port``."""

    def __init__(self, target, host_ip):
        self.target = target
        self.host_ip = host_ip
        self.port = free_port()
        size = PAYLOAD_MIB + 16
        script = ('dd if=/dev/zero of=/srv/big bs=1M count=%d 2>/dev/null && '
                  'touch /srv/ready && exec httpd -f -p 80 -h /srv'
                  % PAYLOAD_MIB)
        status, _, body = daemons.api(
            target.sock, 'POST', API + '/containers/create',
            {'Image': 'busybox:latest', 'Cmd': ['sh', '-c', script],
             'ExposedPorts': {'80/tcp': {}},
             'HostConfig': {
                 'NetworkMode': 'bridge',
                 'Tmpfs': {'/srv': 'size=%dm' % size},
                 'PortBindings': {'80/tcp': [{'HostIp': host_ip,
                                              'HostPort': str(self.port)}]}}},
            timeout=120)
        if status != 201:
            raise daemons.APIError(status, body, 'POST', 'create server')
        self.cid = json.loads(body)['Id']
        status, _, body = daemons.api(target.sock, 'POST', API +
                                      '/containers/%s/start' % self.cid,
                                      timeout=120)
        if status != 204:
            self.remove()
            raise daemons.APIError(status, body, 'POST', 'start server')
        self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.fetch(path='/ready') == 0:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError('%s: the payload server did not come up'
                           % self.target.name)

    def fetch(self, path='/big'):
        """GET ``path``; returns the body size (bytes)."""
        buf = bytearray(4 << 20)
        view = memoryview(buf)
        with socket.create_connection((self.host_ip, self.port),
                                      timeout=30) as s:
            s.sendall(b'GET %s HTTP/1.0\r\nHost: bench\r\n\r\n' % path.encode())
            total, head = 0, b''
            while True:
                n = s.recv_into(view)
                if not n:
                    break
                if head is not None:
                    head += bytes(view[:n])
                    if b'\r\n\r\n' in head:
                        status = head.split(b'\r\n', 1)[0]
                        if b' 200 ' not in status + b' ':
                            raise OSError('HTTP status %r' % status)
                        total = len(head.split(b'\r\n\r\n', 1)[1])
                        head = None
                    continue
                total += n
        if head is not None:
            # Closed before a response: a proxy that accepted for a server
            # not listening yet.
            raise OSError('no HTTP response from %s:%d' % (self.host_ip,
                                                           self.port))
        return total

    def throughput(self):
        t0 = time.perf_counter()
        got = self.fetch()
        elapsed = time.perf_counter() - t0
        want = PAYLOAD_MIB * 1024 * 1024
        if got != want:
            raise RuntimeError('%s: read %d bytes of %d' % (self.target.name,
                                                            got, want))
        return got / elapsed / 1e6

    def remove(self):
        try:
            daemons.api(self.target.sock, 'DELETE',
                        API + '/containers/%s?force=1' % self.cid, timeout=60)
        except Exception:
            pass


class NetBench:
    def __init__(self, bench, runs, throughput_runs, summary, run_rm_bridge,
                 run_rm_bridge_cli):
        """``run_rm_bridge(target)``, ``run_rm_bridge_cli(target)``: one
        ``run --rm busybox true`` on the default bridge through the API (as
        the CLI sequences it) and through the docker CLI, in seconds."""
        self.bench = bench
        self.run_rm_bridge = run_rm_bridge
        self.run_rm_bridge_cli = run_rm_bridge_cli
        self.runs = runs
        self.throughput_runs = throughput_runs
        self.summary = summary
        self.dockerd = None

    def run(self):
        b = self.bench.results['benchmarks']
        sides = {}
        ours = self.bench.targets.get(OURS)
        if self.bench.args.only in ('both', DOCKER):
            self.bench.log('network: starting a dockerd with its networking on')
            self.dockerd = netdocker.start_net_dockerd(
                daemons.build_busybox_archive(self.bench.work, 'net-bb.tar'))
            sides[DOCKER] = _Side(DOCKER, self.dockerd)
        if ours is not None:
            sides[OURS] = _Side(OURS, ours.d)
        try:
            self.bench.log('i. run --rm busybox true on the default bridge, '
                           'API, %d runs each, interleaved' % self.runs)
            b['run_rm_bridge_api'] = {'unit': 's', 'results': self.bench.interleaved(
                'run_rm_bridge_api', self.run_rm_bridge, self.runs,
                self.bench.args.warmup, targets=sides)}
            self.bench.log('i2. the same through the docker CLI')
            b['run_rm_bridge_cli'] = {'unit': 's', 'results': self.bench.interleaved(
                'run_rm_bridge_cli', self.run_rm_bridge_cli, self.runs,
                self.bench.args.warmup, targets=sides)}
            self.bench.log('j. %d MiB through a port published on 127.0.0.1, '
                           '%d runs each' % (PAYLOAD_MIB, self.throughput_runs))
            b['published_port_loopback'] = {
                'unit': 'MB/s', 'results': self.throughput(sides, '127.0.0.1')}
            self.bench.log('k. the same through the default bridge gateway')
            b['published_port_gateway'] = {
                'unit': 'MB/s', 'results': self.throughput(sides, None)}
        finally:
            if self.dockerd is not None:
                self.dockerd.scrub()

    def throughput(self, sides, host_ip):
        servers = {}
        samples = {}
        try:
            for name, side in sides.items():
                try:
                    servers[name] = Server(side, host_ip or gateway_of(side))
                    samples[name] = []
                except Exception as exc:
                    self.bench.error('throughput server %s' % name, exc)
            for _ in range(self.throughput_runs + 1):   # the first warms up
                for name, server in servers.items():
                    if name not in samples:
                        continue
                    try:
                        samples[name].append(server.throughput())
                    except Exception as exc:
                        self.bench.error('throughput %s' % name, exc)
                        samples.pop(name)
        finally:
            for server in servers.values():
                server.remove()
        return {name: self.summary(v[1:]) for name, v in samples.items()
                if len(v) > 1}


def rows(results, get, ratio, verdict):
    out = []
    for key, via in (('run_rm_bridge_api', 'API'), ('run_rm_bridge_cli', 'docker CLI')):
        for stat in ('median', 'p90'):
            d, o = get([key, stat], DOCKER), get([key, stat], OURS)
            r = ratio(o, d)
            tgt, ver = verdict(key, o, r) if stat == 'median' else ('', '')
            out.append(('run --rm true, default bridge, %s (%s, s)' % (via, stat),
                        d, o, r, tgt, ver))
    for key, label in (
            ('published_port_loopback',
             '%d MiB via 127.0.0.1:published (median MB/s; docker: '
             'userland proxy)' % PAYLOAD_MIB),
            ('published_port_gateway',
             '%d MiB via bridge gateway:published (median MB/s; both '
             'DNAT)' % PAYLOAD_MIB)):
        d, o = get([key, 'median'], DOCKER), get([key, 'median'], OURS)
        out.append((label, d, o, ratio(o, d), '', ''))
    return out
