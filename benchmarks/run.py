#!/usr/bin/env python3
"""novadocker-engine next to Docker 20.10, in one run, on one machine.

Starts a private dockerd (Debian's docker.io, overlay2, its own containerd)
and a private novadocker-engine, each with its own socket and data root,
loads the same locally built busybox archive into both and measures:

  a. ``run --rm busybox true`` through the API, as the docker CLI drives it
     (create with AutoRemove, wait condition=removed, start, read the wait);
  b. the same through the docker CLI;
  c. N containers created and started concurrently: containers per second;
  d. per-container memory of the engine side with N sleeping containers
     (PSS of conmon vs containerd-shim-runc-v2), daemon RSS growth, and
     idle daemon RSS (our engine vs dockerd + containerd);
  e. the floor under a and b: runc alone (create, start, wait, delete) of
     ``true`` with the spec
     our engine generates (default seccomp profile, capabilities, masked
     paths, cgroup), no engine and no monitor, so the engine's own share of
     a run is visible;
  f-h. (section ``registry``, benchmarks/registry_bench.py) push and pull
     of a 50 MiB image through one local docker-registry, and the bytes a
     snapshot push uploads (5 MiB change on the 50 MiB base).
  i-k. (section ``network``, benchmarks/net_bench.py) ``run --rm busybox
     true`` on the default bridge, and throughput through a published port
     (127.0.0.1 and the bridge gateway), against a dockerd with networking.
  l-m. (section ``build``, benchmarks/build_bench.py) the classic builder:
     FROM busybox, three RUN and a COPY built cold (nocache) and fully
     cached, through POST /build with the same context tar.
  n-p. (section ``nova``, benchmarks/nova_bench.py, in a child process)
     spawn to RUNNING through the Nova driver, and a snapshot of a 5 MiB
     change on a 50 MiB image next to nova-docker's commit + docker save +
     upload of the whole archive.

``--sections containers`` or ``--sections registry`` runs one part alone.

Results (with date, machine and versions) go to benchmarks/results/ as JSON
and Markdown, and a table is printed. Missing a target is reported, never a
failure; an exception during a measurement makes the exit status non-zero.
"""

import argparse
import atexit
import concurrent.futures
import datetime
import functools
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from tests import daemons  # noqa: E402
from benchmarks import build_bench, net_bench, nova_bench, registry_bench  # noqa: E402

API = '/v1.41'  # what Docker 20.10 speaks; our engine accepts it as well
DOCKER = 'docker'
OURS = 'novadocker'
FLOOR = 'runc'

TARGETS = {
    'run_rm_api': ('ratio_max', 0.25),
    'run_rm_cli': ('ratio_max', 0.25),
    'concurrent_start': ('ratio_min', 3.0),
    'memory_per_container': ('abs_max_mib', 2.0),
}
TARGETS.update(registry_bench.TARGETS)
TARGETS.update(net_bench.TARGETS)
TARGETS.update(build_bench.TARGETS)
TARGETS.update(nova_bench.TARGETS)
SECTIONS = ('containers', 'registry', 'network', 'build', 'nova')


# --------------------------------------------------------------------------
# statistics and machine facts


def percentile(values, pct):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, int(-(-pct * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values):
    if not values:
        return None
    return {'n': len(values),
            'median': statistics.median(values),
            'p90': percentile(values, 90),
            'mean': statistics.fmean(values),
            'min': min(values),
            'max': max(values)}


def _read(path, default=''):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def machine_facts():
    mem_kib = 0
    for line in _read('/proc/meminfo').splitlines():
        if line.startswith('MemTotal:'):
            mem_kib = int(line.split()[1])
    cgroup = ('v2' if not os.path.isdir('/sys/fs/cgroup/memory')
              else 'hybrid' if os.path.isdir('/sys/fs/cgroup/unified')
              else 'v1')
    cpu_model = ''
    for line in _read('/proc/cpuinfo').splitlines():
        if line.startswith('model name'):
            cpu_model = line.split(':', 1)[1].strip()
            break
    return {'nproc': os.cpu_count(),
            'cpu': cpu_model,
            'memory_mib': mem_kib // 1024,
            'kernel': platform.release(),
            'arch': platform.machine(),
            'cgroups': cgroup,
            'os': _first_line(['sh', '-c', '. /etc/os-release; echo $PRETTY_NAME'])}


def git_commit():
    try:
        rev = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain',
                                '--untracked-files=no'], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return rev + ('-dirty' if dirty else '')
    except OSError:
        return None


