"""Every resource type the plugin provides, for heat-engine's loader.

heat-engine imports the modules in ``plugin_dirs`` and calls their
``available_resource_mapping()`` (or ``resource_mapping()``); the shim in
etc/heat/plugins/novadocker.py re-exports this one.
"""

from heat_plugin import container
from heat_plugin import image
from heat_plugin import network

# One module per resource family; each has its own resource_mapping().
_MODULES = (
    container,
    image,
    network,
)


def resource_mapping():
    mapping = {}
    for module in _MODULES:
        mapping.update(module.resource_mapping())
    return mapping


def available_resource_mapping():
    return resource_mapping()
