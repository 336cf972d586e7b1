"""/etc/hosts, /etc/resolv.conf and /etc/hostname through the real docker CLI.

Each test reads the files back from inside the container. The expected
texts are Docker 20.10's (tests/unit/test_etcfiles.py records the runs);
where the host's own files take part they are read here, on the host.
"""

import os
import re

import pytest

from tests import daemons
from tests.compat.conftest import AGAINST_DOCKERD, CLIS, inspect, wait_for
from engine.networks import etcfiles

# tests/netleaks.py checks this module for leaked veths, bridges, rules, leases.
NET_LEAK_CHECK = True

pytestmark = pytest.mark.compat

BASE = ('127.0.0.1\tlocalhost\n'
        '::1\tlocalhost ip6-localhost ip6-loopback\n'
        'fe00::0\tip6-localnet\n'
        'ff00::0\tip6-mcastprefix\n'
        'ff02::1\tip6-allnodes\n'
        'ff02::2\tip6-allrouters\n')
SEP = '@@@\n'
SHOW = 'cat /etc/hosts; echo @@@; cat /etc/resolv.conf; echo @@@; cat /etc/hostname'

# The suite's self-check against Docker 20.10 runs on the dockerd fixture,
# which has no default bridge (--bridge none): its default-network
# containers have no address, hence no own line. test_etcfiles_interop.py
# compares those cases with a Docker that has a bridge.
needs_default_bridge = pytest.mark.skipif(
    AGAINST_DOCKERD, reason='the dockerd fixture runs with --bridge none')


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def host_file(path):
    with open(path) as f:
        return f.read()


def show(docker_cli, args, cli=daemons.DOCKER_CLI):
    """Run busybox with ``args`` and return (hosts, resolv.conf, hostname)."""
    out = ok(docker_cli(['run', '--rm'] + args + ['busybox', 'sh', '-c', SHOW], cli=cli)).stdout
    hosts, resolv, hostname = out.split(SEP)
    # `echo @@@` follows each file: a file without a final newline runs into it
    return hosts, resolv, hostname


def built_from_host(dns=(), search=(), options=()):
    """Docker's resolvconf.Build: each list given replaces the host's."""
    host = host_file('/etc/resolv.conf')
    search = list(search) or etcfiles.get_search_domains(host)
    options = list(options) or etcfiles.get_options(host)
    servers = list(dns) or etcfiles.get_nameservers(host)
    return (('search %s\n' % ' '.join(search) if search and search != ['.'] else '')
            + ''.join('nameserver %s\n' % ns for ns in servers)
            + ('options %s\n' % ' '.join(options) if options else ''))


def host_resolv_without_loopback():
    """What the host's resolv.conf becomes in a private network namespace."""
    return etcfiles.EtcFiles().render(etcfiles.EtcContext(mode='none'))['resolv.conf']


@pytest.mark.parametrize('cli', CLIS)
def test_dns_search_options_replace_host_lines(docker_cli, cli):
    hosts, resolv, _ = show(docker_cli, [
        '--dns', '1.1.1.1', '--dns', '2001:db8::1', '--dns-search', 'a.com',
        '--dns-search', 'b.org', '--dns-option', 'ndots:2', '--dns-option', 'rotate'], cli)
    assert resolv == ('search a.com b.org\nnameserver 1.1.1.1\nnameserver 2001:db8::1\n'
                      'options ndots:2 rotate\n')


def test_dns_search_alone_keeps_host_nameservers(docker_cli):
    _, resolv, _ = show(docker_cli, ['--dns-search', 'x.example'])
    assert resolv == built_from_host(search=['x.example'])
    # --dns-search . : no search line at all
    _, resolv, _ = show(docker_cli, ['--dns-search', '.', '--dns', '9.9.9.9'])
    assert resolv == built_from_host(dns=['9.9.9.9'], search=['.'])
    assert 'search' not in resolv


def test_default_resolv_is_hosts_without_loopback(docker_cli):
    _, resolv, _ = show(docker_cli, [])
    assert resolv == host_resolv_without_loopback()
    assert not any(re.match(r'nameserver\s+(127\.|::1)', line) for line in resolv.splitlines())


@needs_default_bridge
@pytest.mark.parametrize('cli', CLIS)
def test_add_host_hostname_domainname_default_network(docker_cli, cli):
    hosts, _, hostname = show(docker_cli, [
        '--hostname', 'web.example', '--domainname', 'corp.test',
        '--add-host', 'db:192.0.2.10', '--add-host', 'v6:2001:db8::10',
        '--add-host', 'db:192.0.2.11'], cli)
    assert hostname == 'web.example\n'
    lines = hosts.splitlines(True)
    assert ''.join(lines[:-1]) == BASE + ('192.0.2.10\tdb\n2001:db8::10\tv6\n'
                                          '192.0.2.11\tdb\n')
    # own line last, Docker's '<fqdn> <first label>' names (its address is
    # the network's: loopback-only until bridges, then the bridge's)
    assert re.match(r'^\S+\tweb\.example\.corp\.test web\n$', lines[-1]), lines[-1]


