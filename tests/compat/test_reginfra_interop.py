"""Interoperability with real peers, for each registry flavour (plain HTTP,
TLS + htpasswd with ``docker login`` through the CLI, token auth):

* an image committed and pushed by our engine (docker CLI 28) is read by
  ``skopeo inspect``/``skopeo copy`` and pulled and run by Docker 20.10;
* an image committed and pushed by Docker 20.10 is pulled and run by our
  engine (docker CLI 28).

Each image carries a file with a fresh random token, read back from inside
a container on the other side.
"""

import hashlib
import json
import os
import re
import subprocess
import uuid

import pytest

from tests import daemons
from tests import registries as regs
from tests.conftest import run_docker

pytestmark = pytest.mark.compat

FLAVOURS = ['registry', 'registry_tls_basic', 'registry_token']


class Side:
    """A daemon driven through one docker CLI with a DOCKER_CONFIG of its own."""

    def __init__(self, daemon, cli, config_dir):
        self.daemon = daemon
        self.cli = cli
        self.config = config_dir
        os.makedirs(config_dir, exist_ok=True)
        with open(os.path.join(config_dir, 'config.json'), 'w') as f:
            f.write('{}\n')
        self.images = []
        self.containers = []

    def __call__(self, args, input=None, timeout=180, check=True):
        try:
            res = run_docker(args, self.daemon.url, input=input,
                             timeout=timeout, cli=self.cli,
                             docker_config=self.config)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError('docker %s hung: %s %s' % (
                ' '.join(args), exc.stdout, exc.stderr))
        if check:
            assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr)
        return res

    def login(self, reg):
        if not reg.auth:
            return
        res = self(['login', reg.host, '-u', reg.username,
                    '--password-stdin'], input=reg.password)
        assert 'Login Succeeded' in res.stdout

    def commit_unique(self, ref):
        """Run a container writing a random token to /token, commit it as
        ``ref``; returns the token."""
        token = uuid.uuid4().hex
        name = 'interop-' + uuid.uuid4().hex[:10]
        self.containers.append(name)
        self(['run', '--name', name, '--network', 'none', 'busybox:latest',
              'sh', '-c', 'echo %s > /token' % token])
        self(['commit', name, ref])
        self.images.append(ref)
        return token

    def run_cat(self, ref, path='/token'):
        return self(['run', '--rm', '--network', 'none', ref, 'cat',
                     path]).stdout.strip()

    def cleanup(self):
        for name in self.containers:
            self(['rm', '-f', name], check=False)
        for ref in reversed(self.images):
            self(['rmi', '-f', ref], check=False)


@pytest.fixture
def peers(request, engine_factory, dockerd, tmp_path):
    """(registry, our engine's side, Docker 20.10's side) for a flavour."""
    reg = request.getfixturevalue(request.param)
    eng = engine_factory(config=regs.engine_config_text(reg))
    regs.require_engine_registry(eng, 'push')
    ours = Side(eng, daemons.DOCKER_CLI, str(tmp_path / 'cfg-ours'))
    theirs = Side(dockerd, daemons.DOCKER_CLI_2010, str(tmp_path / 'cfg-docker'))
    yield reg, ours, theirs
    theirs.cleanup()
    ours.cleanup()


def pushed_digest(output, tag):
    m = re.search(r'%s: digest: (sha256:[0-9a-f]{64}) size: (\d+)' % re.escape(tag),
                  output)
    assert m, output
    return m.group(1), int(m.group(2))


@pytest.mark.parametrize('peers', FLAVOURS, indirect=True)
def test_engine_push_read_by_skopeo_and_docker2010(peers, tmp_path):
    reg, ours, theirs = peers
    ref = '%s/interop/from-engine:v1' % reg.host
    token = ours.commit_unique(ref)
    ours.login(reg)
    res = ours(['push', ref])
    digest, size = pushed_digest(res.stdout, 'v1')

    # The registry has the manifest the engine announced, with its layers.
    manifest, reg_digest = reg.manifest('interop/from-engine', 'v1')
    assert reg_digest == digest
    assert manifest['mediaType'] == regs.MANIFEST_V2
    assert len(manifest['layers']) == 2
    # skopeo reads it: same digest, same layers, the config says our Cmd.
    info = regs.skopeo_inspect(reg, 'interop/from-engine:v1')
    assert info['Digest'] == digest
    assert info['Layers'] == [l['digest'] for l in manifest['layers']]
    config = regs.skopeo_inspect(reg, 'interop/from-engine:v1', config=True)
    assert config['config']['Cmd'] == ['sh', '-c', 'echo %s > /token' % token]
    # skopeo copy verifies every blob against its digest on the way.
    dest = tmp_path / 'copy'
    regs.skopeo('copy', *reg.skopeo_args('src'),
                'docker://%s' % ref, 'dir:%s' % dest)
    for layer in manifest['layers']:
        data = (dest / layer['digest'].split(':')[1]).read_bytes()
        assert 'sha256:' + hashlib.sha256(data).hexdigest() == layer['digest']
        assert len(data) == layer['size']

    # Docker 20.10 pulls it by digest and runs it.
    theirs.login(reg)
    by_digest = '%s/interop/from-engine@%s' % (reg.host, digest)
    theirs.images.append(by_digest)
    theirs(['pull', by_digest])
    assert theirs.run_cat(by_digest) == token


