"""The registry half of the Engine API: pull, push, login and search.

The routes in routes.py only call the functions here; the protocol work is
``engine.distribution`` (engine/registry/).  This module owns what sits
between the two:

* ``X-Registry-Auth``: base64url JSON as the Docker CLI and docker-py send
  it, decoded into the dict the Distribution takes.  The dict hides its
  secrets from ``repr``/``str`` so a stray log line cannot print them.
* References: ``fromImage`` + ``tag`` (a tag or a digest), ``name`` +
  ``tag`` for push, with Docker's 400 messages.
* Progress: ``ProgressStream`` turns the Distribution's progress dicts into
  Docker's JSON lines (one object per line, Go's field order), written as
  they come from any thread, rate-limited per layer, with errors after the
  header reported inside the stream.

Docker sends its response headers with the first progress line, so an error
raised before any progress (a bad reference, a missing tag, refused
credentials) is an ordinary HTTP error the CLI prints as "Error response
from daemon: ..."; later errors go into the stream.

Pull and push events are published by the Distribution itself.

A client that hangs up mid-pull does not cancel it: the pull runs to its
end (its layers are verified and stored, or rolled back by the
Distribution on failure) and the writes to the gone client are dropped.
The request's thread ends with the pull, so nothing is left running.
"""

import base64
import binascii
import contextlib
import json
import re
import threading
import time

from oslo_log import log as logging

from engine import errors
from engine import reference
from engine.api import http

LOG = logging.getLogger(__name__)

AUTH_HEADER = 'X-Registry-Auth'
# Docker's AuthConfig fields (Go's JSON decoding matches keys regardless of case).
AUTH_FIELDS = ('username', 'password', 'auth', 'email', 'serveraddress',
               'identitytoken', 'registrytoken')
# A header or /auth body larger than this is not a credential.
MAX_AUTH_SIZE = 64 * 1024
DEFAULT_INDEX_SERVER = 'https://index.docker.io/v1/'

# Seconds between two progress lines of one layer (Docker's progress reader
# uses the same 100 ms); the last line of a layer always goes out.
PROGRESS_INTERVAL = 0.1

DEFAULT_SEARCH_LIMIT = 25
SEARCH_FILTERS = ('is-automated', 'is-official', 'stars')

_PLATFORM_RE = re.compile(r'^[a-z0-9_-]+(?:/[a-z0-9_.-]+){0,2}$')


class NotSupportedYet(errors.EngineError):
    """The engine was built without a registry client."""
    status = 501


# -- X-Registry-Auth -----------------------------------------------------------

class AuthConfig(dict):
    """Registry credentials: a plain dict whose text form names no secret."""

    def __repr__(self):
        return '<AuthConfig user=%r server=%r%s>' % (
            self.get('username', ''), self.get('serveraddress', ''),
            ' (secrets hidden)' if set(self) - {'username', 'serveraddress', 'email'}
            else '')

    __str__ = __repr__


def _invalid_auth(why):
    return errors.InvalidArgument('invalid X-Registry-Auth header: %s' % why)


def auth_from_dict(data, invalid=_invalid_auth):
    """Docker's AuthConfig from a decoded JSON value; None when it holds no
    credential (``{}`` or only a server address: an anonymous request)."""
    if not isinstance(data, dict):
        raise invalid('credentials must be a JSON object')
    out = AuthConfig()
    for key, value in data.items():
        field = key.lower() if isinstance(key, str) else None
        if field not in AUTH_FIELDS or value is None:
            continue  # Go ignores fields it does not know
        if not isinstance(value, str):
            raise invalid('%s must be a string' % field)
        if value:
            out[field] = value
    if 'auth' in out:
        # The config-file form "base64(user:password)": used when the
        # client did not split it itself.
        encoded = out.pop('auth')
        if 'username' not in out and 'password' not in out:
            try:
                user, sep, password = base64.b64decode(
                    encoded, validate=True).decode('utf-8').partition(':')
            except (binascii.Error, ValueError):
                raise invalid('auth is not base64 of "username:password"')
            if not sep:
                raise invalid('auth is not base64 of "username:password"')
            out['username'], out['password'] = user, password
    if not set(out) & {'username', 'password', 'identitytoken', 'registrytoken'}:
        return None
    return out


