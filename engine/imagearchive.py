"""``docker save`` / ``docker load`` archives.

Loading understands the Docker archive (``manifest.json`` naming each
image's config and layer tars, as Docker 1.10+ writes), the OCI image layout
(``oci-layout`` + ``index.json`` + ``blobs/``, which Docker 25+ adds) and the
legacy layout with only a ``repositories`` file.

Saving writes a Docker archive that Docker 20.10 loads (``manifest.json``,
``repositories``, ``<config>.json``, one directory per layer with
``VERSION``, ``json`` and ``layer.tar``) and, at the same time, an OCI image
layout: the layer bytes live once under ``blobs/sha256/`` and each
``layer.tar`` is a symlink to them, as Docker's own archives do.

Archives are untrusted: the upload is spooled to a scratch file under the
image store's ``tmp/`` (removed whatever happens), every path a manifest
names must stay inside the archive, links are resolved inside the archive
only, sizes are bounded and every blob is verified against its digest.
The spooled upload, uncompressed, is bounded by ``[engine]
max_archive_size`` and by the free-space reserve (min_free_space,
min_free_percent); its entries by max_layer_entries.

Each image of an archive is loaded under a content lease: the blobs it
ingests or finds already stored stay put until its record is written.
"""

import collections
import hashlib
import io
import json
import os
import posixpath
import tarfile
import time

from oslo_log import log as logging

from engine import content as content_mod
from engine import errors
from engine import images as images_mod
from engine import reference
from engine import util

LOG = logging.getLogger(__name__)

MAX_JSON_SIZE = 16 << 20
MAX_LINK_HOPS = 16
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
ANN_CONTAINERD_NAME = 'io.containerd.image.name'
ANN_REF_NAME = 'org.opencontainers.image.ref.name'


def _bad(msg):
    return errors.InvalidArgument('invalid archive: ' + msg)


def _norm(name):
    """Normalised archive path, or None when it leaves the archive."""
    if not isinstance(name, str) or not name or '\x00' in name:
        return None
    while name.startswith('./'):
        name = name[2:]
    name = name.lstrip('/')
    norm = posixpath.normpath(name)
    if norm in ('.', '') or norm == '..' or norm.startswith('../') or \
            norm.startswith('/'):
        return None
    return norm


def member_path(name):
    """Validate a path a manifest names: relative, inside the archive."""
    if not isinstance(name, str) or name.startswith('/') or \
            '..' in name.split('/') or '\x00' in name:
        raise errors.LayerError('invalid archive: path %r in the manifest '
                                'points outside the archive' % (name,))
    norm = _norm(name)
    if norm is None:
        raise errors.LayerError('invalid archive: bad path %r in the manifest'
                                % (name,))
    return norm


class _Archive(object):
    """Random access to the members of a spooled tar, links kept inside."""

    def __init__(self, path, max_entries=0):
        try:
            self.tar = tarfile.open(path, 'r:')
        except tarfile.TarError as e:
            raise _bad('not a tar archive (%s)' % e)
        try:
            self.members = {}
            # The index is kept in memory: bound it like a layer's entries.
            for i, m in enumerate(self.tar):
                if max_entries and i >= max_entries:
                    raise _bad('more than %d entries%s'
                               % (max_entries, images_mod.HINT_ENTRIES))
                norm = _norm(m.name)
                if norm is not None:
                    self.members[norm] = m
        except tarfile.TarError as e:
            self.tar.close()
            raise _bad('not a tar archive (%s)' % e)
        except BaseException:
            self.tar.close()
            raise

    def close(self):
        self.tar.close()

    def has(self, name):
        return name in self.members

    def _resolve(self, name):
        seen = 0
        m = self.members.get(name)
        while m is not None and (m.issym() or m.islnk()):
            seen += 1
            if seen > MAX_LINK_HOPS:
                raise _bad('too many levels of links at %s' % name)
            if m.issym():
                target = m.linkname
                if not target.startswith('/'):
                    target = posixpath.join(posixpath.dirname(name), target)
            else:
                target = m.linkname
            name = _norm(target)
            if name is None:
                raise errors.LayerError('invalid archive: link %s points '
                                        'outside the archive' % m.name)
            m = self.members.get(name)
        return m

    def open(self, name):
        m = self._resolve(name)
        if m is None:
            raise _bad('%s is missing' % name)
        if not m.isreg():
            raise _bad('%s is not a regular file' % name)
        return self.tar.extractfile(m)

    def size(self, name):
        m = self._resolve(name)
        if m is None or not m.isreg():
            raise _bad('%s is missing' % name)
        return m.size

    def read(self, name, limit=MAX_JSON_SIZE):
        if self.size(name) > limit:
            raise _bad('%s is larger than %d bytes' % (name, limit))
        with self.open(name) as f:
            return f.read()

    def read_json(self, name, limit=MAX_JSON_SIZE):
        data = self.read(name, limit)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise _bad('%s is not valid JSON' % name)


