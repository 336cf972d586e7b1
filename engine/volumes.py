"""Volumes with Docker's local driver, and the mounts of containers.

Layout under ``<root>/volumes``::

    <name>/volume.json     Name, Labels, Options, CreatedAt, Anonymous
    <name>/_data/          the volume's content (its Mountpoint)
    .tmp-*/                a create in progress: renamed to <name> when whole
    .trash-*/              a removal in progress: renamed away from <name> first

A volume exists exactly when ``<name>/volume.json`` exists: create builds the
whole directory aside and renames it into place; remove renames it away
before deleting.  A crash leaves only ``.tmp-*``/``.trash-*`` directories,
which the next start deletes.

Which containers use a volume is never stored: it is derived from the
container records (their ``MountPoints``) plus holds that creates in
progress take, so references stay right across engine restarts and crashes.
"""

import errno
import os
import shutil
import stat
import tempfile
import threading

from oslo_log import log as logging

from engine import chroot
from engine import errors
from engine import mounts as mounts_mod
from engine import util
from engine.snapshotters import local as local_snap

LOG = logging.getLogger(__name__)

DRIVER = 'local'
ANONYMOUS_LABEL = 'com.docker.volume.anonymous'
TMP_PREFIX = '.tmp-'
TRASH_PREFIX = '.trash-'
_MAX_LABELS_BYTES = 64 * 1024


class NoSuchVolume(errors.NotFound):
    pass


# mount(2) flags the local driver's "o" option may set: name -> (flag, set?).
_MS = {'rdonly': 1, 'nosuid': 2, 'nodev': 4, 'noexec': 8, 'sync': 16, 'remount': 32,
       'dirsync': 128, 'noatime': 1024, 'nodiratime': 2048, 'bind': 4096, 'rec': 16384,
       'relatime': 1 << 21, 'strictatime': 1 << 24}
_MOUNT_FLAGS = {
    'defaults': (0, True), 'ro': (_MS['rdonly'], True), 'rw': (_MS['rdonly'], False),
    'nosuid': (_MS['nosuid'], True), 'suid': (_MS['nosuid'], False),
    'nodev': (_MS['nodev'], True), 'dev': (_MS['nodev'], False),
    'noexec': (_MS['noexec'], True), 'exec': (_MS['noexec'], False),
    'sync': (_MS['sync'], True), 'async': (_MS['sync'], False),
    'dirsync': (_MS['dirsync'], True),
    'noatime': (_MS['noatime'], True), 'atime': (_MS['noatime'], False),
    'nodiratime': (_MS['nodiratime'], True), 'diratime': (_MS['nodiratime'], False),
    'relatime': (_MS['relatime'], True), 'norelatime': (_MS['relatime'], False),
    'strictatime': (_MS['strictatime'], True),
    'nostrictatime': (_MS['strictatime'], False),
    'bind': (_MS['bind'], True), 'rbind': (_MS['bind'] | _MS['rec'], True),
}
LOCAL_OPTIONS = ('type', 'device', 'o')


