"""The registry client: OCI distribution (Docker Registry HTTP API v2).

``Distribution`` is the engine's façade (``engine.distribution``): pull,
push, login and search.  The parts:

* ``transport`` — HTTP to one registry: probing, retries, limits, errors
* ``auth`` — anonymous, Basic, Bearer tokens from ``WWW-Authenticate``
* ``tls`` — per-registry CAs and client certificates, insecure registries
* ``metadata`` — which compressed blobs carry a layer, and where they live
* ``pull`` / ``push`` — the two directions
"""

import os
import threading

from oslo_log import log as logging

from engine import errors
from engine import reference
from engine.registry import auth as auth_mod
from engine.registry import metadata as metadata_mod
from engine.registry import tls as tls_mod
from engine.registry import transport

LOG = logging.getLogger(__name__)


def parse_reference(text, what='reference'):
    """A normalised reference; InvalidArgument (400) when malformed."""
    if not isinstance(text, str) or not text:
        raise errors.InvalidArgument('invalid %s: it is empty' % what)
    ref = reference.parse(text, default_tag=True)
    if ref.digest and not ref.digest.startswith('sha256:'):
        raise errors.InvalidArgument('unsupported digest algorithm: %s'
                                     % ref.digest.split(':', 1)[0])
    return ref


class Distribution(object):

    def __init__(self, images, content, events, conf=None, root=None,
                 session_factory=None):
        self.images = images
        self.content = content
        self.events = events
        self.settings = transport.Settings(conf)
        root = root or os.path.join(os.path.dirname(images.root),
                                    'distribution')
        self.root = root
        self.tls = tls_mod.TLSSettings(
            self.settings.certs_dir, self.settings.insecure_registries,
            os.path.join(root, 'ca-bundles'))
        self.metadata = metadata_mod.V2Metadata(root)
        self.session_factory = session_factory
        self.last_push_bytes = 0
        self.last_pull_bytes = 0
        self._lock = threading.Lock()
        self._endpoints = {}
        self._sessions = {}

    # -- plumbing ------------------------------------------------------------

    def client(self, domain, credentials):
        host = transport.registry_host(domain)
        if self.session_factory:
            session = self.session_factory()
        else:
            # One connection pool per registry, kept between operations:
            # a push or pull finds its connections (and TLS sessions)
            # open.  Credentials travel per request, never in the session.
            with self._lock:
                session = self._sessions.get(host)
                if session is None:
                    session = self._sessions[host] = transport.new_session(
                        self.settings)
        return transport.Client(self.settings, self.tls, host,
                                credentials, session=session,
                                known_endpoints=self._endpoints)

    def kept_blobs(self, used_diff_ids):
        """Blobs the image GC must keep (the ImageStore hook)."""
        return self.metadata.kept_blobs(used_diff_ids)

    def publish_image_event(self, action, name, image_id):
        if self.events is None:
            return
        try:
            attrs = {'name': name}
            try:
                img = self.images.resolve(image_id)
                labels = (img.config.get('config') or {}).get('Labels') or {}
                attrs = dict(labels, name=name)
            except errors.EngineError:
                pass
            self.events.publish('image', action, name, attrs)
        except Exception:  # events never break an image operation
            LOG.exception('Publishing the %s event failed', action)

    # -- the API -----------------------------------------------------------

    def pull(self, reference_text, auth=None, platform=None, progress=None):
        from engine.registry import pull as pull_mod
        ref = parse_reference(reference_text)
        creds = auth_mod.Credentials(auth)
        puller = pull_mod.Puller(self, ref, creds, platform, progress)
        try:
            image_id = puller.run()
        except (errors.Unauthorized, errors.Forbidden) as e:
            # Docker's answer (a 404, not a 401: on a 401 the docker CLI
            # would prompt for a login and wait).
            raise errors.NotFound(
                "pull access denied for %s, repository does not exist or may "
                "require 'docker login': %s" % (ref.familiar_name(), e))
        self.last_pull_bytes = puller.bytes_downloaded
        return image_id

    def push(self, reference_text, auth=None, progress=None):
        from engine.registry import push as push_mod
        ref = parse_reference(reference_text)
        creds = auth_mod.Credentials(auth)
        pusher = push_mod.Pusher(self, ref, creds, progress)
        try:
            return pusher.run()
        finally:
            self.last_push_bytes = pusher.bytes_uploaded

    def login(self, server, auth):
        from engine.registry import push as push_mod
        return push_mod.login(self, server, auth_mod.Credentials(auth))

    def search(self, term, limit=25, auth=None):
        from engine.registry import push as push_mod
        return push_mod.search(self, term, limit, auth_mod.Credentials(auth))

    def list_tags(self, repository, auth=None):
        from engine.registry import push as push_mod
        ref = reference.parse(repository)
        client = self.client(ref.domain, auth_mod.Credentials(auth))
        return push_mod.list_tags(client, ref.path)
