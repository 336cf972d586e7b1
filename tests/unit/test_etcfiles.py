"""engine/networks/etcfiles.py: full file contents as Docker 20.10 writes them.

Expected texts come from Docker 20.10.24 (runs recorded in the comments)
and from libnetwork's resolvconf/etchosts code for cases a shared host
cannot show (a loopback-only host resolv.conf).
"""

import os
import threading
import unittest

import ddt

from engine import errors
from engine.networks import etcfiles
from engine.networks.etcfiles import EtcContext

BASE = ('127.0.0.1\tlocalhost\n'
        '::1\tlocalhost ip6-localhost ip6-loopback\n'
        'fe00::0\tip6-localnet\n'
        'ff00::0\tip6-mcastprefix\n'
        'ff02::1\tip6-allnodes\n'
        'ff02::2\tip6-allrouters\n')

HOST_HOSTS = '127.0.0.1 localhost\n127.0.0.1 vm\n'


@ddt.ddt
class RenderHostsTest(unittest.TestCase):

    def test_default_bridge_links_and_add_host(self):
        # docker run --link tgt:al --link tgt --add-host h1:1.2.3.4
        #   --add-host h6:2001:db8::1 --add-host h1:5.6.7.8 busybox cat /etc/hosts
        ctx = EtcContext(mode='bridge', hostname='c81f0942e6eb', addresses=['10.213.77.3'],
                         extra_hosts=['h1:1.2.3.4', 'h6:2001:db8::1', 'h1:5.6.7.8'],
                         links=[('tgt', '10.213.77.2', 'tgt', '7d0d9ce9f501'),
                                ('al', '10.213.77.2', '/tgt', '7d0d9ce9f501')])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + (
            '1.2.3.4\th1\n'
            '2001:db8::1\th6\n'
            '5.6.7.8\th1\n'
            '10.213.77.2\ttgt 7d0d9ce9f501\n'
            '10.213.77.2\tal 7d0d9ce9f501 tgt\n'
            '10.213.77.3\tc81f0942e6eb\n'))

    def test_link_line_uses_target_hostname(self):
        # target run with --hostname th.example: Docker writes its hostname
        ctx = EtcContext(mode='bridge', hostname='me', addresses=['10.0.0.4'],
                         links=[('Al-ias', '10.0.0.3', 'tgt2-x', 'th.example')])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + (
            '10.0.0.3\tAl-ias th.example tgt2-x\n'
            '10.0.0.4\tme\n'))

    @ddt.unpack
    @ddt.data(('a.b', 'c.d', 'a.b.c.d a'),   # --hostname a.b --domainname c.d
              ('a', 'c.d', 'a.c.d a'),
              ('a.b', '', 'a.b a'),
              ('abc', '', 'abc'))
    def test_own_line(self, hostname, domainname, names):
        ctx = EtcContext(mode='bridge', hostname=hostname, domainname=domainname,
                         addresses=['10.213.77.3'])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + '10.213.77.3\t%s\n' % names)

    def test_own_lines_per_address(self):
        # two networks, the second with IPv6: v4 then v6 of each endpoint
        ctx = EtcContext(mode='user', hostname='266b30e3f281',
                         addresses=['10.213.78.3', '10.213.79.2', 'fd00:213:79::2'])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + (
            '10.213.78.3\t266b30e3f281\n'
            '10.213.79.2\t266b30e3f281\n'
            'fd00:213:79::2\t266b30e3f281\n'))

    def test_none(self):
        # docker run --network none --hostname a.b --add-host x:1.1.1.1
        ctx = EtcContext(mode='none', hostname='a.b', extra_hosts=['x:1.1.1.1'])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + '1.1.1.1\tx\n')

    def test_host_copies_host_file(self):
        ctx = EtcContext(mode='host', hostname='vm')
        self.assertEqual(etcfiles.render_hosts(ctx, HOST_HOSTS), HOST_HOSTS)

    def test_host_with_add_host_is_docker_default_plus_entries(self):
        # docker run --network host --add-host a:1.1.1.1: not the host's file
        ctx = EtcContext(mode='host', hostname='vm', extra_hosts=['a:1.1.1.1'])
        self.assertEqual(etcfiles.render_hosts(ctx, HOST_HOSTS), BASE + '1.1.1.1\ta\n')

    def test_user_peers_sorted_merged_unique(self):
        ctx = EtcContext(
            mode='user', hostname='me', addresses=['10.1.0.5'],
            extra_hosts=['web:192.0.2.9'],
            peers=[('10.1.0.10', ['db', 'database', 'aaaaaaaaaaaa']),
                   ('10.1.0.3', ['web', 'web', 'bbbbbbbbbbbb']),
                   ('fd00::3', ['web', 'bbbbbbbbbbbb']),
                   ('10.1.0.10', ['db', 'pg']),
                   ('10.1.0.5', ['me-itself'])],
            links=[('cache', '10.1.0.3', 'web', 'bbbbbbbbbbbb'),
                   ('other', '10.1.0.7', '/lonely', 'cccccccccccc')])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + (
            '192.0.2.9\tweb\n'
            '10.1.0.5\tme\n'
            '10.1.0.3\tweb bbbbbbbbbbbb cache\n'
            '10.1.0.7\tlonely other\n'
            '10.1.0.10\tdb database aaaaaaaaaaaa pg\n'
            'fd00::3\tweb bbbbbbbbbbbb\n'))

    def test_names_that_would_break_a_line_are_left_out(self):
        ctx = EtcContext(mode='bridge', hostname='me', addresses=['10.1.0.5'],
                         peers=[('10.1.0.3', ['web', 'x\n6.6.6.6 evil', 'a b', '#c', 'ok'])],
                         links=[('bad\nalias', '10.1.0.4', 'tgt', 'tgthost')],
                         extra_hosts=['n\n:1.2.3.4'])
        self.assertEqual(etcfiles.render_hosts(ctx), BASE + (
            '10.1.0.4\ttgthost tgt\n'
            '10.1.0.5\tme\n'
            '10.1.0.3\tweb ok\n'))

    def test_peer_order_does_not_depend_on_input_order(self):
        peers = [('10.1.0.%d' % i, ['c%d' % i]) for i in range(2, 12)]
        a = etcfiles.render_hosts(EtcContext(mode='user', hostname='x', peers=peers))
        b = etcfiles.render_hosts(EtcContext(mode='user', hostname='x', peers=peers[::-1]))
        self.assertEqual(a, b)

    def test_hostname_file(self):
        self.assertEqual(etcfiles.render_hostname(EtcContext(hostname='a.b', domainname='c')),
                         'a.b\n')


