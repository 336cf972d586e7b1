"""HTTP to one registry: endpoint probing, retries, auth, limits, errors.

``Client`` talks to one registry for one operation: it probes ``GET /v2/``
over the endpoints TLS settings allow (HTTPS, then plain HTTP for insecure
registries, as Docker), remembers the auth challenge, and sends every later
request with the right ``Authorization`` for its scope.  Idempotent
requests are retried with exponential backoff on connection errors,
timeouts and 5xx; redirects are followed up to a limit (a loop is an
error); JSON answers are read with a size limit.
"""

import http.cookiejar
import json
import re
import threading
import time
import urllib.parse

from oslo_log import log as logging
import requests
import urllib3

# Skipping TLS verification is configured (insecure registries, as with
# Docker), not an accident to warn about on every request.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

from engine import errors
from engine.registry import auth as auth_mod

LOG = logging.getLogger(__name__)

RETRY_STATUS = (500, 502, 503, 504)
IDEMPOTENT = ('GET', 'HEAD')
USER_AGENT = 'novadocker/0.1 (registry client)'


class Settings(object):
    """The ``[registry]`` options, with their defaults when not registered."""

    DEFAULTS = {
        'insecure_registries': [], 'certs_dir': '/etc/novadocker/certs.d',
        'connect_timeout': 15.0, 'read_timeout': 120.0, 'retries': 3,
        'retry_backoff': 0.5, 'max_redirects': 10,
        'max_manifest_size': 4 << 20, 'upload_chunk_size': 32 << 20,
        'max_concurrent_downloads': 3, 'max_concurrent_uploads': 5,
        'incompressible_layers': 'tar',
    }

    def __init__(self, conf=None, **overrides):
        group = None
        if conf is not None:
            try:
                group = conf.registry
            except Exception:  # options not registered (tools, tests)
                group = None
        for name, default in self.DEFAULTS.items():
            value = default
            if group is not None:
                try:
                    value = getattr(group, name)
                except Exception:
                    value = default
            setattr(self, name, overrides.get(name, value))


def registry_host(domain):
    """The host serving a reference's domain (Docker Hub's is special)."""
    if domain in ('docker.io', 'index.docker.io'):
        return 'registry-1.docker.io'
    return domain


def describe_errors(resp, limit=4096):
    """The registry's error codes and messages of a failed answer."""
    try:
        body = resp.content[:limit]
        data = json.loads(body)
    except (ValueError, requests.RequestException):
        return ''
    errs = data.get('errors') if isinstance(data, dict) else None
    if not isinstance(errs, list):
        return ''
    parts = []
    for e in errs[:3]:
        if not isinstance(e, dict):
            continue
        code = str(e.get('code') or '').lower().replace('_', ' ')
        msg = str(e.get('message') or '')[:300]
        parts.append('%s: %s' % (code, msg) if code and msg else code or msg)
    return '; '.join(p for p in parts if p)


