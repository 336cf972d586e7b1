"""``POST /build``: the request's parameters, the context, the stream."""

import base64
import binascii
import json

from engine import errors
from engine import build as build_mod
from engine.api import http
from engine.api import registry_routes

from engine.build import context as context_mod


REGISTRY_CONFIG_HEADER = 'X-Registry-Config'


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


def _cachefrom(request):
    value = request.json_arg('cachefrom')
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidArgument('cachefrom must be a JSON array of image references')
    return value


def _registry_config(request):
    """X-Registry-Config: base64url JSON of {registry: AuthConfig}, the
    credentials the CLI sends for pulls of base images."""
    header = request.headers.get(REGISTRY_CONFIG_HEADER)
    if header is None or not header.strip():
        return {}
    if len(header) > registry_routes.MAX_AUTH_SIZE * 16:
        raise errors.InvalidArgument('%s is too large' % REGISTRY_CONFIG_HEADER)
    text = header.strip().rstrip('=').translate(str.maketrans('+/', '-_'))
    try:
        raw = base64.b64decode(text + '=' * (-len(text) % 4), altchars=b'-_',
                               validate=True)
        data = json.loads(raw.decode('utf-8'))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise errors.InvalidArgument('%s is not base64url-encoded JSON'
                                     % REGISTRY_CONFIG_HEADER)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise errors.InvalidArgument('%s must be a JSON object of credentials'
                                     % REGISTRY_CONFIG_HEADER)
    out = {}
    for server, entry in data.items():
        auth = registry_routes.auth_from_dict(entry)
        if auth is not None:
            out[server] = auth
    return out


def options(request):
    tags = request.args('t')
    build_mod.parse_tags(tags)
    buildargs = {k: v for k, v in _json_map(request, 'buildargs').items() if v is not None}
    forcerm = request.arg('forcerm')
    return build_mod.BuildOptions(
        tags=tags, nocache=request.bool_arg('nocache'),
        rm=request.bool_arg('rm', True),
        forcerm=None if forcerm in (None, '') else request.bool_arg('forcerm'),
        quiet=request.bool_arg('q'), buildargs=buildargs,
        labels=_json_map(request, 'labels'), pull=request.bool_arg('pull'),
        target=request.arg('target') or '', cachefrom=_cachefrom(request),
        registry_auth=_registry_config(request))


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
