"""The Docker Engine API routes: parse the request, call a service, render.

No business logic lives here; every decision is the services'.
"""

import re
import select

from oslo_log import log as logging

from engine import build as build_mod
from engine import containerconfig
from engine import containers as containers_mod
from engine import errors
from engine import events as events_mod
from engine import inspect_extras
from engine import logs as logs_mod
from engine import stdio
from engine import util
from engine.api import build_route
from engine.api import http
from engine.api import registry_routes
from engine.api import router as router_mod
from engine.api import views

LOG = logging.getLogger(__name__)


def client_gone(handler):
    """True once the client hung up (both directions), without reading its data."""
    p = select.poll()
    p.register(handler.connection, select.POLLHUP | select.POLLERR)
    return bool(p.poll(0))


def hijack(handler, request, content_type):
    """Send the upgrade answer and take the connection over for raw bytes."""
    upgrade = 'upgrade' in (request.headers.get('Connection') or '').lower()
    if upgrade:
        handler.send_response(101, 'UPGRADED')
    else:
        handler.send_response(200)
    handler.send_common_headers()
    handler.send_header('Content-Type', content_type)
    if upgrade:
        handler.send_header('Connection', 'Upgrade')
        handler.send_header('Upgrade', 'tcp')
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.settimeout(None)  # an attach may stay quiet for days
    return http.Hijacked(handler)


def stream_content_type(request, tty):
    if tty:
        return 'application/vnd.docker.raw-stream'
    if request.version_at_least('1.42'):
        return 'application/vnd.docker.multiplexed-stream'
    return 'application/vnd.docker.raw-stream'


def parse_filters(request):
    """Docker's filters: {"k": {"v": true}} or the older {"k": ["v"]}."""
    raw = request.json_arg('filters', {}) or {}
    if not isinstance(raw, dict):
        raise errors.InvalidArgument('filters must be a JSON object')
    out = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            raise errors.InvalidArgument('invalid filter %r' % key)
    return out


class StreamWriter:
    """A file-like object writing chunks into a streamed response.

    Once the client is gone the first write raises; later ones (a tar
    writer flushing while it is collected) are dropped quietly.
    """

    def __init__(self, stream):
        self._stream = stream
        self._broken = False

    def write(self, data):
        if self._broken:
            return len(data)
        try:
            self._stream.write(bytes(data))
        except OSError:
            self._broken = True
            raise
        return len(data)

    def flush(self):
        pass


