"""engine.cgroups over fake cgroup trees: v1, v2 and hybrid hosts."""

import os
import tempfile
import unittest

import ddt

from engine import cgroups

HYBRID = """\
25 30 0:23 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/memory rw shared:15 - cgroup cgroup rw,memory
32 25 0:30 / /sys/fs/cgroup/pids rw shared:16 - cgroup cgroup rw,pids
33 25 0:31 / /sys/fs/cgroup/cpuset rw shared:17 - cgroup cgroup rw,cpuset
34 25 0:32 / /sys/fs/cgroup/blkio rw shared:18 - cgroup cgroup rw,blkio
"""

UNIFIED = """\
25 30 0:23 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
"""

NESTED_V1 = """\
31 25 0:29 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
"""

CID = 'c' * 64
CG_PATH = '/novadocker-1234/' + CID


def write(root, rel, text):
    path = os.path.join(root, rel.lstrip('/'))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


@ddt.ddt
class MountsTest(unittest.TestCase):

    def test_hybrid_is_read_as_v1(self):
        m = cgroups.Mounts.from_mountinfo(HYBRID)
        self.assertEqual(cgroups.V1, m.version)
        self.assertTrue(m.hybrid)
        # co-mounted controllers share one mount point
        self.assertEqual('/sys/fs/cgroup/cpu,cpuacct', m.controller_root('cpu'))
        self.assertEqual('/sys/fs/cgroup/cpu,cpuacct', m.controller_root('cpuacct'))
        self.assertEqual('/sys/fs/cgroup/memory', m.controller_root('memory'))
        self.assertEqual(('/sys/fs/cgroup/unified', '/'), m.v2)

    def test_unified(self):
        m = cgroups.Mounts.from_mountinfo(UNIFIED)
        self.assertEqual(cgroups.V2, m.version)
        self.assertFalse(m.hybrid)
        self.assertEqual('/sys/fs/cgroup', m.controller_root('memory'))

    def test_no_cgroups(self):
        self.assertIsNone(cgroups.Mounts.from_mountinfo('').version)

    @ddt.data(('/novadocker-1/x', '/sys/fs/cgroup/memory/novadocker-1/x'),
              ('/docker/abc/novadocker-1/x', '/sys/fs/cgroup/memory/novadocker-1/x'))
    @ddt.unpack
    def test_subtree_mount_strips_its_root(self, path, expected):
        m = cgroups.Mounts.from_mountinfo(NESTED_V1)
        cg = cgroups.locate(path, m)
        self.assertEqual(expected, cg.dirs['memory'])


class FakeTreeTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.root = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()


class LocateTest(FakeTreeTest):

    def test_v1_from_pid(self):
        write(self.root, 'proc/self/mountinfo', HYBRID)
        write(self.root, 'proc/42/cgroup',
              '4:memory:/elsewhere/x\n3:cpu,cpuacct:/elsewhere/x\n0::/elsewhere/x\n')
        cg = cgroups.locate(CG_PATH, pid=42, root=self.root)
        self.assertEqual(cgroups.V1, cg.version)
        self.assertEqual(os.path.join(self.root, 'sys/fs/cgroup/memory/elsewhere/x'),
                         cg.dirs['memory'])
        # not in the pid's file: the OCI cgroupsPath
        self.assertEqual(os.path.join(self.root, 'sys/fs/cgroup/pids' + CG_PATH),
                         cg.dirs['pids'])

    def test_v2_from_path(self):
        write(self.root, 'proc/self/mountinfo', UNIFIED)
        cg = cgroups.locate(CG_PATH, root=self.root)
        self.assertEqual(cgroups.V2, cg.version)
        self.assertEqual(os.path.join(self.root, 'sys/fs/cgroup' + CG_PATH), cg.dirs[''])
        self.assertEqual(os.path.join(self.root, 'sys/fs/cgroup' + CG_PATH, 'memory.max'),
                         cg.path('memory', 'memory.max'))
        self.assertFalse(cg.exists())


