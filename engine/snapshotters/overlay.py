"""The overlay snapshotter: layers as overlayfs lower dirs.

A committed snapshot's ``fs`` holds only its layer, with whiteouts in
overlayfs' own form; an active snapshot's ``fs`` is the writable upper dir
(plus ``work``, overlayfs' scratch dir), so containers of one image share
every image layer and own only their changes.
"""

import os

from oslo_log import log as logging

from engine import archive
from engine import errors
from engine import util
from engine.snapshotters import local
from engine.snapshotters import lowerview

LOG = logging.getLogger(__name__)

_PARAMS_DIR = '/sys/module/overlay/parameters'
# Features that would make an upper dir more than a plain diff: renamed
# directories as redirect xattrs, metadata-only copy-ups, hardlink index.
# Each name is both a module parameter and a mount option.
_FAITHFUL_OPTIONS = ('redirect_dir=off', 'index=off', 'metacopy=off')


def _feature_options():
    if not os.path.isdir(_PARAMS_DIR):
        # Module not loaded yet: the first mount loads it; a kernel too old
        # for these options gets a retry without them.
        return list(_FAITHFUL_OPTIONS)
    return [opt for opt in _FAITHFUL_OPTIONS
            if os.path.exists(os.path.join(_PARAMS_DIR, opt.split('=')[0]))]


class OverlaySnapshotter(local.LocalSnapshotter):
    name = 'overlay'

    # -- creation ----------------------------------------------------------

    def _fill_layer(self, tmp, parent, stream, max_size):
        # Each layer's root starts as its parent's: the topmost layer's root
        # decides the merged root's owner and mode.
        fs = self._new_fs(tmp, parent)
        lookup = None
        if parent is not None:
            with self._lock:
                layers = [self._fs(k) for k in self._chain(parent)]
            lookup = lowerview.LowerView(layers)
        return archive.apply_tar(stream, fs, whiteouts='overlay',
                                 max_size=max_size, lower_lookup=lookup)

    def _fill_active(self, tmp, parent):
        # The upper root's owner and mode win in the merged view: copy the
        # image's.
        self._new_fs(tmp, parent)
        os.mkdir(os.path.join(tmp, 'work'), 0o700)

    def _sync_active(self, tmp):
        # Two empty directories: one fsync of their parent makes both
        # entries durable, and with them the directories themselves (owner
        # and mode included: ``work``, made last, follows every change to
        # ``fs`` in the journal).  fsync of an empty directory adds nothing.
        util.fsync_dir(tmp)

    # -- mounting ----------------------------------------------------------

    def _lowerdir(self, keys):
        """lowerdir= value relative to snapshots/: a few bytes a layer, so
        hundreds of layers fit the one page mount(2) takes."""
        names = ['%s/fs' % self._record(k)['id'] for k in keys]
        if len(names) < 2:
            # overlayfs without an upper dir wants two lower dirs.
            names.append(local.EMPTY_DIR)
        return ':'.join(names)

    def _mount_options(self, key):
        rec = self._record(key)
        if rec['kind'] == local.COMMITTED:
            return ['ro', 'lowerdir=' + self._lowerdir(self._chain(key))]
        lower = self._chain(rec['parent']) if rec['parent'] else []
        return ['lowerdir=' + (self._lowerdir(lower) if lower
                               else local.EMPTY_DIR),
                'upperdir=%s/fs' % rec['id'],
                'workdir=%s/work' % rec['id']]

    def mount(self, key, target):
        with self._lock:
            opts = self._mount_options(key)
        features = _feature_options()
        try:
            self._mount(opts + features, target)
        except errors.EngineError:
            if not features:
                raise
            LOG.warning('overlay mount with %s failed; retrying without',
                        ','.join(features))
            self._mount(opts, target)

    def _mount(self, opts, target):
        flags = local.MS_RDONLY if 'ro' in opts else 0
        data = ','.join(self._absolute(o) for o in opts if o != 'ro')
        if len(data) < local.MOUNT_DATA_LIMIT:
            local.sys_mount('overlay', os.path.abspath(target), 'overlay', flags, data)
            return
        # Too many layers for absolute paths in one page: mount(8) run in
        # snapshots/ takes the short relative form.
        local.run_mount(['-t', 'overlay', '-o', ','.join(opts), 'overlay',
                         os.path.abspath(target)],
                        cwd=self.snapshots_dir)

    def _absolute(self, option):
        name, eq, value = option.partition('=')
        if not eq or name not in ('lowerdir', 'upperdir', 'workdir'):
            return option
        return name + '=' + ':'.join(os.path.join(self.snapshots_dir, v)
                                     for v in value.split(':'))

    # -- diff --------------------------------------------------------------

    def diff(self, key, out):
        with self._lock:
            upper = self._fs(key)
        return archive.diff_overlay_upper(upper, out)

    def change_dirs(self, key):
        """(own dir, image's layers top first, own dir is a full copy)
        for docker diff: the upper dir holds only what changed."""
        with self._lock:
            upper = self._fs(key)
            parent = self._record(key)['parent']
            lowers = [self._fs(k) for k in self._chain(parent)] if parent else []
        return upper, lowers, False

    # -- checks ------------------------------------------------------------

    def _check_record(self, key, rec, records):
        problems = super()._check_record(key, rec, records)
        work = os.path.join(self.snapshots_dir, str(rec['id']), 'work')
        if rec['kind'] == local.ACTIVE and not os.path.isdir(work):
            problems.append('snapshot %s: work directory %s is missing'
                            % (key, work))
        return problems
