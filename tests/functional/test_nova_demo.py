"""``make demo``'s Nova section (tools/nova_demo.py) on an engine of its own.

The script drives Nova's compute driver in-process through the lifecycle
and checks every effect itself (it exits 1 on the first miss); this test
runs it as demo.sh does and then checks, from outside, that it left nothing
behind: no container, no engine network, no bridge, and that its output has
every step (a script that skipped a step would not print it).
"""

import os
import subprocess
import sys
import uuid

from tests import daemons

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'tools', 'nova_demo.py')


def test_nova_demo_section(engine_factory, registry, docker_config_dir, tmp_path):
    eng = engine_factory()
    bridge = 'ndtd%s' % uuid.uuid4().hex[:8]
    env = dict(os.environ, DOCKER_CLI_HINTS='false', DOCKER_CONFIG=docker_config_dir,
               PYTHONPATH=REPO)
    env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
    try:
        res = subprocess.run(
            [sys.executable, SCRIPT, '--engine-url', eng.url, '--registry', registry.host,
             '--bridge', bridge, '--state-dir', str(tmp_path / 'instances'),
             '--docker', daemons.DOCKER_CLI, '--first-step', '1'],
            capture_output=True, text=True, env=env, timeout=240)
    finally:
        leftover_bridge = subprocess.run(['ip', 'link', 'show', bridge],
                                         capture_output=True).returncode == 0
        if leftover_bridge:
            subprocess.run(['ip', 'link', 'del', bridge])
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    out = res.stdout
    for text in ('Downloading', 'Nova (get_info): SUSPENDED', 'Nova (get_info): PAUSED',
                 'Nova (get_info): SHUTDOWN', 'task_state -> image_uploading',
                 'Mounted from library/busybox', 'Already exists', "web-1's change is in web-2",
                 'destroyed web-2', 'ok: ports on bridge', 'the Nova section took'):
        assert text in out, (text, out)
    assert not leftover_bridge
    status, containers = eng.api_json('GET', '/containers/json?all=1')
    assert (status, containers) == (200, [])
    status, nets = eng.api_json('GET', '/networks')
    assert sorted(n['Name'] for n in nets) == ['bridge', 'host', 'none']
