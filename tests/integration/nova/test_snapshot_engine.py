"""The snapshot stores on the real engine and a real registry.

A busybox-based instance container gets a 5 MiB change; the ``registry``
store commits and pushes it (the registry's byte-counting proxy shows that
only the new layer travels), records the digest reference in a Glance
image (a fake Glance API object of our own that keeps what it is given),
and a second engine pulls the snapshot by that digest and runs it. The
``glance`` store's archive is loaded on a second engine and run. Failures
(registry down, instance gone) leave no temporary tag or image behind.
"""

import io
import json
import time
import urllib.parse
import uuid

import pytest

from nova.compute import task_states
from nova import exception
from nova import objects
from oslo_config import cfg

from novadocker import client as engine_client
from novadocker.virt.docker import conf as docker_conf
from novadocker.virt.docker import snapshot
from tests import daemons
from tests import registries
from tests.conftest import run_docker

objects.register_all()

MIB = 1024 * 1024


class FakeImageAPI:
    """Nova's image API surface the stores use, keeping what they give."""

    def __init__(self):
        self.images = {}
        self.data = {}

    def create_queued(self, properties=None):
        image_id = str(uuid.uuid4())
        self.images[image_id] = {'id': image_id, 'status': 'queued',
                                 'properties': dict(properties or {})}
        return image_id

    def update(self, context, image_id, metadata, data=None, purge_props=False):
        if image_id not in self.images:
            raise exception.ImageNotFound(image_id=image_id)
        image = self.images[image_id]
        metadata = dict(metadata)
        image['properties'].update(metadata.pop('properties', {}))
        image.update(metadata)
        if data is not None:
            buf = io.BytesIO()
            for chunk in (data if not isinstance(data, bytes) else [data]):
                buf.write(chunk)
            self.data[image_id] = buf.getvalue()
            image['status'] = 'active'
        return image


class TaskStates:
    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, task_state, expected_state=task_states.IMAGE_SNAPSHOT):
        self.calls.append((task_state, expected_state))
        if task_state == self.fail_on:
            raise exception.UnexpectedDeletingTaskStateError(
                instance_uuid='x', expected=expected_state, actual='deleting')


PROTOCOL = [(task_states.IMAGE_PENDING_UPLOAD, task_states.IMAGE_SNAPSHOT),
            (task_states.IMAGE_UPLOADING, task_states.IMAGE_PENDING_UPLOAD)]


def make_conf(**docker):
    conf = cfg.ConfigOpts()
    # A group object of its own: oslo.config keeps overrides in the group.
    conf.register_opts(docker_conf.ALL, group='docker')
    conf([], project='novadocker-test')
    for k, v in docker.items():
        conf.set_override(k, v, group='docker')
    return conf


@pytest.fixture
def client(engine):
    c = engine_client.EngineClient(engine.url, timeout=120)
    yield c
    c.close()


def push_base(engine, reg):
    """busybox pushed to ``reg`` and used from there, as a Glance image with
    a registry reference would be."""
    ref = '%s/library/busybox' % reg.host
    status, body = daemons.api_json(
        engine.sock, 'POST', '/images/busybox/tag?repo=%s&tag=latest'
        % urllib.parse.quote(ref, safe=''))
    assert status == 201, body
    res = registries.daemon_push(engine, ref + ':latest', reg)
    assert res.ok, res
    return ref + ':latest'


@pytest.fixture
def plain_registry(registry_factory):
    """A registry without the byte-counting proxy: the proxy's threads are
    green threads in this (eventlet-patched) process, kept to the one test
    that counts bytes."""
    return registry_factory()


@pytest.fixture
def base_image(engine, plain_registry):
    return push_base(engine, plain_registry)


@pytest.fixture
def instance_container(client):
    made = []

    def make(image):
        inst = objects.Instance(uuid=str(uuid.uuid4()))
        labels = {'org.openstack.nova.instance-uuid': inst.uuid,
                  'org.openstack.nova.host': 'host1', 'tenant-label': 'kept'}
        cid = client.post('/containers/create', params={'name': 'nova-' + inst.uuid},
                          json_body={'Image': image, 'Cmd': ['sleep', '600'],
                                     'Labels': labels, 'Env': ['ROLE=web'],
                                     'HostConfig': {'NetworkMode': 'none'}})['Id']
        made.append(cid)
        client.post('/containers/%s/start' % cid)
        return inst, cid
    yield make
    for cid in made:
        try:
            client.delete('/containers/%s' % cid, params={'force': True})
        except engine_client.EngineNotFound:
            pass


def sh(eng, cid, cmd):
    res = run_docker(['exec', cid, 'sh', '-c', cmd], eng.url)
    assert res.returncode == 0, (cmd, res.stdout, res.stderr)
    return res.stdout


def write_change(eng, cid):
    sh(eng, cid, 'dd if=/dev/urandom of=/data.bin bs=1048576 count=5 2>/dev/null')
    return sh(eng, cid, 'sha256sum /data.bin').split()[0]


