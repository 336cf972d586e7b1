"""Resource limits, docker update, OOM kills and docker stats with real clients.

Every limit is read back from inside the container (runc bind-mounts the
container's own cgroup of each v1 controller at /sys/fs/cgroup/<ctrl> on
this hybrid host) or observed through behaviour (an OOM kill, a fork bomb
stopped by the pids limit).
"""

import glob
import json
import os
import re
import time

import docker
import pytest

from tests import daemons
from tests.compat.conftest import (
    AGAINST_DOCKERD, container_dirs, inspect, json_lines, wait_for)

pytestmark = pytest.mark.compat

MB = 1024 * 1024
CG = '/sys/fs/cgroup'
HOG = 'x=$(head -c 100m /dev/zero | tr "\\0" a); echo survived'


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def host_v1():
    return os.path.exists(CG + '/memory/memory.limit_in_bytes')


needs_v1 = pytest.mark.skipif(not host_v1(), reason='reads cgroup v1 files')


def read_inside(docker_cli, name, *files):
    out = ok(docker_cli(['exec', name, 'cat'] + list(files))).stdout.split()
    return out


def host_cgroup_file(engine, cid, ctrl, name):
    """A container's cgroup file seen from the host (engine_only)."""
    paths = glob.glob('%s/%s/novadocker-*/%s/%s' % (CG, ctrl, cid, name))
    assert len(paths) == 1, paths
    with open(paths[0]) as f:
        return f.read()


def api(engine, method, path, body=None, timeout=60):
    status, _, data = daemons.api(engine.sock, method, path, body, timeout=timeout)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data


def events_of(docker_cli, name, since, action):
    res = ok(docker_cli(['events', '--since', str(since), '--until', str(int(time.time()) + 1),
                         '--filter', 'container=' + name, '--filter', 'event=' + action,
                         '--format', '{{json .}}']))
    return json_lines(res.stdout)


# ----------------------------------------------------------------- create


@needs_v1
def test_limits_read_back_from_inside(docker_cli, names):
    name = names('lim')
    ok(docker_cli(['run', '-d', '--name', name, '-m', '16m', '--memory-reservation', '10m',
                   '--cpus', '0.5', '--cpu-shares', '512', '--cpuset-cpus', '0',
                   '--cpuset-mems', '0', '--pids-limit', '20', 'busybox', 'sleep', '600']))
    values = read_inside(
        docker_cli, name, CG + '/memory/memory.limit_in_bytes',
        CG + '/memory/memory.memsw.limit_in_bytes', CG + '/memory/memory.soft_limit_in_bytes',
        CG + '/cpu/cpu.cfs_quota_us', CG + '/cpu/cpu.cfs_period_us', CG + '/cpu/cpu.shares',
        CG + '/cpuset/cpuset.cpus', CG + '/cpuset/cpuset.mems', CG + '/pids/pids.max')
    assert values == [str(16 * MB), str(32 * MB), str(10 * MB), '50000', '100000', '512',
                      '0', '0', '20']


@needs_v1
def test_cpu_quota_and_period(docker_cli, names):
    res = ok(docker_cli(['run', '--rm', '--cpu-quota', '25000', '--cpu-period', '50000',
                         '-m', '32m', '--memory-swap', '-1', 'busybox', 'cat',
                         CG + '/cpu/cpu.cfs_quota_us', CG + '/cpu/cpu.cfs_period_us',
                         CG + '/memory/memory.memsw.limit_in_bytes']))
    quota, period, memsw = res.stdout.split()
    assert (quota, period) == ('25000', '50000')
    assert int(memsw) > 1 << 60   # --memory-swap -1: swap unlimited


def test_ulimits_shm_and_oom_score(docker_cli):
    res = ok(docker_cli(['run', '--rm', '--ulimit', 'nofile=100:200', '--ulimit', 'nproc=50',
                         '--ulimit', 'core=0', '--shm-size', '8m', '--oom-score-adj', '300',
                         'busybox', 'sh', '-c',
                         'ulimit -n; ulimit -Hn; ulimit -u; ulimit -c; '
                         'cat /proc/self/oom_score_adj; df -k /dev/shm | tail -1']))
    lines = res.stdout.splitlines()
    assert lines[:5] == ['100', '200', '50', '0', '300']
    assert lines[5].split()[1] == '8192', lines[5]


