"""oci.Runc pause/resume without a runc process, over a fake state dir and
fake cgroup files; and the cases that must fall back to runc itself."""

import json
import os
import shutil
import tempfile
import unittest
from unittest import mock

from engine import errors
from engine.runtime import oci

CID = 'f' * 64


class FreezerTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='freezer')
        self.addCleanup(shutil.rmtree, self.dir)
        self.cg = os.path.join(self.dir, 'cg') + '/'
        self.runc = oci.Runc(os.path.join(self.dir, 'state'))
        self.runc.cgroup_root = self.cg
        self.calls = []
        run = mock.patch.object(oci.OciRuntime, '_run',
                                side_effect=lambda args, *a, **kw: self.calls.append(args))
        run.start()
        self.addCleanup(run.stop)
        # This test's own process stands in for the container's init.
        with open('/proc/self/stat') as f:
            self.start_time = int(f.read().rsplit(')', 1)[1].split()[19])

    def state(self, paths, pid=None, start=None):
        d = os.path.join(self.dir, 'state', CID)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'state.json'), 'w') as f:
            json.dump({'init_process_pid': pid or os.getpid(),
                       'init_process_start': start or self.start_time,
                       'cgroup_paths': paths}, f)

    def group(self, name, files):
        path = os.path.join(self.cg, name)
        os.makedirs(path, exist_ok=True)
        for fname, text in files.items():
            with open(os.path.join(path, fname), 'w') as f:
                f.write(text)
        return path

    def read(self, path, name):
        with open(os.path.join(path, name)) as f:
            return f.read()

    def test_v1_freeze_and_thaw_write_the_freezer(self):
        v1 = self.group('freezer/ctr', {'freezer.state': 'THAWED'})
        v2 = self.group('unified/ctr', {'cgroup.freeze': '0'})
        self.state({'freezer': v1, '': v2, 'memory': self.cg + 'memory/ctr'})
        self.runc.pause(CID)
        self.assertEqual('FROZEN', self.read(v1, 'freezer.state'))
        self.assertEqual('0', self.read(v2, 'cgroup.freeze'))  # hybrid: v1 only
        self.runc.resume(CID)
        self.assertEqual('THAWED', self.read(v1, 'freezer.state'))
        self.assertEqual([], self.calls)

    def test_v1_stuck_freezing_is_thawed_and_reported(self):
        v1 = self.group('freezer/ctr', {'freezer.state': 'THAWED'})
        self.state({'freezer': v1})
        self.runc.freeze_attempts = 5
        with mock.patch.object(oci, '_read_file', return_value='FREEZING\n'):
            with self.assertRaises(errors.RuntimeFailure) as ctx:
                self.runc.pause(CID)
        self.assertIn('unable to freeze', str(ctx.exception))
        self.assertEqual('THAWED', self.read(v1, 'freezer.state'))

    def test_v1_unexpected_state_is_an_error(self):
        v1 = self.group('freezer/ctr', {'freezer.state': 'THAWED'})
        self.state({'freezer': v1})
        with mock.patch.object(oci, '_read_file', return_value='SOMETHING\n'):
            with self.assertRaises(errors.RuntimeFailure):
                self.runc.pause(CID)
        self.assertEqual('THAWED', self.read(v1, 'freezer.state'))

    def test_v2_waits_for_the_frozen_event(self):
        v2 = self.group('ctr', {'cgroup.freeze': '0', 'cgroup.events': 'populated 1\nfrozen 1\n'})
        self.state({'': v2})
        self.runc.pause(CID)
        self.assertEqual('1', self.read(v2, 'cgroup.freeze'))
        self.group('ctr', {'cgroup.events': 'populated 1\nfrozen 0\n'})
        self.runc.resume(CID)
        self.assertEqual('0', self.read(v2, 'cgroup.freeze'))
        self.assertEqual([], self.calls)

    def test_v2_that_never_freezes_is_thawed_and_reported(self):
        v2 = self.group('ctr', {'cgroup.freeze': '0', 'cgroup.events': 'frozen 0\n'})
        self.state({'': v2})
        self.runc.freeze_timeout = 0.05
        with self.assertRaises(errors.RuntimeFailure) as ctx:
            self.runc.pause(CID)
        self.assertIn('did not report itself frozen', str(ctx.exception))
        self.assertEqual('0', self.read(v2, 'cgroup.freeze'))

    def test_runc_does_it_when_the_fast_path_cannot(self):
        v1 = self.group('freezer/ctr', {'freezer.state': 'THAWED'})
        cases = [
            ('no state', None),
            ('init gone', {'freezer': v1}, {'start': self.start_time + 1}),
            ('outside the cgroup root', {'freezer': '/etc'}),
            ('traversal', {'freezer': self.cg + 'freezer/../../../etc'}),
            ('v1 freezer missing', {'freezer': self.cg + 'freezer/gone',
                                    '': self.group('u', {'cgroup.freeze': '0'})}),
            ('no paths', {}),
        ]
        for case in cases:
            name, paths = case[0], case[1]
            kw = case[2] if len(case) > 2 else {}
            shutil.rmtree(os.path.join(self.dir, 'state'), ignore_errors=True)
            if paths is not None:
                self.state(paths, **kw)
            self.calls.clear()
            self.runc.pause(CID)
            self.assertEqual([['pause', CID]], self.calls, name)
            self.assertEqual('THAWED', self.read(v1, 'freezer.state'), name)
            self.calls.clear()
            self.runc.resume(CID)
            self.assertEqual([['resume', CID]], self.calls, name)

    def test_unreadable_state_falls_back(self):
        d = os.path.join(self.dir, 'state', CID)
        os.makedirs(d)
        with open(os.path.join(d, 'state.json'), 'w') as f:
            f.write('{not json')
        self.runc.pause(CID)
        self.assertEqual([['pause', CID]], self.calls)
