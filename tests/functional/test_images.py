"""The image store on real snapshotters (overlay, vfs) and real archives.

Images are built from Debian's static busybox.  The interop tests start
Docker 20.10 (the ``dockerd`` fixture of tests/conftest.py) and move
archives both ways, comparing image IDs.
"""

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time

import pytest

from engine import content
from engine import errors
from engine import images
from engine import snapshotters
from tests import conftest

pytestmark = pytest.mark.functional

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
BUSYBOX = '/bin/busybox'
CREATED = '2024-01-01T00:00:00Z'


# -- tar builders ---------------------------------------------------------------

def _ti(name, kind=tarfile.REGTYPE, size=0, mode=0o644, linkname=''):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.linkname = kind, size, mode, linkname
    ti.mtime = 1704067200
    return ti


def make_tar(entries):
    """entries: (name, bytes) files, (name, None) dirs, (name, '->t') symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            if data is None:
                t.addfile(_ti(name, tarfile.DIRTYPE, mode=0o755))
            elif isinstance(data, str) and data.startswith('->'):
                t.addfile(_ti(name, tarfile.SYMTYPE, linkname=data[2:]))
            else:
                t.addfile(_ti(name, size=len(data), mode=0o755), io.BytesIO(data))
    return buf.getvalue()


_ROOTFS = None


def rootfs_tar():
    """A small busybox rootfs: the binary, a few applets, /etc files."""
    global _ROOTFS
    if _ROOTFS is None:
        with open(BUSYBOX, 'rb') as f:
            bb = f.read()
        _ROOTFS = make_tar([
            ('bin', None), ('bin/busybox', bb), ('bin/sh', '->busybox'),
            ('bin/ls', '->busybox'), ('etc', None),
            ('etc/hostname', b'busybox\n'), ('etc/passwd',
                                              b'root:x:0:0::/root:/bin/sh\n'),
            ('tmp', None)])
    return _ROOTFS


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode='wb', mtime=0) as g:
        g.write(data)
    return out.getvalue()


def docker_archive(layers, tags=('two:layers',), config_extra=None,
                   history=None, manifest_layers=None, layer_blobs=None,
                   diff_ids=None):
    """A ``docker save`` archive; returns (bytes, image id)."""
    diff_ids = diff_ids or [sha(l) for l in layers]
    config = {
        'architecture': images.host_arch(), 'os': 'linux',
        'created': CREATED,
        'config': {'Cmd': ['sh'], 'Env': ['PATH=/bin']},
        'history': history or [{'created': CREATED, 'created_by': 'layer %d' % i}
                               for i in range(len(layers))],
        'rootfs': {'type': 'layers', 'diff_ids': diff_ids},
    }
    config.update(config_extra or {})
    cbytes = json.dumps(config).encode()
    image_id = sha(cbytes)
    entries = [(image_id[7:] + '.json', cbytes)]
    paths = []
    for i, layer in enumerate(layers):
        d = 'l%d' % i
        blob = layer_blobs[i] if layer_blobs else layer
        entries += [(d, None), (d + '/VERSION', b'1.0'),
                    (d + '/json', b'{}'), (d + '/layer.tar', blob)]
        paths.append(d + '/layer.tar')
    manifest = [{'Config': image_id[7:] + '.json', 'RepoTags': list(tags),
                 'Layers': manifest_layers or paths}]
    entries.append(('manifest.json', json.dumps(manifest).encode()))
    return make_tar(entries), image_id


def two_layer_archive(**kw):
    top = make_tar([('etc', None), ('etc/.wh.hostname', b''),
                    ('hello', b'hello\n')])
    history = [{'created': CREATED, 'created_by': 'ADD rootfs'},
               {'created': CREATED, 'created_by': 'ENV X=1',
                'empty_layer': True},
               {'created': CREATED, 'created_by': 'RUN rm /etc/hostname'}]
    return docker_archive([rootfs_tar(), top], history=history, **kw)


# -- fixtures -----------------------------------------------------------------------

class Env(object):
    def __init__(self, base, driver='overlay'):
        self.base = base
        self.driver = driver
        self.events = []
        self.open()

    def open(self):
        self.snap = snapshotters.load(self.driver,
                                      os.path.join(self.base, 'snap'))
        self.content = content.ContentStore(os.path.join(self.base, 'content'))
        self.store = images.ImageStore(
            os.path.join(self.base, 'images'), self.content, self.snap,
            emit=lambda *a: self.events.append(a))
        return self.store

    def tmp_entries(self):
        return os.listdir(os.path.join(self.base, 'images', 'tmp'))

    def assert_empty(self):
        assert self.store.list_images(all=True) == []
        assert list(self.snap.list()) == []
        assert list(self.content.list()) == []
        assert self.tmp_entries() == []
        assert os.listdir(os.path.join(self.base, 'content', 'ingest')) == []
        assert self.store.check() == []


@pytest.fixture(params=['overlay', 'vfs'])
def env(request, tmp_path):
    return Env(str(tmp_path), request.param)


@pytest.fixture
def ov(tmp_path):
    return Env(str(tmp_path), 'overlay')


def mounted_files(e, image, tmp_path, paths):
    """Which of ``paths`` exist in a container rootfs of the image."""
    key = 'ctr-' + os.path.basename(str(tmp_path))
    e.snap.prepare(key, image.top_chain_id)
    target = tmp_path / 'mnt'
    target.mkdir(exist_ok=True)
    e.snap.mount(key, str(target))
    try:
        return {p: (target / p).exists() or (target / p).is_symlink()
                for p in paths}
    finally:
        e.snap.unmount(str(target))
        e.snap.remove(key)


# -- import and resolve --------------------------------------------------------------

@pytest.mark.parametrize('compress', [None, gz, bz2.compress, lzma.compress])
def test_import_resolves_by_name_and_ids(ov, compress):
    data = rootfs_tar()
    stream = io.BytesIO(compress(data) if compress else data)
    image_id = ov.store.import_rootfs(stream, repo='busybox',
                                      changes=['CMD ["sh"]', 'ENV A=1'])
    img = ov.store.resolve('busybox')
    assert img.id == image_id
    assert img.repo_tags == ['busybox:latest']
    assert img.diff_ids == [sha(data)]
    assert img.chain_ids == [sha(data)] and img.top_chain_id == sha(data)
    for ref in (image_id, image_id[7:], image_id[7:19], image_id[:14],
                'busybox:latest', 'docker.io/library/busybox',
                'library/busybox:latest'):
        assert ov.store.resolve(ref).id == image_id, ref
    for ref in ('busybox:other', 'nope', image_id[7:19] + 'x',
                'sha256:' + '0' * 64, 'sha256:' + image_id[7:19] + 'x'):
        with pytest.raises(errors.NoSuchImage):
            ov.store.resolve(ref)
    for ref in ('BusyBox', 'busybox:bad tag', 'a//b', ':nothing'):
        with pytest.raises(errors.InvalidArgument):   # 400, as Docker
            ov.store.resolve(ref)
    # The config is the bytes the ID hashes, shaped like Docker's import.
    with ov.content.open(image_id) as f:
        assert sha(f.read()) == image_id
    cfg = img.config
    assert cfg['os'] == 'linux' and cfg['architecture'] == images.host_arch()
    assert cfg['config']['Cmd'] == ['sh']
    assert cfg['config']['Env'] == ['A=1']
    assert cfg['history'] == [{'created': cfg['created'],
                               'comment': 'Imported from -'}]
    layer = img.record['layers'][0]
    expected_media = images.MEDIA_TAR_GZIP if compress is gz else images.MEDIA_TAR
    assert layer['media_type'] == expected_media
    assert ov.store.image_config_for_container('busybox')['Cmd'] == ['sh']
    assert ov.store.check() == []
    assert ov.tmp_entries() == []
    assert ('import', image_id, {'name': image_id}) in ov.events


def test_import_then_files_are_there(env, tmp_path):
    env.store.import_rootfs(io.BytesIO(gz(rootfs_tar())), repo='bb', tag='1',
                            message='my import')
    img = env.store.resolve('bb:1')
    assert img.config['comment'] == 'my import'
    files = mounted_files(env, img, tmp_path, ['bin/busybox', 'etc/hostname'])
    assert files == {'bin/busybox': True, 'etc/hostname': True}


def test_import_rejects_bad_input_and_leaves_nothing(ov):
    with pytest.raises(errors.InvalidArgument):
        ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='Bad')
    with pytest.raises(errors.InvalidArgument):
        ov.store.import_rootfs(io.BytesIO(rootfs_tar()), changes=['RUN x'])
    with pytest.raises(errors.LayerError):
        ov.store.import_rootfs(io.BytesIO(make_tar([('../evil', b'x')])),
                               repo='evil')
    with pytest.raises(errors.LayerError):
        ov.store.import_rootfs(io.BytesIO(gz(rootfs_tar())[:-100]),
                               repo='truncated')
    ov.assert_empty()


def test_same_layer_stored_once(ov):
    a = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='a')
    b = ov.store.import_rootfs(io.BytesIO(gz(rootfs_tar())), repo='b')
    assert a != b  # different created time
    assert len(list(ov.snap.list())) == 1
    # Removing one keeps the shared snapshot for the other.
    out = ov.store.remove('a')
    assert out == [{'Untagged': 'a:latest'}, {'Deleted': a}]
    assert ov.store.resolve('b').top_chain_id in [k for k, _, _ in ov.snap.list()]
    ov.store.remove('b')
    ov.assert_empty()


# -- load --------------------------------------------------------------------------

def test_load_two_layers_with_whiteout(env, tmp_path):
    data, image_id = two_layer_archive()
    msgs = env.store.load(io.BytesIO(data))
    assert msgs == ['Loaded image: two:layers']
    img = env.store.resolve('two:layers')
    assert img.id == image_id
    assert len(img.chain_ids) == 2
    files = mounted_files(env, img, tmp_path,
                          ['etc/hostname', 'etc/passwd', 'hello'])
    assert files == {'etc/hostname': False, 'etc/passwd': True, 'hello': True}
    assert env.tmp_entries() == []
    assert env.store.check() == []


def test_load_gzip_layers_and_compressed_archive(ov):
    data, image_id = two_layer_archive(
        layer_blobs=[gz(rootfs_tar()),
                     gz(make_tar([('etc', None), ('etc/.wh.hostname', b'')]))])
    # The second layer is different from the one the config names: build the
    # matching diff IDs explicitly.
    top = make_tar([('etc', None), ('etc/.wh.hostname', b'')])
    data, image_id = docker_archive([rootfs_tar(), top],
                                    layer_blobs=[gz(rootfs_tar()), gz(top)])
    assert ov.store.load(io.BytesIO(gz(data))) == ['Loaded image: two:layers']
    img = ov.store.resolve(image_id)
    assert [l['media_type'] for l in img.record['layers']] == \
        [images.MEDIA_TAR_GZIP] * 2


def test_load_untagged_and_retag_messages(ov):
    data, image_id = docker_archive([rootfs_tar()], tags=())
    assert ov.store.load(io.BytesIO(data)) == ['Loaded image ID: %s' % image_id]
    first, _ = docker_archive([rootfs_tar()], tags=('x:1',))
    ov.store.load(io.BytesIO(first))
    second, second_id = docker_archive([rootfs_tar()], tags=('x:1',),
                                       config_extra={'created': '2024-02-02T00:00:00Z'})
    old = ov.store.resolve('x:1').id
    assert ov.store.load(io.BytesIO(second)) == [
        'The image x:1 already exists, renaming the old one with ID %s to '
        'empty string' % old, 'Loaded image: x:1']
    assert ov.store.resolve('x:1').id == second_id


def test_load_oci_layout(ov):
    layer = rootfs_tar()
    blob = gz(layer)
    cfg = json.dumps({'architecture': images.host_arch(), 'os': 'linux',
                      'rootfs': {'type': 'layers', 'diff_ids': [sha(layer)]},
                      'config': {'Cmd': ['sh']}}).encode()
    manifest = json.dumps({
        'schemaVersion': 2,
        'mediaType': 'application/vnd.oci.image.manifest.v1+json',
        'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                   'digest': sha(cfg), 'size': len(cfg)},
        'layers': [{'mediaType': images.MEDIA_TAR_GZIP, 'digest': sha(blob),
                    'size': len(blob)}]}).encode()
    index = json.dumps({'schemaVersion': 2, 'manifests': [
        {'mediaType': 'application/vnd.oci.image.manifest.v1+json',
         'digest': sha(manifest), 'size': len(manifest),
         'annotations': {'io.containerd.image.name':
                         'localhost:5000/oci/img:v1',
                         'org.opencontainers.image.ref.name': 'v1'}}]}).encode()
    entries = [('oci-layout', b'{"imageLayoutVersion": "1.0.0"}'),
               ('index.json', index), ('blobs', None),
               ('blobs/sha256', None)]
    for b in (cfg, manifest, blob):
        entries.append(('blobs/sha256/' + sha(b)[7:], b))
    assert ov.store.load(io.BytesIO(make_tar(entries))) == \
        ['Loaded image: localhost:5000/oci/img:v1']
    img = ov.store.resolve('localhost:5000/oci/img:v1')
    assert img.id == sha(cfg)
    assert img.record['manifests'] == [sha(manifest)]
    # A layer blob that does not match its descriptor is refused.
    bad = [e for e in entries if not e[0].endswith(sha(blob)[7:])]
    bad.append(('blobs/sha256/' + sha(blob)[7:], gz(layer + b'\0' * 512)))
    ov.store.remove(img.id)
    with pytest.raises(errors.ContentError):
        ov.store.load(io.BytesIO(make_tar(bad)))
    ov.assert_empty()


# -- save -----------------------------------------------------------------------------

def test_save_then_load_gives_same_image(env, tmp_path):
    data, image_id = two_layer_archive()
    env.store.load(io.BytesIO(data))
    env.store.tag('two:layers', 'other/name', 'v2')
    out = io.BytesIO()
    env.store.save(['two:layers', 'other/name:v2'], out)
    saved = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(saved)) as t:
        names = set(t.getnames())
        manifest = json.load(t.extractfile('manifest.json'))
        repos = json.load(t.extractfile('repositories'))
        assert t.extractfile(image_id[7:] + '.json').read() == \
            env.content.read(image_id)
        for path in manifest[0]['Layers']:
            d = path.split('/')[0]
            assert t.extractfile(d + '/VERSION').read() == b'1.0'
            assert json.load(t.extractfile(d + '/json'))['id'] == d
            layer = t.extractfile(path).read()   # follows the symlink
            assert sha(layer) in env.store.resolve(image_id).diff_ids
        index = json.load(t.extractfile('index.json'))
    assert {'oci-layout', 'index.json', 'manifest.json', 'repositories'} <= names
    assert manifest[0]['Config'] == image_id[7:] + '.json'
    assert sorted(manifest[0]['RepoTags']) == ['other/name:v2', 'two:layers']
    assert set(repos) == {'two', 'other/name'}
    assert sorted(m['annotations']['io.containerd.image.name']
                  for m in index['manifests']) == [
        'docker.io/library/two:layers', 'docker.io/other/name:v2']

    other = Env(str(tmp_path / 'fresh'),
                'vfs' if env.driver == 'overlay' else 'overlay')
    assert sorted(other.store.load(io.BytesIO(saved))) == [
        'Loaded image: other/name:v2', 'Loaded image: two:layers']
    assert other.store.resolve('two:layers').id == image_id
    assert other.store.check() == []
    # Saving by ID names no tag, as Docker does.
    out = io.BytesIO()
    env.store.save([image_id[7:19]], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert json.load(t.extractfile('manifest.json'))[0]['RepoTags'] is None


def test_save_of_repository_saves_all_its_tags(ov):
    ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='r', tag='1')
    ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='r', tag='2')
    out = io.BytesIO()
    ov.store.save(['r'], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        manifest = json.load(t.extractfile('manifest.json'))
    assert sorted(t for m in manifest for t in m['RepoTags']) == ['r:1', 'r:2']
    with pytest.raises(errors.NoSuchImage):
        ov.store.save(['missing'], io.BytesIO())


# -- history, list, inspect, tag ---------------------------------------------------

def test_history_rows(ov):
    data, image_id = two_layer_archive()
    ov.store.load(io.BytesIO(data))
    rows = ov.store.history('two:layers')
    assert [r['CreatedBy'] for r in rows] == [
        'RUN rm /etc/hostname', 'ENV X=1', 'ADD rootfs']
    assert rows[0]['Id'] == image_id
    assert rows[0]['Tags'] == ['two:layers']
    assert [r['Id'] for r in rows[1:]] == ['<missing>', '<missing>']
    assert rows[1]['Size'] == 0
    layers = ov.store.resolve(image_id).record['layers']
    assert rows[0]['Size'] == layers[1]['usage'] == len(b'hello\n')
    assert rows[2]['Size'] == layers[0]['usage'] > 100000
    assert all(r['Created'] == 1704067200 for r in rows)


def test_list_and_inspect(ov):
    data, image_id = two_layer_archive(
        config_extra={'config': {'Labels': {'a': 'b'}, 'Cmd': ['sh']}})
    ov.store.load(io.BytesIO(data))
    dangling, _ = docker_archive([rootfs_tar()], tags=())
    ov.store.load(io.BytesIO(dangling))
    listed = ov.store.list_images()
    assert len(listed) == 2
    s = [i for i in listed if i['Id'] == image_id][0]
    assert s['RepoTags'] == ['two:layers'] and s['Labels'] == {'a': 'b'}
    assert s['Created'] == 1704067200 and s['Size'] > 100000
    assert [i['Id'] for i in ov.store.list_images(
        filters={'dangling': ['true']})] != [image_id]
    assert [i['Id'] for i in ov.store.list_images(
        filters={'label': ['a=b']})] == [image_id]
    assert ov.store.list_images(filters={'label': ['a=c']}) == []
    assert [i['Id'] for i in ov.store.list_images(
        filters={'reference': {'tw*': True}})] == [image_id]
    assert ov.store.list_images(filters={'reference': ['*/layers']}) == []
    with pytest.raises(errors.InvalidArgument):
        ov.store.list_images(filters={'bogus': ['1']})
    info = ov.store.inspect('two:layers')
    assert info['Id'] == image_id and info['RepoTags'] == ['two:layers']
    assert info['RootFS'] == {'Type': 'layers', 'Layers':
                              ov.store.resolve(image_id).diff_ids}
    assert info['Config']['Cmd'] == ['sh'] and info['Config']['Image'] == ''
    assert info['Created'] == CREATED and info['Os'] == 'linux'
    assert info['GraphDriver']['Name'] == 'overlay'
    assert info['Metadata']['LastTagTime'] != '0001-01-01T00:00:00Z'


def test_tag(ov):
    a = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='a')
    b = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='b')
    assert ov.store.tag('a', 'localhost:5000/x/y', 'v1') == \
        'localhost:5000/x/y:v1'
    assert ov.store.resolve('localhost:5000/x/y:v1').id == a
    ov.store.tag(b, 'localhost:5000/x/y', 'v1')   # moves the tag
    assert ov.store.resolve('localhost:5000/x/y:v1').id == b
    assert ov.store.resolve('a').repo_tags == ['a:latest']
    ov.store.tag('a', 'plain')
    assert ov.store.resolve('plain:latest').id == a
    for repo, tag in (('Upper', 'x'), ('ok', 'bad/tag'), ('ok', 'a' * 129),
                      ('ok', '-x'), ('ok@sha256:' + 'a' * 64, 'x'),
                      ('a' * 64, 'x')):
        with pytest.raises(errors.InvalidArgument) as ei:
            ov.store.tag('a', repo, tag)
        assert ei.value.status == 400
    with pytest.raises(errors.NoSuchImage):
        ov.store.tag('missing', 'x')
    # State survives a restart.
    store = ov.open()
    assert store.resolve('localhost:5000/x/y:v1').id == b
    assert store.check() == []


# -- rmi ------------------------------------------------------------------------------

def _two_tagged(ov):
    image_id = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='a')
    ov.store.tag('a', 'b', 'x')
    return image_id


def test_rmi_by_name_untags_only_that_name(ov):
    image_id = _two_tagged(ov)
    assert ov.store.remove('b:x') == [{'Untagged': 'b:x'}]
    assert ov.store.resolve(image_id).repo_tags == ['a:latest']
    chain = ov.store.resolve(image_id).top_chain_id
    assert ov.store.remove('a') == [{'Untagged': 'a:latest'},
                                    {'Deleted': image_id}, {'Deleted': chain}]
    ov.assert_empty()


def test_rmi_last_tag_deletes_image_and_layers(ov):
    image_id = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='a')
    chain = ov.store.resolve(image_id).top_chain_id
    assert ov.store.remove('a:latest') == [
        {'Untagged': 'a:latest'}, {'Deleted': image_id}, {'Deleted': chain}]
    ov.assert_empty()
    kinds = [e[0] for e in ov.events]
    # As Docker: an import naming a repository tags the image first.
    assert kinds == ['tag', 'import', 'untag', 'delete']


def test_rmi_by_id_with_several_tags_needs_force(ov):
    image_id = _two_tagged(ov)
    with pytest.raises(errors.Conflict) as ei:
        ov.store.remove(image_id[7:19])
    assert 'image is referenced in multiple repositories' in str(ei.value)
    assert '(must be forced)' in str(ei.value)
    out = ov.store.remove(image_id[7:19], force=True)
    assert sorted(r.get('Untagged', '') for r in out[:2]) == ['a:latest', 'b:x']
    assert out[2] == {'Deleted': image_id}
    ov.assert_empty()


def test_rmi_by_id_single_tag(ov):
    image_id = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='a')
    out = ov.store.remove(image_id)
    assert out[:2] == [{'Untagged': 'a:latest'}, {'Deleted': image_id}]
    ov.assert_empty()


def test_rmi_in_use(ov):
    image_id = ov.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='a')
    chain = ov.store.resolve(image_id).top_chain_id
    ov.snap.prepare('c' * 64, chain)
    user = lambda i: 'c' * 64 if i == image_id else None  # noqa: E731
    with pytest.raises(errors.Conflict) as ei:
        ov.store.remove('a', in_use=user)
    assert str(ei.value) == (
        'conflict: unable to remove repository reference "a" (must force) - '
        'container cccccccccccc is using its referenced image %s'
        % image_id[7:19])
    with pytest.raises(errors.Conflict) as ei:
        ov.store.remove(image_id, in_use=user)
    assert 'being used by stopped container cccccccccccc' in str(ei.value)
    running = lambda i: ('c' * 64, True)  # noqa: E731
    with pytest.raises(errors.Conflict) as ei:
        ov.store.remove(image_id, force=True, in_use=running)
    assert 'cannot be forced' in str(ei.value)
    assert ov.store.resolve('a').id == image_id
    # Forced: the image goes, the layer stays under the container.
    out = ov.store.remove('a', force=True, in_use=user)
    assert out == [{'Untagged': 'a:latest'}, {'Deleted': image_id}]
    assert ov.snap.exists(chain)
    ov.snap.remove('c' * 64)
    ov.store.cleanup()
    ov.assert_empty()


def test_rmi_missing(ov):
    with pytest.raises(errors.NoSuchImage):
        ov.store.remove('nothing')


# -- commit ----------------------------------------------------------------------------

def test_commit(env, tmp_path):
    base = env.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='base',
                                   changes=['CMD ["sh"]'])
    img = env.store.resolve(base)
    key = 'd' * 64
    env.snap.prepare(key, img.top_chain_id)
    mnt = tmp_path / 'rootfs'
    mnt.mkdir()
    env.snap.mount(key, str(mnt))
    try:
        (mnt / 'new.txt').write_text('new\n')
        (mnt / 'etc' / 'hostname').unlink()
    finally:
        env.snap.unmount(str(mnt))
    ccfg = dict(images.full_config(img.config['config']),
                Cmd=['sh', '-c', 'echo hi > /new.txt'], Hostname='d' * 12)
    new = env.store.commit(key, base, ccfg, changes=['ENV X=1'],
                           author='me', comment='msg', repo='committed',
                           tag='v1', container_id=key)
    out = env.store.resolve('committed:v1')
    assert out.id == new and out.parent == base
    assert len(out.chain_ids) == 2 and out.chain_ids[0] == img.chain_ids[0]
    cfg = out.config
    assert cfg['config']['Env'] == ['X=1']
    assert cfg['container'] == key and cfg['author'] == 'me'
    assert cfg['history'][-1]['created_by'] == 'sh -c echo hi > /new.txt'
    assert cfg['history'][-1]['comment'] == 'msg'
    info = env.store.inspect(new)
    assert info['Comment'] == 'msg' and info['Author'] == 'me'
    assert info['Parent'] == base and info['Container'] == key
    rows = env.store.history(new)
    assert [r['Id'] for r in rows] == [new, base]
    assert rows[0]['Size'] == 4
    # The new layer is a blob until something needs its snapshot: the
    # store is consistent meanwhile, and survives a restart so.
    assert out.record['layers'][-1]['lazy'] is True
    assert not env.snap.exists(out.chain_ids[-1])
    assert env.store.check() == []
    size = info['Size']
    env.open()
    assert env.store.check() == []
    out = env.store.unpack(env.store.resolve(new))
    assert env.snap.exists(out.chain_ids[-1])
    assert 'lazy' not in out.record['layers'][-1]
    assert 'lazy' not in env.open().resolve(new).record['layers'][-1]
    # The sizes known from the diff are those the unpacking measured.
    assert env.store.inspect(new)['Size'] == size
    assert env.store.history(new)[0]['Size'] == 4
    assert env.store.unpack(out) is out
    files = mounted_files(env, out, tmp_path, ['new.txt', 'etc/hostname',
                                               'etc/passwd'])
    assert files == {'new.txt': True, 'etc/hostname': False,
                     'etc/passwd': True}
    # A parent with children cannot go; untagging it by name is fine.
    env.snap.remove(key)
    with pytest.raises(errors.Conflict) as ei:
        env.store.remove(base)
    assert 'image has dependent child images' in str(ei.value)
    assert env.store.remove('base') == [{'Untagged': 'base:latest'}]
    assert env.store.list_images(all=False)[0]['Id'] == new
    assert len(env.store.list_images(all=True)) == 2
    # Removing the child prunes the untagged parent too.
    out = env.store.remove('committed:v1')
    assert {'Deleted': base} in out and {'Deleted': new} in out
    env.assert_empty()


def _committed(e, tmp_path, files, repo='lazy'):
    base = e.store.import_rootfs(io.BytesIO(rootfs_tar()), repo='base')
    img = e.store.resolve(base)
    key = 'c' * 64
    e.snap.prepare(key, img.top_chain_id)
    mnt = tmp_path / ('m-' + repo)
    mnt.mkdir()
    e.snap.mount(key, str(mnt))
    try:
        for name, data in files.items():
            (mnt / name).write_bytes(data)
    finally:
        e.snap.unmount(str(mnt))
    new = e.store.commit(key, base, images.full_config({}), repo=repo)
    e.snap.remove(key)
    return new


def test_lazy_layer_removed_before_it_was_ever_unpacked(env, tmp_path):
    new = _committed(env, tmp_path, {'a.bin': b'a' * 5000})
    env.store.remove(new)
    env.store.remove('base')
    env.assert_empty()


def test_lazy_layer_unpacks_when_the_blob_is_right_only(env, tmp_path):
    new = _committed(env, tmp_path, {'a.bin': b'a' * 5000})
    img = env.store.resolve(new)
    blob = env.content.path(img.record['layers'][-1]['digest'])
    os.chmod(blob, 0o644)
    with open(blob, 'r+b') as f:
        f.seek(1024)
        f.write(b'X')
    with pytest.raises(errors.ContentError) as ei:
        env.store.unpack(img)
    assert 'does not match its diff ID' in str(ei.value)
    # Nothing half-made stays; the record still says it is packed.
    assert not env.snap.exists(img.chain_ids[-1])
    assert env.store.resolve(new).record['layers'][-1]['lazy'] is True


def test_an_image_on_a_lazy_layer_unpacks_it(env, tmp_path):
    """Another image registered eagerly on the committed one (a build FROM
    it, a load) unpacks the shared layer; the first image's record then
    only says lazy, which unpack and check both accept."""
    new = _committed(env, tmp_path, {'b.bin': b'b' * 3000})
    img = env.store.resolve(new)
    cfg = dict(img.config)
    cfg['config'] = dict(img.config.get('config') or {}, Labels={'x': '1'})
    layers = [dict(digest=l['digest'], media_type=l['media_type'])
              for l in img.record['layers']]
    other, _ = env.store.create_image(images.dump_config(cfg), layers,
                                      repo_tags=['other:1'])
    assert env.snap.exists(img.chain_ids[-1])
    assert env.store.check() == []
    assert env.store.resolve(new).record['layers'][-1]['lazy'] is True
    again = env.store.unpack(env.store.resolve(new))
    assert 'lazy' not in again.record['layers'][-1]
    assert env.store.inspect(new)['Size'] == env.store.inspect(other)['Size']


# -- hostile archives -------------------------------------------------------------------

def _hostile_cases():
    good = rootfs_tar()
    data_escape, _ = docker_archive([good], manifest_layers=['../x/layer.tar'])
    data_abs, _ = docker_archive([good], manifest_layers=['/etc/passwd'])
    evil_layer = make_tar([('ok', b'1'), ('../../escape', b'x')])
    data_dotdot, _ = docker_archive([evil_layer])
    data_mismatch, _ = docker_archive([good], diff_ids=[sha(b'other')])
    truncated = gz(good)[:-200]
    data_trunc, _ = docker_archive([good], layer_blobs=[truncated])
    config_path_escape = make_tar([('manifest.json', json.dumps(
        [{'Config': '../../etc/passwd', 'Layers': []}]).encode())])
    link_escape = make_tar([
        ('manifest.json', json.dumps([{'Config': 'c.json',
                                       'Layers': ['l/layer.tar']}]).encode()),
        ('c.json', json.dumps({'rootfs': {'type': 'layers', 'diff_ids': [
            sha(b'x')]}}).encode()),
        ('l', None), ('l/layer.tar', '->../../../../etc/shadow')])
    two_images_second_bad = _two_images_second_bad(good)
    return [
        ('manifest_dotdot', data_escape, errors.LayerError),
        ('manifest_absolute', data_abs, errors.LayerError),
        ('layer_dotdot_entry', data_dotdot, errors.LayerError),
        ('diff_id_mismatch', data_mismatch, errors.ContentError),
        ('truncated_blob', data_trunc, errors.LayerError),
        ('config_escape', config_path_escape, errors.LayerError),
        ('symlink_escape', link_escape, errors.LayerError),
        ('not_a_tar', b'\0garbage' * 100, errors.InvalidArgument),
        ('no_manifest', make_tar([('x', b'y')]), errors.InvalidArgument),
        ('bad_json', make_tar([('manifest.json', b'{')]),
         errors.InvalidArgument),
        ('bad_tag', docker_archive([good], tags=['Bad:tag'])[0],
         errors.InvalidArgument),
        ('second_image_bad', two_images_second_bad, errors.ContentError),
    ]


def tarfile_entries(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            if m.isdir():
                yield m.name, None
            else:
                yield m.name, t.extractfile(m).read()


def _two_images_second_bad(good):
    data, _ = docker_archive([good], tags=['first:ok'])
    entries = list(tarfile_entries(data))
    manifest = json.loads(dict(entries)['manifest.json'])
    bad_cfg = json.dumps({'rootfs': {'type': 'layers',
                                     'diff_ids': [sha(b'nope')]}}).encode()
    entries.append(('bad.json', bad_cfg))
    manifest.append({'Config': 'bad.json', 'RepoTags': ['second:bad'],
                     'Layers': manifest[0]['Layers']})
    entries = [e for e in entries if e[0] != 'manifest.json']
    entries.append(('manifest.json', json.dumps(manifest).encode()))
    return make_tar(entries)


@pytest.mark.parametrize('name,data,exc', _hostile_cases(),
                         ids=[c[0] for c in _hostile_cases()])
def test_hostile_archive_leaves_nothing(ov, name, data, exc):
    with pytest.raises(exc):
        ov.store.load(io.BytesIO(data))
    if name == 'second_image_bad':
        # The first image of the archive is complete and stays.
        assert ov.store.resolve('first:ok')
        assert not ov.store.exists('second:bad')
        ov.store.remove('first:ok')
    ov.assert_empty()
    assert not os.path.exists('/escape')


# -- crashes ------------------------------------------------------------------------------

CRASH_SCRIPT = textwrap.dedent('''
    import io, os, signal, sys
    sys.path.insert(0, %(repo)r)
    from engine import content, images, snapshotters
    base, driver, point, data_path = sys.argv[1:5]
    snap = snapshotters.load(driver, os.path.join(base, 'snap'))
    cs = content.ContentStore(os.path.join(base, 'content'))
    store = images.ImageStore(os.path.join(base, 'images'), cs, snap)
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == 'before_snapshot':
        store._ensure_snapshot = die
    elif point == 'before_record':
        store._save_record = die
    elif point == 'before_refs':
        store._save_refs = die
    with open(data_path, 'rb') as f:
        store.load(f)
''')


@pytest.mark.parametrize('point', ['before_snapshot', 'before_record',
                                   'before_refs'])
def test_sigkill_during_load_leaves_no_named_partial_image(tmp_path, point):
    data, image_id = two_layer_archive()
    archive = tmp_path / 'a.tar'
    archive.write_bytes(data)
    base = tmp_path / 'store'
    script = tmp_path / 'crash.py'
    script.write_text(CRASH_SCRIPT % {'repo': REPO})
    proc = subprocess.run([sys.executable, str(script), str(base), 'overlay',
                           point, str(archive)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    e = Env(str(base), 'overlay')
    assert e.store.check() == []
    assert not e.store.exists('two:layers')
    listed = e.store.list_images(all=True)
    if point == 'before_refs':
        # Complete but nameless: exactly what Docker shows as <none>.
        assert [i['Id'] for i in listed] == [image_id]
        assert listed[0]['RepoTags'] == []
    else:
        assert listed == []
    e.store.cleanup()
    assert e.tmp_entries() == []
    assert e.store.check() == []
    if point != 'before_refs':
        e.assert_empty()
    # The store still works: load again.
    assert e.store.load(io.BytesIO(data)) == ['Loaded image: two:layers']
    assert e.store.check() == []


def test_sigkill_during_big_import(tmp_path):
    """Kill a big import at an arbitrary moment: never a named partial image."""
    big = make_tar([('bin', None), ('bin/busybox', open(BUSYBOX, 'rb').read())] +
                   [('f%03d' % i, os.urandom(1 << 20)) for i in range(64)])
    src = tmp_path / 'big.tar'
    src.write_bytes(big)
    base = tmp_path / 'store'
    script = tmp_path / 'imp.py'
    script.write_text(textwrap.dedent('''
        import os, sys
        sys.path.insert(0, %r)
        from engine import content, images, snapshotters
        base = sys.argv[1]
        snap = snapshotters.load('overlay', os.path.join(base, 'snap'))
        cs = content.ContentStore(os.path.join(base, 'content'))
        store = images.ImageStore(os.path.join(base, 'images'), cs, snap)
        print('ready', flush=True)
        with open(sys.argv[2], 'rb') as f:
            store.import_rootfs(f, repo='big')
        print('done', flush=True)
    ''' % REPO))
    proc = subprocess.Popen([sys.executable, str(script), str(base), str(src)],
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b'ready'
    # Let it get somewhere inside the import, then kill it.
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    e = Env(str(base), 'overlay')
    assert e.store.check() == []
    images_now = e.store.list_images(all=True)
    if e.store.exists('big'):
        assert e.store.resolve('big').diff_ids == [sha(big)]
    else:
        assert all(i['RepoTags'] == [] for i in images_now)
    e.store.cleanup()
    assert e.store.check() == []
    assert e.tmp_entries() == []


# -- Docker 20.10 interop ----------------------------------------------------------------

def _docker(dk, args, **kw):
    return conftest.run_docker(args, dk.url, cli=conftest.DOCKER_CLI_2010,
                               **kw)


@pytest.mark.slow
def test_docker_2010_loads_our_save(dockerd, tmp_path):
    e = Env(str(tmp_path / 'ours'), 'overlay')
    top = make_tar([('bin', None), ('bin/.wh.ls', b''), ('hello', b'hello\n')])
    data, image_id = docker_archive([rootfs_tar(), top],
                                    tags=('nd-interop/two:layers',))
    e.store.load(io.BytesIO(data))
    imported = e.store.import_rootfs(io.BytesIO(rootfs_tar()),
                                     repo='nd-interop/imported', tag='v1',
                                     changes=['CMD ["sh"]'])
    out = tmp_path / 'saved.tar'
    with open(out, 'wb') as f:
        e.store.save(['nd-interop/two:layers', 'nd-interop/imported:v1'], f)
    res = _docker(dockerd, ['load', '-i', str(out)])
    assert res.returncode == 0, res.stderr
    assert 'Loaded image: nd-interop/two:layers' in res.stdout
    for ref, want in (('nd-interop/two:layers', image_id),
                      ('nd-interop/imported:v1', imported)):
        res = _docker(dockerd, ['image', 'inspect', '-f', '{{.Id}}', ref])
        assert res.stdout.strip() == want, res.stderr
    # Docker can run what we saved: the whiteout took effect.
    res = _docker(dockerd, ['run', '--rm', '--network', 'none',
                            'nd-interop/two:layers', 'sh', '-c',
                            'cat /hello; test -e /bin/ls || echo gone'])
    assert res.returncode == 0, res.stderr
    assert res.stdout == 'hello\ngone\n'
    _docker(dockerd, ['rmi', 'nd-interop/two:layers', 'nd-interop/imported:v1'])


@pytest.mark.slow
def test_we_load_docker_2010_save(dockerd, tmp_path):
    rootfs = tmp_path / 'rootfs.tar'
    rootfs.write_bytes(rootfs_tar())
    res = _docker(dockerd, ['import', '-c', 'CMD ["sh"]', str(rootfs),
                            'nd-rev/imported:1'])
    assert res.returncode == 0, res.stderr
    name = 'nd-rev-' + os.path.basename(str(tmp_path))[-8:]
    res = _docker(dockerd, ['run', '--name', name, '--network', 'none',
                            'nd-rev/imported:1', 'sh', '-c',
                            'echo hi > /hello; rm /bin/ls'])
    assert res.returncode == 0, res.stderr
    res = _docker(dockerd, ['commit', '-m', 'msg', '-c', 'ENV A=1', name,
                            'nd-rev/committed:1'])
    assert res.returncode == 0, res.stderr
    _docker(dockerd, ['rm', '-f', name])
    ids = {}
    for ref in ('nd-rev/imported:1', 'nd-rev/committed:1'):
        ids[ref] = _docker(dockerd, ['image', 'inspect', '-f', '{{.Id}}',
                                     ref]).stdout.strip()
    saved = tmp_path / 'docker-save.tar'
    res = _docker(dockerd, ['save', '-o', str(saved), 'nd-rev/imported:1',
                            'nd-rev/committed:1'])
    assert res.returncode == 0, res.stderr
    e = Env(str(tmp_path / 'ours'), 'overlay')
    with open(saved, 'rb') as f:
        msgs = e.store.load(f)
    assert sorted(msgs) == ['Loaded image: nd-rev/committed:1',
                            'Loaded image: nd-rev/imported:1']
    for ref, want in ids.items():
        assert e.store.resolve(ref).id == want
    hist = e.store.history('nd-rev/committed:1')
    assert hist[0]['Comment'] == 'msg'
    assert hist[0]['CreatedBy'] == 'sh -c echo hi > /hello; rm /bin/ls'
    assert e.store.image_config_for_container('nd-rev/committed:1')['Env'] \
        == ['A=1']
    assert e.store.check() == []
    # And round trip: our save of Docker's images loads back into Docker.
    out = tmp_path / 'ours.tar'
    with open(out, 'wb') as f:
        e.store.save(['nd-rev/committed:1'], f)
    _docker(dockerd, ['rmi', 'nd-rev/committed:1', 'nd-rev/imported:1'])
    res = _docker(dockerd, ['load', '-i', str(out)])
    assert res.returncode == 0, res.stderr
    res = _docker(dockerd, ['image', 'inspect', '-f', '{{.Id}}',
                            'nd-rev/committed:1'])
    assert res.stdout.strip() == ids['nd-rev/committed:1']
    _docker(dockerd, ['rmi', 'nd-rev/committed:1'])


# -- more formats and concurrency --------------------------------------------------------

def test_import_zstd(ov):
    if not shutil.which('zstd'):
        pytest.skip('the zstd program is not installed')
    data = rootfs_tar()
    z = subprocess.run(['zstd', '-q', '-c'], input=data, capture_output=True,
                       check=True).stdout
    image_id = ov.store.import_rootfs(io.BytesIO(z), repo='z')
    img = ov.store.resolve(image_id)
    assert img.diff_ids == [sha(data)]
    assert img.record['layers'][0]['media_type'] == images.MEDIA_TAR_ZSTD
    # Saving decompresses: Docker 20.10 knows no zstd.
    out = io.BytesIO()
    ov.store.save(['z'], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        path = json.load(t.extractfile('manifest.json'))[0]['Layers'][0]
        assert sha(t.extractfile(path).read()) == sha(data)


def test_load_legacy_repositories_archive(ov, tmp_path):
    base_id, top_id = 'a' * 64, 'b' * 64
    top = make_tar([('hello', b'hi\n')])
    entries = [
        (base_id, None), (base_id + '/VERSION', b'1.0'),
        (base_id + '/json', json.dumps({
            'id': base_id, 'created': CREATED,
            'container_config': {'Cmd': ['/bin/sh', '-c', '#(nop) ADD x']}
        }).encode()),
        (base_id + '/layer.tar', rootfs_tar()),
        (top_id, None), (top_id + '/VERSION', b'1.0'),
        (top_id + '/json', json.dumps({
            'id': top_id, 'parent': base_id, 'created': CREATED,
            'os': 'linux', 'architecture': images.host_arch(),
            'config': {'Cmd': ['sh']},
            'container_config': {'Cmd': ['/bin/sh', '-c', 'echo hi']}
        }).encode()),
        (top_id + '/layer.tar', top),
        ('repositories', json.dumps({'legacy': {'old': top_id}}).encode())]
    assert ov.store.load(io.BytesIO(make_tar(entries))) == \
        ['Loaded image: legacy:old']
    img = ov.store.resolve('legacy:old')
    assert img.diff_ids == [sha(rootfs_tar()), sha(top)]
    assert img.config['config'] == {'Cmd': ['sh']}
    assert [r['CreatedBy'] for r in ov.store.history('legacy:old')] == [
        '/bin/sh -c echo hi', '/bin/sh -c #(nop) ADD x']
    files = mounted_files(ov, img, tmp_path, ['hello', 'bin/busybox'])
    assert files == {'hello': True, 'bin/busybox': True}


def test_concurrent_loads_and_removes(ov):
    data, image_id = two_layer_archive()
    other, other_id = docker_archive([rootfs_tar()], tags=('other:1',))
    errors_seen = []

    def work(i):
        try:
            if i % 2:
                ov.store.load(io.BytesIO(data))
            else:
                ov.store.load(io.BytesIO(other))
                ov.store.resolve('other:1')
        except Exception as e:  # noqa: BLE001 - reported below
            errors_seen.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == []
    assert {i['Id'] for i in ov.store.list_images()} == {image_id, other_id}
    # The shared base layer is one snapshot.
    assert len(list(ov.snap.list())) == 2
    assert ov.store.check() == []
    ov.store.remove('two:layers')
    ov.store.remove('other:1')
    ov.assert_empty()


def test_import_corrupt_zstd_is_refused(ov):
    if not shutil.which('zstd'):
        pytest.skip('the zstd program is not installed')
    z = subprocess.run(['zstd', '-q', '-c'], input=rootfs_tar(),
                       capture_output=True, check=True).stdout
    with pytest.raises(errors.LayerError):
        ov.store.import_rootfs(io.BytesIO(z[:len(z) // 2]), repo='z')
    ov.assert_empty()


# -- limits: decompression bombs and a full disk ----------------------------------------

_BOMBS = {}


def zero_bomb(files=1, size=200 << 20):
    """gzip of a tar of ``files`` files of zeros, ``size`` bytes in all:
    a few hundred KB that unpack to ``size``."""
    key = (files, size)
    if key not in _BOMBS:
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode='wb', mtime=0) as g:
            with tarfile.open(fileobj=g, mode='w|') as t, \
                    open('/dev/zero', 'rb') as zeros:
                for i in range(files):
                    # addfile copies exactly ti.size bytes of /dev/zero.
                    ti = tarfile.TarInfo('zeros%03d' % i)
                    ti.size = size // files
                    t.addfile(ti, zeros)
        _BOMBS[key] = out.getvalue()
    return _BOMBS[key]


def limited(e, **limits):
    """Reopen an Env's store with limits."""
    e.store = images.ImageStore(os.path.join(e.base, 'images'), e.content,
                                e.snap, **limits)
    return e.store