def decode_auth_header(value):
    """Decode an ``X-Registry-Auth`` value (base64url of JSON, padding
    optional; the standard alphabet is taken too).  Empty or ``{}``:
    anonymous (None).  Malformed: 400, naming no part of the value."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_AUTH_SIZE:
        raise _invalid_auth('larger than %d bytes' % MAX_AUTH_SIZE)
    text = text.rstrip('=').translate(str.maketrans('+/', '-_'))
    try:
        raw = base64.b64decode(text + '=' * (-len(text) % 4), altchars=b'-_',
                               validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_auth('not base64url-encoded JSON')
    try:
        data = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        raise _invalid_auth('not base64url-encoded JSON')
    return auth_from_dict(data)


def request_auth(request, body_fallback=False):
    """The credentials of a request.  ``body_fallback`` (push): without the
    header, Docker reads an AuthConfig from the body (the pre-1.x form)."""
    header = request.headers.get(AUTH_HEADER)
    if header is not None and header.strip():
        return decode_auth_header(header)
    if not body_fallback:
        return None
    try:
        body = request.json(MAX_AUTH_SIZE)
    except errors.InvalidArgument:
        raise errors.InvalidArgument('Bad parameters and missing X-Registry-Auth: '
                                     'the request body is not an AuthConfig')
    if body is None:
        return None

    def invalid(why):
        return errors.InvalidArgument('Bad parameters and missing X-Registry-Auth: %s' % why)
    return auth_from_dict(body, invalid)


# -- references ----------------------------------------------------------------

def parse_remote(text):
    """A reference naming a registry repository.

    Docker takes a first component with capitals (``UPPER/case``) as a
    registry host, which no registry operator names that way: the pull
    would fail later on a DNS lookup.  A host is told by a dot, a port or
    ``localhost``; anything else with capitals is a mistyped repository.
    """
    ref = reference.parse(text)
    host = ref.domain
    if host != host.lower() and not any(c in host for c in '.:[') \
            and host != 'localhost':
        raise errors.InvalidArgument('invalid reference format: repository name '
                                     'must be lowercase')
    return ref


_DIGEST_LENGTHS = {'sha256': 64, 'sha384': 96, 'sha512': 128}


def check_digest(text):
    """go-digest's Validate: a known algorithm's length is checked first
    (``sha256:abc`` is "invalid checksum digest length")."""
    algorithm, _, encoded = text.partition(':')
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is not None and encoded and len(encoded) != length \
            and re.match(r'^[a-fA-F0-9]+$', encoded):
        raise errors.InvalidArgument('invalid checksum digest length')
    return reference.validate_digest(text)


def pull_reference(from_image, tag):
    """The reference ``POST /images/create`` pulls.

    ``fromImage`` may carry a tag or digest; ``tag`` may be a tag or a
    digest and replaces the tag (a digest replaces both).  A trailing ``:``
    (what ``pull -a`` used to send) is ignored, as Docker does.  Without tag
    or digest the result is name-only, which means every tag.
    """
    ref = parse_remote(from_image[:-1] if from_image.endswith(':') else from_image)
    if tag:
        if ':' in tag:
            # "algorithm:hex" can only be a digest: a tag has no colon.
            check_digest(tag)
            ref = reference.Reference(ref.domain, ref.path, None, tag)
        else:
            reference.validate_tag(tag)
            ref = reference.Reference(ref.domain, ref.path, tag, ref.digest)
    return ref


def push_reference(name, tag):
    ref = parse_remote(name)
    if tag:
        reference.validate_tag(tag)
        ref = reference.Reference(ref.domain, ref.path, tag, ref.digest)
    if ref.digest:
        raise errors.InvalidArgument('cannot push a digest reference')
    return ref


def check_platform(text):
    """``os[/arch[/variant]]`` as containerd's platforms.Parse takes it."""
    if not text:
        return None
    value = text.strip().lower()
    if not _PLATFORM_RE.match(value):
        raise errors.InvalidArgument('"%s": unknown operating system or architecture: '
                                     'invalid argument' % text)
    if value.split('/')[0] != 'linux':
        raise errors.InvalidArgument('operating system is not supported: %s' % text)
    return value