def parse_local_options(opts, forbidden=()):
    """The local driver's ``type``/``device``/``o`` -> (fstype, device, flags, data).

    Two kinds are offered: ``type=tmpfs`` (a tmpfs mounted on the volume
    while containers use it) and ``type=none,o=bind,device=/path`` (the
    volume is that host directory).  Anything else is refused.
    """
    for key in opts:
        if key not in LOCAL_OPTIONS:
            if key == 'size':
                raise errors.InvalidArgument('volume option "size" needs an xfs quota, which '
                                             'this engine does not offer')
            raise errors.InvalidArgument('invalid option: "%s"' % key)
    for key, value in opts.items():
        if not isinstance(value, str) or '\x00' in value or len(value) > 4096:
            raise errors.InvalidArgument('volume option %s is not a valid string' % key)
    fstype, device, options = opts.get('type', ''), opts.get('device', ''), opts.get('o', '')
    if not fstype:
        raise errors.InvalidArgument('volume options need "type" (tmpfs, or none with '
                                     'o=bind)')
    if not device:
        raise errors.InvalidArgument('volume options need "device"')
    flags = 0
    data = []
    for opt in [o for o in options.split(',') if o]:
        if opt in _MOUNT_FLAGS:
            flag, on = _MOUNT_FLAGS[opt]
            flags = (flags | flag) if on else (flags & ~flag)
        else:
            data.append(opt)
    is_bind = bool(flags & _MS['bind'])
    if fstype == 'tmpfs' and not is_bind:
        mounts_mod.merge_tmpfs_options(data)  # only tmpfs's own key=value options
    elif fstype in ('none', 'bind') or is_bind:
        if not is_bind:
            raise errors.InvalidArgument('volume type %s needs o=bind (or rbind)' % fstype)
        if data:
            raise errors.InvalidArgument('invalid bind volume option: %s' % ','.join(data))
        if not device.startswith('/'):
            raise errors.InvalidArgument('bind volume device must be an absolute path: %s'
                                         % device)
        mounts_mod.check_bind_source(device, forbidden)
    else:
        raise errors.InvalidArgument('local volumes of type %s are not supported by this '
                                     'engine yet: use tmpfs, or none with o=bind' % fstype)
    return fstype, device, flags, ','.join(data)


def _size(path):
    """Apparent size of a tree (each inode once), as Docker's directory.Size."""
    seen = set()
    total = 0
    for _, dirnames, filenames, dirfd in os.fwalk(path):
        for name in filenames + dirnames:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


class Volume:
    def __init__(self, meta, path):
        self.meta = meta
        self.path = path

    @property
    def name(self):
        return self.meta['Name']

    @property
    def labels(self):
        return self.meta.get('Labels') or {}

    @property
    def anonymous(self):
        return ANONYMOUS_LABEL in self.labels

    @property
    def data_path(self):
        return os.path.join(self.path, '_data')

    def view(self, usage=None):
        out = {
            'CreatedAt': self.meta['CreatedAt'],
            'Driver': DRIVER,
            'Labels': dict(self.labels) or None,
            'Mountpoint': self.data_path,
            'Name': self.name,
            'Options': dict(self.meta.get('Options') or {}) or None,
            'Scope': 'local',
        }
        if usage is not None:
            out['UsageData'] = usage
        return out


