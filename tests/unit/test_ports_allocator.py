"""PortAllocator with real sockets on 127.0.0.1 (no mocks: the point is
what the kernel lets other processes do while a port is held)."""

import socket
import threading
import unittest

import ddt

from engine import errors
from engine.networks import ports as P
from tests import netfree

LOCAL = '127.0.0.1'
STYPE = {'tcp': socket.SOCK_STREAM, 'udp': socket.SOCK_DGRAM}


def other_process_bind(proto, port, ip=LOCAL, reuse=True, reuseport=False):
    """Bind as a typical server would (SO_REUSEADDR set); the socket or the
    OSError."""
    s = socket.socket(socket.AF_INET, STYPE[proto])
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((ip, port))
        if proto == 'tcp':
            s.listen()
    except OSError as exc:
        s.close()
        return exc
    return s


@ddt.ddt
class AllocatorTest(unittest.TestCase):

    def setUp(self):
        self.alloc = P.PortAllocator()
        self.addCleanup(self._release_all)
        self.sockets = []
        self.addCleanup(lambda: [s.close() for s in self.sockets])

    def _release_all(self):
        for cid in list(self.alloc._held):
            self.alloc.release(cid)

    def keep(self, sock):
        self.assertIsInstance(sock, socket.socket, sock)
        self.sockets.append(sock)
        return sock

    @ddt.data('tcp', 'udp')
    def test_held_port_cannot_be_taken_and_release_frees_it(self, proto):
        port = netfree.free_ports()
        got = self.alloc.allocate('c1', [P.PortSpec(80, proto, LOCAL, port, port)])
        self.assertEqual([P.Binding(80, proto, LOCAL, port)], got)
        # another process cannot bind it, even with SO_REUSEADDR, on the
        # address or on all addresses
        for ip in (LOCAL, '0.0.0.0'):
            for reuseport in (False, True):
                err = other_process_bind(proto, port, ip, reuseport=reuseport)
                self.assertIsInstance(err, OSError, 'port %d was taken while held' % port)
        self.alloc.release('c1')
        self.alloc.release('c1')   # idempotent
        # immediately reusable (no TIME_WAIT for a socket that never connected)
        self.keep(other_process_bind(proto, port, reuse=False))

    @ddt.data('tcp', 'udp')
    def test_port_bound_on_host_is_refused_with_dockers_message(self, proto):
        port = netfree.free_ports()
        self.keep(other_process_bind(proto, port, LOCAL))
        for ip in (LOCAL, ''):
            with self.assertRaises(errors.Conflict) as ctx:
                self.alloc.allocate('c1', [P.PortSpec(80, proto, ip, port, port)])
            self.assertEqual('listen %s4 %s:%d: bind: address already in use'
                             % (proto, ip or '0.0.0.0', port), str(ctx.exception))
            self.assertEqual(409, ctx.exception.status)
        self.assertEqual([], self.alloc.reserved())

    def test_engine_conflict_message(self):
        port = netfree.free_ports()
        self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', '', port, port)])
        for ip in ('', LOCAL, '0.0.0.0'):
            with self.assertRaises(errors.Conflict) as ctx:
                self.alloc.allocate('c2', [P.PortSpec(81, 'tcp', ip, port, port)])
            self.assertEqual('Bind for %s:%d failed: port is already allocated'
                             % (ip or '0.0.0.0', port), str(ctx.exception))
        # the same port in another protocol is another port
        self.assertEqual([P.Binding(80, 'udp', '', port)],
                         self.alloc.allocate('c2', [P.PortSpec(80, 'udp', '', port, port)]))
        # twice in one request (-p P:80 -p P:81) conflicts with itself
        other = netfree.free_ports()
        with self.assertRaisesRegex(errors.Conflict, 'Bind for 0.0.0.0:%d failed' % other):
            self.alloc.allocate('c3', [P.PortSpec(80, 'tcp', '', other, other),
                                       P.PortSpec(81, 'tcp', '', other, other)])

    def test_allocate_is_all_or_nothing(self):
        port = netfree.free_ports(2)
        self.keep(other_process_bind('tcp', port + 1))
        with self.assertRaises(errors.Conflict):
            self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', LOCAL, port, port),
                                       P.PortSpec(81, 'tcp', LOCAL, port + 1, port + 1)])
        self.assertEqual([], self.alloc.reserved())
        self.keep(other_process_bind('tcp', port, reuse=False))

    def test_allocate_replaces_what_the_container_held(self):
        a, b = netfree.free_ports(), netfree.free_ports()
        spec_a = P.PortSpec(80, 'tcp', LOCAL, a, a)
        self.alloc.allocate('c1', [spec_a])
        # a restart that skipped release: the same port again is no conflict
        self.assertEqual([P.Binding(80, 'tcp', LOCAL, a)], self.alloc.allocate('c1', [spec_a]))
        self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', LOCAL, b, b)])
        self.assertEqual([P.Binding(80, 'tcp', LOCAL, b)], self.alloc.reserved('c1'))
        self.keep(other_process_bind('tcp', a, reuse=False))
        # a failed allocate leaves the container holding nothing
        with self.assertRaises(errors.Conflict):
            self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', LOCAL, a, a)])
        self.assertEqual([], self.alloc.reserved())
        self.keep(other_process_bind('tcp', b, reuse=False))

    def test_host_port_range_skips_taken_ports(self):
        base = netfree.free_ports(3)
        self.keep(other_process_bind('tcp', base))
        spec = P.PortSpec(80, 'tcp', LOCAL, base, base + 2)
        self.assertEqual([P.Binding(80, 'tcp', LOCAL, base + 1)], self.alloc.allocate('c1', [spec]))
        self.assertEqual([P.Binding(80, 'tcp', LOCAL, base + 2)], self.alloc.allocate('c2', [spec]))
        with self.assertRaises(errors.Conflict) as ctx:
            self.alloc.allocate('c3', [spec])
        self.assertEqual('all ports are allocated', str(ctx.exception))

    def test_random_ports_come_from_the_range_in_sequence(self):
        base = netfree.free_ports(4)
        alloc = P.PortAllocator(range_=(base, base + 3))
        self.addCleanup(lambda: [alloc.release(c) for c in ('a', 'b', 'c')])
        self.keep(other_process_bind('tcp', base + 1))
        got = alloc.allocate('a', [P.PortSpec(80, 'tcp', LOCAL), P.PortSpec(81, 'tcp', LOCAL)])
        self.assertEqual([base, base + 2], [b.host_port for b in got])
        alloc.release('a')
        # sequential after the last one given, like Docker, wrapping round
        self.assertEqual([base + 3, base],
                         [b.host_port for b in alloc.allocate(
                             'b', [P.PortSpec(80, 'tcp', LOCAL), P.PortSpec(80, 'tcp', LOCAL)])])
        self.assertEqual(base + 2, alloc.allocate('c', [P.PortSpec(80, 'tcp', LOCAL)])[0].host_port)
        with self.assertRaisesRegex(errors.Conflict, '^all ports are allocated$'):
            alloc.allocate('d', [P.PortSpec(80, 'tcp', LOCAL)])

    def test_one_random_sequence_per_host_address_and_protocol(self):
        base = netfree.free_ports(4)
        alloc = P.PortAllocator(range_=(base, base + 3))
        self.addCleanup(lambda: [alloc.release(c) for c in ('a', 'b')])
        got = alloc.allocate('a', [P.PortSpec(80, 'tcp', LOCAL), P.PortSpec(80, 'udp', LOCAL)])
        self.assertEqual([base, base], [b.host_port for b in got])
        # all addresses: its own sequence, but never a port held on
        # 127.0.0.1; another address: its own sequence, and the same port
        # as 127.0.0.1 is no conflict
        got = alloc.allocate('b', [P.PortSpec(81, 'tcp', ''), P.PortSpec(81, 'tcp', '127.0.0.2')])
        self.assertEqual([base + 1, base], [b.host_port for b in got])

    def test_default_range_is_the_kernels(self):
        self.assertEqual(P.dynamic_port_range(), self.alloc.range)
        got = self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', LOCAL)])
        lo, hi = P.dynamic_port_range()
        self.assertTrue(lo <= got[0].host_port <= hi)
        err = other_process_bind('tcp', got[0].host_port)
        self.assertIsInstance(err, OSError)

    def test_concurrent_allocations_never_collide(self):
        results, failures = {}, []

        def work(n):
            try:
                got = self.alloc.allocate('c%d' % n, [P.PortSpec(80 + i, proto, LOCAL)
                                                     for i in range(5)
                                                     for proto in ('tcp', 'udp')])
                results[n] = got
            except Exception as exc:   # noqa: BLE001 (reported below)
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([], failures)
        pairs = [(b.proto, b.host_port) for got in results.values() for b in got]
        self.assertEqual(80, len(pairs))
        self.assertEqual(len(pairs), len(set(pairs)))
        for proto, port in pairs:
            self.assertIsInstance(other_process_bind(proto, port), OSError)

    def test_restore_after_restart_reports_ports_taken_meanwhile(self):
        a, b = netfree.free_ports(), netfree.free_ports()
        first = P.PortAllocator()
        bindings = first.allocate('c1', [P.PortSpec(80, 'tcp', LOCAL, a, a),
                                         P.PortSpec(81, 'udp', LOCAL, b, b)])
        first.release('c1')                 # the engine died
        self.keep(other_process_bind('udp', b))   # someone took one meanwhile
        problems = self.alloc.restore('c1', P.from_record(P.to_record(bindings)))
        self.assertEqual(1, len(problems))
        self.assertIn('81/udp -> %d' % b, problems[0])
        self.assertIn('address already in use', problems[0])
        self.assertEqual([P.Binding(80, 'tcp', LOCAL, a)], self.alloc.reserved('c1'))
        self.assertIsInstance(other_process_bind('tcp', a), OSError)
        # restoring again is harmless (the engine's own hold is replaced)
        self.assertEqual(1, len(self.alloc.restore('c1', bindings)))
        self.alloc.release('c1')
        self.keep(other_process_bind('tcp', a, reuse=False))

    def test_ipv6_host_ip_is_dropped_for_an_ipv4_container(self):
        port = netfree.free_ports()
        got = self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', '::1', port, port)])
        self.assertEqual([], got)

    @unittest.skipUnless(P.host_has_ipv6(), 'no IPv6 on this host')
    def test_ipv6_container_holds_ipv6_ports(self):
        port = netfree.free_ports()
        got = self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', '', port, port)],
                                  container_ipv6=True)
        self.assertEqual([P.Binding(80, 'tcp', '', port), P.Binding(80, 'tcp', '::', port)], got)
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with self.assertRaises(OSError):
                s.bind(('::1', port))
        with self.assertRaisesRegex(errors.Conflict, r'^Bind for ::1:%d failed' % port):
            self.alloc.allocate('c2', [P.PortSpec(80, 'tcp', '::1', port, port)],
                                container_ipv6=True)

    def test_sctp_is_reserved_in_the_table_when_the_kernel_has_no_sctp(self):
        port = netfree.free_ports()
        got = self.alloc.allocate('c1', [P.PortSpec(80, 'sctp', '', port, port)])
        self.assertEqual([P.Binding(80, 'sctp', '', port)], got)
        with self.assertRaisesRegex(errors.Conflict, 'port is already allocated'):
            self.alloc.allocate('c2', [P.PortSpec(80, 'sctp', '', port, port)])

    def test_address_not_on_this_host_is_a_400(self):
        port = netfree.free_ports()
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.alloc.allocate('c1', [P.PortSpec(80, 'tcp', '203.0.113.7', port, port)])
        self.assertEqual('listen tcp4 203.0.113.7:%d: bind: cannot assign requested address'
                         % port, str(ctx.exception))


class DescriptorExhaustionTest(unittest.TestCase):

    def test_no_descriptor_left_is_an_engine_error_and_nothing_stays_held(self):
        import errno
        from unittest import mock
        alloc = P.PortAllocator()
        port = netfree.free_ports(2)
        real_socket = socket.socket
        calls = []

        def fake_socket(*args, **kw):
            calls.append(args)
            if len(calls) > 1:
                raise OSError(errno.EMFILE, 'Too many open files')
            return real_socket(*args, **kw)

        with mock.patch.object(P.socket, 'socket', side_effect=fake_socket):
            with self.assertRaises(errors.EngineError) as ctx:
                alloc.allocate('c1', [P.PortSpec(80, 'tcp', LOCAL, port, port),
                                      P.PortSpec(81, 'tcp', LOCAL, port + 1, port + 1)])
        self.assertEqual(500, ctx.exception.status)
        self.assertEqual('cannot reserve host port tcp4 127.0.0.1:%d: Too many open files'
                         % (port + 1), str(ctx.exception))
        self.assertEqual([], alloc.reserved())
        with real_socket() as s:
            s.bind((LOCAL, port))