def local_tags(images, ref):
    """The local references (tags) of ``ref``'s repository, sorted."""
    found = set()
    for img in images.images():
        for tagged in img.repo_tags:
            try:
                parsed = reference.parse(tagged)
            except errors.EngineError:
                continue
            if parsed.name == ref.name and parsed.tag:
                found.add(parsed.tag)
    return [ref.with_tag(t) for t in sorted(found)]


def distribution(engine, doing):
    dist = getattr(engine, 'distribution', None)
    if dist is None:
        raise NotSupportedYet('%s is not supported by this engine yet' % doing)
    return dist


# -- progress streams ----------------------------------------------------------

# The JSONMessage fields in Go's order (encoding/json writes struct order).
_MESSAGE_ORDER = ('stream', 'status', 'progressDetail', 'progress', 'id', 'from',
                  'time', 'timeNano', 'errorDetail', 'error', 'aux')
_GO_ESCAPES = str.maketrans({'<': '\\u003c', '>': '\\u003e', '&': '\\u0026'})


def human_size(size):
    """go-units HumanSize: decimal units, 4 significant digits."""
    units = ('B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB')
    size = float(size)
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return '%s%s' % (('%.4g' % size), units[i])


def progress_bar(current, total):
    """The ``progress`` text Docker's daemon puts next to progressDetail
    (jsonmessage.JSONProgress.String at its default width of 200)."""
    if current <= 0 and total <= 0:
        return ''
    if total <= 0:
        return '%8s' % human_size(current)
    percentage = min(int(current / total * 100) // 2, 50)
    bar = '[%s>%s] ' % ('=' * percentage, ' ' * max(0, 50 - percentage))
    if current > total:
        return bar + '%8s' % human_size(current)
    return bar + '%8s/%s' % (human_size(current), human_size(total))


def encode_message(msg):
    """One JSON line as Docker writes it: Go's field order, Go's escapes."""
    msg = dict(msg)
    detail = msg.get('progressDetail')
    if isinstance(detail, dict):
        # Docker's daemon renders the text from the numbers, every time.
        msg.pop('progress', None)
        current, total = detail.get('current') or 0, detail.get('total') or 0
        if isinstance(current, int) and isinstance(total, int):
            bar = progress_bar(current, total)
            if bar:
                msg['progress'] = bar
    ordered = {k: msg[k] for k in _MESSAGE_ORDER if k in msg}
    ordered.update((k, v) for k, v in msg.items() if k not in ordered)
    return (json.dumps(ordered, separators=(',', ':')).translate(_GO_ESCAPES)
            + '\r\n').encode()


def error_message(message):
    return {'errorDetail': {'message': message}, 'error': message}


class ProgressStream:
    """A JSON progress response fed by ``progress(msg)`` calls.

    Thread-safe (a Distribution may report layers from several threads);
    never raises into the caller: once the client is gone, messages are
    dropped.  Progress updates (a ``progressDetail`` with ``current``) of
    one ``id`` go out at most once per ``interval``; the one that completes
    a layer always does, and the last one held back is sent before that
    layer's next status so the bar ends where the transfer did.
    """

    def __init__(self, handler, interval=PROGRESS_INTERVAL, clock=time.monotonic,
                 hold_first=None):
        self._handler = handler
        # Docker says "Pulling from" once the manifest is fetched, so a
        # missing tag or refused credentials are HTTP errors (the CLI then
        # prints "Error response from daemon", docker-py raises NotFound,
        # a 401 lets the CLI ask for a login).  A first line starting with
        # ``hold_first`` waits for the next one to begin the response.
        self._hold_first = hold_first
        self._first = None
        self.stream = http.Stream(handler, content_type='application/json')
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last = {}
        self._held = {}
        self.client_gone = False
        self.lines = 0

    @property
    def started(self):
        return self.stream.started

    def __call__(self, msg):
        if not isinstance(msg, dict):
            return
        with self._lock:
            if self._hold_first is not None:
                status = msg.get('status')
                hold = (self.lines == 0 and self._first is None and isinstance(status, str)
                        and status.startswith(self._hold_first))
                self._hold_first = None
                if hold:
                    self._first = msg
                    return
            if self._first is not None:
                first, self._first = self._first, None
                self._write(first)
            key = msg.get('id') or ''
            detail = msg.get('progressDetail')
            if isinstance(detail, dict) and detail.get('current') is not None:
                current, total = detail.get('current'), detail.get('total')
                finished = (isinstance(total, int) and isinstance(current, int)
                            and 0 < total <= current)
                now = self._clock()
                last = self._last.get(key)
                if not finished and last is not None and now - last < self._interval:
                    self._held[key] = msg
                    return
                self._last[key] = now
                self._held.pop(key, None)
                self._write(msg)
                return
            held = self._held.pop(key, None)
            if held is not None:
                self._write(held)
            self._write(msg)

    def _write(self, msg):
        if self.client_gone:
            return
        try:
            self.stream.write(encode_message(msg))
            self.lines += 1
        except OSError:
            # The client hung up: finish the work, drop the rest of the output.
            self.client_gone = True
            self._handler.close_connection = True

    def fail(self, exc):
        """Report an error: in the stream once it started, else re-raise
        it so the HTTP layer answers with its status."""
        if not self.stream.started:
            raise exc
        message = str(exc)
        if isinstance(exc, errors.EngineError) and exc.status >= 500 \
                and not isinstance(exc, NotSupportedYet):
            LOG.warning('registry operation failed after the response began: %s', message)
        with self._lock:
            self._held.clear()
            self._first = None
            self._write(error_message(message))

    @contextlib.contextmanager
    def reporting_errors(self, what):
        """Errors of the block: HTTP errors before the first line, stream
        errors after it (a bug too: its traceback goes to the log only)."""
        try:
            yield
        except errors.EngineError as exc:
            self.fail(exc)
        except Exception as exc:
            if not self.stream.started:
                raise
            LOG.exception('%s failed', what)
            self.fail(errors.EngineError(
                'internal error (%s) in the engine; its log has the details'
                % type(exc).__name__))

    def finish(self):
        """What the route returns: the stream (ended by the HTTP layer), or
        None once the client is gone (nothing more to send)."""
        with self._lock:
            if self._first is not None:
                first, self._first = self._first, None
                self._write(first)
        if self.client_gone:
            self._handler.close_connection = True
            return None
        return self.stream


# -- the operations --------------------------------------------------------------

def pull(engine, request, handler):
    """``POST /images/create?fromImage=`` (the route checked fromImage)."""
    ref = pull_reference(request.arg('fromImage'), request.arg('tag') or '')
    platform = None
    if request.version_at_least('1.32'):
        platform = check_platform(request.arg('platform'))
    auth = request_auth(request)
    dist = distribution(engine, 'pulling from a registry')
    request.drain()
    out = ProgressStream(handler, hold_first='Pulling from ')
    refs = [ref]
    if not ref.tag and not ref.digest:
        refs = _remote_tags(dist, ref, auth)
    with out.reporting_errors('pull of %s' % ref.familiar()):
        for one in refs:
            dist.pull(str(one), auth=auth, platform=platform, progress=out)
    return out.finish()


def _remote_tags(dist, ref, auth):
    """Every tag of a repository (``docker pull --all-tags``)."""
    list_tags = getattr(dist, 'list_tags', None)
    if list_tags is None:
        raise errors.InvalidArgument('pulling every tag of %s is not supported yet: '
                                     'name a tag or a digest' % ref.familiar_name())
    return [ref.with_tag(t) for t in list_tags(str(ref), auth=auth)]


def push(engine, request, handler):
    """``POST /images/{name}/push?tag=``: every local tag when none is given."""
    ref = push_reference(request.params['name'], request.arg('tag') or '')
    auth = request_auth(request, body_fallback=True)
    dist = distribution(engine, 'pushing to a registry')
    request.drain()
    images = engine.images
    if ref.tag:
        if not images.exists(str(ref)):
            if local_tags(images, ref):
                raise errors.NotFound('tag does not exist: %s' % ref.familiar())
            raise errors.NotFound('An image does not exist locally with the tag: %s'
                                  % ref.familiar_name())
        refs = [ref]
    else:
        refs = local_tags(images, ref)
        if not refs:
            raise errors.NotFound('An image does not exist locally with the tag: %s'
                                  % ref.familiar_name())
    out = ProgressStream(handler)
    said = set()

    def progress(msg):
        # Pushing every tag: Docker names the repository once.
        status = msg.get('status') if isinstance(msg, dict) else None
        if isinstance(status, str) and status.startswith('The push refers to '):
            if status in said:
                return
            said.add(status)
        if isinstance(msg, dict) and msg.get('aux') is not None and status:
            # Docker writes the summary line and its aux as two messages:
            # the CLI prints the first and hands the second to its aux
            # callback without printing it.
            out({k: v for k, v in msg.items() if k not in ('aux', 'progressDetail')})
            out({'progressDetail': {}, 'aux': msg['aux']})
            return
        out(msg)
    with out.reporting_errors('push of %s' % ref.familiar()):
        for one in refs:
            dist.push(str(one), auth=auth, progress=progress)
    return out.finish()


def login(engine, request):
    """``POST /auth``: check credentials against a registry."""
    body = request.json(MAX_AUTH_SIZE)
    if body is None:
        raise errors.InvalidArgument('login credentials cannot be empty')

    def invalid(why):
        return errors.InvalidArgument('invalid login credentials: %s' % why)
    auth = auth_from_dict(body, invalid) or AuthConfig()
    server = (auth.get('serveraddress') or '').strip() or DEFAULT_INDEX_SERVER
    dist = distribution(engine, 'logging in to a registry')
    result = dist.login(server, auth)
    return {'Status': result.get('Status') or 'Login Succeeded',
            'IdentityToken': result.get('IdentityToken') or ''}


def search_filters(parsed):
    """Docker's search filters from parse_filters' {key: [values]}:
    (is_automated, is_official or None, min_stars or None)."""
    for key in parsed:
        if key not in SEARCH_FILTERS:
            raise errors.InvalidArgument("invalid filter '%s'" % key)

    def boolean(key):
        if key not in parsed:
            return None
        values = parsed[key]
        falsy = any(v in ('0', 'false') for v in values)
        truthy = any(v in ('1', 'true') for v in values)
        if falsy == truthy:
            raise errors.InvalidArgument("invalid filter '%s=[%s]'" % (key, ' '.join(values)))
        return truthy
    automated = boolean('is-automated')
    official = boolean('is-official')
    stars = None
    if 'stars' in parsed:
        stars = 0
        for value in parsed['stars']:
            try:
                stars = max(stars, int(value))
            except ValueError:
                raise errors.InvalidArgument("invalid filter 'stars=%s'" % value)
    return bool(automated), official, stars


def search(engine, request, filters):
    """``GET /images/search``: a private registry's catalog and tags."""
    limit_text = request.arg('limit') or ''
    limit = DEFAULT_SEARCH_LIMIT
    if limit_text:
        try:
            limit = int(limit_text)
        except ValueError:
            raise errors.InvalidArgument('invalid limit specified: %r is not an integer'
                                         % limit_text)
        if limit < 0:
            raise errors.InvalidArgument('invalid limit specified: %d' % limit)
        limit = limit or DEFAULT_SEARCH_LIMIT
    if limit > 100:
        raise errors.InvalidArgument('limit %d is outside the range of [1, 100]' % limit)
    automated, official, stars = search_filters(filters)
    term = request.arg('term') or ''
    if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', term):
        raise errors.InvalidArgument('invalid repository name: repository name (%s) '
                                     'should not have a scheme' % term)
    auth = request_auth(request)
    dist = distribution(engine, 'searching a registry')
    if automated:
        return []  # Docker: is-automated is deprecated and never true
    results = []
    for item in dist.search(term, limit=limit, auth=auth) or ():
        entry = {'star_count': int(item.get('star_count') or 0),
                 'is_official': bool(item.get('is_official')),
                 'name': item.get('name') or '',
                 'is_automated': False,
                 'description': item.get('description') or ''}
        if official is not None and entry['is_official'] != official:
            continue
        if stars is not None and entry['star_count'] < stars:
            continue
        results.append(entry)
    return results[:limit]