class VolumeService:
    """The local volume driver's store, with Docker's reference rules.

    ``users()`` is set by the engine: it returns {volume name: [container
    ids]} from the container records.
    """

    def __init__(self, root, events, forbidden=()):
        self.root = util.makedirs(os.path.join(root, 'volumes'), 0o701)
        self.events = events
        self.forbidden = list(forbidden)  # (what, path): never a bind volume's device
        self.active = {}  # volume with options -> container ids it is mounted for
        self.users = lambda: {}
        self._lock = threading.RLock()
        self._holds = {}   # volume name -> set of container ids being created
        self._volume_locks = {}
        self.leftovers = []

    # -- lookups ------------------------------------------------------------
    def _path(self, name):
        return os.path.join(self.root, name)

    def _load(self, name):
        if name.startswith('.') or '/' in name:
            return None
        path = self._path(name)
        try:
            meta = util.read_json(os.path.join(path, 'volume.json'))
        except (ValueError, OSError):
            return None
        if not isinstance(meta, dict) or meta.get('Name') != name:
            return None
        return Volume(meta, path)

    def get(self, name):
        if not isinstance(name, str) or not name:
            raise NoSuchVolume('get %s: no such volume' % name)
        vol = self._load(name)
        if vol is None:
            raise NoSuchVolume('get %s: no such volume' % name)
        return vol

    def exists(self, name):
        return self._load(name) is not None

    def list(self):
        out = []
        for name in sorted(os.listdir(self.root)):
            vol = self._load(name)
            if vol is not None:
                out.append(vol)
        return out

    def references(self):
        """{volume name: sorted container ids} from records and holds."""
        refs = {}
        for name, cids in (self.users() or {}).items():
            refs.setdefault(name, set()).update(cids)
        with self._lock:
            for name, cids in self._holds.items():
                refs.setdefault(name, set()).update(cids)
        return {name: sorted(cids) for name, cids in refs.items() if cids}

    def in_use(self, name):
        return self.references().get(name, [])

    def volume_lock(self, name):
        with self._lock:
            return self._volume_locks.setdefault(name, threading.Lock())

    # -- create ---------------------------------------------------------------
    def create(self, name=None, driver=None, driver_opts=None, labels=None,
               anonymous=False, hold_for=None):
        """Create a volume (or return the existing one): (Volume, created).

        ``hold_for``: a container id that holds the volume until released
        (``release``), so it cannot be removed before the container's record
        names it.
        """
        if driver not in (None, '', DRIVER):
            raise errors.NotFound('create %s: error looking up volume plugin %s: plugin "%s" '
                                  'not found' % (name or '', driver, driver))
        labels = dict(labels or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise errors.InvalidArgument('volume labels must map strings to strings')
        if len(repr(labels)) > _MAX_LABELS_BYTES:
            raise errors.InvalidArgument('volume labels are too large')
        driver_opts = dict(driver_opts or {})
        if driver_opts:
            if not all(isinstance(k, str) and isinstance(v, str)
                       for k, v in driver_opts.items()):
                raise errors.InvalidArgument('volume driver options must map strings to '
                                             'strings')
            parse_local_options(driver_opts, self.forbidden)
        if name:
            mounts_mod.validate_volume_name(name)
        else:
            name = util.new_id()
            anonymous = True
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, '')
        with self._lock:
            existing = self._load(name)
            if existing is None:
                meta = {'Name': name, 'Driver': DRIVER, 'Labels': labels,
                        'Options': driver_opts,
                        'CreatedAt': util.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')}
                self._make(meta)
            if hold_for:
                self._holds.setdefault(name, set()).add(hold_for)
        # Docker logs "create" on every create call, also for a volume that
        # exists (a container naming it, a repeated volume create).
        self.events.publish('volume', 'create', name, {'driver': DRIVER})
        if existing is not None:
            return existing, False
        return Volume(meta, self._path(name)), True

    def hold(self, name, cid):
        """Hold an existing volume for a create in progress (no event: Docker's Get)."""
        with self._lock:
            vol = self.get(name)
            self._holds.setdefault(name, set()).add(cid)
            return vol

    def _make(self, meta):
        """Build the volume aside and rename it into place: all or nothing."""
        tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.root)
        try:
            os.chmod(tmp, 0o701)
            os.mkdir(os.path.join(tmp, '_data'), 0o755)
            util.atomic_write_json(os.path.join(tmp, 'volume.json'), meta, mode=0o600)
            os.rename(tmp, self._path(meta['Name']))  # the commit point
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        util.fsync_dir(self.root)

    # -- volumes with mount options: mounted while containers use them ------------
    def activate(self, vol, cid):
        """Mount a volume with options for container ``cid`` (once for all users)."""
        opts = vol.meta.get('Options') or {}
        if not opts:
            return
        with self.volume_lock(vol.name):
            users = self.active.setdefault(vol.name, set())
            if not users and not local_snap.is_mounted(vol.data_path):
                fstype, device, flags, data = parse_local_options(opts, self.forbidden)
                if flags & _MS['bind']:
                    local_snap.sys_mount(device, vol.data_path, '', flags & (
                        _MS['bind'] | _MS['rec']))
                    if flags & ~(_MS['bind'] | _MS['rec']):
                        # A bind takes its other flags only on a remount.
                        try:
                            local_snap.sys_mount('', vol.data_path, '', flags | _MS['remount'])
                        except BaseException:
                            local_snap.unmount(vol.data_path)
                            raise
                else:
                    local_snap.sys_mount(device, vol.data_path, fstype, flags, data)
            users.add(cid)

    def deactivate(self, name, cid):
        """Container ``cid`` stopped using the volume: unmount after the last one."""
        vol = self._load(name)
        with self.volume_lock(name):
            users = self.active.get(name)
            if users is None or cid not in users:
                return
            users.discard(cid)
            if users:
                return
            del self.active[name]
            if vol is not None:
                self._unmount_data(vol)

    def _unmount_data(self, vol):
        if vol.meta.get('Options') and local_snap.is_mounted(vol.data_path):
            try:
                local_snap.unmount(vol.data_path)
            except errors.EngineError as exc:
                LOG.warning('cannot unmount volume %s: %s', vol.name, exc)

    def reconcile_active(self, running):
        """After a restart: ``running`` is {volume name: running container ids}.
        Volumes with options stay mounted for those; others are unmounted."""
        for vol in self.list():
            if not vol.meta.get('Options'):
                continue
            users = set(running.get(vol.name) or ())
            if users and local_snap.is_mounted(vol.data_path):
                self.active[vol.name] = users
            elif not users:
                self._unmount_data(vol)

    def release(self, names, cid):
        """Drop the holds of a create in progress (its record now names them)."""
        with self._lock:
            for name in names:
                holders = self._holds.get(name)
                if holders is not None:
                    holders.discard(cid)
                    if not holders:
                        del self._holds[name]

    # -- remove ---------------------------------------------------------------
    def remove(self, name, force=False, only_if_unused=False):
        """Docker's volume rm: 409 while any container uses it; ``force``
        removes an unused volume and ignores a missing one."""
        with self._lock:
            vol = self._load(name) if isinstance(name, str) and name else None
            if vol is None:
                if force:
                    return 0
                raise NoSuchVolume('get %s: no such volume' % name)
            users = self.in_use(name)
            if users:
                raise errors.Conflict('remove %s: volume is in use - [%s]'
                                      % (name, ', '.join(users)))
            self._unmount_data(vol)
            trash = os.path.join(self.root, TRASH_PREFIX + util.new_id()[:16])
            os.rename(vol.path, trash)  # the commit point: the volume is gone
            util.fsync_dir(self.root)
        self.events.publish('volume', 'destroy', name, {'driver': DRIVER})
        self._delete_trash(trash)
        return 0

    def _delete_trash(self, path):
        try:
            local_snap.remove_tree(path)
        except (OSError, errors.EngineError) as exc:
            LOG.warning('cannot delete removed volume data %s: %s', path, exc)

    def prune(self, filters=None, all_volumes=True):
        """Remove unused volumes matching label filters; anonymous ones only
        unless ``all_volumes`` (API 1.42+ asks for ``all=true``)."""
        filters = filters or {}
        for key in filters:
            if key not in ('label', 'label!', 'all'):
                raise errors.InvalidArgument("invalid filter '%s'" % key)
        deleted, reclaimed = [], 0
        refs = self.references()
        for vol in self.list():
            if refs.get(vol.name):
                continue
            if not all_volumes and not vol.anonymous:
                continue
            if not _labels_match(vol.labels, filters.get('label') or [],
                                 filters.get('label!') or []):
                continue
            try:
                size = _size(vol.data_path)
            except OSError:
                size = 0
            try:
                self.remove(vol.name)
            except (errors.Conflict, errors.NotFound):
                continue  # taken into use (or removed) meanwhile
            deleted.append(vol.name)
            reclaimed += size
        self.events.publish('volume', 'prune', '', {'reclaimed': str(reclaimed)})
        return {'VolumesDeleted': deleted or None, 'SpaceReclaimed': reclaimed}

    # -- queries for the API ------------------------------------------------------
    def select(self, filters=None):
        """``GET /volumes``: filters dangling, name, label, driver."""
        filters = filters or {}
        for key in filters:
            if key not in ('dangling', 'name', 'label', 'driver', 'label!'):
                raise errors.InvalidArgument("invalid filter '%s'" % key)
        dangling = None
        for value in filters.get('dangling') or []:
            low = value.lower()
            if low in ('true', '1'):
                dangling = True
            elif low in ('false', '0'):
                dangling = False
            else:
                raise errors.InvalidArgument("invalid filter 'dangling=%s'" % value)
        refs = self.references() if dangling is not None else {}
        out = []
        for vol in self.list():
            if dangling is not None and bool(refs.get(vol.name)) == dangling:
                continue
            names = filters.get('name') or []
            if names and not any(n in vol.name for n in names):
                continue
            drivers = filters.get('driver') or []
            if drivers and DRIVER not in drivers:
                continue
            if not _labels_match(vol.labels, filters.get('label') or [],
                                 filters.get('label!') or []):
                continue
            out.append(vol)
        return out

    def df(self):
        """Volumes with UsageData (Size in bytes, RefCount), for system df."""
        refs = self.references()
        out = []
        for vol in self.list():
            try:
                size = _size(vol.data_path)
            except OSError:
                size = -1
            out.append(vol.view(usage={'Size': size, 'RefCount': len(refs.get(vol.name, []))}))
        return out

    # -- start-up and checks ------------------------------------------------------
    def cleanup(self):
        """Delete what a crash left in the middle of a create or a removal."""
        for name in os.listdir(self.root):
            if name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                LOG.info('removing the leftover volume directory %s', name)
                self._delete_trash(os.path.join(self.root, name))

    def check(self, container_points):
        """Problems: broken volume directories, containers naming missing volumes.

        ``container_points``: {container id: its mount points}.
        """
        problems = []
        for name in sorted(os.listdir(self.root)):
            if name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                continue
            vol = self._load(name)
            if vol is None:
                problems.append('volume directory %s has no valid volume.json' % name)
            elif not os.path.isdir(vol.data_path):
                problems.append('volume %s has no _data directory' % name)
        for cid, points in sorted(container_points.items()):
            for p in points or ():
                if p.get('Type') == mounts_mod.VOLUME and not self.exists(p.get('Name') or ''):
                    problems.append('container %s uses missing volume %s'
                                    % (cid[:12], p.get('Name')))
        return problems

    def leftover_notes(self):
        return ['volume directory %s of an interrupted create or removal' % name
                for name in sorted(os.listdir(self.root))
                if name.startswith((TMP_PREFIX, TRASH_PREFIX))]


