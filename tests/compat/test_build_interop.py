"""The same Dockerfiles built by our engine and by Docker 20.10's classic
builder (the ``dockerd`` fixture), both through the docker CLI 28 with
DOCKER_BUILDKIT=0: ``docker history`` (CREATED BY, which rows have a
layer), ``docker inspect`` (Config and ContainerConfig minus ids and
hostnames, Author) and what the image does when run must be the same.

Each case also pins Docker's behaviour on its own (the expected output of
the built image), so a case that fails on the engine still documents what
Docker does.  A case the engine does not match yet can name a strict xfail
reason for the engine part only (the owner in the reason); none does now.
"""

import json
import os
import re
import uuid

import pytest

from tests.compat.conftest import NOKIT, ok


pytestmark = pytest.mark.compat


PARITY = (
    'FROM busybox\n'
    'LABEL org.example.name="my app" version=1.0\n'
    'ENV APP_HOME=/app MODE=prod\n'
    'RUN mkdir -p $APP_HOME && echo "$MODE" > $APP_HOME/mode\n'
    'COPY hello.txt $APP_HOME/\n'
    'WORKDIR $APP_HOME\n'
    'CMD ["cat", "hello.txt", "mode"]\n'
    'EXPOSE 8080/tcp 53/udp\n'
    'USER nobody\n')

MULTI = (
    'ARG BASE=busybox\n'
    'ARG GREETING=hello\n'
    'FROM $BASE AS build\n'
    'ARG GREETING\n'
    'RUN mkdir /out && echo "$GREETING from build" > /out/msg\n'
    'FROM busybox AS other\n'
    'RUN echo other > /other\n'
    'FROM scratch\n'
    'COPY --from=build /out/msg /msg\n'
    'COPY --from=1 /other /other\n'
    'COPY --from=busybox /bin/busybox /bin/cat\n'
    'ENTRYPOINT ["/bin/cat"]\n'
    'CMD ["/msg", "/other"]\n')

STAGES = (
    'ARG V=1\n'
    'ARG FINAL_BASE=base\n'
    'FROM busybox AS base\n'
    'ARG V\n'
    'RUN echo "v$V" > /v\n'
    'FROM busybox AS unused\n'
    'RUN echo unused > /u\n'
    'FROM ${FINAL_BASE}\n'
    'RUN cat /v > /copied && ls /u 2>/dev/null || true\n'
    'CMD ["cat", "/copied"]\n')

MISC = (
    '# escape=`\n'
    'FROM busybox\n'
    'SHELL ["/bin/sh", "-e", "-c"]\n'
    'RUN echo "shell is $0" > /shell && `\n'
    '    echo continued `\n'
    '    >> /shell\n'
    'HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=4 '
    'CMD wget -q -O- http://localhost/ || exit 1\n'
    'ONBUILD RUN echo triggered > /trig\n'
    'ONBUILD ENV FROM_TRIGGER=yes\n'
    'CMD cat /shell\n')

HEALTH = (
    'FROM busybox\n'
    'HEALTHCHECK CMD ["true"]\n'
    'RUN echo x > /x\n'
    'HEALTHCHECK NONE\n')


