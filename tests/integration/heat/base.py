"""heat.tests.common.HeatTestCase, made to find Heat's data files in a venv.

HeatTestCase.setUp (heat/tests/common.py:105) sets environment_dir and
template_dir to ``<dir above the heat package>/etc/heat/...``, i.e.
``site-packages/etc/heat``, which exists only in a source checkout. The
wheel installs those files under ``<venv>/etc/heat`` (sysconfig's "data"
path). With the wrong directory Heat silently loads no environment.d (so no
OS::Quantum* aliases, no template-backed AWS::RDS::DBInstance and
AWS::CloudWatch::Alarm). We override both options (an override beats
setUp's set_default; setUp's cleanup cfg.CONF.reset() drops it again) and
point the two template resources where setUp would have.
"""

import os
import sysconfig
import time
import urllib.request

from oslo_config import cfg

from heat.engine import environment
from heat.engine import resources
from heat.tests import common

HEAT_ETC = os.path.join(sysconfig.get_paths()['data'], 'etc', 'heat')
ENV_DIR = os.path.join(HEAT_ETC, 'environment.d')
TEMPLATE_DIR = os.path.join(HEAT_ETC, 'templates')


class HeatTestCase(common.HeatTestCase):

    def setUp(self, *args, **kwargs):
        cfg.CONF.import_opt('environment_dir', 'heat.common.config')
        cfg.CONF.import_opt('template_dir', 'heat.common.config')
        cfg.CONF.set_override('environment_dir', ENV_DIR)
        cfg.CONF.set_override('template_dir', TEMPLATE_DIR)
        super().setUp(*args, **kwargs)
        for name in ('AWS::RDS::DBInstance', 'AWS::CloudWatch::Alarm'):
            info = resources.global_env().get_resource_info(
                name, registry_type=environment.TemplateResourceInfo)
            if info is not None:
                base = os.path.basename(info.template_name)
                info.template_name = 'file://' + os.path.join(TEMPLATE_DIR,
                                                              base)


def http_get(url, timeout=15.0):
    """The body at ``url``; retried while the server inside the container
    is starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