def _copy(src, path, max_size, guard):
    """Copy a reader to a new file, bounded by size and the space reserve."""
    with open(path, 'wb') as f:
        out = images_mod.GuardedWriter(f, guard, max_size,
                                       images_mod.HINT_ARCHIVE)
        while True:
            chunk = src.read(images_mod.CHUNK)
            if not chunk:
                break
            out.write(chunk)


def _spool(stream, tmp, max_size=0, guard=None):
    """Copy the upload to a file, decompressing gzip/bzip2/xz/zstd.

    ``max_size`` (0 = unlimited) bounds the upload as received and after
    decompression (InvalidArgument); ``guard`` (a SpaceGuard) keeps the
    disk's reserve (InsufficientStorage).  The caller removes ``tmp``.
    """
    raw = os.path.join(tmp, 'upload')
    try:
        _copy(stream, raw, max_size, guard)
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument('the upload is too large: %s' % e)
    with open(raw, 'rb') as f:
        kind = images_mod.sniff(f.read(8))
    if kind is None:
        return raw
    plain = os.path.join(tmp, 'archive.tar')
    try:
        with open(raw, 'rb') as f, images_mod.open_uncompressed(f) as u:
            _copy(u, plain, max_size, guard)
    except errors.InvalidArgument as e:
        if isinstance(e, errors.LayerError):
            raise
        raise errors.InvalidArgument('the %s-compressed upload is too large '
                                     'uncompressed: %s' % (kind, e))
    finally:
        os.unlink(raw)
    return plain


# -- load ------------------------------------------------------------------------

def load(store, stream, quiet=False):
    """Load every image of an archive; returns Docker's messages."""
    with store.tempdir('load-') as tmp:
        guard = store.space_guard(tmp, 'the uploaded archive')
        path = _spool(stream, tmp, store.max_archive_size, guard)
        arc = _Archive(path, store.max_layer_entries)
        try:
            if arc.has('manifest.json'):
                return _load_docker(store, arc)
            if arc.has('index.json'):
                return _load_oci(store, arc)
            if arc.has('repositories'):
                return _load_legacy(store, arc)
            raise _bad('it has neither manifest.json nor index.json')
        finally:
            arc.close()


def _tags(values):
    out = []
    for t in values or ():
        if not isinstance(t, str):
            raise _bad('bad RepoTags entry %r' % (t,))
        ref = reference.parse(t)
        if not ref.tag or ref.digest:
            raise errors.InvalidArgument('invalid tag %r' % t)
        out.append(ref)
    return out


def _register(store, config_bytes, layers, tags, new, messages, lease,
              manifests=()):
    image_id, moved = store.create_image(
        config_bytes, layers, repo_tags=[str(t) for t in tags],
        manifests=manifests, new_blobs=new, event='load', lease=lease)
    for ref, old in moved:
        messages.append('The image %s already exists, renaming the old one '
                        'with ID %s to empty string' % (ref.familiar(), old))
    for t in tags:
        messages.append('Loaded image: %s' % t.familiar())
    if not tags:
        messages.append('Loaded image ID: %s' % image_id)
    return image_id


