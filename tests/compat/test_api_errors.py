"""Bad input over raw HTTP on the unix socket (http.client on AF_UNIX, no
client library): Docker's status codes, JSON ``{"message": ...}`` bodies,
no tracebacks, and nothing half-created."""

import json
import os
import uuid

import pytest

from tests import daemons
from tests.compat.conftest import container_dirs, inspect

pytestmark = pytest.mark.compat

TRACE_MARKERS = ('Traceback (most recent call last)', 'File "/', '.py", line')


def raw(engine, method, path, body=None, headers=None):
    """(status, headers, body bytes); ``body`` bytes are sent untouched."""
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    if body is not None:
        hdrs.setdefault('Content-Type', 'application/json')
    return daemons.api(engine.sock, method, path, body, headers=hdrs)


def assert_error(result, status, contains=None):
    code, headers, body = result
    text = body.decode(errors='replace')
    assert code == status, (code, text)
    assert headers.get('content-type', '').startswith('application/json'), \
        headers
    data = json.loads(body)
    assert isinstance(data, dict) and isinstance(data.get('message'), str), \
        text
    assert data['message'].strip(), text
    for marker in TRACE_MARKERS:
        assert marker not in text, 'traceback-like text in %r' % text
    if contains:
        assert contains.lower() in data['message'].lower(), data['message']
    return data['message']


def all_containers(engine):
    status, data = daemons.api_json(engine.sock, 'GET',
                                    '/containers/json?all=1')
    assert status == 200
    return sorted(c['Id'] for c in data)


@pytest.fixture
def running(engine, names):
    """A running busybox container's name."""
    name = names('api')
    status, _, body = raw(engine, 'POST', '/containers/create?name=' + name,
                          {'Image': 'busybox', 'Cmd': ['sleep', '300']})
    assert status == 201, body
    status, _, body = raw(engine, 'POST', '/containers/%s/start' % name)
    assert status == 204, body
    return name


# --------------------------------------------------------------------------
# malformed and mistyped bodies


@pytest.mark.stricter_than_docker2010
@pytest.mark.parametrize('body', [
    b'{"Image": "busybox", ',
    b'not json at all',
    b'{"Image": "busybox"}}',
    b'[1, 2, 3]',
    b'"busybox"',
    b'\xff\xfe{',
], ids=['truncated', 'text', 'trailing', 'array', 'string', 'binary'])
def test_malformed_json_is_400(engine, body):
    before = all_containers(engine)
    assert_error(raw(engine, 'POST', '/containers/create', body), 400)
    assert all_containers(engine) == before


@pytest.mark.stricter_than_docker2010
@pytest.mark.parametrize('body', [
    {'Image': 'busybox', 'Cmd': 5},
    {'Image': 5},
    {'Image': 'busybox', 'Env': 'FOO=bar'},
    {'Image': 'busybox', 'Env': [1, 2]},
    {'Image': 'busybox', 'Labels': ['a', 'b']},
    {'Image': 'busybox', 'Tty': 'yes please'},
    {'Image': 'busybox', 'HostConfig': {'Memory': 'lots'}},
    {'Image': 'busybox', 'HostConfig': 'host'},
    {'Image': 'busybox', 'Entrypoint': {'a': 1}},
], ids=['cmd-int', 'image-int', 'env-string', 'env-ints', 'labels-list',
        'tty-string', 'memory-string', 'hostconfig-string', 'entrypoint-obj'])
def test_wrong_types_are_400(engine, body):
    before, dirs = all_containers(engine), container_dirs(engine)
    assert_error(raw(engine, 'POST', '/containers/create', body), 400)
    assert all_containers(engine) == before
    assert container_dirs(engine) == dirs


@pytest.mark.stricter_than_docker2010
def test_missing_image_field_is_a_client_error(engine):
    code, _, body = raw(engine, 'POST', '/containers/create',
                        {'Cmd': ['true']})
    assert 400 <= code < 500, (code, body)
    assert_error((code, {'content-type': 'application/json'}, body), code)


def test_unknown_image_on_create_is_404(engine):
    before = all_containers(engine)
    assert_error(raw(engine, 'POST', '/containers/create',
                     {'Image': 'compat-no-such-image:1'}),
                 404, 'No such image')
    assert all_containers(engine) == before


@pytest.mark.parametrize('ref', ['UPPER:case', 'busybox:bad tag',
                                 'a//b', ':nothing'])
def test_bad_image_reference_on_create_is_400(engine, ref):
    before = all_containers(engine)
    assert_error(raw(engine, 'POST', '/containers/create', {'Image': ref}),
                 400)
    assert all_containers(engine) == before


@pytest.mark.parametrize('name', ['bad name', '../etc', 'a/b', '-dash', 'x',
                                  'a' * 5 + '!'])
def test_bad_container_name_is_400(engine, name):
    from urllib.parse import quote
    before = all_containers(engine)
    msg = assert_error(raw(engine, 'POST', '/containers/create?name=%s'
                           % quote(name, safe=''),
                           {'Image': 'busybox'}), 400)
    assert 'name' in msg.lower()
    assert all_containers(engine) == before


