"""The builder as the issue names it, through the real docker CLI 28
(DOCKER_BUILDKIT=0) and docker-py: the brief's my/ping, build args,
.dockerignore, cache hits and misses, git contexts with a ``#ref:subdir``
fragment, and errors that leave nothing behind.

tests/compat/test_build.py covers the first slice (metadata, the basic
cache, a failing RUN, docker-py); this file adds what it does not.
"""

import functools
import http.server
import io
import json
import os
import socketserver
import subprocess
import threading
import time
import urllib.parse
import uuid

import docker
import pytest

from tests import daemons
from tests.compat.conftest import NOKIT, inspect, ok

pytestmark = pytest.mark.compat


# The brief's Dockerfile on the locally built busybox: its "apt-get install
# ping" becomes a RUN that proves ping works inside a build container (and
# leaves a file, so the step has a layer).
BRIEF = ('FROM busybox\n'
         'MAINTAINER Mike BRIGHT\n'
         '\n'
         'RUN ping -c 1 127.0.0.1 > /ping-at-build.txt\n'
         '\n'
         'ENTRYPOINT ["ping"]\n')


def write_tree(root, files):
    os.makedirs(root, exist_ok=True)
    for name, content in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(content)
    return str(root)


def history(docker_cli, ref):
    out = ok(docker_cli(['history', '--no-trunc', '--format',
                         '{{.CreatedBy}}|{{.Size}}', ref])).stdout
    return [tuple(line.rsplit('|', 1)) for line in out.splitlines()]


def cache_hits(stdout):
    return stdout.count(' ---> Using cache\n')


def ran(stdout):
    return stdout.count(' ---> Running in ')


# -- the brief ------------------------------------------------------------

def test_brief_my_ping(docker_cli, engine, images_to_remove, names):
    images_to_remove.append('my/ping:latest')
    res = ok(docker_cli(['build', '-t', 'my/ping', '-'], input=BRIEF, env=NOKIT))
    steps = [l for l in res.stdout.splitlines() if l.startswith('Step ')]
    assert steps == ['Step 1/4 : FROM busybox',
                     'Step 2/4 : MAINTAINER Mike BRIGHT',
                     'Step 3/4 : RUN ping -c 1 127.0.0.1 > /ping-at-build.txt',
                     'Step 4/4 : ENTRYPOINT ["ping"]']
    assert 'Successfully tagged my/ping:latest' in res.stdout
    image = inspect(engine, 'my/ping', 'images')
    short = image['Id'].split(':')[1][:12]
    assert 'Successfully built %s' % short in res.stdout

    # docker run my/ping ARGS: the ENTRYPOINT runs with the arguments.
    run = ok(docker_cli(['run', '--rm', 'my/ping', '-c', '1', '127.0.0.1']))
    assert run.stdout.startswith('PING 127.0.0.1 (127.0.0.1): 56 data bytes\n')
    assert '1 packets transmitted, 1 packets received, 0% packet loss' in run.stdout
    # The RUN step pinged too, inside its build container.
    built = ok(docker_cli(['run', '--rm', '--entrypoint', 'cat', 'my/ping',
                           '/ping-at-build.txt'])).stdout
    assert '1 packets received' in built
    # The brief's detached form, read back through the logs.
    name = names('ping')
    ok(docker_cli(['run', '--name', name, '-d', 'my/ping', '-c', '2', '127.0.0.1']))
    ok(docker_cli(['wait', name]))
    logs = ok(docker_cli(['logs', name])).stdout
    assert logs.count('bytes from 127.0.0.1') == 2

    # docker images lists it; docker inspect shows the MAINTAINER.
    listed = ok(docker_cli(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}',
                            'my/ping'])).stdout
    assert listed == 'my/ping:latest %s\n' % short
    assert ok(docker_cli(['inspect', '-f', '{{.Author}}', 'my/ping'])).stdout == 'Mike BRIGHT\n'
    assert image['Author'] == 'Mike BRIGHT'
    assert image['Config']['Entrypoint'] == ['ping']
    assert image['Config']['Cmd'] is None

    # docker history: one row per step on top of busybox's rows; the
    # metadata steps are 0B, the RUN has a layer.
    rows = history(docker_cli, 'my/ping')
    base = history(docker_cli, 'busybox')
    assert rows[3:] == base
    assert rows[:3] == [
        ('/bin/sh -c #(nop)  ENTRYPOINT ["ping"]', '0B'),
        ('/bin/sh -c ping -c 1 127.0.0.1 > /ping-at-build.txt', rows[1][1]),
        ('/bin/sh -c #(nop)  MAINTAINER Mike BRIGHT', '0B')]
    assert rows[1][1] != '0B'
    table = ok(docker_cli(['history', 'my/ping'])).stdout.splitlines()
    assert table[0].split() == ['IMAGE', 'CREATED', 'CREATED', 'BY', 'SIZE', 'COMMENT']
    assert len(table) == 1 + len(rows)
    assert table[1].startswith(short)
    assert len(image['RootFS']['Layers']) == len(
        inspect(engine, 'busybox', 'images')['RootFS']['Layers']) + 1

    # "Images are cached": the same build again reuses every step.
    again = ok(docker_cli(['build', '-t', 'my/ping', '-'], input=BRIEF, env=NOKIT)).stdout
    assert cache_hits(again) == 3 and ran(again) == 0
    assert 'Successfully built %s' % short in again
    assert inspect(engine, 'my/ping', 'images')['Id'] == image['Id']