def _load_docker(store, arc):
    manifest = arc.read_json('manifest.json')
    if not isinstance(manifest, list):
        raise _bad('manifest.json is not a list')
    entries = []
    for entry in manifest:
        if not isinstance(entry, dict) or \
                not isinstance(entry.get('Layers'), list):
            raise _bad('malformed manifest.json entry')
        config = member_path(entry.get('Config'))
        layers = [member_path(l) for l in entry['Layers']]
        entries.append((config, layers, _tags(entry.get('RepoTags'))))
    messages = []
    for config, layer_paths, tags in entries:
        config_bytes = arc.read(config, images_mod.MAX_CONFIG_SIZE)
        with store.lease() as lease:
            new = []
            try:
                diff_ids = images_mod._parse_config(
                    config_bytes)['rootfs']['diff_ids']
                if len(diff_ids) != len(layer_paths):
                    raise _bad('layers length mismatch in the manifest of %s'
                               % config)
                layers = []
                for p, diff_id in zip(layer_paths, diff_ids):
                    with arc.open(p) as f:
                        layer, blobs = store._ingest_layer_blob(f, lease=lease)
                    new += blobs
                    if layer['diff_id'] != diff_id:
                        raise errors.ContentError(
                            'invalid diffID for layer %s: expected %s, got %s'
                            % (p, diff_id, layer['diff_id']))
                    layers.append(layer)
            except BaseException:
                store._undo([], new, lease)
                raise
            _register(store, config_bytes, layers, tags, new, messages, lease)
    return messages


def _blob_name(desc):
    if not isinstance(desc, dict):
        raise _bad('bad descriptor')
    digest = content_mod.validate_digest(desc.get('digest'))
    return 'blobs/sha256/' + digest[7:], digest


def _read_blob(arc, desc, limit=MAX_JSON_SIZE):
    name, digest = _blob_name(desc)
    data = arc.read(name, limit)
    if content_mod.sha256_digest(data) != digest:
        raise errors.ContentError('blob %s does not match its digest' % name)
    if isinstance(desc.get('size'), int) and desc['size'] != len(data):
        raise errors.ContentError('blob %s has size %d, descriptor says %d'
                                  % (name, len(data), desc['size']))
    return data


def _platform_ok(desc):
    plat = desc.get('platform') or {}
    if plat.get('os') and plat['os'] != 'linux':
        return False
    if plat.get('architecture') and plat['architecture'] != images_mod.host_arch():
        return False
    return True


def _oci_manifests(arc, desc, depth=0):
    """Yield (manifest descriptor, manifest) for the host platform."""
    if depth > 4:
        raise _bad('index nesting too deep')
    data = _read_blob(arc, desc)
    try:
        doc = json.loads(data)
    except ValueError:
        raise _bad('manifest %s is not JSON' % desc.get('digest'))
    mtype = doc.get('mediaType') or desc.get('mediaType')
    if mtype in (OCI_INDEX, DOCKER_MANIFEST_LIST) or 'manifests' in doc:
        candidates = [d for d in doc.get('manifests') or []
                      if isinstance(d, dict) and _platform_ok(d)
                      and (d.get('annotations') or {}).get(
                          'vnd.docker.reference.type') != 'attestation-manifest']
        if not candidates:
            raise errors.NotFound('no matching manifest for linux/%s in the '
                                  'archive' % images_mod.host_arch())
        return _oci_manifests(arc, candidates[0], depth + 1)
    return desc, doc, data


def _oci_name(annotations):
    name = annotations.get(ANN_CONTAINERD_NAME)
    if not name:
        rn = annotations.get(ANN_REF_NAME) or ''
        # A bare tag ("latest") names no repository; only a full reference does.
        if '/' in rn or ':' in rn:
            name = rn
    if not name:
        return None
    try:
        ref = reference.parse(name)
    except errors.InvalidArgument:
        LOG.warning('Ignoring unparseable image name %r in an OCI archive',
                    name)
        return None
    return ref.tagged() if not ref.digest else None


