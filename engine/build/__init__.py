"""Dockerfile builds: the classic ``POST /build`` protocol.

Builder.build() walks the Dockerfile one instruction at a time, as
Docker's classic builder does: every step yields an image (a child of the
previous one), RUN steps run in real containers and COPY/ADD write into a
private snapshot; a step whose image already exists as a child of the same
parent with the same recorded step is reused ("Using cache").
"""

import json

from oslo_log import log as logging

from engine import errors
from engine import reference
from engine.build import dockerfile as df
from engine.build import executor as executor_mod

LOG = logging.getLogger(__name__)

METADATA = ('CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'MAINTAINER', 'EXPOSE',
            'WORKDIR', 'USER', 'VOLUME', 'STOPSIGNAL')


class BuildOptions:
    def __init__(self, tags=(), nocache=False, rm=True, forcerm=False,
                 quiet=False, buildargs=None, labels=None):
        self.tags = list(tags)
        self.nocache = nocache
        self.rm = rm
        self.forcerm = forcerm
        self.quiet = quiet
        self.buildargs = dict(buildargs or {})
        self.labels = dict(labels or {})


def parse_tags(values):
    """Validate ``t`` values up front (Docker answers 400 before building)."""
    out = []
    for t in values:
        try:
            ref = reference.parse(t, default_tag=True)
        except errors.EngineError:
            raise errors.InvalidArgument('invalid reference format: %s' % t)
        if getattr(ref, 'digest', None):
            raise errors.InvalidArgument('invalid reference format: %s' % t)
        out.append(ref)
    return out


def _commented(config, text, single_space=False):
    cc = json.loads(json.dumps(config))
    cc['Cmd'] = df.DEFAULT_SHELL + (['#(nop) ' + text] if single_space
                                    else ['#(nop) ', text])
    return cc


def _quote_if_needed(word):
    if word and not any(c.isspace() or c in '"\'\\$=' for c in word):
        return word
    return json.dumps(word)


def _label_instruction(labels):
    # Docker appends the ``labels`` parameter as a last LABEL step.
    text = ' '.join('%s=%s' % (_quote_if_needed(k), _quote_if_needed(v))
                    for k, v in sorted(labels.items()))
    return df.Instruction('LABEL', False, 'LABEL ' + text, 0, (), (), text)