@needs_default_bridge
def test_names_resolve_inside(docker_cli):
    out = ok(docker_cli(['run', '--rm', '--hostname', 'h1', '--domainname', 'dom.test',
                         '--add-host', 'peer:127.0.0.1', 'busybox', 'sh', '-c',
                         'ping -c1 -W2 peer | head -1; hostname -f; hostname -d; '
                         'cat /proc/sys/kernel/domainname'])).stdout
    # The last line is the kernel's domain name in the container's UTS
    # namespace, which Docker sets too.
    assert out.splitlines() == ['PING peer (127.0.0.1): 56 data bytes', 'h1.dom.test',
                                'dom.test', 'dom.test']


def test_none_mode(docker_cli):
    hosts, resolv, hostname = show(docker_cli, [
        '--network', 'none', '--hostname', 'a.b', '--add-host', 'x:192.0.2.1',
        '--dns-option', 'ndots:3'])
    # no address, so no own line (Docker 20.10)
    assert hosts == BASE + '192.0.2.1\tx\n'
    assert hostname == 'a.b\n'
    assert resolv == built_from_host(options=['ndots:3'])


def test_host_mode_copies_host_files(docker_cli):
    hosts, resolv, hostname = show(docker_cli, ['--network', 'host'])
    assert hosts == host_file('/etc/hosts')
    assert resolv == host_file('/etc/resolv.conf')
    assert hostname == os.uname().nodename + '\n'


def test_host_mode_with_add_host_and_dns(docker_cli):
    hosts, resolv, _ = show(docker_cli, ['--network', 'host', '--add-host', 'a:192.0.2.1',
                                         '--dns', '9.9.9.9', '--hostname', 'hh'])
    # Docker 20.10: not the host's file but its default one plus the entries
    assert hosts == BASE + '192.0.2.1\ta\n'
    assert resolv == built_from_host(dns=['9.9.9.9'])


# Docker 20.10's daemon checks ExtraHosts (same messages) and takes any
# Dns/DnsSearch/DnsOptions (its CLI checks them): this engine refuses them
# too, and anything that would add lines to the files.
STRICTER = pytest.mark.engine_only
BAD_INPUT = [
    pytest.param({'Dns': ['notanip']}, 'HostConfig.Dns: notanip is not an ip address',
                 marks=STRICTER),
    pytest.param({'Dns': ['1.1.1.1\nnameserver 6.6.6.6']}, 'is not an ip address',
                 marks=STRICTER),
    pytest.param({'DnsSearch': ['bad_domain']},
                 'HostConfig.DnsSearch: bad_domain is not a valid domain', marks=STRICTER),
    pytest.param({'DnsOptions': ['ndots:1\nnameserver 6.6.6.6']},
                 'HostConfig.DnsOptions: invalid option', marks=STRICTER),
    ({'ExtraHosts': ['noip']}, 'bad format for add-host: "noip"'),
    ({'ExtraHosts': ['a:1.2.3']}, 'invalid IP address in add-host: "1.2.3"'),
    pytest.param({'ExtraHosts': ['a\n6.6.6.6 evil:1.2.3.4']}, 'bad format for add-host',
                 marks=STRICTER),
    pytest.param({'ExtraHosts': 'a:1.2.3.4'}, 'HostConfig.ExtraHosts must be a list of strings',
                 marks=STRICTER),
    ({'Dns': ['1.1.1.1'], 'NetworkMode': 'container:whatever'},
     'conflicting options: dns and the network mode'),
    ({'ExtraHosts': ['a:1.1.1.1'], 'NetworkMode': 'container:whatever'},
     'conflicting options: custom host-to-IP mapping and the network mode'),
]


@pytest.mark.parametrize('body, message', BAD_INPUT)
def test_bad_input_is_400_and_leaves_nothing(engine, names, body, message):
    name = names('bad')
    status, data = engine.api_json('POST', '/containers/create?name=' + name,
                                   {'Image': 'busybox', 'HostConfig': body})
    assert status == 400, data
    assert message in data['message']
    assert inspect(engine, name) is None


@pytest.mark.engine_only
def test_host_gateway_needs_a_bridge(engine, names):
    # Until the default bridge exists there is no address for host-gateway;
    # Docker answers the same when it has no bridge.
    name = names('gw')
    status, data = engine.api_json('POST', '/containers/create?name=' + name, {
        'Image': 'busybox', 'Cmd': ['true'],
        'HostConfig': {'ExtraHosts': ['gw:host-gateway'], 'NetworkMode': 'none'}})
    assert status == 201, data
    status, data = engine.api_json('POST', '/containers/%s/start' % name)
    if status == 204:
        pytest.skip('this engine has a default bridge: host-gateway resolves')
    assert status == 400 and 'unable to derive the IP value for host-gateway' in data['message']
    assert inspect(engine, name)['State']['Running'] is False