def _load_oci(store, arc):
    index = arc.read_json('index.json')
    if not isinstance(index, dict) or not isinstance(index.get('manifests'), list):
        raise _bad('index.json has no manifests')
    if arc.has('oci-layout'):
        layout = arc.read_json('oci-layout')
        if not isinstance(layout, dict) or \
                not str(layout.get('imageLayoutVersion', '')).startswith('1.'):
            raise _bad('unsupported OCI layout version')
    messages = []
    loaded = collections.OrderedDict()
    for desc in index['manifests']:
        if not isinstance(desc, dict):
            raise _bad('bad descriptor in index.json')
        name = _oci_name(desc.get('annotations') or {})
        mdesc, manifest, mbytes = _oci_manifests(arc, desc)
        key = mdesc['digest']
        if key in loaded:
            loaded[key][1].extend([name] if name else [])
            continue
        loaded[key] = (manifest, [name] if name else [], mbytes)
    for mdigest, (manifest, names, mbytes) in loaded.items():
        config_bytes = _read_blob(arc, manifest.get('config'),
                                  images_mod.MAX_CONFIG_SIZE)
        with store.lease() as lease:
            _load_oci_image(store, arc, mdigest, manifest, names, mbytes,
                            config_bytes, lease, messages)
    return messages


def _load_oci_image(store, arc, mdigest, manifest, names, mbytes,
                    config_bytes, lease, messages):
    new = []
    try:
        diff_ids = images_mod._parse_config(config_bytes)['rootfs']['diff_ids']
        descs = manifest.get('layers') or []
        if not isinstance(descs, list) or len(descs) != len(diff_ids):
            raise _bad('layers length mismatch in manifest %s' % mdigest)
        layers = []
        for d, diff_id in zip(descs, diff_ids):
            bname, digest = _blob_name(d)
            if isinstance(d.get('size'), int) and arc.size(bname) != d['size']:
                raise errors.ContentError(
                    'blob %s has size %d, descriptor says %d'
                    % (bname, arc.size(bname), d['size']))
            with arc.open(bname) as f:
                layer, blobs = store._ingest_layer_blob(
                    f, expected_digest=digest, lease=lease)
            new += blobs
            if layer['diff_id'] != diff_id:
                raise errors.ContentError(
                    'invalid diffID for layer %s: expected %s, got %s'
                    % (digest, diff_id, layer['diff_id']))
            layers.append(layer)
        got = store.content.ingest(
            io.BytesIO(mbytes), content_mod.sha256_digest(mbytes),
            lease=lease)
        mblob = got.digest
        if got.created:
            new.append(mblob)
    except BaseException:
        store._undo([], new, lease)
        raise
    _register(store, config_bytes, layers, names, new, messages, lease,
              manifests=[mblob])


def _load_legacy(store, arc):
    """Pre-1.10 archives: v1 layer directories chained by their json."""
    repos = arc.read_json('repositories')
    if not isinstance(repos, dict):
        raise _bad('repositories is not an object')
    by_top = collections.OrderedDict()
    for repo, tags in repos.items():
        if not isinstance(tags, dict):
            raise _bad('bad repositories entry %r' % repo)
        for tag, v1id in tags.items():
            ref = reference.parse(repo).with_tag(reference.validate_tag(tag))
            by_top.setdefault(v1id, []).append(ref)
    messages = []
    for top, tags in by_top.items():
        chain = []
        v1id = top
        while v1id:
            if not isinstance(v1id, str) or not reference.HEX64_RE.match(v1id):
                raise _bad('bad layer id %r' % (v1id,))
            if len(chain) > 200:
                raise _bad('layer chain too long')
            meta = arc.read_json(v1id + '/json')
            if not isinstance(meta, dict):
                raise _bad('%s/json is not an object' % v1id)
            chain.append((v1id, meta))
            v1id = meta.get('parent')
        chain.reverse()
        with store.lease() as lease:
            _load_legacy_image(store, arc, chain, tags, lease, messages)
    return messages