def tags_naming(client, image_id):
    return [t for img in client.get('/images/json', params={'all': True})
            for t in (img.get('RepoTags') or []) if image_id in t]


def state(client, cid):
    s = client.inspect_container(cid)['State']
    return s['Running'], s['Paused']


def container_events(client, cid, since):
    resp = client.request('GET', '/events', params={
        'since': '%.3f' % since, 'until': '%.3f' % (time.time() + 1),
        'filters': json.dumps({'container': [cid]})}, stream=True)
    try:
        lines = resp.content.decode().split('\n')
    finally:
        resp.close()
    actions = [json.loads(line)['Action'] for line in lines if line.strip()]
    return [a for a in actions if a in ('pause', 'unpause', 'commit')]


def ctx():
    return 'the request context'  # only handed on to the image API


def test_registry_snapshot_pushes_only_the_new_layer_and_boots_elsewhere(
        engine, client, registry, instance_container, engine_factory):
    base_image = push_base(engine, registry)
    inst, cid = instance_container(base_image)
    digest_sum = write_change(engine, cid)
    glance_api = FakeImageAPI()
    # Nova copies the base image's properties into the snapshot image.
    image_id = glance_api.create_queued({snapshot.PROP_REF: base_image, 'os_type': 'linux'})
    store = snapshot.RegistrySnapshotStore(client, make_conf(registry_url=registry.host),
                                           image_api=glance_api)
    base_bytes = registry.storage_bytes()
    registry.proxy.reset()
    states = TaskStates()
    since = time.time()
    store.snapshot(ctx(), inst, cid, image_id, states)

    assert states.calls == PROTOCOL
    # The container was paused for the commit, and unpaused after it.
    assert container_events(client, cid, since) == ['pause', 'unpause', 'commit']
    image = glance_api.images[image_id]
    assert (image['container_format'], image['disk_format']) == ('docker', 'raw')
    repo = '%s/nova/%s' % (registry.host, image_id)
    ref = image['properties'][snapshot.PROP_REF]
    assert ref.startswith(repo + '@sha256:')
    assert image['properties']['os_type'] == 'linux'
    assert json.loads(glance_api.data[image_id]) == {
        snapshot.PROP_REF: ref, snapshot.PROP_ID: image['properties'][snapshot.PROP_ID]}
    # The registry has the manifest under that digest; only the new layer
    # (5 MiB of random data: it does not compress) travelled.
    manifest, _ = registry.manifest('nova/%s' % image_id, ref.split('@')[1])
    assert len(manifest['layers']) == 2
    assert 5 * MIB <= registry.proxy.upload_bytes < 5 * MIB + base_bytes / 2, (
        registry.proxy.upload_bytes, base_bytes)
    # The instance runs on, unpaused; no temporary tag is left.
    assert state(client, cid) == (True, False)
    assert tags_naming(client, image_id) == []

    # Another host: has the base, pulls only the new layer by digest, runs it.
    other = engine_factory(load_busybox=False)
    assert registries.daemon_pull(other, base_image, registry).ok
    registry.proxy.reset()
    res = registries.daemon_pull(other, ref, registry)
    assert res.ok, res
    assert registry.proxy.download_bytes < 5 * MIB + base_bytes / 2
    out = run_docker(['run', '--rm', '--network', 'none', ref, 'sh', '-c',
                      'sha256sum /data.bin; echo $ROLE'], other.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [digest_sum, '/data.bin', 'web']
    labels = other.api_json('GET', '/images/%s/json' % urllib.parse.quote(ref, safe=''))[1][
        'Config']['Labels']
    assert labels == {'tenant-label': 'kept'}  # not the old instance's identity


def test_registry_down_is_a_clear_error_and_leaves_no_tag(engine, client, plain_registry,
                                                          base_image, instance_container):
    inst, cid = instance_container(base_image)
    glance_api = FakeImageAPI()
    image_id = glance_api.create_queued()
    down = '127.0.0.1:%d' % registries.free_port()
    store = snapshot.RegistrySnapshotStore(client, make_conf(registry_url=down),
                                           image_api=glance_api)
    states = TaskStates()
    with pytest.raises(snapshot.SnapshotFailed) as err:
        store.snapshot(ctx(), inst, cid, image_id, states)
    assert down in str(err.value) and 'push' in str(err.value)
    assert states.calls == PROTOCOL
    assert glance_api.images[image_id]['status'] == 'queued'
    assert tags_naming(client, image_id) == []
    assert state(client, cid) == (True, False)


def test_instance_gone_is_instance_not_found(engine, client, plain_registry, base_image,
                                            instance_container):
    inst, cid = instance_container(base_image)
    client.delete('/containers/%s' % cid, params={'force': True})
    glance_api = FakeImageAPI()
    image_id = glance_api.create_queued()
    store = snapshot.RegistrySnapshotStore(client, make_conf(registry_url=plain_registry.host),
                                           image_api=glance_api)
    states = TaskStates()
    with pytest.raises(exception.InstanceNotFound):
        store.snapshot(ctx(), inst, cid, image_id, states)
    assert states.calls == PROTOCOL[:1]
    assert tags_naming(client, image_id) == []


def test_instance_deleted_while_uploading_leaves_no_tag(engine, client, plain_registry,
                                                       base_image, instance_container):
    inst, cid = instance_container(base_image)
    glance_api = FakeImageAPI()
    image_id = glance_api.create_queued()
    store = snapshot.RegistrySnapshotStore(client, make_conf(registry_url=plain_registry.host),
                                           image_api=glance_api)
    states = TaskStates(fail_on=task_states.IMAGE_UPLOADING)
    with pytest.raises(exception.UnexpectedDeletingTaskStateError):
        store.snapshot(ctx(), inst, cid, image_id, states)
    assert tags_naming(client, image_id) == []
    assert plain_registry.tags('nova/%s' % image_id) == []


def test_registry_credentials_are_sent(engine_factory, registry_factory, busybox_archive):
    reg = registry_factory(tls=True, auth='basic')
    eng = engine_factory(config=registries.engine_config_text(reg))
    c = engine_client.EngineClient(eng.url, timeout=120)
    inst = objects.Instance(uuid=str(uuid.uuid4()))
    cid = c.post('/containers/create', json_body={
        'Image': 'busybox', 'Cmd': ['sleep', '600'],
        'HostConfig': {'NetworkMode': 'none'}})['Id']
    c.post('/containers/%s/start' % cid)
    glance_api = FakeImageAPI()
    bad = snapshot.RegistrySnapshotStore(
        c, make_conf(registry_url=reg.host, registry_namespace='tenant-snaps',
                     registry_username=reg.username, registry_password='wrong'),
        image_api=glance_api)
    image_id = glance_api.create_queued()
    with pytest.raises(snapshot.SnapshotFailed) as err:
        bad.snapshot(ctx(), inst, cid, image_id, TaskStates())
    assert reg.host in str(err.value)
    assert tags_naming(c, image_id) == []
    good = snapshot.RegistrySnapshotStore(
        c, make_conf(registry_url=reg.host, registry_namespace='tenant-snaps',
                     registry_username=reg.username, registry_password=reg.password),
        image_api=glance_api)
    good.snapshot(ctx(), inst, cid, image_id, TaskStates())
    ref = glance_api.images[image_id]['properties'][snapshot.PROP_REF]
    assert ref.startswith('%s/tenant-snaps/%s@sha256:' % (reg.host, image_id))
    assert reg.tags('tenant-snaps/%s' % image_id) == ['latest']
    c.close()


def test_glance_store_uploads_a_docker_archive_that_loads_and_runs(
        engine, client, instance_container, engine_factory):
    inst, cid = instance_container('busybox')
    digest_sum = write_change(engine, cid)
    glance_api = FakeImageAPI()
    image_id = glance_api.create_queued({snapshot.PROP_REF: 'reg/base@sha256:' + '0' * 64})
    store = snapshot.GlanceSnapshotStore(client, make_conf(), image_api=glance_api)
    states = TaskStates()
    store.snapshot(ctx(), inst, cid, image_id, states)
    assert states.calls == PROTOCOL
    image = glance_api.images[image_id]
    assert (image['container_format'], image['disk_format']) == ('docker', 'raw')
    assert image['properties'][snapshot.PROP_REF] == ''
    image_ref = image['properties'][snapshot.PROP_ID]
    archive = glance_api.data[image_id]
    assert len(archive) > 5 * MIB
    assert tags_naming(client, image_id) == []
    assert state(client, cid) == (True, False)

    other = engine_factory(load_busybox=False)
    status, _, body = daemons.api(other.sock, 'POST', '/images/load',
                                             body=archive, timeout=120)
    assert status == 200, body
    out = run_docker(['run', '--rm', '--network', 'none', image_ref, 'sha256sum',
                      '/data.bin'], other.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == digest_sum


@pytest.mark.parametrize('how', ['paused', 'stopped'])
def test_paused_or_stopped_instance_is_committed_as_it_is(engine, client, plain_registry,
                                                         base_image, instance_container, how):
    inst, cid = instance_container(base_image)
    digest_sum = write_change(engine, cid)
    if how == 'paused':
        client.post('/containers/%s/pause' % cid)
    else:
        client.post('/containers/%s/stop' % cid, params={'t': 0})
    before = state(client, cid)
    glance_api = FakeImageAPI()
    image_id = glance_api.create_queued()
    store = snapshot.RegistrySnapshotStore(client, make_conf(registry_url=plain_registry.host),
                                           image_api=glance_api)
    since = time.time()
    store.snapshot(ctx(), inst, cid, image_id, TaskStates())
    # Left as it was: a paused instance is not unpaused by the snapshot.
    assert state(client, cid) == before == ((True, True) if how == 'paused' else (False, False))
    assert container_events(client, cid, since) == ['commit']
    ref = glance_api.images[image_id]['properties'][snapshot.PROP_REF]
    out = run_docker(['run', '--rm', '--network', 'none', ref, 'sha256sum', '/data.bin'],
                     engine.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == digest_sum
    client.delete('/images/%s' % urllib.parse.quote(ref, safe=''))
