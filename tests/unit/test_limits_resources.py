"""engine.resources: Docker's limit validation, defaults and the OCI mapping."""

import os
import resource
import tempfile
import unittest

import ddt

from engine import errors
from engine import resources as res

MB = 1024 * 1024


def v1_host(**kw):
    opts = dict(version='1', memory_limit=True, swap_limit=True, memory_reservation=True,
                oom_kill_disable=True, memory_swappiness=True, cpu_shares=True, cpu_cfs=True,
                cpu_realtime=True, cpuset=True, cpus='0-1', mems='0', blkio_weight=True,
                pids_limit=True, ncpu=2)
    opts.update(kw)
    return res.HostInfo(**opts)


def v2_host(**kw):
    opts = dict(version='2', memory_limit=True, swap_limit=True, memory_reservation=True,
                cpu_shares=True, cpu_cfs=True, cpuset=True, cpus='0-3', mems='0',
                blkio_weight=True, pids_limit=True, ncpu=4)
    opts.update(kw)
    return res.HostInfo(**opts)


def create(host, info=None):
    host = dict(host)
    warnings = res.validate_create(host, info or v1_host())
    return host, warnings


@ddt.ddt
class ValidateCreateTest(unittest.TestCase):

    @ddt.data(
        ({'Memory': 1 * MB}, 'Minimum memory limit allowed is 6MB'),
        ({'Memory': 100 * MB, 'MemorySwap': 10 * MB},
         'Minimum memoryswap limit should be larger than memory limit'),
        ({'MemorySwap': 100 * MB}, 'You should always set the Memory limit when using '
                                   'Memoryswap limit'),
        ({'MemorySwappiness': 101}, 'Invalid value: 101, valid memory swappiness range is 0-100'),
        ({'MemoryReservation': 1 * MB}, 'Minimum memory reservation allowed is 6MB'),
        ({'Memory': 10 * MB, 'MemoryReservation': 20 * MB},
         'Minimum memory limit can not be less than memory reservation limit'),
        ({'KernelMemory': 10 * MB}, 'HostConfig.KernelMemory is not supported'),
        ({'NanoCpus': 10 ** 9, 'CpuPeriod': 100000},
         'Conflicting options: Nano CPUs and CPU Period cannot both be set'),
        ({'NanoCpus': 10 ** 9, 'CpuQuota': 50000},
         'Conflicting options: Nano CPUs and CPU Quota cannot both be set'),
        ({'NanoCpus': 3 * 10 ** 9},
         'Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available'),
        ({'NanoCpus': -1}, 'Range of CPUs is from 0.01 to 2.00'),
        ({'CpuShares': -5}, 'CPU shares can not be negative'),
        ({'CpuShares': 1}, 'the minimum allowed cpu-shares is 2'),
        ({'CpuShares': 262145}, 'the maximum allowed cpu-shares is 262144'),
        ({'CpuPeriod': 999}, 'CPU cfs period can not be less than 1ms'),
        ({'CpuPeriod': 1000001}, 'CPU cfs period can not be less than 1ms'),
        ({'CpuQuota': 999}, 'CPU cfs quota can not be less than 1ms (i.e. 1000)'),
        ({'CpuQuota': -2}, 'Invalid CpuQuota -2'),
        ({'Memory': 16 * MB, 'MemorySwap': -2}, 'Invalid MemorySwap -2'),
        ({'CpuRealtimeRuntime': 950000}, 'HostConfig.CpuRealtimeRuntime'),
        ({'CpusetCpus': '5'}, 'Requested CPUs are not available - requested 5, available: 0-1'),
        ({'CpusetCpus': '0-2'}, 'Requested CPUs are not available - requested 0-2, '
                                'available: 0-1'),
        ({'CpusetCpus': 'abc'}, 'Invalid value abc for cpuset cpus: invalid format: abc'),
        ({'CpusetMems': '3'}, 'Requested memory nodes are not available - requested 3, '
                              'available: 0'),
        ({'BlkioWeight': 5}, 'Range of blkio weight is from 10 to 1000'),
        ({'BlkioWeight': 1001}, 'Range of blkio weight is from 10 to 1000'),
        ({'IOMaximumIOps': 5}, 'Invalid QoS settings'),
        ({'ShmSize': -1}, 'SHM size can not be less than 0'),
        ({'OomScoreAdj': 1001}, 'Invalid value 1001, range for oom score adj is [-1000, 1000]'),
        ({'Ulimits': [{'Name': 'foo', 'Soft': 1, 'Hard': 2}]}, 'invalid ulimit type: foo'),
        ({'Ulimits': [{'Name': 'nofile', 'Soft': 10, 'Hard': 2}]},
         'ulimit soft limit must be less than or equal to hard limit: 10 > 2'),
        ({'Ulimits': [{'Name': 'nofile', 'Soft': -2, 'Hard': 2}]}, 'invalid ulimit soft value'),
        ({'Ulimits': ['nofile=1']}, 'Ulimits entries must be objects'),
        ({'Memory': 2 ** 63}, 'HostConfig.Memory is out of range'),
        ({'Memory': '1g'}, 'HostConfig.Memory must be an integer'),
    )
    @ddt.unpack
    def test_rejects(self, host, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            create(host)
        self.assertIn(message, str(ctx.exception))

    def test_defaults_as_docker_adapts_them(self):
        host, warnings = create({'Memory': 16 * MB, 'PidsLimit': 0, 'MemorySwappiness': -1})
        self.assertEqual([], warnings)
        self.assertEqual(32 * MB, host['MemorySwap'])       # twice the memory
        self.assertEqual(64 * MB, host['ShmSize'])
        self.assertIs(False, host['OomKillDisable'])
        self.assertIsNone(host['PidsLimit'])                 # 0 means unlimited
        self.assertIsNone(host['MemorySwappiness'])          # -1 means unset
        self.assertEqual(0, host['NanoCpus'])
        self.assertEqual('', host['CpusetCpus'])

    @ddt.data(-1, 0)
    def test_pids_unlimited(self, value):
        host, _ = create({'PidsLimit': value})
        self.assertIsNone(host['PidsLimit'])

    def test_swap_unlimited_is_kept(self):
        host, _ = create({'Memory': 16 * MB, 'MemorySwap': -1})
        self.assertEqual(-1, host['MemorySwap'])
        self.assertNotIn('swap', res.oci_resources(host)['memory'])

    def test_blkio_weight_discarded_where_the_kernel_lacks_it(self):
        # Docker discards before it checks the range: no error, a warning.
        host, warnings = create({'BlkioWeight': 5}, v1_host(blkio_weight=False))
        self.assertEqual(0, host['BlkioWeight'])
        self.assertEqual(['Your kernel does not support Block I/O weight or the cgroup is not '
                          'mounted. Weight discarded.'], warnings)

    def test_oom_kill_disable_without_memory_warns(self):
        host, warnings = create({'OomKillDisable': True})
        self.assertTrue(host['OomKillDisable'])
        self.assertIn('OOM killer is disabled for the container, but no memory limit is set',
                      warnings[0])

    def test_v2_discards_swappiness_and_oom_kill_disable(self):
        host, warnings = create({'MemorySwappiness': 10, 'OomKillDisable': True,
                                 'Memory': 16 * MB}, v2_host())
        self.assertIsNone(host['MemorySwappiness'])
        self.assertIs(False, host['OomKillDisable'])
        self.assertEqual(2, len(warnings))
        self.assertIn('memory swappiness', warnings[0])
        self.assertIn('OomKillDisable discarded', warnings[1])
        self.assertNotIn('disableOOMKiller', res.oci_resources(host, v2_host())['memory'])

    def test_v2_allows_any_positive_shares(self):
        host, _ = create({'CpuShares': 1}, v2_host())
        self.assertEqual({'shares': 1}, res.oci_resources(host)['cpu'])

    def test_no_swap_accounting(self):
        host, warnings = create({'Memory': 16 * MB}, v1_host(swap_limit=False))
        self.assertEqual(-1, host['MemorySwap'])
        self.assertIn('Memory limited without swap', warnings[0])

    def test_no_memory_controller(self):
        host, warnings = create({'Memory': 16 * MB}, v1_host(memory_limit=False))
        self.assertEqual(0, host['Memory'])
        self.assertIn('does not support memory limit capabilities', warnings[0])

    def test_cpu_percent_discarded(self):
        host, warnings = create({'CpuPercent': 50})
        self.assertEqual(0, host['CpuPercent'])
        self.assertEqual(['linux does not support CPU percent. Percent discarded.'], warnings)

    def test_oom_score_adj_floor_without_cap_sys_resource(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            create({'OomScoreAdj': -500}, v1_host(oom_score_adj_floor=0))
        self.assertIn('CAP_SYS_RESOURCE', str(ctx.exception))
        host, _ = create({'OomScoreAdj': 500}, v1_host(oom_score_adj_floor=0))
        self.assertEqual(500, host['OomScoreAdj'])

    def test_ulimit_above_engine_hard_limit(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard == resource.RLIM_INFINITY:
            self.skipTest('no hard nofile limit here')
        with self.assertRaises(errors.InvalidArgument) as ctx:
            create({'Ulimits': [{'Name': 'nofile', 'Soft': 1, 'Hard': hard + 1}]},
                   v1_host(can_raise_rlimits=False))
        self.assertIn('lacks CAP_SYS_RESOURCE', str(ctx.exception))

    def test_ulimit_duplicates_last_wins(self):
        host, _ = create({'Ulimits': [{'Name': 'nproc', 'Soft': 1, 'Hard': 2},
                                      {'Name': 'nproc', 'Soft': 3, 'Hard': 4}]})
        self.assertEqual([{'Name': 'nproc', 'Soft': 3, 'Hard': 4}], host['Ulimits'])


@ddt.ddt
class OciMappingTest(unittest.TestCase):

    def test_full_mapping(self):
        host, _ = create({'Memory': 16 * MB, 'MemoryReservation': 8 * MB,
                          'MemorySwappiness': 30, 'OomKillDisable': True, 'CpuShares': 512,
                          'NanoCpus': 1500000000, 'CpusetCpus': '1', 'CpusetMems': '0',
                          'PidsLimit': 20, 'BlkioWeight': 300})
        self.assertEqual({
            'memory': {'limit': 16 * MB, 'reservation': 8 * MB, 'swap': 32 * MB,
                       'swappiness': 30, 'disableOOMKiller': True},
            'cpu': {'shares': 512, 'period': 100000, 'quota': 150000, 'cpus': '1', 'mems': '0'},
            'pids': {'limit': 20},
            'blockIO': {'weight': 300},
        }, res.oci_resources(host, v1_host()))

    def test_quota_and_period(self):
        host, _ = create({'CpuQuota': 50000, 'CpuPeriod': 200000})
        self.assertEqual({'period': 200000, 'quota': 50000}, res.oci_resources(host)['cpu'])

    def test_nothing_set_gives_no_limits(self):
        host, _ = create({})
        self.assertEqual({'memory': {'disableOOMKiller': False}},
                         res.oci_resources(host, v1_host()))

    def test_rlimits(self):
        self.assertEqual([{'type': 'RLIMIT_NOFILE', 'soft': 1024, 'hard': 1024}],
                         res.rlimits({}, 1024))
        got = res.rlimits({'Ulimits': [{'Name': 'nofile', 'Soft': 100, 'Hard': 200},
                                       {'Name': 'core', 'Soft': -1, 'Hard': -1}]}, 1024)
        self.assertEqual([{'type': 'RLIMIT_NOFILE', 'soft': 100, 'hard': 200},
                          {'type': 'RLIMIT_CORE', 'soft': 2 ** 64 - 1, 'hard': 2 ** 64 - 1}],
                         got)

    @ddt.data(('0-2,5', {0, 1, 2, 5}), ('', set()), ('3', {3}))
    @ddt.unpack
    def test_parse_list(self, text, expected):
        self.assertEqual(expected, res.parse_list(text))

    @ddt.data('1-', 'a', '2-1', '1,,2')
    def test_parse_list_rejects(self, text):
        with self.assertRaises(ValueError):
            res.parse_list(text)


@ddt.ddt
class ValidateUpdateTest(unittest.TestCase):

    def setUp(self):
        self.current, _ = create({'Memory': 16 * MB, 'NanoCpus': 10 ** 9, 'PidsLimit': 20,
                                  'RestartPolicy': {'Name': 'no'}})

    def update(self, body, current=None):
        return res.validate_update(body, current or self.current, v1_host())

    def test_memory_below_swap(self):
        new, oci, warnings = self.update({'Memory': 24 * MB})
        self.assertEqual(24 * MB, new['Memory'])
        self.assertEqual(32 * MB, new['MemorySwap'])          # unchanged
        self.assertEqual({'memory': {'limit': 24 * MB}}, oci)
        self.assertEqual([], warnings)
        self.assertEqual(16 * MB, self.current['Memory'])      # the input is not changed

    def test_memory_above_swap_needs_swap(self):
        with self.assertRaises(errors.Conflict) as ctx:
            self.update({'Memory': 64 * MB})
        self.assertIn('Memory limit should be smaller than already set memoryswap limit',
                      str(ctx.exception))
        new, oci, _ = self.update({'Memory': 64 * MB, 'MemorySwap': 128 * MB})
        self.assertEqual({'limit': 64 * MB, 'swap': 128 * MB}, oci['memory'])

    def test_memory_on_a_container_without_limits_needs_swap(self):
        current, _ = create({})
        with self.assertRaises(errors.Conflict):
            self.update({'Memory': 64 * MB}, current)

    def test_unlimited_swap_is_applied(self):
        new, oci, _ = self.update({'MemorySwap': -1})
        self.assertEqual(-1, new['MemorySwap'])
        self.assertEqual({'memory': {'swap': -1}}, oci)

    @ddt.data(({'CpuQuota': 50000}, 'CPU Quota cannot be updated as NanoCPUs has already '
                                    'been set'),
              ({'CpuPeriod': 50000}, 'CPU Period cannot be updated as NanoCPUs'))
    @ddt.unpack
    def test_cfs_conflicts(self, body, message):
        with self.assertRaises(errors.Conflict) as ctx:
            self.update(body)
        self.assertIn('Conflicting options: ' + message, str(ctx.exception))

    def test_nano_cpus_after_quota(self):
        current, _ = create({'CpuQuota': 50000})
        with self.assertRaises(errors.Conflict) as ctx:
            self.update({'NanoCpus': 10 ** 9}, current)
        self.assertIn('Nano CPUs cannot be updated as CPU Quota has already been set',
                      str(ctx.exception))

    @ddt.data(0, -1)
    def test_pids_unlimited(self, value):
        new, oci, _ = self.update({'PidsLimit': value})
        self.assertEqual(0, new['PidsLimit'])
        self.assertEqual({'pids': {'limit': -1}}, oci)

    def test_zero_fields_change_nothing(self):
        # what the docker CLI sends for `docker update --cpus 1.5`
        body = {k: 0 for k in ('CpuShares', 'Memory', 'CpuPeriod', 'CpuQuota',
                               'MemoryReservation', 'MemorySwap', 'KernelMemory',
                               'BlkioWeight', 'CpuCount', 'CpuPercent')}
        body.update(NanoCpus=1500000000, CpusetCpus='', Ulimits=None, PidsLimit=None,
                    OomKillDisable=None, MemorySwappiness=None)
        new, oci, _ = self.update(body)
        self.assertEqual(1500000000, new['NanoCpus'])
        self.assertEqual(16 * MB, new['Memory'])
        self.assertEqual(20, new['PidsLimit'])
        self.assertEqual({'cpu': {'period': 100000, 'quota': 150000}}, oci)

    @ddt.data(({'Memory': 1 * MB}, 'Minimum memory limit allowed is 6MB'),
              ({'CpusetCpus': '7'}, 'Requested CPUs are not available'),
              ({'KernelMemory': 8 * MB}, 'KernelMemory is not supported'),
              ({'MemoryReservation': 20 * MB}, 'Minimum memory limit can not be less than '
                                               'memory reservation'),
              ({'Ulimits': [{'Name': 'nofile', 'Soft': 1, 'Hard': 1}]},
               'HostConfig.Ulimits cannot be changed by an update'),
              ({'OomKillDisable': True}, 'HostConfig.OomKillDisable cannot be changed'))
    @ddt.unpack
    def test_rejects(self, body, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            self.update(body)
        self.assertIn(message, str(ctx.exception))


class ProbeTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.root = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, rel, text=''):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)

    def test_hybrid_host_like_ours(self):
        lines = []
        for i, ctrl in enumerate(('cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio')):
            lines.append('%d 25 0:%d / /sys/fs/cgroup/%s rw - cgroup cgroup rw,%s'
                         % (30 + i, 30 + i, ctrl, ctrl))
        lines.append('40 25 0:40 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw')
        self.write('proc/self/mountinfo', '\n'.join(lines) + '\n')
        self.write('proc/self/status', 'CapEff:\t000001fffeffffff\n')
        self.write('proc/self/oom_score_adj', '0\n')
        for f in ('memory.memsw.limit_in_bytes', 'memory.soft_limit_in_bytes',
                  'memory.oom_control', 'memory.swappiness'):
            self.write('sys/fs/cgroup/memory/' + f)
        for f in ('cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us'):
            self.write('sys/fs/cgroup/cpu/' + f)
        self.write('sys/fs/cgroup/cpuset/cpuset.cpus', '0-1\n')
        self.write('sys/fs/cgroup/cpuset/cpuset.mems', '0\n')
        self.write('sys/fs/cgroup/blkio/blkio.throttle.io_service_bytes')
        info = res.HostInfo.probe(root=self.root)
        self.assertEqual({'MemoryLimit': True, 'SwapLimit': True, 'KernelMemory': False,
                          'KernelMemoryTCP': False, 'CpuCfsPeriod': True, 'CpuCfsQuota': True,
                          'CPUShares': True, 'CPUSet': True, 'PidsLimit': True,
                          'OomKillDisable': True, 'CgroupVersion': '1'}, info.info_fields())
        self.assertEqual('0-1', info.cpus)
        self.assertFalse(info.blkio_weight)
        self.assertFalse(info.can_raise_rlimits)        # no CAP_SYS_RESOURCE (bit 24)
        self.assertEqual(0, info.oom_score_adj_floor)
        self.assertEqual(['WARNING: No blkio weight support'], info.info_warnings())

    def test_unified_host(self):
        self.write('proc/self/mountinfo',
                   '25 30 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n')
        self.write('proc/self/status', 'CapEff:\t000001ffffffffff\n')
        self.write('sys/fs/cgroup/cgroup.controllers', 'cpuset cpu io memory pids\n')
        self.write('sys/fs/cgroup/cpuset.cpus.effective', '0-3\n')
        self.write('sys/fs/cgroup/cpuset.mems.effective', '0\n')
        info = res.HostInfo.probe(root=self.root)
        fields = info.info_fields()
        self.assertEqual('2', fields['CgroupVersion'])
        self.assertTrue(fields['SwapLimit'] and fields['CPUSet'] and fields['PidsLimit'])
        self.assertFalse(fields['OomKillDisable'])
        self.assertFalse(info.memory_swappiness)
        self.assertTrue(info.blkio_weight)
        self.assertEqual('0-3', info.cpus)
        self.assertTrue(info.can_raise_rlimits)
        self.assertEqual([], info.info_warnings())

    def test_unified_host_without_controllers(self):
        self.write('proc/self/mountinfo',
                   '25 30 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n')
        self.write('sys/fs/cgroup/cgroup.controllers', '\n')
        info = res.HostInfo.probe(root=self.root)
        self.assertIn('WARNING: No memory limit support', info.info_warnings())
        self.assertIn('WARNING: No io.weight support', info.info_warnings())
        host, warnings = create({'Memory': 16 * MB, 'PidsLimit': 5}, info)
        self.assertEqual(0, host['Memory'])
        self.assertIsNone(host['PidsLimit'])
        self.assertEqual(2, len(warnings))
