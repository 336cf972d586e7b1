"""The security profile through the real docker CLI: defaults, every option
that changes them, and bad input.

Each test reads the effect back from inside the container (/proc/self/status,
what a syscall or a write does, the device nodes it sees) or from
``docker inspect``; errors are checked for their message and for leaving no
container behind.
"""

import json
import os

import pytest

from tests import daemons
from tests.compat.conftest import container_dirs, inspect
from tests.compat.test_api_errors import all_containers, assert_error, raw

pytestmark = pytest.mark.compat

DEFAULT_CAPEFF = '00000000a80425fb'
CAP_NET_RAW = 1 << 13


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def status_fields(text):
    return dict(line.split(':\t', 1) for line in text.splitlines() if ':\t' in line)


def run_probe(docker_cli, opts, script):
    res = ok(docker_cli(['run', '--rm'] + list(opts) + ['busybox', 'sh', '-c', script]))
    return res.stdout


STATUS = 'grep -E "^(Cap[A-Za-z]+|NoNewPrivs|Seccomp):" /proc/self/status; '


def _host_capbnd():
    with open('/proc/self/status') as f:
        return int(status_fields(f.read())['CapBnd'], 16)


# --------------------------------------------------------------------------
# the default profile


def test_default_profile_from_inside(docker_cli):
    script = (STATUS +
              'mount -t tmpfs t /tmp 2>/dev/null && echo mount-ok || echo mount-denied; '
              'hostname other 2>/dev/null && echo hostname-ok || echo hostname-denied; '
              'unshare -U true 2>/dev/null && echo unshare-ok || echo unshare-denied; '
              '(echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1 | grep -q Read-only '
              '&& echo procsys-ro; '
              'touch /sys/x 2>/dev/null && echo sys-rw || echo sys-ro; '
              'test -c /proc/timer_list && echo timer-masked; '
              'cat /proc/keys 2>/dev/null | wc -c; '
              'ls /dev | tr "\\n" " "; echo; '
              'sysctl -n net.ipv4.ip_unprivileged_port_start')
    out = run_probe(docker_cli, [], script)
    fields = status_fields(out)
    assert fields['CapEff'] == DEFAULT_CAPEFF
    assert fields['CapPrm'] == DEFAULT_CAPEFF
    assert fields['CapBnd'] == DEFAULT_CAPEFF
    assert fields['CapInh'] == '0000000000000000'
    assert fields['Seccomp'] == '2'
    words = out.split()
    # unshare(CLONE_NEWUSER) needs no capability: only seccomp refuses it.
    for word in ('mount-denied', 'hostname-denied', 'unshare-denied', 'procsys-ro',
                 'sys-ro', 'timer-masked'):
        assert word in words, out
    lines = out.splitlines()
    assert lines[-3] == '0'   # /proc/keys reads as /dev/null
    assert set(lines[-2].split()) == {
        'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr',
        'stdin', 'stdout', 'tty', 'urandom', 'zero'}
    assert lines[-1] == '0'   # Docker's default net sysctl


@pytest.mark.engine_only
def test_no_new_privileges_default_and_opt_out(docker_cli, engine, names):
    """On by default here (Docker's default is off); no-new-privileges=false
    and :false turn it off, the bare option keeps it on."""
    def nnp(*opts):
        return status_fields(run_probe(docker_cli, opts, STATUS))['NoNewPrivs']
    assert nnp() == '1'
    assert nnp('--security-opt', 'no-new-privileges=false') == '0'
    assert nnp('--security-opt', 'no-new-privileges:false') == '0'
    assert nnp('--security-opt', 'no-new-privileges') == '1'
    name = names('nnp')
    ok(docker_cli(['create', '--name', name, '--security-opt', 'no-new-privileges=false',
                   'busybox', 'true']))
    assert inspect(engine, name)['HostConfig']['SecurityOpt'] == ['no-new-privileges=false']


