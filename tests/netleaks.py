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

from engine import util
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
                 'NOVADOCKER-FORWARD', 'NOVADOCKER-POSTROUTING',
                 'NOVADOCKER-ISOLATION-1', 'NOVADOCKER-ISOLATION-2'}
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
        # What identifies this daemon's things on the host: the default
        # bridge nd<tag> (tag as engine/daemon.py derives it), the ids of
        # every network and container it had while watched.
        self.tag = util.root_tag(self.root) if self.is_engine else None
        self.ids = set()
        self.bridges = set()
        self.since = None

    def _record_ids(self):
        if not self.is_engine:
            return set()
        ids = {os.path.basename(p)[:-5] for p in
               glob.glob(os.path.join(self.root, 'networks', '*.json'))}
        return ids | set(_listdir(os.path.join(self.root, 'containers')))

    def _event_ids(self):
        """Ids of networks and containers in the daemon's events since the
        first snapshot (those made and removed between two snapshots)."""
        if self.since is None or not self.d.running():
            return set()
        try:
            status, _, body = self.d.api(
                'GET', '/events?since=%d&until=%d' % (self.since,
                                                      int(time.time()) + 1),
                timeout=15)
        except Exception:
            return set()
        ids = set()
        for line in body.decode(errors='replace').splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            actor = ev.get('Actor') or {}
            if ev.get('Type') in ('network', 'container') and actor.get('ID'):
                ids.add(actor['ID'])
            container = (actor.get('Attributes') or {}).get('container')
            if container:
                ids.add(container)
        return ids

    def identity(self):
        """(bridge names, 12-char id prefixes) that are this daemon's."""
        self.ids |= self._event_ids()
        bridges = set(self.bridges) | {'br-' + i[:12] for i in self.ids}
        if self.tag:
            bridges.add('nd' + self.tag)
        if getattr(self.d, 'bridge', None):
            bridges.add(self.d.bridge)
        return bridges, {i[:12] for i in self.ids}

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
        if self.since is None:
            self.since = int(time.time()) - 1
        ctrs = self.api_list('containers')
        nets = self.api_list('networks')
        self.ids |= self._record_ids()
        self.ids |= {c['Id'] for c in ctrs or []} | {n['Id'] for n in nets or []}
        snap = {
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
            'endpoints': self.endpoints_per_bridge(nets),
        }
        self.bridges |= snap['bridges']
        return snap

    def _bridge_of(self, net):
        opts = net.get('Options') or {}
        if opts.get('com.docker.network.bridge.name'):
            return opts['com.docker.network.bridge.name']
        if self.is_engine:
            rec = _read_json(os.path.join(self.root, 'networks',
                                          net['Id'] + '.json')) or {}
            if isinstance(rec.get('_bridge'), str):
                return rec['_bridge']
        if net.get('Name') == 'bridge' and getattr(self.d, 'bridge', None):
            return self.d.bridge
        return 'br-' + net['Id'][:12]

    def endpoints_per_bridge(self, nets):
        """{bridge: number of running containers attached} (from the API)."""
        out = {}
        for net in nets or []:
            if net.get('Driver') not in ('bridge', 'external'):
                continue
            try:
                status, full = self.d.api_json('GET', '/networks/' + net['Id'],
                                               timeout=30)
            except Exception:
                continue
            if status != 200:
                continue
            bridge = (((full.get('Options') or {}).get('bridge'))
                      if full.get('Driver') == 'external'
                      else self._bridge_of(full))
            out[bridge] = out.get(bridge, 0) + len(full.get('Containers') or {})
        return out


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
        """Host-level things new since ``before`` that no one alive owns;
        when daemons are watched, only those that are theirs."""
        if self.watched:
            return self._watched_host_candidates(before, now, alive)
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

    def _watched_host_candidates(self, before, now, alive):
        mine_bridges, mine_ids = set(), set()
        for w in self.watched:
            bridges, ids = w.identity()
            mine_bridges |= bridges
            mine_ids |= ids
        current = set()       # bridges the watched daemons' records name now
        stopped = set()       # containers of theirs that exist but do not run
        for snap in now['watched']:
            current |= snap['bridges']
            stopped |= {cid[:12] for cid, (_, st) in
                        (snap['containers'] or {}).items() if st != 'running'}
        owned_bridges = current | alive['bridges']
        alive_ids = alive['ids'] - stopped
        found = []
        new_links = {n: v for n, v in now['links'].items()
                     if n not in before['links']}
        attached = {}         # running containers per bridge, now
        for snap in now['watched']:
            for bridge, count in snap['endpoints'].items():
                attached[bridge] = attached.get(bridge, 0) + count
        on_bridge = {}
        for name, info in sorted(new_links.items()):
            if info['kind'] == 'bridge' and name in mine_bridges and \
                    name not in owned_bridges:
                found.append('bridge %s (its network is gone)' % name)
            elif info['kind'] == 'veth' and info['master'] in mine_bridges:
                on_bridge.setdefault(info['master'], []).append(name)
        for bridge, veths in sorted(on_bridge.items()):
            # Veths of running containers are not leaks; which veth is whose
            # is not visible from here, so compare the numbers.
            old = sum(1 for n, v in before['links'].items()
                      if v['master'] == bridge and v['kind'] == 'veth')
            extra = old + len(veths) - attached.get(bridge, 0)
            if extra > 0:
                found.append('%d veth(s) on bridge %s beyond its %d running '
                             'container(s): %s' % (
                                 extra, bridge, attached.get(bridge, 0),
                                 ', '.join(sorted(veths))))
        for name in sorted(now['run_netns'] - before['run_netns']):
            if name.startswith(NETNS_PREFIXES):
                found.append('network namespace /run/netns/%s' % name)
        for table, line in sorted(now['rules'] - before['rules']):
            if self._rule_mine(line, now['rules'], mine_bridges, mine_ids) \
                    and not self._rule_live(line, now['rules'], alive_ids,
                                            owned_bridges):
                found.append('iptables -t %s: %s' % (table, line))
        return found

    @staticmethod
    def _rule_mine(line, all_rules, bridges, ids, depth=0):
        tokens = line.split()
        if any(b in tokens for b in bridges):
            return True
        if any(i[:12] in ids for i in HEX_ID.findall(line)):
            return True
        chain = tokens[1] if line.startswith('-A ') else tokens[0][1:]
        if depth < 2 and chain not in SHARED_CHAINS:
            for _, other in all_rules:
                t = other.split()
                if other.startswith('-A ') and t[1] != chain and \
                        '-j' in t and t[t.index('-j') + 1] == chain:
                    return LeakChecker._rule_mine(other, all_rules, bridges,
                                                  ids, depth + 1)
        return False

    @staticmethod
    def _rule_live(line, all_rules, alive_ids, bridges, depth=0):
        """A rule of a watched daemon is still in use when every network
        and container id it names is alive (containers: running); a rule
        naming no id, when its bridge is; a per-container chain's rules,
        when the rule jumping to the chain is."""
        tokens = line.split()
        chain = tokens[1] if line.startswith('-A ') else tokens[0][1:]
        # chain names carry hashes, not ids
        ids = HEX_ID.findall(' '.join(t for t in tokens if 'CNI-' not in t))
        if ids:
            return all(i[:12] in alive_ids for i in ids)
        if depth < 2 and chain not in SHARED_CHAINS:
            for _, other in all_rules:
                t = other.split()
                if other.startswith('-A ') and t[1] != chain and \
                        '-j' in t and t[t.index('-j') + 1] == chain:
                    return LeakChecker._rule_live(other, all_rules, alive_ids,
                                                  bridges, depth + 1)
        return any(b in tokens for b in bridges)

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
SETTLE = 5.0  # seconds an in-flight teardown may take before it counts as a leak


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
    # `docker run --rm` returns once the container is gone from the API; its
    # CNI DEL and namespace removal finish a few milliseconds later.  A leak
    # is what is still there after that: look again for up to SETTLE seconds.
    deadline = time.monotonic() + SETTLE
    found = checker.leaks(before)
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = checker.leaks(before)
    assert not found, format_leaks(found)