# id: (Dockerfile, files, build flags, run argv (after the image), expected output,
#      engine xfail reason or None)
CASES = {
    'parity': (PARITY, {'hello.txt': 'hello\n'}, [], [], 'hello\nprod\n', None),
    'brief': ('FROM busybox\nMAINTAINER Mike BRIGHT\nRUN echo hi > /x\n'
              'ENTRYPOINT ["ping"]\n', {}, [], ['-c', '1', '127.0.0.1'],
              None, None),
    'args': ('ARG TAG=latest\nFROM busybox:${TAG}\nARG WHO=nobody\nARG TAG\n'
             'ENV E=$WHO\nRUN echo "who=$WHO tag=$TAG e=$E" > /args\n'
             'CMD ["cat", "/args"]\n', {}, ['--build-arg', 'WHO=me'], [],
             'who=me tag=latest e=me\n', None),
    'more-metadata': (
        'FROM busybox\n'
        'ARG VERSION=1.2\n'
        'ENV OLD_STYLE value with spaces\n'
        'ENV APP_PATH=/opt/bin:$PATH VERSION=$VERSION\n'
        'RUN mkdir -p /relative /abs/$VERSION\n'
        'LABEL "quoted key"="a b" plain=x \\\n      multi="line one"\n'
        'STOPSIGNAL SIGUSR1\n'
        'USER 1000:1000\n'
        'WORKDIR relative\n'
        'WORKDIR /abs/$VERSION\n'
        'ENTRYPOINT echo "entry $VERSION"\n'
        'CMD ["ignored by a shell-form entrypoint"]\n',
        {}, [], [], 'entry 1.2\n', None),
    'expose-as-written': ('FROM busybox\nENV WEB="80 8080"\nEXPOSE 443/tcp $WEB\n'
                          'EXPOSE 80\nCMD ["true"]\n', {}, [], [], '', None),
    'env-redefined': ('FROM busybox\nENV A=1\nENV PATH=/opt/bin:$PATH B=2\n', {}, [],
                      ['true'], '', None),
    'workdir-creates': ('FROM busybox\nWORKDIR /new/dir\nRUN pwd > /here\n', {}, [],
                        ['cat', '/here'], '/new/dir\n', None),
    'volume-history': ('FROM busybox\nVOLUME ["/data", "/logs"]\nVOLUME /cache\n', {}, [],
                       ['true'], '', None),
    'multistage': (MULTI, {}, [], [], 'hello from build\nother\n',
                   None),
    # The same stages onto busybox: everything but FROM scratch's PATH.
    'multistage-onto-busybox': (MULTI.replace('FROM scratch\n', 'FROM busybox\n'), {}, [], [],
                                'hello from build\nother\n', None),
    'target': (MULTI, {}, ['--target', 'build', '--build-arg', 'GREETING=hi'],
               ['cat', '/out/msg'], 'hi from build\n', None),
    'from-a-stage': (STAGES, {}, ['--build-arg', 'V=2'], [], 'v2\n', None),
    'from-a-stage-target': (STAGES, {}, ['--target', 'unused'], ['cat', '/u'],
                            'unused\n', None),
    'shell-healthcheck-onbuild-escape': (
        MISC, {}, [], [], 'shell is /bin/sh\ncontinued\n',
        None),
    'healthcheck-exec-and-none': (HEALTH, {}, [], ['cat', '/x'], 'x\n',
                                  None),
}


DIGEST = re.compile(r'\b(file|dir|multi):[0-9a-f]{64}\b')


def norm_created_by(text):
    # The digest of what COPY copied is each builder's own checksum.
    return DIGEST.sub(r'\1:<digest>', text)


def dangling(cli, host):
    return set(ok(cli(['images', '-q', '--no-trunc', '-f', 'dangling=true'],
                      host=host)).stdout.split())


def summary(cli, host, ref, base_rows):
    """What is compared: the rows the build added, the config, the author."""
    out = ok(cli(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}',
                  ref], host=host)).stdout.splitlines()
    rows = [tuple(line.rsplit('|', 1)) for line in out]
    if base_rows and rows[-len(base_rows):] == base_rows:
        rows = rows[:-len(base_rows)]
    info = json.loads(ok(cli(['inspect', ref], host=host)).stdout)[0]

    def config(cfg):
        cfg = dict(cfg or {})
        for key in ('Image', 'Hostname'):   # the parent's id, a container's id
            cfg.pop(key, None)
        return cfg
    return {
        'history': [(norm_created_by(c), s == '0B') for c, s in rows],
        'Config': config(info.get('Config')),
        # Docker 20.10 gives a step's container {} for no labels where the
        # image has null; ContainerConfig is deprecated, the difference is
        # left alone (see the qa report).
        'ContainerConfig': dict(config(info.get('ContainerConfig')),
                                Labels=(info.get('ContainerConfig') or {}).get('Labels') or {}),
        'Author': info.get('Author'),
        'Os': info.get('Os'), 'Architecture': info.get('Architecture'),
        'layers': len(info['RootFS'].get('Layers') or []),
    }


def build_and_describe(cli, host, tmp_path, name, case, tag):
    dockerfile, files, flags, run, expected, _ = case
    ctx = tmp_path / ('ctx-' + name)
    ctx.mkdir(parents=True)
    (ctx / 'Dockerfile').write_text(dockerfile)
    for fname, content in files.items():
        (ctx / fname).write_text(content)
    base = [tuple(l.rsplit('|', 1)) for l in ok(cli(
        ['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}', 'busybox'],
        host=host)).stdout.splitlines()]
    before = dangling(cli, host)
    # --no-cache: every step is made anew on both sides, so what is left
    # dangling is this build's own doing.
    res = ok(cli(['build', '--no-cache', '-t', tag] + flags + [str(ctx)], host=host,
                 env=NOKIT, timeout=180))
    left = dangling(cli, host) - before
    out = ok(cli(['run', '--rm', tag] + run, host=host))
    desc = summary(cli, host, tag, base)
    desc['run'] = out.stdout if expected is not None else (
        '1 packets received' in out.stdout)
    desc['dangling'] = len(left)
    steps = [l for l in res.stdout.splitlines() if l.startswith('Step ')]
    return desc, steps, res.stdout