def build(engine):
    r = router_mod.Router()
    containers = engine.containers
    images = engine.images
    execs = engine.execs
    limit = engine.conf.engine.api_request_limit

    # -- system ---------------------------------------------------------------
    @r.route('GET', '/_ping')
    def ping(request, handler):
        return http.Response(200, b'OK', 'text/plain; charset=utf-8',
                             {'Cache-Control': 'no-cache, no-store, must-revalidate',
                              'Pragma': 'no-cache', 'Builder-Version': '1'})

    @r.route('GET', '/version')
    def version(request, handler):
        return http.json_response(engine.version_info())

    @r.route('GET', '/info')
    def info(request, handler):
        return http.json_response(engine.system_info())

    @r.route('GET', '/events')
    def events(request, handler):
        since = events_mod.parse_time(request.arg('since'))
        until = events_mod.parse_time(request.arg('until'))
        if since is not None and until is not None and until < since:
            raise errors.InvalidArgument('`since` time (%s) cannot be after `until` time (%s)'
                                         % (request.arg('since'), request.arg('until')))
        filters = events_mod.validate_filters(parse_filters(request))
        stream = http.Stream(handler)
        stream.begin()
        for event in engine.events.subscribe(since, until,
                                             match=lambda e: events_mod.matches(e, filters),
                                             stop=lambda: client_gone(handler)):
            if event is not None:
                stream.write_json(event)
        return stream

    # -- containers -----------------------------------------------------------
    @r.route('POST', '/containers/create')
    def container_create(request, handler):
        body = request.json(limit)
        if body is None:
            raise errors.InvalidArgument('config cannot be empty in order to create a container')
        c, warnings = containers.create(body, request.arg('name'))
        return http.json_response({'Id': c.id, 'Warnings': warnings}, 201)

    @r.route('GET', '/containers/json')
    def container_list(request, handler):
        filters = parse_filters(request)
        show_all = request.bool_arg('all') or bool(filters.get('status'))
        selected = [c for c in containers.list()
                    if (show_all or c.is_running() or c.status == containers_mod.RESTARTING)
                    and container_matches(c, filters, images)]
        selected.sort(key=lambda c: c.record['Created'], reverse=True)
        limit_n = request.int_arg('limit', -1)
        if limit_n is not None and limit_n > 0:
            selected = selected[:limit_n]
        entries = [views.container_summary(c) for c in selected]
        if request.bool_arg('size'):
            for c, entry in zip(selected, entries):
                entry.update(engine.housekeeping.summary_sizes(c))
        return http.json_response(entries)

    @r.route('GET', '/containers/{id}/json')
    def container_inspect(request, handler):
        c = containers.get(request.params['id'])
        data = views.container_inspect(c, engine.exec_ids(c.id))
        if request.bool_arg('size'):
            data.update(engine.housekeeping.container_sizes(c))
        return http.json_response(data)

    @r.route('POST', '/containers/{id}/start')
    def container_start(request, handler):
        request.drain()
        containers.start(request.params['id'])
        return http.empty()

    @r.route('POST', '/containers/{id}/stop')
    def container_stop(request, handler):
        containers.stop(request.params['id'], request.int_arg('t'), request.arg('signal'))
        return http.empty()

    @r.route('POST', '/containers/{id}/restart')
    def container_restart(request, handler):
        containers.restart(request.params['id'], request.int_arg('t'), request.arg('signal'))
        return http.empty()

    @r.route('POST', '/containers/{id}/kill')
    def container_kill(request, handler):
        containers.kill(request.params['id'], request.arg('signal') or 'SIGKILL')
        return http.empty()

    @r.route('POST', '/containers/{id}/pause')
    def container_pause(request, handler):
        containers.pause(request.params['id'])
        return http.empty()

    @r.route('POST', '/containers/{id}/unpause')
    def container_unpause(request, handler):
        containers.unpause(request.params['id'])
        return http.empty()

    # -- limits: docker update, docker stats (engine/resources.py, engine/stats.py)
    @r.route('POST', '/containers/{id}/update')
    def container_update(request, handler):
        body = request.json(limit)
        if body is None:
            raise errors.InvalidArgument('update config cannot be empty')
        warnings = containers.update(request.params['id'], body)
        return http.json_response({'Warnings': warnings or None})  # Go's nil slice

    @r.route('GET', '/containers/{id}/stats')
    def container_stats(request, handler):
        c = containers.get(request.params['id'])
        stream = request.bool_arg('stream', True)
        one_shot = request.bool_arg('one-shot')
        if one_shot and stream:
            raise errors.InvalidArgument('cannot have stream=true and one-shot=true')
        samples = engine.stats.stats(c, stream=stream, one_shot=one_shot,
                                     stop=lambda: client_gone(handler))
        if not stream:
            return http.json_response(next(samples))
        out = http.Stream(handler)
        out.begin()
        for sample in samples:
            out.write_json(sample)
        return out

    @r.route('POST', '/containers/{id}/rename')
    def container_rename(request, handler):
        containers.rename(request.params['id'], request.arg('name') or '')
        return http.empty()

    @r.route('POST', '/containers/{id}/resize')
    def container_resize(request, handler):
        containers.resize(request.params['id'], request.int_arg('h', 0), request.int_arg('w', 0))
        return http.Response(200, b'', 'text/plain')

    @r.route('DELETE', '/containers/{id}')
    def container_delete(request, handler):
        c = containers.get(request.params['id'])
        containers.remove(c.id, force=request.bool_arg('force'), volumes=request.bool_arg('v'))
        execs.forget_container(c.id)
        return http.empty()

    @r.route('POST', '/containers/{id}/wait')
    def container_wait(request, handler):
        c = containers.get(request.params['id'])
        condition = request.arg('condition') or 'not-running'
        if condition not in ('not-running', 'next-exit', 'removed'):
            raise errors.InvalidArgument('invalid condition: %r' % condition)
        stream = http.Stream(handler)
        stream.begin()  # docker run blocks on these headers before it starts the container
        result = containers.wait(c, condition, stop=lambda: client_gone(handler))
        if result is None:
            return stream
        code, error = result
        body = {'StatusCode': code}
        body['Error'] = {'Message': error} if error else None
        stream.write_json(body)
        return stream

    @r.route('POST', '/containers/{id}/attach')
    def container_attach(request, handler):
        want_stdin = request.bool_arg('stdin')
        want_stdout = request.bool_arg('stdout')
        want_stderr = request.bool_arg('stderr')
        if not request.bool_arg('stream') and not request.bool_arg('logs'):
            raise errors.InvalidArgument('attach needs stream=1 or logs=1')
        c, conn = containers.attach(request.params['id'], want_stdin)
        tty = c.config.get('Tty', False)
        client = hijack(handler, request, stream_content_type(request, tty))
        try:
            if request.bool_arg('logs'):
                out = stdio.Output(client, tty, want_stdout, want_stderr)
                for entry in logs_mod.read(c.log_path, want_stdout, want_stderr):
                    out.write(entry[1], entry[2])
            if not request.bool_arg('stream'):
                return client
            if isinstance(conn, containers_mod.PendingAttach):
                if not containers.wait_started(c, conn, stop=lambda: client_gone(handler)):
                    return client
                if conn.error is not None or conn.conn is None:
                    return client
                conn = conn.conn
            stdio.pump_attach(conn, client, tty, want_stdout, want_stderr,
                              want_stdin and c.config.get('OpenStdin', False),
                              c.config.get('StdinOnce', False))
        finally:
            client.close()
        return client

    @r.route('GET', '/containers/{id}/logs')
    def container_logs(request, handler):
        c = containers.get(request.params['id'])
        want_stdout = request.bool_arg('stdout')
        want_stderr = request.bool_arg('stderr')
        if not (want_stdout or want_stderr):
            raise errors.InvalidArgument('You must choose at least one stream')
        tail = request.arg('tail') or 'all'
        if tail == 'all':
            tail_n = None
        else:
            try:
                tail_n = int(tail)
            except ValueError:
                raise errors.InvalidArgument('invalid tail value %r' % tail)
            if tail_n < 0:
                tail_n = None
        tty = c.config.get('Tty', False)
        timestamps = request.bool_arg('timestamps')
        stream = http.Stream(handler, content_type=stream_content_type(request, tty))
        stream.begin()
        follow = request.bool_arg('follow')
        for entry in logs_mod.read(
                c.log_path, want_stdout, want_stderr,
                since_ns=util.parse_time_arg(request.arg('since')),
                until_ns=util.parse_time_arg(request.arg('until')),
                tail=tail_n, follow=follow,
                is_running=lambda: c.is_running() and not c.removed):
            if entry is None:
                if client_gone(handler):
                    break
                continue
            ts, num, data = entry
            if timestamps:
                data = logs_mod.docker_timestamp(ts).encode() + b' ' + data
            stream.write(data if tty else stdio.frame(num, data))
        return stream

    @r.route('GET', '/containers/{id}/export')
    def container_export(request, handler):
        c = containers.get(request.params['id'])
        stream = http.Stream(handler, content_type='application/x-tar')
        engine.export_container(c, StreamWriter(stream), before_write=stream.begin)
        return stream

    @r.route('PUT', '/containers/{id}/archive')
    def container_put_archive(request, handler):
        c = containers.get(request.params['id'])
        engine.put_archive(c, request.arg('path') or '', request.body_stream())
        return http.Response(200, b'', 'text/plain')

    # -- observability and housekeeping (top, diff, df, prune) -----------------
    @r.route('GET', '/containers/{id}/top')
    def container_top(request, handler):
        return http.json_response(inspect_extras.container_top(
            engine, request.params['id'], request.arg('ps_args') or ''))

    @r.route('GET', '/containers/{id}/changes')
    def container_changes(request, handler):
        return http.json_response(inspect_extras.container_changes(
            engine, request.params['id']))

    @r.route('GET', '/system/df')
    def system_df(request, handler):
        return http.json_response(engine.housekeeping.disk_usage(
            types=request.args('type'), container_view=views.container_summary))

    @r.route('POST', '/containers/prune')
    def containers_prune(request, handler):
        return http.json_response(engine.housekeeping.prune_containers(parse_filters(request)))

    @r.route('POST', '/images/prune')
    def images_prune(request, handler):
        return http.json_response(engine.housekeeping.prune_images(parse_filters(request)))

    # -- build (engine/build) -------------------------------------------------
    builder = build_mod.Builder(engine)

    @r.route('POST', '/build')
    def image_build(request, handler):
        return build_route.handle(builder, engine, request, handler)

    @r.route('POST', '/build/prune')
    def build_prune(request, handler):
        return http.json_response(engine.housekeeping.prune_build_cache(parse_filters(request)))

    @r.route('POST', '/networks/prune')
    def networks_prune(request, handler):
        return http.json_response(engine.housekeeping.prune_networks(parse_filters(request)))

    # -- networks (engine/networks) -------------------------------------------------
    networks = engine.networks

    @r.route('GET', '/networks')
    def network_list(request, handler):
        return http.json_response(networks.list(parse_filters(request)))

    @r.route('GET', '/networks/{id}')
    def network_inspect(request, handler):
        return http.json_response(networks.inspect(request.params['id']))

    @r.route('POST', '/networks/create')
    def network_create(request, handler):
        return http.json_response(networks.create(request.json(limit)), 201)

    @r.route('DELETE', '/networks/{id}')
    def network_delete(request, handler):
        networks.remove(request.params['id'])
        return http.empty()

    @r.route('POST', '/networks/{id}/connect')
    def network_connect(request, handler):
        networks.connect(request.params['id'], request.json(limit))
        return http.empty(200)

    @r.route('POST', '/networks/{id}/disconnect')
    def network_disconnect(request, handler):
        networks.disconnect(request.params['id'], request.json(limit))
        return http.empty(200)

    @r.route('POST', '/containers/{id}/exec')
    def exec_create(request, handler):
        body = request.json(limit)
        if body is None:
            raise errors.InvalidArgument('exec config cannot be empty')
        eid = execs.create(request.params['id'], body)
        return http.json_response({'Id': eid}, 201)

    @r.route('POST', '/exec/{id}/start')
    def exec_start(request, handler):
        body = request.json(limit, {}) or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument('exec start config must be a JSON object')
        inst = execs.get(request.params['id'])
        tty = body.get('Tty', inst.config.get('Tty', False))
        if body.get('ConsoleSize') is not None:
            containerconfig.check_console_size(body['ConsoleSize'], 'ConsoleSize')
        if body.get('Detach'):
            execs.start(inst.id, tty=tty, console_size=body.get('ConsoleSize'))
            return http.json_response({})

        def take_over():
            return hijack(handler, request, stream_content_type(request, tty))
        client = execs.start(inst.id, tty=tty, console_size=body.get('ConsoleSize'),
                             hijack=take_over)
        return client

    @r.route('POST', '/exec/{id}/resize')
    def exec_resize(request, handler):
        execs.resize(request.params['id'], request.int_arg('h', 0), request.int_arg('w', 0))
        return http.Response(200, b'', 'text/plain')

    @r.route('GET', '/exec/{id}/json')
    def exec_inspect(request, handler):
        return http.json_response(execs.get(request.params['id']).inspect())

    @r.route('POST', '/commit')
    def commit(request, handler):
        body = request.json(limit, {}) or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument('commit config must be a JSON object')
        ref = request.arg('container')
        if not ref:
            raise errors.InvalidArgument('container is required')
        image_id = engine.commit(
            ref, repo=request.arg('repo') or None, tag=request.arg('tag') or None,
            comment=request.arg('comment') or '', author=request.arg('author') or '',
            pause=request.bool_arg('pause', True), changes=request.args('changes'),
            config=body)
        return http.json_response({'Id': image_id}, 201)

    # -- volumes --------------------------------------------------------------
    volumes = engine.volumes

    @r.route('POST', '/volumes/create')
    def volume_create(request, handler):
        body = request.json(limit, {}) or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument('volume create config must be a JSON object')
        for key, kind in (('Name', str), ('Driver', str), ('DriverOpts', dict),
                          ('Labels', dict)):
            if body.get(key) is not None and not isinstance(body[key], kind):
                raise errors.InvalidArgument('%s has the wrong type' % key)
        if body.get('ClusterVolumeSpec'):
            raise errors.InvalidArgument('cluster volumes need a swarm, which this engine '
                                         'does not offer')
        vol, _ = volumes.create(body.get('Name') or None, driver=body.get('Driver'),
                                driver_opts=body.get('DriverOpts'), labels=body.get('Labels'))
        return http.json_response(vol.view(), 201)

    @r.route('GET', '/volumes')
    def volume_list(request, handler):
        selected = volumes.select(parse_filters(request))
        return http.json_response({'Volumes': [v.view() for v in selected], 'Warnings': None})

    @r.route('POST', '/volumes/prune')
    def volume_prune(request, handler):
        filters = parse_filters(request)
        all_volumes = not request.version_at_least('1.42')
        for value in filters.get('all') or []:
            if value.lower() not in ('true', '1', 'false', '0'):
                raise errors.InvalidArgument("invalid filter 'all=%s'" % value)
            all_volumes = value.lower() in ('true', '1')
        return http.json_response(volumes.prune(filters, all_volumes=all_volumes))

    @r.route('GET', '/volumes/{name}')
    def volume_inspect(request, handler):
        return http.json_response(volumes.get(request.params['name']).view())

    @r.route('DELETE', '/volumes/{name}')
    def volume_delete(request, handler):
        volumes.remove(request.params['name'], force=request.bool_arg('force'))
        return http.empty()

    # -- images ---------------------------------------------------------------
    @r.route('GET', '/images/json')
    def image_list(request, handler):
        return http.json_response(images.list_images(all=request.bool_arg('all'),
                                                     filters=parse_filters(request)))

    @r.route('POST', '/images/create')
    def image_create(request, handler):
        if request.arg('fromImage'):
            return registry_routes.pull(engine, request, handler)
        src = request.arg('fromSrc')
        if src != '-':
            raise errors.InvalidArgument('fromSrc must be "-" (the request body): '
                                         'importing from a URL is not supported')
        stream = http.Stream(handler)
        image_id = images.import_rootfs(
            request.body_stream(), repo=request.arg('repo') or None,
            tag=request.arg('tag') or None, changes=request.args('changes'),
            message=request.arg('message') or '', platform=request.arg('platform') or None)
        stream.write_json({'status': image_id})
        return stream

    # -- registry: pull (above), push, login, search (engine/api/registry_routes.py)
    @r.route('POST', '/images/{name:.+}/push')
    def image_push(request, handler):
        return registry_routes.push(engine, request, handler)

    @r.route('POST', '/auth')
    def auth(request, handler):
        return http.json_response(registry_routes.login(engine, request))

    @r.route('GET', '/images/search')
    def image_search(request, handler):
        return http.json_response(registry_routes.search(engine, request,
                                                         parse_filters(request)))

    @r.route('POST', '/images/load')
    def image_load(request, handler):
        quiet = request.bool_arg('quiet')
        messages = list(images.load(request.body_stream(), quiet=quiet))
        stream = http.Stream(handler)
        for message in messages:
            stream.write_json({'stream': message.rstrip('\n') + '\n'})
        return stream

    @r.route('GET', '/images/get')
    def images_save(request, handler):
        names = request.args('names')
        if not names:
            raise errors.InvalidArgument('no images named')
        return save(names, handler)

    @r.route('GET', '/images/{name:.+}/get')
    def image_save(request, handler):
        return save([request.params['name']], handler)

    def save(names, handler):
        for name in names:
            images.resolve(name)  # a missing name is a 404 before any byte is sent
        stream = http.Stream(handler, content_type='application/x-tar')
        images.save(names, StreamWriter(stream))
        return stream

    @r.route('GET', '/images/{name:.+}/json')
    def image_inspect(request, handler):
        return http.json_response(images.inspect(request.params['name']))

    @r.route('GET', '/images/{name:.+}/history')
    def image_history(request, handler):
        return http.json_response(images.history(request.params['name']))

    @r.route('POST', '/images/{name:.+}/tag')
    def image_tag(request, handler):
        repo = request.arg('repo')
        if not repo:
            raise errors.InvalidArgument('repository name is required')
        images.tag(request.params['name'], repo, request.arg('tag') or 'latest')
        return http.Response(201, b'', None)

    @r.route('DELETE', '/images/{name:.+}')
    def image_delete(request, handler):
        result = images.remove(request.params['name'], force=request.bool_arg('force'),
                               noprune=request.bool_arg('noprune'),
                               in_use=containers.image_in_use)
        return http.json_response(result)

    return r


