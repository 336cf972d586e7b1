"""The snapshotter interface (modelled on containerd's).

A snapshot is a directory tree identified by a *key*.  *Committed*
snapshots are read-only image layers, keyed by the layer's chain ID; a chain
of them is an image's filesystem.  *Active* snapshots are writable, keyed by
a container ID, and sit on top of a committed parent.

Implementations keep their state under the ``root`` given at construction
and must survive a SIGKILL at any point: a snapshot is visible under its key
only once it is complete.
"""

import abc


class Snapshotter(metaclass=abc.ABCMeta):
    name = None

    def __init__(self, root, **kwargs):
        self.root = root

    @abc.abstractmethod
    def exists(self, key):
        """True when a snapshot (committed or active) has this key."""

    @abc.abstractmethod
    def apply_layer(self, key, parent, stream, max_size=0):
        """Create the committed snapshot ``key`` as ``parent`` plus a layer.

        ``stream`` is a file object of the *uncompressed* layer tar, with
        Docker/OCI whiteouts (``.wh.NAME``, ``.wh..wh..opq``).  Hostile
        entries never write outside the new snapshot: a bad entry raises
        LayerError naming it and nothing is left behind.  ``max_size`` (bytes
        unpacked, 0 = unlimited) bounds the layer.  Returns the number of
        bytes the snapshot occupies.
        """

    @abc.abstractmethod
    def prepare(self, key, parent):
        """Create the writable snapshot ``key`` on top of committed ``parent``
        (None for an empty filesystem)."""

    @abc.abstractmethod
    def mount(self, key, target):
        """Mount the snapshot ``key`` at the existing directory ``target``."""

    @abc.abstractmethod
    def unmount(self, target):
        """Undo ``mount``; a target that is not mounted is not an error."""

    @abc.abstractmethod
    def diff(self, key, out):
        """Write to ``out`` an uncompressed tar of what the active snapshot
        ``key`` changed against its parent, deletions as whiteouts; return
        the bytes of file data in it (what ``apply_layer`` of that tar
        returns)."""

    @abc.abstractmethod
    def remove(self, key):
        """Remove a snapshot.  Removing a missing key is not an error.
        Removing a committed snapshot that still has children raises
        Conflict."""

    @abc.abstractmethod
    def usage(self, key):
        """Bytes the snapshot's own directory occupies (not its parents)."""

    @abc.abstractmethod
    def list(self):
        """Yield ``(key, parent, kind)``, kind being 'committed' or 'active'."""

    def parent(self, key):
        for k, parent, _ in self.list():
            if k == key:
                return parent
        return None
