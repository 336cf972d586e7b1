"""engine/networks/ports.py: parsing, Docker's views, the stored form.

The expected views are what Docker 20.10.24 answered for the same requests
(recorded by hand with dockerd --userland-proxy=false on a user-defined
bridge network; tests/compat/test_ports_interop.py re-checks a few live).
"""

import unittest

import ddt

from engine import errors
from engine.networks import ports as P


def _parse(exposed=None, bindings=None, publish_all=None):
    config = {'ExposedPorts': exposed}
    host = {'PortBindings': bindings}
    if publish_all is not None:
        host['PublishAllPorts'] = publish_all
    return P.parse(config, host)


@ddt.ddt
class ParseTest(unittest.TestCase):

    @ddt.data(
        # -p 127.0.0.1:18080:80
        ({'80/tcp': {}}, {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '18080'}]},
         [P.PortSpec(80, 'tcp', '127.0.0.1', 18080, 18080)]),
        # -p 80 (random), key without protocol
        ({'80': {}}, {'80': [{'HostIp': '', 'HostPort': ''}]}, [P.PortSpec(80, 'tcp')]),
        # HostPort "0" is random too; an empty binding object as well
        ({'80/tcp': {}}, {'80/tcp': [{'HostPort': '0'}]}, [P.PortSpec(80, 'tcp')]),
        ({'53/udp': {}}, {'53/udp': [{}]}, [P.PortSpec(53, 'udp')]),
        ({'53/udp': {}}, {'53/udp': [None]}, [P.PortSpec(53, 'udp')]),
        ({'132/sctp': {}}, {'132/sctp': [{'HostPort': '1132'}]},
         [P.PortSpec(132, 'sctp', '', 1132, 1132)]),
        # the protocol is case-insensitive, "80/" is tcp (nat.SplitProtoPort)
        ({'80/TCP': {}}, {'80/': [{'HostPort': '8080'}]}, [P.PortSpec(80, 'tcp', '', 8080, 8080)]),
        # -p 18090-18095:80: one port of the host range
        ({'80/tcp': {}}, {'80/tcp': [{'HostPort': '18090-18095'}]},
         [P.PortSpec(80, 'tcp', '', 18090, 18095)]),
        # API ranges in keys: pairwise with a host range of the same size
        ({'80-82/tcp': {}}, {'80-82/tcp': [{'HostPort': '8000-8002'}]},
         [P.PortSpec(82, 'tcp', '', 8002, 8002), P.PortSpec(81, 'tcp', '', 8001, 8001),
          P.PortSpec(80, 'tcp', '', 8000, 8000)]),
        # ... or each random
        ({'80-81/udp': {}}, {'80-81/udp': [{}]},
         [P.PortSpec(81, 'udp'), P.PortSpec(80, 'udp')]),
        # IPv6 HostIp normalised, brackets accepted
        ({'80/tcp': {}}, {'80/tcp': [{'HostIp': '[0:0::1]', 'HostPort': '8080'}]},
         [P.PortSpec(80, 'tcp', '::1', 8080, 8080)]),
        # bindings of ports that are not exposed are dropped, as Docker does
        ({}, {'80/tcp': [{'HostPort': '8080'}]}, []),
        (None, None, []),
        # exposed but not bound: nothing without -P
        ({'80/tcp': {}, '81/udp': {}}, {}, []),
        # an empty or null list is no binding
        ({'80/tcp': {}}, {'80/tcp': []}, []),
        ({'80/tcp': {}}, {'80/tcp': None}, []),
        # two bindings of one port, larger host port first (nat.SortPortMap)
        ({'80/tcp': {}}, {'80/tcp': [{'HostPort': '18083'}, {'HostPort': '18084'}]},
         [P.PortSpec(80, 'tcp', '', 18084, 18084), P.PortSpec(80, 'tcp', '', 18083, 18083)]),
    )
    @ddt.unpack
    def test_valid(self, exposed, bindings, expected):
        self.assertEqual(expected, _parse(exposed, bindings))

    def test_publish_all(self):
        specs = _parse({'80/tcp': {}, '8000-8001/tcp': {}, '53/udp': {}},
                       {'80/tcp': [{'HostPort': '8080'}]}, True)
        # 80 keeps its binding; the others get a random port each, larger
        # container port first (that one gets the first random port, as Docker).
        self.assertEqual([P.PortSpec(80, 'tcp', '', 8080, 8080),
                          P.PortSpec(8001, 'tcp'), P.PortSpec(8000, 'tcp'),
                          P.PortSpec(53, 'udp')], specs)

    @ddt.data(
        # Docker's daemon words for what it rejects itself
        ({}, {'abc': [{}]}, 'invalid port specification: "abc"'),
        ({}, {'65536/tcp': [{}]}, 'invalid port specification: "65536"'),
        ({}, {'0/tcp': [{}]}, 'invalid port specification: "0"'),
        ({}, {'/tcp': [{}]}, 'invalid port specification: ""'),
        ({}, {'80/tcp': [{'HostPort': 'abc'}]}, 'invalid port specification: "abc"'),
        ({}, {'80/tcp': [{'HostPort': '65536'}]}, 'invalid port specification: "65536"'),
        ({}, {'80/tcp': [{'HostPort': '18010-18000'}]},
         'invalid port specification: "18010-18000"'),
        ({}, {'80/tcp': [{'HostPort': '-1'}]}, 'invalid port specification: "-1"'),
        ({}, {'80/tcp': [{'HostPort': '+80'}]}, 'invalid port specification: "+80"'),
        ({}, {'80/tcp': [{'HostPort': ' 80'}]}, 'invalid port specification: " 80"'),
        ({}, {'80/tcp': [{'HostPort': '18000-18002/udp'}]},
         'invalid port specification: "18000-18002/udp"'),
        # the CLI's words (Docker's daemon accepts these and misbehaves)
        ({}, {'80/xyz': [{}]}, 'invalid proto: xyz'),
        ({'80/xyz': {}}, {}, 'invalid proto: xyz'),
        ({'abc': {}}, {}, 'invalid port specification: "abc"'),
        ({'0/tcp': {}}, {}, 'invalid port specification: "0"'),
        ({}, {'80/tcp': [{'HostIp': 'bogus', 'HostPort': '80'}]}, 'invalid IP address: bogus'),
        ({}, {'80/tcp': [{'HostIp': '1.2.3.4.5'}]}, 'invalid IP address: 1.2.3.4.5'),
        ({}, {'80/tcp': [{'HostIp': 'fe80::1%eth0'}]}, 'invalid IP address: fe80::1%eth0'),
        ({}, {'80-82/tcp': [{'HostPort': '8000-8001'}]},
         'invalid ranges specified for container and host Ports: 80-82 and 8000-8001'),
        ({}, {'80-82/tcp': [{'HostPort': '8000'}]},
         'invalid ranges specified for container and host Ports: 80-82 and 8000'),
        # hostile JSON types
        ({}, {'80/tcp': [{'HostPort': 80}]}, 'invalid HostPort for 80/tcp: must be a string'),
        ({}, {'80/tcp': [{'HostIp': ['x']}]}, 'invalid HostIp for 80/tcp: must be a string'),
        ({}, {'80/tcp': {'HostPort': '80'}}, 'invalid port bindings for 80/tcp: must be a list'),
        ({}, {'80/tcp': ['80']}, 'invalid port binding for 80/tcp: must be an object'),
        ({}, ['80/tcp'], 'PortBindings must be an object'),
        ('80/tcp', {}, 'ExposedPorts must be an object'),
        ({}, {'8' * 100: [{}]}, 'invalid port specification: "%s..."' % ('8' * 64)),
        ({}, {3: [{}]}, 'invalid port specification: 3'),
    )
    @ddt.unpack
    def test_rejects(self, exposed, bindings, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            _parse(exposed, bindings)
        self.assertEqual(message, str(ctx.exception))
        self.assertEqual(400, ctx.exception.status)

    def test_rejects_non_boolean_publish_all(self):
        with self.assertRaisesRegex(errors.InvalidArgument, 'PublishAllPorts must be a boolean'):
            _parse({'80/tcp': {}}, {}, 'yes')

    def test_too_many_published_ports(self):
        with self.assertRaisesRegex(errors.InvalidArgument, 'too many published ports'):
            _parse({'1-65535/tcp': {}}, {'1-65535/tcp': [{}]})
        with self.assertRaisesRegex(errors.InvalidArgument, 'too many published ports'):
            _parse({'1-65535/tcp': {}}, {}, True)
        self.assertEqual(P.MAX_PUBLISHED,
                         len(_parse({'1-%d/tcp' % P.MAX_PUBLISHED: {}}, {}, True)))


@ddt.ddt
class NetworkModeTest(unittest.TestCase):
    """What Docker 20.10 answered for ports with host, none and container:."""

    BOUND = {'80/tcp': [{'HostPort': '8080'}]}

    @ddt.data('host', 'none')
    def test_host_and_none_publish_nothing(self, mode):
        self.assertEqual([], P.parse({'ExposedPorts': {'80/tcp': {}}},
                                     {'NetworkMode': mode, 'PortBindings': self.BOUND,
                                      'PublishAllPorts': True}))

    def test_user_network_publishes(self):
        self.assertEqual([P.PortSpec(80, 'tcp', '', 8080, 8080)],
                         P.parse({'ExposedPorts': {'80/tcp': {}}},
                                 {'NetworkMode': 'mynet', 'PortBindings': self.BOUND}))

    @ddt.data(
        ({}, {'PortBindings': BOUND}, 'port publishing'),
        ({'ExposedPorts': {'80/tcp': {}}}, {'PortBindings': BOUND}, 'port publishing'),
        ({}, {'PublishAllPorts': True}, 'port publishing'),
        # a key with an empty list counts as publishing, as in Docker
        ({}, {'PortBindings': {'80/tcp': []}}, 'port publishing'),
        ({'ExposedPorts': {'80/tcp': {}}}, {'PortBindings': {}}, 'port exposing'),
    )
    @ddt.unpack
    def test_container_mode_conflicts(self, config, host_config, what):
        host_config = dict(host_config, NetworkMode='container:abc')
        with self.assertRaises(errors.InvalidArgument) as ctx:
            P.validate_network_mode(config, host_config)
        self.assertEqual('conflicting options: %s and the container type network mode' % what,
                         str(ctx.exception))
        if what == 'port publishing':
            with self.assertRaisesRegex(errors.InvalidArgument, 'conflicting options'):
                P.parse(config, host_config)
        else:
            # parse sees the image's EXPOSE merged in: no exposing conflict there
            self.assertEqual([], P.parse(config, host_config))

    def test_container_mode_without_ports_is_fine(self):
        P.validate_network_mode({}, {'NetworkMode': 'container:abc', 'PortBindings': {}})
        P.validate_network_mode({'ExposedPorts': {'80/tcp': {}}}, {'NetworkMode': 'bridge'})


@ddt.ddt
class ViewsTest(unittest.TestCase):

    B = P.Binding

    @ddt.data(
        # -p 127.0.0.1:18080:80
        ({'80/tcp': {}}, [B(80, 'tcp', '127.0.0.1', 18080)],
         {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '18080'}]},
         [{'IP': '127.0.0.1', 'PrivatePort': 80, 'PublicPort': 18080, 'Type': 'tcp'}],
         [{'hostPort': 18080, 'containerPort': 80, 'protocol': 'tcp', 'hostIP': '127.0.0.1'}]),
        # --expose 90 --expose 91/udp -p 90
        ({'90/tcp': {}, '91/udp': {}}, [B(90, 'tcp', '', 32769)],
         {'90/tcp': [{'HostIp': '0.0.0.0', 'HostPort': '32769'}], '91/udp': None},
         [{'IP': '0.0.0.0', 'PrivatePort': 90, 'PublicPort': 32769, 'Type': 'tcp'},
          {'PrivatePort': 91, 'Type': 'udp'}],
         [{'hostPort': 32769, 'containerPort': 90, 'protocol': 'tcp'}]),
        # -p [::1]:18099:80 on an IPv4-only container: the binding is dropped
        ({'80/tcp': {}}, [], {'80/tcp': None}, [{'PrivatePort': 80, 'Type': 'tcp'}], []),
        # -p 18082:80 -p 18082:80/udp; keys sort as strings ("9000" after "80")
        ({'80/tcp': {}, '80/udp': {}, '9000/tcp': {}},
         [B(80, 'tcp', '', 18082), B(80, 'udp', '', 18082)],
         {'80/tcp': [{'HostIp': '0.0.0.0', 'HostPort': '18082'}],
          '80/udp': [{'HostIp': '0.0.0.0', 'HostPort': '18082'}], '9000/tcp': None},
         [{'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 18082, 'Type': 'tcp'},
          {'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 18082, 'Type': 'udp'},
          {'PrivatePort': 9000, 'Type': 'tcp'}],
         [{'hostPort': 18082, 'containerPort': 80, 'protocol': 'tcp'},
          {'hostPort': 18082, 'containerPort': 80, 'protocol': 'udp'}]),
        # -p 18083:80 -p 18084:80 (Docker lists 18084 first: the parse order)
        ({'80/tcp': {}}, [B(80, 'tcp', '', 18084), B(80, 'tcp', '', 18083)],
         {'80/tcp': [{'HostIp': '0.0.0.0', 'HostPort': '18084'},
                     {'HostIp': '0.0.0.0', 'HostPort': '18083'}]},
         [{'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 18084, 'Type': 'tcp'},
          {'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 18083, 'Type': 'tcp'}],
         [{'hostPort': 18084, 'containerPort': 80, 'protocol': 'tcp'},
          {'hostPort': 18083, 'containerPort': 80, 'protocol': 'tcp'}]),
        # a container with an IPv6 address: the :: twin and an IPv6 HostIp
        ({'80/tcp': {}}, [B(80, 'tcp', '', 8080), B(80, 'tcp', '::', 8080)],
         {'80/tcp': [{'HostIp': '0.0.0.0', 'HostPort': '8080'},
                     {'HostIp': '::', 'HostPort': '8080'}]},
         [{'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'},
          {'IP': '::', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'}],
         [{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'}]),
        # explicit addresses, wildcards too, go to portmap as hostIP
        ({'80/tcp': {}, '81/tcp': {}},
         [B(80, 'tcp', '0.0.0.0', 8080), B(81, 'tcp', '::1', 8081)],
         {'80/tcp': [{'HostIp': '0.0.0.0', 'HostPort': '8080'}],
          '81/tcp': [{'HostIp': '::1', 'HostPort': '8081'}]},
         [{'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'},
          {'IP': '::1', 'PrivatePort': 81, 'PublicPort': 8081, 'Type': 'tcp'}],
         [{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp', 'hostIP': '0.0.0.0'},
          {'hostPort': 8081, 'containerPort': 81, 'protocol': 'tcp', 'hostIP': '::1'}]),
    )
    @ddt.unpack
    def test_views(self, exposed, bindings, settings, summary, cni):
        self.assertEqual(settings, P.settings_view(exposed, bindings))
        self.assertEqual(list(settings), sorted(settings))
        self.assertEqual(summary, P.summary_view(exposed, bindings))
        self.assertEqual(cni, P.cni_port_mappings(bindings))

    def test_no_endpoint_views(self):
        # created, stopped, or host/none/container: mode: {} and []
        self.assertEqual({}, P.settings_view({'80/tcp': {}}, None))
        self.assertEqual([], P.summary_view({'80/tcp': {}}, None))

    def test_views_skip_bad_stored_keys(self):
        self.assertEqual({'80/tcp': None}, P.settings_view({'80/tcp': {}, 'abc': {}}, []))

    def test_record_round_trip(self):
        bindings = [self.B(80, 'tcp', '', 32768), self.B(53, 'udp', '127.0.0.1', 5353),
                    self.B(80, 'tcp', '::1', 8080)]
        record = P.to_record(bindings)
        import json
        self.assertEqual(bindings, P.from_record(json.loads(json.dumps(record))))
        self.assertEqual([], P.to_record(None))

    @ddt.data(
        None, {}, [{'ContainerPort': 80}], [{'ContainerPort': '80', 'Protocol': 'tcp', 'HostPort': 1}],
        [{'ContainerPort': 80, 'Protocol': 'icmp', 'HostPort': 1}],
        [{'ContainerPort': 80, 'Protocol': 'tcp', 'HostPort': 0}],
        [{'ContainerPort': 80, 'Protocol': 'tcp', 'HostPort': 1, 'HostIp': 'x'}], ['x'],
    )
    def test_from_record_skips_malformed(self, data):
        self.assertEqual([], P.from_record(data))


class PortRangeTest(unittest.TestCase):

    def test_kernel_range(self):
        import tempfile
        with tempfile.NamedTemporaryFile('w') as f:
            f.write('32768\t60999\n')
            f.flush()
            self.assertEqual((32768, 60999), P.dynamic_port_range(f.name))
            f.seek(0)
            f.write('garbage\n')
            f.flush()
            self.assertEqual(P.FALLBACK_RANGE, P.dynamic_port_range(f.name))
        self.assertEqual(P.FALLBACK_RANGE, P.dynamic_port_range('/nonexistent/range'))
        self.assertEqual((49153, 60999), P.FALLBACK_RANGE)