class NotImplementedByEngine(errors.EngineError):
    status = 501


def container_matches(c, filters, images):
    for key, values in filters.items():
        if not values:
            continue
        if key == 'id':
            if not any(c.id.startswith(v) for v in values):
                return False
        elif key == 'name':
            if not any(_name_match(c.name, v) for v in values):
                return False
        elif key == 'status':
            for v in values:
                if v not in ('created', 'restarting', 'running', 'removing', 'paused',
                             'exited', 'dead'):
                    raise errors.InvalidArgument('invalid filter \'status=%s\'' % v)
            if c.status not in values:
                return False
        elif key == 'label':
            labels = c.config.get('Labels') or {}
            for v in values:
                k, eq, val = v.partition('=')
                if k not in labels or (eq and labels[k] != val):
                    return False
        elif key == 'ancestor':
            if not any(_ancestor_match(c, v, images) for v in values):
                return False
        elif key == 'exited':
            if c.status != 'exited' or str(c.state['ExitCode']) not in values:
                return False
        elif key == 'network':
            # Docker's: a network name, or a prefix of a network id.
            nets = (c.record.get('NetworkSettings') or {}).get('Networks') or {}
            if not any(v in nets or any((ep or {}).get('NetworkID', '').startswith(v)
                                        for ep in nets.values()) for v in values):
                return False
        elif key == 'volume':
            points = c.record.get('MountPoints') or []
            known = {p['Destination'] for p in points}
            known |= {p.get('Name') or p.get('Source') for p in points}
            if not any(v in known for v in values):
                return False
        else:
            raise errors.InvalidArgument('invalid filter \'%s\'' % key)
    return True


def _name_match(name, pattern):
    try:
        return re.search(pattern.lstrip('/'), name) is not None
    except re.error:
        raise errors.InvalidArgument('invalid name filter %r' % pattern)


def _ancestor_match(c, ref, images):
    try:
        image = images.resolve(ref)
    except errors.NotFound:
        return False
    return image.id == c.record['Image']
