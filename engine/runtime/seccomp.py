"""Turn a Docker-format seccomp profile into the OCI ``linux.seccomp`` form.

Docker's profile format (what ``/usr/share/containers/seccomp.json`` uses)
describes rules for every architecture and capability set at once: each
syscall group may be limited by ``includes``/``excludes`` on ``caps``,
``arches`` and ``minKernel``, and ``archMap`` lists the native architecture
with the sub-architectures a 64-bit kernel also accepts.  The OCI runtime
wants one flat list for one container, so we pick the rules that apply to
this host and to the container's bounding capabilities.
"""

import functools
import json
import os
import platform

from engine import errors

# Docker's own default profile, as Debian ships it with the docker.io sources
# (golang-github-docker-docker-dev): the profile Docker 20.10 builds in.
DOCKER_PROFILE = '/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json'
# containers-common's (podman's) profile: derived from Docker's but looser
# (it allows keyctl, unshare, mount... and leaves them to capabilities).
CONTAINERS_PROFILE = '/usr/share/containers/seccomp.json'
PROFILE_CANDIDATES = (DOCKER_PROFILE, CONTAINERS_PROFILE)


def _first_existing(paths):
    for path in paths:
        if os.path.exists(path):
            return path
    return paths[0]


# What containers get unless configured otherwise ([engine] seccomp_profile).
DEFAULT_PROFILE = _first_existing(PROFILE_CANDIDATES)

# uname machine -> (Go architecture name used in profile "arches", libseccomp name)
_ARCHES = {
    'x86_64': ('amd64', 'SCMP_ARCH_X86_64'),
    'aarch64': ('arm64', 'SCMP_ARCH_AARCH64'),
    'armv7l': ('arm', 'SCMP_ARCH_ARM'),
    'armv6l': ('arm', 'SCMP_ARCH_ARM'),
    'i686': ('x86', 'SCMP_ARCH_X86'),
    'i386': ('x86', 'SCMP_ARCH_X86'),
    'ppc64le': ('ppc64le', 'SCMP_ARCH_PPC64LE'),
    's390x': ('s390x', 'SCMP_ARCH_S390X'),
    'mips64': ('mips64', 'SCMP_ARCH_MIPS64'),
    'riscv64': ('riscv64', 'SCMP_ARCH_RISCV64'),
}


def host_arch():
    """(profile arch name, libseccomp arch) of the running kernel."""
    machine = platform.machine()
    try:
        return _ARCHES[machine]
    except KeyError:
        return (machine, 'SCMP_ARCH_' + machine.upper())


# Sub-architectures a 64-bit kernel runs only when built with these options.
_SUBARCH_KERNEL_OPTION = {
    'SCMP_ARCH_X86': 'CONFIG_IA32_EMULATION',
    'SCMP_ARCH_X32': 'CONFIG_X86_X32_ABI',
}

_KERNEL_CONFIGS = ('/proc/config.gz', '/boot/config-%s')


@functools.lru_cache(maxsize=1)
def kernel_config():
    """The running kernel's build options as {name: value}, or None if unknown."""
    import gzip
    for pattern in _KERNEL_CONFIGS:
        path = pattern % platform.release() if '%s' in pattern else pattern
        try:
            opener = gzip.open if path.endswith('.gz') else open
            with opener(path, 'rt', errors='replace') as f:
                options = {}
                for line in f:
                    name, eq, value = line.strip().partition('=')
                    if eq and name.startswith('CONFIG_'):
                        options[name] = value
                return options
        except (OSError, EOFError):
            continue
    return None


def supported_subarches(subarches, config=None):
    """Drop sub-architectures the kernel cannot execute.

    A filter for an ABI the kernel lacks guards nothing (such syscalls fail
    with ENOSYS before any process runs them) yet makes runc compile it for
    every container: on x86_64 the x32 part costs several milliseconds.
    Unknown kernel configuration keeps everything.
    """
    config = kernel_config() if config is None else config
    if not config:
        return list(subarches)
    return [a for a in subarches
            if a not in _SUBARCH_KERNEL_OPTION or config.get(_SUBARCH_KERNEL_OPTION[a]) == 'y']


def _kernel_version(release=None):
    release = release or platform.release()
    parts = []
    for piece in release.split('-')[0].split('.')[:2]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


@functools.lru_cache(maxsize=8)
def _load_cached(path, mtime_ns, size):
    with open(path, 'rb') as f:
        profile = json.load(f)
    if not isinstance(profile, dict) or 'defaultAction' not in profile:
        raise errors.InvalidArgument('seccomp profile %s has no defaultAction' % path)
    return profile


