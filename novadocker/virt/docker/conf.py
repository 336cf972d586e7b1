"""The Nova driver's options: the ``[docker]`` group of nova.conf.

Imports nothing from Nova, so oslo-config-generator and the unit tests can
list them without Nova's option registry.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup('docker', title='novadocker compute driver',
                     help='How nova-compute reaches the novadocker engine on its host, '
                          'how instances get their network, and where snapshots go.')

engine_opts = [
    cfg.StrOpt('engine_url', default='unix:///run/novadocker/engine.sock',
               help='The engine API: unix:///path/to.sock (the default, the engine on '
                    'this host), or https://host:port, which needs the tls_* options. '
                    'Plain TCP is refused: the engine runs as root.'),
    cfg.FloatOpt('api_timeout', default=120.0, min=1.0,
                 help='Seconds to wait for an engine answer to one API call (reads of '
                      'a streamed answer, such as a pull, each wait this long).'),
    cfg.FloatOpt('connect_timeout', default=5.0, min=0.1,
                 help='Seconds to wait for the connection to the engine.'),
    cfg.StrOpt('tls_ca', help='CA file that signed the engine\'s certificate '
                              '(https engine_url).'),
    cfg.StrOpt('tls_cert', help='Client certificate presented to the engine.'),
    cfg.StrOpt('tls_key', secret=True, help='Key of tls_cert.'),
]

instance_opts = [
    cfg.BoolOpt('privileged', default=False,
                help='Run instances as privileged containers (all capabilities, no '
                     'seccomp, every device). Never for untrusted tenants.'),
    cfg.StrOpt('cpu_policy', default='shares', choices=[
        ('shares', 'vCPUs weigh CPU time: CpuShares = 1024 x vCPUs, no cap'),
        ('quota', 'vCPUs cap CPU time: at most vCPUs cores (CFS quota)'),
        ('both', 'shares and the cap')],
        help='How a flavor\'s vCPUs become CPU limits of the container.'),
    cfg.BoolOpt('inject_key', default=False,
                help='Write the instance\'s key pair into /root/.ssh/authorized_keys '
                     'of the container.'),
    cfg.IntOpt('console_log_max_bytes', default=100 * 1024, min=1024,
               help='get_console_output returns at most this many bytes: the end '
                    'of the container\'s log (libvirt caps its console log too).'),
    cfg.IntOpt('stop_timeout', default=60, min=0,
               help='Seconds power_off and soft reboot wait after SIGTERM before '
                    'SIGKILL, when Nova passes no timeout.'),
    cfg.IntOpt('remove_unused_images_after', default=86400, min=0,
               help='manage_image_cache removes an image that no instance on this '
                    'host has used for this many seconds (0: never).'),
]

network_opts = [
    cfg.StrOpt('vif_driver', default='bridge',
               help='How a Neutron port reaches a container, by name in the '
                    'novadocker.vif_drivers namespace: bridge (Linux bridge VIFs), '
                    'ovs (Open vSwitch), noop (no networking).'),
]

snapshot_opts = [
    cfg.StrOpt('snapshot_store', default='registry',
               help='Where snapshots go, by name in the novadocker.snapshot_stores '
                    'namespace: registry (only new layers are pushed to an OCI '
                    'registry; Glance keeps the reference) or glance (the whole '
                    'image as a Docker archive in Glance, as nova-docker did).'),
    cfg.StrOpt('registry_url',
               help='The registry snapshots are pushed to, host[:port] (for example '
                    'registry.example.com:5000). Required by the registry store.'),
    cfg.StrOpt('registry_namespace', default='nova',
               help='Repository prefix: a snapshot is pushed as '
                    '<registry_url>/<registry_namespace>/<glance image id>.'),
    cfg.StrOpt('registry_username', help='Registry user, if it needs a login.'),
    cfg.StrOpt('registry_password', secret=True, help='Password of registry_username.'),
]

ALL = engine_opts + instance_opts + network_opts + snapshot_opts


def register_opts(conf=cfg.CONF):
    conf.register_group(GROUP)
    conf.register_opts(ALL, group=GROUP)


def list_opts():
    return [(GROUP, ALL)]
