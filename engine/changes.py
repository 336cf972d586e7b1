"""Dockerfile instructions given to ``docker commit/import --change``.

Docker joins the changes into a one-stage Dockerfile and applies the
instructions that only touch the image configuration.  ``parse_changes``
does the same on the ``config`` section of an image config (the part with
Env, Cmd, Entrypoint, ...).
"""

import copy
import json
import posixpath
import re
import shlex
import signal

from engine import errors

# Instructions that exist in Dockerfiles but cannot be used as a change.
_DOCKERFILE_ONLY = {'ADD', 'ARG', 'COPY', 'FROM', 'MAINTAINER', 'RUN', 'SHELL'}
_DURATION_RE = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)')
_DURATION_UNITS = {'ns': 1, 'us': 1e3, 'µs': 1e3, 'ms': 1e6, 's': 1e9,
                   'm': 60e9, 'h': 3600e9}


def _bad(msg):
    return errors.InvalidArgument(msg)


def _lines(changes):
    """Split the joined changes into logical lines (backslash continuation)."""
    text = '\n'.join(changes or ())
    logical = []
    current = ''
    for raw in text.split('\n'):
        line = raw.strip() if not current else raw
        if not current and (not line.strip() or line.lstrip().startswith('#')):
            continue
        if line.rstrip().endswith('\\'):
            current += line.rstrip()[:-1]
            continue
        current += line
        logical.append(current.strip())
        current = ''
    if current.strip():
        logical.append(current.strip())
    return logical


