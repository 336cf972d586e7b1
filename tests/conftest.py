"""Fixtures shared by every test directory.

* ``busybox_archive`` / ``busybox_rootfs``: images built once per session by
  tools/mkimage.py from Debian's static busybox.
* ``engine``: one private novadocker-engine for the whole session, with
  busybox:latest loaded.
* ``engine_factory``: engines of a test's own (start, stop, kill -9, restart
  on the same root).
* ``docker_cli``: run the real docker CLI against the session engine (or any
  other host).
* ``dockerd``: Docker 20.10 on its own socket and data root, as interop peer.
  Tests using it are marked ``slow`` automatically.

The process plumbing lives in tests/daemons.py so benchmarks reuse it.
"""

import json
import os
import shlex
import subprocess

import pytest

from tests import daemons
from tests.netleaks import net_leak_targets, net_leaks  # noqa: F401  (fixtures)
# Registries for tests (docker-registry plain/TLS+basic/token, a lying one).
from tests.registries import (  # noqa: F401  (fixtures)
    engine_registry_config, hostile_registry, registry, registry_factory,
    registry_tls_basic, registry_token)

DOCKER_CLI = daemons.DOCKER_CLI
DOCKER_CLI_2010 = daemons.DOCKER_CLI_2010


def pytest_addoption(parser):
    # Real Nova and Heat each need a pytest process of their own (see
    # tests/integration/conftest.py); without the option neither is collected.
    parser.addoption('--integration', choices=('nova', 'heat'), default=None,
                     help='collect tests/integration/<suite> (one per run)')


def pytest_configure(config):
    # pytest.ini registers the same markers; this keeps them registered when
    # pytest is run with another ini file (e.g. -c /dev/null).
    for line in ('functional: needs a real engine, runc and conmon',
                 'compat: drives the engine with real Docker clients',
                 'slow: takes long or starts Docker itself',
                 'no_engine_check: engine_factory skips the store check'):
        config.addinivalue_line('markers', line)


_CGROUP_PROBE = '/sys/fs/cgroup/pids'


def _engine_cgroup_parents():
    try:
        return {n for n in os.listdir(_CGROUP_PROBE) if n.startswith('novadocker-')}
    except OSError:
        return set()


def _live_engine_roots():
    """The --root of every novadocker-engine process on the host."""
    roots = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                argv = f.read().decode(errors='replace').split('\0')
        except OSError:
            continue
        if any(a.endswith('novadocker-engine') for a in argv[:2]) and '--root' in argv:
            i = argv.index('--root')
            if i + 1 < len(argv):
                roots.append(os.path.abspath(argv[i + 1]))
    return roots


def pytest_sessionstart(session):
    session.config._novadocker_cgroups = _engine_cgroup_parents()


def pytest_sessionfinish(session, exitstatus):
    """Bridges and rules of engine roots deleted without purge-networks
    (a test or helper that skipped its cleanup) go, and so do engines'
    parent cgroups the run left; both are named in the summary: visible,
    but not left on the host for the next run."""
    if hasattr(session.config, 'workerinput'):
        return
    leaks = []
    from engine.runtime import oci
    by_parent = {oci.engine_cgroup_parent(root).strip('/'): (root, test)
                 for root, test in daemons.STARTED_ROOTS.items()}
    # Engines still running (another test session on this host) keep theirs.
    alive = {oci.engine_cgroup_parent(root) for root in _live_engine_roots()}
    for name in sorted(_engine_cgroup_parents() - session.config._novadocker_cgroups - alive):
        oci.cleanup_cgroup_parent(name)
        gone = not os.path.isdir(os.path.join(_CGROUP_PROBE, name))
        root, test = by_parent.get(name, ('', ''))
        made_by = ' (engine root %s, started by %s)' % (root, test or 'no test') if root else \
            ' (not an engine started through tests/daemons.Engine)'
        leaks.append('%s cgroup %s%s' % ('removed' if gone else 'left (busy)', name, made_by))
    try:
        res = subprocess.run([daemons.engine_binary(), 'purge-orphans'],
                             capture_output=True, text=True, timeout=120)
        leaks += [line for line in res.stdout.splitlines() if line.startswith('removed ')]
    except (OSError, subprocess.SubprocessError):
        pass
    session.config._novadocker_orphans = leaks


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for line in getattr(config, '_novadocker_orphans', ()):
        terminalreporter.write_line('WARNING: leaked by this run: %s' % line,
                                    yellow=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if 'dockerd' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope='session')
def docker_config_dir(tmp_path_factory):
    """An empty DOCKER_CONFIG: the CLI must not read root's ~/.docker
    (credential helpers, contexts, proxies)."""
    path = tmp_path_factory.mktemp('docker-config')
    (path / 'config.json').write_text('{}\n')
    return str(path)


@pytest.fixture(scope='session')
def busybox_archive(tmp_path_factory):
    """Path of a ``docker save`` archive holding busybox:latest."""
    return daemons.build_busybox_archive(
        str(tmp_path_factory.mktemp('images')))


@pytest.fixture(scope='session')
def busybox_rootfs(tmp_path_factory):
    """Path of a plain busybox rootfs tarball (for ``docker import``)."""
    return daemons.build_busybox_archive(
        str(tmp_path_factory.mktemp('rootfs')), 'rootfs.tar', rootfs=True)


