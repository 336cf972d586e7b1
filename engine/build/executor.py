"""The steps of a build that touch filesystems: RUN in a real container,
COPY/ADD into a private snapshot, and making the step's image.

Every step's result is an image whose ``parent`` is the previous step's
image and whose ``container_config`` records the step (Cmd =
``/bin/sh -c #(nop) ...`` or the RUN's argv), as Docker's classic builder
does: the build cache is the set of child images, so it persists with the
image records and disappears with them.
"""

import contextlib
import json
import os
import shutil
import stat
import time

from oslo_log import log as logging

from engine import chroot
from engine import images as images_mod
from engine import logs as logs_mod
from engine import util
from engine.build import add as add_mod
from engine.build import dockerfile as df

LOG = logging.getLogger(__name__)


def _canonical(cfg):
    return json.dumps(images_mod.full_config(cfg), sort_keys=True)


class Executor:
    def __init__(self, engine):
        # Nothing is looked up here: the routes make a Builder at start-up,
        # before (and in unit tests without) every service.
        self.engine = engine

    @property
    def images(self):
        return self.engine.images

    @property
    def containers(self):
        return self.engine.containers

    @property
    def snapshotter(self):
        return self.engine.images.snapshotter

    # -- cache ----------------------------------------------------------------
    def cached(self, parent_id, container_config):
        """The image the step would make, from the running build's cache
        (with its ``cachefrom`` sources) or else the local cache."""
        from engine.build import cache as cache_mod
        current = cache_mod.current()
        if current is not None:
            return current.lookup(parent_id, container_config)
        return self.local_cached(parent_id, container_config)

    def local_cached(self, parent_id, container_config):
        """The child image of ``parent_id`` made by the same step, or None."""
        if not parent_id:
            return None
        want = _canonical(container_config)
        best = None
        for child in self.images.children(parent_id):
            cfg = child.config
            if _canonical(cfg.get('container_config')) != want:
                continue
            if best is None or (cfg.get('created') or '') > (best[1] or ''):
                best = (child.id, cfg.get('created'))
        return best[0] if best else None

    # -- images ---------------------------------------------------------------
    def make_image(self, parent_id, config, container_config, layer=None,
                   new_blobs=(), lease=None, container_id='', author=None):
        """Register the step's image: the parent's layers plus ``layer``
        (None for a metadata-only step, recorded as an empty history entry)."""
        parent = self.images.resolve(parent_id) if parent_id else None
        base = parent.config if parent else {}
        created = util.rfc3339()
        hist = {'created': created,
                'created_by': ' '.join(container_config.get('Cmd') or [])}
        if layer is None:
            hist['empty_layer'] = True
        image_cfg = {
            'architecture': base.get('architecture') or images_mod.host_arch(),
            'os': base.get('os') or 'linux',
            'config': images_mod.full_config(config),
            'container': container_id,
            'container_config': images_mod.full_config(container_config),
            'created': created,
            'history': list(base.get('history') or []) + [hist],
            'rootfs': {'type': 'layers',
                       'diff_ids': list(parent.diff_ids if parent else [])},
        }
        # MAINTAINER sets the author; later steps keep it.
        if author or base.get('author'):
            image_cfg['author'] = author or base['author']
        if base.get('variant'):
            image_cfg['variant'] = base['variant']
        layers = [dict(digest=l['digest'], media_type=l['media_type'])
                  for l in (parent.record['layers'] if parent else [])]
        if layer is not None:
            image_cfg['rootfs']['diff_ids'].append(layer['diff_id'])
            layers.append(layer)
        image_id, _ = self.images.create_image(
            images_mod.dump_config(image_cfg), layers,
            parent=parent.id if parent else None, new_blobs=new_blobs,
            lease=lease)
        return image_id

    def commit_snapshot(self, key, parent_id, config, container_config,
                        container_id=''):
        """The diff of the active snapshot ``key`` as the step's layer."""
        lease = self.images.lease()
        try:
            layer, new = self.images.ingest_diff(key, lease, 'the diff of the build step')
            return self.make_image(parent_id, config, container_config, layer,
                                   new_blobs=new, lease=lease,
                                   container_id=container_id)
        finally:
            lease.release()

    # -- RUN ------------------------------------------------------------------
    def run(self, image_id, config, argv, env, emit):
        """Run ``argv`` in a container of ``image_id`` with the engine's
        default network; stream its output through ``emit``; return
        (exit code, container).  The caller removes the container."""
        body = {'Image': image_id, 'Cmd': argv, 'Entrypoint': [''],
                'Env': env, 'User': config.get('User') or '',
                'WorkingDir': config.get('WorkingDir') or '',
                'HostConfig': {}}
        c, _warnings = self.containers.create(body)
        emit(' ---> Running in %s\n' % c.id[:12])
        try:
            self.containers.start(c.id)
            self._follow(c, emit)
            code, _err = self.containers.wait(c)
        except BaseException:
            self.remove_container(c)
            raise
        return code, c

    def remove_container(self, c, emit=None):
        try:
            self.containers.remove(c.id, force=True)
        except Exception:  # noqa: BLE001 - best effort, as Docker's
            LOG.exception('could not remove build container %s', c.id)
            return
        if emit is not None:
            emit('Removing intermediate container %s\n' % c.id[:12])

    def _follow(self, c, emit):
        """Stream the container's log (stdout and stderr) until it exits."""
        path = c.log_path
        pos = 0
        while True:
            running = c.is_running()
            try:
                with open(path, 'rb') as f:
                    f.seek(pos)
                    for raw in f:
                        if not raw.endswith(b'\n'):
                            break
                        pos += len(raw)
                        entry = logs_mod.parse_line(raw)
                        if entry:
                            emit(entry[2].decode('utf-8', 'replace'))
            except FileNotFoundError:
                pass
            if not running:
                return
            time.sleep(0.02)

    # -- COPY / ADD -------------------------------------------------------------
    def copy(self, parent_id, config, container_config, sources, dest, workdir,
             chown='', keep_owners=False, extract=()):
        """Copy ``sources`` to ``dest`` in a new layer.

        Owners: ``chown`` (a --chown value, resolved in the parent image),
        else the sources' own (``keep_owners``: COPY --from), else 0:0.
        ``extract``: host paths of sources that are archives to unpack
        into ``dest`` (ADD)."""
        def work(mnt):
            if chown:
                owner = add_mod.resolve_chown(mnt, chown)
            else:
                owner = None if keep_owners else (0, 0)
            _copy_into(mnt, sources, dest, workdir, owner,
                       extract=extract, unpack=self._unpack)
        return self._layer_step(parent_id, config, container_config, work)

    def _layer_step(self, parent_id, config, container_config, work):
        """Run ``work(rootfs)`` on a writable snapshot of ``parent_id`` and
        commit what it changed as the step's image; ``work`` returning
        False means no layer is needed (None is returned).  The snapshot is
        removed either way."""
        parent = self.images.unpack(self.images.resolve(parent_id)) if parent_id else None
        key = 'build-' + util.new_id()
        with self.images.tempdir('build-mnt-') as mnt:
            self.snapshotter.prepare(key, parent.top_chain_id if parent else None)
            try:
                self.snapshotter.mount(key, mnt)
                try:
                    if work(mnt) is False:
                        return None
                finally:
                    self.snapshotter.unmount(mnt)
                return self.commit_snapshot(key, parent_id, config,
                                            container_config)
            finally:
                self.snapshotter.remove(key)

    def workdir(self, parent_id, config, container_config, path):
        """WORKDIR ``path``: when the parent image lacks the directory, a
        layer that creates it (root-owned 0755, as Docker's
        ContainerCreateWorkdir); None when it exists already (the step is
        then an empty history entry, as Docker records an empty diff)."""
        def work(mnt):
            if os.path.isdir(chroot.resolve(mnt, path)):
                return False
            try:
                chroot.resolve(mnt, path, create_dirs=True)
            except chroot.NotADirectory as exc:
                raise df.BuildError('failed to create the WORKDIR %s: %s is not a '
                                    'directory' % (path, exc.component))
            except chroot.TooManyLinks:
                raise df.BuildError('failed to create the WORKDIR %s: too many '
                                    'levels of symbolic links' % path)
        return self._layer_step(parent_id, config, container_config, work)

    def _unpack(self, path, target):
        add_mod.extract(path, target, max_size=self.images.max_layer_size,
                        layer_limits=self.images.layer_limits())

    @contextlib.contextmanager
    def image_view(self, image_id):
        """The root filesystem of ``image_id``, mounted read-only for the
        time of the ``with`` (COPY --from), unmounted even on error."""
        img = self.images.unpack(self.images.resolve(image_id)) if image_id else None
        with self.images.tempdir('build-from-') as mnt:
            if img is None or img.top_chain_id is None:
                # A stage FROM scratch with nothing in it yet, or an image
                # without layers: an empty root.
                yield mnt
                return
            self.snapshotter.mount(img.top_chain_id, mnt)
            try:
                yield mnt
            finally:
                self.snapshotter.unmount(mnt)

    def download(self, url, workdir):
        """ADD's URL source: fetched into ``workdir``; returns (name, path)."""
        guard = self.images.space_guard(workdir, 'downloading %s' % url)
        return add_mod.fetch(url, workdir, max_size=self.images.max_layer_size,
                             space_guard=guard, hint=images_mod.HINT_LAYER)


