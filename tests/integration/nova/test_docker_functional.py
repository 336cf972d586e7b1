"""In-process Nova (real API, conductor, scheduler, placement; Glance,
Neutron and Cinder fixtures) with two compute services running DockerDriver,
each on a real engine of its own, loaded as an operator would:
``compute_driver = novadocker.DockerDriver`` through the installed shim.

Every step is read back from the engine that should have done it.
"""

import copy
import json
import os
import subprocess
import uuid

from cryptography.hazmat.primitives import serialization
import fixtures
from cryptography.hazmat.primitives.asymmetric import ed25519
import nova.conf
from nova.tests.functional import integrated_helpers

from tests import daemons
from tests.integration.nova import realengine
from tests.integration.nova import shim
from novadocker.virt.docker import conf as docker_conf
from novadocker.virt.docker import driver as docker_driver

# The [docker] options exist once the driver module is imported; the test
# sets them before nova imports it (through the shim, at compute start).
docker_conf.register_opts(nova.conf.CONF)

IMAGE_ID = 'b1d0c0de-0000-4000-8000-00000000d0c4'
# A guest that says when it booted, idles, and stops cleanly on SIGTERM.
COMMAND = ("sh -c 'trap \"exit 0\" TERM; echo booted $(hostname); "
           "while true; do sleep 1; done'")


def _public_key():
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + ' tester@novadocker'


