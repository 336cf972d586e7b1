"""A compute driver of our own, loaded by real nova-compute services in the
functional smoke test the way the issue 7 driver will be: through the
``compute_driver`` option. It is nova's FakeDriver plus a record of what
Nova hands a driver (image_meta, network_info, the snapshot protocol), so the
report and the driver authors can see the real shapes.
"""

from oslo_config import cfg

from nova.compute import task_states
from nova.image import glance
from nova.virt import fake

# Stand-in for the driver's [docker] options. Both compute services of a
# functional test share one global CONF, so per-host settings (each host's
# own engine) only work if the driver reads them once, when nova-compute
# builds it, and the test sets them before starting each service.
OPTS = [cfg.StrOpt('engine_url', default='unix:///run/novadocker.sock')]
cfg.CONF.register_opts(OPTS, group='recording_driver')

# Every driver instance appends here: (host, method, details).
CALLS = []


class RecordingDriver(fake.FakeDriver):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        # What a real driver does for snapshots (libvirt: driver.py
        # self._image_api = glance.API()); GlanceFixture intercepts it.
        self._image_api = glance.API()
        self.engine_url = cfg.CONF.recording_driver.engine_url

    def _record(self, method, **details):
        CALLS.append((self._host, method, details))

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        self._record('spawn', instance=instance, image_meta=image_meta,
                     network_info=network_info, power_on=power_on,
                     injected_files=injected_files,
                     block_device_info=block_device_info)
        return super().spawn(context, instance, image_meta, injected_files,
                             admin_password, allocations,
                             network_info=network_info,
                             block_device_info=block_device_info,
                             power_on=power_on, accel_info=accel_info)

    def snapshot(self, context, instance, image_id, update_task_state):
        # Nova's task-state protocol, as the libvirt driver follows it.
        if instance.uuid not in self.instances:
            from nova import exception
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        before = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        after = self._image_api.update(context, image_id, {
            'container_format': 'docker', 'disk_format': 'raw',
            'status': 'active',
            'properties': {'docker_image_ref':
                           'registry.example/test@sha256:' + '0' * 64}})
        self._record('snapshot', instance=instance, image_id=image_id,
                     image_before=before, image_after=after,
                     update_task_state=update_task_state)

    def attach_interface(self, context, instance, image_meta, vif):
        self._record('attach_interface', instance=instance, vif=vif)
        return super().attach_interface(context, instance, image_meta, vif)

    def detach_interface(self, context, instance, vif):
        self._record('detach_interface', instance=instance, vif=vif)
        return super().detach_interface(context, instance, vif)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        self._record('reboot', instance=instance, reboot_type=reboot_type)
        return super().reboot(context, instance, network_info, reboot_type,
                              block_device_info, bad_volumes_callback,
                              accel_info, share_info)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        self._record('destroy', instance=instance)
        return super().destroy(context, instance, network_info,
                               block_device_info, destroy_disks,
                               destroy_secrets)
