"""docker pull / push / login / logout / search through the real docker CLI
28 and docker-py, against our engine and a real docker-registry on
127.0.0.1 (plain HTTP, and TLS + htpasswd basic auth)."""

import base64
import socket
import json
import os
import re
import time
import urllib.parse

import docker
import pytest

from tests import daemons
from tests import registries as regs
from tests.compat.conftest import pty_run
from tests.conftest import run_docker

pytestmark = pytest.mark.compat


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


@pytest.fixture
def docker_config(tmp_path):
    """A DOCKER_CONFIG of the test's own: logins stay in it."""
    path = tmp_path / 'docker-config'
    path.mkdir()
    (path / 'config.json').write_text('{}\n')
    return str(path)


def cli(eng, docker_config):
    def run(args, input=None, timeout=120):
        return run_docker(args, eng.url, input=input, timeout=timeout,
                          docker_config=docker_config)
    return run


def image_events(eng, action):
    until = '%.9f' % time.time()
    status, _, body = eng.api('GET', '/events?since=0&until=%s&filters=%s' % (
        until, urllib.parse.quote(json.dumps({'type': ['image'], 'event': [action]}))))
    assert status == 200, body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_push_then_pull_into_a_second_engine_and_run(engine_factory, registry, docker_config):
    first = engine_factory()
    second = engine_factory(load_busybox=False)
    one, two = cli(first, docker_config), cli(second, docker_config)
    ref = '%s/regapi/busybox:v1' % registry.host
    ok(one(['tag', 'busybox:latest', ref]))

    pushed = ok(one(['push', ref]))
    assert 'The push refers to repository [%s/regapi/busybox]' % registry.host \
        in pushed.stdout
    m = re.search(r'v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)', pushed.stdout)
    assert m, pushed.stdout
    assert registry.tags('regapi/busybox') == ['v1']
    _, digest = registry.manifest('regapi/busybox', 'v1')
    assert digest == m.group(1)
    ev = image_events(first, 'push')
    assert [e['Actor']['ID'] for e in ev] == ['%s/regapi/busybox:v1' % registry.host]
    assert ev[0]['Actor']['Attributes']['name'].startswith(registry.host + '/regapi/busybox')

    pulled = ok(two(['pull', ref]))
    assert 'Pull complete' in pulled.stdout
    assert 'Digest: %s' % digest in pulled.stdout
    assert 'Status: Downloaded newer image for %s' % ref in pulled.stdout
    assert pulled.stdout.strip().splitlines()[-1] == ref  # the CLI's last line
    ev = image_events(second, 'pull')
    assert [e['Actor']['ID'] for e in ev] == [ref]
    out = ok(two(['run', '--rm', ref, 'sh', '-c', 'echo from-$((6*7))']))
    assert out.stdout.strip() == 'from-42'
    inspect = json.loads(ok(two(['image', 'inspect', ref])).stdout)[0]
    assert '%s/regapi/busybox@%s' % (registry.host, digest) in inspect['RepoDigests']

    # Again: nothing new to fetch.
    again = ok(two(['pull', ref]))
    assert 'Status: Image is up to date for %s' % ref in again.stdout
    # By digest.
    by_digest = ok(two(['pull', '%s/regapi/busybox@%s' % (registry.host, digest)]))
    assert 'Digest: %s' % digest in by_digest.stdout


def test_pull_on_a_terminal_draws_progress(engine_factory, registry, docker_config):
    first = engine_factory()
    second = engine_factory(load_busybox=False)
    ref = '%s/regapi/tty:v1' % registry.host
    ok(cli(first, docker_config)(['tag', 'busybox:latest', ref]))
    ok(cli(first, docker_config)(['push', ref]))
    env = dict(os.environ, DOCKER_HOST=second.url, DOCKER_CONFIG=docker_config,
               DOCKER_CLI_HINTS='false')
    rc, out = pty_run([daemons.DOCKER_CLI, 'pull', ref], env, timeout=120)
    assert rc == 0, out
    # The tty renderer rewrites lines in place (ESC[K / cursor moves) and
    # ends with the status lines.
    assert '\x1b[' in out, out
    assert 'Downloaded newer image for %s' % ref in out


