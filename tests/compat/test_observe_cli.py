"""docker top, diff, events, system df and the prune commands through the
real docker CLI 28 and docker-py; diff also side by side with Docker 20.10.

Pruning and disk usage run on engines of their own (engine_factory): a
prune on the session engine would remove what other tests rely on.
"""

import json
import os
import time

import docker
import pytest

from tests import daemons
from tests.compat.conftest import CLIS, inspect, wait_for

pytestmark = pytest.mark.compat


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def pid_ns(pid):
    return os.readlink('/proc/%d/ns/pid' % pid)


def top_rows(docker_cli, name, *ps_args, cli=daemons.DOCKER_CLI):
    out = ok(docker_cli(['top', name] + list(ps_args), cli=cli)).stdout.splitlines()
    return out[0].split(), [line.split(None, len(out[0].split()) - 1) for line in out[1:]]


# --------------------------------------------------------------------------
# top


def test_top_shows_the_container_processes_and_nothing_else(docker_cli, engine, names):
    one, two = names('top1'), names('top2')
    ok(docker_cli(['run', '-d', '--name', one, 'busybox', 'sleep', '300']))
    ok(docker_cli(['run', '-d', '--name', two, 'busybox', 'sh', '-c',
                   'sleep 301 & sleep 302; true']))
    pid2 = inspect(engine, two)['State']['Pid']
    wait_for(lambda: len(top_rows(docker_cli, two)[1]) == 3, what='three processes in %s' % two)

    titles, rows = top_rows(docker_cli, one)
    assert titles == ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']
    assert [r[-1] for r in rows] == ['sleep 300']
    assert int(rows[0][1]) == inspect(engine, one)['State']['Pid']

    titles, rows = top_rows(docker_cli, two)
    cmds = sorted(r[-1] for r in rows)
    # (A daemon with TERM set in its environment gets ps' 80 columns.)
    assert cmds[1:] == ['sleep 301', 'sleep 302']
    assert cmds[0].startswith('sh -c sleep 301 & sleep 302')
    # Every row is a process of that container: in its pid namespace, and
    # none is the other container's or the host's.
    for r in rows:
        assert pid_ns(int(r[1])) == pid_ns(pid2)
    assert str(inspect(engine, one)['State']['Pid']) not in [r[1] for r in rows]
    assert str(os.getpid()) not in [r[1] for r in rows]


@pytest.mark.parametrize('cli', CLIS)
def test_top_with_ps_args(docker_cli, names, cli):
    name = names('topaux')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '300']))
    titles, rows = top_rows(docker_cli, name, 'aux', cli=cli)
    assert titles[:3] == ['USER', 'PID', '%CPU'] and titles[-1] == 'COMMAND'
    assert [r[-1] for r in rows] == ['sleep 300']
    titles, rows = top_rows(docker_cli, name, '-o', 'pid,comm', cli=cli)
    assert titles == ['PID', 'COMMAND'] and [r[1] for r in rows] == ['sleep']


def test_top_errors(docker_cli, engine, names):
    name = names('topstop')
    ok(docker_cli(['run', '--name', name, 'busybox', 'true']))
    cid = inspect(engine, name)['Id']
    res = docker_cli(['top', name])
    assert res.returncode == 1
    assert 'Container %s is not running' % cid in res.stderr
    status, _, body = daemons.api(engine.sock, 'GET', '/containers/%s/top' % name)
    assert status == 409, body
    status, _, _ = daemons.api(engine.sock, 'GET', '/containers/nonexistent-xyz/top')
    assert status == 404


@pytest.mark.stricter_than_docker2010
def test_top_refuses_bad_ps_args(docker_cli, engine, names):
    running = names('topbad')
    ok(docker_cli(['run', '-d', '--name', running, 'busybox', 'sleep', '300']))
    status, body = daemons.api_json(engine.sock, 'GET',
                                    '/containers/%s/top?ps_args=-o%%20user%%3DPID' % running)
    assert status == 400 and body['message'] == 'specifying "user=PID" is not allowed'
    # No shell: a metacharacter is only an (invalid) ps argument.
    status, body = daemons.api_json(engine.sock, 'GET',
                                    '/containers/%s/top?ps_args=-ef%%3Btouch%%20/tmp/pwned'
                                    % running)
    assert status == 400, body
    assert not os.path.exists('/tmp/pwned')