def test_seccomp_unconfined(docker_cli):
    out = run_probe(docker_cli, ['--security-opt', 'seccomp=unconfined'],
                    STATUS + 'unshare -U true && echo unshare-ok')
    assert status_fields(out)['Seccomp'] == '0'
    assert 'unshare-ok' in out.split()


@pytest.mark.engine_only
def test_seccomp_builtin_is_the_default_profile(docker_cli):
    # CLI 28 sends "builtin" as is (Docker >= 23 names its default profile
    # so; Docker 20.10 tries to parse it as JSON).
    out = run_probe(docker_cli, ['--security-opt', 'seccomp=builtin'],
                    STATUS + 'unshare -U true 2>/dev/null || echo unshare-denied')
    assert status_fields(out)['Seccomp'] == '2'
    assert 'unshare-denied' in out.split()


def test_custom_seccomp_profile_denies_mkdir(docker_cli, tmp_path):
    profile = {'defaultAction': 'SCMP_ACT_ALLOW',
               'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO',
                             'errnoRet': 122}]}   # EDQUOT
    path = tmp_path / 'nomkdir.json'
    path.write_text(json.dumps(profile, indent=2))
    res = docker_cli(['run', '--rm', '--security-opt', 'seccomp=%s' % path, 'busybox',
                      'sh', '-c', STATUS + 'mkdir /made && echo made; touch /file && echo touched'])
    assert res.returncode == 0, res.stderr
    assert 'Disk quota exceeded' in res.stderr
    assert 'made' not in res.stdout.split() and 'touched' in res.stdout.split()
    assert status_fields(res.stdout)['Seccomp'] == '2'


@pytest.mark.engine_only
def test_privileged(docker_cli):
    """(Docker 20.10 cannot start a privileged container on a host whose
    bounding set lacks a capability; test_security_interop compares with it
    through a runtime wrapper.)"""
    with open('/proc/sys/kernel/cap_last_cap') as f:
        every = (1 << (int(f.read()) + 1)) - 1
    host_devs = sorted(e for e in os.listdir('/dev')
                       if e not in ('console', 'pts', 'shm', 'fd', 'mqueue'))
    out = run_probe(docker_cli, ['--privileged'], STATUS +
                    'mount -t tmpfs t /tmp && echo mount-ok; '
                    'touch /sys/kernel/x 2>&1; grep " /sys " /proc/self/mountinfo; '
                    'test -c /proc/timer_list || echo timer-visible; '
                    'ls /dev | tr "\\n" " "')
    fields = status_fields(out)
    assert int(fields['CapEff'], 16) == every & _host_capbnd()
    assert fields['Seccomp'] == '0'
    assert 'mount-ok' in out.split() and 'timer-visible' in out.split()
    assert ' /sys rw,' in out
    devs = set(out.splitlines()[-1].split())
    # Every device node (and device directory) of the host's /dev.
    missing = [d for d in host_devs if d not in devs
               and (os.path.isdir('/dev/' + d) or
                    os.stat('/dev/' + d, follow_symlinks=False).st_rdev)]
    assert not missing, missing


def test_cap_drop_all_add_net_raw(docker_cli):
    out = run_probe(docker_cli, ['--cap-drop', 'ALL', '--cap-add', 'net_raw'],
                    STATUS + 'chown 1 /tmp 2>/dev/null && echo chowned || echo chown-denied')
    assert status_fields(out)['CapEff'] == '%016x' % CAP_NET_RAW
    assert 'chown-denied' in out.split()


@pytest.mark.engine_only
def test_cap_add_all_less_drops(docker_cli):
    # Every capability the engine can grant (Docker 20.10 asks for all it
    # knows and fails where the host's bounding set lacks one).
    out = run_probe(docker_cli, ['--cap-add', 'ALL', '--cap-drop', 'CAP_CHOWN'], STATUS)
    assert int(status_fields(out)['CapEff'], 16) & 1 == 0
    assert int(status_fields(out)['CapEff'], 16) & (1 << 21)   # CAP_SYS_ADMIN