def test_pull_and_push_errors(engine_factory, registry, docker_config):
    eng = engine_factory()
    run = cli(eng, docker_config)
    ok(run(['tag', 'busybox:latest', '%s/regapi/err:v1' % registry.host]))
    ok(run(['push', '%s/regapi/err:v1' % registry.host]))

    res = run(['pull', '%s/regapi/err:nope' % registry.host])
    assert res.returncode != 0
    assert 'manifest unknown' in res.stderr or 'not found' in res.stderr, res.stderr
    assert res.stderr.startswith('Error response from daemon'), res.stderr
    res = run(['pull', '%s/regapi/never-pushed:v1' % registry.host])
    assert res.returncode != 0
    assert 'Error response from daemon' in res.stderr, res.stderr

    res = run(['push', '%s/regapi/not-here:v1' % registry.host])
    assert res.returncode != 0
    assert ('An image does not exist locally with the tag: %s/regapi/not-here'
            % registry.host) in res.stderr, res.stderr
    assert registry.tags('regapi/not-here') == []

    # The same through the API: the statuses and messages Docker gives.
    r = regs.daemon_push(eng, '%s/regapi/not-here:v1' % registry.host)
    assert r.status == 404
    r = regs.daemon_pull(eng, '%s/regapi/err:nope' % registry.host)
    assert r.status == 404 and 'manifest unknown' in r.error, r.error
    # Nothing was made for the failed pull.
    res = run(['images', '-q', '%s/regapi/err' % registry.host])
    assert len(res.stdout.split()) == 1


@pytest.mark.parametrize('query, message', [
    ({'fromImage': 'UPPER/case', 'tag': 'latest'},
     'invalid reference format: repository name must be lowercase'),
    ({'fromImage': 'busybox::'}, 'invalid reference format'),
    ({'fromImage': 'busybox', 'tag': 'sha256:abc'}, 'invalid checksum digest length'),
    ({'fromImage': 'busybox@sha256:1234'}, 'invalid reference format'),
    ({'fromImage': 'busybox', 'tag': 'bad tag'}, 'invalid tag format'),
    ({'fromImage': 'busybox', 'tag': 'v1', 'platform': 'linux//'},
     'unknown operating system or architecture'),
])
def test_bad_references_are_400(engine, query, message):
    status, data = engine.api_json('POST', '/images/create?' + urllib.parse.urlencode(query))
    assert status == 400, data
    assert message in data['message']


@pytest.mark.parametrize('path, message', [
    ('/images/UPPER/case/push?tag=v1', 'must be lowercase'),
    ('/images/busybox/push?tag=a%3Ab', 'invalid tag format'),
    ('/images/busybox@sha256:' + 'a' * 64 + '/push', 'cannot push a digest reference'),
])
def test_bad_push_references_are_400(engine, path, message):
    status, data = engine.api_json('POST', path)
    assert status == 400, data
    assert message in data['message']


def test_malformed_auth_header_is_400(engine):
    status, data = engine.api_json('POST', '/images/create?fromImage=busybox&tag=x',
                                   headers={'X-Registry-Auth': '***'})
    assert status == 400
    assert data['message'].startswith('invalid X-Registry-Auth header')


