"""A real engine for the Heat integration tests.

HeatTestCase is unittest-style, so it does not take the root conftest's
fixtures; like tests/integration/nova/realengine.py this module starts one
novadocker-engine (tests/daemons.Engine, busybox:latest loaded) on first use,
and ``shutdown()`` (the session fixture in conftest.py) scrubs it: its
containers, networks, mounts and files.
"""

import json
import os
import threading

from tests import daemons

_lock = threading.Lock()
_engine = []
_archive = []


def engine():
    with _lock:
        if _engine:
            return _engine[0]
        base = daemons.short_tmpdir('nd-heat-')
        if not _archive:
            _archive.append(daemons.build_busybox_archive(base))
        eng = daemons.Engine(base)
        try:
            eng.start()
            eng.load(_archive[0])
        except BaseException:
            log = eng.log_tail()
            eng.scrub()
            raise RuntimeError('could not start the engine; log:\n%s' % log)
        _engine.append(eng)
        return eng


def networks(eng, label=None):
    """The engine's networks (optionally only those with ``label``)."""
    path = '/networks'
    if label:
        path += '?filters=' + json.dumps({'label': [label]}).replace(' ', '')
    status, items = eng.api_json('GET', path)
    assert status == 200, items
    return items


def containers(eng, label=None):
    path = '/containers/json?all=1'
    if label:
        path += '&filters=' + json.dumps({'label': [label]}).replace(' ', '')
    status, items = eng.api_json('GET', path)
    assert status == 200, items
    return items


def shutdown():
    with _lock:
        for eng in _engine:
            try:
                eng.remove_all_containers()
                eng.stop()
            finally:
                eng.scrub()
        _engine.clear()
        for path in _archive:
            daemons.scrub(os.path.dirname(path))
        _archive.clear()