def test_options_survive_restart_and_show_in_inspect(docker_cli, engine, names):
    name = names('rs')
    ok(docker_cli(['run', '-d', '--name', name, '--dns', '192.0.2.53', '--dns-search',
                   'r.test', '--add-host', 'k:192.0.2.9', 'busybox', 'sleep', '300']))
    data = inspect(engine, name)
    assert data['HostConfig']['Dns'] == ['192.0.2.53']
    assert data['HostConfig']['DnsSearch'] == ['r.test']
    assert data['HostConfig']['ExtraHosts'] == ['k:192.0.2.9']
    with open(data['ResolvConfPath']) as f:
        assert f.read().startswith('search r.test\nnameserver 192.0.2.53\n')
    ok(docker_cli(['restart', '-t', '0', name]))
    out = ok(docker_cli(['exec', name, 'sh', '-c', 'cat /etc/resolv.conf; cat /etc/hosts'])).stdout
    assert 'nameserver 192.0.2.53\n' in out and '192.0.2.9\tk\n' in out


@pytest.mark.engine_only
def test_update_hosts_reaches_running_container(docker_cli, engine, names):
    """update_hosts rewrites the bind-mounted file in place: a process that
    was reading it all along sees the new peers, exec sees them, and names
    resolve through them, while a line the container added stays."""
    name = names('upd')
    # the process prints /etc/hosts whenever it changes
    watcher = ('old=""; while true; do new=$(cat /etc/hosts); '
               'if [ "$new" != "$old" ]; then echo "$new"; echo ====; old="$new"; fi; '
               'usleep 50000; done')
    ok(docker_cli(['run', '-d', '--name', name, '--hostname', 'me', 'busybox', 'sh', '-c',
                   watcher]))
    data = inspect(engine, name)
    container_dir = os.path.dirname(data['HostsPath'])
    inode = os.stat(data['HostsPath']).st_ino
    ok(docker_cli(['exec', name, 'sh', '-c', 'echo "192.0.2.200\tadded-inside" >> /etc/hosts']))

    files = etcfiles.EtcFiles()
    ctx = etcfiles.EtcContext(mode='user', hostname='me', addresses=['127.0.1.1'],
                              peers=[('127.0.0.1', ['peer-one', 'alias-one', 'abcdef012345'])])
    files.update_hosts(container_dir, ctx)
    assert os.stat(data['HostsPath']).st_ino == inode
    expected = BASE + '127.0.1.1\tme\n127.0.0.1\tpeer-one alias-one abcdef012345\n' \
                      '192.0.2.200\tadded-inside\n'
    assert ok(docker_cli(['exec', name, 'cat', '/etc/hosts'])).stdout == expected
    out = ok(docker_cli(['exec', name, 'ping', '-c1', '-W2', 'alias-one'])).stdout
    assert out.startswith('PING alias-one (127.0.0.1)')

    def seen():
        logs = docker_cli(['logs', name]).stdout
        return expected.rstrip('\n') + '\n====' in logs
    wait_for(seen, timeout=10, what='the process inside to read the new /etc/hosts')

    # the peer leaves: its line goes, the container's own line stays
    ctx.peers = []
    files.update_hosts(container_dir, ctx)
    out = ok(docker_cli(['exec', name, 'cat', '/etc/hosts'])).stdout
    assert out == BASE + '127.0.1.1\tme\n192.0.2.200\tadded-inside\n'
    res = docker_cli(['exec', name, 'ping', '-c1', '-W1', 'alias-one'])
    assert res.returncode != 0 and 'bad address' in res.stderr


@needs_default_bridge
def test_docker_py_options(engine, names):
    import docker
    client = docker.DockerClient(base_url=engine.url, timeout=120)
    try:
        out = client.containers.run(
            'busybox', ['sh', '-c', 'cat /etc/resolv.conf; echo @@@; cat /etc/hosts'],
            name=names('py'), remove=True, hostname='py', domainname='d.test',
            dns=['192.0.2.53'], dns_search=['py.test'], dns_opt=['ndots:5'],
            extra_hosts={'svc': '192.0.2.80', 'svc6': '2001:db8::80'}).decode()
        resolv, hosts = out.split(SEP)
        assert resolv == 'search py.test\nnameserver 192.0.2.53\noptions ndots:5\n'
        lines = hosts.splitlines(True)
        assert ''.join(lines[:-1]) == BASE + '192.0.2.80\tsvc\n2001:db8::80\tsvc6\n'
        assert re.match(r'^\S+\tpy\.d\.test py\n$', lines[-1])
        with pytest.raises(docker.errors.APIError) as info:
            client.containers.create('busybox', name=names('py'),
                                     extra_hosts={'svc': 'not-an-ip'})
        assert info.value.status_code == 400
        assert 'invalid IP address in add-host: "not-an-ip"' in info.value.explanation
    finally:
        client.close()
