"""DockerDriver: Nova's compute driver on the novadocker engine.

A thin façade in the shape of nova/virt/libvirt/driver.py: every call maps
onto a few engine API calls through the helpers next to it:

* engine.py      the engine API with Nova's exceptions
* containers.py  instance <-> container (names, labels, create body, power
                 states, the suspended marker)
* images.py      Glance image -> engine image (pull by digest, load a
                 Docker archive, refuse anything else), the image cache
* hostinfo.py    resources and host facts, from the engine's /info
* VIF drivers    (namespace novadocker.vif_drivers) plug Neutron ports
* snapshot stores (namespace novadocker.snapshot_stores) for snapshot

nova-compute stays unprivileged: all it does is talk to the engine.

Lifecycle on the engine:

* pause/unpause: the engine's freezer.
* suspend/resume: the freezer too (the processes keep their memory, open
  files and network state, and use no CPU while frozen), with a marker
  file ``<instances_path>/<uuid>/novadocker-state.json`` so get_info says
  SUSPENDED, not PAUSED, also after a nova-compute or engine restart. A
  suspended instance keeps its memory: suspend frees CPU, not RAM (there is
  no checkpoint to disk: CRIU does not work on our hosts).
* power_off: SIGTERM, ``timeout`` seconds, then SIGKILL (timeout 0 means a
  forced stop: SIGKILL at once), as libvirt's clean then hard shutdown.
* reboot: SOFT is a restart (SIGTERM, ``[docker]stop_timeout``, SIGKILL,
  start); HARD kills at once and starts. The container (its layer, its
  network configuration) stays, so networking survives.
"""

import time

from oslo_log import log as logging
import stevedore

from nova.compute import power_state
from nova import exception
from nova.objects import diagnostics as diagnostics_obj
from nova.virt import driver
from nova.virt import hardware
import nova.conf

from novadocker.virt.docker import conf as docker_conf
from novadocker.virt.docker import containers
from novadocker.virt.docker import engine as engine_mod
from novadocker.virt.docker import hostinfo
from novadocker.virt.docker import images

CONF = nova.conf.CONF
docker_conf.register_opts(CONF)

LOG = logging.getLogger(__name__)

VIF_NAMESPACE = 'novadocker.vif_drivers'
SNAPSHOT_NAMESPACE = 'novadocker.snapshot_stores'


def _load(namespace, option, *args):
    """The plugin ``[docker]<option>`` names in ``namespace``; a name that
    is not installed stops nova-compute with a message naming the choices
    (a typo must not quietly leave instances without networking)."""
    name = getattr(CONF.docker, option)
    try:
        mgr = stevedore.DriverManager(namespace, name, invoke_on_load=True,
                                      invoke_args=args)
    except stevedore.exception.NoMatches:
        names = sorted(stevedore.ExtensionManager(namespace).names())
        raise exception.NovaException(
            message='[docker]%s = %s: no such plugin in the %s namespace; installed: %s'
                    % (option, name, namespace, ', '.join(names) or 'none'))
    return mgr.driver


