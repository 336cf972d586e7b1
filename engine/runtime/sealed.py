"""A sealed in-memory copy of the runtime binary, made once per engine.

runc 1.1 defends against CVE-2019-5736 (a container overwriting the host's
runc through ``/proc/self/exe``) by copying its whole binary (about 9 MB)
into a fresh memfd and re-executing itself from it, in every ``runc init``:
once per container start and once per exec.  It skips the copy when it
already runs from a memfd that carries all four write-protecting seals,
since nothing can write to such a file (runc's ``memfd-bind`` tool relies on
the same check).  The engine makes that sealed copy once and runs runc from
it, through ``/proc/<engine pid>/fd/<fd>``: each start then saves the copy,
a second exec and 9 MB of transient memory.

Anything unexpected (no memfd support, a kernel that forbids executable
memfds, a copy that does not run) leaves the runtime on its own path.
"""

import fcntl
import os
import subprocess

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_EXEC = 0x0010  # Linux 6.3+: say so explicitly (older kernels refuse the flag)

# What runc's is_self_cloned() requires, no more and no less.
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def _memfd(name):
    flags = MFD_CLOEXEC | MFD_ALLOW_SEALING
    try:
        return os.memfd_create(name, flags | MFD_EXEC)
    except OSError:
        return os.memfd_create(name, flags)


def sealed_copy(path):
    """An fd of a sealed memfd holding the binary at ``path``; OSError if
    it cannot be made."""
    with open(path, 'rb') as src:
        size = os.fstat(src.fileno()).st_size
        fd = _memfd('novadocker:' + os.path.basename(path))
        try:
            done = 0
            while done < size:
                n = os.sendfile(fd, src.fileno(), done, size - done)
                if n == 0:
                    raise OSError('%s shrank while it was copied' % path)
                done += n
            if os.fstat(fd).st_size != size:
                raise OSError('the copy of %s is not %d bytes' % (path, size))
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
            if fcntl.fcntl(fd, fcntl.F_GET_SEALS) != SEALS:
                raise OSError('the copy of %s did not keep the seals' % path)
        except BaseException:
            os.close(fd)
            raise
    return fd


def fd_path(fd):
    """A path to ``fd`` that other processes (conmon, its runc) can exec."""
    return '/proc/%d/fd/%d' % (os.getpid(), fd)


def run_from_sealed_copy(runtime):
    """Point ``runtime.exec_path`` at a sealed copy of its binary; returns
    the fd (kept open for the engine's life) or None when it stays as it is."""
    try:
        fd = sealed_copy(runtime.path)
    except OSError as exc:
        LOG.info('Running %s from its own file (no sealed copy: %s)', runtime.path, exc)
        return None
    path = fd_path(fd)
    try:
        proc = subprocess.run([path, '--version'], capture_output=True, timeout=10,
                              stdin=subprocess.DEVNULL)
        ok = proc.returncode == 0
        why = proc.stderr.decode(errors='replace').strip() or 'exit status %d' % proc.returncode
    except (OSError, subprocess.SubprocessError) as exc:
        ok, why = False, str(exc)
    if not ok:
        os.close(fd)
        LOG.info('Running %s from its own file (its sealed copy does not run: %s)',
                 runtime.path, why)
        return None
    runtime.exec_path = path
    LOG.info('Running %s from a sealed in-memory copy (%s)', runtime.path, path)
    return fd
