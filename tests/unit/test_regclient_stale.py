"""A pooled keep-alive connection the registry closed meanwhile: requests that
can be sent again are, once; others fail as before."""

import http.client
import unittest

import requests
import urllib3

from engine import errors
from engine.registry import tls as tls_mod
from engine.registry import transport


def _aborted():
    # What requests raises when a reused connection turns out to be closed.
    return requests.ConnectionError(urllib3.exceptions.ProtocolError(
        'Connection aborted.', http.client.RemoteDisconnected(
            'Remote end closed connection without response')))


def _refused():
    return requests.ConnectionError(urllib3.exceptions.NewConnectionError(
        None, 'Failed to establish a new connection: [Errno 111] Connection refused'))


class _Response(object):
    def __init__(self, status):
        self.status_code = status
        self.headers = {}

    def close(self):
        pass


class _Session(object):
    """Answers from a script: an exception to raise or a status to return."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []
        self.headers = {}

    def request(self, method, url, **kw):
        self.calls.append((method, url))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return _Response(step)


class StaleConnectionTest(unittest.TestCase):
    def client(self, script):
        session = _Session(script)
        tls = tls_mod.TLSSettings('/nonexistent', [], '/nonexistent')
        c = transport.Client(transport.Settings(retries=0), tls, 'registry.example:5000',
                             session=session, sleep=lambda s: None, known_endpoints={})
        return c, session

    def test_ping_tries_a_stale_connection_once_more(self):
        c, session = self.client([_aborted(), 200])
        c.ping()
        self.assertEqual(2, len(session.calls))
        self.assertEqual('https', c.endpoint.scheme)

    def test_ping_does_not_retry_a_refused_connection(self):
        c, session = self.client([_refused()])
        self.assertRaises(errors.RegistryError, c.ping)
        self.assertEqual(1, len(session.calls))

    def client_with_endpoint(self, script):
        c, session = self.client(script)
        c.endpoint = c.tls.endpoints(c.host)[0]
        return c, session

    def test_put_of_bytes_is_sent_again_after_a_stale_connection(self):
        c, session = self.client_with_endpoint([_aborted(), 201])
        resp = c._retrying('PUT', 'https://registry.example:5000/v2/x', data=b'blob')
        self.assertEqual(201, resp.status_code)
        self.assertEqual(2, len(session.calls))

    def test_patch_is_not_sent_again(self):
        c, session = self.client_with_endpoint([_aborted()])
        self.assertRaises(errors.RegistryError, c._retrying, 'PATCH',
                          'https://registry.example:5000/v2/x', data=b'chunk')
        self.assertEqual(1, len(session.calls))

    def test_put_is_not_retried_on_a_server_error(self):
        c, session = self.client_with_endpoint([500])
        self.assertEqual(500, c._retrying('PUT', 'https://registry.example:5000/v2/x',
                                          data=b'm').status_code)
        self.assertEqual(1, len(session.calls))