def test_systempaths_unconfined(docker_cli, engine, names):
    name = names('sp')
    res = ok(docker_cli(['run', '--name', name, '--security-opt', 'systempaths=unconfined',
                         'busybox', 'sh', '-c',
                         'test -c /proc/timer_list || echo timer-visible; '
                         '(echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1 | grep -q Read-only '
                         '|| echo procsys-not-ro']))
    assert res.stdout.split() == ['timer-visible', 'procsys-not-ro']
    host = inspect(engine, name)['HostConfig']
    assert host['MaskedPaths'] == [] and host['ReadonlyPaths'] == []


def test_read_only_rootfs_keeps_dev_shm_proc_writable(docker_cli):
    res = docker_cli(['run', '--rm', '--read-only', 'busybox', 'sh', '-c',
                      'touch /x; touch /tmp/y; '
                      'touch /dev/shm/a && echo shm-ok; touch /dev/a && echo dev-ok; '
                      'echo 5 > /proc/self/oom_score_adj && echo proc-ok; '
                      'mkfifo /dev/mqueue/q 2>/dev/null; echo done'])
    assert res.stdout.split() == ['shm-ok', 'dev-ok', 'proc-ok', 'done'], res
    assert res.stderr.count('Read-only file system') == 2, res.stderr


def test_device(docker_cli):
    if not os.path.exists('/dev/fuse'):
        pytest.skip('no /dev/fuse on this host')
    st = os.stat('/dev/fuse')
    out = run_probe(docker_cli, ['--device', '/dev/fuse'],
                    'stat -c "%t:%T %F" /dev/fuse; exec 3<>/dev/fuse && echo opened')
    assert out.split('\n')[0] == '%x:%x character special file' % (
        os.major(st.st_rdev), os.minor(st.st_rdev))
    assert 'opened' in out.split()
    # Renamed, read-only in the device cgroup: opening it for writing fails.
    res = docker_cli(['run', '--rm', '--device', '/dev/fuse:/dev/xfuse:r', 'busybox', 'sh',
                      '-c', 'test -c /dev/xfuse && echo present; '
                            'exec 3<>/dev/xfuse && echo opened'])
    assert res.stdout.split() == ['present'], res
    assert 'Operation not permitted' in res.stderr
    # Without --device the node is not there and cannot be made useful.
    res = docker_cli(['run', '--rm', 'busybox', 'sh', '-c',
                      'test -e /dev/fuse || echo absent; mknod /dev/f c 10 229 && '
                      'exec 3<>/dev/f && echo opened'])
    assert res.stdout.split() == ['absent'], res


def test_device_cgroup_rule(docker_cli):
    # The node exists (mknod is allowed for every device), but only the rule
    # lets it be opened.
    script = 'mknod /dev/f2 c 10 229 && (exec 3<>/dev/f2) 2>/dev/null && echo opened || echo denied'
    assert run_probe(docker_cli, [], script).split() == ['denied']
    out = run_probe(docker_cli, ['--device-cgroup-rule', 'c 10:229 rw'], script)
    assert out.split() == ['opened']


def test_user_and_group_add(docker_cli):
    assert run_probe(docker_cli, ['--user', 'nobody'], 'id').strip() == \
        'uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)'
    assert run_probe(docker_cli, ['--user', '1000:1000'], 'id').strip() == \
        'uid=1000 gid=1000 groups=1000'
    out = run_probe(docker_cli, ['--user', 'nobody', '--group-add', 'daemon',
                                 '--group-add', '777'], 'id; grep Groups /proc/self/status')
    assert out.splitlines()[0] == \
        'uid=65534(nobody) gid=65534(nogroup) groups=1(daemon),777,65534(nogroup)'
    assert sorted(out.splitlines()[1].split()[1:]) == ['1', '65534', '777']