def test_name_conflict_is_409_and_leaves_one_container(engine, names):
    name = names('dup')
    status, _, body = raw(engine, 'POST', '/containers/create?name=' + name,
                          {'Image': 'busybox'})
    assert status == 201, body
    first = json.loads(body)['Id']
    before, dirs = all_containers(engine), container_dirs(engine)
    msg = assert_error(raw(engine, 'POST', '/containers/create?name=' + name,
                           {'Image': 'busybox'}), 409)
    assert 'already in use' in msg or 'Conflict' in msg
    assert all_containers(engine) == before
    assert container_dirs(engine) == dirs
    assert inspect(engine, name)['Id'] == first


@pytest.mark.stricter_than_docker2010
def test_failed_creates_leave_nothing_behind(engine, names):
    """No record in the list and no directory under ROOT/containers."""
    name = names('taken')
    status, _, _ = raw(engine, 'POST', '/containers/create?name=' + name,
                       {'Image': 'busybox'})
    assert status == 201
    before, dirs = all_containers(engine), container_dirs(engine)
    assert dirs, 'expected container directories under %s' % engine.root
    bad = [
        ('/containers/create', b'{"Image": '),
        ('/containers/create', {'Image': 'busybox', 'Cmd': 5}),
        ('/containers/create', {'Image': 'compat-no-such-image:9'}),
        ('/containers/create?name=bad%20name', {'Image': 'busybox'}),
        ('/containers/create?name=' + name, {'Image': 'busybox'}),
        ('/containers/create', {'Image': 'busybox',
                                'HostConfig': {'CapAdd': ['NOT_A_CAP']}}),
    ]
    for path, body in bad:
        code, _, data = raw(engine, 'POST', path, body)
        assert 400 <= code < 500, (path, body, code, data)
        assert_error((code, {'content-type': 'application/json'}, data), code)
    assert all_containers(engine) == before
    assert container_dirs(engine) == dirs


# --------------------------------------------------------------------------
# unknown objects


@pytest.mark.parametrize('method,path', [
    ('GET', '/containers/%s/json'),
    ('POST', '/containers/%s/start'),
    ('POST', '/containers/%s/stop'),
    ('POST', '/containers/%s/restart'),
    ('POST', '/containers/%s/kill'),
    ('POST', '/containers/%s/pause'),
    ('POST', '/containers/%s/wait'),
    ('POST', '/containers/%s/rename?name=compat-whatever'),
    ('GET', '/containers/%s/logs?stdout=1'),
    ('GET', '/containers/%s/export'),
    ('DELETE', '/containers/%s'),
    ('DELETE', '/containers/%s?force=1'),
])
def test_unknown_container_is_404(engine, method, path):
    missing = 'compat-missing-' + uuid.uuid4().hex[:8]
    assert_error(raw(engine, method, path % missing), 404,
                 'No such container')


def test_unknown_container_on_exec_and_commit_is_404(engine):
    missing = 'compat-missing-' + uuid.uuid4().hex[:8]
    assert_error(raw(engine, 'POST', '/containers/%s/exec' % missing,
                     {'Cmd': ['true']}), 404, 'No such container')
    assert_error(raw(engine, 'POST', '/commit?container=%s&repo=x' % missing,
                     {}), 404, 'No such container')
    assert_error(raw(engine, 'GET', '/exec/%s/json' % ('0' * 64)), 404)


@pytest.mark.parametrize('method,path', [
    ('GET', '/images/%s/json'),
    ('GET', '/images/%s/history'),
    ('DELETE', '/images/%s'),
    ('POST', '/images/%s/tag?repo=compat-x&tag=1'),
    ('GET', '/images/%s/get'),
])
def test_unknown_image_is_404(engine, method, path):
    # Docker words the export (``/get``) case differently.
    assert_error(raw(engine, method, path % 'compat-no-such-image:1'), 404,
                 None if path.endswith('/get') else 'No such image')


def test_unknown_route_is_404_json(engine):
    assert_error(raw(engine, 'GET', '/no/such/endpoint'), 404)


# --------------------------------------------------------------------------
# bad parameters and states


@pytest.mark.stricter_than_docker2010
def test_bad_tag_reference_is_400(engine):
    assert_error(raw(engine, 'POST', '/images/busybox/tag?repo=UPPER&tag=x'),
                 400)
    assert_error(raw(engine, 'POST',
                     '/images/busybox/tag?repo=compat-ok&tag=bad%20tag'), 400)
    code, _, _ = raw(engine, 'GET', '/images/UPPER:x/json')
    assert code in (400, 404)
    code, _, _ = raw(engine, 'GET', '/images/compat-ok:bad%20tag/json')
    assert code in (400, 404)


@pytest.mark.stricter_than_docker2010
def test_bad_filters_are_400(engine):
    assert_error(raw(engine, 'GET', '/containers/json?filters=notjson'), 400)
    assert_error(raw(engine, 'GET', '/images/json?filters=%7B'), 400)


def test_logs_without_streams_is_400(engine, running):
    assert_error(raw(engine, 'GET', '/containers/%s/logs' % running), 400)