class Builder:
    def __init__(self, engine):
        self.engine = engine
        self.executor = executor_mod.Executor(engine)

    @property
    def images(self):
        return self.engine.images

    def prepare(self, ctx, opts):
        """Parse and check the Dockerfile before any byte is streamed: as
        Docker's, a bad Dockerfile is a 400, not a stream error."""
        instrs = df.parse(ctx.dockerfile)
        froms = [i for i in instrs if i.cmd == 'FROM']
        if len(froms) > 1:
            raise df.BuildError('multi-stage builds are not supported yet')
        if opts.labels:
            instrs.append(_label_instruction(opts.labels))
        return instrs

    def build(self, ctx, opts, write, instrs=None):
        """Run the build, writing Docker's stream messages through
        ``write(dict)``; returns the image id or None when it failed (the
        error is in the stream)."""
        def out(text):
            if not opts.quiet:
                write({'stream': text})
        try:
            if instrs is None:
                instrs = self.prepare(ctx, opts)
            image_id = self._build(instrs, ctx, opts, out)
        except (errors.EngineError, df.BuildError) as exc:
            detail = {'message': str(exc)}
            if getattr(exc, 'code', None) is not None:
                detail['code'] = exc.code
            write({'errorDetail': detail, 'error': str(exc)})
            return None
        if opts.quiet:
            write({'stream': image_id + '\n'})
        else:
            write({'aux': {'ID': image_id}})
        out('Successfully built %s\n' % _short(image_id))
        for ref in parse_tags(opts.tags):
            out('Successfully tagged %s\n' % self.images.tag(image_id, str(ref)))
        return image_id

    def _build(self, instrs, ctx, opts, out):
        total = len(instrs)
        meta_args = {}       # ARGs before FROM
        args = {}            # build args in scope for the stage
        used = set()
        image_id = None
        config = {}
        started = False
        cmd_set = False
        for n, ins in enumerate(instrs, 1):
            out('Step %d/%d : %s' % (n, total, ins.original))
            out('\n')
            if ins.cmd == 'ARG':
                name, default = df.parse_arg(ins)
                value = opts.buildargs.get(name, default)
                if name in opts.buildargs:
                    used.add(name)
                if not started:
                    if value is not None:
                        meta_args[name] = value
                    continue
                if value is None and name in meta_args:
                    value = meta_args[name]
                if value is not None:
                    args[name] = value
                text = 'ARG ' + (ins.value[0])
                image_id = self._metadata_step(image_id, config, text, opts, out)
                continue
            if not started and ins.cmd != 'FROM':
                raise df.BuildError('failed to process "%s": no build stage in '
                                    'current context' % ins.original)
            if ins.cmd == 'FROM':
                started = True
                image_id, config = self._from(ins, meta_args)
                if image_id:
                    out(' ---> %s\n' % _short(image_id))
                continue
            if ins.cmd == 'RUN':
                image_id = self._run(image_id, config, ins, args, opts, out)
            elif ins.cmd in ('COPY', 'ADD'):
                image_id = self._copy(ctx, image_id, config, ins, args, opts, out)
            else:
                new, text = df.apply_metadata(ins, config, args)
                if ins.cmd == 'CMD':
                    cmd_set = True
                if ins.cmd == 'ENTRYPOINT' and cmd_set:
                    new['Cmd'] = config.get('Cmd')
                config = new
                image_id = self._metadata_step(
                    image_id, config, text, opts, out,
                    single_space=ins.cmd == 'WORKDIR',
                    author=ins.rest if ins.cmd == 'MAINTAINER' else None)
            config = self.images.resolve(image_id).config.get('config') or {} \
                if image_id else config
        unused = sorted(set(opts.buildargs) - used - _predefined())
        if unused:
            out('[Warning] One or more build-args [%s] were not consumed\n'
                % ' '.join(unused))
        if not image_id:
            raise df.BuildError('No image was generated. Is your Dockerfile empty?')
        return image_id

    def _from(self, ins, meta_args):
        if len(ins.value) not in (1, 3) or (
                len(ins.value) == 3 and ins.value[1].upper() != 'AS'):
            raise df.BuildError('FROM requires either one or three arguments')
        name = df.changes_mod.expand(ins.value[0], meta_args)
        if name == 'scratch':
            return None, {}
        try:
            img = self.images.resolve(name)
        except errors.NotFound:
            raise df.BuildError('pull access denied for %s, the image is not '
                                'present locally and pulling base images is '
                                'not supported yet: No such image: %s'
                                % (name.split(':')[0], name))
        return img.id, img.config.get('config') or {}

    def _step_done(self, new_id, out):
        out(' ---> %s\n' % _short(new_id))
        return new_id

    def _metadata_step(self, image_id, config, text, opts, out, single_space=False,
                       author=None):
        cc = _commented(config, text, single_space)
        if not opts.nocache:
            hit = self.executor.cached(image_id, cc)
            if hit:
                out(' ---> Using cache\n')
                return self._step_done(hit, out)
        new = self.executor.make_image(image_id, dict(config), cc, author=author)
        return self._step_done(new, out)

    def _run(self, image_id, config, ins, args, opts, out):
        if not image_id:
            raise df.BuildError('RUN on a scratch image is not supported yet')
        argv = df.run_argv(ins, config, args)
        env_keys = {e.partition('=')[0] for e in config.get('Env') or ()}
        run_args = {k: v for k, v in sorted(args.items()) if k not in env_keys}
        cc = json.loads(json.dumps(config))
        cc['Cmd'] = argv
        if run_args:
            # Docker records the args a RUN saw so that they key the cache.
            cc['Cmd'] = ['|%d' % len(run_args)] + [
                '%s=%s' % kv for kv in run_args.items()] + argv
        if not opts.nocache:
            hit = self.executor.cached(image_id, cc)
            if hit:
                out(' ---> Using cache\n')
                return self._step_done(hit, out)
        env = ['%s=%s' % kv for kv in run_args.items()] + list(config.get('Env') or [])
        code, c = self.executor.run(image_id, config, argv, env, out)
        remove = opts.forcerm or opts.rm
        if code != 0:
            if remove:
                self.executor.remove_container(c)
            raise df.BuildError("The command '%s' returned a non-zero code: %d"
                                % (' '.join(argv), code), code=code)
        try:
            new = self.executor.commit_snapshot(c.id, image_id, dict(config), cc,
                                                container_id=c.id)
        finally:
            if remove:
                self.executor.remove_container(c, out)
        return self._step_done(new, out)

    def _copy(self, ctx, image_id, config, ins, args, opts, out, resolve_from=None):
        """COPY and ADD: see engine.build.copystep.  ``resolve_from(value)``
        gives the image id of a --from value (a stage name or index, or an
        image); without it only local images are found."""
        from engine.build import copystep
        return copystep.copy_step(self, ctx, image_id, config, ins, args, opts,
                                  out, resolve_from)


def _short(image_id):
    return image_id.split(':', 1)[-1][:12]


def _predefined():
    # Docker's predefined proxy args never warn.
    names = ('HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY')
    return set(names) | {n.lower() for n in names}


def _looks_like_archive(path):
    # By content, as Docker: a tar, plain or compressed (engine.build.add).
    from engine.build import add
    return add.is_archive(path)
