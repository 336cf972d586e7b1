"""Pull: manifest negotiation, platform selection, verified downloads.

Every byte from the registry is untrusted until its digest matches: the
manifest is hashed against the digest asked for (or the one the index
names), the config and each layer blob are streamed into the content store
(which verifies the digest before the blob becomes visible) with the size
the manifest declared enforced on the way.  Only then is the image created,
through ``ImageStore.create_image`` as a load does (same image ID: the
config digest), and only then is the tag set, in one atomic write.

Layers whose chain is already unpacked locally are not downloaded
("Already exists"); blobs a previous, interrupted pull completed are found
in the content store and reused.
"""

import concurrent.futures
import hashlib
import json
import shutil
import threading
import time

from oslo_log import log as logging
import requests
import urllib3

from engine import errors
from engine import images as images_mod
from engine import reference
from engine.registry import transport

LOG = logging.getLogger(__name__)

MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MT_SCHEMA1 = ('application/vnd.docker.distribution.manifest.v1+json',
              'application/vnd.docker.distribution.manifest.v1+prettyjws')
MT_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
MT_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
MT_DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar'
MANIFEST_TYPES = (MT_DOCKER_MANIFEST, MT_OCI_MANIFEST)
INDEX_TYPES = (MT_DOCKER_LIST, MT_OCI_INDEX)
ACCEPT = ', '.join((MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST,
                    MT_OCI_INDEX))
# Layer media types we unpack, and their compression.
LAYER_TYPES = {
    MT_DOCKER_LAYER: 'gzip',
    MT_DOCKER_LAYER_TAR: None,
    images_mod.MEDIA_TAR: None,
    images_mod.MEDIA_TAR_GZIP: 'gzip',
    images_mod.MEDIA_TAR_ZSTD: 'zstd',
}
FOREIGN_TYPES = (
    'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
)
MAX_LAYERS = 500
CHUNK = 1 << 20
PROGRESS_EVERY = 0.1


class Descriptor(object):
    __slots__ = ('media_type', 'digest', 'size')

    def __init__(self, media_type, digest, size):
        self.media_type = media_type
        self.digest = digest
        self.size = size

    @property
    def short(self):
        return self.digest[7:19]


def parse_descriptor(obj, what, registry):
    if not isinstance(obj, dict):
        raise errors.RegistryError('registry %s: invalid manifest: %s is not '
                                   'an object' % (registry, what))
    digest, size = obj.get('digest'), obj.get('size')
    media = obj.get('mediaType') or ''
    if not isinstance(digest, str) or not reference.SHA256_RE.match(digest):
        raise errors.RegistryError('registry %s: invalid manifest: %s has an '
                                   'unsupported or malformed digest %r'
                                   % (registry, what, str(digest)[:80]))
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise errors.RegistryError('registry %s: invalid manifest: %s has an '
                                   'invalid size' % (registry, what))
    if not isinstance(media, str):
        raise errors.RegistryError('registry %s: invalid manifest: %s has an '
                                   'invalid media type' % (registry, what))
    return Descriptor(media, digest, size)


def manifest_media_type(content_type, body):
    """The media type of a manifest: the header, else what the JSON says."""
    ct = (content_type or '').split(';', 1)[0].strip().lower()
    if ct in MANIFEST_TYPES + INDEX_TYPES + MT_SCHEMA1:
        return ct
    mt = body.get('mediaType') if isinstance(body, dict) else None
    if isinstance(mt, str) and mt:
        return mt
    if isinstance(body, dict):
        if body.get('schemaVersion') == 1:
            return MT_SCHEMA1[0]
        if 'manifests' in body:
            return MT_OCI_INDEX
        if 'config' in body:
            return MT_OCI_MANIFEST
    return ct


def select_platform(index, platform, registry):
    """The descriptor of the index entry for ``platform`` (default: host)."""
    want_os, want_arch, want_variant = images_mod._parse_platform(platform)
    entries = index.get('manifests')
    if not isinstance(entries, list):
        raise errors.RegistryError('registry %s: invalid manifest list: no '
                                   'manifests' % registry)
    found = []
    for i, m in enumerate(entries):
        if not isinstance(m, dict):
            continue
        p = m.get('platform')
        if not isinstance(p, dict):
            continue
        if p.get('os') != want_os or p.get('architecture') != want_arch:
            continue
        variant = p.get('variant') or ''
        if want_variant and variant != want_variant:
            continue
        found.append((0 if variant in ('', 'v8') else 1, i, m))
    if not found:
        wanted = '/'.join(x for x in (want_os, want_arch, want_variant) if x)
        raise errors.NotFound('no matching manifest for %s in the manifest '
                              'list entries' % wanted)
    found.sort(key=lambda t: (t[0], t[1]))
    return parse_descriptor(found[0][2], 'manifest list entry', registry)


