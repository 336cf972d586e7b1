"""``make demo``'s Heat section (tools/heat_demo.py) on an engine of its own.

The script loads the plugin from plugin_dirs, creates the app-network
example stack through Heat's EngineService, checks every effect itself (it
exits 1 on the first miss) and deletes the stack; this test runs it as
demo.sh does (a process of its own: Heat is never imported into this one)
and then checks, from outside, that it left nothing behind and printed
every step.
"""

import os
import random
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'tools', 'heat_demo.py')


def test_heat_demo_section(engine_factory):
    eng = engine_factory()
    res = subprocess.run(
        [sys.executable, SCRIPT, '--engine-url', eng.url,
         '--subnet', '10.%d.%d.0/24' % (random.randint(200, 250), random.randint(0, 255)), '--first-step', '1'],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO),
        timeout=240)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    out = res.stdout
    for text in ('heat.engine.plugins.novadocker', 'CREATE_COMPLETE',
                 "ok: the network's subnet", 'app read: record from db',
                 'ok: the stack is gone', 'ok: containers of the stack',
                 'ok: networks of the stack', 'the Heat section took'):
        assert text in out, (text, out)
    status, containers = eng.api_json('GET', '/containers/json?all=1')
    assert (status, containers) == (200, [])
    status, nets = eng.api_json('GET', '/networks')
    assert sorted(n['Name'] for n in nets) == ['bridge', 'host', 'none']
