"""`docker top` and `docker diff`: looking into a container from outside.

``top`` runs the host's ``ps`` (no shell, arguments split on spaces as
Docker does) and keeps the rows whose PID belongs to the container, as the
runtime lists them.  ``changes`` lists what a container changed in its
root filesystem against its image, with Docker's kinds and rules.
"""

import os
import re
import shutil
import stat
import subprocess

from oslo_log import log as logging

from engine import errors
from engine.snapshotters import lowerview

LOG = logging.getLogger(__name__)

CHANGE_MODIFY, CHANGE_ADD, CHANGE_DELETE = 0, 1, 2

# procps' ps, the one Docker runs; found once, not through the request's PATH.
PS_PATH = shutil.which('ps') or '/bin/ps'
PS_TIMEOUT = 30
# Bounds on what a client may hand to ps: ps arguments are short flags and
# format lists; anything longer is abuse.
MAX_PS_ARGS_LENGTH = 1024
MAX_PS_OUTPUT = 16 * 1024 * 1024

# What Docker's init layer holds below every container's own layer: mount
# points and stubs that exist whatever the image has.  Our runtime creates
# the missing ones in the container's layer, where Docker's diff (taken
# against the init layer) never sees them.
INIT_LAYER_PATHS = frozenset((
    '/dev/pts', '/dev/shm', '/proc', '/sys', '/.dockerenv', '/etc/resolv.conf',
    '/etc/hosts', '/etc/hostname', '/dev/console', '/etc/mtab'))
# The directories the init layer creates to hold them.
INIT_LAYER_DIRS = frozenset(('/dev', '/etc'))

_PS_PID_RENAME = re.compile(r'\s+([^\s]*)=\s*(PID[^\s]*)')


# -- top -------------------------------------------------------------------------

def validate_ps_args(ps_args):
    """Docker's check: the PID column may not be renamed (``-o user=PID``
    would make another column pass for it)."""
    if len(ps_args) > MAX_PS_ARGS_LENGTH:
        raise errors.InvalidArgument('ps_args is too long (%d characters, at most %d)'
                                     % (len(ps_args), MAX_PS_ARGS_LENGTH))
    if '\0' in ps_args:
        raise errors.InvalidArgument('ps_args must not contain NUL characters')
    for key, value in _PS_PID_RENAME.findall(ps_args):
        if key != 'pid':
            raise errors.InvalidArgument('specifying "%s=%s" is not allowed' % (key, value))


def _fields(line):
    """strings.Fields over ASCII white space only, as Docker splits."""
    return [f for f in re.split(r'[\t\n\f\r ]+', line) if f]


def parse_ps_output(output, pids):
    """Docker's parsePSOutput: the header gives Titles; rows are kept when
    their PID is the container's (thread rows, PID "-", follow their
    process)."""
    lines = output.split('\n')
    titles = _fields(lines[0]) if lines else []
    try:
        pid_index = titles.index('PID')
    except ValueError:
        raise errors.InvalidArgument("Couldn't find PID field in ps output")
    wanted = set(pids)
    processes = []
    previous_kept = False
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == '-':
            if previous_kept:
                processes.append(_row(fields, len(titles)))
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise errors.RuntimeFailure("Unexpected pid '%s'" % fields[pid_index])
        previous_kept = pid in wanted
        if previous_kept:
            processes.append(_row(fields, len(titles)))
    return {'Titles': titles, 'Processes': processes}


def _row(fields, ntitles):
    # The last column (the command) may hold spaces: merge what overhangs.
    return fields[:ntitles - 1] + [' '.join(fields[ntitles - 1:])]


