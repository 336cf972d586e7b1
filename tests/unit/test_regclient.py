"""The registry client against an in-process fake registry.

Auth handshakes, retries, redirects, pagination, digest and size
verification, manifest negotiation and index selection, push uploads and
mounts.  The image store underneath is the real one (vfs snapshots in a
temp dir), so a pulled image is checked where it lands.
"""

import gzip
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import unittest

import ddt

from engine import content
from engine import errors
from engine import images
from engine import snapshotters
from engine.registry import auth as auth_mod
from engine.registry import pull as pull_mod
from engine.registry import tls as tls_mod
from engine import registry
from tests.unit import fakeregistry
from tests.unit.fakeregistry import sha

ARCH = images.host_arch()


def layer_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1704067200
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, mtime=0)


class RegImage(object):
    """An image as a registry holds it: gzip layers, config, manifest."""

    def __init__(self, layers, arch=ARCH, cmd=('/bin/sh',)):
        self.tars = [layer_tar(f) for f in layers]
        self.blobs = [gz(t) for t in self.tars]
        self.diff_ids = [sha(t) for t in self.tars]
        self.config = json.dumps({
            'architecture': arch, 'os': 'linux',
            'created': '2024-01-01T00:00:00Z',
            'config': {'Cmd': list(cmd)},
            'rootfs': {'type': 'layers', 'diff_ids': self.diff_ids},
        }).encode()
        self.id = sha(self.config)

    def manifest(self, media=pull_mod.MT_DOCKER_MANIFEST, sizes=None):
        return json.dumps({
            'schemaVersion': 2, 'mediaType': media,
            'config': {'mediaType': pull_mod.MT_DOCKER_CONFIG,
                       'size': len(self.config), 'digest': self.id},
            'layers': [{'mediaType': pull_mod.MT_DOCKER_LAYER,
                        'size': (sizes or {}).get(i, len(b)),
                        'digest': sha(b)}
                       for i, b in enumerate(self.blobs)],
        }).encode()

    def publish(self, reg, repo, tag, **kw):
        for b in self.blobs + [self.config]:
            reg.add_blob(repo, b)
        return reg.add_manifest(repo, tag, self.manifest(**kw),
                                pull_mod.MT_DOCKER_MANIFEST)


class RegistryTestBase(unittest.TestCase):

    auth = None

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix='regclient-')
        self.addCleanup(shutil.rmtree, self.base, ignore_errors=True)
        self.reg = fakeregistry.FakeRegistry(auth=self.auth)
        self.addCleanup(self.reg.close)
        self.store = self.make_store('one')

    def make_store(self, name):
        base = os.path.join(self.base, name)
        snap = snapshotters.load('vfs', os.path.join(base, 'snap'))
        c = content.ContentStore(os.path.join(base, 'content'))
        im = images.ImageStore(os.path.join(base, 'images'), c, snap,
                               min_free_space=0, min_free_percent=0)
        d = registry.Distribution(im, c, None, None)
        d.settings.retry_backoff = 0.01
        im.kept_blobs = d.kept_blobs
        return d

    def ref(self, repo, tag='latest'):
        return '%s/%s:%s' % (self.reg.host, repo, tag)

    def assert_nothing_pulled(self, d, ref):
        self.assertFalse(d.images.exists(ref))
        self.assertEqual([], d.images.images())
        self.assertEqual([], d.images.check())