# --------------------------------------------------------------------------
# process memory


def _status_kib(pid, key):
    for line in _read('/proc/%d/status' % pid).splitlines():
        if line.startswith(key + ':'):
            return int(line.split()[1])
    return 0


def rss_kib(pid):
    return _status_kib(pid, 'VmRSS')


def pss_kib(pid):
    for line in _read('/proc/%d/smaps_rollup' % pid).splitlines():
        if line.startswith('Pss:'):
            return int(line.split()[1])
    return 0


def _comm(pid):
    return _read('/proc/%d/comm' % pid).strip()


def _children_map():
    kids = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            stat = _read('/proc/%s/stat' % entry)
            if stat:
                ppid = int(stat.rsplit(')', 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid, kids=None):
    kids = kids if kids is not None else _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def mib(kib):
    return None if kib is None else kib / 1024.0


# --------------------------------------------------------------------------
# the two daemons behind one interface


class Target:
    def __init__(self, name, daemon):
        self.name = name
        self.d = daemon
        self.sock = daemon.sock
        self.url = daemon.url

    def daemon_pids(self):
        """Processes that make up the daemon itself (not per container)."""
        if self.name == DOCKER:
            return [self.d.proc.pid] + self.d.containerd_pids()
        # Our engine plus any helper it keeps, minus per-container monitors
        # and whatever runs under them (should the engine be their reaper),
        # plus the conmon and runc of the start it keeps prepared while idle
        # (engine/warmstart.py): a cost of the engine, not of a container.
        kids = _children_map()
        pids, todo = [self.d.proc.pid], [self.d.proc.pid]
        while todo:
            for c in kids.get(todo.pop(), []):
                if _comm(c) != 'conmon':
                    pids.append(c)
                    todo.append(c)
        for cid in daemons.prepared_start_ids(self.d.root):
            pids += [p for p in daemons.pids_mentioning(cid) if p not in pids]
        return pids

    def per_container_pids(self):
        """The engine-side process each container costs."""
        if self.name == DOCKER:
            return self.d.shim_pids()
        return daemons.monitors_of(self.d.root)

    def daemon_rss_kib(self):
        return sum(rss_kib(p) for p in self.daemon_pids())

    def daemon_pss_kib(self):
        return sum(pss_kib(p) for p in self.daemon_pids())

    def version(self):
        status, data = self.d.api_json('GET', '/version', timeout=30)
        return data if status == 200 else {'error': status}

    def remove_all(self):
        """Force-remove every container, in parallel (not timed)."""
        status, items = self.d.api_json('GET', API + '/containers/json?all=1',
                                        timeout=120)
        ids = [c['Id'] for c in items or []]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda cid: self.d.api(
                'DELETE', API + '/containers/%s?force=1' % cid,
                timeout=120), ids))
        return len(ids)


# --------------------------------------------------------------------------
# the measurements


def run_rm_api(target, image='busybox:latest', network='none'):
    """docker run --rm IMAGE true, as the CLI sequences it, minus attach.
    ``none`` by default: section a compares the engines without networking
    (the network section measures both default bridges)."""
    t0 = time.perf_counter()
    status, hdrs, body = daemons.api(
        target.sock, 'POST', API + '/containers/create',
        {'Image': image, 'Cmd': ['true'], 'AttachStdout': False,
         'AttachStderr': False, 'HostConfig': {'AutoRemove': True,
                                               'NetworkMode': network}},
        timeout=120)
    if status != 201:
        raise daemons.APIError(status, body, 'POST', 'create')
    cid = json.loads(body)['Id']
    wait = daemons.UnixHTTPConnection(target.sock, timeout=120)
    try:
        wait.request('POST', API + '/containers/%s/wait?condition=removed' % cid)
        resp = wait.getresponse()  # the engine must flush headers at once
        if resp.status != 200:
            raise daemons.APIError(resp.status, resp.read(), 'POST', 'wait')
        status, _, body = daemons.api(target.sock, 'POST',
                                      API + '/containers/%s/start' % cid,
                                      timeout=120)
        if status != 204:
            raise daemons.APIError(status, body, 'POST', 'start')
        result = json.loads(resp.read())
    finally:
        wait.close()
    elapsed = time.perf_counter() - t0
    if result.get('StatusCode') != 0 or result.get('Error'):
        raise RuntimeError('%s: container exited with %r' % (target.name, result))
    return elapsed


