"""Union filesystems for image layers and container root filesystems."""

from stevedore import driver

NAMESPACE = 'engine.snapshotters'


def load(name, root, **kwargs):
    """Load the snapshotter registered as ``name`` with its state under ``root``."""
    mgr = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                               invoke_args=(root,), invoke_kwds=kwargs)
    return mgr.driver