@ddt.ddt
class TestParsing(unittest.TestCase):

    @ddt.data(
        ('Bearer realm="https://auth.example/token",service="reg",'
         'scope="repository:a/b:pull"',
         [('bearer', {'realm': 'https://auth.example/token', 'service': 'reg',
                      'scope': 'repository:a/b:pull'})]),
        ('Basic realm="Registry Realm"',
         [('basic', {'realm': 'Registry Realm'})]),
        ('Basic realm="x", Bearer realm="https://t/x",service=s',
         [('basic', {'realm': 'x'}), ('bearer', {'realm': 'https://t/x',
                                                  'service': 's'})]),
        ('Bearer realm="a\\"b"', [('bearer', {'realm': 'a"b'})]),
        ('', []),
    )
    @ddt.unpack
    def test_challenges(self, header, expected):
        self.assertEqual(expected, auth_mod.parse_challenges(header))

    @ddt.data(('localhost:5000', [], True), ('127.0.0.1:5000', [], True),
              ('127.8.9.1', [], True), ('[::1]:5000', [], True),
              ('reg.example:5000', [], False),
              ('reg.example:5000', ['reg.example:5000'], True),
              ('reg.example:5000', ['reg.example'], True),
              ('10.1.2.3:5000', ['10.0.0.0/8'], True),
              ('10.1.2.3:5000', ['192.168.0.0/16'], False))
    @ddt.unpack
    def test_insecure(self, host, conf, expected):
        self.assertEqual(expected, tls_mod.is_insecure(host, conf))

    @ddt.data('ns/UPPER:x', 'a:', 'a@sha256:abc', '', 'a:' + 'x' * 200,
              'repo@sha256:' + 'a' * 63)
    def test_bad_references(self, text):
        self.assertRaises(errors.InvalidArgument, registry.parse_reference,
                          text)

    def test_credentials_never_printed(self):
        c = auth_mod.Credentials({'username': 'u', 'password': 'hunter2'})
        self.assertNotIn('hunter2', repr(c))
        self.assertTrue(c)
        self.assertFalse(auth_mod.Credentials(None))

    def test_certs_dir(self):
        base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, base)
        d = os.path.join(base, 'certs', 'reg.example:5000')
        os.makedirs(d)
        with open(os.path.join(d, 'ca.crt'), 'w') as f:
            f.write('-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n')
        t = tls_mod.TLSSettings(os.path.join(base, 'certs'), [],
                                os.path.join(base, 'bundles'))
        [ep] = t.endpoints('reg.example:5000')
        self.assertEqual('https', ep.scheme)
        with open(ep.verify) as f:
            self.assertIn('X\n-----END CERTIFICATE', f.read())
        self.assertIsNone(ep.cert)
        with open(os.path.join(d, 'client.cert'), 'w') as f:
            f.write('c')
        self.assertRaisesRegex(errors.RegistryError, 'missing key client.key',
                               t.endpoints, 'reg.example:5000')
        with open(os.path.join(d, 'client.key'), 'w') as f:
            f.write('k')
        [ep] = t.endpoints('reg.example:5000')
        self.assertEqual((os.path.join(d, 'client.cert'),
                          os.path.join(d, 'client.key')), ep.cert)
        eps = t.endpoints('127.0.0.1:5000')
        self.assertEqual(['https', 'http'], [e.scheme for e in eps])
        self.assertEqual([False, False], [e.verify for e in eps])