def test_defaults_unchanged_without_limits(docker_cli):
    res = ok(docker_cli(['run', '--rm', 'busybox', 'sh', '-c',
                         'df -k /dev/shm | tail -1; cat /proc/self/oom_score_adj']))
    shm, adj = res.stdout.splitlines()
    assert shm.split()[1] == '65536'     # Docker's 64 MiB
    assert adj == '0'


def test_inspect_shows_limit_fields(docker_cli, engine, names):
    plain, limited = names('plain'), names('limited')
    ok(docker_cli(['create', '--name', plain, 'busybox', 'true']))
    ok(docker_cli(['create', '--name', limited, '-m', '16m', '--cpus', '1.5',
                   '--pids-limit', '42', '--ulimit', 'nofile=10:20', '--oom-kill-disable',
                   'busybox', 'true']))
    h = inspect(engine, plain)['HostConfig']
    for key, value in (('Memory', 0), ('MemorySwap', 0), ('MemoryReservation', 0),
                       ('NanoCpus', 0), ('CpuShares', 0), ('CpuQuota', 0), ('CpuPeriod', 0),
                       ('CpusetCpus', ''), ('CpusetMems', ''), ('BlkioWeight', 0),
                       ('KernelMemory', 0), ('OomKillDisable', False), ('PidsLimit', None),
                       ('MemorySwappiness', None), ('ShmSize', 64 * MB), ('OomScoreAdj', 0),
                       ('CpuRealtimePeriod', 0), ('CpuRealtimeRuntime', 0)):
        assert key in h, key
        assert h[key] == value, (key, h[key])
    h = inspect(engine, limited)['HostConfig']
    assert (h['Memory'], h['MemorySwap'], h['NanoCpus'], h['PidsLimit']) == (
        16 * MB, 32 * MB, 1500000000, 42)
    assert h['Ulimits'] == [{'Name': 'nofile', 'Soft': 10, 'Hard': 20}]
    assert h['OomKillDisable'] is True


@pytest.mark.parametrize('host, message', [
    ({'Memory': 1 * MB}, 'Minimum memory limit allowed is 6MB'),
    ({'CpusetCpus': '%d' % (os.cpu_count() + 3)}, 'Requested CPUs are not available'),
    ({'CpusetCpus': 'abc'}, 'Invalid value abc for cpuset cpus'),
    ({'CpusetMems': '7'}, 'Requested memory nodes are not available'),
    ({'NanoCpus': (os.cpu_count() + 1) * 10 ** 9}, 'Range of CPUs is from 0.01'),
    ({'NanoCpus': 10 ** 9, 'CpuQuota': 50000}, 'Conflicting options: Nano CPUs and CPU Quota'),
    ({'Memory': 64 * MB, 'MemorySwap': 32 * MB}, 'Minimum memoryswap limit should be larger'),
    ({'MemorySwap': 64 * MB}, 'You should always set the Memory limit'),
    ({'Memory': 16 * MB, 'MemoryReservation': 32 * MB}, 'memory reservation limit'),
    pytest.param({'Ulimits': [{'Name': 'bogus', 'Soft': 1, 'Hard': 1}]},
                 'invalid ulimit type: bogus',
                 marks=pytest.mark.stricter_than_docker2010),
    pytest.param({'Ulimits': [{'Name': 'nofile', 'Soft': 9, 'Hard': 2}]},
                 'ulimit soft limit must be',
                 marks=pytest.mark.stricter_than_docker2010),
    pytest.param({'CpuShares': -2}, 'CPU shares can not be negative',
                 marks=pytest.mark.stricter_than_docker2010),
    pytest.param({'KernelMemory': 8 * MB}, 'KernelMemory is not supported',
                 marks=pytest.mark.stricter_than_docker2010),
    pytest.param({'CpuRealtimeRuntime': 1000}, 'CpuRealtimeRuntime',
                 marks=pytest.mark.stricter_than_docker2010),
    ({'OomScoreAdj': 2000}, 'range for oom score adj is [-1000, 1000]'),
    ({'ShmSize': -1}, 'SHM size can not be less than 0'),
    pytest.param({'Memory': '16m'}, 'HostConfig.Memory must be an integer',
                 marks=pytest.mark.stricter_than_docker2010),
], ids=lambda v: v if isinstance(v, str) else None)
# Docker 20.10 lets the first six through (the start fails later) or answers 500.
def test_impossible_limits_are_400_and_create_nothing(engine, names, host, message):
    name = names('bad')
    before = {c['Id'] for c in api(engine, 'GET', '/containers/json?all=1')[1]}
    dirs = container_dirs(engine)
    status, body = api(engine, 'POST', '/containers/create?name=' + name,
                       {'Image': 'busybox', 'Cmd': ['true'], 'HostConfig': host})
    assert status == 400, (status, body)
    assert message in body['message'], body
    assert {c['Id'] for c in api(engine, 'GET', '/containers/json?all=1')[1]} == before
    # no new directory (one of an earlier --rm container may vanish meanwhile)
    assert container_dirs(engine) <= dirs
    assert inspect(engine, name) is None