def load_profile(path=DEFAULT_PROFILE):
    """Parse a Docker-format profile; parsed once per file version."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errors.InvalidArgument('seccomp profile %s does not exist' % path)
    try:
        return _load_cached(path, st.st_mtime_ns, st.st_size)
    except ValueError as exc:
        raise errors.InvalidArgument('seccomp profile %s is not valid JSON: %s' % (path, exc))


def _norm_cap(cap):
    cap = cap.upper()
    return cap if cap.startswith('CAP_') else 'CAP_' + cap


def _applies(rule, caps, arch, kernel):
    inc = rule.get('includes') or {}
    exc = rule.get('excludes') or {}
    if inc.get('arches') and arch not in inc['arches']:
        return False
    if exc.get('arches') and arch in exc['arches']:
        return False
    if inc.get('caps') and not all(_norm_cap(c) in caps for c in inc['caps']):
        return False
    if exc.get('caps') and any(_norm_cap(c) in caps for c in exc['caps']):
        return False
    if inc.get('minKernel') and kernel < _kernel_version(inc['minKernel']):
        return False
    if exc.get('minKernel') and kernel >= _kernel_version(exc['minKernel']):
        return False
    return True


def convert(profile, capabilities, arch=None, kernel=None, kernel_options=None):
    """Return the OCI ``linux.seccomp`` dict for ``profile`` (a parsed Docker profile).

    ``capabilities``: the container's bounding set (names with or without
    ``CAP_``).  ``arch``: (profile arch name, libseccomp arch), default this
    host's.  ``kernel``: (major, minor), default the running kernel's.
    ``kernel_options``: the kernel's build options (default: read from the
    running kernel) deciding which sub-architectures need a filter.
    """
    arch_name, scmp_arch = arch or host_arch()
    kernel = kernel or _kernel_version()
    caps = {_norm_cap(c) for c in capabilities}

    architectures = []
    for entry in profile.get('archMap') or ():
        if entry.get('architecture') == scmp_arch:
            architectures = [scmp_arch] + supported_subarches(
                entry.get('subArchitectures') or (), kernel_options)
            break
    if not architectures and profile.get('architectures'):
        architectures = list(profile['architectures'])

    out = {'defaultAction': profile['defaultAction']}
    if profile.get('defaultErrnoRet') is not None:
        out['defaultErrnoRet'] = profile['defaultErrnoRet']
    if architectures:
        out['architectures'] = architectures
    for key in ('flags', 'listenerPath', 'listenerMetadata'):
        if profile.get(key):
            out[key] = profile[key]

    syscalls = []
    for rule in profile.get('syscalls') or ():
        if not _applies(rule, caps, arch_name, kernel):
            continue
        names = list(rule.get('names') or ())
        if rule.get('name'):
            names.append(rule['name'])
        if not names:
            continue
        call = {'names': names, 'action': rule['action']}
        if rule.get('errnoRet') is not None:
            call['errnoRet'] = rule['errnoRet']
        args = rule.get('args') or []
        if args:
            call['args'] = [{'index': a['index'], 'value': a.get('value', 0),
                             'valueTwo': a.get('valueTwo', 0), 'op': a['op']}
                            for a in args]
        syscalls.append(call)
    out['syscalls'] = syscalls
    return out


@functools.lru_cache(maxsize=64)
def _default_for(path, mtime_ns, caps):
    return json.dumps(convert(load_profile(path), caps))


def for_container(capabilities, path=DEFAULT_PROFILE):
    """The converted profile at ``path`` for a container with ``capabilities``.

    Results are cached per capability set; each call returns a fresh dict.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errors.InvalidArgument('seccomp profile %s does not exist' % path)
    return json.loads(_default_for(path, st.st_mtime_ns, frozenset(capabilities)))


# ------------------------------------------------------------ custom profiles
# What runc 1.1 accepts; anything else would only fail later, at start.
ACTIONS = frozenset((
    'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP',
    'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG'))
ARCHES = frozenset((
    'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM',
    'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32',
    'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC',
    'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_S390',
    'SCMP_ARCH_S390X'))
OPERATORS = frozenset((
    'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE',
    'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'))
FLAGS = frozenset(('SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG',
                   'SECCOMP_FILTER_FLAG_SPEC_ALLOW'))
MAX_PROFILE_SIZE = 1 << 20
MAX_RULES = 4096
_MAX_ERRNO = 4095


def _bad(message):
    return errors.InvalidArgument('invalid seccomp profile: %s' % message)


def _str_list(value, what):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad('%s must be a list of strings' % what)
    return value


def _check_action(action, errno_ret, where):
    if not isinstance(action, str):
        raise _bad('%s action must be a string' % where)
    if action == 'SCMP_ACT_NOTIFY':
        raise _bad('%s: SCMP_ACT_NOTIFY needs a seccomp agent, which this engine '
                   'does not support' % where)
    if action not in ACTIONS:
        raise _bad('string %s is not a valid action for seccomp' % action)
    if errno_ret is not None and (isinstance(errno_ret, bool) or not isinstance(errno_ret, int)
                                  or not 0 <= errno_ret <= _MAX_ERRNO):
        raise _bad('%s errnoRet must be an errno number (0-%d)' % (where, _MAX_ERRNO))


