"""Restart policies observed through real exits (docker CLI, docker-py and
the API against the session engine; engines of their own for restarts of
the engine itself)."""

import json
import os
import signal
import time

import pytest

from engine import util
from tests import daemons
from tests.compat.conftest import inspect, wait_for

pytestmark = [pytest.mark.compat]


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def state(engine, name):
    data = inspect(engine, name)
    return data['State'], data['RestartCount']


def settled(engine, name, status, timeout=30):
    """Wait until the container is in ``status``; return its inspect."""
    return wait_for(lambda: (lambda d: d if d['State']['Status'] == status else None)(
        inspect(engine, name)), timeout=timeout, what='%s to be %s' % (name, status))


def test_on_failure_retries_then_stays_exited(docker_cli, engine, names):
    name = names('onfail')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'on-failure:2',
                   'busybox', 'sh', '-c', 'echo run; exit 3']))
    data = wait_for(lambda: (lambda d: d if d['RestartCount'] == 2
                             and d['State']['Status'] == 'exited' else None)(
        inspect(engine, name)), timeout=30, what='two retries then exited')
    assert data['State']['ExitCode'] == 3
    assert data['HostConfig']['RestartPolicy'] == {'Name': 'on-failure',
                                                  'MaximumRetryCount': 2}
    time.sleep(1.5)  # nothing more comes: the budget is spent
    data = inspect(engine, name)
    assert data['RestartCount'] == 2 and data['State']['Status'] == 'exited'
    # Three runs, each wrote its line to the log.
    assert ok(docker_cli(['logs', name])).stdout.split() == ['run'] * 3


def test_on_failure_does_not_restart_success(docker_cli, engine, names):
    name = names('onfail0')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'on-failure',
                   'busybox', 'true']))
    settled(engine, name, 'exited')
    time.sleep(0.5)
    assert state(engine, name)[1] == 0


def test_always_restarts_after_exit_zero_with_backoff_and_events(docker_cli, engine, names):
    name = names('always')
    since = str(time.time())
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'always',
                   'busybox', 'sh', '-c', 'echo up; exit 0']))
    wait_for(lambda: inspect(engine, name)['RestartCount'] >= 5, timeout=30,
             what='five restarts')
    ok(docker_cli(['stop', name]))
    data = inspect(engine, name)
    assert data['State']['Status'] == 'exited'
    count = data['RestartCount']
    time.sleep(1)
    assert inspect(engine, name)['RestartCount'] == count, 'restarted after docker stop'
    lines = ok(docker_cli(['logs', '--timestamps', name])).stdout.splitlines()
    starts = [util.parse_rfc3339(line.split()[0]) for line in lines]
    assert len(starts) >= 5
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # 100 ms, 200, 400, 800 ...: each wait at least as long as the delay.
    assert gaps[3] >= 0.7, gaps
    assert gaps[3] > gaps[0], gaps
    # die then start for each restart, as Docker.
    res = ok(docker_cli(['events', '--since', since, '--until', str(time.time()),
                         '--filter', 'container=' + name, '--format', '{{.Action}}']))
    actions = [a for a in res.stdout.split() if a in ('start', 'die')]
    assert actions[:6] == ['start', 'die', 'start', 'die', 'start', 'die'], actions


def test_restarting_state_in_inspect_and_ps(docker_cli, engine, names):
    """During the backoff the container is restarting; stop cancels it."""
    name = names('restarting')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'always',
                   'busybox', 'false']))
    # After a few quick restarts the delay is long enough to catch.
    wait_for(lambda: inspect(engine, name)['RestartCount'] >= 6, timeout=30,
             what='six restarts')
    data = settled(engine, name, 'restarting', timeout=20)
    st = data['State']
    assert st['Restarting'] is True and st['Running'] is True and st['Pid'] == 0
    assert st['ExitCode'] == 1
    res = ok(docker_cli(['ps', '--filter', 'name=' + name, '--format', '{{.Status}}']))
    assert res.stdout.startswith('Restarting (1) '), res.stdout
    res = ok(docker_cli(['ps', '--filter', 'status=restarting', '--format', '{{.Names}}']))
    assert name in res.stdout.split()
    ok(docker_cli(['stop', name]))
    data = inspect(engine, name)
    assert data['State']['Status'] == 'exited'
    assert data['State']['Restarting'] is False and data['State']['Running'] is False
    count = data['RestartCount']
    time.sleep(2)
    assert inspect(engine, name)['RestartCount'] == count


def test_rm_force_during_backoff_starts_nothing(docker_cli, engine, names):
    name = names('rmbackoff')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'always',
                   'busybox', 'sh', '-c', 'exit 2']))
    wait_for(lambda: inspect(engine, name)['RestartCount'] >= 5, timeout=30,
             what='five restarts')
    cid = settled(engine, name, 'restarting', timeout=20)['Id']
    res = docker_cli(['rm', name])
    assert res.returncode != 0 and 'restarting container' in res.stderr, res.stderr
    ok(docker_cli(['rm', '-f', name]))
    assert inspect(engine, name) is None
    time.sleep(3)  # longer than the pending delay
    assert inspect(engine, name) is None
    assert cid not in os.listdir(os.path.join(engine.root, 'containers'))
    # no monitor of it left behind
    assert not daemons.pids_mentioning(cid)


