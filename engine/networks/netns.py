"""Persistent network namespaces: one file per container under the exec root.

A namespace is made without forking: a short-lived thread unshares its own
network namespace (namespaces are per thread on Linux), brings its loopback
up (runc does that only for namespaces it creates itself) and bind-mounts
``/proc/thread-self/ns/net`` onto the file.  The mount keeps the namespace
alive after the thread ends, so it outlives the engine: connect, disconnect
and teardown work after an engine restart.
"""

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading

from engine import errors

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_void_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def _loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack('16sH14x', b'lo', 0)
        flags = struct.unpack('16sH14x', fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack('16sH14x', b'lo', flags | _IFF_UP))


def create(path):
    """Make a new network namespace (loopback up) pinned at ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    failure = []

    def work():
        try:
            _check(_libc.unshare(CLONE_NEWNET), 'unshare')
            _loopback_up()
            _check(_libc.mount(b'/proc/thread-self/ns/net', os.fsencode(path), None,
                               MS_BIND, None), 'bind mount of the namespace')
        except BaseException as exc:  # reported in the caller's thread
            failure.append(exc)

    # The thread ends right away, and its namespace change dies with it.
    t = threading.Thread(target=work, name='netns-create')
    t.start()
    t.join()
    if failure:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise errors.RuntimeFailure('cannot create a network namespace at %s: %s'
                                    % (path, failure[0]))
    return path


def is_netns(path):
    """True when ``path`` is a mounted namespace file (not a plain file)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev or \
            _mounted(path)
    except OSError:
        return False


def _mounted(path):
    try:
        with open('/proc/self/mountinfo') as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


def remove(path):
    """Unmount and unlink; idempotent (a gone file is fine)."""
    ret = _libc.umount2(os.fsencode(path), MNT_DETACH)
    if ret != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise errors.RuntimeFailure('cannot unmount the network namespace %s: %s'
                                        % (path, os.strerror(err)))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def list_dir(directory):
    """Names of the namespace files under ``directory``."""
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
