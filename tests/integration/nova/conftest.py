"""Real Nova in-process (collected only with ``pytest --integration=nova``).

Nova's own test packages (nova.tests.unit, nova.tests.functional) call
nova.monkey_patch.patch() when imported: eventlet unless the environment has
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 (native threads). We do the same first,
before requests/urllib3 are imported, as nova-compute does at start-up, so
the mode is chosen once for the whole run:

    pytest --integration=nova tests/integration            # eventlet
    OS_NOVA_DISABLE_EVENTLET_PATCHING=1 \\
        pytest --integration=nova tests/integration        # native threads
"""

from nova import monkey_patch

monkey_patch.patch()