def test_load_of_gzip_bomb_is_refused_by_max_archive_size(ov):
    bomb = zero_bomb()
    assert len(bomb) < 1 << 20
    store = limited(ov, max_archive_size=50 << 20)
    with pytest.raises(errors.InvalidArgument) as ei:
        store.load(io.BytesIO(bomb))
    assert ei.value.status == 400
    assert 'max_archive_size' in str(ei.value)
    assert 'too large' in str(ei.value)
    ov.assert_empty()


def test_import_of_gzip_bomb_is_refused_by_max_archive_size(ov):
    store = limited(ov, max_archive_size=50 << 20)
    with pytest.raises(errors.InvalidArgument) as ei:
        store.import_rootfs(io.BytesIO(zero_bomb()), repo='bomb')
    assert 'max_archive_size' in str(ei.value)
    ov.assert_empty()


def test_gzip_bomb_layer_in_an_archive_is_refused_by_max_layer_size(ov):
    # The archive itself is small: the layer blob inside it is the bomb.
    data, _ = docker_archive([b'unused'], layer_blobs=[zero_bomb()],
                             diff_ids=[sha(b'whatever')])
    store = limited(ov, max_layer_size=50 << 20)
    with pytest.raises(errors.InvalidArgument) as ei:
        store.load(io.BytesIO(data))
    assert 'max_layer_size' in str(ei.value)
    ov.assert_empty()


