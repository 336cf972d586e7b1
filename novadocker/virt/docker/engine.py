"""The driver's view of the engine: novadocker.client.EngineClient with
Nova's exceptions.

Every call the driver makes goes through here, so an unreachable engine is
always HypervisorUnavailable naming the engine URL, a missing container is
InstanceNotFound for the instance in question, and anything else carries
the engine's own message (an operator can act on "no space left on device";
not on "HTTP 500").
"""

import base64
import contextlib
import json
import urllib.parse

from oslo_log import log as logging

from nova import exception

from novadocker import client as client_mod

LOG = logging.getLogger(__name__)


def _q(ref):
    return urllib.parse.quote(ref, safe='')


class Engine:
    """One engine, reached with the ``[docker]`` options of this host."""

    def __init__(self, conf, host=None):
        self.conf = conf
        self.url = conf.docker.engine_url
        self.host = host
        self.client = client_mod.EngineClient(
            self.url, timeout=conf.docker.api_timeout,
            connect_timeout=conf.docker.connect_timeout,
            ca=conf.docker.tls_ca, cert=conf.docker.tls_cert,
            key=conf.docker.tls_key)

    # -- error mapping ------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, instance=None, failure=None, not_found=True):
        """Map client errors: unreachable -> HypervisorUnavailable; 404 with
        an ``instance`` -> InstanceNotFound (unless ``not_found`` is False);
        any other engine error -> ``failure(reason=...)`` (a Nova exception
        class) or NovaException."""
        try:
            yield
        except client_mod.EngineUnavailable as exc:
            if exc.status is not None and failure is not None:
                # The engine answered (502/503/504): something behind it,
                # such as a registry, is down, not the engine.
                raise failure(reason='engine %s: %s' % (self.url, exc))
            raise exception.HypervisorUnavailable(
                message='The novadocker engine at %s is unavailable: %s'
                        % (self.url, exc), host=self.host)
        except client_mod.EngineNotFound as exc:
            if instance is not None and not_found:
                raise exception.InstanceNotFound(instance_id=instance.uuid)
            if failure is not None:
                raise failure(reason=str(exc))
            raise
        except client_mod.EngineClientError as exc:
            if failure is not None:
                raise failure(reason='engine %s: %s' % (self.url, exc))
            raise exception.NovaException(
                message='engine %s: %s' % (self.url, exc))

    # -- system -------------------------------------------------------------

    def ping(self):
        with self.errors():
            return self.client.ping()

    def info(self):
        with self.errors():
            return self.client.info()

    def version(self):
        with self.errors():
            return self.client.version()

    # -- containers ---------------------------------------------------------

    def containers(self, labels, all=True):
        """Containers carrying every ``key=value`` (or bare key) label: the
        engine filters, nothing scans every container."""
        with self.errors():
            return self.client.containers(all=all, filters={'label': list(labels)})

    def inspect(self, ref):
        """The container's inspect document, or None when there is none."""
        try:
            with self.errors():
                return self.client.inspect_container(ref)
        except client_mod.EngineNotFound:
            return None

    def create(self, name, body, failure=exception.InstanceDeployFailure):
        with self.errors(failure=failure):
            return self.client.post('/containers/create', {'name': name},
                                    json_body=body)['Id']

    def start(self, ref, instance=None, failure=None):
        with self.errors(instance, failure):
            self.client.post('/containers/%s/start' % _q(ref))

    def stop(self, ref, timeout, instance=None, failure=None):
        # The engine waits ``timeout`` seconds after SIGTERM before SIGKILL:
        # the read timeout must outlast that wait.
        with self.errors(instance, failure):
            self.client.post('/containers/%s/stop' % _q(ref), {'t': int(timeout)},
                             timeout=self.conf.docker.api_timeout + timeout)

    def restart(self, ref, timeout, instance=None, failure=None):
        with self.errors(instance, failure):
            self.client.post('/containers/%s/restart' % _q(ref), {'t': int(timeout)},
                             timeout=self.conf.docker.api_timeout + timeout)

    def kill(self, ref, signal='SIGKILL', instance=None, failure=None):
        with self.errors(instance, failure):
            self.client.post('/containers/%s/kill' % _q(ref), {'signal': signal})

    def pause(self, ref, instance=None, failure=None):
        with self.errors(instance, failure):
            self.client.post('/containers/%s/pause' % _q(ref))

    def unpause(self, ref, instance=None, failure=None):
        with self.errors(instance, failure):
            self.client.post('/containers/%s/unpause' % _q(ref))

    def remove(self, ref):
        """Force-remove with the volumes it created; False if there was none."""
        with self.errors(failure=exception.InstanceTerminationFailure):
            try:
                self.client.delete('/containers/%s' % _q(ref), {'force': True, 'v': True},
                                   timeout=self.conf.docker.api_timeout + 30)
            except client_mod.EngineNotFound:
                return False
        return True

    def put_archive(self, ref, path, data, instance=None, failure=None):
        """PUT /containers/{id}/archive: extract the tar ``data`` at ``path``."""
        with self.errors(instance, failure):
            self.client.request('PUT', '/containers/%s/archive' % _q(ref),
                                params={'path': path}, data=data,
                                headers={'Content-Type': 'application/x-tar'},
                                expect_json=False)

    def logs(self, ref, tail_bytes, instance=None):
        """The end of the container's log (stdout and stderr, as the console
        shows them), at most ``tail_bytes`` bytes."""
        with self.errors(instance):
            resp = self.client.request(
                'GET', '/containers/%s/logs' % _q(ref),
                params={'stdout': True, 'stderr': True}, stream=True)
        try:
            tty = resp.headers.get('Content-Type', '').startswith('application/vnd.docker.raw')
            data = bytearray()
            for chunk in resp.iter_content(chunk_size=65536):
                data += chunk
                # Keep a bounded window: the head of a long log is dropped.
                if len(data) > 4 * tail_bytes + 65536:
                    data = _trim_frames(data, tail_bytes) if not tty else data[-tail_bytes:]
        finally:
            resp.close()
        text = bytes(data) if tty else _unframe(bytes(data))
        return text[-tail_bytes:]

    def stats(self, ref, instance=None):
        with self.errors(instance):
            return self.client.get('/containers/%s/stats' % _q(ref),
                                   {'stream': False, 'one-shot': True})

    # -- images -------------------------------------------------------------

    def inspect_image(self, ref):
        try:
            with self.errors():
                return self.client.inspect_image(ref)
        except client_mod.EngineNotFound:
            return None

    def images(self):
        with self.errors():
            return self.client.get('/images/json', {'all': False})

    def pull(self, ref, auth=None, failure=None, progress=None):
        """Pull ``ref`` (``name@sha256:...`` or ``name:tag``); errors inside
        the 200 stream raise like any other."""
        headers = {}
        if auth:
            headers['X-Registry-Auth'] = base64.urlsafe_b64encode(
                json.dumps(auth).encode()).decode()
        with self.errors(failure=failure):
            return self.client.stream_json('POST', '/images/create',
                                           params={'fromImage': ref},
                                           headers=headers, progress=progress)

    def load(self, data, failure=None, progress=None):
        """POST /images/load of a Docker archive (bytes or an iterable of
        chunks); returns the names/ids it reports as loaded."""
        with self.errors(failure=failure):
            messages = self.client.stream_json(
                'POST', '/images/load', params={'quiet': True}, data=data,
                headers={'Content-Type': 'application/x-tar'}, progress=progress)
        loaded = []
        for msg in messages:
            text = (msg.get('stream') or '') if isinstance(msg, dict) else ''
            for line in text.splitlines():
                for prefix in ('Loaded image ID: ', 'Loaded image: '):
                    if line.startswith(prefix):
                        loaded.append(line[len(prefix):].strip())
        return loaded

    def tag(self, image, repo, tag):
        with self.errors():
            self.client.post('/images/%s/tag' % _q(image), {'repo': repo, 'tag': tag})

    def remove_image(self, ref, force=False):
        with self.errors():
            try:
                self.client.delete('/images/%s' % _q(ref), {'force': force})
            except client_mod.EngineNotFound:
                pass

    def containers_of_image(self, image_id):
        with self.errors():
            return self.client.containers(all=True, filters={'ancestor': [image_id]})


def _unframe(data):
    """Docker's multiplexed stream (8-byte headers) to plain bytes."""
    out = bytearray()
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i + 4:i + 8], 'big')
        out += data[i + 8:i + 8 + size]
        i += 8 + size
    return bytes(out)


def _trim_frames(data, keep):
    """Drop whole leading frames while more than ``keep`` bytes remain."""
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i + 4:i + 8], 'big')
        if len(data) - (i + 8 + size) < keep:
            break
        i += 8 + size
    return bytearray(data[i:])
