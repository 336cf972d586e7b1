"""Per-network NAT, forwarding and isolation rules, in the engine's own chains.

Rules are per network, installed once when the network's host side is
made (never per container: iptables-nft costs tens of milliseconds a call).
They live in ``NOVADOCKER-FORWARD`` (filter, jumped from FORWARD at position
1, so Docker's FORWARD DROP policy does not drop our bridges' traffic) and
``NOVADOCKER-POSTROUTING`` (nat).  Every rule carries the network's short id
as its comment: that is how a network's rules are found, replaced and
removed, by this engine and by any other sharing the chains.
"""

import subprocess
import threading

from oslo_log import log as logging

from engine import errors

LOG = logging.getLogger(__name__)

FORWARD_CHAIN = 'NOVADOCKER-FORWARD'
NAT_CHAIN = 'NOVADOCKER-POSTROUTING'
# Isolation between bridge networks, as Docker's DOCKER-ISOLATION-STAGE-1/2:
# traffic leaving one of our bridges for another one of ours is dropped.
ISOLATION1 = 'NOVADOCKER-ISOLATION-1'
ISOLATION2 = 'NOVADOCKER-ISOLATION-2'
_JUMPS = (('filter', 'FORWARD', FORWARD_CHAIN), ('nat', 'POSTROUTING', NAT_CHAIN),
          ('filter', FORWARD_CHAIN, ISOLATION1))
_ISOLATION = (('filter', None, ISOLATION2),)