def test_layer_with_too_many_entries_is_refused(ov):
    layer = make_tar([('f%03d' % i, b'x') for i in range(50)])
    store = limited(ov, max_layer_entries=20)
    with pytest.raises(errors.LayerError) as ei:
        store.import_rootfs(io.BytesIO(layer), repo='many')
    assert 'more than 20 entries' in str(ei.value)
    assert 'max_layer_entries' in str(ei.value)
    with pytest.raises(errors.LayerError):
        store.load(io.BytesIO(docker_archive([layer])[0]))
    ov.assert_empty()
    # Within the limit it loads.
    limited(ov, max_layer_entries=60).import_rootfs(io.BytesIO(layer),
                                                    repo='many')
    assert ov.store.check() == []


def test_reserve_refuses_load_and_import_with_507(ov):
    # A reserve larger than the disk: nothing may be written.
    free = os.statvfs(ov.base)
    huge = free.f_blocks * free.f_frsize * 2
    store = limited(ov, min_free_space=huge)
    for op in (lambda: store.load(io.BytesIO(two_layer_archive()[0])),
               lambda: store.import_rootfs(io.BytesIO(rootfs_tar()),
                                           repo='r')):
        with pytest.raises(content.InsufficientStorage) as ei:
            op()
        assert ei.value.status == 507
        assert 'not enough space' in str(ei.value)
        assert 'min_free_space' in str(ei.value)
    ov.assert_empty()


