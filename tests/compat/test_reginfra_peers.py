"""The test registries are known-good: Docker 20.10 and skopeo push to and
pull from each flavour (plain, TLS + htpasswd, token), and the auth the
registries are configured with is really enforced."""

import json
import os
import re

import pytest

from tests import daemons
from tests import registries as regs
from tests.conftest import run_docker

pytestmark = pytest.mark.compat

FLAVOURS = ['registry', 'registry_tls_basic', 'registry_token']


@pytest.fixture
def docker2010(dockerd, tmp_path):
    """Docker 20.10's CLI on the dockerd fixture, with a DOCKER_CONFIG of
    this test's own (so logins do not leak between tests)."""
    config = tmp_path / 'docker-config'
    config.mkdir()
    (config / 'config.json').write_text('{}\n')

    def run(args, timeout=120, input=None):
        return run_docker(args, dockerd.url, input=input, timeout=timeout,
                          cli=daemons.DOCKER_CLI_2010,
                          docker_config=str(config))
    run.config = str(config)
    made = []
    run.images = made
    yield run
    for ref in made:
        run_docker(['rmi', '-f', ref], dockerd.url, cli=daemons.DOCKER_CLI_2010)


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_docker2010_push_pull_run(flavour, request, docker2010):
    reg = request.getfixturevalue(flavour)
    ref = '%s/peers/busybox:v1' % reg.host
    docker2010.images.append(ref)
    if reg.auth:
        res = docker2010(['login', reg.host, '-u', reg.username,
                          '--password-stdin'], input=reg.password)
        assert res.returncode == 0, res.stderr
        assert 'Login Succeeded' in res.stdout
    assert docker2010(['tag', 'busybox:latest', ref]).returncode == 0
    before = reg.storage_bytes()
    res = docker2010(['push', ref])
    assert res.returncode == 0, res.stderr
    pushed = re.search(r'v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)', res.stdout)
    assert pushed, res.stdout
    # The registry holds it: tag, manifest under that digest, the layer.
    assert reg.tags('peers/busybox') == ['v1']
    manifest, digest = reg.manifest('peers/busybox', 'v1')
    assert digest == pushed.group(1)
    assert manifest['mediaType'] == regs.MANIFEST_V2
    for layer in manifest['layers']:
        assert reg.has_blob('peers/busybox', layer['digest'])
    assert reg.storage_bytes() - before >= sum(
        layer['size'] for layer in manifest['layers'])
    if reg.proxy:
        assert reg.proxy.upload_bytes >= sum(
            layer['size'] for layer in manifest['layers'])
    # skopeo, an independent reader, sees the same image.
    info = regs.skopeo_inspect(reg, 'peers/busybox:v1')
    assert info['Digest'] == digest
    assert info['Layers'] == [layer['digest'] for layer in manifest['layers']]
    # Read it back: drop the local copy (tag only; busybox:latest keeps the
    # layers) and pull by digest, then run it.
    assert docker2010(['rmi', ref]).returncode == 0
    by_digest = '%s/peers/busybox@%s' % (reg.host, digest)
    docker2010.images.append(by_digest)
    res = docker2010(['pull', by_digest])
    assert res.returncode == 0, res.stderr
    res = docker2010(['run', '--rm', '--network', 'none', by_digest,
                      'echo', 'ran-from-' + flavour])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == 'ran-from-' + flavour


@pytest.mark.parametrize('flavour', ['registry_tls_basic', 'registry_token'])
def test_auth_is_enforced(flavour, request, docker2010):
    reg = request.getfixturevalue(flavour)
    ref = '%s/peers/locked:v1' % reg.host
    docker2010.images.append(ref)
    # No credentials: the push is refused.
    assert docker2010(['tag', 'busybox:latest', ref]).returncode == 0
    res = docker2010(['push', ref])
    assert res.returncode != 0
    assert reg.tags('peers/locked') == []
    # Wrong password: login fails and says so.
    res = docker2010(['login', reg.host, '-u', reg.username,
                      '--password-stdin'], input='not-the-password')
    assert res.returncode != 0
    assert 'unauthorized' in (res.stderr + res.stdout).lower() or \
        '401' in res.stderr, res.stderr
    assert 'not-the-password' not in res.stderr
    # The registry itself refuses anonymous requests.
    assert reg.request('GET', '/v2/', auth=False)[0] == 401


def test_tls_registry_rejects_untrusted_clients(registry_tls_basic, tmp_path):
    """skopeo with no CA for the registry fails certificate verification;
    with the fixture's certs dir it succeeds: the TLS is real."""
    reg = registry_tls_basic
    creds = '--creds=%s:%s' % (reg.username, reg.password)
    empty = tmp_path / 'empty-certs'
    empty.mkdir()
    res = regs.skopeo('inspect', '--cert-dir=%s' % empty, creds,
                      'docker://%s/none/such:tag' % reg.host, check=False)
    assert res.returncode != 0
    assert 'certificate' in res.stderr.lower() or 'x509' in res.stderr
    res = regs.skopeo('inspect', '--cert-dir=%s' % os.path.join(
        reg.certs_dir, reg.host), creds, 'docker://%s/none/such:tag' % reg.host,
        check=False)
    assert res.returncode != 0
    # Past TLS and auth, the registry answers "not found".
    assert 'manifest unknown' in res.stderr.lower() or \
        'not found' in res.stderr.lower(), res.stderr


def test_token_issuer_grants_scopes(registry_token):
    """The issuer hands out tokens the registry accepts for exactly the
    scopes asked for."""
    reg = registry_token
    status, hdrs, _ = reg.request('GET', '/v2/', auth=False)
    assert status == 401
    challenge = hdrs.get('Www-Authenticate') or hdrs.get('WWW-Authenticate')
    assert challenge.startswith('Bearer ')
    assert 'realm="%s"' % reg.issuer.realm in challenge
    assert 'service="%s"' % reg.service in challenge
    # A token for catalog works for the catalog...
    assert reg.request('GET', '/v2/_catalog', scope='registry:catalog:*')[0] == 200
    # ...but a token for another scope does not.
    assert reg.request('GET', '/v2/_catalog',
                       scope='repository:x/y:pull')[0] == 401
    assert reg.issuer.issued >= 2
    # The claims are the ones distribution expects.
    token = reg.issuer.make_token('someone', ['repository:a/b:pull,push'])
    header, claims, _ = token.split('.')
    pad = lambda s: s + '=' * (-len(s) % 4)  # noqa: E731
    import base64
    header = json.loads(base64.urlsafe_b64decode(pad(header)))
    claims = json.loads(base64.urlsafe_b64decode(pad(claims)))
    assert header['alg'] == 'RS256' and len(header['kid'].split(':')) == 12
    assert claims['aud'] == reg.service
    assert claims['access'] == [{'type': 'repository', 'name': 'a/b',
                                 'actions': ['pull', 'push']}]
