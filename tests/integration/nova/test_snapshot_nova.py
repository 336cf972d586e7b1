"""The registry snapshot store inside Nova's own machinery: a real Instance
in Nova's test database whose task state is saved with Nova's
expected-state check (the compute manager's update_task_state), Nova's
image API (nova.image.glance.API) answered by Nova's GlanceFixture, a real
engine and a real registry (started here, since nova.test.TestCase is
unittest-style and does not take pytest fixtures).
"""

import shutil
import tempfile
import urllib.parse
import uuid

from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import exception
from nova.image import glance
from nova import objects
from nova.tests import fixtures as nova_fixtures
from oslo_config import cfg

from novadocker import client as engine_client
from novadocker.virt.docker import conf as docker_conf
from novadocker.virt.docker import snapshot
from tests import daemons
from tests import registries
from tests.integration.nova import shim

CONF = cfg.CONF


class TestRegistrySnapshotInNova(shim.PytestTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = daemons.short_tmpdir('nd-snapnova-')
        cls.engine = daemons.Engine(cls.base)
        cls.registry = registries.DockerRegistry(tempfile.mkdtemp(prefix='nd-snapreg-'))
        try:
            cls.engine.start()
            cls.engine.load(daemons.build_busybox_archive(cls.base))
            cls.registry.start()
        except BaseException:
            cls._finish()
            raise

    @classmethod
    def tearDownClass(cls):
        cls._finish()
        super().tearDownClass()

    @classmethod
    def _finish(cls):
        try:
            cls.engine.remove_all_containers()
            cls.engine.stop()
        finally:
            cls.engine.scrub()
            cls.registry.stop()
            shutil.rmtree(cls.registry.base, ignore_errors=True)

    def setUp(self):
        super().setUp()
        docker_conf.register_opts(CONF)
        self.flags(registry_url=self.registry.host, group='docker')
        self.glance = self.useFixture(nova_fixtures.GlanceFixture(self))
        self.ctx = nova_context.get_admin_context()
        self.client = engine_client.EngineClient(self.engine.url, timeout=120)
        self.addCleanup(self.client.close)
        self.instance = objects.Instance(
            context=self.ctx, uuid=str(uuid.uuid4()), project_id='p', user_id='u',
            vm_state=vm_states.ACTIVE, task_state=task_states.IMAGE_SNAPSHOT)
        self.instance.create()
        self.cid = self.client.post('/containers/create', params={
            'name': 'nova-' + self.instance.uuid}, json_body={
            'Image': 'busybox', 'Cmd': ['sleep', '600'],
            'HostConfig': {'NetworkMode': 'none'}})['Id']
        self.addCleanup(self.client.delete, '/containers/%s' % self.cid,
                        params={'force': True})
        self.client.post('/containers/%s/start' % self.cid)
        # What Nova's API made for createImage: the base image's properties
        # copied, among them a registry reference that must be replaced.
        self.image = self.glance.create(self.ctx, {
            'name': 'snap-1', 'status': 'queued', 'container_format': 'docker',
            'disk_format': 'raw', 'properties': {
                snapshot.PROP_REF: 'elsewhere/base@sha256:' + 'f' * 64,
                'image_type': 'snapshot', 'instance_uuid': self.instance.uuid}})

    def update_task_state(self, task_state, expected_state=task_states.IMAGE_SNAPSHOT):
        # As nova.compute.manager._snapshot_instance does it.
        self.instance.task_state = task_state
        self.instance.save(expected_task_state=expected_state)

    def store(self):
        return snapshot.RegistrySnapshotStore(self.client, CONF)  # Nova's own image API

    def test_snapshot_through_nova_image_api_and_task_states(self):
        self.store().snapshot(self.ctx, self.instance, self.cid, self.image['id'],
                              self.update_task_state)
        self.assertEqual(task_states.IMAGE_UPLOADING,
                         objects.Instance.get_by_uuid(self.ctx, self.instance.uuid).task_state)
        image = glance.API().get(self.ctx, self.image['id'])
        self.assertEqual(('docker', 'raw'), (image['container_format'], image['disk_format']))
        ref = image['properties'][snapshot.PROP_REF]
        repo = '%s/nova/%s' % (self.registry.host, self.image['id'])
        self.assertTrue(ref.startswith(repo + '@sha256:'), ref)
        self.assertEqual('snapshot', image['properties']['image_type'])
        manifest, digest = self.registry.manifest('nova/' + self.image['id'],
                                                  ref.split('@')[1])
        self.assertEqual(ref.split('@')[1], digest)
        # Pulled back by digest, it is the committed image.
        pulled = registries.daemon_pull(self.engine, ref)
        self.assertTrue(pulled.ok, pulled)
        self.assertEqual(image['properties'][snapshot.PROP_ID],
                         self.client.inspect_image(ref)['Id'])
        self.client.delete('/images/%s' % urllib.parse.quote(ref, safe=''))

    def test_instance_deleted_meanwhile_stops_before_the_push(self):
        # The instance is being deleted: Nova's expected-state check fails
        # the IMAGE_UPLOADING update, and nothing is pushed or left tagged.
        def update(task_state, expected_state=task_states.IMAGE_SNAPSHOT):
            if task_state == task_states.IMAGE_UPLOADING:
                db_inst = objects.Instance.get_by_uuid(self.ctx, self.instance.uuid)
                db_inst.task_state = task_states.DELETING
                db_inst.save()
            self.update_task_state(task_state, expected_state)
        self.assertRaises(exception.UnexpectedDeletingTaskStateError,
                          self.store().snapshot, self.ctx, self.instance, self.cid,
                          self.image['id'], update)
        self.assertEqual([], self.registry.tags('nova/' + self.image['id']))
        tags = [t for img in self.client.get('/images/json')
                for t in img.get('RepoTags') or [] if self.image['id'] in t]
        self.assertEqual([], tags)
        self.assertEqual('elsewhere/base@sha256:' + 'f' * 64,
                         glance.API().get(self.ctx, self.image['id'])['properties'][
                             snapshot.PROP_REF])