def expand(word, env):
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-d}`` and ``${VAR:+a}`` like the builder."""
    out = []
    i = 0
    n = len(word)
    while i < n:
        c = word[i]
        if c == '\\' and i + 1 < n and word[i + 1] == '$':
            out.append('$')
            i += 2
            continue
        if c != '$' or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        if word[i + 1] == '{':
            end = word.find('}', i + 2)
            if end < 0:
                raise _bad('failed to process "%s": missing \'}\'' % word)
            body = word[i + 2:end]
            m = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$', body,
                         re.S)
            if not m:
                raise _bad('failed to process "%s": unsupported modifier' % word)
            name, op, arg = m.groups()
            val = env.get(name)
            if op == '-':
                out.append(val if val else arg)
            elif op == '+':
                out.append(arg if val else '')
            else:
                out.append(val or '')
            i = end + 1
            continue
        m = re.match(r'[A-Za-z_][A-Za-z0-9_]*', word[i + 1:])
        if not m:
            out.append('$')
            i += 1
            continue
        out.append(env.get(m.group(0), ''))
        i += 1 + len(m.group(0))
    return ''.join(out)


def _env_map(config):
    env = {}
    for item in config.get('Env') or ():
        k, _, v = item.partition('=')
        env[k] = v
    return env


def _words(rest, what):
    try:
        lexer = shlex.shlex(rest, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ''
        return list(lexer)
    except ValueError as e:
        raise _bad('%s: %s' % (what, e))


def _var(text, i, env):
    """Expand the variable starting at ``text[i] == '$'``; return (value, next)."""
    if i + 1 < len(text) and text[i + 1] == '{':
        end = text.find('}', i + 2)
        if end < 0:
            raise _bad("failed to process \"%s\": missing '}'" % text)
        m = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$',
                     text[i + 2:end], re.S)
        if not m:
            raise _bad('failed to process "%s": unsupported modifier' % text)
        name, op, arg = m.groups()
        val = env.get(name)
        if op == '-':
            return (val if val else arg), end + 1
        if op == '+':
            return (arg if val else ''), end + 1
        return (val or ''), end + 1
    m = re.match(r'[A-Za-z_][A-Za-z0-9_]*', text[i + 1:])
    if not m:
        return '$', i + 1
    return env.get(m.group(0), ''), i + 1 + len(m.group(0))


def process_words(text, env, split=True):
    """Shell-like words: quotes, backslashes and $VAR expansion at once.

    Single quotes keep their content literally; double quotes expand
    variables and honour backslash before ``"``, ``\\`` and ``$``.
    ``split=False`` returns the whole text as one word.
    """
    words, cur, have = [], [], False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace() and split:
            if have:
                words.append(''.join(cur))
                cur, have = [], False
            i += 1
            continue
        have = True
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise _bad('unexpected end of statement while looking for '
                           'matching single-quote')
            cur.append(text[i + 1:end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise _bad('unexpected end of statement while looking '
                               'for matching double-quote')
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == '\\' and i + 1 < n and text[i + 1] in '"\\$':
                    cur.append(text[i + 1])
                    i += 2
                elif c == '$':
                    val, i = _var(text, i, env)
                    cur.append(val)
                else:
                    cur.append(c)
                    i += 1
        elif c == '\\' and i + 1 < n:
            cur.append(text[i + 1])
            i += 2
        elif c == '$':
            val, i = _var(text, i, env)
            cur.append(val)
        else:
            cur.append(c)
            i += 1
    if have:
        words.append(''.join(cur))
    return words


def _name_values(rest, instr, env):
    """Parse ``k v`` (legacy, one pair) or ``k=v k2="v 2"`` pairs."""
    rest = rest.strip()
    if not rest:
        raise _bad('%s requires at least one argument' % instr)
    # As moby's parseNameVal: the first word, quotes respected, decides
    # between the legacy form and key=value pairs ("a b"=c is a pair).
    first = _first_word(rest)
    if '=' not in first:
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise _bad('%s must have two arguments' % instr)
        value = process_words(parts[1], env, split=False)
        return [(parts[0], value[0] if value else '')]
    pairs = []
    for word in process_words(rest, env):
        if '=' not in word:
            raise _bad("%s names can not be blank or key-value pairs must be "
                       "of the form key=value: '%s'" % (instr, word))
        k, _, v = word.partition('=')
        if not k:
            raise _bad('%s names can not be blank' % instr)
        pairs.append((k, v))
    return pairs


def _first_word(text):
    """The first whitespace-separated word of ``text``, where quoted text
    and backslash escapes do not end a word (moby's parseWords)."""
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if c == '\\' and quote != "'":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = None
        elif c in '"\'':
            quote = c
        elif c.isspace():
            break
        i += 1
    return text[:i]


def _json_or_shell(rest):
    """JSON array form, else the shell form wrapped in /bin/sh -c."""
    text = rest.strip()
    if text.startswith('['):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value, True
    return ['/bin/sh', '-c', text], False


def _parse_duration(text, flag):
    """Go-style durations (``30s``, ``1m30s``) to nanoseconds."""
    if text in ('0', ''):
        return 0
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise _bad('invalid duration for %s: %s' % (flag, text))
    return int(total)


def _validate_signal(sig):
    s = sig.upper()
    if s.isdigit():
        if 0 < int(s) < 65:
            return sig
    else:
        name = s if s.startswith('SIG') else 'SIG' + s
        if hasattr(signal.Signals, name) or re.match(r'^SIGRTM(IN|AX)([+-]\d+)?$', name):
            return sig
    raise _bad('Invalid signal: %s' % sig)


def _expose(config, rest, env):
    ports = config.get('ExposedPorts') or {}
    for word in _words(expand(rest, env), 'EXPOSE'):
        port, _, proto = word.partition('/')
        proto = (proto or 'tcp').lower()
        if proto not in ('tcp', 'udp', 'sctp'):
            raise _bad('invalid proto: %s' % proto)
        lo, _, hi = port.partition('-')
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise _bad('invalid containerPort: %s' % port)
        start, end = int(lo), int(hi or lo)
        if not (0 < start <= end <= 65535):
            raise _bad('invalid containerPort: %s' % port)
        if end - start > 1024:
            raise _bad('port range too large: %s' % port)
        for p in range(start, end + 1):
            ports['%d/%s' % (p, proto)] = {}
    if not ports:
        raise _bad('EXPOSE requires at least one argument')
    config['ExposedPorts'] = ports


def _healthcheck(config, rest):
    words = rest.strip()
    if words.upper() == 'NONE':
        config['Healthcheck'] = {'Test': ['NONE']}
        return
    hc = {}
    flags = {'--interval': 'Interval', '--timeout': 'Timeout',
             '--start-period': 'StartPeriod', '--start-interval': 'StartInterval',
             '--retries': 'Retries'}
    while words.startswith('--'):
        flag, _, words = words.partition(' ')
        words = words.lstrip()
        name, eq, value = flag.partition('=')
        if name not in flags or not eq:
            raise _bad('Unknown flag: %s' % flag.lstrip('-'))
        if name == '--retries':
            if not value.isdigit():
                raise _bad('invalid --retries: %s' % value)
            hc['Retries'] = int(value)
        else:
            hc[flags[name]] = _parse_duration(value, name)
    kind, _, cmd = words.partition(' ')
    if kind.upper() != 'CMD' or not cmd.strip():
        raise _bad('Unknown type "%s" in HEALTHCHECK (try CMD)' % kind)
    argv, is_json = _json_or_shell(cmd)
    hc['Test'] = (['CMD'] + argv) if is_json else ['CMD-SHELL', cmd.strip()]
    config['Healthcheck'] = hc


def parse_changes(changes, config=None):
    """Apply ``--change`` instructions to a copy of ``config`` and return it.

    Unknown instructions and Dockerfile instructions that cannot change a
    configuration raise InvalidArgument.
    """
    config = copy.deepcopy(config) if config else {}
    cmd_set = False
    for line in _lines(changes):
        instr, _, rest = line.partition(' ')
        if '\t' in instr:
            instr, _, more = instr.partition('\t')
            rest = more + ' ' + rest
        key = instr.upper()
        rest = rest.strip()
        env = _env_map(config)
        if key == 'CMD':
            config['Cmd'] = _json_or_shell(rest)[0]
            cmd_set = True
        elif key == 'ENTRYPOINT':
            config['Entrypoint'] = _json_or_shell(rest)[0]
            if not cmd_set:
                config['Cmd'] = None
        elif key == 'ENV':
            current = list(config.get('Env') or [])
            for k, v in _name_values(rest, 'ENV', env):
                current = [e for e in current if e.partition('=')[0] != k]
                current.append('%s=%s' % (k, v))
                env[k] = v
            config['Env'] = current
        elif key == 'LABEL':
            labels = dict(config.get('Labels') or {})
            for k, v in _name_values(rest, 'LABEL', env):
                labels[k] = v
            config['Labels'] = labels
        elif key == 'EXPOSE':
            _expose(config, rest, env)
        elif key == 'WORKDIR':
            if not rest:
                raise _bad('WORKDIR requires exactly one argument')
            path = expand(rest, env)
            if not path.startswith('/'):
                path = (config.get('WorkingDir') or '/').rstrip('/') + '/' + path
            config['WorkingDir'] = posixpath.normpath(path)
        elif key == 'USER':
            if not rest:
                raise _bad('USER requires exactly one argument')
            config['User'] = expand(rest, env)
        elif key == 'VOLUME':
            value, is_json = _json_or_shell(rest)
            paths = value if is_json else _words(rest, 'VOLUME')
            vols = dict(config.get('Volumes') or {})
            if not paths:
                raise _bad('VOLUME requires at least one argument')
            for p in paths:
                p = expand(p, env).strip()
                if not p:
                    raise _bad('VOLUME specified can not be an empty string')
                vols[p] = {}
            config['Volumes'] = vols
        elif key == 'STOPSIGNAL':
            if not rest:
                raise _bad('STOPSIGNAL requires exactly one argument')
            config['StopSignal'] = _validate_signal(expand(rest, env))
        elif key == 'ONBUILD':
            trigger = rest.split(None, 1)[0].upper() if rest else ''
            if not trigger:
                raise _bad('ONBUILD requires at least one argument')
            if trigger in ('ONBUILD', 'FROM', 'MAINTAINER'):
                raise _bad("%s isn't allowed as an ONBUILD trigger" % trigger)
            onbuild = list(config.get('OnBuild') or [])
            onbuild.append(trigger + rest[len(trigger):])
            config['OnBuild'] = onbuild
        elif key == 'HEALTHCHECK':
            _healthcheck(config, rest)
        elif key in _DOCKERFILE_ONLY:
            raise _bad('%s is not a valid change command' % key.lower())
        else:
            raise _bad('dockerfile parse error line 1: unknown instruction: %s'
                       % key)
    return config
