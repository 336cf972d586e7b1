"""The novadocker Nova compute driver.

``DockerDriver`` is exported lazily: importing this package (for its
options, by oslo-config-generator, or through the nova.virt alias before
Nova is set up) does not import Nova.

nova.conf::

    [DEFAULT]
    compute_driver = novadocker.DockerDriver
"""


def __getattr__(name):
    if name == 'DockerDriver':
        from novadocker.virt.docker.driver import DockerDriver
        return DockerDriver
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
