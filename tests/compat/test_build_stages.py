"""Builder, second part: stages and targets, SHELL, HEALTHCHECK, ONBUILD,
base images pulled from a real registry (``pull``, X-Registry-Config),
``cachefrom`` across engines and the fate of a failed RUN's container.

Everything goes through the real docker CLI (DOCKER_BUILDKIT=0) or the raw
API, and every result is read back from the built image or a container.
"""

import io
import json
import tarfile
import urllib.parse

import pytest

from tests import daemons
from tests.compat.conftest import NOKIT, inspect, ok
from tests.conftest import run_docker

pytestmark = pytest.mark.compat



def build_api(eng, dockerfile, params=None, headers=None, files=None):
    """POST /build with a tar context; returns (status, [messages])."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for name, data in dict(files or {}, Dockerfile=dockerfile).items():
            raw = data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    query = urllib.parse.urlencode(params or {}, doseq=True)
    hdrs = {'Content-Type': 'application/x-tar'}
    hdrs.update(headers or {})
    status, _, body = daemons.api(eng.sock, 'POST', '/build?' + query,
                                  body=buf.getvalue(), headers=hdrs, timeout=120)
    if status != 200:
        return status, [json.loads(body)] if body.strip() else []
    return status, [json.loads(l) for l in body.splitlines() if l.strip()]


def text_of(messages):
    return ''.join(m.get('stream', '') for m in messages)


def built_id(messages):
    for m in messages:
        if 'aux' in m:
            return m['aux']['ID']
    raise AssertionError('no image id in %r' % messages)


STAGES = ('FROM busybox AS base\n'
          'RUN echo base > /b\n'
          'FROM base AS test\n'
          'RUN cat /b > /t && echo tested >> /t\n'
          'FROM busybox AS Other\n'
          'RUN echo other > /o\n')


def test_stages_and_target(docker_cli, tag):
    """A later stage builds FROM an earlier one; --target stops the build
    after the named stage, whose image alone gets the tag."""
    t_full, t_test = tag('full'), tag('test')
    full = ok(docker_cli(['build', '-t', t_full, '-'], input=STAGES, env=NOKIT))
    assert 'Step 6/6 : RUN echo other > /o' in full.stdout
    assert ok(docker_cli(['run', '--rm', t_full, 'cat', '/o'])).stdout == 'other\n'
    assert docker_cli(['run', '--rm', t_full, 'cat', '/t']).returncode != 0

    res = ok(docker_cli(['build', '--target', 'test', '-t', t_test, '-'],
                        input=STAGES, env=NOKIT))
    assert 'Step 4/4 : RUN cat /b > /t && echo tested >> /t' in res.stdout
    assert 'echo other' not in res.stdout
    # The stages were built before: every step comes from the cache.
    assert res.stdout.count('Using cache') == 2
    out = ok(docker_cli(['run', '--rm', t_test, 'cat', '/t'])).stdout
    assert out == 'base\ntested\n'

    # Stage names are case-insensitive; an unknown target is a 400 before
    # any step runs.
    other = ok(docker_cli(['build', '--target', 'OTHER', '-q', '-'], input=STAGES,
                          env=NOKIT)).stdout.strip()
    assert ok(docker_cli(['run', '--rm', other, 'cat', '/o'])).stdout == 'other\n'
    bad = docker_cli(['build', '--target', 'nope', '-'], input=STAGES, env=NOKIT)
    assert bad.returncode == 1
    assert 'failed to reach build target nope in Dockerfile' in bad.stderr
    assert 'Step 1/' not in bad.stdout


def test_stage_name_errors(engine):
    status, msgs = build_api(engine, 'FROM busybox AS a\nFROM busybox AS A\n')
    assert status == 200
    assert msgs[-1]['error'] == 'a stage name already used'
    # Unknown COPY/ADD flags are parse errors too: a 400 before any step.
    status, msgs = build_api(engine, 'FROM busybox\nRUN true\nCOPY --foo=1 a /b\n')
    assert status == 400
    assert msgs[0]['message'] == 'dockerfile parse error line 3: Unknown flag: foo'
    status, msgs = build_api(engine, 'FROM busybox AS 1st\n')
    assert status == 400
    assert 'invalid name for build stage: "1st"' in msgs[0]['message']


def test_arg_before_from_names_every_stage(engine, tag):
    t = tag('metaarg')
    dockerfile = ('ARG BASE=busybox\nARG GREETING=hi\n'
                  'FROM $BASE AS one\nRUN echo one > /one\n'
                  'FROM ${BASE}\nARG GREETING\nRUN echo "$GREETING" > /g\n')
    status, msgs = build_api(engine, dockerfile, {'t': t,
                                                  'buildargs': json.dumps({'GREETING': 'hey'})})
    assert status == 200
    assert 'errorDetail' not in msgs[-1], msgs
    assert 'Step 7/7' in text_of(msgs)
    res = run_docker(['run', '--rm', t, 'cat', '/g'], engine.url)
    assert res.stdout == 'hey\n'


def test_shell_instruction(docker_cli, engine, tag):
    t = tag('shell')
    dockerfile = ('FROM busybox\n'
                  'SHELL ["/bin/sh", "-xc"]\n'
                  'RUN echo traced > /traced\n'
                  'CMD echo from-cmd\n')
    res = ok(docker_cli(['build', '-t', t, '-'], input=dockerfile, env=NOKIT))
    # sh -x traces the command on stderr, which the build streams.
    assert '+ echo traced' in res.stdout
    cfg = inspect(engine, t, 'images')['Config']
    assert cfg['Shell'] == ['/bin/sh', '-xc']
    assert cfg['Cmd'] == ['/bin/sh', '-xc', 'echo from-cmd']
    run = docker_cli(['run', '--rm', t])
    assert run.stdout == 'from-cmd\n'
    assert '+ echo from-cmd' in run.stderr
    hist = ok(docker_cli(['history', '--no-trunc', '--format', '{{.CreatedBy}}', t])).stdout
    assert hist.splitlines()[:3] == [
        '/bin/sh -xc #(nop)  CMD ["/bin/sh" "-xc" "echo from-cmd"]',
        '/bin/sh -xc echo traced > /traced',
        # Docker sets the shell before it writes the step's comment.
        '/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]']


def test_healthcheck_stored_in_config(docker_cli, engine, tag):
    t = tag('health')
    dockerfile = ('FROM busybox\n'
                  'HEALTHCHECK --interval=5s --timeout=2s --retries=4 '
                  'CMD wget -q -O- http://127.0.0.1/ || exit 1\n')
    ok(docker_cli(['build', '-t', t, '-'], input=dockerfile, env=NOKIT))
    hc = inspect(engine, t, 'images')['Config']['Healthcheck']
    assert hc == {'Test': ['CMD-SHELL', 'wget -q -O- http://127.0.0.1/ || exit 1'],
                  'Interval': 5000000000, 'Timeout': 2000000000, 'Retries': 4}
    hist = ok(docker_cli(['history', '--no-trunc', '--format', '{{.CreatedBy}}', t])).stdout
    assert hist.splitlines()[0] == (
        '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "wget -q -O- '
        'http://127.0.0.1/ || exit 1"] "5s" "2s" "0s" \'\\x04\'}')
    # NONE in a child switches it off.
    t2 = tag('nohealth')
    ok(docker_cli(['build', '-t', t2, '-'], input='FROM %s\nHEALTHCHECK NONE\n' % t,
                  env=NOKIT))
    assert inspect(engine, t2, 'images')['Config']['Healthcheck'] == {'Test': ['NONE']}


def test_onbuild_triggers_run_in_the_child_build(docker_cli, engine, tag, tmp_path):
    base, child = tag('onbuild-base'), tag('onbuild-child')
    ok(docker_cli(['build', '-t', base, '-'], env=NOKIT, input=(
        'FROM busybox\n'
        'ONBUILD ENV TRIGGERED=yes\n'
        'ONBUILD RUN echo "trigger saw $TRIGGERED" > /trig\n')))
    cfg = inspect(engine, base, 'images')['Config']
    assert cfg['OnBuild'] == ['ENV TRIGGERED=yes', 'RUN echo "trigger saw $TRIGGERED" > /trig']
    # Nothing ran in the base itself.
    assert docker_cli(['run', '--rm', base, 'cat', '/trig']).returncode != 0

    res = ok(docker_cli(['build', '-t', child, '-'], env=NOKIT,
                        input='FROM %s\nRUN cat /trig\n' % base))
    assert '# Executing 2 build triggers' in res.stdout
    assert 'trigger saw yes' in res.stdout
    assert ok(docker_cli(['run', '--rm', child, 'cat', '/trig'])).stdout == 'trigger saw yes\n'
    cfg = inspect(engine, child, 'images')['Config']
    assert not cfg.get('OnBuild')
    assert 'TRIGGERED=yes' in cfg['Env']
    # A grandchild runs no triggers any more.
    res = ok(docker_cli(['build', '-q', '-'], env=NOKIT, input='FROM %s\n' % child))
    assert 'Executing' not in res.stdout


def test_run_on_empty_scratch_is_a_clear_error(engine):
    status, msgs = build_api(engine, 'FROM scratch\nRUN true\n')
    assert status == 200
    assert 'FROM scratch and has no files yet' in msgs[-1]['error']


def _containers(eng):
    status, data = daemons.api_json(eng.sock, 'GET', '/containers/json?all=1')
    assert status == 200
    return {c['Id'] for c in data}


@pytest.mark.parametrize('params,kept', [
    ({}, False), ({'forcerm': '1'}, False), ({'forcerm': '0'}, True), ({'rm': '0'}, True)])
def test_failed_run_container(engine, params, kept):
    """A failed RUN leaves no container unless forcerm=0 (or rm=0) was
    asked for; the error carries the exit code and the output."""
    before = _containers(engine)
    status, msgs = build_api(engine, 'FROM busybox\nRUN echo failing-step; exit 3\n',
                             params)
    assert status == 200
    assert 'failing-step' in text_of(msgs)
    err = msgs[-1]
    assert err['errorDetail'] == {'message': "The command '/bin/sh -c echo failing-step; "
                                             "exit 3' returned a non-zero code: 3",
                                  'code': 3}
    left = _containers(engine) - before
    try:
        assert len(left) == (1 if kept else 0)
    finally:
        for cid in left:
            daemons.api(engine.sock, 'DELETE', '/containers/%s?force=1' % cid)


def _cli(eng, config_dir):
    def run(args, input=None):
        return run_docker(args, eng.url, input=input, timeout=120, env=NOKIT,
                          docker_config=config_dir)
    return run


@pytest.mark.slow
def test_base_pulled_from_a_registry_and_pull_refreshes_it(engine_factory, registry,
                                                           docker_config_dir):
    """A FROM image missing locally is pulled (with progress in the build
    output); ``--pull`` fetches a newer base even when one is present."""
    first = engine_factory()
    second = engine_factory(load_busybox=False)
    one, two = _cli(first, docker_config_dir), _cli(second, docker_config_dir)
    base = '%s/build/base:1' % registry.host
    ok(one(['build', '-t', base, '-'], input='FROM busybox\nRUN echo v1 > /version\n'))
    ok(one(['push', base]))

    res = ok(two(['build', '-t', 'child:1', '-'],
                 input='FROM %s\nRUN cat /version > /seen\n' % base))
    assert 'Pulling from build/base' in res.stdout
    assert ok(two(['run', '--rm', 'child:1', 'cat', '/seen'])).stdout == 'v1\n'

    # A new base under the same tag: a plain build keeps the local one,
    # --pull takes the new one.
    ok(one(['build', '-t', base, '-'], input='FROM busybox\nRUN echo v2 > /version\n'))
    ok(one(['push', base]))
    ok(two(['build', '-t', 'child:2', '-'], input='FROM %s\nRUN cat /version > /seen\n' % base))
    assert ok(two(['run', '--rm', 'child:2', 'cat', '/seen'])).stdout == 'v1\n'
    res = ok(two(['build', '--pull', '-t', 'child:3', '-'],
                 input='FROM %s\nRUN cat /version > /seen\n' % base))
    assert 'Pulling from build/base' in res.stdout
    assert ok(two(['run', '--rm', 'child:3', 'cat', '/seen'])).stdout == 'v2\n'


@pytest.mark.slow
def test_cache_from_a_pulled_image(engine_factory, registry, docker_config_dir):
    """An image built on one engine, pushed, and pulled on another (no
    parent links travel) serves as the cache with --cache-from: every step
    is reused and the result is the same image."""
    first = engine_factory()
    second = engine_factory()
    one, two = _cli(first, docker_config_dir), _cli(second, docker_config_dir)
    ref = '%s/build/app:1' % registry.host
    dockerfile = ('FROM busybox\nENV MODE=prod\n'
                  'RUN echo "$MODE" > /mode\nWORKDIR /app\nCMD ["cat", "/mode"]\n')
    ok(one(['build', '-t', ref, '-'], input=dockerfile))
    ok(one(['push', ref]))
    original = inspect(first, ref, 'images')['Id']
    ok(two(['pull', ref]))

    # Without --cache-from the pulled image gives no cache on a classic build.
    res = ok(two(['build', '-'], input=dockerfile))
    assert 'Using cache' not in res.stdout
    res = ok(two(['build', '--cache-from', ref, '-t', 'rebuilt:1', '-'], input=dockerfile))
    assert res.stdout.count('Using cache') == 4, res.stdout
    assert inspect(second, 'rebuilt:1', 'images')['Id'] == original
    # A changed step misses from there on, the steps before still hit.
    res = ok(two(['build', '--cache-from', ref, '-'],
                  input=dockerfile.replace('ENV MODE=prod', 'ENV MODE=prod\nENV EXTRA=1')))
    assert res.stdout.count('Using cache') == 1, res.stdout


def test_workdir_creates_its_directory_in_a_layer(docker_cli, engine, tag):
    """As Docker: WORKDIR makes a missing directory (root-owned 0755) in a
    layer of its own; one that exists adds no layer."""
    t = tag('workdir')
    ok(docker_cli(['build', '-t', t, '-'], env=NOKIT, input=(
        'FROM busybox\nUSER 1000\nWORKDIR /srv/app\nWORKDIR /tmp\nWORKDIR sub\n')))
    base_layers = len(inspect(engine, 'busybox:latest', 'images')['RootFS']['Layers'])
    assert len(inspect(engine, t, 'images')['RootFS']['Layers']) == base_layers + 2
    out = ok(docker_cli(['run', '--rm', '-w', '/', t, 'stat', '-c', '%n %u %a',
                         '/srv/app', '/tmp/sub'])).stdout.split('\n')
    assert out[:2] == ['/srv/app 0 755', '/tmp/sub 0 755']
    # A file in the way is a clear error.
    res = docker_cli(['build', '-'], env=NOKIT, input='FROM busybox\nWORKDIR /bin/sh/x\n')
    assert res.returncode == 1
    assert 'failed to create the WORKDIR /bin/sh/x: /bin/sh is not a directory' in res.stderr