def _finish_engine(eng, check=True):
    """Remove containers through the engine, stop it, check the store, then
    kill, unmount and delete whatever is left. Returns the check failure."""
    failure = None
    try:
        eng.remove_all_containers()
        eng.stop()
        if check:
            res = eng.check()
            if res.returncode != 0:
                failure = ('novadocker-engine --root %s check failed (%d):\n'
                           '%s%s' % (eng.root, res.returncode, res.stdout,
                                     res.stderr))
    finally:
        eng.scrub()
    return failure


@pytest.fixture(scope='session')
def engine(busybox_archive, docker_config_dir):
    """The session's engine: .sock .root .url .env .log_path .api() …

    Started from the venv's novadocker-engine with --debug; busybox:latest
    is loaded through POST /images/load. Teardown force-removes containers,
    stops the engine (SIGTERM, then SIGKILL) and asserts that
    ``novadocker-engine --root ROOT check`` finds the store consistent.
    """
    base = daemons.short_tmpdir('nd-engine-')
    eng = daemons.Engine(base, docker_config=docker_config_dir)
    try:
        eng.start()
        eng.load(busybox_archive)
    except BaseException:
        log = eng.log_tail()
        eng.scrub()
        raise RuntimeError('could not start the session engine; log:\n' + log)
    yield eng
    failure = _finish_engine(eng)
    assert failure is None, failure


class EngineFactory:
    """Engines a test owns. ``make()`` returns an unstarted Engine; call
    ``.start()``, ``.stop()``, ``.kill()`` (SIGKILL), ``.restart()`` on it.
    ``start()`` is ``make(...).start()`` with busybox loaded."""

    def __init__(self, busybox_archive, docker_config):
        self.busybox_archive = busybox_archive
        self.docker_config = docker_config
        self.engines = []

    def make(self, config_file=None, config=None, extra_args=(), debug=True):
        base = daemons.short_tmpdir('nd-eng-')
        if config is not None:
            config_file = os.path.join(base, 'engine.conf')
            with open(config_file, 'w') as f:
                f.write(config)
        eng = daemons.Engine(base, config_file=config_file, debug=debug,
                             extra_args=extra_args,
                             docker_config=self.docker_config)
        self.engines.append(eng)
        return eng

    def start(self, load_busybox=True, **kw):
        eng = self.make(**kw).start()
        if load_busybox:
            eng.load(self.busybox_archive)
        return eng

    __call__ = start

    def finish(self, check=True):
        failures = []
        for eng in self.engines:
            failure = _finish_engine(eng, check=check)
            if failure:
                failures.append(failure)
        return failures


@pytest.fixture
def engine_factory(busybox_archive, docker_config_dir, request):
    """``engine_factory(config=None, config_file=None, extra_args=(),
    load_busybox=True)`` starts an engine of the test's own; ``.make()``
    returns one unstarted. All are cleaned up (and checked) at teardown;
    tests that corrupt a store on purpose mark themselves
    ``@pytest.mark.no_engine_check``."""
    factory = EngineFactory(busybox_archive, docker_config_dir)
    yield factory
    check = request.node.get_closest_marker('no_engine_check') is None
    failures = factory.finish(check=check)
    assert not failures, '\n'.join(failures)


def run_docker(args, host, input=None, timeout=120, cli=DOCKER_CLI,
               env=None, docker_config=None, check=False):
    """Run the docker CLI against ``host``; returns CompletedProcess.

    ``args`` is a list or a shell-like string. Output is text unless
    ``input`` is bytes (then stdout/stderr are bytes as well).
    """
    if isinstance(args, str):
        args = shlex.split(args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env['DOCKER_HOST'] = host
    full_env.setdefault('DOCKER_CLI_HINTS', 'false')
    if docker_config:
        full_env['DOCKER_CONFIG'] = docker_config
    text = not isinstance(input, (bytes, bytearray))
    return subprocess.run([cli] + list(args), input=input,
                          capture_output=True, text=text, env=full_env,
                          timeout=timeout, check=check)


@pytest.fixture
def docker_cli(engine, docker_config_dir):
    """``docker_cli(args, input=None, timeout=120, cli=DOCKER_CLI,
    host=None, env=None, check=False)`` -> CompletedProcess.

    Talks to the session engine unless ``host`` (a unix://… URL) is given.
    """
    def run(args, input=None, timeout=120, cli=DOCKER_CLI, host=None,
            env=None, check=False):
        return run_docker(args, host or engine.url, input=input,
                          timeout=timeout, cli=cli, env=env,
                          docker_config=docker_config_dir, check=check)
    return run


@pytest.fixture(scope='session')
def dockerd(busybox_archive):
    """Docker 20.10 (Debian's docker.io) with its own containerd, data root,
    exec root and socket; busybox:latest loaded. Attributes: .sock .url .env
    .data_root .exec_root .log_path .api(). Stopped and scrubbed at the end.
    """
    if not os.path.exists(daemons.DOCKERD):
        pytest.skip('dockerd (Debian docker.io) is not installed')
    base = daemons.short_tmpdir('nd-dockerd-')
    dk = daemons.Dockerd(base)
    try:
        dk.start()
        dk.load(busybox_archive)
    except BaseException:
        log = dk.log_tail()
        dk.scrub()
        raise RuntimeError('could not start dockerd; log:\n' + log)
    yield dk
    dk.scrub()


def engine_info(eng):
    """GET /info of an engine as a dict (handy in assertions)."""
    status, data = eng.api_json('GET', '/info')
    assert status == 200, data
    return data


def pretty(obj):
    return json.dumps(obj, indent=2, sort_keys=True)