@ddt.ddt
class TestPull(RegistryTestBase):

    def test_pull_by_tag_and_digest(self):
        img = RegImage([{'a.txt': b'A'}, {'b.txt': b'B'}])
        digest = img.publish(self.reg, 'ns/app', 'v1')
        msgs = []
        image_id = self.store.pull(self.ref('ns/app', 'v1'),
                                   progress=msgs.append)
        self.assertEqual(img.id, image_id)
        info = self.store.images.inspect(image_id)
        self.assertEqual(['%s/ns/app:v1' % self.reg.host], info['RepoTags'])
        self.assertEqual(['%s/ns/app@%s' % (self.reg.host, digest)],
                         info['RepoDigests'])
        self.assertEqual(img.diff_ids, info['RootFS']['Layers'])
        statuses = [m['status'] for m in msgs]
        self.assertEqual('Pulling from ns/app', statuses[0])
        self.assertIn('Digest: %s' % digest, statuses)
        self.assertEqual('Status: Downloaded newer image for %s/ns/app:v1'
                         % self.reg.host, statuses[-1])
        self.assertEqual(2, statuses.count('Pull complete'))
        # Again: nothing downloaded, up to date.
        gets = self.reg.count('GET', '/blobs/')
        msgs.clear()
        self.store.pull(self.ref('ns/app', 'v1'), progress=msgs.append)
        self.assertEqual(gets + 1, self.reg.count('GET', '/blobs/'))  # config
        self.assertEqual(2, [m['status'] for m in msgs].count('Already exists'))
        self.assertIn('Image is up to date', msgs[-1]['status'])
        # By digest into a second store: RepoDigest, no tag.
        other = self.make_store('two')
        ref = '%s/ns/app@%s' % (self.reg.host, digest)
        self.assertEqual(img.id, other.pull(ref))
        info = other.images.inspect(ref)
        self.assertEqual([], info['RepoTags'])
        self.assertEqual([ref], info['RepoDigests'])

    def test_layers_present_locally_are_not_downloaded(self):
        base = RegImage([{'base': b'base' * 100}])
        child = RegImage([{'base': b'base' * 100}, {'new': b'new'}])
        base.publish(self.reg, 'base', 'latest')
        child.publish(self.reg, 'child', 'latest')
        self.store.pull(self.ref('base'))
        before = self.reg.count('GET', '/blobs/sha256:')
        msgs = []
        self.store.pull(self.ref('child'), progress=msgs.append)
        # Only the config and the new layer travelled.
        self.assertEqual(before + 2, self.reg.count('GET', '/blobs/sha256:'))
        self.assertIn({'status': 'Already exists', 'id': sha(base.blobs[0])[7:19],
                       'progressDetail': {}}, msgs)

    def _index(self, entries):
        return json.dumps({
            'schemaVersion': 2, 'mediaType': pull_mod.MT_OCI_INDEX,
            'manifests': [{'mediaType': pull_mod.MT_DOCKER_MANIFEST,
                           'digest': sha(m), 'size': len(m),
                           'platform': p} for m, p in entries]}).encode()

    @ddt.data((None, 'host'), ('linux/riscv64', 'other'),
              ('linux/arm/v7', 'arm'))
    @ddt.unpack
    def test_index_selects_platform(self, platform, which):
        host = RegImage([{'h': b'host'}])
        other = RegImage([{'o': b'other'}], arch='riscv64')
        arm = RegImage([{'a': b'arm'}], arch='arm')
        entries = []
        for img, plat in ((other, {'os': 'linux', 'architecture': 'riscv64'}),
                          (arm, {'os': 'linux', 'architecture': 'arm',
                                 'variant': 'v7'}),
                          (host, {'os': 'linux', 'architecture': ARCH})):
            img.publish(self.reg, 'multi', 'x-' + img.id[7:15])
            entries.append((img.manifest(), plat))
        index = self._index(entries)
        idx_digest = self.reg.add_manifest('multi', 'latest', index,
                                           pull_mod.MT_OCI_INDEX)
        image_id = self.store.pull(self.ref('multi'), platform=platform)
        want = {'host': host, 'other': other, 'arm': arm}[which]
        self.assertEqual(want.id, image_id)
        self.assertEqual(['%s/multi@%s' % (self.reg.host, idx_digest)],
                         self.store.images.inspect(image_id)['RepoDigests'])

    def test_index_without_the_platform(self):
        other = RegImage([{'o': b'other'}], arch='riscv64')
        other.publish(self.reg, 'multi', 'o')
        self.reg.add_manifest('multi', 'latest', self._index(
            [(other.manifest(), {'os': 'linux', 'architecture': 'riscv64'})]),
            pull_mod.MT_OCI_INDEX)
        with self.assertRaisesRegex(errors.NotFound, 'no matching manifest '
                                    'for linux/s390x in the manifest list'):
            self.store.pull(self.ref('multi'), platform='linux/s390x')
        self.assert_nothing_pulled(self.store, self.ref('multi'))

    def test_single_image_of_another_platform(self):
        img = RegImage([{'o': b'other'}], arch='riscv64')
        img.publish(self.reg, 'single', 'latest')
        with self.assertRaisesRegex(errors.NotFound, 'does not match the '
                                    'specified platform: wanted linux/%s, '
                                    'actual: linux/riscv64' % ARCH):
            self.store.pull(self.ref('single'), platform='linux/' + ARCH)
        self.assert_nothing_pulled(self.store, self.ref('single'))
        self.assertEqual(img.id, self.store.pull(self.ref('single'),
                                                 platform='linux/riscv64'))

    def test_oci_manifest(self):
        img = RegImage([{'f': b'oci'}])
        img.publish(self.reg, 'oci', 'latest', media=pull_mod.MT_OCI_MANIFEST)
        self.reg.manifests[('oci', 'latest')] = (
            img.manifest(media=pull_mod.MT_OCI_MANIFEST),
            pull_mod.MT_OCI_MANIFEST)
        self.assertEqual(img.id, self.store.pull(self.ref('oci')))

    def test_schema1_refused(self):
        self.reg.add_manifest('old', 'latest', json.dumps(
            {'schemaVersion': 1, 'name': 'old', 'fsLayers': []}).encode(),
            pull_mod.MT_SCHEMA1[1])
        with self.assertRaisesRegex(errors.RegistryError, 'schema 1'):
            self.store.pull(self.ref('old'))

    def test_missing_tag(self):
        with self.assertRaisesRegex(errors.NotFound, 'manifest for %s/nope:'
                                    'latest not found: manifest unknown'
                                    % self.reg.host):
            self.store.pull(self.ref('nope'))

    def _lying(self, how):
        img = RegImage([{'a': b'a' * 1000}, {'b': b'b' * 1000}])
        second = sha(img.blobs[1])
        if how == 'digest':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.lie[second] = gz(b'evil' * 10)[:len(img.blobs[1])]
            self.reg.lie[second] += b'\0' * (len(img.blobs[1]) -
                                              len(self.reg.lie[second]))
            return 'digest mismatch for layer %s from %s/liar: got sha256:' % (
                second, self.reg.host)
        if how == 'short':
            img.publish(self.reg, 'liar', 'latest',
                        sizes={1: len(img.blobs[1]) + 10})
            return 'size mismatch for blob %s' % second
        if how == 'long':
            img.publish(self.reg, 'liar', 'latest',
                        sizes={1: len(img.blobs[1]) - 10})
            return 'size mismatch for blob %s' % second
        if how == 'missing':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.repo_blobs['liar'].discard(second)
            return 'references blob %s, which the registry' % second
        if how == 'huge':
            self.reg.add_manifest('liar', 'latest', b' ' * (5 << 20),
                                  pull_mod.MT_DOCKER_MANIFEST)
            return 'larger than the limit|more than the limit'
        if how == 'garbage':
            self.reg.add_manifest('liar', 'latest', b'{"schemaVer',
                                  pull_mod.MT_DOCKER_MANIFEST)
            return 'not valid JSON'
        if how == 'loop':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.loop.add(second)
            return 'too many redirects'
        if how == 'truncated':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.truncate[second] = 100
            return 'downloading layer %s from %s/liar failed' % (
                second, self.reg.host)
        if how == 'always500':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.fail[('GET', '/blobs/' + second)] = [500] * 100
            return 'unavailable: boom'
        if how == 'bad-scheme':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.redirect_to = 'ftp://%s/x' % self.reg.host
            self.reg.redirect.add(second)
            return 'InvalidSchema'
        if how == 'too-big':
            img.publish(self.reg, 'liar', 'latest', sizes={1: 1 << 40})
            self.store.images.max_layer_size = 1 << 30
            return 'more than the limit of 1073741824 bytes'
        if how == 'bad-config':
            img.publish(self.reg, 'liar', 'latest')
            self.reg.lie[img.id] = img.config.replace(b'linux', b'LINUX')
            return 'digest mismatch for config'
        raise AssertionError(how)

    @ddt.data('digest', 'short', 'long', 'missing', 'huge', 'garbage', 'loop',
              'truncated', 'always500', 'bad-config', 'bad-scheme', 'too-big')
    def test_lying_registry(self, how):
        message = self._lying(how)
        with self.assertRaisesRegex(errors.EngineError, message) as cm:
            self.store.pull(self.ref('liar'))
        self.assertIsInstance(cm.exception, errors.RegistryError)
        self.assert_nothing_pulled(self.store, self.ref('liar'))
        for d in self.reg.lie.values():
            self.assertFalse(self.store.content.has(sha(d)))
        self.assertEqual([], os.listdir(self.store.content.ingest_dir))

    def test_layer_not_matching_the_config(self):
        img = RegImage([{'a': b'one'}, {'b': b'two'}])
        img.diff_ids.reverse()
        img.config = img.config.replace(img.diff_ids[1].encode(), b'X') \
            .replace(img.diff_ids[0].encode(), img.diff_ids[1].encode()) \
            .replace(b'X', img.diff_ids[0].encode())
        img.id = sha(img.config)
        img.publish(self.reg, 'mixed', 'latest')
        with self.assertRaisesRegex(errors.RegistryError, 'does not match '
                                    'its diff ID'):
            self.store.pull(self.ref('mixed'))
        self.assert_nothing_pulled(self.store, self.ref('mixed'))
        for b in img.blobs:
            self.assertFalse(self.store.content.has(sha(b)))

    @unittest.skipUnless(shutil.which('zstd'), 'needs the zstd program')
    def test_zstd_and_plain_layers(self):
        import subprocess
        img = RegImage([{'z': b'zstd' * 100}, {'p': b'plain'}])
        img.blobs = [subprocess.run(['zstd', '-q', '-c'], input=img.tars[0],
                                    capture_output=True, check=True).stdout,
                     img.tars[1]]
        manifest = json.loads(img.manifest(media=pull_mod.MT_OCI_MANIFEST))
        manifest['layers'][0]['mediaType'] = images.MEDIA_TAR_ZSTD
        manifest['layers'][1]['mediaType'] = images.MEDIA_TAR
        for b in img.blobs + [img.config]:
            self.reg.add_blob('zst', b)
        self.reg.add_manifest('zst', 'latest', json.dumps(manifest).encode(),
                              pull_mod.MT_OCI_MANIFEST)
        self.assertEqual(img.id, self.store.pull(self.ref('zst')))
        self.assertEqual(img.diff_ids, self.store.images.inspect(
            img.id)['RootFS']['Layers'])

    def test_transient_failures_are_retried(self):
        img = RegImage([{'a': b'a' * 5000}])
        img.publish(self.reg, 'flaky', 'latest')
        layer = sha(img.blobs[0])
        self.reg.fail[('GET', '/manifests/')] = [503]
        self.reg.fail[('GET', '/blobs/' + layer)] = [500, 502]
        self.reg.truncate[layer] = 1
        self.assertEqual(img.id, self.store.pull(self.ref('flaky')))
        self.assertEqual(4, self.reg.count('GET', '/blobs/' + layer))

    def test_redirected_blob(self):
        img = RegImage([{'a': b'redirected'}])
        img.publish(self.reg, 'redir', 'latest')
        self.reg.redirect.add(sha(img.blobs[0]))
        self.assertEqual(img.id, self.store.pull(self.ref('redir')))
        self.assertEqual(1, self.reg.count('GET', '^/storage/'))

    def test_interrupted_pull_reuses_finished_layers(self):
        img = RegImage([{'a': b'a' * 3000}, {'b': b'b' * 3000}])
        img.publish(self.reg, 'half', 'latest')
        first, second = (sha(b) for b in img.blobs)
        self.reg.fail[('GET', '/blobs/' + second)] = [500] * 4
        self.store.settings.max_concurrent_downloads = 1
        self.assertRaises(errors.RegistryError, self.store.pull,
                          self.ref('half'))
        self.assert_nothing_pulled(self.store, self.ref('half'))
        # The finished layer is kept, and survives the start-up GC.
        self.assertTrue(self.store.content.has(first))
        self.store.images.cleanup()
        self.assertTrue(self.store.content.has(first))
        gets = self.reg.count('GET', '/blobs/' + first)
        self.assertEqual(img.id, self.store.pull(self.ref('half')))
        self.assertEqual(gets, self.reg.count('GET', '/blobs/' + first))
        self.assertEqual([], self.store.images.check())


