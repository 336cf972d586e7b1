"""The registry section of benchmarks/run.py: push and pull through one
local registry (Debian's docker-registry, CNCF distribution 2.8), our engine
next to Docker 20.10.

f. push of a 50 MiB image (busybox + a 50 MiB layer of random bytes),
   loaded from the same archive into both daemons, to a registry with
   fresh storage (so every blob really travels); every run has a new
   random layer, so no daemon finds a compressed copy of it from an
   earlier run;
g. pull of the same image, as skopeo pushed it from the archive (so both
   daemons download the very same blobs, which neither compressed itself),
   after removing it locally (busybox stays: its layer "Already exists";
   the 50 MiB layer is downloaded, verified and unpacked);
h. a snapshot: a container of that image writes 5 MiB of random bytes and
   is committed; with the base already in the registry, the snapshot's push
   must upload at most 1.05x (compressed new layer + config + manifest).
   Bytes are counted on the wire by a recording TCP proxy in front of the
   registry (tests/registries.RecordingProxy), request headers included.

Runs alternate between the daemons; each run gets a new registry (not
timed), so neither side finds blobs the other (or an earlier run) pushed.
"""

import io
import json
import os
import random
import shutil
import tarfile
import time
import urllib.parse

from tests import daemons
from tests import registries as regs

API = '/v1.41'
BIG = 50 * 1024 * 1024
SNAP = 5 * 1024 * 1024
BIG_TAG = 'bench/big:latest'

TARGETS = {
    'registry_push_50mib': ('ratio_max', 1.0),
    'registry_pull_50mib': ('ratio_max', 1.0),
    'snapshot_push_bytes': ('bytes_ratio_max', 1.05),
}


def _random_bytes(n, seed):
    # Incompressible and the same for both daemons (and every run).
    return random.Random(seed).randbytes(n)


