"""Disk usage and pruning: `docker system df`, `docker * prune`.

Sizes follow Docker: an image's Size is the sum of its layers, SharedSize
the part of it other images use too; a container's SizeRw is the bytes of
the files it added or changed (``docker diff``), SizeRootFs that plus its
image.  Measuring a container walks its layer, so results are cached: a
stopped container's layer does not change, a running one is measured again
after ``RUNNING_SIZE_TTL`` seconds.
"""

import threading
import time
import weakref

from oslo_log import log as logging

from engine import containers as containers_mod
from engine import errors
from engine import events as events_mod
from engine import util

LOG = logging.getLogger(__name__)

RUNNING_SIZE_TTL = 5.0
DF_TYPES = ('container', 'image', 'volume', 'build-cache')
CONTAINER_PRUNE_FILTERS = frozenset(('label', 'label!', 'until'))
IMAGE_PRUNE_FILTERS = frozenset(('dangling', 'label', 'label!', 'until'))


class SizeCache(object):
    """SizeRw per container, measured at most once per state (stopped) or
    per TTL (running); one measurement at a time per container.  Entries
    go with their Container objects (weak keys): nothing to clean up."""

    def __init__(self, snapshotter, ttl=RUNNING_SIZE_TTL):
        self.snapshotter = snapshotter
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries = weakref.WeakKeyDictionary()  # Container -> (stamp, at, size)
        self._locks = weakref.WeakKeyDictionary()

    @staticmethod
    def _stamp(c):
        st = c.state
        return (st['Status'], st.get('StartedAt'), st.get('FinishedAt'))

    def size_rw(self, c):
        with self._lock:
            lock = self._locks.setdefault(c, threading.Lock())
        with lock:
            stamp = self._stamp(c)
            with self._lock:
                entry = self._entries.get(c)
            if entry is not None and entry[0] == stamp and (
                    not c.is_running() or time.monotonic() - entry[1] < self.ttl):
                return entry[2]
            try:
                size = self.snapshotter.changes_size(c.id)
            except errors.NotFound:
                size = 0  # removed meanwhile
            with self._lock:
                self._entries[c] = (stamp, time.monotonic(), size)
            return size


