"""Unit tests of engine/networks: CNI runner, firewall, store, drivers.

Only process calls (the plugins, iptables, ip) are faked.
"""

import ipaddress
import json
import os
import subprocess
import shutil
import tempfile
import unittest
from unittest import mock

import ddt

from engine import errors
from engine.networks import cni
from engine.networks import drivers
from engine.networks import firewall
from engine.networks import store


def _proc(rc=0, out=b'', err=b''):
    return subprocess.CompletedProcess([], rc, out, err)


class CNIRunnerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        for name in ('bridge', 'portmap'):
            path = os.path.join(self.dir, name)
            with open(path, 'w') as f:
                f.write('#!/bin/sh\n')
            os.chmod(path, 0o755)
        self.runner = cni.CNIRunner(self.dir + ':/nonexistent', timeout=5)
        self.conflist = {'cniVersion': '1.0.0', 'name': 'net1', 'plugins': [
            {'type': 'bridge', 'bridge': 'br0', 'capabilities': {'ips': True}},
            {'type': 'portmap', 'capabilities': {'portMappings': True}}]}

    def test_add_chains_prev_result_and_filters_runtime_config(self):
        calls = []

        def run(argv, input, capture_output, env, timeout, close_fds):
            conf = json.loads(input)
            calls.append((argv[0], conf, env))
            return _proc(out=json.dumps({'cniVersion': '1.0.0', 'from': conf['type'],
                                         'ips': [{'address': '10.0.0.2/24'}]}).encode())

        with mock.patch.object(subprocess, 'run', side_effect=run):
            result = self.runner.add(self.conflist, 'c' * 64, '/ns', 'eth0',
                                     {'ips': ['10.0.0.2/24'], 'portMappings': [1],
                                      'mac': 'x'})
        self.assertEqual('portmap', result['from'])
        (p1, c1, env1), (p2, c2, _) = calls
        self.assertEqual(os.path.join(self.dir, 'bridge'), p1)
        self.assertEqual({'ips': ['10.0.0.2/24']}, c1['runtimeConfig'])
        self.assertNotIn('prevResult', c1)
        self.assertNotIn('capabilities', c1)
        self.assertEqual('net1', c1['name'])
        self.assertEqual({'portMappings': [1]}, c2['runtimeConfig'])
        self.assertEqual('bridge', c2['prevResult']['from'])
        self.assertEqual('ADD', env1['CNI_COMMAND'])
        self.assertEqual('eth0', env1['CNI_IFNAME'])
        self.assertEqual('/ns', env1['CNI_NETNS'])
        self.assertEqual(self.dir + ':/nonexistent', env1['CNI_PATH'])

    def test_plugin_error_carries_msg_and_details_and_undoes(self):
        calls = []

        def run(argv, input, capture_output, env, timeout, close_fds):
            conf = json.loads(input)
            calls.append((env['CNI_COMMAND'], conf['type']))
            if conf['type'] == 'portmap' and env['CNI_COMMAND'] == 'ADD':
                return _proc(1, json.dumps({'code': 999, 'msg': 'port busy',
                                            'details': 'iptables said no'}).encode())
            return _proc(out=b'{"cniVersion": "1.0.0"}')

        with mock.patch.object(subprocess, 'run', side_effect=run):
            with self.assertRaises(cni.PluginError) as ctx:
                self.runner.add(self.conflist, 'c' * 64, '/ns', 'eth0')
        self.assertIn('port busy', str(ctx.exception))
        self.assertIn('iptables said no', str(ctx.exception))
        self.assertIn('portmap', str(ctx.exception))
        # Undone in reverse order: both plugins that were asked get DEL.
        self.assertEqual([('ADD', 'bridge'), ('ADD', 'portmap'), ('DEL', 'portmap'),
                          ('DEL', 'bridge')], calls)

    def test_timeout_is_an_engine_error(self):
        with mock.patch.object(subprocess, 'run',
                               side_effect=subprocess.TimeoutExpired('x', 5)):
            with self.assertRaises(cni.PluginError) as ctx:
                self.runner.delete(self.conflist, 'c' * 64, '/ns', 'eth0')
        self.assertIn('timed out', str(ctx.exception))

    def test_delete_runs_every_plugin_and_raises_first_error(self):
        seen = []

        def run(argv, input, capture_output, env, timeout, close_fds):
            seen.append(json.loads(input)['type'])
            return _proc(1, b'not json at all')

        with mock.patch.object(subprocess, 'run', side_effect=run):
            with self.assertRaises(cni.PluginError) as ctx:
                self.runner.delete(self.conflist, 'c' * 64, '/ns', 'eth0')
        self.assertEqual(['portmap', 'bridge'], seen)
        self.assertIn('not json at all', str(ctx.exception))

    def test_missing_plugin(self):
        with self.assertRaises(errors.RuntimeFailure) as ctx:
            self.runner.find('tuning')
        self.assertIn('tuning not found', str(ctx.exception))
        with self.assertRaises(errors.InvalidArgument):
            self.runner.find('../bridge')


