"""Real registries (and a lying one) for tests and benchmarks.

Fixtures (imported into tests/conftest.py, so every test file can use them):

* ``registry``: CNCF distribution (Debian's ``docker-registry``) on plain
  HTTP at 127.0.0.1:<free port>, with its own storage directory.
* ``registry_tls_basic``: the same behind TLS (a CA and server certificate
  made by the test) with htpasswd basic auth. ``.ca_path``, ``.certs_dir``
  (Docker's layout ``<certs_dir>/<host:port>/ca.crt``), ``.username``,
  ``.password``.
* ``registry_token``: docker-registry configured for token auth, plus a
  token issuer (a small HTTP server run by the test) that signs RS256 JWTs
  with a key whose certificate is the registry's ``rootcertbundle``.
  ``.username``/``.password`` are valid at the issuer; ``.issuer`` counts
  the tokens it handed out.
* ``registry_factory``: ``registry_factory(tls=False, auth=None|'basic'|
  'token', proxy=False)`` for more than one of them in a test.
* ``hostile_registry``: ``hostile_registry(behaviour)`` starts a Python
  registry that serves a small real image (busybox from tools/mkimage.py
  plus a small unique layer) and lies in one chosen way (BEHAVIOURS).
  ``.behaviour`` can be set to ``'honest'`` afterwards for the follow-up
  pull that must work.
* ``engine_registry_config``: ``engine_registry_config(*registries,
  insecure=())`` -> the engine configuration text (certs_dir, insecure
  registries) for ``engine_factory(config=...)``.

Every registry object has ``.host`` ('127.0.0.1:PORT'), ``.url``,
``.storage_bytes()`` (bytes of blob data stored) and, when started with
``proxy=True``, a ``RecordingProxy`` in front (``.proxy.upload_bytes``,
``.proxy.download_bytes``) whose port is the ``.host`` clients use, so
tests count the bytes that actually travel.

Only the standard library and ``cryptography``/``bcrypt`` are used.
"""

import base64
import datetime
import gzip
import hashlib
import http.server
import importlib.util
import io
import ipaddress
import json
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from tests import daemons

REGISTRY_BINARY = '/usr/bin/docker-registry'
SKOPEO = '/usr/bin/skopeo'
MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json'
CONFIG_V1 = 'application/vnd.docker.container.image.v1+json'
LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'


def free_port(address='127.0.0.1'):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def sha256_digest(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------
# certificates and keys


class TestPKI:
    """A CA, a server certificate for 127.0.0.1/localhost, a client
    certificate and a token-signing key, written as PEM files under ``dir``."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=7)

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def write_key(key, path):
            with open(path, 'wb') as f:
                f.write(key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption()))
            os.chmod(path, 0o600)

        def write_cert(cert, path):
            with open(path, 'wb') as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (x509.CertificateBuilder()
                   .subject_name(name('novadocker test CA'))
                   .issuer_name(name('novadocker test CA'))
                   .public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                  critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, key_cert_sign=True, crl_sign=True,
                       content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False,
                       encipher_only=False, decipher_only=False), critical=True)
                   .sign(ca_key, hashes.SHA256()))

        def leaf(cn, usage, sans=()):
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder()
                       .subject_name(name(cn)).issuer_name(ca_cert.subject)
                       .public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(start).not_valid_after(end)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                      critical=True)
                       .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
            if sans:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName(list(sans)), critical=False)
            return key, builder.sign(ca_key, hashes.SHA256())

        server_key, server_cert = leaf(
            '127.0.0.1', ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.DNSName('localhost'),
             x509.IPAddress(ipaddress.ip_address('127.0.0.1'))] +
            [x509.IPAddress(ipaddress.ip_address(a)) for a in global_addresses()])
        client_key, client_cert = leaf('novadocker test client',
                                       ExtendedKeyUsageOID.CLIENT_AUTH)

        self.ca_path = os.path.join(directory, 'ca.crt')
        self.server_cert_path = os.path.join(directory, 'server.crt')
        self.server_key_path = os.path.join(directory, 'server.key')
        self.client_cert_path = os.path.join(directory, 'client.cert')
        self.client_key_path = os.path.join(directory, 'client.key')
        write_cert(ca_cert, self.ca_path)
        write_cert(server_cert, self.server_cert_path)
        write_key(server_key, self.server_key_path)
        write_cert(client_cert, self.client_cert_path)
        write_key(client_key, self.client_key_path)

        # The token signer: RSA, self-signed; its certificate is the
        # registry's rootcertbundle.
        self.token_key = rsa.generate_private_key(public_exponent=65537,
                                                  key_size=2048)
        token_cert = (x509.CertificateBuilder()
                      .subject_name(name('novadocker token issuer'))
                      .issuer_name(name('novadocker token issuer'))
                      .public_key(self.token_key.public_key())
                      .serial_number(x509.random_serial_number())
                      .not_valid_before(start).not_valid_after(end)
                      .sign(self.token_key, hashes.SHA256()))
        self.token_cert_path = os.path.join(directory, 'token.crt')
        write_cert(token_cert, self.token_cert_path)
        self.token_kid = libtrust_key_id(self.token_key.public_key())

    def install_certs_dir(self, certs_dir, host, client=False):
        """Docker's layout: ``<certs_dir>/<host>/ca.crt`` (+ client pair)."""
        d = os.path.join(certs_dir, host)
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.ca_path, os.path.join(d, 'ca.crt'))
        if client:
            shutil.copy(self.client_cert_path, os.path.join(d, 'client.cert'))
            shutil.copy(self.client_key_path, os.path.join(d, 'client.key'))
        return d

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_path)