@pytest.mark.parametrize('peers', FLAVOURS, indirect=True)
def test_docker2010_push_pulled_and_run_by_engine(peers):
    reg, ours, theirs = peers
    ref = '%s/interop/from-docker:v1' % reg.host
    token = theirs.commit_unique(ref)
    theirs.login(reg)
    res = theirs(['push', ref])
    digest, _ = pushed_digest(res.stdout, 'v1')

    ours.login(reg)
    ours.images.append(ref)
    res = ours(['pull', ref])
    assert 'Digest: %s' % digest in res.stdout
    assert 'Downloaded newer image for %s' % ref in res.stdout
    assert ours.run_cat(ref) == token
    # The engine records where it came from, as Docker does.
    inspect = json.loads(ours(['image', 'inspect', ref]).stdout)[0]
    assert '%s/interop/from-docker@%s' % (reg.host, digest) in inspect['RepoDigests']


@pytest.mark.parametrize('peers', ['registry_tls_basic', 'registry_token'],
                         indirect=True)
def test_engine_pull_without_login_is_refused(peers):
    """The credentials really matter: without ``docker login`` the engine
    cannot pull what Docker pushed, and says it is unauthorized."""
    reg, ours, theirs = peers
    ref = '%s/interop/private:v1' % reg.host
    theirs.commit_unique(ref)
    theirs.login(reg)
    theirs(['push', ref])
    res = regs.daemon_pull(ours.daemon, ref)
    assert not res.ok
    err = res.error.lower()
    assert 'unauthorized' in err or 'authentication required' in err or \
        'denied' in err or 'login' in err, res.error
    assert reg.password not in res.error
    assert ref not in ours(['images', '--format',
                            '{{.Repository}}:{{.Tag}}']).stdout


# The engine once answered 401 here and the CLI prompted for a login;
# Docker answers 404 "pull access denied" and the CLI fails at once.
@pytest.mark.parametrize('peers', ['registry_token'], indirect=True)
def test_cli_pull_without_login_fails_without_prompting(peers):
    reg, ours, theirs = peers
    ref = '%s/interop/private:v1' % reg.host
    theirs.commit_unique(ref)
    theirs.login(reg)
    theirs(['push', ref])
    res = ours(['pull', ref], check=False, input='', timeout=20)
    assert res.returncode != 0
    assert 'Username' not in res.stdout + res.stderr
    assert reg.password not in res.stderr


# Docker sends the digest line and the aux as two messages: the CLI prints
# no message that has an aux.
@pytest.mark.parametrize('peers', ['registry'], indirect=True)
def test_cli_push_prints_digest_line(peers):
    reg, ours, _ = peers
    ref = '%s/interop/digest-line:v1' % reg.host
    ours.commit_unique(ref)
    res = ours(['push', ref])
    _, digest = reg.manifest('interop/digest-line', 'v1')
    assert pushed_digest(res.stdout, 'v1')[0] == digest


@pytest.mark.parametrize('peers', ['registry'], indirect=True)
def test_incompressible_layer_pushed_as_plain_tar_is_read_by_peers(peers, tmp_path):
    """A layer of random bytes goes as the plain tar it is (no gzip work):
    skopeo verifies the blob, Docker 20.10 pulls and runs it."""
    reg, ours, theirs = peers
    ref = '%s/interop/random:v1' % reg.host
    name = 'interop-' + uuid.uuid4().hex[:10]
    ours.containers.append(name)
    ours(['run', '--name', name, '--network', 'none', 'busybox:latest', 'sh', '-c',
          'head -c 3000000 /dev/urandom > /random.bin && sha256sum /random.bin > /sum'])
    ours(['commit', name, ref])
    ours.images.append(ref)
    want = ours.run_cat(ref, '/sum')
    digest, _ = pushed_digest(ours(['push', ref]).stdout, 'v1')
    manifest, _ = reg.manifest('interop/random', 'v1')
    top = manifest['layers'][-1]
    assert top['mediaType'] == 'application/vnd.docker.image.rootfs.diff.tar'
    # The blob is the layer itself: its digest is the image's last diff ID.
    config = regs.skopeo_inspect(reg, 'interop/random:v1', config=True)
    assert top['digest'] == config['rootfs']['diff_ids'][-1]
    assert top['size'] >= 3000000
    dest = tmp_path / 'copy'
    regs.skopeo('copy', *reg.skopeo_args('src'), 'docker://%s' % ref, 'dir:%s' % dest)
    data = (dest / top['digest'].split(':')[1]).read_bytes()
    assert 'sha256:' + hashlib.sha256(data).hexdigest() == top['digest']
    by_digest = '%s/interop/random@%s' % (reg.host, digest)
    theirs.images.append(by_digest)
    theirs(['pull', by_digest])
    assert theirs(['run', '--rm', '--network', 'none', by_digest, 'sh', '-c',
                   'sha256sum /random.bin']).stdout.strip() == want
