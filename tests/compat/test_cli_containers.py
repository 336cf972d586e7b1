"""Containers through the real docker CLI (28.x, and 20.10 for the core).

Every test asserts what a user would see: output text, exit codes and the
fields of ``docker inspect``; never only that a command exited 0.
"""

import calendar
import hashlib
import json
import os
import re
import socket
import subprocess
import time

import pytest

from tests import daemons
from tests.compat.conftest import (
    CLIS, DOCKER_CLI, cli_env, inspect, pty_run, wait_for)

pytestmark = pytest.mark.compat

IMAGE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
HEX64 = re.compile(r'^[0-9a-f]{64}$')


def ok(res):
    """Assert a CLI call succeeded, showing its stderr when it did not."""
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def state(engine, name):
    data = inspect(engine, name)
    assert data is not None, 'container %s is gone' % name
    return data['State']


def logs_of(docker_cli, name):
    return ok(docker_cli(['logs', name])).stdout


# --------------------------------------------------------------------------
# run


@pytest.mark.parametrize('cli', CLIS)
def test_run_rm_prints_output_and_removes_container(docker_cli, engine, names,
                                                     cli):
    name = names('rm')
    res = ok(docker_cli(['run', '--rm', '--name', name, 'busybox',
                         'echo', 'hi'], cli=cli))
    assert res.stdout == 'hi\n'
    # --rm: the container is gone once the CLI returns.
    wait_for(lambda: inspect(engine, name) is None, timeout=10,
             what='%s to be removed' % name)
    res = docker_cli(['ps', '-a', '-q', '--filter', 'name=' + name], cli=cli)
    assert res.returncode == 0 and res.stdout.strip() == ''


@pytest.mark.parametrize('cli', CLIS)
def test_run_propagates_exit_code(docker_cli, engine, names, cli):
    name = names('exit')
    res = docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                      'echo before; exit 3'], cli=cli)
    assert res.returncode == 3, res
    assert res.stdout == 'before\n'
    st = state(engine, name)
    assert st['Status'] == 'exited'
    assert st['ExitCode'] == 3
    assert st['Running'] is False


@pytest.mark.parametrize('cli', CLIS)
def test_run_interactive_stdin(docker_cli, cli):
    res = ok(docker_cli(['run', '-i', '--rm', 'busybox', 'cat'],
                        input='hello\n', timeout=60, cli=cli))
    assert res.stdout == 'hello\n'
    # stdin is closed at EOF, so a reader of several lines terminates too.
    res = ok(docker_cli(['run', '-i', '--rm', 'busybox', 'sh', '-c',
                         'wc -l; echo done'],
                        input='a\nb\nc\n', timeout=60, cli=cli))
    assert res.stdout.split() == ['3', 'done']


def test_run_interactive_binary_stdin(docker_cli):
    payload = bytes(range(256)) * 64
    res = docker_cli(['run', '-i', '--rm', 'busybox', 'md5sum'],
                     input=payload, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0].decode() == hashlib.md5(payload).hexdigest()


def test_run_tty_through_pty(engine, docker_config_dir):
    rc, out = pty_run([DOCKER_CLI, 'run', '-t', '--rm', 'busybox', 'tty'],
                      cli_env(engine, docker_config_dir))
    assert rc == 0, out
    assert '/dev/pts/0' in out
    assert 'not a tty' not in out


@pytest.mark.parametrize('cli', CLIS)
def test_run_it_interactive_shell(engine, docker_config_dir, cli):
    rc, out = pty_run([cli, 'run', '-it', '--rm', 'busybox', 'sh'],
                      cli_env(engine, docker_config_dir),
                      send=[(b'# ', b'echo $((3*4))q\r'),
                            (b'12q', b'exit 4\r')])
    assert '12q' in out, out
    assert rc == 4, (rc, out)


