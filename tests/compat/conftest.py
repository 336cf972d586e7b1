"""Helpers for the compatibility suite (real docker CLIs and docker-py).

* ``names``: unique container names for one test; every container made
  under them is force-removed at teardown.
* ``images_to_remove``: image references a test creates; force-removed at
  teardown so the session engine keeps only busybox:latest.
* ``pty_run``: run a command with a pseudo terminal of a known size as its
  stdin/stdout/stderr (``docker run -t``, ``docker exec -it``).
* ``NOVADOCKER_COMPAT_TARGET=dockerd``: run the same suite against Docker
  20.10 (the ``dockerd`` fixture) to check that the tests encode Docker's
  behaviour; tests marked ``engine_only`` (our store layout, our restarts,
  our stricter defaults) are skipped then, and so are the error-status
  tests marked ``stricter_than_docker2010`` (Docker 20.10 answers 500 or
  text/plain where the issue, like newer Docker, wants a 4xx JSON error).
"""

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import termios
import time
import uuid

import pytest

from tests import daemons
from tests.conftest import run_docker

DOCKER_CLI = daemons.DOCKER_CLI
DOCKER_CLI_2010 = daemons.DOCKER_CLI_2010

# The core subset every test in it runs with both clients.
CLIS = [pytest.param(DOCKER_CLI, id='cli28'),
        pytest.param(DOCKER_CLI_2010, id='cli2010')]

AGAINST_DOCKERD = os.environ.get('NOVADOCKER_COMPAT_TARGET') == 'dockerd'


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'engine_only: checks novadocker specifics; skipped when '
                   'the suite runs against Docker itself')
    config.addinivalue_line(
        'markers', 'stricter_than_docker2010: the issue asks for 4xx JSON '
                   'errors where Docker 20.10 answers 500 or text/plain '
                   '(newer Docker answers 400); skipped against Docker 20.10')


def pytest_collection_modifyitems(config, items):
    if not AGAINST_DOCKERD:
        return
    skip = pytest.mark.skip(reason='novadocker-specific check')
    skip_strict = pytest.mark.skip(reason='Docker 20.10 answers 500 here')
    for item in items:
        if item.get_closest_marker('engine_only'):
            item.add_marker(skip)
        elif item.get_closest_marker('stricter_than_docker2010'):
            item.add_marker(skip_strict)


if AGAINST_DOCKERD:
    @pytest.fixture(scope='session')
    def engine(dockerd):
        """Docker 20.10 standing in for our engine (suite self-check)."""
        dockerd.root = dockerd.data_root
        return dockerd


@pytest.fixture
def docker_cli(engine, docker_config_dir):
    """Like the shared ``docker_cli``, with a shorter default timeout: a CLI
    that hangs on the engine fails its test in 45 s instead of 120 s."""
    def run(args, input=None, timeout=45, cli=DOCKER_CLI, host=None,
            env=None, check=False):
        return run_docker(args, host or engine.url, input=input,
                          timeout=timeout, cli=cli, env=env,
                          docker_config=docker_config_dir, check=check)
    return run


@pytest.fixture
def names(engine):
    """``names(prefix='c')`` -> a fresh container name; all are removed
    (force) at teardown, whether or not the test created them."""
    made = []
    suffix = uuid.uuid4().hex[:8]

    def make(prefix='c'):
        name = 'compat-%s-%s-%d' % (prefix, suffix, len(made))
        made.append(name)
        return name
    make.suffix = suffix
    yield make
    for name in made:
        try:
            daemons.api(engine.sock, 'DELETE',
                        '/containers/%s?force=1&v=1' % name, timeout=60)
        except Exception:
            pass


@pytest.fixture
def images_to_remove(engine):
    """A list; append image references to force-remove them at teardown."""
    refs = []
    yield refs
    for ref in reversed(refs):
        try:
            daemons.api(engine.sock, 'DELETE',
                        '/images/%s?force=1' % ref, timeout=60)
        except Exception:
            pass


# The docker CLI with BuildKit off: the classic builder (POST /build).
NOKIT = {'DOCKER_BUILDKIT': '0'}


def ok(res):
    """``res`` (a CompletedProcess) after asserting it succeeded."""
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


@pytest.fixture
def tag(images_to_remove, request):
    """``tag(prefix)`` -> a fresh image reference, force-removed at teardown."""
    module = request.module.__name__.rsplit('.', 1)[-1].replace('test_', '').replace('_', '-')

    def make(prefix='b'):
        t = 'compat-%s-%s-%s:latest' % (module, prefix, uuid.uuid4().hex[:8])
        images_to_remove.append(t)
        return t
    return make


def inspect(engine, what, kind='containers'):
    """GET /containers/X/json (or /images/X/json) as a dict; None on 404."""
    status, data = daemons.api_json(engine.sock, 'GET',
                                    '/%s/%s/json' % (kind, what))
    if status == 404:
        return None
    assert status == 200, (status, data)
    return data


def wait_for(predicate, timeout=20, interval=0.05, what='condition'):
    """Poll ``predicate`` until it returns something true; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(interval)


def cli_env(engine, docker_config=None):
    env = dict(os.environ, DOCKER_HOST=engine.url, DOCKER_CLI_HINTS='false')
    if docker_config:
        env['DOCKER_CONFIG'] = docker_config
    return env


def pty_run(argv, env, timeout=60, rows=33, cols=111, send=None):
    """Run ``argv`` on a fresh pty sized rows x cols; return (rc, output).

    ``send``: optional list of (expected, bytes to type) pairs; each is
    typed once the output so far contains ``expected`` (bytes), or once
    ``expected`` seconds have passed (a number).
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

    def make_controlling():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True,
                            preexec_fn=make_controlling)
    os.close(slave)
    out = b''
    pending = list(send or [])
    started = time.monotonic()
    deadline = started + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError('%s did not finish on its pty; output so '
                                     'far: %r' % (argv, out))
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed
                    data = b''
                if not data:
                    break
                out += data
            while pending and (
                    time.monotonic() - started >= pending[0][0]
                    if isinstance(pending[0][0], (int, float))
                    else pending[0][0] in out):
                os.write(master, pending.pop(0)[1])
            if not ready and proc.poll() is not None:
                # Drain what is left, then stop.
                while select.select([master], [], [], 0.05)[0]:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b''
                    if not data:
                        break
                    out += data
                break
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        os.close(master)
    return rc, out.decode(errors='replace')


def container_dirs(engine):
    path = os.path.join(engine.root, 'containers')
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        return set()


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]
