"""etcfiles against Docker 20.10 itself.

* A private Docker 20.10 with a default bridge of the test's own (its
  bridge device and subnet made here, no iptables), started in a mount
  namespace where /etc/resolv.conf and /etc/hosts are files of the test: a
  loopback and an IPv6 resolver, a search and an options line. The files
  its containers get for ``--link``, ``--add-host``, ``--dns*``,
  ``--hostname``/``--domainname`` in bridge, none and host modes are
  compared, byte for byte, with what engine/networks/etcfiles.py renders
  from the same inputs and the same host files; so are the legacy link
  environment variables.
* The session engine and the session Docker 20.10 run the same ``docker
  run`` in the modes both offer today and must show the same files.
"""

import ipaddress
import json
import os
import random
import re
import subprocess

import pytest

from tests import daemons
from tests.compat.conftest import AGAINST_DOCKERD
from engine.networks import etcfiles
from engine.networks.etcfiles import EtcContext

pytestmark = pytest.mark.compat

SEP = '@@@\n'
SHOW = ('cat /etc/hosts; echo @@@; cat /etc/resolv.conf; echo @@@; cat /etc/hostname; '
        'echo @@@; ip -o -4 addr show eth0 2>/dev/null; true')

FAKE_RESOLV = ('# resolv.conf of the test host\n'
               'nameserver 127.0.0.53\n'
               'nameserver 2001:db8::53\n'
               'search lan.test corp.test\n'
               'options edns0 trust-ad\n')
FAKE_HOSTS = '127.0.0.1\tlocalhost\n192.0.2.77\tfakehost fakehost.test\n'


def _used_networks():
    used = []
    for args in (['ip', '-j', 'route', 'show', 'table', 'all'], ['ip', '-j', '-4', 'addr']):
        data = json.loads(subprocess.run(args, capture_output=True, text=True,
                                         check=True).stdout or '[]')
        for item in data:
            if 'dst' in item and item['dst'] != 'default':
                try:
                    used.append(ipaddress.ip_network(item['dst'], strict=False))
                except ValueError:
                    pass
            for addr in item.get('addr_info', ()):
                used.append(ipaddress.ip_network('%s/%s' % (addr['local'], addr['prefixlen']),
                                                 strict=False))
    return [n for n in used if n.version == 4]


def free_subnet():
    used = _used_networks()
    for _ in range(500):
        cand = ipaddress.ip_network('10.%d.%d.0/24' % (random.randint(100, 250),
                                                       random.randint(0, 255)))
        if not any(cand.overlaps(n) for n in used):
            return cand
    raise RuntimeError('no free /24 for the test bridge')


class BridgedDockerd(daemons.Dockerd):
    """Docker 20.10 on a bridge of ours, seeing our resolv.conf and hosts."""

    def __init__(self, base, bridge, resolv, hosts):
        super().__init__(base)
        self.bridge, self.resolv, self.hosts = bridge, resolv, hosts

    def command(self):
        cmd = super().command()
        cmd[cmd.index('--bridge') + 1] = self.bridge
        script = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts '
                  '&& shift 2 && exec "$@"')
        return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
                self.resolv, self.hosts] + cmd


@pytest.fixture(scope='module')
def bridged_dockerd(busybox_archive):
    if not os.path.exists(daemons.DOCKERD):
        pytest.skip('dockerd (Debian docker.io) is not installed')
    base = daemons.short_tmpdir('nd-etcd-')
    bridge = 'ndetc' + os.urandom(3).hex()
    resolv = os.path.join(base, 'resolv.conf')
    hosts = os.path.join(base, 'hosts')
    with open(resolv, 'w') as f:
        f.write(FAKE_RESOLV)
    with open(hosts, 'w') as f:
        f.write(FAKE_HOSTS)
    subnet = free_subnet()
    dk = BridgedDockerd(base, bridge, resolv, hosts)
    try:
        subprocess.run(['ip', 'link', 'add', bridge, 'type', 'bridge'], check=True)
        subprocess.run(['ip', 'addr', 'add', '%s/%d' % (subnet[1], subnet.prefixlen),
                        'dev', bridge], check=True)
        subprocess.run(['ip', 'link', 'set', bridge, 'up'], check=True)
        dk.start()
        dk.load(busybox_archive)
        yield dk
    finally:
        try:
            dk.scrub()
        finally:
            subprocess.run(['ip', 'link', 'del', bridge], capture_output=True)