def test_top_with_docker_py(engine, names, docker_cli):
    name = names('toppy')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '300']))
    client = docker.DockerClient(base_url=engine.url, timeout=60)
    try:
        result = client.containers.get(name).top()
        assert 'PID' in result['Titles']
        assert [p[-1] for p in result['Processes']] == ['sleep 300']
        result = client.containers.get(name).top(ps_args='aux')
        assert 'USER' in result['Titles']
    finally:
        client.close()


# --------------------------------------------------------------------------
# diff

DIFF_SCRIPT = ('touch /x; rm /bin/ls; mkdir -p /tmp/a/b; echo hi > /etc/passwd; '
               'mkdir /newdir; touch /newdir/f; rm -r /usr; touch /root/new')
DIFF_EXPECTED = ['A /newdir', 'A /newdir/f', 'A /tmp/a', 'A /tmp/a/b', 'A /x',
                 'C /bin', 'C /etc', 'C /etc/passwd', 'C /root', 'C /tmp',
                 'D /bin/ls', 'D /usr', 'A /root/new']


@pytest.mark.parametrize('cli', CLIS)
def test_diff_of_a_stopped_container(docker_cli, engine, names, cli):
    name = names('diff')
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c', DIFF_SCRIPT]))
    lines = ok(docker_cli(['diff', name], cli=cli)).stdout.splitlines()
    assert sorted(lines) == sorted(DIFF_EXPECTED)
    status, body = daemons.api_json(engine.sock, 'GET', '/containers/%s/changes' % name)
    assert status == 200
    assert {'Path': '/x', 'Kind': 1} in body
    assert {'Path': '/etc/passwd', 'Kind': 0} in body
    assert {'Path': '/usr', 'Kind': 2} in body


@pytest.mark.engine_only
def test_diff_lists_parents_first_in_name_order(docker_cli, names):
    """Docker 20.10's order changes from call to call; ours is its overlay
    walk's: each directory before what it holds, names sorted."""
    name = names('difford')
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c', DIFF_SCRIPT]))
    lines = ok(docker_cli(['diff', name])).stdout.splitlines()
    assert lines == ['C /bin', 'D /bin/ls', 'C /etc', 'C /etc/passwd', 'A /newdir',
                     'A /newdir/f', 'C /root', 'A /root/new', 'C /tmp', 'A /tmp/a',
                     'A /tmp/a/b', 'D /usr', 'A /x']


def test_diff_of_a_fresh_and_of_a_running_container(docker_cli, names):
    name = names('diffrun')
    ok(docker_cli(['run', '--name', name, 'busybox', 'true']))
    # The runtime's mount points (/proc, /sys, /etc/hosts ...) are no change.
    assert ok(docker_cli(['diff', name])).stdout == ''
    running = names('diffrun2')
    ok(docker_cli(['run', '-d', '--name', running, 'busybox', 'sh', '-c',
                   'echo data > /tmp/y; sleep 300']))
    wait_for(lambda: 'A /tmp/y' in ok(docker_cli(['diff', running])).stdout,
             what='/tmp/y in the diff')
    assert ok(docker_cli(['diff', running])).stdout.splitlines() == ['C /tmp', 'A /tmp/y']
    ok(docker_cli(['exec', running, 'rm', '/tmp/y']))
    assert ok(docker_cli(['diff', running])).stdout == ''


def test_diff_and_sizes_with_the_vfs_snapshotter(engine_factory, docker_cli, names):
    """vfs keeps whole copies: the same rows come from comparing trees."""
    eng = engine_factory(config='[engine]\nsnapshotter = vfs\n')
    name = names('dvfs')
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                   DIFF_SCRIPT + '; head -c 1234 /dev/zero > /sized'], host=eng.url))
    lines = ok(docker_cli(['diff', name], host=eng.url)).stdout.splitlines()
    assert sorted(lines) == sorted(DIFF_EXPECTED + ['A /sized'])
    status, data = eng.api_json('GET', '/containers/%s/json?size=1' % name)
    # /x, /tmp/a/b, /newdir/f, /root/new are empty; /etc/passwd holds "hi\n".
    assert status == 200 and data['SizeRw'] == 1234 + 3