def test_run_tty_with_script(engine, docker_config_dir):
    """The recipe from the docs: ``script`` gives the CLI a terminal."""
    env = cli_env(engine, docker_config_dir)
    res = subprocess.run(['script', '-qec',
                          '%s run -t --rm busybox sh -c "tty; echo rc-ok"'
                          % DOCKER_CLI, '/dev/null'],
                         capture_output=True, text=True, env=env, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res
    assert '/dev/pts/0' in res.stdout
    assert 'rc-ok' in res.stdout


@pytest.mark.parametrize('cli', CLIS)
def test_run_detached_and_ps(docker_cli, engine, names, cli):
    name = names('ps')
    res = ok(docker_cli(['run', '-d', '--name', name, 'busybox',
                         'sleep', '300'], cli=cli))
    cid = res.stdout.strip()
    assert HEX64.match(cid), res.stdout
    res = ok(docker_cli(['ps', '--filter', 'name=' + name, '--format',
                         '{{.ID}}|{{.Names}}|{{.Status}}|{{.Command}}|'
                         '{{.Image}}'], cli=cli))
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout
    short, pname, status, command, image = lines[0].split('|')
    assert cid.startswith(short) and len(short) == 12
    assert pname == name
    assert status.startswith('Up'), status
    assert command == '"sleep 300"'
    assert image == 'busybox'
    # The default table shows it as well.
    table = ok(docker_cli(['ps'], cli=cli)).stdout
    header = table.splitlines()[0].split()
    assert header[:2] == ['CONTAINER', 'ID'] and 'NAMES' in header
    assert any(line.endswith(name) and line.startswith(short)
               for line in table.splitlines())
    # -a -q --no-trunc: full IDs only.
    full = ok(docker_cli(['ps', '-a', '-q', '--no-trunc'], cli=cli)).stdout
    assert cid in full.split()
    assert all(HEX64.match(x) for x in full.split())


def test_ps_filters(docker_cli, engine, names):
    label = 'compat.test=' + names.suffix
    running, exited, created = names('run'), names('exit'), names('new')
    rid = ok(docker_cli(['run', '-d', '--name', running, '--label', label,
                         '--label', 'role=server', 'busybox', 'sleep', '300'])
             ).stdout.strip()
    ok(docker_cli(['run', '--name', exited, '--label', label,
                   '--label', 'role=job', 'busybox', 'true']))
    cid = ok(docker_cli(['create', '--name', created, '--label', label,
                         'busybox', 'true'])).stdout.strip()
    assert HEX64.match(cid)

    def ps(*filters):
        args = ['ps', '-a', '--format', '{{.Names}}', '--filter',
                'label=' + label]
        for f in filters:
            args += ['--filter', f]
        return sorted(ok(docker_cli(args)).stdout.split())

    assert ps() == sorted([running, exited, created])
    assert ps('name=' + running) == [running]
    assert ps('id=' + rid[:12]) == [running]
    assert ps('id=' + rid) == [running]
    assert ps('label=role') == sorted([running, exited])
    assert ps('label=role=job') == [exited]
    assert ps('status=running') == [running]
    assert ps('status=exited') == [exited]
    assert ps('status=created') == [created]
    assert ps('ancestor=busybox') == sorted([running, exited, created])
    assert ps('ancestor=busybox:latest') == sorted([running, exited, created])
    image_id = inspect(engine, 'busybox', 'images')['Id']
    assert ps('ancestor=' + image_id) == sorted([running, exited, created])
    # Without -a only running containers are listed.
    res = ok(docker_cli(['ps', '--format', '{{.Names}}', '--filter',
                         'label=' + label]))
    assert res.stdout.split() == [running]


# --------------------------------------------------------------------------
# logs


@pytest.mark.parametrize('cli', CLIS)
def test_logs_separates_stdout_and_stderr(docker_cli, engine, names, cli,
                                          docker_config_dir):
    name = names('logs')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'echo out1; echo err1 >&2; echo out2'], cli=cli))
    ok(docker_cli(['wait', name], cli=cli))
    res = ok(docker_cli(['logs', name], cli=cli))
    assert res.stdout == 'out1\nout2\n'
    assert res.stderr == 'err1\n'
    # The shell recipe: 2>/dev/null keeps stdout only.
    res = subprocess.run('%s logs %s 2>/dev/null' % (cli, name), shell=True,
                         capture_output=True, text=True,
                         env=cli_env(engine, docker_config_dir))
    assert res.stdout == 'out1\nout2\n'


def test_logs_follow_until_exit(docker_cli, names):
    name = names('follow')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'for i in 1 2 3 4 5 6; do echo line$i; sleep 0.3; done']))
    res = ok(docker_cli(['logs', '-f', name], timeout=60))
    assert res.stdout.split() == ['line%d' % i for i in range(1, 7)]
    # logs -f ended because the container exited, not for another reason.
    assert ok(docker_cli(['inspect', '-f', '{{.State.Status}}', name])
              ).stdout.strip() == 'exited'


