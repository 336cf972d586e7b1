"""The security profile side by side with Docker 20.10: the same image, the
same options, the same probe from inside the container; the outputs must
match (where this engine differs on purpose, the test says so).

Docker runs here through a runtime wrapper that only drops the capabilities
this host's bounding set lacks (the test machine may be a sandbox without
CAP_SYS_RESOURCE: Docker 20.10 would then refuse --privileged and
--cap-add ALL outright with "unable to apply caps"); it also keeps a copy of
the spec Docker generated.
"""

import json
import os
import stat
import sys
import textwrap

import pytest

from tests import daemons
from tests.conftest import run_docker

pytestmark = [pytest.mark.compat, pytest.mark.slow]

WRAPPER = textwrap.dedent('''\
    #!%(python)s
    import json, os, sys
    args = sys.argv[1:]
    if 'create' in args and '--bundle' in args:
        path = os.path.join(args[args.index('--bundle') + 1], 'config.json')
        with open(path) as f:
            spec = json.load(f)
        with open('/proc/self/status') as f:
            bnd = int([l for l in f if l.startswith('CapBnd:')][0].split()[1], 16)
        names = %(names)r
        ok = {n for i, n in enumerate(names) if bnd & (1 << i)}
        for key, caps in (spec['process'].get('capabilities') or {}).items():
            spec['process']['capabilities'][key] = [c for c in caps if c in ok]
        with open(path, 'w') as f:
            json.dump(spec, f)
    os.execv('/usr/sbin/runc', ['runc'] + args)
    ''')

# Docker 20.10 knows the capabilities up to CAP_AUDIT_READ (37); newer
# kernels have three more (PERFMON, BPF, CHECKPOINT_RESTORE) that this
# engine grants to privileged containers, as newer Docker does.
DOCKER2010_CAPS = (1 << 38) - 1

PROBE = ('grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" '
         '/proc/self/status; '
         'echo "dev: $(ls /dev | tr "\\n" " ")"; '
         'for p in /proc/keys /proc/timer_list /proc/acpi /sys/firmware; do '
         '  [ -e $p ] && echo "$p: $(stat -c %F $p) $(ls -A $p 2>/dev/null | wc -l)"; done; '
         'mount -t tmpfs t /tmp 2>/dev/null && echo "mount: ok" || echo "mount: denied"; '
         'hostname x 2>/dev/null && echo "hostname: ok" || echo "hostname: denied"; '
         'unshare -U true 2>/dev/null && echo "unshare: ok" || echo "unshare: denied"; '
         'swapoff /dev/null 2>&1 | sed "s/^/swapoff: /"; '
         '(echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1 | sed "s/^.*: /procsys: /"; '
         'touch /sys/x 2>&1 | sed "s/^.*: /sys: /"; '
         'touch /x 2>&1 | sed "s/^.*: /rootfs: /"; '
         'touch /dev/shm/x 2>&1 | sed "s/^.*: /shm: /"; '
         'echo "id: $(id)"; '
         'echo "sysctl: $(sysctl -n net.ipv4.ip_unprivileged_port_start '
         'net.ipv4.ping_group_range net.core.somaxconn 2>/dev/null | tr "\\n\\t" "  ")"; '
         'echo "shm: $(grep -c " /dev/shm " /proc/self/mountinfo)"; '
         'echo "fuse: $(ls -l /dev/fuse 2>/dev/null | cut -c1-10)"; '
         'echo "mynet: $(ls /dev/mynet 2>/dev/null | tr "\n" " ")"')


@pytest.fixture(scope='module')
def docker2010(busybox_archive, tmp_path_factory):
    if not os.path.exists(daemons.DOCKERD):
        pytest.skip('dockerd (Debian docker.io) is not installed')
    from engine.runtime import spec
    base = daemons.short_tmpdir('nd-dkr-')
    wrapper = os.path.join(base, 'capclamp')
    with open(wrapper, 'w') as f:
        f.write(WRAPPER % {'python': sys.executable, 'names': list(spec.ALL_CAPS)})
    os.chmod(wrapper, stat.S_IRWXU)

    class Dockerd(daemons.Dockerd):
        def command(self):
            return super().command() + ['--add-runtime', 'capclamp=' + wrapper,
                                        '--default-runtime', 'capclamp']
    dk = Dockerd(base)
    try:
        dk.start()
        dk.load(busybox_archive)
    except BaseException:
        log = dk.log_tail()
        dk.scrub()
        raise RuntimeError('could not start dockerd; log:\n' + log)
    yield dk
    dk.scrub()


def probe(url, docker_config, opts, script=PROBE):
    res = run_docker(['run', '--rm'] + list(opts) + ['busybox', 'sh', '-c', script], url,
                     docker_config=docker_config, timeout=60)
    assert res.returncode == 0, (opts, res.stdout, res.stderr)
    out = {}
    for line in res.stdout.splitlines():
        key, sep, value = line.partition(':')
        if sep:
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def both(engine, docker2010, docker_config_dir, opts):
    return (probe(engine.url, docker_config_dir, opts),
            probe(docker2010.url, docker_config_dir, opts))


