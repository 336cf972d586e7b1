"""Leak checker for networking tests.

``LeakChecker(daemons).snapshot()`` records, before some tests run:

* host network interfaces (``ip -j -d link``): veths and bridges;
* ``/run/netns`` entries;
* ``iptables-save`` of filter and nat, without counters, only the lines
  that name NOVADOCKER or CNI chains or a bridge of ours;
* for each novadocker engine watched: files in ``<exec_root>/netns``,
  host-local IPAM lease files under its root, mounts under its root, its
  networks and containers (through its API).

``checker.leaks(before)`` compares with now and returns one line per thing
that leaked, saying exactly what it is.  The host is shared (other engines
and other Dockers run tests at the same time), so a new interface, netns or
rule counts as leaked only when nothing alive owns it: a census of every
running novadocker-engine (its records on disk) and dockerd (its API) on
the host tells which bridges, networks and containers exist.  Host-level
findings must also still be there a second later (another engine may be
halfway through tearing its own down).

The module-scoped fixture ``net_leaks`` runs this around a whole test module
and fails the module's last test at teardown with the list.  It is autouse
for networking modules: those whose name starts with ``test_net``
(test_net_scenarios, test_networks_core, …) or that set ``NET_LEAK_CHECK =
True``; ``NET_LEAK_CHECK = False`` opts out.  The
daemons it watches come from the ``net_leak_targets`` fixture (the session
engine by default; a module may override it).
"""

import glob
import ipaddress
import json
import os
import re
import subprocess
import time

import pytest

from tests import daemons

# Bridges that engines make: the default one, per-engine defaults, Docker-
# style per-network ones; ndp*: the proof tests' own (Docker peer, external).
OUR_BRIDGE = re.compile(r'^(novadocker\d*|nd[0-9a-f]{8}|br-[0-9a-f]{12}|ndp.*)$')
RULE_WORDS = re.compile(r'NOVADOCKER|CNI-')
HEX_ID = re.compile(r'\b[0-9a-f]{12,64}\b')
NETNS_PREFIXES = ('cni-', 'nd', 'novadocker')
# Chains/rules every portmap or engine install shares and never removes: not
# a per-container or per-network leak.
SHARED_CHAINS = {'CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK',
                 'CNI-HOSTPORT-SNAT', 'CNI-FORWARD', 'CNI-ADMIN',
                 'NOVADOCKER-FORWARD', 'NOVADOCKER-POSTROUTING'}
# Directories under an engine root that hold images and layers, never leases.
PRUNE_DIRS = {'content', 'snapshots', 'snapshotters', 'overlay', 'overlayfs',
              'blobs', 'layers', 'images', 'rootfs', 'volumes', 'tmp',
              'ingest', 'logs'}


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ''


def links():
    """{name: {'kind': 'veth'|'bridge'|…, 'master': name or None}}"""
    try:
        data = json.loads(_run(['ip', '-j', '-d', 'link', 'show']) or '[]')
    except ValueError:
        data = []
    out = {}
    for link in data:
        info = link.get('linkinfo') or {}
        out[link['ifname']] = {'kind': info.get('info_kind', ''),
                               'master': link.get('master')}
    return out


def run_netns():
    try:
        return set(os.listdir('/run/netns'))
    except OSError:
        return set()


def rules(bridges):
    """{(table, normalised line)} naming our chains or one of ``bridges``."""
    found = set()
    for table in ('filter', 'nat'):
        for line in _run(['iptables-save', '-t', table]).splitlines():
            if line.startswith(':'):
                # chain declaration: drop the counters
                line = ' '.join(line.split()[:2])
            elif not line.startswith('-A '):
                continue
            tokens = line.split()
            if RULE_WORDS.search(line) or any(b in tokens for b in bridges):
                found.add((table, line))
    return found


def _proc_argvs():
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                argv = [a.decode(errors='replace')
                        for a in f.read().split(b'\0') if a]
        except OSError:
            continue
        if argv:
            yield int(entry), argv


def _arg(argv, name):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + '='):
            return a.split('=', 1)[1]
    return None


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def engine_bridges(root):
    """Bridge names the network records under an engine root name."""
    names = set()
    for path in glob.glob(os.path.join(root, 'networks', '*.json')):
        rec = _read_json(path)
        if not isinstance(rec, dict):
            continue
        for key in ('_bridge', '_Bridge'):
            if isinstance(rec.get(key), str):
                names.add(rec[key])
        opts = rec.get('Options') or {}
        if isinstance(opts, dict):
            for key in ('com.docker.network.bridge.name', 'bridge'):
                if isinstance(opts.get(key), str):
                    names.add(opts[key])
        if isinstance(rec.get('Id'), str):
            names.add('br-' + rec['Id'][:12])
    return names