def global_addresses():
    """This host's non-loopback IPv4 addresses. A registry on one of them is
    not insecure by default (127.0.0.0/8 and localhost are, for Docker and
    for our engine), so TLS verification and client certificates are
    really exercised there."""
    try:
        out = subprocess.run(['ip', '-4', '-o', 'addr', 'show', 'scope',
                              'global'], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in out.splitlines():
        parts = line.split()
        if 'inet' in parts:
            found.append(parts[parts.index('inet') + 1].split('/')[0])
    return found


def libtrust_key_id(public_key):
    """The key ID docker/libtrust (and so distribution's token auth) derives
    from a public key: base32 of the first 30 bytes of the SHA-256 of the DER
    SubjectPublicKeyInfo, in 12 groups of 4 separated by ':'."""
    from cryptography.hazmat.primitives import serialization
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip('=')
    return ':'.join(b32[i:i + 4] for i in range(0, len(b32), 4))


def sign_jwt_rs256(private_key, header, claims):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    signing_input = (_b64url(json.dumps(header, separators=(',', ':')).encode())
                     + '.' +
                     _b64url(json.dumps(claims, separators=(',', ':')).encode()))
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(),
                                 hashes.SHA256())
    return signing_input + '.' + _b64url(signature)


def htpasswd_line(username, password):
    import bcrypt
    # Cost 5: the registry checks the hash on every request; the test's
    # passwords guard nothing.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
    return '%s:%s\n' % (username, hashed.decode())


# --------------------------------------------------------------------------
# small threaded HTTP servers


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Docker opens many connections at once.
    request_queue_size = 64


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass

    def handle(self):
        # A client probing HTTPS first (as Docker and our engine do for
        # insecure registries) sends a TLS ClientHello. Answer it at once,
        # as Go's HTTP server does; http.server would wait for a newline
        # that may never come until the client times out.
        try:
            first = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b'\x16':
            try:
                self.connection.sendall(
                    b'HTTP/1.0 400 Bad Request\r\n\r\n'
                    b'Client sent an HTTP request to an HTTPS server.\n')
            except OSError:
                pass
            return
        super().handle()

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)


def _serve(server):
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={'poll_interval': 0.1}, daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------
# the token issuer


class TokenIssuer:
    """``GET /token?service=&scope=`` (and the OAuth2 ``POST /token``) with
    basic auth: valid users get an RS256 JWT granting every action their
    scopes ask for; anonymous requests get a token granting nothing; wrong
    credentials get 401. Tokens handed out are counted in ``.issued``."""

    def __init__(self, pki, service, issuer='novadocker-test-issuer',
                 users=None):
        self.pki = pki
        self.service = service
        self.issuer = issuer
        self.users = dict(users or {})
        self.issued = 0
        self.requests = []  # (method, scopes, account) — never passwords
        self.server = _ThreadingServer(('127.0.0.1', 0), self._handler())
        self.port = self.server.server_address[1]
        self.realm = 'http://127.0.0.1:%d/token' % self.port
        self.thread = _serve(self.server)

    def make_token(self, subject, scopes):
        access = []
        for scope in scopes:
            parts = scope.split(':')
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ':'.join(parts[1:-1]), parts[-1]
            access.append({'type': kind, 'name': name,
                           'actions': [a for a in actions.split(',') if a]})
        now = int(time.time())
        claims = {'iss': self.issuer, 'sub': subject, 'aud': self.service,
                  'exp': now + 300, 'nbf': now - 10, 'iat': now,
                  'jti': uuid.uuid4().hex, 'access': access}
        header = {'typ': 'JWT', 'alg': 'RS256', 'kid': self.pki.token_kid}
        return sign_jwt_rs256(self.pki.token_key, header, claims)

    def _handler(issuer):
        class Handler(_QuietHandler):
            def _credentials(self):
                value = self.headers.get('Authorization', '')
                if not value.lower().startswith('basic '):
                    return None
                try:
                    user, _, pw = base64.b64decode(value[6:]).decode().partition(':')
                except (ValueError, UnicodeDecodeError):
                    return ('', '')
                return user, pw

            def _answer(self, user, password, scopes, service):
                if service and service != issuer.service:
                    return self.send_json(400, {'error': 'unknown service'})
                if user is None:
                    subject, scopes = '', []
                elif issuer.users.get(user) != password:
                    return self.send_json(401, {'error': 'invalid credentials'})
                else:
                    subject = user
                token = issuer.make_token(subject, scopes)
                issuer.issued += 1
                body = {'token': token, 'access_token': token,
                        'expires_in': 300,
                        'issued_at': datetime.datetime.now(
                            datetime.timezone.utc).isoformat()}
                if user is not None:
                    body['refresh_token'] = 'refresh-' + user
                self.send_json(200, body)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path != '/token':
                    return self.send_json(404, {'error': 'not found'})
                q = urllib.parse.parse_qs(url.query)
                creds = self._credentials()
                scopes = [s for v in q.get('scope', []) for s in v.split(' ')]
                issuer.requests.append(('GET', scopes, creds and creds[0]))
                self._answer(creds[0] if creds else None,
                             creds[1] if creds else None,
                             scopes, (q.get('service') or [''])[0])

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get('Content-Length') or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if url.path != '/token':
                    return self.send_json(404, {'error': 'not found'})
                scopes = [s for v in form.get('scope', []) for s in v.split(' ')]
                grant = (form.get('grant_type') or [''])[0]
                if grant == 'password':
                    user = (form.get('username') or [''])[0]
                    pw = (form.get('password') or [''])[0]
                elif grant == 'refresh_token':
                    token = (form.get('refresh_token') or [''])[0]
                    user = token[len('refresh-'):] if token.startswith('refresh-') else ''
                    pw = issuer.users.get(user, object())
                else:
                    return self.send_json(400, {'error': 'unsupported_grant_type'})
                issuer.requests.append(('POST', scopes, user))
                self._answer(user, pw, scopes, (form.get('service') or [''])[0])
        return Handler

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# a byte-counting TCP proxy


