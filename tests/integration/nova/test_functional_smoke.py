"""In-process Nova (real API, conductor, scheduler, placement; Glance,
Neutron and Cinder fixtures) with two compute services running a driver
class of our own, loaded through the compute_driver option.
"""

import time

from nova.compute import task_states
from nova.tests.functional import integrated_helpers

from tests.integration.nova import recording_driver
from tests.integration.nova import shim

# A container image as Glance would hold one: nova's GlanceFixture accepts
# any container_format/disk_format and free-form properties.
CONTAINER_IMAGE = {
    'id': 'a0c1b2c3-0000-4000-8000-00000000d0c4',
    'name': 'busybox',
    'status': 'active',
    'container_format': 'docker',
    'disk_format': 'raw',
    'size': 1024,
    'min_ram': 0,
    'min_disk': 0,
    'visibility': 'public',
    'properties': {'docker_image_ref': 'busybox:latest',
                   'os_type': 'linux'},
}


class TestTwoComputesSmoke(shim.FunctionalShimMixin,
                           integrated_helpers._IntegratedTestBase):
    # Admin: forcing a host at boot needs it (microversion 2.74).
    ADMIN_API = True
    microversion = 'latest'

    def _setup_services(self):
        # Runs inside setUp, after nova's ConfFixture (which resets options at
        # cleanup) and before any service starts: compute_driver is read when
        # each ComputeManager is built.
        shim.register_compute_driver(self, 'novadocker_harness',
                                     recording_driver)
        self.flags(compute_driver='novadocker_harness.RecordingDriver')
        recording_driver.CALLS.clear()
        super()._setup_services()

    def _setup_compute_service(self):
        # _IntegratedTestBase starts one compute named 'compute'; start two,
        # each with its own engine URL (read by the driver's __init__).
        for host in ('host1', 'host2'):
            self.flags(engine_url='unix:///tmp/%s/engine.sock' % host,
                       group='recording_driver')
            compute = self._start_compute(host)
        return compute

    def _calls(self, method):
        return [(h, d) for h, m, d in recording_driver.CALLS if m == method]

    def _wait_for_call(self, method, count=1):
        for _ in range(200):
            calls = self._calls(method)
            if len(calls) >= count:
                return calls
            time.sleep(0.05)
        self.fail('driver.%s was not called %d time(s)' % (method, count))

    def test_lifecycle_on_two_hosts(self):
        self.assertEqual(
            {'host1', 'host2'}, set(self.computes))
        for host, compute in self.computes.items():
            self.assertIsInstance(compute.manager.driver,
                                  recording_driver.RecordingDriver)
            self.assertEqual('unix:///tmp/%s/engine.sock' % host,
                             compute.manager.driver.engine_url)
        self.glance.create(None, dict(CONTAINER_IMAGE))

        server = self._create_server(
            image_uuid=CONTAINER_IMAGE['id'], host='host1',
            networks=[{'port': self.neutron.port_1['id']}])
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])

        (host, spawn), = self._calls('spawn')
        self.assertEqual('host1', host)
        self.assertEqual('docker', spawn['image_meta'].container_format)
        # Free-form Glance properties are not fields of ImageMetaProps:
        # the driver reads them from instance.system_metadata
        # ('image_<key>'), where nova copies every image property at boot.
        self.assertEqual(
            'busybox:latest',
            spawn['instance'].system_metadata['image_docker_image_ref'])
        vif, = spawn['network_info']
        self.assertEqual(self.neutron.port_1['id'], vif['id'])
        self.assertEqual('fa:16:3e:4c:2c:30', vif['address'])
        self.assertEqual('ovs', vif['type'])
        self.assertEqual(
            ['192.168.1.3'],
            [ip['address'] for ip in vif.fixed_ips()])
        self.assertEqual(1450, vif['network']['meta']['mtu'])

        self._reboot_server(server)
        self._reboot_server(server, hard=True)
        self.assertEqual(['SOFT', 'HARD'],
                         [d['reboot_type'] for _, d in self._calls('reboot')])
        self._stop_server(server)
        self._start_server(server)
        self.api.post_server_action(server['id'], {'pause': None})
        self._wait_for_state_change(server, 'PAUSED')
        self.api.post_server_action(server['id'], {'unpause': None})
        self._wait_for_state_change(server, 'ACTIVE')
        self._suspend_server(server)
        self._resume_server(server)

        out = self.api.post_server_action(
            server['id'], {'os-getConsoleOutput': {'length': 2}})
        self.assertEqual('ANOTHER\nLAST LINE', out['output'])

        # The fixture knows port_1 from the start; create_port() adds
        # port_2 (then random ones), like a tenant's `port create`.
        port = self.neutron.create_port()['port']
        self._attach_interface(server, port['id'])
        (_, attached), = self._calls('attach_interface')
        self.assertEqual('00:0c:29:0d:11:74', attached['vif']['address'])
        self._detach_interface(server, port['id'])
        self.assertEqual(1, len(self._calls('detach_interface')))

        # createImage: the API creates the Glance image (queued) and casts
        # to the compute, whose driver.snapshot uploads and updates it.
        # Since 2.45 the action answers {'image_id': ...}. The compute runs
        # the snapshot in its 'long_task' executor, so even with
        # CAST_AS_CALL the API returns before driver.snapshot is done: wait.
        resp = self.api.post_server_action(
            server['id'], {'createImage': {'name': 'snap-1'}})
        (_, snap), = self._wait_for_call('snapshot')
        self.assertEqual(resp['image_id'], snap['image_id'])
        image = self.glance.show(None, resp['image_id'])
        # GlanceFixture.create marks every new image 'active' (real Glance:
        # 'queued' until data or an update arrives).
        self.assertEqual('active', snap['image_before']['status'])
        self.assertEqual('snap-1', snap['image_before']['name'])
        self.assertEqual('docker', image['container_format'])
        self.assertIn('docker_image_ref', image['properties'])
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None})

        # The snapshot boots on the other host.
        server2 = self._create_server(
            image_uuid=snap['image_id'], host='host2', networks='none')
        self.assertEqual('host2', server2['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(['host1', 'host2'],
                         [h for h, _ in self._calls('spawn')])

        self._delete_server(server)
        self._delete_server(server2)
        self.assertEqual({'host1', 'host2'},
                         {h for h, _ in self._calls('destroy')})
        for compute in self.computes.values():
            self.assertEqual([], compute.manager.driver.list_instances())
