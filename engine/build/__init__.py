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
from engine.build import cache as cache_mod
from engine.build import dockerfile as df
from engine.build import executor as executor_mod

LOG = logging.getLogger(__name__)

class BuildOptions:
    """The request's build parameters.

    ``forcerm`` is tri-state: None (not given), True or False.  A failed
    RUN's container is removed unless the request said ``forcerm=0``
    explicitly or asked to keep intermediate containers (``rm=0``).  Docker
    keeps it unless ``forcerm=1``; an operator's host should not collect
    dead build containers by default.
    """

    def __init__(self, tags=(), nocache=False, rm=True, forcerm=None,
                 quiet=False, buildargs=None, labels=None, pull=False,
                 target='', cachefrom=(), registry_auth=None):
        self.tags = list(tags)
        self.nocache = nocache
        self.rm = rm
        self.forcerm = forcerm
        self.quiet = quiet
        self.buildargs = dict(buildargs or {})
        self.labels = dict(labels or {})
        self.pull = pull
        self.target = (target or '').lower()
        self.cachefrom = list(cachefrom or ())
        # {registry host: AuthConfig} from X-Registry-Config.
        self.registry_auth = dict(registry_auth or {})

    @property
    def remove_failed(self):
        if self.forcerm is None:
            return self.rm
        return self.forcerm


class _Stage:
    """One FROM ... section being built."""

    def __init__(self, index, name):
        self.index = index
        self.name = name
        self.image_id = None
        self.config = {}
        self.args = {}          # build args declared in this stage
        self.cmd_set = False


