"""Container mounts: parse and validate Docker's mount specifications.

Docker describes a container's mounts in four places: ``HostConfig.Binds``
(``/host:/ctr:ro``, ``name:/ctr``), ``HostConfig.Mounts`` (typed objects),
``HostConfig.Tmpfs`` (``{"/run": "size=64m"}``) and ``Config.Volumes`` plus
the image's VOLUME declarations (anonymous volumes).  This module turns each
into a *mount point*: a plain dict with Docker's ``MountPoint`` fields,
persisted in the container record (``MountPoints``) and rendered in
inspect's ``Mounts``.  Parsing has no side effects; the rules and messages
are moby's (volume/mounts/linux_parser.go, daemon/volumes.go).
"""

import os
import posixpath
import re

from engine import errors

BIND, VOLUME, TMPFS = 'bind', 'volume', 'tmpfs'
MOUNT_TYPES = (BIND, VOLUME, TMPFS)

RW_MODES = ('rw', 'ro')
LABEL_MODES = ('z', 'Z')
PROPAGATION_MODES = ('private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave')
COPY_MODES = ('nocopy',)
CONSISTENCY_MODES = ('consistent', 'cached', 'delegated')
DEFAULT_PROPAGATION = 'rprivate'

# Mount flags tmpfs accepts (moby pkg/mount flags), by the flag they set:
# a later option overrides an earlier one setting the same flag.
_TMPFS_FLAGS = {
    'ro': 'rdonly', 'rw': 'rdonly', 'suid': 'nosuid', 'nosuid': 'nosuid',
    'dev': 'nodev', 'nodev': 'nodev', 'exec': 'noexec', 'noexec': 'noexec',
    'sync': 'sync', 'async': 'sync', 'dirsync': 'dirsync', 'mand': 'mand',
    'nomand': 'mand', 'atime': 'noatime', 'noatime': 'noatime',
    'diratime': 'nodiratime', 'nodiratime': 'nodiratime',
    'relatime': 'relatime', 'norelatime': 'relatime',
    'strictatime': 'strictatime', 'nostrictatime': 'strictatime',
}
_TMPFS_PROPAGATION = PROPAGATION_MODES + ('unbindable', 'runbindable')
# key=value options, each with the values the kernel takes.
_TMPFS_DATA = {
    'size': re.compile(r'^[0-9]{1,19}[kKmMgGtTpPeE%]?$'),
    'nr_blocks': re.compile(r'^[0-9]{1,19}[kKmMgGtTpPeE%]?$'),
    'nr_inodes': re.compile(r'^[0-9]{1,19}[kKmMgGtTpPeE%]?$'),
    'mode': re.compile(r'^[0-7]{1,4}$'),
    'uid': re.compile(r'^[0-9]{1,10}$'),
    'gid': re.compile(r'^[0-9]{1,10}$'),
    'mpol': re.compile(r'^(default|prefer|bind|interleave|local)(:[0-9,-]+)?$'),
}
# Docker's defaults for every tmpfs mount; the user's options come after.
TMPFS_DEFAULTS = ('noexec', 'nosuid', 'nodev')

MAX_PATH = 4096


def invalid_spec(raw):
    return "invalid volume specification: '%s'" % raw


class MountConfigError(errors.InvalidArgument):
    """moby's errMountConfig: names the mount type and what is wrong."""

    def __init__(self, mount_type, message):
        super().__init__('invalid mount config for type "%s": %s' % (mount_type, message))


def _check_path_text(path, what):
    if not isinstance(path, str):
        raise errors.InvalidArgument('%s must be a string' % what)
    if '\x00' in path or len(path) > MAX_PATH:
        raise errors.InvalidArgument('%s is not a valid path: %r' % (what, path[:100]))


def validate_destination(path, mount_type=VOLUME):
    """An absolute container path other than '/'; returns it cleaned."""
    _check_path_text(path, 'mount destination')
    if not path:
        raise MountConfigError(mount_type, 'field Target must not be empty')
    if path == '/':
        raise MountConfigError(mount_type, "invalid specification: destination can't be '/'")
    if not path.startswith('/'):
        raise MountConfigError(mount_type, "invalid mount path: '%s' mount path must be "
                                           "absolute" % path)
    cleaned = posixpath.normpath(path)
    if cleaned.startswith('//'):
        cleaned = '/' + cleaned.lstrip('/')
    if cleaned == '/':
        raise MountConfigError(mount_type, "invalid specification: destination can't be '/'")
    return cleaned