# -- build args -------------------------------------------------------------

ARGS_DOCKERFILE = (
    'ARG BASE_TAG=latest\n'
    'FROM busybox:${BASE_TAG}\n'
    'ARG WHO=nobody\n'
    'ARG WHERE=default-where\n'
    'ARG FROM_ENV\n'
    'ARG BASE_TAG\n'
    'RUN echo "who=$WHO where=$WHERE env=$FROM_ENV base=$BASE_TAG" > /args\n'
    'CMD ["cat", "/args"]\n')


def test_build_args_defaults_overrides_and_unused(docker_cli, engine, tag):
    t = tag('args')
    res = ok(docker_cli(['build', '--build-arg', 'WHO=cli', '--build-arg', 'FROM_ENV',
                         '--build-arg', 'NOT_DECLARED=1', '-t', t, '-'],
                        input=ARGS_DOCKERFILE, env=dict(NOKIT, FROM_ENV='client-env')))
    # The CLI takes a bare --build-arg NAME from its own environment.
    assert ok(docker_cli(['run', '--rm', t])).stdout == \
        'who=cli where=default-where env=client-env base=latest\n'
    assert '[Warning] One or more build-args [NOT_DECLARED] were not consumed' in res.stdout
    img = inspect(engine, t, 'images')
    # Build args reach RUN's environment but never the image's.
    assert not [e for e in img['Config']['Env'] if e.startswith(('WHO=', 'FROM_ENV='))]
    rows = history(docker_cli, t)
    # Every arg in scope with a value keys the RUN (as Docker 20.10).
    assert rows[1][0] == ('|4 BASE_TAG=latest FROM_ENV=client-env WHERE=default-where '
                          'WHO=cli /bin/sh -c '
                          'echo "who=$WHO where=$WHERE env=$FROM_ENV base=$BASE_TAG" > /args')
    assert [r[0] for r in rows[2:6]] == [
        '/bin/sh -c #(nop)  ARG BASE_TAG', '/bin/sh -c #(nop)  ARG FROM_ENV',
        '/bin/sh -c #(nop)  ARG WHERE=default-where', '/bin/sh -c #(nop)  ARG WHO=nobody']

    # Another value of a build arg misses the cache from the RUN that uses
    # it on, never before; the same values hit it.
    same = ok(docker_cli(['build', '--build-arg', 'WHO=cli', '--build-arg', 'FROM_ENV=client-env',
                          '-t', t, '-'], input=ARGS_DOCKERFILE, env=NOKIT)).stdout
    assert cache_hits(same) == 6 and ran(same) == 0
    other = ok(docker_cli(['build', '--build-arg', 'WHO=other', '-t', t, '-'],
                          input=ARGS_DOCKERFILE, env=NOKIT)).stdout
    assert cache_hits(other) == 4 and ran(other) == 1
    assert ok(docker_cli(['run', '--rm', t])).stdout == \
        'who=other where=default-where env= base=latest\n'


