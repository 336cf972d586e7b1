"""Configuration of the engine daemon (oslo.config).

``[DEFAULT]`` carries the dockerd-like command line flags (``--root``,
``--host``); ``[engine]`` carries everything else.  ``list_opts`` feeds
oslo-config-generator through the ``oslo.config.opts`` entry point.
"""

from oslo_config import cfg

CONF = cfg.CONF

cli_opts = [
    cfg.StrOpt('root',
               default='/var/lib/novadocker',
               help='Directory holding the engine\'s persistent state: blobs, '
                    'images, snapshots and container records. Engines with '
                    'different roots can run side by side on one host.'),
    cfg.StrOpt('host',
               default='unix:///run/novadocker/engine.sock',
               help='Where the engine serves its API, as unix:///PATH. The '
                    'socket is created with mode 0660. TCP is not served.'),
]

engine_opts = [
    cfg.StrOpt('exec_root',
               default='',
               help='Directory for runtime state that does not survive a '
                    'reboot (OCI runtime state, monitor sockets). Empty means '
                    '<root>/run.'),
    cfg.StrOpt('runtime',
               default='',
               help='OCI runtime, by its name in the engine.runtimes '
                    'namespace (runc, crun). Empty picks the first of runc '
                    'and crun that works on this host (crun refuses hosts '
                    'that mount cgroup v1 and v2 side by side).'),
    cfg.StrOpt('snapshotter',
               default='overlay',
               help='Union filesystem for image layers and container root '
                    'filesystems, by its name in the engine.snapshotters '
                    'namespace (overlay, vfs).'),
    cfg.StrOpt('conmon_path',
               default='conmon',
               help='The conmon binary that monitors each container.'),
    cfg.StrOpt('socket_group',
               default='',
               help='Group owning the API socket (mode 0660). Empty keeps the '
                    'group of the engine process.'),
    cfg.IntOpt('stop_timeout',
               default=10,
               min=0,
               help='Seconds a container gets between its stop signal and '
                    'SIGKILL when the request gives none.'),
    cfg.IntOpt('max_layer_size',
               default=0,
               min=0,
               help='Largest unpacked size in bytes of one image layer or '
                    'imported rootfs; 0 means no limit beyond free disk.'),
    cfg.IntOpt('api_request_limit',
               default=1 << 20,
               min=1024,
               help='Largest JSON request body in bytes the API accepts.'),
]


def register_opts(conf=CONF):
    conf.register_cli_opts(cli_opts)
    conf.register_opts(engine_opts, group='engine')


def list_opts():
    return [('DEFAULT', cli_opts), ('engine', engine_opts)]
