"""The Heat section of ``make demo``: one stack created and deleted through Heat.

tools/demo.sh runs this with the venv's python once its engine is up. Heat's
own code does the work: heat-engine's plugin loader reads the plugin from
``plugin_dirs`` (etc/heat/plugins, the shim an operator points heat.conf
at), ``[novadocker] engine_url`` names the demo's engine, and
heat.engine.service.EngineService creates, shows and deletes the stack from
etc/heat/templates/app-network.yaml with the convergence engine, its worker
run in this process by Heat's convergence test harness
(heat.tests.convergence.framework). Left out to keep it short: the API
service, RabbitMQ (Heat's fake transport), MySQL (sqlite in memory) and
Keystone (Heat's own fake keystone client, as in Heat's tests).

Each step reads its effect back from the engine or over the published port.
Any error stops the demo (exit 1) after Heat deleted what it made; the last
step shows nothing is left.
"""

import argparse
import json
import os
import socket
import sys
import sysconfig
import time
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demosteps import fail, run_section, say, step  # noqa: E402
from unittest import mock

# Heat's libraries still import eventlet, which warns that it is deprecated.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
warnings.filterwarnings('ignore', category=DeprecationWarning)

import logging  # noqa: E402

from oslo_service import backend  # noqa: E402

# Heat logs every hidden/deprecated resource type it registers as a warning:
# the demo shows errors only.
_handler = logging.StreamHandler(sys.stderr)
_handler.setLevel(logging.ERROR)
logging.getLogger().addHandler(_handler)
logging.getLogger().setLevel(logging.ERROR)

# heat-engine's service backend; must be chosen before heat is imported.
backend.init_backend(backend.BackendType.THREADING)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_DIR = os.path.join(REPO, 'etc', 'heat', 'plugins')
TEMPLATE = os.path.join(REPO, 'etc', 'heat', 'templates', 'app-network.yaml')
HEAT_ETC = os.path.join(sysconfig.get_paths()['data'], 'etc', 'heat')
STACK = 'demo-app'


