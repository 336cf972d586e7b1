"""Push, login, search and tag listing.

Push sends each layer as a blob.  A layer pulled from a registry keeps the
blob it came as (same digest everywhere).  A layer made here (commit, load,
import) whose samples do not compress (random or already compressed data)
is sent as the plain tar it is (``[registry] incompressible_layers``: or
wrapped in gzip's stored blocks, which costs only a CRC); any other is
gzip-compressed once, deterministically (level 6, no name, mtime 0; with
pigz, whose output does not depend on its thread count, where installed: a
layer compresses on every core, and engines that all have pigz, or all lack
it, make the same blob), and that blob is kept in the content store.  The
choice is recorded in the v2 metadata, so pushing it again gives the same
digest.  A blob the metadata knows in the target repository is looked for
there (HEAD); one it knows in another repository of the registry is mounted
from there; one never pushed to the registry gets an upload session that
asks the registry to mount it from wherever it has it (OCI distribution
1.1; older registries open a plain session).  Small blobs go in one PUT,
big ones in PATCH chunks.  Only then is the manifest (Docker
schema 2, as Docker 20.10 pushes) PUT.
"""

import concurrent.futures
import hashlib
import json
import shutil
import subprocess
import urllib.parse
import zlib

from oslo_log import log as logging

from engine import errors
from engine import images as images_mod
from engine import reference
from engine.registry import pull as pull_mod
from engine.registry import transport

LOG = logging.getLogger(__name__)

GZIP_LEVEL = 6
CHUNK = 1 << 20
MAX_MOUNT_TRIES = 3
MAX_PAGES = 1000
GZIP_TYPES = (pull_mod.MT_DOCKER_LAYER, images_mod.MEDIA_TAR_GZIP)
# Blobs the v2 metadata may name for a local layer.
PUSHED_TYPES = GZIP_TYPES + (pull_mod.MT_DOCKER_LAYER_TAR,)


class _GzipReader(object):
    """Deterministic gzip of a file, read in pieces (for ingest)."""

    def __init__(self, f, level=GZIP_LEVEL):
        self.f = f
        # wbits 31: a gzip wrapper with mtime 0 and no file name.
        self.z = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.done = False

    def read(self, n=-1):
        while not self.done:
            data = self.f.read(CHUNK)
            if data:
                out = self.z.compress(data)
            else:
                out = self.z.flush()
                self.done = True
            if out:
                return out
        return b''


