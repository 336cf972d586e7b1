"""The plugin's access to a novadocker engine.

heat-engine runs unprivileged: every resource talks to the engine only
through its Docker-compatible API (novadocker.client.EngineClient).  The
endpoint is the resource's ``docker_endpoint`` property when given, else
``[novadocker] engine_url`` in heat.conf (registered on heat's cfg.CONF
when this module is imported, which heat-engine does when it loads the
plugin from ``plugin_dirs``).
"""

from oslo_config import cfg

from novadocker import client as engine_client

GROUP = 'novadocker'

opts = [
    cfg.StrOpt('engine_url', default=engine_client.DEFAULT_URL,
               help='Engine API endpoint used by DockerInc::Docker::* '
                    'resources that leave docker_endpoint empty: '
                    'unix:///path/to.sock, or https://host:port (TCP needs '
                    'TLS, see ca_file/cert_file/key_file).'),
    cfg.IntOpt('api_timeout', default=120, min=1,
               help='Seconds to wait for one engine API answer (an image '
                    'pull can take that long per request).'),
    cfg.FloatOpt('startup_grace', default=1.0, min=0,
                 help='Seconds a new container must keep running before its '
                      'resource is CREATE_COMPLETE, so that a command that '
                      'fails at once fails the resource (with its logs) '
                      'instead of passing for running.'),
    cfg.StrOpt('ca_file',
               help='CA bundle to verify an https:// engine with.'),
    cfg.StrOpt('cert_file',
               help='Client certificate for an https:// engine.'),
    cfg.StrOpt('key_file',
               help='Key of the client certificate.'),
]

cfg.CONF.register_opts(opts, group=GROUP)


def list_opts():
    """For oslo-config-generator (entry point oslo.config.opts)."""
    return [(GROUP, opts)]


def engine_for(endpoint=None):
    """An EngineClient for ``endpoint`` (the docker_endpoint property) or
    the configured default; a malformed URL raises ValueError."""
    conf = cfg.CONF[GROUP]
    url = endpoint or conf.engine_url
    if url.startswith('tcp://'):
        # Contrib-plugin templates wrote docker_endpoint as tcp://host:port;
        # the engine takes TCP only with TLS, so that means https.
        url = 'https://' + url[len('tcp://'):]
    return engine_client.EngineClient(
        url, timeout=conf.api_timeout,
        ca=conf.ca_file, cert=conf.cert_file, key=conf.key_file)


def resource_engine(resource):
    """The EngineClient of a resource with a ``docker_endpoint`` property;
    a malformed endpoint is Heat's generic error, naming it."""
    from heat.common import exception
    try:
        return engine_for(resource.properties[resource.DOCKER_ENDPOINT])
    except ValueError as exc:
        raise exception.Error(str(exc))


class EngineObjectMixin:
    """For resources whose physical id is the engine's name for the object
    (a network id, an image reference): the engine client, and that id as
    the reference containers use (Heat's placeholder before create)."""

    def client(self):
        return resource_engine(self)

    def get_reference_id(self):
        if self.resource_id is None:
            return super().get_reference_id()
        return self.resource_id