@needs_v1
def test_discarded_limits_give_docker_warnings(engine, names):
    blkio = any(os.path.exists(CG + '/blkio/' + f) for f in ('blkio.weight', 'blkio.bfq.weight'))
    status, body = api(engine, 'POST', '/containers/create?name=' + names('warn'),
                       {'Image': 'busybox', 'HostConfig': {'BlkioWeight': 300,
                                                           'OomKillDisable': True}})
    assert status == 201, body
    assert ('OOM killer is disabled for the container, but no memory limit is set, this can '
            'result in the system running out of resources.') in body['Warnings']
    weight = ('Your kernel does not support Block I/O weight or the cgroup is not mounted. '
              'Weight discarded.')
    assert (weight in body['Warnings']) == (not blkio)


@pytest.mark.engine_only   # Docker 20.10 still claims KernelMemory
def test_info_reports_host_cgroup_features(engine, docker_cli):
    status, info = api(engine, 'GET', '/info')
    assert status == 200
    if host_v1():
        expect = {
            'MemoryLimit': True,
            'SwapLimit': os.path.exists(CG + '/memory/memory.memsw.limit_in_bytes'),
            'CpuCfsQuota': os.path.exists(CG + '/cpu/cpu.cfs_quota_us'),
            'CPUShares': os.path.exists(CG + '/cpu/cpu.shares'),
            'CPUSet': os.path.isdir(CG + '/cpuset'),
            'PidsLimit': os.path.isdir(CG + '/pids'),
            'OomKillDisable': os.path.exists(CG + '/memory/memory.oom_control'),
            'KernelMemory': False,
            'CgroupVersion': '1',
        }
        assert {k: info[k] for k in expect} == expect
    out = ok(docker_cli(['info'])).stdout + ok(docker_cli(['info'])).stderr
    for warning in info['Warnings']:
        if warning.startswith('WARNING: No '):
            assert warning in out


# ----------------------------------------------------------------- update


@needs_v1
def test_update_running_container_read_back(docker_cli, engine, names):
    name = names('upd')
    ok(docker_cli(['run', '-d', '--name', name, '-m', '16m', 'busybox', 'sleep', '600']))
    since = int(time.time()) - 1
    ok(docker_cli(['update', '--memory', '48m', '--memory-swap', '96m', '--cpus', '0.25',
                   '--pids-limit', '30', '--cpu-shares', '256', name]))
    assert read_inside(docker_cli, name, CG + '/memory/memory.limit_in_bytes',
                       CG + '/memory/memory.memsw.limit_in_bytes', CG + '/cpu/cpu.cfs_quota_us',
                       CG + '/pids/pids.max', CG + '/cpu/cpu.shares') == [
        str(48 * MB), str(96 * MB), '25000', '30', '256']
    h = inspect(engine, name)['HostConfig']
    assert (h['Memory'], h['MemorySwap'], h['NanoCpus'], h['PidsLimit'], h['CpuShares']) == (
        48 * MB, 96 * MB, 250000000, 30, 256)
    assert events_of(docker_cli, name, since, 'update')
    # -1 (the CLI) and 0 (the API) lift the pids limit again
    ok(docker_cli(['update', '--pids-limit', '-1', name]))
    assert read_inside(docker_cli, name, CG + '/pids/pids.max') == ['max']
    # recorded as 0 by current Docker (-1 by 20.10)
    assert inspect(engine, name)['HostConfig']['PidsLimit'] in (0, -1)
    ok(docker_cli(['update', '--pids-limit', '7', name]))
    assert read_inside(docker_cli, name, CG + '/pids/pids.max') == ['7']
    status, body = api(engine, 'POST', '/containers/%s/update' % name, {'PidsLimit': 0})
    assert status == 200, body
    assert read_inside(docker_cli, name, CG + '/pids/pids.max') == ['max']