def _labels_match(labels, wanted, unwanted=()):
    for v in wanted:
        k, eq, val = v.partition('=')
        if k not in labels or (eq and labels[k] != val):
            return False
    for v in unwanted:
        k, eq, val = v.partition('=')
        if k in labels and (not eq or labels[k] == val):
            return False
    return True


# ---------------------------------------------------------------- containers

class ContainerMounts:
    """Mounts across a container's life: create, start, exit and removal."""

    def __init__(self, volumes, events, get_container, forbidden):
        self.volumes = volumes
        self.events = events
        self.get_container = get_container
        self.forbidden = list(forbidden)  # (what, path): never bind-mounted

    # -- create ---------------------------------------------------------------
    def resolve(self, cid, host_config, config_volumes):
        """Validate every mount, create the volumes it names: (points, created).

        Everything is checked before any volume is made; on failure the
        volumes this call made are removed again.  The caller must
        ``finish_create`` (or ``abort_create``) once the record is saved.
        """
        points, volumes_from = mounts_mod.parse_host_config(host_config, config_volumes)
        for p in points:
            if p['Type'] == mounts_mod.BIND:
                mounts_mod.check_bind_source(p['Source'], self.forbidden)
                mounts_mod.check_propagation(p['Source'], p['Propagation'])
            elif p['Type'] == mounts_mod.VOLUME:
                if p['Driver'] not in ('', DRIVER):
                    raise errors.InvalidArgument('volume driver "%s" is not supported: this '
                                                 'engine offers the local driver only'
                                                 % p['Driver'])
                if p['VolumeOptions']:
                    parse_local_options(p['VolumeOptions'], self.forbidden)
        inherited = []
        for ref, rw in volumes_from:
            try:
                other = self.get_container(ref)
            except errors.NotFound as exc:
                raise errors.InvalidArgument(str(exc))  # as Docker: a bad parameter
            for op in other.record.get('MountPoints') or []:
                if op['Type'] == mounts_mod.TMPFS:
                    continue
                copied = dict(op, RW=op['RW'] and rw, CopyData=False, Inherited=True)
                copied.pop('FromTmpfs', None)
                inherited.append(copied)
        # Binds, Mounts and tmpfs win over volumes-from (Docker's order), and
        # Config.Volumes apply only where nothing else is mounted.
        final = {}
        for p in inherited:
            final[p['Destination']] = p
        for p in points:
            if p.get('FromConfig') and p['Destination'] in final:
                continue
            final[p['Destination']] = p
        created = []
        held = []
        try:
            for p in final.values():
                if p['Type'] != mounts_mod.VOLUME:
                    continue
                if p.pop('Inherited', False):
                    vol, made = self.volumes.hold(p['Name'], cid), False
                else:
                    vol, made = self.volumes.create(
                        p['Name'] or None, labels=p.get('VolumeLabels'),
                        driver_opts=p.get('VolumeOptions'), anonymous=p['Anonymous'],
                        hold_for=cid)
                held.append(vol.name)
                if made:
                    created.append(vol.name)
                p['Name'] = vol.name
                p['Source'] = vol.data_path
        except BaseException:
            self.abort_create(cid, held, created)
            raise
        ordered = list(final.values())
        for p in ordered:
            for key in ('VolumeLabels', 'VolumeOptions', 'Inherited'):
                p.pop(key, None)
        return ordered, (held, created)

    def finish_create(self, cid, token):
        held, _ = token
        self.volumes.release(held, cid)

    def abort_create(self, cid, held, created=None):
        if isinstance(held, tuple):
            held, created = held
        self.volumes.release(held, cid)
        for name in created or ():
            try:
                self.volumes.remove(name)
            except errors.EngineError as exc:
                LOG.info('volume %s made for a failed create stays: %s', name, exc)

    # -- start ----------------------------------------------------------------
    def spec_mounts(self, c):
        """OCI mounts of a container about to start (its rootfs is mounted).

        Empty volumes are first filled from the image's content at their
        destination (once: CopyData is cleared after), as Docker does.
        """
        points = c.record.get('MountPoints') or []
        out = []
        for p in mounts_mod.sort_for_mounting(points):
            if p['Type'] == mounts_mod.TMPFS:
                out.append(mounts_mod.oci_mount(p, 'tmpfs'))
            elif p['Type'] == mounts_mod.BIND:
                real = mounts_mod.check_bind_source(p['Source'], self.forbidden)
                mounts_mod.check_propagation(p['Source'], p['Propagation'])
                out.append(mounts_mod.oci_mount(p, real))
            else:
                vol = self.volumes.get(p['Name'])
                self.volumes.activate(vol, c.id)
                if p.get('CopyData'):
                    with self.volumes.volume_lock(vol.name):
                        # A running container could race the copy with
                        # symlinks in the shared directory: copy only into a
                        # volume no running container can write to.
                        if not self._running_users(vol.name, c.id):
                            populate(c.rootfs, p['Destination'], vol.data_path)
                    p['CopyData'] = False
                out.append(mounts_mod.oci_mount(p, vol.data_path))
        return out, mounts_mod.rootfs_propagation(points)

    def _running_users(self, name, exclude):
        out = []
        for cid in self.volumes.in_use(name):
            if cid == exclude:
                continue
            try:
                if self.get_container(cid).is_running():
                    out.append(cid)
            except errors.NotFound:
                pass
        return out

    def started(self, c):
        for p in c.record.get('MountPoints') or []:
            if p['Type'] == mounts_mod.VOLUME:
                self.events.publish('volume', 'mount', p['Name'], {
                    'driver': p['Driver'] or DRIVER, 'container': c.id,
                    'destination': p['Destination'],
                    'read/write': 'true' if p['RW'] else 'false',
                    'propagation': p['Propagation']})

    def stopped(self, c, publish=True):
        """The container exited (or its start failed): release its volumes."""
        for p in c.record.get('MountPoints') or []:
            if p['Type'] == mounts_mod.VOLUME:
                self.volumes.deactivate(p['Name'], c.id)
                if publish:
                    self.events.publish('volume', 'unmount', p['Name'], {
                        'driver': p['Driver'] or DRIVER, 'container': c.id})

    def reconcile(self, containers):
        """After an engine start: volumes with options stay mounted for running
        containers only."""
        running = {}
        for c in containers:
            if c.is_running():
                for p in c.record.get('MountPoints') or []:
                    if p['Type'] == mounts_mod.VOLUME:
                        running.setdefault(p['Name'], set()).add(c.id)
        self.volumes.reconcile_active(running)

    # -- removal -------------------------------------------------------------
    def removed(self, c, remove_volumes):
        """The container is gone: with ``remove_volumes`` (rm -v, AutoRemove)
        its anonymous volumes go too, unless another container uses them."""
        if not remove_volumes:
            return
        for p in c.record.get('MountPoints') or []:
            if p['Type'] != mounts_mod.VOLUME or not p.get('Anonymous'):
                continue
            try:
                self.volumes.remove(p['Name'])
            except errors.Conflict:
                pass  # still used by another container (volumes-from)
            except errors.NotFound:
                pass
            except errors.EngineError as exc:
                LOG.warning('removing volume %s of %s: %s', p['Name'], c.id[:12], exc)


