"""HTTP/1.1 over a unix socket: requests, responses, streaming and hijacking.

The Docker API needs more than request/response: chunked request bodies
(``docker load`` and ``docker import`` stream them), streamed responses (JSON
progress, logs), responses whose headers must reach the client before the
body exists (``/wait``), and connections taken over for raw two-way streams
(attach, exec).  The standard library's threaded server gives one thread per
connection; this module adds those pieces on top.
"""

import http.server
import json
import os
import re
import socket
import socketserver
import threading
import urllib.parse

from oslo_log import log as logging

from engine import errors

LOG = logging.getLogger(__name__)

API_VERSION = '1.44'
MIN_API_VERSION = '1.24'

_VERSION_PREFIX = re.compile(r'^/v(\d+\.\d+)(/.*)$')
# Plain hex digits only: int() would also take a sign, '0x' or underscores.
_CHUNK_SIZE = re.compile(rb'[0-9A-Fa-f]{1,15}')

# Seconds a connection may sit idle (or dribble its request headers) before
# the engine drops it; long-lived streams lift it once they begin.
IDLE_TIMEOUT = 120

BUSY_MESSAGE = ('the engine is serving its maximum number of API connections '
                '([engine] max_connections); try again')

# How much of a refused upload the engine reads (and drops) before it closes.
DISCARD_LIMIT = 1 << 40


def version_tuple(text):
    major, _, minor = text.partition('.')
    return int(major), int(minor or 0)


class _BodyReader:
    def read(self, n=-1):
        raise NotImplementedError

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def readable(self):
        return True


class ChunkedReader(_BodyReader):
    """A file-like reader that decodes a chunked request body."""

    def __init__(self, rfile):
        self._rfile = rfile
        self._left = 0
        self._done = False

    def _next_chunk(self):
        line = self._rfile.readline(1024)
        if not line:
            raise errors.InvalidArgument('request body ended inside a chunk')
        size_text = line.split(b';', 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise errors.InvalidArgument('malformed chunk size in request body: %r'
                                         % size_text[:20])
        self._left = int(size_text, 16)
        if self._left == 0:
            # Trailers, then the blank line ending the body.
            while True:
                line = self._rfile.readline(1024)
                if line in (b'\r\n', b'\n', b''):
                    break
            self._done = True

    def read(self, n=-1):
        out = []
        want = n if n is not None and n >= 0 else None
        while not self._done and (want is None or want > 0):
            if self._left == 0:
                self._next_chunk()
                continue
            take = self._left if want is None else min(self._left, want)
            data = self._rfile.read(take)
            if not data:
                raise errors.InvalidArgument('request body ended inside a chunk')
            out.append(data)
            self._left -= len(data)
            if want is not None:
                want -= len(data)
            if self._left == 0 and self._rfile.readline(16) not in (b'\r\n', b'\n'):
                raise errors.InvalidArgument('malformed chunked request body: '
                                             'chunk data longer than its size')
        return b''.join(out)


class LimitedReader(_BodyReader):
    """A file-like reader of exactly Content-Length bytes."""

    def __init__(self, rfile, length):
        self._rfile = rfile
        self._left = length

    def read(self, n=-1):
        if self._left <= 0:
            return b''
        if n is None or n < 0 or n > self._left:
            n = self._left
        data = self._rfile.read(n)
        if not data and n:
            raise errors.InvalidArgument('request body shorter than its Content-Length')
        self._left -= len(data)
        return data


class Request:
    def __init__(self, handler, method, path, query, api_version):
        self._handler = handler
        self.method = method
        self.path = path
        self.query = query
        self.api_version = api_version
        self.headers = handler.headers
        self.params = {}
        self._body = None

    # -- query parameters -------------------------------------------------
    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name):
        return self.query.get(name, [])

    def bool_arg(self, name, default=False):
        value = self.arg(name)
        if value is None:
            return default
        value = value.strip().lower()
        if value in ('', '0', 'false', 'no', 'off'):
            return False
        if value in ('1', 'true', 'yes', 'on'):
            return True
        raise errors.InvalidArgument('invalid boolean value for %s: %r' % (name, value))

    def int_arg(self, name, default=None):
        value = self.arg(name)
        if value is None or value == '':
            return default
        try:
            return int(value)
        except ValueError:
            raise errors.InvalidArgument('invalid value for %s: %r is not an integer' % (name, value))

    def json_arg(self, name, default=None):
        value = self.arg(name)
        if not value:
            return default
        try:
            return json.loads(value)
        except ValueError as exc:
            raise errors.InvalidArgument('invalid JSON in %s: %s' % (name, exc))

    def version_at_least(self, text):
        return version_tuple(self.api_version) >= version_tuple(text)

    # -- body -------------------------------------------------------------
    def body_stream(self):
        """The request body as a file-like object (streamed, not buffered)."""
        if self._body is None:
            te = (self.headers.get('Transfer-Encoding') or '').lower()
            if 'chunked' in te:
                self._body = ChunkedReader(self._handler.rfile)
            else:
                try:
                    length = int(self.headers.get('Content-Length') or 0)
                except ValueError:
                    raise errors.InvalidArgument('invalid Content-Length')
                self._body = LimitedReader(self._handler.rfile, length)
        return self._body

    def json(self, limit, default=None):
        """Parse a JSON body; an empty body gives ``default``."""
        data = self.body_stream().read(limit + 1)
        if len(data) > limit:
            raise errors.InvalidArgument('request body is larger than %d bytes' % limit)
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except ValueError as exc:
            raise errors.InvalidArgument('malformed JSON in request body: %s' % exc)

    def drain(self, limit=None):
        """Read and drop the rest of the body (at most ``limit`` bytes)."""
        if self._body is not None or self.headers.get('Content-Length') \
                or 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            stream = self.body_stream()
            while True:
                chunk = stream.read(65536)
                if not chunk:
                    return
                if limit is not None:
                    limit -= len(chunk)
                    if limit <= 0:
                        return