def _check_filter(flt, where):
    if flt is None:
        return
    if not isinstance(flt, dict):
        raise _bad('%s must be an object' % where)
    _str_list(flt.get('caps'), where + '.caps')
    _str_list(flt.get('arches'), where + '.arches')
    kernel = flt.get('minKernel')
    if kernel not in (None, ''):
        parts = kernel.split('.') if isinstance(kernel, str) else []
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise _bad('invalid kernel version: %r, expected "<kernel>.<major>"' % (kernel,))


def validate_profile(profile):
    """Check a parsed Docker-format profile the way Docker and runc would,
    so that a bad profile is refused at create rather than failing at start."""
    if not isinstance(profile, dict):
        raise errors.InvalidArgument('Decoding seccomp profile failed: the profile must '
                                     'be a JSON object')
    default = profile.get('defaultAction', '')
    if default != '' or profile.get('syscalls'):
        _check_action(default, profile.get('defaultErrnoRet'), 'defaultAction')
    arches = _str_list(profile.get('architectures'), 'architectures')
    arch_map = profile.get('archMap') or []
    if arches and arch_map:
        raise _bad("'architectures' and 'archMap' were specified in the seccomp profile, "
                   "use either 'architectures' or 'archMap'")
    if not isinstance(arch_map, list):
        raise _bad('archMap must be a list')
    for entry in arch_map:
        if not isinstance(entry, dict):
            raise _bad('archMap entries must be objects')
        arches = arches + [entry.get('architecture')] + _str_list(
            entry.get('subArchitectures'), 'subArchitectures')
    for arch in arches:
        if arch not in ARCHES:
            raise _bad('string %s is not a valid arch for seccomp' % (arch,))
    for flag in _str_list(profile.get('flags'), 'flags'):
        if flag not in FLAGS:
            raise _bad('flag %s is not a valid seccomp flag' % flag)
    if profile.get('listenerPath') or profile.get('listenerMetadata'):
        raise _bad('listenerPath (a seccomp agent) is not supported by this engine')
    rules = profile.get('syscalls') or []
    if not isinstance(rules, list):
        raise _bad('syscalls must be a list')
    if len(rules) > MAX_RULES:
        raise _bad('more than %d syscall rules' % MAX_RULES)
    for i, rule in enumerate(rules):
        where = 'syscalls[%d]' % i
        if not isinstance(rule, dict):
            raise _bad('%s must be an object' % where)
        names = _str_list(rule.get('names'), where + '.names')
        name = rule.get('name')
        if name is not None and not isinstance(name, str):
            raise _bad('%s.name must be a string' % where)
        if name and names:
            raise _bad("'name' and 'names' were specified in the seccomp profile, "
                       "use either 'name' or 'names'")
        _check_action(rule.get('action'), rule.get('errnoRet'), where)
        args = rule.get('args') or []
        if not isinstance(args, list):
            raise _bad('%s.args must be a list' % where)
        for arg in args:
            if not isinstance(arg, dict):
                raise _bad('%s.args entries must be objects' % where)
            index = arg.get('index')
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
                raise _bad('%s: argument index must be 0-5' % where)
            for key in ('value', 'valueTwo'):
                v = arg.get(key, 0)
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 64:
                    raise _bad('%s: argument %s must be an unsigned 64-bit integer'
                               % (where, key))
            if arg.get('op') not in OPERATORS:
                raise _bad('string %s is not a valid operator for seccomp' % (arg.get('op'),))
        _check_filter(rule.get('includes'), where + '.includes')
        _check_filter(rule.get('excludes'), where + '.excludes')
    return profile


def parse_profile(text):
    """The JSON text of a profile (what ``docker run --security-opt
    seccomp=FILE`` sends inline) -> the validated profile dict."""
    if len(text) > MAX_PROFILE_SIZE:
        raise errors.InvalidArgument('seccomp profile is larger than %d bytes' % MAX_PROFILE_SIZE)
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidArgument('Decoding seccomp profile failed: %s' % exc)
    return validate_profile(profile)


def is_disabled(profile):
    """Docker: no default action and no rules means no filter at all."""
    return not profile.get('defaultAction') and not profile.get('syscalls')


def for_container_inline(capabilities, text):
    """The OCI ``linux.seccomp`` of an inline profile, or None when it
    disables seccomp (Docker's rule for ``{}``)."""
    profile = parse_profile(text)
    if is_disabled(profile):
        return None
    return convert(profile, capabilities)
