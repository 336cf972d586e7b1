"""tests/integration: real Nova and real Heat, in-process.

Nova and Heat cannot share one Python process: both register a global
``host`` option on oslo.config's CONF (DuplicateOptError), and each picks the
process-wide oslo.service backend at import time (nova.monkey_patch: eventlet
unless OS_NOVA_DISABLE_EVENTLET_PATCHING=1; heat.tests.common: threading),
which raises BackendAlreadySelected the second time. Nova's eventlet mode
also monkey-patches socket/threading for everything else in the process.

So each of tests/integration/nova and tests/integration/heat is collected
only in a pytest run of its own, selected with ``--integration=nova`` or
``--integration=heat`` (the Makefile runs one after the other); a plain
``pytest`` skips both directories and imports neither project.
"""

import pathlib

HERE = pathlib.Path(__file__).parent
SUITES = ('nova', 'heat')


def pytest_ignore_collect(collection_path, config):
    chosen = config.getoption('integration')
    for suite in SUITES:
        if suite != chosen and collection_path == HERE / suite:
            return True
    return None