HOST_RESOLV = ('# generated\n'
               'nameserver 10.255.255.53\n'
               'nameserver 127.0.0.53\n'
               'search example.com corp.example\n'
               'options edns0\n')


@ddt.ddt
class RenderResolvTest(unittest.TestCase):

    def resolv(self, host=HOST_RESOLV, **kw):
        return etcfiles.render_resolv(EtcContext(**kw), host)

    def test_filtered_host_file(self):
        self.assertEqual(self.resolv(), ('# generated\n'
                                         'nameserver 10.255.255.53\n'
                                         'search example.com corp.example\n'
                                         'options edns0\n'))

    def test_dns_options_replace_host_lines(self):
        # docker run --dns 1.1.1.1 --dns 2001:db8::1 --dns-search a.com
        #   --dns-search b.org --dns-option ndots:2 --dns-option rotate
        self.assertEqual(
            self.resolv(dns=['1.1.1.1', '2001:db8::1'], dns_search=['a.com', 'b.org'],
                        dns_options=['ndots:2', 'rotate']),
            'search a.com b.org\nnameserver 1.1.1.1\nnameserver 2001:db8::1\n'
            'options ndots:2 rotate\n')

    def test_dns_only_keeps_host_search_and_options(self):
        self.assertEqual(self.resolv(dns=['9.9.9.9']),
                         'search example.com corp.example\nnameserver 9.9.9.9\n'
                         'options edns0\n')

    def test_search_only_keeps_host_nameservers_unfiltered(self):
        # resolvconf.Build with GetNameservers: loopback ones stay (Docker 20.10)
        self.assertEqual(self.resolv(dns_search=['x.org']),
                         'search x.org\nnameserver 10.255.255.53\nnameserver 127.0.0.53\n'
                         'options edns0\n')

    def test_search_dot_means_no_search_line(self):
        # docker run --dns-search . : 'nameserver 10.255.255.53\n' only
        self.assertEqual(self.resolv('nameserver 10.255.255.53\n', dns_search=['.']),
                         'nameserver 10.255.255.53\n')

    def test_option_only(self):
        self.assertEqual(self.resolv('nameserver 10.255.255.53\n', dns_options=['ndots:3']),
                         'nameserver 10.255.255.53\noptions ndots:3\n')

    def test_network_dns_used_without_dns(self):
        self.assertEqual(self.resolv(network_dns=['10.1.2.53', '10.1.2.54']),
                         'search example.com corp.example\nnameserver 10.1.2.53\n'
                         'nameserver 10.1.2.54\noptions edns0\n')
        self.assertEqual(self.resolv(network_dns=['10.1.2.53'], dns=['9.9.9.9']),
                         'search example.com corp.example\nnameserver 9.9.9.9\n'
                         'options edns0\n')

    def test_host_mode_copies(self):
        self.assertEqual(self.resolv(mode='host'), HOST_RESOLV)

    def test_host_mode_with_dns_builds(self):
        self.assertEqual(self.resolv(mode='host', dns=['9.9.9.9']),
                         'search example.com corp.example\nnameserver 9.9.9.9\n'
                         'options edns0\n')

    def test_loopback_only_falls_back_to_google(self):
        # FilterResolvDNS(true) adds IPv4 and IPv6 defaults, then the join of
        # a network without IPv6 drops the IPv6 ones again.
        host = 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n'
        self.assertEqual(self.resolv(host), 'options edns0 trust-ad\nsearch lan\n'
                         '\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n')
        self.assertEqual(self.resolv(host, ipv6=True),
                         'options edns0 trust-ad\nsearch lan\n\nnameserver 8.8.8.8\n'
                         'nameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\n'
                         'nameserver 2001:4860:4860::8844')

    def test_ipv6_nameservers_need_ipv6(self):
        host = 'nameserver 2001:db8::53\nnameserver 10.0.0.53\n'
        self.assertEqual(self.resolv(host), 'nameserver 10.0.0.53\n')
        self.assertEqual(self.resolv(host, ipv6=True), host)

    def test_only_ipv6_nameservers_without_ipv6(self):
        self.assertEqual(self.resolv('nameserver fe80::1%eth0\nsearch lan\n'),
                         'search lan\n\nnameserver 8.8.8.8\nnameserver 8.8.4.4')

    def test_empty_host_file(self):
        self.assertEqual(self.resolv(''), '\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n')

    @ddt.unpack
    @ddt.data(('nameserver 1.2.3.4 # c\nnameserver ::1\nnameserver 5.6.7.8\n',
               ['1.2.3.4', '::1', '5.6.7.8']),
              ('  nameserver\t10.0.0.1\nnameserver bogus\n', ['10.0.0.1']),
              ('search a\nsearch b c\n', []))
    def test_get_nameservers(self, text, servers):
        self.assertEqual(etcfiles.get_nameservers(text), servers)

    def test_last_search_and_options_win(self):
        text = 'search a b\noptions x\nsearch c # comment\noptions y z\n'
        self.assertEqual(etcfiles.get_search_domains(text), ['c'])
        self.assertEqual(etcfiles.get_options(text), ['y', 'z'])


