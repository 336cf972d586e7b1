"""The engine's event bus: what `docker events` streams.

Events are kept in a bounded in-memory ring so ``since`` can replay recent
history; subscribers get new events through a condition variable.
Filters and since/until values are parsed and matched here as Docker's
daemon/events/filter.go does.
"""

import collections
import re
import threading
import time

from engine import errors
from engine import reference
from engine import util

RING_SIZE = 1024

# The filter keys Docker's event filter looks at.
FILTER_KEYS = frozenset((
    'config', 'container', 'daemon', 'event', 'image', 'label', 'network',
    'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume'))
EVENT_TYPES = frozenset((
    'builder', 'config', 'container', 'daemon', 'image', 'network', 'node',
    'plugin', 'secret', 'service', 'volume'))
SCOPES = frozenset(('local', 'swarm'))
# Types whose filter matches the actor's ID or name by prefix (fuzzy).
_NAME_FILTERS = ('config', 'container', 'daemon', 'network', 'node', 'plugin',
                 'secret', 'service', 'volume')
# Actions carrying a suffix (``exec_start: sh -c ...``): a bare name
# matches them by prefix.
_FUZZY_ACTIONS = frozenset(('health_status', 'exec_create', 'exec_start'))

_DURATION = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)')
_DURATION_NS = {'ns': 1, 'us': 1e3, 'µs': 1e3, 'ms': 1e6, 's': 1e9, 'm': 60e9, 'h': 3600e9}


def validate_filters(filters):
    """Check parsed filters ({key: [values]}); raise InvalidArgument."""
    for key, values in filters.items():
        if key not in FILTER_KEYS:
            raise errors.InvalidArgument("invalid filter '%s'" % key)
        if key == 'type':
            bad = [v for v in values if v not in EVENT_TYPES]
        elif key == 'scope':
            bad = [v for v in values if v not in SCOPES]
        else:
            bad = []
        if bad:
            raise errors.InvalidArgument("invalid filter '%s=%s'" % (key, bad[0]))
    return filters


def _exact(filters, key, value):
    values = filters.get(key)
    return not values or value in values


def _fuzzy(filters, key, value):
    values = filters.get(key)
    if not values:
        return True
    return any(value.startswith(v) for v in values)


def _strip_tag(name):
    try:
        return reference.parse(name).familiar_name()
    except errors.EngineError:
        return name


def matches(event, filters):
    """Docker's Filter.Include: every given key must match (values of one
    key are alternatives; labels must all match)."""
    if not filters:
        return True
    action = event['Action']
    if filters.get('event'):
        if _FUZZY_ACTIONS & set(filters['event']):
            if not _fuzzy(filters, 'event', action):
                return False
        elif action not in filters['event']:
            return False
    if not _exact(filters, 'type', event['Type']):
        return False
    if not _exact(filters, 'scope', event.get('scope', 'local')):
        return False
    actor_id = event['Actor']['ID']
    attrs = event['Actor']['Attributes']
    for key in _NAME_FILTERS:
        if filters.get(key) and not (_fuzzy(filters, key, actor_id)
                                     or _fuzzy(filters, key, attrs.get('name', ''))):
            return False
    if filters.get('image'):
        name = attrs.get('name' if event['Type'] == 'image' else 'image', '')
        wanted = filters['image']
        if not (actor_id in wanted or name in wanted or _strip_tag(actor_id) in wanted
                or _strip_tag(name) in wanted):
            return False
    for value in filters.get('label') or ():
        k, eq, v = value.partition('=')
        if k not in attrs or (eq and attrs[k] != v):
            return False
    return True