def build_big_archive(work, tag=BIG_TAG, seed=50):
    """A ``docker save`` archive: busybox (tools/mkimage.py) + one layer
    holding /data.bin of 50 MiB of random bytes (from ``seed``)."""
    mk = regs._load_mkimage()
    base = mk.build_rootfs_tar()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
        data = _random_bytes(BIG, seed)
        ti = tarfile.TarInfo('data.bin')
        ti.size, ti.mode, ti.mtime = len(data), 0o644, mk.EPOCH
        tar.addfile(ti, io.BytesIO(data))
    top = buf.getvalue()
    layers = [base, top]
    diff_ids = [regs.sha256_digest(layer) for layer in layers]
    config = {
        'architecture': mk.host_arch(), 'os': 'linux', 'created': mk.CREATED,
        'config': {'Env': [mk.PATH_ENV], 'Cmd': ['sh']},
        'rootfs': {'type': 'layers', 'diff_ids': diff_ids},
        'history': [{'created': mk.CREATED, 'created_by': 'busybox'},
                    {'created': mk.CREATED,
                     'created_by': '50 MiB of random bytes, seed %d' % seed}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(',', ':')).encode()
    image_id = regs.sha256_digest(config_bytes).split(':')[1]
    members = []
    layer_paths = []
    for i, layer in enumerate(layers):
        d = regs.sha256_digest(('%d %s' % (i, diff_ids[i])).encode()).split(':')[1]
        members += [(d + '/VERSION', b'1.0'), (d + '/json', b'{}'),
                    (d + '/layer.tar', layer)]
        layer_paths.append(d + '/layer.tar')
    repo, _, tagname = tag.rpartition(':')
    members += [(image_id + '.json', config_bytes),
                ('manifest.json', json.dumps([{
                    'Config': image_id + '.json', 'RepoTags': [tag],
                    'Layers': layer_paths}]).encode())]
    path = os.path.join(work, 'big-%d.tar' % seed)
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, mk.EPOCH
            tar.addfile(ti, io.BytesIO(data))
    return path, 'sha256:' + image_id


def _ok(res, what, name):
    if not res.ok:
        raise RuntimeError('%s %s failed: %s' % (name, what, res.error))
    return res


def _delete_image(target, ref):
    daemons.api(target.sock, 'DELETE',
                API + '/images/%s?force=1' % urllib.parse.quote(ref, safe=''),
                timeout=300)


def _tag(target, src, ref):
    repo, _, tag = ref.rpartition(':')
    status, _, body = daemons.api(
        target.sock, 'POST', API + '/images/%s/tag?%s' % (
            urllib.parse.quote(src, safe=''),
            urllib.parse.urlencode({'repo': repo, 'tag': tag})), timeout=60)
    if status != 201:
        raise daemons.APIError(status, body, 'POST', 'tag')


class RegistryBench:
    """Run f, g and h for every target; ``bench`` is run.Bench."""

    def __init__(self, bench, runs, summary):
        self.bench = bench
        self.summary = summary
        self.runs = runs
        self.work = os.path.join(bench.work, 'registry')
        os.makedirs(self.work, exist_ok=True)
        self.count = 0

    def new_registry(self):
        self.count += 1
        reg = regs.DockerRegistry(os.path.join(self.work, 'r%d' % self.count),
                                  proxy=True)
        return reg.start()

    def drop_registry(self, reg):
        reg.stop()
        shutil.rmtree(reg.base, ignore_errors=True)

    def cycle(self, target, seed):
        """One push and one pull of a 50 MiB image: (push s, pull s,
        bytes uploaded, bytes downloaded)."""
        archive, image_id = build_big_archive(self.work, seed=seed)
        reg = self.new_registry()
        try:
            src = '%s/bench/pull:src' % reg.host
            regs.skopeo('copy', '--dest-tls-verify=false',
                        'docker-archive:%s' % archive, 'docker://' + src,
                        timeout=600)
            _delete_image(target, BIG_TAG)
            target.d.load(archive)
            ref = '%s/bench/big:run' % reg.host
            _tag(target, BIG_TAG, ref)
            reg.proxy.reset()
            t0 = time.perf_counter()
            _ok(regs.daemon_push(target.d, ref, timeout=600), 'push', target.name)
            push_s = time.perf_counter() - t0
            up = reg.proxy.upload_bytes
            _delete_image(target, ref)
            _delete_image(target, BIG_TAG)
            reg.proxy.reset()
            t0 = time.perf_counter()
            _ok(regs.daemon_pull(target.d, src, timeout=600), 'pull', target.name)
            pull_s = time.perf_counter() - t0
            down = reg.proxy.download_bytes
            status, data = target.d.api_json('GET', API + '/images/%s/json'
                                             % urllib.parse.quote(src, safe=''))
            if status != 200 or data['Id'] != image_id:
                raise RuntimeError('%s: pulled image is %r, expected %s' % (
                    target.name, data and data.get('Id'), image_id))
            _delete_image(target, src)
            return push_s, pull_s, up, down
        finally:
            self.drop_registry(reg)
            try:
                os.unlink(archive)
            except OSError:
                pass

    def snapshot(self, target, archive):
        """Base in the registry, then push a committed 5 MiB change."""
        reg = self.new_registry()
        cid = None
        try:
            _delete_image(target, BIG_TAG)
            target.d.load(archive)
            base_ref = '%s/bench/base:v1' % reg.host
            _tag(target, BIG_TAG, base_ref)
            _ok(regs.daemon_push(target.d, base_ref, timeout=600), 'base push',
                target.name)
            status, _, body = daemons.api(
                target.sock, 'POST', API + '/containers/create',
                {'Image': BIG_TAG, 'Cmd': ['sh', '-c', 'head -c %d /dev/urandom '
                                           '> /snap.bin' % SNAP],
                 'HostConfig': {'NetworkMode': 'none'}}, timeout=120)
            if status != 201:
                raise daemons.APIError(status, body, 'POST', 'create')
            cid = json.loads(body)['Id']
            daemons.api(target.sock, 'POST', API + '/containers/%s/start' % cid,
                        expect=204, timeout=120)
            daemons.api(target.sock, 'POST', API + '/containers/%s/wait' % cid,
                        expect=200, timeout=120)
            snap_ref = '%s/bench/app:snap' % reg.host
            daemons.api(target.sock, 'POST', API + '/commit?' + urllib.parse.urlencode(
                {'container': cid, 'repo': snap_ref.rpartition(':')[0],
                 'tag': 'snap'}), body={}, expect=201, timeout=300)
            before = reg.storage_bytes()
            reg.proxy.reset()
            t0 = time.perf_counter()
            res = _ok(regs.daemon_push(target.d, snap_ref, timeout=600),
                      'snapshot push', target.name)
            push_s = time.perf_counter() - t0
            uploaded = reg.proxy.upload_bytes
            stored = reg.storage_bytes() - before
            manifest, _ = reg.manifest('bench/app', 'snap')
            raw_manifest = reg.request('GET', '/v2/bench/app/manifests/snap',
                                       headers={'Accept': regs.MANIFEST_V2})[2]
            new_layer = manifest['layers'][-1]['size']
            expected = new_layer + manifest['config']['size'] + len(raw_manifest)
            return {'push_s': push_s, 'uploaded_bytes': uploaded,
                    'stored_bytes': stored, 'new_layer_bytes': new_layer,
                    'config_bytes': manifest['config']['size'],
                    'manifest_bytes': len(raw_manifest),
                    'expected_bytes': expected,
                    'uploaded_ratio': uploaded / expected,
                    'layers': len(manifest['layers']),
                    'base_statuses': sorted({m.get('status') for m in res.messages
                                             if m.get('status') in (
                                                 'Layer already exists',
                                                 'Mounted from bench/base')})}
        finally:
            if cid:
                daemons.api(target.sock, 'DELETE',
                            API + '/containers/%s?force=1' % cid, timeout=60)
            for ref in ('%s/bench/app:snap' % reg.host,
                        '%s/bench/base:v1' % reg.host):
                _delete_image(target, ref)
            self.drop_registry(reg)

    def run(self):
        b = self.bench
        log = b.log
        log('f/g. push and pull of a 50 MiB image through one local registry, '
            '%d runs each, alternating' % self.runs)
        samples = {name: {'push': [], 'pull': [], 'up': [], 'down': []}
                   for name in b.targets}
        failed = set()
        for i in range(self.runs):
            for name, target in b.targets.items():
                if name in failed:
                    continue
                try:
                    # the same seed for both daemons in a run
                    push_s, pull_s, up, down = self.cycle(target, 1000 + i)
                except Exception as exc:
                    failed.add(name)
                    b.error('registry push/pull %s (run %d)' % (name, i), exc)
                    continue
                s = samples[name]
                s['push'].append(push_s)
                s['pull'].append(pull_s)
                s['up'].append(up)
                s['down'].append(down)
                log('   %s run %d: push %.2f s (%d B up), pull %.2f s '
                    '(%d B down)' % (name, i, push_s, up, pull_s, down))
                time.sleep(b.args.settle)
        summary = self.summary
        res = b.results['benchmarks']
        res['registry_push_50mib'] = {'unit': 's', 'results': {
            n: dict(summary(s['push']), bytes_uploaded=s['up'])
            for n, s in samples.items() if s['push'] and n not in failed}}
        res['registry_pull_50mib'] = {'unit': 's', 'results': {
            n: dict(summary(s['pull']), bytes_downloaded=s['down'])
            for n, s in samples.items() if s['pull'] and n not in failed}}

        log('h. snapshot: 5 MiB committed on the 50 MiB base, pushed with the '
            'base already in the registry')
        archive, _ = build_big_archive(self.work, seed=50)
        snap = {}
        for name, target in b.targets.items():
            try:
                snap[name] = self.snapshot(target, archive)
                log('   %s: %s' % (name, json.dumps(snap[name])))
            except Exception as exc:
                b.error('snapshot push %s' % name, exc)
        res['snapshot_push_bytes'] = {'unit': 'ratio', 'results': snap}
        for name, target in b.targets.items():
            try:
                _delete_image(target, BIG_TAG)
            except Exception:
                pass
        try:
            os.unlink(archive)
        except OSError:
            pass


def rows(results, get, ratio, verdict_for):
    """Table rows of the registry section (run.rows' helpers passed in)."""
    out = []
    for key, label in (('registry_push_50mib', 'push 50 MiB image'),
                       ('registry_pull_50mib', 'pull 50 MiB image')):
        d, o = get([key, 'median'], 'docker'), get([key, 'median'], 'novadocker')
        if d is None and o is None:
            continue
        r = ratio(o, d)
        tgt, ver = verdict_for(key, o, r)
        out.append(('%s (median, s)' % label, d, o, r, tgt, ver))
    d = get(['snapshot_push_bytes', 'uploaded_ratio'], 'docker')
    o = get(['snapshot_push_bytes', 'uploaded_ratio'], 'novadocker')
    if d is not None or o is not None:
        tgt, ver = verdict_for('snapshot_push_bytes', o, None)
        out.append(('snapshot push: bytes uploaded / (new layer + config + '
                    'manifest)', d, o, ratio(o, d), tgt, ver))
        for field, label in (('uploaded_bytes', 'snapshot push: bytes uploaded'),
                             ('expected_bytes', 'snapshot push: new layer + config + manifest (B)'),
                             ('push_s', 'snapshot push (s)')):
            d = get(['snapshot_push_bytes', field], 'docker')
            o = get(['snapshot_push_bytes', field], 'novadocker')
            out.append((label, d, o, ratio(o, d), '', ''))
    return out