def test_docker_stop_and_kill_of_always_stay_stopped(docker_cli, engine, names):
    name = names('stopalways')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'always',
                   'busybox', 'sleep', '300']))
    ok(docker_cli(['stop', '-t', '1', name]))
    time.sleep(1)
    data = inspect(engine, name)
    assert data['State']['Status'] == 'exited' and data['RestartCount'] == 0
    # docker start re-arms the policy: a kill inside the container restarts it.
    ok(docker_cli(['start', name]))
    pid = inspect(engine, name)['State']['Pid']
    os.kill(pid, signal.SIGKILL)  # not through the API: not a manual stop
    wait_for(lambda: (lambda d: d['RestartCount'] == 1 and d['State']['Status'] == 'running'
                      and d['State']['Pid'] != pid)(inspect(engine, name)),
             what='restart after the process was killed')
    ok(docker_cli(['kill', name]))
    time.sleep(1)
    data = inspect(engine, name)
    assert data['State']['Status'] == 'exited' and data['RestartCount'] == 1


def test_docker_restart_counts_as_manual_and_resets_count(docker_cli, engine, names):
    name = names('manualrestart')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'on-failure:5',
                   'busybox', 'sh', '-c', 'sleep 0.3; exit 1']))
    wait_for(lambda: inspect(engine, name)['RestartCount'] >= 1, what='a restart')
    ok(docker_cli(['restart', '-t', '1', name]))
    data = inspect(engine, name)
    assert data['RestartCount'] == 0, data['RestartCount']
    ok(docker_cli(['stop', name]))


def test_wait_returns_on_exit_of_a_restarting_container(docker_cli, engine, names):
    name = names('wait')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'on-failure:1',
                   'busybox', 'sh', '-c', 'sleep 1; exit 4']))
    res = ok(docker_cli(['wait', name], timeout=30))
    assert res.stdout.strip() == '4'


def test_docker_py_restart_policy(engine, names):
    docker = pytest.importorskip('docker')
    client = docker.DockerClient(base_url=engine.url, version='1.41')
    name = names('dockerpy')
    try:
        c = client.containers.run('busybox', ['sh', '-c', 'exit 5'], name=name, detach=True,
                                  restart_policy={'Name': 'on-failure',
                                                  'MaximumRetryCount': 1})
        wait_for(lambda: (c.reload() or c.attrs['RestartCount'] == 1)
                 and c.status == 'exited', timeout=30, what='one retry')
        assert c.attrs['State']['ExitCode'] == 5
        with pytest.raises(docker.errors.APIError) as exc:
            client.containers.create('busybox', 'true', name=names('bad'),
                                     restart_policy={'Name': 'always',
                                                     'MaximumRetryCount': 3})
        assert exc.value.status_code == 400
        assert "maximum retry count cannot be used with restart policy 'always'" in str(
            exc.value)
    finally:
        client.close()


@pytest.mark.parametrize('policy, message', [
    ({'Name': 'sometimes'}, "invalid restart policy 'sometimes'"),
    ({'Name': 'always', 'MaximumRetryCount': 2},
     "maximum retry count cannot be used with restart policy 'always'"),
    ({'Name': 'unless-stopped', 'MaximumRetryCount': 1},
     "maximum retry count cannot be used with restart policy 'unless-stopped'"),
    ({'Name': 'on-failure', 'MaximumRetryCount': -1},
     'maximum retry count cannot be negative'),
    pytest.param({'Name': 'on-failure', 'MaximumRetryCount': '3'}, 'must be an integer',
                 marks=pytest.mark.stricter_than_docker2010),
])
def test_bad_restart_policy_is_400_and_creates_nothing(engine, names, policy, message):
    name = names('badpolicy')
    before = daemons.container_dirs(engine.root)
    status, data = daemons.api_json(
        engine.sock, 'POST', '/containers/create?name=' + name,
        {'Image': 'busybox', 'Cmd': ['true'], 'HostConfig': {'RestartPolicy': policy}})
    assert status == 400, data
    assert message in data['message']
    assert inspect(engine, name) is None
    assert daemons.container_dirs(engine.root) == before


def test_restart_with_rm_conflicts(docker_cli, engine, names):
    name = names('rmrestart')
    status, data = daemons.api_json(
        engine.sock, 'POST', '/containers/create?name=' + name,
        {'Image': 'busybox', 'Cmd': ['true'],
         'HostConfig': {'AutoRemove': True, 'RestartPolicy': {'Name': 'always'}}})
    assert status == 400
    # Docker 28's CLI wording (Docker 20.10's daemon says "can't create
    # 'AutoRemove' container with restart policy").
    assert ('cannot specify both --restart and --rm' in data['message']
            or "can't create 'AutoRemove' container with restart policy" in data['message'])
    assert inspect(engine, name) is None


# -- across engine restarts ---------------------------------------------------

