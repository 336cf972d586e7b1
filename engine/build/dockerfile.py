"""Dockerfile parsing and the evaluation of metadata instructions.

Parsing goes through the ``dockerfile`` package (a binding of
moby/buildkit's own parser), so line continuations, comments and JSON
forms read exactly as Docker reads them.  Evaluation of the
configuration-only instructions reuses engine.changes (the same rules as
``docker commit --change``), with build arguments visible to expansion but
never stored in the image.
"""

import collections
import json

import dockerfile as _parser

from engine import changes as changes_mod
from engine import errors

# Instructions this slice evaluates; the rest are refused by name.
SUPPORTED = ('FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'MAINTAINER',
             'EXPOSE', 'WORKDIR', 'USER', 'VOLUME', 'STOPSIGNAL', 'ARG',
             'COPY', 'ADD')
LATER = ('ONBUILD', 'HEALTHCHECK', 'SHELL')
KNOWN = SUPPORTED + LATER

DEFAULT_SHELL = ['/bin/sh', '-c']

Instruction = collections.namedtuple(
    'Instruction', 'cmd json original line flags value rest')


class BuildError(errors.InvalidArgument):
    """A build stopped by its Dockerfile (reported in the stream)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def parse(text):
    """Dockerfile text -> list of Instruction; bad syntax is BuildError."""
    try:
        commands = _parser.parse_string(text)
    except _parser.GoParseError as exc:
        raise BuildError('dockerfile parse error: %s' % exc)
    out = []
    for c in commands:
        name = c.cmd.upper()
        if name not in KNOWN:
            raise BuildError('dockerfile parse error line %d: unknown instruction: %s'
                             % (c.start_line, c.cmd.upper()))
        if name in LATER:
            raise BuildError('dockerfile line %d: %s is not supported yet'
                             % (c.start_line, name))
        rest = c.original[len(c.cmd):].strip()
        for flag in c.flags:
            # Flags come first; the rest is what follows them.
            if rest.startswith(flag):
                rest = rest[len(flag):].strip()
        out.append(Instruction(name, c.json, c.original, c.start_line,
                               tuple(c.flags), tuple(c.value), rest))
    if not out:
        raise BuildError('the Dockerfile cannot be empty')
    if out[0].cmd not in ('FROM', 'ARG'):
        raise BuildError('failed to process "%s": no build stage in current context'
                         % out[0].original)
    return out


def env_map(env_list):
    out = {}
    for e in env_list or ():
        k, _, v = e.partition('=')
        out[k] = v
    return out


def expand(word, config, args):
    """Expand $VARs as Docker does: ENV wins over ARG of the same name."""
    env = dict(args)
    env.update(env_map(config.get('Env')))
    return changes_mod.expand(word, env)


def _go_quote_list(words):
    # Docker prints []string with %q: ["a" "b"].
    return '[%s]' % ' '.join(json.dumps(w) for w in words)


def apply_metadata(instr, config, args):
    """Apply a configuration-only instruction.

    Returns (new config, history text after ``#(nop)``).  ``config`` is not
    changed; ``args`` (the build arguments in scope) expand but never land
    in the image.
    """
    cfg = json.loads(json.dumps(config or {}))
    name = instr.cmd
    if name == 'MAINTAINER':
        return cfg, 'MAINTAINER ' + instr.rest
    if name == 'ENV':
        env = dict(args)
        env.update(env_map(cfg.get('Env')))
        current = list(cfg.get('Env') or [])
        pairs = changes_mod._name_values(instr.rest, 'ENV', env)
        texts = []
        for k, v in pairs:
            current = [e for e in current if e.partition('=')[0] != k]
            current.append('%s=%s' % (k, v))
            env[k] = v
            texts.append('%s=%s' % (k, v))
        cfg['Env'] = current
        return cfg, 'ENV ' + ' '.join(texts)
    # The other instructions: engine.changes, with args visible to expansion.
    saved_env = cfg.get('Env')
    scoped = dict(cfg)
    scoped['Env'] = ['%s=%s' % kv for kv in args.items()] + list(saved_env or [])
    out = changes_mod.parse_changes([name + ' ' + instr.rest], scoped)
    out['Env'] = saved_env
    if name in ('CMD', 'ENTRYPOINT'):
        value = out['Cmd'] if name == 'CMD' else out['Entrypoint']
        if not instr.json:
            # The shell form runs under the build's shell.
            value = DEFAULT_SHELL + [instr.rest]
            out['Cmd' if name == 'CMD' else 'Entrypoint'] = value
        return out, '%s %s' % (name, _go_quote_list(value))
    if name == 'LABEL':
        pairs = changes_mod._name_values(instr.rest, 'LABEL',
                                         dict(args, **env_map(saved_env)))
        return out, 'LABEL ' + ' '.join('%s=%s' % kv for kv in pairs)
    if name == 'EXPOSE':
        ports = sorted((out.get('ExposedPorts') or {}).keys()
                       - (cfg.get('ExposedPorts') or {}).keys())
        return out, 'EXPOSE ' + ' '.join(ports or [instr.rest])
    if name == 'VOLUME':
        vols = sorted((out.get('Volumes') or {}).keys())
        return out, 'VOLUME %s' % ('[' + ' '.join(vols) + ']')
    if name == 'WORKDIR':
        return out, 'WORKDIR ' + out['WorkingDir']
    if name == 'USER':
        return out, 'USER ' + out['User']
    if name == 'STOPSIGNAL':
        return out, 'STOPSIGNAL ' + out['StopSignal']
    raise BuildError('%s is not a metadata instruction' % name)


def run_argv(instr, config, args):
    """The argv of a RUN step (shell form under /bin/sh -c)."""
    if instr.json:
        return list(instr.value)  # the exec form is not expanded (no shell)
    return DEFAULT_SHELL + [instr.rest]


def parse_arg(instr):
    """ARG NAME[=default] -> (name, default or None)."""
    if len(instr.value) != 1 or not instr.value[0]:
        raise BuildError('ARG requires exactly one argument')
    name, eq, default = instr.value[0].partition('=')
    if not name:
        raise BuildError('ARG names can not be blank')
    return name, (default if eq else None)