def test_search_a_private_registry(engine_factory, registry, docker_config):
    eng = engine_factory()
    run = cli(eng, docker_config)
    for repo in ('regapi/searchme', 'regapi/searchme-too', 'other/thing'):
        ok(run(['tag', 'busybox:latest', '%s/%s:v1' % (registry.host, repo)]))
        ok(run(['push', '%s/%s:v1' % (registry.host, repo)]))
    res = ok(run(['search', '%s/searchme' % registry.host]))
    lines = res.stdout.splitlines()
    assert lines[0].split()[:2] == ['NAME', 'DESCRIPTION'], res.stdout
    names = sorted(line.split()[0] for line in lines[1:])
    assert names == ['%s/regapi/searchme' % registry.host,
                     '%s/regapi/searchme-too' % registry.host], res.stdout
    res = ok(run(['search', '--limit', '1', '--format', '{{.Name}}',
                  '%s/searchme' % registry.host]))
    assert len(res.stdout.split()) == 1
    res = ok(run(['search', '--filter', 'is-official=true', '%s/searchme' % registry.host]))
    assert len(res.stdout.splitlines()) == 1  # the header only
    res = run(['search', '--filter', 'color=red', '%s/searchme' % registry.host])
    assert res.returncode != 0 and "invalid filter 'color'" in res.stderr, res.stderr


def test_login_push_logout_with_basic_auth(engine_factory, registry_tls_basic,
                                           engine_registry_config, docker_config):
    reg = registry_tls_basic
    eng = engine_factory(config=engine_registry_config(reg))
    run = cli(eng, docker_config)
    ref = '%s/regapi/private:v1' % reg.host
    ok(run(['tag', 'busybox:latest', ref]))

    # Without credentials the registry refuses the push.
    res = run(['push', ref])
    assert res.returncode != 0, res.stdout
    assert reg.tags('regapi/private') == []

    bad = run(['login', reg.host, '-u', reg.username, '--password-stdin'],
              input='wrong-' + reg.password)
    assert bad.returncode != 0
    assert 'unauthorized' in bad.stderr.lower() or '401' in bad.stderr, bad.stderr
    assert reg.password not in bad.stderr + bad.stdout
    assert reg.host not in json.load(open(os.path.join(docker_config, 'config.json'))) \
        .get('auths', {})

    good = ok(run(['login', reg.host, '-u', reg.username, '--password-stdin'],
                  input=reg.password))
    assert 'Login Succeeded' in good.stdout
    auths = json.load(open(os.path.join(docker_config, 'config.json')))['auths']
    assert base64.b64decode(auths[reg.host]['auth']).decode() == \
        '%s:%s' % (reg.username, reg.password)

    pushed = ok(run(['push', ref]))
    assert 'v1: digest: sha256:' in pushed.stdout
    assert reg.tags('regapi/private') == ['v1']

    ok(run(['logout', reg.host]))
    assert reg.host not in json.load(open(os.path.join(docker_config, 'config.json'))) \
        .get('auths', {})
    other = engine_factory(config=engine_registry_config(reg), load_busybox=False)
    # Logged out: the registry wants credentials.  The engine answers 401
    # before any progress, as Docker (on which the CLI prompts for a login).
    r = regs.daemon_pull(other, ref)
    assert r.status == 401, r
    assert reg.password not in r.error
    assert regs.image_ids(other) == set()
    # With the header the CLI would send after a login, the pull works.
    r = regs.daemon_pull(other, ref, reg=reg)
    assert r.ok, r
    assert ref in {t for i in other.api_json('GET', '/images/json')[1]
                   for t in i['RepoTags'] or ()}

    # No credential reached the engine's (debug) log.
    for e in (eng, other):
        with open(e.log_path, errors='replace') as f:
            log = f.read()
        assert reg.password not in log
        assert regs.x_registry_auth(reg.username, reg.password, reg.host)[:24] not in log