def _mkdirs_in_root(rootfs, path, owner=None):
    """Create ``path`` inside ``rootfs`` and return its host path.

    Symlinks met on the way resolve as in a chroot (an absolute target or
    ``..`` never leaves the rootfs); missing directories, also those a
    dangling link points at, are created 0755 as Docker's, root-owned or
    owned by ``owner`` (--chown)."""
    try:
        return chroot.resolve(rootfs, path, create_dirs=True,
                              dir_owner=owner)
    except chroot.TooManyLinks:
        raise df.BuildError('failed to copy files: too many levels of '
                            'symbolic links in %s' % path)
    except chroot.NotADirectory as exc:
        raise df.BuildError('failed to copy files: %s is not a directory'
                            % exc.component)


def _copy_one(src, dst, owner=(0, 0)):
    """Copy ``src`` (not following a symlink) to ``dst``: modes and times
    kept, owned by ``owner`` or, when None, by the source's owner."""
    if os.path.lexists(dst) and not (os.path.isdir(dst) and not os.path.islink(dst)):
        os.unlink(dst)
    st = os.lstat(src)
    uid, gid = owner if owner is not None else (st.st_uid, st.st_gid)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        if not os.path.isdir(dst) or os.path.islink(dst):
            os.mkdir(dst, 0o700)
        for name in sorted(os.listdir(src)):
            _copy_one(os.path.join(src, name), os.path.join(dst, name), owner)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    else:
        return  # devices, fifos, sockets are not copied
    if owner is None:
        # COPY --from keeps owners and, as Docker's, setuid/setgid bits:
        # chown first (it clears them), then chmod.
        os.lchown(dst, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(dst, mode)
    else:
        # Docker 20.10 chowns what it copied last, and the kernel clears
        # setuid/setgid bits of files on chown: so do we.
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(dst, mode)
        os.lchown(dst, uid, gid)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_into(rootfs, sources, dest, workdir, owner=(0, 0), extract=(),
               unpack=None):
    """Docker's COPY rules: a dest ending in / (or several sources) is a
    directory; a directory source copies its contents; an archive source
    (in ``extract``) is unpacked by ``unpack(path, target_dir)`` into dest
    as a directory, keeping the archive's owners."""
    if not dest.startswith('/'):
        dest = (workdir or '/').rstrip('/') + '/' + dest
    dest_is_dir = dest.endswith('/') or len(sources) > 1 or dest.endswith('/.')
    if len(sources) > 1 and not dest.endswith('/'):
        raise df.BuildError('When using COPY with more than one source file, '
                            'the destination must be a directory and end with a /')
    # Directories COPY makes belong to --chown's owner, else to root.
    dir_owner = owner if owner is not None else (0, 0)
    for src in sources:
        if src.path in extract:
            unpack(src.path, _mkdirs_in_root(rootfs, dest))
        elif src.is_dir:
            target = _mkdirs_in_root(rootfs, dest, dir_owner)
            for name in sorted(os.listdir(src.path)):
                _copy_one(os.path.join(src.path, name), os.path.join(target, name),
                          owner)
        elif dest_is_dir:
            target = _mkdirs_in_root(rootfs, dest, dir_owner)
            _copy_one(src.path, os.path.join(target, os.path.basename(src.rel)),
                      owner)
        else:
            head, _, base = dest.rstrip('/').rpartition('/')
            target = _mkdirs_in_root(rootfs, head, dir_owner)
            existing = os.path.join(target, base)
            if os.path.isdir(existing) and not os.path.islink(existing):
                _copy_one(src.path, os.path.join(existing, os.path.basename(src.rel)),
                          owner)
            else:
                _copy_one(src.path, existing, owner)