def _run_ps(args):
    try:
        proc = subprocess.run([PS_PATH] + args, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=PS_TIMEOUT,
                              env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL': 'C'})
    except subprocess.TimeoutExpired:
        raise errors.RuntimeFailure('ps did not finish within %d seconds' % PS_TIMEOUT)
    except OSError as exc:
        raise errors.RuntimeFailure('cannot run ps: %s' % exc)
    return proc


def top(pids, ps_args=''):
    """{"Titles", "Processes"} of ``ps ps_args`` restricted to ``pids``."""
    ps_args = ps_args or '-ef'
    validate_ps_args(ps_args)
    # Docker splits on single spaces and hands ps empty strings for runs of
    # them; ps rejects an empty argument, so those are dropped.
    args = [a for a in ps_args.split(' ') if a]
    pid_arg = '-q' + ','.join(str(p) for p in pids)
    proc = _run_ps(args + [pid_arg]) if pids else None
    if proc is None or proc.returncode != 0:
        # Some ps options (f, for one) cannot go with -q: list everything
        # and filter, as Docker does.
        proc = _run_ps(args)
        if proc.returncode != 0:
            first = proc.stderr.decode('utf-8', 'replace').strip().split('\n')[0]
            # ps refuses what the client asked for: the request is at fault.
            raise errors.InvalidArgument('ps: %s' % (first or 'exit status %d' % proc.returncode))
    if len(proc.stdout) > MAX_PS_OUTPUT:
        raise errors.RuntimeFailure('ps printed more than %d bytes' % MAX_PS_OUTPUT)
    return parse_ps_output(proc.stdout.decode('utf-8', 'replace'), pids)


# -- changes ---------------------------------------------------------------------

def _capability(path):
    try:
        return os.getxattr(path, 'security.capability', follow_symlinks=False)
    except OSError:
        return None


def _same_time(a_ns, b_ns):
    # Docker's sameFsTimeSpec: tar loses sub-second times, so a zero
    # fraction on either side matches any fraction of the same second.
    a_s, a_f = divmod(a_ns, 1_000_000_000)
    b_s, b_f = divmod(b_ns, 1_000_000_000)
    return a_s == b_s and (a_f == b_f or a_f == 0 or b_f == 0)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def changes(upper, lower, full_copy=False, stats=None):
    """Docker's change list for a container layer.

    ``upper`` is the container's own directory: an overlay upper dir
    (whiteouts mark deletions, unchanged files are absent), or with
    ``full_copy`` a whole copy of the filesystem (vfs), compared entry by
    entry.  ``lower`` is the LowerView of the image.  Returns
    ``[{"Path", "Kind"}]``, parents before their contents, names sorted.
    ``stats``, a dict, receives the lstat result of every added or changed
    entry by path (for changes_size).

    A running container rewrites its layer meanwhile: the walk goes through
    directory file descriptors opened without following symlinks, so a
    directory swapped for a symlink cannot lead it out of the layer.
    """
    out = []
    try:
        fd = os.open(upper, _DIR_FLAGS)
    except OSError as exc:
        raise errors.NotFound('the layer of the container is gone: %s' % exc)
    try:
        _walk_dir(fd, '', lower, True, full_copy, out, stats if stats is not None else {})
    finally:
        os.close(fd)
    return out


def _stat_at(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _opaque_fd(fd):
    try:
        return os.getxattr(fd, 'trusted.overlay.opaque') == b'y'
    except OSError:
        return False


def _capability_at(dir_fd, name):
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.getxattr(fd, 'security.capability')
    except OSError:
        return None
    finally:
        os.close(fd)


def _stat_different(old, new, old_path, dir_fd, name):
    """Docker's statDifferent plus the file capability comparison."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != \
            (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    if not stat.S_ISDIR(old.st_mode):
        if not _same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size:
            return True
    if stat.S_ISREG(new.st_mode):
        return _capability(old_path) != _capability_at(dir_fd, name)
    return False


def _walk_into(dir_fd, name, rel, lower, lower_is_dir, full_copy, out, stats):
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False  # replaced or removed meanwhile
    try:
        return _walk_dir(fd, rel, lower, lower_is_dir, full_copy, out, stats)
    finally:
        os.close(fd)


def _walk_dir(dir_fd, rel, lower, lower_is_dir, full_copy, out, stats):
    """Append the changes below directory ``rel``; return whether any."""
    try:
        upper_names = set(os.listdir(dir_fd))
    except OSError:
        return False
    deleted = set()
    if lower_is_dir and (full_copy or _opaque_fd(dir_fd)):
        # Everything the image had here that the container's directory
        # lacks is gone (a full copy, or an overlay dir made opaque).
        deleted = lower.children(rel) - upper_names
    start = len(out)
    for name in sorted(upper_names | deleted):
        path = rel + '/' + name
        if name in deleted:
            out.append({'Path': path, 'Kind': CHANGE_DELETE})
            continue
        st = _stat_at(dir_fd, name)
        if st is None:
            continue  # gone meanwhile: a running container changes its files
        if not full_copy and lowerview.is_whiteout(st):
            out.append({'Path': path, 'Kind': CHANGE_DELETE})
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        old_path = lower.find(path) if lower_is_dir else None
        old = lowerview.lstat_or_none(old_path) if old_path else None
        if old is None:
            if path in INIT_LAYER_PATHS:
                continue  # a mount point the runtime made: Docker's init layer
            if path in INIT_LAYER_DIRS and is_dir:
                # Docker's init layer has it: shown only when it holds changes.
                mark = len(out)
                if _walk_into(dir_fd, name, path, lower, False, full_copy, out, stats):
                    out.insert(mark, {'Path': path, 'Kind': CHANGE_MODIFY})
                continue
            out.append({'Path': path, 'Kind': CHANGE_ADD})
            stats[path] = st
            if is_dir:
                _walk_into(dir_fd, name, path, lower, False, full_copy, out, stats)
            continue
        changed = _stat_different(old, st, old_path, dir_fd, name)
        if is_dir:
            mark = len(out)
            inner = _walk_into(dir_fd, name, path, lower, stat.S_ISDIR(old.st_mode),
                               full_copy, out, stats)
            if changed or inner:
                out.insert(mark, {'Path': path, 'Kind': CHANGE_MODIFY})
        elif changed:
            out.append({'Path': path, 'Kind': CHANGE_MODIFY})
            stats[path] = st
    return len(out) > start


def changes_size(stats):
    """Docker's ChangesSize: sizes of the added and changed non-directories
    (``stats`` as changes() filled it), each hard-linked inode once."""
    total = 0
    seen = set()
    for st in stats.values():
        if stat.S_ISDIR(st.st_mode):
            continue
        if st.st_nlink > 1:
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
        total += st.st_size
    return total


# -- the container views -------------------------------------------------------------

def container_top(engine, ref, ps_args=''):
    """GET /containers/{id}/top."""
    validate_ps_args(ps_args or '-ef')
    containers = engine.containers
    c = containers.get(ref)
    if not c.is_running():
        raise errors.Conflict('Container %s is not running' % c.id)
    try:
        pids = engine.tasks.pids(c.id)
    except errors.EngineError:
        if not c.is_running():
            raise errors.Conflict('Container %s is not running' % c.id)
        raise
    result = top(pids, ps_args)
    engine.events.publish('container', 'top', c.id, containers._event_attrs(c))
    return result


def container_changes(engine, ref):
    """GET /containers/{id}/changes: running or stopped, the same list."""
    c = engine.containers.get(ref)
    try:
        found = engine.snapshotter.changes(c.id)
    except errors.NotFound:
        raise errors.NoSuchContainer(ref)
    if c.removed:
        raise errors.NoSuchContainer(ref)
    return found

