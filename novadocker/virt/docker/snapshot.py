"""Where a snapshot goes: the snapshot stores (``novadocker.snapshot_stores``).

``[docker] snapshot_store`` names one:

* ``registry`` (default): the container is committed (paused meanwhile, by
  the engine, under the container's lock), the new image is pushed to
  ``<registry_url>/<registry_namespace>/<glance image id>:latest`` (the
  engine pushes only the blobs the registry lacks, and mounts those it knows
  in another repository of the same registry, so only the new layer
  travels), and the Glance image Nova made for the snapshot records where
  it is: container_format ``docker``, disk_format ``raw``, properties
  ``novadocker_image_ref`` (``<repository>@sha256:<manifest digest>``, what
  any compute host pulls) and ``novadocker_image_id`` (the image id). The
  image's data is a small JSON pointer document with the same two fields:
  Glance makes an image active only once it has data.
* ``glance``: commit, then the ``docker save`` archive of the new image is
  uploaded as the Glance image's data (what nova-docker did): for clouds
  without a registry. ``novadocker_image_ref`` is set empty (the base image's
  reference is copied into the snapshot by Nova and must not be followed).

Both follow Nova's task-state protocol (IMAGE_PENDING_UPLOAD, then
IMAGE_UPLOADING expecting IMAGE_PENDING_UPLOAD, as the libvirt driver does)
and remove the local tag they made, whatever happens. An instance whose
container is gone raises InstanceNotFound (Nova then deletes the unfinished
Glance image, as with libvirt).
"""

import base64
import io
import json
import tempfile
import threading
import urllib.parse

from nova.compute import task_states
from nova import exception
from nova.image import glance
from oslo_log import log as logging
import requests

from novadocker import client as engine_client
from novadocker.virt.docker import images

LOG = logging.getLogger(__name__)

PROP_REF = 'novadocker_image_ref'
PROP_ID = 'novadocker_image_id'
NOVA_LABEL_PREFIX = 'org.openstack.nova.'
LOCAL_SNAPSHOT_REPO = 'novadocker-snapshot'


class SnapshotFailed(exception.NovaException):
    msg_fmt = 'Snapshot of instance %(instance_uuid)s failed: %(reason)s'


def _engine_client(engine):
    return getattr(engine, 'client', engine)


class SnapshotStore:
    name = None

    def __init__(self, engine, conf, image_api=None):
        self.engine = engine
        self.client = _engine_client(engine)
        self.conf = conf
        # Nova's Glance API (the GlanceFixture intercepts it in Nova's tests).
        self._image_api = image_api

    @property
    def image_api(self):
        if self._image_api is None:
            self._image_api = glance.API()
        return self._image_api

    # -- shared steps -----------------------------------------------------------

    def _check_container(self, instance, container_id):
        try:
            return self.client.inspect_container(container_id)
        except engine_client.EngineClientError as exc:
            self._raise(instance, exc, 'inspecting the container')

    def _commit(self, instance, container, repo, tag):
        """Commit the container as ``repo:tag`` (the engine pauses a running
        container for the commit and unpauses it, as Docker does with
        pause=true); the instance's configuration is kept, without the
        labels that name this instance."""
        labels = {k: v for k, v in ((container.get('Config') or {}).get('Labels') or {}).items()
                  if not k.startswith(NOVA_LABEL_PREFIX)}
        try:
            out = self.client.post('/commit', params={
                'container': container['Id'], 'repo': repo, 'tag': tag, 'pause': True,
                'comment': 'snapshot of instance %s' % instance.uuid},
                json_body={'Labels': labels})
        except engine_client.EngineClientError as exc:
            self._raise(instance, exc, 'committing the container')
        return out['Id']

    def snapshot(self, context, instance, container, image_id, update_task_state):
        """Nova's task states around a commit of the container (paused by
        the engine for it) tagged ``<repo>:latest``; ``_store`` sends it
        where it goes; the local tag is removed whatever happens.
        ``container``: its id, or what the engine's inspect said of it (a
        container gone since fails the commit: InstanceNotFound)."""
        self._check_ready(instance)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        if not isinstance(container, dict):
            container = self._check_container(instance, container)
        repo = self._repo(image_id)
        committed = False
        untagged = []
        try:
            image = self._commit(instance, container, repo, 'latest')
            committed = True
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
            self._store(context, instance, image_id, repo, image, untagged)
        finally:
            if committed and not untagged:
                self._untag('%s:latest' % repo)

    def _check_ready(self, instance):
        """Refuse before anything changes when the store is not usable."""

    def _repo(self, image_id):
        return '%s/%s' % (LOCAL_SNAPSHOT_REPO, image_id)

    def _store(self, context, instance, image_id, repo, image, untagged):
        """Send the committed ``repo:latest`` where it goes; a store that
        removes the local tag itself appends to ``untagged``."""
        raise NotImplementedError()

    def _untag(self, ref):
        """Remove the local tag (and so the local image, when nothing else
        uses it): no temporary image stays behind."""
        try:
            self.client.delete('/images/%s' % urllib.parse.quote(ref, safe=''))
        except engine_client.EngineNotFound:
            pass
        except engine_client.EngineClientError as exc:
            LOG.warning('could not remove the temporary snapshot tag %s: %s', ref, exc)

    def _update_glance(self, context, instance, image_id, properties, data):
        metadata = {'container_format': 'docker', 'disk_format': 'raw',
                    'properties': properties}
        self.image_api.update(context, image_id, metadata, data=data, purge_props=False)
        LOG.info('snapshot %s stored (%s)', image_id,
                 ', '.join('%s=%s' % kv for kv in sorted(properties.items())),
                 instance=instance)

    def _raise(self, instance, exc, doing):
        if isinstance(exc, engine_client.EngineUnavailable):
            raise exception.HypervisorUnavailable(str(exc))
        if (isinstance(exc, engine_client.EngineNotFound) and
                'container' in exc.explanation.lower()):
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        raise SnapshotFailed(instance_uuid=instance.uuid,
                             reason='%s: %s' % (doing, getattr(exc, 'explanation', exc)))


