"""Resolve a path inside a root directory as a chroot would.

Image and container filesystems, build contexts and COPY --from sources are
hostile trees: a symlink in them may point anywhere.  ``resolve`` walks a
path one component at a time on the host, as the kernel would inside a
chroot at ``root`` (moby's FollowSymlinkInScope): '..' never climbs above
the root, an absolute symlink target restarts from the root, a relative one
continues from the link's directory, and more than 40 links is a loop
(Linux's MAXSYMLINKS).  The returned host path is free of symlinks (except
the last component when ``follow_last`` is false), so it can be used without
the kernel following anything out of the root -- provided nobody changes
the tree meanwhile: callers use it on trees only the engine writes to
(private snapshots, extracted contexts) or re-check with O_NOFOLLOW.
"""

import os
import stat

MAX_SYMLINKS = 40


class ChrootError(Exception):
    """A path could not be resolved inside the root; ``path`` is the path
    asked for (as seen inside the root)."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


class TooManyLinks(ChrootError):
    def __init__(self, path):
        super().__init__('%s: too many levels of symbolic links' % path, path)


class NotADirectory(ChrootError):
    """A component on the way is neither a directory nor a symlink;
    ``component`` is where that is, as seen inside the root."""

    def __init__(self, path, component):
        super().__init__('%s is not a directory' % component, path)
        self.component = component


class NotFound(ChrootError):
    def __init__(self, path):
        super().__init__('%s: no such file or directory' % path, path)


def _split(path):
    return [p for p in path.split('/') if p not in ('', '.')]


def resolve(root, path, follow_last=True, create_dirs=False,
            must_exist=False, dir_owner=None):
    """The host path of ``path`` (absolute or relative to the root, both
    mean the same) inside ``root``.

    ``follow_last``: follow a symlink in the last component too (else the
    link itself is returned).  ``create_dirs``: create every missing
    component as a directory, root-owned 0755 whatever the umask (Docker's
    rule for COPY destinations), and raise NotADirectory when a component
    is something else; ``dir_owner`` (uid, gid) owns the directories made
    (COPY --chown).  ``must_exist``: raise NotFound when a component is
    missing (or is not a directory while more follow).  Otherwise a
    missing path is returned as it would be named, without checking the
    rest.  TooManyLinks after 40 symlinks.
    """
    parts = _split(path)
    done = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == '..':
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, name)
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            if create_dirs:
                os.mkdir(host, 0o755)
                if dir_owner is not None:
                    os.lchown(host, *dir_owner)
                os.chmod(host, 0o755)
                done.append(name)
                continue
            if must_exist:
                raise NotFound(path)
            done.append(name)
            continue
        if stat.S_ISLNK(st.st_mode) and (parts or follow_last):
            links += 1
            if links > MAX_SYMLINKS:
                raise TooManyLinks(path)
            target = os.readlink(host)
            if target.startswith('/'):
                done = []
            parts[:0] = _split(target)
            continue
        if create_dirs and not stat.S_ISDIR(st.st_mode):
            raise NotADirectory(path, '/' + '/'.join(done + [name]))
        if must_exist and parts and not stat.S_ISDIR(st.st_mode):
            raise NotFound(path)
        done.append(name)
    return os.path.join(root, *done)


def exists(root, path):
    """The resolved host path of ``path`` inside ``root``, or None when it
    does not exist or loops."""
    try:
        return resolve(root, path, must_exist=True)
    except (NotFound, TooManyLinks):
        return None