@needs_v1
def test_update_created_container_applies_at_start(docker_cli, names):
    name = names('updc')
    ok(docker_cli(['create', '--name', name, 'busybox', 'sleep', '600']))
    ok(docker_cli(['update', '--cpus', '1.5', '--pids-limit', '12', name]))
    ok(docker_cli(['start', name]))
    assert read_inside(docker_cli, name, CG + '/cpu/cpu.cfs_quota_us',
                       CG + '/pids/pids.max') == ['150000', '12']


@pytest.mark.engine_only
@needs_v1
def test_update_paused_container(docker_cli, engine, names):
    name = names('updp')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '600']))
    cid = inspect(engine, name)['Id']
    ok(docker_cli(['pause', name]))
    ok(docker_cli(['update', '--cpu-quota', '20000', name]))
    assert host_cgroup_file(engine, cid, 'cpu', 'cpu.cfs_quota_us').strip() == '20000'
    assert inspect(engine, name)['State']['Status'] == 'paused'
    ok(docker_cli(['unpause', name]))


def test_update_follows_docker_rules(docker_cli, engine, names):
    name = names('updr')
    ok(docker_cli(['run', '-d', '--name', name, '--cpus', '1', 'busybox', 'sleep', '600']))
    res = docker_cli(['update', '--cpu-quota', '50000', name])
    assert res.returncode != 0
    assert 'Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set' \
        in res.stderr
    # Memory on a container without a memory+swap limit needs --memory-swap too.
    res = docker_cli(['update', '--memory', '64m', name])
    assert 'Memory limit should be smaller than already set memoryswap limit' in res.stderr
    status, body = api(engine, 'POST', '/containers/%s/update' % name, {'Memory': 64 * MB})
    assert status == 409, body
    status, body = api(engine, 'POST', '/containers/%s/update' % name, {'Memory': MB})
    assert status == 400 and body['message'] == 'Minimum memory limit allowed is 6MB'
    status, body = api(engine, 'POST', '/containers/%s/update' % name,
                       {'RestartPolicy': {'Name': 'sometimes'}})
    assert status == 400, body
    status, body = api(engine, 'POST', '/containers/%s/update' % name,
                       {'RestartPolicy': {'Name': 'no'}, 'CpuShares': 100})
    assert (status, body) == (200, {'Warnings': None})
    h = inspect(engine, name)['HostConfig']
    assert (h['RestartPolicy']['Name'], h['CpuShares'], h['NanoCpus']) == ('no', 100, 10 ** 9)
    status, body = api(engine, 'POST', '/containers/nosuchcontainer/update', {'CpuShares': 2})
    assert status == 404


@pytest.mark.engine_only
def test_update_refuses_what_it_cannot_change(engine, docker_cli, names):
    # Docker ignores these silently; a tenant must not believe they changed.
    name = names('updu')
    ok(docker_cli(['create', '--name', name, 'busybox', 'true']))
    for body, message in (
            ({'Ulimits': [{'Name': 'nofile', 'Soft': 5, 'Hard': 5}]}, 'Ulimits cannot be changed'),
            ({'OomKillDisable': True}, 'OomKillDisable cannot be changed'),
            ({'KernelMemory': 8 * MB}, 'KernelMemory is not supported')):
        status, reply = api(engine, 'POST', '/containers/%s/update' % name, body)
        assert status == 400 and message in reply['message'], reply
    assert not inspect(engine, name)['HostConfig']['Ulimits']