def census():
    """What every running engine and dockerd on the host owns right now:
    {'bridges': set, 'ids': set of 12-char id prefixes}."""
    bridges, ids = set(), set()
    for pid, argv in _proc_argvs():
        prog = ' '.join(argv[:2])
        if 'novadocker-engine' in prog:
            root = _arg(argv, '--root')
            if not root:
                continue
            bridges |= engine_bridges(root)
            for path in glob.glob(os.path.join(root, 'networks', '*.json')):
                ids.add(os.path.basename(path)[:12])
            for cid in _listdir(os.path.join(root, 'containers')):
                ids.add(cid[:12])
        elif os.path.basename(argv[0]) == 'dockerd':
            if _arg(argv, '--bridge'):
                bridges.add(_arg(argv, '--bridge'))
            host = _arg(argv, '--host') or _arg(argv, '-H') or ''
            if not host.startswith('unix://'):
                continue
            sock = host[len('unix://'):]
            try:
                _, nets = daemons.api_json(sock, 'GET', '/networks', timeout=5)
                _, ctrs = daemons.api_json(sock, 'GET',
                                           '/containers/json?all=1', timeout=5)
            except Exception:
                continue
            for net in nets or []:
                ids.add(net['Id'][:12])
                opts = net.get('Options') or {}
                bridges.add(opts.get('com.docker.network.bridge.name')
                            or 'br-' + net['Id'][:12])
            for c in ctrs or []:
                ids.add(c['Id'][:12])
    return {'bridges': bridges, 'ids': ids}


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _is_ipv4(name):
    try:
        ipaddress.IPv4Address(name)
        return True
    except ValueError:
        return False


def lease_files(root, max_depth=5):
    """host-local IPAM leases (a file named by an IPv4 address holding
    ``<container id>\\r\\n<ifname>``) anywhere under ``root`` but the image
    and layer stores."""
    found = {}
    base_depth = root.rstrip('/').count('/')
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath.count('/') - base_depth >= max_depth:
            dirnames[:] = []
        dirnames[:] = [d for d in dirnames if d not in PRUNE_DIRS
                       and not os.path.ismount(os.path.join(dirpath, d))]
        for name in filenames:
            if _is_ipv4(name):
                path = os.path.join(dirpath, name)
                try:
                    with open(path, errors='replace') as f:
                        found[path] = f.read().split()[0:1]
                except OSError:
                    continue
    return {p: (v[0] if v else '') for p, v in found.items()}


class Watched:
    """One novadocker engine (or a Docker, for which only the API-level
    checks apply) whose root-level state is compared."""

    def __init__(self, daemon):
        self.d = daemon
        self.is_engine = isinstance(daemon, daemons.Engine)
        self.root = getattr(daemon, 'root', None)
        self.exec_root = (os.path.join(self.root, 'run')
                          if self.is_engine else None)

    def netns_files(self):
        if not self.exec_root:
            return set()
        return set(_listdir(os.path.join(self.exec_root, 'netns')))

    def api_list(self, what):
        if not self.d.running():
            return None
        try:
            status, items = self.d.api_json(
                'GET', '/%s/json?all=1' % what if what == 'containers'
                else '/networks', timeout=30)
        except Exception:
            return None
        return items if status == 200 else None

    def snapshot(self):
        ctrs = self.api_list('containers')
        nets = self.api_list('networks')
        return {
            'netns': self.netns_files(),
            'leases': lease_files(self.root) if self.is_engine else {},
            'mounts': set(daemons.mounts_under(self.root)) if self.is_engine
            else set(),
            'containers': None if ctrs is None else {
                c['Id']: ((c.get('Names') or ['?'])[0], c.get('State'))
                for c in ctrs},
            'networks': None if nets is None else {
                n['Id']: n['Name'] for n in nets},
            'bridges': engine_bridges(self.root) if self.is_engine else (
                {getattr(self.d, 'bridge', None)} - {None}) | {
                'br-' + nid[:12] for nid in (
                    {} if nets is None else {n['Id'] for n in nets})},
        }