class FirewallTest(unittest.TestCase):
    def setUp(self):
        self.calls = []
        self.chains = {('filter', firewall.FORWARD_CHAIN): [], ('nat', firewall.NAT_CHAIN): [],
                       ('filter', firewall.ISOLATION1): [], ('filter', firewall.ISOLATION2): []}

        def runner(argv, stdin=None):
            self.calls.append((argv, stdin))
            if argv[0] == 'iptables' and '-S' in argv:
                table = argv[argv.index('-t') + 1]
                chain = argv[argv.index('-S') + 1]
                lines = ['-N %s' % chain] + self.chains[(table, chain)]
                return 0, '\n'.join(lines) + '\n', ''
            if argv[0] == 'iptables' and '-C' in argv:
                return 1, '', 'no such rule'
            return 0, '', ''
        self.fw = firewall.Firewall(runner=runner)

    def test_rules_of_a_nat_network(self):
        rules = self.fw.rules('abc', 'br-x', '10.1.0.0/24')
        text = [' '.join(r) for _, r in rules]
        self.assertIn('-A NOVADOCKER-FORWARD -i br-x -o br-x -m comment --comment abc -j ACCEPT',
                      text)
        self.assertIn('-A NOVADOCKER-POSTROUTING -s 10.1.0.0/24 ! -o br-x -m comment '
                      '--comment abc -j MASQUERADE', text)
        self.assertTrue(any('RELATED,ESTABLISHED,DNAT' in t for t in text))

    def test_internal_network_has_no_nat_and_drops_outside(self):
        rules = self.fw.rules('abc', 'br-x', '10.1.0.0/24', internal=True)
        self.assertFalse(any(table == 'nat' for table, _ in rules))
        self.assertEqual(2, sum(1 for _, r in rules if r[-1] == 'DROP' and r[1] == firewall.FORWARD_CHAIN))

    def test_add_network_jumps_first_and_batches(self):
        self.fw.add_network('abc', 'br-x', '10.1.0.0/24')
        argvs = [' '.join(a) for a, _ in self.calls]
        self.assertIn('iptables -w 5 -t filter -I FORWARD 1 -j NOVADOCKER-FORWARD', argvs)
        self.assertIn('iptables -w 5 -t nat -I POSTROUTING 1 -j NOVADOCKER-POSTROUTING', argvs)
        restores = [stdin for a, stdin in self.calls if a[0] == 'iptables-restore']
        self.assertEqual(1, len(restores))
        self.assertIn('--noflush', [a for a, _ in self.calls if a[0] == 'iptables-restore'][0])
        self.assertIn('*filter', restores[0])
        self.assertIn('*nat', restores[0])
        self.assertFalse([l for l in restores[0].splitlines() if l.startswith(('-F', '-X', ':'))])

    def test_re_adding_deletes_the_old_rules_first(self):
        self.chains[('filter', firewall.FORWARD_CHAIN)] = [
            '-A NOVADOCKER-FORWARD -i br-x -o br-x -m comment --comment abc -j ACCEPT',
            '-A NOVADOCKER-FORWARD -i br-y -o br-y -m comment --comment other -j ACCEPT']
        self.fw.add_network('abc', 'br-x', '10.1.0.0/24')
        text = [s for a, s in self.calls if a[0] == 'iptables-restore'][0]
        self.assertIn('-D NOVADOCKER-FORWARD -i br-x -o br-x -m comment --comment abc -j ACCEPT',
                      text)
        self.assertNotIn('other', text)

    def test_remove_network_only_its_rules(self):
        self.chains[('nat', firewall.NAT_CHAIN)] = [
            '-A NOVADOCKER-POSTROUTING -s 10.1.0.0/24 ! -o br-x -m comment --comment abc '
            '-j MASQUERADE',
            '-A NOVADOCKER-POSTROUTING -s 10.2.0.0/24 ! -o br-y -m comment --comment "zz" '
            '-j MASQUERADE']
        self.fw.remove_network('abc')
        text = [s for a, s in self.calls if a[0] == 'iptables-restore'][0]
        self.assertIn('-D NOVADOCKER-POSTROUTING -s 10.1.0.0/24', text)
        self.assertNotIn('10.2.0.0', text)
        self.assertEqual({'abc', 'zz'}, self.fw.tags())

    def test_failure_is_reported(self):
        fw = firewall.Firewall(runner=lambda argv, stdin=None: (2, '', 'permission denied'))
        with self.assertRaises(errors.RuntimeFailure) as ctx:
            fw.add_network('abc', 'br-x', '10.1.0.0/24')
        self.assertIn('permission denied', str(ctx.exception))


class StoreTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.store = store.NetworkStore(self.root)

    def _rec(self, name, nid):
        return {'Name': name, 'Id': nid, 'Created': '2026-01-01T00:00:00Z'}

    def test_save_load_and_lookup_order(self):
        a = self._rec('alpha', 'ab' + '0' * 62)
        b = self._rec('ab', 'cd' + '1' * 62)
        self.store.save(a)
        self.store.save(b)
        fresh = store.NetworkStore(self.root)
        fresh.load()
        self.assertEqual(a['Id'], fresh.get(a['Id'])['Id'])
        # An exact name beats an id prefix.
        self.assertEqual(b['Id'], fresh.get('ab')['Id'])
        self.assertEqual(a['Id'], fresh.get('ab00')['Id'])
        with self.assertRaises(store.NoSuchNetwork) as ctx:
            fresh.get('nope')
        self.assertEqual(404, ctx.exception.status)
        self.assertEqual('network nope not found', str(ctx.exception))
        fresh.delete(a)
        self.assertFalse(os.path.exists(os.path.join(self.root, 'networks', a['Id'] + '.json')))

    def test_ambiguous_prefix(self):
        self.store.save(self._rec('n1', 'aa' + '0' * 62))
        self.store.save(self._rec('n2', 'aa' + '1' * 62))
        with self.assertRaises(errors.InvalidArgument):
            self.store.get('aa')


class _Conf:
    class network:
        default_address_pools = ['172.17.0.0/16', '192.168.0.0/16:20']
        mtu = 0