def valid_mode(mode):
    """moby's linuxValidMountMode: comma-separated, at most one of each kind."""
    if mode == '':
        return True
    counts = {}
    for opt in mode.split(','):
        for kind, values in (('rw', RW_MODES), ('label', LABEL_MODES),
                             ('propagation', PROPAGATION_MODES), ('copy', COPY_MODES),
                             ('consistency', CONSISTENCY_MODES)):
            if opt in values:
                counts[kind] = counts.get(kind, 0) + 1
                break
        else:
            return False
    return all(n <= 1 for n in counts.values())


def _mode_opts(mode):
    return mode.split(',') if mode else []


def _new_point(mount_type, destination, source='', name='', rw=True, mode='',
               propagation='', copy_data=True, non_recursive=False, data='',
               anonymous=False, driver='', labels=None, driver_opts=None):
    return {
        'Type': mount_type, 'Name': name, 'Source': source, 'Destination': destination,
        'Driver': driver, 'Mode': mode, 'RW': rw, 'Propagation': propagation,
        # Engine-side fields (not in Docker's MountPoint JSON):
        'CopyData': copy_data, 'NonRecursive': non_recursive, 'Data': data,
        'Anonymous': anonymous, 'VolumeLabels': labels or {},
        'VolumeOptions': driver_opts or {},
    }


def parse_bind(raw):
    """One ``HostConfig.Binds`` entry -> a mount point (moby ParseMountRaw).

    ``/host:/ctr[:mode]`` is a bind, ``name:/ctr[:mode]`` a named volume and
    a lone ``/ctr`` an anonymous volume.  Modes: rw|ro, z|Z, nocopy, a
    propagation and a consistency, comma separated.
    """
    if not isinstance(raw, str):
        raise errors.InvalidArgument('HostConfig.Binds entries must be strings')
    if '\x00' in raw or len(raw) > 2 * MAX_PATH:
        raise errors.InvalidArgument(invalid_spec(raw[:100]))
    parts = raw.split(':', 3)
    if not parts[0]:
        raise errors.InvalidArgument(invalid_spec(raw))
    mode = ''
    if len(parts) == 1:
        source, target = '', parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            # "/foo:rw": a destination with a mode but no source.
            raise errors.InvalidArgument(invalid_spec(raw))
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise errors.InvalidArgument(invalid_spec(raw))
    if not valid_mode(mode):
        raise errors.InvalidArgument('invalid mode: %s' % mode)
    opts = _mode_opts(mode)
    mount_type = BIND if source.startswith('/') else VOLUME
    propagation = next((o for o in opts if o in PROPAGATION_MODES), '')
    try:
        if mount_type == BIND and 'nocopy' in opts:
            raise MountConfigError(BIND, 'field VolumeOptions must not be specified')
        if mount_type == VOLUME and propagation:
            raise MountConfigError(VOLUME, 'field BindOptions must not be specified')
        destination = validate_destination(target, mount_type)
        if mount_type == BIND:
            _check_path_text(source, 'bind source')
            return _new_point(BIND, destination, source=posixpath.normpath(source),
                              rw='ro' not in opts, mode=mode,
                              propagation=propagation or DEFAULT_PROPAGATION)
        if not source and 'ro' in opts:
            raise MountConfigError(VOLUME, 'must not set ReadOnly mode when using '
                                           'anonymous volumes')
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument('%s: %s' % (invalid_spec(raw), exc))
    if source:
        validate_volume_name(source)
    # Docker shows mode "z" for a local volume given without a mode (its
    # setBindModeIfNull); only Config.Volumes' anonymous volumes keep "".
    return _new_point(VOLUME, destination, name=source, rw='ro' not in opts,
                      mode=mode or 'z', copy_data='nocopy' not in opts,
                      anonymous=not source, driver='local')


_VOLUME_NAME = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]+$')