def expect(what, actual, expected):
    if actual != expected:
        fail('%s: expected %r, got %r' % (what, expected, actual))
    say('ok: %s' % what)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def http_get(url, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Demo:

    def __init__(self, args):
        self.args = args
        self.patches = []

    # -- Heat, configured as heat.conf would -----------------------------

    def configure(self):
        from oslo_config import cfg

        from heat.common import config  # noqa: F401  (registers options)
        from heat.common import context
        from heat.common import messaging
        from heat.common import policy
        from heat.engine.clients.os.keystone import KeystoneClientPlugin
        from heat.engine.clients.os.keystone import fake_keystoneclient \
            as fake_ks
        from heat.tests import utils

        cfg.CONF([], project='heat', default_config_files=[])
        # heat.conf: [DEFAULT] plugin_dirs, environment/template dirs of the
        # installed heat, the convergence engine (heat's default).
        cfg.CONF.set_override('plugin_dirs', [PLUGIN_DIR])
        cfg.CONF.set_override('environment_dir',
                              os.path.join(HEAT_ETC, 'environment.d'))
        cfg.CONF.set_override('template_dir',
                              os.path.join(HEAT_ETC, 'templates'))
        cfg.CONF.set_override('convergence_engine', True)
        cfg.CONF.set_override('error_wait_time', None)
        messaging.setup('fake://', optional=True)
        utils.setup_dummy_db()
        # Keystone (Heat's fake keystone client), the stored (trust)
        # context and the resource policy check: as in Heat's own tests.
        for target, kw in (
                (mock.patch.object(KeystoneClientPlugin, '_create'),
                 {'return_value': fake_ks.FakeKeystoneClient()}),
                (mock.patch.object(context, 'StoredContext'), {}),
                (mock.patch.object(policy.ResourceEnforcer, 'enforce'), {})):
            patched = target.start()
            for key, value in kw.items():
                setattr(patched, key, value)
            self.patches.append(target)
        self.utils = utils

    def load_plugin(self):
        """As heat-engine starts: the global environment, plugin_dirs
        included, then our [novadocker] options (registered by the plugin's
        import) get their heat.conf value."""
        from oslo_config import cfg

        from heat.engine import resources
        env = resources.global_env()
        cls = env.get_class('DockerInc::Docker::Container')
        net_cls = env.get_class('DockerInc::Docker::Network')
        cfg.CONF.set_override('engine_url', self.args.engine_url,
                              group='novadocker')
        return cls, net_cls

    def service(self):
        from heat.engine import service
        from heat.tests.convergence.framework import engine_wrapper
        srv = service.EngineService('host', 'engine')
        srv.thread_group_mgr = engine_wrapper.SynchronousThreadGroupManager()
        srv.worker_service = self.procs.worker
        return srv

    def identity(self):
        from heat.db import api as db_api
        db_stack = db_api.stack_get_by_name(self.ctx, STACK)
        return {'stack_name': STACK, 'stack_id': db_stack.id,
                'tenant': db_stack.tenant, 'path': ''}

    def db_stack(self):
        from heat.db import api as db_api
        return db_api.stack_get_by_name(self.ctx, STACK)

    def engine(self, path):
        from novadocker import client
        eng = client.EngineClient(self.args.engine_url)
        try:
            return eng.get(path)
        finally:
            eng.close()

    # -- the demo -----------------------------------------------------------

    def run(self):
        step('heat-engine loads the plugin from plugin_dirs',
             '[DEFAULT] plugin_dirs = %s' % PLUGIN_DIR)
        self.configure()
        cls, net_cls = self.load_plugin()
        plugins = sys.modules.get('heat.engine.plugins')
        if getattr(plugins, 'novadocker', None) is None:
            fail('heat-engine did not import the shim from plugin_dirs')
        say('heat-engine imported heat.engine.plugins.novadocker (the shim), '
            'which registered:')
        say('DockerInc::Docker::Container -> %s.%s' % (cls.__module__,
                                                       cls.__name__))
        say('DockerInc::Docker::Network   -> %s.%s' % (net_cls.__module__,
                                                       net_cls.__name__))
        say('[novadocker] engine_url = %s' % self.args.engine_url)

        from heat.common import template_format
        from heat.tests.convergence.framework import processes
        self.procs = processes.Processes()
        self.procs.clear()
        self.patches.append(mock.patch(
            'heat.rpc.worker_client.WorkerClient.check_resource',
            side_effect=self.procs.worker.check_resource))
        self.patches[-1].start()
        self.ctx = self.utils.dummy_context()

        with open(TEMPLATE) as f:
            template = template_format.parse(f.read())
        port = free_port()
        params = {'app_port': port, 'subnet': self.args.subnet,
                  'image': self.args.image}
        step('Create the stack from etc/heat/templates/app-network.yaml',
             'EngineService.create_stack(%r, app-network.yaml, params=%s)'
             % (STACK, json.dumps(params)))
        self.created = True
        self.service().create_stack(self.utils.dummy_context(), STACK,
                                    template, params=params, files={},
                                    environment_files=None, args={})
        self.procs.event_loop()
        db_stack = self.db_stack()
        say('%s_%s: %s' % (db_stack.action, db_stack.status,
                           db_stack.status_reason))
        expect('stack state', (db_stack.action, db_stack.status),
               ('CREATE', 'COMPLETE'))

        step('Its outputs (EngineService.show_stack)')
        [shown] = self.service().show_stack(self.utils.dummy_context(),
                                            self.identity(),
                                            resolve_outputs=True)
        outputs = {o['output_key']: o.get('output_value')
                   for o in shown['outputs']}
        for key in sorted(outputs):
            say('%-10s %s' % (key, str(outputs[key]).strip()))

        step('Read back from the engine')
        net = self.engine('/networks/%s' % outputs['network_id'])
        say('network %s: subnet %s, %d containers on it'
            % (net['Name'], net['IPAM']['Config'][0]['Subnet'],
               len(net['Containers'])))
        expect('the network\'s subnet', net['IPAM']['Config'][0]['Subnet'],
               self.args.subnet)
        ips = sorted(c['IPv4Address'].split('/')[0]
                     for c in net['Containers'].values())
        expect('the containers\' addresses', ips,
               sorted([outputs['db_ip'], outputs['app_ip']]))

        step('The published port answers', 'GET %s' % outputs['url'])
        page = http_get(outputs['url'])
        say(page.strip())
        expect('the page app built from db (found by its alias)', page,
               'app read: record from db\n')

        step('Delete the stack', 'EngineService.delete_stack(%r)' % STACK)
        self.service().delete_stack(self.utils.dummy_context(),
                                    self.identity())
        self.procs.event_loop()
        self.created = False
        expect('the stack is gone', self.db_stack(), None)

        step('Nothing left on the engine')
        names = [c['Names'][0] for c in
                 self.engine('/containers/json?all=1')
                 if c['Names'][0].startswith('/%s-' % STACK)]
        expect('containers of the stack', names, [])
        nets = [n['Name'] for n in self.engine('/networks')
                if n['Name'].startswith('%s-' % STACK)]
        expect('networks of the stack', nets, [])

    def clean_up(self):
        """After a failure: Heat deletes what it made."""
        try:
            if getattr(self, 'created', False) and self.db_stack() is not None:
                self.service().delete_stack(self.utils.dummy_context(),
                                            self.identity())
                self.procs.event_loop()
        except Exception as exc:
            print('!! could not delete the stack: %s' % exc, file=sys.stderr)
        for patch in reversed(self.patches):
            patch.stop()
        self.patches = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--engine-url', required=True)
    ap.add_argument('--subnet', default='10.199.0.0/24',
                    help='IPv4 subnet of the stack\'s network')
    ap.add_argument('--image', default='busybox:latest',
                    help='image for the containers (pulled if missing)')
    ap.add_argument('--first-step', type=int, default=1)
    args = ap.parse_args()
    return run_section(Demo(args), 'Heat', args.first_step)


if __name__ == '__main__':
    sys.exit(main())
