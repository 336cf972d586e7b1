"""Dockerfile builds (classic protocol) through the real docker CLI with
DOCKER_BUILDKIT=0 and docker-py: every test runs the built image or reads
its config and history back."""

import json
import os
import uuid

import docker
import pytest

from tests.compat.conftest import inspect

pytestmark = pytest.mark.compat

NOKIT = {'DOCKER_BUILDKIT': '0'}


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


@pytest.fixture
def tag(images_to_remove):
    def make(prefix='b'):
        t = 'compat-build-%s-%s:latest' % (prefix, uuid.uuid4().hex[:8])
        images_to_remove.append(t)
        return t
    return make


def build_dir(tmp_path, dockerfile, files=None):
    d = tmp_path / 'ctx'
    d.mkdir(exist_ok=True)
    (d / 'Dockerfile').write_text(dockerfile)
    for name, content in (files or {}).items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return str(d)


def no_build_containers(engine, docker_cli):
    out = ok(docker_cli(['ps', '-a', '--format', '{{.ID}} {{.Command}}'])).stdout
    return [l for l in out.splitlines() if '/bin/sh -c' in l and 'build-marker' in l]


def test_brief_ping_from_stdin(docker_cli, tag):
    """The brief's Dockerfile on stdin, then run the image."""
    t = tag('ping')
    dockerfile = ('FROM busybox\n'
                  'MAINTAINER Jane Doe <jane@example.com>\n'
                  'RUN echo build-marker > /built && echo step-output\n'
                  'ENTRYPOINT ["cat"]\n')
    res = ok(docker_cli(['build', '-t', t, '-'], input=dockerfile, env=NOKIT))
    assert 'Step 1/4 : FROM busybox' in res.stdout
    assert 'step-output' in res.stdout
    assert 'Successfully tagged %s' % t in res.stdout
    run = ok(docker_cli(['run', '--rm', t, '/built']))
    assert run.stdout == 'build-marker\n'
    hist = ok(docker_cli(['history', '--no-trunc', '--format', '{{.CreatedBy}}', t])).stdout
    assert hist.splitlines()[:3] == [
        '/bin/sh -c #(nop)  ENTRYPOINT ["cat"]',
        '/bin/sh -c echo build-marker > /built && echo step-output',
        '/bin/sh -c #(nop)  MAINTAINER Jane Doe <jane@example.com>']


def test_context_dir_metadata_and_history(docker_cli, engine, tmp_path, tag):
    t = tag('meta')
    d = build_dir(tmp_path, (
        'FROM busybox\n'
        'ARG GREETING=hello\n'
        'ENV APP_HOME=/app \\\n    MODE=prod\n'
        'WORKDIR $APP_HOME\n'
        'COPY hello.txt sub/ ./\n'
        'RUN echo "$GREETING-$MODE" > greeting && chown 1000 greeting\n'
        'LABEL org.example.name="my app"\n'
        'EXPOSE 8080/tcp\n'
        'VOLUME /data\n'
        'USER 1000\n'
        'STOPSIGNAL SIGTERM\n'
        'CMD ["sh", "-c", "cat /app/greeting /app/hello.txt /app/inner.txt; id -u; pwd; echo $MODE"]\n'),
        {'hello.txt': 'hello file\n', 'sub/inner.txt': 'inner\n'})
    res = ok(docker_cli(['build', '--build-arg', 'GREETING=hi', '-t', t, d], env=NOKIT))
    assert 'Step 12/12 : CMD' in res.stdout
    run = ok(docker_cli(['run', '--rm', t]))
    assert run.stdout == 'hi-prod\nhello file\ninner\n1000\n/app\nprod\n'
    img = inspect(engine, t, 'images')
    cfg = img['Config']
    assert cfg['Labels'] == {'org.example.name': 'my app'}
    assert cfg['ExposedPorts'] == {'8080/tcp': {}}
    assert cfg['Volumes'] == {'/data': {}}
    assert cfg['StopSignal'] == 'SIGTERM'
    assert cfg['User'] == '1000'
    assert 'GREETING=hi' not in cfg['Env']
    hist = ok(docker_cli(['history', '--no-trunc', '--format',
                          '{{.CreatedBy}}|{{.Size}}', t])).stdout.splitlines()
    created_by = [h.rsplit('|', 1)[0] for h in hist]
    assert created_by[0] == '/bin/sh -c #(nop)  CMD ["sh" "-c" "cat /app/greeting ' \
        '/app/hello.txt /app/inner.txt; id -u; pwd; echo $MODE"]'
    assert created_by[5] == '/bin/sh -c #(nop)  LABEL org.example.name=my app'
    assert created_by[6].startswith('|1 GREETING=hi /bin/sh -c echo "$GREETING-$MODE"')
    assert created_by[7].startswith('/bin/sh -c #(nop) COPY multi:')
    assert created_by[8] == '/bin/sh -c #(nop) WORKDIR /app'
    assert created_by[9] == '/bin/sh -c #(nop)  ENV APP_HOME=/app MODE=prod'
    assert created_by[10] == '/bin/sh -c #(nop)  ARG GREETING=hello'
    # Metadata rows have no layer; the RUN and COPY rows do.
    sizes = dict(zip(range(len(hist)), [h.rsplit('|', 1)[1] for h in hist]))
    assert sizes[0] == '0B' and sizes[5] == '0B' and sizes[8] == '0B'
    assert sizes[6] != '0B' and sizes[7] != '0B'
    assert len(img['RootFS']['Layers']) == len(
        inspect(engine, 'busybox', 'images')['RootFS']['Layers']) + 2  # COPY and RUN
