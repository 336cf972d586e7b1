# heat-engine plugin shim: list this directory in heat.conf
#   [DEFAULT] plugin_dirs = /path/to/etc/heat/plugins
# and heat-engine imports this module and registers DockerInc::Docker::*.
from heat_plugin.resources import available_resource_mapping  # noqa: F401