class Response:
    """What a route returns for an ordinary (non-streamed) answer."""

    def __init__(self, status=200, body=b'', content_type='application/json', headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def json_response(obj, status=200):
    return Response(status, json.dumps(obj).encode() + b'\n')


def empty(status=204):
    return Response(status, b'', content_type=None)


class Stream:
    """A chunked response written while the route runs.

    ``begin()`` sends the headers at once (``/wait`` relies on this);
    ``write()`` sends one chunk; ``end()`` finishes the body.
    """

    def __init__(self, handler, status=200, content_type='application/json', headers=None):
        self._handler = handler
        self.status = status
        self.content_type = content_type
        self.headers = headers or {}
        self.started = False
        self.ended = False

    def begin(self):
        if self.started:
            return
        h = self._handler
        h.connection.settimeout(None)
        h.send_response(self.status)
        h.send_common_headers()
        if self.content_type:
            h.send_header('Content-Type', self.content_type)
        for k, v in self.headers.items():
            h.send_header(k, v)
        h.send_header('Transfer-Encoding', 'chunked')
        h.end_headers()
        h.wfile.flush()
        self.started = True

    def write(self, data):
        if not data:
            return
        if isinstance(data, str):
            data = data.encode()
        self.begin()
        self._handler.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))

    def write_json(self, obj):
        self.write(json.dumps(obj).encode() + b'\r\n')

    def end(self):
        self.begin()
        if not self.ended:
            self.ended = True
            self._handler.wfile.write(b'0\r\n\r\n')
            self._handler.wfile.flush()


