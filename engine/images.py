"""The image store: image records, references and unpacked layers.

An image is its config JSON (kept in the content store; the image ID is the
sha256 of those exact bytes, as Docker computes it), the list of its layer
blobs (kept in the content store as received, plain or gzip tar) and one
committed snapshot per layer chain ID.

On-disk state under ``root``::

    images/<hex>.json     one record per image (layers, chain IDs, parent...)
    references.json       {"refs": {"docker.io/library/busybox:latest": id}}
    tmp/                  scratch space of loads and imports in progress

Untrusted uploads are bounded (``[engine]`` max_archive_size,
max_layer_size, max_layer_entries) and every write keeps a free-space
reserve on the engine's disk (min_free_space, min_free_percent): a
decompression bomb fails with 400 or 507 and leaves nothing behind.

Blobs an operation ingests or deduplicates against are held by a content
lease until its image record is written (or it gave up), so a concurrent
``rmi``, a failing load's undo or the blob GC never deletes a blob another
operation is about to record; an undo deletes only blobs its own operation
created.

Every operation writes in the order blobs -> snapshots -> image record ->
references, each step atomic, so a SIGKILL leaves at worst unreferenced
blobs and snapshots (removed by ``cleanup``), never a name pointing at an
incomplete image.
"""

import bz2
import collections
import contextlib
import copy
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading

from oslo_log import log as logging

from engine import archive as archive_mod
from engine import changes as changes_mod
from engine import conf as conf_mod
from engine import content as content_mod
from engine import errors
from engine import reference
from engine import util

LOG = logging.getLogger(__name__)

MEDIA_TAR = 'application/vnd.oci.image.layer.v1.tar'
MEDIA_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
MEDIA_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
MAX_CONFIG_SIZE = 16 << 20
CHUNK = 1 << 20

HINT_ARCHIVE = ' (the [engine] max_archive_size option)'
HINT_LAYER = ' (the [engine] max_layer_size option)'
HINT_ENTRIES = ' (the [engine] max_layer_entries option)'
HINT_SPACE = ('; the reserve is set by the [engine] min_free_space and '
              'min_free_percent options')

GOARCH = {
    'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64',
    'armv7l': 'arm', 'armv6l': 'arm', 'i386': '386', 'i686': '386',
    'ppc64le': 'ppc64le', 's390x': 's390x', 'riscv64': 'riscv64',
}

# Docker's container.Config, in its field order, with the zero values it
# serialises for fields that are not ``omitempty``.
CONFIG_DEFAULTS = (
    ('Hostname', ''), ('Domainname', ''), ('User', ''),
    ('AttachStdin', False), ('AttachStdout', False), ('AttachStderr', False),
    ('Tty', False), ('OpenStdin', False), ('StdinOnce', False),
    ('Env', None), ('Cmd', None), ('Image', ''), ('Volumes', None),
    ('WorkingDir', ''), ('Entrypoint', None), ('OnBuild', None),
    ('Labels', None),
)


def host_arch():
    machine = platform.machine()
    return GOARCH.get(machine, machine)


def full_config(cfg):
    """A Docker container.Config dict: defaults filled in, extras kept."""
    out = {}
    cfg = cfg or {}
    for key, default in CONFIG_DEFAULTS:
        out[key] = copy.deepcopy(cfg.get(key, default))
    for key, value in cfg.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
    return out


def chain_ids(diff_ids):
    """OCI chain IDs: chain(L0) = diff(L0); chain(Ln) = H(chain(Ln-1) + ' ' + diff(Ln))."""
    out = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append('sha256:' + hashlib.sha256(
                (out[-1] + ' ' + d).encode()).hexdigest())
    return out


# -- compression ------------------------------------------------------------

def sniff(head):
    """Compression of a stream from its first bytes: gzip/bzip2/xz/zstd/None."""
    if head[:2] == b'\x1f\x8b':
        return 'gzip'
    if head[:3] == b'BZh':
        return 'bzip2'
    if head[:6] == b'\xfd7zXZ\x00':
        return 'xz'
    if head[:4] == b'\x28\xb5\x2f\xfd':
        return 'zstd'
    return None


class _ProcessReader(object):
    """Read a decompressor's stdout; closing reaps it and reports failures."""

    def __init__(self, proc, what):
        self.proc = proc
        self.what = what

    def read(self, n=-1):
        return self.proc.stdout.read(n)

    def readable(self):
        return True

    def close(self):
        self.proc.stdout.close()
        rc = self.proc.wait()
        if rc not in (0, -13):
            raise errors.LayerError('%s decompression failed' % self.what)


