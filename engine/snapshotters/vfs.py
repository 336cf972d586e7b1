"""The vfs snapshotter: every snapshot is a full copy of its parent.

Slow and disk-hungry, but needs nothing from the kernel beyond bind
mounts, so it works where overlayfs does not (nested in overlayfs, odd
filesystems).  Copies use reflinks where the filesystem offers them.
"""

import os
import subprocess

from engine import archive
from engine import errors
from engine.snapshotters import local


def _copy_tree(src, dst):
    """cp -a: owners, modes, times, hardlinks, xattrs, devices."""
    proc = subprocess.run(['cp', '-a', '--reflink=auto', '--', src, dst],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise errors.EngineError('copying snapshot %s failed: %s'
                                 % (src, proc.stderr.strip()))


class VfsSnapshotter(local.LocalSnapshotter):
    name = 'vfs'

    def _copy_parent(self, tmp, parent):
        if parent is None:
            return self._new_fs(tmp, None)
        with self._lock:
            src = self._fs(parent)
        fs = os.path.join(tmp, 'fs')
        _copy_tree(src, fs)
        return fs

    def _fill_layer(self, tmp, parent, stream, max_size):
        fs = self._copy_parent(tmp, parent)
        return archive.apply_tar(stream, fs, whiteouts='delete',
                                 max_size=max_size)

    def _fill_active(self, tmp, parent):
        self._copy_parent(tmp, parent)

    def mount(self, key, target):
        with self._lock:
            rec = self._record(key)
            src = self._fs(key)
        opts = ['--bind']
        if rec['kind'] == local.COMMITTED:
            opts += ['-o', 'ro']
        local.run_mount(opts + [src, os.path.abspath(target)])

    def diff(self, key, out):
        with self._lock:
            rec = self._record(key)
            own = self._fs(key)
            lower = self._fs(rec['parent']) if rec['parent'] \
                else self.empty_dir
        return archive.diff_trees(lower, own, out)

    def change_dirs(self, key):
        """(own dir, image's layers, own dir is a full copy) for docker
        diff: both are whole copies, compared entry by entry."""
        with self._lock:
            rec = self._record(key)
            own = self._fs(key)
            lower = self._fs(rec['parent']) if rec['parent'] else self.empty_dir
        return own, [lower], True