class _Cancelled(Exception):
    pass


class _Transient(Exception):
    pass


class BlobReader(object):
    """Reads a blob response for ``ContentStore.ingest``: enforces the
    declared size, reports progress, stops when the pull is cancelled."""

    def __init__(self, resp, desc, registry, on_progress=None, cancel=None):
        # The bytes as sent: a Content-Encoding must not be undone before
        # the digest is checked (the digest is of the blob, not of a
        # transfer encoding; we ask for none anyway).
        self.it = resp.raw.stream(CHUNK, decode_content=False)
        self.desc = desc
        self.registry = registry
        self.n = 0
        self.on_progress = on_progress
        self.cancel = cancel
        self._last = 0.0
        self._buf = b''

    def read(self, size=-1):
        if self.cancel is not None and self.cancel.is_set():
            raise _Cancelled()
        try:
            chunk = next(self.it)
        except StopIteration:
            if self.n != self.desc.size:
                raise errors.RegistryError(
                    'size mismatch for blob %s from %s: got %d bytes, the '
                    'manifest says %d' % (self.desc.digest, self.registry,
                                          self.n, self.desc.size))
            return b''
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.HTTPError, OSError) as e:
            raise _Transient(transport._short(e))
        self.n += len(chunk)
        if self.n > self.desc.size:
            raise errors.RegistryError(
                'size mismatch for blob %s from %s: more than the %d bytes '
                'the manifest says' % (self.desc.digest, self.registry,
                                       self.desc.size))
        now = time.monotonic()
        if self.on_progress and (now - self._last > PROGRESS_EVERY or
                                 self.n == self.desc.size):
            self._last = now
            self.on_progress(self.n, self.desc.size)
        return chunk


class RegistryJob(object):
    """What a pull and a push share: the registry client for the
    reference's domain, names, and progress reporting."""

    def __init__(self, dist, ref, credentials, progress, actions):
        self.dist = dist
        self.images = dist.images
        self.content = dist.content
        self.ref = ref
        self.creds = credentials
        self._progress = progress
        self._say_lock = threading.Lock()
        self.client = dist.client(ref.domain, credentials)
        self.name = ref.path
        self.scope = 'repository:%s:%s' % (ref.path, actions)
        self.registry = self.client.host
        self.repo = '%s/%s' % (ref.domain, ref.path)

    def say(self, msg):
        if self._progress is None:
            return
        with self._say_lock:
            try:
                self._progress(msg)
            except Exception:  # a broken client stream must not break the job
                LOG.debug('progress callback failed', exc_info=True)


