"""The build section of benchmarks/run.py: the classic builder (``POST
/build``, what the docker CLI uses with DOCKER_BUILDKIT=0) of our engine
next to Docker 20.10's.

The issue's multi-step Dockerfile (FROM busybox, three RUN, a COPY) is sent
as the same context tar to both daemons through the API, as the CLI sends
it, and the streamed output is read to its end:

l. cold: ``nocache=1`` (every RUN runs in a container, the COPY copies),
   the built image removed after each run (not timed); target at most 0.5x
   Docker's time;
m. fully cached: the same build again once a first one filled the cache;
   every step must say ``Using cache``; target no slower than Docker.

Runs are interleaved daemon by daemon, medians and p90 reported.  RUN steps
use each daemon's default network, so Docker's side is a dockerd with its
networking on (tests/netdocker.py), like the network section.
"""

import io
import json
import tarfile
import time
import urllib.parse

from tests import daemons, netdocker

API = '/v1.41'
DOCKER = 'docker'
OURS = 'novadocker'
TAG = 'nd-bench/build:latest'

DOCKERFILE = b"""FROM busybox
RUN echo one > /one
RUN mkdir -p /app && echo two > /app/two
RUN i=0; while [ $i -lt 100 ]; do i=$((i+1)); done; echo $i > /app/count
COPY app.txt /app/
"""
STEPS = 5
CACHED_STEPS = 4    # every step after FROM
RUN_STEPS = 3

TARGETS = {
    'build_cold': ('ratio_max', 0.5),
    'build_cached': ('ratio_max', 1.0),
}


def context_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        for name, data in (('Dockerfile', DOCKERFILE),
                           ('app.txt', b'hello from the build bench\n' * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Side:
    """What run.py's interleaved() needs of a target: a name and a socket."""

    def __init__(self, name, daemon):
        self.name = name
        self.d = daemon
        self.sock = daemon.sock

    def remove_all(self):
        self.d.remove_all_containers()


def build(target, body, nocache):
    """One POST /build; returns (seconds, output lines).  A build error
    (an errorDetail in the stream) raises."""
    query = urllib.parse.urlencode({'t': TAG, 'rm': '1', 'forcerm': '1',
                                    'nocache': '1' if nocache else '0'})
    t0 = time.perf_counter()
    status, _, data = daemons.api(
        target.sock, 'POST', API + '/build?' + query, body=body,
        headers={'Content-Type': 'application/x-tar'}, timeout=300)
    elapsed = time.perf_counter() - t0
    if status != 200:
        raise daemons.APIError(status, data, 'POST', '/build')
    lines = []
    for raw in data.decode('utf-8', 'replace').splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if 'errorDetail' in msg or 'error' in msg:
            raise RuntimeError('%s: build failed: %s' % (
                target.name, msg.get('error') or msg.get('errorDetail')))
        if 'stream' in msg:
            lines.append(msg['stream'])
    text = ''.join(lines)
    if 'Step %d/%d' % (STEPS, STEPS) not in text:
        raise RuntimeError('%s: the build did not run all %d steps:\n%s'
                           % (target.name, STEPS, text[-2000:]))
    return elapsed, text


def remove_image(target):
    daemons.api(target.sock, 'DELETE',
                API + '/images/%s?force=1' % urllib.parse.quote(TAG, safe=''),
                timeout=120)


def cold(target, body):
    try:
        elapsed, text = build(target, body, nocache=True)
    finally:
        remove_image(target)
    runs = text.count('Running in')
    if runs != RUN_STEPS or 'Using cache' in text:
        raise RuntimeError('%s: a cold build ran %d of %d RUN steps in '
                           'containers:\n%s' % (target.name, runs, RUN_STEPS,
                                                 text[-2000:]))
    return elapsed


def cached(target, body):
    elapsed, text = build(target, body, nocache=False)
    hits = text.count('Using cache')
    if hits != CACHED_STEPS:
        raise RuntimeError('%s: %d of %d steps came from the cache:\n%s'
                           % (target.name, hits, CACHED_STEPS, text[-2000:]))
    return elapsed


class BuildBench:
    def __init__(self, bench, runs, warmup):
        self.bench = bench
        self.runs = runs
        self.warmup = warmup
        self.dockerd = None

    def run(self):
        b = self.bench.results['benchmarks']
        sides = {}
        ours = self.bench.targets.get(OURS)
        body = context_tar()
        try:
            if self.bench.args.only in ('both', DOCKER):
                self.bench.log('build: starting a dockerd with its networking '
                               'on')
                self.dockerd = netdocker.start_net_dockerd(
                    daemons.build_busybox_archive(self.bench.work,
                                                  'build-bb.tar'))
                sides[DOCKER] = _Side(DOCKER, self.dockerd)
            if ours is not None:
                sides[OURS] = _Side(OURS, ours.d)
            self.bench.log('l. classic build (FROM, 3 RUN, COPY) with '
                           'nocache, %d runs each, interleaved' % self.runs)
            b['build_cold'] = {'unit': 's', 'results': self.bench.interleaved(
                'build_cold', lambda t: cold(t, body), self.runs, self.warmup,
                targets=sides)}
            self.bench.log('m. the same build fully cached, %d runs each'
                           % self.runs)
            for name, side in list(sides.items()):
                try:
                    build(side, body, nocache=False)    # fills the cache
                except Exception as exc:
                    self.bench.error('build cache fill %s' % name, exc)
                    sides.pop(name)
            b['build_cached'] = {'unit': 's',
                                 'results': self.bench.interleaved(
                                     'build_cached', lambda t: cached(t, body),
                                     self.runs, self.warmup, targets=sides)}
        finally:
            for side in sides.values():
                try:
                    remove_image(side)
                except Exception:
                    pass
            if self.dockerd is not None:
                self.dockerd.scrub()


def rows(results, get, ratio, verdict):
    out = []
    for key, label in (('build_cold', 'build FROM+3 RUN+COPY, nocache'),
                       ('build_cached', 'build FROM+3 RUN+COPY, all cached')):
        for stat in ('median', 'p90'):
            d, o = get([key, stat], DOCKER), get([key, stat], OURS)
            r = ratio(o, d)
            tgt, ver = verdict(key, o, r) if stat == 'median' else ('', '')
            out.append(('%s (%s, s)' % (label, stat), d, o, r, tgt, ver))
    return out