class _PigzReader(object):
    """The same, by pigz on every core: a file object for ingest that
    raises at the end if pigz failed (so no blob of a partial output is
    committed)."""

    def __init__(self, f, pigz):
        self.proc = subprocess.Popen([pigz, '-n', '-%d' % GZIP_LEVEL, '-c'], stdin=f,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def read(self, n=-1):
        data = self.proc.stdout.read(CHUNK if n is None or n < 0 else n)
        if data:
            return data
        err = self.proc.stderr.read(4096).decode(errors='replace').strip()
        if self.proc.wait() != 0:
            raise errors.RuntimeFailure('compressing the layer failed: pigz exited with '
                                        'status %d: %s' % (self.proc.returncode, err))
        return b''

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


# Samples that decide whether a layer is worth compressing.
SAMPLES = 4
SAMPLE_SIZE = 16 * 1024
INCOMPRESSIBLE = 0.97


def incompressible(f):
    """True when every sample of the file shrinks by less than 3% at gzip
    level 1: the layer holds random or already compressed data, so deflate
    would burn CPU for nothing.  The samples are spread over the inside of
    the file, away from both ends: a tar starts with headers and ends with
    up to 10 KiB of zero padding, which say nothing about the data.  The
    decision depends only on the content, so every engine makes the same
    blob."""
    f.seek(0, 2)
    size = f.tell()
    try:
        if size < SAMPLE_SIZE * 2:
            return False
        for i in range(1, SAMPLES + 1):
            f.seek((size - SAMPLE_SIZE) * i // (SAMPLES + 1))
            data = f.read(SAMPLE_SIZE)
            if len(zlib.compress(data, 1)) < INCOMPRESSIBLE * len(data):
                return False
        return True
    finally:
        f.seek(0)


def _compressor(f, stored=None):
    """A deterministic gzip stream of the layer file ``f``: stored blocks
    (gzip level 0, CRC only) for an incompressible layer, else level 6 by
    pigz on every core where installed, else zlib.  ``stored``: whether the
    layer is incompressible, when the caller knows."""
    if incompressible(f) if stored is None else stored:
        return _GzipReader(f, level=0)
    pigz = shutil.which('pigz')
    return _PigzReader(f, pigz) if pigz else _GzipReader(f)


def _with_query(url, **params):
    sep = '&' if '?' in url else '?'
    return url + sep + urllib.parse.urlencode(params)


class Pusher(pull_mod.RegistryJob):

    def __init__(self, dist, ref, credentials, progress):
        super().__init__(dist, ref, credentials, progress, 'pull,push')

    @property
    def bytes_uploaded(self):
        """Bytes of blobs and manifests sent, every attempt counted."""
        return self.client.bytes_sent

    # -- blobs ------------------------------------------------------------------

    def compressed(self, layer, lease):
        """The Descriptor of the blob to push for a local layer."""
        media, digest = layer['media_type'], layer['digest']
        if media in GZIP_TYPES:
            return pull_mod.Descriptor(pull_mod.MT_DOCKER_LAYER, digest,
                                       self.content.size(digest))
        if media == images_mod.MEDIA_TAR_ZSTD:
            return pull_mod.Descriptor(media, digest,
                                       self.content.size(digest))
        diff_id = layer['diff_id']
        for b in self.dist.metadata.blobs(diff_id):
            if b['media_type'] not in PUSHED_TYPES:
                continue
            lease.add(b['digest'])
            if self.content.has(b['digest']):
                return pull_mod.Descriptor(
                    pull_mod.MT_DOCKER_LAYER_TAR
                    if b['media_type'] == pull_mod.MT_DOCKER_LAYER_TAR
                    else pull_mod.MT_DOCKER_LAYER,
                    b['digest'], self.content.size(b['digest']))
            lease.drop(b['digest'])
        with self.content.open(digest) as f:
            stored = incompressible(f)
        if stored and digest == diff_id and \
                self.dist.settings.incompressible_layers == 'tar':
            # The layer blob itself: nothing to compute, nothing to store.
            return pull_mod.Descriptor(pull_mod.MT_DOCKER_LAYER_TAR, digest,
                                       self.content.size(digest))
        guard = self.images.space_guard(self.content.ingest_dir,
                                        'the compressed layer')
        with self.content.open(digest) as f:
            reader = _compressor(f, stored)
            try:
                got = self.content.ingest(reader, lease=lease, guard=guard)
            finally:
                if hasattr(reader, 'close'):
                    reader.close()
        self.dist.metadata.add(diff_id, got.digest, got.size,
                               pull_mod.MT_DOCKER_LAYER)
        return pull_mod.Descriptor(pull_mod.MT_DOCKER_LAYER, got.digest,
                                   got.size)

    def exists(self, desc):
        try:
            resp = self.client.request(
                'HEAD', '/v2/%s/blobs/%s' % (self.name, desc.digest),
                self.scope, ok=(200,), what='blob %s' % desc.digest)
        except errors.NotFound:
            return False
        resp.close()
        return True

    def mount(self, desc, candidates):
        """Try mounting from other repositories: (source, upload location).
        A candidate None asks for a mount from wherever the registry has the
        blob (OCI distribution 1.1: ``mount`` without ``from``; source ''
        when it worked); a registry that cannot opens an upload session
        instead, as for any refused mount."""
        location = None
        for source in candidates[:MAX_MOUNT_TRIES]:
            params = {'mount': desc.digest}
            if source is not None:
                params['from'] = source
            resp = self.client.request(
                'POST', '/v2/%s/blobs/uploads/' % self.name, self.scope,
                ok=(201, 202), params=params,
                what='mounting blob %s from %s' % (desc.digest,
                                                   source or 'the registry'))
            resp.close()
            if resp.status_code == 201:
                return source or '', None
            # 202: no mount, but an upload session the registry opened.
            location = urllib.parse.urljoin(resp.url,
                                            resp.headers.get('Location', ''))
            if location:
                break
        return None, location

    def upload(self, desc, short=None, location=None, data=None):
        if location is None:
            resp = self.client.request(
                'POST', '/v2/%s/blobs/uploads/' % self.name, self.scope,
                ok=(202,), what='starting the upload of blob %s' % desc.digest)
            resp.close()
            location = resp.headers.get('Location')
            if not location:
                raise errors.RegistryError(
                    'registry %s: no upload location for %s/%s'
                    % (self.registry, self.name, desc.digest))
            location = urllib.parse.urljoin(resp.url, location)
        chunk = self.dist.settings.upload_chunk_size
        size = desc.size

        def progress(n):
            if short:
                self.say({'status': 'Pushing', 'id': short,
                          'progressDetail': {'current': n, 'total': size},
                          'progress': pull_mod._bar(n, size)})
        what = 'uploading blob %s to %s/%s' % (desc.digest, self.registry,
                                               self.name)
        if data is None and (not chunk or size <= chunk):
            with self.content.open(desc.digest) as f:
                data = f.read()
        if data is not None:
            resp = self.client.request(
                'PUT', _with_query(location, digest=desc.digest), self.scope,
                ok=(201,), data=data, what=what,
                headers={'Content-Type': 'application/octet-stream',
                         'Content-Length': str(len(data))})
            progress(len(data))
        else:
            offset = 0
            with self.content.open(desc.digest) as f:
                while offset < size:
                    piece = f.read(min(chunk, size - offset))
                    if not piece:
                        raise errors.ContentError('blob %s is shorter than '
                                                  'recorded' % desc.digest)
                    end = offset + len(piece) - 1
                    resp = self.client.request(
                        'PATCH', location, self.scope, ok=(202,), data=piece,
                        what=what,
                        headers={'Content-Type': 'application/octet-stream',
                                 'Content-Range': '%d-%d' % (offset, end),
                                 'Content-Length': str(len(piece))})
                    resp.close()
                    got = resp.headers.get('Range', '')
                    if got and got.split('-')[-1] != str(end):
                        raise errors.RegistryError(
                            'registry %s: upload of %s went wrong: it has '
                            'bytes %s, expected 0-%d' % (
                                self.registry, desc.digest, got[:40], end))
                    loc = resp.headers.get('Location')
                    if loc:
                        location = urllib.parse.urljoin(resp.url, loc)
                    offset = end + 1
                    progress(offset)
            resp = self.client.request(
                'PUT', _with_query(location, digest=desc.digest), self.scope,
                ok=(201,), data=b'', what=what,
                headers={'Content-Length': '0'})
        resp.close()
        said = resp.headers.get('Docker-Content-Digest')
        if said and said != desc.digest:
            raise errors.RegistryError(
                'registry %s stored blob %s as %s' % (self.registry,
                                                      desc.digest, said))

    def push_layer(self, layer, lease):
        diff_id = layer['diff_id']
        short = diff_id[7:19]
        desc = self.compressed(layer, lease)
        known = [b for b in self.dist.metadata.blobs(diff_id)
                 if b['digest'] == desc.digest]
        repos = known[0]['repos'] if known else []
        prefix = self.ref.domain + '/'
        others = [r[len(prefix):] for r in reversed(repos)
                  if r.startswith(prefix) and r != self.repo]
        # Known in another repository of this registry and not (as far as
        # we know) in this one: mount at once, the registry answers the
        # mount as a HEAD would (one round trip less).  Known here: HEAD.
        # Never pushed to this registry (a new commit, mostly): no HEAD (as
        # Docker), an upload session that asks the registry to mount the
        # blob should it have it from elsewhere.
        source = location = None
        if others and self.repo not in repos:
            source, location = self.mount(desc, others)
        elif self.repo in repos and self.exists(desc):
            source = self.repo
        elif others:
            source, location = self.mount(desc, others)
        else:
            source, location = self.mount(desc, [None])
        if source is None:
            self.upload(desc, short, location)
            self.say({'status': 'Pushed', 'id': short, 'progressDetail': {}})
        elif source in (self.repo, ''):
            self.say({'status': 'Layer already exists', 'id': short,
                      'progressDetail': {}})
        else:
            self.say({'status': 'Mounted from %s' % source, 'id': short,
                      'progressDetail': {}})
        self.dist.metadata.add(diff_id, desc.digest, desc.size,
                               desc.media_type, repo=self.repo)
        return desc

    # -- the whole push -----------------------------------------------------------

    def run(self):
        ref = self.ref
        if ref.digest:
            raise errors.InvalidArgument('cannot push a digest reference: %s'
                                         % ref.familiar())
        try:
            img = self.images.resolve(str(ref))
        except errors.NotFound:
            raise errors.NoSuchImage(ref.familiar()) from None
        self.say({'status': 'The push refers to repository [%s]' % ref.name})
        self.client.ping()
        layers = list(img.record['layers'])
        for l in layers:
            self.say({'status': 'Preparing', 'id': l['diff_id'][7:19],
                      'progressDetail': {}})
        with self.images.lease() as lease:
            for l in layers:
                lease.add(l['digest'])
            config = self.content.read(img.id, images_mod.MAX_CONFIG_SIZE)
            cdesc = pull_mod.Descriptor(pull_mod.MT_DOCKER_CONFIG, img.id,
                                        len(config))
            # The config goes up beside the layers (the manifest, which
            # names them all, goes last).
            with concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix='push-config') as one:
                pushed_before = any(r.split('@')[0] == ref.name
                                    for r in img.repo_digests)
                config_done = one.submit(self._push_config, cdesc, config,
                                         pushed_before)
                try:
                    descs = self._push_layers(layers, lease)
                finally:
                    config_error = config_done.exception()
            if config_error is not None:
                raise config_error
            manifest = {
                'schemaVersion': 2,
                'mediaType': pull_mod.MT_DOCKER_MANIFEST,
                'config': {'mediaType': cdesc.media_type, 'size': cdesc.size,
                           'digest': cdesc.digest},
                'layers': [{'mediaType': d.media_type, 'size': d.size,
                            'digest': d.digest} for d in descs],
            }
            # Docker marshals with a 3-space indent: the same image pushed
            # by both gets the same manifest digest.
            body = json.dumps(manifest, indent=3).encode()
            digest = self.put_manifest(body)
            self.content.write(body, digest)
        with self.images._lock:
            # RepoDigests gains repo@digest, as after a Docker push.
            if img.id in self.images._records:
                self.images._set_refs(img.id, [ref.with_digest(digest)])
        self.say({'status': '%s: digest: %s size: %d'
                  % (ref.tag, digest, len(body)),
                  'progressDetail': {},
                  'aux': {'Tag': ref.tag, 'Digest': digest,
                          'Size': len(body)}})
        self.dist.publish_image_event('push', ref.familiar(), img.id)
        return digest

    def _push_config(self, cdesc, config, pushed_before):
        """The config blob.  An image pushed to this repository before:
        HEAD (the registry has it).  Else an upload session that asks the
        registry to mount it should it have it (one round trip where a
        HEAD and then a session would take two)."""
        if pushed_before:
            if not self.exists(cdesc):
                self.upload(cdesc, data=config)
            return
        source, location = self.mount(cdesc, [None])
        if source is None:
            self.upload(cdesc, location=location, data=config)

    def _push_layers(self, layers, lease):
        """Push layers concurrently (as Docker, a few at a time), those
        never pushed to this registry first (they have bytes to send, the
        others a round trip); the descriptors come back in the image's
        order."""
        prefix = self.ref.domain + '/'

        def known_here(layer):
            return any(r.startswith(prefix) for b in
                       self.dist.metadata.blobs(layer['diff_id'])
                       for r in b['repos'])
        order = sorted(range(len(layers)), key=lambda i: known_here(layers[i]))
        workers = max(1, min(len(layers),
                             self.dist.settings.max_concurrent_uploads))
        for i in order[workers:]:
            self.say({'status': 'Waiting', 'id': layers[i]['diff_id'][7:19],
                      'progressDetail': {}})
        if workers == 1:
            done = {i: self.push_layer(layers[i], lease) for i in order}
            return [done[i] for i in range(len(layers))]
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix='push') as pool:
            futures = {i: pool.submit(self.push_layer, layers[i], lease)
                       for i in order}
            try:
                return [futures[i].result() for i in range(len(layers))]
            except BaseException:
                for f in futures.values():
                    f.cancel()
                raise

    def put_manifest(self, body):
        digest = 'sha256:' + hashlib.sha256(body).hexdigest()
        resp = self.client.request(
            'PUT', '/v2/%s/manifests/%s' % (self.name, self.ref.tag),
            self.scope, ok=(201, 200), data=body,
            headers={'Content-Type': pull_mod.MT_DOCKER_MANIFEST},
            what='pushing the manifest of %s' % self.ref.familiar())
        resp.close()
        said = resp.headers.get('Docker-Content-Digest')
        if said and said != digest:
            raise errors.RegistryError('registry %s stored the manifest as %s, '
                                       'expected %s' % (self.registry, said,
                                                        digest))
        return digest