def test_unknown_user_and_group_fail_at_start(docker_cli, engine, names):
    name = names('nouser')
    res = docker_cli(['run', '--name', name, '--user', 'nobody2', 'busybox', 'true'])
    assert res.returncode == 125
    assert 'unable to find user nobody2: no matching entries in passwd file' in res.stderr
    assert inspect(engine, name)['State']['Status'] == 'created'
    res = docker_cli(['run', '--rm', '--group-add', 'nosuchgroup', 'busybox', 'true'])
    assert res.returncode == 125
    assert 'Unable to find group nosuchgroup: no matching entries in group file' in res.stderr


def test_exec_user(docker_cli, names):
    name = names('exec')
    ok(docker_cli(['run', '-d', '--name', name, '--group-add', 'daemon', 'busybox',
                   'sleep', '300']))
    out = ok(docker_cli(['exec', '-u', 'nobody', name, 'id'])).stdout.strip()
    assert out == 'uid=65534(nobody) gid=65534(nogroup) groups=1(daemon),65534(nogroup)'
    out = ok(docker_cli(['exec', '-u', '123:456', name, 'id'])).stdout.strip()
    assert out == 'uid=123 gid=456 groups=1(daemon),456'
    # (Docker writes the error of an attached exec into its stream and the
    # CLI exits 126; this engine answers the start with a 400 before the
    # upgrade, so the CLI only shows the status. Detached, both say it.)
    res = docker_cli(['exec', '-u', 'nobody2', name, 'id'])
    assert res.returncode != 0
    res = docker_cli(['exec', '-d', '-u', 'nobody2', name, 'id'])
    assert res.returncode != 0
    assert 'unable to find user nobody2: no matching entries in passwd file' in res.stderr


def test_sysctls(docker_cli, engine, names):
    name = names('sysctl')
    res = ok(docker_cli(['run', '--name', name, '--sysctl', 'net.core.somaxconn=1234',
                         '--sysctl', 'kernel.shmmax=1000000', '--sysctl',
                         'fs.mqueue.msg_max=100', 'busybox', 'sysctl', '-n',
                         'net.core.somaxconn', 'kernel.shmmax', 'fs.mqueue.msg_max']))
    assert res.stdout.split() == ['1234', '1000000', '100']
    assert inspect(engine, name)['HostConfig']['Sysctls'] == {
        'net.core.somaxconn': '1234', 'kernel.shmmax': '1000000',
        'fs.mqueue.msg_max': '100'}


def test_ipc_pid_uts_modes(docker_cli, engine, names):
    donor = names('donor')
    ok(docker_cli(['run', '-d', '--name', donor, '--ipc', 'shareable', 'busybox',
                   'sh', '-c', 'echo from-donor > /dev/shm/note; exec sleep 300']))
    donor_id = inspect(engine, donor)['Id']
    pid = inspect(engine, donor)['State']['Pid']
    donor_ipc = os.readlink('/proc/%d/ns/ipc' % pid)
    # Same IPC namespace, same /dev/shm (POSIX shared memory), same PIDs.
    out = run_probe(docker_cli, ['--ipc', 'container:' + donor, '--pid', 'container:' + donor],
                    'readlink /proc/self/ns/ipc; ps -o comm | grep -c sleep; '
                    'cat /dev/shm/note; echo from-joiner > /dev/shm/reply')
    assert out.split() == [donor_ipc, '1', 'from-donor']
    assert ok(docker_cli(['exec', donor, 'cat', '/dev/shm/reply'])).stdout == 'from-joiner\n'
    out = run_probe(docker_cli, ['--ipc', 'none'], 'test -e /dev/shm || echo no-shm')
    assert out.split() == ['no-shm']
    host_ns = {kind: os.readlink('/proc/self/ns/' + kind) for kind in ('ipc', 'pid', 'uts')}
    out = run_probe(docker_cli, ['--ipc', 'host', '--pid', 'host', '--uts', 'host'],
                    'readlink /proc/self/ns/ipc /proc/self/ns/pid /proc/self/ns/uts 2>/dev/null'
                    ' || for k in ipc pid uts; do readlink /proc/self/ns/$k; done; hostname')
    assert out.split() == [host_ns['ipc'], host_ns['pid'], host_ns['uts'], os.uname().nodename]
    name = names('joined')
    ok(docker_cli(['create', '--name', name, '--ipc', 'container:' + donor, '--pid',
                   'container:' + donor, 'busybox', 'true']))
    host = inspect(engine, name)['HostConfig']
    assert host['IpcMode'] == host['PidMode'] == 'container:' + donor_id
    # Once the donor is gone, Docker's errors at start.
    ok(docker_cli(['stop', '-t', '0', donor]))
    res = docker_cli(['start', name])
    assert res.returncode != 0
    assert ("can't join IPC of container %s: container %s is not running"
            % (donor_id, donor_id)) in res.stderr
    # The donor's engine-side /dev/shm went with it.
    with open('/proc/self/mountinfo') as f:
        assert '/%s/shm ' % donor_id not in f.read()
    # A private IPC namespace cannot be joined.
    private = names('private')
    ok(docker_cli(['run', '-d', '--name', private, 'busybox', 'sleep', '300']))
    res = docker_cli(['run', '--rm', '--ipc', 'container:' + private, 'busybox', 'true'])
    assert res.returncode == 125
    assert 'non-shareable IPC (hint: use IpcMode:shareable for the donor container)' \
        in res.stderr