def new_session(settings):
    """A requests session for registry traffic: nothing from the
    environment (proxies, netrc, CA paths: what the engine trusts is
    configured), no cookies (a session may serve several users), a pool
    big enough for the concurrent transfers of a few operations."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(
        allowed_domains=[]))
    size = 2 * max(settings.max_concurrent_uploads,
                   settings.max_concurrent_downloads) + 2
    for prefix in ('http://', 'https://'):
        session.mount(prefix, requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=size))
    return session


class Client(object):
    """One registry, one user, one operation."""

    def __init__(self, settings, tls, host, credentials=None, session=None,
                 sleep=time.sleep, known_endpoints=None):
        self.settings = settings
        self.tls = tls
        self.host = host
        self.creds = credentials or auth_mod.Credentials()
        self.session = session or new_session(settings)
        # No proxies, netrc or CA paths from the environment: what the
        # engine trusts is configured, not inherited.
        self.session.trust_env = False
        self.session.max_redirects = settings.max_redirects
        self.session.headers['User-Agent'] = USER_AGENT
        self.sleep = sleep
        self.endpoint = None
        self.authorizer = None
        self.bytes_sent = 0
        self._count_lock = threading.Lock()
        # host -> the endpoint that answered last time (shared by clients):
        # probing HTTPS first on a plain HTTP registry costs a round trip.
        self.known_endpoints = known_endpoints if known_endpoints is not None \
            else {}

    # -- plumbing --------------------------------------------------------

    @property
    def base(self):
        return '%s://%s' % (self.endpoint.scheme, self.endpoint.host)

    def url(self, path):
        if path.startswith(('http://', 'https://')):
            return path
        return urllib.parse.urljoin(self.base + '/', path.lstrip('/')) \
            if not path.startswith('/') else self.base + path

    def _send(self, method, url, endpoint=None, **kw):
        ep = endpoint or self.endpoint
        kw.setdefault('timeout', (self.settings.connect_timeout,
                                  self.settings.read_timeout))
        kw.setdefault('verify', ep.verify)
        if ep.cert:
            kw.setdefault('cert', ep.cert)
        data = kw.get('data')
        if isinstance(data, (bytes, bytearray)):
            # Every attempt counts: these are the bytes that travelled.
            with self._count_lock:
                self.bytes_sent += len(data)
        try:
            return self.session.request(method, url, **kw)
        except requests.TooManyRedirects:
            raise errors.RegistryError(
                'registry %s: too many redirects (more than %d) for %s %s'
                % (self.host, self.settings.max_redirects, method,
                   _strip_query(url)))

    def fetch_raw(self, method, url, **kw):
        """A request with retries but without registry auth (token realm)."""
        return self._retrying(method, url, auth_headers=None, **kw)

    def _retrying(self, method, url, auth_headers=None, retry=None, **kw):
        if retry is None:
            retry = method in IDEMPOTENT
        attempts = 1 + (self.settings.retries if retry else 0)
        # POST and PUT are safe to send again when the first try died on a
        # pooled connection the registry had closed (a new upload session, a
        # whole blob or manifest); a PATCH is not (it moves an offset).
        stale_retry = (not retry and method in ('POST', 'PUT')
                       and isinstance(kw.get('data'), (type(None), bytes, bytearray)))
        if stale_retry:
            attempts = 2
        delay = self.settings.retry_backoff
        last = None
        for attempt in range(attempts):
            headers = dict(kw.pop('headers', None) or {})
            if auth_headers:
                headers.update(auth_headers)
            try:
                resp = self._send(method, url, headers=headers, **kw)
            except requests.exceptions.SSLError as e:
                raise errors.RegistryError(
                    'registry %s: TLS failed for %s: %s'
                    % (self.host, _strip_query(url), _short(e)))
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                last = e
                kw['headers'] = headers
                if stale_retry and not _stale_connection(e):
                    attempts = attempt + 1
                if attempt + 1 < attempts:
                    LOG.info('Registry %s: %s %s failed (%s); retrying',
                             self.host, method, _strip_query(url), _short(e))
                    self.sleep(delay)
                    delay *= 2
                    continue
                raise errors.RegistryError(
                    'registry %s: %s %s failed: %s'
                    % (self.host, method, _strip_query(url), _short(e)))
            except requests.RequestException as e:
                # Bad redirect targets (another scheme, a malformed URL).
                raise errors.RegistryError(
                    'registry %s: %s %s failed: %s: %s'
                    % (self.host, method, _strip_query(url),
                       type(e).__name__, _short(e)))
            kw['headers'] = headers
            if resp.status_code in RETRY_STATUS and retry and attempt + 1 < attempts:
                LOG.info('Registry %s: %s %s answered %d; retrying',
                         self.host, method, _strip_query(url),
                         resp.status_code)
                resp.close()
                self.sleep(delay)
                delay *= 2
                continue
            return resp
        raise errors.RegistryError('registry %s: %s' % (self.host, last))

    # -- probing and auth -------------------------------------------------

    def ping(self):
        """``GET /v2/`` on the first endpoint that answers; remembers it."""
        if self.endpoint is not None:
            return
        failures = []
        eps = self.tls.endpoints(self.host)
        known = self.known_endpoints.get(self.host)
        if known in eps:
            eps.remove(known)
            eps.insert(0, known)
        for ep in eps:
            url = '%s://%s/v2/' % (ep.scheme, ep.host)
            try:
                try:
                    resp = self._send('GET', url, endpoint=ep)
                except requests.ConnectionError as e:
                    if not _stale_connection(e):
                        raise
                    # A pooled keep-alive connection the registry had
                    # closed: one fresh try, no backoff.
                    resp = self._send('GET', url, endpoint=ep)
            except requests.exceptions.SSLError as e:
                failures.append('%s: %s%s' % (url, _short(e), (
                    ' (trust its CA with %s/%s/ca.crt)'
                    % (self.tls.certs_dir, self.host)) if 'VERIFY' in str(e)
                    else ''))
                continue
            except (requests.ConnectionError, requests.Timeout) as e:
                failures.append('%s: %s' % (url, _short(e)))
                continue
            except errors.RegistryError as e:
                failures.append(str(e))
                continue
            if resp.status_code not in (200, 401):
                failures.append('%s answered %d' % (url, resp.status_code))
                if resp.status_code >= 500 or resp.status_code == 404:
                    continue
            self.endpoint = ep
            self.authorizer = auth_mod.Authorizer(self._fetch_for_auth,
                                                  self.host, self.creds)
            if resp.status_code == 401:
                self.authorizer.observe(resp)
            elif resp.status_code != 200:
                self.endpoint = None
                continue
            resp.close()
            self.known_endpoints[self.host] = ep
            return
        raise errors.RegistryError(
            'registry %s is not reachable: %s'
            % (self.host, '; '.join(failures) or 'no endpoint'))

    def _fetch_for_auth(self, method, url, **kw):
        return self._retrying(method, url, retry=True, **kw)

    def request(self, method, path, scope='', ok=(200,), what=None, **kw):
        """A registry request with auth (one re-authorization after a 401).

        Returns the response when its status is in ``ok``; otherwise raises
        the error the status means (``what`` names what was asked for).
        """
        self.ping()
        url = self.url(path)
        resp = None
        for attempt in range(2):
            auth_headers = self.authorizer.headers(scope)
            data = kw.get('data')
            if attempt and hasattr(data, 'seek'):
                data.seek(0)
            resp = self._retrying(method, url, auth_headers=auth_headers,
                                  **dict(kw))
            if resp.status_code != 401 or attempt:
                break
            had = self.authorizer.challenge
            understood = self.authorizer.observe(resp)
            if not understood or (had is not None and auth_headers and
                                  self.authorizer.challenge[0] == 'basic'):
                break
            self.authorizer.invalidate(scope)
            resp.close()
        if resp.status_code in ok:
            return resp
        raise self.error(resp, what or '%s %s' % (method, _strip_query(url)))

    def error(self, resp, what):
        detail = describe_errors(resp)
        status = resp.status_code
        resp.close()
        msg = '%s: %s' % (what, detail) if detail else \
            '%s: registry %s answered %d' % (what, self.host, status)
        if status == 404:
            # Docker's words: "manifest for REF not found: manifest unknown: ..."
            msg = '%s not found: %s' % (what, detail or 'registry %s answered '
                                        '404' % self.host)
        if status == 401:
            return errors.Unauthorized(msg)
        if status == 403:
            return errors.Forbidden(msg)
        if status == 404:
            return errors.NotFound(msg)
        return errors.RegistryError(msg)

    # -- reading bodies ------------------------------------------------------

    def read_limited(self, resp, limit, what):
        """The whole body, refusing more than ``limit`` bytes."""
        length = resp.headers.get('Content-Length')
        if length and length.isdigit() and int(length) > limit:
            resp.close()
            raise errors.RegistryError(
                'registry %s: %s is %s bytes, more than the limit of %d'
                % (self.host, what, length, limit))
        buf = bytearray()
        try:
            for chunk in resp.iter_content(65536):
                buf += chunk
                if len(buf) > limit:
                    raise errors.RegistryError(
                        'registry %s: %s is larger than the limit of %d '
                        'bytes' % (self.host, what, limit))
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as e:
            raise errors.RegistryError('registry %s: reading %s failed: %s'
                                       % (self.host, what, _short(e)))
        finally:
            resp.close()
        return bytes(buf)

    def read_json(self, resp, what):
        data = self.read_limited(resp, self.settings.max_manifest_size, what)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise errors.RegistryError('registry %s: %s is not valid JSON'
                                       % (self.host, what))


def next_link(resp, base):
    """The URL of the next page from an RFC 5988 ``Link`` header, or None."""
    link = resp.headers.get('Link')
    if not link:
        return None
    for part in link.split(','):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find('<'), part.find('>')
            if 0 <= start < end:
                return urllib.parse.urljoin(base, part[start + 1:end])
    return None


def _strip_query(url):
    """A URL fit for messages: no query (upload state, signatures)."""
    return url.split('?', 1)[0]


def _stale_connection(exc):
    """True when a request failed on a connection that was already open
    (the server closed it meanwhile), not while connecting."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    text = str(exc)
    return ('Connection aborted' in text or 'RemoteDisconnected' in text) and \
        'NewConnectionError' not in text


def _short(exc):
    text = str(exc)
    # urllib3 nests reasons in reprs; the innermost says most in fewest words.
    for rx in (r'\[SSL[^\]]*\][^(\'"]*', r'\[Errno -?\d+\][^\'"()]*',
               r'Read timed out[^\'"()]*', r'Connection aborted[^\'"()]*',
               r'IncompleteRead\([^)]*\)'):
        m = re.search(rx, text)
        if m:
            return m.group(0).strip(' .,')
    if 'Caused by' in text:
        text = text.split('Caused by', 1)[1].strip(" ('\")")
    return text[:300]
