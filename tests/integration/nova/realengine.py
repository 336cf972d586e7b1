"""Real engines and a real registry for the Nova integration tests.

Nova's test classes are unittest-style, so they do not take the root
conftest's fixtures; this module starts what they need once per pytest
process, on first use, and ``shutdown()`` (called by the session fixture
in conftest.py) scrubs it all.

* ``engine(name)``: a novadocker-engine of its own (tests/daemons.Engine)
  with busybox:latest loaded; one per compute host in the functional test.
* ``registry()``: Debian's docker-registry on 127.0.0.1 (plain HTTP, which
  the engine allows for 127.0.0.0/8), behind a byte-counting proxy.
* ``bridge()``: a Linux bridge on the host for the instances' ports (made
  by the test, as Neutron's agent would; removed by ``shutdown()``).
* ``busybox_ref()``: busybox pushed to that registry, as the digest
  reference a Glance image's ``novadocker_image_ref`` holds
  (``127.0.0.1:PORT/library/busybox@sha256:...``). The tag used for the
  push is removed again, so an engine that boots it pulls by digest.
"""

import json
import os
import subprocess
import threading
import uuid

from tests import daemons
from tests import registries

_lock = threading.Lock()
_engines = {}
_registry = []
_refs = {}
_archive = []
_bridges = []


def busybox_archive():
    with _lock:
        if not _archive:
            base = daemons.short_tmpdir('nd-nova-img-')
            _archive.append(daemons.build_busybox_archive(base))
        return _archive[0]


def engine(name='default'):
    archive = busybox_archive()
    with _lock:
        eng = _engines.get(name)
        if eng is None:
            base = daemons.short_tmpdir('nd-nova-%s-' % name)
            eng = daemons.Engine(base)
            try:
                eng.start()
                eng.load(archive)
            except BaseException:
                log = eng.log_tail()
                eng.scrub()
                raise RuntimeError('could not start engine %s; log:\n%s' % (name, log))
            _engines[name] = eng
        return eng


def registry():
    with _lock:
        if not _registry:
            # With the byte-counting proxy in front (``.proxy``): tests can
            # tell how much a pull really fetched.
            reg = registries.DockerRegistry(daemons.short_tmpdir('nd-nova-reg-'), proxy=True)
            reg.start()
            _registry.append(reg)
        return _registry[0]


def busybox_ref():
    """busybox in the registry, by digest (pushed from the default engine)."""
    reg = registry()
    with _lock:
        if 'busybox' in _refs:
            return _refs['busybox']
    eng = engine()
    repo = '%s/library/busybox' % reg.host
    eng.api('POST', '/images/busybox:latest/tag?repo=%s&tag=pushed' % repo, expect=201)
    status, _, body = eng.api('POST', '/images/%s/push?tag=pushed' % repo, timeout=120)
    assert status == 200 and b'errorDetail' not in body, body
    _, info = eng.api_json('GET', '/images/%s:pushed/json' % repo)
    digests = [d for d in info['RepoDigests'] if d.startswith(repo + '@')]
    assert digests, info
    eng.api('DELETE', '/images/%s:pushed' % repo, expect=200)
    with _lock:
        _refs['busybox'] = digests[0]
    return digests[0]


def bridge():
    with _lock:
        if not _bridges:
            name = 'ndnova%s' % uuid.uuid4().hex[:6]
            subprocess.run(['ip', 'link', 'add', name, 'type', 'bridge'], check=True)
            _bridges.append(name)
            subprocess.run(['ip', 'link', 'set', name, 'up'], check=True)
        return _bridges[0]


def bridge_ports(name):
    res = subprocess.run(['ip', '-o', 'link', 'show', 'master', name],
                         capture_output=True, text=True, check=True)
    return [line.split(':')[1].strip() for line in res.stdout.splitlines() if line.strip()]


def containers(eng, label=None):
    path = '/containers/json?all=1'
    if label:
        path += '&filters=' + json.dumps({'label': [label]})
    status, items = eng.api_json('GET', path.replace(' ', ''))
    assert status == 200, items
    return items


def remove_all_containers():
    for eng in list(_engines.values()):
        eng.remove_all_containers()


def leftovers(eng):
    """What an engine holds that a deleted instance should not leave:
    containers, and network namespaces, mounts and runtime state under its
    root (tests/daemons helpers read /proc of the test host)."""
    found = {'containers': [c['Names'] for c in containers(eng)]}
    netns_dir = os.path.join(eng.root, 'run', 'netns')
    found['netns'] = sorted(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else []
    found['mounts'] = [m for m in daemons.mounts_under(eng.base)
                       if '/containers/' in m or '/rootfs' in m]
    _, nets = eng.api_json('GET', '/networks')
    found['networks'] = sorted(n['Name'] for n in nets if n['Name'].startswith('nova-'))
    return found


def shutdown():
    with _lock:
        for eng in _engines.values():
            try:
                eng.remove_all_containers()
                eng.stop()
            finally:
                eng.scrub()
        _engines.clear()
        for reg in _registry:
            reg.stop()
            daemons.scrub(reg.base)
        _registry.clear()
        for name in _bridges:
            subprocess.run(['ip', 'link', 'del', name], stderr=subprocess.DEVNULL)
        _bridges.clear()
        for path in _archive:
            daemons.scrub(os.path.dirname(path))
        _archive.clear()
