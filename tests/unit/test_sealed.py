"""engine/runtime/sealed.py: the sealed in-memory copy runc runs from."""

import errno
import fcntl
import logging
import os
import shutil

import pytest

from engine.runtime import sealed


class FakeRuntime:
    def __init__(self, path):
        self.path = path
        self.exec_path = path


def test_the_copy_holds_the_binary_and_all_four_seals(tmp_path):
    src = tmp_path / 'bin'
    src.write_bytes(os.urandom(300000))
    fd = sealed.sealed_copy(str(src))
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) == sealed.SEALS
        with open(sealed.fd_path(fd), 'rb') as f:
            assert f.read() == src.read_bytes()
        # Nothing can change it: not a write, not a resize, not another seal.
        with pytest.raises(PermissionError):
            os.pwrite(fd, b'x', 0)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 10)
        with pytest.raises(PermissionError):
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, 0x0010)  # F_SEAL_FUTURE_WRITE
        # Not even through a new writable open of its /proc path.
        wfd = os.open(sealed.fd_path(fd), os.O_WRONLY)
        try:
            with pytest.raises(OSError) as exc:
                os.write(wfd, b'x')
            assert exc.value.errno == errno.EPERM
        finally:
            os.close(wfd)
        assert os.fstat(fd).st_size == 300000
    finally:
        os.close(fd)


def test_the_copy_is_not_inherited_by_children(tmp_path):
    src = tmp_path / 'bin'
    src.write_bytes(b'x' * 10)
    fd = sealed.sealed_copy(str(src))
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)


def test_a_missing_binary_raises(tmp_path):
    with pytest.raises(OSError):
        sealed.sealed_copy(str(tmp_path / 'none'))


def test_the_runtime_runs_from_the_copy(tmp_path):
    true = shutil.which('true')
    rt = FakeRuntime(true)
    fd = sealed.run_from_sealed_copy(rt)
    try:
        assert fd is not None
        assert rt.path == true  # what is reported stays the real binary
        assert rt.exec_path == '/proc/%d/fd/%d' % (os.getpid(), fd)
        assert os.readlink(rt.exec_path).startswith('/memfd:novadocker:true')
    finally:
        os.close(fd)


def test_a_copy_that_does_not_run_leaves_the_runtime_alone(tmp_path, caplog):
    src = tmp_path / 'notabinary'
    src.write_bytes(b'\x00\x01 not an executable format\n')
    src.chmod(0o755)
    caplog.set_level(logging.INFO)
    rt = FakeRuntime(str(src))
    before = set(os.listdir('/proc/self/fd'))
    assert sealed.run_from_sealed_copy(rt) is None
    assert rt.exec_path == str(src)
    assert 'its sealed copy does not run' in caplog.text
    # The copy that did not run was closed.
    assert set(os.listdir('/proc/self/fd')) <= before


def test_an_unreadable_binary_leaves_the_runtime_alone(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rt = FakeRuntime(str(tmp_path / 'missing'))
    assert sealed.run_from_sealed_copy(rt) is None
    assert rt.exec_path == str(tmp_path / 'missing')
    assert 'no sealed copy' in caplog.text


def test_kernels_without_mfd_exec_are_asked_again_without_it(monkeypatch):
    calls = []
    real = os.memfd_create

    def memfd_create(name, flags):
        calls.append(flags)
        if flags & sealed.MFD_EXEC:
            raise OSError(errno.EINVAL, 'Invalid argument')
        return real(name, flags)

    monkeypatch.setattr(os, 'memfd_create', memfd_create)
    fd = sealed._memfd('t')
    os.close(fd)
    assert calls == [sealed.MFD_CLOEXEC | sealed.MFD_ALLOW_SEALING | sealed.MFD_EXEC,
                     sealed.MFD_CLOEXEC | sealed.MFD_ALLOW_SEALING]