def test_docker_py_pull_push_login(engine_factory, registry_tls_basic,
                                   engine_registry_config):
    reg = registry_tls_basic
    first = engine_factory(config=engine_registry_config(reg))
    second = engine_factory(config=engine_registry_config(reg), load_busybox=False)
    c1 = docker.DockerClient(base_url=first.url, version='1.44', timeout=120)
    c2 = docker.DockerClient(base_url=second.url, version='1.44', timeout=120)
    try:
        with pytest.raises(docker.errors.APIError) as exc:
            c1.login(username=reg.username, password='nope', registry=reg.host)
        assert exc.value.status_code == 401
        res = c1.login(username=reg.username, password=reg.password, registry=reg.host)
        assert res['Status'] == 'Login Succeeded'
        repo = '%s/regapi/py' % reg.host
        c1.images.get('busybox:latest').tag(repo, 'v2')
        auth = {'username': reg.username, 'password': reg.password}
        lines = list(c1.images.push(repo, tag='v2', auth_config=auth, stream=True,
                                    decode=True))
        assert not [m for m in lines if 'error' in m], lines
        aux = [m['aux'] for m in lines if m.get('aux')]
        assert aux and aux[0]['Tag'] == 'v2' and aux[0]['Digest'].startswith('sha256:')
        image = c2.images.pull(repo, tag='v2', auth_config=auth)
        assert '%s:v2' % repo in image.tags
        assert c2.containers.run(image.id, ['echo', 'py-ok'], remove=True).strip() == b'py-ok'
        with pytest.raises(docker.errors.NotFound):
            c2.images.pull(repo, tag='missing', auth_config=auth)
    finally:
        c1.close()
        c2.close()


def test_all_tags_push_and_pull(engine_factory, registry, docker_config):
    first = engine_factory()
    second = engine_factory(load_busybox=False)
    one, two = cli(first, docker_config), cli(second, docker_config)
    repo = '%s/regapi/multi' % registry.host
    for tag in ('a', 'b'):
        ok(one(['tag', 'busybox:latest', '%s:%s' % (repo, tag)]))
    pushed = ok(one(['push', '--all-tags', repo]))
    assert pushed.stdout.count('The push refers to repository') == 1, pushed.stdout
    assert re.search(r'^a: digest: sha256:', pushed.stdout, re.M), pushed.stdout
    assert re.search(r'^b: digest: sha256:', pushed.stdout, re.M), pushed.stdout
    assert sorted(registry.tags('regapi/multi')) == ['a', 'b']
    ok(two(['pull', '--all-tags', repo]))
    tags = {t for i in second.api_json('GET', '/images/json')[1] for t in i['RepoTags'] or ()}
    assert tags == {'%s:a' % repo, '%s:b' % repo}


def test_login_search_and_pull_over_plain_http_basic_auth(engine_factory, registry_factory,
                                                          docker_config):
    """htpasswd on plain HTTP: Docker allows it for 127.0.0.0/8 (insecure by
    default), so does the engine; the CLI only stores what the engine accepted."""
    reg = registry_factory(auth='basic')
    eng = engine_factory()
    run = cli(eng, docker_config)
    res = run(['login', reg.host, '-u', reg.username, '--password-stdin'],
              input=reg.password + 'x')
    assert res.returncode != 0 and reg.password not in res.stderr
    ok(run(['login', reg.host, '-u', reg.username, '--password-stdin'], input=reg.password))
    ref = '%s/regapi/plainauth:v1' % reg.host
    ok(run(['tag', 'busybox:latest', ref]))
    ok(run(['push', ref]))
    assert reg.tags('regapi/plainauth') == ['v1']
    # search sends the stored credentials too (the catalog needs them).
    res = ok(run(['search', '--format', '{{.Name}}', '%s/plainauth' % reg.host]))
    assert res.stdout.split() == ['%s/regapi/plainauth' % reg.host]
    ok(run(['rmi', ref]))
    ok(run(['pull', ref]))
    ok(run(['logout', reg.host]))
    with open(eng.log_path, errors='replace') as f:
        assert reg.password not in f.read()