def test_diff_errors(docker_cli, engine):
    res = docker_cli(['diff', 'no-such-container-xyz'])
    assert res.returncode == 1 and 'No such container: no-such-container-xyz' in res.stderr


def test_diff_like_docker(docker_cli, dockerd, engine, names):
    """The same commands in Docker 20.10 and here give the same rows
    (Docker's row order varies from call to call: compared as sets)."""
    script = DIFF_SCRIPT + '; chmod 700 /home; ln -s /x /link; rm /etc/group'
    results = []
    for host, name in ((engine.url, names('dlike')), (dockerd.url, names('dlike'))):
        ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c', script], host=host))
        results.append(sorted(ok(docker_cli(['diff', name], host=host)).stdout.splitlines()))
        docker_cli(['rm', '-f', name], host=host)
    assert results[0] == results[1]


# --------------------------------------------------------------------------
# events


def event_lines(docker_cli, since, until, *filters, host=None):
    args = ['events', '--since', since, '--until', until,
            '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']
    for f in filters:
        args += ['--filter', f]
    return ok(docker_cli(args, host=host)).stdout.splitlines()


def test_events_filters_and_replay(docker_cli, engine, names):
    web, db = names('evweb'), names('evdb')
    since = '%.9f' % time.time()
    ok(docker_cli(['run', '--name', web, '-l', 'tier=front', '-l', 'team=a',
                   'busybox', 'true']))
    ok(docker_cli(['create', '--name', db, '-l', 'tier=back', 'busybox', 'sleep', '1']))
    ok(docker_cli(['rename', db, db + 'x']))
    ok(docker_cli(['rm', db + 'x']))
    time.sleep(0.1)
    until = '%.9f' % time.time()
    time.sleep(0.1)
    ok(docker_cli(['run', '--name', names('evlater'), 'busybox', 'true']))  # after until

    assert event_lines(docker_cli, since, until, 'container=' + web) == [
        'container create ' + web, 'container attach ' + web,
        'container start ' + web, 'container die ' + web]
    assert event_lines(docker_cli, since, until, 'label=tier=back') == [
        'container create ' + db, 'container rename ' + db + 'x',
        'container destroy ' + db + 'x']
    assert event_lines(docker_cli, since, until, 'label=tier', 'event=create') == [
        'container create ' + web, 'container create ' + db]
    assert event_lines(docker_cli, since, until, 'label=tier=front', 'label=team=a',
                       'event=die') == ['container die ' + web]
    assert event_lines(docker_cli, since, until, 'type=image') == []
    assert event_lines(docker_cli, since, until, 'type=container', 'event=destroy') == [
        'container destroy ' + db + 'x']
    # Relative --since as the CLI computes it, and the JSON the API sends.
    lines = event_lines(docker_cli, '5m', until, 'container=' + web, 'event=die')
    assert lines == ['container die ' + web]
    res = ok(docker_cli(['events', '--since', since, '--until', until, '--filter',
                         'container=' + web, '--filter', 'event=die', '--format',
                         '{{json .}}']))
    event = json.loads(res.stdout)
    assert event['Actor']['Attributes'] == {'exitCode': '0', 'image': 'busybox', 'name': web,
                                            'tier': 'front', 'team': 'a'}
    assert event['status'] == 'die' and event['from'] == 'busybox'


