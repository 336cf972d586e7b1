"""DockerInc::Docker::Container on a real engine, one resource at a time
(HeatTestCase, Heat's own TaskRunner): create, attributes, suspend/resume,
update in place and by replacement, delete, failures.  Each effect is read
back from the engine or over the published port; stacks through
EngineService are in test_stacks_engine.py.
"""

import os
import time
import urllib.request

import fixtures
from oslo_config import cfg

from heat.common import exception
from heat.engine import resource
from heat.engine import resources
from heat.engine import scheduler
from heat.tests import utils

from heat_plugin import container
from novadocker import client as engine_client
from tests import registries
from tests.integration.heat import base
from tests.integration.heat import realengine

TYPE = 'DockerInc::Docker::Container'
# httpd as PID 1 would ignore SIGTERM (and every stop would wait 10 s):
# the shell stays PID 1 and exits on TERM.
HTTPD = ['sh', '-c', 'echo first line; mkdir -p /www; echo hello-heat > '
         '/www/index.html; echo serving; trap "exit 0" TERM; '
         'httpd -f -p 80 -h /www & wait']


class TestContainerOnEngine(base.HeatTestCase):

    def setUp(self):
        super().setUp()
        self.eng = realengine.engine()
        cfg.CONF.set_override('engine_url', self.eng.url, group='novadocker')
        resources.global_env().register_class(TYPE, container.DockerContainer)
        self.api = engine_client.EngineClient(self.eng.url)
        self.addCleanup(self.api.close)
        self.stacks = []
        # A failed create is retried by Heat (action_retry_limit, with
        # backoff): once is enough to see the failure here.
        cfg.CONF.set_override('action_retry_limit', 0)

    def make(self, **props):
        props.setdefault('image', 'busybox')
        stk = utils.parse_stack({
            'heat_template_version': '2021-04-16',
            'resources': {'c': {'type': TYPE, 'properties': props}}})
        stk.store()
        # Resources hold their stack by weak reference: keep it alive.
        self.stacks.append(stk)
        res = stk['c']
        # Whatever a test leaves, the engine is cleaned of it.
        self.addCleanup(self._remove, res)
        return res

    def _remove(self, res):
        if res.resource_id:
            try:
                self.api.delete('/containers/%s' % res.resource_id,
                                params={'force': True, 'v': True})
            except engine_client.EngineNotFound:
                pass

    def inspect(self, res):
        return self.api.inspect_container(res.resource_id)

    def test_create_attributes_published_port_and_delete(self):
        port = registries.free_port()
        res = self.make(cmd=HTTPD, hostname='web1', env=['GREETING=hi'],
                        port_bindings={'80/tcp': '127.0.0.1:%d' % port},
                        memory=64 * 1024 * 1024, cap_drop=['MKNOD'],
                        restart_policy={'Name': 'on-failure',
                                        'MaximumRetryCount': 2})
        scheduler.TaskRunner(res.create)()
        self.assertEqual((res.CREATE, res.COMPLETE), res.state)

        info = self.inspect(res)
        self.assertTrue(info['State']['Running'])
        self.assertEqual(res.physical_resource_name(), info['Name'][1:])
        self.assertEqual('web1', info['Config']['Hostname'])
        self.assertIn('GREETING=hi', info['Config']['Env'])
        host = info['HostConfig']
        self.assertEqual(64 * 1024 * 1024, host['Memory'])
        self.assertEqual(['MKNOD'], host['CapDrop'])
        self.assertEqual({'Name': 'on-failure', 'MaximumRetryCount': 2},
                         host['RestartPolicy'])
        self.assertEqual('hello-heat\n',
                         base.http_get('http://127.0.0.1:%d/index.html' % port))

        self.assertEqual(info['NetworkSettings']['IPAddress'],
                         res.FnGetAtt('network_ip'))
        self.assertTrue(res.FnGetAtt('network_ip'))
        self.assertTrue(res.FnGetAtt('network_gateway'))
        self.assertEqual(str(port), res.FnGetAtt('network_tcp_ports'))
        self.assertEqual('', res.FnGetAtt('network_udp_ports'))
        self.assertEqual(info['Id'], res.FnGetAtt('info')['Id'])
        self.assertIn('80/tcp', res.FnGetAtt('network_info')['Ports'])
        self.assertEqual('first line', res.FnGetAtt('logs_head'))
        self.assertEqual('serving', res.FnGetAtt('logs_tail'))
        self.assertEqual('first line\nserving\n', res.FnGetAtt('logs'))

        scheduler.TaskRunner(res.delete)()
        self.assertEqual((res.DELETE, res.COMPLETE), res.state)
        self.assertRaises(engine_client.EngineNotFound,
                          self.api.inspect_container, info['Id'])
        self.assertRaises(OSError, urllib.request.urlopen,
                          'http://127.0.0.1:%d/' % port, timeout=2)

    def test_properties_seen_from_inside(self):
        data = self.useFixture(fixtures.TempDir()).path
        with open(data + '/in.txt', 'w') as f:
            f.write('from the host\n')
        # The container runs as uid 1000: it must be able to read the bind.
        os.chmod(data, 0o755)
        os.chmod(data + '/in.txt', 0o644)
        probe = ('id -u; hostname; grep nameserver /etc/resolv.conf; '
                 'cat /data/in.txt; echo "$GREETING"; '
                 '(touch /probe && echo root-rw) 2>/dev/null || echo root-ro; '
                 '(touch /data/x && echo data-rw) 2>/dev/null || echo data-ro; '
                 'test -c /dev/heatnull && echo device; '
                 'test -t 1 && echo tty || echo no-tty')
        res = self.make(cmd=['sh', '-c', probe], user='1000', hostname='probe',
                        dns=['10.9.8.7'], volumes={data: '/data:ro'},
                        env=['GREETING=hi there'], read_only=True,
                        devices=[{'path_on_host': '/dev/null',
                                  'path_in_container': '/dev/heatnull'}])
        scheduler.TaskRunner(res.create)()
        self.assertEqual(['1000', 'probe', 'nameserver 10.9.8.7',
                          'from the host', 'hi there', 'root-ro', 'data-ro',
                          'device', 'no-tty'],
                         res.FnGetAtt('logs').splitlines())

    def test_tty_logs(self):
        res = self.make(cmd=['sh', '-c', 'test -t 1 && echo tty'], tty=True)
        scheduler.TaskRunner(res.create)()
        self.assertEqual('tty', res.FnGetAtt('logs_tail'))

    def test_suspend_pauses_and_resume_unpauses(self):
        res = self.make(cmd=['sleep', '300'])
        scheduler.TaskRunner(res.create)()
        scheduler.TaskRunner(res.suspend)()
        self.assertEqual((res.SUSPEND, res.COMPLETE), res.state)
        state = self.inspect(res)['State']
        self.assertEqual(('paused', True), (state['Status'], state['Paused']))
        scheduler.TaskRunner(res.resume)()
        self.assertEqual((res.RESUME, res.COMPLETE), res.state)
        state = self.inspect(res)['State']
        self.assertEqual(('running', False),
                         (state['Status'], state['Paused']))

    def test_delete_while_suspended(self):
        res = self.make(cmd=['sh', '-c', 'trap "exit 0" TERM; sleep 300 & wait'])
        scheduler.TaskRunner(res.create)()
        scheduler.TaskRunner(res.suspend)()
        cid = res.resource_id
        start = time.monotonic()
        scheduler.TaskRunner(res.delete)()
        self.assertEqual((res.DELETE, res.COMPLETE), res.state)
        # Thawed first, it acts on SIGTERM: no 10 s stop timeout.
        self.assertLess(time.monotonic() - start, 8)
        self.assertRaises(engine_client.EngineNotFound,
                          self.api.inspect_container, cid)

    def test_check_sees_a_stopped_container(self):
        res = self.make(cmd=['sh', '-c', 'trap "exit 0" TERM; sleep 300 & wait'])
        scheduler.TaskRunner(res.create)()
        scheduler.TaskRunner(res.check)()
        self.assertEqual((res.CHECK, res.COMPLETE), res.state)
        self.api.post('/containers/%s/stop' % res.resource_id)
        err = self.assertRaises(exception.ResourceFailure,
                                scheduler.TaskRunner(res.check))
        self.assertIn('not running', str(err))
        self.assertIn('exited', str(err))

    def test_update_in_place_keeps_the_container(self):
        res = self.make(cmd=['sleep', '300'], memory=64 * 1024 * 1024)
        scheduler.TaskRunner(res.create)()
        before = res.resource_id
        started = self.inspect(res)['State']['StartedAt']
        props = dict(res.properties.data, memory=32 * 1024 * 1024,
                     cpu_shares=512, restart_policy={'Name': 'always'})
        new = res.t.freeze(properties=props)
        scheduler.TaskRunner(res.update, new)()
        self.assertEqual((res.UPDATE, res.COMPLETE), res.state)
        self.assertEqual(before, res.resource_id)
        info = self.inspect(res)
        self.assertEqual(started, info['State']['StartedAt'])
        self.assertTrue(info['State']['Running'])
        self.assertEqual(32 * 1024 * 1024, info['HostConfig']['Memory'])
        self.assertEqual(512, info['HostConfig']['CpuShares'])
        self.assertEqual('always', info['HostConfig']['RestartPolicy']['Name'])

    def test_other_changes_need_replacement(self):
        res = self.make(cmd=['sleep', '300'])
        scheduler.TaskRunner(res.create)()
        props = dict(res.properties.data, cmd=['sleep', '301'])
        new = res.t.freeze(properties=props)
        self.assertRaises(resource.UpdateReplace,
                          scheduler.TaskRunner(res.update, new))

    def test_replacement_frees_name_and_port_and_rollback_restores(self):
        port = registries.free_port()
        props = dict(cmd=HTTPD, name='heat-web-fixed',
                     port_bindings={'80': '127.0.0.1:%d' % port})
        old = self.make(**props)
        scheduler.TaskRunner(old.create)()
        new_defn = old.t.freeze(properties=dict(old.properties.data,
                                                hostname='web2'))
        self.assertRaises(resource.UpdateReplace,
                          scheduler.TaskRunner(old.update, new_defn))
        info = self.inspect(old)
        self.assertEqual('/heat-web-fixed-replaced-%s' % old.resource_id[:12],
                         info['Name'])
        self.assertFalse(info['State']['Running'])
        # What Heat then creates: the same name and host port, accepted.
        new = self.make(hostname='web2', **props)
        scheduler.TaskRunner(new.create)()
        self.assertEqual('/heat-web-fixed', self.inspect(new)['Name'])
        self.assertEqual('hello-heat\n',
                         base.http_get('http://127.0.0.1:%d/index.html' % port))
        # A rollback drops the new one and brings the old one back.
        scheduler.TaskRunner(new.delete)()
        old.restore_prev_rsrc(convergence=True)
        info = self.inspect(old)
        self.assertEqual('/heat-web-fixed', info['Name'])
        self.assertTrue(info['State']['Running'])
        self.assertEqual('hello-heat\n',
                         base.http_get('http://127.0.0.1:%d/index.html' % port))

    def test_nonzero_exit_fails_with_logs_and_delete_leaves_nothing(self):
        res = self.make(cmd=['sh', '-c', 'echo cannot open config >&2; '
                                         'exit 3'])
        err = self.assertRaises(exception.ResourceFailure,
                                scheduler.TaskRunner(res.create))
        self.assertIn('exited with code 3', str(err))
        self.assertIn('cannot open config', str(err))
        cid = res.resource_id
        self.assertTrue(cid)
        scheduler.TaskRunner(res.delete)()
        self.assertRaises(engine_client.EngineNotFound,
                          self.api.inspect_container, cid)

    def test_crash_loop_under_restart_policy_fails_with_logs(self):
        res = self.make(cmd=['sh', '-c', 'echo no database; exit 4'],
                        restart_policy={'Name': 'always'})
        err = self.assertRaises(exception.ResourceFailure,
                                scheduler.TaskRunner(res.create))
        self.assertIn('exited with code 4', str(err))
        self.assertIn('no database', str(err))
        scheduler.TaskRunner(res.delete)()
        self.assertEqual((res.DELETE, res.COMPLETE), res.state)

    def test_one_shot_job_completes(self):
        res = self.make(cmd=['sh', '-c', 'echo done'])
        scheduler.TaskRunner(res.create)()
        self.assertEqual((res.CREATE, res.COMPLETE), res.state)
        self.assertEqual('done', res.FnGetAtt('logs_tail'))

    def test_delete_of_a_container_removed_behind_heat(self):
        res = self.make(cmd=['sleep', '300'])
        scheduler.TaskRunner(res.create)()
        self.api.delete('/containers/%s' % res.resource_id,
                        params={'force': True})
        scheduler.TaskRunner(res.delete)()
        self.assertEqual((res.DELETE, res.COMPLETE), res.state)

    def test_unpullable_image_fails_readably_and_creates_nothing(self):
        before = {c['Id'] for c in realengine.containers(self.eng)}
        # Nothing listens on port 1: the pull fails with the engine's reason.
        res = self.make(image='127.0.0.1:1/nosuch/image:v1')
        err = self.assertRaises(exception.ResourceFailure,
                                scheduler.TaskRunner(res.create))
        self.assertIn('could not pull image 127.0.0.1:1/nosuch/image:v1',
                      str(err))
        self.assertIsNone(res.resource_id)
        self.assertEqual(before,
                         {c['Id'] for c in realengine.containers(self.eng)})

    def test_engine_refusal_is_readable(self):
        # Two containers may not share a name: the second create is refused.
        first = self.make(cmd=['sleep', '300'], name='heat-dup-name')
        scheduler.TaskRunner(first.create)()
        second = self.make(cmd=['sleep', '300'], name='heat-dup-name')
        err = self.assertRaises(exception.ResourceFailure,
                                scheduler.TaskRunner(second.create))
        self.assertIn('the engine refused the container', str(err))
        self.assertIn('heat-dup-name', str(err))