def test_inspect_shows_security_fields(docker_cli, engine, names):
    name = names('insp')
    ok(docker_cli(['create', '--name', name, '--cap-add', 'NET_ADMIN', '--cap-drop', 'CHOWN',
                   '--device', '/dev/null:/dev/mynull:r', '--group-add', 'daemon',
                   '--sysctl', 'net.core.somaxconn=100', '--security-opt', 'apparmor=foo',
                   '--security-opt', 'label=disable', '--device-cgroup-rule', 'c 1:11 r',
                   '--read-only', 'busybox', 'true']))
    data = inspect(engine, name)
    host = data['HostConfig']
    assert host['CapAdd'] == ['CAP_NET_ADMIN'] and host['CapDrop'] == ['CAP_CHOWN']
    assert host['Devices'] == [{'PathOnHost': '/dev/null', 'PathInContainer': '/dev/mynull',
                                'CgroupPermissions': 'r'}]
    assert host['GroupAdd'] == ['daemon']
    assert host['Sysctls'] == {'net.core.somaxconn': '100'}
    assert host['SecurityOpt'] == ['apparmor=foo', 'label=disable']
    assert host['DeviceCgroupRules'] == ['c 1:11 r']
    assert host['ReadonlyRootfs'] is True and host['Privileged'] is False
    assert host['IpcMode'] == 'private' and host['PidMode'] == '' and host['UTSMode'] == ''
    assert '/proc/timer_list' in host['MaskedPaths'] and '/proc/sys' in host['ReadonlyPaths']
    # A host without SELinux and AppArmor: no labels; the AppArmor profile
    # asked for shows until the first start, which clears it (Docker's
    # saveAppArmorConfig).
    assert (data['AppArmorProfile'], data['ProcessLabel'], data['MountLabel']) == ('foo', '', '')
    ok(docker_cli(['start', name]))
    assert inspect(engine, name)['AppArmorProfile'] == ''


# --------------------------------------------------------------------------
# bad input: 400, a clear message, nothing created