@pytest.fixture
def small_disk(tmp_path):
    """An Env on its own 64 MiB tmpfs, every size limit off."""
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    mnt = tmp_path / 'disk'
    mnt.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'tmpfs',
                    str(mnt)], check=True)
    try:
        e = Env(str(mnt), 'vfs')
        limited(e, max_archive_size=0, max_layer_size=0, min_free_space=0,
                min_free_percent=0)
        yield e
    finally:
        subprocess.run(['umount', '-l', str(mnt)], check=True)


def test_load_bomb_filling_the_disk_is_507_not_oserror(small_disk):
    # Unlimited sizes and no reserve: only the running free-space check
    # stands between the bomb and ENOSPC.
    with pytest.raises(content.InsufficientStorage) as ei:
        small_disk.store.load(io.BytesIO(zero_bomb()))
    assert ei.value.status == 507
    small_disk.assert_empty()
    # The disk is usable again.
    small_disk.store.load(io.BytesIO(two_layer_archive()[0]))
    assert small_disk.store.check() == []


def test_import_of_many_files_filling_the_disk_is_507(small_disk):
    # 40 files of 5 MiB: each fits the free space, their sum does not.
    with pytest.raises(content.InsufficientStorage) as ei:
        small_disk.store.import_rootfs(io.BytesIO(zero_bomb(40)),
                                       repo='bomb')
    assert 'not enough space' in str(ei.value)
    small_disk.assert_empty()