class TestBasicAuth(RegistryTestBase):
    auth = 'basic'

    def test_basic(self):
        img = RegImage([{'a': b'basic'}])
        img.publish(self.reg, 'priv', 'latest')
        with self.assertRaisesRegex(errors.NotFound, "pull access denied for "
                                    "%s/priv, repository does not exist or "
                                    "may require 'docker login'"
                                    % self.reg.host):
            self.store.pull(self.ref('priv'))
        with self.assertLogs('engine', logging.DEBUG) as logs:
            logging.getLogger('engine.registry').debug('start')
            with self.assertRaises(errors.NotFound) as cm:
                self.store.pull(self.ref('priv'), auth={
                    'username': 'alice', 'password': 'wrong-pw'})
        self.assertNotIn('wrong-pw', str(cm.exception))
        self.assertNotIn('wrong-pw', '\n'.join(logs.output))
        self.assertEqual(img.id, self.store.pull(self.ref('priv'), auth={
            'username': 'alice', 'password': 'secret-pw'}))

    def test_login(self):
        self.assertEqual({'Status': 'Login Succeeded', 'IdentityToken': ''},
                         self.store.login(self.reg.host, {
                             'username': 'alice', 'password': 'secret-pw'}))
        with self.assertRaisesRegex(errors.Unauthorized, 'login attempt to '
                                    'http://%s/v2/ failed with status: 401'
                                    % self.reg.host) as cm:
            self.store.login('http://%s/' % self.reg.host,
                             {'username': 'alice', 'password': 'nope-pw'})
        self.assertNotIn('nope-pw', str(cm.exception))