@ddt.ddt
class BridgeDriverTest(unittest.TestCase):
    def setUp(self):
        self.ctx = drivers.Context(_Conf, '/r', '/r/run', 'tag', mock.Mock(), mock.Mock(),
                                   '/r/networks/ipam')
        self.drv = drivers.BridgeDriver(self.ctx)

    @ddt.data(
        ({'IPAM': {'Config': [{'Subnet': '10.1.0.0/33'}]}}, 'not a CIDR'),
        ({'IPAM': {'Config': [{'Subnet': 'banana'}]}}, 'not a CIDR'),
        ({'IPAM': {'Config': [{'Subnet': '10.1.0.0/24', 'Gateway': '10.2.0.1'}]}},
         'no matching subnet for gateway'),
        ({'IPAM': {'Config': [{'Subnet': '10.1.0.0/24', 'IPRange': '10.1.1.0/25'}]}},
         'not inside the subnet'),
        ({'IPAM': {'Config': [{'Gateway': '10.2.0.1'}]}}, 'needs a subnet'),
        ({'Options': {drivers.OPT_MTU: 'lots'}}, 'invalid MTU'),
        ({'Options': {drivers.OPT_BRIDGE_NAME: 'a-very-long-bridge-name'}}, 'invalid bridge name'),
        ({'IPAM': {'Driver': 'dhcp'}}, 'IPAM driver'),
    )
    @ddt.unpack
    def test_bad_create_requests(self, body, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_create(body, [])
        self.assertIn(message, str(ctx.exception))

    def test_overlapping_pool_is_forbidden(self):
        other = {'IPAM': {'Config': [{'Subnet': '10.1.0.0/16'}]}}
        with self.assertRaises(errors.Forbidden) as ctx:
            self.drv.validate_create({'IPAM': {'Config': [{'Subnet': '10.1.2.0/24'}]}}, [other])
        self.assertEqual('Pool overlaps with other one on this address space',
                         str(ctx.exception))

    def test_choose_subnet_skips_taken(self):
        pools = drivers.parse_pools(_Conf.network.default_address_pools)
        taken = [ipaddress.ip_network('172.16.0.0/12'), ipaddress.ip_network('192.168.0.0/20')]
        self.assertEqual(ipaddress.ip_network('192.168.16.0/20'),
                         drivers.choose_subnet(pools, taken))
        with self.assertRaises(errors.Forbidden):
            drivers.choose_subnet(pools, taken + [ipaddress.ip_network('192.168.0.0/16')])

    def test_host_routes_parse(self):
        with tempfile.NamedTemporaryFile('w', delete=False) as f:
            f.write('Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\t'
                    'Window\tIRTT\n'
                    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n'
                    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n')
        self.addCleanup(os.unlink, f.name)
        routes = drivers.host_routes(f.name)
        self.assertEqual([('eth0', ipaddress.ip_network('192.0.2.0/24'))], routes)

    def _net(self, **kw):
        net = {'Name': 'mynet', 'Id': 'f' * 64, '_bridge': 'br-ffff', '_subnet': '10.9.0.0/24',
               '_gateway': '10.9.0.1', '_iprange': '', '_mtu': 0, '_user_subnet': True}
        net.update(kw)
        return net

    @ddt.data(
        ('10.9.1.5', 'not in the subnet'),
        ('10.9.0.1', 'not available'),
        ('nonsense', 'invalid IPv4 address'),
    )
    @ddt.unpack
    def test_bad_static_addresses(self, ip, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_endpoint(self._net(), {'IPAMConfig': {'IPv4Address': ip}})
        self.assertIn(message, str(ctx.exception))

    def test_static_ip_needs_user_subnet_as_docker_says(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_endpoint(self._net(_user_subnet=False, Name='bridge'),
                                       {'IPAMConfig': {'IPv4Address': '10.9.0.5'}})
        self.assertEqual('user specified IP address is supported on user defined networks only',
                         str(ctx.exception))
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_endpoint(self._net(_user_subnet=False),
                                       {'IPAMConfig': {'IPv4Address': '10.9.0.5'}})
        self.assertIn('only when connecting to networks with user configured subnets',
                      str(ctx.exception))

    def test_conflist_and_runtime_config(self):
        conf = self.drv.conflist(self._net(_iprange='10.9.0.128/25', _mtu=1400),
                                 ports=[{'hostPort': 1}])
        bridge, portmap = conf['plugins']
        self.assertEqual('f' * 64, conf['name'])
        self.assertEqual('br-ffff', bridge['bridge'])
        self.assertFalse(bridge['ipMasq'])  # rules are per network, not per container
        self.assertEqual(1400, bridge['mtu'])
        rng = bridge['ipam']['ranges'][0][0]
        self.assertEqual(('10.9.0.129', '10.9.0.254'), (rng['rangeStart'], rng['rangeEnd']))
        self.assertEqual('/r/networks/ipam', bridge['ipam']['dataDir'])
        self.assertEqual('portmap', portmap['type'])
        self.assertTrue(portmap['snat'])
        self.assertEqual(['bridge'], [p['type'] for p in self.drv.conflist(self._net())['plugins']])

    def test_attach_reads_the_result(self):
        self.ctx.cni.add.return_value = {
            'interfaces': [{'name': 'br-ffff', 'mac': 'aa'},
                           {'name': 'eth0', 'mac': '02:42:0a:09:00:05', 'sandbox': '/ns'}],
            'ips': [{'interface': 1, 'address': '10.9.0.5/24', 'gateway': '10.9.0.1'}]}
        with mock.patch.object(drivers, 'is_bridge', return_value=True):
            out = self.drv.attach(self._net(), '/ns', 'c' * 64,
                                  {'_ifname': 'eth0', 'IPAMConfig': {'IPv4Address': '10.9.0.5'},
                                   'MacAddress': '02:42:0a:09:00:05'})
        self.assertEqual({'IPAddress': '10.9.0.5', 'IPPrefixLen': 24, 'Gateway': '10.9.0.1',
                          'MacAddress': '02:42:0a:09:00:05', 'DNS': []}, out)
        args = self.ctx.cni.add.call_args[0]
        self.assertEqual({'ips': ['10.9.0.5/24'], 'mac': '02:42:0a:09:00:05'}, args[4])


class ExternalDriverTest(unittest.TestCase):
    def setUp(self):
        self.ctx = drivers.Context(_Conf, '/r', '/r/run', 'tag', mock.Mock(), mock.Mock(), '/i')
        self.drv = drivers.ExternalDriver(self.ctx)
        self.net = {'Name': 'ext', 'Id': 'e' * 64, '_bridge': 'brq1', '_mtu': 0}

    def test_bridge_must_exist(self):
        with mock.patch.object(drivers, 'is_bridge', return_value=False):
            with self.assertRaises(errors.InvalidArgument) as ctx:
                self.drv.validate_create({'Options': {'bridge': 'brq1'}}, [])
        self.assertIn('bridge brq1 does not exist', str(ctx.exception))
        with self.assertRaises(errors.InvalidArgument):
            self.drv.validate_create({'Options': {}}, [])

    def test_no_ipam(self):
        with mock.patch.object(drivers, 'is_bridge', return_value=True):
            fields = self.drv.validate_create({'Options': {'bridge': 'brq1', 'mtu': '1400'}}, [])
        self.assertEqual({'Driver': 'null', 'Options': None, 'Config': []}, fields['IPAM'])
        self.assertEqual(1400, fields['_mtu'])

    def test_endpoint_needs_address_and_prefix(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_endpoint(self.net, {'IPAMConfig': {'IPv4Address': '10.1.2.5'}})
        self.assertEqual('network ext has no IPAM: the endpoint needs IPAMConfig.IPv4Address '
                         'and DriverOpts prefixlen', str(ctx.exception))
        for opts, message in (({'prefixlen': '33'}, 'invalid prefixlen'),
                              ({'prefixlen': '24', 'gateway': '10.9.9.9'}, 'not in'),
                              ({'prefixlen': '24', 'dns': 'x'}, 'invalid DNS'),
                              ({'prefixlen': '24', 'mtu': '9'}, 'invalid MTU')):
            with self.assertRaises(errors.InvalidArgument) as ctx:
                self.drv.validate_endpoint(self.net, {'IPAMConfig': {'IPv4Address': '10.1.2.5'},
                                                      'DriverOpts': opts})
            self.assertIn(message, str(ctx.exception))

    def test_conflist_static_ipam_and_gateway_route_only_when_none_yet(self):
        ep = {'IPAMConfig': {'IPv4Address': '10.1.2.5'}, 'DriverOpts': {
            'prefixlen': '24', 'gateway': '10.1.2.1', 'mtu': '1400', 'dns': '10.1.2.53'}}
        conf = self.drv.conflist(self.net, ep, has_gateway=False)
        plugin = conf['plugins'][0]
        self.assertEqual('brq1', plugin['bridge'])
        self.assertFalse(plugin['isGateway'])
        self.assertEqual(1400, plugin['mtu'])
        self.assertEqual('static', plugin['ipam']['type'])
        self.assertEqual([{'address': '10.1.2.5/24', 'gateway': '10.1.2.1'}],
                         plugin['ipam']['addresses'])
        self.assertEqual([{'dst': '0.0.0.0/0', 'gw': '10.1.2.1'}], plugin['ipam']['routes'])
        conf = self.drv.conflist(self.net, ep, has_gateway=True)
        self.assertNotIn('routes', conf['plugins'][0]['ipam'])



@ddt.ddt
class ExternalOvsDriverTest(unittest.TestCase):
    """-o ovs_bridge=BR: the engine's veth, ovs-vsctl with Neutron's external
    ids, CNI host-device for the container end. Processes are faked."""

    def setUp(self):
        self.cni = mock.Mock()
        self.cni.add.return_value = {
            'interfaces': [{'name': 'eth0', 'mac': 'fa:16:3e:00:00:01', 'sandbox': '/ns'}],
            'ips': [{'address': '10.1.2.5/24', 'gateway': '10.1.2.1', 'interface': 0}]}
        self.ctx = drivers.Context(_Conf, '/r', '/r/run', 'tag', self.cni, mock.Mock(), '/i')
        self.drv = drivers.ExternalDriver(self.ctx)
        self.net = {'Name': 'ovs', 'Id': 'o' * 64, '_bridge': '', '_ovs_bridge': 'br-int',
                    '_mtu': 1450}
        self.vsctl = mock.patch.object(drivers, 'ovs_vsctl', return_value=_proc()).start()
        self.ip = mock.patch.object(drivers, 'ip_cmd').start()
        self.exists = mock.patch.object(drivers, 'link_exists', return_value=False).start()
        self.addCleanup(mock.patch.stopall)

    def endpoint(self, **opts):
        return {'IPAMConfig': {'IPv4Address': '10.1.2.5'}, 'MacAddress': 'fa:16:3e:00:00:01',
                'EndpointID': '', '_ifname': 'eth0',
                'DriverOpts': dict({'prefixlen': '24', 'gateway': '10.1.2.1',
                                    'dns': '10.1.2.53'}, **opts)}

    def test_create_checks_the_ovs_bridge(self):
        fields = self.drv.validate_create({'Options': {'ovs_bridge': 'br-int',
                                                       'mtu': '1450'}}, [])
        self.assertEqual(('br-int', '', 1450),
                         (fields['_ovs_bridge'], fields['_bridge'], fields['_mtu']))
        self.vsctl.assert_called_once_with('br-exists', 'br-int')
        self.vsctl.return_value = _proc(2)
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_create({'Options': {'ovs_bridge': 'br-x'}}, [])
        self.assertEqual('Open vSwitch bridge br-x does not exist', str(ctx.exception))
        with self.assertRaises(errors.InvalidArgument):
            self.drv.validate_create({'Options': {'ovs_bridge': 'br-int', 'bridge': 'b'}}, [])

    def test_without_ovs_vsctl_the_error_says_so(self):
        mock.patch.stopall()
        with mock.patch.object(drivers.subprocess, 'run', side_effect=FileNotFoundError):
            with self.assertRaises(errors.InvalidArgument) as ctx:
                self.drv.validate_create({'Options': {'ovs_bridge': 'br-int'}}, [])
        self.assertIn('Open vSwitch is not installed', str(ctx.exception))

    @ddt.data(({'iface_id': 'a,b'}, 'invalid iface_id'),
              ({'vm_uuid': 'x=y'}, 'invalid vm_uuid'),
              ({'host_ifname': 'much-too-long-name'}, 'invalid host_ifname'))
    @ddt.unpack
    def test_endpoint_opts_validated(self, opts, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_endpoint(self.net, self.endpoint(**opts))
        self.assertIn(message, str(ctx.exception))

    def test_ovs_opts_refused_on_a_linux_bridge_network(self):
        net = {'Name': 'ext', 'Id': 'e' * 64, '_bridge': 'brq1', '_mtu': 0}
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.drv.validate_endpoint(net, self.endpoint(iface_id='p1'))
        self.assertIn('Open vSwitch', str(ctx.exception))
        self.drv.validate_endpoint(net, self.endpoint(host_ifname='tapp1'))  # that one is fine

    def test_named_host_end_on_a_linux_bridge(self):
        net = {'Name': 'ext', 'Id': 'e' * 64, '_bridge': 'brq1', '_mtu': 0}
        ep = self.endpoint(host_ifname='tapport-1', mtu='1400')
        with mock.patch.object(drivers, 'is_bridge', return_value=True):
            self.drv.attach(net, '/ns', 'c' * 64, ep)
        peer = ep['_veth_ifnames'][1]
        self.assertEqual([mock.call('link add name tapport-1 mtu 1400 type veth peer name %s '
                                    'mtu 1400 address fa:16:3e:00:00:01' % peer),
                          mock.call('link set dev tapport-1 master brq1',
                                    'link set dev tapport-1 up')], self.ip.call_args_list)
        self.vsctl.assert_not_called()
        self.assertEqual('host-device', self.cni.add.call_args[0][0]['plugins'][0]['type'])
        self.ip.reset_mock()
        self.exists.side_effect = lambda name: name == 'tapport-1'
        self.drv.detach(net, '', 'c' * 64, ep)
        self.ip.assert_called_once_with('link del dev tapport-1')
        self.vsctl.assert_not_called()

    def test_a_missing_linux_bridge_is_made_only_when_asked(self):
        net = {'Name': 'ext', 'Id': 'e' * 64, '_bridge': 'brq1', '_mtu': 0}
        with mock.patch.object(drivers, 'is_bridge', return_value=False):
            with self.assertRaises(errors.InvalidArgument):
                self.drv.validate_create({'Options': {'bridge': 'brq1'}}, [])
            with self.assertRaises(errors.InvalidArgument) as ctx:
                self.drv.attach(net, '/ns', 'c' * 64, self.endpoint())
            self.assertIn('bridge brq1 of network ext does not exist', str(ctx.exception))
            fields = self.drv.validate_create({'Options': {'bridge': 'brq1',
                                                           'create_bridge': 'true'}}, [])
            self.assertTrue(fields['_create_bridge'])
            net['_create_bridge'] = True
            with mock.patch.object(drivers, 'subnet_lock', mock.MagicMock()):
                self.drv.attach(net, '/ns', 'c' * 64, self.endpoint())
        self.ip.assert_called_once_with('link add name brq1 type bridge',
                                        'link set dev brq1 up')
        self.assertEqual('bridge', self.cni.add.call_args[0][0]['plugins'][0]['type'])
        with self.assertRaises(errors.InvalidArgument):
            self.drv.validate_create({'Options': {'ovs_bridge': 'br-int',
                                                  'create_bridge': 'true'}}, [])

    def test_attach_plugs_veth_into_ovs_with_neutron_external_ids(self):
        ep = self.endpoint(iface_id='port-1', vm_uuid='vm-1', host_ifname='tapport-1')
        out = self.drv.attach(self.net, '/ns', 'c' * 64, ep)
        host_if, peer = ep['_veth_ifnames']
        self.assertEqual('tapport-1', host_if)
        self.assertTrue(peer.startswith('ndc') and len(peer) <= 15)
        self.assertEqual([mock.call('link add name tapport-1 mtu 1450 type veth peer name %s '
                                    'mtu 1450 address fa:16:3e:00:00:01' % peer),
                          mock.call('link set dev tapport-1 up')], self.ip.call_args_list)
        self.vsctl.assert_called_once_with(
            '--', '--may-exist', 'add-port', 'br-int', 'tapport-1',
            '--', 'set', 'Interface', 'tapport-1',
            'external-ids:attached-mac=fa:16:3e:00:00:01', 'external-ids:iface-id=port-1',
            'external-ids:iface-status=active', 'external-ids:vm-uuid=vm-1')
        conflist, cid, sandbox, ifname, rc = self.cni.add.call_args[0]
        plugin = conflist['plugins'][0]
        self.assertEqual(('host-device', peer), (plugin['type'], plugin['device']))
        self.assertEqual([{'address': '10.1.2.5/24', 'gateway': '10.1.2.1'}],
                         plugin['ipam']['addresses'])
        self.assertEqual([{'dst': '0.0.0.0/0', 'gw': '10.1.2.1'}], plugin['ipam']['routes'])
        self.assertEqual(('/ns', 'eth0'), (sandbox, ifname))
        self.assertEqual(('10.1.2.5', 24, '10.1.2.1', 'fa:16:3e:00:00:01', ['10.1.2.53']),
                         (out['IPAddress'], out['IPPrefixLen'], out['Gateway'],
                          out['MacAddress'], out['DNS']))

        self.vsctl.reset_mock()
        self.ip.reset_mock()
        self.exists.side_effect = lambda name: name == 'tapport-1'
        self.drv.detach(self.net, '', 'c' * 64, ep)
        self.vsctl.assert_called_once_with('--if-exists', 'del-port', 'br-int', 'tapport-1')
        self.ip.assert_called_once_with('link del dev tapport-1')
        self.assertNotIn('_veth_ifnames', ep)

    def test_failed_cni_add_unplugs_from_ovs_and_removes_the_veth(self):
        self.cni.add.side_effect = errors.RuntimeFailure('host-device failed')
        self.exists.side_effect = [False, True]  # before the add; at the undo
        ep = self.endpoint(host_ifname='tapx')
        with self.assertRaises(errors.RuntimeFailure):
            self.drv.attach(self.net, '/ns', 'c' * 64, ep)
        self.assertEqual(mock.call('--if-exists', 'del-port', 'br-int', 'tapx'),
                         self.vsctl.call_args_list[-1])
        self.assertEqual(mock.call('link del dev tapx'), self.ip.call_args_list[-1])

    def test_a_host_interface_of_that_name_is_a_conflict(self):
        self.exists.return_value = True
        with self.assertRaises(errors.Conflict):
            self.drv.attach(self.net, '/ns', 'c' * 64, self.endpoint(host_ifname='tapx'))
        self.ip.assert_not_called()
        self.vsctl.assert_not_called()

class FirewallIsolationTest(unittest.TestCase):
    def test_networks_are_isolated_from_each_other(self):
        rules = firewall.Firewall(runner=lambda a, s=None: (0, '', '')).rules(
            'abc', 'br-x', '10.1.0.0/24')
        text = [' '.join(r) for _, r in rules]
        self.assertIn('-A NOVADOCKER-ISOLATION-1 -i br-x ! -o br-x -m comment --comment abc '
                      '-j NOVADOCKER-ISOLATION-2', text)
        self.assertIn('-A NOVADOCKER-ISOLATION-2 -o br-x -m comment --comment abc -j DROP', text)

    def test_chains_removed_only_when_no_network_uses_them(self):
        calls = []

        def runner(argv, stdin=None):
            calls.append(' '.join(argv))
            if '-S' in argv:
                chain = argv[argv.index('-S') + 1]
                if chain == firewall.ISOLATION2 and busy:
                    return 0, '-A %s -o br-y -m comment --comment zz -j DROP\n' % chain, ''
                return 0, '-N %s\n' % chain, ''
            return 0, '', ''
        busy = True
        firewall.Firewall(runner=runner).remove_chains_if_empty()
        self.assertFalse([c for c in calls if ' -X ' in c or ' -F ' in c])
        busy = False
        calls.clear()
        firewall.Firewall(runner=runner).remove_chains_if_empty()
        self.assertIn('iptables -w 5 -t filter -D FORWARD -j NOVADOCKER-FORWARD', calls)
        self.assertIn('iptables -w 5 -t filter -X NOVADOCKER-ISOLATION-2', calls)
        self.assertFalse([c for c in calls if ' -F ' in c])


class _Container:
    def __init__(self, cid, net_id):
        self.id = cid
        self.record = {'NetworkSettings': {'SandboxKey': '/run/x/netns/' + cid, 'Networks': {
            'n': {'NetworkID': net_id, '_ifname': 'eth0'}}}}


class DrainingTest(unittest.TestCase):
    """An auto-removed container leaves the API before its CNI DEL ends:
    removing its network waits for that teardown instead of racing it."""

    def setUp(self):
        import threading
        from engine import networks
        self.networks = networks
        svc = object.__new__(networks.NetworkService)
        svc._lock = threading.RLock()
        svc._draining = {}
        svc._drained = threading.Condition(svc._lock)
        net = {'Id': 'n1' * 32, 'Name': 'mynet', 'Driver': 'bridge'}
        svc.get = lambda ref: net
        svc._users = lambda net, running_only=False: []
        svc._event = mock.Mock()
        svc.store = mock.Mock()
        self.bridge = mock.Mock()
        svc.driver = lambda name: self.bridge
        svc._sandbox_down = mock.Mock(return_value=[])
        self.svc, self.net = svc, net

    def test_remove_waits_for_a_draining_container(self):
        import threading
        c = _Container('c' * 64, self.net['Id'])
        self.svc.draining(c)
        done = threading.Event()
        t = threading.Thread(target=lambda: (self.svc.remove('mynet'), done.set()))
        t.start()
        self.assertFalse(done.wait(0.3), 'remove did not wait for the teardown')
        self.bridge.delete.assert_not_called()
        self.svc.sandbox_down(c)
        self.assertTrue(done.wait(5))
        t.join()
        self.bridge.delete.assert_called_once_with(self.net)
        self.assertEqual(self.svc._draining, {})

    def test_remove_gives_up_with_a_conflict(self):
        self.svc.draining(_Container('d' * 64, self.net['Id']))
        with mock.patch.object(self.networks, 'DRAIN_TIMEOUT', 0.1):
            with self.assertRaises(errors.Conflict) as cm:
                self.svc.remove('mynet')
        self.assertIn('mynet', str(cm.exception))
        self.bridge.delete.assert_not_called()

    def test_other_networks_do_not_wait(self):
        self.svc.draining(_Container('e' * 64, 'other' * 12))
        self.svc.remove('mynet')
        self.bridge.delete.assert_called_once_with(self.net)

    def test_a_container_without_a_namespace_is_not_registered(self):
        c = _Container('f' * 64, self.net['Id'])
        c.record['NetworkSettings']['SandboxKey'] = ''
        self.svc.draining(c)
        self.assertEqual(self.svc._draining, {})


class OrphanTest(unittest.TestCase):
    """Networks of an engine root deleted without purge-networks: found by
    the host-wide owner records, their rules and bridge removed; a live
    root's networks are never touched."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.owners = os.path.join(self.tmp, 'owners')
        self.live_root = os.path.join(self.tmp, 'live')
        os.makedirs(self.live_root)
        self.gone_root = os.path.join(self.tmp, 'gone')
        self.fw = mock.Mock()
        self.fw.tag_devices.return_value = {}

    def ctx(self, root):
        return drivers.Context(_Conf, root, root + '/run', 'tag', mock.Mock(), self.fw,
                               root + '/ipam', owners_dir=self.owners)

    def test_only_networks_of_vanished_roots_go(self):
        os.makedirs(self.gone_root)
        self.ctx(self.live_root).remember_rules('aaaaaaaaaaaa', 'br-live')
        self.ctx(self.gone_root).remember_rules('bbbbbbbbbbbb', 'br-gone')
        gone = self.ctx(self.gone_root)
        gone.remember_rules('cccccccccccc', 'br-gone2')
        gone.forget_rules('cccccccccccc')
        shutil.rmtree(self.gone_root)
        with mock.patch.object(drivers, 'subnet_lock', mock.MagicMock()), \
                mock.patch.object(drivers, 'is_bridge', return_value=True), \
                mock.patch.object(drivers, 'ip_cmd') as ip:
            removed = drivers.purge_orphans(self.fw, self.owners)
        self.assertEqual([('bbbbbbbbbbbb', 'br-gone', self.gone_root)], removed)
        self.fw.remove_network.assert_called_once_with('bbbbbbbbbbbb')
        ip.assert_called_once_with('link del dev br-gone')
        self.fw.remove_chains_if_empty.assert_called_once_with()
        self.assertEqual(['aaaaaaaaaaaa'], os.listdir(self.owners))

    def test_a_bridge_name_a_live_root_uses_again_stays(self):
        os.makedirs(self.gone_root)
        self.ctx(self.gone_root).remember_rules('bbbbbbbbbbbb', 'novadocker0')
        shutil.rmtree(self.gone_root)
        self.ctx(self.live_root).remember_rules('aaaaaaaaaaaa', 'novadocker0')
        with mock.patch.object(drivers, 'subnet_lock', mock.MagicMock()), \
                mock.patch.object(drivers, 'is_bridge', return_value=True), \
                mock.patch.object(drivers, 'ip_cmd') as ip:
            removed = drivers.purge_orphans(self.fw, self.owners)
        # The orphan's rules go; the bridge is the live network's now.
        self.assertEqual([('bbbbbbbbbbbb', 'novadocker0', self.gone_root)], removed)
        self.fw.remove_network.assert_called_once_with('bbbbbbbbbbbb')
        ip.assert_not_called()

    def test_unaccounted_rules_of_vanished_interfaces_go(self):
        self.ctx(self.live_root).remember_rules('aaaaaaaaaaaa', 'br-live')
        self.fw.tag_devices.return_value = {
            'aaaaaaaaaaaa': {'br-live'},            # a live engine's: stays
            'dddddddddddd': {'br-dead'},            # nothing left: goes
            'eeeeeeeeeeee': {'br-up', 'br-dead'},   # one interface still there
            'ffffffffffff': set()}                  # names no interface
        with mock.patch.object(drivers, 'subnet_lock', mock.MagicMock()), \
                mock.patch.object(drivers, 'link_exists', lambda d: d in ('br-up', 'br-live')):
            removed = drivers.purge_orphans(self.fw, self.owners)
        self.assertEqual([('dddddddddddd', '', '')], removed)
        self.fw.remove_network.assert_called_once_with('dddddddddddd')

    def test_nothing_recorded_is_nothing_to_do(self):
        self.assertEqual([], drivers.purge_orphans(self.fw, self.owners))
        self.fw.remove_network.assert_not_called()