@ddt.ddt
class ValidateTest(unittest.TestCase):

    @ddt.data(
        {'Dns': ['1.1.1.1', '2001:db8::1', ' 8.8.8.8 ']},
        {'DnsSearch': ['example.com', 'a', '.', 'example.com.', 'x-y.z9']},
        {'DnsOptions': ['ndots:2', 'rotate', 'timeout:1']},
        {'ExtraHosts': ['a:1.2.3.4', 'h6:2001:db8::1', 'gw:host-gateway', 'a b:::1']},
        {'Links': ['tgt', 'tgt:al', '/tgt:/me/al']},
        {'Links': ['tgt'], 'NetworkMode': 'none'},
        {'DnsSearch': ['a.com'], 'DnsOptions': ['x'], 'NetworkMode': 'container:abc'},
        {'Dns': ['1.1.1.1'], 'ExtraHosts': ['a:1.1.1.1'], 'NetworkMode': 'host'},
        {'Dns': None, 'ExtraHosts': None},
    )
    def test_good(self, host_config):
        etcfiles.validate({}, host_config)

    @ddt.unpack
    @ddt.data(
        ({'Dns': ['notanip']}, 'HostConfig.Dns: notanip is not an ip address'),
        ({'Dns': ['fe80::1%eth0']}, 'HostConfig.Dns: fe80::1%eth0 is not an ip address'),
        ({'Dns': ['1.1.1.1\nnameserver 6.6.6.6']}, 'is not an ip address'),
        ({'Dns': 'x'}, 'HostConfig.Dns must be a list of strings'),
        ({'Dns': [1]}, 'HostConfig.Dns must be a list of strings'),
        ({'DnsSearch': ['bad_dom']}, 'HostConfig.DnsSearch: bad_dom is not a valid domain'),
        ({'DnsSearch': ['123']}, '123 is not a valid domain'),
        ({'DnsSearch': ['-a.com']}, 'is not a valid domain'),
        ({'DnsSearch': ['a' * 255]}, 'is not a valid domain'),
        ({'DnsSearch': ['a.com\nnameserver 6.6.6.6']}, 'is not a valid domain'),
        ({'DnsOptions': ['ndots:1\nnameserver 6.6.6.6']}, 'HostConfig.DnsOptions: invalid option'),
        ({'DnsOptions': ['']}, 'HostConfig.DnsOptions: invalid option'),
        ({'ExtraHosts': ['noip']}, 'bad format for add-host: "noip"'),
        ({'ExtraHosts': [':1.2.3.4']}, 'bad format for add-host: ":1.2.3.4"'),
        ({'ExtraHosts': ['a\n6.6.6.6 evil:1.2.3.4']}, 'bad format for add-host'),
        ({'ExtraHosts': ['a:1.2.3']}, 'invalid IP address in add-host: "1.2.3"'),
        ({'ExtraHosts': ['a:[::1]']}, 'invalid IP address in add-host: "[::1]"'),
        ({'ExtraHosts': ['a=1.2.3.4']}, 'bad format for add-host: "a=1.2.3.4"'),
        ({'Links': ['']}, 'empty string specified for links'),
        ({'Links': ['a:b:c']}, 'bad format for links: a:b:c'),
        ({'Links': ['tgt'], 'NetworkMode': 'host'},
         "conflicting options: host type networking can't be used with links. "
         'This would result in undefined behavior'),
        ({'Links': ['tgt'], 'NetworkMode': 'container:x'},
         "conflicting options: container type network can't be used with links. "
         'This would result in undefined behavior'),
        ({'Dns': ['1.1.1.1'], 'NetworkMode': 'container:x'},
         'conflicting options: dns and the network mode'),
        ({'ExtraHosts': ['a:1.1.1.1'], 'NetworkMode': 'container:x'},
         'conflicting options: custom host-to-IP mapping and the network mode'),
    )
    def test_bad(self, host_config, message):
        with self.assertRaises(errors.InvalidArgument) as cm:
            etcfiles.validate({}, host_config)
        self.assertIn(message, str(cm.exception))
        self.assertEqual(cm.exception.status, 400)

    def test_hostname_conflicts_with_container_mode(self):
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'conflicting options: hostname and the network mode'):
            etcfiles.validate({'Hostname': 'x'}, {'NetworkMode': 'container:abc'})
        etcfiles.validate({'Domainname': 'x'}, {'NetworkMode': 'container:abc'})

    @ddt.data('Hostname', 'Domainname')
    def test_control_characters_in_names(self, field):
        with self.assertRaisesRegex(errors.InvalidArgument, 'control character'):
            etcfiles.validate({field: 'a\n1.2.3.4 evil'}, {})

    @ddt.unpack
    @ddt.data(('tgt', ('tgt', 'tgt')), ('tgt:al', ('tgt', 'al')),
              ('/tgt:/me/al', ('tgt', 'al')))
    def test_parse_link(self, value, expected):
        self.assertEqual(etcfiles.parse_link(value), expected)

    def test_resolve_extra_hosts(self):
        self.assertEqual(etcfiles.resolve_extra_hosts(['a:host-gateway', 'b:::1'], '172.17.0.1'),
                         ['a:172.17.0.1', 'b:::1'])
        self.assertEqual(etcfiles.resolve_extra_hosts(None, None), [])
        with self.assertRaisesRegex(errors.InvalidArgument,
                                    'unable to derive the IP value for host-gateway'):
            etcfiles.resolve_extra_hosts(['a:host-gateway'], None)