@pytest.mark.stricter_than_docker2010   # Docker answers 500
@needs_v1
def test_update_memory_below_usage_is_refused(docker_cli, engine, names):
    name = names('updm')
    # tmpfs pages are charged to the cgroup and, with no swap, cannot be reclaimed.
    ok(docker_cli(['run', '-d', '--name', name, '-m', '64m', '--memory-swap', '64m',
                   'busybox', 'sh', '-c',
                   'dd if=/dev/zero of=/dev/shm/fill bs=1M count=40; echo filled; '
                   'sleep 600']))
    wait_for(lambda: 'filled' in docker_cli(['logs', name]).stdout, what='the tmpfs fill')
    status, body = api(engine, 'POST', '/containers/%s/update' % name,
                       {'Memory': 16 * MB, 'MemorySwap': 16 * MB})
    assert status == 409, body
    assert 'cannot set the memory limit to %d bytes' % (16 * MB) in body['message']
    # nothing changed: record and cgroup keep the old limit
    assert inspect(engine, name)['HostConfig']['Memory'] == 64 * MB
    assert read_inside(docker_cli, name, CG + '/memory/memory.limit_in_bytes') == [str(64 * MB)]


def test_docker_py_update(engine, names):
    name = names('dpy')
    client = docker.DockerClient(base_url=engine.url, version='1.41')
    try:
        c = client.containers.run('busybox', ['sleep', '600'], name=name, detach=True,
                                  mem_limit='32m', pids_limit=10)
        result = c.update(mem_limit='24m', cpu_quota=30000, cpu_period=100000)
        assert result == {'Warnings': None}
        c.reload()
        assert c.attrs['HostConfig']['Memory'] == 24 * MB
        assert c.attrs['HostConfig']['CpuQuota'] == 30000
        if host_v1():
            out = c.exec_run(['cat', CG + '/memory/memory.limit_in_bytes',
                              CG + '/cpu/cpu.cfs_quota_us']).output.decode().split()
            assert out == [str(24 * MB), '30000']
    finally:
        client.close()


# ----------------------------------------------------------------- OOM, pids


@needs_v1
def test_memory_hog_is_oom_killed(docker_cli, engine, names):
    name = names('oom')
    since = int(time.time()) - 1
    res = docker_cli(['run', '--name', name, '-m', '16m', 'busybox', 'sh', '-c', HOG])
    assert 'survived' not in res.stdout
    assert res.returncode == 137, res
    state = inspect(engine, name)['State']
    assert state['OOMKilled'] is True
    assert state['ExitCode'] == 137
    assert events_of(docker_cli, name, since, 'oom')
    # without the limit the same command completes
    name2 = names('nooom')
    res = ok(docker_cli(['run', '--name', name2, 'busybox', 'sh', '-c', HOG]))
    assert res.stdout.strip() == 'survived'
    assert inspect(engine, name2)['State']['OOMKilled'] is False


@pytest.mark.engine_only
@needs_v1
def test_oom_kill_disable_keeps_the_process(docker_cli, engine, names):
    name = names('nokill')
    ok(docker_cli(['run', '-d', '--name', name, '-m', '16m', '--memory-swap', '16m',
                   '--oom-kill-disable', 'busybox', 'sh', '-c', HOG]))
    cid = inspect(engine, name)['Id']

    def under_oom():
        text = host_cgroup_file(engine, cid, 'memory', 'memory.oom_control')
        return 'under_oom 1' in text and text
    text = wait_for(under_oom, what='the container to hit its memory limit')
    assert 'oom_kill_disable 1' in text
    assert 'oom_kill 0' in text
    state = inspect(engine, name)['State']
    assert state['Status'] == 'running' and state['OOMKilled'] is False
    ok(docker_cli(['rm', '-f', name]))