def run_rm_cli(target, cli, docker_config, network='none'):
    env = dict(os.environ, DOCKER_CONFIG=docker_config,
               DOCKER_CLI_HINTS='false')
    env.pop('DOCKER_HOST', None)
    t0 = time.perf_counter()
    res = subprocess.run([cli, '-H', target.url, 'run', '--rm',
                          '--network', network, 'busybox', 'true'],
                         capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError('%s: docker run failed (%d): %s' % (
            target.name, res.returncode, res.stderr.strip()))
    return elapsed


class RuncFloor:
    """runc of ``true`` in a bundle made with our engine's spec, no engine."""

    def __init__(self, work, rootfs_tar):
        from engine.runtime import spec as spec_mod
        self.bundle = os.path.join(work, 'floor')
        self.state = os.path.join(work, 'floor-state')
        os.makedirs(self.state)
        rootfs = os.path.join(self.bundle, 'rootfs')
        os.makedirs(rootfs)
        subprocess.run(['tar', '-xf', rootfs_tar, '-C', rootfs], check=True)
        self.cgroup_parent = 'novadocker-bench-%d' % os.getpid()
        spec = spec_mod.generate(
            ['true'], rootfs, network='private', hostname='floor',
            cgroups_path=spec_mod.cgroups_path(self.cgroup_parent, 'floor'))
        with open(os.path.join(self.bundle, 'config.json'), 'w') as f:
            json.dump(spec, f)
        self.count = 0

    def run(self):
        """create, start, wait for the exit, delete: what the engine has runc do."""
        self.count += 1
        cid = 'floor-%d' % self.count
        base = ['runc', '--root', self.state]
        pid_file = os.path.join(self.bundle, cid + '.pid')
        t0 = time.perf_counter()
        self._runc(base + ['create', '--bundle', self.bundle, '--pid-file', pid_file, cid])
        with open(pid_file) as f:
            pidfd = os.pidfd_open(int(f.read()))
        try:
            self._runc(base + ['start', cid])
            select.select([pidfd], [], [], 60)
        finally:
            os.close(pidfd)
        self._runc(base + ['delete', cid])
        elapsed = time.perf_counter() - t0
        os.unlink(pid_file)
        return elapsed

    @staticmethod
    def _runc(cmd):
        # The container inherits runc create's stdio: its stderr goes to a
        # file read after runc exits, not to a pipe that stays open as long
        # as the container.  No timeout: subprocess polls a timed wait with
        # sleeps of up to 50 ms, which would be measured.
        with tempfile.TemporaryFile() as err:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err)
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError('%s failed (%d): %s' % (
                    ' '.join(cmd), proc.returncode,
                    err.read().decode(errors='replace').strip()))

    def cleanup(self):
        from engine.runtime import oci
        subprocess.run(['runc', '--root', self.state, 'delete', '-f',
                        'floor-%d' % self.count], capture_output=True)
        oci.cleanup_cgroup_parent(self.cgroup_parent)


def create_and_start(target, cmd, name=None):
    t0 = time.perf_counter()
    path = API + '/containers/create' + ('?name=' + name if name else '')
    status, _, body = daemons.api(
        target.sock, 'POST', path,
        {'Image': 'busybox:latest', 'Cmd': cmd,
         'HostConfig': {'NetworkMode': 'none'}}, timeout=300)
    if status != 201:
        raise daemons.APIError(status, body, 'POST', 'create')
    cid = json.loads(body)['Id']
    status, _, body = daemons.api(target.sock, 'POST',
                                  API + '/containers/%s/start' % cid,
                                  timeout=300)
    if status != 204:
        raise daemons.APIError(status, body, 'POST', 'start')
    return cid, time.perf_counter() - t0