class ReadV1Test(FakeTreeTest):

    def setUp(self):
        super().setUp()
        write(self.root, 'proc/self/mountinfo', HYBRID)
        base = 'sys/fs/cgroup/%s' + CG_PATH + '/'
        cpu = base % 'cpu,cpuacct'
        write(self.root, cpu + 'cpuacct.usage', '3000000000\n')
        write(self.root, cpu + 'cpuacct.usage_percpu', '1000000000 2000000000 \n')
        write(self.root, cpu + 'cpuacct.stat', 'user 150\nsystem 50\n')
        write(self.root, cpu + 'cpu.stat', 'nr_periods 10\nnr_throttled 4\nthrottled_time 999\n')
        mem = base % 'memory'
        write(self.root, mem + 'memory.usage_in_bytes', '1048576\n')
        write(self.root, mem + 'memory.max_usage_in_bytes', '2097152\n')
        write(self.root, mem + 'memory.limit_in_bytes', '9223372036854771712\n')
        write(self.root, mem + 'memory.failcnt', '3\n')
        write(self.root, mem + 'memory.stat', 'cache 4096\nrss 8192\ntotal_inactive_file 100\n'
                                              'unknown_key 5\n')
        write(self.root, mem + 'memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\n'
                                                     'oom_kill 2\n')
        write(self.root, (base % 'pids') + 'pids.current', '7\n')
        write(self.root, (base % 'pids') + 'pids.max', 'max\n')
        write(self.root, (base % 'blkio') + 'blkio.throttle.io_service_bytes_recursive',
              '8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n')
        write(self.root, (base % 'blkio') + 'blkio.io_service_bytes_recursive', '')
        self.cg = cgroups.locate(CG_PATH, root=self.root)

    def test_cpu(self):
        s = cgroups.read_stats(self.cg)['cpu_stats']
        self.assertEqual(3000000000, s['cpu_usage']['total_usage'])
        self.assertEqual([1000000000, 2000000000], s['cpu_usage']['percpu_usage'])
        ticks = os.sysconf('SC_CLK_TCK')
        self.assertEqual(150 * 10 ** 9 // ticks, s['cpu_usage']['usage_in_usermode'])
        self.assertEqual(50 * 10 ** 9 // ticks, s['cpu_usage']['usage_in_kernelmode'])
        self.assertEqual({'periods': 10, 'throttled_periods': 4, 'throttled_time': 999},
                         s['throttling_data'])

    def test_memory_limit_capped_at_machine_memory(self):
        m = cgroups.read_stats(self.cg, machine_memory=8 << 30)['memory_stats']
        self.assertEqual(1048576, m['usage'])
        self.assertEqual(2097152, m['max_usage'])
        self.assertEqual(3, m['failcnt'])
        self.assertEqual(8 << 30, m['limit'])
        self.assertEqual(4096, m['stats']['cache'])
        self.assertEqual(100, m['stats']['total_inactive_file'])
        self.assertEqual(0, m['stats']['dirty'])          # Docker's keys, zero if absent
        self.assertNotIn('unknown_key', m['stats'])

    def test_pids_unlimited_is_zero(self):
        self.assertEqual({'current': 7, 'limit': 0}, cgroups.read_stats(self.cg)['pids_stats'])

    def test_blkio_falls_back_to_throttle_counters(self):
        b = cgroups.read_stats(self.cg)['blkio_stats']
        self.assertEqual([{'major': 8, 'minor': 0, 'op': 'Read', 'value': 4096},
                          {'major': 8, 'minor': 0, 'op': 'Write', 'value': 8192},
                          {'major': 8, 'minor': 0, 'op': 'Total', 'value': 12288}],
                         b['io_service_bytes_recursive'])
        self.assertEqual([], b['io_queue_recursive'])

    def test_oom_kills(self):
        self.assertEqual(2, cgroups.oom_kills(self.cg))


class ReadV2Test(FakeTreeTest):

    def setUp(self):
        super().setUp()
        write(self.root, 'proc/self/mountinfo', UNIFIED)
        d = 'sys/fs/cgroup' + CG_PATH + '/'
        write(self.root, d + 'cpu.stat', 'usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\n'
                                         'nr_periods 6\nnr_throttled 1\nthrottled_usec 70\n')
        write(self.root, d + 'memory.current', '4096\n')
        write(self.root, d + 'memory.max', 'max\n')
        write(self.root, d + 'memory.stat', 'anon 1024\nfile 2048\ninactive_file 512\n')
        write(self.root, d + 'memory.events', 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n')
        write(self.root, d + 'pids.current', '3\n')
        write(self.root, d + 'pids.max', '20\n')
        write(self.root, d + 'io.stat', '8:16 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 '
                                        'dios=0\n')
        self.cg = cgroups.locate(CG_PATH, root=self.root)

    def test_cpu_in_nanoseconds(self):
        s = cgroups.read_stats(self.cg)['cpu_stats']
        self.assertEqual(5000000, s['cpu_usage']['total_usage'])
        self.assertEqual(3000000, s['cpu_usage']['usage_in_usermode'])
        self.assertEqual(2000000, s['cpu_usage']['usage_in_kernelmode'])
        self.assertEqual([], s['cpu_usage']['percpu_usage'])
        self.assertEqual({'periods': 6, 'throttled_periods': 1, 'throttled_time': 70000},
                         s['throttling_data'])

    def test_memory(self):
        m = cgroups.read_stats(self.cg, machine_memory=1 << 30)['memory_stats']
        self.assertEqual(4096, m['usage'])
        self.assertEqual(1 << 30, m['limit'])   # "max": the machine's memory
        self.assertEqual(2, m['failcnt'])       # memory.events oom, as Docker reports
        self.assertEqual(512, m['stats']['inactive_file'])
        self.assertEqual(1024, m['stats']['anon'])

    def test_memory_limit(self):
        write(self.root, 'sys/fs/cgroup' + CG_PATH + '/memory.max', '16777216\n')
        m = cgroups.read_stats(self.cg, machine_memory=1 << 30)['memory_stats']
        self.assertEqual(16777216, m['limit'])

    def test_pids_and_io(self):
        s = cgroups.read_stats(self.cg)
        self.assertEqual({'current': 3, 'limit': 20}, s['pids_stats'])
        self.assertEqual([{'major': 8, 'minor': 16, 'op': 'read', 'value': 100},
                          {'major': 8, 'minor': 16, 'op': 'write', 'value': 200}],
                         s['blkio_stats']['io_service_bytes_recursive'])
        self.assertIsNone(s['blkio_stats']['io_serviced_recursive'])

    def test_oom_kills(self):
        self.assertEqual(1, cgroups.oom_kills(self.cg))


class ProcTest(FakeTreeTest):

    def test_system_cpu_usage_sums_seven_fields(self):
        write(self.root, 'proc/stat', 'cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1\n')
        ticks = os.sysconf('SC_CLK_TCK')
        self.assertEqual(28 * 10 ** 9 // ticks, cgroups.system_cpu_usage(self.root))

    def test_net_dev(self):
        write(self.root, 'proc/9/net/dev',
              'Inter-|   Receive                            |  Transmit\n'
              ' face |bytes    packets errs drop fifo frame compressed multicast|bytes ...\n'
              '    lo:     100       2    0    0    0     0          0         0      100'
              '       2    0    0    0     0       0          0\n'
              '  eth0:    5000      10    1    2    0     0          0         0     6000'
              '      12    3    4    0     0       0          0\n')
        nets = cgroups.net_dev(9, self.root)
        self.assertEqual({'rx_bytes': 5000, 'rx_packets': 10, 'rx_errors': 1, 'rx_dropped': 2,
                          'tx_bytes': 6000, 'tx_packets': 12, 'tx_errors': 3,
                          'tx_dropped': 4}, nets['eth0'])
        self.assertEqual(100, nets['lo']['rx_bytes'])

    def test_net_dev_of_a_gone_process(self):
        self.assertEqual({}, cgroups.net_dev(12345, self.root))


class RuncPathsTest(unittest.TestCase):

    def test_v1_and_hybrid(self):
        cg = cgroups.from_runc_paths({'': '/sys/fs/cgroup/unified/p/c',
                                      'memory': '/sys/fs/cgroup/memory/p/c',
                                      'pids': '/sys/fs/cgroup/pids/p/c',
                                      'devices': '/sys/fs/cgroup/devices/p/c'})
        self.assertEqual(cgroups.V1, cg.version)
        self.assertEqual({'memory': '/sys/fs/cgroup/memory/p/c',
                          'pids': '/sys/fs/cgroup/pids/p/c'}, cg.dirs)

    def test_v2(self):
        cg = cgroups.from_runc_paths({'': '/sys/fs/cgroup/p/c'})
        self.assertEqual((cgroups.V2, {'': '/sys/fs/cgroup/p/c'}), (cg.version, cg.dirs))

    def test_hostile_or_empty(self):
        self.assertIsNone(cgroups.from_runc_paths(None))
        self.assertIsNone(cgroups.from_runc_paths({'memory': '/etc'}))
        self.assertIsNone(cgroups.from_runc_paths({}))