BAD = [
    ({'CapAdd': ['NOT_A_CAP']}, 'invalid CapAdd: unknown capability: "CAP_NOT_A_CAP"'),
    ({'CapDrop': ['sys_foo']}, 'invalid CapDrop: unknown capability: "CAP_SYS_FOO"'),
    ({'SecurityOpt': ['seccomp=notjson']}, 'Decoding seccomp profile failed'),
    ({'SecurityOpt': ['seccomp={"defaultAction":"SCMP_ACT_BOGUS"}']},
     'SCMP_ACT_BOGUS is not a valid action'),
    ({'SecurityOpt': ['seccomp={"defaultAction":"SCMP_ACT_ALLOW",'
                      '"architectures":["SCMP_ARCH_NOPE"]}']},
     'SCMP_ARCH_NOPE is not a valid arch'),
    ({'SecurityOpt': ['foo=bar']}, 'invalid --security-opt 2: "foo=bar"'),
    ({'SecurityOpt': ['systempaths=unconfined']},
     'invalid --security-opt 2: "systempaths=unconfined"'),
    ({'SecurityOpt': ['nonsense']}, 'invalid --security-opt 1: "nonsense"'),
    ({'SecurityOpt': ['no-new-privileges=maybe']},
     'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ({'Devices': [{'PathOnHost': '/dev/nonexistent-dev', 'PathInContainer': '/dev/x',
                   'CgroupPermissions': 'rwm'}]},
     'error gathering device information while adding custom device "/dev/nonexistent-dev": '
     'no such file or directory'),
    ({'Devices': [{'PathOnHost': '/etc/hostname'}]}, 'not a device node'),
    ({'Devices': [{'PathOnHost': '/dev/null', 'CgroupPermissions': 'rwx'}]},
     'bad mode specified: rwx'),
    ({'Devices': [{'PathOnHost': '/dev/null', 'PathInContainer': 'dev/null'}]},
     'dev/null is not an absolute path'),
    ({'DeviceCgroupRules': ['x 1:3 rwm']}, "invalid device cgroup rule format: 'x 1:3 rwm'"),
    ({'Sysctls': {'vm.swappiness': '1'}},
     'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({'Sysctls': {'net.ipv4/../../kernel/core_pattern': 'x'}}, 'invalid sysctl name'),
    ({'Sysctls': {'kernel.hostname': 'x'}}, 'conflicts with the OCI "hostname" field'),
    ({'NetworkMode': 'host', 'Sysctls': {'net.core.somaxconn': '1'}},
     'not allowed in host network namespace'),
    ({'IpcMode': 'host', 'Sysctls': {'kernel.shmmax': '1'}},
     'is not allowed in the hosts ipc namespace'),
    ({'IpcMode': 'bogus'}, 'invalid IPC mode: bogus'),
    ({'PidMode': 'bogus'}, 'invalid PID mode: bogus'),
    ({'UTSMode': 'container:x'}, 'invalid UTS mode: container:x'),
    ({'IpcMode': 'container:compat-no-such-container'},
     'No such container: compat-no-such-container'),
    ({'PidMode': 'container:compat-no-such-container'},
     'No such container: compat-no-such-container'),
    ({'GroupAdd': ['']}, 'Unable to find group'),
    ({'GroupAdd': ['-5']}, 'uids and gids must be in range 0-2147483647'),
    ({'MaskedPaths': ['relative']}, 'is not an absolute path'),
]