def test_logs_tail_timestamps_since_until(docker_cli, names):
    name = names('tail')
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                   'echo l1; echo l2; echo l3; sleep 1.2; echo l4; echo l5']))
    assert ok(docker_cli(['logs', '--tail', '2', name])).stdout == 'l4\nl5\n'
    assert ok(docker_cli(['logs', '--tail', '0', name])).stdout == ''
    assert ok(docker_cli(['logs', '--tail', 'all', name])).stdout.split() == \
        ['l1', 'l2', 'l3', 'l4', 'l5']
    stamped = ok(docker_cli(['logs', '--timestamps', name])).stdout
    pat = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z) (l\d)$')
    matches = [pat.match(line) for line in stamped.splitlines()]
    assert all(matches), stamped
    assert [m.group(3) for m in matches] == ['l1', 'l2', 'l3', 'l4', 'l5']

    def epoch(stamp):
        whole, _, frac = stamp.rstrip('Z').partition('.')
        secs = calendar.timegm(time.strptime(whole, '%Y-%m-%dT%H:%M:%S'))
        return secs + float('0.' + (frac or '0'))

    t3 = epoch(matches[2].group(1))
    t4 = epoch(matches[3].group(1))
    assert t4 - t3 > 0.5, stamped
    middle = '%.3f' % ((t3 + t4) / 2)
    assert ok(docker_cli(['logs', '--since', middle, name])).stdout == \
        'l4\nl5\n'
    assert ok(docker_cli(['logs', '--until', middle, name])).stdout == \
        'l1\nl2\nl3\n'
    assert ok(docker_cli(['logs', '--since', middle, '--tail', '1', name])
              ).stdout == 'l5\n'


def test_logs_partial_and_long_lines(docker_cli, names):
    """Output without a newline and lines longer than a log record are put
    back together, as Docker's json-file logs are."""
    name = names('partial')
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                   'printf abc; sleep 0.3; printf "def\\n"; '
                   'head -c 100000 /dev/zero | tr "\\0" a; echo; '
                   'printf tail-without-newline']))
    out = logs_of(docker_cli, name)
    lines = out.split('\n')
    assert lines[0] == 'abcdef'
    assert lines[1] == 'a' * 100000
    assert lines[2] == 'tail-without-newline'
    assert len(lines) == 3


@pytest.mark.parametrize('cli', CLIS)
def test_large_output_is_complete(docker_cli, names, cli):
    name = names('seq')
    res = ok(docker_cli(['run', '--name', name, 'busybox', 'seq', '1',
                         '50000'], cli=cli))
    assert res.stdout.split() == [str(i) for i in range(1, 50001)]
    assert logs_of(docker_cli, name) == res.stdout


def test_logs_of_tty_container(docker_cli, names):
    """With a TTY there is one stream: stderr arrives on stdout."""
    name = names('ttylogs')
    ok(docker_cli(['run', '-d', '-t', '--name', name, 'busybox', 'sh', '-c',
                   'echo a; echo b >&2']))
    ok(docker_cli(['wait', name]))
    res = ok(docker_cli(['logs', name]))
    assert res.stdout.replace('\r', '') == 'a\nb\n'
    assert res.stderr == ''


# --------------------------------------------------------------------------
# stop / kill / restart / pause / wait / rm / rename


def test_stop_kills_a_container_that_ignores_sigterm(docker_cli, engine, names):
    name = names('stubborn')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   "trap '' TERM; echo ready; sleep 100"]))
    wait_for(lambda: 'ready' in logs_of(docker_cli, name), what='ready')
    res = ok(docker_cli(['stop', '-t', '1', name], timeout=60))
    assert res.stdout.strip() == name
    st = state(engine, name)
    assert st['Status'] == 'exited' and st['Running'] is False
    assert st['ExitCode'] == 137


def test_stop_is_graceful_for_a_container_handling_sigterm(docker_cli, engine,
                                                           names):
    name = names('graceful')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'trap "echo caught TERM; exit 143" TERM; echo ready; '
                   'sleep 100 & wait']))
    wait_for(lambda: 'ready' in logs_of(docker_cli, name), what='ready')
    res = ok(docker_cli(['stop', '-t', '30', name], timeout=60))
    assert res.stdout.strip() == name
    st = state(engine, name)
    assert st['Status'] == 'exited'
    assert st['ExitCode'] == 143
    assert 'caught TERM' in logs_of(docker_cli, name)


def test_kill_with_signal(docker_cli, engine, names):
    name = names('kill')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'trap "echo got USR1" USR1; echo ready; '
                   'while true; do sleep 0.1; done']))
    wait_for(lambda: 'ready' in logs_of(docker_cli, name), what='ready')
    res = ok(docker_cli(['kill', '-s', 'USR1', name]))
    assert res.stdout.strip() == name
    wait_for(lambda: 'got USR1' in logs_of(docker_cli, name), what='trap')
    assert state(engine, name)['Running'] is True
    ok(docker_cli(['kill', '--signal', 'SIGUSR1', name]))
    wait_for(lambda: logs_of(docker_cli, name).count('got USR1') == 2,
             what='second trap')
    ok(docker_cli(['kill', name]))
    st = wait_for(lambda: (lambda s: s if not s['Running'] else None)(
        state(engine, name)), what='exit after SIGKILL')
    assert st['ExitCode'] == 137
    # Killing a container that is not running is an error.
    res = docker_cli(['kill', name])
    assert res.returncode == 1
    assert 'not running' in res.stderr