@pytest.mark.engine_only
def test_policies_across_engine_restart(engine_factory, docker_cli, names):
    """Stop the engine, let containers exit meanwhile, start it again."""
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    always, unless, onfail, plain = (names('always'), names('unless'), names('onfail'),
                                     names('plain'))
    stopped_always, stopped_unless = names('stopped-always'), names('stopped-unless')
    for name, policy in ((always, 'always'), (unless, 'unless-stopped'),
                         (onfail, 'on-failure:3'), (plain, 'no')):
        ok(cli(['run', '-d', '--name', name, '--restart', policy, 'busybox', 'sleep', '300']))
    for name, policy in ((stopped_always, 'always'), (stopped_unless, 'unless-stopped')):
        ok(cli(['run', '-d', '--name', name, '--restart', policy, 'busybox', 'sleep', '300']))
        ok(cli(['stop', '-t', '0', name]))
    pids = {n: inspect(eng, n)['State']['Pid'] for n in (always, unless, onfail, plain)}
    eng.stop()
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)  # exit 137 while the engine is away
    time.sleep(1)
    eng.start()
    for name in (always, unless, onfail, stopped_always):
        data = wait_for(lambda: (lambda d: d if d['State']['Status'] == 'running' else None)(
            inspect(eng, name)), timeout=30, what='%s to be restarted' % name)
        assert data['State']['Pid'] not in pids.values()
    time.sleep(1)
    for name in (plain, stopped_unless):
        data = inspect(eng, name)
        assert data['State']['Status'] == 'exited', (name, data['State'])
    assert inspect(eng, plain)['State']['ExitCode'] == 137
    assert inspect(eng, onfail)['RestartCount'] == 1


@pytest.mark.engine_only
def test_pending_restart_survives_engine_restart(engine_factory, docker_cli, names):
    """The engine stops while a restart waits out its delay: the next engine
    starts the container."""
    eng = engine_factory()
    name = names('pending')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'always', 'busybox',
                   'sh', '-c', 'sleep 0.2; false'], host=eng.url))
    wait_for(lambda: inspect(eng, name)['RestartCount'] >= 6, timeout=40,
             what='six restarts')
    settled(eng, name, 'restarting')
    eng.stop()
    record = json.load(open(os.path.join(eng.root, 'containers',
                                         inspect_id(eng, name), 'container.json')))
    assert record['State']['Status'] == 'restarting'
    eng.start()
    wait_for(lambda: inspect(eng, name)['State']['Status'] == 'running', timeout=30,
             what='restart by the new engine')
    ok(docker_cli(['rm', '-f', name], host=eng.url))


def inspect_id(eng, name):
    for cid in daemons.container_dirs(eng.root):
        rec = json.load(open(os.path.join(eng.root, 'containers', cid, 'container.json')))
        if rec['Name'] == '/' + name:
            return cid
    raise AssertionError('no record for %s' % name)


@pytest.mark.engine_only
def test_no_thread_left_after_restart_loops_are_removed(engine_factory, docker_cli, names):
    """Crash-looping containers removed during their backoff leave no timer,
    worker or watcher thread behind in the engine."""
    eng = engine_factory()

    def threads():
        return len(os.listdir('/proc/%d/task' % eng.pid))

    warm = names('warm')  # starts the engine's long-lived helper threads
    ok(docker_cli(['run', '-d', '--name', warm, '--restart', 'always', 'busybox',
                   'false'], host=eng.url))
    wait_for(lambda: inspect(eng, warm)['RestartCount'] >= 2, what='warm-up restarts')
    ok(docker_cli(['rm', '-f', warm], host=eng.url))
    time.sleep(1)
    before = threads()
    loops = [names('loop') for _ in range(4)]
    for name in loops:
        ok(docker_cli(['run', '-d', '--name', name, '--restart', 'always', '--log-opt',
                       'max-size=10k', 'busybox', 'false'], host=eng.url))
    for name in loops:
        wait_for(lambda: inspect(eng, name)['RestartCount'] >= 4, timeout=30,
                 what='restarts of %s' % name)
    ok(docker_cli(['rm', '-f'] + loops, host=eng.url))
    wait_for(lambda: threads() <= before, timeout=10,
             what='threads back to %d (now %d)' % (before, threads()))
    time.sleep(2)  # past every delay that was pending
    assert threads() <= before
    assert docker_cli(['ps', '-aq'], host=eng.url).stdout.strip() == ''


def test_kill_during_backoff_stops_it(docker_cli, engine, names):
    name = names('killbackoff')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'unless-stopped',
                   'busybox', 'sh', '-c', 'exit 6']))
    wait_for(lambda: inspect(engine, name)['RestartCount'] >= 5, timeout=30,
             what='five restarts')
    settled(engine, name, 'restarting', timeout=20)
    res = docker_cli(['pause', name])
    assert res.returncode != 0 and 'is restarting' in res.stderr, res.stderr
    ok(docker_cli(['kill', name]))
    data = settled(engine, name, 'exited', timeout=10)
    assert data['State']['ExitCode'] == 6
    count = data['RestartCount']
    time.sleep(2)
    assert inspect(engine, name)['RestartCount'] == count
    assert inspect(engine, name)['State']['Status'] == 'exited'
