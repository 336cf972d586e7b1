"""The registry client against the real CNCF distribution (docker-registry).

The snapshot flow at engine level: a container is committed in one engine,
pushed (only the new layer and the config travel; the base is mounted from
the repository it was pushed to first), pulled into a second engine by tag
and by digest, and run there.  The engine's registry client runs
in-process on the engine's root while that engine is stopped (the API
routes are another branch's); the real engine then starts on that root,
checks it and runs the container.  skopeo reads what the engine pushed.
"""

import json
import os
import shutil
import socket
import subprocess
import time

from oslo_config import cfg
import pytest
import requests

from engine import conf as conf_mod
from engine import daemon
from engine import errors
from tests import conftest

pytestmark = pytest.mark.functional

REGISTRY = '/usr/bin/docker-registry'
SKOPEO = '/usr/bin/skopeo'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def plain_registry(tmp_path):
    """A plain-HTTP docker-registry on 127.0.0.1; yields its host:port."""
    if not os.path.exists(REGISTRY):
        pytest.skip('docker-registry is not installed')
    port = _free_port()
    config = tmp_path / 'registry.yml'
    config.write_text(
        'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n'
        '    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n'
        % (tmp_path / 'storage', port))
    log = open(tmp_path / 'registry.log', 'wb')
    proc = subprocess.Popen([REGISTRY, 'serve', str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    host = '127.0.0.1:%d' % port
    try:
        deadline = time.time() + 20
        while True:
            try:
                if requests.get('http://%s/v2/' % host, timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError('docker-registry did not start: %s'
                                   % (tmp_path / 'registry.log').read_text())
            time.sleep(0.1)
        yield host
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


class InProcess(object):
    """The engine's objects on a stopped engine's root (context manager)."""

    def __init__(self, eng):
        self.conf = cfg.ConfigOpts()
        conf_mod.register_opts(self.conf)
        args = ['--root', eng.root]
        if eng.config_file:
            args += ['--config-file', eng.config_file]
        self.conf(args=args, default_config_files=[])

    def __enter__(self):
        self.engine = daemon.Engine(self.conf)
        self.dist = self.engine.distribution
        self.dist.settings.retry_backoff = 0.05
        return self

    def __exit__(self, *exc):
        self.engine.close()


class CountingSession(requests.Session):
    """Records every URL asked for; fails GETs of chosen blobs."""

    def __init__(self, log, fail=()):
        super().__init__()
        self.log = log
        self.fail = fail

    def request(self, method, url, *a, **kw):
        self.log.append((method, url.split('?', 1)[0]))
        if method == 'GET' and any(d in url for d in self.fail):
            raise requests.ConnectionError('connection reset (simulated)')
        return super().request(method, url, *a, **kw)


def docker(eng, args, docker_config_dir, check=True):
    res = conftest.run_docker(args, eng.url, docker_config=docker_config_dir)
    if check:
        assert res.returncode == 0, (args, res.stderr)
    return res


def _blob_gets(log, digest):
    return sum(1 for m, u in log if m == 'GET' and u.endswith('/blobs/'
                                                              + digest))


def test_snapshot_flow_only_new_layers_travel(plain_registry, engine_factory,
                                              docker_config_dir):
    reg = plain_registry
    # Engine A: busybox, and a committed container with a change on top.
    a = engine_factory()
    docker(a, ['run', '--name', 'snap', 'busybox', 'sh', '-c',
               'echo made-in-a > /snapshot.txt'], docker_config_dir)
    docker(a, ['commit', 'snap', '%s/team/snap:1' % reg], docker_config_dir)
    docker(a, ['tag', 'busybox:latest', '%s/team/base:latest' % reg],
           docker_config_dir)
    a.stop()
    with InProcess(a) as ip:
        base_digest = ip.dist.push('%s/team/base:latest' % reg)
        base_bytes = ip.dist.last_push_bytes
        msgs = []
        digest = ip.dist.push('%s/team/snap:1' % reg, progress=msgs.append)
        sent = ip.dist.last_push_bytes
        img = ip.engine.images.inspect('%s/team/snap:1' % reg)
    statuses = [m['status'] for m in msgs]
    assert 'Mounted from team/base' in statuses
    assert statuses.count('Pushed') == 1
    assert msgs[-1]['aux']['Digest'] == digest
    assert '%s/team/snap@%s' % (reg, digest) in img['RepoDigests']
    # Only the new layer, the config and the manifest travelled.
    resp = requests.get('http://%s/v2/team/snap/manifests/1' % reg, headers={
        'Accept': 'application/vnd.docker.distribution.manifest.v2+json'})
    manifest = resp.json()
    assert resp.headers['Docker-Content-Digest'] == digest
    new_layer = manifest['layers'][-1]['size']
    assert sent == new_layer + manifest['config']['size'] + len(resp.content)
    assert sent < base_bytes
    assert manifest['config']['digest'] == img['Id']
    # skopeo reads it as pushed.
    out = subprocess.run([SKOPEO, 'inspect', '--tls-verify=false',
                          'docker://%s/team/snap:1' % reg],
                         capture_output=True, text=True, timeout=60,
                         check=True).stdout
    info = json.loads(out)
    assert info['Digest'] == digest
    assert info['Layers'] == [l['digest'] for l in manifest['layers']]
    assert base_digest != digest

    # Engine B has nothing: pull by tag, then by digest, and run there.
    b = engine_factory.make()
    with InProcess(b) as ip:
        msgs = []
        image_id = ip.dist.pull('%s/team/snap:1' % reg, progress=msgs.append)
        assert image_id == img['Id']
        assert ip.dist.last_pull_bytes == sum(l['size']
                                              for l in manifest['layers'])
        by_digest = '%s/team/snap@%s' % (reg, digest)
        assert ip.dist.pull(by_digest) == image_id
        # The base alone is up to date: its only layer exists already.
        msgs = []
        ip.dist.pull('%s/team/base:latest' % reg, progress=msgs.append)
        assert [m['status'] for m in msgs].count('Already exists') == 1
    b.start()
    out = docker(b, ['run', '--rm', '%s/team/snap:1' % reg, 'cat',
                     '/snapshot.txt'], docker_config_dir).stdout
    assert out == 'made-in-a\n'
    listing = docker(b, ['images', '--digests', '--format',
                         '{{.Repository}} {{.Tag}} {{.Digest}}'],
                     docker_config_dir).stdout
    assert '%s/team/snap 1 %s' % (reg, digest) in listing
    out = docker(b, ['run', '--rm', by_digest, 'cat', '/snapshot.txt'],
                 docker_config_dir).stdout
    assert out == 'made-in-a\n'


def test_interrupted_pull_resumes_after_engine_restart(
        plain_registry, engine_factory, docker_config_dir):
    reg = plain_registry
    a = engine_factory()
    docker(a, ['run', '--name', 'halfway', 'busybox', 'sh', '-c',
               'echo second > /second.txt'], docker_config_dir)
    docker(a, ['commit', 'halfway', '%s/half:1' % reg], docker_config_dir)
    a.stop()
    with InProcess(a) as ip:
        ip.dist.push('%s/half:1' % reg)
    manifest = requests.get('http://%s/v2/half/manifests/1' % reg, headers={
        'Accept': 'application/vnd.docker.distribution.manifest.v2+json'}
    ).json()
    first, second = [l['digest'] for l in manifest['layers']]

    b = engine_factory.make()
    log = []
    with InProcess(b) as ip:
        ip.dist.session_factory = lambda: CountingSession(log, fail=[second])
        ip.dist.settings.max_concurrent_downloads = 1
        with pytest.raises(errors.RegistryError) as exc:
            ip.dist.pull('%s/half:1' % reg)
        assert 'connection reset (simulated)' in str(exc.value)
        assert ip.engine.images.images() == []
        assert ip.engine.content.has(first)
    assert _blob_gets(log, first) == 1
    # The engine's start-up GC keeps the finished download.
    b.start()
    listing = docker(b, ['images', '-q'], docker_config_dir).stdout
    assert listing == ''
    b.stop()
    log.clear()
    with InProcess(b) as ip:
        ip.dist.session_factory = lambda: CountingSession(log)
        ip.dist.pull('%s/half:1' % reg)
    assert _blob_gets(log, first) == 0
    assert _blob_gets(log, second) == 1
    b.start()
    out = docker(b, ['run', '--rm', '%s/half:1' % reg, 'cat', '/second.txt'],
                 docker_config_dir).stdout
    assert out == 'second\n'


def test_docker_pushed_layout_and_bad_references(plain_registry,
                                                 engine_factory):
    reg = plain_registry
    b = engine_factory.make()
    with InProcess(b) as ip:
        with pytest.raises(errors.NotFound) as exc:
            ip.dist.pull('%s/absent:latest' % reg)
        assert 'manifest for %s/absent:latest not found' % reg in str(
            exc.value)
        for bad in ('%s/UPPER:x' % reg, '%s/a:' % reg,
                    '%s/a@sha256:abc' % reg):
            with pytest.raises(errors.InvalidArgument):
                ip.dist.pull(bad)
        assert ip.engine.images.images() == []


def _non_loopback_ipv4():
    """An address of this host that Docker's rules do not make insecure."""
    out = subprocess.run(['hostname', '-I'], capture_output=True, text=True)
    for addr in out.stdout.split():
        if '.' in addr and not addr.startswith('127.'):
            return addr
    return None


def _openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True)


@pytest.fixture
def tls_registry(tmp_path):
    """docker-registry over TLS requiring a client certificate, on a
    non-loopback address (loopback registries are never verified, as in
    Docker). Yields (host, dir with ca.crt, client.cert, client.key)."""
    addr = _non_loopback_ipv4()
    if addr is None or not os.path.exists(REGISTRY):
        pytest.skip('needs docker-registry and a non-loopback address')
    d = tmp_path / 'pki'
    d.mkdir()
    p = lambda name: str(d / name)  # noqa: E731
    _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
             p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj',
             '/CN=novadocker test CA')
    (d / 'ext.cnf').write_text('subjectAltName=IP:%s\n' % addr)
    for name, subject, ext in (('server', addr, True),
                               ('client', 'client', False)):
        _openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                 p(name + '.key'), '-out', p(name + '.csr'), '-subj',
                 '/CN=' + subject)
        _openssl('x509', '-req', '-in', p(name + '.csr'), '-CA', p('ca.crt'),
                 '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2',
                 '-out', p(name + ('.crt' if ext else '.cert')),
                 *(['-extfile', p('ext.cnf')] if ext else []))
    port = _free_port()
    config = tmp_path / 'registry.yml'
    config.write_text(
        'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n'
        '    rootdirectory: %s\nhttp:\n  addr: %s:%d\n  tls:\n'
        '    certificate: %s\n    key: %s\n    clientcas:\n      - %s\n'
        % (tmp_path / 'storage', addr, port, p('server.crt'), p('server.key'),
           p('ca.crt')))
    proc = subprocess.Popen([REGISTRY, 'serve', str(config)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    host = '%s:%d' % (addr, port)
    try:
        deadline = time.time() + 20
        while True:
            try:
                requests.get('https://%s/v2/' % host, timeout=1,
                             verify=p('ca.crt'),
                             cert=(p('client.cert'), p('client.key')))
                break
            except requests.ConnectionError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError('the TLS registry did not start')
                time.sleep(0.1)
        yield host, d
    finally:
        proc.terminate()
        proc.wait(10)


# The engine silences this warning at import; pytest resets warning filters.
@pytest.mark.filterwarnings(
    'ignore::urllib3.exceptions.InsecureRequestWarning')
def test_tls_ca_and_client_certificate_from_certs_dir(tls_registry, tmp_path,
                                                      engine_factory):
    host, pki = tls_registry
    certs = tmp_path / 'certs.d'
    eng = engine_factory.make(config='[registry]\ncerts_dir = %s\n' % certs)
    with InProcess(eng) as ip:
        with open(engine_factory.busybox_archive, 'rb') as f:
            ip.engine.images.load(f)
        ip.engine.images.tag('busybox:latest', '%s/secure/bb' % host, 'x')
        ref = '%s/secure/bb:x' % host
        with pytest.raises(errors.RegistryError) as exc:
            ip.dist.push(ref)
        assert 'CERTIFICATE_VERIFY_FAILED' in str(exc.value)
        assert '%s/%s/ca.crt' % (certs, host) in str(exc.value)
        os.makedirs(certs / host)
        shutil.copy(pki / 'ca.crt', certs / host / 'ca.crt')
        with pytest.raises(errors.RegistryError) as exc:
            ip.dist.push(ref)
        assert 'BAD_CERTIFICATE' in str(exc.value)
        shutil.copy(pki / 'client.cert', certs / host / 'client.cert')
        with pytest.raises(errors.RegistryError) as exc:
            ip.dist.push(ref)
        assert 'missing key client.key' in str(exc.value)
        shutil.copy(pki / 'client.key', certs / host / 'client.key')
        digest = ip.dist.push(ref)
    other = engine_factory.make(config='[registry]\ncerts_dir = %s\n' % certs)
    with InProcess(other) as ip:
        ip.dist.pull('%s/secure/bb@%s' % (host, digest))
        assert ip.engine.images.images()[0].repo_digests == [
            '%s/secure/bb@%s' % (host, digest)]
    # Listed as insecure: TLS is not verified (the client cert still goes).
    shutil.rmtree(certs / host)
    os.makedirs(certs / host)
    shutil.copy(pki / 'client.cert', certs / host / 'client.cert')
    shutil.copy(pki / 'client.key', certs / host / 'client.key')
    third = engine_factory.make(config='[registry]\ncerts_dir = %s\n'
                                'insecure_registries = %s\n' % (certs, host))
    with InProcess(third) as ip:
        ip.dist.pull('%s/secure/bb:x' % host)


def _docker2010(dk, args):
    res = conftest.run_docker(args, dk.url, cli=conftest.DOCKER_CLI_2010,
                              timeout=180)
    assert res.returncode == 0, (args, res.stderr)
    return res


@pytest.mark.slow
def test_docker_2010_interop_both_ways(plain_registry, engine_factory,
                                       dockerd, docker_config_dir):
    """Docker 20.10 pushes, the engine pulls and runs; the engine pushes a
    commit on top, Docker pulls it (only its new layer) and runs it."""
    reg = plain_registry
    ref = '%s/interop/from-docker:1' % reg
    _docker2010(dockerd, ['tag', 'busybox:latest', ref])
    _docker2010(dockerd, ['push', ref])
    docker_id = _docker2010(dockerd, ['image', 'inspect', '-f', '{{.Id}}',
                                      ref]).stdout.strip()
    eng = engine_factory.make()
    with InProcess(eng) as ip:
        assert ip.dist.pull(ref) == docker_id
    eng.start()
    docker(eng, ['run', '--name', 'interop', ref, 'sh', '-c',
                 'echo from-engine > /engine.txt'], docker_config_dir)
    back = '%s/interop/from-engine:1' % reg
    docker(eng, ['commit', 'interop', back], docker_config_dir)
    eng.stop()
    with InProcess(eng) as ip:
        msgs = []
        ip.dist.push(back, progress=msgs.append)
        # Docker's layer came from the registry: mounted, not uploaded.
        assert 'Mounted from interop/from-docker' in [m['status']
                                                      for m in msgs]
        engine_id = ip.engine.images.resolve(back).id
    res = _docker2010(dockerd, ['pull', back])
    assert res.stdout.count('Already exists') == 1, res.stdout
    assert _docker2010(dockerd, ['image', 'inspect', '-f', '{{.Id}}',
                                 back]).stdout.strip() == engine_id
    out = _docker2010(dockerd, ['run', '--rm', '--network', 'none', back,
                                'cat', '/engine.txt']).stdout
    assert out == 'from-engine\n'
    _docker2010(dockerd, ['rmi', back, ref])


class TokenIssuer(object):
    """A token server for docker-registry's token auth: RS256 JWTs signed
    (with openssl) by a key whose self-signed certificate the registry
    trusts; alice/secret-pw gets what she asks, anonymous only pull."""

    USERS = {'alice': 'secret-pw'}

    def __init__(self, base, service):
        import http.server
        import threading
        self.base = base
        self.service = service
        self.key = os.path.join(base, 'token.key')
        self.cert = os.path.join(base, 'token.crt')
        _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                 self.key, '-out', self.cert, '-days', '2', '-subj',
                 '/CN=token issuer')
        der = subprocess.run(['openssl', 'x509', '-in', self.cert, '-outform',
                              'DER'], capture_output=True, check=True).stdout
        import base64
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                issuer.handle(self)

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.realm = 'http://127.0.0.1:%d/token' % self.server.server_port
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _b64(data):
        import base64
        return base64.urlsafe_b64encode(data).rstrip(b'=').decode()

    def sign(self, claims):
        header = {'typ': 'JWT', 'alg': 'RS256', 'x5c': [self.x5c]}
        signing_input = '%s.%s' % (self._b64(json.dumps(header).encode()),
                                   self._b64(json.dumps(claims).encode()))
        sig = subprocess.run(['openssl', 'dgst', '-sha256', '-sign',
                              self.key], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        return signing_input + '.' + self._b64(sig)

    def handle(self, h):
        import base64
        import urllib.parse
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        user = None
        auth = h.headers.get('Authorization', '')
        if auth.startswith('Basic '):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(':')
            if self.USERS.get(u) != p:
                h.send_response(401)
                h.send_header('Content-Length', '0')
                h.end_headers()
                return
            user = u
        access = []
        for scope in query.get('scope', []):
            kind, name, actions = scope.split(':', 2)
            granted = actions.split(',') if user else \
                [a for a in actions.split(',') if a == 'pull']
            access.append({'type': kind, 'name': name, 'actions': granted})
        self.requests.append((user, query.get('scope', [])))
        now = int(time.time())
        token = self.sign({'iss': 'test-issuer', 'sub': user or '',
                           'aud': self.service, 'exp': now + 300,
                           'nbf': now - 10, 'iat': now,
                           'jti': os.urandom(8).hex(), 'access': access})
        body = json.dumps({'token': token, 'expires_in': 300}).encode()
        h.send_response(200)
        h.send_header('Content-Type', 'application/json')
        h.send_header('Content-Length', str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture
def token_registry(tmp_path):
    """docker-registry with token auth on 127.0.0.1, and its issuer."""
    if not os.path.exists(REGISTRY):
        pytest.skip('docker-registry is not installed')
    issuer = TokenIssuer(str(tmp_path), 'test-registry')
    port = _free_port()
    config = tmp_path / 'registry.yml'
    config.write_text(
        'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n'
        '    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\nauth:\n'
        '  token:\n    realm: %s\n    service: test-registry\n'
        '    issuer: test-issuer\n    rootcertbundle: %s\n'
        % (tmp_path / 'storage', port, issuer.realm, issuer.cert))
    proc = subprocess.Popen([REGISTRY, 'serve', str(config)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    host = '127.0.0.1:%d' % port
    try:
        deadline = time.time() + 20
        while True:
            try:
                if requests.get('http://%s/v2/' % host,
                                timeout=1).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError('docker-registry did not start')
            time.sleep(0.1)
        yield host, issuer
    finally:
        proc.terminate()
        proc.wait(10)
        issuer.close()


def test_token_auth_push_pull_login_search(token_registry, engine_factory):
    host, issuer = token_registry
    alice = {'username': 'alice', 'password': 'secret-pw'}
    eng = engine_factory.make()
    with InProcess(eng) as ip:
        with open(engine_factory.busybox_archive, 'rb') as f:
            ip.engine.images.load(f)
        ip.engine.images.tag('busybox:latest', '%s/tok/bb' % host, 'v1')
        ref = '%s/tok/bb:v1' % host
        # Anonymous: the issuer grants no push.
        with pytest.raises((errors.Unauthorized, errors.Forbidden)):
            ip.dist.push(ref)
        with pytest.raises(errors.Unauthorized) as exc:
            ip.dist.login(host, {'username': 'alice', 'password': 'wrong'})
        assert 'wrong' not in str(exc.value)
        assert ip.dist.login(host, alice)['Status'] == 'Login Succeeded'
        digest = ip.dist.push(ref, auth=alice)
        assert ('alice', ['repository:tok/bb:pull,push']) in issuer.requests
        found = ip.dist.search('%s/bb' % host, auth=alice)
        assert [r['name'] for r in found] == ['%s/tok/bb' % host]
    other = engine_factory.make()
    with InProcess(other) as ip:
        # Anonymous pull is granted by this issuer.
        assert ip.dist.pull('%s/tok/bb@%s' % (host, digest))
        assert (None, ['repository:tok/bb:pull']) in issuer.requests
