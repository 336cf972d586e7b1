"""The nova benchmark's own parts: the Glance stand-in counts what really
crossed the wire (chunked and sized uploads), and the table rows give the
issue's verdicts from the results. (The measurements themselves run with
``benchmarks/run.py --sections nova``.)"""

import io
import unittest

import requests

from benchmarks import nova_bench
from benchmarks import run


class GlanceSinkTest(unittest.TestCase):
    def setUp(self):
        self.sink = nova_bench.GlanceSink()
        self.addCleanup(self.sink.stop)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    def test_counts_a_chunked_stream_and_a_sized_body(self):
        data = bytes(range(256)) * 4096          # 1 MiB
        chunks = (data[i:i + 70000] for i in range(0, len(data), 70000))
        resp = self.session.put(self.sink.url + '/v2/images/x/file', data=chunks, timeout=30)
        self.assertEqual({'received': len(data)}, resp.json())
        # On the wire: the data plus chunk framing and request headers.
        self.assertGreater(self.sink.proxy.upload_bytes, len(data))
        self.assertLess(self.sink.proxy.upload_bytes, len(data) + 4096)

        self.sink.proxy.reset()
        api = nova_bench.GlanceStandIn(self.sink, self.session)
        image = api.update(None, 'img', {'container_format': 'docker',
                                         'properties': {'k': 'v'}},
                           data=io.BytesIO(b'{"pointer": 1}'))
        self.assertEqual(('active', 'docker', {'k': 'v'}),
                         (image['status'], image['container_format'], image['properties']))
        self.assertEqual([len(data), 14], self.sink.server.received)
        self.assertGreater(self.sink.proxy.upload_bytes, 14)


def _results(spawn_median, ours, docker):
    return {'settings': {'sections': ['nova']}, 'benchmarks': {
        'nova_spawn_running': {'results': {'novadocker': {
            'median': spawn_median, 'p90': spawn_median * 1.5,
            'destroy_s': {'median': 0.02}, 'steps_median_s': {'start': 0.04}}}},
        'nova_snapshot': {'results': {
            'novadocker': {'time_s': {'median': ours[0]}, 'bytes_sent': {'median': ours[1]}},
            'docker': {'time_s': {'median': docker[0]}, 'bytes_sent': {'median': docker[1]}}}}}}


class RowsTest(unittest.TestCase):
    def verdicts(self, results):
        return {label.split(' [')[0]: (tgt, ver) for label, _, _, _, tgt, ver
                in run.rows(results) if tgt}

    def test_targets_met(self):
        v = self.verdicts(_results(0.06, (0.05, 5e6), (0.5, 6e7)))
        self.assertEqual({
            'Nova spawn to RUNNING, image cached (median, s)': ('<= 0.100 s', 'met'),
            'Nova snapshot, 5 MiB change on 50 MiB: bytes sent (median, B)': ('<= 0.20x', 'met'),
            'Nova snapshot, 5 MiB change on 50 MiB: time (median, s)': ('<= 0.20x', 'met'),
        }, v)

    def test_targets_missed(self):
        v = self.verdicts(_results(0.2, (0.3, 2e7), (0.5, 6e7)))
        self.assertEqual({'missed'}, {ver for _, ver in v.values()})

    def test_without_the_docker_side_the_ratios_are_not_judged(self):
        results = _results(0.06, (0.3, 5e6), (0.5, 6e7))
        del results['benchmarks']['nova_snapshot']['results']['docker']
        v = self.verdicts(results)
        self.assertEqual('n/a', v['Nova snapshot, 5 MiB change on 50 MiB: time (median, s)'][1])
        self.assertFalse([r for r in run.rows(results) if 'modelled' in r[0]])