class LinkEnvTest(unittest.TestCase):

    def test_docker_2010_output(self):
        # docker run -d --name tgt2-x --hostname th.example --expose 8000-8002
        #   --expose 8001/udp --expose 9000 -e HOSTNAME=hh -e PATH=/bin -e A=b=c
        #   -e NOVAL= busybox sleep 1000
        # docker run --rm --link tgt2-x:Al-ias busybox cat /proc/self/environ
        target = etcfiles.LinkTarget(
            name='tgt2-x', ip='10.213.77.3',
            exposed_ports=['8000/tcp', '8001/tcp', '8001/udp', '8002/tcp', '9000/tcp'],
            env=['HOSTNAME=hh', 'PATH=/bin', 'A=b=c', 'NOVAL='])
        ip = '10.213.77.3'
        expected = [
            'AL_IAS_PORT=tcp://%s:8000' % ip,
            'AL_IAS_PORT_8000_TCP_START=tcp://%s:8000' % ip,
            'AL_IAS_PORT_8000_TCP_ADDR=%s' % ip,
            'AL_IAS_PORT_8000_TCP_PROTO=tcp',
            'AL_IAS_PORT_8000_TCP_PORT_START=8000',
            'AL_IAS_PORT_8000_TCP_END=tcp://%s:8002' % ip,
            'AL_IAS_PORT_8000_TCP_PORT_END=8002',
        ]
        # the range repeats 8000's _ADDR and _PROTO: they keep their first place
        expected += ['AL_IAS_PORT_8000_TCP=tcp://%s:8000' % ip, 'AL_IAS_PORT_8000_TCP_PORT=8000']
        for port, proto in ((8001, 'tcp'), (8001, 'udp'), (8002, 'tcp'), (9000, 'tcp')):
            base = 'AL_IAS_PORT_%d_%s' % (port, proto.upper())
            expected += ['%s=%s://%s:%d' % (base, proto, ip, port), '%s_ADDR=%s' % (base, ip),
                         '%s_PORT=%d' % (base, port), '%s_PROTO=%s' % (base, proto)]
        expected += ['AL_IAS_NAME=/gallant_jepsen/Al-ias', 'AL_IAS_ENV_HOSTNAME=hh',
                     'AL_IAS_ENV_A=b=c', 'AL_IAS_ENV_NOVAL=']
        self.assertEqual(etcfiles.link_env('Al-ias', target, 'gallant_jepsen'), expected)
        self.assertEqual(etcfiles.link_env('/gallant_jepsen/Al-ias', target), expected)
        self.assertEqual(etcfiles.link_env('Al-ias', target, '/gallant_jepsen'), expected)

    def test_lowest_port_udp_and_bare_port(self):
        # --expose 80 --expose 53/udp -e FOO=bar -e HOME=/x (Docker 20.10)
        target = etcfiles.LinkTarget('tgt', '10.0.0.2', ['80', '53/udp'], ['FOO=bar', 'HOME=/x'])
        self.assertEqual(etcfiles.link_env('tgt', target, 'me'), [
            'TGT_PORT=udp://10.0.0.2:53',
            'TGT_PORT_53_UDP=udp://10.0.0.2:53', 'TGT_PORT_53_UDP_ADDR=10.0.0.2',
            'TGT_PORT_53_UDP_PORT=53', 'TGT_PORT_53_UDP_PROTO=udp',
            'TGT_PORT_80_TCP=tcp://10.0.0.2:80', 'TGT_PORT_80_TCP_ADDR=10.0.0.2',
            'TGT_PORT_80_TCP_PORT=80', 'TGT_PORT_80_TCP_PROTO=tcp',
            'TGT_NAME=/me/tgt', 'TGT_ENV_FOO=bar'])

    def test_repeated_env_key_keeps_first_place_last_value(self):
        target = etcfiles.LinkTarget('t', '10.0.0.2', [], ['A=1', 'B=2', 'A=3'])
        self.assertEqual(etcfiles.link_env('t', target, 'p'),
                         ['T_NAME=/p/t', 'T_ENV_A=3', 'T_ENV_B=2'])

    def test_no_ports_no_env(self):
        self.assertEqual(etcfiles.link_env('db', etcfiles.LinkTarget('db', '10.0.0.9'), 'web'),
                         ['DB_NAME=/web/db'])

    def test_needs_parent(self):
        with self.assertRaises(ValueError):
            etcfiles.link_env('db', etcfiles.LinkTarget('db', '10.0.0.9'))


