"""Resource ``DockerInc::Docker::Image``: an image built (or pulled) ahead of
the containers that run it.

A template that needs its own small image (a config file baked in, a package
added) builds it here from an inline Dockerfile (``docker build`` through
the engine's POST /build), or pulls a reference ahead of time so every
container of the stack starts from the same digest. Its reference id is the
image reference to put in a container's ``image`` property
(``image: {get_resource: img}``), which also makes Heat create the image
first and delete it after the containers.
"""

import io
import json
import tarfile

from heat.common import exception
from heat.common.i18n import _
from heat.engine import attributes
from heat.engine import properties
from heat.engine import resource
from heat.engine import support

from heat_plugin import client as plugin_client
from heat_plugin import container as container_mod
from novadocker import client as engine_client

BUILD_TIMEOUT = 900


def build_context(dockerfile, files):
    """The build context as a tar archive in memory: the Dockerfile and the
    ``files`` map (path in the context -> text)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for path, text in [('Dockerfile', dockerfile)] + sorted(
                (files or {}).items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip('/'))
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class DockerImage(plugin_client.EngineObjectMixin, resource.Resource):
    """An image on the engine: built from an inline Dockerfile, or pulled."""

    support_status = support.SupportStatus(
        version='27.0.0',
        message=_('Provided by the novadocker Heat plugin.'))

    PROPERTIES = (
        DOCKER_ENDPOINT, NAME, DOCKERFILE, FILES, BUILD_ARGS, PULL,
    ) = (
        'docker_endpoint', 'name', 'dockerfile', 'files', 'build_args',
        'pull',
    )

    ATTRIBUTES = (ID, REFERENCE, SIZE) = ('id', 'reference', 'size')

    properties_schema = {
        DOCKER_ENDPOINT: properties.Schema(
            properties.Schema.STRING,
            _('Engine API endpoint; default: [novadocker] engine_url.')),
        NAME: properties.Schema(
            properties.Schema.STRING,
            _('Reference (REPOSITORY[:TAG]) a built image is tagged with. '
              'Default: a unique name made from the stack and resource '
              'names.')),
        DOCKERFILE: properties.Schema(
            properties.Schema.STRING,
            _('Dockerfile text to build the image from.')),
        FILES: properties.Schema(
            properties.Schema.MAP,
            _('More files for the build context: {PATH: TEXT}.'),
            default={}),
        BUILD_ARGS: properties.Schema(
            properties.Schema.MAP,
            _('Build arguments (ARG values).'), default={}),
        PULL: properties.Schema(
            properties.Schema.STRING,
            _('Image reference to pull instead of building.')),
    }

    attributes_schema = {
        ID: attributes.Schema(_('Image id (sha256:...).'),
                              type=attributes.Schema.STRING),
        REFERENCE: attributes.Schema(_('The reference containers use.'),
                                     type=attributes.Schema.STRING),
        SIZE: attributes.Schema(_('Size in bytes.'),
                                type=attributes.Schema.INTEGER),
    }

    def reference(self):
        props = self.properties
        if props[self.PULL]:
            return props[self.PULL]
        name = props[self.NAME] or self.physical_resource_name().lower()
        last = name.rsplit('/', 1)[-1]
        return name if ':' in last or '@' in name else name + ':latest'

    def validate(self):
        super().validate()
        props = self.properties
        if bool(props[self.DOCKERFILE]) == bool(props[self.PULL]):
            raise exception.StackValidationFailed(
                message=_('%s: give either dockerfile (to build) or pull (a '
                          'reference to pull), not both or neither')
                % self.name)
        if props[self.PULL] and (props[self.FILES] or props[self.NAME] or
                                 props[self.BUILD_ARGS]):
            raise exception.ResourcePropertyConflict(
                self.PULL, '/'.join([self.NAME, self.FILES,
                                     self.BUILD_ARGS]))
        for prop in (self.PULL, self.NAME):
            ref = props[prop]
            if ref and not container_mod.IMAGE_RE.match(ref):
                raise exception.StackValidationFailed(
                    message=_('%(res)s: %(prop)s %(ref)r is not a valid image '
                              'reference (lowercase [REGISTRY/]NAME[:TAG]'
                              '[@DIGEST])') %
                    {'res': self.name, 'prop': prop, 'ref': ref})

    def handle_create(self):
        eng = self.client()
        ref = self.reference()
        try:
            if self.properties[self.PULL]:
                from_image, tag = container_mod.split_image(ref)
                eng.stream_json('POST', '/images/create',
                                params={'fromImage': from_image, 'tag': tag},
                                timeout=BUILD_TIMEOUT)
            else:
                context = build_context(self.properties[self.DOCKERFILE],
                                        self.properties[self.FILES])
                params = {'t': ref, 'rm': True, 'forcerm': True}
                if self.properties[self.BUILD_ARGS]:
                    params['buildargs'] = json.dumps(
                        self.properties[self.BUILD_ARGS])
                eng.stream_json('POST', '/build', params=params, data=context,
                                headers={'Content-Type': 'application/x-tar'},
                                timeout=BUILD_TIMEOUT)
        except engine_client.EngineClientError as exc:
            what = 'pull' if self.properties[self.PULL] else 'build'
            raise exception.Error(_('could not %(what)s image %(ref)s: '
                                    '%(why)s') %
                                  {'what': what, 'ref': ref,
                                   'why': exc.explanation})
        self.resource_id_set(ref)
        return ref

    def check_create_complete(self, ref):
        # Build and pull streams end when the image is there; reading it
        # back confirms it under the reference the containers will use.
        self.client().inspect_image(ref)
        return True

    def handle_delete(self):
        # A pulled image may be shared with anything else on the engine:
        # only what this resource built is removed.
        if self.resource_id is None or self.properties[self.PULL]:
            return None
        try:
            self.client().delete('/images/%s' % self.resource_id)
        except engine_client.EngineNotFound:
            pass    # already gone counts as deleted
        except engine_client.EngineClientError as exc:
            raise exception.Error(_('could not remove image %(ref)s: '
                                    '%(why)s') %
                                  {'ref': self.resource_id,
                                   'why': exc.explanation})
        return None

    def _resolve_attribute(self, name):
        if self.resource_id is None:
            return None
        if name == self.REFERENCE:
            return self.resource_id
        try:
            info = self.client().inspect_image(self.resource_id)
        except engine_client.EngineNotFound:
            return None
        if name == self.ID:
            return info.get('Id')
        if name == self.SIZE:
            return info.get('Size')
        return None


def resource_mapping():
    return {'DockerInc::Docker::Image': DockerImage}