class RecordingProxy:
    """Forwards 127.0.0.1:<port> to ``target`` and counts the bytes each way:
    ``upload_bytes`` (client to registry: requests and pushed blobs) and
    ``download_bytes`` (registry to client). TLS passes through untouched."""

    def __init__(self, target_port):
        self.target = ('127.0.0.1', target_port)
        self.upload_bytes = 0
        self.download_bytes = 0
        self.connections = 0
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._stopped = False
        self._socks = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self._lock:
            self.upload_bytes = self.download_bytes = 0

    def _accept(self):
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            # Forward each piece as it comes: with Nagle on, a piece written
            # behind an unacknowledged one waits for a delayed ACK (40 ms).
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._socks.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, 'up'),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, 'down'),
                             daemon=True).start()

    def _pump(self, src, dst, direction):
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                with self._lock:
                    if direction == 'up':
                        self.upload_bytes += len(data)
                    else:
                        self.download_bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self._stopped = True
        self.listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# docker-registry (CNCF distribution 2.8)


class DockerRegistry:
    """One ``docker-registry serve CONFIG`` with its own storage directory.

    ``auth``: None, 'basic' (htpasswd) or 'token' (a TokenIssuer is started).
    ``tls``: serve HTTPS with a certificate signed by ``pki``'s CA.
    """

    def __init__(self, base, pki=None, tls=False, auth=None, proxy=False,
                 username='tester', password=None, address='127.0.0.1',
                 client_ca=False):
        self.base = base
        os.makedirs(base, exist_ok=True)
        self.storage = os.path.join(base, 'storage')
        self.config_path = os.path.join(base, 'config.yml')
        self.log_path = os.path.join(base, 'registry.log')
        self.tls = tls
        self.auth = auth
        self.pki = pki
        if (tls or auth == 'token') and pki is None:
            self.pki = TestPKI(os.path.join(base, 'pki'))
        self.username = username
        self.password = password or ('pw-' + uuid.uuid4().hex[:12])
        self.address = address
        # client_ca: the registry demands a client certificate signed by
        # the test CA (distribution's http.tls.clientcas).
        self.client_ca = client_ca
        self.port = free_port(address)
        self.issuer = None
        self.proxy = None
        self.proc = None
        self.certs_dir = None
        self.service = 'novadocker-test-registry'
        self._want_proxy = proxy

    # -- addresses clients use (the proxy's when there is one)
    @property
    def host(self):
        if self.proxy:
            return '127.0.0.1:%d' % self.proxy.port
        return '%s:%d' % (self.address, self.port)

    @property
    def direct_host(self):
        return '%s:%d' % (self.address, self.port)

    @property
    def scheme(self):
        return 'https' if self.tls else 'http'

    @property
    def url(self):
        return '%s://%s' % (self.scheme, self.host)

    @property
    def ca_path(self):
        return self.pki.ca_path if self.pki else None

    def config(self):
        lines = [
            'version: 0.1',
            'log:',
            '  level: warn',
            '  accesslog:',
            '    disabled: true',
            'storage:',
            '  filesystem:',
            '    rootdirectory: %s' % json.dumps(self.storage),
            '  delete:',
            '    enabled: true',
            '  maintenance:',
            '    uploadpurging:',
            '      enabled: false',
            'http:',
            '  addr: %s:%d' % (self.address, self.port),
            '  secret: %s' % uuid.uuid4().hex,
            '  headers:',
            '    X-Content-Type-Options: [nosniff]',
        ]
        if self.tls:
            lines += ['  tls:',
                      '    certificate: %s' % json.dumps(self.pki.server_cert_path),
                      '    key: %s' % json.dumps(self.pki.server_key_path)]
            if self.client_ca:
                lines += ['    clientcas:',
                          '      - %s' % json.dumps(self.pki.ca_path)]
        if self.auth == 'basic':
            htpasswd = os.path.join(self.base, 'htpasswd')
            with open(htpasswd, 'w') as f:
                f.write(htpasswd_line(self.username, self.password))
            lines += ['auth:', '  htpasswd:', '    realm: novadocker-test',
                      '    path: %s' % json.dumps(htpasswd)]
        elif self.auth == 'token':
            lines += ['auth:', '  token:',
                      '    realm: %s' % json.dumps(self.issuer.realm),
                      '    service: %s' % self.service,
                      '    issuer: %s' % self.issuer.issuer,
                      '    rootcertbundle: %s' % json.dumps(self.pki.token_cert_path)]
        elif self.auth is not None:
            raise ValueError('auth must be None, basic or token')
        return '\n'.join(lines) + '\n'

    def start(self, timeout=30):
        if self.auth == 'token':
            self.issuer = TokenIssuer(self.pki, self.service,
                                      users={self.username: self.password})
        if self.pki and self.tls:
            self.certs_dir = os.path.join(self.base, 'certs.d')
        with open(self.config_path, 'w') as f:
            f.write(self.config())
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                [REGISTRY_BINARY, 'serve', self.config_path], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        if self._want_proxy:
            self.proxy = RecordingProxy(self.port)
        if self.certs_dir:
            # The CA under both the direct and the proxied address.
            for host in {self.host, self.direct_host}:
                self.pki.install_certs_dir(self.certs_dir, host,
                                           client=self.client_ca)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('docker-registry exited with %s:\n%s' % (
                    self.proc.returncode, self.log_tail()))
            try:
                status = self.request('GET', '/v2/', auth=False)[0]
                if status in (200, 401):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('docker-registry did not answer in time:\n'
                                   + self.log_tail())
            time.sleep(0.05)

    def log_tail(self, n=40):
        return daemons._log_tail(self.log_path, n)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proxy:
            self.proxy.stop()
        if self.issuer:
            self.issuer.stop()

    # -- a tiny client of our own, for assertions (not the code under test)

    def _token(self, scope):
        q = urllib.parse.urlencode({'service': self.service, 'scope': scope})
        req = urllib.request.Request(self.issuer.realm + '?' + q)
        req.add_header('Authorization', 'Basic ' + base64.b64encode(
            ('%s:%s' % (self.username, self.password)).encode()).decode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)['token']

    def request(self, method, path, auth=True, headers=None, scope=None,
                direct=True, data=None):
        """(status, headers, body) of one request straight to the registry."""
        url = '%s://%s%s' % (self.scheme,
                             self.direct_host if direct else self.host, path)
        req = urllib.request.Request(url, method=method, data=data)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if auth and self.auth == 'basic':
            req.add_header('Authorization', 'Basic ' + base64.b64encode(
                ('%s:%s' % (self.username, self.password)).encode()).decode())
        elif auth and self.auth == 'token':
            req.add_header('Authorization', 'Bearer ' + self._token(
                scope or 'registry:catalog:*'))
        ctx = self.pki.ssl_context() if self.tls else None
        if ctx is not None and self.client_ca:
            ctx.load_cert_chain(self.pki.client_cert_path,
                                self.pki.client_key_path)
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def manifest(self, repo, ref):
        """The manifest (dict) and its digest, or (None, None) on 404."""
        status, hdrs, body = self.request(
            'GET', '/v2/%s/manifests/%s' % (repo, ref),
            headers={'Accept': ', '.join([
                MANIFEST_V2, 'application/vnd.oci.image.manifest.v1+json',
                'application/vnd.docker.distribution.manifest.list.v2+json',
                'application/vnd.oci.image.index.v1+json'])},
            scope='repository:%s:pull' % repo)
        if status == 404:
            return None, None
        assert status == 200, (status, body[:300])
        return json.loads(body), hdrs.get('Docker-Content-Digest')

    def tags(self, repo):
        status, _, body = self.request('GET', '/v2/%s/tags/list' % repo,
                                       scope='repository:%s:pull' % repo)
        if status == 404:
            return []
        assert status == 200, (status, body[:300])
        return json.loads(body).get('tags') or []

    def catalog(self):
        status, _, body = self.request('GET', '/v2/_catalog')
        assert status == 200, (status, body[:300])
        return json.loads(body).get('repositories') or []

    def has_blob(self, repo, digest):
        status = self.request('HEAD', '/v2/%s/blobs/%s' % (repo, digest),
                              scope='repository:%s:pull' % repo)[0]
        return status == 200

    def storage_bytes(self):
        """Bytes of blob data in the registry's storage (layers, configs,
        manifests): its growth is what a push really added."""
        return dir_bytes(os.path.join(self.storage, 'docker', 'registry',
                                      'v2', 'blobs'))

    def skopeo_args(self, direction='src'):
        """TLS and credential flags for skopeo against this registry."""
        args = []
        if self.tls:
            args.append('--%s-cert-dir=%s' % (direction, os.path.join(
                self.certs_dir, self.host)))
        else:
            args.append('--%s-tls-verify=false' % direction)
        if self.auth:
            args.append('--%s-creds=%s:%s' % (direction, self.username,
                                              self.password))
        return args