def run_show(host, args, name=None):
    argv = ['run', '--rm'] + (['--name', name] if name else []) + args + [
        'busybox', 'sh', '-c', SHOW]
    res = daemons_run(host, argv)
    hosts, resolv, hostname, addr = res.split(SEP)
    ip = addr.split()[3].split('/')[0] if addr.strip() else None
    return {'hosts': hosts, 'resolv.conf': resolv, 'hostname': hostname, 'ip': ip}


def daemons_run(host, argv, cli=daemons.DOCKER_CLI_2010):
    from tests.conftest import run_docker
    res = run_docker(argv, host, timeout=60, cli=cli)
    assert res.returncode == 0, res.stderr
    return res.stdout


def context_for(args, seen):
    """An EtcContext from docker run flags, as core fills it."""
    ctx = EtcContext(mode='bridge', hostname=seen['hostname'].rstrip('\n'))
    it = iter(args)
    for flag in it:
        value = next(it)
        if flag == '--network':
            ctx.mode = value
        elif flag == '--domainname':
            ctx.domainname = value
        elif flag == '--add-host':
            ctx.extra_hosts.append(value)
        elif flag == '--dns':
            ctx.dns.append(value)
        elif flag == '--dns-search':
            ctx.dns_search.append(value)
        elif flag == '--dns-option':
            ctx.dns_options.append(value)
    if ctx.mode == 'bridge':
        ctx.addresses = [seen['ip']]
    return ctx


CASES = [
    [],
    ['--hostname', 'web.example', '--domainname', 'corp.test'],
    ['--hostname', 'web', '--domainname', 'corp.test', '--add-host', 'db:192.0.2.10',
     '--add-host', 'v6:2001:db8::10', '--add-host', 'db:192.0.2.11'],
    ['--dns-search', 'x.test'],
    ['--dns-option', 'ndots:2', '--dns-option', 'rotate'],
    ['--dns', '192.0.2.53', '--dns', '2001:db8::1'],
    ['--dns-search', '.', '--dns', '192.0.2.53'],
    ['--network', 'none'],
    ['--network', 'none', '--hostname', 'a.b', '--add-host', 'x:192.0.2.1',
     '--dns-search', 'n.test'],
    ['--network', 'host'],
    ['--network', 'host', '--add-host', 'x:192.0.2.5'],
    ['--network', 'host', '--dns-search', 'h.test'],
    ['--network', 'host', '--dns', '192.0.2.53', '--dns-option', 'ndots:1'],
]


@pytest.mark.skipif(AGAINST_DOCKERD, reason='compares with Docker already')
@pytest.mark.parametrize('args', CASES, ids=lambda a: ' '.join(a) or 'default')
def test_files_match_docker(bridged_dockerd, args):
    seen = run_show(bridged_dockerd.url, args)
    files = etcfiles.EtcFiles(bridged_dockerd.resolv, bridged_dockerd.hosts)
    ours = files.render(context_for(args, seen))
    assert {k: seen[k] for k in ours} == ours


@pytest.mark.skipif(AGAINST_DOCKERD, reason='compares with Docker already')
@pytest.mark.parametrize('alias', [None, 'Al-ias'])
def test_links_match_docker(bridged_dockerd, alias):
    url = bridged_dockerd.url
    suffix = os.urandom(4).hex()
    target = 'etc-target-' + suffix
    daemons_run(url, ['run', '-d', '--name', target, '--hostname', 'th.example',
                      '--expose', '80', '--expose', '53/udp', '--expose', '8000-8002',
                      '--expose', '8001/udp', '-e', 'FOO=bar', '-e', 'HOME=/x',
                      '-e', 'PATH=/bin', '-e', 'EMPTY=', 'busybox', 'sleep', '600'])
    try:
        status, info = bridged_dockerd.api_json('GET', '/containers/%s/json' % target)
        assert status == 200
        target_ip = info['NetworkSettings']['Networks']['bridge']['IPAddress']
        me = 'etc-parent-' + suffix
        link = '%s:%s' % (target, alias) if alias else target
        args = ['--link', link, '--add-host', 'h1:192.0.2.1', '--hostname', 'p1']
        seen = run_show(url, args, name=me)
        ctx = context_for(args[2:], seen)
        ctx.links = [(alias or target, target_ip, target, info['Config']['Hostname'])]
        ours = etcfiles.EtcFiles(bridged_dockerd.resolv, bridged_dockerd.hosts).render(ctx)
        assert {k: seen[k] for k in ours} == ours
        assert '%s\t%s th.example' % (target_ip, alias or target) in ours['hosts']

        # the environment in its order: read by the container's first process
        # itself (a shell would reorder it)
        environ = daemons_run(url, ['run', '--rm', '--link', link, 'busybox', 'cat',
                                    '/proc/self/environ'])
        prefix = (alias or target).upper().replace('-', '_') + '_'
        env = [v for v in environ.split('\0') if v.startswith(prefix)]
        name_var = [v for v in env if v.startswith(prefix + 'NAME=')]
        parent = name_var[0].split('=', 1)[1].split('/')[1]   # a generated name
        expected = etcfiles.link_env(alias or target, etcfiles.LinkTarget(
            name=target, ip=target_ip, exposed_ports=list(info['Config']['ExposedPorts']),
            env=info['Config']['Env'], hostname=info['Config']['Hostname']), parent)
        assert env == expected, "\n".join(env) + "\n-----\n" + "\n".join(expected)
        assert sorted(env[-2:]) == ['%sENV_EMPTY=' % prefix, '%sENV_FOO=bar' % prefix]
    finally:
        bridged_dockerd.api('DELETE', '/containers/%s?force=1' % target)