def test_restart(docker_cli, engine, names):
    name = names('restart')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'trap "exit 0" TERM; echo started; sleep 100 & wait']))
    wait_for(lambda: 'started' in logs_of(docker_cli, name), what='start')
    before = state(engine, name)
    res = ok(docker_cli(['restart', '-t', '5', name], timeout=60))
    assert res.stdout.strip() == name
    wait_for(lambda: logs_of(docker_cli, name).count('started') == 2,
             what='second start')
    after = state(engine, name)
    assert after['Running'] is True and after['Status'] == 'running'
    assert after['Pid'] != before['Pid'] and after['Pid'] > 0
    assert after['StartedAt'] > before['StartedAt']
    # Restarting an exited container starts it again.
    ok(docker_cli(['stop', name]))
    assert state(engine, name)['Running'] is False
    ok(docker_cli(['restart', name]))
    wait_for(lambda: logs_of(docker_cli, name).count('started') == 3,
             what='third start')
    assert state(engine, name)['Running'] is True


def test_pause_unpause(docker_cli, engine, names):
    name = names('pause')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; '
                   'done']))
    wait_for(lambda: len(logs_of(docker_cli, name).split()) >= 3,
             what='counter')
    res = ok(docker_cli(['pause', name]))
    assert res.stdout.strip() == name
    st = state(engine, name)
    assert st['Paused'] is True and st['Status'] == 'paused'
    assert st['Running'] is True
    status = ok(docker_cli(['ps', '--filter', 'name=' + name, '--format',
                            '{{.Status}}'])).stdout
    assert '(Paused)' in status
    assert ok(docker_cli(['ps', '-q', '--filter', 'status=paused',
                          '--filter', 'name=' + name])).stdout.strip()
    first = len(logs_of(docker_cli, name).split())
    time.sleep(0.8)
    second = len(logs_of(docker_cli, name).split())
    assert second == first, 'a paused container kept printing'
    # exec into a paused container is refused.
    res = docker_cli(['exec', name, 'true'])
    assert res.returncode != 0 and 'paused' in res.stderr
    res = ok(docker_cli(['unpause', name]))
    assert res.stdout.strip() == name
    st = state(engine, name)
    assert st['Paused'] is False and st['Status'] == 'running'
    wait_for(lambda: len(logs_of(docker_cli, name).split()) > second + 2,
             what='counter after unpause')
    # Unpausing a container that is not paused is an error.
    res = docker_cli(['unpause', name])
    assert res.returncode == 1 and 'not paused' in res.stderr


def test_stop_kill_and_rm_of_a_paused_container(docker_cli, engine, names):
    """Docker thaws a paused container to stop, kill or force-remove it."""
    stopped, killed, removed = names('pstop'), names('pkill'), names('prm')
    for n in (stopped, killed, removed):
        ok(docker_cli(['run', '-d', '--name', n, 'busybox', 'sleep', '300']))
        ok(docker_cli(['pause', n]))
        assert state(engine, n)['Paused'] is True
    res = ok(docker_cli(['stop', '-t', '1', stopped]))
    assert res.stdout.strip() == stopped
    st = state(engine, stopped)
    assert st['Status'] == 'exited' and st['Paused'] is False
    assert st['ExitCode'] == 137
    res = ok(docker_cli(['kill', killed]))
    assert res.stdout.strip() == killed
    st = state(engine, killed)
    assert st['Status'] == 'exited' and st['Paused'] is False
    assert st['ExitCode'] == 137
    pid = state(engine, removed)['Pid']
    res = ok(docker_cli(['rm', '-f', removed]))
    assert res.stdout.strip() == removed
    assert inspect(engine, removed) is None
    wait_for(lambda: not daemons._alive(pid), timeout=10,
             what='paused container process to go')


def test_wait_prints_exit_code(docker_cli, names):
    name = names('wait')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'sleep 0.5; exit 7']))
    res = ok(docker_cli(['wait', name], timeout=60))
    assert res.stdout.strip() == '7'
    # Waiting on an exited container answers at once with the same code.
    assert ok(docker_cli(['wait', name])).stdout.strip() == '7'
    res = docker_cli(['wait', 'compat-no-such-container'])
    assert res.returncode == 1 and 'No such container' in res.stderr


def test_rm_running_conflicts_and_rm_force(docker_cli, engine, names):
    name = names('rmf')
    cid = ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep',
                         '300'])).stdout.strip()
    res = docker_cli(['rm', name])
    assert res.returncode == 1
    assert 'running' in res.stderr and ('stop' in res.stderr.lower())
    assert state(engine, name)['Running'] is True
    res = ok(docker_cli(['rm', '-f', name]))
    assert res.stdout.strip() == name
    assert inspect(engine, name) is None
    assert inspect(engine, cid) is None
    res = docker_cli(['inspect', name])
    assert res.returncode == 1 and 'No such' in res.stderr
    res = docker_cli(['rm', name])
    assert res.returncode == 1 and 'No such container' in res.stderr


