"""TLS settings per registry, in Docker's layout and with Docker's rules.

* ``<certs_dir>/<host:port>/*.crt`` are CA certificates trusted for that
  registry on top of the system bundle; ``client.cert`` + ``client.key`` a
  client certificate (one without the other is an error, as Docker says).
* A registry is *insecure* when it is localhost, ::1, in 127.0.0.0/8, or
  named by the ``[registry] insecure_registries`` option (host, host:port or
  a CIDR network): then TLS is not verified and plain HTTP is the fallback.
"""

import collections
import glob
import hashlib
import ipaddress
import os

import requests

from engine import errors
from engine import util

# ``verify``/``cert`` are what requests takes; ``scheme`` https or http.
Endpoint = collections.namedtuple('Endpoint', 'scheme host verify cert')


def split_host(host):
    """``(hostname, port or None)`` of ``host[:port]`` (IPv6 in brackets)."""
    if host.startswith('['):
        end = host.find(']')
        name = host[1:end]
        rest = host[end + 1:]
        return name, rest[1:] if rest.startswith(':') else None
    name, _, port = host.partition(':')
    return name, port or None


def _ip(name):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_insecure(host, insecure_registries=()):
    """Docker's rule: loopback always, plus the configured entries."""
    name, _port = split_host(host)
    ip = _ip(name)
    if name == 'localhost' or (ip is not None and ip.is_loopback):
        return True
    for entry in insecure_registries or ():
        entry = entry.strip()
        if not entry:
            continue
        if entry == host or entry == name:
            return True
        if '/' in entry and ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


class TLSSettings(object):
    """Builds the endpoints to try for a registry host."""

    def __init__(self, certs_dir, insecure_registries, bundle_dir):
        self.certs_dir = certs_dir
        self.insecure_registries = list(insecure_registries or ())
        self.bundle_dir = bundle_dir

    def host_dir(self, host):
        if not self.certs_dir or '/' in host or host in ('.', '..'):
            return None
        path = os.path.join(self.certs_dir, host)
        return path if os.path.isdir(path) else None

    def _ca_bundle(self, cas):
        """A file with the system CAs plus ``cas`` (requests takes one file)."""
        data = b''
        try:
            with open(requests.utils.DEFAULT_CA_BUNDLE_PATH, 'rb') as f:
                data = f.read()
        except OSError:
            pass
        for path in cas:
            with open(path, 'rb') as f:
                data += b'\n' + f.read() + b'\n'
        name = hashlib.sha256(data).hexdigest()[:32] + '.pem'
        util.makedirs(self.bundle_dir)
        path = os.path.join(self.bundle_dir, name)
        if not os.path.exists(path):
            util.atomic_write(path, data, mode=0o644)
        return path

    def client_cert(self, host):
        d = self.host_dir(host)
        if d is None:
            return None
        certs = sorted(glob.glob(os.path.join(d, '*.cert')))
        keys = sorted(glob.glob(os.path.join(d, '*.key')))
        for c in certs:
            key = c[:-len('.cert')] + '.key'
            if not os.path.exists(key):
                raise errors.RegistryError(
                    'missing key %s for client certificate %s'
                    % (os.path.basename(key), c))
        for k in keys:
            cert = k[:-len('.key')] + '.cert'
            if not os.path.exists(cert):
                raise errors.RegistryError(
                    'missing client certificate %s for key %s'
                    % (os.path.basename(cert), k))
        if certs:
            c = certs[0]
            return (c, c[:-len('.cert')] + '.key')
        return None

    def endpoints(self, host):
        """Endpoints to try in order: HTTPS (verified unless insecure), then
        plain HTTP for insecure registries."""
        d = self.host_dir(host)
        cas = sorted(glob.glob(os.path.join(d, '*.crt'))) if d else []
        cert = self.client_cert(host)
        if is_insecure(host, self.insecure_registries):
            return [Endpoint('https', host, False, cert),
                    Endpoint('http', host, False, None)]
        verify = self._ca_bundle(cas) if cas else True
        return [Endpoint('https', host, verify, cert)]
