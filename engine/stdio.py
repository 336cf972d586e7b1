"""Move a container's stdio between its source and a hijacked API connection.

Without a TTY, Docker multiplexes stdout and stderr on one stream: each
frame is an 8-byte header (stream number, three zero bytes, big-endian
length) and the payload.  With a TTY the stream is raw.
"""

import os
import struct
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

STDIN, STDOUT, STDERR = 0, 1, 2
_STREAM_NUMBERS = {'stdout': STDOUT, 'stderr': STDERR}


def frame(stream, data):
    return struct.pack('>BxxxL', stream, len(data)) + data


class Output:
    """Writes container output to a client, framed unless TTY."""

    def __init__(self, client, tty, stdout=True, stderr=True):
        self._client = client
        self._tty = tty
        self._want = {STDOUT: stdout, STDERR: stderr}
        self._lock = threading.Lock()

    def write(self, stream, data):
        if not data or not self._want.get(stream, False):
            return
        payload = data if self._tty else frame(stream, data)
        with self._lock:
            self._client.write(payload)


def copy_stdin(client, write, close):
    """Copy the client's bytes into ``write`` until the client stops sending.

    Runs in its own thread; ``close`` is called once the client's side ends
    (the CLI half-closes the connection when its stdin reaches EOF).
    """
    def run():
        try:
            while True:
                data = client.read(65536)
                if not data:
                    break
                write(data)
        except OSError as exc:
            LOG.debug('stdin copy ended: %s', exc)
        finally:
            try:
                close()
            except OSError:
                pass
    t = threading.Thread(target=run, name='stdin-copy', daemon=True)
    t.start()
    return t


def pump_attach(conn, client, tty, stdout, stderr, stdin, stdin_once):
    """Relay a conmon attach connection and a hijacked client until output ends."""
    out = Output(client, tty, stdout, stderr)
    if stdin:
        close = conn.close_stdin if stdin_once else (lambda: None)
        copy_stdin(client, conn.send_stdin, close)
    try:
        while True:
            item = conn.recv()
            if item is None:
                break
            stream, data = item
            out.write(_STREAM_NUMBERS.get(stream, stream), data)
    except OSError as exc:
        LOG.debug('attach relay ended: %s', exc)
    finally:
        conn.close()


def pump_fds(client, tty, outputs, stdin_fd=None):
    """Relay an exec's file descriptors: ``outputs`` maps fd -> stream number.

    Returns when every output fd reached EOF.  ``stdin_fd`` receives the
    client's bytes and is this function's own (ExecProcess.take_stdin): it
    is closed once the client stops sending, which for a pipe is the
    process's end of input.
    """
    out = Output(client, tty)
    if stdin_fd is not None:
        def write(data):
            view = memoryview(data)
            while view:
                n = os.write(stdin_fd, view)
                view = view[n:]

        copy_stdin(client, write, lambda: os.close(stdin_fd))

    threads = []

    def reader(fd, stream):
        try:
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO from a TTY master once the slave closes
                    break
                if not data:
                    break
                out.write(stream, data)
        except OSError as exc:
            LOG.debug('exec relay ended: %s', exc)

    for fd, stream in outputs.items():
        t = threading.Thread(target=reader, args=(fd, stream), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