@pytest.mark.engine_only
@needs_v1
def test_fork_bomb_hits_the_pids_limit(docker_cli, engine, names):
    name = names('bomb')
    # The inner shell forks until the kernel refuses (busybox sh then exits);
    # its children stay, and the outer one goes on without forking.
    ok(docker_cli(['run', '-d', '--name', name, '--pids-limit', '20', 'busybox', 'sh', '-c',
                   'sh -c "while :; do sleep 600 & done"; echo bombed; exec sleep 600']))
    cid = inspect(engine, name)['Id']
    wait_for(lambda: 'bombed' in docker_cli(['logs', name]).stdout, what='the bomb')
    logs = docker_cli(['logs', name])
    assert "can't fork" in logs.stderr, logs
    assert int(host_cgroup_file(engine, cid, 'pids', 'pids.events').split()[-1]) > 0
    current = int(host_cgroup_file(engine, cid, 'pids', 'pids.current'))
    assert 15 <= current <= 20
    status, stats = api(engine, 'GET', '/containers/%s/stats?stream=false&one-shot=true' % name)
    assert stats['pids_stats'] == {'current': current, 'limit': 20}
    assert inspect(engine, name)['State']['Status'] == 'running'
    # the host is unaffected: the engine serves, other containers run
    ok(docker_cli(['run', '--rm', 'busybox', 'true']))
    ok(docker_cli(['rm', '-f', name]))
    assert not glob.glob('%s/pids/novadocker-*/%s' % (CG, cid))
    assert not glob.glob('%s/memory/novadocker-*/%s' % (CG, cid))


# ----------------------------------------------------------------- stats


def test_stats_no_stream_cli(docker_cli, names):
    name = names('st')
    ok(docker_cli(['run', '-d', '--name', name, '-m', '16m', 'busybox', 'sh', '-c',
                   'while :; do :; done']))
    res = ok(docker_cli(['stats', '--no-stream', '--format',
                         '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}', name]))
    got, cpu, mem, memperc, pids = res.stdout.strip().split('|')
    assert got == name
    cpu_value = float(cpu.rstrip('%'))
    assert 20 < cpu_value <= 100.0 * os.cpu_count() + 5, cpu   # a busy loop
    usage, limit = [s.strip() for s in mem.split('/')]
    assert limit == '16MiB'
    assert re.match(r'^[\d.]+(B|KiB|MiB)$', usage), usage
    assert float(memperc.rstrip('%')) > 0
    assert pids == '1'


def test_stats_table_for_all_running(docker_cli, names):
    name = names('st2')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '600']))
    res = ok(docker_cli(['stats', '--no-stream']))
    header, *rows = res.stdout.splitlines()
    assert header.split()[:4] == ['CONTAINER', 'ID', 'NAME', 'CPU']
    row = [r for r in rows if name in r]
    assert row and ' / ' in row[0]


def test_stats_stream_two_samples(engine, names, docker_cli):
    name = names('sts')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'while :; do :; done']))
    conn = daemons.UnixHTTPConnection(engine.sock, timeout=30)
    try:
        conn.request('GET', '/v1.41/containers/%s/stats' % name)
        resp = conn.getresponse()
        assert resp.status == 200
        first = json.loads(resp.readline())
        second = json.loads(resp.readline())
    finally:
        conn.close()
    assert second['precpu_stats'] == first['cpu_stats']
    assert second['preread'] == first['read']
    assert second['read'] > first['read']
    assert second['cpu_stats']['cpu_usage']['total_usage'] > \
        first['cpu_stats']['cpu_usage']['total_usage']
    assert second['cpu_stats']['system_cpu_usage'] > first['cpu_stats']['system_cpu_usage']
    assert second['cpu_stats']['online_cpus'] == os.sysconf('SC_NPROCESSORS_ONLN')
    assert second['name'] == '/' + name
    assert second['memory_stats']['usage'] > 0
    assert second['memory_stats']['limit'] > 0
    assert second['pids_stats']['current'] == 1
    # On the default bridge, as Docker: eth0, and no lo.
    assert second['networks']['eth0']['rx_bytes'] >= 0
    assert 'lo' not in second['networks']


def test_stats_of_a_stopped_container_are_zero(engine, names, docker_cli):
    name = names('stz')
    ok(docker_cli(['create', '--name', name, 'busybox', 'true']))
    started = time.monotonic()
    status, body = api(engine, 'GET', '/containers/%s/stats?stream=false' % name)
    assert status == 200
    assert time.monotonic() - started < 1.0   # no second sample to wait for
    cid = inspect(engine, name)['Id']
    assert body == {
        'read': '0001-01-01T00:00:00Z', 'preread': '0001-01-01T00:00:00Z',
        'pids_stats': {},
        'blkio_stats': {k: None for k in (
            'io_service_bytes_recursive', 'io_serviced_recursive', 'io_queue_recursive',
            'io_service_time_recursive', 'io_wait_time_recursive', 'io_merged_recursive',
            'io_time_recursive', 'sectors_recursive')},
        'num_procs': 0, 'storage_stats': {},
        'cpu_stats': {'cpu_usage': {'total_usage': 0, 'usage_in_kernelmode': 0,
                                    'usage_in_usermode': 0},
                      'throttling_data': {'periods': 0, 'throttled_periods': 0,
                                          'throttled_time': 0}},
        'precpu_stats': {'cpu_usage': {'total_usage': 0, 'usage_in_kernelmode': 0,
                                       'usage_in_usermode': 0},
                         'throttling_data': {'periods': 0, 'throttled_periods': 0,
                                             'throttled_time': 0}},
        'memory_stats': {}, 'name': '/' + name, 'id': cid}
    status, body = api(engine, 'GET', '/containers/%s/stats?stream=true&one-shot=true' % name)
    assert status == 400