def test_events_like_docker(docker_cli, dockerd, engine, names, tmp_path):
    """The same commands on Docker 20.10 and here publish the same container
    and image events, in the same order, with the same attribute names."""
    sfx = names.suffix
    got = []
    for host in (engine.url, dockerd.url):
        a, b = 'evlike-a-' + sfx, 'evlike-b-' + sfx
        ref = 'evlike-%s:1' % sfx

        def cli(args, **kw):
            return ok(docker_cli(args, host=host, **kw))
        since = '%.9f' % time.time()
        res = docker_cli(['run', '--name', a, '-l', 'k=v', 'busybox', 'sh', '-c', 'exit 3'],
                         host=host)
        assert res.returncode == 3, res.stderr
        cli(['commit', a, ref])
        cli(['tag', ref, ref + 'b'])
        cli(['rmi', ref + 'b'])
        cli(['run', '-d', '--name', b, '-l', 'k=v', 'busybox', 'sleep', '300'])
        cli(['rename', b, b + 'x'])
        cli(['kill', '-s', 'USR1', b + 'x'])
        cli(['pause', b + 'x'])
        cli(['unpause', b + 'x'])
        cli(['top', b + 'x'])
        cli(['exec', b + 'x', 'true'])
        cli(['export', '-o', str(tmp_path / 'x.tar'), b + 'x'])
        cli(['restart', '-t', '0', b + 'x'])
        cli(['rm', '-f', b + 'x'])   # one by one: the CLI removes several in parallel
        cli(['rm', a])
        cli(['rmi', ref])
        time.sleep(0.2)
        lines = cli(['events', '--since', since, '--until', '%.9f' % time.time(),
                     '--filter', 'type=container', '--filter', 'type=image', '--format',
                     '{{json .}}']).stdout
        rows = []
        for line in lines.splitlines():
            e = json.loads(line)
            attrs = sorted(e['Actor']['Attributes'])
            rows.append((e['Type'], e['Action'], attrs))
        got.append(rows)
    ours, docker_ = got
    assert [r[:2] for r in ours] == [r[:2] for r in docker_], (ours, docker_)
    assert ours == docker_


def test_events_stream_until_in_the_future(docker_cli, engine, names):
    name = names('evlive')
    until = '%.9f' % (time.time() + 4)
    proc = daemons.subprocess.Popen(
        [daemons.DOCKER_CLI, 'events', '--until', until, '--filter', 'container=' + name,
         '--format', '{{.Action}}'], env=engine.env, stdout=daemons.subprocess.PIPE,
        text=True)
    time.sleep(1)
    ok(docker_cli(['run', '--name', name, 'busybox', 'true']))
    out, _ = proc.communicate(timeout=30)
    assert out.split() == ['create', 'attach', 'start', 'die']


def test_events_with_docker_py(engine, names, docker_cli):
    name = names('evpy')
    since = time.time()
    ok(docker_cli(['run', '--name', name, '-l', 'k=v', 'busybox', 'true']))
    client = docker.DockerClient(base_url=engine.url, timeout=60)
    try:
        got = list(client.events(since=since, until=time.time() + 0.2, decode=True,
                                 filters={'label': 'k=v', 'event': 'start'}))
    finally:
        client.close()
    assert [(e['Action'], e['Actor']['Attributes']['name']) for e in got] == [('start', name)]


@pytest.mark.stricter_than_docker2010
@pytest.mark.parametrize('query, message', [
    ('filters=%7B%22foo%22%3A%7B%22x%22%3Atrue%7D%7D', "invalid filter 'foo'"),
    ('filters=%7B%22type%22%3A%7B%22bogus%22%3Atrue%7D%7D', "invalid filter 'type=bogus'"),
    ('since=yesterday', "invalid time value 'yesterday'"),
    ('filters=notjson', 'invalid JSON in filters'),
])
def test_events_bad_input(engine, query, message):
    status, body = daemons.api_json(engine.sock, 'GET', '/events?until=1&' + query)
    assert status == 400 and message in body['message']


def test_events_since_after_until(engine):
    status, body = daemons.api_json(engine.sock, 'GET', '/events?since=100&until=10')
    assert status == 400
    assert body['message'] == '`since` time (100) cannot be after `until` time (10)'


@pytest.mark.stricter_than_docker2010
def test_events_bad_filter_through_cli(docker_cli):
    res = docker_cli(['events', '--until', '1', '--filter', 'colour=red'])
    assert res.returncode == 1
    assert "invalid filter 'colour'" in res.stderr


# --------------------------------------------------------------------------
# system df, ps -s


