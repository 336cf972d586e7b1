"""The build cache, with Docker's ``cachefrom``.

Without ``cachefrom`` a step hits the cache when the parent image has a
child made by the same step (Executor.local_cached): the classic builder's
local cache.  With ``cachefrom`` images (typically pulled from a registry,
where no parent links travel), Docker's ImageCache rules apply: a local hit
counts only when it is an ancestor of a source image, and otherwise a
source whose history starts with the parent's history and whose next
history entry is this step provides the step, restored as a new image
made of the source's layers up to that entry.
"""

import contextlib
import contextvars

from oslo_log import log as logging

from engine import errors
from engine import images as images_mod

LOG = logging.getLogger(__name__)

_current = contextvars.ContextVar('novadocker_build_cache', default=None)


def current():
    """The cache of the build running in this thread, or None."""
    return _current.get()


class BuildCache:
    def __init__(self, images, executor, refs=(), out=None):
        self.images = images
        self.executor = executor
        self.sources = []
        for ref in refs or ():
            try:
                self.sources.append(images.resolve(ref))
            except errors.EngineError as exc:
                # Docker skips a cache source it cannot find, with a warning.
                LOG.warning('Could not look up %s for cache resolution, '
                            'skipping: %s', ref, exc)
                if out is not None:
                    out('[Warning] cache source %s not found locally, skipped\n' % ref)

    @contextlib.contextmanager
    def active(self):
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def lookup(self, parent_id, container_config, config=None):
        """The image that step ``container_config`` on ``parent_id`` would
        make, if the cache has it; else None.  ``config`` is the step's
        resulting image config (default: the parent's), used when an image
        has to be restored from a cache source."""
        local = self.executor.local_cached(parent_id, container_config)
        if not self.sources:
            return local
        if local and any(self._is_ancestor(local, s.id) for s in self.sources):
            return local
        parent = self.images.resolve(parent_id) if parent_id else None
        created_by = ' '.join(container_config.get('Cmd') or [])
        for target in self.sources:
            if not _valid_parent(target, parent):
                continue
            hist = target.config.get('history') or []
            n = len(_history(parent))
            if hist[n].get('created_by') != created_by:
                continue
            if n == len(hist) - 1:
                return target.id
            if config is None:
                config = (parent.config.get('config') if parent else None) or {}
            return self._restore(parent, target, n, container_config, config)
        return None

    def _is_ancestor(self, image_id, of_id):
        seen = set()
        current_id = of_id
        while current_id and current_id not in seen:
            if current_id == image_id:
                return True
            seen.add(current_id)
            try:
                current_id = self.images.resolve(current_id).parent
            except errors.NotFound:
                return False
        return False

    def _restore(self, parent, target, n, container_config, config):
        """A new child of ``parent`` made of ``target``'s layers and history
        up to entry ``n``: the step as the source image recorded it."""
        hist = list(target.config.get('history') or [])[:n + 1]
        nlayers = sum(1 for h in hist if not h.get('empty_layer'))
        if nlayers > len(target.diff_ids):
            return None   # an inconsistent source image: no hit
        layers = [dict(digest=l['digest'], media_type=l['media_type'])
                  for l in target.record['layers'][:nlayers]]
        image_cfg = {
            'architecture': target.config.get('architecture') or images_mod.host_arch(),
            'os': target.config.get('os') or 'linux',
            'config': images_mod.full_config(config),
            'container_config': images_mod.full_config(container_config),
            'created': hist[-1].get('created') or target.config.get('created'),
            'history': hist,
            'rootfs': {'type': 'layers', 'diff_ids': list(target.diff_ids[:nlayers])},
        }
        author = (parent.config.get('author') if parent else None) or None
        if author:
            image_cfg['author'] = author
        image_id, _ = self.images.create_image(
            images_mod.dump_config(image_cfg), layers,
            parent=parent.id if parent else None)
        return image_id


def _history(img):
    return (img.config.get('history') or []) if img else []


def _valid_parent(target, parent):
    """Docker's isValidParent: the parent's history and layers are a
    strict prefix of the target's."""
    thist = _history(target)
    if not thist:
        return False
    phist = _history(parent)
    if parent is None or (not phist and not parent.diff_ids):
        return True
    if len(phist) >= len(thist):
        return False
    if len(parent.diff_ids) > len(target.diff_ids):
        return False
    if any(a != b for a, b in zip(phist, thist)):
        return False
    return all(a == b for a, b in zip(parent.diff_ids, target.diff_ids))
