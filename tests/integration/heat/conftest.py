"""Real Heat in-process (collected only with ``pytest --integration=heat``).

heat.tests.common must be the first heat module imported: it selects the
threading oslo.service backend at import (heat/tests/common.py:20).
"""

import heat.tests.common  # noqa: F401  (first: picks the service backend)
