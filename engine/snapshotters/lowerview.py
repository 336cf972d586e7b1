"""The image's filesystem as its layers merge, read from the layer
directories themselves: what overlay shows below a container's upper dir.

Used where the engine needs the lower view without a mount: applying a
layer (hardlink targets in lower layers) and ``docker diff``.
"""

import os
import stat

from engine import archive


def is_whiteout(st):
    """An overlay whiteout: a 0/0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path):
    try:
        return os.getxattr(path, archive.OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b'y'
    except OSError:
        return False


def lstat_or_none(path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class LowerView(object):
    """The image's filesystem as its layers merge (top layer first),
    honouring overlay whiteouts and opaque directories.  One layer that is
    a full copy (vfs) works the same way."""

    def __init__(self, layers):
        self.layers = list(layers)

    @staticmethod
    def _in_layer(layer, parts):
        """(path, stop): the path if this layer has it; stop when this
        layer hides the name from the layers below."""
        path = layer
        hidden = is_opaque(layer)
        for i, comp in enumerate(parts):
            path = os.path.join(path, comp)
            st = lstat_or_none(path)
            if st is None:
                return None, hidden
            if is_whiteout(st):
                return None, True
            if i == len(parts) - 1:
                return path, True
            if not stat.S_ISDIR(st.st_mode):
                return None, True
            hidden = hidden or is_opaque(path)
        return None, hidden

    def find(self, rel):
        """Host path of ``rel`` ('/etc/passwd') in the merged view, or None."""
        parts = [p for p in rel.split('/') if p]
        if not parts:
            return None
        for layer in self.layers:
            found, stop = self._in_layer(layer, parts)
            if found is not None or stop:
                return found
        return None

    def children(self, rel):
        """Names in directory ``rel`` of the merged view."""
        parts = [p for p in rel.split('/') if p]
        names, hidden = set(), set()
        for layer in self.layers:
            if parts:
                found, stop = self._in_layer(layer, parts)
            else:
                found, stop = layer, False
            if found is None:
                if stop:
                    break
                continue
            st = lstat_or_none(found)
            if st is None or not stat.S_ISDIR(st.st_mode):
                break
            try:
                entries = os.listdir(found)
            except OSError:
                entries = []
            for name in entries:
                if name in hidden or name in names:
                    continue
                cst = lstat_or_none(os.path.join(found, name))
                if cst is not None and is_whiteout(cst):
                    hidden.add(name)
                else:
                    names.add(name)
            if is_opaque(found):
                break
        return names

    __call__ = find