class Housekeeping(object):
    def __init__(self, engine):
        self.engine = engine
        self.sizes = SizeCache(engine.snapshotter)

    # -- sizes -----------------------------------------------------------------

    def _image_sizes(self):
        return {img.id: img.size for img in self.engine.images.images()}

    def container_sizes(self, c, image_sizes=None):
        """{"SizeRw", "SizeRootFs"} of one container."""
        size_rw = self.sizes.size_rw(c)
        if image_sizes is None:
            try:
                image_size = self.engine.images.resolve(c.record['Image']).size
            except errors.NotFound:
                image_size = 0
        else:
            image_size = image_sizes.get(c.record['Image'], 0)
        return {'SizeRw': size_rw, 'SizeRootFs': size_rw + image_size}

    def summary_sizes(self, c, image_sizes=None):
        """The size fields of a container list entry (Docker omits a zero)."""
        sizes = self.container_sizes(c, image_sizes)
        return {k: v for k, v in sizes.items() if v}

    # -- df ----------------------------------------------------------------------

    def disk_usage(self, types=None, container_view=None):
        """GET /system/df.  ``container_view(c)`` renders a container list
        entry (the API's view); ``types`` limits what is computed."""
        types = set(types or DF_TYPES)
        bad = types - set(DF_TYPES)
        if bad:
            raise errors.InvalidArgument('unknown object type: %s' % sorted(bad)[0])
        engine = self.engine
        containers = engine.containers.list()
        out = {'LayersSize': 0, 'Images': None, 'Containers': None, 'Volumes': None,
               'BuildCache': None, 'BuilderSize': 0}
        images = engine.images.images()
        image_sizes = {img.id: img.size for img in images}
        if 'image' in types:
            out['LayersSize'], out['Images'] = self._image_usage(images, containers)
        if 'container' in types:
            entries = []
            for c in sorted(containers, key=lambda c: c.record['Created'], reverse=True):
                entry = container_view(c) if container_view else {'Id': c.id}
                entry.update(self.summary_sizes(c, image_sizes))
                entries.append(entry)
            out['Containers'] = entries
        if 'volume' in types:
            volumes = getattr(engine, 'volumes', None)
            out['Volumes'] = volumes.df() if volumes is not None else []
        if 'build-cache' in types:
            out['BuildCache'] = []
        return out

    def _image_usage(self, images, containers):
        """(LayersSize, Images): each layer counted once overall; an image's
        SharedSize is its layers that other images use too."""
        layer_size = {}
        users = {}
        for img in images:
            for chain, layer in zip(img.chain_ids, img.record['layers']):
                layer_size[chain] = layer.get('usage', 0) or 0
                users.setdefault(chain, set()).add(img.id)
        per_image = {}
        for c in containers:
            per_image[c.record['Image']] = per_image.get(c.record['Image'], 0) + 1
        summaries = []
        for img in sorted(images, key=lambda i: i.created, reverse=True):
            shared = sum(layer_size[ch] for ch in set(img.chain_ids) if len(users[ch]) > 1)
            labels = (img.config.get('config') or {}).get('Labels') or {}
            summaries.append({
                'Id': img.id,
                'ParentId': img.parent,
                'RepoTags': img.repo_tags,
                'RepoDigests': img.repo_digests,
                'Created': int(img.created),
                'Size': img.size,
                'SharedSize': shared,
                'VirtualSize': img.size,
                'Labels': labels,
                'Containers': per_image.get(img.id, 0),
            })
        return sum(layer_size.values()), summaries

    # -- prune ---------------------------------------------------------------------

    def prune_containers(self, filters):
        """POST /containers/prune: stopped containers matching the filters."""
        _check_filters(filters, CONTAINER_PRUNE_FILTERS)
        until = _until(filters)
        engine = self.engine
        deleted, reclaimed = [], 0
        for c in engine.containers.list():
            if c.is_running() or c.status == containers_mod.REMOVING:
                continue
            if until is not None and util.parse_rfc3339_ns(c.record['Created']) > until:
                continue
            if not _labels_match(filters, c.config.get('Labels') or {}):
                continue
            try:
                size = self.sizes.size_rw(c)
                engine.containers.remove(c.id)
            except errors.NotFound:
                continue
            except errors.EngineError as exc:
                # Started again or being exported meanwhile: not prunable now.
                LOG.info('prune: keeping container %s: %s', c.id[:12], exc)
                continue
            if engine.execs is not None:
                engine.execs.forget_container(c.id)
            deleted.append(c.id)
            reclaimed += size
        engine.events.publish('container', 'prune', '', {'reclaimed': str(reclaimed)})
        return {'ContainersDeleted': deleted or None, 'SpaceReclaimed': reclaimed}

    def prune_images(self, filters):
        """POST /images/prune: dangling images, or with dangling=false every
        image no container uses."""
        _check_filters(filters, IMAGE_PRUNE_FILTERS)
        dangling_only = True
        values = filters.get('dangling') or []
        if values:
            lowered = {v.lower() for v in values}
            if lowered <= {'false', '0'}:
                dangling_only = False
            elif not lowered <= {'true', '1'}:
                raise errors.InvalidArgument("invalid filter 'dangling=%s'" % ','.join(values))
        until = _until(filters)
        engine = self.engine
        store = engine.images
        images = store.images()
        children = {}
        layer_size = {}
        for img in images:
            if img.parent:
                children.setdefault(img.parent, []).append(img.id)
            for chain, layer in zip(img.chain_ids, img.record['layers']):
                layer_size[chain] = layer.get('usage', 0) or 0
        records = []
        for img in images:
            refs = img.repo_tags + img.repo_digests
            if children.get(img.id) and (dangling_only or not refs):
                continue  # a parent of other images: goes with its last child
            if dangling_only and img.repo_tags:
                continue
            if until is not None and img.created * 1e9 > until:
                continue
            labels = (img.config.get('config') or {}).get('Labels') or {}
            if not _labels_match(filters, labels):
                continue
            if engine.containers.image_in_use(img.id) is not None:
                continue  # used by a container, running or not: never pruned
            # As Docker: a named image goes reference by reference (its last
            # one deletes it), an unnamed one by ID.
            for target in refs or [img.id]:
                try:
                    records += store.remove(target, force=False, noprune=False,
                                            in_use=engine.containers.image_in_use)
                except (errors.Conflict, errors.NotFound) as exc:
                    LOG.info('prune: keeping image %s: %s', img.short_id, exc)
        reclaimed = sum(layer_size.get(r['Deleted'], 0) for r in records if 'Deleted' in r)
        engine.events.publish('image', 'prune', '', {'reclaimed': str(reclaimed)})
        return {'ImagesDeleted': records or None, 'SpaceReclaimed': reclaimed}

    @staticmethod
    def prune_build_cache(filters):
        """POST /build/prune: this engine has no build cache yet."""
        return {'CachesDeleted': None, 'SpaceReclaimed': 0}

    def prune_networks(self, filters):
        """POST /networks/prune: user-defined networks without running containers."""
        _check_filters(filters, frozenset(('label', 'label!', 'until')))
        until = _until(filters)
        return self.engine.networks.prune(filters, until_ns=until)


def _check_filters(filters, accepted):
    for key in filters:
        if key not in accepted:
            raise errors.InvalidArgument("invalid filter '%s'" % key)


def _until(filters):
    """The ``until`` filter as epoch nanoseconds (None when absent)."""
    values = filters.get('until') or []
    if not values:
        return None
    if len(values) > 1:
        raise errors.InvalidArgument('more than one until filter specified')
    try:
        return events_mod.parse_time(values[0])
    except errors.InvalidArgument:
        raise errors.InvalidArgument('failed to parse value as time or duration: "%s"'
                                     % values[0])


def _kv_all_match(wanted, labels):
    """Docker's MatchKVList: every ``key`` or ``key=value`` holds."""
    for value in wanted:
        k, eq, v = value.partition('=')
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


def _labels_match(filters, labels):
    """Docker's prune matchLabels: ``label`` all match, and not all of
    ``label!`` match."""
    if filters.get('label') and not _kv_all_match(filters['label'], labels):
        return False
    if filters.get('label!') and _kv_all_match(filters['label!'], labels):
        return False
    return True