def test_rename(docker_cli, engine, names):
    old, new, other = names('old'), names('new'), names('other')
    cid = ok(docker_cli(['create', '--name', old, 'busybox', 'true'])
             ).stdout.strip()
    ok(docker_cli(['create', '--name', other, 'busybox', 'true']))
    res = ok(docker_cli(['rename', old, new]))
    assert res.stdout == ''
    data = inspect(engine, new)
    assert data['Id'] == cid and data['Name'] == '/' + new
    assert inspect(engine, old) is None
    res = docker_cli(['rename', new, other])
    assert res.returncode == 1
    assert 'already in use' in res.stderr or 'Conflict' in res.stderr
    assert inspect(engine, new)['Id'] == cid
    # The old name is free again.
    ok(docker_cli(['create', '--name', old, 'busybox', 'true']))


def test_inspect_fields(docker_cli, engine, names):
    name = names('insp')
    cid = ok(docker_cli([
        'create', '--name', name, '-e', 'FOO=bar', '-e', 'EMPTY=',
        '-w', '/tmp', '-u', 'nobody', '--hostname', 'myhost',
        '--label', 'a=b', '--label', 'c=', 'busybox', 'sh', '-c',
        'echo $FOO; sleep 300'])).stdout.strip()
    data = json.loads(ok(docker_cli(['inspect', name])).stdout)
    assert isinstance(data, list) and len(data) == 1
    c = data[0]
    assert c['Id'] == cid
    assert c['Name'] == '/' + name
    cfg = c['Config']
    assert cfg['Cmd'] == ['sh', '-c', 'echo $FOO; sleep 300']
    assert not cfg.get('Entrypoint')
    assert 'FOO=bar' in cfg['Env'] and 'EMPTY=' in cfg['Env']
    assert IMAGE_PATH in cfg['Env']
    assert cfg['WorkingDir'] == '/tmp'
    assert cfg['User'] == 'nobody'
    assert cfg['Hostname'] == 'myhost'
    assert cfg['Labels'] == {'a': 'b', 'c': ''}
    assert cfg['Image'] == 'busybox'
    assert c['Image'] == inspect(engine, 'busybox', 'images')['Id']
    assert c['State']['Status'] == 'created'
    assert c['State']['Running'] is False and c['State']['Pid'] == 0
    assert c['Created'].startswith('20')
    ok(docker_cli(['start', name]))
    st = state(engine, name)
    assert st['Status'] == 'running' and st['Running'] is True
    assert st['Pid'] > 0 and os.path.exists('/proc/%d' % st['Pid'])
    assert st['StartedAt'].startswith('20')
    assert st['ExitCode'] == 0
    # Go templates over the same document.
    res = ok(docker_cli(['inspect', '-f',
                         '{{.Config.Hostname}} {{.State.Running}} '
                         '{{index .Config.Labels "a"}}', name]))
    assert res.stdout.strip() == 'myhost true b'
    assert logs_of(docker_cli, name) == 'bar\n'


