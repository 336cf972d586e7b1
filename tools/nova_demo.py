"""The Nova section of ``make demo``: the compute driver, driven in-process.

tools/demo.sh runs this with the venv's python once its engine and its
registry are up. Nova's own code does the work: nova-compute's loader
(``nova.virt.driver.load_compute_driver`` with ``compute_driver =
novadocker.DockerDriver``, through the installed shim), real nova.objects
(Instance, Flavor, ImageMeta), Nova's network model for the port, Nova's
copy of the image properties into the instance's system metadata and its
snapshot task states. What a cloud would add around the driver (API,
conductor, scheduler, placement, Neutron) is left out to keep the demo
short: the functional test (tests/integration/nova/test_docker_functional.py)
runs the same lifecycle through all of them. Glance is a small in-memory
stand-in with the calls the driver makes (get, update).

Each step prints what it calls, the state Nova's get_info reports, and reads
the effect back from the engine or from inside the container. Pull and push
progress is the engine's own stream, as the driver receives it. Any error
stops the demo (exit 1); whatever was made (containers, engine networks, the
bridge) is removed on the way out, and the last step shows nothing is left.
"""

import argparse
import os
import shlex
import subprocess
import sys
import time
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demosteps import bold, fail, run_section, say, step  # noqa: E402

# Nova's default concurrency mode is still eventlet; native threads (its
# future default) need no monkey patching in a short script like this.
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')
# Nova's libraries still import eventlet, which warns that it is deprecated.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

# The label on every container the driver makes (novadocker.virt.docker.containers).
LABEL_UUID = 'org.openstack.nova.instance-uuid'


def expect(what, actual, expected):
    if actual != expected:
        fail('%s: expected %r, got %r' % (what, expected, actual))
    say('ok: %s' % what)


def human(n):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (n, unit)
        n /= 1024.0


