"""A trivial Heat resource plugin: a file on the local disk.

Lives in a plugin directory (no __init__.py): real heat-engine imports it as
``heat.engine.plugins.file_resource`` when this directory is listed in
``[DEFAULT]plugin_dirs``, and registers what ``resource_mapping()`` returns
(``available_resource_mapping()`` is preferred when a module defines it).
"""

import os

from heat.engine import attributes
from heat.engine import properties
from heat.engine import resource
from heat.engine import support


class LocalFile(resource.Resource):
    """Writes ``content`` to ``path`` on create; removes it on delete."""

    support_status = support.SupportStatus(version='27.0.0')

    PROPERTIES = (PATH, CONTENT) = ('path', 'content')
    ATTRIBUTES = (SIZE,) = ('size',)

    properties_schema = {
        PATH: properties.Schema(properties.Schema.STRING,
                                'Absolute path of the file.', required=True),
        CONTENT: properties.Schema(properties.Schema.STRING,
                                   'What the file holds.', default='',
                                   update_allowed=True),
    }
    attributes_schema = {
        SIZE: attributes.Schema('Size of the file in bytes.',
                                type=attributes.Schema.INTEGER),
    }

    def validate(self):
        super().validate()
        if not os.path.isabs(self.properties[self.PATH]):
            from heat.common import exception
            raise exception.StackValidationFailed(
                message='path must be absolute: %s'
                % self.properties[self.PATH])

    def handle_create(self):
        path = self.properties[self.PATH]
        with open(path, 'x') as f:
            f.write(self.properties[self.CONTENT])
        self.resource_id_set(path)

    def check_create_complete(self, _):
        return os.path.exists(self.resource_id)

    def handle_update(self, json_snippet, tmpl_diff, prop_diff):
        if self.CONTENT in prop_diff:
            with open(self.resource_id, 'w') as f:
                f.write(prop_diff[self.CONTENT])

    def handle_delete(self):
        if self.resource_id:
            try:
                os.unlink(self.resource_id)
            except FileNotFoundError:
                pass  # already gone counts as deleted

    def _resolve_attribute(self, name):
        if name == self.SIZE and self.resource_id:
            return os.path.getsize(self.resource_id)


def resource_mapping():
    return {'NovaDocker::Test::LocalFile': LocalFile}