class _Out:
    """The build's text output; ``muted`` while ONBUILD triggers run (Docker
    prints no per-trigger " ---> id" line)."""

    def __init__(self, write, quiet):
        self._write = write
        self._quiet = quiet
        self.muted = False

    def __call__(self, text):
        if not self._quiet:
            self._write({'stream': text})

    def message(self, msg):
        """A raw JSON message (pull progress) unless quiet."""
        if not self._quiet:
            self._write(msg)


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
    # Docker writes the step under the current SHELL.
    cc = json.loads(json.dumps(config))
    cc['Cmd'] = df.shell_of(config) + (['#(nop) ' + text] if single_space
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
        Docker's, a bad Dockerfile or an unknown target is a 400, not a
        stream error.  Returns the instructions to run (cut after the
        target stage)."""
        from engine.build import copystep
        instrs = df.parse(ctx.dockerfile)
        for ins in instrs:
            if ins.cmd in ('COPY', 'ADD'):
                # Docker checks flag names when it parses (a 400 before
                # Step 1); --chmod is refused only when the step runs.
                try:
                    copystep.parse_flags(ins)
                except df.BuildError as exc:
                    if 'requires BuildKit' not in str(exc):
                        raise
        names = {}
        stage_ends = []
        for pos, ins in enumerate(instrs):
            if ins.cmd != 'FROM':
                continue
            if stage_ends:
                stage_ends[-1] = pos
            stage_ends.append(len(instrs))
            _image, name = df.parse_from(ins)
            if name is not None and name not in names:
                names[name] = len(stage_ends) - 1
        if opts.target:
            if opts.target not in names:
                raise df.BuildError('failed to reach build target %s in Dockerfile'
                                    % opts.target)
            instrs = instrs[:stage_ends[names[opts.target]]]
        if opts.labels:
            instrs.append(_label_instruction(opts.labels))
        return instrs

    def build(self, ctx, opts, write, instrs=None):
        """Run the build, writing Docker's stream messages through
        ``write(dict)``; returns the image id or None when it failed (the
        error is in the stream)."""
        out = _Out(write, opts.quiet)
        try:
            if instrs is None:
                instrs = self.prepare(ctx, opts)
            cache = cache_mod.BuildCache(self.images, self.executor,
                                         opts.cachefrom, out)
            with cache.active():
                image_id = self._build(instrs, ctx, opts, out, cache)
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

    def _build(self, instrs, ctx, opts, out, cache):
        total = len(instrs)
        meta_args = {}       # ARGs before the first FROM
        used = set()
        stages = []
        stage = None
        # The per-build state the steps share.
        run = _Run(ctx, opts, out, cache, meta_args, used, stages)
        for n, ins in enumerate(instrs, 1):
            out('Step %d/%d : %s' % (n, total, ins.original))
            out('\n')
            if ins.cmd == 'FROM':
                stage = self._from(ins, run)
                if stage.image_id:
                    out(' ---> %s\n' % _short(stage.image_id))
                continue
            if stage is None:
                if ins.cmd != 'ARG':
                    raise df.BuildError('failed to process "%s": no build stage in '
                                        'current context' % ins.original)
                name, default = df.parse_arg(ins)
                if name in opts.buildargs:
                    used.add(name)
                value = opts.buildargs.get(name, default)
                if value is not None:
                    meta_args[name] = value
                continue
            self._dispatch(stage, ins, run)
        unused = sorted(set(opts.buildargs) - used - _predefined())
        if unused:
            out('[Warning] One or more build-args [%s] were not consumed\n'
                % ' '.join(unused))
        if not stage or not stage.image_id:
            raise df.BuildError('No image was generated. Is your Dockerfile empty?')
        return stage.image_id

    def _dispatch(self, stage, ins, run):
        """One instruction of ``stage`` (a Dockerfile step or an ONBUILD
        trigger): the stage's image and config move on."""
        opts, out = run.opts, run.out
        if ins.cmd == 'ARG':
            name, default = df.parse_arg(ins)
            if name in opts.buildargs:
                run.used.add(name)
            value = opts.buildargs.get(name, default)
            if value is None and name in run.meta_args:
                value = run.meta_args[name]
            if value is not None:
                stage.args[name] = value
            stage.image_id = self._metadata_step(
                stage.image_id, stage.config, 'ARG ' + ins.value[0], run)
        elif ins.cmd == 'RUN':
            stage.image_id = self._run(stage.image_id, stage.config, ins,
                                       stage.args, opts, out, run)
        elif ins.cmd in ('COPY', 'ADD'):
            stage.image_id = self._copy(
                run.ctx, stage.image_id, stage.config, ins, stage.args, opts,
                out, resolve_from=lambda name: self._copy_source(name, stage, run))
        else:
            new, text = df.apply_metadata(ins, stage.config, stage.args)
            if ins.cmd == 'CMD':
                stage.cmd_set = True
            if ins.cmd == 'ENTRYPOINT' and stage.cmd_set:
                new['Cmd'] = stage.config.get('Cmd')
            stage.config = new
            stage.image_id = self._metadata_step(
                stage.image_id, stage.config, text, run,
                single_space=ins.cmd == 'WORKDIR',
                author=ins.rest if ins.cmd == 'MAINTAINER' else None,
                mkdir=new.get('WorkingDir') if ins.cmd == 'WORKDIR' else None)
        if stage.image_id:
            stage.config = self.images.resolve(stage.image_id).config.get('config') or {}

    # -- FROM ---------------------------------------------------------------

    def _from(self, ins, run):
        word, name = df.parse_from(ins)
        if name is not None and run.stage_named(name) is not None:
            raise df.BuildError('%s stage name already used' % name)
        ref = df.changes_mod.expand(word, run.meta_args)
        stage = _Stage(len(run.stages), name)
        earlier = run.stage_named(ref)
        if earlier is not None:
            stage.image_id = earlier.image_id
            stage.config = json.loads(json.dumps(earlier.config))
        elif ref != 'scratch':
            img = self._base_image(ref, run)
            stage.image_id = img.id
            stage.config = json.loads(json.dumps(img.config.get('config') or {}))
        _default_path(stage.config)
        run.stages.append(stage)
        triggers = list(stage.config.get('OnBuild') or ())
        if triggers:
            self._run_triggers(stage, triggers, run)
        return stage

    def _run_triggers(self, stage, triggers, run):
        """The base image's ONBUILD triggers, run as if they followed FROM;
        the new stage's config no longer carries them."""
        run.out('# Executing %d build %s\n'
                % (len(triggers), 'trigger' if len(triggers) == 1 else 'triggers'))
        stage.config['OnBuild'] = None
        parsed = [df.parse_trigger(t) for t in triggers]
        muted, run.out.muted = run.out.muted, True
        try:
            for ins in parsed:
                self._dispatch(stage, ins, run)
        finally:
            run.out.muted = muted
        if stage.config.get('OnBuild'):
            # Every trigger was metadata-only and cached into an image that
            # still names them: record the cleared config as one more step.
            stage.config['OnBuild'] = None

    def _base_image(self, ref, run):
        """The image a FROM (or COPY --from) names: local, or pulled when
        missing or when the request asked for ``pull``."""
        local = None
        try:
            local = self.images.resolve(ref)
        except errors.NotFound:
            pass
        except errors.EngineError as exc:
            raise df.BuildError('invalid reference format: %s (%s)' % (ref, exc))
        if local is not None and not run.opts.pull:
            return local
        if local is not None and _is_image_id(ref, local):
            return local   # an image id names no repository to pull from
        image_id = self._pull(ref, run)
        return self.images.resolve(image_id)

    def _pull(self, ref, run):
        dist = getattr(self.engine, 'distribution', None)
        if dist is None:
            raise df.BuildError('pull access denied for %s: the image is not present '
                                'locally and this engine has no registry client'
                                % ref)
        try:
            parsed = reference.parse(ref, default_tag=True)
        except errors.EngineError:
            raise df.BuildError('invalid reference format: %s' % ref)
        auth = _auth_for(run.opts.registry_auth, parsed.domain)

        def progress(msg):
            if isinstance(msg, dict):
                detail = msg.get('progressDetail') or {}
                if detail.get('current') is not None:
                    return   # byte counters would flood the build output
                run.out.message(msg)
        try:
            return dist.pull(str(parsed), auth=auth, progress=progress)
        except errors.EngineError as exc:
            text = str(exc)
            if parsed.familiar_name() not in text:
                text = 'pulling %s (not present locally): %s' % (ref, text)
            raise df.BuildError(text)

    def _copy_source(self, name, stage, run):
        """``COPY --from=name``: an earlier stage (by name or index) or an
        image (local, else pulled).  Returns an image id (None: an empty
        stage, FROM scratch with nothing in it)."""
        earlier = run.stage_named(name)
        if earlier is None and name.isdigit():
            # Docker 20.10's words (stagesBuildResults.validateIndex).
            index = int(name)
            if index == stage.index:
                raise df.BuildError('invalid from flag value %s: refers to current '
                                    'build stage' % name)
            if index > stage.index:
                raise df.BuildError('invalid from flag value %s: index out of bounds'
                                    % name)
            return run.stages[index].image_id
        if earlier is not None:
            if earlier is stage:
                raise df.BuildError('invalid from flag value %s: refers to the current '
                                    'build stage' % name)
            return earlier.image_id
        return self._base_image(name, run).id

    def _step_done(self, new_id, out):
        if not getattr(out, 'muted', False):
            out(' ---> %s\n' % _short(new_id))
        return new_id

    def _metadata_step(self, image_id, config, text, run, single_space=False,
                       author=None, mkdir=None):
        cc = _commented(config, text, single_space)
        if not run.opts.nocache:
            hit = run.cache.lookup(image_id, cc, config)
            if hit:
                run.out(' ---> Using cache\n')
                return self._step_done(hit, run.out)
        new = None
        if mkdir:
            new = self.executor.workdir(image_id, dict(config), cc, mkdir)
        if new is None:
            new = self.executor.make_image(image_id, dict(config), cc, author=author)
        return self._step_done(new, run.out)

    def _run(self, image_id, config, ins, args, opts, out, run):
        if not image_id:
            raise df.BuildError('RUN needs a filesystem with a shell: this stage '
                                'is FROM scratch and has no files yet')
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
            hit = run.cache.lookup(image_id, cc, config)
            if hit:
                out(' ---> Using cache\n')
                return self._step_done(hit, out)
        env = ['%s=%s' % kv for kv in run_args.items()] + list(config.get('Env') or [])
        code, c = self.executor.run(image_id, config, argv, env, out)
        remove = opts.forcerm or opts.rm
        if code != 0:
            if opts.remove_failed:
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


class _Run:
    """What the steps of one build share."""

    def __init__(self, ctx, opts, out, cache, meta_args, used, stages):
        self.ctx = ctx
        self.opts = opts
        self.out = out
        self.cache = cache
        self.meta_args = meta_args
        self.used = used
        self.stages = stages

    def stage_named(self, name):
        name = name.lower()
        for st in self.stages:
            if st.name == name:
                return st
        return None


# Docker's system.DefaultPathEnv for Linux.
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def _default_path(config):
    """A stage whose base sets no PATH gets Docker's default one (its
    dispatchState.setDefaultPath), so RUN finds its programs and the image
    records it."""
    env = list(config.get('Env') or [])
    if not any(e.partition('=')[0] == 'PATH' for e in env):
        config['Env'] = env + ['PATH=' + DEFAULT_PATH]


def _is_image_id(ref, img):
    bare = ref.split(':', 1)[-1] if ref.startswith('sha256:') else ref
    return len(bare) >= 12 and img.id.split(':', 1)[-1].startswith(bare)


def _auth_for(registry_auth, domain):
    """The X-Registry-Config entry for ``domain``: keys are hosts, with or
    without a scheme and path (Docker Hub's is https://index.docker.io/v1/)."""
    hub = ('docker.io', 'index.docker.io', 'registry-1.docker.io')
    for key, auth in registry_auth.items():
        host = key.split('://', 1)[-1].split('/', 1)[0]
        if host == domain or (host in hub and domain in hub):
            return auth
    return None


def _short(image_id):
    return image_id.split(':', 1)[-1][:12]


def _predefined():
    # Docker's predefined proxy args never warn.
    names = ('HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY')
    return set(names) | {n.lower() for n in names}