@pytest.mark.engine_only
@pytest.mark.parametrize('host,message', BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_refused_at_create(engine, host, message):
    before, dirs = all_containers(engine), container_dirs(engine)
    result = raw(engine, 'POST', '/containers/create',
                 {'Image': 'busybox', 'Cmd': ['true'], 'HostConfig': host})
    assert_error(result, 400, message)
    assert all_containers(engine) == before
    assert container_dirs(engine) == dirs


@pytest.mark.engine_only
def test_uts_host_conflicts_with_hostname(engine):
    result = raw(engine, 'POST', '/containers/create',
                 {'Image': 'busybox', 'Hostname': 'x', 'HostConfig': {'UTSMode': 'host'}})
    assert_error(result, 400, 'conflicting options: hostname and the UTS mode')


def test_cli_errors(docker_cli, tmp_path):
    res = docker_cli(['run', '--rm', '--cap-add', 'foo', 'busybox', 'true'])
    assert res.returncode == 125
    assert 'invalid CapAdd: unknown capability: "CAP_FOO"' in res.stderr
    res = docker_cli(['run', '--rm', '--security-opt', 'foo=bar', 'busybox', 'true'])
    assert res.returncode == 125
    assert 'invalid --security-opt 2: "foo=bar"' in res.stderr


@pytest.mark.engine_only
def test_cli_bad_profile_and_device_refused_at_create(docker_cli, engine, tmp_path):
    before = all_containers(engine)
    bad = tmp_path / 'bad.json'
    bad.write_text('{"defaultAction": "SCMP_ACT_NOPE"}')
    res = docker_cli(['run', '--rm', '--security-opt', 'seccomp=%s' % bad, 'busybox', 'true'])
    assert res.returncode == 125
    assert 'string SCMP_ACT_NOPE is not a valid action for seccomp' in res.stderr
    res = docker_cli(['run', '--rm', '--device', '/dev/nonexistent-dev', 'busybox', 'true'])
    assert res.returncode != 0   # 127: the CLI reads "no such file" as a missing command
    assert ('error gathering device information while adding custom device '
            '"/dev/nonexistent-dev"') in res.stderr
    assert all_containers(engine) == before


def test_info_security_options(engine):
    status, data = daemons.api_json(engine.sock, 'GET', '/info')
    assert status == 200
    assert any(o.startswith('name=seccomp,profile=') for o in data['SecurityOptions'])


# --------------------------------------------------------------------------
# docker-py: its own encodings of the same options


def test_docker_py_security_options(engine):
    import docker
    client = docker.DockerClient(base_url=engine.url, timeout=120)
    try:
        out = client.containers.run(
            'busybox', ['sh', '-c', STATUS + 'id; sysctl -n net.core.somaxconn; '
                        'test -c /dev/xnull && echo has-xnull'],
            remove=True, cap_drop=['ALL'], cap_add=['NET_RAW'], user='nobody',
            group_add=['daemon'], sysctls={'net.core.somaxconn': '321'},
            devices=['/dev/null:/dev/xnull:rw'],
            security_opt=['no-new-privileges=false', 'seccomp=unconfined']).decode()
        fields = status_fields(out)
        # (A non-root user has no effective capabilities: the bounding set
        # shows what the container got.)
        assert fields['CapBnd'] == '%016x' % CAP_NET_RAW and fields['CapEff'] == '0' * 16
        assert fields['NoNewPrivs'] == '0' and fields['Seccomp'] == '0'
        lines = out.splitlines()
        assert 'uid=65534(nobody) gid=65534(nogroup) groups=1(daemon),65534(nogroup)' in lines
        assert '321' in lines and 'has-xnull' in lines
        with pytest.raises(docker.errors.APIError) as err:
            client.containers.create('busybox', 'true', cap_add=['CAP_NOPE'])
        assert err.value.status_code == 400
        assert 'unknown capability: "CAP_NOPE"' in str(err.value)
    finally:
        client.close()


@pytest.mark.engine_only
def test_cap_add_of_a_capability_the_host_lacks(engine):
    from engine.runtime import spec
    missing = [c for c in spec.ALL_CAPS if c not in spec.grantable_caps()]
    if not missing:
        pytest.skip('the engine holds every capability on this host')
    before = all_containers(engine)
    result = raw(engine, 'POST', '/containers/create',
                 {'Image': 'busybox', 'HostConfig': {'CapAdd': [missing[0]]}})
    assert_error(result, 400, 'capability "%s" is not available' % missing[0])
    assert all_containers(engine) == before


@pytest.mark.engine_only
def test_exec_privileged(docker_cli, names):
    """docker exec --privileged: every capability for that process, the
    container's seccomp profile still applies.  (Docker 20.10 asks for every
    capability it knows and fails on a host whose bounding set lacks one;
    the engine grants those it holds.)"""
    name = names('execpriv')
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sleep', '300']))
    plain = status_fields(ok(docker_cli(['exec', name, 'sh', '-c', STATUS])).stdout)
    assert plain['CapEff'] == DEFAULT_CAPEFF
    out = ok(docker_cli(['exec', '--privileged', name, 'sh', '-c', STATUS])).stdout
    fields = status_fields(out)
    assert int(fields['CapEff'], 16) & 0xffffffff & _host_capbnd() == 0xffffffff & _host_capbnd()
    assert fields['Seccomp'] == '2'