def _load_legacy_image(store, arc, chain, tags, lease, messages):
    new = []
    try:
        layers, history = [], []
        for v1id, meta in chain:
            with arc.open(v1id + '/layer.tar') as f:
                layer, blobs = store._ingest_layer_blob(f, lease=lease)
            new += blobs
            layers.append(layer)
            cmd = ((meta.get('container_config') or {}).get('Cmd')) or []
            history.append({'created': meta.get('created') or util.ZERO_TIME,
                            'created_by': ' '.join(cmd)})
        top_meta = dict(chain[-1][1]) if chain else {}
        for k in ('id', 'parent', 'Size', 'parent_id', 'layer_id'):
            top_meta.pop(k, None)
        top_meta['rootfs'] = {'type': 'layers',
                              'diff_ids': [l['diff_id'] for l in layers]}
        top_meta['history'] = history
        config_bytes = images_mod._dump(top_meta)
    except BaseException:
        store._undo([], new, lease)
        raise
    _register(store, config_bytes, layers, tags, new, messages, lease)


# -- save --------------------------------------------------------------------------

class _Writer(object):
    def __init__(self, out, mtime):
        self.tar = tarfile.open(fileobj=out, mode='w|',
                                format=tarfile.PAX_FORMAT)
        self.mtime = mtime
        self.dirs = set()

    def _info(self, name, kind=tarfile.REGTYPE, size=0, mode=0o644,
              linkname=''):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.size = size
        ti.mode = mode
        ti.linkname = linkname
        ti.mtime = self.mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ''
        return ti

    def dir(self, name):
        parts = name.split('/')
        for i in range(1, len(parts) + 1):
            d = '/'.join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self.tar.addfile(self._info(d, tarfile.DIRTYPE, mode=0o755))

    def file(self, name, data):
        if '/' in name:
            self.dir(posixpath.dirname(name))
        self.tar.addfile(self._info(name, size=len(data)), io.BytesIO(data))

    def stream(self, name, size, fileobj):
        if '/' in name:
            self.dir(posixpath.dirname(name))
        self.tar.addfile(self._info(name, size=size), fileobj)

    def symlink(self, name, target):
        if '/' in name:
            self.dir(posixpath.dirname(name))
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, mode=0o777,
                                    linkname=target))

    def close(self):
        self.tar.close()


def _select(store, refs):
    """[(Image, [tag refs])] in request order, one entry per image."""
    chosen = collections.OrderedDict()
    for ref in refs:
        tags = []
        named = None
        if not _is_id_ref(store, ref):
            try:
                named = reference.parse(ref)
            except errors.InvalidArgument:
                named = None
        if named is not None and not named.tag and not named.digest:
            # A bare repository saves every tag of it.
            with store._lock:
                hits = [(reference.parse(r), i) for r, i in store._refs.items()
                        if reference.parse(r).name == named.name
                        and reference.parse(r).tag]
            if hits:
                for r, image_id in sorted(hits, key=lambda x: str(x[0])):
                    img = store.resolve(image_id)
                    chosen.setdefault(img.id, (img, []))[1].append(r)
                continue
        img = store.resolve(ref)
        entry = chosen.setdefault(img.id, (img, []))
        if named is not None:
            named = named.tagged()
            if named.tag and store._refs.get(str(named)) == img.id:
                tags.append(named)
        for t in tags:
            if t not in entry[1]:
                entry[1].append(t)
    return list(chosen.values())


def _is_id_ref(store, ref):
    """True when ``ref`` abbreviates an image ID and is not also a name."""
    if not reference.is_id_prefix(ref):
        return False
    try:
        named = str(reference.parse(ref, default_tag=True))
    except errors.InvalidArgument:
        named = None
    with store._lock:
        if named in store._refs:
            return False
        return any(reference.matches_id_prefix(i, ref) for i in store._records)


def _v1_id(parent, chain, top_of=None):
    text = '%s %s %s' % (parent or '', chain, top_of or '')
    return hashlib.sha256(text.encode()).hexdigest()


