"""Where the parts of "containers, completely" meet: docker update of a
restart policy, limits and volumes seen by system df and prune, a container
using limits, a volume, a restart policy and log rotation at once."""

import json

import pytest

from tests.compat.conftest import inspect, wait_for

pytestmark = [pytest.mark.compat]


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def test_update_sets_a_restart_policy_that_the_next_exit_follows(docker_cli, engine, names):
    name = names('upd-restart')
    ok(docker_cli(['create', '--name', name, 'busybox', 'sh', '-c', 'exit 4']))
    ok(docker_cli(['update', '--restart', 'on-failure:1', name]))
    assert inspect(engine, name)['HostConfig']['RestartPolicy'] == {
        'Name': 'on-failure', 'MaximumRetryCount': 1}
    ok(docker_cli(['start', name]))
    data = wait_for(lambda: (lambda d: d if d['RestartCount'] == 1
                             and d['State']['Status'] == 'exited' else None)(
        inspect(engine, name)), timeout=30, what='one retry then exited')
    assert data['State']['ExitCode'] == 4


def test_an_update_of_limits_keeps_the_restart_policy(docker_cli, engine, names):
    # The CLI sends an empty RestartPolicy with every update.
    name = names('upd-keep')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'unless-stopped',
                   'busybox', 'sleep', '300']))
    ok(docker_cli(['update', '--memory', '64m', '--memory-swap', '128m', name]))
    data = inspect(engine, name)
    assert data['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert data['HostConfig']['Memory'] == 64 * 1024 * 1024
    limit = ok(docker_cli(['exec', name, 'sh', '-c',
                           'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null '
                           '|| cat /sys/fs/cgroup/memory.max'])).stdout.strip()
    assert limit == str(64 * 1024 * 1024)


def test_update_refuses_a_restart_policy_for_an_auto_remove_container(docker_cli, names):
    name = names('upd-rm')
    ok(docker_cli(['run', '-d', '--rm', '--name', name, 'busybox', 'sleep', '300']))
    res = docker_cli(['update', '--restart', 'always', name])
    assert res.returncode != 0
    assert 'AutoRemove is enabled' in res.stderr


def test_system_df_and_prune_see_volumes(engine_factory, docker_cli):
    # An engine of its own: system prune would take other tests' leftovers.
    eng = engine_factory()

    def cli(args):
        return ok(docker_cli(args, host=eng.url))
    cli(['volume', 'create', 'named'])
    cli(['run', '--name', 'holder', '-v', 'named:/data', '-v', '/anon',
         'busybox', 'sh', '-c', 'head -c 4096 /dev/zero > /data/f'])
    anon = [m['Name'] for m in inspect(eng, 'holder')['Mounts']
            if m['Destination'] == '/anon'][0]
    df = json.loads(cli(['system', 'df', '-v', '--format', '{{json .}}']).stdout)
    sizes = {v['Name']: v for v in df['Volumes']}
    assert sizes['named']['Links'] == '1' and sizes[anon]['Links'] == '1'
    assert sizes['named']['Size'] == '4.096kB'
    # The container has exited: system prune removes it, then the anonymous
    # volume it held; the named one stays (API >= 1.42 semantics).
    out = cli(['system', 'prune', '--volumes', '-f']).stdout
    assert anon in out
    assert cli(['volume', 'ls', '-q']).stdout.split() == ['named']
    assert cli(['ps', '-aq']).stdout.split() == []


def test_one_container_with_limits_volume_policy_and_log_rotation(docker_cli, engine, names):
    vol = names('all-vol')
    name = names('all')
    script = ('n=$(cat /data/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/runs; '
              'i=0; while [ $i -lt 3000 ]; do echo "run $n line $i"; i=$((i+1)); done; '
              '[ $n -ge 3 ] && exit 0; exit 1')
    ok(docker_cli(['run', '-d', '--name', name, '--memory', '32m', '--pids-limit', '50',
                   '--cpus', '0.5', '-v', vol + ':/data', '--restart', 'on-failure:5',
                   '--log-opt', 'max-size=20k', '--log-opt', 'max-file=2',
                   'busybox', 'sh', '-c', script]))
    data = wait_for(lambda: (lambda d: d if d['State']['Status'] == 'exited' else None)(
        inspect(engine, name)), timeout=60, what='three runs')
    assert data['State']['ExitCode'] == 0 and data['RestartCount'] == 2
    # The volume kept its count across the restarts.
    out = ok(docker_cli(['run', '--rm', '-v', vol + ':/data', 'busybox',
                         'cat', '/data/runs'])).stdout.strip()
    assert out == '3'
    # Logs were rotated down to two files of about 20 kB: the last run's
    # last line is there, the first run's first line is gone.
    logs = ok(docker_cli(['logs', name])).stdout.splitlines()
    assert logs[-1] == 'run 3 line 2999'
    assert 'run 1 line 0' not in logs
    assert len('\n'.join(logs)) < 3 * 20000
    ok(docker_cli(['rm', name]))
    ok(docker_cli(['volume', 'rm', vol]))


def test_a_restarting_container_never_shows_exited_in_between(docker_cli, engine, names):
    # inspect reads without the container's lock: the exit and the decision
    # to restart must reach it as one state change, as in Docker.
    name = names('never-exited')
    ok(docker_cli(['run', '-d', '--name', name, '--restart', 'on-failure:4',
                   'busybox', 'sh', '-c', 'exit 1']))
    seen = []
    while True:
        data = inspect(engine, name)
        seen.append((data['State']['Status'], data['RestartCount']))
        if data['State']['Status'] == 'exited' or len(seen) > 20000:
            break
    assert seen[-1] == ('exited', 4), seen[-20:]
    assert {s for s in seen[:-1]} <= {('running', n) for n in range(5)} | \
        {('restarting', n) for n in range(1, 5)} | {('created', 0)}, sorted(set(seen))