class EtcFilesTest(unittest.TestCase):

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix='etcfiles-')
        self.addCleanup(__import__('shutil').rmtree, self.tmp)
        self.host_resolv = os.path.join(self.tmp, 'host-resolv.conf')
        self.host_hosts = os.path.join(self.tmp, 'host-hosts')
        self.resolved = os.path.join(self.tmp, 'resolved-resolv.conf')
        with open(self.host_resolv, 'w') as f:
            f.write('nameserver 10.255.255.53\n')
        with open(self.host_hosts, 'w') as f:
            f.write(HOST_HOSTS)
        self.cdir = os.path.join(self.tmp, 'ctr')
        os.mkdir(self.cdir)
        self.files = etcfiles.EtcFiles(self.host_resolv, self.host_hosts, self.resolved)

    def read(self, name):
        with open(os.path.join(self.cdir, name)) as f:
            return f.read()

    def test_write_returns_paths_and_contents(self):
        ctx = EtcContext(mode='bridge', hostname='abc', addresses=['10.0.0.2'],
                         dns_search=['x.org'])
        paths = self.files.write(self.cdir, ctx)
        self.assertEqual(paths, {n: os.path.join(self.cdir, n)
                                 for n in ('hostname', 'hosts', 'resolv.conf')})
        self.assertEqual(self.read('hostname'), 'abc\n')
        self.assertEqual(self.read('hosts'), BASE + '10.0.0.2\tabc\n')
        self.assertEqual(self.read('resolv.conf'), 'search x.org\nnameserver 10.255.255.53\n')
        for name in paths:
            self.assertEqual(os.stat(paths[name]).st_mode & 0o777, 0o644)

    def test_host_mode_copies_both(self):
        self.files.write(self.cdir, EtcContext(mode='host', hostname='vm'))
        self.assertEqual(self.read('hosts'), HOST_HOSTS)
        self.assertEqual(self.read('resolv.conf'), 'nameserver 10.255.255.53\n')

    def test_systemd_resolved_host(self):
        with open(self.host_resolv, 'w') as f:
            f.write('nameserver 127.0.0.53\noptions edns0 trust-ad\n')
        with open(self.resolved, 'w') as f:
            f.write('nameserver 192.0.2.53\nsearch lan\n')
        self.files.write(self.cdir, EtcContext(mode='bridge', hostname='a'))
        self.assertEqual(self.read('resolv.conf'), 'nameserver 192.0.2.53\nsearch lan\n')
        # host mode copies /etc/resolv.conf itself: the host's stub answers there
        self.files.write(self.cdir, EtcContext(mode='host', hostname='a'))
        self.assertEqual(self.read('resolv.conf'),
                         'nameserver 127.0.0.53\noptions edns0 trust-ad\n')
        self.files.write(self.cdir, EtcContext(mode='host', hostname='a', dns_options=['x']))
        self.assertEqual(self.read('resolv.conf'),
                         'search lan\nnameserver 192.0.2.53\noptions x\n')

    def test_rewrite_keeps_inode(self):
        self.files.write(self.cdir, EtcContext(mode='bridge', hostname='a' * 40,
                                               addresses=['10.0.0.2']))
        inodes = {n: os.stat(os.path.join(self.cdir, n)).st_ino for n in etcfiles.FILES}
        self.files.write(self.cdir, EtcContext(mode='none', hostname='b'))
        self.assertEqual(inodes, {n: os.stat(os.path.join(self.cdir, n)).st_ino
                                  for n in etcfiles.FILES})
        self.assertEqual(self.read('hosts'), BASE)
        self.assertEqual(self.read('hostname'), 'b\n')

    def test_container_mode_has_no_files(self):
        with self.assertRaises(ValueError):
            self.files.write(self.cdir, EtcContext(mode='container'))
        self.assertEqual(etcfiles.joined_paths('/x/c1'), {
            'hostname': '/x/c1/hostname', 'hosts': '/x/c1/hosts',
            'resolv.conf': '/x/c1/resolv.conf'})

    def test_update_hosts_in_place_keeps_container_lines(self):
        ctx = EtcContext(mode='user', hostname='me', addresses=['10.1.0.2'],
                         peers=[('10.1.0.3', ['web', 'w1', 'aaaaaaaaaaaa'])])
        self.files.write(self.cdir, ctx)
        path = os.path.join(self.cdir, 'hosts')
        inode = os.stat(path).st_ino
        with open(path, 'a') as f:   # what a process inside might do
            f.write('203.0.113.7\tmine\n')
        ctx.peers = [('10.1.0.4', ['db', 'bbbbbbbbbbbb'])]
        self.assertEqual(self.files.update_hosts(self.cdir, ctx), path)
        self.assertEqual(os.stat(path).st_ino, inode)
        self.assertEqual(self.read('hosts'), BASE + ('10.1.0.2\tme\n'
                                                     '10.1.0.4\tdb bbbbbbbbbbbb\n'
                                                     '203.0.113.7\tmine\n'))
        ctx.peers = []
        self.files.update_hosts(self.cdir, ctx)
        self.assertEqual(self.read('hosts'), BASE + '10.1.0.2\tme\n203.0.113.7\tmine\n')
        # a restart starts afresh, as Docker's etchosts.Build does
        self.files.write(self.cdir, ctx)
        self.assertEqual(self.read('hosts'), BASE + '10.1.0.2\tme\n')

    def test_update_hosts_drops_huge_container_additions(self):
        ctx = EtcContext(mode='user', hostname='me', addresses=['10.1.0.2'])
        self.files.write(self.cdir, ctx)
        with open(os.path.join(self.cdir, 'hosts'), 'a') as f:
            f.write('203.0.113.7\tx\n' * (etcfiles.MAX_KEPT_HOSTS // 10))
        self.files.update_hosts(self.cdir, ctx)
        self.assertEqual(self.read('hosts'), BASE + '10.1.0.2\tme\n')

    def test_update_hosts_keeps_odd_bytes_and_blank_lines_go(self):
        ctx = EtcContext(mode='none', hostname='me')
        self.files.write(self.cdir, ctx)
        with open(os.path.join(self.cdir, 'hosts'), 'ab') as f:
            f.write(b'\n\n198.51.100.1\tcaf\xe9\x0bx\n')
        ctx.extra_hosts = ['n:192.0.2.1']
        self.files.update_hosts(self.cdir, ctx)
        with open(os.path.join(self.cdir, 'hosts'), 'rb') as f:
            self.assertEqual(f.read(), (BASE + '192.0.2.1\tn\n').encode()
                             + b'198.51.100.1\tcaf\xe9\x0bx\n')

    def test_update_hosts_without_record_of_last_write(self):
        # files written before this module (engine upgrade): nothing to tell
        # the container's lines from ours, so ours replace all
        ctx = EtcContext(mode='none', hostname='me')
        self.files.write(self.cdir, ctx)
        os.unlink(os.path.join(self.cdir, etcfiles.EtcFiles.GENERATED))
        with open(os.path.join(self.cdir, 'hosts'), 'a') as f:
            f.write('127.0.1.1\tme\n')
        self.files.update_hosts(self.cdir, ctx)
        self.assertEqual(self.read('hosts'), BASE)

    def test_update_hosts_before_start(self):
        self.assertIsNone(self.files.update_hosts(self.cdir, EtcContext(hostname='a')))
        self.assertFalse(os.path.exists(os.path.join(self.cdir, 'hosts')))

    def test_concurrent_updates_are_serialised(self):
        ctx = EtcContext(mode='user', hostname='me', addresses=['10.1.0.2'])
        self.files.write(self.cdir, ctx)
        contexts = [EtcContext(mode='user', hostname='me', addresses=['10.1.0.2'],
                               peers=[('10.1.%d.%d' % (i, j), ['p%d-%d' % (i, j)])
                                      for j in range(2, 40)])
                    for i in range(8)]
        expected = {etcfiles.render_hosts(c) for c in contexts}
        threads = [threading.Thread(target=self.files.update_hosts, args=(self.cdir, c))
                   for c in contexts * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertIn(self.read('hosts'), expected)


if __name__ == '__main__':
    unittest.main()