def test_arg_before_from_picks_the_base(docker_cli, engine, tag, images_to_remove):
    base = tag('argbase')
    ok(docker_cli(['build', '-t', base, '-'], env=NOKIT,
                  input='FROM busybox\nRUN echo from-the-other-base > /base\n'))
    t = tag('argfrom')
    dockerfile = ('ARG BASE=busybox\nFROM ${BASE}\n'
                  'RUN cat /base 2>/dev/null || echo plain-busybox\n')
    plain = ok(docker_cli(['build', '-t', t, '-'], input=dockerfile, env=NOKIT)).stdout
    assert 'plain-busybox' in plain
    other = ok(docker_cli(['build', '--build-arg', 'BASE=' + base, '-t', t, '-'],
                          input=dockerfile, env=NOKIT)).stdout
    assert 'from-the-other-base' in other
    assert inspect(engine, t, 'images')['Parent'] == inspect(engine, base, 'images')['Id']
    # ARG before FROM is not visible after it unless declared again.
    res = ok(docker_cli(['build', '-t', t, '-'], env=NOKIT,
                        input='ARG V=outer\nFROM busybox\nRUN echo "v=[$V]"\n'))
    assert 'v=[]' in res.stdout


def test_docker_py_dockerignore_and_buildargs(engine, tmp_path, tag):
    t = tag('pyignore')
    d = write_tree(tmp_path / 'ctx', {
        'Dockerfile': ('FROM busybox\nARG FLAVOUR\nARG LEVEL=1\n'
                       'COPY . /app/\n'
                       'RUN echo "$FLAVOUR/$LEVEL" > /app/args && ls -A /app | sort > /listing\n'),
        'app.py': 'print(1)\n', 'docs/readme.md': 'docs\n', 'docs/keep.md': 'keep\n',
        'secret.env': 'TOKEN=x\n', 'build/out.o': 'obj\n', 'a.tmp': 't\n',
        '.dockerignore': '*.env\nbuild\n**/*.tmp\ndocs\n!docs/keep.md\n'})
    client = docker.DockerClient(base_url=engine.url, version='1.41')
    try:
        image, logs = client.images.build(path=d, tag=t, buildargs={'FLAVOUR': 'mint'})
        logs = list(logs)
        streams = ''.join(e.get('stream', '') for e in logs)
        assert 'Step 4/5 : COPY . /app/' in streams
        assert 'Successfully tagged %s' % t in streams
        assert [e['aux']['ID'] for e in logs if 'aux' in e] == [image.id]
        out = client.containers.run(t, ['cat', '/app/args', '/listing'], remove=True)
        lines = out.decode().splitlines()
        assert lines[0] == 'mint/1'
        assert lines[1:] == ['.dockerignore', 'Dockerfile', 'app.py', 'args', 'docs']
        docs = client.containers.run(t, ['ls', '/app/docs'], remove=True)
        assert docs == b'keep.md\n'
        # The file excluded is not in the cache key either: changing it
        # leaves the build fully cached.
        with open(os.path.join(d, 'secret.env'), 'w') as f:
            f.write('TOKEN=changed\n')
        image2, logs2 = client.images.build(path=d, tag=t, buildargs={'FLAVOUR': 'mint'})
        assert image2.id == image.id
        assert ''.join(e.get('stream', '') for e in logs2).count('Using cache') == 4
    finally:
        client.close()


# -- cache ------------------------------------------------------------------