# -- blobs of loads in flight --------------------------------------------------------------

def test_undo_keeps_a_blob_the_failed_load_only_deduplicated(ov):
    # Another load in flight has stored the base layer and holds it; a
    # failing load finds it stored, so its undo must leave it alone.
    layer = sha(rootfs_tar())
    bad, _ = docker_archive([rootfs_tar(), make_tar([('x', b'1')])],
                            diff_ids=[layer, sha(b'nope')], tags=('bad:1',))
    with ov.store.lease() as other:
        got = ov.content.ingest(io.BytesIO(rootfs_tar()), lease=other)
        assert got.created and got.digest == layer
        with pytest.raises(errors.ContentError):
            ov.store.load(io.BytesIO(bad))
        assert ov.content.has(layer)
        # The other load records it.
        ov.store.load(io.BytesIO(docker_archive([rootfs_tar()],
                                                tags=('ok:1',))[0]))
    assert ov.store.check() == []
    ov.store.remove('ok:1')
    ov.assert_empty()


def test_lease_keeps_blob_from_rmi_and_gc(ov):
    bb, _ = docker_archive([rootfs_tar()], tags=('bb:1',))
    ov.store.load(io.BytesIO(bb))
    layer = sha(rootfs_tar())
    with ov.store.lease() as lease:
        got = ov.content.ingest(io.BytesIO(rootfs_tar()), lease=lease)
        assert not got.created
        ov.store.remove('bb:1')
        assert ov.content.has(layer)          # rmi left the leased blob
        ov.store.cleanup(gc_content=True)
        assert ov.content.has(layer)          # and so did the GC
    ov.store.cleanup(gc_content=True)
    ov.assert_empty()