class TestBearerAuth(RegistryTestBase):
    auth = 'bearer'

    def test_anonymous_pull_token_cached(self):
        img = RegImage([{'a': b'one'}, {'b': b'two'}])
        img.publish(self.reg, 'pub', 'latest')
        self.assertEqual(img.id, self.store.pull(self.ref('pub')))
        # One token for the repository's pull scope, reused by every request.
        self.assertEqual(['repository:pub:pull'], self.reg.token_requests)

    def test_push_needs_credentials(self):
        self._local_image('pushme')
        with self.assertRaisesRegex(errors.Unauthorized, 'token server'):
            self.store.push(self.ref('pushme'))
        digest = self.store.push(self.ref('pushme'), auth={
            'username': 'alice', 'password': 'secret-pw'})
        self.assertIn(('pushme', digest), self.reg.manifests)
        self.assertIn('repository:pushme:pull,push', self.reg.token_requests)

    def test_login(self):
        self.store.login(self.reg.host, {'username': 'alice',
                                         'password': 'secret-pw'})
        self.assertRaises(errors.Unauthorized, self.store.login,
                          self.reg.host, {'username': 'alice',
                                          'password': 'bad'})

    def test_identity_and_registry_tokens(self):
        img = RegImage([{'a': b'tokens'}])
        img.publish(self.reg, 'tok', 'latest')
        self.assertEqual(img.id, self.store.pull(self.ref('tok'), auth={
            'identitytoken': 'refresh-ok'}))
        self.assertRaisesRegex(errors.NotFound, 'pull access denied',
                               self.make_store('x').pull, self.ref('tok'),
                               auth={'identitytoken': 'stale'})
        # A registry token is sent as it is, without any token request.
        asked = len(self.reg.token_requests)
        self.assertEqual(img.id, self.make_store('y').pull(
            self.ref('tok'), auth={'registrytoken': 'tok:repository:tok:pull'}))
        self.assertEqual(asked, len(self.reg.token_requests))

    def _local_image(self, repo):
        im = self.store.images
        tar = layer_tar({'local.txt': b'made here' * 100})
        with im.lease() as lease:
            layer, new = im._ingest_layer_blob(io.BytesIO(tar), lease=lease)
            cfg = json.dumps({'architecture': ARCH, 'os': 'linux',
                              'rootfs': {'type': 'layers',
                                         'diff_ids': [layer['diff_id']]}})
            return im.create_image(cfg.encode(), [layer],
                                   repo_tags=[self.ref(repo)],
                                   new_blobs=new, lease=lease)[0]