class Hijacked:
    """A connection taken over after the response headers: raw bytes both ways."""

    def __init__(self, handler):
        self._handler = handler
        self.sock = handler.connection

    def read(self, n=65536):
        """Bytes from the client (b'' once it closed or half-closed)."""
        try:
            return self._handler.rfile.read1(n)
        except (ConnectionError, OSError):
            return b''

    def write(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = IDLE_TIMEOUT
    server_version = 'novadocker-engine'
    sys_version = ''

    def log_message(self, fmt, *args):
        LOG.debug('api: ' + fmt, *args)

    def address_string(self):
        return 'unix'

    def send_common_headers(self):
        self.send_header('Api-Version', API_VERSION)
        self.send_header('Docker-Experimental', 'false')
        self.send_header('Ostype', 'linux')
        self.send_header('Server', 'novadocker-engine')

    def _dispatch(self):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        api_version = API_VERSION
        m = _VERSION_PREFIX.match(path)
        if m:
            api_version, path = m.group(1), m.group(2)
        request = Request(self, self.command, path,
                          urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                          api_version)
        stream = None
        try:
            if m and version_tuple(api_version) < version_tuple(MIN_API_VERSION):
                raise errors.InvalidArgument(
                    'client version %s is too old. Minimum supported API version is %s, '
                    'please upgrade your client to a newer version' % (api_version, MIN_API_VERSION))
            if m and version_tuple(api_version) > version_tuple(API_VERSION):
                raise errors.InvalidArgument(
                    'client version %s is too new. Maximum supported API version is %s'
                    % (api_version, API_VERSION))
            route, params = self.server.router.match(self.command, path)
            request.params = params
            result = route(request, self)
            if isinstance(result, Stream):
                stream = result
                stream.end()
            elif isinstance(result, Hijacked):
                self.close_connection = True
            elif result is not None:
                request.drain()
                self._send(result)
        except errors.EngineError as exc:
            self._send_error(exc.status, str(exc), stream)
            self._discard_body(request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug: log it, answer 500 without a traceback
            LOG.exception('API request %s %s failed', self.command, self.path)
            self._send_error(500, 'internal error (%s) in the engine; its log has the '
                             'details' % type(exc).__name__, stream)

    @staticmethod
    def _discard_body(request):
        """Read what is left of a refused upload: a client still sending
        (docker load, import) then reads the error instead of a broken pipe.
        Nothing is stored; the idle timeout bounds a client that stalls."""
        try:
            request.drain(limit=DISCARD_LIMIT)
        except (OSError, errors.EngineError):
            pass

    def _send(self, response):
        self.send_response(response.status)
        self.send_common_headers()
        if response.content_type:
            self.send_header('Content-Type', response.content_type)
        for k, v in response.headers.items():
            self.send_header(k, v)
        body = response.body if self.command != 'HEAD' else b''
        if response.status not in (204, 304):
            self.send_header('Content-Length', str(len(response.body)))
        self.end_headers()
        if body and response.status not in (204, 304):
            self.wfile.write(body)

    def _send_error(self, status, message, stream):
        if status >= 500:
            LOG.warning('API %s %s: %s', self.command, self.path, message)
        else:
            LOG.debug('API %s %s: %d %s', self.command, self.path, status, message)
        try:
            if stream is not None and stream.started:
                # Headers are gone: report the error inside the stream, as Docker does.
                if not stream.ended:
                    stream.write_json({'errorDetail': {'message': message}, 'error': message})
                    stream.end()
                return
            if status == 304:
                self._send(empty(304))
            else:
                # Say so: a keep-alive client (requests, docker-py) would
                # otherwise send its next request into a closing socket.
                response = json_response({'message': message}, status)
                response.headers['Connection'] = 'close'
                self.close_connection = True
                self._send(response)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128

    def __init__(self, path, router, mode=0o660, gid=None, max_connections=512):
        self.router = router
        self.socket_path = path
        # Each connection holds a thread: beyond the cap new ones are
        # answered 503 and closed instead of exhausting the engine.
        self._slots = threading.BoundedSemaphore(max_connections)
        _remove_stale_socket(path)
        os.makedirs(os.path.dirname(path) or '.', mode=0o755, exist_ok=True)
        old = os.umask(0o117)
        try:
            super().__init__(path, Handler)
        finally:
            os.umask(old)
        os.chmod(path, mode)
        if gid is not None:
            os.chown(path, -1, gid)

    def get_request(self):
        conn, addr = super().get_request()
        return conn, 'unix'

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            LOG.warning('API connection refused: %s', BUSY_MESSAGE)
            try:
                body = json.dumps({'message': BUSY_MESSAGE}).encode()
                request.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: '
                                b'application/json\r\nConnection: close\r\n'
                                b'Content-Length: %d\r\n\r\n%s' % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def server_close(self):
        super().server_close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass


def _remove_stale_socket(path):
    """Take over a socket file left by a dead engine; refuse a live one."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise errors.Conflict('another engine is already serving %s' % path)
