"""Lets nova-compute load our driver with ``compute_driver = novadocker.DockerDriver``.

Nova 34 imports ``'nova.virt.' + CONF.compute_driver`` and nothing else
(nova/virt/driver.py, load_compute_driver). ``novadocker-nova.pth``, which
the package installs into site-packages, runs ``import novadocker_nova_shim``
at interpreter start; this module only appends a finder to sys.meta_path
that answers for the one name ``nova.virt.novadocker`` with our
``novadocker.virt.docker`` package (which exports DockerDriver). It imports
nothing of Nova or of the driver until that name is imported, so
nova-compute's start-up (eventlet monkey patching first) is unchanged, and
every other import goes on as if it were not there.
"""

import importlib
import importlib.abc
import importlib.util
import sys

ALIAS = 'nova.virt.novadocker'
TARGET = 'novadocker.virt.docker'


class NovaVirtAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        # The real module under a second name: one copy of its classes.
        return importlib.import_module(TARGET)

    def exec_module(self, module):
        pass


def install():
    if not any(isinstance(f, NovaVirtAlias) for f in sys.meta_path):
        sys.meta_path.append(NovaVirtAlias())


install()