@ddt.ddt
class TestPush(RegistryTestBase):

    def local_image(self, files_list, tag):
        im = self.store.images
        layers = []
        with im.lease() as lease:
            for files in files_list:
                layer, _new = im._ingest_layer_blob(
                    io.BytesIO(layer_tar(files)), lease=lease)
                layers.append(layer)
            cfg = json.dumps({'architecture': ARCH, 'os': 'linux',
                              'rootfs': {'type': 'layers', 'diff_ids': [
                                  l['diff_id'] for l in layers]}}).encode()
            return im.create_image(cfg, layers, repo_tags=[tag],
                                   lease=lease)[0]

    @ddt.data((0, True), (0, False), (1000, True), (1000, False))
    @ddt.unpack
    def test_push_then_pull_elsewhere(self, chunk, relative):
        self.reg.relative_location = relative
        self.store.settings.upload_chunk_size = chunk
        big = os.urandom(5000)
        image_id = self.local_image([{'big': big}, {'small': b'x'}],
                                    self.ref('pushed'))
        msgs = []
        digest = self.store.push(self.ref('pushed'), progress=msgs.append)
        self.assertEqual({'Tag': 'latest', 'Digest': digest,
                          'Size': len(self.reg.manifests[('pushed', digest)][0])},
                         msgs[-1]['aux'])
        self.assertEqual(2, [m['status'] for m in msgs].count('Pushed'))
        patches = self.reg.count('PATCH', '/blobs/uploads/')
        self.assertEqual(bool(chunk), patches >= 5)
        sent = self.store.last_push_bytes
        manifest = json.loads(self.reg.manifests[('pushed', 'latest')][0])
        self.assertEqual(pull_mod.MT_DOCKER_MANIFEST, manifest['mediaType'])
        self.assertEqual(sent, sum(l['size'] for l in manifest['layers']) +
                         manifest['config']['size'] +
                         len(self.reg.manifests[('pushed', 'latest')][0]))
        self.assertIn('%s/pushed@%s' % (self.reg.host, digest),
                      self.store.images.inspect(image_id)['RepoDigests'])
        other = self.make_store('two')
        self.assertEqual(image_id, other.pull(self.ref('pushed')))
        # Pushed again: HEAD finds every blob (same deterministic gzip).
        msgs.clear()
        self.assertEqual(digest, self.store.push(self.ref('pushed'),
                                                 progress=msgs.append))
        self.assertEqual(2, [m['status'] for m in msgs].count(
            'Layer already exists'))
        self.assertEqual(len(self.reg.manifests[('pushed', 'latest')][0]),
                         self.store.last_push_bytes)

    @ddt.data(True, False)
    def test_compression_is_deterministic_and_kept(self, anonymous_mounts):
        self.reg.anonymous_mounts = anonymous_mounts
        self.local_image([{'f': b'same' * 300}], self.ref('a'))
        d1 = self.store.push(self.ref('a'))
        blob = json.loads(self.reg.manifests[('a', 'latest')][0])['layers'][0]
        # A layer never pushed anywhere: no HEAD for it (as Docker).
        self.assertEqual(0, self.reg.count('HEAD', '/blobs/' + blob['digest']))
        other = self.make_store('two')
        im = other.images
        with im.lease() as lease:
            layer, _ = im._ingest_layer_blob(io.BytesIO(layer_tar(
                {'f': b'same' * 300})), lease=lease)
            cfg = self.store.content.read(self.store.images.resolve(
                self.ref('a')).id)
            im.create_image(cfg, [layer], repo_tags=[self.ref('a', 'again')],
                            lease=lease)
        # Another engine compresses the same layer to the same blob: a
        # registry that mounts without ``from`` (OCI 1.1) says it has it,
        # only the manifest travels; one that cannot takes it again.
        self.assertEqual(d1, other.push(self.ref('a', 'again')))
        if anonymous_mounts:
            self.assertEqual(2, self.reg.count('PUT', '/blobs/uploads/'))
            self.assertEqual(len(self.reg.manifests[('a', 'again')][0]),
                             other.last_push_bytes)
        else:
            # (The config too: this engine never pushed that image.)
            manifest = json.loads(self.reg.manifests[('a', 'again')][0])
            self.assertEqual(4, self.reg.count('PUT', '/blobs/uploads/'))
            self.assertEqual(blob['size'] + manifest['config']['size'] +
                             len(self.reg.manifests[('a', 'again')][0]),
                             other.last_push_bytes)
        # The compressed blob survives the GC while its layer is used.
        self.store.images.cleanup()
        self.assertTrue(self.store.content.has(blob['digest']))

    def test_only_new_layers_travel_and_mount(self):
        base = {'base': os.urandom(20000)}
        self.local_image([base], self.ref('base'))
        self.store.push(self.ref('base'))
        base_bytes = self.store.last_push_bytes
        self.local_image([base, {'new': b'new'}], self.ref('child'))
        msgs = []
        self.store.push(self.ref('child'), progress=msgs.append)
        statuses = [m['status'] for m in msgs]
        self.assertIn('Mounted from base', statuses)
        self.assertEqual(1, statuses.count('Pushed'))
        manifest = json.loads(self.reg.manifests[('child', 'latest')][0])
        self.assertEqual(manifest['layers'][1]['size'] +
                         manifest['config']['size'] +
                         len(self.reg.manifests[('child', 'latest')][0]),
                         self.store.last_push_bytes)
        self.assertLess(self.store.last_push_bytes, base_bytes)

    def test_incompressible_layer_travels_as_the_plain_tar(self):
        data = os.urandom(300000)
        image_id = self.local_image([{'random.bin': data}, {'small': b'x' * 999}],
                                    self.ref('rnd'))
        layers = self.store.images.resolve(self.ref('rnd')).record['layers']
        blobs_before = set(self.store.content.list())
        digest = self.store.push(self.ref('rnd'))
        manifest = json.loads(self.reg.manifests[('rnd', 'latest')][0])
        # The random layer is its own blob (digest = diff ID); the other
        # one compresses, so it goes as gzip.
        self.assertEqual([pull_mod.MT_DOCKER_LAYER_TAR, pull_mod.MT_DOCKER_LAYER],
                         [l['mediaType'] for l in manifest['layers']])
        self.assertEqual(layers[0]['diff_id'], manifest['layers'][0]['digest'])
        self.assertEqual(layers[0]['digest'], manifest['layers'][0]['digest'])
        # No second copy of it stored: only the gzip of the small layer
        # (and the manifest).
        self.assertEqual({manifest['layers'][1]['digest'], digest},
                         set(self.store.content.list()) - blobs_before)
        other = self.make_store('two')
        self.assertEqual(image_id, other.pull(self.ref('rnd')))
        # Pushed again, the registry has it: only the manifest travels.
        self.store.push(self.ref('rnd'))
        self.assertEqual(len(self.reg.manifests[('rnd', 'latest')][0]),
                         self.store.last_push_bytes)

    def test_incompressible_layer_as_gzip_stored_blocks(self):
        self.store.settings.incompressible_layers = 'gzip'
        data = os.urandom(300000)
        self.local_image([{'random.bin': data}], self.ref('rndgz'))
        self.store.push(self.ref('rndgz'))
        layer = json.loads(self.reg.manifests[('rndgz', 'latest')][0])['layers'][0]
        self.assertEqual(pull_mod.MT_DOCKER_LAYER, layer['mediaType'])
        blob = self.reg.blobs[layer['digest']]
        tar = gzip.decompress(blob)
        self.assertIn(data, tar)
        # Stored blocks: a few bytes of framing per 64 KiB over the tar.
        self.assertLess(len(blob), len(tar) + 64)

    def test_operations_share_a_pool_but_never_cookies(self):
        self.reg.set_cookie = 'sid=user-one; Path=/'
        self.local_image([{'f': b'one' * 100}], self.ref('c1'))
        self.store.push(self.ref('c1'))
        self.store.push(self.ref('c1'))
        self.assertEqual(self.store.images.resolve(self.ref('c1')).id,
                         self.make_store('two').pull(self.ref('c1')))
        self.assertEqual([], self.reg.cookies_seen)
        creds = auth_mod.Credentials()
        one = self.store.client(self.reg.host, creds)
        self.assertIs(one.session, self.store.client(self.reg.host, creds).session)
        self.assertIsNot(one.session, self.store.client('other.example:5000', creds).session)

    def test_pulled_layers_keep_their_blobs(self):
        img = RegImage([{'a': b'pulled' * 500}, {'b': b'top'}])
        img.publish(self.reg, 'src', 'latest')
        self.store.pull(self.ref('src'))
        self.store.images.tag(self.ref('src'), '%s/dst' % self.reg.host,
                              'copy')
        msgs = []
        self.store.push(self.ref('dst', 'copy'), progress=msgs.append)
        statuses = [m['status'] for m in msgs]
        self.assertEqual(2, statuses.count('Mounted from src'))
        manifest = json.loads(self.reg.manifests[('dst', 'copy')][0])
        self.assertEqual([sha(b) for b in img.blobs],
                         [l['digest'] for l in manifest['layers']])
        self.assertEqual(0, self.reg.count('PATCH', '/uploads/'))
        # Only the config (no mount for it) and the manifest travelled.
        self.assertEqual(len(img.config) + len(
            self.reg.manifests[('dst', 'copy')][0]),
            self.store.last_push_bytes)

    def test_push_missing_image(self):
        with self.assertRaisesRegex(errors.NotFound, 'No such image'):
            self.store.push(self.ref('nothing'))

    def test_tags_and_search_paginate(self):
        img = RegImage([{'a': b'x'}])
        for repo in ('team/app', 'team/db', 'other/app', 'zzz'):
            for tag in ('v1', 'v2', 'v3'):
                img.publish(self.reg, repo, tag)
        self.assertEqual(['v1', 'v2', 'v3'], self.store.list_tags(
            '%s/team/app' % self.reg.host))
        found = self.store.search('%s/app' % self.reg.host)
        self.assertEqual(['%s/other/app' % self.reg.host,
                          '%s/team/app' % self.reg.host],
                         [r['name'] for r in found])
        self.assertEqual('tags: v1, v2, v3', found[0]['description'])
        self.assertEqual(1, len(self.store.search('%s/' % self.reg.host,
                                                  limit=1)))
        self.assertGreaterEqual(self.reg.count('GET', '/v2/_catalog'), 3)
        for bad in ('app', 'team/app'):
            self.assertRaisesRegex(errors.InvalidArgument, 'names no private '
                                   'registry', self.store.search, bad)
        self.assertRaises(errors.InvalidArgument, self.store.search,
                          self.reg.host + '/x', limit=101)