def validate_volume_name(name):
    """The local driver's rule for names; messages as Docker's ("create <name>: ...")."""
    if not isinstance(name, str):
        raise errors.InvalidArgument('volume name must be a string')
    if len(name) == 1:
        raise errors.InvalidArgument('create %s: volume name is too short, names should be '
                                     'at least two alphanumeric characters' % name)
    if not _VOLUME_NAME.match(name) or len(name) > 255:
        raise errors.InvalidArgument(
            'create %s: "%s" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            'directory, use absolute path' % (name[:300], name[:300]))
    return name


def _obj(value, what, mount_type):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MountConfigError(mount_type, '%s must be a JSON object' % what)
    return value


def _str_map(value, what, mount_type):
    value = _obj(value, what, mount_type) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MountConfigError(mount_type, '%s must map strings to strings' % what)
    return dict(value)


def parse_mount(spec):
    """One ``HostConfig.Mounts`` entry -> a mount point (moby ParseMountSpec).

    The bind source is checked to exist later (``MountResolver``), where
    the host is looked at.
    """
    if not isinstance(spec, dict):
        raise errors.InvalidArgument('HostConfig.Mounts entries must be JSON objects')
    mount_type = spec.get('Type') or ''
    if not isinstance(mount_type, str):
        raise errors.InvalidArgument('Mounts Type must be a string')
    for key in ('Source', 'Target'):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise MountConfigError(mount_type, 'field %s must be a string' % key)
    if spec.get('ReadOnly') is not None and not isinstance(spec['ReadOnly'], bool):
        raise MountConfigError(mount_type, 'field ReadOnly must be a boolean')
    source = spec.get('Source') or ''
    target = spec.get('Target') or ''
    readonly = bool(spec.get('ReadOnly'))
    bind_opts = _obj(spec.get('BindOptions'), 'BindOptions', mount_type)
    volume_opts = _obj(spec.get('VolumeOptions'), 'VolumeOptions', mount_type)
    tmpfs_opts = _obj(spec.get('TmpfsOptions'), 'TmpfsOptions', mount_type)
    if spec.get('Consistency') not in (None, '', 'default') + CONSISTENCY_MODES:
        raise MountConfigError(mount_type, 'invalid consistency: %s' % spec.get('Consistency'))
    if not target:
        raise MountConfigError(mount_type, 'field Target must not be empty')
    if mount_type not in MOUNT_TYPES:
        raise MountConfigError(mount_type, 'mount type unknown')
    destination = validate_destination(target, mount_type)
    if mount_type == BIND:
        if not source:
            raise MountConfigError(BIND, 'field Source must not be empty')
        propagation = DEFAULT_PROPAGATION
        non_recursive = False
        if bind_opts:
            propagation = bind_opts.get('Propagation') or DEFAULT_PROPAGATION
            if propagation not in PROPAGATION_MODES:
                raise MountConfigError(BIND, 'invalid propagation mode: %s' % propagation)
            non_recursive = bind_opts.get('NonRecursive') or False
            if not isinstance(non_recursive, bool):
                raise MountConfigError(BIND, 'field BindOptions.NonRecursive must be a '
                                             'boolean')
            for key in ('CreateMountpoint', 'ReadOnlyNonRecursive', 'ReadOnlyForceRecursive'):
                if bind_opts.get(key):
                    raise MountConfigError(BIND, 'BindOptions.%s is not supported by this '
                                                 'engine yet' % key)
        if volume_opts is not None:
            raise MountConfigError(BIND, 'field VolumeOptions must not be specified')
        if tmpfs_opts is not None:
            raise MountConfigError(BIND, 'field TmpfsOptions must not be specified')
        _check_path_text(source, 'bind source')
        if not source.startswith('/'):
            raise MountConfigError(BIND, "invalid mount path: '%s' mount path must be "
                                         "absolute" % source)
        return _new_point(BIND, destination, source=posixpath.normpath(source),
                          rw=not readonly, propagation=propagation,
                          non_recursive=non_recursive)
    if mount_type == VOLUME:
        if bind_opts is not None:
            raise MountConfigError(VOLUME, 'field BindOptions must not be specified')
        if tmpfs_opts is not None:
            raise MountConfigError(VOLUME, 'field TmpfsOptions must not be specified')
        if not source and readonly:
            raise MountConfigError(VOLUME, 'must not set ReadOnly mode when using anonymous '
                                           'volumes')
        if source:
            validate_volume_name(source)
        volume_opts = volume_opts or {}
        no_copy = volume_opts.get('NoCopy') or False
        if not isinstance(no_copy, bool):
            raise MountConfigError(VOLUME, 'field VolumeOptions.NoCopy must be a boolean')
        if volume_opts.get('Subpath'):
            raise MountConfigError(VOLUME, 'VolumeOptions.Subpath is not supported by this '
                                           'engine yet')
        labels = _str_map(volume_opts.get('Labels'), 'VolumeOptions.Labels', VOLUME)
        driver_cfg = _obj(volume_opts.get('DriverConfig'), 'VolumeOptions.DriverConfig',
                          VOLUME) or {}
        driver = driver_cfg.get('Name') or 'local'
        if not isinstance(driver, str):
            raise MountConfigError(VOLUME, 'field DriverConfig.Name must be a string')
        driver_opts = _str_map(driver_cfg.get('Options'), 'DriverConfig.Options', VOLUME)
        return _new_point(VOLUME, destination, name=source, rw=not readonly, mode='z',
                          copy_data=not no_copy, anonymous=not source, driver=driver,
                          labels=labels, driver_opts=driver_opts)
    # tmpfs
    if bind_opts is not None:
        raise MountConfigError(TMPFS, 'field BindOptions must not be specified')
    if volume_opts is not None:
        raise MountConfigError(TMPFS, 'field VolumeOptions must not be specified')
    if source:
        raise MountConfigError(TMPFS, 'field Source must not be specified')
    data = convert_tmpfs_options(tmpfs_opts, readonly)
    merge_tmpfs_options(TMPFS_DEFAULTS + tuple(_mode_opts(data)))  # validates
    return _new_point(TMPFS, destination, rw=not readonly, data=data)


def convert_tmpfs_options(opts, readonly):
    """Mounts' TmpfsOptions -> mount data, as moby's ConvertTmpfsOptions."""
    raw = ['ro'] if readonly else []
    opts = opts or {}
    size = opts.get('SizeBytes') or 0
    mode = opts.get('Mode') or 0
    for name, value in (('SizeBytes', size), ('Mode', mode)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MountConfigError(TMPFS, 'TmpfsOptions.%s must be a non-negative integer'
                                          % name)
    if size > 2 ** 63 - 1:
        raise MountConfigError(TMPFS, 'TmpfsOptions.SizeBytes is too large')
    if mode:
        if mode > 0o7777:
            raise MountConfigError(TMPFS, 'TmpfsOptions.Mode %o is not a file mode' % mode)
        raw.append('mode=%o' % mode)
    if size:
        suffix = ''
        for s, div in (('g', 1 << 30), ('m', 1 << 20), ('k', 1 << 10)):
            if size % div == 0:
                size //= div
                suffix = s
                break
        raw.append('size=%d%s' % (size, suffix))
    for key in ('Options',):
        if opts.get(key):
            raise MountConfigError(TMPFS, 'TmpfsOptions.%s is not supported by this engine yet'
                                          % key)
    return ','.join(raw)


def merge_tmpfs_options(options):
    """moby's MergeTmpfsOptions: later options win; unknown ones are refused."""
    flag_seen = set()
    data_seen = set()
    out = []
    for option in reversed(list(options)):
        if option == 'defaults':
            continue
        if option in _TMPFS_FLAGS or option in _TMPFS_PROPAGATION:
            key = 'propagation' if option in _TMPFS_PROPAGATION else _TMPFS_FLAGS[option]
            if key not in flag_seen:
                out.insert(0, option)
                flag_seen.add(key)
            continue
        key, eq, value = option.partition('=')
        if not eq or key not in _TMPFS_DATA:
            raise errors.InvalidArgument('Invalid tmpfs option ["%s"]' % '" "'.join(
                option.split('=', 1)))
        if not _TMPFS_DATA[key].match(value):
            raise errors.InvalidArgument('Invalid tmpfs option: %s has a bad value %r'
                                         % (key, value))
        if key not in data_seen:
            out.insert(0, option)
            data_seen.add(key)
    return out


def parse_tmpfs(destination, options):
    """One ``HostConfig.Tmpfs`` entry -> a tmpfs mount point."""
    if not isinstance(destination, str) or not isinstance(options, str):
        raise errors.InvalidArgument('HostConfig.Tmpfs must map paths to option strings')
    try:
        dest = validate_destination(destination, TMPFS)
    except MountConfigError as exc:
        raise errors.InvalidArgument(str(exc).split(': ', 1)[1])
    merge_tmpfs_options(TMPFS_DEFAULTS + tuple(_mode_opts(options)))
    rw = 'ro' not in [o for o in _mode_opts(options) if o in ('ro', 'rw')][-1:]
    point = _new_point(TMPFS, dest, rw=rw, data=options)
    point['FromTmpfs'] = True  # HostConfig.Tmpfs mounts are not listed in Mounts
    return point


def parse_volumes_from(spec):
    """``<container>[:ro|rw]`` -> (container reference, read-write)."""
    if not isinstance(spec, str) or not spec:
        raise errors.InvalidArgument('volumes-from specification cannot be an empty string')
    ref, _, mode = spec.partition(':')
    if ':' in mode:
        raise errors.InvalidArgument('invalid volumes-from specification: %s' % spec)
    if mode and (not valid_mode(mode) or any(o not in RW_MODES + LABEL_MODES
                                             for o in mode.split(','))):
        raise errors.InvalidArgument('invalid mode: %s' % mode)
    if not ref:
        raise errors.InvalidArgument('volumes-from specification cannot be an empty string')
    return ref, 'ro' not in mode.split(',')


def parse_config_volume(path):
    """A ``Config.Volumes`` key (``docker run -v /data``, image VOLUME)."""
    try:
        return validate_destination(path, VOLUME)
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument('%s: %s' % (invalid_spec(path), exc))


def parse_host_config(host, config_volumes=()):
    """Every mount a create asks for, validated, without touching anything.

    Returns (points, volumes_from) where ``points`` are ordered mount points
    (binds, then Mounts, then tmpfs, then Config.Volumes not covered by
    those) and ``volumes_from`` is a list of (container reference, rw).
    Duplicate destinations are refused as Docker does.
    """
    binds = host.get('Binds') or []
    mounts = host.get('Mounts') or []
    tmpfs = host.get('Tmpfs') or {}
    volumes_from = host.get('VolumesFrom') or []
    if not isinstance(binds, list):
        raise errors.InvalidArgument('HostConfig.Binds must be a list of strings')
    if not isinstance(mounts, list):
        raise errors.InvalidArgument('HostConfig.Mounts must be a list of objects')
    if not isinstance(tmpfs, dict):
        raise errors.InvalidArgument('HostConfig.Tmpfs must be a JSON object')
    if not isinstance(volumes_from, list):
        raise errors.InvalidArgument('HostConfig.VolumesFrom must be a list of strings')
    driver = host.get('VolumeDriver') or ''
    if driver not in ('', 'local'):
        raise errors.InvalidArgument('volume driver "%s" is not supported: this engine '
                                     'offers the local driver only' % driver)
    points = []
    taken = set()
    tmpfs_points = [parse_tmpfs(dest, opts) for dest, opts in tmpfs.items()]
    tmpfs_dests = {p['Destination'] for p in tmpfs_points}
    for raw in binds:
        point = parse_bind(raw)
        if point['Destination'] in taken or point['Destination'] in tmpfs_dests:
            raise errors.InvalidArgument('Duplicate mount point: %s' % point['Destination'])
        taken.add(point['Destination'])
        points.append(point)
    for spec in mounts:
        point = parse_mount(spec)
        if point['Destination'] in taken or point['Destination'] in tmpfs_dests:
            raise errors.InvalidArgument('Duplicate mount point: %s' % point['Destination'])
        taken.add(point['Destination'])
        points.append(point)
    points.extend(tmpfs_points)
    taken |= tmpfs_dests
    refs = [parse_volumes_from(v) for v in volumes_from]
    for path in sorted(config_volumes or ()):
        dest = parse_config_volume(path)
        if dest in taken:
            continue  # the image's VOLUME is covered by what the user mounts there
        taken.add(dest)
        point = _new_point(VOLUME, dest, anonymous=True, driver='local')
        point['FromConfig'] = True  # yields to volumes-from as well
        points.append(point)
    return points, refs


def api_view(point):
    """A mount point as Docker's ``Mounts`` entry in container inspect."""
    out = {'Type': point['Type']}
    if point['Type'] == VOLUME:
        out['Name'] = point['Name']
    out.update({'Source': point['Source'], 'Destination': point['Destination']})
    if point['Type'] == VOLUME:
        out['Driver'] = point['Driver']
    out.update({'Mode': point['Mode'], 'RW': point['RW'],
                'Propagation': point['Propagation']})
    return out


def container_mounts_view(points):
    """inspect's ``Mounts``: HostConfig.Tmpfs mounts are not listed (as Docker)."""
    return [api_view(p) for p in points or () if not p.get('FromTmpfs')]


def sort_for_mounting(points):
    """Parents before children (Docker sorts by path depth)."""
    return sorted(points, key=lambda p: len([x for x in p['Destination'].split('/') if x]))


def path_within(path, root):
    """``path`` is ``root`` or below it (both real paths)."""
    root = root.rstrip('/') or '/'
    return path == root or path.startswith(root + '/') or root == '/'


def check_bind_source(source, forbidden=()):
    """A bind source must exist and must not be, hold or sit in an engine directory."""
    try:
        os.stat(source)
    except FileNotFoundError:
        raise MountConfigError(BIND, 'bind source path does not exist: %s' % source)
    except OSError as exc:
        raise MountConfigError(BIND, 'bind source path %s cannot be used: %s'
                                     % (source, exc.strerror))
    real = os.path.realpath(source)
    for name, path in forbidden:
        path = os.path.realpath(path)
        if path_within(real, path) or path_within(path, real):
            raise MountConfigError(BIND, 'bind source %s is or overlaps the engine\'s %s '
                                         '(%s): refusing to expose the engine\'s own state'
                                         % (source, name, path))
    return real


def _mountinfo():
    rows = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index('-')
            except ValueError:
                continue
            rows.append((_unescape(fields[4]), fields[6:sep]))
    return rows


def _unescape(field):
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def source_mount(path, mountinfo=None):
    """(mount point holding ``path``, its optional fields) from mountinfo."""
    rows = mountinfo if mountinfo is not None else _mountinfo()
    best = ('/', [])
    for point, optional in rows:
        if path_within(path, point) and len(point) >= len(best[0]):
            best = (point, optional)
    return best


def check_propagation(source, propagation, mountinfo=None):
    """Docker's rule: shared needs a shared source mount, slave a shared or slave one."""
    if propagation not in ('shared', 'rshared', 'slave', 'rslave'):
        return
    point, optional = source_mount(os.path.realpath(source), mountinfo)
    shared = any(o.startswith('shared:') for o in optional)
    slave = any(o.startswith('master:') for o in optional)
    if propagation in ('shared', 'rshared') and not shared:
        raise errors.InvalidArgument('path %s is mounted on %s but it is not a shared mount'
                                     % (source, point))
    if not (shared or slave):
        raise errors.InvalidArgument('path %s is mounted on %s but it is not a shared or '
                                     'slave mount' % (source, point))


def oci_mount(point, source):
    """The OCI runtime-spec mount entry of a resolved mount point."""
    if point['Type'] == TMPFS:
        options = merge_tmpfs_options(TMPFS_DEFAULTS + tuple(_mode_opts(point['Data'])))
        return {'destination': point['Destination'], 'type': 'tmpfs', 'source': 'tmpfs',
                'options': options}
    options = ['bind' if point.get('NonRecursive') else 'rbind',
               point.get('Propagation') or DEFAULT_PROPAGATION]
    if not point['RW']:
        options.append('ro')
    return {'destination': point['Destination'], 'type': 'bind', 'source': source,
            'options': options}


def rootfs_propagation(points):
    """Docker makes the rootfs shared (or slave) when a mount needs it."""
    modes = {p.get('Propagation') for p in points if p['Type'] == BIND}
    if modes & {'shared', 'rshared'}:
        return 'shared'
    if modes & {'slave', 'rslave'}:
        return 'slave'
    return None