def run(cmd, show=True, check=True):
    """A host command (docker CLI, ip); printed as typed, output shown."""
    if show:
        shown = ['docker'] + cmd[1:] if cmd[0].endswith('/docker') else cmd
        print('$ %s' % shlex.join(shown), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        fail('%s exited %d: %s' % (' '.join(cmd), res.returncode, res.stderr.strip()))
    return res.stdout


class Progress:
    """Prints an engine pull/push stream the way the docker CLI summarises
    it when not on a terminal: each layer's status changes, and byte
    progress at 0, 25, 50, 75 and 100 %. Remembers the bytes per layer."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.shown = {}
        self.bytes = {}           # (status, layer) -> (current, total)
        self.statuses = []

    def __call__(self, msg):
        if not isinstance(msg, dict):
            return
        status, layer = msg.get('status'), msg.get('id')
        detail = msg.get('progressDetail') or {}
        prefix = '%s: ' % layer if layer else ''
        if detail.get('total') and 'current' in detail:
            cur, total = int(detail['current']), int(detail['total'])
            self.bytes[(status, layer)] = (cur, total)
            bucket = min(cur * 4 // total, 4)
            if bucket > self.shown.get((status, layer), -1):
                self.shown[(status, layer)] = bucket
                say('%s%s %s / %s (%d%%)' % (prefix, status, human(cur), human(total),
                                             cur * 100 // total))
        elif status:
            self.statuses.append((status, layer))
            say(prefix + status)
        elif isinstance(msg.get('aux'), dict) and msg['aux'].get('Digest'):
            say('manifest %s (%s bytes)' % (msg['aux']['Digest'], msg['aux'].get('Size')))

    def sent(self, status):
        return sum(cur for (st, _), (cur, _) in self.bytes.items() if st == status)


class Glance:
    """The Glance API calls the driver makes (nova.image.glance.API), in
    memory: ``get`` for an image's properties, ``update`` for a snapshot."""

    images = {}

    def get(self, context, image_id, **kw):
        from nova import exception
        if image_id not in self.images:
            raise exception.ImageNotFound(image_id=image_id)
        return dict(self.images[image_id])

    def update(self, context, image_id, metadata, data=None, purge_props=True):
        image = self.images[image_id]
        props = dict(image.get('properties') or {}) if not purge_props else {}
        props.update(metadata.get('properties') or {})
        image.update({k: v for k, v in metadata.items() if k != 'properties'})
        image['properties'] = props
        body = data.read() if hasattr(data, 'read') else (data or b'')
        image.update(status='active', size=len(body))
        say('Glance: image %s updated by the driver: %s/%s, %d bytes of data'
            % (image_id, image['container_format'], image['disk_format'], len(body)))
        return dict(image)

    def download(self, context, image_id, data=None, dest_path=None, **kw):
        fail('the demo boots registry references only; Glance download was called')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--engine-url', required=True)
    ap.add_argument('--registry', required=True, help='host:port of the registry')
    ap.add_argument('--bridge', required=True, help='Linux bridge to make for the ports')
    ap.add_argument('--state-dir', required=True, help="nova-compute's instances_path")
    ap.add_argument('--docker', default='docker')
    ap.add_argument('--first-step', type=int, default=1)
    args = ap.parse_args()
    os.environ['DOCKER_HOST'] = args.engine_url
    return run_section(Demo(args), 'Nova', args.first_step)


class Demo:
    COMMAND = ("sh -c 'trap \"exit 0\" TERM; echo booted $(hostname) at $(date +%T); "
               "while true; do sleep 1; done'")

    def __init__(self, args):
        self.args = args
        self.servers = []          # (instance, network_info) to delete on the way out
        self.bridge_made = False

    def docker(self, *argv, show=True):
        """docker ARGV on the demo's engine; with ``show``, printed as typed
        and its output shown, as in the rest of the demo."""
        out = run([self.args.docker] + list(argv), show=show)
        if show and out:
            print(out, end='' if out.endswith('\n') else '\n', flush=True)
        return out

    # -- set-up ---------------------------------------------------------------

    def configure(self):
        import logging
        import nova.conf
        from nova import objects
        # The driver's own log lines stay out of the demo's output; its
        # warnings and errors go to stderr.
        logging.basicConfig(level=logging.WARNING, format='   [%(name)s] %(message)s')
        self.CONF = nova.conf.CONF
        self.CONF([], project='nova', default_config_files=[])
        objects.register_all()
        os.makedirs(self.args.state_dir, exist_ok=True)
        self.CONF.set_override('host', 'demo-compute')
        self.CONF.set_override('my_ip', '127.0.0.1')
        self.CONF.set_override('instances_path', self.args.state_dir)
        # Nova imports the driver module (which registers [docker]) only
        # when it loads it; the options are set as nova.conf would, first.
        from novadocker.virt.docker import conf as docker_conf
        docker_conf.register_opts(self.CONF)
        for name, value in (('engine_url', self.args.engine_url), ('vif_driver', 'bridge'),
                            ('registry_url', self.args.registry), ('stop_timeout', 2)):
            self.CONF.set_override(name, value, group='docker')
        import nova.image.glance
        nova.image.glance.API = Glance

    def run(self):
        bold('')
        bold('== Nova: the compute driver, in-process (real Nova objects, native threads)')
        self.configure()
        from nova import context as nova_context
        from nova import version
        from nova.virt import driver as virt_driver
        from nova.virt import virtapi
        self.ctx = nova_context.get_admin_context()

        step('Load the driver as nova-compute does (nova %s)' % version.version_string(),
             "load_compute_driver(virtapi, 'novadocker.DockerDriver'); init_host()")
        say('nova.conf: [DEFAULT] compute_driver = novadocker.DockerDriver')
        say('           [docker] engine_url = %s, registry_url = %s, vif_driver = bridge'
            % (self.args.engine_url, self.args.registry))
        self.drv = virt_driver.load_compute_driver(virtapi.VirtAPI(), 'novadocker.DockerDriver')
        self.drv.init_host('demo-compute')
        say('loaded %s.%s' % (type(self.drv).__module__, type(self.drv).__name__))
        res = self.drv.get_available_resource('demo-compute')
        say('host resources from the engine\'s /info: %s vCPUs, %s MB of memory, %s GB of '
            'disk, hypervisor %s' % (res['vcpus'], res['memory_mb'], res['local_gb'],
                                     res['hypervisor_type']))
        # The engine's pull and push streams, as the driver reads them,
        # shown as they arrive: the observer wraps the client the driver,
        # its VIF driver and its snapshot store share.
        self.progress = Progress()
        client = self.drv._engine.client
        stream_json = client.stream_json

        def observed(*a, progress=None, **kw):
            def both(msg):
                self.progress(msg)
                if progress is not None:
                    progress(msg)
            return stream_json(*a, progress=both, **kw)
        client.stream_json = observed

        image_id = self.register_image()
        network_info = self.make_network()
        self.lifecycle(image_id, network_info)

    def register_image(self):
        reg = self.args.registry
        repo = '%s/library/busybox' % reg
        step('An operator puts busybox into the registry and registers it in Glance by digest')
        self.docker('tag', 'busybox:latest', repo + ':latest')
        out = self.docker('push', repo + ':latest')
        digest = [ln.split(' digest: ')[1].split()[0] for ln in out.splitlines()
                  if ' digest: sha256:' in ln]
        if not digest:
            fail('docker push printed no digest: %s' % out)
        self.base_ref = '%s@%s' % (repo, digest[0])
        # So that the boot below really pulls: no copy of busybox is left
        # on the engine (the driver pulls by digest).
        say('(every image is dropped from the engine: the boot must pull)')
        self.docker('rmi', repo + ':latest', 'busybox:latest')
        left = sorted(set(self.docker('images', '-q', show=False).split()))
        if left:
            self.docker('rmi', '-f', *left)
        expect('the engine holds no image now', self.docker('images', '-q', show=False).strip(), '')
        image_id = str(uuid.uuid4())
        Glance.images[image_id] = {
            'id': image_id, 'name': 'busybox', 'status': 'active',
            'container_format': 'docker', 'disk_format': 'raw', 'size': 0,
            'min_ram': 0, 'min_disk': 0, 'visibility': 'public',
            'properties': {'novadocker_image_ref': self.base_ref,
                           'os_command_line': self.COMMAND}}
        say('Glance image %s: container_format docker, disk_format raw,' % image_id)
        say('  novadocker_image_ref = %s' % self.base_ref)
        say('  os_command_line = %s' % self.COMMAND)
        return image_id

    def make_network(self):
        br = self.args.bridge
        step('A Linux bridge for the instances\' ports (Neutron\'s agent makes it in a cloud)')
        run(['ip', 'link', 'add', br, 'type', 'bridge'])
        self.bridge_made = True
        run(['ip', 'link', 'set', br, 'up'])
        self.net_id = str(uuid.uuid4())
        say('Neutron network %s: 10.77.0.0/24 via 10.77.0.1, MTU 1450, on bridge %s'
            % (self.net_id, br))
        return self.port('10.77.0.10', 'fa:16:3e:de:00:10')

    def port(self, address, mac):
        from nova.network import model as network_model
        subnet = network_model.Subnet(
            cidr='10.77.0.0/24', gateway=network_model.IP(address='10.77.0.1', type='gateway'),
            dns=[network_model.IP(address='10.77.0.2', type='dns')],
            ips=[network_model.FixedIP(address=address)])
        net = network_model.Network(id=self.net_id, bridge=self.args.bridge, label='demo-net',
                                    subnets=[subnet])
        net['meta'] = {'mtu': 1450}
        port_id = str(uuid.uuid4())
        return network_model.NetworkInfo([network_model.VIF(
            id=port_id, address=mac, network=net, type='bridge',
            devname=('tap' + port_id)[:14], active=True)])

    def instance(self, name, image, number):
        """A real nova.objects.Instance as the conductor hands it to the
        compute host: image properties copied into system_metadata."""
        from nova import objects
        from nova import utils
        flavor = objects.Flavor(name='c1.small', memory_mb=128, vcpus=1, root_gb=1,
                                ephemeral_gb=0, swap=0, flavorid='c1', extra_specs={})
        inst = objects.Instance(
            context=self.ctx, id=number, uuid=str(uuid.uuid4()), display_name=name,
            hostname=name, host='demo-compute', node='demo-compute', project_id='demo',
            user_id='demo', image_ref=image['id'], flavor=flavor, metadata={'demo': 'yes'},
            system_metadata=utils.get_system_metadata_from_image(image, flavor),
            availability_zone='nova', key_data=None, vm_state='building', task_state=None)
        return inst, objects.ImageMeta.from_dict(image)

    # -- the lifecycle ---------------------------------------------------------

    def state(self, inst):
        from nova.compute import power_state
        return power_state.STATE_MAP[self.drv.get_info(inst).state]

    def engine_state(self, inst, field='{{.State.Status}}'):
        return self.docker('inspect', '-f', field, 'nova-' + inst.uuid, show=False).strip()

    def show_state(self, inst, nova_state, engine_state):
        got = self.state(inst)
        say('Nova (get_info): %s   engine: %s' % (got.upper(), self.engine_state(inst)))
        expect('power state %s' % nova_state.upper(), got, nova_state)
        expect('container %s' % engine_state, self.engine_state(inst), engine_state)

    def boot(self, name, image_id, network_info, number):
        image = Glance.images[image_id]
        inst, image_meta = self.instance(name, image, number)
        self.progress.reset()
        t = time.monotonic()
        self.drv.spawn(self.ctx, inst, image_meta, injected_files=[
            ('/etc/motd', 'Welcome to %s, a Nova instance on novadocker\n' % name)],
            admin_password=None, allocations={}, network_info=network_info)
        self.servers.append((inst, network_info))
        say('spawned in %.2f s' % (time.monotonic() - t))
        return inst

    def lifecycle(self, image_id, nw1):
        ip1 = nw1[0]['network']['subnets'][0]['ips'][0]['address']
        step('Boot a server: the driver pulls the image by digest (progress from the engine)',
             "driver.spawn(ctx, instance 'web-1', image_meta, injected_files, network_info=[port "
             "%s, %s])" % (nw1[0]['address'], ip1))
        s1 = self.boot('web-1', image_id, nw1, 1)
        if not self.progress.sent('Downloading'):
            fail('the spawn pulled nothing: the pull progress shows no download')
        say('downloaded %s for %s' % (human(self.progress.sent('Downloading')), self.base_ref))
        self.show_state(s1, 'running', 'running')
        self.docker('ps', '--filter', 'label=%s=%s' % (LABEL_UUID, s1.uuid),
                    '--format', '{{.Names}}  {{.Image}}  {{.Status}}')

        step('The port, seen from inside the container and on the bridge')
        print('$ docker exec nova-%s ip -4 addr show scope global' % s1.uuid)
        addr = self.exec(s1, 'ip', '-4', 'addr', 'show', 'scope', 'global')
        print(addr, end='')
        if '%s/24' % ip1 not in addr:
            fail('%s/24 is not configured inside the container' % ip1)
        say('ok: the port\'s address %s/24 is inside' % ip1)
        link = self.exec(s1, 'ip', 'link')
        expect('the port\'s MAC inside', nw1[0]['address'] in link, True)
        print('$ docker exec nova-%s ip route' % s1.uuid)
        print(self.exec(s1, 'ip', 'route'), end='')
        print('$ docker exec nova-%s cat /etc/motd   # an injected file' % s1.uuid)
        print(self.exec(s1, 'cat', '/etc/motd'), end='')
        ports = self.bridge_ports()
        say('bridge %s ports: %s' % (self.args.bridge, ', '.join(ports)))
        expect('one port on the bridge, named as Nova names taps', ports, [nw1[0]['devname']])

        for kind in ('SOFT', 'HARD'):
            before = self.engine_state(s1, '{{.State.StartedAt}}')
            step('Reboot, %s' % kind.lower(), "driver.reboot(ctx, web-1, network_info, '%s')"
                 % kind)
            self.drv.reboot(self.ctx, s1, nw1, kind)
            after = self.engine_state(s1, '{{.State.StartedAt}}')
            say('started at %s, before %s' % (after, before))
            expect('a new boot', after != before, True)
            self.show_state(s1, 'running', 'running')
            expect('the address survived', '%s/24' % ip1 in self.exec(s1, 'ip', '-4', 'addr'),
                   True)

        step('Stop (SIGTERM, SIGKILL after the timeout)', 'driver.power_off(web-1, timeout=5)')
        self.drv.power_off(s1, timeout=5)
        self.show_state(s1, 'shutdown', 'exited')
        step('Start', 'driver.power_on(ctx, web-1, network_info)')
        self.drv.power_on(self.ctx, s1, nw1)
        self.show_state(s1, 'running', 'running')

        step('Pause (the engine\'s freezer)', 'driver.pause(web-1)')
        self.drv.pause(s1)
        self.show_state(s1, 'paused', 'paused')
        step('Unpause', 'driver.unpause(web-1)')
        self.drv.unpause(s1)
        self.show_state(s1, 'running', 'running')

        step('Suspend: frozen, no CPU used, memory kept', 'driver.suspend(ctx, web-1)')
        self.drv.suspend(self.ctx, s1)
        self.show_state(s1, 'suspended', 'paused')
        # The guest wakes every second (its sleep loop): frozen, its CPU
        # time stays put (after resume it moves again), its memory is kept.
        first = self.drv.get_instance_diagnostics(s1)
        time.sleep(1.5)
        second = self.drv.get_instance_diagnostics(s1)
        memory = self.drv.get_diagnostics(s1)['memory']
        say('driver.get_instance_diagnostics: state %s, CPU time %d ns, 1.5 s later %d ns; '
            'memory in use %s' % (second.state, first.cpu_details[0].time,
                                  second.cpu_details[0].time, human(memory)))
        expect('no CPU used while suspended', second.cpu_details[0].time,
               first.cpu_details[0].time)
        expect('its memory is kept', memory > 0, True)
        step('Resume', 'driver.resume(ctx, web-1, network_info)')
        self.drv.resume(self.ctx, s1, nw1)
        self.show_state(s1, 'running', 'running')
        time.sleep(1.5)
        third = self.drv.get_instance_diagnostics(s1)
        say('CPU time 1.5 s after resume: %d ns' % third.cpu_details[0].time)
        expect('it runs again (its CPU time moved)',
               third.cpu_details[0].time > second.cpu_details[0].time, True)

        step('Console output: the container\'s log', 'driver.get_console_output(ctx, web-1)')
        out = self.drv.get_console_output(self.ctx, s1)
        print(out, end='' if out.endswith('\n') else '\n')
        # spawn, soft reboot, hard reboot, start
        expect('four boots in the log', out.count('booted web-1'), 4)

        step('Snapshot (createImage): commit, push only the new layer, update Glance',
             "driver.snapshot(ctx, web-1, image_id, update_task_state)")
        self.exec(s1, 'sh', '-c', 'echo "made on web-1" > /root/marker && '
                                  'head -c 1048576 /dev/urandom > /root/one-mib')
        say('(inside web-1: /root/marker written, 1 MiB of random data in /root/one-mib)')
        snap_id = str(uuid.uuid4())
        # What Nova's API makes before calling the driver: a queued image
        # with the instance's image properties (the base reference among
        # them, which the driver must replace).
        Glance.images[snap_id] = dict(Glance.images[image_id], id=snap_id, name='web-1-snap',
                                      status='queued', properties=dict(
                                          Glance.images[image_id]['properties'],
                                          image_type='snapshot', instance_uuid=s1.uuid))
        states = []

        def update_task_state(task_state, expected_state=None):
            states.append(task_state)
            say('task_state -> %s' % task_state)
        self.progress.reset()
        t = time.monotonic()
        self.drv.snapshot(self.ctx, s1, snap_id, update_task_state)
        took = time.monotonic() - t
        expect('Nova\'s task states, in order', states,
               ['image_pending_upload', 'image_uploading'])
        snap = Glance.images[snap_id]
        ref = snap['properties']['novadocker_image_ref']
        say('Glance image %s: %s, novadocker_image_ref = %s' % (snap_id, snap['status'], ref))
        expect('the reference is in the registry, by digest',
               ref.startswith('%s/nova/%s@sha256:' % (self.args.registry, snap_id)), True)
        pushed = self.progress.sent('Pushing')
        skipped = [lay for st, lay in self.progress.statuses
                   if st == 'Layer already exists' or st.startswith('Mounted from')]
        say('snapshot took %.2f s; pushed %s; layers the registry already had: %d'
            % (took, human(pushed), len(skipped)))
        expect('the base layer did not travel again', len(skipped) >= 1, True)
        self.show_state(s1, 'running', 'running')

        step('Boot the snapshot as a second server: only the new layer is pulled',
             "driver.spawn(ctx, instance 'web-2', snapshot image_meta, network_info=[port "
             "10.77.0.11])")
        nw2 = self.port('10.77.0.11', 'fa:16:3e:de:00:11')
        s2 = self.boot('web-2', snap_id, nw2, 2)
        pulled = self.progress.sent('Downloading')
        self.show_state(s2, 'running', 'running')
        expect('web-1\'s change is in web-2', self.exec(s2, 'cat', '/root/marker'),
               'made on web-1\n')
        size = int(self.docker('image', 'inspect', '-f', '{{.Size}}', ref, show=False))
        say('the snapshot image is %s; the snapshot pushed %s (%.0f%%) and web-2 pulled %s'
            % (human(size), human(pushed), 100.0 * pushed / size, human(pulled)))
        expect('less than the whole image travelled', pushed < size and pulled < size, True)
        # What nova-docker uploaded to Glance for the same snapshot.
        archive = os.path.join(self.args.state_dir, 'nova-docker-way.tar')
        self.docker('save', '-o', archive, ref, show=False)
        whole = os.path.getsize(archive)
        os.unlink(archive)
        say('nova-docker would have uploaded the whole image (docker save): %s, %.1fx the push'
            % (human(whole), whole / float(pushed)))
        ports = self.bridge_ports()
        say('bridge %s ports: %s' % (self.args.bridge, ', '.join(ports)))
        expect('two ports on the bridge', len(ports), 2)
        self.docker('ps', '--filter', 'label=' + LABEL_UUID, '--format',
                    '{{.Names}}  {{.Status}}')

        step('Delete both servers', 'driver.destroy(ctx, web-1, network_info); '
                                    'driver.destroy(ctx, web-2, network_info)')
        for inst, nw in list(self.servers):
            self.drv.destroy(self.ctx, inst, nw)
            self.servers.remove((inst, nw))
            say('destroyed %s (%s)' % (inst.display_name, inst.uuid))

        step('Nothing is left: no container, engine network or bridge port')
        expect('driver.list_instances()', self.drv.list_instances(), [])
        expect('containers with Nova\'s label', self.docker(
            'ps', '-a', '-q', '--filter', 'label=' + LABEL_UUID).strip(), '')
        nets = self.docker('network', 'ls', '--format', '{{.Name}}').split()
        say('engine networks: %s' % ', '.join(nets))
        expect('engine networks of Nova ports', [n for n in nets if n.startswith('nova-')], [])
        expect('ports on bridge %s' % self.args.bridge, self.bridge_ports(), [])
        state_files = [p for p in os.listdir(self.args.state_dir)
                       if os.path.isdir(os.path.join(self.args.state_dir, p))
                       and os.listdir(os.path.join(self.args.state_dir, p))]
        expect('per-instance state under instances_path', state_files, [])
        run(['ip', 'link', 'del', self.args.bridge])
        self.bridge_made = False

    def exec(self, inst, *cmd):
        return self.docker('exec', 'nova-' + inst.uuid, *cmd, show=False)

    def bridge_ports(self):
        out = run(['ip', '-o', 'link', 'show', 'master', self.args.bridge], show=False)
        return [ln.split(':')[1].strip().split('@')[0] for ln in out.splitlines() if ln.strip()]

    def clean_up(self):
        """After a failure: delete the servers through the driver, then the
        bridge (demo.sh removes the bridge too, should this process die)."""
        for inst, nw in self.servers:
            try:
                self.drv.destroy(self.ctx, inst, nw)
            except Exception as exc:
                print('!! could not destroy %s: %s' % (inst.uuid, exc), file=sys.stderr)
        self.servers = []
        if self.bridge_made:
            subprocess.run(['ip', 'link', 'del', self.args.bridge], stderr=subprocess.DEVNULL)
            self.bridge_made = False


if __name__ == '__main__':
    sys.exit(main())
