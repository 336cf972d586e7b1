"""The COPY and ADD steps of a build (Builder._copy), as Docker 20.10's
classic builder does them.

* Sources come from the build context, or with ``COPY --from=X`` from the
  root filesystem of an image (an earlier stage, or an image), mounted
  read-only for the step and unmounted afterwards, even on error; ADD also
  takes http(s) URLs (engine.build.add) and extracts local tar archives.
* Owners: ``--chown`` (names from the destination image), else the source
  image's owners for --from, else 0:0.
* The cache key (the step's recorded command, as Docker's history shows
  it) carries a digest of the content copied: a changed file, a changed
  download or a changed source stage invalidates the step.
"""

import tempfile

from engine import errors
from engine.build import add as add_mod
from engine.build import context as context_mod
from engine.build import dockerfile as df


def copy_step(builder, ctx, image_id, config, ins, args, opts, out,
              resolve_from=None):
    """Run one COPY/ADD instruction ``ins``; returns the new image id."""
    flags = parse_flags(ins)
    if len(ins.value) < 2:
        raise df.BuildError('%s requires at least two arguments, but only one '
                            'was provided. Destination could not be determined.'
                            % ins.cmd)
    words = [df.expand(w, config, args) for w in ins.value]
    patterns, dest = words[:-1], words[-1]
    # Docker expands variables in --chown, not in --from.
    chown = df.expand(flags['chown'], config, args) if flags.get('chown') else ''
    chown_text = '--chown=%s' % chown if chown else ''
    dest_is_dir = dest.endswith('/')
    step = _Step(builder, image_id, config, ins, opts, out, dest, chown)

    if 'from' in flags:
        source_id = _source_image(resolve_from or _image_resolver(builder),
                                  flags['from'])
        with builder.executor.image_view(source_id) as root:
            sources = context_mod.resolve_sources(
                root, patterns, dest_is_dir, ins.cmd, in_context=False)
            digest = context_mod.checksum(sources, owners=True)
            return step.run(sources, '%s%s:%s' % (chown_text, kind(sources),
                                                  digest), keep_owners=True)

    urls = [p for p in patterns if add_mod.is_url(p)]
    if urls and ins.cmd == 'COPY':
        raise df.BuildError("COPY failed: source can't be a URL for COPY")
    if not urls:
        sources = ctx.sources(patterns, dest_is_dir, cmd=ins.cmd)
        digest = ctx.checksum(sources)
        extract = set()
        if ins.cmd == 'ADD':
            extract = {s.path for s in sources
                       if not s.is_dir and add_mod.is_archive(s.path)}
        return step.run(sources, '%s%s:%s' % (chown_text, kind(sources), digest),
                        extract=extract)

    # Docker downloads every time, then keys the cache by the content.
    workdir = tempfile.mkdtemp(prefix='add-', dir=ctx.tmpdir)
    try:
        sources, extract = [], set()
        for p in patterns:
            if add_mod.is_url(p):
                name, path = builder.executor.download(
                    p, tempfile.mkdtemp(dir=workdir))
                out('\n')
                sources.append(context_mod.Source(name, path, False))
                continue
            # A wildcard matching nothing is no error while others match.
            for s in context_mod._one_source(ctx.root, p, ins.cmd, True):
                sources.append(s)
                if not s.is_dir and add_mod.is_archive(s.path):
                    extract.add(s.path)
        if len(sources) > 1 and not dest_is_dir:
            raise df.BuildError(
                'When using %s with more than one source file, the '
                'destination must be a directory and end with a /' % ins.cmd)
        digest = ctx.checksum(sources)
        # Docker's history shows a lone URL's digest without a kind.
        what = ('%s%s:%s' % (chown_text, kind(sources), digest)
                if len(sources) > 1 else chown_text + digest)
        return step.run(sources, what, extract=extract)
    finally:
        context_mod.remove_tree(workdir)


class _Step(object):
    def __init__(self, builder, image_id, config, ins, opts, out, dest, chown):
        self.builder = builder
        self.image_id = image_id
        self.config = config
        self.ins = ins
        self.opts = opts
        self.out = out
        self.dest = dest
        self.chown = chown

    def run(self, sources, what, keep_owners=False, extract=()):
        from engine import build as build_mod
        b = self.builder
        cc = build_mod._commented(self.config, '%s %s in %s ' % (
            self.ins.cmd, what, self.dest), single_space=True)
        if not self.opts.nocache:
            hit = b.executor.cached(self.image_id, cc)
            if hit:
                self.out(' ---> Using cache\n')
                return b._step_done(hit, self.out)
        new = b.executor.copy(self.image_id, dict(self.config), cc, sources,
                              self.dest, self.config.get('WorkingDir'),
                              chown=self.chown, keep_owners=keep_owners,
                              extract=extract)
        return b._step_done(new, self.out)


def _source_image(resolve, value):
    """Docker words every failure to find --from's image alike."""
    prefix = 'invalid from flag value %s: ' % value
    try:
        return resolve(value)
    except (df.BuildError, errors.EngineError) as exc:
        if str(exc).startswith(prefix):
            raise
        raise df.BuildError(prefix + str(exc))


def _image_resolver(builder):
    """--from without the build loop's resolver: a local image only."""
    def resolve(name):
        try:
            return builder.images.resolve(name).id
        except errors.NotFound:
            raise df.BuildError('invalid from flag value %s: No such image: %s'
                                % (name, name))
    return resolve


def parse_flags(ins):
    """COPY/ADD flags as Docker 20.10's classic builder takes them: --chown
    and (COPY) --from; --chmod needs BuildKit; anything else is unknown."""
    allowed = ('chown', 'chmod', 'from') if ins.cmd == 'COPY' \
        else ('chown', 'chmod')
    flags = {}
    for flag in ins.flags:
        name, eq, value = flag[2:].partition('=') if flag.startswith('--') \
            else (flag, '', '')
        if name not in allowed:
            raise df.BuildError('dockerfile parse error line %d: Unknown flag: '
                                '%s' % (ins.line, name))
        if not eq:
            raise df.BuildError('dockerfile parse error line %d: Missing a '
                                'value on flag: %s' % (ins.line, name))
        flags[name] = value
    if 'chmod' in flags:
        raise df.BuildError('the --chmod option requires BuildKit. Refer to '
                            'https://docs.docker.com/go/buildkit/ to learn how '
                            'to build images with BuildKit enabled')
    if not flags.get('from', True):
        del flags['from']
    return flags


def kind(sources):
    if len(sources) > 1:
        return 'multi'
    return 'dir' if sources[0].is_dir else 'file'
