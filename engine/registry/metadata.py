"""What the engine knows about layers and registries (Docker's "v2 metadata").

For each layer (by diff ID): the compressed blobs that carry it, and in
which registry repositories each blob is known to exist.  Push uses it to
reuse a pulled layer's compressed digest, to HEAD or mount instead of
uploading, and to find the gzip blob it made of a local layer before.
Pull records downloads in progress so that the blob GC at start-up keeps
them for a while: a pull killed half way reuses its finished layers.

One JSON file, written atomically (rename) but not synced: it is a cache
that only saves work.  After a crash it may be lost or cut short; then the
engine starts with an empty one (a layer is compressed again to the same
blob, a registry is asked again what it has).
"""

import os
import threading
import time

from oslo_log import log as logging

from engine import util

LOG = logging.getLogger(__name__)

# A download of a pull that never finished is kept this long for the next.
PENDING_TTL = 24 * 3600
MAX_REPOS_PER_BLOB = 50


class V2Metadata(object):

    def __init__(self, root):
        self.root = util.makedirs(root)
        self.path = os.path.join(root, 'v2metadata.json')
        self._lock = threading.Lock()
        try:
            data = util.read_json(self.path, default={}) or {}
            if not isinstance(data, dict):
                raise ValueError('not a JSON object')
            self._layers = dict(data.get('layers') or {})
            self._pending = dict(data.get('pending') or {})
        except (ValueError, TypeError) as exc:
            LOG.warning('%s is unreadable (%s); starting with empty layer '
                        'metadata', self.path, exc)
            self._layers, self._pending = {}, {}

    def _save(self):
        util.atomic_write_json(self.path, {'layers': self._layers,
                                           'pending': self._pending},
                               sync=False)

    def blobs(self, diff_id):
        """``[{'digest','size','media_type','repos': ['host/path', ...]}]``."""
        with self._lock:
            return [dict(b, repos=list(b.get('repos') or ()))
                    for b in self._layers.get(diff_id, ())]

    def add(self, diff_id, digest, size, media_type, repo=None):
        """Record that ``digest`` carries ``diff_id`` (and lives in repo)."""
        with self._lock:
            entries = self._layers.setdefault(diff_id, [])
            changed = False
            for e in entries:
                if e['digest'] == digest:
                    break
            else:
                e = {'digest': digest, 'size': size, 'media_type': media_type,
                     'repos': []}
                entries.append(e)
                changed = True
            if repo and repo not in e['repos']:
                e['repos'].append(repo)
                del e['repos'][:-MAX_REPOS_PER_BLOB]
                changed = True
            if e.get('size') != size or e.get('media_type') != media_type:
                e['size'], e['media_type'] = size, media_type
                changed = True
            if changed:
                self._save()

    def forget_repo(self, digest, repo):
        with self._lock:
            for entries in self._layers.values():
                for e in entries:
                    if e['digest'] == digest and repo in e['repos']:
                        e['repos'].remove(repo)
                        self._save()
                        return

    def pending(self, digests):
        """Mark blobs a pull downloaded before its image exists."""
        now = time.time()
        with self._lock:
            for d in digests:
                self._pending[d] = now
            self._save()

    def done(self, digests):
        with self._lock:
            for d in digests:
                self._pending.pop(d, None)
            self._save()

    def kept_blobs(self, used_diff_ids):
        """Blobs the GC must keep: compressed forms of layers some image
        uses, and recent downloads of unfinished pulls."""
        now = time.time()
        with self._lock:
            keep = {d for d, t in self._pending.items()
                    if now - t < PENDING_TTL}
            for diff_id, entries in self._layers.items():
                if diff_id in used_diff_ids:
                    keep.update(e['digest'] for e in entries)
        return keep
