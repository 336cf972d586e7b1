"""A small in-process registry for the registry client's unit tests.

Speaks enough of the distribution API (ping, manifests, blobs, uploads
monolithic and chunked, mounts, tags and catalog with pagination) and can be
told to authenticate (basic, bearer with its own token endpoint) and to
misbehave (5xx, truncation, wrong bytes, redirects, loops).
"""

import base64
import hashlib
import http.server
import json
import re
import threading
import urllib.parse
import uuid


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class FakeRegistry(object):

    def __init__(self, auth=None, users=None, relative_location=True):
        self.auth = auth                  # None, 'basic', 'bearer'
        self.users = users or {'alice': 'secret-pw'}
        self.relative_location = relative_location
        self.blobs = {}                   # digest -> bytes (shared storage)
        self.repo_blobs = {}              # repo -> set(digest)
        self.manifests = {}               # (repo, ref) -> (bytes, mediatype)
        self.uploads = {}                 # uuid -> bytearray
        self.requests = []                # (method, path, query)
        self.token_requests = []          # scopes asked for
        self.fail = {}                    # (method, path regex) -> [status...]
        self.truncate = {}                # digest -> times to truncate
        self.lie = {}                     # digest -> bytes to send instead
        self.redirect = set()             # digests served through a redirect
        self.loop = set()                 # digests redirected forever
        self.redirect_to = None           # where redirects go (default ours)
        self.page = 2                     # default page size (tags, catalog)
        self.set_cookie = None            # a Set-Cookie for every answer
        self.anonymous_mounts = False     # mount= without from= (OCI 1.1)
        self.cookies_seen = []            # Cookie headers clients sent
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      self._handler())
        self.server.daemon_threads = True
        self.host = '127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- content helpers ---------------------------------------------------------

    def add_blob(self, repo, data):
        d = sha(data)
        self.blobs[d] = data
        self.repo_blobs.setdefault(repo, set()).add(d)
        return d

    def add_manifest(self, repo, ref, data, media_type):
        self.manifests[(repo, ref)] = (data, media_type)
        self.manifests[(repo, sha(data))] = (data, media_type)
        return sha(data)

    def count(self, method, pattern):
        rx = re.compile(pattern)
        return sum(1 for m, p, _q in self.requests if m == method and
                   rx.search(p))

    # -- the handler ------------------------------------------------------------

    def _handler(self):
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def send(self, status, body=b'', headers=None, ctype=None):
                self.send_response(status)
                if reg.set_cookie:
                    self.send_header('Set-Cookie', reg.set_cookie)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if ctype:
                    self.send_header('Content-Type', ctype)
                if 'Content-Length' not in (headers or {}):
                    self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if self.command != 'HEAD' and body:
                    self.wfile.write(body)

            def error(self, status, code, msg, headers=None):
                self.send(status, json.dumps({'errors': [
                    {'code': code, 'message': msg}]}).encode(), headers,
                    'application/json')

            def body(self):
                n = int(self.headers.get('Content-Length') or 0)
                return self.rfile.read(n) if n else b''

            def authorized(self, scope):
                a = self.headers.get('Authorization', '')
                if reg.auth == 'basic':
                    ok = False
                    if a.startswith('Basic '):
                        u, _, p = base64.b64decode(a[6:]).decode().partition(':')
                        ok = reg.users.get(u) == p
                    if not ok:
                        self.error(401, 'UNAUTHORIZED', 'authentication '
                                   'required', {'WWW-Authenticate':
                                                'Basic realm="fake"'})
                    return ok
                if reg.auth == 'bearer':
                    want = 'tok:' + scope
                    if a == 'Bearer ' + want or (a.startswith('Bearer tok:')
                                                 and not scope):
                        return True
                    hdr = ('Bearer realm="http://%s/token",service="fake"'
                           % reg.host)
                    if scope:
                        hdr += ',scope="%s"' % scope
                    self.error(401, 'UNAUTHORIZED', 'authentication required',
                               {'WWW-Authenticate': hdr})
                    return False
                return True

            def token(self, query):
                if self.command == 'POST':
                    form = urllib.parse.parse_qs(self.body().decode())
                    scope = ' '.join(form.get('scope', []))
                    reg.token_requests.append(scope)
                    if form.get('grant_type') != ['refresh_token'] or \
                            form.get('refresh_token') != ['refresh-ok']:
                        return self.error(401, 'UNAUTHORIZED', 'bad token')
                    return self.send(200, json.dumps({
                        'access_token': 'tok:' + scope}).encode(),
                        ctype='application/json')
                a = self.headers.get('Authorization', '')
                scope = ' '.join(query.get('scope', []))
                reg.token_requests.append(scope)
                if a.startswith('Basic '):
                    u, _, p = base64.b64decode(a[6:]).decode().partition(':')
                    if reg.users.get(u) != p:
                        return self.error(401, 'UNAUTHORIZED', 'bad creds')
                elif 'push' in scope:
                    return self.error(401, 'UNAUTHORIZED', 'anonymous push')
                self.send(200, json.dumps({'token': 'tok:' + scope,
                                           'expires_in': 300}).encode(),
                          ctype='application/json')

            def handle_any(self):
                u = urllib.parse.urlsplit(self.path)
                path, query = u.path, urllib.parse.parse_qs(u.query)
                with reg.lock:
                    reg.requests.append((self.command, path, query))
                    if self.headers.get('Cookie'):
                        reg.cookies_seen.append(self.headers['Cookie'])
                    for (m, rx), statuses in reg.fail.items():
                        if m == self.command and re.search(rx, path) and \
                                statuses:
                            status = statuses.pop(0)
                            self.body()
                            return self.error(status, 'UNAVAILABLE', 'boom')
                if path == '/token':
                    return self.token(query)
                if path.startswith('/storage/'):
                    return self.serve_blob(path[len('/storage/'):], True)
                if path == '/v2/':
                    if not self.authorized(''):
                        return
                    return self.send(200, b'{}', ctype='application/json')
                if path == '/v2/_catalog':
                    if not self.authorized('registry:catalog:*'):
                        return
                    names = sorted({r for r, _ in reg.manifests})
                    return self.paginate('repositories', names, query,
                                         '/v2/_catalog', {})
                m = re.match(r'^/v2/(.+)/(manifests|blobs|tags)/(.*)$', path)
                if not m:
                    return self.error(404, 'NOT_FOUND', 'no route')
                repo, kind, rest = m.groups()
                write = self.command in ('PUT', 'POST', 'PATCH', 'DELETE')
                scope = 'repository:%s:%s' % (repo, 'pull,push' if write
                                              else 'pull')
                if reg.auth == 'bearer' and not write and \
                        self.headers.get('Authorization') == \
                        'Bearer tok:repository:%s:pull,push' % repo:
                    scope = 'repository:%s:pull,push' % repo
                if not self.authorized(scope):
                    return
                if kind == 'tags':
                    tags = sorted(r for (rp, r) in reg.manifests
                                  if rp == repo and not r.startswith('sha256:'))
                    return self.paginate('tags', tags, query,
                                         '/v2/%s/tags/list' % repo,
                                         {'name': repo})
                if kind == 'manifests':
                    return self.manifest(repo, rest)
                if rest.startswith('uploads'):
                    return self.upload(repo, rest[len('uploads'):].strip('/'),
                                       query)
                if rest not in reg.repo_blobs.get(repo, ()):
                    return self.error(404, 'BLOB_UNKNOWN', 'blob unknown to '
                                      'registry')
                if rest in reg.loop:
                    return self.send(307, headers={
                        'Location': '/v2/%s/blobs/%s' % (repo, rest)})
                if rest in reg.redirect and self.command == 'GET':
                    return self.send(307, headers={
                        'Location': reg.redirect_to or
                        'http://%s/storage/%s' % (reg.host, rest)})
                return self.serve_blob(rest, False)

            def serve_blob(self, digest, _storage):
                data = reg.blobs.get(digest)
                if data is None:
                    return self.error(404, 'BLOB_UNKNOWN', 'blob unknown')
                data = reg.lie.get(digest, data)
                if reg.truncate.get(digest):
                    reg.truncate[digest] -= 1
                    self.send_response(200)
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send(200, data, {'Docker-Content-Digest': digest},
                          'application/octet-stream')

            def manifest(self, repo, ref):
                if self.command == 'PUT':
                    data = self.body()
                    ctype = self.headers.get('Content-Type')
                    for d in json.loads(data).get('layers', []) + \
                            [json.loads(data)['config']]:
                        if d['digest'] not in reg.repo_blobs.get(repo, ()):
                            return self.error(400, 'MANIFEST_BLOB_UNKNOWN',
                                              'blob unknown to registry')
                    d = reg.add_manifest(repo, ref, data, ctype)
                    return self.send(201, headers={
                        'Docker-Content-Digest': d,
                        'Location': '/v2/%s/manifests/%s' % (repo, d)})
                entry = reg.manifests.get((repo, ref))
                if entry is None:
                    return self.error(404, 'MANIFEST_UNKNOWN',
                                      'manifest unknown')
                data, mt = entry
                self.send(200, data, {'Docker-Content-Digest': sha(data)}, mt)

            def location(self, repo, uid):
                loc = '/v2/%s/blobs/uploads/%s?_state=x' % (repo, uid)
                if not reg.relative_location:
                    loc = 'http://%s%s' % (reg.host, loc)
                return loc

            def upload(self, repo, uid, query):
                if self.command == 'POST':
                    mount = query.get('mount', [None])[0]
                    src = query.get('from', [None])[0]
                    if mount and src and mount in reg.repo_blobs.get(src, ()) or \
                            mount and not src and reg.anonymous_mounts and \
                            mount in reg.blobs:
                        reg.repo_blobs.setdefault(repo, set()).add(mount)
                        return self.send(201, headers={
                            'Location': '/v2/%s/blobs/%s' % (repo, mount)})
                    uid = uuid.uuid4().hex
                    reg.uploads[uid] = bytearray()
                    return self.send(202, headers={
                        'Location': self.location(repo, uid),
                        'Range': '0-0'})
                buf = reg.uploads.get(uid)
                if buf is None:
                    return self.error(404, 'BLOB_UPLOAD_UNKNOWN', 'unknown')
                data = self.body()
                if self.command == 'PATCH':
                    rng = self.headers.get('Content-Range')
                    if rng and int(rng.split('-')[0]) != len(buf):
                        return self.error(416, 'BLOB_UPLOAD_INVALID', 'range')
                    buf += data
                    return self.send(202, headers={
                        'Location': self.location(repo, uid),
                        'Range': '0-%d' % (len(buf) - 1)})
                if self.command == 'PUT':
                    buf += data
                    digest = query.get('digest', [''])[0]
                    if sha(bytes(buf)) != digest:
                        return self.error(400, 'DIGEST_INVALID', 'mismatch')
                    del reg.uploads[uid]
                    reg.add_blob(repo, bytes(buf))
                    return self.send(201, headers={
                        'Docker-Content-Digest': digest,
                        'Location': '/v2/%s/blobs/%s' % (repo, digest)})
                return self.error(405, 'UNSUPPORTED', 'method')

            def paginate(self, key, items, query, path, extra):
                n = int(query.get('n', [reg.page])[0])
                n = min(n, reg.page)
                last = query.get('last', [None])[0]
                if last is not None:
                    items = [i for i in items if i > last]
                page, more = items[:n], len(items) > n
                headers = {}
                if more:
                    headers['Link'] = '<%s?n=%d&last=%s>; rel="next"' % (
                        path, n, urllib.parse.quote(page[-1]))
                body = dict(extra)
                body[key] = page
                self.send(200, json.dumps(body).encode(), headers,
                          'application/json')

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = handle_any

        return Handler