def test_stats_docker_py(engine, names):
    name = names('stpy')
    client = docker.DockerClient(base_url=engine.url)
    try:
        c = client.containers.run('busybox', ['sleep', '600'], name=name, detach=True,
                                  mem_limit='20m')
        s = c.stats(stream=False)
        assert s['id'] == c.id
        assert s['memory_stats']['limit'] == 20 * MB
        assert s['precpu_stats']['cpu_usage']['total_usage'] > 0   # two samples taken
        one = c.stats(stream=False, one_shot=True)
        assert one['preread'] == '0001-01-01T00:00:00Z'
        assert one['cpu_stats']['cpu_usage']['total_usage'] > 0
    finally:
        client.close()


# ----------------------------------------------------------------- restarts


@pytest.mark.engine_only
@needs_v1
def test_limits_survive_engine_restart(engine_factory, docker_cli, names):
    eng = engine_factory()

    def cli(args):
        return docker_cli(args, host=eng.url)
    running, created = names('keep'), names('later')
    ok(cli(['run', '-d', '--name', running, '-m', '16m', 'busybox', 'sleep', '600']))
    ok(cli(['update', '--cpus', '0.5', running]))
    ok(cli(['create', '--name', created, '--pids-limit', '9', '--ulimit', 'nproc=33',
            'busybox', 'sleep', '600']))
    eng.restart()
    # the running container kept its cgroup; the record kept the update
    assert read_inside(cli, running, CG + '/memory/memory.limit_in_bytes',
                       CG + '/cpu/cpu.cfs_quota_us') == [str(16 * MB), '50000']
    assert inspect(eng, running)['HostConfig']['NanoCpus'] == 500000000
    # a restart of the container applies the recorded limits again
    ok(cli(['restart', '-t', '0', running]))
    assert read_inside(cli, running, CG + '/memory/memory.limit_in_bytes',
                       CG + '/cpu/cpu.cfs_quota_us') == [str(16 * MB), '50000']
    ok(cli(['start', created]))
    assert read_inside(cli, created, CG + '/pids/pids.max') == ['9']
    assert ok(cli(['exec', created, 'sh', '-c', 'ulimit -u'])).stdout.strip() == '33'


@pytest.mark.engine_only
def test_stats_host_network_has_no_networks(engine, names, docker_cli):
    name = names('sthost')
    ok(docker_cli(['run', '-d', '--name', name, '--network', 'host', 'busybox',
                   'sleep', '600']))
    status, body = api(engine, 'GET', '/containers/%s/stats?stream=false&one-shot=true' % name)
    assert status == 200
    assert 'networks' not in body    # the host's interfaces are not the container's
    assert body['pids_stats']['current'] == 1


def test_cpu_quota_throttles_a_busy_loop(docker_cli, engine, names):
    name = names('thr')
    ok(docker_cli(['run', '-d', '--name', name, '--cpus', '0.25', 'busybox', 'sh', '-c',
                   'while :; do :; done']))
    res = ok(docker_cli(['stats', '--no-stream', '--format', '{{.CPUPerc}}', name]))
    assert float(res.stdout.strip().rstrip('%')) <= 40.0, res.stdout   # 25% + jitter
    status, body = api(engine, 'GET', '/containers/%s/stats?stream=false' % name)
    throttling = body['cpu_stats']['throttling_data']
    assert throttling['periods'] > 0 and throttling['throttled_periods'] > 0, throttling
