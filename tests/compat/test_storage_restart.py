"""Volumes across engine restarts, crashes and auto-removal (engines of the tests' own)."""

import os

import pytest

pytestmark = pytest.mark.engine_only


def ok(res):
    assert res.returncode == 0, (res.stdout, res.stderr)
    return res.stdout


def volume_names(eng):
    status, data = eng.api_json('GET', '/volumes')
    assert status == 200, data
    return {v['Name'] for v in data['Volumes']}


def test_references_survive_restart_and_kill(engine_factory, docker_cli):
    eng = engine_factory()
    run = lambda args: docker_cli(args, host=eng.url)  # noqa: E731
    ok(run(['volume', 'create', 'keep']))
    ok(run(['create', '--name', 'idle', '-v', 'keep:/k', 'busybox', 'true']))
    ok(run(['run', '-d', '--name', 'busy', '-v', '/anon', 'busybox', 'sh', '-c',
            'echo live > /anon/f; sleep 300']))
    status, busy = eng.api_json('GET', '/containers/busy/json')
    anon = busy['Mounts'][0]['Name']
    eng.restart()
    for name, ref in (('keep', 'idle'), (anon, 'busy')):
        cid = eng.api_json('GET', '/containers/%s/json' % ref)[1]['Id']
        status, data = eng.api_json('DELETE', '/volumes/' + name)
        assert status == 409, data
        assert data['message'] == 'remove %s: volume is in use - [%s]' % (name, cid)
    # The running container still sees its volume after the restart.
    assert ok(run(['exec', 'busy', 'cat', '/anon/f'])) == 'live\n'
    eng.kill()
    eng.start()
    status, data = eng.api_json('DELETE', '/volumes/keep')
    assert status == 409, data
    ok(run(['rm', '-f', '-v', 'busy']))
    assert anon not in volume_names(eng)
    ok(run(['rm', 'idle']))
    ok(run(['volume', 'rm', 'keep']))
    assert volume_names(eng) == set()  # the factory checks the store at teardown


def test_interrupted_create_and_remove_are_cleaned_at_start(engine_factory, docker_cli):
    eng = engine_factory()
    ok(docker_cli(['volume', 'create', 'stays'], host=eng.url))
    eng.stop()
    vroot = os.path.join(eng.root, 'volumes')
    # What a SIGKILL in the middle of a create or a removal leaves.
    os.makedirs(os.path.join(vroot, '.tmp-abcdef', '_data'))
    os.makedirs(os.path.join(vroot, '.trash-123456', '_data', 'deep'))
    res = eng.check()
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'leftover' in res.stdout and 'interrupted create or removal' in res.stdout
    eng.start()
    assert sorted(os.listdir(vroot)) == ['stays']
    assert volume_names(eng) == {'stays'}


@pytest.mark.no_engine_check
def test_check_reports_a_container_whose_volume_vanished(engine_factory, docker_cli):
    eng = engine_factory()
    ok(docker_cli(['create', '--name', 'cv', '-v', 'gone:/g', 'busybox', 'true'],
                  host=eng.url))
    eng.stop()
    import shutil
    shutil.rmtree(os.path.join(eng.root, 'volumes', 'gone'))
    res = eng.check()
    assert res.returncode == 1
    assert 'uses missing volume gone' in res.stdout
    eng.start()
    res = docker_cli(['start', 'cv'], host=eng.url)
    assert res.returncode != 0 and 'no such volume' in res.stderr


def test_auto_remove_takes_anonymous_volumes_only(engine_factory, docker_cli):
    eng = engine_factory()
    run = lambda args: docker_cli(args, host=eng.url)  # noqa: E731
    out = ok(run(['run', '--rm', '-v', '/anon', '-v', 'named:/n', 'busybox', 'sh', '-c',
                  'echo ok > /anon/f && cat /anon/f']))
    assert out == 'ok\n'
    # docker run --rm returns once the container is gone; the volume follows
    # right after it.
    import time
    deadline = time.monotonic() + 10
    while volume_names(eng) != {'named'} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert volume_names(eng) == {'named'}
    # A failed start of an auto-remove container releases its volumes too.
    res = run(['run', '--rm', '-v', '/anon2', 'busybox', '/no/such/binary'])
    assert res.returncode != 0
    deadline = time.monotonic() + 10
    while volume_names(eng) != {'named'} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert volume_names(eng) == {'named'}


def _mounted(path):
    with open('/proc/self/mountinfo') as f:
        return (' %s ' % path) in f.read()


def test_tmpfs_volume_mount_follows_its_users_across_a_kill(engine_factory, docker_cli):
    eng = engine_factory()
    run = lambda args: docker_cli(args, host=eng.url)  # noqa: E731
    ok(run(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs',
            '--opt', 'o=size=1m', 'mem']))
    data = os.path.join(eng.root, 'volumes', 'mem', '_data')
    ok(run(['run', '-d', '--name', 'user', '-v', 'mem:/m', 'busybox', 'sh', '-c',
            'echo kept > /m/f; sleep 300']))
    assert _mounted(data)
    eng.kill()
    eng.start()
    # Still mounted for the running container; later users share it.
    assert _mounted(data)
    assert ok(run(['run', '--rm', '-v', 'mem:/m', 'busybox', 'cat', '/m/f'])) == 'kept\n'
    assert _mounted(data)
    ok(run(['stop', '-t', '0', 'user']))
    assert not _mounted(data)
    ok(run(['rm', 'user']))
    ok(run(['volume', 'rm', 'mem']))
