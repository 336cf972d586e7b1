"""TaskService.exit_status reports an OOM kill from the cgroup when conmon
left no ``oom`` file."""

import json
import os
import tempfile
import unittest
from unittest import mock

from engine import cgroups
from engine.runtime import monitor

CID = 'a' * 64


class OomFallbackTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.root = self._tmp.name
        self.runtime = mock.Mock(state_root=os.path.join(self.root, 'runc'))
        self.tasks = monitor.TaskService(self.runtime, os.path.join(self.root, 'exec'))
        os.makedirs(self.tasks.task_dir(CID))
        with open(self.tasks.exit_file(CID), 'w') as f:
            f.write('137')
        self.memdir = os.path.join(self.root, 'memcg')
        os.makedirs(self.memdir)
        os.makedirs(os.path.join(self.runtime.state_root, CID))
        with open(os.path.join(self.runtime.state_root, CID, 'state.json'), 'w') as f:
            json.dump({'cgroup_paths': {'memory': '/sys/fs/cgroup/memory/x/' + CID}}, f)

    def tearDown(self):
        self._tmp.cleanup()

    def oom_control(self, kills):
        with open(os.path.join(self.memdir, 'memory.oom_control'), 'w') as f:
            f.write('oom_kill_disable 0\nunder_oom 0\noom_kill %d\n' % kills)

    def status(self):
        real = cgroups.Cgroup.path

        def redirect(cg, controller, name):
            return os.path.join(self.memdir, name) if controller == 'memory' else \
                real(cg, controller, name)
        with mock.patch.object(cgroups.Cgroup, 'path', redirect):
            return self.tasks.exit_status(CID)

    def test_counted_kill_is_an_oom(self):
        self.oom_control(1)
        code, _, oom = self.status()
        self.assertEqual((137, True), (code, oom))

    def test_no_kill_is_no_oom(self):
        self.oom_control(0)
        self.assertFalse(self.status()[2])

    def test_conmon_file_is_enough(self):
        open(os.path.join(self.tasks.task_dir(CID), 'oom'), 'w').close()
        self.assertTrue(self.status()[2])

    def test_corrupt_runtime_state(self):
        with open(os.path.join(self.runtime.state_root, CID, 'state.json'), 'w') as f:
            f.write('{not json')
        self.assertFalse(self.status()[2])