def concurrent_start(target, count):
    """Create and start ``count`` sleeping containers from ``count`` threads."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        t0 = time.perf_counter()
        futures = [pool.submit(create_and_start, target, ['sleep', '600'])
                   for _ in range(count)]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    return count / wall, wall, [lat for _, lat in results]


def count_running(target):
    status, items = target.d.api_json('GET', API + '/containers/json',
                                      timeout=60)
    return len(items or [])


def memory_with_sleepers(target, count, settle=3.0):
    """Start ``count`` sleepers; measure per-container and daemon memory."""
    target.remove_all()
    time.sleep(settle)
    before_rss = target.daemon_rss_kib()
    before_pss = target.daemon_pss_kib()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: create_and_start(target, ['sleep', '600']),
                      range(count)))
    time.sleep(settle)
    running = count_running(target)
    per = target.per_container_pids()
    per_pss = [pss_kib(p) for p in per]
    per_rss = [rss_kib(p) for p in per]
    after_rss = target.daemon_rss_kib()
    after_pss = target.daemon_pss_kib()
    target.remove_all()
    return {
        'containers_running': running,
        'monitor_processes': len(per),
        'monitor_pss_total_kib': sum(per_pss),
        'per_container_pss_kib': sum(per_pss) / count,
        'per_container_rss_kib': sum(per_rss) / count,
        'daemon_rss_before_kib': before_rss,
        'daemon_rss_after_kib': after_rss,
        'daemon_rss_growth_kib': after_rss - before_rss,
        'daemon_pss_growth_kib': after_pss - before_pss,
        'daemon_rss_growth_per_container_kib': (after_rss - before_rss) / count,
        # what the target bounds: monitors plus the daemon's growth
        'engine_side_per_container_kib':
            (sum(per_pss) + max(0, after_pss - before_pss)) / count,
    }


# --------------------------------------------------------------------------
# orchestration


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = daemons.short_tmpdir('nd-bench-')
        self.docker_config = os.path.join(self.work, 'docker-config')
        os.makedirs(self.docker_config)
        with open(os.path.join(self.docker_config, 'config.json'), 'w') as f:
            f.write('{}\n')
        self.targets = {}
        self.daemons = []
        self.errors = []
        self.results = {'idle': {}, 'benchmarks': {}, 'errors': self.errors}
        self._cleaned = False

    def log(self, msg):
        print(msg, flush=True)

    def error(self, where, exc):
        text = '%s: %s: %s' % (where, type(exc).__name__, exc)
        self.errors.append(text)
        self.log('!! ' + text)

    # ---- setup and teardown

    def start(self):
        archive = daemons.build_busybox_archive(self.work)
        wanted = [DOCKER, OURS] if self.args.only == 'both' else [self.args.only]
        for name in wanted:
            base = os.path.join(self.work, 'dk' if name == DOCKER else 'nd')
            daemon = (daemons.Dockerd(base) if name == DOCKER
                      else daemons.Engine(base, debug=False))
            self.daemons.append(daemon)
            try:
                t0 = time.perf_counter()
                daemon.start()
                started = time.perf_counter() - t0
                daemon.load(archive)
                self.targets[name] = Target(name, daemon)
                self.log('%s: up in %.2f s, busybox loaded (%s)' % (
                    name, started, daemon.sock))
            except Exception as exc:
                what = ('novadocker-engine could not be started or seeded, '
                        'so our side is not measured' if name == OURS
                        else 'dockerd could not be started or seeded')
                self.error('%s start' % name, exc)
                self.log('!! %s; log %s:\n%s' % (what, daemon.log_path,
                                                 daemon.log_tail(20)))

    def cleanup(self):
        if self._cleaned:
            return
        self._cleaned = True
        for daemon in self.daemons:
            try:
                if daemon.running():
                    daemon.remove_all_containers()
            except Exception:
                pass
            try:
                daemon.scrub(remove=False)
            except Exception as exc:
                print('cleanup of %s: %s' % (daemon.base, exc), file=sys.stderr)
        daemons.scrub(self.work)

    # ---- measurements

    def each(self, key, fn):
        """Run fn(target) for each daemon, recording results or errors."""
        out = {}
        for name, target in self.targets.items():
            try:
                out[name] = fn(target)
            except Exception as exc:
                self.error('%s %s' % (key, name), exc)
                try:
                    target.remove_all()
                except Exception:
                    pass
        return out

    def interleaved(self, key, fn, runs, warmup, targets=None):
        """Alternate the daemons run by run so drift hits both alike.

        Each run is followed by a pause (--settle) so the asynchronous tail
        of one daemon's run (a shim exiting, garbage collection) does not
        land inside the next measurement, which is the other daemon's.
        """
        targets = targets or self.targets
        samples = {name: [] for name in targets}
        failed = set()
        for i in range(warmup + runs):
            for name, target in targets.items():
                if name in failed:
                    continue
                try:
                    elapsed = fn(target)
                except Exception as exc:
                    failed.add(name)
                    self.error('%s %s (run %d)' % (key, name, i), exc)
                    try:
                        target.remove_all()
                    except Exception:
                        pass
                    continue
                if i >= warmup:
                    samples[name].append(elapsed)
                time.sleep(self.args.settle)
        return {name: summary(v) for name, v in samples.items()
                if v and name not in failed}

    def run(self):
        a = self.args
        self.results['started'] = datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec='seconds')
        self.results['machine'] = machine_facts()
        self.results['versions'] = self.versions()
        self.results['settings'] = {'runs': a.runs, 'warmup': a.warmup,
                                    'concurrency': a.concurrency,
                                    'rounds': a.rounds, 'sleepers': a.sleepers,
                                    'cli': a.cli, 'only': a.only,
                                    'settle': a.settle,
                                    'sections': a.sections,
                                    'registry_runs': a.registry_runs,
                                    'build_runs': a.build_runs,
                                    'net_throughput_runs': a.net_throughput_runs,
                                    'nova_runs': a.nova_runs,
                                    'nova_snapshot_runs': a.nova_snapshot_runs,
                                    'nova_mode': a.nova_mode}
        time.sleep(2)
        self.results['idle'] = self.each('idle', lambda t: {
            'daemon_rss_kib': t.daemon_rss_kib(),
            'daemon_pss_kib': t.daemon_pss_kib(),
            'processes': {str(p): _comm(p) for p in t.daemon_pids()}})
        if 'containers' in a.sections:
            self.run_containers()
        if 'registry' in a.sections:
            try:
                registry_bench.RegistryBench(self, a.registry_runs,
                                             summary).run()
            except Exception as exc:
                self.error('registry section', exc)
        if 'network' in a.sections:
            try:
                net_bench.NetBench(self, a.runs, a.net_throughput_runs, summary,
                                   functools.partial(run_rm_api, network='bridge'),
                                   functools.partial(run_rm_cli, cli=a.cli,
                                                     docker_config=self.docker_config,
                                                     network='bridge')).run()
            except Exception as exc:
                self.error('network section', exc)
        if 'build' in a.sections:
            try:
                build_bench.BuildBench(self, a.build_runs, a.warmup).run()
            except Exception as exc:
                self.error('build section', exc)
        if 'nova' in a.sections:
            try:
                nova_bench.run_section(self, a.nova_runs, a.warmup, a.nova_snapshot_runs,
                                       a.nova_mode)
            except Exception as exc:
                self.error('nova section', exc)
        self.results['finished'] = datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec='seconds')

    def run_containers(self):
        a = self.args
        b = self.results['benchmarks']

        # Memory first: the daemons' growth is measured from idle, before
        # other workloads have grown their heaps.
        self.log('d. memory with %d sleeping containers' % a.sleepers)
        b['memory_per_container'] = {'unit': 'KiB', 'results': self.each(
            'memory', lambda t: memory_with_sleepers(t, a.sleepers))}

        self.log('a. run --rm busybox true via the API, %d runs each, and '
                 'e. runc alone with the same spec, interleaved' % a.runs)
        targets = dict(self.targets)
        floor = None
        try:
            floor = RuncFloor(self.work, daemons.build_busybox_archive(
                self.work, 'rootfs.tar', rootfs=True))
            targets[FLOOR] = floor
        except Exception as exc:
            self.error('runc floor setup', exc)
        try:
            api = self.interleaved(
                'run_rm_api',
                lambda t: t.run() if t is floor else run_rm_api(t),
                a.runs, a.warmup, targets=targets)
        finally:
            if floor is not None:
                floor.cleanup()
        b['runc_floor'] = {'unit': 's', 'results': {
            name: v for name, v in api.items() if name == FLOOR}}
        b['run_rm_api'] = {'unit': 's', 'results': {
            name: v for name, v in api.items() if name != FLOOR}}
        self.log('b. docker run --rm busybox true via %s, %d runs each'
                 % (a.cli, a.runs))
        b['run_rm_cli'] = {'unit': 's', 'results': self.interleaved(
            'run_rm_cli', lambda t: run_rm_cli(t, a.cli, self.docker_config),
            a.runs, a.warmup)}

        self.log('c. %d containers created and started concurrently, %d rounds'
                 % (a.concurrency, a.rounds))

        def rounds(target):
            rates, walls, lats = [], [], []
            for _ in range(a.rounds):
                rate, wall, lat = concurrent_start(target, a.concurrency)
                running = count_running(target)
                target.remove_all()
                if running != a.concurrency:
                    raise RuntimeError('%d of %d containers running' % (
                        running, a.concurrency))
                rates.append(rate)
                walls.append(wall)
                lats.extend(lat)
            return {'containers_per_s': summary(rates),
                    'wall_s': summary(walls),
                    'create_start_latency_s': summary(lats)}
        b['concurrent_start'] = {'unit': 'containers/s',
                                 'results': self.each('concurrent_start', rounds)}

    def versions(self):
        v = {'runc': _first_line(['runc', '--version']),
             'conmon': _first_line(['conmon', '--version']),
             'docker_cli': _first_line([self.args.cli, '--version']),
             'novadocker_commit': git_commit(),
             'python': platform.python_version()}
        for name, target in self.targets.items():
            try:
                data = target.version()
            except Exception as exc:
                data = {'error': str(exc)}
            v[name] = {'Version': data.get('Version'),
                       'ApiVersion': data.get('ApiVersion'),
                       'Components': {c.get('Name'): c.get('Version')
                                      for c in data.get('Components') or []}}
        return v


# --------------------------------------------------------------------------
# reporting


def _ratio(ours, docker):
    if ours is None or docker in (None, 0):
        return None
    return ours / docker


def rows(results):
    """(metric, docker, ours, ratio, target, verdict) tuples for the table."""
    b = results['benchmarks']
    out = []

    def get(path, name):
        node = b
        for part in path[:1]:
            node = node.get(part) or {}
        node = (node.get('results') or {}).get(name)
        for part in path[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def verdict(key, ours, ratio):
        kind, limit = TARGETS[key]
        if kind == 'ratio_max' and ratio is not None:
            return ('<= %.2fx' % limit, 'met' if ratio <= limit else 'missed')
        if kind == 'ratio_min' and ratio is not None:
            return ('>= %.1fx' % limit, 'met' if ratio >= limit else 'missed')
        if kind == 'abs_max_mib' and ours is not None:
            return ('<= %.1f MiB' % limit,
                    'met' if ours / 1024 <= limit else 'missed')
        if kind == 'bytes_ratio_max' and ours is not None:
            return ('<= %.2f' % limit, 'met' if ours <= limit else 'missed')
        kinds = {'ratio_max': '<= %.2fx', 'ratio_min': '>= %.1fx',
                 'abs_max_mib': '<= %.1f MiB', 'bytes_ratio_max': '<= %.2f'}
        return (kinds[kind] % limit, 'n/a')

    sections = (results.get('settings') or {}).get('sections', SECTIONS)
    reg_rows = (registry_bench.rows(results, get, _ratio, verdict)
                if 'registry' in sections else [])
    if 'network' in sections:
        reg_rows += net_bench.rows(results, get, _ratio, verdict)
    if 'build' in sections:
        reg_rows += build_bench.rows(results, get, _ratio, verdict)
    if 'nova' in sections:
        reg_rows += nova_bench.rows(results, get, _ratio, verdict)
    if 'containers' not in sections:
        return reg_rows
    for key, label in (('run_rm_api', 'run --rm true, API'),
                       ('run_rm_cli', 'run --rm true, docker CLI')):
        for stat in ('median', 'p90'):
            d, o = get([key, stat], DOCKER), get([key, stat], OURS)
            r = _ratio(o, d)
            tgt, ver = verdict(key, o, r) if stat == 'median' else ('', '')
            out.append(('%s (%s, s)' % (label, stat), d, o, r, tgt, ver))
    floor = get(['runc_floor', 'median'], FLOOR)
    if floor is not None:
        d = get(['run_rm_api', 'median'], DOCKER)
        out.append(('runc alone, same spec (median, s; floor under a/b)',
                    None, floor, _ratio(floor, d), '', ''))
        o = get(['run_rm_api', 'median'], OURS)
        if o is not None:
            out.append(('run --rm true, API, above the runc floor (median, s)',
                        None if d is None else d - floor, o - floor,
                        _ratio(o - floor, None if d is None else d - floor), '', ''))
    for stat in ('median', 'p90'):
        d = get(['concurrent_start', 'containers_per_s', stat], DOCKER)
        o = get(['concurrent_start', 'containers_per_s', stat], OURS)
        r = _ratio(o, d)
        tgt, ver = verdict('concurrent_start', o, r) if stat == 'median' else ('', '')
        out.append(('concurrent create+start (%s, containers/s)' % stat,
                    d, o, r, tgt, ver))
    for field, label in (
            ('engine_side_per_container_kib', 'engine side per container (PSS, MiB)'),
            ('per_container_pss_kib', 'monitor PSS per container (MiB)'),
            ('per_container_rss_kib', 'monitor RSS per container (MiB)'),
            ('daemon_rss_growth_per_container_kib', 'daemon RSS growth per container (MiB)')):
        d = mib(get(['memory_per_container', field], DOCKER))
        o = mib(get(['memory_per_container', field], OURS))
        r = _ratio(o, d)
        tgt, ver = ('', '')
        if field == 'engine_side_per_container_kib':
            tgt, ver = verdict('memory_per_container',
                               None if o is None else o * 1024, r)
        out.append((label, d, o, r, tgt, ver))
    idle = results.get('idle') or {}
    d = mib((idle.get(DOCKER) or {}).get('daemon_rss_kib'))
    o = mib((idle.get(OURS) or {}).get('daemon_rss_kib'))
    out.append(('idle daemon RSS (MiB; dockerd+containerd vs engine)', d, o,
                _ratio(o, d), '', ''))
    return out + reg_rows


def _fmt(v, ratio=False):
    if v is None:
        return '-'
    if ratio:
        return '%.2fx' % v
    if abs(v) >= 100:
        return '%.0f' % v
    if abs(v) >= 1:
        return '%.2f' % v
    return '%.4f' % v


def table(results):
    header = ('metric', 'docker 20.10', 'novadocker', 'ours/docker',
              'target', 'verdict')
    lines = [header] + [(m, _fmt(d), _fmt(o), _fmt(r, True), t, v)
                        for m, d, o, r, t, v in rows(results)]
    widths = [max(len(str(row[i])) for row in lines) for i in range(6)]
    text = []
    for i, row in enumerate(lines):
        text.append('| ' + ' | '.join(str(c).ljust(w) for c, w in
                                      zip(row, widths)) + ' |')
        if i == 0:
            text.append('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(text)


def markdown(results):
    m, v, s = results['machine'], results['versions'], results['settings']
    dk = v.get(DOCKER) or {}
    lines = [
        '# Benchmark %s' % results['started'],
        '',
        'Machine: %s CPUs (%s), %s MiB, kernel %s, %s, cgroups %s.' % (
            m['nproc'], m['cpu'], m['memory_mib'], m['kernel'], m['os'],
            m['cgroups']),
        '',
        'Versions: Docker %s (containerd %s, runc %s), runc %s, conmon %s, '
        'docker CLI %s, novadocker %s.' % (
            dk.get('Version'), (dk.get('Components') or {}).get('containerd'),
            (dk.get('Components') or {}).get('runc'), v.get('runc'),
            v.get('conmon'), v.get('docker_cli'), v.get('novadocker_commit')),
        '',
        'Settings: %(runs)d runs after %(warmup)d warm-up runs for a/b, '
        '%(settle).2f s pause after each; '
        '%(concurrency)d concurrent containers x %(rounds)d rounds for c; '
        '%(sleepers)d sleepers for d; only=%(only)s; '
        'sections=%(sections)s; %(registry_runs)d runs for f/g.'
        % dict({'sections': list(SECTIONS), 'registry_runs': 0}, **s),
        '',
    ]
    if 'nova' in s.get('sections', ()):
        lines += ['Nova section: %s spawns after %s warm-up, %s snapshots each way '
                  '(alternating), nova-compute concurrency mode %s.' % (
                      s.get('nova_runs'), s.get('warmup'), s.get('nova_snapshot_runs'),
                      s.get('nova_mode')), '']
    lines += [
        table(results),
        '',
    ]
    if results['errors']:
        lines += ['Errors:', ''] + ['* ' + e for e in results['errors']] + ['']
    return '\n'.join(lines)


def save(results, outdir):
    os.makedirs(outdir, exist_ok=True)
    stamp = datetime.datetime.now().strftime('%Y-%m-%d_%H%M%S')
    suffix = '' if results['settings']['only'] == 'both' \
        else '-%s-only' % results['settings']['only']
    sections = results['settings'].get('sections', SECTIONS)
    if list(sections) != list(SECTIONS):
        suffix += '-' + '-'.join(sections)
    base = os.path.join(outdir, stamp + suffix)
    with open(base + '.json', 'w') as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write('\n')
    with open(base + '.md', 'w') as f:
        f.write(markdown(results))
    return base


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', choices=('both', DOCKER, OURS), default='both',
                   help='measure one side only (for testing the harness)')
    p.add_argument('--runs', type=int, default=30,
                   help='measured runs for a and b (default 30)')
    p.add_argument('--warmup', type=int, default=3,
                   help='unmeasured runs before a and b')
    p.add_argument('--concurrency', type=int, default=50)
    p.add_argument('--rounds', type=int, default=5,
                   help='rounds of the concurrent benchmark')
    p.add_argument('--sleepers', type=int, default=50)
    p.add_argument('--settle', type=float, default=1.0,
                   help='seconds of pause after each timed run (default 1.0)')
    p.add_argument('--cli', default=daemons.DOCKER_CLI,
                   help='docker CLI for benchmark b')
    p.add_argument('--sections', default=','.join(SECTIONS),
                   type=lambda v: [x for x in v.split(',') if x],
                   help='comma-separated parts to run: containers (a-e), '
                        'registry (f-h), network (i-k), build (l-m), '
                        'nova (n-p); '
                        'default all')
    p.add_argument('--registry-runs', type=int, default=3,
                   help='push/pull runs per daemon in the registry section')
    p.add_argument('--build-runs', type=int, default=10,
                   help='builds per daemon, cold and cached (l, m)')
    p.add_argument('--net-throughput-runs', type=int, default=5,
                   help='published-port throughput runs per daemon (j, k)')
    p.add_argument('--nova-runs', type=int, default=30,
                   help='spawns through the Nova driver (n)')
    p.add_argument('--nova-snapshot-runs', type=int, default=5,
                   help='snapshots each way, ours and nova-docker\'s (o, p)')
    p.add_argument('--nova-mode', choices=('threading', 'eventlet'), default='threading',
                   help="nova-compute's concurrency mode in the nova section")
    p.add_argument('--output-dir', default=os.path.join(HERE, 'results'))
    p.add_argument('--no-save', action='store_true',
                   help='print the table only')
    args = p.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown or not args.sections:
        p.error('--sections: choose from %s' % ', '.join(SECTIONS))
    if os.geteuid() != 0:
        p.error('must run as root (it starts dockerd and runc containers)')

    bench = Bench(args)
    atexit.register(bench.cleanup)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        bench.start()
        if not bench.targets:
            print('nothing to measure', file=sys.stderr)
            return 2
        bench.run()
    finally:
        bench.cleanup()

    results = bench.results
    print()
    print(table(results))
    if not args.no_save:
        base = save(results, args.output_dir)
        print('\nwritten %s.json and %s.md' % (base, base))
    if results['errors']:
        print('\n%d error(s): see above' % len(results['errors']),
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