MODES_BOTH = [
    ['--network', 'none', '--hostname', 'n1.test', '--add-host', 'x:192.0.2.1',
     '--add-host', 'y:2001:db8::2'],
    ['--network', 'none', '--hostname', 'n2', '--dns', '192.0.2.53', '--dns-search', 'a.test',
     '--dns-option', 'ndots:4'],
    ['--network', 'none', '--hostname', 'n3', '--dns-search', 'only.test'],
    ['--network', 'host'],
    ['--network', 'host', '--add-host', 'x:192.0.2.1', '--dns', '192.0.2.53'],
]


@pytest.mark.skipif(AGAINST_DOCKERD, reason='compares with Docker already')
@pytest.mark.parametrize('args', MODES_BOTH, ids=lambda a: ' '.join(a))
def test_engine_writes_what_docker_writes(engine, dockerd, args):
    """The same docker run on the session engine and on Docker 20.10 (both
    on this host's real /etc/resolv.conf and /etc/hosts)."""
    ours = run_show(engine.url, args)
    theirs = run_show(dockerd.url, args)
    for key in ('hosts', 'resolv.conf', 'hostname'):
        assert ours[key] == theirs[key], key


def _links_seen(url, api_json, run_name, target):
    """/etc/hosts and the link environment of a container linked to a fresh
    ``target`` (IPs and generated names replaced by placeholders)."""
    daemons_run(url, ['run', '-d', '--name', target, '--hostname', 'th.example',
                      '--expose', '80', '--expose', '53/udp', '--expose', '8000-8001',
                      '-e', 'FOO=bar', 'busybox', 'sleep', '600'])
    status, info = api_json('GET', '/containers/%s/json' % target)
    assert status == 200, info
    ip = info['NetworkSettings']['Networks']['bridge']['IPAddress']
    assert ip
    hosts = daemons_run(url, ['run', '--rm', '--name', run_name, '--link', target + ':al',
                              '--link', target, '--add-host', 'h:192.0.2.1', '--hostname',
                              'p1', '--domainname', 'd.test', 'busybox', 'cat', '/etc/hosts'])
    environ = daemons_run(url, ['run', '--rm', '--link', target + ':al', 'busybox', 'cat',
                                '/proc/self/environ'])
    hosts = hosts.replace(ip, 'TARGET_IP').replace(target, 'TARGET')
    lines = hosts.splitlines(True)
    own = lines.pop()
    assert re.match(r'^[0-9.]+\tp1\.d\.test p1\n$', own), own
    env = [re.sub(r'^AL_NAME=/[^/]+/', 'AL_NAME=/PARENT/', v.replace(ip, 'TARGET_IP'))
           for v in environ.split('\0') if v.startswith('AL_')]
    # Docker orders the link lines as Go iterates a map: compare them as a set
    return lines[:7], sorted(lines[7:]), env


@pytest.mark.skipif(AGAINST_DOCKERD, reason='compares with Docker already')
def test_engine_links_match_docker(engine, bridged_dockerd, names):
    """--link on the default bridge: the engine's /etc/hosts and link
    environment against Docker 20.10's."""
    status, _ = engine.api_json('GET', '/networks/bridge')
    if status != 200:
        pytest.skip('this engine has no default bridge yet')
    ours = _links_seen(engine.url, engine.api_json, names('lp'), names('lt'))
    suffix = os.urandom(4).hex()
    target = 'etc-lt-' + suffix
    try:
        theirs = _links_seen(bridged_dockerd.url, bridged_dockerd.api_json, 'etc-lp-' + suffix,
                             target)
    finally:
        bridged_dockerd.api('DELETE', '/containers/%s?force=1' % target)
    assert ours == theirs
    assert theirs[1] == ['TARGET_IP\tTARGET th.example\n', 'TARGET_IP\tal th.example TARGET\n']
