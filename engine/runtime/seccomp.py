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

DEFAULT_PROFILE = '/usr/share/containers/seccomp.json'

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