@contextlib.contextmanager
def open_uncompressed(fileobj):
    """Yield a reader of ``fileobj`` with any compression removed.

    ``fileobj`` must be a real file (zstd goes through the zstd program).
    """
    head = fileobj.read(8)
    fileobj.seek(-len(head), os.SEEK_CUR)
    kind = sniff(head)
    if kind is None:
        yield fileobj
        return
    if kind == 'gzip':
        reader = gzip.GzipFile(fileobj=fileobj, mode='rb')
    elif kind == 'bzip2':
        reader = bz2.BZ2File(fileobj, mode='rb')
    elif kind == 'xz':
        reader = lzma.LZMAFile(fileobj, mode='rb')
    else:
        zstd = shutil.which('zstd')
        if not zstd:
            raise errors.LayerError('zstd-compressed content needs the zstd '
                                    'program, which is not installed')
        # The child reads the descriptor: put its offset where the Python
        # file object says we are (buffering read ahead).
        os.lseek(fileobj.fileno(), fileobj.tell(), os.SEEK_SET)
        proc = subprocess.Popen([zstd, '-dcq'], stdin=fileobj.fileno(),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        reader = _ProcessReader(proc, 'zstd')
    try:
        yield reader
    except BaseException as e:
        try:
            reader.close()
        except errors.LayerError:
            pass
        if isinstance(e, (EOFError, OSError, lzma.LZMAError)):
            raise errors.LayerError('corrupt %s stream: %s' % (kind, e))
        raise
    # A decompressor that failed (corrupt or truncated input) fails here.
    reader.close()


class HashingReader(object):
    """A reader that hashes (sha256) and counts everything read through it."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def read(self, n=-1):
        try:
            data = self.f.read(n)
        except (EOFError, OSError, lzma.LZMAError) as e:
            raise errors.LayerError('corrupt compressed layer: %s' % e)
        self.h.update(data)
        self.n += len(data)
        return data

    def readable(self):
        return True

    def drain(self):
        while self.read(CHUNK):
            pass

    @property
    def digest(self):
        return 'sha256:' + self.h.hexdigest()


def digest_uncompressed(path, max_size=0, hint=''):
    """(diff_id, size) of the tar inside a possibly compressed file.

    ``max_size`` (0 = unlimited) bounds the uncompressed size: a
    decompression bomb raises InvalidArgument instead of being read to its
    end.
    """
    with open(path, 'rb') as f, open_uncompressed(f) as u:
        r = HashingReader(u)
        while r.read(CHUNK):
            if max_size and r.n > max_size:
                raise errors.InvalidArgument(
                    'the layer is larger than the limit of %d bytes '
                    'uncompressed%s' % (max_size, hint))
        return r.digest, r.n


class GuardedWriter(object):
    """A file writer that claims space from a SpaceGuard before writing and
    turns a full disk into InsufficientStorage."""

    def __init__(self, f, guard, max_size=0, hint=''):
        self.f = f
        self.guard = guard
        self.max_size = max_size
        self.hint = hint
        self.n = 0

    def write(self, data):
        self.n += len(data)
        if self.max_size and self.n > self.max_size:
            raise errors.InvalidArgument(
                'the data is larger than the limit of %d bytes%s'
                % (self.max_size, self.hint))
        self.guard.claim(len(data))
        try:
            return self.f.write(data)
        except OSError as e:
            raise content_mod.space_error(e, self.guard.what,
                                          self.guard.hint) or e

    def flush(self):
        self.f.flush()


def _smallest_limit(*limits):
    """The tightest of several size limits where 0 means unlimited."""
    set_ = [l for l in limits if l]
    return min(set_) if set_ else 0


# -- the Image object ---------------------------------------------------------

class Image(object):
    """A read-only view of one image, for the API and container service."""

    def __init__(self, record, config, repo_tags, repo_digests):
        self.id = record['id']
        self.record = record
        self.config = config
        self.repo_tags = repo_tags
        self.repo_digests = repo_digests
        self.chain_ids = list(record['chain_ids'])
        self.top_chain_id = self.chain_ids[-1] if self.chain_ids else None
        self.diff_ids = [l['diff_id'] for l in record['layers']]
        self.parent = record.get('parent') or ''
        self.created = util.parse_rfc3339(config.get('created'))
        self.size = sum(l.get('usage', 0) for l in record['layers'])

    @property
    def short_id(self):
        return reference.short_id(self.id)

    def __repr__(self):
        return 'Image(%s %s)' % (self.short_id, self.repo_tags)


# -- the store ------------------------------------------------------------------

class ImageStore(object):

    def __init__(self, root, content, snapshotter, max_layer_size=None,
                 emit=None, max_archive_size=None, max_layer_entries=None,
                 min_free_space=None, min_free_percent=None):
        """Limits left as None take the ``[engine]`` options (see conf)."""
        def opt(value, name):
            return conf_mod.engine_option(name) if value is None else value
        self.root = root
        self.content = content
        self.snapshotter = snapshotter
        self.max_layer_size = opt(max_layer_size, 'max_layer_size')
        self.max_archive_size = opt(max_archive_size, 'max_archive_size')
        self.max_layer_entries = opt(max_layer_entries, 'max_layer_entries')
        self.min_free_space = opt(min_free_space, 'min_free_space')
        self.min_free_percent = opt(min_free_percent, 'min_free_percent')
        self.emit = emit
        self.images_dir = util.makedirs(os.path.join(root, 'images'))
        self.tmp_dir = util.makedirs(os.path.join(root, 'tmp'))
        self.refs_path = os.path.join(root, 'references.json')
        self._lock = threading.RLock()
        self._pending = collections.Counter()
        self._chain_locks = {}
        self._records = {}
        self._configs = {}
        self._refs = {}
        # Hook for the registry client: given the diff IDs images use, the
        # blobs the GC must keep besides the images' own (compressed forms
        # of layers for push, downloads of an interrupted pull).
        self.kept_blobs = None
        self._load_state()

    # -- persistence -----------------------------------------------------

    def _load_state(self):
        for name in os.listdir(self.images_dir):
            if not name.endswith('.json') or name.startswith('.'):
                continue
            try:
                rec = util.read_json(os.path.join(self.images_dir, name))
            except ValueError:
                LOG.error('Image record %s is not valid JSON; ignoring it', name)
                continue
            if not rec or rec.get('id') != 'sha256:' + name[:-5]:
                LOG.error('Image record %s is malformed; ignoring it', name)
                continue
            self._records[rec['id']] = rec
            try:
                self._configs[rec['id']] = json.loads(
                    self.content.read(rec['id'], MAX_CONFIG_SIZE))
            except (errors.EngineError, ValueError) as e:
                LOG.error('Config of image %s unreadable: %s', rec['id'], e)
        data = util.read_json(self.refs_path, default={}) or {}
        self._refs = dict(data.get('refs') or {})

    def _save_refs(self):
        util.atomic_write_json(self.refs_path, {'refs': self._refs})

    def _record_path(self, image_id):
        return os.path.join(self.images_dir, image_id[7:] + '.json')

    def _save_record(self, rec):
        util.atomic_write_json(self._record_path(rec['id']), rec)

    def _emit(self, action, image_id, **attrs):
        if self.emit is None:
            return
        try:
            self.emit(action, image_id, attrs)
        except Exception:  # an event sink must never break an image operation
            LOG.exception('Image event callback failed for %s', action)

    def space_guard(self, path, what):
        """A SpaceGuard keeping the configured reserve on ``path``'s disk."""
        return content_mod.SpaceGuard(
            path, what, min_free=self.min_free_space,
            min_free_percent=self.min_free_percent, hint=HINT_SPACE)

    def layer_limits(self):
        return archive_mod.LayerLimits(
            max_entries=self.max_layer_entries,
            min_free=self.min_free_space,
            min_free_percent=self.min_free_percent,
            entries_hint=HINT_ENTRIES, space_hint=HINT_SPACE,
            size_hint=HINT_LAYER)

    def lease(self):
        """Hold blobs for an operation in progress (see content.Lease)."""
        return self.content.lease()

    @contextlib.contextmanager
    def tempdir(self, prefix):
        """A scratch directory under root/tmp removed whatever happens."""
        path = tempfile.mkdtemp(prefix=prefix, dir=self.tmp_dir)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # -- lookups -------------------------------------------------------------

    def _refs_of(self, image_id):
        return sorted(r for r, i in self._refs.items() if i == image_id)

    def _image(self, rec):
        refs = self._refs_of(rec['id'])
        tags, digests = [], []
        for r in refs:
            parsed = reference.parse(r)
            (digests if parsed.digest else tags).append(parsed.familiar())
        config = self._configs.get(rec['id'])
        if config is None:
            raise errors.ContentError('config of image %s is missing'
                                      % rec['id'])
        return Image(rec, config, tags, digests)

    def _find_id(self, ref):
        if not isinstance(ref, str) or not ref:
            raise errors.NoSuchImage(ref)
        with self._lock:
            if reference.is_full_id(ref):
                image_id = reference.full_id(ref)
                if image_id in self._records:
                    return image_id
                raise errors.NoSuchImage(ref)
            if not ref.startswith('sha256:'):
                try:
                    named = reference.parse(ref, default_tag=True)
                except errors.InvalidArgument:
                    # Docker answers 400 for a malformed reference.
                    if not reference.is_id_prefix(ref):
                        raise
                    named = None
                if named is not None:
                    image_id = self._refs.get(str(named))
                    if image_id in self._records:
                        return image_id
            if reference.is_id_prefix(ref):
                found = [i for i in self._records
                         if reference.matches_id_prefix(i, ref)]
                if len(found) == 1:
                    return found[0]
        raise errors.NoSuchImage(ref)

    def resolve(self, ref):
        """The Image named by a reference, full ID, sha256: ID or ID prefix."""
        with self._lock:
            return self._image(self._records[self._find_id(ref)])

    def exists(self, ref):
        try:
            self._find_id(ref)
            return True
        except errors.NoSuchImage:
            return False

    def images(self):
        with self._lock:
            return [self._image(r) for r in self._records.values()
                    if r['id'] in self._configs]

    def children(self, image_id):
        """The images whose parent is ``image_id`` (the build cache)."""
        with self._lock:
            return [self._image(self._records[cid])
                    for cid in self._children(image_id) if cid in self._configs]

    def ingest_diff(self, snapshot_key, lease, what='the diff of the container',
                    captured=None):
        """The changes of the active snapshot ``snapshot_key`` (a commit, a
        build step) as a layer blob, written straight into the content
        store and hashed on the way (no copy of it elsewhere); returns
        (layer descriptor, new blob digests) as _ingest_layer_blob.
        ``lease`` holds the blob from its commit on.  ``captured`` is
        called once every byte of the diff is written (before the blob is
        synced and stored): the snapshot may change from then on."""
        guard = self.space_guard(self.content.ingest_dir, what)
        with self.content.writer(self.max_layer_size, guard, HINT_LAYER) as w:
            data_bytes = self.snapshotter.diff(snapshot_key, w)
            if captured is not None:
                captured()
            got = w.commit(lease=lease)
        # A diff is a plain tar: its digest is its diff ID.  Its sizes are
        # known without unpacking it (create_image's ``unpack``).
        return ({'digest': got.digest, 'media_type': MEDIA_TAR,
                 'diff_id': got.digest, 'usage': data_bytes,
                 'diff_size': got.size}, [got.digest] if got.created else [])

    def _children(self, image_id):
        return [r['id'] for r in self._records.values()
                if r.get('parent') == image_id]

    def image_config_for_container(self, ref):
        """The ``config`` section (Env, Cmd, ...) a container starts from."""
        img = self.resolve(ref)
        return full_config(img.config.get('config'))

    # -- API views -------------------------------------------------------------

    def list_images(self, all=False, filters=None):
        filters = _normalise_filters(filters)
        for key in filters:
            if key not in ('dangling', 'label', 'reference', 'before', 'since'):
                raise errors.InvalidArgument("invalid filter '%s'" % key)
        dangling = None
        if 'dangling' in filters:
            vals = {v.lower() for v in filters['dangling']}
            if not vals <= {'true', 'false', '1', '0'} or len(vals) != 1:
                raise errors.InvalidArgument(
                    'invalid filter \'dangling=%s\'' % ','.join(sorted(vals)))
            dangling = vals.pop() in ('true', '1')
        before = since = None
        if 'before' in filters:
            before = min(self.resolve(v).created for v in filters['before'])
        if 'since' in filters:
            since = max(self.resolve(v).created for v in filters['since'])
        out = []
        for img in self.images():
            refs_count = len(img.repo_tags) + len(img.repo_digests)
            if dangling is True and refs_count:
                continue
            if dangling is False and not refs_count:
                continue
            if before is not None and img.created >= before:
                continue
            if since is not None and img.created <= since:
                continue
            labels = (img.config.get('config') or {}).get('Labels') or {}
            if not _labels_match(labels, filters.get('label', ())):
                continue
            tags, digests = img.repo_tags, img.repo_digests
            if 'reference' in filters:
                pats = filters['reference']
                tags = [t for t in tags if _ref_match(pats, t)]
                digests = [d for d in digests if _ref_match(pats, d)]
                if not tags and not digests:
                    continue
            if not all and not refs_count and self._children(img.id):
                continue
            out.append({
                'Id': img.id,
                'ParentId': img.parent,
                'RepoTags': tags,
                'RepoDigests': digests,
                'Created': int(img.created),
                'Size': img.size,
                'SharedSize': -1,
                'VirtualSize': img.size,
                'Labels': labels,
                'Containers': -1,
            })
        out.sort(key=lambda s: s['Created'], reverse=True)
        return out

    def inspect(self, ref):
        img = self.resolve(ref)
        cfg = img.config
        out = {
            'Id': img.id,
            'RepoTags': img.repo_tags,
            'RepoDigests': img.repo_digests,
            'Parent': img.parent,
            # Docker falls back to the newest history entry's comment
            # (``docker commit -m`` records it only there).
            'Comment': cfg.get('comment') or (
                (cfg.get('history') or [{}])[-1].get('comment', '')),
            'Created': cfg.get('created') or util.ZERO_TIME,
            'Container': cfg.get('container', ''),
            'ContainerConfig': full_config(cfg.get('container_config')),
            'DockerVersion': cfg.get('docker_version', ''),
            'Author': cfg.get('author', ''),
            'Config': full_config(cfg.get('config')),
            'Architecture': cfg.get('architecture', ''),
            'Os': cfg.get('os', ''),
            'Size': img.size,
            'VirtualSize': img.size,
            'GraphDriver': {'Name': getattr(self.snapshotter, 'name', None)
                            or 'overlay', 'Data': None},
            'RootFS': {'Type': 'layers', 'Layers': list(img.diff_ids)},
            'Metadata': {'LastTagTime': img.record.get('last_tag_time')
                         or util.ZERO_TIME},
        }
        if cfg.get('variant'):
            out['Variant'] = cfg['variant']
        if cfg.get('os.version'):
            out['OsVersion'] = cfg['os.version']
        return out

    def history(self, ref):
        img = self.resolve(ref)
        layers = img.record['layers']
        entries = img.config.get('history') or []
        rows = []
        li = 0
        if not entries:
            # Images without history (some OCI tools): one row per layer.
            entries = [{'created': img.config.get('created')} for _ in layers]
        for h in entries:
            size = 0
            if not h.get('empty_layer'):
                if li < len(layers):
                    size = layers[li].get('usage', 0)
                li += 1
            rows.append({
                'Id': '<missing>',
                'Created': int(util.parse_rfc3339(h.get('created'))),
                'CreatedBy': h.get('created_by', ''),
                'Tags': None,
                'Size': size,
                'Comment': h.get('comment', ''),
            })
        rows.reverse()
        image_id = img.id
        with self._lock:
            for row in rows:
                row['Id'] = image_id
                tags = [reference.parse(r).familiar()
                        for r in self._refs_of(image_id)
                        if reference.parse(r).tag]
                row['Tags'] = tags or None
                rec = self._records.get(image_id)
                image_id = rec.get('parent') if rec else None
                if not image_id or image_id not in self._records:
                    break
        return rows

    # -- tagging -----------------------------------------------------------------

    def tag(self, source_ref, repo, tag='latest'):
        """Point ``repo:tag`` at the image ``source_ref`` names."""
        if tag is None or tag == '':
            tag = 'latest'
        reference.validate_tag(tag)
        named = reference.parse(repo)
        if named.digest:
            raise errors.InvalidArgument('refusing to create a tag with a '
                                         'digest reference')
        if named.tag:
            # "repo:tag" given as the repository: Docker accepts it when the
            # tag argument is empty; we got the default, so the name wins.
            tag = named.tag
        target = named.with_tag(tag)
        with self._lock:
            image_id = self._find_id(source_ref)
            self._set_refs(image_id, [target])
            rec = self._records[image_id]
            rec['last_tag_time'] = util.rfc3339()
            self._save_record(rec)
        self._emit('tag', image_id, name=target.familiar())
        return target.familiar()

    def _set_refs(self, image_id, refs):
        """Point refs at the image; returns [(ref, previous_id)] moved."""
        moved = []
        for r in refs:
            key = str(r)
            old = self._refs.get(key)
            if old and old != image_id:
                moved.append((r, old))
            self._refs[key] = image_id
        self._save_refs()
        return moved

    # -- removal ---------------------------------------------------------------

    def remove(self, ref, force=False, noprune=False, in_use=None):
        """Docker's ``rmi``: untag and/or delete; returns response items.

        ``in_use(image_id)`` returns the ID of a container using the image,
        or None; it may return ``(container_id, running)`` to tell a running
        container (which blocks even a forced delete) from a stopped one.
        """
        records = []
        with self._lock:
            image_id = self._find_id(ref)
            user, running = _user(in_use, image_id)
            refs = self._refs_of(image_id)
            by_id = (reference.is_id_prefix(ref) and
                     reference.matches_id_prefix(image_id, ref) and
                     not self._is_name_ref(ref, image_id))
            removed_by_name = False
            if not by_id:
                named = reference.parse(ref, default_tag=True)
                if not force and _single_reference(refs) and user:
                    raise errors.Conflict(
                        'conflict: unable to remove repository reference "%s" '
                        '(must force) - container %s is using its referenced '
                        'image %s' % (ref, reference.short_id(user),
                                      reference.short_id(image_id)))
                self._untag(named, image_id, records)
                if not named.digest:
                    remaining = [reference.parse(r) for r in self._refs_of(image_id)]
                    if not any(r.name == named.name and not r.digest
                               for r in remaining):
                        for r in remaining:
                            if r.digest and r.name == named.name:
                                self._untag(r, image_id, records)
                self._save_refs()
                if self._refs_of(image_id):
                    return records
                removed_by_name = True
            else:
                if _single_reference(refs):
                    self._check_conflicts(image_id, user, running,
                                          soft=not force, active_ref=False)
                    for r in refs:
                        self._untag(reference.parse(r), image_id, records)
                    self._save_refs()
            self._delete_helper(image_id, user, running, force, noprune,
                                removed_by_name, records, in_use)
        return records

    def _is_name_ref(self, ref, image_id):
        try:
            named = reference.parse(ref, default_tag=True)
        except errors.InvalidArgument:
            return False
        return self._refs.get(str(named)) == image_id

    def _untag(self, named, image_id, records):
        key = str(named)
        if self._refs.get(key) != image_id:
            return
        del self._refs[key]
        records.append({'Untagged': named.familiar()})
        self._emit('untag', image_id, name=image_id)

    def _check_conflicts(self, image_id, user, running, soft,
                         active_ref=True):
        short = reference.short_id(image_id)
        if self._children(image_id):
            raise errors.Conflict('conflict: unable to delete %s (cannot be '
                                  'forced) - image has dependent child images'
                                  % short)
        if user and running:
            raise errors.Conflict('conflict: unable to delete %s (cannot be '
                                  'forced) - image is being used by running '
                                  'container %s' % (short, reference.short_id(user)))
        if soft and active_ref and self._refs_of(image_id):
            raise errors.Conflict('conflict: unable to delete %s (must be '
                                  'forced) - image is referenced in multiple '
                                  'repositories' % short)
        if soft and user:
            raise errors.Conflict('conflict: unable to delete %s (must be '
                                  'forced) - image is being used by stopped '
                                  'container %s' % (short, reference.short_id(user)))

    def _delete_helper(self, image_id, user, running, force, noprune, quiet,
                       records, in_use=None):
        try:
            self._check_conflicts(image_id, user, running, soft=not force)
        except errors.Conflict:
            if quiet:
                return  # untagged by name: the image stays, as Docker does
            raise
        for r in self._refs_of(image_id):
            self._untag(reference.parse(r), image_id, records)
        self._save_refs()
        parent = self._records[image_id].get('parent')
        self._delete_image(image_id, records)
        if not noprune and parent and parent in self._records:
            puser, prunning = _user(in_use, parent)
            self._delete_helper(parent, puser, prunning, False, noprune,
                                True, records, in_use)

    def _delete_image(self, image_id, records):
        rec = self._records.pop(image_id)
        self._configs.pop(image_id, None)
        try:
            os.unlink(self._record_path(image_id))
        except FileNotFoundError:
            pass
        util.fsync_dir(self.images_dir)
        records.append({'Deleted': image_id})
        self._emit('delete', image_id, name=image_id)
        for chain in self._release_chains(rec['chain_ids']):
            records.append({'Deleted': chain})
        self._release_blobs(rec)

    def _used_chains(self):
        used = set(self._pending)
        for r in self._records.values():
            used.update(r['chain_ids'])
        return used

    def _release_chains(self, chains):
        """Remove snapshots of chains no image needs, top first."""
        removed = []
        used = self._used_chains()
        for chain in reversed(chains):
            if chain in used:
                break
            try:
                if not self.snapshotter.exists(chain):
                    continue
                self.snapshotter.remove(chain)
                removed.append(chain)
            except errors.Conflict:
                break  # a container or another layer still sits on it
            except errors.EngineError as e:
                LOG.warning('Could not remove layer snapshot %s: %s', chain, e)
                break
        return removed

    def _used_blobs(self):
        """Blobs an image record refers to or an operation in progress holds."""
        used = self.content.leased()
        for r in self._records.values():
            used.add(r['id'])
            used.update(l['digest'] for l in r['layers'])
            used.update(r.get('manifests') or ())
        if self.kept_blobs is not None:
            used |= self.kept_blobs({l['diff_id'] for r in self._records.values()
                                     for l in r['layers']})
        return used

    def _release_blobs(self, rec):
        used = self._used_blobs()
        candidates = [rec['id']] + [l['digest'] for l in rec['layers']] + \
            list(rec.get('manifests') or ())
        if self.kept_blobs is not None:
            # The compressed forms of its layers (pushed or pulled blobs)
            # go with the last image that uses those layers.
            candidates += sorted(self.kept_blobs({l['diff_id'] for l in rec['layers']}))
        for digest in candidates:
            if digest not in used:
                self.content.delete(digest)

    # -- creation -----------------------------------------------------------------

    @contextlib.contextmanager
    def _hold(self, chains):
        """Keep chains from being removed while an image is being created."""
        with self._lock:
            self._pending.update(chains)
        try:
            yield
        finally:
            with self._lock:
                self._pending.subtract(chains)
                self._pending += collections.Counter()

    def _chain_lock(self, chain):
        with self._lock:
            return self._chain_locks.setdefault(chain, threading.Lock())

    def _known_diff_size(self, diff_id):
        with self._lock:
            for r in self._records.values():
                for l in r['layers']:
                    if l['diff_id'] == diff_id and l.get('diff_size') is not None:
                        return l['diff_size']
        return None

    def _known_usage(self, chain):
        with self._lock:
            for r in self._records.values():
                if chain in r['chain_ids']:
                    u = r['layers'][r['chain_ids'].index(chain)].get('usage')
                    if u is not None:
                        return u
        return self.snapshotter.usage(chain)

    def _ensure_snapshot(self, layer, chain, parent, created):
        """Make sure the committed snapshot ``chain`` exists; fill sizes."""
        with self._chain_lock(chain):
            if self.snapshotter.exists(chain):
                layer['usage'] = self._known_usage(chain)
                size = self._known_diff_size(layer['diff_id'])
                if size is None:
                    _, size = digest_uncompressed(
                        self.content.path(layer['digest']))
                layer['diff_size'] = size
                return
            with self.content.open(layer['digest']) as f, \
                    open_uncompressed(f) as u:
                reader = HashingReader(u)
                with archive_mod.limits(self.layer_limits()):
                    usage = self.snapshotter.apply_layer(
                        chain, parent, reader, max_size=self.max_layer_size)
                reader.drain()
            if reader.digest != layer['diff_id']:
                self.snapshotter.remove(chain)
                raise errors.ContentError(
                    'layer %s does not match its diff ID: expected %s, got %s'
                    % (layer['digest'], layer['diff_id'], reader.digest))
            created.append(chain)
            layer['usage'] = usage if isinstance(usage, int) else \
                self.snapshotter.usage(chain)
            layer['diff_size'] = reader.n

    def _undo(self, created_chains, new_blobs, lease=None):
        """Remove what a failed operation created: its new snapshots and
        blobs, unless an image or another operation's lease needs them.
        ``lease`` is the failed operation's own; it stops holding them."""
        if lease is not None:
            for d in new_blobs:
                lease.drop(d)
        with self._lock:
            used = self._used_chains()
            for chain in reversed(created_chains):
                if chain in used:
                    continue
                try:
                    self.snapshotter.remove(chain)
                except errors.EngineError as e:
                    LOG.warning('Could not remove snapshot %s: %s', chain, e)
            used_blobs = self._used_blobs()
            for d in new_blobs:
                if d not in used_blobs:
                    self.content.delete(d)

    def create_image(self, config_bytes, layers, repo_tags=(),
                     repo_digests=(), parent=None, manifests=(),
                     new_blobs=(), event=None, lease=None, unpack=True):
        """Register an image from blobs already in the content store.

        ``layers`` is a list of ``{'digest', 'media_type'}`` (optionally
        ``'diff_id'``) in rootfs order; the layer blobs are unpacked into
        snapshots (verified against the config's diff IDs) unless the chain
        exists.  With ``unpack`` False, a layer whose chain does not exist
        and whose sizes are given (``'usage'``, ``'diff_size'``: a commit's
        diff) stays a blob, marked ``lazy``, until something needs its
        snapshot (``unpack``): an image that is only pushed, saved or
        inspected never costs the disk and time of unpacking it.
        ``repo_tags``/``repo_digests`` are reference strings.
        Returns ``(image_id, moved)`` where moved lists ``(ref, old_id)`` of
        references taken from another image.  On failure nothing is
        registered and ``new_blobs`` plus any new snapshots are removed.
        ``lease`` should hold the layer blobs (from their ingest on) so that
        nothing deletes them before the record is written; without one the
        blobs are leased here, from the start.
        """
        if lease is None:
            with self.lease() as own:
                for layer in layers:
                    own.add(layer['digest'])
                for d in manifests:
                    own.add(d)
                return self.create_image(
                    config_bytes, layers, repo_tags=repo_tags,
                    repo_digests=repo_digests, parent=parent,
                    manifests=manifests, new_blobs=new_blobs, event=event,
                    lease=own)
        created = []
        new_blobs = list(new_blobs)
        try:
            if len(config_bytes) > MAX_CONFIG_SIZE:
                raise errors.InvalidArgument('image config is too large')
            config = _parse_config(config_bytes)
            diff_ids = config['rootfs']['diff_ids']
            if len(diff_ids) != len(layers):
                raise errors.InvalidArgument(
                    'invalid manifest, layers length mismatch: expected %d, '
                    'got %d' % (len(diff_ids), len(layers)))
            refs = [reference.parse(t, default_tag=True) for t in repo_tags]
            refs += [reference.parse(d) for d in repo_digests]
            image_id, _size = cfg_blob = self.content.ingest(
                io.BytesIO(config_bytes), content_mod.sha256_digest(
                    config_bytes), lease=lease)
            if cfg_blob.created:
                new_blobs.append(image_id)
            chains = chain_ids(diff_ids)
            recs = []
            for i, (layer, diff_id) in enumerate(zip(layers, diff_ids)):
                if layer.get('diff_id') and layer['diff_id'] != diff_id:
                    raise errors.ContentError(
                        'invalid diffID for layer %d: expected %s, got %s'
                        % (i, diff_id, layer['diff_id']))
                recs.append({'digest': layer['digest'],
                             'media_type': layer.get('media_type') or MEDIA_TAR,
                             'size': self.content.size(layer['digest']),
                             'diff_id': diff_id})
                if not unpack and layer.get('usage') is not None and \
                        layer.get('diff_size') is not None:
                    recs[-1].update(usage=layer['usage'],
                                    diff_size=layer['diff_size'], lazy=True)
            with self._hold(chains):
                for i, layer in enumerate(recs):
                    if layer.get('lazy'):
                        if not self.snapshotter.exists(chains[i]):
                            continue
                        del layer['lazy']
                    self._ensure_snapshot(layer, chains[i],
                                          chains[i - 1] if i else None,
                                          created)
                with self._lock:
                    for c, layer in zip(chains, recs):
                        if not layer.get('lazy') and \
                                not self.snapshotter.exists(c):
                            raise errors.ContentError(
                                'layer snapshot %s vanished' % c)
                    rec = self._records.get(image_id)
                    if rec is None:
                        rec = {'id': image_id, 'layers': recs,
                               'chain_ids': chains,
                               'parent': parent or '',
                               'manifests': sorted(set(manifests)),
                               'added': util.rfc3339(),
                               'last_tag_time': util.ZERO_TIME}
                    else:
                        rec = copy.deepcopy(rec)
                        rec['manifests'] = sorted(set(rec.get('manifests', []))
                                                  | set(manifests))
                    if refs:
                        rec['last_tag_time'] = util.rfc3339()
                    self._save_record(rec)
                    self._records[image_id] = rec
                    self._configs[image_id] = config
                    moved = self._set_refs(image_id, refs) if refs else []
        except BaseException:
            self._undo(created, new_blobs, lease)
            raise
        if event in ('commit', 'import'):
            # Docker tags the new image (a "tag" event per reference); a
            # commit has no image event of its own, only the container's.
            for r in refs:
                self._emit('tag', image_id, name=r.familiar())
        if event and event != 'commit':
            self._emit(event, image_id, name=image_id)
        return image_id, moved

    def unpack(self, image):
        """``image`` (an Image) with every layer unpacked into its
        snapshot: the layers ``create_image`` left packed are unpacked now
        (verified against their diff IDs) and the record says so.  Call
        before using the image's chains (a container, a build step)."""
        if not any(l.get('lazy') for l in image.record['layers']):
            return image
        chains = image.chain_ids
        created = []
        with self._hold(chains):
            layers = copy.deepcopy(image.record['layers'])
            try:
                with self.lease() as lease:
                    for i, layer in enumerate(layers):
                        if layer.pop('lazy', None):
                            lease.add(layer['digest'])
                            if not self.content.has(layer['digest']):
                                raise errors.ContentError(
                                    'image %s: layer blob %s is missing'
                                    % (image.id, layer['digest']))
                            self._ensure_snapshot(layer, chains[i],
                                                  chains[i - 1] if i else None,
                                                  created)
                    with self._lock:
                        rec = self._records.get(image.id)
                        if rec is None:
                            raise errors.NoSuchImage(image.id)
                        rec = copy.deepcopy(rec)
                        rec['layers'] = layers
                        self._save_record(rec)
                        self._records[image.id] = rec
                        return self._image(rec)
            except BaseException:
                self._undo(created, [])
                raise

    def _ingest_layer_blob(self, fileobj, expected_digest=None, lease=None,
                           max_size=None, hint=HINT_LAYER):
        """Ingest a layer stream; decompress formats OCI layers can't be.

        Returns ``{'digest', 'media_type', 'diff_id'}`` and the list of
        blobs this call created (a blob the store had already is not
        listed: undoing the operation must not delete it).  ``lease`` holds
        the layer blob from its ingest on.  ``max_size`` (default
        max_layer_size) bounds the blob and its uncompressed tar.
        """
        if lease is None:
            raise ValueError('a layer blob is ingested under a lease')
        if max_size is None:
            max_size = self.max_layer_size
        guard = self.space_guard(self.content.ingest_dir, 'storing the layer')
        got = self.content.ingest(fileobj, expected_digest, max_size=max_size,
                                  lease=lease, guard=guard, limit_hint=hint)
        new = [got.digest] if got.created else []
        try:
            layer, more = self._classify_layer_blob(got.digest, new, lease,
                                                    max_size, hint, guard)
        except BaseException:
            self._undo([], new, lease)
            raise
        return layer, more

    def _classify_layer_blob(self, digest, new, lease, max_size, hint, guard):
        with self.content.open(digest) as f:
            kind = sniff(f.read(8))
        if kind in ('bzip2', 'xz'):
            with self.content.open(digest) as f, open_uncompressed(f) as u:
                plain = self.content.ingest(
                    HashingReader(u), max_size=max_size, lease=lease,
                    guard=guard, limit_hint=hint)
            # The compressed blob is not kept: only what this call stored.
            self._undo([], new, lease)
            return {'digest': plain.digest, 'media_type': MEDIA_TAR,
                    'diff_id': plain.digest}, \
                [plain.digest] if plain.created else []
        if kind is None:
            return {'digest': digest, 'media_type': MEDIA_TAR,
                    'diff_id': digest}, new
        diff_id, _ = digest_uncompressed(self.content.path(digest),
                                         max_size=max_size, hint=hint)
        media = MEDIA_TAR_GZIP if kind == 'gzip' else MEDIA_TAR_ZSTD
        return {'digest': digest, 'media_type': media,
                'diff_id': diff_id}, new

    def import_rootfs(self, stream, repo=None, tag=None, changes=(),
                      message='', platform=None, source='-'):
        """``docker import``: one layer from a (compressed) rootfs tar."""
        os_name, arch, variant = _parse_platform(platform)
        ref = _target_reference(repo, tag)
        cfg = full_config(changes_mod.parse_changes(changes, {}))
        # The upload is the layer: both size limits bound it, uncompressed.
        limit = _smallest_limit(self.max_layer_size, self.max_archive_size)
        hint = HINT_ARCHIVE if limit == self.max_archive_size else HINT_LAYER
        with self.lease() as lease:
            layer, new = self._ingest_layer_blob(stream, lease=lease,
                                                 max_size=limit, hint=hint)
            created = util.rfc3339()
            comment = message or 'Imported from %s' % source
            config = {'architecture': arch, 'os': os_name,
                      'created': created, 'comment': comment, 'config': cfg,
                      'history': [{'created': created, 'comment': comment}],
                      'rootfs': {'type': 'layers',
                                 'diff_ids': [layer['diff_id']]}}
            if variant:
                config['variant'] = variant
            image_id, _ = self.create_image(
                _dump(config), [layer], repo_tags=[str(ref)] if ref else (),
                new_blobs=new, event='import', lease=lease)
        return image_id

    def commit(self, snapshot_key, parent_image_id, container_config,
               changes=(), author='', comment='', repo=None, tag=None,
               container_id='', captured=None):
        """``docker commit``: one new layer with the container's changes.

        ``captured`` is called once the changes are written to the layer
        blob, before it is synced and the image registered: the container
        may run on from there (the caller unpauses it)."""
        ref = _target_reference(repo, tag)
        parent = self.resolve(parent_image_id) if parent_image_id else None
        base = parent.config if parent else {}
        new_cfg = full_config(changes_mod.parse_changes(changes,
                                                        container_config))
        lease = self.lease()
        try:
            layer, new = self.ingest_diff(snapshot_key, lease, captured=captured)
            return self._commit_image(lease, layer, new, parent, base,
                                      new_cfg, container_config, author,
                                      comment, ref, container_id)
        finally:
            lease.release()

    def _commit_image(self, lease, layer, new, parent, base, new_cfg,
                      container_config, author, comment, ref, container_id):
        created = util.rfc3339()
        hist = {'created': created,
                'created_by': ' '.join((container_config or {}).get('Cmd')
                                       or [])}
        if author:
            hist['author'] = author
        if comment:
            hist['comment'] = comment
        config = {
            'architecture': base.get('architecture') or host_arch(),
            'os': base.get('os') or 'linux',
            'config': new_cfg,
            'container': container_id,
            'container_config': full_config(container_config),
            'created': created,
            'history': list(base.get('history') or []) + [hist],
            'rootfs': {'type': 'layers',
                       'diff_ids': list(parent.diff_ids if parent else [])
                       + [layer['diff_id']]},
        }
        if author:
            config['author'] = author
        if base.get('variant'):
            config['variant'] = base['variant']
        layers = [dict(digest=l['digest'], media_type=l['media_type'])
                  for l in (parent.record['layers'] if parent else [])]
        layers.append(layer)
        # The new layer is not unpacked until something runs on it: a
        # snapshot is mostly pushed, not run here.
        image_id, _ = self.create_image(
            _dump(config), layers, repo_tags=[str(ref)] if ref else (),
            parent=parent.id if parent else None, new_blobs=new,
            event='commit', lease=lease, unpack=False)
        return image_id

    # -- archives (implemented in engine.imagearchive) ---------------------------

    def load(self, stream, quiet=False):
        from engine import imagearchive
        return imagearchive.load(self, stream, quiet=quiet)

    def save(self, refs, out):
        from engine import imagearchive
        return imagearchive.save(self, refs, out)

    # -- maintenance -------------------------------------------------------------

    def cleanup(self, container_snapshots=None, gc_content=True):
        """Start-up housekeeping; call before serving requests.

        Removes scratch directories of interrupted operations, stale ingest
        files, committed snapshots no image needs and no active snapshot
        (container) sits on, and, with ``gc_content``, blobs no image
        refers to.  ``container_snapshots`` (keys of the containers'
        snapshots) is optional: active snapshots are always kept along with
        their parents.
        """
        for name in os.listdir(self.tmp_dir):
            shutil.rmtree(os.path.join(self.tmp_dir, name), ignore_errors=True)
        self.content.cleanup()
        with self._lock:
            used = self._used_chains()
            snaps = {k: (p, kind) for k, p, kind in self.snapshotter.list()}
            for key in set(container_snapshots or ()) | \
                    {k for k, (_, kind) in snaps.items() if kind != 'committed'}:
                parent = snaps.get(key, (None, None))[0]
                while parent is not None and parent not in used:
                    used.add(parent)
                    parent = snaps.get(parent, (None, None))[0]
            progress = True
            while progress:
                progress = False
                for key, _parent, kind in list(self.snapshotter.list()):
                    if kind != 'committed' or key in used:
                        continue
                    try:
                        self.snapshotter.remove(key)
                        progress = True
                        LOG.info('Removed unused layer snapshot %s', key)
                    except errors.Conflict:
                        pass
            if gc_content:
                used_blobs = self._used_blobs()
                for d in list(self.content.list()):
                    if d not in used_blobs:
                        self.content.delete(d)
                        LOG.info('Removed unreferenced blob %s', d)

    def check(self):
        """Return a list of problem strings (empty when consistent)."""
        problems = []
        with self._lock:
            for r, image_id in sorted(self._refs.items()):
                if image_id not in self._records:
                    problems.append('reference %s points to missing image %s'
                                    % (r, image_id))
            for image_id, rec in sorted(self._records.items()):
                if not self.content.has(image_id):
                    problems.append('image %s: config blob is missing'
                                    % image_id)
                elif image_id not in self._configs:
                    problems.append('image %s: config is unreadable' % image_id)
                for l in rec['layers']:
                    if not self.content.has(l['digest']):
                        problems.append('image %s: layer blob %s is missing'
                                        % (image_id, l['digest']))
                    elif self.content.size(l['digest']) != l['size']:
                        problems.append('image %s: layer blob %s has the wrong '
                                        'size' % (image_id, l['digest']))
                for c, l in zip(rec['chain_ids'], rec['layers']):
                    # A lazy layer is unpacked when first needed.
                    if not l.get('lazy') and not self.snapshotter.exists(c):
                        problems.append('image %s: layer snapshot %s is '
                                        'missing' % (image_id, c))
                cfg = self._configs.get(image_id)
                if cfg is not None and [l['diff_id'] for l in rec['layers']] \
                        != cfg['rootfs']['diff_ids']:
                    problems.append('image %s: record and config disagree on '
                                    'layers' % image_id)
        return problems


# -- helpers -----------------------------------------------------------------------

def _target_reference(repo, tag):
    """The name an import or commit gives its image (None without a repo)."""
    if not repo:
        return None
    ref = reference.parse(repo)
    if tag:
        reference.validate_tag(tag)
        ref = ref.with_tag(tag)
    return ref.tagged()


def dump_config(obj):
    """An image config's canonical bytes (its digest is the image id)."""
    return _dump(obj)


def _dump(obj):
    return json.dumps(obj, separators=(',', ':')).encode()


def _parse_config(data):
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidArgument('invalid image config: not JSON')
    if not isinstance(config, dict):
        raise errors.InvalidArgument('invalid image config: not an object')
    rootfs = config.get('rootfs')
    if not isinstance(rootfs, dict) or rootfs.get('type') != 'layers' or \
            not isinstance(rootfs.get('diff_ids', []), list):
        raise errors.InvalidArgument('invalid image config: bad rootfs')
    rootfs.setdefault('diff_ids', [])
    for d in rootfs['diff_ids']:
        if not isinstance(d, str) or not reference.SHA256_RE.match(d):
            raise errors.InvalidArgument('invalid image config: bad diff ID '
                                         '%r' % (d,))
    for key in ('config', 'container_config'):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise errors.InvalidArgument('invalid image config: %s' % key)
    if config.get('history') is not None and not isinstance(
            config['history'], list):
        raise errors.InvalidArgument('invalid image config: history')
    if config.get('history'):
        config['history'] = [h for h in config['history']
                             if isinstance(h, dict)]
    return config


def _parse_platform(text):
    if not text:
        return 'linux', host_arch(), ''
    parts = text.lower().split('/')
    if parts[0] != 'linux' or len(parts) > 3:
        raise errors.InvalidArgument('unsupported platform: %s' % text)
    arch = parts[1] if len(parts) > 1 and parts[1] else host_arch()
    variant = parts[2] if len(parts) > 2 else ''
    return 'linux', arch, variant


def _user(in_use, image_id):
    if in_use is None:
        return None, False
    res = in_use(image_id)
    if isinstance(res, (tuple, list)):
        return res[0], bool(res[1])
    return res, False


def _single_reference(refs):
    """At most one tag, and every reference in one repository."""
    parsed = [reference.parse(r) for r in refs]
    if sum(1 for p in parsed if not p.digest) > 1:
        return False
    return len({p.name for p in parsed}) <= 1


def _normalise_filters(filters):
    if not filters:
        return {}
    if isinstance(filters, str):
        try:
            filters = json.loads(filters)
        except ValueError:
            raise errors.InvalidArgument('invalid filters: %s' % filters)
    out = {}
    for k, v in filters.items():
        if isinstance(v, dict):
            vals = [x for x, on in v.items() if on]
        elif isinstance(v, (list, tuple, set)):
            vals = list(v)
        else:
            vals = [v]
        out[k] = [str(x) for x in vals]
    return out


def _labels_match(labels, wanted):
    for w in wanted:
        k, eq, v = w.partition('=')
        if k not in labels:
            return False
        if eq and labels[k] != v:
            return False
    return True


def _glob(pattern):
    """Go's path.Match as a regex: ``*`` and ``?`` never match ``/``."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == '*':
            out.append('[^/]*')
        elif c == '?':
            out.append('[^/]')
        elif c == '[':
            end = pattern.find(']', i + 1)
            if end < 0:
                raise errors.InvalidArgument('invalid reference filter: %s'
                                             % pattern)
            body = pattern[i + 1:end]
            if body.startswith('^'):
                body = '!' + body[1:]
            if body.startswith('!'):
                body = '^' + body[1:]
            out.append('[' + body.replace('\\', '\\\\') + ']')
            i = end
        elif c == '\\' and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile('^' + ''.join(out) + '$')


def _ref_match(patterns, familiar):
    name = familiar.split('@', 1)[0]
    repo = name.rsplit(':', 1)[0] if ':' in name.rsplit('/', 1)[-1] else name
    for p in patterns:
        rx = _glob(p)
        if rx.match(familiar) or rx.match(repo):
            return True
    return False