def sort_oci_mounts(mounts):
    """OCI mounts ordered parents first (stable), as Docker's sortMounts."""
    return sorted(mounts, key=lambda m: len([x for x in m['destination'].split('/') if x]))


# ---------------------------------------------------------------- populate

def resolve_in_root(rootfs, path):
    """The host path of ``path`` inside ``rootfs``, symlinks resolved as a
    chroot would (never leaving the rootfs); None if it does not exist."""
    return chroot.exists(rootfs, path)


def populate(rootfs, destination, data_path):
    """Copy the image's content at ``destination`` into an empty volume.

    Ownership, modes, times, symlinks (as links), device nodes, hard links
    and xattrs are kept; nothing outside the rootfs is ever read.  The
    volume's own directory takes the owner and mode of the image directory.
    """
    if os.listdir(data_path):
        return False
    source = resolve_in_root(rootfs, destination)
    if source is None:
        return False
    st = os.lstat(source)
    if not stat.S_ISDIR(st.st_mode):
        return False
    try:
        _copy_tree(source, data_path, {})
        _copy_meta(source, data_path, st)
    except BaseException:
        # The volume was empty: leave it empty so the next start copies
        # again, instead of a half copy that would count as content.
        for name in os.listdir(data_path):
            path = os.path.join(data_path, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        raise
    return True


def _copy_meta(src, dst, st):
    is_link = stat.S_ISLNK(st.st_mode)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for attr in os.listxattr(src, follow_symlinks=False):
            os.setxattr(dst, attr, os.getxattr(src, attr, follow_symlinks=False),
                        follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.ENODATA):
            raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_tree(src_dir, dst_dir, links):
    with os.scandir(src_dir) as it:
        entries = list(it)
    for entry in entries:
        src = entry.path
        dst = os.path.join(dst_dir, entry.name)
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in links:
                os.link(links[key], dst, follow_symlinks=False)
                continue
            links[key] = dst
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            _copy_tree(src, dst, links)
        elif stat.S_ISREG(mode):
            fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                 0o600)
                try:
                    _copy_data(fd_in, fd_out, st.st_size)
                finally:
                    os.close(fd_out)
            finally:
                os.close(fd_in)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(dst, mode, st.st_rdev)
        else:
            continue  # sockets are not copied
        _copy_meta(src, dst, st)


def _copy_data(fd_in, fd_out, size):
    try:
        left = size
        while left > 0:
            n = os.copy_file_range(fd_in, fd_out, left)
            if n == 0:
                break
            left -= n
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    os.lseek(fd_in, 0, os.SEEK_SET)
    os.lseek(fd_out, 0, os.SEEK_SET)
    os.ftruncate(fd_out, 0)
    while True:
        chunk = os.read(fd_in, 1 << 20)
        if not chunk:
            break
        os.write(fd_out, chunk)

