"""Resource ``DockerInc::Docker::Network``: a user-defined network on the engine.

A multi-container template needs its containers on a network of their own
(name resolution between them, an address range the author chooses, no
route out when ``internal``).  This is ``docker network create`` through the
engine's API: POST /networks/create at create time, DELETE /networks/{id} at
delete time.  The engine cannot change a network in place, so every property
change replaces it: Heat creates the new network first, replaces the
containers that reference it (their ``networks`` property changed), then
deletes the old one.  A fixed ``name`` therefore has to change along with
any other property (the old network holds it until the end).

Containers join it through the container resource's ``networks`` property
(``networks: [{network: {get_resource: net}, aliases: [web]}]``); the
reference id of this resource is the engine's network id.
"""

import ipaddress
import re
import time

from heat.common import exception
from heat.common.i18n import _
from heat.engine import attributes
from heat.engine import constraints
from heat.engine import properties
from heat.engine import resource
from heat.engine import support

from heat_plugin import client as plugin_client
from novadocker import client as engine_client

# The engine's own rule for network names (engine/networks/store.py NAME_RE),
# checked here so a template author hears about it at validate time.
NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')
NAME_MAX = 128

# Labels the plugin puts on every network it makes, so an operator (and the
# tests) can tell which stack a network belongs to.
LABEL_STACK_ID = 'org.openstack.heat.stack-id'
LABEL_RESOURCE = 'org.openstack.heat.resource-name'

# How long delete keeps retrying while the engine still reports endpoints
# (containers deleted a moment ago are being disconnected).
DELETE_RETRY_SECONDS = 30