CASES = [
    [],
    ['--cap-drop', 'ALL', '--cap-add', 'net_raw'],
    ['--cap-add', 'SYS_ADMIN', '--cap-drop', 'CHOWN'],
    ['--security-opt', 'seccomp=unconfined'],
    ['--user', 'nobody', '--group-add', 'daemon', '--group-add', '777'],
    ['--user', '1000:1000'],
    ['--read-only'],
    ['--device', '/dev/fuse'],
    ['--device', '/dev/fuse:/dev/fuse:r'],
    ['--device', '/dev/net:/dev/mynet'],   # a directory: every device below it
    ['--sysctl', 'net.core.somaxconn=1234', '--ipc', 'none'],
    ['--ipc', 'host', '--pid', 'host', '--uts', 'host'],
    ['--security-opt', 'systempaths=unconfined'],
    ['--security-opt', 'no-new-privileges'],
]


@pytest.mark.parametrize('opts', CASES, ids=[' '.join(c) or 'default' for c in CASES])
def test_same_profile_as_docker(engine, docker2010, docker_config_dir, opts):
    for i, opt in enumerate(opts[:-1]):
        if opt == '--device' and not os.path.exists(opts[i + 1].split(':')[0]):
            pytest.skip('no %s on this host' % opts[i + 1].split(':')[0])
    ours, docker = both(engine, docker2010, docker_config_dir, opts)
    # Deliberate difference: no_new_privs is on by default here (Docker's
    # default is off unless the daemon runs with --no-new-privileges).
    if 'no-new-privileges' not in opts:
        assert ours.pop('NoNewPrivs') == ['1']
        assert docker.pop('NoNewPrivs') == ['0']
    assert ours == docker


def test_privileged_as_docker(engine, docker2010, docker_config_dir):
    ours, docker = both(engine, docker2010, docker_config_dir, ['--privileged'])
    for key in ('CapPrm', 'CapEff', 'CapBnd'):
        assert int(ours[key][0], 16) & DOCKER2010_CAPS == int(docker[key][0], 16), key
        ours.pop(key), docker.pop(key)
    assert ours.pop('NoNewPrivs') == ['1'] and docker.pop('NoNewPrivs') == ['0']
    assert ours == docker
    assert ours['Seccomp'] == ['0'] and ours['mount'] == ['ok']
    assert len(ours['dev'][0].split()) > 20   # the host's device nodes


def test_custom_profile_as_docker(engine, docker2010, docker_config_dir, tmp_path):
    path = tmp_path / 'profile.json'
    path.write_text(json.dumps({
        'defaultAction': 'SCMP_ACT_ALLOW',
        'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO',
                      'errnoRet': 122}]}))
    script = PROBE + '; mkdir /made 2>&1 | sed "s/^.*: /mkdir: /"'
    opts = ['--security-opt', 'seccomp=%s' % path]
    ours = probe(engine.url, docker_config_dir, opts, script)
    docker = probe(docker2010.url, docker_config_dir, opts, script)
    ours.pop('NoNewPrivs'), docker.pop('NoNewPrivs')
    assert ours == docker
    assert ours['mkdir'] == ['Disk quota exceeded'] and ours['Seccomp'] == ['2']


INSPECT_CASES = {
    'default': [],
    'privileged': ['--privileged', '--pid', 'host'],
    'options': ['--cap-add', 'net_admin', '--cap-drop', 'CHOWN', '--device', '/dev/null:/dev/n:r',
                '--group-add', 'daemon', '--sysctl', 'net.core.somaxconn=100',
                '--security-opt', 'apparmor=foo', '--security-opt', 'label=level:s0',
                '--device-cgroup-rule', 'c 1:11 r', '--read-only', '--ipc', 'shareable'],
}


@pytest.mark.parametrize('opts', list(INSPECT_CASES.values()), ids=list(INSPECT_CASES))
def test_inspect_as_docker(engine, docker2010, docker_config_dir, opts):
    fields = ('CapAdd', 'CapDrop', 'Devices', 'GroupAdd', 'Sysctls', 'SecurityOpt',
              'DeviceCgroupRules', 'ReadonlyRootfs', 'Privileged', 'IpcMode', 'PidMode',
              'UTSMode', 'ReadonlyPaths')
    views = []
    for dk in (engine, docker2010):
        name = 'sec-interop-inspect'
        res = run_docker(['create', '--name', name] + opts + ['busybox', 'true'], dk.url,
                         docker_config=docker_config_dir)
        assert res.returncode == 0, res.stderr
        try:
            status, data = daemons.api_json(dk.sock, 'GET', '/containers/%s/json' % name)
            assert status == 200
            view = {k: data['HostConfig'].get(k) for k in fields}
            view.update({k: data[k] for k in ('AppArmorProfile', 'ProcessLabel', 'MountLabel')})
            # Docker 20.10's list lacks /sys/devices/virtual/powercap (newer
            # Docker masks it, as this engine does).
            view['MaskedPaths'] = [p for p in data['HostConfig']['MaskedPaths'] or ()
                                   if p != '/sys/devices/virtual/powercap']
            views.append(view)
        finally:
            daemons.api(dk.sock, 'DELETE', '/containers/%s?force=1' % name)
    assert views[0] == views[1]
