"""Stacks of the plugin's resources run by real Heat on a real engine.

``RealEngineStackTestCase`` drives heat.engine.service.EngineService with the
convergence engine on, as heat's own ScenarioTest does
(heat/tests/convergence/test_converge.py): the worker's check_resource calls
go through the harness's message queues and run synchronously in the test
thread when ``event_loop()`` drains them.  The plugin's resource types are
registered from heat_plugin.resources (what the plugin_dirs shim exports), and
the default engine URL points at the test engine, so templates carry no
``docker_endpoint``, as an operator's would not.
"""

from oslo_config import cfg

from heat.common import context
from heat.db import api as db_api
from heat.engine import resources
from heat.engine import service
from heat.engine import stack as stack_mod
from heat.tests.convergence.framework import engine_wrapper
from heat.tests.convergence.framework import processes
from heat.tests import utils

from heat_plugin import client as plugin_client
from heat_plugin import resources as plugin_resources
from tests.integration.heat import base
from tests.integration.heat import realengine


class RealEngineStackTestCase(base.HeatTestCase):

    def setUp(self):
        super().setUp()
        self.engine = realengine.engine()
        self.patchobject(context, 'StoredContext')
        for name, cls in plugin_resources.resource_mapping().items():
            resources.global_env().register_class(name, cls)
        # As an operator would: [novadocker] engine_url in heat.conf
        # (setUp's cfg.CONF.reset cleanup drops the override).
        cfg.CONF.set_override('engine_url', self.engine.url,
                              group=plugin_client.GROUP)
        self.procs = processes.Processes()
        self.procs.clear()
        po = self.patch('heat.rpc.worker_client.WorkerClient.check_resource')
        po.side_effect = self.procs.worker.check_resource
        cfg.CONF.set_default('convergence_engine', True)
        self.ctx = utils.dummy_context()
        self._stacks = []
        # Whatever a test leaves (a failure half way), Heat deletes.
        self.addCleanup(self._delete_leftover_stacks)

    # -- EngineService calls, run to the end ---------------------------------

    def _service(self):
        srv = service.EngineService('host', 'engine')
        srv.thread_group_mgr = engine_wrapper.SynchronousThreadGroupManager()
        srv.worker_service = self.procs.worker
        return srv

    def _identity(self, name):
        db_stack = db_api.stack_get_by_name(self.ctx, name)
        return {'stack_name': name, 'stack_id': db_stack.id,
                'tenant': db_stack.tenant, 'path': ''}

    def create_stack(self, name, template, params=None):
        self._stacks.append(name)
        self._service().create_stack(
            utils.dummy_context(), name, template, params=params or {},
            files={}, environment_files=None, args={})
        self.procs.event_loop()
        return self.db_stack(name)

    def update_stack(self, name, template, params=None):
        self._service().update_stack(
            utils.dummy_context(), self._identity(name), template,
            params=params or {}, files={}, environment_files=None, args={})
        self.procs.event_loop()
        return self.db_stack(name)

    def delete_stack(self, name):
        self._service().delete_stack(utils.dummy_context(),
                                     self._identity(name))
        self.procs.event_loop()
        return self.db_stack(name)

    def suspend_stack(self, name):
        self._service().stack_suspend(utils.dummy_context(),
                                      self._identity(name))
        self.procs.event_loop()
        return self.db_stack(name)

    def resume_stack(self, name):
        self._service().stack_resume(utils.dummy_context(),
                                     self._identity(name))
        self.procs.event_loop()
        return self.db_stack(name)

    def outputs(self, name):
        """The stack's outputs as the API shows them (show_stack)."""
        [shown] = self._service().show_stack(
            utils.dummy_context(), self._identity(name), resolve_outputs=True)
        return {o['output_key']: o.get('output_value', o.get('output_error'))
                for o in shown.get('outputs') or ()}

    def db_stack(self, name):
        return db_api.stack_get_by_name(self.ctx, name)

    def load_stack(self, name):
        return stack_mod.Stack.load(self.ctx, stack=self.db_stack(name))

    def assertState(self, expected, db_stack):
        self.assertIsNotNone(db_stack)
        self.assertEqual(expected, (db_stack.action, db_stack.status),
                         db_stack.status_reason)

    def _delete_leftover_stacks(self):
        for name in self._stacks:
            try:
                if self.db_stack(name) is not None:
                    self.delete_stack(name)
            except Exception:
                pass