class DockerNetwork(plugin_client.EngineObjectMixin, resource.Resource):
    """A user-defined bridge network on the container engine.

    Containers of the same stack that join it reach each other by name (and
    by their aliases); ``subnet``/``gateway`` choose its address range,
    ``internal: true`` leaves it without a route out of the host.
    """

    support_status = support.SupportStatus(
        version='27.0.0',
        message=_('Provided by the novadocker Heat plugin.'))

    PROPERTIES = (
        DOCKER_ENDPOINT, NAME, DRIVER, SUBNET, GATEWAY, INTERNAL, LABELS,
    ) = (
        'docker_endpoint', 'name', 'driver', 'subnet', 'gateway', 'internal',
        'labels',
    )

    ATTRIBUTES = (
        ID, NAME_ATTR, SUBNET_ATTR, GATEWAY_ATTR, INFO,
    ) = (
        'id', 'name', 'subnet', 'gateway', 'info',
    )

    properties_schema = {
        DOCKER_ENDPOINT: properties.Schema(
            properties.Schema.STRING,
            _('Engine API endpoint: unix:///path/to.sock or https://host:port. '
              'Default: the plugin configuration ([novadocker] engine_url), '
              'else the local engine socket.'),
        ),
        NAME: properties.Schema(
            properties.Schema.STRING,
            _('Network name on the engine. Default: a unique name made from '
              'the stack and resource names.'),
            constraints=[constraints.Length(min=1, max=NAME_MAX)],
        ),
        DRIVER: properties.Schema(
            properties.Schema.STRING,
            _('Network driver.'),
            default='bridge',
            constraints=[constraints.AllowedValues(['bridge'])],
        ),
        SUBNET: properties.Schema(
            properties.Schema.STRING,
            _('IPv4 subnet in CIDR form, for example 10.77.0.0/24. Default: a '
              'free range chosen by the engine.'),
            constraints=[constraints.CustomConstraint('net_cidr')],
        ),
        GATEWAY: properties.Schema(
            properties.Schema.STRING,
            _('IPv4 gateway address inside the subnet (needs subnet). '
              'Default: the first address of the subnet.'),
            constraints=[constraints.CustomConstraint('ip_addr')],
        ),
        INTERNAL: properties.Schema(
            properties.Schema.BOOLEAN,
            _('Restrict external access to the network.'),
            default=False,
        ),
        LABELS: properties.Schema(
            properties.Schema.MAP,
            _('Labels (string to string) set on the network.'),
            default={},
        ),
    }

    attributes_schema = {
        ID: attributes.Schema(_('Engine network id.'),
                              type=attributes.Schema.STRING),
        NAME_ATTR: attributes.Schema(_('Network name on the engine.'),
                                     type=attributes.Schema.STRING),
        SUBNET_ATTR: attributes.Schema(_('IPv4 subnet (CIDR) in use.'),
                                       type=attributes.Schema.STRING),
        GATEWAY_ATTR: attributes.Schema(_('Gateway address in use.'),
                                        type=attributes.Schema.STRING),
        INFO: attributes.Schema(_('The engine\'s inspect output.'),
                                type=attributes.Schema.MAP),
    }

    # -- helpers -----------------------------------------------------------

    def network_name(self):
        return self.properties[self.NAME] or self.physical_resource_name()

    def _subnet(self):
        value = self.properties[self.SUBNET]
        if not value:
            return None
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise exception.StackValidationFailed(
                message=_('%(res)s: subnet %(value)s is not a valid CIDR') %
                {'res': self.name, 'value': value})
        if net.version != 4:
            raise exception.StackValidationFailed(
                message=_('%(res)s: subnet %(value)s is IPv6; the engine '
                          'supports IPv4 subnets only') %
                {'res': self.name, 'value': value})
        return net

    # -- validation --------------------------------------------------------

    def validate(self):
        super().validate()
        name = self.properties[self.NAME]
        if name and not NAME_RE.match(name):
            raise exception.StackValidationFailed(
                message=_('%(res)s: invalid network name %(name)r: it must '
                          'start with a letter or digit and contain only '
                          'letters, digits, "_", "." or "-"') %
                {'res': self.name, 'name': name})
        subnet = self._subnet()
        gateway = self.properties[self.GATEWAY]
        if gateway:
            if subnet is None:
                raise exception.ResourcePropertyDependency(
                    prop1=self.GATEWAY, prop2=self.SUBNET)
            addr = ipaddress.ip_address(gateway)
            if addr not in subnet:
                raise exception.StackValidationFailed(
                    message=_('%(res)s: gateway %(gw)s is not inside the '
                              'subnet %(net)s') %
                    {'res': self.name, 'gw': gateway, 'net': subnet})
        for key, value in (self.properties[self.LABELS] or {}).items():
            if not isinstance(value, str):
                raise exception.StackValidationFailed(
                    message=_('%(res)s: label %(key)s must be a string, not '
                              '%(value)r') %
                    {'res': self.name, 'key': key, 'value': value})

    # -- lifecycle ---------------------------------------------------------

    def _create_body(self):
        labels = dict(self.properties[self.LABELS] or {})
        labels[LABEL_STACK_ID] = self.stack.id
        labels[LABEL_RESOURCE] = self.name
        body = {
            'Name': self.network_name(),
            'Driver': self.properties[self.DRIVER],
            'Internal': bool(self.properties[self.INTERNAL]),
            'Labels': labels,
            'CheckDuplicate': True,
        }
        subnet = self._subnet()
        if subnet is not None:
            config = {'Subnet': str(subnet)}
            if self.properties[self.GATEWAY]:
                config['Gateway'] = self.properties[self.GATEWAY]
            body['IPAM'] = {'Driver': 'default', 'Config': [config]}
        return body

    def handle_create(self):
        body = self._create_body()
        try:
            created = self.client().post('/networks/create', json_body=body)
        except engine_client.EngineClientError as exc:
            # Name what was asked for: the engine's reason (a pool overlap,
            # a name in use) is about it.
            asked = ''
            if body.get('IPAM'):
                asked = ' (subnet %s)' % body['IPAM']['Config'][0]['Subnet']
            hint = ''
            if (exc.status == 409 and self.properties[self.NAME] and
                    self.replaces is not None):
                # Heat creates a replacement before it deletes the old
                # network, and an engine network cannot be renamed aside.
                hint = _('; the network this update replaces still holds '
                         'the name: give the new one another name (or leave '
                         'name empty for a generated one)')
            raise exception.Error(
                _('could not create network %(name)s%(asked)s: %(why)s'
                  '%(hint)s') %
                {'name': body['Name'], 'asked': asked,
                 'why': exc.explanation, 'hint': hint})
        self.resource_id_set(created['Id'])
        return created['Id']

    def check_create_complete(self, network_id):
        # Network creation is synchronous in the engine; reading it back
        # proves it is there (and is what the attributes will read).
        self._inspect()
        return True

    def _inspect(self):
        return self.client().get('/networks/%s' % self.resource_id)

    def _show_resource(self):
        if self.resource_id is None:
            return {}
        return self._inspect()

    def handle_delete(self):
        if self.resource_id is None:
            return None
        return self._try_delete(), time.monotonic() + DELETE_RETRY_SECONDS

    def _try_delete(self):
        """True once the network is gone (already gone counts)."""
        try:
            self.client().delete('/networks/%s' % self.resource_id)
        except engine_client.EngineNotFound:
            return True
        except engine_client.EngineClientError as exc:
            # 403 "has active endpoints" / 409 "still being disconnected":
            # containers that used it are on their way out; retry.
            if exc.status in (403, 409):
                self._last_delete_error = exc.explanation
                return False
            raise exception.Error(
                _('could not delete network %(id)s: %(why)s') %
                {'id': self.resource_id, 'why': exc.explanation})
        return True

    def check_delete_complete(self, state):
        if state is None:
            return True
        done, deadline = state
        if done:
            return True
        if time.monotonic() > deadline:
            raise exception.Error(
                _('network %(id)s is still in use: %(why)s') %
                {'id': self.resource_id,
                 'why': getattr(self, '_last_delete_error', '')})
        # heat-engine's scheduler waits between checks anyway; this pause
        # keeps a retry loop from spinning where it does not (Heat's tests).
        time.sleep(0.2)
        return self._try_delete()

    def handle_check(self):
        info = self._inspect()
        if info.get('Id') != self.resource_id:
            raise exception.Error(_('network %s is not the one Heat made')
                                  % self.resource_id)

    # -- attributes --------------------------------------------------------

    def _resolve_attribute(self, name):
        if self.resource_id is None:
            return None
        info = self._inspect()
        if name == self.INFO:
            return info
        if name == self.ID:
            return info.get('Id')
        if name == self.NAME_ATTR:
            return info.get('Name')
        config = ((info.get('IPAM') or {}).get('Config') or [{}])[0]
        if name == self.SUBNET_ATTR:
            return config.get('Subnet')
        if name == self.GATEWAY_ATTR:
            return config.get('Gateway')
        return None


def resource_mapping():
    return {'DockerInc::Docker::Network': DockerNetwork}