def test_cache_ignores_times_but_not_modes(docker_cli, engine, tmp_path, tag):
    t = tag('modes')
    d = write_tree(tmp_path / 'ctx', {
        'Dockerfile': ('FROM busybox\nRUN echo first\nCOPY tree /tree\n'
                       'RUN ls -l /tree/run.sh | cut -c1-10 > /mode\n'),
        'tree/run.sh': 'echo hi\n', 'tree/data': 'd\n'})
    first = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert ran(first) == 2
    first_id = inspect(engine, t, 'images')['Id']
    # Only the modification time changes: Docker's tarsum ignores it.
    later = time.time() + 3600
    os.utime(os.path.join(d, 'tree', 'data'), (later, later))
    again = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert cache_hits(again) == 3 and inspect(engine, t, 'images')['Id'] == first_id
    # A mode change is a content change: from the COPY on.
    os.chmod(os.path.join(d, 'tree', 'run.sh'), 0o755)
    changed = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert cache_hits(changed) == 1 and ran(changed) == 1
    assert ok(docker_cli(['run', '--rm', t, 'cat', '/mode'])).stdout == '-rwxr-xr-x\n'
    # A new file in a copied directory, too.
    with open(os.path.join(d, 'tree', 'new'), 'w') as f:
        f.write('n\n')
    added = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert cache_hits(added) == 1 and ran(added) == 1


def test_multistage_cache_follows_each_stage(docker_cli, engine, tmp_path, tag):
    """A rebuild of a multi-stage Dockerfile reuses every step; a file copied
    in the first stage invalidates that stage from its COPY and the stage
    built on it, not the unrelated stage."""
    t = tag('stagecache')
    d = write_tree(tmp_path / 'ctx', {
        'Dockerfile': ('FROM busybox AS base\n'
                       'COPY data.txt /data.txt\n'
                       'RUN cat /data.txt > /v\n'
                       'FROM busybox AS unrelated\n'
                       'RUN echo unrelated-ran-%s > /u\n'
                       'FROM base\n'
                       'RUN cat /v > /copied\n'
                       'CMD ["cat", "/copied"]\n' % uuid.uuid4().hex[:8]),
        'data.txt': 'one\n'})
    first = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert ran(first) == 3 and cache_hits(first) == 0
    first_id = inspect(engine, t, 'images')['Id']
    again = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert cache_hits(again) == 5 and ran(again) == 0
    assert inspect(engine, t, 'images')['Id'] == first_id
    with open(os.path.join(d, 'data.txt'), 'w') as f:
        f.write('two\n')
    changed = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    # Only the unrelated stage's RUN comes from the cache.
    assert cache_hits(changed) == 1 and ran(changed) == 2
    assert 'unrelated-ran' not in ''.join(
        l for l in changed.splitlines() if not l.startswith('Step '))
    assert ok(docker_cli(['run', '--rm', t])).stdout == 'two\n'
    # --no-cache: every step anew, the same result.
    nocache = ok(docker_cli(['build', '--no-cache', '-t', t, d], env=NOKIT)).stdout
    assert cache_hits(nocache) == 0 and ran(nocache) == 3
    assert ok(docker_cli(['run', '--rm', t])).stdout == 'two\n'


# -- git contexts -------------------------------------------------------------

def make_repo(path):
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@e',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@e',
               GIT_CONFIG_NOSYSTEM='1', HOME=str(path))

    def git(*args):
        subprocess.run(['git'] + list(args), cwd=path / 'work', check=True, env=env,
                       capture_output=True)
    write_tree(path / 'work', {
        'Dockerfile': 'FROM busybox\nCMD ["echo", "main branch root"]\n',
        'sub/Dockerfile': 'FROM busybox\nCOPY msg /msg\nCMD ["cat", "/msg"]\n',
        'sub/msg': 'main branch sub\n'})
    git('init', '-q', '-b', 'main')
    git('add', '.')
    git('commit', '-qm', 'main')
    git('checkout', '-q', '-b', 'feature')
    write_tree(path / 'work', {'sub/msg': 'feature branch sub\n'})
    git('commit', '-qam', 'feature')
    git('checkout', '-q', 'main')
    # A bare copy served over "dumb" HTTP (what a static web server offers).
    subprocess.run(['git', 'clone', '-q', '--bare', str(path / 'work'),
                    str(path / 'srv' / 'repo.git')], check=True, env=env,
                   capture_output=True)
    subprocess.run(['git', 'update-server-info'], cwd=path / 'srv' / 'repo.git',
                   check=True, env=env)
    return path / 'work'