@pytest.mark.parametrize('target', ['engine', 'dockerd'])
def test_stream_shapes_as_docker(target, request, engine_factory, registry):
    """The same checks against Docker 20.10 and the engine: the push stream
    (repository line first, summary line then its aux last), a pull's first
    and last lines, a missing tag as an HTTP 404 before any line, and the
    push event's Actor.ID."""
    daemon = engine_factory() if target == 'engine' else request.getfixturevalue('dockerd')
    repo = '%s/shapes/%s' % (registry.host, target)
    ref = repo + ':v1'
    # The dockerd fixture lives for the session: leave it as it was.
    request.addfinalizer(lambda: daemon.api('DELETE', '/images/%s' % ref))
    assert daemon.api('POST', '/images/busybox:latest/tag?repo=%s&tag=v1' % repo)[0] == 201
    status, hdrs, body = daemon.api('POST', '/images/%s/push?tag=v1' % repo,
                                    headers={'X-Registry-Auth': regs.x_registry_auth()})
    assert status == 200 and hdrs['content-type'] == 'application/json'
    msgs = regs.StreamResult(status, body).messages
    assert msgs[0] == {'status': 'The push refers to repository [%s]' % repo}
    summary, aux = msgs[-2], msgs[-1]
    assert set(aux) == {'progressDetail', 'aux'} and aux['progressDetail'] == {}
    assert summary == {'status': 'v1: digest: %s size: %d' % (aux['aux']['Digest'],
                                                               aux['aux']['Size'])}
    assert aux['aux']['Tag'] == 'v1'
    for m in msgs:
        if m.get('status') == 'Pushing':
            assert m['progressDetail']['current'] > 0 and m['progress'].startswith('[')
    until = '%.9f' % time.time()
    status, _, body = daemon.api('GET', '/events?since=0&until=%s&filters=%s' % (
        until, urllib.parse.quote(json.dumps({'type': ['image'], 'event': ['push']}))))
    pushes = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert [e['Actor']['ID'] for e in pushes if e['Actor']['ID'].startswith(repo)] == [ref]

    missing = regs.daemon_pull(daemon, repo + ':nope')
    assert missing.status == 404 and 'manifest unknown' in missing.error, missing
    daemon.api('DELETE', '/images/%s' % ref)
    pulled = regs.daemon_pull(daemon, ref)
    assert pulled.ok, pulled
    assert pulled.messages[0] == {'status': 'Pulling from shapes/%s' % target, 'id': 'v1'}
    assert pulled.messages[-2] == {'status': 'Digest: %s' % aux['aux']['Digest']}
    assert pulled.messages[-1]['status'].startswith('Status: ')
    assert pulled.messages[-1]['status'].endswith(' for %s' % ref)


def test_client_hanging_up_mid_pull(engine_factory, registry, docker_config):
    """The pull goes on to its end after the client left: the image is
    complete, no temp file is left, and the store check passes (teardown)."""
    first = engine_factory()
    second = engine_factory(load_busybox=False)
    ref = '%s/regapi/hangup:v1' % registry.host
    ok(cli(first, docker_config)(['tag', 'busybox:latest', ref]))
    ok(cli(first, docker_config)(['push', ref]))
    s = socket.socket(socket.AF_UNIX)
    s.connect(second.sock)
    s.sendall(b'POST /v1.44/images/create?fromImage=%s&tag=v1 HTTP/1.1\r\nHost: x\r\n'
              b'Content-Length: 0\r\n\r\n' % ref.rsplit(':', 1)[0].encode())
    got = b''
    while b'Pulling from' not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b'HTTP/1.1 200')
    s.close()
    deadline = time.monotonic() + 60
    while not second.api('GET', '/images/%s/json' % ref)[0] == 200:
        assert time.monotonic() < deadline, 'the pull did not finish'
        time.sleep(0.1)
    assert regs.ingest_leftovers(second) == []
    out = ok(cli(second, docker_config)(['run', '--rm', ref, 'echo', 'whole']))
    assert out.stdout.strip() == 'whole'
