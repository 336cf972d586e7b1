"""A small client for the engine's Docker-compatible API.

Shared by the Nova driver (novadocker.virt.docker) and the Heat plugin
(heat_plugin): it imports neither Nova nor Heat.  It speaks HTTP with
``requests`` over the engine's unix socket (``unix:///run/novadocker/engine.sock``)
or over TCP, where TLS is required (``https://host:port`` with a CA and,
optionally, a client certificate).  Every call has a timeout; errors come
back as the exceptions below, carrying the engine's own message, and the
errors Docker-style APIs report inside a 200 stream (pull, push, build,
load) are raised as StreamError rather than lost.
"""

import json
import urllib.parse

import requests
import requests_unixsocket

API_VERSION = '1.41'
DEFAULT_URL = 'unix:///run/novadocker/engine.sock'


class EngineClientError(Exception):
    """An engine answer that is an error; ``status`` is the HTTP status
    (None when the engine could not be reached)."""

    def __init__(self, message, status=None, explanation=None):
        super().__init__(message)
        self.status = status
        self.explanation = explanation if explanation is not None else message


class EngineUnavailable(EngineClientError):
    """The engine could not be reached, or did not answer in time."""


class EngineNotFound(EngineClientError):
    pass


class EngineConflict(EngineClientError):
    pass


class EngineBadRequest(EngineClientError):
    pass


class StreamError(EngineClientError):
    """An error reported inside a streamed 200 answer (``errorDetail``)."""


_BY_STATUS = {400: EngineBadRequest, 404: EngineNotFound, 409: EngineConflict}


def _quote_socket(path):
    return urllib.parse.quote(path, safe='')


class EngineClient:
    """``EngineClient(url, timeout=60, ca=None, cert=None, key=None)``.

    ``url``: ``unix:///path/to.sock`` (or a bare socket path), or
    ``https://host:port``; plain ``http://`` is refused unless
    ``allow_insecure_tcp`` (tests on 127.0.0.1 only), since the engine is
    root on its host.
    """

    def __init__(self, url=DEFAULT_URL, timeout=60, connect_timeout=5, ca=None,
                 cert=None, key=None, api_version=API_VERSION,
                 allow_insecure_tcp=False):
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.api_version = api_version
        if url.startswith('/'):
            url = 'unix://' + url
        if url.startswith('unix://'):
            socket_path = url[len('unix://'):]
            if not socket_path.startswith('/'):
                raise ValueError('engine url %s: the socket path must be absolute' % self.url)
            self.session = requests_unixsocket.Session()
            self.base = 'http+unix://%s' % _quote_socket(socket_path)
        elif url.startswith('https://'):
            self.session = requests.Session()
            self.base = url.rstrip('/')
            self.session.verify = ca if ca else True
            if cert:
                self.session.cert = (cert, key) if key else cert
        elif url.startswith('http://') and allow_insecure_tcp:
            self.session = requests.Session()
            self.base = url.rstrip('/')
        else:
            raise ValueError('engine url %s: use unix:///path/to.sock, or https:// '
                             '(TCP needs TLS)' % self.url)

    # -- plumbing -----------------------------------------------------------

    def _url(self, path):
        return '%s/v%s%s' % (self.base, self.api_version, path)

    def request(self, method, path, params=None, json_body=None, data=None,
                headers=None, timeout=None, stream=False, expect_json=True):
        """One call; returns the decoded JSON (or the Response when
        ``stream`` or not ``expect_json``).  Errors raise EngineClientError
        subclasses."""
        hdrs = dict(headers or {})
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault('Content-Type', 'application/json')
        read = self.timeout if timeout is None else timeout
        try:
            resp = self.session.request(
                method, self._url(path), params=_params(params), data=body,
                headers=hdrs, stream=stream, timeout=(self.connect_timeout, read))
        except requests.exceptions.Timeout as exc:
            raise EngineUnavailable('the engine at %s did not answer %s %s within %s s: %s'
                                    % (self.url, method, path, read, exc))
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable('the engine at %s is unreachable (%s %s): %s'
                                    % (self.url, method, path, exc))
        if resp.status_code >= 400:
            _raise_for(resp, method, path)
        if stream or not expect_json:
            return resp
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise EngineClientError('the engine answered %s %s with something that is not '
                                    'JSON' % (method, path), resp.status_code)

    def get(self, path, params=None, **kw):
        return self.request('GET', path, params=params, **kw)

    def post(self, path, params=None, json_body=None, **kw):
        return self.request('POST', path, params=params, json_body=json_body, **kw)

    def delete(self, path, params=None, **kw):
        return self.request('DELETE', path, params=params, **kw)

    def stream_json(self, method, path, params=None, data=None, headers=None,
                    timeout=None, progress=None):
        """A streamed JSON-lines answer (pull, push, load, build): calls
        ``progress(message)`` for each message and returns the list of
        messages; an ``errorDetail``/``error`` message raises StreamError
        (after the earlier messages went to ``progress``)."""
        resp = self.request(method, path, params=params, data=data, headers=headers,
                            timeout=timeout, stream=True)
        messages = []
        try:
            decoder = json.JSONDecoder()
            buf = ''
            for chunk in resp.iter_content(chunk_size=None, decode_unicode=False):
                buf += chunk.decode('utf-8', 'replace')
                while True:
                    buf = buf.lstrip()
                    if not buf:
                        break
                    try:
                        msg, end = decoder.raw_decode(buf)
                    except ValueError:
                        break   # an incomplete message: wait for more
                    buf = buf[end:]
                    messages.append(msg)
                    if isinstance(msg, dict) and (msg.get('errorDetail') or msg.get('error')):
                        detail = msg.get('errorDetail') or {}
                        raise StreamError(detail.get('message') or msg.get('error'),
                                          resp.status_code)
                    if progress is not None:
                        progress(msg)
            if buf.strip():
                raise EngineClientError('the engine ended %s %s in the middle of a message'
                                        % (method, path), resp.status_code)
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable('the engine at %s broke off %s %s: %s'
                                    % (self.url, method, path, exc))
        finally:
            resp.close()
        return messages

    # -- a few calls everyone needs -------------------------------------------

    def ping(self):
        resp = self.request('GET', '/_ping', expect_json=False,
                            timeout=min(self.timeout, 10))
        return resp.text

    def info(self):
        return self.get('/info')

    def version(self):
        return self.get('/version')

    def containers(self, all=True, filters=None):
        params = {'all': '1' if all else '0'}
        if filters:
            params['filters'] = json.dumps(filters)
        return self.get('/containers/json', params)

    def inspect_container(self, ref):
        return self.get('/containers/%s/json' % urllib.parse.quote(ref, safe=''))

    def inspect_image(self, ref):
        return self.get('/images/%s/json' % urllib.parse.quote(ref, safe=''))

    def close(self):
        self.session.close()


def _params(params):
    if not params:
        return None
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = '1' if v else '0'
        out[k] = v
    return out


def _raise_for(resp, method, path):
    message = None
    try:
        body = resp.json()
        if isinstance(body, dict):
            message = body.get('message')
    except ValueError:
        pass
    if not message:
        message = (resp.text or '').strip()[:500] or resp.reason
    cls = _BY_STATUS.get(resp.status_code, EngineClientError)
    if resp.status_code >= 500 and resp.status_code in (502, 503, 504):
        cls = EngineUnavailable
    raise cls('%s %s: %s' % (method, path, message), resp.status_code, message)
