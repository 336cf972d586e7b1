"""Glance image -> engine image.

Three kinds of Glance image reach spawn:

* container_format ``docker`` with the property ``novadocker_image_ref``
  (written by our registry snapshots, or set by an operator): a pullable
  reference, normally ``<registry>/<repo>@sha256:<manifest digest>``. The
  engine pulls it, fetching only the layers it lacks; an image it already
  has under that reference is used as is.
* container_format ``docker`` without a reference: the image data is a
  Docker archive (``docker save`` output), as nova-docker kept them. The
  driver streams it from Glance into POST /images/load and tags the result
  ``novadocker-glance/<glance image id>:latest`` so the next boot of that
  image loads nothing.
* anything else (qcow2, ami, ...): ImageUnacceptable, naming what is wrong.

Images fetched for instances are the driver's cache: manage_image_cache
removes those no instance on the host has used for
``[docker]remove_unused_images_after`` seconds. Which images the driver
fetched, and when they were last used, is kept in
``<instances_path>/novadocker-image-cache.json`` (nova-compute owns that
directory; images an operator loaded by hand are never touched).
"""

import json
import os
import tempfile
import time

from oslo_log import log as logging

from nova import exception
from nova.image import glance

LOG = logging.getLogger(__name__)

REF_PROPERTY = 'novadocker_image_ref'
ID_PROPERTY = 'novadocker_image_id'
GLANCE_REPO = 'novadocker-glance'
CACHE_FILE = 'novadocker-image-cache.json'


def image_properties(context, instance, image_meta):
    """(container_format, free-form properties) of the image being booted.

    Nova copies every image property into ``instance.system_metadata`` as
    ``image_<key>`` at boot; ImageMeta keeps only the properties it knows,
    so the reference is read from there, or from Glance when the instance
    has none (or is being rebuilt onto another image)."""
    image_id = getattr(image_meta, 'id', None) if image_meta.obj_attr_is_set('id') else None
    container_format = (image_meta.container_format
                        if image_meta.obj_attr_is_set('container_format') else None)
    sysmeta = instance.system_metadata or {}
    same_image = not image_id or instance.image_ref == image_id
    if same_image and ('image_' + REF_PROPERTY) in sysmeta:
        return container_format or sysmeta.get('image_container_format'), {
            REF_PROPERTY: sysmeta['image_' + REF_PROPERTY],
            ID_PROPERTY: sysmeta.get('image_' + ID_PROPERTY)}
    if not image_id:
        return container_format, {}
    try:
        image = glance.API().get(context, image_id)
    except exception.ImageNotFound:
        raise exception.ImageUnacceptable(
            image_id=image_id, reason='it is not in Glance any longer')
    return image.get('container_format') or container_format, dict(
        image.get('properties') or {})


def registry_auth(conf, ref):
    """X-Registry-Auth for ``ref`` when it is on the configured registry."""
    opts = conf.docker
    registry = registry_host(opts.registry_url)
    if not (opts.registry_username and registry):
        return None
    if not ref.startswith(registry + '/'):
        return None
    return {'username': opts.registry_username,
            'password': opts.registry_password or '',
            'serveraddress': registry}


def registry_host(url):
    """``registry_url`` as references name it: host[:port], no scheme."""
    url = (url or '').strip()
    for scheme in ('https://', 'http://'):
        if url.startswith(scheme):
            url = url[len(scheme):]
    return url.rstrip('/')


def normalize_ref(ref):
    """A reference without tag or digest means every tag to a pull: make
    it ``:latest`` as the docker CLI does."""
    last = ref.rsplit('/', 1)[-1]
    if '@' in ref or ':' in last:
        return ref
    return ref + ':latest'


