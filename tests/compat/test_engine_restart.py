"""Containers outlive the engine: SIGKILL or SIGTERM it, the workloads keep
running and logging, an exit while it is down is recorded, and after a
restart on the same root every docker command works on them again.

Each test uses an engine of its own (engine_factory), never the session's.
"""

import os
import time

import pytest

from tests import daemons
from tests.compat.conftest import inspect, wait_for

pytestmark = [pytest.mark.compat, pytest.mark.engine_only]

COUNTER = 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done'


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def alive(pid):
    return daemons._alive(pid)


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def numbers(text):
    return [int(x) for x in text.split()]


def assert_contiguous(text):
    got = numbers(text)
    assert got, 'no output'
    assert got == list(range(got[-1] + 1)), 'gap or repeat in %r' % got


@pytest.fixture
def setup(engine_factory, docker_cli, names):
    """An engine of our own with a counter container and a short-lived one."""
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    counter, short = names('counter'), names('short')
    ok(cli(['run', '-d', '--name', counter, 'busybox', 'sh', '-c', COUNTER]))
    wait_for(lambda: len(ok(cli(['logs', counter])).stdout.split()) >= 2,
             what='counter output')
    return eng, cli, counter, short


def _down_and_up(eng, cli, counter, short, take_down):
    ok(cli(['run', '-d', '--name', short, 'busybox', 'sh', '-c',
            'sleep 2; exit 7']))
    c = inspect(eng, counter)
    s = inspect(eng, short)
    pid, short_pid, log_path = c['State']['Pid'], s['State']['Pid'], \
        c['LogPath']
    assert pid > 0 and alive(pid)
    assert log_path and os.path.exists(log_path), c.get('LogPath')

    take_down()
    assert not eng.running()
    time.sleep(1)
    # The workload is still there and its output still reaches its log.
    assert alive(pid), 'the container died with the engine'
    before = size(log_path)
    wait_for(lambda: size(log_path) > before, timeout=5,
             what='log to grow while the engine is down')
    # The short one exits while the engine is down.
    wait_for(lambda: not alive(short_pid), timeout=10,
             what='the short container to exit')
    grown = size(log_path)

    eng.start()
    # Running, same process, every command works again.
    res = ok(cli(['ps', '--filter', 'name=' + counter, '--format',
                  '{{.Names}}|{{.Status}}']))
    assert res.stdout.strip().startswith(counter + '|Up'), res.stdout
    st = inspect(eng, counter)['State']
    assert st['Running'] is True and st['Pid'] == pid
    logs = ok(cli(['logs', counter])).stdout
    assert_contiguous(logs)
    assert size(log_path) >= grown
    assert ok(cli(['exec', counter, 'echo', 'after-restart'])
              ).stdout == 'after-restart\n'
    later = len(logs.split())
    wait_for(lambda: len(ok(cli(['logs', counter])).stdout.split()) > later,
             what='output after the restart')
    # The exit that happened while the engine was down is recorded.
    st = inspect(eng, short)['State']
    assert st['Status'] == 'exited' and st['Running'] is False, st
    assert st['ExitCode'] == 7
    assert ok(cli(['wait', short])).stdout.strip() == '7'
    assert ok(cli(['ps', '-a', '--filter', 'name=' + short, '--format',
                   '{{.Status}}'])).stdout.startswith('Exited (7)')
    # ... and it can be started again.
    ok(cli(['start', short]))
    assert ok(cli(['wait', short]), ).stdout.strip() == '7'

    res = ok(cli(['stop', '-t', '1', counter]))
    assert res.stdout.strip() == counter
    st = inspect(eng, counter)['State']
    assert st['Status'] == 'exited' and st['ExitCode'] == 137
    wait_for(lambda: not alive(pid), timeout=10, what='counter process gone')
    ok(cli(['rm', counter, short]))
    assert inspect(eng, counter) is None

    eng.stop()
    res = eng.check()
    assert res.returncode == 0, res.stdout + res.stderr


def test_containers_survive_sigkill_of_engine(setup):
    eng, cli, counter, short = setup
    _down_and_up(eng, cli, counter, short, eng.kill)


def test_containers_survive_graceful_stop_of_engine(setup):
    eng, cli, counter, short = setup

    def sigterm():
        rc = eng.stop()
        assert rc == 0, 'engine exit status on SIGTERM: %s' % rc
    _down_and_up(eng, cli, counter, short, sigterm)


def test_paused_and_created_containers_survive_restart(engine_factory,
                                                       docker_cli, names):
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    paused, created, tty = names('paused'), names('created'), names('tty')
    ok(cli(['run', '-d', '--name', paused, 'busybox', 'sh', '-c', COUNTER]))
    ok(cli(['pause', paused]))
    ok(cli(['create', '--name', created, '--label', 'keep=1', 'busybox',
            'echo', 'created-ran']))
    ok(cli(['run', '-d', '-t', '--name', tty, 'busybox', 'sh', '-c',
            'while true; do tty; sleep 0.2; done']))
    eng.kill()
    eng.start()
    st = inspect(eng, paused)['State']
    assert st['Paused'] is True and st['Status'] == 'paused'
    ok(cli(['unpause', paused]))
    assert inspect(eng, paused)['State']['Status'] == 'running'
    st = inspect(eng, created)
    assert st['State']['Status'] == 'created'
    assert st['Config']['Labels'] == {'keep': '1'}
    ok(cli(['start', '-a', created]))
    assert ok(cli(['logs', created])).stdout == 'created-ran\n'
    assert '/dev/pts/0' in ok(cli(['logs', '--tail', '1', tty])).stdout
    ok(cli(['rm', '-f', paused, created, tty]))
    eng.stop()
    res = eng.check()
    assert res.returncode == 0, res.stdout + res.stderr


def test_auto_remove_and_stdin_across_restart(engine_factory, docker_cli,
                                              names):
    """A --rm container that exits while the engine is down is removed once
    the engine is back; a container with open stdin still takes input
    through attach after the restart."""
    eng = engine_factory()

    def cli(args, **kw):
        return docker_cli(args, host=eng.url, **kw)

    rm_name, reader = names('autorm'), names('reader')
    ok(cli(['run', '-d', '--rm', '--name', rm_name, 'busybox', 'sh', '-c',
            'sleep 1.5; exit 3']))
    ok(cli(['run', '-d', '-i', '--name', reader, 'busybox', 'sh', '-c',
            'read x; echo "got:$x"; exit 5']))
    rm_pid = inspect(eng, rm_name)['State']['Pid']
    eng.kill()
    wait_for(lambda: not alive(rm_pid), timeout=10,
             what='the --rm container to exit')
    eng.start()
    wait_for(lambda: inspect(eng, rm_name) is None, timeout=10,
             what='the --rm container to be removed after the restart')
    assert inspect(eng, reader)['State']['Running'] is True
    res = cli(['attach', '--sig-proxy=false', reader], input='hello\n',
              timeout=30)
    assert 'got:hello' in res.stdout, res
    st = wait_for(lambda: (lambda s: s if not s['Running'] else None)(
        inspect(eng, reader)['State']), what='reader to exit')
    assert st['ExitCode'] == 5
    assert ok(cli(['logs', reader])).stdout == 'got:hello\n'