def save(store, refs, out):
    """Write a Docker (and OCI layout) archive of the images to ``out``."""
    if not refs:
        raise errors.InvalidArgument('no images to save')
    selected = _select(store, refs)
    mtime = int(time.time())
    w = _Writer(out, mtime)
    manifest = []
    repositories = collections.OrderedDict()
    index = []
    written = set()
    for img, tags in selected:
        w.mtime = int(img.created) or mtime
        with store.content.open(img.id) as f:
            config_bytes = f.read()
        hexid = img.id[7:]
        w.file(hexid + '.json', config_bytes)
        if img.id not in written:
            w.file('blobs/sha256/' + hexid, config_bytes)
            written.add(img.id)
        layer_paths = []
        parent_v1 = None
        layers = img.record['layers']
        oci_layers = []
        for i, (layer, chain) in enumerate(zip(layers, img.chain_ids)):
            diff_hex = layer['diff_id'][7:]
            blob_name = 'blobs/sha256/' + diff_hex
            if layer['diff_id'] not in written:
                _write_layer(store, w, blob_name, layer)
                written.add(layer['diff_id'])
            top = i == len(layers) - 1
            v1 = _v1_id(parent_v1, chain, img.id if top else None)
            if v1 not in written:
                v1json = {'id': v1, 'created': img.config.get('created')
                          or util.ZERO_TIME,
                          'container_config': {'Cmd': None}}
                if parent_v1:
                    v1json['parent'] = parent_v1
                if top:
                    for k, v in img.config.items():
                        if k not in ('rootfs', 'history', 'id', 'parent'):
                            v1json[k] = v
                w.file(v1 + '/VERSION', b'1.0')
                w.file(v1 + '/json', images_mod._dump(v1json))
                w.symlink(v1 + '/layer.tar', '../' + blob_name)
                written.add(v1)
            layer_paths.append(v1 + '/layer.tar')
            oci_layers.append({'mediaType': images_mod.MEDIA_TAR,
                               'digest': layer['diff_id'],
                               'size': layer['diff_size']})
            parent_v1 = v1
        manifest.append({'Config': hexid + '.json',
                         'RepoTags': [t.familiar() for t in tags] or None,
                         'Layers': layer_paths})
        for t in tags:
            if parent_v1:
                repositories.setdefault(t.familiar_name(), {})[t.tag] = parent_v1
        oci_manifest = images_mod._dump({
            'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
            'config': {'mediaType': OCI_CONFIG, 'digest': img.id,
                       'size': len(config_bytes)},
            'layers': oci_layers})
        mdigest = content_mod.sha256_digest(oci_manifest)
        if mdigest not in written:
            w.file('blobs/sha256/' + mdigest[7:], oci_manifest)
            written.add(mdigest)
        desc = {'mediaType': OCI_MANIFEST, 'digest': mdigest,
                'size': len(oci_manifest)}
        for t in tags:
            index.append(dict(desc, annotations={
                ANN_CONTAINERD_NAME: str(t), ANN_REF_NAME: t.tag}))
        if not tags:
            index.append(desc)
        store._emit('save', img.id, name=img.id)
    w.mtime = mtime
    w.file('oci-layout', b'{"imageLayoutVersion":"1.0.0"}')
    w.file('index.json', images_mod._dump({'schemaVersion': 2,
                                           'mediaType': OCI_INDEX,
                                           'manifests': index}))
    w.file('manifest.json', images_mod._dump(manifest))
    if repositories:
        w.file('repositories', images_mod._dump(repositories))
    w.close()


def _write_layer(store, w, name, layer):
    size = layer.get('diff_size')
    if size is None:
        _, size = images_mod.digest_uncompressed(
            store.content.path(layer['digest']))
    with store.content.open(layer['digest']) as f, \
            images_mod.open_uncompressed(f) as u:
        reader = images_mod.HashingReader(u)
        try:
            w.stream(name, size, reader)
        except OSError as e:
            raise errors.ContentError('layer %s is damaged: %s'
                                      % (layer['digest'], e))
    if reader.digest != layer['diff_id'] or reader.n != size:
        raise errors.ContentError('layer %s does not match its diff ID %s'
                                  % (layer['digest'], layer['diff_id']))