def skopeo(*args, timeout=180, check=True):
    res = subprocess.run([SKOPEO, '--insecure-policy'] + list(args),
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError('skopeo %s failed (%d): %s' % (
            ' '.join(a if 'creds' not in a else '--creds=***' for a in args),
            res.returncode, res.stderr.strip()))
    return res


def skopeo_inspect(reg, ref, raw=False, config=False):
    """``skopeo inspect docker://HOST/REF`` as a dict."""
    extra = ['--raw'] if raw else ['--config'] if config else []
    args = ['inspect'] + extra
    for a in reg.skopeo_args('src'):
        # skopeo inspect spells the flags without the src- prefix
        args.append(a.replace('--src-', '--'))
    out = skopeo(*(args + ['docker://%s/%s' % (reg.host, ref)])).stdout
    return json.loads(out)


# --------------------------------------------------------------------------
# the hostile registry


def _load_mkimage():
    spec = importlib.util.spec_from_file_location('novadocker_mkimage',
                                                  daemons.MKIMAGE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _gzip(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode='wb', mtime=0, filename='') as g:
        g.write(data)
    return out.getvalue()


def _unique_layer(nonce, size):
    """A small layer with a file whose content is ours alone (random bytes):
    no engine has it, so every pull must download and verify it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
        data = nonce.encode() + os.urandom(size)
        ti = tarfile.TarInfo('hostile-' + nonce)
        ti.size = len(data)
        ti.mtime = 1704067200
        ti.mode = 0o644
        tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class TestImage:
    """busybox (tools/mkimage.py's layer) + one unique layer, schema2."""

    __test__ = False

    def __init__(self, extra_bytes=256 * 1024):
        mk = _load_mkimage()
        self.nonce = uuid.uuid4().hex[:12]
        base = mk.build_rootfs_tar()
        top = _unique_layer(self.nonce, extra_bytes)
        self.layers = []  # (digest, blob, diff_id)
        for raw in (base, top):
            blob = _gzip(raw)
            self.layers.append((sha256_digest(blob), blob, sha256_digest(raw)))
        config = {
            'architecture': mk.host_arch(), 'os': 'linux',
            'created': mk.CREATED,
            'config': {'Env': [mk.PATH_ENV], 'Cmd': ['sh']},
            'rootfs': {'type': 'layers',
                       'diff_ids': [d for _, _, d in self.layers]},
            'history': [{'created': mk.CREATED, 'created_by': 'busybox'},
                        {'created': mk.CREATED,
                         'created_by': 'hostile ' + self.nonce}],
        }
        self.config = json.dumps(config, sort_keys=True,
                                 separators=(',', ':')).encode()
        self.config_digest = sha256_digest(self.config)
        self.image_id = self.config_digest
        self.manifest = json.dumps({
            'schemaVersion': 2, 'mediaType': MANIFEST_V2,
            'config': {'mediaType': CONFIG_V1, 'size': len(self.config),
                       'digest': self.config_digest},
            'layers': [{'mediaType': LAYER_GZIP, 'size': len(blob),
                        'digest': digest} for digest, blob, _ in self.layers],
        }, indent=3).encode()
        self.manifest_digest = sha256_digest(self.manifest)
        self.blobs = {d: b for d, b, _ in self.layers}
        self.blobs[self.config_digest] = self.config

    @property
    def top_digest(self):
        return self.layers[-1][0]


# What each behaviour does (the lie is always about the image's own unique
# top layer unless said otherwise).
BEHAVIOURS = {
    'honest': 'serves the image correctly',
    'wrong_digest': 'the top layer blob is other bytes of the same length',
    'wrong_size': 'the top layer blob is a few bytes longer than the '
                  'manifest says (Content-Length matches the body)',
    'short_content_length': 'Content-Length says less than the manifest '
                            'and the body is that short',
    'truncated': 'Content-Length is right but the connection closes half '
                 'way through the body, every time',
    'missing_blob': 'the manifest references a layer the registry does '
                    'not have (404 BLOB_UNKNOWN)',
    'huge_manifest': 'the manifest is 100 MiB of JSON',
    'garbage_manifest': 'the manifest body is not JSON',
    'garbage_config': 'the config blob is not JSON (its digest matches)',
    'redirect_loop': 'blob GETs redirect to themselves forever',
    'error_then_ok': 'the first two GETs of the top layer answer 500, '
                     'then it is served',
    'reset_then_ok': 'the first GET of the top layer is cut (TCP reset) '
                     'half way, then it is served',
    'stall': 'the top layer stops half way (sets .stalled) and waits for '
             '.release before closing the connection',
}


class HostileRegistry:
    """A registry API (GET /v2/, manifests, blobs) that lies one way."""

    def __init__(self, behaviour='honest', image=None, repo='hostile/app',
                 tag='latest'):
        if behaviour not in BEHAVIOURS:
            raise ValueError('unknown behaviour %r' % behaviour)
        self.behaviour = behaviour
        self.image = image or TestImage()
        self.repo = repo
        self.tag = tag
        self.hits = {}  # path -> count of GETs
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.log = []   # (method, path, status)
        self._lock = threading.Lock()
        self.server = _ThreadingServer(('127.0.0.1', 0), self._handler())
        self.port = self.server.server_address[1]
        self.host = '127.0.0.1:%d' % self.port
        self.ref = '%s/%s:%s' % (self.host, repo, tag)
        self.thread = _serve(self.server)

    def _count(self, path):
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            return self.hits[path]

    def manifest_body(self):
        """The manifest as served now (the lie included)."""
        body = self.image.manifest
        if self.behaviour == 'missing_blob':
            m = json.loads(body)
            m['layers'][-1]['digest'] = sha256_digest(
                b'not here ' + self.image.nonce.encode())
            body = json.dumps(m, indent=3).encode()
        elif self.behaviour == 'garbage_manifest':
            body = b'{"schemaVersion": 2, "mediaType": <<garbage'
        return body

    def make_honest(self):
        """Stop lying; an image whose content was the lie is replaced by a
        fresh honest one (returned)."""
        if self.behaviour == 'garbage_config':
            self.image = TestImage()
        self.behaviour = 'honest'
        return self.image

    def blob_gets(self, digest):
        return self.hits.get('/v2/%s/blobs/%s' % (self.repo, digest), 0)

    def _handler(reg):
        class Handler(_QuietHandler):
            def _error(self, status, code, message):
                self.send_json(status, {'errors': [{'code': code,
                                                    'message': message}]})

            def _send_bytes(self, status, body, ctype, length=None,
                            extra=None, cut_at=None, reset=False):
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length',
                                 str(len(body) if length is None else length))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command == 'HEAD':
                    return
                if cut_at is None:
                    self.wfile.write(body)
                    return
                self.wfile.write(body[:cut_at])
                self.wfile.flush()
                self.close_connection = True
                if reset:
                    # SO_LINGER 0: close sends RST, a "connection reset".
                    import struct
                    self.connection.setsockopt(socket.SOL_SOCKET,
                                               socket.SO_LINGER,
                                               struct.pack('ii', 1, 0))
                self.connection.close()

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                n = reg._count(path) if self.command == 'GET' else 0
                b = reg.behaviour
                if path in ('/v2', '/v2/'):
                    return self.send_json(200, {}, {
                        'Docker-Distribution-API-Version': 'registry/2.0'})
                prefix = '/v2/%s/' % reg.repo
                if not path.startswith(prefix):
                    return self._error(404, 'NAME_UNKNOWN',
                                       'repository name not known to registry')
                rest = path[len(prefix):]
                if rest.startswith('manifests/'):
                    ref = rest[len('manifests/'):]
                    if b == 'huge_manifest':
                        # under the tag and under any digest a client
                        # computed from it
                        return self._send_huge_manifest()
                    body = reg.manifest_body()
                    digest = sha256_digest(body)
                    if ref not in (reg.tag, digest):
                        return self._error(404, 'MANIFEST_UNKNOWN',
                                           'manifest unknown')
                    return self._send_bytes(200, body, MANIFEST_V2, extra={
                        'Docker-Content-Digest': digest,
                        'Docker-Distribution-API-Version': 'registry/2.0'})
                if rest.startswith('blobs/'):
                    digest = rest[len('blobs/'):]
                    return self._blob(digest, n)
                return self._error(404, 'UNSUPPORTED', 'not here')

            def _send_huge_manifest(self):
                size = 100 * 1024 * 1024
                head = b'{"schemaVersion":2,"mediaType":"%s","layers":[' % \
                    MANIFEST_V2.encode()
                tail = b']}'
                filler = b'{"mediaType":"x","size":1,"digest":"sha256:' + \
                    b'0' * 64 + b'"},'
                self.send_response(200)
                self.send_header('Content-Type', MANIFEST_V2)
                self.send_header('Content-Length', str(size))
                self.end_headers()
                if self.command == 'HEAD':
                    return
                sent = 0
                try:
                    self.wfile.write(head)
                    sent += len(head)
                    chunk = filler * 4096
                    while sent + len(chunk) + len(filler) + len(tail) < size:
                        self.wfile.write(chunk)
                        sent += len(chunk)
                    pad = size - sent - len(tail)
                    # last entry without the comma, then space padding
                    self.wfile.write(filler[:-1] + b' ' * (pad - len(filler) + 1))
                    self.wfile.write(tail)
                except OSError:
                    pass  # the client gave up reading: what we hope for
                self.close_connection = True

            def _blob(self, digest, n):
                img, b = reg.image, reg.behaviour
                if b == 'redirect_loop':
                    self.send_response(307)
                    self.send_header('Location', '/v2/%s/blobs/%s?loop=%d' % (
                        reg.repo, digest, n))
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                body = img.blobs.get(digest)
                if body is None:
                    return self._error(404, 'BLOB_UNKNOWN', 'blob unknown to registry')
                ctype = 'application/octet-stream'
                extra = {'Docker-Content-Digest': digest}
                if digest != img.top_digest:
                    return self._send_bytes(200, body, ctype, extra=extra)
                if b == 'wrong_digest':
                    body = bytes(len(body))  # zeros, same length
                    return self._send_bytes(200, body, ctype, extra=extra)
                if b == 'wrong_size':
                    return self._send_bytes(200, body + b'\0' * 100, ctype, extra=extra)
                if b == 'short_content_length':
                    short = body[:len(body) // 2]
                    return self._send_bytes(200, short, ctype, extra=extra)
                if b == 'truncated' and self.command == 'GET':
                    return self._send_bytes(200, body, ctype, extra=extra,
                                            cut_at=len(body) // 2)
                if b == 'stall' and self.command == 'GET':
                    self.send_response(200)
                    self.send_header('Content-Type', ctype)
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    reg.stalled.set()
                    reg.release.wait(120)
                    self.close_connection = True
                    return
                if b == 'error_then_ok' and self.command == 'GET' and n <= 2:
                    return self._error(500, 'UNKNOWN', 'internal error')
                if b == 'reset_then_ok' and self.command == 'GET' and n <= 1:
                    return self._send_bytes(200, body, ctype, extra=extra,
                                            cut_at=len(body) // 2, reset=True)
                return self._send_bytes(200, body, ctype, extra=extra)
        return Handler

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def garbage_config_image():
    """A TestImage whose config blob is not JSON (its digest is right)."""
    img = TestImage()
    img.config = b'this is not a JSON image config ' + img.nonce.encode()
    img.config_digest = sha256_digest(img.config)
    m = json.loads(img.manifest)
    m['config']['digest'] = img.config_digest
    m['config']['size'] = len(img.config)
    img.manifest = json.dumps(m, indent=3).encode()
    img.manifest_digest = sha256_digest(img.manifest)
    img.blobs = {d: bl for d, bl, _ in img.layers}
    img.blobs[img.config_digest] = img.config
    return img


# --------------------------------------------------------------------------
# engine configuration


def engine_config_text(*registries, insecure=(), extra=''):
    """oslo.config text for an engine that trusts ``registries``' CAs
    (one shared certs_dir in Docker's layout) and treats ``insecure`` hosts
    as insecure."""
    certs_dirs = {r.certs_dir for r in registries if getattr(r, 'certs_dir', None)}
    lines = ['[registry]']
    if certs_dirs:
        if len(certs_dirs) > 1:
            raise ValueError('give registries sharing one PKI/certs_dir')
        lines.append('certs_dir = %s' % certs_dirs.pop())
    if insecure:
        lines.append('insecure_registries = %s' % ','.join(insecure))
    return '\n'.join(lines) + '\n' + extra


# --------------------------------------------------------------------------
# fixtures


class RegistryFactory:
    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.registries = []
        self._pki = None

    @property
    def pki(self):
        # One PKI per test: registries in one test share a CA and certs_dir.
        if self._pki is None:
            self._pki = TestPKI(str(self.tmp.mktemp('pki')))
        return self._pki

    def __call__(self, tls=False, auth=None, proxy=False, **kw):
        needs_pki = tls or auth == 'token'
        reg = DockerRegistry(str(self.tmp.mktemp('registry')),
                             pki=self.pki if needs_pki else None, tls=tls,
                             auth=auth, proxy=proxy, **kw)
        self.registries.append(reg)
        reg.start()
        if reg.certs_dir:
            # Every TLS registry of a test shares one certs dir (the engine
            # takes one): copy the CA next to the others'.
            shared = os.path.join(str(self.tmp.getbasetemp()), 'certs.d-%d' % id(self))
            for host in {reg.host, reg.direct_host}:
                self.pki.install_certs_dir(shared, host, client=reg.client_ca)
            reg.certs_dir = shared
        return reg

    def finish(self):
        for reg in self.registries:
            reg.stop()


@pytest.fixture
def registry_factory(tmp_path_factory):
    factory = RegistryFactory(tmp_path_factory)
    yield factory
    factory.finish()


@pytest.fixture
def registry(registry_factory):
    """Plain HTTP docker-registry with a byte-counting proxy in front."""
    return registry_factory(proxy=True)


@pytest.fixture
def registry_tls_basic(registry_factory):
    return registry_factory(tls=True, auth='basic')


@pytest.fixture
def registry_token(registry_factory):
    return registry_factory(auth='token')


@pytest.fixture
def hostile_registry():
    made = []

    def make(behaviour='honest', **kw):
        if behaviour == 'garbage_config' and 'image' not in kw:
            kw['image'] = garbage_config_image()
        reg = HostileRegistry(behaviour, **kw)
        made.append(reg)
        return reg
    yield make
    for reg in made:
        reg.stop()


@pytest.fixture
def engine_registry_config():
    return engine_config_text


# --------------------------------------------------------------------------
# driving a daemon's registry API (our engine or Docker) from tests


def x_registry_auth(username=None, password=None, server=None, **extra):
    """The X-Registry-Auth header value as the docker CLI builds it."""
    doc = dict(extra)
    if username is not None:
        doc.update(username=username, password=password)
    if server:
        doc['serveraddress'] = server
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def auth_for(reg):
    """X-Registry-Auth headers for a registry fixture ({} when anonymous)."""
    if not getattr(reg, 'auth', None):
        return {}
    return {'X-Registry-Auth': x_registry_auth(reg.username, reg.password,
                                               reg.host)}


class StreamResult:
    """A pull or push answer: HTTP status, the JSON messages, the error
    reported (in the stream or as the body's message) or None."""

    def __init__(self, status, body):
        self.status = status
        self.body = body
        self.messages = []
        self.error = None
        text = body.decode(errors='replace')
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            self.messages.append(msg)
            if isinstance(msg, dict) and (msg.get('error') or msg.get('errorDetail')):
                self.error = msg.get('error') or msg['errorDetail'].get('message')
        if status >= 400 and self.error is None:
            first = self.messages[0] if self.messages else {}
            self.error = (first.get('message') if isinstance(first, dict)
                          else None) or text
        if status >= 400:
            self.messages = []

    @property
    def ok(self):
        return self.status == 200 and self.error is None

    def statuses(self, layer=None):
        return [m.get('status') for m in self.messages if isinstance(m, dict)
                and (layer is None or m.get('id') == layer)]

    def aux(self):
        for m in self.messages:
            if isinstance(m, dict) and m.get('aux'):
                return m['aux']
        return None

    def __repr__(self):
        return 'StreamResult(%d, error=%r, %d messages)' % (
            self.status, self.error, len(self.messages))


def _split_ref(ref):
    """('HOST/repo', 'tag') or ('HOST/repo@sha256:..', '')."""
    if '@' in ref:
        return ref, ''
    name, _, tag = ref.rpartition(':')
    if '/' in tag or not name:
        return ref, 'latest'
    return name, tag


def daemon_pull(daemon, ref, reg=None, headers=None, timeout=300):
    """POST /images/create?fromImage=&tag= on ``daemon`` (anything with
    .sock): a StreamResult."""
    name, tag = _split_ref(ref)
    query = {'fromImage': name}
    if tag:
        query['tag'] = tag
    hdrs = dict(auth_for(reg) if reg else {})
    hdrs.update(headers or {})
    status, _, body = daemons.api(
        daemon.sock, 'POST', '/images/create?' + urllib.parse.urlencode(query),
        headers=hdrs, timeout=timeout)
    return StreamResult(status, body)


def daemon_push(daemon, ref, reg=None, headers=None, timeout=300):
    """POST /images/{name}/push?tag= on ``daemon``: a StreamResult."""
    name, tag = _split_ref(ref)
    hdrs = {'X-Registry-Auth': x_registry_auth()}  # the CLI always sends one
    hdrs.update(auth_for(reg) if reg else {})
    hdrs.update(headers or {})
    path = '/images/%s/push' % urllib.parse.quote(name, safe='/:@')
    if tag:
        path += '?' + urllib.parse.urlencode({'tag': tag})
    status, _, body = daemons.api(daemon.sock, 'POST', path, headers=hdrs,
                                  timeout=timeout)
    return StreamResult(status, body)


def require_engine_registry(eng, what='pull'):
    """Skip the test while the engine's registry API is not there yet
    (issue 4 is built on three branches; the API lands with issue4-regapi)."""
    if what == 'pull':
        res = daemon_pull(eng, '127.0.0.1:9/probe/none:latest', timeout=60)
    else:
        res = daemon_push(eng, '127.0.0.1:9/probe/none:latest', timeout=60)
    if res.error and 'not supported by this engine yet' in res.error:
        pytest.skip('the engine cannot %s yet: %s' % (what, res.error))
    if res.status == 405 or (res.status == 404 and 'page not found'
                             in (res.error or '').lower()):
        pytest.skip('the engine has no %s route yet' % what)


def image_ids(daemon):
    status, items = daemons.api_json(daemon.sock, 'GET', '/images/json?all=1')
    assert status == 200, items
    return {i['Id'] for i in items}


def blob_present(eng, digest):
    """Whether our engine's content store holds ``digest``."""
    return os.path.exists(os.path.join(eng.root, 'content', 'blobs', 'sha256',
                                       digest.split(':', 1)[1]))


def ingest_leftovers(eng):
    path = os.path.join(eng.root, 'content', 'ingest')
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