class Firewall:
    def __init__(self, iptables='iptables', restore='iptables-restore', runner=None):
        self.iptables = iptables
        self.restore = restore
        self._run = runner or self._run_process
        self._lock = threading.Lock()

    @staticmethod
    def _run_process(argv, stdin=None):
        proc = subprocess.run(argv, input=stdin.encode() if stdin is not None else None,
                              capture_output=True, timeout=60)
        return proc.returncode, proc.stdout.decode(errors='replace'), \
            proc.stderr.decode(errors='replace')

    def _ipt(self, *args, check=True):
        rc, out, err = self._run([self.iptables, '-w', '5'] + list(args))
        if rc != 0 and check:
            raise errors.RuntimeFailure('iptables %s failed: %s' % (' '.join(args),
                                                                    err.strip() or out.strip()))
        return rc, out

    def ensure_chains(self):
        self._ipt('-t', 'filter', '-N', ISOLATION2, check=False)
        for table, parent, chain in _JUMPS:
            self._ipt('-t', table, '-N', chain, check=False)  # exists: fine
            rc, _ = self._ipt('-t', table, '-C', parent, '-j', chain, check=False)
            if rc != 0:
                self._ipt('-t', table, '-I', parent, '1', '-j', chain)
        # Published ports stay reachable from other networks' containers.
        rc, _ = self._ipt('-t', 'filter', '-C', ISOLATION1, '-m', 'conntrack', '--ctstate',
                          'DNAT', '-j', 'RETURN', check=False)
        if rc != 0:
            self._ipt('-t', 'filter', '-I', ISOLATION1, '1', '-m', 'conntrack', '--ctstate',
                      'DNAT', '-j', 'RETURN')

    @staticmethod
    def rules(tag, bridge, subnet, internal=False):
        """The network's rules as (table, rule args) pairs."""
        c = ['-m', 'comment', '--comment', tag]
        f = FORWARD_CHAIN
        out = [('filter', ['-A', f, '-i', bridge, '-o', bridge] + c + ['-j', 'ACCEPT'])]
        if internal:
            out += [('filter', ['-A', f, '-i', bridge, '!', '-o', bridge] + c + ['-j', 'DROP']),
                    ('filter', ['-A', f, '!', '-i', bridge, '-o', bridge] + c + ['-j', 'DROP'])]
        else:
            out += [('filter', ['-A', f, '-i', bridge, '!', '-o', bridge] + c + ['-j', 'ACCEPT']),
                    ('filter', ['-A', f, '-o', bridge, '-m', 'conntrack', '--ctstate',
                                'RELATED,ESTABLISHED,DNAT'] + c + ['-j', 'ACCEPT']),
                    ('nat', ['-A', NAT_CHAIN, '-s', subnet, '!', '-o', bridge] + c
                     + ['-j', 'MASQUERADE'])]
        out += [('filter', ['-A', ISOLATION1, '-i', bridge, '!', '-o', bridge] + c
                 + ['-j', ISOLATION2]),
                ('filter', ['-A', ISOLATION2, '-o', bridge] + c + ['-j', 'DROP'])]
        return out

    def _restore(self, by_table):
        text = ''
        for table, lines in by_table.items():
            if lines:
                text += '*%s\n%s\nCOMMIT\n' % (table, '\n'.join(lines))
        if not text:
            return
        rc, out, err = self._run([self.restore, '-w', '5', '--noflush'], text)
        if rc != 0:
            raise errors.RuntimeFailure('iptables-restore failed: %s' % (err.strip() or out))

    def _existing(self, tag):
        """The network's current rules, as {table: ['-A CHAIN ...', ...]}."""
        found = {}
        for table, _, chain in _JUMPS + _ISOLATION:
            rc, out = self._ipt('-t', table, '-S', chain, check=False)
            if rc != 0:
                continue
            found.setdefault(table, []).extend(
                line for line in out.splitlines()
                if line.startswith('-A ') and _comment(line) == tag)
        return found

    def add_network(self, tag, bridge, subnet, internal=False):
        """Install the network's rules; idempotent (replaces what is there)."""
        with self._lock:
            self.ensure_chains()
            existing = self._existing(tag)
            batch = {'filter': [], 'nat': []}
            for table, lines in existing.items():
                batch[table] += ['-D' + line[2:] for line in lines]
            for table, rule in self.rules(tag, bridge, subnet, internal):
                batch[table].append(' '.join(_quote(a) for a in rule))
            self._restore(batch)

    def remove_network(self, tag):
        with self._lock:
            existing = self._existing(tag)
            self._restore({t: ['-D' + line[2:] for line in lines]
                           for t, lines in existing.items()})

    def tags(self):
        """Short ids of every network with rules in our chains (any engine's)."""
        out = set()
        for table, _, chain in _JUMPS + _ISOLATION:
            rc, text = self._ipt('-t', table, '-S', chain, check=False)
            if rc == 0:
                out |= {_comment(line) for line in text.splitlines() if _comment(line)}
        return out

    def tag_devices(self):
        """{tag: the interfaces its rules name (-i/-o)} for every network
        with rules in our chains (any engine's)."""
        out = {}
        for table, _, chain in _JUMPS + _ISOLATION:
            rc, text = self._ipt('-t', table, '-S', chain, check=False)
            if rc != 0:
                continue
            for line in text.splitlines():
                tag = _comment(line)
                if not tag:
                    continue
                parts = line.split()
                devs = out.setdefault(tag, set())
                devs.update(parts[i + 1] for i, p in enumerate(parts[:-1])
                            if p in ('-i', '-o'))
        return out

    def remove_chains_if_empty(self):
        """Drop our chains and jumps when no network of any engine uses them."""
        with self._lock:
            if self.tags():
                return
            # Rule by rule, never a flush: another engine may be adding
            # its rules right now (then -X fails and the chain stays).
            self._ipt('-t', 'filter', '-D', ISOLATION1, '-m', 'conntrack', '--ctstate', 'DNAT',
                      '-j', 'RETURN', check=False)
            for table, parent, chain in reversed(_JUMPS):
                self._ipt('-t', table, '-D', parent, '-j', chain, check=False)
                self._ipt('-t', table, '-X', chain, check=False)
            self._ipt('-t', 'filter', '-X', ISOLATION2, check=False)


def _comment(line):
    parts = line.split()
    for i, p in enumerate(parts[:-1]):
        if p == '--comment':
            return parts[i + 1].strip('"')
    return None


def _quote(arg):
    return '"%s"' % arg if (' ' in arg or not arg) else arg