def parse_time(text, now_ns=None):
    """A since/until value as epoch nanoseconds (None when empty).

    Docker's API takes Unix seconds with an optional fraction, which is what
    the CLI sends whatever the user typed; RFC 3339 times and Go durations
    (``10m``: that long ago), the CLI's own input forms, are accepted too.
    """
    if text is None or text == '':
        return None
    text = text.strip()
    m = re.match(r'^(-?\d+)(?:\.(\d{1,9}))?$', text)
    if m:
        secs = int(m.group(1))
        frac = int((m.group(2) or '').ljust(9, '0') or 0)
        return secs * 1_000_000_000 + (frac if secs >= 0 else -frac)
    if _DURATION.match(text):
        pos, total = 0, 0.0
        for d in _DURATION.finditer(text):
            if d.start() != pos:
                break
            total += float(d.group(1)) * _DURATION_NS[d.group(2)]
            pos = d.end()
        if pos == len(text):
            now_ns = time.time_ns() if now_ns is None else now_ns
            return now_ns - int(total)
    try:
        if re.match(r'^\d{4}-\d{2}-\d{2}$', text):
            text += 'T00:00:00Z'
        return util.parse_rfc3339_ns(text)
    except ValueError:
        raise errors.InvalidArgument(
            'invalid time value %r: use Unix seconds, RFC 3339 or a duration' % text)


class EventBus:
    def __init__(self, size=RING_SIZE):
        self._ring = collections.deque(maxlen=size)
        self._cond = threading.Condition()
        self._seq = 0

    def publish(self, type_, action, actor_id, attributes=None, scope='local'):
        now = time.time_ns()
        event = {
            'Type': type_,
            'Action': action,
            'Actor': {'ID': actor_id, 'Attributes': dict(attributes or {})},
            'scope': scope,
            'time': now // 1_000_000_000,
            'timeNano': now,
        }
        if type_ in ('container', 'image'):
            # The pre-1.22 fields, still read by older clients.
            event['status'] = action
            event['id'] = actor_id
            if type_ == 'container':
                event['from'] = event['Actor']['Attributes'].get('image', '')
        with self._cond:
            self._seq += 1
            self._ring.append((self._seq, event))
            self._cond.notify_all()
        return event

    def subscribe(self, since_ns=None, until_ns=None, match=None, stop=None, poll=1.0):
        """Yield events (replaying those at or after ``since_ns``), then new ones.

        As Docker: with ``since`` or ``until`` the buffered history is
        replayed (all of it when only ``until`` is given); an ``until`` in
        the past ends the stream after the replay.  Stops at ``until_ns`` or
        when ``stop()`` returns True; yields None every ``poll`` seconds of
        silence so callers can notice a gone client.
        """
        match = match or (lambda e: True)
        with self._cond:
            if since_ns is not None or until_ns is not None:
                floor = since_ns or 0
                backlog = [(s, e) for s, e in self._ring if e['timeNano'] >= floor]
            else:
                backlog = []
            last = self._ring[-1][0] if self._ring else self._seq
            if backlog:
                last = backlog[-1][0]
        for _, event in backlog:
            if until_ns is not None and event['timeNano'] > until_ns:
                return
            if match(event):
                yield event
        if until_ns is not None and until_ns < time.time_ns():
            return
        while True:
            if until_ns is not None and time.time_ns() > until_ns:
                return
            if stop is not None and stop():
                return
            with self._cond:
                new = [(s, e) for s, e in self._ring if s > last]
                if not new:
                    timeout = poll
                    if until_ns is not None:
                        timeout = max(0.0, min(poll, (until_ns - time.time_ns()) / 1e9))
                    self._cond.wait(timeout)
                    new = [(s, e) for s, e in self._ring if s > last]
            if not new:
                yield None
                continue
            last = new[-1][0]
            for _, event in new:
                if until_ns is not None and event['timeNano'] > until_ns:
                    return
                if match(event):
                    yield event


def image_attributes(images, image_id, attributes=None):
    """An image event's attributes as Docker sets them: the image's labels
    (while it still exists), then ``name``."""
    attrs = {}
    try:
        img = images.resolve(image_id)
        attrs.update((img.config.get('config') or {}).get('Labels') or {})
    except errors.EngineError:
        pass  # a "delete" event: the image is gone already
    attrs.update(attributes or {})
    return attrs


def reference_text(repo, tag):
    """The familiar ``repo:tag`` a commit named (``imageRef``), or ''."""
    if not repo:
        return ''
    try:
        return reference.parse(repo).with_tag(tag or 'latest').familiar()
    except errors.EngineError:
        return ''
