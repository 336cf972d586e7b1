"""Smoke tests on real Heat 27: a resource plugin of ours registered two
ways (global environment; plugin_dirs as heat-engine does), a template
parsed and validated with it, and a stack created and deleted in-process
through EngineService with the convergence harness.
"""

import os
import pathlib

from oslo_config import cfg

from heat.common import context
from heat.db import api as db_api
from heat.engine import environment
from heat.engine import resources
from heat.engine import stack as stack_mod
from heat.tests.convergence.framework import engine_wrapper
from heat.tests.convergence.framework import processes
from heat.tests import utils

from tests.integration.heat import base

PLUGIN_DIR = str(pathlib.Path(__file__).parent / 'plugins')
TYPE = 'NovaDocker::Test::LocalFile'


def template(path, content='hello'):
    return {
        'heat_template_version': '2021-04-16',
        'resources': {
            'f': {'type': TYPE,
                  'properties': {'path': path, 'content': content}},
        },
        'outputs': {'size': {'value': {'get_attr': ['f', 'size']}}},
    }


def _plugin_class():
    # Imported the way heat-engine does it (plugin_dirs), into a fresh
    # environment, so the global one is untouched.
    cfg.CONF.set_override('plugin_dirs', [PLUGIN_DIR])
    env = environment.Environment({}, user_env=False)
    resources._load_global_resources(env)
    return env.get_class(TYPE)


class TestHeatTestCaseInVenv(base.HeatTestCase):

    def test_environment_d_and_templates_found(self):
        self.assertTrue(os.path.isdir(base.ENV_DIR), base.ENV_DIR)
        env = resources.global_env()
        # Only environment.d/default.yaml maps "OS::Quantum*" to
        # "OS::Neutron*": with HeatTestCase's own (site-packages) directory
        # this lookup finds nothing.
        self.assertEqual('Net', env.get_class('OS::Quantum::Net').__name__)
        rds = env.get_resource_info(
            'AWS::RDS::DBInstance',
            registry_type=environment.TemplateResourceInfo)
        self.assertTrue(os.path.exists(rds.template_name[len('file://'):]),
                        rds.template_name)

    def test_plugin_dirs_loading(self):
        cls = _plugin_class()
        self.assertEqual('heat.engine.plugins.file_resource', cls.__module__)
        self.assertEqual('LocalFile', cls.__name__)

    def test_template_with_registered_plugin_validates(self):
        resources.global_env().register_class(TYPE, _plugin_class())
        stk = utils.parse_stack(template('/tmp/whatever'))
        stk.validate()
        self.assertEqual('LocalFile', type(stk['f']).__name__)
        bad = utils.parse_stack(template('relative/path'))
        err = self.assertRaises(Exception, bad.validate)
        self.assertIn('path must be absolute', str(err))


class _HotEngine(engine_wrapper.Engine):
    """The convergence harness's engine wrapper builds templates from its
    scenario DSL with type OS::Heat::TestResource only; pass a HOT dict
    straight through instead."""

    def scenario_template_to_hot(self, scenario_tmpl):
        if isinstance(scenario_tmpl, dict):
            return scenario_tmpl
        return super().scenario_template_to_hot(scenario_tmpl)


class TestStackInProcess(base.HeatTestCase):
    """EngineService.create_stack/delete_stack, convergence engine on, the
    worker's check_resource delivered through the harness's message queues
    and run synchronously by its event loop (as heat's ScenarioTest does,
    heat/tests/convergence/test_converge.py)."""

    def setUp(self):
        super().setUp()
        self.patchobject(context, 'StoredContext')
        resources.global_env().register_class(TYPE, _plugin_class())
        self.procs = processes.Processes()
        self.procs.engine = _HotEngine(self.procs.worker)
        self.procs.event_loop.processors = (self.procs.engine,
                                            self.procs.worker)
        self.procs.clear()
        po = self.patch(
            'heat.rpc.worker_client.WorkerClient.check_resource')
        po.side_effect = self.procs.worker.check_resource
        cfg.CONF.set_default('convergence_engine', True)
        self.ctx = utils.dummy_context()

    def _stack(self, name):
        return db_api.stack_get_by_name(self.ctx, name)

    def test_create_and_delete(self):
        path = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'out.txt')
        self.procs.engine.create_stack('smoke', template(path, 'hi there'))
        self.procs.event_loop()
        db_stack = self._stack('smoke')
        self.assertEqual(('CREATE', 'COMPLETE'),
                         (db_stack.action, db_stack.status),
                         db_stack.status_reason)
        with open(path) as f:
            self.assertEqual('hi there', f.read())
        stk = stack_mod.Stack.load(self.ctx, stack=db_stack)
        self.assertEqual(path, stk['f'].resource_id)
        self.assertEqual(8, stk['f'].FnGetAtt('size'))

        self.procs.engine.delete_stack('smoke')
        self.procs.event_loop()
        self.assertIsNone(self._stack('smoke'))
        self.assertFalse(os.path.exists(path))

    def test_failed_create_has_readable_reason(self):
        # 'x' mode: an existing file makes handle_create fail.
        path = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'exists.txt')
        open(path, 'w').close()
        self.procs.engine.create_stack('broken', template(path))
        self.procs.event_loop()
        db_stack = self._stack('broken')
        self.assertEqual(('CREATE', 'FAILED'),
                         (db_stack.action, db_stack.status))
        self.assertIn('File exists', db_stack.status_reason)
