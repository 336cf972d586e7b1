"""The engine's event bus: what `docker events` streams.

Events are kept in a bounded in-memory ring so ``since`` can replay recent
history; subscribers get new events through a condition variable.
"""

import collections
import threading
import time

RING_SIZE = 1024


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
        if type_ == 'container':
            # The pre-1.22 fields, still read by older clients.
            event['status'] = action
            event['id'] = actor_id
            event['from'] = event['Actor']['Attributes'].get('image', '')
        with self._cond:
            self._seq += 1
            self._ring.append((self._seq, event))
            self._cond.notify_all()
        return event

    def subscribe(self, since_ns=None, until_ns=None, match=None, stop=None, poll=1.0):
        """Yield events (replaying those at or after ``since_ns``), then new ones.

        Stops at ``until_ns`` or when ``stop()`` returns True; yields None
        every ``poll`` seconds of silence so callers can notice a gone client.
        """
        match = match or (lambda e: True)
        with self._cond:
            if since_ns is not None:
                backlog = [(s, e) for s, e in self._ring if e['timeNano'] >= since_ns]
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