def remove(cli, host, ref):
    cli(['rmi', '-f', ref], host=host)


@pytest.mark.parametrize('name', list(CASES))
def test_same_history_and_config_as_docker(engine, dockerd, docker_cli, tmp_path,
                                           request, name):
    case = CASES[name]
    tag = 'interop-build-%s-%s:latest' % (name, uuid.uuid4().hex[:8])
    try:
        theirs, their_steps, _ = build_and_describe(
            docker_cli, dockerd.url, tmp_path / 'docker', name, case, tag)
    finally:
        remove(docker_cli, dockerd.url, tag)
    # Docker's own behaviour, pinned.
    expected = case[4]
    assert theirs['run'] == (expected if expected is not None else True)
    # Docker leaves the last image of every stage but the final one dangling.
    assert theirs['dangling'] == {'multistage': 2, 'multistage-onto-busybox': 2,
                                  'from-a-stage': 1,
                                  'from-a-stage-target': 1}.get(name, 0)
    if case[5]:
        request.applymarker(pytest.mark.xfail(strict=True, reason=case[5]))
    try:
        ours, our_steps, _ = build_and_describe(
            docker_cli, engine.url, tmp_path / 'engine', name, case, tag)
    finally:
        remove(docker_cli, engine.url, tag)
    assert our_steps == their_steps
    assert ours['history'] == theirs['history']
    assert ours['Config'] == theirs['Config']
    assert ours['ContainerConfig'] == theirs['ContainerConfig']
    assert ours['Author'] == theirs['Author']
    assert ours['layers'] == theirs['layers']
    assert ours['run'] == theirs['run']
    # Stages other than the last: Docker leaves each one's image dangling;
    # we leave no more than that.
    assert ours['dangling'] <= theirs['dangling']


def test_onbuild_triggers_run_in_the_child_build(engine, dockerd, docker_cli, tmp_path,
                                                 request):
    """ONBUILD instructions run, with Docker's "# Executing N build triggers"
    line, when the image is the base of a second build; the child's config
    drops OnBuild."""
    results = []
    for host, who in ((dockerd.url, 'docker'), (engine.url, 'engine')):
        parent = 'interop-onbuild-%s:p' % uuid.uuid4().hex[:8]
        child = parent.replace(':p', ':c')
        try:
            ok(docker_cli(['build', '-t', parent, '-'], input=MISC, host=host, env=NOKIT))
            parent_cfg = json.loads(ok(docker_cli(['inspect', parent], host=host)).stdout)[0]
            res = ok(docker_cli(['build', '-t', child, '-'], host=host, env=NOKIT,
                                input='FROM %s\nRUN cat /trig\n' % parent))
            child_cfg = json.loads(ok(docker_cli(['inspect', child], host=host)).stdout)[0]
            hist = ok(docker_cli(['history', '--no-trunc', '--format', '{{.CreatedBy}}',
                                  child], host=host)).stdout.splitlines()[:3]
            results.append((
                parent_cfg['Config'].get('OnBuild'), child_cfg['Config'].get('OnBuild'),
                'FROM_TRIGGER=yes' in child_cfg['Config']['Env'],
                child_cfg['Config'].get('Healthcheck'),
                [l for l in res.stdout.splitlines() if l.startswith(('Step', '# '))],
                'triggered' in res.stdout, hist))
        finally:
            remove(docker_cli, host, child)
            remove(docker_cli, host, parent)
        if who == 'docker':
            assert results[0][0] == ['RUN echo triggered > /trig', 'ENV FROM_TRIGGER=yes']
            assert results[0][1] in (None, [])
            assert results[0][4][:2] == ['Step 1/2 : FROM %s' % parent,
                                         '# Executing 2 build triggers']
    ours, theirs = results[1], results[0]
    # The Step line names the daemon's own tag.
    assert ours[4][1:] == theirs[4][1:]
    assert ours[:4] + ours[5:] == theirs[:4] + theirs[5:]


@pytest.mark.parametrize('dockerfile,flags,engine_xfail', [
    (MULTI, ['--target', 'nosuch'], None),
    ('FROM busybox\nCOPY --from=5 /a /b\n', [], None),
    ('FROM busybox AS x\nFROM busybox\nCOPY --from=1 /a /b\n', [], None),
    ('FROM busybox AS one\nFROM busybox AS one\n', [], None),
], ids=['unknown-target', 'stage-index-out-of-bounds', 'stage-index-current',
        'duplicate-stage'])
