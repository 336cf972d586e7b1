"""Container records and their state machine.

created -> running <-> paused -> exited, persisted atomically under
``<root>/containers/<id>/container.json``.  The runtime layer (conmon +
runc) does the work; this module decides what is allowed, records what
happened, and reconciles records with reality when the engine starts.
"""

import collections
import os
import shutil
import signal
import threading
import time

from oslo_log import log as logging

from engine import containerconfig
from engine import errors
from engine import logrotate
from engine import names
from engine import security
from engine import resources
from engine import restart as restart_mod
from engine import util

LOG = logging.getLogger(__name__)

# Longer waits than this are taken as "wait for ever" would be: a year.
MAX_STOP_TIMEOUT = 365 * 24 * 3600

CREATED, RUNNING, PAUSED, EXITED, REMOVING, DEAD = (
    'created', 'running', 'paused', 'exited', 'removing', 'dead')
RESTARTING = restart_mod.RESTARTING  # waiting out a restart policy's delay


class Container:
    """One container: its persisted record plus in-memory coordination."""

    def __init__(self, record, path):
        self.record = record
        self.path = path
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.pending_attaches = []
        self.exit_count = 0      # bumped on every exit, for wait condition=next-exit
        self.removed = False
        self.busy = 0            # exports reading a stopped container's filesystem

    @property
    def id(self):
        return self.record['Id']

    @property
    def name(self):
        return self.record['Name'].lstrip('/')

    @property
    def state(self):
        return self.record['State']

    @property
    def status(self):
        return self.record['State']['Status']

    @property
    def config(self):
        return self.record['Config']

    @property
    def host_config(self):
        return self.record['HostConfig']

    @property
    def rootfs(self):
        return os.path.join(self.path, 'rootfs')

    @property
    def bundle(self):
        return os.path.join(self.path, 'bundle')

    @property
    def log_path(self):
        return os.path.join(self.path, 'container.log')

    def is_running(self):
        return self.status in (RUNNING, PAUSED)

    def save(self):
        util.atomic_write_json(os.path.join(self.path, 'container.json'), self.record, mode=0o600)


class PendingAttach:
    """An attach request that arrived before the container started."""

    def __init__(self, stdin):
        self.stdin = stdin
        self.event = threading.Event()
        self.conn = None
        self.error = None


