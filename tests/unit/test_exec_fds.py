"""engine.runtime.execs.ExecProcess and engine.stdio.pump_fds: each fd of an
exec is closed exactly once, by its one owner.  A second close of a number
the engine has reused meanwhile closes someone else's file (it broke a
container start whose spec FIFO got the number); these tests reuse the
number on purpose and check it survives."""

import os
import socket
import tempfile
import threading
import unittest

from engine import stdio
from engine.runtime import execs


class _Popen:
    pid = 1

    def poll(self):
        return 0


class _Client:
    """A hijacked client: a socketpair whose far end the test drives."""

    def __init__(self):
        self.sock, self.peer = socket.socketpair()

    def read(self, n):
        return self.sock.recv(n)

    def write(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


class ExecFdsTest(unittest.TestCase):

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix='execfds')

    def _proc(self, tty=False):
        if tty:
            master, slave = os.openpty()
            self.addCleanup(os.close, slave)
            return execs.ExecProcess(_Popen(), self.workdir, True, master=master)
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        self.addCleanup(os.close, in_r)
        self.in_r, self.out_w = in_r, out_w
        self.addCleanup(lambda: os.close(self.out_w))
        return execs.ExecProcess(_Popen(), self.workdir, False, stdin=in_w, stdout=out_r)

    def test_stdin_taken_by_the_relay_is_not_closed_again_by_close(self):
        proc = self._proc()
        fd = proc.take_stdin()
        self.assertIsNone(proc.stdin)
        os.close(fd)  # the relay's close when the client half-closes
        reused = os.open(os.devnull, os.O_RDONLY)  # the number comes back
        try:
            self.assertEqual(fd, reused)
            proc.close()
            os.fstat(reused)  # still open: close() left it alone
        finally:
            os.close(reused)

    def test_the_tty_relay_gets_its_own_copy_of_the_master(self):
        proc = self._proc(tty=True)
        fd = proc.take_stdin()
        self.assertNotEqual(fd, proc.master)
        master = proc.master
        proc.close()
        self.assertRaises(OSError, os.fstat, master)
        os.fstat(fd)  # the relay's copy outlives close() until the relay closes it
        os.close(fd)

    def test_pump_fds_gives_eof_to_the_process_and_closes_stdin_once(self):
        proc = self._proc()
        client = _Client()
        self.addCleanup(client.peer.close)
        self.addCleanup(client.close)
        pump = threading.Thread(target=stdio.pump_fds, daemon=True, args=(
            client, False, {proc.stdout: stdio.STDOUT}, proc.take_stdin()))
        pump.start()
        client.peer.sendall(b'hello')
        client.peer.shutdown(socket.SHUT_WR)  # the CLI's stdin reached EOF
        data = b''
        while True:  # the process reads its input to the end
            chunk = os.read(self.in_r, 100)
            if not chunk:
                break
            data += chunk
        self.assertEqual(b'hello', data)
        os.write(self.out_w, b'out')
        os.close(self.out_w)  # the process exits
        self.out_w = os.open(os.devnull, os.O_RDONLY)  # for the cleanup
        pump.join(5)
        self.assertFalse(pump.is_alive())
        self.assertEqual(stdio.frame(stdio.STDOUT, b'out'), client.peer.recv(100))
        reused = os.open(os.devnull, os.O_RDONLY)
        try:
            proc.close()
            os.fstat(reused)  # whatever number it got, close() did not touch it
        finally:
            os.close(reused)

if __name__ == '__main__':
    unittest.main()