class LeakChecker:
    def __init__(self, targets=(), settle=1.0):
        self.watched = [Watched(t) for t in targets]
        self.settle = settle

    def snapshot(self):
        watched = [w.snapshot() for w in self.watched]
        bridges = set()
        for snap in watched:
            bridges |= snap['bridges']
        return {'links': links(), 'run_netns': run_netns(),
                'rules': rules(bridges | {n for n in links()
                                          if OUR_BRIDGE.match(n)}),
                'watched': watched}

    # ------------------------------------------------------------------

    def _host_candidates(self, before, now, alive):
        """Host-level things new since ``before`` that no one alive owns."""
        found = []
        our_bridges = set()
        for snap in now['watched']:
            our_bridges |= snap['bridges']
        new_links = {n: v for n, v in now['links'].items()
                     if n not in before['links']}
        for name, info in sorted(new_links.items()):
            if info['kind'] == 'bridge' and OUR_BRIDGE.match(name) and \
                    name not in alive['bridges']:
                found.append('bridge %s (no engine or network owns it)' % name)
            elif info['kind'] == 'veth':
                master = info['master']
                if master is None:
                    found.append('veth %s (attached to no bridge)' % name)
                elif master in our_bridges or (
                        OUR_BRIDGE.match(master) and
                        master not in alive['bridges']):
                    found.append('veth %s still on bridge %s' % (name, master))
        for name in sorted(now['run_netns'] - before['run_netns']):
            if name.startswith(NETNS_PREFIXES):
                found.append('network namespace /run/netns/%s' % name)
        for table, line in sorted(now['rules'] - before['rules']):
            if self._rule_owned(line, now['rules'], alive, our_bridges):
                continue
            found.append('iptables -t %s: %s' % (table, line))
        return found

    def _rule_owned(self, line, all_rules, alive, our_bridges, depth=0):
        tokens = line.split()
        chain = tokens[1] if line.startswith('-A ') else tokens[0][1:]
        if chain in SHARED_CHAINS and not HEX_ID.search(line) and \
                not any(b in tokens for b in our_bridges | alive['bridges']):
            return True        # shared plumbing, installed once
        if line.startswith(':') and chain in SHARED_CHAINS:
            return True
        for ident in HEX_ID.findall(line):
            if ident[:12] in alive['ids']:
                return True
        for b in alive['bridges']:
            if b in tokens and b not in our_bridges:
                return True    # another engine's or Docker's live bridge
        # A per-container chain (CNI-DN-…, CNI-xxxx) lives as long as the
        # rule that jumps to it.
        if depth < 2 and chain not in SHARED_CHAINS:
            for _, other in all_rules:
                t = other.split()
                if other.startswith('-A ') and t[1] != chain and \
                        '-j' in t and t[t.index('-j') + 1] == chain:
                    return self._rule_owned(other, all_rules, alive,
                                            our_bridges, depth + 1)
        return False

    def _watched_leaks(self, w, before, now):
        found = []
        what = w.root or getattr(w.d, 'url', '?')
        running = set()
        if now['containers'] is not None:
            running = {cid for cid, (_, st) in now['containers'].items()
                       if st == 'running'}
            if before['containers'] is not None:
                for cid, (name, _) in sorted(now['containers'].items()):
                    if cid not in before['containers']:
                        found.append('%s: container %s (%s) left by the tests'
                                     % (what, name, cid[:12]))
        if now['networks'] is not None and before['networks'] is not None:
            for nid, name in sorted(now['networks'].items()):
                if nid not in before['networks']:
                    found.append('%s: network %s (%s) left by the tests'
                                 % (what, name, nid[:12]))
        for name in sorted(now['netns'] - before['netns']):
            if name not in running:
                found.append('%s: netns file %s/netns/%s of a container that '
                             'is not running' % (what, w.exec_root, name))
        for path, cid in sorted(now['leases'].items()):
            if path not in before['leases'] and cid not in running:
                found.append('%s: IPAM lease %s (container %s is not running)'
                             % (what, path, cid[:12] or '?'))
        for mp in sorted(now['mounts'] - before['mounts']):
            if not any(cid in mp for cid in running):
                found.append('%s: mount %s' % (what, mp))
        return found

    def leaks(self, before):
        """What leaked since ``before``: a list of human-readable lines."""
        now = self.snapshot()
        alive = census()
        host = self._host_candidates(before, now, alive)
        if host and self.settle:
            # Still there a moment later, and still unowned?
            time.sleep(self.settle)
            now2 = self.snapshot()
            alive = census()
            host = sorted(set(host) & set(
                self._host_candidates(before, now2, alive)))
        found = list(host)
        for w, b, n in zip(self.watched, before['watched'], now['watched']):
            found += self._watched_leaks(w, b, n)
        return found


def format_leaks(found):
    return 'leaked:\n  ' + '\n  '.join(found)


@pytest.fixture(scope='module')
def net_leak_targets(request):
    """The daemons ``net_leaks`` watches; override in a module to change."""
    return [request.getfixturevalue('engine')]


NET_MODULE = re.compile(r'^test_net')


def _wanted(module):
    flag = getattr(module, 'NET_LEAK_CHECK', None)
    if flag is not None:
        return bool(flag)
    return bool(NET_MODULE.match(module.__name__.rsplit('.', 1)[-1]))


@pytest.fixture(scope='module', autouse=True)
def net_leaks(request):
    """Snapshot before the module, compare after: fails the module's last
    test at teardown with the exact list of what leaked (networking modules
    only; see the module docstring)."""
    if not _wanted(request.module):
        yield None
        return
    checker = LeakChecker(request.getfixturevalue('net_leak_targets'))
    before = checker.snapshot()
    yield checker
    found = checker.leaks(before)
    assert not found, format_leaks(found)