@pytest.fixture
def git_http(tmp_path):
    """(work tree path, http://127.0.0.1:PORT/repo.git)"""
    work = make_repo(tmp_path)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / 'srv'))
    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield work, 'http://127.0.0.1:%d/repo.git' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def api_build(engine, query, body=None):
    status, _h, data = daemons.api(
        engine.sock, 'POST', '/v1.41/build?' + urllib.parse.urlencode(query),
        body=body, timeout=120)
    assert status == 200, data
    msgs = [json.loads(l) for l in data.decode().splitlines() if l.strip()]
    errs = [m for m in msgs if 'errorDetail' in m]
    assert not errs, errs
    return ''.join(m.get('stream', '') for m in msgs)


@pytest.mark.parametrize('fragment,expected', [
    ('', 'main branch root\n'),
    ('#main:sub', 'main branch sub\n'),
    ('#feature:sub', 'feature branch sub\n'),
])
def test_git_remote_fragment_through_the_api(engine, docker_cli, git_http, tag,
                                             fragment, expected):
    """``remote=`` a git URL with Docker's ``#ref:subdir``: the engine
    clones it (local path and http)."""
    work, url = git_http
    for remote in ('file://' + str(work), url):
        t = tag('gitapi')
        out = api_build(engine, {'t': t, 'remote': remote + fragment})
        assert 'Successfully tagged %s' % t in out
        assert ok(docker_cli(['run', '--rm', t])).stdout == expected


def test_git_url_through_the_cli(docker_cli, git_http, tag, tmp_path):
    """``docker build http://host/repo.git#feature:sub``: the CLI clones,
    the engine builds what it sends."""
    _work, url = git_http
    t = tag('gitcli')
    # The CLI leaves its clone (docker-build-git*) in its temporary
    # directory: the test's, not the host's /tmp.
    ok(docker_cli(['build', '-t', t, url + '#feature:sub'],
                  env=dict(NOKIT, TMPDIR=str(tmp_path))))
    assert ok(docker_cli(['run', '--rm', t])).stdout == 'feature branch sub\n'


def test_git_remote_errors(engine, git_http):
    work, _url = git_http
    for remote, words in (('file://%s#no-such-branch' % work, 'no-such-branch'),
                          ('file://%s#main:no/such/dir' % work, 'no/such/dir')):
        status, _h, data = daemons.api(
            engine.sock, 'POST', '/v1.41/build?' + urllib.parse.urlencode(
                {'remote': remote}), timeout=120)
        assert status in (400, 500) or b'errorDetail' in data, data
        assert words.encode() in data, data


# -- errors leave nothing behind ---------------------------------------------

def leftovers(engine, docker_cli):
    """What a failed build could leave: containers, dangling images, build
    temp dirs, active snapshots."""
    ps = set(ok(docker_cli(['ps', '-aq', '--no-trunc'])).stdout.split())
    dangling = set(ok(docker_cli(['images', '-q', '--no-trunc', '-f',
                                  'dangling=true'])).stdout.split())
    tmp = os.path.join(engine.root, 'images', 'tmp')
    temps = set(os.listdir(tmp)) if os.path.isdir(tmp) else set()
    with open(os.path.join(engine.root, 'snapshots', 'overlay', 'metadata.json')) as f:
        snaps = json.load(f)['snapshots']
    active = {k for k, v in snaps.items() if v.get('kind') == 'active'}
    return {'containers': ps, 'dangling': dangling, 'temps': temps, 'active': active,
            'dirs': daemons.container_dirs(engine.root)}


def new_since(before, after):
    return {k: after[k] - before[k] for k in after if after[k] - before[k]}