# -- login, tags, search -----------------------------------------------------------

def _server_domain(server):
    """The registry domain of a login server ('' / Hub URLs -> docker.io)."""
    s = (server or '').strip()
    for prefix in ('https://', 'http://'):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split('/', 1)[0]
    if s in ('', 'index.docker.io', 'docker.io', 'registry-1.docker.io'):
        return 'docker.io'
    if not reference.REFERENCE_RE.match(s + '/x') or '@' in s:
        raise errors.InvalidArgument('invalid registry server: %r'
                                     % server[:100])
    return s


def login(dist, server, credentials):
    domain = _server_domain(server)
    if not credentials:
        raise errors.InvalidArgument('login needs a username and password '
                                     'or an identity token')
    client = dist.client(domain, credentials)
    client.ping()
    url = client.url('/v2/')
    try:
        resp = client.request('GET', '/v2/', '', ok=(200,), what='login')
    except errors.Unauthorized:
        raise errors.Unauthorized(
            'login attempt to %s failed with status: 401 Unauthorized' % url)
    except errors.Forbidden:
        raise errors.Unauthorized(
            'login attempt to %s failed with status: 403 Forbidden' % url)
    resp.close()
    return {'Status': 'Login Succeeded', 'IdentityToken': ''}


def list_tags(client, name, limit=0):
    """All tags of a repository, following ``Link`` pagination."""
    tags = []
    path = '/v2/%s/tags/list?n=100' % name
    scope = 'repository:%s:pull' % name
    for _ in range(MAX_PAGES):
        resp = client.request('GET', path, scope, stream=True,
                              what='tags of %s' % name)
        nxt = transport.next_link(resp, resp.url)
        body = client.read_json(resp, 'tag list of %s' % name)
        page = body.get('tags') if isinstance(body, dict) else None
        tags += [t for t in page or () if isinstance(t, str)]
        if not nxt or (limit and len(tags) >= limit):
            break
        path = nxt
    return tags


