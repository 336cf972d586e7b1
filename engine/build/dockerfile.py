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
import re

import dockerfile as _parser

from engine import changes as changes_mod
from engine import errors

KNOWN = ('FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'MAINTAINER',
         'EXPOSE', 'WORKDIR', 'USER', 'VOLUME', 'STOPSIGNAL', 'ARG',
         'COPY', 'ADD', 'ONBUILD', 'HEALTHCHECK', 'SHELL')
# Instructions that only change the image configuration.
METADATA = ('CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'MAINTAINER', 'EXPOSE',
            'WORKDIR', 'USER', 'VOLUME', 'STOPSIGNAL', 'SHELL', 'HEALTHCHECK',
            'ONBUILD')
# Docker's rule for stage names (instructions.validateDefinitionDescription).
_STAGE_NAME = re.compile(r'^[a-z][a-z0-9-_.]*$')
_ONBUILD_PREFIX = re.compile(r'(?i)^\s*ONBUILD\s*')

DEFAULT_SHELL = ['/bin/sh', '-c']

Instruction = collections.namedtuple(
    'Instruction', 'cmd json original line flags value rest')


class BuildError(errors.InvalidArgument):
    """A build stopped by its Dockerfile (reported in the stream)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def _parse_commands(text):
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
        if c.heredocs:
            raise BuildError('dockerfile line %d: heredocs need BuildKit; the '
                             'classic builder does not read them' % c.start_line)
        if name == 'ONBUILD':
            _check_trigger(c)
            # The trigger is stored as written (Docker keeps its case).
            rest = _ONBUILD_PREFIX.sub('', c.original, count=1)
        else:
            rest = c.original[len(c.cmd):].strip()
            for flag in c.flags:
                # Flags come first; the rest is what follows them.
                if rest.startswith(flag):
                    rest = rest[len(flag):].strip()
        out.append(Instruction(name, c.json, c.original, c.start_line,
                               tuple(c.flags), tuple(c.value), rest))
    return out


def _check_trigger(c):
    sub = (c.sub_cmd or '').upper()
    if not sub:
        raise BuildError('ONBUILD requires at least one argument')
    if sub == 'ONBUILD':
        raise BuildError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed')
    if sub in ('FROM', 'MAINTAINER'):
        raise BuildError("%s isn't allowed as an ONBUILD trigger" % sub)
    if sub not in KNOWN:
        raise BuildError('dockerfile parse error line %d: unknown instruction: %s'
                         % (c.start_line, sub))


def parse_trigger(text):
    """One ONBUILD trigger of a base image -> Instruction."""
    out = _parse_commands(text)
    if len(out) != 1:
        raise BuildError('onbuild trigger should be a single expression')
    if out[0].cmd in ('ONBUILD', 'FROM', 'MAINTAINER'):
        raise BuildError("%s isn't allowed as an ONBUILD trigger" % out[0].cmd)
    return out[0]


def parse(text):
    """Dockerfile text -> list of Instruction; bad syntax is BuildError."""
    out = _parse_commands(text)
    if not out:
        raise BuildError('the Dockerfile cannot be empty')
    if out[0].cmd not in ('FROM', 'ARG'):
        raise BuildError('failed to process "%s": no build stage in current context'
                         % out[0].original)
    for ins in out:
        if ins.cmd == 'FROM':
            parse_from(ins)
    return out


def parse_from(ins):
    """FROM image [AS name] -> (image word, stage name or None)."""
    if len(ins.value) not in (1, 3) or (
            len(ins.value) == 3 and ins.value[1].upper() != 'AS'):
        raise BuildError('FROM requires either one or three arguments')
    for flag in ins.flags:
        if not flag.startswith('--platform='):
            raise BuildError('Unknown flag: %s' % flag.lstrip('-').split('=')[0])
    if len(ins.value) == 1:
        return ins.value[0], None
    name = ins.value[2].lower()
    if not _STAGE_NAME.match(name):
        raise BuildError('invalid name for build stage: "%s", name can\'t start '
                         'with a number or contain symbols' % ins.value[2])
    return ins.value[0], name


def shell_of(config):
    return list((config or {}).get('Shell') or DEFAULT_SHELL)


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
    if name == 'SHELL':
        if not instr.json:
            raise BuildError('SHELL requires the arguments to be in JSON form')
        if not instr.value:
            raise BuildError('SHELL requires at least one argument')
        cfg['Shell'] = list(instr.value)
        return cfg, 'SHELL [%s]' % ' '.join(instr.value)
    if name == 'HEALTHCHECK':
        return _apply_healthcheck(instr, cfg)
    if name == 'ONBUILD':
        cfg['OnBuild'] = list(cfg.get('OnBuild') or []) + [instr.rest]
        return cfg, 'ONBUILD ' + instr.rest
    if name == 'ENV':
        env = dict(args)
        env.update(env_map(cfg.get('Env')))
        current = list(cfg.get('Env') or [])
        pairs = changes_mod._name_values(instr.rest, 'ENV', env)
        texts = []
        for k, v in pairs:
            # Docker replaces a variable where it stands (PATH stays first).
            for i, e in enumerate(current):
                if e.partition('=')[0] == k:
                    current[i] = '%s=%s' % (k, v)
                    break
            else:
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
            value = shell_of(cfg) + [instr.rest]
            out['Cmd' if name == 'CMD' else 'Entrypoint'] = value
        return out, '%s %s' % (name, _go_quote_list(value))
    if name == 'LABEL':
        pairs = changes_mod._name_values(instr.rest, 'LABEL',
                                         dict(args, **env_map(saved_env)))
        return out, 'LABEL ' + ' '.join('%s=%s' % kv for kv in pairs)
    scope = dict(args, **env_map(saved_env))
    if name == 'EXPOSE':
        # Docker sorts the words as written, then expands each (a variable
        # may hold several ports), and records them all.
        words = []
        for w in sorted(instr.rest.split()):
            words.extend(changes_mod.process_words(w, scope))
        return out, 'EXPOSE ' + ' '.join(words)
    if name == 'VOLUME':
        # The instruction's own volumes, in order, expanded.
        raw = list(instr.value) if instr.json else instr.rest.split()
        vols = [changes_mod.expand(v, scope).strip() for v in raw]
        return out, 'VOLUME [%s]' % ' '.join(vols)
    if name == 'WORKDIR':
        return out, 'WORKDIR ' + out['WorkingDir']
    if name == 'USER':
        return out, 'USER ' + out['User']
    if name == 'STOPSIGNAL':
        return out, 'STOPSIGNAL ' + out['StopSignal']
    raise BuildError('%s is not a metadata instruction' % name)


def run_argv(instr, config, args):
    """The argv of a RUN step (shell form under the SHELL, /bin/sh -c by
    default)."""
    if instr.json:
        return list(instr.value)  # the exec form is not expanded (no shell)
    return shell_of(config) + [instr.rest]


def parse_arg(instr):
    """ARG NAME[=default] -> (name, default or None)."""
    if len(instr.value) != 1 or not instr.value[0]:
        raise BuildError('ARG requires exactly one argument')
    name, eq, default = instr.value[0].partition('=')
    if not name:
        raise BuildError('ARG names can not be blank')
    return name, (default if eq else None)


_HC_FLAGS = {'--interval': 'Interval', '--timeout': 'Timeout',
             '--start-period': 'StartPeriod', '--retries': 'Retries'}
_MIN_DURATION_NS = 1000000   # Docker's container.MinimumDuration (1ms)


def _apply_healthcheck(instr, cfg):
    """HEALTHCHECK [flags] CMD ... | NONE, Docker 20.10's rules and history
    text (its ``%q`` of the HealthConfig)."""
    words = list(instr.value)
    if not words:
        raise BuildError('HEALTHCHECK requires an argument')
    kind = words[0].upper()
    if kind == 'NONE':
        if len(words) > 1 or instr.flags:
            raise BuildError("HEALTHCHECK NONE takes no arguments")
        hc = {'Test': ['NONE']}
    elif kind == 'CMD':
        hc = {}
        for flag in instr.flags:
            name, eq, value = flag.partition('=')
            if name not in _HC_FLAGS or not eq:
                raise BuildError('Unknown flag: %s' % name.lstrip('-'))
            if name == '--retries':
                try:
                    retries = int(value)
                except ValueError:
                    raise BuildError('invalid --retries value: %s' % value)
                if retries < 0:
                    raise BuildError('--retries cannot be negative (%d)' % retries)
                hc['Retries'] = retries
                continue
            try:
                ns = changes_mod._parse_duration(value, name)
            except errors.InvalidArgument as exc:
                raise BuildError(str(exc))
            if ns and ns < _MIN_DURATION_NS:
                raise BuildError('%s cannot be less than 1ms' % name)
            hc[_HC_FLAGS[name]] = ns
        cmd = instr.rest.strip()[len(words[0]):].strip()
        if not cmd:
            raise BuildError('Missing command after HEALTHCHECK CMD')
        value, is_json = None, False
        if cmd.startswith('['):
            try:
                value = json.loads(cmd)
                is_json = isinstance(value, list) and all(isinstance(v, str) for v in value)
            except ValueError:
                is_json = False
        hc['Test'] = (['CMD'] + value) if is_json else ['CMD-SHELL', cmd]
    else:
        raise BuildError('Unknown type "%s" in HEALTHCHECK (try CMD)' % words[0])
    cfg['Healthcheck'] = hc
    text = 'HEALTHCHECK &{[%s] %s %s %s %s}' % (
        ' '.join(json.dumps(t) for t in hc['Test']),
        json.dumps(go_duration(hc.get('Interval', 0)), ensure_ascii=False),
        json.dumps(go_duration(hc.get('Timeout', 0)), ensure_ascii=False),
        json.dumps(go_duration(hc.get('StartPeriod', 0)), ensure_ascii=False),
        _go_quote_rune(hc.get('Retries', 0)))
    return cfg, text


def go_duration(ns):
    """Go's time.Duration.String()."""
    if ns == 0:
        return '0s'
    sign = '-' if ns < 0 else ''
    ns = abs(int(ns))
    if ns < 1000:
        return '%s%dns' % (sign, ns)
    if ns < 1000000:
        return sign + _trim(ns / 1e3) + 'µs'
    if ns < 1000000000:
        return sign + _trim(ns / 1e6) + 'ms'
    hours, rem = divmod(ns, 3600 * 10**9)
    minutes, rem = divmod(rem, 60 * 10**9)
    secs = _trim_exact(rem, 10**9)
    if hours:
        return '%s%dh%dm%ss' % (sign, hours, minutes, secs)
    if minutes:
        return '%s%dm%ss' % (sign, minutes, secs)
    return '%s%ss' % (sign, secs)


def _trim(value):
    text = ('%.9f' % value).rstrip('0').rstrip('.')
    return text


def _trim_exact(value, unit):
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = ('%09d' % frac).rstrip('0')
    return '%d.%s' % (whole, digits)


def _go_quote_rune(n):
    """Go's %q of an int: a quoted character literal."""
    specials = {7: r'\a', 8: r'\b', 12: r'\f', 10: r'\n', 13: r'\r', 9: r'\t',
                11: r'\v', 39: "\\'", 92: r'\\'}
    if n in specials:
        return "'%s'" % specials[n]
    if 32 <= n < 127:
        return "'%s'" % chr(n)
    if n < 128:
        return "'\\x%02x'" % n
    if n < 0x10000:
        return "'\\u%04x'" % n
    return "'\\U%08x'" % n