def test_system_df_and_sizes_agree(engine_factory, docker_cli, names):
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    big, idle, run = names('dfbig'), names('dfidle'), names('dfrun')
    ok(cli(['run', '--name', big, 'busybox', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1000',
            'count=100']))
    ok(cli(['run', '--name', idle, 'busybox', 'true']))
    ok(cli(['run', '-d', '--name', run, 'busybox', 'sh', '-c',
            'head -c 5000 /dev/zero > /tmp/five; sleep 300']))
    ok(cli(['commit', big, 'dfsnap:1']))
    wait_for(lambda: inspect_sizes(eng, run)[0] == 5000, what='SizeRw of the running one')

    status, df = eng.api_json('GET', '/system/df')
    assert status == 200
    assert df['BuildCache'] == [] and df['Volumes'] == []
    sizes = {c['Names'][0][1:]: (c.get('SizeRw', 0), c['SizeRootFs']) for c in df['Containers']}
    busybox_size = inspect(eng, 'busybox', 'images')['Size']
    assert sizes[big] == (100000, 100000 + busybox_size)
    assert sizes[idle] == (0, busybox_size)
    assert sizes[run] == (5000, 5000 + busybox_size)
    # docker ps -s and inspect -s say the same.
    for name, (rw, rootfs) in sizes.items():
        assert inspect_sizes(eng, name) == (rw, rootfs)
    listed = {c['Names'][0][1:]: (c.get('SizeRw', 0), c['SizeRootFs'])
              for c in eng.api_json('GET', '/containers/json?all=1&size=1')[1]}
    assert listed == sizes
    ps = ok(cli(['ps', '-as', '--format', '{{.Names}} {{.Size}}'])).stdout.splitlines()
    assert '%s 100kB (virtual %s)' % (big, human(100000 + busybox_size)) in ps

    images = {i['RepoTags'][0]: i for i in df['Images']}
    assert set(images) == {'busybox:latest', 'dfsnap:1'}
    assert images['busybox:latest']['Containers'] == 3
    assert images['dfsnap:1']['Containers'] == 0
    # The busybox layer is shared; the commit's own layer is not.
    assert images['busybox:latest']['SharedSize'] == busybox_size
    snap_size = inspect(eng, 'dfsnap:1', 'images')['Size']
    assert images['dfsnap:1']['Size'] == snap_size
    assert images['dfsnap:1']['SharedSize'] == busybox_size
    assert df['LayersSize'] == snap_size
    listed = {i['RepoTags'][0]: i['Size'] for i in eng.api_json('GET', '/images/json')[1]}
    assert listed == {k: v['Size'] for k, v in images.items()}

    out = ok(cli(['system', 'df'])).stdout.splitlines()
    assert out[0].split() == ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE']
    assert out[1].split()[:3] == ['Images', '2', '1']
    assert out[2].split()[:3] == ['Containers', '3', '1']
    verbose = ok(cli(['system', 'df', '-v'])).stdout
    assert 'Images space usage:' in verbose and big in verbose


def inspect_sizes(eng, name):
    status, data = eng.api_json('GET', '/containers/%s/json?size=1' % name)
    assert status == 200
    return data['SizeRw'], data['SizeRootFs']


def human(n):
    """The CLI's units.HumanSizeWithPrecision(n, 3)."""
    for unit in ('B', 'kB', 'MB', 'GB'):
        if n < 1000:
            return ('%.3g' % n) + unit
        n /= 1000.0
    return ('%.3g' % n) + 'TB'


# --------------------------------------------------------------------------
# prune


def test_container_prune(engine_factory, docker_cli, names):
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    done, keep, run, paused = names('pd'), names('pk'), names('pr'), names('pp')
    ok(cli(['run', '--name', done, 'busybox', 'sh', '-c', 'head -c 3000 /dev/zero > /f']))
    ok(cli(['run', '--name', keep, '-l', 'keep=yes', 'busybox', 'true']))
    ok(cli(['run', '-d', '--name', run, 'busybox', 'sleep', '300']))
    ok(cli(['run', '-d', '--name', paused, 'busybox', 'sleep', '300']))
    ok(cli(['pause', paused]))
    done_id = inspect(eng, done)['Id']
    since = '%.9f' % time.time()

    res = ok(cli(['container', 'prune', '-f', '--filter', 'label!=keep']))
    assert res.stdout == ('Deleted Containers:\n%s\n\nTotal reclaimed space: 3kB\n' % done_id)
    assert inspect(eng, done) is None
    assert inspect(eng, keep)['State']['Status'] == 'exited'
    assert inspect(eng, run)['State']['Status'] == 'running'
    assert inspect(eng, paused)['State']['Status'] == 'paused'
    # until: only containers created before it.
    ok(cli(['container', 'prune', '-f', '--filter', 'until=1h']))
    assert inspect(eng, keep) is not None
    res = ok(cli(['container', 'prune', '-f']))
    assert inspect(eng, keep) is None and 'Deleted Containers:' in res.stdout
    assert inspect(eng, run)['State']['Running'] and inspect(eng, paused)['State']['Running']
    # One destroy per pruned container, then Docker's prune event.
    lines = ok(cli(['events', '--since', since, '--until', '%.9f' % time.time(),
                    '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes}}'])).stdout
    actions = [' '.join(l.split()[:2]) for l in lines.splitlines()]
    assert actions == ['container destroy', 'container prune', 'container prune',
                       'container destroy', 'container prune']
    assert 'reclaimed:3000' in lines.splitlines()[1]

    res = cli(['container', 'prune', '-f', '--filter', 'colour=red'])
    assert res.returncode == 1 and "invalid filter 'colour'" in res.stderr
    res = cli(['container', 'prune', '-f', '--filter', 'until=yesterday'])
    assert res.returncode == 1
    assert 'failed to parse value as time or duration: "yesterday"' in res.stderr