ERRORS = [
    # (Dockerfile, message, CLI exit code, dangling images Docker leaves)
    ('FROM busybox\nRUN true\n\nFROBNICATE now\n',
     'dockerfile parse error line 4: unknown instruction: FROBNICATE', 1, 0),
    ('FROM busybox\n# a comment\nRUN true \\\n  && true\nNOPE\n',
     'dockerfile parse error line 5: unknown instruction: NOPE', 1, 0),
    ('FROM busybox\nRUN echo marker-%(u)s > /m\nCOPY missing.txt /x\n',
     'COPY failed: file not found in build context or excluded by .dockerignore: '
     'stat missing.txt: file does not exist', 1, 1),
    ('FROM no-such-base-%(u)s:1\nRUN true\n', 'no-such-base-%(u)s', 1, 0),
    ('FROM busybox\nRUN echo marker-%(u)s > /m\n'
     'RUN echo partial output && echo to-stderr >&2 && exit 7\nRUN echo never\n',
     "The command '/bin/sh -c echo partial output && echo to-stderr >&2 && exit 7' "
     "returned a non-zero code: 7", 7, 1),
]


@pytest.mark.parametrize('dockerfile,message,code,dangling', ERRORS,
                         ids=['unknown', 'unknown-after-continuation', 'copy-missing',
                              'bad-base', 'failing-run'])
def test_errors_leave_nothing_behind(engine, docker_cli, tmp_path, tag,
                                     dockerfile, message, code, dangling):
    u = uuid.uuid4().hex[:8]
    dockerfile, message = dockerfile % {'u': u}, message % {'u': u}
    t = tag('err')
    d = write_tree(tmp_path / 'ctx', {'Dockerfile': dockerfile})
    before = leftovers(engine, docker_cli)
    res = docker_cli(['build', '-t', t, d], env=NOKIT)
    assert res.returncode == code, (res.stdout, res.stderr)
    assert message in res.stderr
    assert 'never' not in res.stdout
    if code == 7:
        assert 'partial output' in res.stdout and 'to-stderr' in res.stdout
    assert inspect(engine, t, 'images') is None
    gone = new_since(before, leftovers(engine, docker_cli))
    # Like Docker, the steps that did succeed stay as (dangling) cache
    # images; nothing else remains, not even the failed RUN's container.
    assert len(gone.pop('dangling', ())) == dangling
    assert gone == {}


def test_failed_build_keeps_its_container_with_forcerm_0(engine, docker_cli):
    """The API's ``forcerm=0``, given explicitly, keeps the failed RUN's
    container (what Docker does by default) for a post-mortem."""
    before = leftovers(engine, docker_cli)
    status, _h, data = daemons.api(
        engine.sock, 'POST', '/v1.41/build?rm=1&forcerm=0',
        body=io.BytesIO(b'FROM busybox\nRUN echo post-mortem > /pm && exit 5\n').read(),
        timeout=120)
    assert status == 200, data
    msgs = [json.loads(l) for l in data.decode().splitlines() if l.strip()]
    assert msgs[-1]['errorDetail'] == {
        'code': 5, 'message': "The command '/bin/sh -c echo post-mortem > /pm && exit 5' "
                              "returned a non-zero code: 5"}
    kept = new_since(before, leftovers(engine, docker_cli)).get('containers', set())
    try:
        assert len(kept) == 1
        cid = next(iter(kept))
        assert inspect(engine, cid)['State']['ExitCode'] == 5
        diff = ok(docker_cli(['diff', cid])).stdout.split('\n')
        assert 'A /pm' in diff
    finally:
        for cid in kept:
            docker_cli(['rm', '-f', cid])


def test_brief_github_context_fails_with_a_clear_message(engine):
    """The brief's ``docker build github.com/mjbright/Docker/py_wsgi`` ended
    in "Error: )"; here (no network) the engine names the remote and git's
    reason, and leaves no temp dir."""
    tmp = os.path.join(engine.root, 'images', 'tmp')
    before = set(os.listdir(tmp))
    status, _h, data = daemons.api(
        engine.sock, 'POST', '/v1.41/build?remote=github.com/mjbright/Docker/py_wsgi',
        timeout=120)
    assert status == 400, data
    message = json.loads(data)['message']
    assert message.startswith('remote github.com/mjbright/Docker/py_wsgi: error fetching: '
                              'fatal: '), message
    assert len(message) > len('remote github.com/mjbright/Docker/py_wsgi: error fetching: '
                              'fatal: ') + 10
    assert set(os.listdir(tmp)) == before
