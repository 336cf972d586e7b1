"""Registries that lie: every lie ends in a clear error and nothing stored
(no image, no tag, no blob under the lied-about digest, no ingest
leftovers; engine_factory runs ``novadocker-engine check`` at teardown),
and the next honest pull works. Transient failures are retried.

Docker 20.10 against the same lies (checked by hand with this registry):
"filesystem layer verification failed for digest ..." for a wrong digest,
size or short body; "unknown blob" for a missing one; "invalid character
'<' looking for beginning of value" for garbage JSON; "stopped after 10
redirects"; 500s and a reset are retried (after 5 s and more).
"""

import re

import pytest

from tests import registries as regs

pytestmark = pytest.mark.compat

# Fast retries: the tests wait for backoff, not for the lies.
ENGINE_CONFIG = regs.engine_config_text(extra='retry_backoff = 0.05\n'
                                        'read_timeout = 10\n')

# Each lie and what the error must name (alternatives, case-insensitive).
LIES = {
    'wrong_digest': r'digest|verif',
    'wrong_size': r'size|length|digest|verif',
    'short_content_length': r'size|length|short|digest|verif|incomplete',
    'truncated': r'size|length|short|incomplete|truncat|connection|digest|verif',
    'missing_blob': r'unknown blob|blob unknown|not found|missing|404',
    'huge_manifest': r'too (large|big)|size|exceeds|limit',
    'garbage_manifest': r'json|manifest|invalid|parse',
    'garbage_config': r'json|config|invalid|parse',
    'redirect_loop': r'redirect',
}


@pytest.fixture
def lab(engine_factory, hostile_registry):
    """An engine of the test's own (busybox loaded, fast retries)."""
    eng = engine_factory(config=ENGINE_CONFIG)
    regs.require_engine_registry(eng)
    return eng


def assert_nothing_stored(eng, reg, image_id_before):
    img = reg.image
    assert regs.image_ids(eng) == image_id_before
    for ref in (reg.ref, '%s/%s@%s' % (reg.host, reg.repo,
                                       img.manifest_digest)):
        status, _ = eng.api_json('GET', '/images/%s/json' % ref)
        assert status == 404, ref
    # No blob of the image's own (its unique layer, its config) and no
    # half-written file in the ingest area.
    assert not regs.blob_present(eng, img.top_digest)
    assert not regs.blob_present(eng, img.config_digest)
    assert regs.ingest_leftovers(eng) == []


def assert_pulled_and_runs(eng, reg):
    img = reg.image
    status, data = eng.api_json('GET', '/images/%s/json' % reg.ref)
    assert status == 200, data
    assert data['Id'] == img.image_id
    assert '%s/%s@%s' % (reg.host, reg.repo, img.manifest_digest) in \
        data['RepoDigests']
    status, _, body = eng.api('POST', '/containers/create', {
        'Image': reg.ref, 'Cmd': ['head', '-c', '12', '/hostile-' + img.nonce],
        'HostConfig': {'NetworkMode': 'none'}})
    assert status == 201, body
    import json
    cid = json.loads(body)['Id']
    try:
        assert eng.api('POST', '/containers/%s/start' % cid)[0] == 204
        status, res = eng.api_json('POST', '/containers/%s/wait' % cid)
        assert res['StatusCode'] == 0
        _, _, logs = eng.api('GET', '/containers/%s/logs?stdout=1' % cid)
        # the unique layer's file, read from inside the container
        assert img.nonce.encode() in logs
    finally:
        eng.api('DELETE', '/containers/%s?force=1' % cid)


@pytest.mark.parametrize('behaviour', sorted(LIES))
def test_lie_fails_cleanly_then_honest_pull_works(behaviour, lab,
                                                  hostile_registry):
    reg = hostile_registry(behaviour)
    before = regs.image_ids(lab)
    res = regs.daemon_pull(lab, reg.ref, timeout=240)
    assert not res.ok, res.messages[-5:]
    assert res.error, res
    assert re.search(LIES[behaviour], res.error, re.I), res.error
    # A clear message names what failed, not a Python traceback.
    assert 'Traceback' not in res.error and len(res.error) < 2000
    assert_nothing_stored(lab, reg, before)

    reg.make_honest()
    res = regs.daemon_pull(lab, reg.ref)
    assert res.ok, res
    assert 'Status: Downloaded newer image for %s' % reg.ref in res.statuses()
    assert_pulled_and_runs(lab, reg)


@pytest.mark.parametrize('behaviour,gets', [('error_then_ok', 3),
                                            ('reset_then_ok', 2)])
def test_transient_failures_are_retried(behaviour, gets, lab,
                                        hostile_registry):
    reg = hostile_registry(behaviour)
    res = regs.daemon_pull(lab, reg.ref, timeout=240)
    assert res.ok, res
    assert reg.blob_gets(reg.image.top_digest) == gets
    assert_pulled_and_runs(lab, reg)


def test_interrupted_pull_keeps_no_image_and_reuses_done_layers(
        engine_factory, hostile_registry):
    """An engine without busybox pulls an image whose top layer is cut off
    every time: the pull fails and leaves no image, but the base layer it
    completed is not downloaded again by the next (honest) pull."""
    eng = engine_factory(config=ENGINE_CONFIG, load_busybox=False)
    regs.require_engine_registry(eng)
    reg = hostile_registry('truncated')
    base = reg.image.layers[0][0]
    res = regs.daemon_pull(eng, reg.ref, timeout=240)
    assert not res.ok
    assert regs.image_ids(eng) == set()
    assert reg.blob_gets(base) == 1
    reg.make_honest()
    res = regs.daemon_pull(eng, reg.ref)
    assert res.ok, res
    assert reg.blob_gets(base) == 1, 'the completed base layer was fetched again'
    assert_pulled_and_runs(eng, reg)


def test_engine_killed_mid_pull_keeps_no_image(engine_factory,
                                               hostile_registry):
    """SIGKILL the engine while a layer is half downloaded: after a restart
    there is no image, no half-written blob, the store checks clean, and
    the pull works."""
    import threading
    eng = engine_factory(config=ENGINE_CONFIG)
    regs.require_engine_registry(eng)
    reg = hostile_registry('stall')
    outcome = []

    def pull():
        try:
            outcome.append(regs.daemon_pull(eng, reg.ref, timeout=60))
        except Exception as exc:  # the engine dies under the request
            outcome.append(exc)
    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    assert reg.stalled.wait(60), 'the pull never reached the top layer'
    eng.kill()
    thread.join(30)
    reg.release.set()
    res = eng.check()
    assert res.returncode == 0, res.stdout + res.stderr
    eng.start()
    assert reg.image.image_id not in regs.image_ids(eng)
    assert eng.api_json('GET', '/images/%s/json' % reg.ref)[0] == 404
    assert not regs.blob_present(eng, reg.image.top_digest)
    assert regs.ingest_leftovers(eng) == []
    reg.make_honest()
    res = regs.daemon_pull(eng, reg.ref)
    assert res.ok, res
    assert_pulled_and_runs(eng, reg)
    # engine_factory checks the store again after stopping the engine


def test_lying_registry_is_refused_by_docker_too(dockerd, hostile_registry):
    """The reference behaviour: Docker 20.10 refuses a wrong digest."""
    reg = hostile_registry('wrong_digest')
    res = regs.daemon_pull(dockerd, reg.ref)
    assert not res.ok
    assert 'verification failed' in res.error
    assert reg.image.image_id not in regs.image_ids(dockerd)