class DockerDriver(driver.ComputeDriver):
    capabilities = dict(
        driver.ComputeDriver.capabilities,
        has_imagecache=True,
        supports_attach_interface=True,
        # Container images are stored with disk_format raw
        # (container_format docker); nothing else boots.
        supports_image_type_raw=True,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        # Per-host options are read here, once: several computes in one
        # process (Nova's functional tests) each keep their own engine.
        self._host = CONF.host
        self._engine = engine_mod.Engine(CONF, host=self._host)
        self._images = images.ImageFetcher(self._engine, CONF)
        self._instances_path = CONF.instances_path
        self._vif = _load(VIF_NAMESPACE, 'vif_driver', self._engine)
        self._snapshot_store = _load(SNAPSHOT_NAMESPACE, 'snapshot_store', self._engine, CONF)

    # -- host ------------------------------------------------------------------

    def init_host(self, host):
        self._host = host
        self._engine.host = host
        try:
            self._engine.ping()
            info = self._engine.info()
        except exception.HypervisorUnavailable as exc:
            LOG.error('%s', exc)
            raise
        LOG.info('novadocker engine %s at %s: %s CPUs, %d MB, %s', info.get('ServerVersion'),
                 self._engine.url, info.get('NCPU'), (info.get('MemTotal') or 0) // 2 ** 20,
                 info.get('Driver'))

    def get_host_ip_addr(self):
        return CONF.my_ip

    def get_host_uptime(self):
        return hostinfo.uptime_string(self._engine.info(), time.strftime('%H:%M:%S'))

    def get_host_cpu_stats(self):
        return hostinfo.cpu_stats(self._engine.info())

    def get_available_nodes(self, refresh=False):
        return [self._host]

    def node_is_available(self, nodename):
        return nodename == self._host

    def get_available_resource(self, nodename):
        info = self._engine.info()
        used_vcpus = used_memory = 0
        for c in self._engine.containers(containers.host_filter(self._host)):
            labels = c.get('Labels') or {}
            try:
                used_vcpus += int(labels.get(containers.LABEL_VCPUS, 0))
                used_memory += int(labels.get(containers.LABEL_MEMORY, 0))
            except ValueError:
                pass
        return hostinfo.available_resource(info, nodename, used_vcpus, used_memory)

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        inv = provider_tree.data(nodename).inventory
        ratios = self._get_allocation_ratios(inv)
        provider_tree.update_inventory(nodename,
                                       hostinfo.inventory(self._engine.info(), ratios))

    def poll_rebooting_instances(self, timeout, instances):
        # Reboots are synchronous engine calls: none is ever left pending.
        pass

    # -- listing -----------------------------------------------------------------

    def _ours(self):
        return self._engine.containers(containers.host_filter(self._host))

    def list_instances(self):
        return [(c.get('Labels') or {}).get(containers.LABEL_NAME) for c in self._ours()]

    def list_instance_uuids(self):
        return [(c.get('Labels') or {}).get(containers.LABEL_UUID) for c in self._ours()]

    def instance_exists(self, instance):
        return self._engine.inspect(containers.container_name(instance)) is not None

    def _inspect(self, instance):
        found = self._engine.inspect(containers.container_name(instance))
        if found is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return found

    def _state(self, instance):
        return containers.StateFile(self._instances_path, instance.uuid)

    def get_info(self, instance, use_cache=True):
        found = self._inspect(instance)
        suspended = found['State'].get('Status') == 'paused' and self._state(instance).suspended
        return hardware.InstanceInfo(state=containers.power_state_of(found, suspended),
                                     internal_id=found['Id'])

    # -- spawn and destroy -------------------------------------------------------

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        name = containers.container_name(instance)
        if self._engine.inspect(name) is not None:
            raise exception.InstanceExists(name=instance.name)
        image_id = self._images.ensure(context, instance, image_meta)
        network_info = network_info or []
        cid = None
        try:
            body = containers.create_body(instance, image_id, image_meta, self._host, CONF,
                                          self._vif.network_mode(network_info))
            networking = getattr(self._vif, 'networking_config', None)
            networking = networking(instance, network_info) if networking else None
            if networking:
                # The first VIF's endpoint: Docker-style engines take its
                # settings only at create.
                body['NetworkingConfig'] = networking
            cid = self._engine.create(name, body)
            files = containers.files_for(instance, injected_files, CONF)
            self._engine.put_archive(cid, '/', containers.injection_tar(files),
                                     failure=exception.InstanceDeployFailure)
            for vif in network_info:
                self._vif.plug(instance, vif, cid)
            if power_on:
                self._engine.start(cid, failure=exception.InstanceDeployFailure)
        except Exception as exc:
            with _reraise(exc, exception.InstanceDeployFailure):
                LOG.warning('Spawning %s failed, removing what was made: %s', name, exc,
                            instance=instance)
                self._remove(instance, network_info, cid, lookup=False)
        LOG.info('Spawned container %s (%s) from image %s', name, cid[:12], image_id[:19],
                 instance=instance)

    def _remove(self, instance, network_info, cid=None, lookup=True):
        """Unplug, remove the container with its volumes, clean up VIF
        plumbing and our state file; each step tolerates a missing part.
        ``lookup``: find the container by name when ``cid`` is not given (a
        failed spawn does not: the name may be another spawn's)."""
        name = containers.container_name(instance)
        if cid is None and lookup:
            found = self._engine.inspect(name)
            cid = found['Id'] if found else None
        if cid is not None:
            for vif in network_info or []:
                try:
                    self._vif.unplug(instance, vif, cid)
                except Exception as exc:
                    LOG.warning('Unplugging VIF %s: %s', vif.get('id'), exc, instance=instance)
            self._engine.remove(cid)
        self._vif.cleanup(instance, network_info or [])
        self._state(instance).remove()

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        self._remove(instance, network_info)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        # destroy removed the container; what may be left is plumbing and
        # our state file (cleanup runs alone after a failed build too).
        found = self._engine.inspect(containers.container_name(instance))
        if found is not None and destroy_disks:
            self._remove(instance, network_info, found['Id'])
            return
        if destroy_vifs:
            self._vif.cleanup(instance, network_info or [])
        if destroy_disks:
            self._state(instance).remove()

    # -- power -------------------------------------------------------------------

    def _thaw(self, instance, found):
        if found['State'].get('Status') == 'paused':
            self._engine.unpause(found['Id'], instance)
        self._state(instance).update(suspended=False)

    def power_off(self, instance, timeout=0, retry_interval=0):
        found = self._inspect(instance)
        self._thaw(instance, found)
        if found['State'].get('Status') in ('running', 'paused', 'restarting'):
            self._engine.stop(found['Id'], max(int(timeout or 0), 0), instance,
                              exception.InstancePowerOffFailure)

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        found = self._inspect(instance)
        self._thaw(instance, found)
        if found['State'].get('Status') not in ('running', 'paused', 'restarting'):
            self._engine.start(found['Id'], instance, exception.InstancePowerOnFailure)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        found = self._inspect(instance)
        self._thaw(instance, found)
        running = found['State'].get('Status') in ('running', 'paused', 'restarting')
        if reboot_type == 'SOFT' and running:
            self._engine.restart(found['Id'], CONF.docker.stop_timeout, instance,
                                 exception.InstanceRebootFailure)
            return
        if running:
            self._engine.stop(found['Id'], 0, instance, exception.InstanceRebootFailure)
        self._engine.start(found['Id'], instance, exception.InstanceRebootFailure)

    def soft_delete(self, instance):
        self.power_off(instance, CONF.docker.stop_timeout)

    def restore(self, instance):
        self.power_on(None, instance, None)

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  share_info, block_device_info=None):
        # Nova calls this for instances it expects running after the host
        # came back: thaw a frozen one, start a stopped one.
        self.power_on(context, instance, network_info, block_device_info)

    def pause(self, instance):
        found = self._inspect(instance)
        if found['State'].get('Status') != 'running':
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        self._engine.pause(found['Id'], instance)

    def unpause(self, instance):
        found = self._inspect(instance)
        if found['State'].get('Status') == 'paused':
            self._engine.unpause(found['Id'], instance)
        self._state(instance).update(suspended=False)

    def suspend(self, context, instance):
        found = self._inspect(instance)
        status = found['State'].get('Status')
        if status not in ('running', 'paused'):
            raise exception.InstanceSuspendFailure(
                reason='instance %s is %s, not running' % (instance.uuid, status))
        # The marker first: a crash between the two leaves a running
        # instance with a marker, which reads as RUNNING (it only counts
        # while frozen); the other order could show a suspend as a pause.
        state = self._state(instance)
        state.update(suspended=True)
        if status == 'running':
            try:
                self._engine.pause(found['Id'], instance, exception.InstanceSuspendFailure)
            except Exception:
                state.update(suspended=False)
                raise

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        found = self._inspect(instance)
        status = found['State'].get('Status')
        if status == 'paused':
            self._engine.unpause(found['Id'], instance, exception.InstanceResumeFailure)
        elif status not in ('running', 'restarting'):
            self._engine.start(found['Id'], instance, exception.InstanceResumeFailure)
        self._state(instance).update(suspended=False)

    # -- observing ---------------------------------------------------------------

    def get_console_output(self, context, instance):
        found = self._inspect(instance)
        data = self._engine.logs(found['Id'], CONF.docker.console_log_max_bytes, instance)
        return data.decode('utf-8', 'replace')

    def _stats(self, instance):
        found = self._inspect(instance)
        return found, self._engine.stats(found['Id'], instance)

    def get_diagnostics(self, instance):
        found, stats = self._stats(instance)
        cpu = (stats.get('cpu_stats') or {}).get('cpu_usage') or {}
        mem = stats.get('memory_stats') or {}
        out = {'cpu0_time': int(cpu.get('total_usage') or 0),
               'memory': int(mem.get('usage') or 0),
               'memory-limit': int(mem.get('limit') or 0)}
        for name, net in sorted((stats.get('networks') or {}).items()):
            for key in ('rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped',
                        'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped'):
                out['%s_%s' % (name, key)] = int(net.get(key) or 0)
        return out

    def get_instance_diagnostics(self, instance):
        found, stats = self._stats(instance)
        state = found.get('State') or {}
        suspended = state.get('Status') == 'paused' and self._state(instance).suspended
        pstate = containers.power_state_of(found, suspended)
        diags = diagnostics_obj.Diagnostics(
            state=power_state.STATE_MAP[pstate], hypervisor=hostinfo.HYPERVISOR_TYPE,
            hypervisor_os='linux', config_drive=False,
            uptime=_uptime(state) if pstate == power_state.RUNNING else 0)
        cpu = (stats.get('cpu_stats') or {}).get('cpu_usage') or {}
        diags.add_cpu(id=0, time=int(cpu.get('total_usage') or 0))
        mem = stats.get('memory_stats') or {}
        diags.memory_details = diagnostics_obj.MemoryDiagnostics(
            maximum=int(mem.get('limit') or 0) // 2 ** 20,
            used=int(mem.get('usage') or 0) // 2 ** 20)
        for name, net in sorted((stats.get('networks') or {}).items()):
            diags.add_nic(rx_octets=net.get('rx_bytes'), rx_errors=net.get('rx_errors'),
                          rx_drop=net.get('rx_dropped'), rx_packets=net.get('rx_packets'),
                          tx_octets=net.get('tx_bytes'), tx_errors=net.get('tx_errors'),
                          tx_drop=net.get('tx_dropped'), tx_packets=net.get('tx_packets'))
        return diags

    # -- images ------------------------------------------------------------------

    def manage_image_cache(self, context, all_instances):
        in_use = {c.get('ImageID') for c in self._ours()}
        self._images.expire(in_use)

    def snapshot(self, context, instance, image_id, update_task_state):
        found = self._engine.inspect(containers.container_name(instance))
        if found is None:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        self._snapshot_store.snapshot(context, instance, found, image_id, update_task_state)

    # -- networking --------------------------------------------------------------

    def plug_vifs(self, instance, network_info):
        found = self._inspect(instance)
        for vif in network_info or []:
            self._vif.plug(instance, vif, found['Id'])

    def unplug_vifs(self, instance, network_info):
        found = self._engine.inspect(containers.container_name(instance))
        if found is None:
            return
        for vif in network_info or []:
            self._vif.unplug(instance, vif, found['Id'])

    def attach_interface(self, context, instance, image_meta, vif):
        found = self._inspect(instance)
        try:
            self._vif.plug(instance, vif, found['Id'])
        except exception.NovaException:
            raise
        except Exception as exc:
            raise exception.InterfaceAttachFailed(instance_uuid=instance.uuid) from exc

    def detach_interface(self, context, instance, vif):
        found = self._inspect(instance)
        try:
            self._vif.unplug(instance, vif, found['Id'])
            # The port's engine network goes too when nothing else uses it
            # (destroy only cleans up the networks still in network_info).
            self._vif.cleanup(instance, [vif])
        except exception.NovaException:
            raise
        except Exception as exc:
            raise exception.InterfaceDetachFailed(instance_uuid=instance.uuid) from exc


def _uptime(state):
    started = state.get('StartedAt') or ''
    try:
        from oslo_utils import timeutils
        then = timeutils.parse_isotime(started)
        return max(int((timeutils.utcnow(with_timezone=True) - then).total_seconds()), 0)
    except Exception:
        return 0


class _reraise:
    """Run cleanup, then re-raise ``exc``: Nova exceptions as they are,
    anything else as ``cls(reason=...)``. A failing cleanup is logged, never
    hides the original error."""

    def __init__(self, exc, cls):
        self.exc = exc
        self.cls = cls

    def __enter__(self):
        return self

    def __exit__(self, etype, value, tb):
        if value is not None:
            LOG.error('Cleanup after a failed spawn failed too: %s', value)
        if isinstance(self.exc, exception.NovaException):
            raise self.exc
        raise self.cls(reason=str(self.exc)) from self.exc

