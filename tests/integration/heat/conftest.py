"""Real Heat in-process (collected only with ``pytest --integration=heat``).

heat.tests.common must be the first heat module imported: it selects the
threading oslo.service backend at import (heat/tests/common.py:20).
"""

import heat.tests.common  # noqa: F401  (first: picks the service backend)

import pytest  # noqa: E402


@pytest.fixture(scope='session', autouse=True)
def _real_engine():
    """The engine tests/integration/heat/realengine.py starts on first use is
    scrubbed at the end of the run."""
    yield
    from tests.integration.heat import realengine
    realengine.shutdown()