def test_loads_sharing_a_layer_overlap_with_rmi(ov):
    """``docker load`` of an image sharing busybox's layer while busybox is
    loaded and removed over and over: every load succeeds."""
    base = rootfs_tar()
    bb, _ = docker_archive([base], tags=('busybox:latest',))
    shared = [docker_archive([base, make_tar([('n', str(i).encode())])],
                             tags=('c%d:1' % i,)) for i in range(3)]
    ov.store.load(io.BytesIO(bb))
    stop = threading.Event()
    failures = []
    removals = [0]

    def remover():
        while not stop.is_set():
            try:
                if not ov.store.exists('busybox:latest'):
                    ov.store.load(io.BytesIO(bb))
                ov.store.remove('busybox:latest')
                removals[0] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(('rmi', e))

    def loader(i):
        data, image_id = shared[i]
        for _ in range(25):
            try:
                ov.store.load(io.BytesIO(data))
                assert ov.store.resolve('c%d:1' % i).id == image_id
                ov.store.remove('c%d:1' % i)
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(('load', e))

    r = threading.Thread(target=remover)
    r.start()
    loaders = [threading.Thread(target=loader, args=(i,)) for i in range(3)]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join()
    stop.set()
    r.join()
    assert failures == []
    assert removals[0] > 0
    assert ov.store.check() == []
    if ov.store.exists('busybox:latest'):
        ov.store.remove('busybox:latest')
    ov.store.cleanup(gc_content=True)
    ov.assert_empty()