def test_attach_receives_output_and_exit_code(engine, names,
                                              docker_config_dir, docker_cli):
    name = names('attach')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'sleep 0.5; for i in 1 2 3 4 5 6 7 8; do echo tick$i; '
                   'sleep 0.25; done; exit 4']))
    env = cli_env(engine, docker_config_dir)
    proc = subprocess.Popen([DOCKER_CLI, 'attach', '--sig-proxy=false',
                             '--no-stdin', name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert 'tick8' in out, (out, err)
    # Output arrives live; what attach missed before it connected is not
    # replayed, but from there on it sees every line in order.
    got = [int(x[4:]) for x in out.split() if x.startswith('tick')]
    assert got == list(range(got[0], 9))
    assert proc.returncode == 4, (proc.returncode, err)


def test_attach_with_stdin(engine, names, docker_config_dir, docker_cli):
    name = names('attachin')
    ok(docker_cli(['run', '-d', '-i', '--name', name, 'busybox', 'sh', '-c',
                   'read line; echo "read:$line"; exit 2']))
    env = cli_env(engine, docker_config_dir)
    proc = subprocess.Popen([DOCKER_CLI, 'attach', '--sig-proxy=false', name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(0.5)
        proc.stdin.write('over-attach\n')
        proc.stdin.flush()
        wait_for(lambda: not state(engine, name)['Running'], timeout=20,
                 what='container to read stdin and exit')
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert 'read:over-attach' in out, (out, err)
    assert state(engine, name)['ExitCode'] == 2
    assert logs_of(docker_cli, name) == 'read:over-attach\n'


def test_attach_tty_interactive_and_detach(engine, names, docker_cli,
                                           docker_config_dir):
    """attach to a TTY container: raw stream both ways, then detach with
    ctrl-p ctrl-q and the container keeps running."""
    name = names('attachtty')
    ok(docker_cli(['run', '-d', '-i', '-t', '--name', name, 'busybox', 'sh']))
    rc, out = pty_run([DOCKER_CLI, 'attach', name],
                      cli_env(engine, docker_config_dir),
                      send=[(1.0, b'echo $((2+3))z\r'),
                            (b'5z', b'\x10\x11')], timeout=30)
    assert '5z' in out, out
    # The CLI reports the detach (its exit status for it varies by version).
    assert 'read escape sequence' in out, (rc, out)
    assert state(engine, name)['Running'] is True
    assert '5z' in logs_of(docker_cli, name)


# --------------------------------------------------------------------------
# exec


@pytest.mark.parametrize('cli', CLIS)
def test_exec(docker_cli, names, cli):
    name = names('exec')
    ok(docker_cli(['run', '-d', '-e', 'FROM_RUN=1', '--name', name, 'busybox',
                   'sleep', '300'], cli=cli))
    assert ok(docker_cli(['exec', name, 'echo', 'hello'], cli=cli)
              ).stdout == 'hello\n'
    res = docker_cli(['exec', name, 'sh', '-c', 'echo partial; exit 5'],
                     cli=cli)
    assert res.returncode == 5 and res.stdout == 'partial\n'
    res = docker_cli(['exec', name, 'sh', '-c', 'echo oops >&2'], cli=cli)
    assert res.returncode == 0 and res.stderr == 'oops\n' and res.stdout == ''
    assert ok(docker_cli(['exec', '-e', 'FOO=bar', name, 'sh', '-c',
                          'echo $FOO $FROM_RUN'], cli=cli)
              ).stdout == 'bar 1\n'
    assert ok(docker_cli(['exec', '-u', 'nobody', name, 'id', '-u'], cli=cli)
              ).stdout == '65534\n'
    assert ok(docker_cli(['exec', '-w', '/tmp', name, 'pwd'], cli=cli)
              ).stdout == '/tmp\n'
    assert ok(docker_cli(['exec', '-i', name, 'cat'], input='piped\n',
                         cli=cli)).stdout == 'piped\n'
    # Detached exec runs on its own.
    ok(docker_cli(['exec', '-d', name, 'sh', '-c',
                   'echo flag > /tmp/flag'], cli=cli))
    wait_for(lambda: docker_cli(['exec', name, 'cat', '/tmp/flag'],
                                cli=cli).stdout == 'flag\n', what='exec -d')
    res = docker_cli(['exec', name, 'no-such-binary'], cli=cli)
    assert res.returncode in (126, 127), res
    res = docker_cli(['exec', 'compat-no-such-container', 'true'], cli=cli)
    assert res.returncode == 1 and 'No such container' in res.stderr


def test_exec_in_stopped_container_fails(docker_cli, names):
    name = names('execstop')
    ok(docker_cli(['run', '--name', name, 'busybox', 'true']))
    res = docker_cli(['exec', name, 'true'])
    assert res.returncode == 1 and 'not running' in res.stderr


def test_exec_it_through_pty(engine, names, docker_cli, docker_config_dir):
    name = names('execit')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '300']))
    rc, out = pty_run([DOCKER_CLI, 'exec', '-it', name, 'sh', '-c',
                       'tty; sleep 0.5; stty size; exit 6'],
                      cli_env(engine, docker_config_dir), rows=33, cols=111)
    assert re.search(r'/dev/pts/\d+', out), out
    assert '33 111' in out, out
    assert rc == 6, (rc, out)


def test_exec_it_interactive_shell(engine, names, docker_cli,
                                   docker_config_dir):
    name = names('execsh')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '300']))
    rc, out = pty_run([DOCKER_CLI, 'exec', '-it', name, 'sh'],
                      cli_env(engine, docker_config_dir),
                      send=[(b'# ', b'echo $((6*7))x\r'),
                            (b'42x', b'exit 3\r')])
    assert '42x' in out, out
    assert rc == 3, (rc, out)


# --------------------------------------------------------------------------
# run options


def test_network_host_sees_host_interfaces(docker_cli):
    res = ok(docker_cli(['run', '--rm', '--network', 'host', 'busybox',
                         'sh', '-c', 'ip -o link; echo HOST=$(hostname)']))
    host_ifaces = set(os.listdir('/sys/class/net'))
    seen = set(re.findall(r'^\d+: ([^:@]+)', res.stdout, re.M))
    assert host_ifaces <= seen, (host_ifaces, res.stdout)
    assert 'HOST=%s' % socket.gethostname() in res.stdout


