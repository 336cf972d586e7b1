"""Network records: ``ROOT/networks/<id>.json``, Docker-shaped.

Keys starting with ``_`` are private (the bridge device, the CNI data) and
never shown by the API.
"""

import os
import re
import threading

from engine import errors
from engine import util

_ID = re.compile(r'^[0-9a-f]{64}$')
NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')


class NoSuchNetwork(errors.NotFound):
    def __init__(self, ref):
        super().__init__('network %s not found' % ref)


class NetworkStore:
    def __init__(self, root):
        self.dir = util.makedirs(os.path.join(root, 'networks'), 0o700)
        self._lock = threading.RLock()
        self._by_id = {}

    def load(self):
        with self._lock:
            self._by_id = {}
            for fn in os.listdir(self.dir):
                if fn.endswith('.json') and _ID.match(fn[:-5]):
                    rec = util.read_json(os.path.join(self.dir, fn))
                    if rec:
                        self._by_id[rec['Id']] = rec

    def list(self):
        with self._lock:
            return sorted(self._by_id.values(), key=lambda n: n['Created'])

    def save(self, rec):
        with self._lock:
            util.atomic_write_json(os.path.join(self.dir, rec['Id'] + '.json'), rec, mode=0o600)
            self._by_id[rec['Id']] = rec

    def delete(self, rec):
        with self._lock:
            try:
                os.unlink(os.path.join(self.dir, rec['Id'] + '.json'))
            except FileNotFoundError:
                pass
            self._by_id.pop(rec['Id'], None)

    def by_name(self, name):
        with self._lock:
            for rec in self._by_id.values():
                if rec['Name'] == name:
                    return rec
        return None

    def get(self, ref):
        """By full id, then exact name, then unique id prefix (Docker's order)."""
        if not isinstance(ref, str) or not ref:
            raise NoSuchNetwork(ref)
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            rec = self.by_name(ref)
            if rec:
                return rec
            matches = [r for i, r in self._by_id.items() if i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise errors.InvalidArgument('network %s is ambiguous (%d matches found based on ID '
                                         'prefix)' % (ref, len(matches)))
        raise NoSuchNetwork(ref)
