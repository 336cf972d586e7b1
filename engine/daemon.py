"""The engine: wires the parts together for one root directory."""

import contextlib
import fcntl
import os
import platform
import re
import tempfile
import threading

from oslo_log import log as logging

from engine import archive
from engine import containers as containers_mod
from engine import content as content_mod
from engine import errors
from engine import events as events_mod
from engine import execs as execs_mod
from engine import exits
from engine import housekeeping as housekeeping_mod
from engine import images as images_mod
from engine import logrotate
from engine import networks as networks_mod
from engine import registry as registry_mod
from engine import security
from engine import resources as resources_mod
from engine import snapshotters
from engine import stats as stats_mod
from engine.snapshotters import local as local_snap
from engine import util
from engine import volumes as volumes_mod
from engine import warmstart
from engine.api import http
from engine.api import views
from engine.runtime import cgwarm
from engine.runtime import monitor
from engine.runtime import oci
from engine.runtime import sealed
from engine.runtime import spec as spec_mod

LOG = logging.getLogger(__name__)

VERSION = '0.1.0'

_CONTAINER_ID = re.compile(r'^[0-9a-f]{64}$')


class Engine:
    def __init__(self, conf, follow_root=False):
        """``follow_root``: use the snapshotter the root was made with
        (the check command), instead of insisting on the configured one."""
        self.conf = conf
        logrotate.check_engine_defaults()
        self.root = os.path.abspath(conf.root)
        util.makedirs(self.root, 0o711)
        self._lock_fd = self._lock_root()
        self._runtime_copy_fd = None  # sealed copy of the runtime binary
        exec_root = conf.engine.exec_root or os.path.join(self.root, 'run')
        self.exec_root = util.makedirs(exec_root, 0o711)
        self.exports_dir = util.makedirs(os.path.join(self.exec_root, 'exports'))
        # A tag unique to this root keeps cgroups of side-by-side engines apart.
        self.tag = util.root_tag(self.root)
        self.cgroup_parent = oci.engine_cgroup_parent(self.root)
        self.events = events_mod.EventBus()
        self.content = content_mod.ContentStore(os.path.join(self.root, 'content'))
        name = self._bind_snapshotter(conf.engine.snapshotter, follow_root)
        self.snapshotter = snapshotters.load(name, os.path.join(self.root, 'snapshots', name))
        self.images = images_mod.ImageStore(
            os.path.join(self.root, 'images'), self.content, self.snapshotter,
            max_layer_size=conf.engine.max_layer_size,
            max_archive_size=conf.engine.max_archive_size,
            max_layer_entries=conf.engine.max_layer_entries,
            min_free_space=conf.engine.min_free_space,
            min_free_percent=conf.engine.min_free_percent, emit=self._image_event)
        self.distribution = registry_mod.Distribution(
            self.images, self.content, self.events, conf)
        self.images.kept_blobs = self.distribution.kept_blobs
        self.runtime = None
        self.tasks = None
        self.containers = containers_mod.ContainerService(
            self.root, self.images, self.snapshotter, None, self.events,
            None, stop_timeout=conf.engine.stop_timeout,
            spec_builder=self.build_spec)
        forbidden = [('root', self.root), ('exec root', self.exec_root)]
        self.volumes = volumes_mod.VolumeService(self.root, self.events, forbidden)
        self.volumes.users = self._volume_users
        self.containers.mounts = volumes_mod.ContainerMounts(
            self.volumes, self.events, self.containers.get, forbidden)
        self.networks = networks_mod.NetworkService(conf, self.root, self.exec_root, self.tag,
                                                    self.events)
        self.networks.containers = self.containers
        self.networks.peers_changed = self._peers_changed
        self.containers.networks = self.networks
        views.PORTS_VIEW = self.networks.ports_view
        views.PORTS_SUMMARY = self.networks.ports_summary
        self.execs = None
        self.housekeeping = housekeeping_mod.Housekeeping(self)
        self.stats = stats_mod.StatsService(self.cgroup_parent)

    def _bind_snapshotter(self, configured, follow_root):
        """A root's images and containers live in one snapshotter: record it
        on first use and refuse a different one later (nothing would show)."""
        path = os.path.join(self.root, 'engine.json')
        meta = util.read_json(path) or {}
        recorded = meta.get('snapshotter')
        if recorded is None:
            util.atomic_write_json(path, dict(meta, snapshotter=configured))
            return configured
        if recorded != configured and not follow_root:
            raise errors.InvalidArgument(
                'the root %s holds %s snapshots but the configuration asks for %s: '
                'use a new root for another snapshotter' % (self.root, recorded, configured))
        return recorded

    def _lock_root(self):
        """One engine per root: a second one would corrupt the first one's state."""
        fd = os.open(os.path.join(self.root, 'engine.lock'), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise errors.Conflict('another engine is using the root %s' % self.root)
        return fd

    def _volume_users(self):
        users = {}
        for c in self.containers.list():
            for p in c.record.get('MountPoints') or ():
                if p.get('Type') == 'volume' and p.get('Name'):
                    users.setdefault(p['Name'], set()).add(c.id)
        return users

    def _image_event(self, action, image_id, attributes=None):
        self.events.publish('image', action, image_id,
                            events_mod.image_attributes(self.images, image_id, attributes))

    def open_runtime(self):
        """Pick the OCI runtime and start watching containers (the serving half)."""
        self.runtime = oci.choose_runtime(self.conf.engine.runtime,
                                          os.path.join(self.exec_root, 'runtime'))
        if self.runtime.clones_itself and self.conf.engine.runtime_sealed_copy:
            self._runtime_copy_fd = sealed.run_from_sealed_copy(self.runtime)
        warmer = cgwarm.MigrationWarmer() if self.conf.engine.warm_cgroup_lock else None
        self.tasks = monitor.TaskService(self.runtime, self.exec_root,
                                         conmon_path=self.conf.engine.conmon_path,
                                         warmer=warmer,
                                         stream_spec=self.conf.engine.stream_spec)
        self.containers.tasks = self.tasks
        self.containers.watcher = exits.ExitWatcher(self.containers.handle_exit)
        self.execs = execs_mod.ExecService(self.containers, self.tasks,
                                           self.build_exec_process, self.events)

    def start(self):
        self._clean_exports()
        self.content.cleanup()
        self.snapshotter.cleanup()
        self.containers.load_all()
        self.volumes.cleanup()
        self._remove_orphan_snapshots()
        self.images.cleanup(container_snapshots=self.containers.snapshot_keys())
        self.open_runtime()
        # After the runtime: an engine refused at start leaves no bridge.
        self.networks.start()
        self.containers.reconcile()
        self.networks.restore_ports()
        self.networks.collect(set(self._live_container_ids()))
        self.containers.mounts.reconcile(self.containers.list())
        self._collect_runtime_leftovers()
        oci.cleanup_cgroup_parent(self.cgroup_parent)
        self.containers.restarts.startup_done()  # policy restarts may run from here
        if self.conf.engine.warm_start and self.tasks.stream_spec and self.runtime.streams_spec:
            default_log = logrotate.validate_log_config(None, with_defaults=True)
            self.containers.warm = warmstart.WarmStart(
                self.tasks, self.containers.root,
                log_size_max=logrotate.container_limits({'LogConfig': default_log})[0])
            self.containers.warm.start()

    def _orphan_snapshots(self):
        """Container snapshots whose container record is gone (a crash mid-removal)."""
        owned = self.containers.snapshot_keys()
        return [key for key, _, kind in self.snapshotter.list()
                if kind == 'active' and key not in owned and _CONTAINER_ID.match(key)]

    def _remove_orphan_snapshots(self):
        for key in self._orphan_snapshots():
            LOG.info('removing the snapshot of removed container %s', key[:12])
            try:
                self.snapshotter.remove(key)
            except errors.EngineError as exc:
                LOG.warning('cannot remove orphan snapshot %s: %s', key[:12], exc)

    def _collect_runtime_leftovers(self):
        """Runtime state and cgroups of containers whose records are gone (a
        crash between an auto-removal and its clean-up)."""
        known = self.containers.snapshot_keys()
        try:
            runtime_ids = os.listdir(self.runtime.state_root)
        except FileNotFoundError:
            runtime_ids = []
        for cid in set(self.tasks.known_tasks()) | set(runtime_ids):
            if cid in known or not _CONTAINER_ID.match(cid):
                continue
            LOG.info('releasing the runtime state of removed container %s', cid[:12])
            try:
                self.tasks.delete(cid, force=True)
            except errors.EngineError as exc:
                LOG.warning('cannot release runtime state of %s: %s', cid[:12], exc)

    def check(self):
        """Problems in the store, as text lines; empty when consistent.

        What a crash leaves behind and the next start removes (see
        ``leftovers``) is not a problem.
        """
        self.containers.load_all(collect=False)
        problems = []
        problems += self.content.check()
        problems += self.snapshotter.check()
        problems += self.images.check()
        problems += self.containers.check()
        problems += self.volumes.check({c.id: c.record.get('MountPoints')
                                        for c in self.containers.list()})
        return problems

    def purge_networks(self):
        """Remove every bridge, rule, lease and namespace this engine made on
        the host (for tests and uninstalls); refused while a container runs."""
        self.containers.load_all(collect=False)
        running = [cid[:12] for cid in self._live_container_ids()]
        if running:
            raise errors.Conflict('containers are running: %s' % ', '.join(running))
        self.networks.load()
        self.networks.purge()

    def _live_container_ids(self):
        """Containers whose records say running and whose process is alive."""
        return [c.id for c in self.containers.list()
                if c.is_running() and c.state.get('Pid')
                and os.path.exists('/proc/%d' % c.state['Pid'])]

    def _peers_changed(self, cids):
        for cid in cids:
            try:
                c = self.containers.get(cid)
            except errors.NotFound:
                continue
            if c.is_running():
                self.networks.update_etc(c)

    def leftovers(self):
        """What the next start will clean up, as text lines (after check())."""
        notes = ['directory of removed container %s' % os.path.basename(p)[:12]
                 for p in self.containers.leftovers]
        notes += ['snapshot of removed container %s' % key[:12]
                  for key in self._orphan_snapshots()]
        notes += self.volumes.leftover_notes()
        self.networks.load()
        notes += self.networks.leftover_notes(set(self._live_container_ids()))
        return notes

    # -- container plumbing ----------------------------------------------------
    @staticmethod
    def daemon_env(c, links=()):
        """Docker's process environment: PATH, HOSTNAME and TERM, legacy link
        variables, then the config's."""
        cfg = c.config
        base = [spec_mod.DEFAULT_PATH_ENV, 'HOSTNAME=' + (cfg.get('Hostname') or '')]
        if cfg.get('Tty'):
            base.append('TERM=xterm')
        base = spec_mod.merge_env(base, list(links))
        return spec_mod.merge_env(base, cfg.get('Env'))

    def build_spec(self, c, etc_files, netns):
        cfg, host = c.config, c.host_config
        mode = host.get('NetworkMode') or 'default'
        if mode == 'host':
            network = 'host'
        elif netns:
            network = 'container:' + netns
        else:
            network = 'private'
        # The container's own namespace file counts as private (Docker's
        # net sysctls apply); another container's does not.
        own_netns = netns == os.path.join(self.networks.netns_dir, c.id)
        sec = security.spec_options(c, self.containers.get, network == 'private' or own_netns)
        user_mounts, rootfs_propagation = self.containers.mounts.spec_mounts(c)
        taken = {m['destination'] for m in user_mounts}
        # The user's mounts win over the engine's /etc files and a shared
        # IPC container's /dev/shm at the same place.
        mounts = [spec_mod.bind_mount(path, '/etc/' + name)
                  for name, path in sorted(etc_files.items()) if '/etc/' + name not in taken]
        mounts += [m for m in sec.pop('mounts') if m['destination'] not in taken]
        # Parents before children, as Docker sorts them: a volume on /etc
        # must not hide the engine's /etc/hosts.
        mounts = volumes_mod.sort_oci_mounts(mounts + user_mounts)
        console = host.get('ConsoleSize') or None
        if not (cfg.get('Tty') and console and len(console) == 2 and all(console)):
            console = None
        spec = spec_mod.generate(
            [c.record['Path']] + c.record['Args'], c.rootfs,
            env=self.daemon_env(c, self.networks.link_env(c)), cwd=cfg.get('WorkingDir') or '/',
            terminal=cfg.get('Tty', False), hostname=cfg.get('Hostname') or '',
            domainname=cfg.get('Domainname') or '',
            readonly_rootfs=bool(host.get('ReadonlyRootfs')), network=network,
            mounts=mounts, labels=cfg.get('Labels'),
            cgroups_path=spec_mod.cgroups_path(self.cgroup_parent, c.id),
            console_size=console,
            resources=resources_mod.oci_resources(host, resources_mod.host_info()),
            shm_size=host.get('ShmSize'), oom_score_adj=host.get('OomScoreAdj'), **sec)
        spec['process']['rlimits'] = resources_mod.rlimits(host, spec_mod.default_nofile())
        if rootfs_propagation:
            spec['linux']['rootfsPropagation'] = rootfs_propagation
        self.containers.mounts.started(c)
        return spec

    def build_exec_process(self, c, exec_config, tty):
        """An exec inherits the running container's process settings."""
        container_spec = util.read_json(os.path.join(c.bundle, 'config.json'))
        if container_spec is None:
            raise errors.Conflict('container %s has no runtime spec: is it running?' % c.id[:12])
        user = None
        if exec_config.get('User'):
            user = security.resolve_user(c, exec_config['User'])
        env = (['TERM=xterm'] if tty else []) + list(exec_config.get('Env') or [])
        return spec_mod.exec_process_spec(
            container_spec, exec_config['Cmd'], env=env,
            cwd=exec_config.get('WorkingDir') or None, user=user, tty=tty,
            privileged=bool(exec_config.get('Privileged')))

    def exec_ids(self, cid):
        if self.execs is None:
            return []
        return [eid for eid, inst in list(self.execs._execs.items())
                if inst.container.id == cid and inst.running]

    def commit(self, ref, repo=None, tag=None, comment='', author='', pause=True,
               changes=(), config=None):
        """``docker commit``.  The container's lock is held (and a running
        container paused, by default) until its changes are captured in
        the layer blob; the image is then registered while the container
        is unpaused beside it."""
        c = self.containers.get(ref)
        state = {'locked': True, 'paused': False, 'unpausing': None}
        c.lock.acquire()

        def captured():
            if state['paused']:
                state['unpausing'] = threading.Thread(
                    target=self._unpause_after_commit, args=(c, state),
                    name='commit-unpause', daemon=True)
                state['unpausing'].start()
            state['locked'] = False
            c.lock.release()

        try:
            if c.removed:
                raise errors.NoSuchContainer(ref)
            if pause and c.status == containers_mod.RUNNING:
                self.containers.pause(c.id)
                state['paused'] = True
            container_config = dict(c.config)
            if config:
                container_config.update({k: v for k, v in config.items() if v is not None})
            image_id = self.images.commit(
                c.id, c.record['Image'], container_config, changes=list(changes or ()),
                author=author, comment=comment, repo=repo, tag=tag, container_id=c.id,
                captured=captured)
        finally:
            if state['locked']:
                # Failed before the capture: unpause here, under the lock.
                try:
                    if state['paused']:
                        self.containers.unpause(c.id)
                finally:
                    c.lock.release()
            elif state['unpausing'] is not None:
                state['unpausing'].join()
        if state.get('unpause_error') is not None:
            raise state['unpause_error']
        self.events.publish('container', 'commit', c.id, self.containers._event_attrs(
            c, comment=comment, imageID=image_id,
            imageRef=events_mod.reference_text(repo, tag)))
        return image_id

    def _unpause_after_commit(self, c, state):
        try:
            self.containers.unpause(c.id)
        except Exception as exc:
            LOG.warning('Could not unpause container %s after committing it: %s', c.id, exc)
            state['unpause_error'] = exc

    @contextlib.contextmanager
    def _private_tree(self, c, prefix):
        """A private mount of the container's filesystem for the time of
        the ``with``: a bind mount of a running container's (which keeps
        the tree even if the container exits and its own mount goes away),
        else the snapshot's.  The container's lock is held only to set it
        up, so a slow client does not block stop or kill; start and remove
        are refused meanwhile (``busy``)."""
        with c.lock:
            if c.removed:
                raise errors.NoSuchContainer(c.id)
            target = tempfile.mkdtemp(prefix=prefix, dir=self.exports_dir)
            try:
                if c.is_running():
                    local_snap.sys_mount(c.rootfs, target, '', local_snap.MS_BIND)
                else:
                    self.snapshotter.mount(c.id, target)
            except BaseException:
                os.rmdir(target)
                raise
            c.busy += 1
        try:
            yield target
        finally:
            local_snap.unmount(target)
            os.rmdir(target)
            with c.lock:
                c.busy -= 1

    def export_container(self, c, out, before_write=None):
        """Write the container's whole filesystem as a tar to ``out``."""
        with self._private_tree(c, 'export-') as target:
            if before_write:
                before_write()
            archive.write_tree_tar(target, out)
            self.events.publish('container', 'export', c.id, self.containers._event_attrs(c))

    def put_archive(self, c, path, stream):
        """PUT /containers/{id}/archive: extract the tar read from ``stream``
        into the directory ``path`` of the container's filesystem (created
        or running; Docker's semantics for an existing directory).

        As for export, a private mount of the container's tree (a bind
        mount of a running one) is made under the container's lock and the
        extraction runs without it.  ``path`` is resolved inside that tree
        (symlinks confined to it) to a directory file descriptor, and the
        tar is applied through /proc/self/fd/N, so a running container
        swapping a directory for a symlink meanwhile cannot redirect the
        writes outside its tree; entries are confined the same way.  Tar
        entries named .wh.* are whiteouts (they delete), as in layers.
        """
        if not path or not path.startswith('/'):
            raise errors.InvalidArgument('path must be an absolute directory path, not %r'
                                         % path)
        with self._private_tree(c, 'archive-') as target:
            root = archive._ScopedRoot(target)
            try:
                try:
                    fd, _ = root.open_dir([p for p in path.split('/') if p])
                except (FileNotFoundError, archive._EntryError) as exc:
                    raise errors.NotFound('Could not find the file %s in container %s (%s)'
                                          % (path, c.name.lstrip('/'), exc))
            finally:
                root.close()
            try:
                archive.apply_tar(stream, '/proc/self/fd/%d' % fd, whiteouts='delete')
            finally:
                os.close(fd)
            self.events.publish('container', 'extract-to-dir', c.id,
                                self.containers._event_attrs(c))

    def _clean_exports(self):
        """Mounts of exports a crash interrupted."""
        for name in os.listdir(self.exports_dir):
            path = os.path.join(self.exports_dir, name)
            local_snap.unmount(path)
            try:
                os.rmdir(path)
            except OSError as exc:
                LOG.warning('cannot remove %s: %s', path, exc)

    # -- system ------------------------------------------------------------------
    def version_info(self):
        uname = os.uname()
        return {
            'Platform': {'Name': 'novadocker engine'},
            'Components': [{'Name': 'Engine', 'Version': VERSION,
                            'Details': {'ApiVersion': http.API_VERSION,
                                        'MinAPIVersion': http.MIN_API_VERSION,
                                        'Os': 'linux', 'Arch': _go_arch(),
                                        'KernelVersion': uname.release}}],
            'Version': VERSION,
            'ApiVersion': http.API_VERSION,
            'MinAPIVersion': http.MIN_API_VERSION,
            'GitCommit': '',
            'GoVersion': 'python' + platform.python_version(),
            'Os': 'linux',
            'Arch': _go_arch(),
            'KernelVersion': uname.release,
            'BuildTime': '',
        }

    def system_info(self):
        cs = self.containers.list()
        running = sum(1 for c in cs if c.status == containers_mod.RUNNING)
        paused = sum(1 for c in cs if c.status == containers_mod.PAUSED)
        uname = os.uname()
        mem = 0
        try:
            with open('/proc/meminfo') as f:
                mem = int(f.readline().split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        runtime_name = self.runtime.name if self.runtime else ''
        return {
            'ID': self.tag,
            'Containers': len(cs),
            'ContainersRunning': running,
            'ContainersPaused': paused,
            'ContainersStopped': len(cs) - running - paused,
            'Images': len(self.images.list_images()),
            'Driver': self.snapshotter.name,
            'DriverStatus': [['Backing Filesystem', 'extfs']],
            'Plugins': {'Volume': ['local'], 'Network': ['bridge', 'external', 'host', 'null'],
                        'Log': ['json-file', 'k8s-file']},
            **resources_mod.host_info().info_fields(), 'IPv4Forwarding': _ip_forwarding(),
            'Debug': bool(self.conf.debug),
            'NFd': len(os.listdir('/proc/self/fd')),
            'NGoroutines': threading.active_count(),
            'SystemTime': util.rfc3339(),
            'LoggingDriver': 'json-file',
            'CgroupDriver': 'cgroupfs',
            'NEventsListener': 0,
            'KernelVersion': uname.release,
            'OperatingSystem': _os_name(),
            'OSVersion': '',
            'OSType': 'linux',
            'Architecture': uname.machine,
            'IndexServerAddress': '',
            'RegistryConfig': {'InsecureRegistryCIDRs': ['127.0.0.0/8'], 'IndexConfigs': {},
                               'Mirrors': []},
            'NCPU': os.cpu_count(),
            'MemTotal': mem,
            'DockerRootDir': self.root,
            'Name': uname.nodename,
            'Labels': [],
            'ExperimentalBuild': False,
            'ServerVersion': VERSION,
            'Runtimes': {runtime_name: {'path': getattr(self.runtime, 'path', '')}}
            if runtime_name else {},
            'DefaultRuntime': runtime_name,
            'LiveRestoreEnabled': True,
            'Isolation': '',
            'InitBinary': '',
            'SecurityOptions': security.info_security_options(),
            'Warnings': resources_mod.host_info().info_warnings(),
            # Not in Docker's /info: what an unprivileged client (the Nova
            # driver) needs about this host and cannot read itself.
            'HostFacts': host_facts(self.root),
        }

    def close(self):
        self.containers.close()
        self.containers.restarts.close()
        self.containers.logs.close()
        if self.tasks is not None:
            self.tasks.warmer.stop()
        if self.containers.watcher is not None:
            self.containers.watcher.stop()
            # Empty when no container runs; running ones keep theirs.
            oci.cleanup_cgroup_parent(self.cgroup_parent)
        if self._runtime_copy_fd is not None:
            os.close(self._runtime_copy_fd)
            self._runtime_copy_fd = None
        os.close(self._lock_fd)


def host_facts(root):
    """Uptime, available memory, load and the space of the engine's root
    filesystem (where container layers and images live)."""
    facts = {'UptimeSeconds': None, 'MemAvailable': None, 'LoadAverage': None,
             'RootDirBytesTotal': None, 'RootDirBytesFree': None}
    try:
        with open('/proc/uptime') as f:
            facts['UptimeSeconds'] = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    facts['MemAvailable'] = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        facts['LoadAverage'] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        st = os.statvfs(root)
        facts['RootDirBytesTotal'] = st.f_blocks * st.f_frsize
        facts['RootDirBytesFree'] = st.f_bavail * st.f_frsize
    except OSError:
        pass
    return facts


def _ip_forwarding():
    try:
        with open('/proc/sys/net/ipv4/ip_forward') as f:
            return f.read().strip() == '1'
    except OSError:
        return False


def _go_arch():
    return {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(os.uname().machine, os.uname().machine)


def _os_name():
    try:
        with open('/etc/os-release') as f:
            for line in f:
                if line.startswith('PRETTY_NAME='):
                    return line.split('=', 1)[1].strip().strip('"')
    except OSError:
        pass
    return 'Linux'