def test_kill_with_bad_signal_is_400(engine, running):
    assert_error(raw(engine, 'POST',
                     '/containers/%s/kill?signal=NOPE' % running), 400)
    assert inspect(engine, running)['State']['Running'] is True


@pytest.mark.stricter_than_docker2010
def test_state_conflicts(engine, running):
    # Starting a running container: 304, no body needed.
    code, _, _ = raw(engine, 'POST', '/containers/%s/start' % running)
    assert code == 304
    # Removing a running container without force: 409.
    assert_error(raw(engine, 'DELETE', '/containers/%s' % running), 409)
    # Unpausing a running container that is not paused: 409.
    assert_error(raw(engine, 'POST', '/containers/%s/unpause' % running), 409)
    code, _, body = raw(engine, 'POST', '/containers/%s/kill' % running)
    assert code == 204, body
    # Stopping an exited container: 304.
    code, _, _ = raw(engine, 'POST', '/containers/%s/stop' % running)
    assert code == 304
    # exec in a stopped container: 409.
    assert_error(raw(engine, 'POST', '/containers/%s/exec' % running,
                     {'Cmd': ['true']}), 409)
    assert_error(raw(engine, 'POST', '/containers/%s/pause' % running), 409)


def test_rmi_in_use_is_409_conflict(engine, names, images_to_remove):
    ref = 'compat-inuse-%s:1' % names.suffix
    images_to_remove.append(ref)
    code, _, body = raw(engine, 'POST', '/images/busybox/tag?repo=%s&tag=1'
                        % ref.split(':')[0])
    assert code == 201, body
    name = names('inuse')
    code, _, body = raw(engine, 'POST', '/containers/create?name=' + name,
                        {'Image': ref})
    assert code == 201, body
    image_id = inspect(engine, ref, 'images')['Id']
    assert_error(raw(engine, 'DELETE', '/images/' + image_id), 409,
                 'conflict')
    assert inspect(engine, ref, 'images')['Id'] == image_id


# --------------------------------------------------------------------------
# ping and versions


def test_ping_get_and_head(engine):
    code, headers, body = raw(engine, 'GET', '/_ping')
    assert code == 200 and body == b'OK'
    version = headers.get('api-version')
    assert version and version.startswith('1.')
    code, headers, body = raw(engine, 'HEAD', '/_ping')
    assert code == 200 and body == b''
    assert headers.get('api-version') == version
    status, data = daemons.api_json(engine.sock, 'GET', '/version')
    assert data['ApiVersion'] == version
    # Versioned ping works too.
    code, _, body = raw(engine, 'GET', '/v1.24/_ping')
    assert code == 200 and body == b'OK'


def _num(v):
    major, minor = v.split('.')
    return int(major), int(minor)


@pytest.mark.stricter_than_docker2010
def test_versions(engine):
    status, data = daemons.api_json(engine.sock, 'GET', '/version')
    assert status == 200
    assert data['Os'] == 'linux'
    assert _num(data['ApiVersion']) >= _num(data['MinAPIVersion'])
    newest, oldest = data['ApiVersion'], data['MinAPIVersion']
    for v in sorted({oldest, '1.24', newest}, key=_num):
        if _num(oldest) <= _num(v) <= _num(newest):
            status, d = daemons.api_json(engine.sock, 'GET',
                                         '/v%s/version' % v)
            assert status == 200, (v, d)
            assert d['ApiVersion'] == newest
    below = '1.%d' % (_num(oldest)[1] - 1)
    assert_error(raw(engine, 'GET', '/v%s/version' % below), 400, 'too old')
    assert_error(raw(engine, 'GET', '/v1.999/version'), 400, 'too new')


@pytest.mark.engine_only
def test_api_range_for_clients_2010_to_29(engine):
    """1.24 is the minimum and 1.44 or newer the maximum; v1.12 is too old."""
    status, data = daemons.api_json(engine.sock, 'GET', '/version')
    assert data['MinAPIVersion'] == '1.24'
    assert _num(data['ApiVersion']) >= (1, 44)
    for v in ('1.24', '1.41', '1.44'):
        status, d = daemons.api_json(engine.sock, 'GET', '/v%s/version' % v)
        assert status == 200, (v, d)
    assert_error(raw(engine, 'GET', '/v1.12/version'), 400)
    assert_error(raw(engine, 'GET', '/v1.12/containers/json'), 400)


def test_error_bodies_under_versioned_paths(engine):
    assert_error(raw(engine, 'GET', '/v1.41/containers/compat-nope/json'),
                 404, 'No such container')
    assert_error(raw(engine, 'POST', '/v1.44/containers/create', b'{'), 400)


def test_engine_log_has_no_unhandled_errors_for_bad_input(engine):
    """Bad input is a client error, never an unhandled exception."""
    if not os.path.exists(getattr(engine, 'log_path', '')):
        pytest.skip('no engine log')
    raw(engine, 'POST', '/containers/create', b'{"Image": ')
    raw(engine, 'POST', '/containers/create', {'Image': 'busybox', 'Cmd': 5})
    with open(engine.log_path, errors='replace') as f:
        log = f.read()
    assert 'Traceback' not in log, log[log.index('Traceback') - 2000:][:6000]
