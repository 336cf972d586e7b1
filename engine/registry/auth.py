"""Registry authentication: anonymous, Basic, and the Bearer token handshake.

The registry says what it wants in ``WWW-Authenticate`` on a 401 (from the
``GET /v2/`` ping or any later request).  Basic sends the user's
credentials on every request; Bearer trades them (or nothing, for
anonymous pulls) at the realm for a token per scope, cached until it
expires.  Credentials and tokens live only in memory, only in request
headers: never in logs, events or error messages.
"""

import base64
import json
import re
import threading
import time

from oslo_log import log as logging
import requests

from engine import errors

LOG = logging.getLogger(__name__)

MAX_TOKEN_RESPONSE = 1 << 20

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def parse_challenges(header):
    """``WWW-Authenticate`` -> list of ``(scheme_lower, {param: value})``."""
    out = []
    if not header:
        return out
    rest = header.strip()
    while rest:
        m = re.match(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*', rest)
        if not m:
            break
        scheme = m.group(1).lower()
        rest = rest[m.end():]
        params = {}
        while True:
            pm = _PARAM_RE.match(rest)
            if not pm:
                break
            value = pm.group(2)
            if value.startswith('"'):
                value = re.sub(r'\\(.)', r'\1', value[1:-1])
            params[pm.group(1).lower()] = value
            rest = rest[pm.end():]
            # A new scheme starts with a token not followed by '='.
            if re.match(r'\s*[A-Za-z][A-Za-z0-9_-]*\s+[A-Za-z0-9_.-]+\s*=',
                        rest) or not rest.strip():
                break
        out.append((scheme, params))
        rest = rest.lstrip(', ')
    return out


def _basic(username, password):
    raw = ('%s:%s' % (username, password)).encode('utf-8')
    return 'Basic ' + base64.b64encode(raw).decode('ascii')


class Credentials(object):
    """The decoded X-Registry-Auth, held without ever being printed."""

    __slots__ = ('username', 'password', 'identitytoken', 'registrytoken')

    def __init__(self, auth=None):
        auth = auth or {}
        if not isinstance(auth, dict):
            raise errors.InvalidArgument('registry credentials must be a '
                                         'JSON object')

        def get(*names):
            for n in names:
                for k, v in auth.items():
                    if isinstance(k, str) and k.lower() == n and v:
                        if not isinstance(v, str):
                            raise errors.InvalidArgument(
                                'registry credentials: %s must be a string'
                                % n)
                        return v
            return ''
        self.username = get('username')
        self.password = get('password')
        self.identitytoken = get('identitytoken')
        self.registrytoken = get('registrytoken')

    def __repr__(self):
        return '<Credentials %s>' % ('set' if self else 'anonymous')

    def __bool__(self):
        return bool(self.username or self.identitytoken or self.registrytoken)


class Authorizer(object):
    """Authorization headers for one registry endpoint and one user.

    ``fetch(method, url, **kw)`` is the transport's request function (with
    the endpoint's TLS settings), used to reach the token realm.
    """

    def __init__(self, fetch, registry, credentials):
        self.fetch = fetch
        self.registry = registry
        self.creds = credentials
        self.challenge = None          # (scheme, params) from the last 401
        self._tokens = {}              # scope -> (token, expiry)
        self._lock = threading.Lock()

    def observe(self, response):
        """Remember the challenge of a 401; True when one was understood."""
        challenges = parse_challenges(response.headers.get('WWW-Authenticate'))
        for scheme, params in challenges:
            if scheme == 'bearer' and params.get('realm'):
                self.challenge = (scheme, params)
                return True
        for scheme, params in challenges:
            if scheme == 'basic':
                self.challenge = (scheme, params)
                return True
        return False

    def invalidate(self, scope):
        with self._lock:
            self._tokens.pop(scope, None)

    def headers(self, scope):
        """Headers to authorize a request needing ``scope`` (may be '')."""
        if self.challenge is None:
            return {}
        scheme, params = self.challenge
        if scheme == 'basic':
            if not self.creds.username:
                return {}
            return {'Authorization': _basic(self.creds.username,
                                            self.creds.password)}
        if self.creds.registrytoken:
            return {'Authorization': 'Bearer ' + self.creds.registrytoken}
        return {'Authorization': 'Bearer ' + self.token(scope)}

    def _read(self, resp):
        buf = bytearray()
        try:
            for chunk in resp.iter_content(65536):
                buf += chunk
                if len(buf) > MAX_TOKEN_RESPONSE:
                    raise errors.RegistryError(
                        'registry %s: the token server sent more than %d '
                        'bytes' % (self.registry, MAX_TOKEN_RESPONSE))
        except requests.RequestException as e:
            raise errors.RegistryError('registry %s: reading the token '
                                       'failed: %s' % (self.registry,
                                                       type(e).__name__))
        finally:
            resp.close()
        return bytes(buf)

    def token(self, scope):
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(scope)
            if cached and cached[1] > now:
                return cached[0]
        token, expires_in = self._fetch_token(scope)
        with self._lock:
            # Refresh a little early; never cache a token for less than 0 s.
            self._tokens[scope] = (token, now + max(0, expires_in - 5))
        return token

    def _fetch_token(self, scope):
        _scheme, params = self.challenge
        realm = params['realm']
        if not realm.startswith(('https://', 'http://')):
            raise errors.RegistryError(
                'registry %s: the token realm is not an HTTP(S) URL'
                % self.registry)
        service = params.get('service', '')
        scopes = [s for s in (scope or '').split(' ') if s]
        if self.creds.identitytoken:
            data = {'grant_type': 'refresh_token',
                    'refresh_token': self.creds.identitytoken,
                    'client_id': 'novadocker', 'service': service}
            if scopes:
                data['scope'] = ' '.join(scopes)
            resp = self.fetch('POST', realm, data=data, stream=True)
        else:
            query = [('service', service)] if service else []
            query += [('scope', s) for s in scopes]
            headers = {}
            if self.creds.username:
                query.append(('account', self.creds.username))
                headers['Authorization'] = _basic(self.creds.username,
                                                  self.creds.password)
            resp = self.fetch('GET', realm, params=query, headers=headers,
                              stream=True)
        raw = self._read(resp)
        if resp.status_code in (401, 403):
            raise errors.Unauthorized(
                'unauthorized: authentication required by the token server '
                'of %s (%s)' % (self.registry, _token_error(resp, raw)))
        if resp.status_code != 200:
            raise errors.RegistryError(
                'registry %s: the token server answered %d (%s)'
                % (self.registry, resp.status_code, _token_error(resp, raw)))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise errors.RegistryError('registry %s: the token server sent '
                                       'no JSON object' % self.registry)
        token = body.get('token') or body.get('access_token')
        if not isinstance(token, str) or not token:
            raise errors.RegistryError('registry %s: the token server sent '
                                       'no token' % self.registry)
        expires = body.get('expires_in')
        if not isinstance(expires, (int, float)) or expires <= 0:
            expires = 60
        return token, expires


def _token_error(resp, raw):
    """A short, credential-free description of a token server's refusal."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return 'HTTP %d' % resp.status_code
    if isinstance(body, dict):
        errs = body.get('errors')
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            return str(errs[0].get('message') or errs[0].get('code'))[:200]
        for key in ('error_description', 'error', 'details', 'message'):
            if isinstance(body.get(key), str):
                return body[key][:200]
    return 'HTTP %d' % resp.status_code