class ContainerService:
    def __init__(self, root, images, snapshotter, tasks, events, network=None,
                 stop_timeout=10, spec_builder=None):
        self.root = util.makedirs(os.path.join(root, 'containers'))
        self.images = images
        self.snapshotter = snapshotter
        self.tasks = tasks
        self.events = events
        self.network = network  # unused: /etc files come from self.networks
        self.stop_timeout = stop_timeout
        self.spec_builder = spec_builder
        self._lock = threading.RLock()
        self._by_id = {}
        self._names = {}
        self.watcher = None  # set by the daemon: engine.exits.ExitWatcher
        self.mounts = None  # set by the daemon: engine.volumes.ContainerMounts
        self.networks = None  # set by the daemon: engine.networks.NetworkService
        self.leftovers = []  # record-less directories found by load_all
        self._creating = collections.Counter()  # image id -> creates in progress
        self.restarts = restart_mod.RestartManager(self)
        self.logs = logrotate.LogRotator()
        self.warm = None  # set by the daemon: engine.warmstart.WarmStart
        self._prepared = {}  # container id -> PendingCreate taken from self.warm

    # -- lookup -------------------------------------------------------------
    def load_all(self, collect=True):
        """Read every record; ``collect`` removes what a crash left half-removed."""
        self.leftovers = []
        for cid in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, cid)
            record = util.read_json(os.path.join(path, 'container.json'))
            if record is None:
                self.leftovers.append(path)
                if collect:
                    LOG.info('removing the directory of removed container %s', cid[:12])
                    self._remove_dir(cid, path)
                continue
            c = Container(record, path)
            self._by_id[cid] = c
            self._names[c.name] = cid

    def list(self):
        with self._lock:
            return list(self._by_id.values())

    def get(self, ref):
        if not ref:
            raise errors.NoSuchContainer(ref)
        with self._lock:
            c = self._by_id.get(ref)
            if c:
                return c
            cid = self._names.get(ref.lstrip('/'))
            if cid:
                c = self._by_id.get(cid)
                if c is None:  # the name is reserved by a create in progress
                    raise errors.NoSuchContainer(ref)
                return c
            matches = [c for cid, c in self._by_id.items() if cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise errors.InvalidArgument('multiple IDs found with provided prefix: %s' % ref)
        raise errors.NoSuchContainer(ref)

    def image_in_use(self, image_id):
        """rmi asks this: (short ID, running) of a container using the image, or None.

        A create in progress counts as running: its image must not go.
        """
        with self._lock:
            if self._creating[image_id]:
                return ('(being created)', True)
        users = [c for c in self.list() if c.record['Image'] == image_id]
        if not users:
            return None
        running = [c for c in users if c.is_running() or c.status == RESTARTING]
        chosen = (running or users)[0]
        return chosen.id[:12], bool(running)

    def snapshot_keys(self):
        return {c.id for c in self.list()}

    # -- create -------------------------------------------------------------
    def create(self, body, name=None):
        config, host_config = containerconfig.validate_create(body)
        image = self.images.resolve(config['Image'])
        # A start usually follows (docker run): runc's cgroup move finds
        # the kernel's lock warm (engine/runtime/cgwarm.py).
        self._warm_cgroup_lock()
        with self._lock:
            self._creating[image.id] += 1
        try:
            image = self.images.resolve(image.id)  # still there now that it is held
            # A committed image's newest layer may still be a blob only.
            image = self.images.unpack(image)
            return self._create(config, host_config, image, name,
                                body.get('NetworkingConfig') if isinstance(body, dict) else None)
        finally:
            with self._lock:
                self._creating[image.id] -= 1
                if not self._creating[image.id]:
                    del self._creating[image.id]

    def _create(self, config, host_config, image, name, networking=None):
        merged, args = containerconfig.merge_image_config(
            config, self.images.image_config_for_container(image.id))
        mode = host_config.get('NetworkMode') or 'default'
        warnings = resources.validate_create(host_config)
        if mode.startswith('container:'):
            self.get(mode.split(':', 1)[1])  # must exist now, as Docker checks
        security.prepare_create(host_config, self.get)
        net_settings = None
        if self.networks is not None:
            net_settings = self.networks.container_settings(merged, host_config, networking)
            mode = host_config.get('NetworkMode') or mode
        host_config['LogConfig'] = logrotate.validate_log_config(
            host_config.get('LogConfig'), with_defaults=True)
        host_config.setdefault('NetworkMode', mode)
        host_config['NetworkMode'] = mode
        host_config['RestartPolicy'] = restart_mod.validate_restart_policy(
            host_config.get('RestartPolicy'), host_config.get('AutoRemove'))
        if name is not None:
            name = names.validate(name)

        prepared = self._take_prepared_start(merged, host_config)
        cid = prepared.cid if prepared is not None else util.new_id()
        if not merged['Hostname']:
            merged['Hostname'] = cid[:12] if mode != 'host' else os.uname().nodename
        reserved = False
        try:
            with self._lock:
                if name is not None:
                    if name in self._names:
                        raise errors.Conflict(
                            'Conflict. The container name "/%s" is already in use by '
                            'container "%s". You have to remove (or rename) that container '
                            'to be able to reuse that name.' % (name, self._names[name]))
                else:
                    name = names.generate(self._names)
                self._names[name] = cid  # reserve the name while we build
                reserved = True
            if host_config.get('Links') and self.networks is not None:
                host_config['Links'] = self.networks.stored_links(host_config['Links'], name)
        except BaseException:
            if reserved:
                with self._lock:
                    self._names.pop(name, None)
            if prepared is not None:
                self.warm.discard(prepared)
            raise
        path = os.path.join(self.root, cid)
        mount_token = None
        try:
            if self.mounts is not None:
                record_mounts, mount_token = self.mounts.resolve(
                    cid, host_config, merged.get('Volumes'))
            # A prepared start made the directory and the bundle already.
            os.makedirs(path, mode=0o700, exist_ok=prepared is not None)
            os.makedirs(os.path.join(path, 'rootfs'), mode=0o755)
            os.makedirs(os.path.join(path, 'bundle'), mode=0o700,
                        exist_ok=prepared is not None)
            self.snapshotter.prepare(cid, image.top_chain_id)
            record = {
                'Id': cid,
                'Created': util.rfc3339(),
                'Name': '/' + name,
                'Path': args[0],
                'Args': args[1:],
                'Config': merged,
                'HostConfig': host_config,
                'Image': image.id,
                'ImageName': config['Image'],
                'State': self._state(CREATED),
                'RestartCount': 0,
                'MonitorPid': 0,
                'Driver': self.snapshotter.name,
            }
            if mount_token is not None:
                record['MountPoints'] = record_mounts
            if net_settings is not None:
                record['NetworkSettings'] = net_settings
            c = Container(record, path)
            c.save()  # the record is the commit point: after this the container exists
        except BaseException:
            with self._lock:
                self._names.pop(name, None)
            if prepared is not None:
                self.warm.discard(prepared, remove_dir=False)
            self._remove_dir(cid, path)
            if mount_token is not None:
                self.mounts.abort_create(cid, mount_token)
            raise
        with self._lock:
            if prepared is not None:
                self._prepared[cid] = prepared.pending
            self._by_id[cid] = c
        if mount_token is not None:
            self.mounts.finish_create(cid, mount_token)  # the record holds them now
        self.events.publish('container', 'create', cid, self._event_attrs(c))
        return c, warnings

    @staticmethod
    def _state(status, **kw):
        state = {
            'Status': status, 'Running': status in (RUNNING, PAUSED),
            'Paused': status == PAUSED, 'Restarting': False, 'OOMKilled': False,
            'Dead': status == DEAD, 'Pid': 0, 'ExitCode': 0, 'Error': '',
            'StartedAt': util.ZERO_TIME, 'FinishedAt': util.ZERO_TIME,
        }
        state.update(kw)
        return state

    def _event_attrs(self, c, **extra):
        attrs = {'name': c.name, 'image': c.record.get('ImageName', '')}
        attrs.update(c.config.get('Labels') or {})
        attrs.update(extra)
        return attrs

    # -- start --------------------------------------------------------------
    def start(self, ref):
        c = self.get(ref)
        with c.lock:
            if c.removed or c.status == REMOVING:
                raise errors.Conflict('container %s is being removed' % c.id[:12])
            if c.is_running() or c.status == RESTARTING:
                raise errors.NotModified('container already started')
            if c.busy:
                raise errors.Conflict('container %s is being exported: start it once the '
                                      'export is done' % c.id[:12])
            self.restarts.on_start(c)
            try:
                self._start_locked(c)
            except errors.EngineError as exc:
                self._start_failed(c, exc)
                failure = exc
            except Exception as exc:
                LOG.exception('starting container %s failed', c.id)
                self._start_failed(c, exc)
                failure = errors.RuntimeFailure('starting container failed: %s' % exc)
            else:
                failure = None
        if failure is not None:
            if c.host_config.get('AutoRemove'):
                # Docker removes an auto-remove container whose start failed;
                # `docker run --rm` waits for exactly that.
                try:
                    self.remove(c.id, force=True, volumes=True)
                except errors.EngineError as exc:
                    LOG.warning('removing %s after its failed start: %s', c.id[:12], exc)
            raise failure
        self.events.publish('container', 'start', c.id, self._event_attrs(c))

    def _warm_cgroup_lock(self):
        if self.tasks is not None:
            self.tasks.warmer.kick()
        if self.warm is not None:
            self.warm.touch()

    def _take_prepared_start(self, config, host_config):
        """A start prepared ahead (engine/warmstart.py) for a container of
        this shape, or None."""
        if self.warm is None or not self.warm.fits(
                config.get('Tty'), config.get('OpenStdin'),
                logrotate.container_limits(host_config)[0]):
            return None
        return self.warm.take()

    def _give_up_prepared_start(self, cid):
        pending = self._prepared.pop(cid, None)
        if pending is not None:
            try:
                pending.abort()
            except Exception as exc:
                LOG.warning('giving up the start prepared for %s: %s', cid[:12], exc)

    def close(self):
        """The engine stops: starts prepared ahead are given up."""
        if self.warm is not None:
            self.warm.close()
        for cid in list(self._prepared):
            self._give_up_prepared_start(cid)

    def _start_locked(self, c):
        self._warm_cgroup_lock()
        cfg = c.config
        mode = c.host_config.get('NetworkMode') or 'default'
        netns = None
        netns_owner = None
        if mode.startswith('container:'):
            other = self.get(mode.split(':', 1)[1])
            key = (other.record.get('NetworkSettings') or {}).get('SandboxKey')
            if other.is_running() and key and self.networks is not None \
                    and key.startswith(self.networks.netns_dir + os.sep) and os.path.exists(key):
                # Its persistent namespace file: no pid to pin.
                return self._start_with_netns(c, cfg, mode, key, None)
            # No lock on the other container (two containers joining each
            # other would deadlock): a pidfd pins the process whose namespace
            # we name by pid, and its record must still name that pid after.
            pid = other.state['Pid'] if other.is_running() else 0
            netns_owner = self.watcher.open_pidfd(pid) if pid else None
            if netns_owner is None or not other.is_running() or other.state['Pid'] != pid:
                if netns_owner is not None:
                    os.close(netns_owner)
                raise errors.Conflict('cannot join the network of container %s: it is '
                                      'not running' % other.id[:12])
            netns = '/proc/%d/ns/net' % pid
        try:
            self._start_with_netns(c, cfg, mode, netns, netns_owner)
        finally:
            if netns_owner is not None:
                os.close(netns_owner)

    def _start_with_netns(self, c, cfg, mode, netns, netns_owner):
        log_max_size = logrotate.container_limits(c.host_config)[0]
        self.logs.prepare_start(c.log_path, log_max_size)
        # conmon and runc start now, unless they were started ahead for this
        # container (engine/warmstart.py), and wait for the spec, which is
        # built meanwhile (engine/runtime/monitor.py, PendingCreate).
        creating = self._prepared.pop(c.id, None)
        if creating is not None and not creating.monitor_alive():
            creating.abort()
            creating = None
        if creating is None:
            creating = self.tasks.begin_create(
                c.id, c.bundle, tty=cfg['Tty'], stdin=cfg['OpenStdin'],
                stdin_once=cfg['StdinOnce'], log_path=c.log_path, log_size_max=log_max_size)
        join_network = None
        try:
            self.snapshotter.mount(c.id, c.rootfs)
            if netns is None and self.networks is not None:
                # CNI ADD runs while runc creates the container: both only
                # need the namespace file.
                netns, join_network = self.networks.sandbox_up(c)
            etc = self.networks.write_etc(c) if self.networks is not None else {}
            spec = self.spec_builder(c, etc, netns)
            info = creating.finish(spec)
            if join_network is not None:
                join_network, join = None, join_network
                join()
                self.networks.update_etc(c, etc)
            if netns_owner is not None and _exited(netns_owner):
                raise errors.Conflict('the container whose network this one joins exited '
                                      'while it was being created')
        except BaseException:
            if not creating.done:
                creating.abort()
            if join_network is not None:
                try:
                    join_network()
                except BaseException:
                    pass  # the start failed already; teardown follows
            self._cleanup_runtime(c)
            raise
        c.record['ResolvConfPath'] = etc.get('resolv.conf', '')
        c.record['HostnamePath'] = etc.get('hostname', '')
        c.record['HostsPath'] = etc.get('hosts', '')
        c.record['LogPath'] = c.log_path
        c.record['MonitorPid'] = info.monitor_pid
        pidfd = self.watcher.open_pidfd(info.monitor_pid)
        # Attach requests that came before start join now, before the
        # process runs, so they miss none of its output.
        pending, c.pending_attaches = c.pending_attaches, []
        for p in pending:
            try:
                p.conn = self.tasks.attach(c.id)
            except Exception as exc:
                p.error = exc
            p.event.set()
        try:
            self.tasks.start(c.id)
        except BaseException:
            if pidfd is not None:
                os.close(pidfd)
            self._kill_quietly(c)
            self._cleanup_runtime(c)
            raise
        # Log rotation is followed from here: watching adopts any rotation
        # made before it, and the process has only just begun to write.
        if log_max_size is not None:
            self.logs.watch(c.id, c.log_path, c.host_config)
        c.record['State'] = self._state(RUNNING, Pid=info.pid, StartedAt=util.rfc3339())
        c.save()
        if pidfd is not None:
            self.watcher.watch(c.id, pidfd)
        else:
            threading.Thread(target=self.handle_exit, args=(c.id,), daemon=True).start()
        if self.networks is not None:
            self.networks.started(c)

    def _start_failed(self, c, exc):
        self.logs.unwatch(c.id)
        message = str(exc)
        code = 128
        low = message.lower()
        if 'executable file not found' in low or 'no such file or directory' in low:
            code = 127
        elif 'permission denied' in low:
            code = 126
        c.record['State'] = self._state(
            CREATED if c.state['StartedAt'] == util.ZERO_TIME else EXITED,
            ExitCode=code, Error=message,
            StartedAt=c.state['StartedAt'], FinishedAt=c.state['FinishedAt'])
        c.save()
        if self.mounts is not None:
            self.mounts.stopped(c, publish=False)
        for p in c.pending_attaches:
            p.error = exc
            p.event.set()
        c.pending_attaches = []
        c.cond.notify_all()

    def _kill_quietly(self, c):
        try:
            self.tasks.kill(c.id, signal.SIGKILL, all=True)
        except errors.EngineError:
            pass

    def _cleanup_runtime(self, c):
        """Remove what a previous run left: runtime state, monitor files,
        mount, network namespace (CNI DEL runs alongside the rest)."""
        net_down = None
        if self.networks is not None and (c.record.get('NetworkSettings') or {}).get(
                'SandboxKey'):
            gone = []
            net_down = threading.Thread(target=lambda: gone.extend(self.networks.sandbox_down(c)),
                                        name='cni-del-' + c.id[:12], daemon=True)
            net_down.start()
        try:
            self.tasks.delete(c.id, force=True)
        except errors.EngineError as exc:
            LOG.warning('runtime delete of %s: %s', c.id[:12], exc)
        self.snapshotter.unmount(c.rootfs)
        security.release_ipc(c.path)
        if net_down is not None:
            net_down.join()
            self.networks.stopped(c, gone)

    # -- exit ---------------------------------------------------------------
    def handle_exit(self, cid):
        """The monitor of ``cid`` ended: record the exit and release resources."""
        with self._lock:
            c = self._by_id.get(cid)
        if c is None:
            return
        with c.lock:
            if not c.is_running():
                return
            status = self.tasks.exit_status(cid)
            if status is None:
                code, finished, oom = 255, time.time(), False
                error = 'the container monitor exited without recording an exit code'
            else:
                code, finished, oom = status
                error = ''
            # The new state is complete before it replaces the old one:
            # readers (inspect, ps) do not take the lock, and must never see
            # "exited" for a container that is restarting or being removed.
            state = self._state(
                EXITED, ExitCode=code, OOMKilled=oom, Error=error,
                StartedAt=c.state['StartedAt'], FinishedAt=util.rfc3339(finished))
            c.exit_count += 1
            self.logs.unwatch(c.id)
            auto_remove = c.host_config.get('AutoRemove')
            restart_delay = None
            if auto_remove:
                # Gone at once (`docker run --rm` waits for this); runtime
                # and files are released below, after the waiters woke.
                state['Status'] = REMOVING
                c.record['State'] = state
                c.record['MonitorPid'] = 0
                if self.networks is not None:
                    self.networks.draining(c)
                self._forget(c)
            else:
                restart_delay = self.restarts.after_exit(
                    c, code, finished - util.parse_rfc3339(c.state['StartedAt']), state)
                c.record['State'] = state
                c.record['MonitorPid'] = 0
                self._cleanup_runtime(c)
                c.save()
                c.cond.notify_all()
        if self.mounts is not None:
            self.mounts.stopped(c)
        if oom:
            self.events.publish('container', 'oom', cid, self._event_attrs(c))
        self.events.publish('container', 'die', cid, self._event_attrs(c, exitCode=str(code)))
        if restart_delay is not None:
            # Scheduled after the die event so a restart's start follows it.
            with c.lock:
                if c.status == RESTARTING and not c.removed:
                    self.restarts.schedule(c, restart_delay)
        if auto_remove:
            self.events.publish('container', 'destroy', cid, self._event_attrs(c))
            self._cleanup_runtime(c)
            self._remove_dir(c.id, c.path)
            if self.mounts is not None:
                self.mounts.removed(c, remove_volumes=True)

    def reconcile(self):
        """After an engine (re)start: match every record with what is really running."""
        for c in self.list():
            with c.lock:
                if c.status == REMOVING:
                    self._finish_remove(c, runtime_clean=False)
                    continue
                # A start cut short while runc read its spec from a FIFO.
                self.tasks.settle_spec(c.bundle)
                if c.status == CREATED and self._adopt_started(c):
                    continue
                if not c.is_running():
                    if c.status == CREATED:
                        self._cleanup_runtime(c)
                    continue
                pid = c.record.get('MonitorPid') or 0
                pidfd = self.watcher.open_pidfd(pid) if pid else None
                if pidfd is not None and self.tasks.monitor_alive(c.id, pid):
                    state = self.tasks.state(c.id) or {}
                    status = PAUSED if state.get('status') == 'paused' else RUNNING
                    if status != c.status:
                        c.record['State'].update(Status=status, Paused=status == PAUSED)
                        c.save()
                    self.watcher.watch(c.id, pidfd)
                    self._watch_log(c)
                    LOG.info('container %s is still %s', c.id[:12], status)
                    continue
                if pidfd is not None:
                    os.close(pidfd)
            LOG.info('container %s exited while the engine was away', c.id[:12])
            self.handle_exit(c.id)
        self.restarts.startup(self.list())

    def _watch_log(self, c):
        if logrotate.container_limits(c.host_config)[0] is not None:
            self.logs.watch(c.id, c.log_path, c.host_config)

    def policy_restart(self, cid, take):
        """A restart policy's delay is over: start the container again.

        ``take()`` (called under the container's lock) says whether the
        restart is still wanted: stop, kill and rm cancel it.
        """
        with self._lock:
            c = self._by_id.get(cid)
        if c is None:
            take()
            return
        with c.lock:
            if not take() or c.removed or c.status != RESTARTING:
                return
            if c.busy:  # an export holds the filesystem: try again shortly
                self.restarts.schedule(c, restart_mod.FIRST_DELAY)
                return
            try:
                self._start_locked(c)
            except Exception as exc:
                LOG.warning('restart policy: starting container %s failed: %s', c.id[:12], exc)
                self._start_failed(c, exc)
                return
        self.events.publish('container', 'start', c.id, self._event_attrs(c))

    def _adopt_started(self, c):
        """A CREATED record whose start got as far as the runtime before a
        crash: adopt a live container as running; anything else is cleaned
        up by the caller."""
        if c.id not in self.tasks.known_tasks():
            return False
        pid = self.tasks.monitor_pid(c.id)
        pidfd = self.watcher.open_pidfd(pid) if pid else None
        if pidfd is None:
            return False
        state = self.tasks.state(c.id) or {}
        if not self.tasks.monitor_alive(c.id, pid) or state.get('status') not in (
                'running', 'paused', 'created'):
            os.close(pidfd)
            return False
        if state.get('status') == 'created':
            self.tasks.start(c.id)  # the crash came between create and start
        status = PAUSED if state.get('status') == 'paused' else RUNNING
        c.record['State'] = self._state(status, Pid=self.tasks.container_pid(c.id) or 0,
                                        StartedAt=util.rfc3339())
        c.record['MonitorPid'] = pid
        c.record['LogPath'] = c.log_path
        c.save()
        self.watcher.watch(c.id, pidfd)
        self._watch_log(c)
        LOG.info('container %s was started just before the engine stopped: adopted', c.id[:12])
        return True

    # -- stop, kill, pause --------------------------------------------------
    def _wait_exit(self, c, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        with c.lock:
            while c.is_running():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                c.cond.wait(left)
        return True

    def _signal(self, c, sig):
        with c.lock:
            if self.restarts.on_manual_signal(c, sig) or not c.is_running():
                return False
            self.tasks.kill(c.id, sig, all=sig == signal.SIGKILL)
            if c.status == PAUSED:
                # A frozen process cannot act on a signal, not even SIGKILL.
                # runc's kill --all thaws the cgroup itself: then there is
                # nothing left to resume.
                try:
                    self.tasks.resume(c.id)
                except errors.Conflict as exc:
                    LOG.debug('resume of %s after signal %d: %s', c.id[:12], sig, exc)
                c.record['State'].update(Status=RUNNING, Paused=False)
                c.save()
            return True

    def stop(self, ref, timeout=None, sig=None):
        c = self.get(ref)
        if not c.is_running() and c.status != RESTARTING:
            raise errors.NotModified('container already stopped')
        if timeout is None:
            timeout = c.config.get('StopTimeout')
            if timeout is None:
                timeout = self.stop_timeout
        stop_sig = containerconfig.parse_signal(sig or c.config.get('StopSignal') or 'SIGTERM')
        try:
            if self._signal(c, stop_sig):
                self.events.publish('container', 'kill', c.id,
                                    self._event_attrs(c, signal=str(stop_sig)))
        except errors.RuntimeFailure as exc:
            LOG.debug('stop signal to %s: %s', c.id[:12], exc)
        if timeout < 0:
            timeout = None
        else:
            timeout = min(timeout, MAX_STOP_TIMEOUT)
        if not self._wait_exit(c, timeout):
            LOG.info('container %s ignored signal %d for %ss: killing it', c.id[:12], stop_sig, timeout)
            self.events.publish('container', 'kill', c.id, self._event_attrs(c, signal='9'))
            self._kill_and_wait(c)
        self.events.publish('container', 'stop', c.id, self._event_attrs(c))

    def _kill_and_wait(self, c, timeout=30):
        try:
            self._signal(c, signal.SIGKILL)
        except errors.RuntimeFailure as exc:
            LOG.debug('SIGKILL to %s: %s', c.id[:12], exc)
        if not self._wait_exit(c, timeout):
            raise errors.RuntimeFailure('container %s did not exit after SIGKILL' % c.id[:12])

    def kill(self, ref, sig='SIGKILL'):
        c = self.get(ref)
        num = containerconfig.parse_signal(sig or 'SIGKILL')
        if not c.is_running() and c.status != RESTARTING:
            raise errors.Conflict('Cannot kill container: %s: container %s is not running'
                                  % (ref, c.id))
        self._signal(c, num)
        self.events.publish('container', 'kill', c.id, self._event_attrs(c, signal=str(num)))
        if num == signal.SIGKILL:
            self._wait_exit(c, 30)

    def pause(self, ref):
        c = self.get(ref)
        with c.lock:
            if c.status == PAUSED:
                raise errors.Conflict('Container %s is already paused' % c.id)
            if c.status == RESTARTING:
                raise errors.Conflict('Container %s is restarting, wait until the container '
                                      'is running' % c.id)
            if c.status != RUNNING:
                raise errors.Conflict('Container %s is not running' % c.id)
            self.tasks.pause(c.id)
            c.record['State'].update(Status=PAUSED, Paused=True)
            c.save()
        self.events.publish('container', 'pause', c.id, self._event_attrs(c))

    def unpause(self, ref):
        c = self.get(ref)
        with c.lock:
            if c.status != PAUSED:
                raise errors.Conflict('Container %s is not paused' % c.id)
            self.tasks.resume(c.id)
            c.record['State'].update(Status=RUNNING, Paused=False)
            c.save()
        self.events.publish('container', 'unpause', c.id, self._event_attrs(c))

    def restart(self, ref, timeout=None, sig=None):
        c = self.get(ref)
        if c.is_running() or c.status == RESTARTING:
            self.stop(c.id, timeout, sig)
        self.start(c.id)
        self.events.publish('container', 'restart', c.id, self._event_attrs(c))

    # -- update (docker update) ---------------------------------------------
    def update(self, ref, body):
        """New limits (and restart policy) for a container; applied to its
        cgroups at once when it runs, kept in the record for its next start.

        Returns Docker's warnings.  See engine.resources.validate_update.
        """
        c = self.get(ref)
        if not isinstance(body, dict):
            raise errors.InvalidArgument('update config must be a JSON object')
        restart = body.get('RestartPolicy')
        # Clients send an empty policy with every update: only a named one
        # changes the container's (as Docker).
        if restart is not None:
            named = isinstance(restart, dict) and bool(restart.get('Name'))
            restart = restart_mod.validate_restart_policy(restart)
            if not named:
                restart = None
        with c.lock:
            if c.removed or c.status in (REMOVING, DEAD):
                raise errors.Conflict('Cannot update container %s: container is marked for '
                                      'removal and cannot be "update"' % c.id)
            try:
                new, oci, warnings = resources.validate_update(body, c.host_config)
            except errors.Conflict as exc:
                raise errors.Conflict('Cannot update container %s: %s' % (c.id, exc))
            if restart is not None:
                if c.host_config.get('AutoRemove') and restart['Name'] != 'no':
                    raise errors.InvalidArgument('Restart policy cannot be updated because '
                                                 'AutoRemove is enabled for the container')
                new['RestartPolicy'] = restart
            if c.is_running() and oci:
                try:
                    self.tasks.update(c.id, oci)
                except errors.EngineError as exc:
                    # e.g. a memory limit below what the container uses now
                    raise errors.Conflict('Cannot update container %s: %s' % (
                        c.id, resources.explain_update_failure(str(exc))))
            c.record['HostConfig'] = new
            c.save()
        self.events.publish('container', 'update', c.id, self._event_attrs(c))
        return warnings

    # -- wait ---------------------------------------------------------------
    def wait(self, c, condition='not-running', stop=None):
        """Block until the condition holds; return (exit code, error text).

        ``stop()`` is polled so a vanished client does not pin a thread.
        """
        if condition not in ('not-running', 'next-exit', 'removed', ''):
            raise errors.InvalidArgument('invalid condition: %r' % condition)
        with c.lock:
            start_count = c.exit_count
            while True:
                if condition == 'removed':
                    if c.removed:
                        break
                elif condition == 'next-exit':
                    if c.exit_count > start_count:
                        break
                elif (not c.is_running() and c.status != RESTARTING) or \
                        c.exit_count > start_count:
                    # A restarting container counts as running, as in
                    # Docker; its exits still end a wait.
                    break
                c.cond.wait(1.0)
                if stop is not None and stop():
                    return None
            return c.state['ExitCode'], c.state.get('Error') or None

    def wait_started(self, c, pending, stop=None):
        """Block an attach that came before start until start connects it."""
        while not pending.event.wait(1.0):
            if c.removed or (stop is not None and stop()):
                with c.lock:
                    if pending in c.pending_attaches:
                        c.pending_attaches.remove(pending)
                return False
        return True

    def attach(self, ref, stdin):
        """A conmon attach connection, or a PendingAttach if not yet started."""
        c = self.get(ref)
        with c.lock:
            if c.is_running():
                if c.status == PAUSED:
                    raise errors.Conflict('You cannot attach to a paused container, unpause it first')
                conn = self.tasks.attach(c.id)
                self.events.publish('container', 'attach', c.id, self._event_attrs(c))
                return c, conn
            if c.status == RESTARTING:
                raise errors.Conflict('container %s is restarting, wait until the container is '
                                      'running' % c.id)
            if c.status in (CREATED, EXITED):
                p = PendingAttach(stdin)
                c.pending_attaches.append(p)
                self.events.publish('container', 'attach', c.id, self._event_attrs(c))
                return c, p
            raise errors.Conflict('You cannot attach to a container in state %s' % c.status)

    def resize(self, ref, height, width):
        c = self.get(ref)
        if not c.is_running():
            raise errors.Conflict('Container %s is not running' % c.id)
        containerconfig.check_terminal_size(height, width)
        if c.config.get('Tty'):
            self.tasks.resize(c.id, height, width)
        self.events.publish('container', 'resize', c.id,
                            self._event_attrs(c, height=str(height), width=str(width)))

    # -- rename, remove -----------------------------------------------------
    def rename(self, ref, new_name):
        c = self.get(ref)
        new_name = names.validate(new_name)
        # Lock order everywhere: the container's lock, then the service's.
        with c.lock:
            if c.removed:
                raise errors.NoSuchContainer(ref)
            old = c.name
            if new_name == old:
                raise errors.InvalidArgument('Renaming a container with the same name as its '
                                             'current name')
            with self._lock:
                if new_name in self._names:
                    raise errors.Conflict(
                        'Conflict. The container name "/%s" is already in use by container '
                        '"%s". You have to remove (or rename) that container to be able to '
                        'reuse that name.' % (new_name, self._names[new_name]))
                self._names[new_name] = c.id
            c.record['Name'] = '/' + new_name
            try:
                c.save()
            except BaseException:
                c.record['Name'] = '/' + old
                with self._lock:
                    self._names.pop(new_name, None)
                raise
            with self._lock:
                if self._names.get(old) == c.id:
                    self._names.pop(old, None)
        if self.networks is not None and c.is_running():
            self.networks.renamed(c)  # peers resolve the new name
        self.events.publish('container', 'rename', c.id, self._event_attrs(c, oldName='/' + old))

    def remove(self, ref, force=False, volumes=False):
        c = self.get(ref)
        if c.is_running() or c.status == RESTARTING:
            if not force:
                if c.status == RESTARTING:
                    raise errors.Conflict('You cannot remove a restarting container %s. Stop the '
                                          'container before attempting removal or force remove'
                                          % c.id)
                if c.status == PAUSED:
                    raise errors.Conflict('You cannot remove a paused container %s. Unpause and '
                                          'then stop the container before attempting removal or '
                                          'force remove' % c.id)
                raise errors.Conflict('You cannot remove a running container %s. Stop the '
                                      'container before attempting removal or force remove' % c.id)
            self.events.publish('container', 'kill', c.id, self._event_attrs(c, signal='9'))
            self._kill_and_wait(c)
        with c.lock:
            if c.removed:
                return
            if c.busy:
                raise errors.Conflict('container %s is being exported: remove it once the '
                                      'export is done' % c.id[:12])
            if c.status == REMOVING:
                raise errors.Conflict('removal of container %s is already in progress' % c.id)
            if c.is_running() or c.status == RESTARTING:
                raise errors.Conflict('container %s was started again during removal' % c.id)
            self.restarts.forget(c)
            # Deleting the record is the commit point: from here the
            # container is gone for every client, and a crash leaves only a
            # record-less directory and a snapshot that start-up collects.
            # Every path to a stopped state (exit, failed start) already
            # released the runtime's resources.
            c.record['State']['Status'] = REMOVING
            self._forget(c)
        self.events.publish('container', 'destroy', c.id, self._event_attrs(c))
        # Unmounting and deleting files happen after the waiters are woken:
        # `docker run --rm` need not wait for them.
        self._remove_dir(c.id, c.path)
        if self.mounts is not None:
            self.mounts.removed(c, remove_volumes=volumes)

    def _finish_remove(self, c, runtime_clean):
        """Complete a removal found half done (a REMOVING record at start-up)."""
        if not runtime_clean:
            self._cleanup_runtime(c)
        self._forget(c)
        self._remove_dir(c.id, c.path)

    def _forget(self, c):
        try:
            os.unlink(os.path.join(c.path, 'container.json'))
        except FileNotFoundError:
            pass
        with self._lock:
            self._by_id.pop(c.id, None)
            if self._names.get(c.name) == c.id:
                self._names.pop(c.name, None)
        c.removed = True
        for p in c.pending_attaches:
            p.event.set()
        c.pending_attaches = []
        c.cond.notify_all()

    def _remove_dir(self, cid, path):
        # The record is gone already (see _forget), so a crash in here
        # leaves nothing a client sees; start-up collects the rest.
        self._give_up_prepared_start(cid)  # never started (rm, prune)
        self.snapshotter.unmount(os.path.join(path, 'rootfs'))
        security.release_ipc(path)
        shutil.rmtree(path, ignore_errors=True)
        try:
            self.snapshotter.remove(cid)
        except errors.EngineError as exc:
            LOG.warning('removing snapshot of %s: %s', cid[:12], exc)

    def check(self):
        problems = []
        for c in self.list():
            if not self.snapshotter.exists(c.id):
                problems.append('container %s has no root filesystem snapshot' % c.id[:12])
            try:
                self.images.resolve(c.record['Image'])
            except errors.NotFound:
                problems.append('container %s uses missing image %s' % (c.id[:12], c.record['Image']))
        return problems


def _exited(pidfd):
    """A pidfd becomes readable once its process has exited."""
    import select
    return bool(select.select([pidfd], [], [], 0)[0])
