"""``POST /build``: the request's parameters, the context, the stream."""

import json

from engine import errors
from engine import build as build_mod
from engine.api import http

from engine.build import context as context_mod


def _json_map(request, name):
    raw = request.arg(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument('invalid JSON in %s: %s' % (name, exc))
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str))
            for k, v in value.items()):
        raise errors.InvalidArgument('%s must be a JSON object of strings' % name)
    return value


def options(request):
    tags = request.args('t')
    build_mod.parse_tags(tags)
    if request.bool_arg('pull'):
        raise errors.InvalidArgument('pull is not supported yet by the builder')
    if request.arg('target'):
        raise errors.InvalidArgument('target is not supported yet (no multi-stage builds)')
    if request.json_arg('cachefrom'):
        raise errors.InvalidArgument('cachefrom is not supported yet')
    buildargs = {k: v for k, v in _json_map(request, 'buildargs').items() if v is not None}
    return build_mod.BuildOptions(
        tags=tags, nocache=request.bool_arg('nocache'),
        rm=request.bool_arg('rm', True), forcerm=request.bool_arg('forcerm'),
        quiet=request.bool_arg('q'), buildargs=buildargs,
        labels=_json_map(request, 'labels'))


def handle(builder, engine, request, handler):
    opts = options(request)
    params = {'remote': request.arg('remote'),
              'dockerfile': request.arg('dockerfile')}
    with engine.images.tempdir('build-') as workdir:
        ctx = context_mod.BuildContext.from_request(
            request.body_stream(), request.headers, params, workdir,
            context_mod.Limits.for_store(engine.images))
        try:
            instrs = builder.prepare(ctx, opts)
            stream = http.Stream(handler)
            stream.begin()

            def write(obj):
                stream.write_json(obj)
            builder.build(ctx, opts, write, instrs)
        finally:
            ctx.close()
    return stream