def test_network_none_has_only_loopback_up(docker_cli):
    res = ok(docker_cli(['run', '--rm', '--network', 'none', 'busybox',
                         'ip', '-o', 'link']))
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, res.stdout
    assert re.match(r'^1: lo: <[^>]*\bUP\b', lines[0]), lines[0]
    res = ok(docker_cli(['run', '--rm', '--network', 'none', 'busybox',
                         'ip', '-o', 'addr', 'show', 'lo']))
    assert '127.0.0.1/8' in res.stdout
    res = ok(docker_cli(['run', '--rm', '--network', 'none', 'busybox',
                         'ping', '-c', '1', '-W', '2', '127.0.0.1']))
    assert '1 packets received' in res.stdout


def test_user_workdir_hostname_entrypoint_env(docker_cli):
    res = ok(docker_cli(['run', '--rm', '--user', '65534:65534', 'busybox',
                         'id']))
    assert res.stdout.startswith('uid=65534(nobody) gid=65534(nogroup)')
    res = ok(docker_cli(['run', '--rm', '--user', 'nobody', 'busybox', 'id',
                         '-u']))
    assert res.stdout == '65534\n'
    assert ok(docker_cli(['run', '--rm', '--workdir', '/var/www', 'busybox',
                          'pwd'])).stdout == '/var/www\n'
    # A missing working directory is created, as Docker does.
    assert ok(docker_cli(['run', '--rm', '-w', '/made/here', 'busybox',
                          'pwd'])).stdout == '/made/here\n'
    res = ok(docker_cli(['run', '--rm', '--hostname', 'h1', 'busybox', 'sh',
                         '-c', 'hostname; cat /etc/hostname']))
    assert res.stdout == 'h1\nh1\n'
    res = ok(docker_cli(['run', '--rm', '--entrypoint', 'echo', 'busybox',
                         'hi', 'there']))
    assert res.stdout == 'hi there\n'
    res = ok(docker_cli(['run', '--rm', '--entrypoint', '/bin/sh', 'busybox',
                         '-c', 'echo entry']))
    assert res.stdout == 'entry\n'
    res = ok(docker_cli(['run', '--rm', '-e', 'A=1', '-e', 'PASSED',
                         'busybox', 'env'], env={'PASSED': 'through'}))
    env = res.stdout.splitlines()
    assert 'A=1' in env and 'PASSED=through' in env
    assert IMAGE_PATH in env
    assert 'HOME=/root' in env
    assert any(e.startswith('HOSTNAME=') and len(e) > 9 for e in env), env
    # An -e PATH replaces the image's.
    res = ok(docker_cli(['run', '--rm', '-e', 'PATH=/bin', 'busybox', 'sh',
                         '-c', 'echo $PATH']))
    assert res.stdout == '/bin\n'


def test_label_on_run(docker_cli, engine, names):
    name = names('label')
    ok(docker_cli(['run', '--name', name, '--label', 'tier=web',
                   '--label', 'owner=compat', 'busybox', 'true']))
    assert inspect(engine, name)['Config']['Labels'] == {
        'tier': 'web', 'owner': 'compat'}
    res = ok(docker_cli(['ps', '-a', '--filter', 'label=owner=compat',
                         '--filter', 'name=' + name, '--format',
                         '{{.Label "tier"}}']))
    assert res.stdout.strip() == 'web'


def test_read_only_rootfs(docker_cli):
    res = docker_cli(['run', '--rm', '--read-only', 'busybox', 'touch', '/x'])
    assert res.returncode == 1
    assert 'Read-only file system' in res.stderr
    res = ok(docker_cli(['run', '--rm', 'busybox', 'sh', '-c',
                         'touch /x && echo wrote']))
    assert res.stdout == 'wrote\n'


def _capeff(docker_cli, *opts):
    res = ok(docker_cli(['run', '--rm'] + list(opts) + [
        'busybox', 'grep', 'CapEff', '/proc/self/status']))
    return res.stdout.split()[1]


def test_capabilities(docker_cli):
    assert _capeff(docker_cli) == '00000000a80425fb'
    assert _capeff(docker_cli, '--cap-drop', 'ALL') == '0000000000000000'
    # CAP_NET_ADMIN is bit 12.
    assert _capeff(docker_cli, '--cap-drop', 'ALL', '--cap-add',
                   'NET_ADMIN') == '%016x' % (1 << 12)
    # CAP_SYS_ADMIN is bit 21; CAP_CHOWN (bit 0) dropped.
    assert _capeff(docker_cli, '--cap-add', 'SYS_ADMIN', '--cap-drop',
                   'CHOWN') == '%016x' % ((0xa80425fb | (1 << 21)) & ~1)
    res = ok(docker_cli(['run', '--rm', '--cap-drop', 'ALL', 'busybox', 'sh',
                         '-c', 'chown nobody /tmp && echo chowned || '
                         'echo denied']))
    assert 'denied' in res.stdout