def test_multistage_errors_as_docker(engine, dockerd, docker_cli, tmp_path, request,
                                     dockerfile, flags, engine_xfail):
    messages = []
    for host, who in ((dockerd.url, 'docker'), (engine.url, 'engine')):
        if who == 'engine' and engine_xfail:
            request.applymarker(pytest.mark.xfail(strict=True, reason=engine_xfail))
        res = docker_cli(['build'] + flags + ['-'], input=dockerfile, host=host, env=NOKIT)
        assert res.returncode != 0
        messages.append([l for l in res.stderr.splitlines()
                         if l.strip() and 'DEPRECATED' not in l and 'BuildKit' not in l
                         and 'environment-variable' not in l])
    assert messages[1] == messages[0]


def cached_steps(stdout):
    """For each Step line of a build's output: True when it came from the
    cache, False when it was made, None for steps that make no image (ARG
    before FROM, FROM)."""
    flags = []
    for line in stdout.splitlines():
        if line.startswith('Step '):
            flags.append(None)
        elif flags and flags[-1] is None:
            if line == ' ---> Using cache':
                flags[-1] = True
            elif line.startswith(' ---> ') and flags[-1] is None and len(flags) > 1:
                # Made anew: Docker says "Running in" first, we may print the
                # new id straight away (metadata steps).
                flags[-1] = False
    return flags


CACHE_DOCKERFILE = (
    'FROM busybox\n'
    'ARG FLAVOUR=plain\n'
    'ENV MODE=test\n'
    'RUN echo first > /first\n'
    'COPY tree /tree\n'
    'RUN ls -lR /tree | cut -c1-10 > /modes\n'
    'COPY single.txt /single.txt\n'
    'RUN echo "$FLAVOUR" > /flavour\n'
    'CMD ["cat", "/flavour"]\n')


def test_cache_hits_and_misses_as_docker(engine, dockerd, docker_cli, tmp_path):
    """The same context edited the same way between builds: every step is
    a cache hit or a miss on our engine exactly when it is on Docker's."""
    patterns = []
    for host in (dockerd.url, engine.url):
        ctx = tmp_path / ('ctx-%d' % len(patterns))
        (ctx / 'tree' / 'sub').mkdir(parents=True)
        (ctx / 'Dockerfile').write_text(CACHE_DOCKERFILE)
        (ctx / 'tree' / 'a.sh').write_text('echo a\n')
        (ctx / 'tree' / 'sub' / 'b').write_text('b\n')
        (ctx / 'single.txt').write_text('one\n')
        tag = 'interop-cache-%s:latest' % uuid.uuid4().hex[:8]
        edits = [
            ('first build', None, []),
            ('unchanged', None, []),
            ('mtime only', lambda: os.utime(ctx / 'tree' / 'a.sh', (2e9, 2e9)), []),
            ('mode', lambda: os.chmod(ctx / 'tree' / 'a.sh', 0o755), []),
            ('new file in a copied dir', lambda: (ctx / 'tree' / 'sub' / 'c').write_text('c\n'), []),
            ('build arg', None, ['--build-arg', 'FLAVOUR=spicy']),
            ('same build arg again', None, ['--build-arg', 'FLAVOUR=spicy']),
            ('single file content', lambda: (ctx / 'single.txt').write_text('two\n'),
             ['--build-arg', 'FLAVOUR=spicy']),
            ('an unused file', lambda: (ctx / 'unused').write_text('u\n'),
             ['--build-arg', 'FLAVOUR=spicy']),
        ]
        seen = []
        try:
            for what, edit, flags in edits:
                if edit:
                    edit()
                res = ok(docker_cli(['build', '-t', tag] + flags + [str(ctx)], host=host,
                                    env=NOKIT))
                seen.append((what, cached_steps(res.stdout)))
            seen.append(('output', ok(docker_cli(['run', '--rm', tag], host=host)).stdout))
        finally:
            remove(docker_cli, host, tag)
        patterns.append(seen)
    theirs, ours = patterns
    # Docker's pattern, pinned: a hit for every step of an unchanged build.
    assert theirs[0] == ('first build', [None] + [False] * 8)
    assert theirs[1] == ('unchanged', [None] + [True] * 8)
    assert theirs[3] == ('mode', [None] + [True] * 3 + [False] * 5)
    # Every RUN after the ARG is keyed by the args in scope: a new value
    # misses from the first RUN on, even one that does not use it.
    assert theirs[5] == ('build arg', [None] + [True] * 2 + [False] * 6)
    assert ours == theirs
