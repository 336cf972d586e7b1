"""Every resource type of the novadocker Heat plugin, for Heat's plugin loader.

heat-engine imports each module in ``[DEFAULT] plugin_dirs`` and calls its
``available_resource_mapping()`` (or ``resource_mapping()``); the shim module
there re-exports these.
"""

from heat_plugin import network


def resource_mapping():
    mapping = {}
    mapping.update(network.resource_mapping())
    return mapping


def available_resource_mapping():
    return resource_mapping()