def _host_capbnd():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('CapBnd:'):
                return int(line.split()[1], 16)
    raise AssertionError('no CapBnd')


MASKED_FILES = ('/proc/kcore', '/proc/keys', '/proc/timer_list',
                '/proc/latency_stats', '/proc/sched_debug',
                '/proc/timer_stats')
MASKED_DIRS = ('/proc/acpi', '/proc/scsi', '/sys/firmware', '/proc/asound')


@pytest.mark.engine_only
def test_privileged(docker_cli):
    """--privileged: every capability the host can give, no seccomp, no
    masked paths.  (Docker 20.10 itself fails here when the host's bounding
    set lacks a capability: "unable to apply caps".)"""
    with open('/proc/sys/kernel/cap_last_cap') as f:
        last = int(f.read())
    expected = ((1 << (last + 1)) - 1) & _host_capbnd()
    masked = [p for p in MASKED_FILES if os.path.exists(p)]
    res = ok(docker_cli(['run', '--rm', '--privileged', 'busybox', 'sh', '-c',
                         'grep -E "^(CapEff|Seccomp):" /proc/self/status; '
                         'for p in %s; do stat -c "$p %%F" $p; done'
                         % ' '.join(masked or ['/proc/self/status'])]))
    fields = dict(line.split(':\t') for line in res.stdout.splitlines()
                  if ':\t' in line)
    assert fields['CapEff'] == '%016x' % expected
    assert fields['Seccomp'] == '0'
    assert 'character special file' not in res.stdout


def test_security_defaults(docker_cli):
    files = [p for p in MASKED_FILES if os.path.exists(p)]
    dirs = [p for p in MASKED_DIRS if os.path.isdir(p) and os.listdir(p)]
    assert files, 'the host has none of the masked /proc files'
    script = ('grep -E "^(CapEff|Seccomp):" /proc/self/status; '
              'for p in %s; do stat -c "$p %%F %%t:%%T" $p; done; '
              'for d in %s; do echo "$d $(ls -A $d | wc -l)"; done; '
              'touch /proc/sysrq-trigger 2>/dev/null '
              '&& echo sysrq-writable || echo sysrq-readonly'
              % (' '.join(files), ' '.join(dirs) or '/nonexistent'))
    res = ok(docker_cli(['run', '--rm', 'busybox', 'sh', '-c', script]))
    fields = dict(line.split(':\t') for line in res.stdout.splitlines()
                  if ':\t' in line)
    assert fields['CapEff'] == '00000000a80425fb'
    assert fields['Seccomp'] == '2'
    # Masked files are /dev/null (char 1:3), masked directories are empty.
    for p in files:
        assert '%s character special file 1:3' % p in res.stdout, res.stdout
    for d in dirs:
        assert '%s 0' % d in res.stdout.splitlines(), res.stdout
    assert 'sysrq-readonly' in res.stdout


@pytest.mark.engine_only
def test_no_new_privileges_by_default(docker_cli):
    """Our engine sets no_new_privs by default (Docker does not)."""
    res = ok(docker_cli(['run', '--rm', 'busybox', 'grep', 'NoNewPrivs',
                         '/proc/self/status']))
    assert res.stdout.split() == ['NoNewPrivs:', '1']


def _root_overlay(pid):
    with open('/proc/%d/mountinfo' % pid) as f:
        for line in f:
            parts = line.split()
            if parts[4] == '/':
                sep = parts.index('-')
                return parts[sep + 1], parts[sep + 3]
    raise AssertionError('no root mount for %d' % pid)


def _overlay_opt(opts, key):
    for opt in opts.split(','):
        if opt.startswith(key + '='):
            return opt.split('=', 1)[1]
    return None


def test_containers_share_image_layers(docker_cli, engine, names):
    a, b = names('layA'), names('layB')
    for n in (a, b):
        ok(docker_cli(['run', '-d', '--name', n, 'busybox', 'sleep', '300']))
    ok(docker_cli(['exec', a, 'sh', '-c', 'echo mine > /only-in-a']))
    res = docker_cli(['exec', b, 'cat', '/only-in-a'])
    assert res.returncode == 1 and 'No such file' in res.stderr
    fstype_a, opts_a = _root_overlay(state(engine, a)['Pid'])
    fstype_b, opts_b = _root_overlay(state(engine, b)['Pid'])
    assert fstype_a == fstype_b == 'overlay', (fstype_a, fstype_b)
    lower_a = set(_overlay_opt(opts_a, 'lowerdir').split(':'))
    lower_b = set(_overlay_opt(opts_b, 'lowerdir').split(':'))
    assert lower_a & lower_b, (opts_a, opts_b)
    assert _overlay_opt(opts_a, 'upperdir') != _overlay_opt(opts_b, 'upperdir')