class RegistrySnapshotStore(SnapshotStore):
    """Only the new layers go to an OCI registry; Glance keeps the reference."""

    name = 'registry'

    def registry(self):
        return images.registry_host(self.conf.docker.registry_url)

    def repository(self, image_id):
        parts = [self.registry(), (self.conf.docker.registry_namespace or '').strip('/'),
                 image_id]
        return '/'.join(p for p in parts if p)

    def registry_auth(self):
        """X-Registry-Auth as the docker CLI sends it (always, even empty)."""
        doc = {}
        if self.conf.docker.registry_username:
            doc = {'username': self.conf.docker.registry_username,
                   'password': self.conf.docker.registry_password or '',
                   'serveraddress': self.registry()}
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()

    def _check_ready(self, instance):
        if not self.registry():
            raise SnapshotFailed(instance_uuid=instance.uuid,
                                 reason='[docker] registry_url is not set: the registry '
                                        'snapshot store pushes snapshots there (or set '
                                        '[docker] snapshot_store = glance)')

    def _repo(self, image_id):
        return self.repository(image_id)

    def _store(self, context, instance, image_id, repo, image, untagged):
        digest = self._push(instance, repo)
        properties = {PROP_REF: '%s@%s' % (repo, digest), PROP_ID: image}
        # A file object: glanceclient uploads data by reading it in chunks.
        pointer = io.BytesIO(json.dumps(properties, sort_keys=True).encode())
        # Pushed: the local tag goes while Glance is told (a green thread
        # under eventlet, which nova-compute patches threading with).
        untag = threading.Thread(target=self._untag, args=('%s:latest' % repo,),
                                 name='snapshot-untag', daemon=True)
        untag.start()
        untagged.append(untag)
        try:
            self._update_glance(context, instance, image_id, properties, pointer)
        finally:
            untag.join()

    def _push(self, instance, repo):
        """Push ``repo:latest``; the manifest digest the engine reports."""
        path = '/images/%s/push' % urllib.parse.quote(repo, safe='')
        try:
            messages = self.client.stream_json(
                'POST', path, params={'tag': 'latest'},
                headers={'X-Registry-Auth': self.registry_auth()})
        except engine_client.EngineUnavailable as exc:
            raise exception.HypervisorUnavailable(str(exc))
        except engine_client.EngineClientError as exc:
            raise SnapshotFailed(
                instance_uuid=instance.uuid,
                reason='pushing %s to the registry %s failed: %s'
                       % (repo, self.registry(), getattr(exc, 'explanation', exc)))
        for msg in messages:
            aux = msg.get('aux') if isinstance(msg, dict) else None
            if isinstance(aux, dict) and str(aux.get('Digest', '')).startswith('sha256:'):
                return aux['Digest']
        for msg in messages:  # engines that only say "latest: digest: sha256:… size: N"
            status = (msg.get('status') or '') if isinstance(msg, dict) else ''
            if ' digest: sha256:' in status:
                return status.split(' digest: ', 1)[1].split()[0]
        raise SnapshotFailed(instance_uuid=instance.uuid,
                             reason='the registry %s took %s but the engine reported no '
                                    'manifest digest' % (self.registry(), repo))


class GlanceSnapshotStore(SnapshotStore):
    """The whole image as a Docker archive in Glance (as nova-docker did)."""

    name = 'glance'

    def _store(self, context, instance, image_id, repo, image, untagged):
        # The archive is spooled to a temporary file (removed on close)
        # in this thread: Nova uploads in a native thread under eventlet
        # (tpool), which must not read the engine's (green) socket.
        with tempfile.TemporaryFile(prefix='novadocker-snapshot-') as archive:
            self._save(instance, '%s:latest' % repo, archive)
            archive.seek(0)
            # An empty reference: Nova copied the base image's, which
            # must not be followed for this archive.
            self._update_glance(context, instance, image_id,
                                {PROP_REF: '', PROP_ID: image}, archive)

    def _save(self, instance, ref, out):
        try:
            resp = self.client.request('GET', '/images/%s/get' % urllib.parse.quote(
                ref, safe=''), stream=True)
        except engine_client.EngineClientError as exc:
            self._raise(instance, exc, 'saving the committed image')
        try:
            for chunk in resp.iter_content(chunk_size=1024 * 1024):
                out.write(chunk)
        except requests.exceptions.RequestException as exc:
            raise SnapshotFailed(instance_uuid=instance.uuid,
                                 reason='the engine broke off saving %s: %s' % (ref, exc))
        finally:
            resp.close()