class TestDockerDriverTwoComputes(shim.FunctionalShimMixin,
                                  integrated_helpers._IntegratedTestBase):
    ADMIN_API = True
    microversion = 'latest'

    def _setup_services(self):
        # Nova names the bridge of an OVS port after this option; the test
        # made a Linux bridge of that name for the 'bridge' VIF driver.
        self.bridge = realengine.bridge()
        self.flags(ovs_bridge=self.bridge, group='neutron')
        # The real loading path: nova imports 'nova.virt.novadocker', which
        # only the .pth-installed shim provides.
        self.flags(compute_driver='novadocker.DockerDriver')
        # A real host keeps its node identity in a file under state_path
        # (nova.virt.node); two computes in one process would share it, so
        # here each node's UUID derives from its name (as nova's own
        # PredictableNodeUUIDDriver does for its functional tests).
        real_resources = docker_driver.DockerDriver.get_available_resource

        def get_available_resource(drv, nodename):
            res = real_resources(drv, nodename)
            res['uuid'] = _node_uuid(nodename)
            return res
        self.useFixture(fixtures.MockPatchObject(
            docker_driver.DockerDriver, 'get_available_resource', get_available_resource))
        self.useFixture(fixtures.MockPatchObject(
            docker_driver.DockerDriver, 'get_nodenames_by_uuid',
            lambda drv, refresh=False: {_node_uuid(n): n for n in drv.get_available_nodes()}))
        super()._setup_services()

    def _setup_compute_service(self):
        self.engines = {}
        for host in ('host1', 'host2'):
            eng = realengine.engine(host)
            self.engines[host] = eng
            # Read by each driver when it is built: each host keeps its own.
            self.flags(engine_url=eng.url, vif_driver='bridge', stop_timeout=2,
                       inject_key=True, registry_url=realengine.registry().host,
                       group='docker')
            compute = self._start_compute(host)
        self.addCleanup(realengine.remove_all_containers)
        return compute

    # -- reading the engines --------------------------------------------------

    def _container(self, host, server):
        status, c = self.engines[host].api_json('GET', '/containers/nova-%s/json' % server['id'])
        return c if status == 200 else None

    def _exec(self, host, server, *cmd):
        env = dict(os.environ, DOCKER_HOST=self.engines[host].url, DOCKER_CLI_HINTS='false')
        res = subprocess.run([daemons.DOCKER_CLI, 'exec', 'nova-%s' % server['id']] + list(cmd),
                             capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(0, res.returncode, res.stderr)
        return res.stdout

    def _started_at(self, host, server):
        return self._container(host, server)['State']['StartedAt']

    def _port_on_a_second_network(self, address):
        """A port on a network of its own (192.168.2.0/24), added to the
        Neutron fixture, which knows one network only."""
        net = copy.deepcopy(self.neutron.network_1)
        sub = copy.deepcopy(self.neutron.subnet_1)
        net.update(id=str(uuid.uuid4()), name='second', subnets=[])
        sub.update(id=str(uuid.uuid4()), network_id=net['id'], cidr='192.168.2.0/24',
                   gateway_ip='192.168.2.1',
                   allocation_pools=[{'start': '192.168.2.2', 'end': '192.168.2.254'}])
        net['subnets'] = [sub['id']]
        self.neutron._networks[net['id']] = net
        self.neutron._subnets[sub['id']] = sub
        port = self.neutron.create_port()['port']
        self.neutron._ports[port['id']].update(
            network_id=net['id'], fixed_ips=[{'ip_address': address, 'subnet_id': sub['id']}])
        return self.neutron._ports[port['id']]

    def _boot(self, host, image=IMAGE_ID, **extra):
        body = self._build_server(image_uuid=image, networks='none', host=host)
        body.update(extra)
        server = self.api.post_server({'server': body})
        return self._wait_for_state_change(server, 'ACTIVE')

    def test_lifecycle_on_two_hosts(self):
        self.glance.create(None, {
            'id': IMAGE_ID, 'name': 'busybox', 'status': 'active',
            'container_format': 'docker', 'disk_format': 'raw', 'size': 1024,
            'min_ram': 0, 'min_disk': 0, 'visibility': 'public',
            'properties': {'novadocker_image_ref': realengine.busybox_ref(),
                           'os_command_line': COMMAND, 'os_type': 'linux'}})
        pub = _public_key()
        self.api.post_keypair({'keypair': {'name': 'k1', 'public_key': pub}})
        for host, compute in self.computes.items():
            self.assertEqual(self.engines[host].url, compute.manager.driver._engine.url)

        server = self._boot('host1', name='web-1', metadata={'role': 'web'}, key_name='k1',
                            networks=[{'port': self.neutron.port_1['id']}])
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        c = self._container('host1', server)
        self.assertEqual('running', c['State']['Status'])
        self.assertIsNone(self._container('host2', server))
        self.assertEqual('web-1', c['Config']['Hostname'])
        self.assertEqual('web', c['Config']['Labels']['org.openstack.nova.meta.role'])
        self.assertEqual(512 * 2 ** 20, c['HostConfig']['Memory'])
        meta = json.loads(self._exec('host1', server, 'cat', '/var/lib/nova/metadata.json'))
        self.assertEqual({'role': 'web'}, meta['meta'])
        self.assertEqual(server['id'], meta['uuid'])
        self.assertEqual(pub + '\n', self._exec('host1', server, 'cat',
                                                '/root/.ssh/authorized_keys'))
        self.assertEqual('700 600\n', self._exec('host1', server, 'stat', '-c', '%a',
                                                 '/root/.ssh', '/root/.ssh/authorized_keys')
                         .replace('\n', ' ', 1))

        # The port: its MAC and address inside, the host end on the bridge.
        self.assertIn('fa:16:3e:4c:2c:30', self._exec('host1', server, 'ip', 'link'))
        self.assertIn('192.168.1.3/24', self._exec('host1', server, 'ip', '-4', 'addr'))
        self.assertEqual(1, len(realengine.bridge_ports(self.bridge)))

        before = self._started_at('host1', server)
        self._reboot_server(server)
        soft = self._started_at('host1', server)
        self.assertNotEqual(before, soft)
        self._reboot_server(server, hard=True)
        self.assertNotEqual(soft, self._started_at('host1', server))
        self.assertEqual('running', self._container('host1', server)['State']['Status'])

        self._stop_server(server)
        self.assertEqual('exited', self._container('host1', server)['State']['Status'])
        self._start_server(server)
        self.assertEqual('running', self._container('host1', server)['State']['Status'])

        self.api.post_server_action(server['id'], {'pause': None})
        self._wait_for_state_change(server, 'PAUSED')
        self.assertEqual('paused', self._container('host1', server)['State']['Status'])
        self.api.post_server_action(server['id'], {'unpause': None})
        self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual('running', self._container('host1', server)['State']['Status'])

        self._suspend_server(server)
        self.assertEqual('paused', self._container('host1', server)['State']['Status'])
        server = self.api.get_server(server['id'])
        self.assertEqual(7, server['OS-EXT-STS:power_state'])       # SUSPENDED
        self._resume_server(server)
        self.assertEqual('running', self._container('host1', server)['State']['Status'])

        # Four boots so far: spawn, soft and hard reboot, start.
        out = self.api.post_server_action(server['id'],
                                          {'os-getConsoleOutput': {'length': 50}})['output']
        self.assertEqual(4, out.count('booted web-1'), out)
        # The log ends with a newline: its last two "lines" are the last
        # line and an empty one (nova splits on '\n', as for libvirt).
        last = self.api.post_server_action(server['id'],
                                           {'os-getConsoleOutput': {'length': 2}})['output']
        self.assertEqual('booted web-1', last.strip())

        # Rebuild (Nova's destroy and spawn): a new container from the image,
        # with the same port, and a new console log.
        old_id = self._container('host1', server)['Id']
        self._exec('host1', server, 'touch', '/root/before-rebuild')
        self._rebuild_server(server, IMAGE_ID)
        c = self._container('host1', server)
        self.assertNotEqual(old_id, c['Id'])
        self.assertEqual('running', c['State']['Status'])
        self.assertEqual('', self._exec('host1', server, 'sh', '-c',
                                        'ls /root/before-rebuild 2>/dev/null; true'))
        out = self.api.post_server_action(server['id'],
                                          {'os-getConsoleOutput': {'length': 50}})['output']
        self.assertEqual(1, out.count('booted web-1'), out)

        # Networking survived reboots, stop/start and the rebuild.
        self.assertIn('192.168.1.3/24', self._exec('host1', server, 'ip', '-4', 'addr'))
        self.assertIn('fa:16:3e:4c:2c:30', self._exec('host1', server, 'ip', 'link'))

        # A second port (on a second network: the engine takes one port per
        # network and container), hot-plugged and unplugged.
        port = self._port_on_a_second_network('192.168.2.30')
        self._attach_interface(server, port['id'])
        self.assertIn('192.168.2.30/24', self._exec('host1', server, 'ip', '-4', 'addr'))
        self.assertIn(port['mac_address'], self._exec('host1', server, 'ip', 'link'))
        self.assertEqual(2, len(realengine.bridge_ports(self.bridge)))
        self._detach_interface(server, port['id'])
        addrs = self._exec('host1', server, 'ip', '-4', 'addr')
        self.assertNotIn('192.168.2.30', addrs)
        self.assertIn('192.168.1.3/24', addrs)
        self.assertEqual(1, len(realengine.bridge_ports(self.bridge)))

        # createImage: the container's new layer goes to the registry, the
        # Glance image records the digest reference.
        self._exec('host1', server, 'sh', '-c', 'echo made-on-host1 > /root/marker')
        image_id = self.api.post_server_action(
            server['id'], {'createImage': {'name': 'snap-1'}})['image_id']
        self._wait_for_server_parameter(server, {'OS-EXT-STS:task_state': None})
        image = self.glance.show(None, image_id)
        ref = image['properties']['novadocker_image_ref']
        registry = realengine.registry()
        self.assertTrue(ref.startswith('%s/nova/%s@sha256:' % (registry.host, image_id)), ref)
        self.assertEqual(('docker', 'raw'), (image['container_format'], image['disk_format']))
        self.assertEqual('running', self._container('host1', server)['State']['Status'])

        # The snapshot boots on the other host, which pulls only the new
        # layer (it has busybox's).
        registry.proxy.reset()
        server2 = self._boot('host2', image=image_id, name='web-2')
        self.assertEqual('host2', server2['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('running', self._container('host2', server2)['State']['Status'])
        self.assertIsNone(self._container('host1', server2))
        self.assertEqual('made-on-host1\n', self._exec('host2', server2, 'cat', '/root/marker'))
        _, base = self.engines['host2'].api_json('GET', '/images/busybox:latest/json')
        self.assertLess(registry.proxy.download_bytes, base['Size'] // 2)

        for s in (server, server2):
            self._delete_server(s)
        for host, eng in self.engines.items():
            self.assertEqual({'containers': [], 'netns': [], 'mounts': [], 'networks': []},
                             realengine.leftovers(eng), host)
            self.assertEqual([], self.computes[host].manager.driver.list_instances())
        self.assertEqual([], realengine.bridge_ports(self.bridge))
        for s in (server, server2):
            self.assertFalse(os.path.exists(os.path.join(
                self.flags_instances_path(), s['id'], 'novadocker-state.json')))

    def flags_instances_path(self):
        return nova.conf.CONF.instances_path


def _node_uuid(nodename):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, nodename))
