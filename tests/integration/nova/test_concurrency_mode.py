"""Which of nova-compute's two concurrency modes this run is in.

make test-integration runs tests/integration/nova twice: eventlet (nova's
test default) and native threads (OS_NOVA_DISABLE_EVENTLET_PATCHING=1). A
driver must pass both; this pins down that each run really is in its mode.
"""

import os
import socket
import threading

from oslo_service import backend

from nova import monkey_patch


def test_mode_follows_environment():
    threads = os.environ.get('OS_NOVA_DISABLE_EVENTLET_PATCHING', '').lower()
    if threads in ('1', 'true', 'yes'):
        assert not monkey_patch.is_patched()
        assert backend.get_backend_type() == backend.BackendType.THREADING
        assert threading.Thread.__module__ == 'threading'
    else:
        assert monkey_patch.is_patched()
        assert backend.get_backend_type() == backend.BackendType.EVENTLET
        # eventlet replaced the socket module's classes process-wide.
        assert 'eventlet' in socket.socket.__module__