def catalog(client, want=None):
    """Repository names of a registry, following ``Link`` pagination;
    stops early once ``want(names)`` says enough were found."""
    names = []
    path = '/v2/_catalog?n=100'
    for _ in range(MAX_PAGES):
        resp = client.request('GET', path, 'registry:catalog:*', stream=True,
                              what='catalog of %s' % client.host)
        nxt = transport.next_link(resp, resp.url)
        body = client.read_json(resp, 'catalog of %s' % client.host)
        page = body.get('repositories') if isinstance(body, dict) else None
        names += [r for r in page or () if isinstance(r, str)]
        if not nxt or (want is not None and want(names)):
            break
        path = nxt
    return names


def search(dist, term, limit, credentials):
    if not isinstance(term, str) or not term:
        raise errors.InvalidArgument('search term is empty')
    try:
        limit = int(limit or 25)
    except (TypeError, ValueError):
        raise errors.InvalidArgument('invalid limit: %r' % (limit,))
    if limit < 1 or limit > 100:
        raise errors.InvalidArgument('limit %d is outside the range of '
                                     '[1, 100]' % limit)
    host, sep, text = term.partition('/')
    if not sep or not (any(c in host for c in '.:') or host == 'localhost') \
            or host in ('docker.io', 'index.docker.io'):
        raise errors.InvalidArgument(
            'search term %r names no private registry: search a registry '
            'with HOST[:PORT]/TEXT (Docker Hub is not searched)' % term[:100])
    needle = text.lower()
    client = dist.client(host, credentials)

    def matching(names):
        return [n for n in names if needle in n.lower()]
    names = catalog(client, want=lambda ns: len(matching(ns)) >= limit)
    out = []
    for name in matching(names)[:limit]:
        try:
            tags = list_tags(client, name, limit=10)
        except errors.EngineError:
            tags = []
        out.append({'name': '%s/%s' % (host, name),
                    'description': ('tags: ' + ', '.join(tags[:10]))
                    if tags else '',
                    'star_count': 0, 'is_official': False,
                    'is_automated': False})
    return out