def test_image_prune(engine_factory, docker_cli, names):
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    src, user = names('isrc'), names('iuser')
    ok(cli(['run', '--name', src, 'busybox', 'sh', '-c', 'head -c 2000 /dev/zero > /f']))
    dangling = ok(cli(['commit', src])).stdout.strip()
    ok(cli(['commit', src, 'unused:1']))
    ok(cli(['commit', src, 'used:1']))
    ok(cli(['run', '--name', user, 'used:1', 'true']))   # stopped, still uses used:1
    ok(cli(['rm', src]))

    res = ok(cli(['image', 'prune', '-f']))
    assert res.stdout.startswith('Deleted Images:\ndeleted: %s\n' % dangling)
    tags = sorted(ok(cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split())
    assert tags == ['busybox:latest', 'unused:1', 'used:1']

    # -a: everything no container uses, tagged or not.  As in Docker, the
    # parent of an image in use loses its tag but stays (it has a child).
    busybox_id = inspect(eng, 'busybox', 'images')['Id']
    res = ok(cli(['image', 'prune', '-af']))
    assert 'untagged: unused:1' in res.stdout
    assert 'untagged: busybox:latest' in res.stdout
    tags = sorted(ok(cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split())
    assert tags == ['used:1']
    assert inspect(eng, busybox_id, 'images') is not None
    # A running container's image stays too.
    ok(cli(['rm', user]))
    ok(cli(['run', '-d', '--name', names('irun'), 'used:1', 'sleep', '300']))
    res = ok(cli(['image', 'prune', '-af']))
    assert res.stdout == 'Total reclaimed space: 0B\n'
    tags = sorted(ok(cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split())
    assert tags == ['used:1']

    res = cli(['image', 'prune', '-f', '--filter', 'colour=red'])
    assert res.returncode == 1 and "invalid filter 'colour'" in res.stderr


def test_system_prune(engine_factory, docker_cli, names):
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    done, run = names('sp'), names('spr')
    ok(cli(['run', '--name', done, 'busybox', 'true']))
    ok(cli(['run', '-d', '--name', run, 'busybox', 'sleep', '300']))
    done_id = inspect(eng, done)['Id']
    dangling = ok(cli(['commit', done])).stdout.strip()
    res = ok(cli(['system', 'prune', '-f']))
    assert 'Deleted Containers:\n%s\n' % done_id in res.stdout
    assert 'Deleted Images:\ndeleted: %s\n' % dangling in res.stdout
    assert 'Total reclaimed space:' in res.stdout
    assert inspect(eng, run)['State']['Running']
    assert inspect(eng, 'busybox', 'images') is not None
    for path, key in (('/build/prune', 'CachesDeleted'), ('/networks/prune', 'NetworksDeleted')):
        status, body = eng.api_json('POST', path)
        assert status == 200 and body[key] is None


def test_prune_with_docker_py(engine_factory, names):
    eng = engine_factory()
    client = docker.DockerClient(base_url=eng.url, timeout=60)
    try:
        gone = client.containers.run('busybox', 'true', name=names('pypr'), detach=True)
        gone.wait()
        report = client.containers.prune()
        assert report['ContainersDeleted'] == [gone.id]
        assert client.images.prune()['ImagesDeleted'] is None
        usage = client.df()
        assert usage['Containers'] == [] and len(usage['Images']) == 1
    finally:
        client.close()