class Puller(RegistryJob):

    def __init__(self, dist, ref, credentials, platform, progress):
        super().__init__(dist, ref, credentials, progress, 'pull')
        self.platform = platform
        self.cancel = threading.Event()
        self.downloaded = []
        self.bytes_downloaded = 0

    # -- manifests ---------------------------------------------------------------

    def fetch_manifest(self, ref_text, expect=None):
        what = 'manifest for %s' % (self.ref.familiar_name() + (
            '@' + ref_text if ref_text.startswith('sha256:') else
            ':' + ref_text))
        resp = self.client.request(
            'GET', '/v2/%s/manifests/%s' % (self.name, ref_text), self.scope,
            headers={'Accept': ACCEPT}, stream=True, what=what)
        ctype = resp.headers.get('Content-Type')
        header_digest = resp.headers.get('Docker-Content-Digest')
        data = self.client.read_limited(
            resp, self.dist.settings.max_manifest_size, what)
        digest = 'sha256:' + hashlib.sha256(data).hexdigest()
        wanted = expect.digest if expect is not None else (
            ref_text if ref_text.startswith('sha256:') else None)
        if wanted and digest != wanted:
            raise errors.RegistryError(
                'digest mismatch for manifest %s from %s/%s: got %s'
                % (wanted, self.registry, self.name, digest))
        if expect is not None and len(data) != expect.size:
            raise errors.RegistryError(
                'size mismatch for manifest %s from %s/%s: got %d bytes, '
                'expected %d' % (expect.digest, self.registry, self.name,
                                 len(data), expect.size))
        if not wanted and header_digest and \
                header_digest.startswith('sha256:') and header_digest != digest:
            raise errors.RegistryError(
                'digest mismatch for manifest %s from %s/%s: the registry '
                'says %s, the content is %s' % (what, self.registry,
                                                self.name, header_digest,
                                                digest))
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise errors.RegistryError('registry %s: %s is not valid JSON'
                                       % (self.registry, what))
        if not isinstance(body, dict):
            raise errors.RegistryError('registry %s: %s is not a JSON object'
                                       % (self.registry, what))
        return data, body, manifest_media_type(ctype, body), digest

    def resolve(self):
        """``(manifest_body, [manifest digests to keep + their bytes])``."""
        target = self.ref.digest or self.ref.tag
        data, body, mt, digest = self.fetch_manifest(target)
        kept = [(digest, data)]
        if mt in INDEX_TYPES:
            desc = select_platform(body, self.platform, self.registry)
            data, body, mt, child = self.fetch_manifest(desc.digest, desc)
            kept.append((child, data))
        if mt in MT_SCHEMA1 or body.get('schemaVersion') == 1:
            raise errors.RegistryError(
                '%s uses the Docker image manifest version 2, schema 1, which '
                'is deprecated and not supported; push it again with a '
                'current client' % self.ref.familiar())
        if mt not in MANIFEST_TYPES:
            raise errors.RegistryError('registry %s: unsupported manifest '
                                       'media type %r for %s'
                                       % (self.registry, mt[:100],
                                          self.ref.familiar()))
        return body, kept

    def parse_manifest(self, body):
        config = parse_descriptor(body.get('config'), 'config', self.registry)
        if config.media_type not in (MT_DOCKER_CONFIG, MT_OCI_CONFIG, ''):
            raise errors.RegistryError(
                '%s is not a container image (config media type %s)'
                % (self.ref.familiar(), config.media_type[:100]))
        raw = body.get('layers')
        if not isinstance(raw, list):
            raise errors.RegistryError('registry %s: invalid manifest: no '
                                       'layers list' % self.registry)
        if len(raw) > MAX_LAYERS:
            raise errors.RegistryError('registry %s: the manifest has %d '
                                       'layers, more than %d'
                                       % (self.registry, len(raw), MAX_LAYERS))
        layers = [parse_descriptor(l, 'layer %d' % i, self.registry)
                  for i, l in enumerate(raw)]
        for l in layers:
            if l.media_type in FOREIGN_TYPES:
                raise errors.RegistryError(
                    'layer %s is a foreign (non-distributable) layer, which '
                    'is not supported' % l.digest)
            if l.media_type not in LAYER_TYPES:
                raise errors.RegistryError('layer %s has an unsupported media '
                                           'type %r' % (l.digest,
                                                        l.media_type[:100]))
            if LAYER_TYPES[l.media_type] == 'zstd' and not shutil.which('zstd'):
                raise errors.RegistryError(
                    'layer %s is zstd-compressed, which needs the zstd '
                    'program; it is not installed' % l.digest)
        limit = self.images.max_layer_size
        for l in layers:
            if limit and l.size > limit:
                raise errors.RegistryError(
                    'layer %s of %s is %d bytes, more than the limit of %d '
                    'bytes%s' % (l.digest, self.ref.familiar(), l.size, limit,
                                 images_mod.HINT_LAYER))
        return config, layers

    # -- blobs ----------------------------------------------------------------

    def _blob_response(self, desc):
        try:
            return self.client.request(
                'GET', '/v2/%s/blobs/%s' % (self.name, desc.digest),
                self.scope, stream=True, what='blob %s' % desc.digest,
                headers={'Accept-Encoding': 'identity'})
        except errors.NotFound as e:
            raise errors.RegistryError(
                'the manifest of %s references blob %s, which the registry '
                '%s does not have (%s)' % (self.ref.familiar(), desc.digest,
                                           self.registry, e))

    def fetch_config(self, desc):
        if desc.size > images_mod.MAX_CONFIG_SIZE:
            raise errors.RegistryError('the image config %s is too large (%d '
                                       'bytes)' % (desc.digest, desc.size))
        resp = self._blob_response(desc)
        data = self.client.read_limited(resp, desc.size, 'config %s'
                                        % desc.digest)
        got = 'sha256:' + hashlib.sha256(data).hexdigest()
        if len(data) != desc.size:
            raise errors.RegistryError(
                'size mismatch for config %s from %s/%s: got %d bytes, '
                'expected %d' % (desc.digest, self.registry, self.name,
                                 len(data), desc.size))
        if got != desc.digest:
            raise errors.RegistryError(
                'digest mismatch for config %s from %s/%s: got %s'
                % (desc.digest, self.registry, self.name, got))
        return data

    def download(self, desc, lease, guard):
        """Stream one layer blob into the content store, verified."""
        settings = self.dist.settings
        delay = settings.retry_backoff

        def on_progress(n, total):
            self.say({'status': 'Downloading', 'id': desc.short,
                      'progressDetail': {'current': n, 'total': total},
                      'progress': _bar(n, total)})
        for attempt in range(settings.retries + 1):
            if self.cancel.is_set():
                raise _Cancelled()
            resp = self._blob_response(desc)
            # Downloads already running finish even when another failed:
            # what they complete is reused by the next pull.
            reader = BlobReader(resp, desc, self.registry, on_progress)
            try:
                got = self.content.ingest(reader, desc.digest, lease=lease,
                                          guard=guard)
            except _Transient as e:
                if attempt >= settings.retries:
                    raise errors.RegistryError(
                        'downloading layer %s from %s/%s failed: %s'
                        % (desc.digest, self.registry, self.name, e))
                LOG.info('Download of %s from %s failed (%s); retrying',
                         desc.digest, self.registry, e)
                time.sleep(delay)
                delay *= 2
                continue
            except errors.ContentError as e:
                # The store names both digests: "expected X, got Y".
                got_digest = str(e).rsplit('got ', 1)[-1]
                raise errors.RegistryError(
                    'digest mismatch for layer %s from %s/%s: got %s'
                    % (desc.digest, self.registry, self.name, got_digest))
            finally:
                resp.close()
            self.say({'status': 'Verifying Checksum', 'id': desc.short,
                      'progressDetail': {}})
            self.say({'status': 'Download complete', 'id': desc.short,
                      'progressDetail': {}})
            with self._say_lock:
                self.bytes_downloaded += got.size
                if got.created:
                    self.downloaded.append(got.digest)
            if got.created:
                self.dist.metadata.pending([got.digest])
            return got

    # -- the whole pull -----------------------------------------------------------

    def _local_layer(self, diff_id, chain, desc, lease):
        """A layer dict for create_image without downloading, or None.

        Returns ``(layer, already_unpacked)``.
        """
        if self.images.snapshotter.exists(chain):
            candidates = [(desc.digest, desc.media_type)]
            for img in self.images.images():
                for l in img.record['layers']:
                    if l['diff_id'] == diff_id:
                        candidates.append((l['digest'], l['media_type']))
            for b in self.dist.metadata.blobs(diff_id):
                candidates.append((b['digest'], b['media_type']))
            for digest, media in candidates:
                lease.add(digest)
                if self.content.has(digest):
                    return {'digest': digest, 'media_type': media,
                            'diff_id': diff_id}, True
                lease.drop(digest)
        lease.add(desc.digest)
        if self.content.has(desc.digest) and \
                self.content.size(desc.digest) == desc.size:
            return {'digest': desc.digest, 'media_type': desc.media_type,
                    'diff_id': diff_id}, False
        lease.drop(desc.digest)
        return None, False

    def run(self):
        ref = self.ref
        self.say({'status': 'Pulling from %s' % ref.path,
                  'id': ref.digest or ref.tag})
        body, kept = self.resolve()
        config_desc, layers = self.parse_manifest(body)
        config_bytes = self.fetch_config(config_desc)
        try:
            config = images_mod._parse_config(config_bytes)
        except errors.InvalidArgument as e:
            raise errors.RegistryError('%s: %s' % (ref.familiar(), e))
        if self.platform and len(kept) == 1:
            self._check_platform(config)
        diff_ids = config['rootfs']['diff_ids']
        if len(diff_ids) != len(layers):
            raise errors.RegistryError(
                'invalid manifest of %s: %d layers but the config lists %d '
                'diff IDs' % (ref.familiar(), len(layers), len(diff_ids)))
        image_id = config_desc.digest
        chains = images_mod.chain_ids(diff_ids)
        top_digest = kept[0][0]
        if ref.digest:
            tags, digest_ref = [], ref
        else:
            tags, digest_ref = [str(ref)], ref.with_digest(top_digest)
        try:
            before = self.images.resolve(str(ref)).id if not ref.digest \
                else None
        except errors.NotFound:
            before = None
        had_image = self.images.exists(image_id)

        with self.images.lease() as lease:
            plan = [None] * len(layers)
            todo = []
            extract = []
            for i, desc in enumerate(layers):
                layer, unpacked = self._local_layer(diff_ids[i], chains[i],
                                                    desc, lease)
                if layer is not None and unpacked:
                    plan[i] = layer
                    self.say({'status': 'Already exists', 'id': desc.short,
                              'progressDetail': {}})
                    continue
                extract.append(i)
                self.say({'status': 'Pulling fs layer', 'id': desc.short,
                          'progressDetail': {}})
                if layer is not None:
                    # Downloaded by an earlier pull that did not finish.
                    plan[i] = layer
                    self.say({'status': 'Download complete', 'id': desc.short,
                              'progressDetail': {}})
                else:
                    todo.append(i)
            for i in todo[self.dist.settings.max_concurrent_downloads:]:
                self.say({'status': 'Waiting', 'id': layers[i].short,
                          'progressDetail': {}})
            self._download_all(layers, todo, plan, diff_ids, lease)
            for digest, data in kept:
                self.content.write(data, digest, lease=lease)
            for i in extract:
                self.say({'status': 'Extracting', 'id': layers[i].short,
                          'progressDetail': {}})
            try:
                image_id, _moved = self.images.create_image(
                    config_bytes, plan, repo_tags=tags,
                    repo_digests=[str(digest_ref)],
                    manifests=[d for d, _ in kept], lease=lease)
            except (errors.ContentError, errors.InvalidArgument) as e:
                # The blobs matched their digests but not the image (diff
                # IDs, hostile tars): nothing from this pull is kept.
                self._forget_downloads(lease)
                raise errors.RegistryError('%s from %s: %s'
                                           % (ref.familiar(), self.registry,
                                              e))
            for i in extract:
                self.say({'status': 'Pull complete', 'id': layers[i].short,
                          'progressDetail': {}})
        for desc, diff_id in zip(layers, diff_ids):
            self.dist.metadata.add(diff_id, desc.digest, desc.size,
                                   desc.media_type, repo=self.repo)
        self.dist.metadata.done(self.downloaded)
        self.say({'status': 'Digest: %s' % top_digest})
        if had_image and (ref.digest or before == image_id):
            self.say({'status': 'Status: Image is up to date for %s'
                      % ref.familiar()})
        else:
            self.say({'status': 'Status: Downloaded newer image for %s'
                      % ref.familiar()})
        self.dist.publish_image_event('pull', ref.familiar(), image_id)
        return image_id

    def _check_platform(self, config):
        """A single-platform image asked for by platform must be that one
        (Docker 20.10 refuses the mismatch the same way)."""
        want = images_mod._parse_platform(self.platform)
        have = (config.get('os') or 'linux', config.get('architecture') or '',
                config.get('variant') or '')
        if want[:2] != have[:2] or (want[2] and want[2] != have[2]):
            raise errors.NotFound(
                'image with reference %s was found but does not match the '
                'specified platform: wanted %s, actual: %s'
                % (self.ref.familiar(), '/'.join(x for x in want if x),
                   '/'.join(x for x in have if x)))

    def _forget_downloads(self, lease):
        self.dist.metadata.done(self.downloaded)
        for digest in self.downloaded:
            lease.drop(digest)
            self.content.delete(digest)

    def _download_all(self, layers, todo, plan, diff_ids, lease):
        if not todo:
            return
        guard = self.images.space_guard(self.content.ingest_dir,
                                        'the pulled layer')
        workers = min(len(todo), self.dist.settings.max_concurrent_downloads)
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix='pull')
        try:
            futures = {pool.submit(self.download, layers[i], lease, guard): i
                       for i in todo}
            first_error = None
            for fut in concurrent.futures.as_completed(futures):
                i = futures[fut]
                try:
                    fut.result()
                except _Cancelled:
                    continue
                except BaseException as e:
                    if first_error is None:
                        first_error = e
                        self.cancel.set()
                    continue
                plan[i] = {'digest': layers[i].digest,
                           'media_type': layers[i].media_type,
                           'diff_id': diff_ids[i]}
            if first_error is not None:
                raise first_error
        finally:
            self.cancel.set()
            pool.shutdown(wait=True)


def _bar(n, total, width=50):
    """Docker's progress text (the CLI draws its own from progressDetail)."""
    if not total:
        return ''
    filled = min(width, int(width * n / total))
    arrow = '>' if filled < width else ''
    return '[%s%s%s] %s/%s' % ('=' * max(0, filled - len(arrow)) if filled
                               else '', arrow, ' ' * (width - filled),
                               _human(n), _human(total))


def _human(n):
    for unit in ('B', 'kB', 'MB', 'GB'):
        if n < 1000 or unit == 'GB':
            return ('%.4g%s' % (n, unit)) if unit != 'B' else '%dB' % n
        n /= 1000.0
    return '%dB' % n
