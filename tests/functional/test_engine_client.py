"""novadocker.client (shared by the Nova driver and the Heat plugin)
against the real engine: calls, error mapping, streamed errors."""

import os
import socket

import pytest

from novadocker import client as client_mod


@pytest.fixture
def client(engine):
    c = client_mod.EngineClient('unix://' + engine.sock, timeout=60)
    yield c
    c.close()


def test_calls_and_errors(client):
    assert client.ping() == 'OK'
    info = client.info()
    assert info['NCPU'] >= 1 and info['MemTotal'] > 0
    assert client.inspect_image('busybox:latest')['Id'].startswith('sha256:')
    with pytest.raises(client_mod.EngineNotFound) as err:
        client.inspect_container('no-such-container-%d' % os.getpid())
    assert err.value.status == 404
    assert 'No such container' in str(err.value)
    with pytest.raises(client_mod.EngineBadRequest) as err:
        client.post('/containers/create', json_body={'Image': 'busybox',
                                                     'HostConfig': {'Memory': 'lots'}})
    assert err.value.status == 400


def test_streamed_error_is_raised(client):
    # Nothing listens on this port: the pull fails inside the stream or
    # before it; either way it is an error naming the registry.
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    seen = []
    with pytest.raises(client_mod.EngineClientError) as err:
        client.stream_json('POST', '/images/create',
                           params={'fromImage': '127.0.0.1:%d/x/y' % port, 'tag': '1'},
                           progress=seen.append)
    assert '127.0.0.1:%d' % port in str(err.value)


def test_stream_messages_reach_progress(client, engine):
    seen = []
    # A real streamed answer: load what the engine saved.
    resp = client.request('GET', '/images/get', params={'names': 'busybox:latest'},
                          stream=True)
    data = resp.raw.read()
    resp.close()
    msgs = client.stream_json('POST', '/images/load', params={'quiet': '0'}, data=data,
                              headers={'Content-Type': 'application/x-tar'},
                              progress=seen.append)
    assert msgs == seen
    assert any('busybox:latest' in (m.get('stream') or '') for m in msgs)


def test_unreachable_and_refused_urls(tmp_path):
    c = client_mod.EngineClient('unix://%s/none.sock' % tmp_path, timeout=2)
    with pytest.raises(client_mod.EngineUnavailable) as err:
        c.ping()
    assert 'unreachable' in str(err.value)
    for url in ('http://127.0.0.1:2375', 'tcp://127.0.0.1:2375', 'unix://relative.sock'):
        with pytest.raises(ValueError):
            client_mod.EngineClient(url)