class ImageFetcher:
    """Makes the engine hold the image of an instance; returns its id."""

    def __init__(self, engine, conf):
        self.engine = engine
        self.conf = conf

    def ensure(self, context, instance, image_meta):
        image_id = image_meta.id if image_meta.obj_attr_is_set('id') else None
        container_format, props = image_properties(context, instance, image_meta)
        if container_format != 'docker':
            raise exception.ImageUnacceptable(
                image_id=image_id,
                reason='container_format is %r: the novadocker driver boots container '
                       'images only (container_format "docker" with a %s property, or a '
                       'Docker archive as the image data)' % (container_format, REF_PROPERTY))
        ref = props.get(REF_PROPERTY)
        if ref:
            ref = normalize_ref(ref)
            engine_id = self._pull(image_id, ref)
        else:
            ref = '%s/%s:latest' % (GLANCE_REPO, image_id)
            engine_id = self._load_archive(context, image_id, ref)
        self.remember(engine_id, ref)
        return engine_id

    def _pull(self, image_id, ref):
        found = self.engine.inspect_image(ref)
        if found is not None:
            return found['Id']
        LOG.info('Pulling %s for Glance image %s', ref, image_id)

        def failure(reason):
            return exception.ImageUnacceptable(
                image_id=image_id, reason='pulling %s failed: %s' % (ref, reason))
        self.engine.pull(ref, auth=registry_auth(self.conf, ref), failure=failure)
        found = self.engine.inspect_image(ref)
        if found is None:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason='the engine reported the pull of %s done but '
                                          'does not have it' % ref)
        return found['Id']

    def _load_archive(self, context, image_id, local):
        found = self.engine.inspect_image(local)
        if found is not None:
            return found['Id']
        # Through a file under instances_path: Glance's download API writes
        # to dest_path the same way for every backend, and the engine then
        # reads a plain file (a retry-free, length-known upload).
        os.makedirs(self.conf.instances_path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.conf.instances_path,
                                         prefix='.glance-archive-') as tmp:
            try:
                glance.API().download(context, image_id, dest_path=tmp.name)
            except exception.ImageNotFound:
                raise exception.ImageUnacceptable(image_id=image_id,
                                                  reason='it is not in Glance any longer')
            if os.path.getsize(tmp.name) == 0:
                raise exception.ImageUnacceptable(
                    image_id=image_id,
                    reason='container_format "docker" without a %s property must hold a '
                           'Docker archive (docker save), but the image has no data'
                           % REF_PROPERTY)

            def failure(reason):
                return exception.ImageUnacceptable(
                    image_id=image_id, reason='it is not a loadable Docker archive: %s' % reason)
            with open(tmp.name, 'rb') as data:
                loaded = self.engine.load(data, failure=failure)
        if len(loaded) != 1:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason='a Docker archive in Glance must hold exactly one '
                                          'image; this one loaded %d: %s'
                                          % (len(loaded), ', '.join(loaded) or 'none'))
        found = self.engine.inspect_image(loaded[0])
        if found is None:
            raise exception.ImageUnacceptable(image_id=image_id,
                                              reason='the loaded image %s vanished' % loaded[0])
        repo, tag = local.rsplit(':', 1)
        self.engine.tag(found['Id'], repo, tag)
        return found['Id']

    # -- the cache record ---------------------------------------------------

    def _cache_path(self):
        return os.path.join(self.conf.instances_path, CACHE_FILE)

    def _read_cache(self):
        try:
            with open(self._cache_path()) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_cache(self, data):
        path = self._cache_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.image-cache-')
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f)
        os.replace(tmp, path)

    def remember(self, engine_id, ref, now=None):
        """Record that an instance uses ``engine_id``, which the driver
        fetched as ``ref`` (the only name of it the cache ever removes)."""
        data = self._read_cache()
        entry = data.get(engine_id)
        if not isinstance(entry, dict):
            entry = {'refs': []}
        if ref not in entry['refs']:
            entry['refs'].append(ref)
        entry['last_used'] = now if now is not None else time.time()
        data[engine_id] = entry
        self._write_cache(data)

    def expire(self, in_use, now=None):
        """Remove the references the driver fetched of images unused for
        longer than the configured age; returns the image ids whose
        references were removed. ``in_use``: engine image ids of this host's
        instances; an image any other container on the engine still uses
        (asked with the engine's ancestor filter) is kept too. Only the
        driver's own references go: an image an operator also tagged stays
        under that tag."""
        max_age = self.conf.docker.remove_unused_images_after
        now = time.time() if now is None else now
        data = self._read_cache()
        removed = []
        for engine_id, entry in sorted(data.items()):
            if not isinstance(entry, dict):
                continue
            if engine_id in in_use:
                entry['last_used'] = now
                continue
            if not max_age or now - entry.get('last_used', now) < max_age:
                continue
            if self.engine.inspect_image(engine_id) is not None:
                if self.engine.containers_of_image(engine_id):
                    entry['last_used'] = now
                    continue
                try:
                    for ref in entry.get('refs', []):
                        self.engine.remove_image(ref)
                except exception.NovaException as exc:
                    LOG.warning('Could not remove unused image %s: %s', engine_id, exc)
                    continue
            LOG.info('Removed image %s (%s), unused since %s', engine_id,
                     ', '.join(entry.get('refs', [])),
                     time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                   time.gmtime(entry.get('last_used', now))))
            del data[engine_id]
            removed.append(engine_id)
        self._write_cache(data)
        return removed
