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
    cfg.BoolOpt('warm_cgroup_lock',
                default=True,
                help='Before a container is created or started, or an exec '
                     'runs, keep the kernel\'s cgroup migration lock warm by '
                     'moving the engine into its own cgroup every few '
                     'milliseconds for a quarter of a second (a move that '
                     'changes nothing). runc then does not wait the RCU grace '
                     'period (7-12 ms) that the first cgroup move after a '
                     'quiet spell costs. False leaves that wait to runc.'),
    cfg.BoolOpt('runtime_sealed_copy',
                default=True,
                help='Run runc from a sealed in-memory copy of its binary '
                     'made once at engine start. runc 1.1 otherwise copies '
                     'its whole binary (about 9 MB) into a new sealed memfd '
                     'in every container start and exec, its defence against '
                     'CVE-2019-5736; from a sealed copy it skips that, with '
                     'the same protection (nothing can write to the copy). '
                     'False runs runc from its file. Other runtimes are '
                     'always run from their file.'),
    cfg.BoolOpt('stream_spec',
                default=True,
                help='Start conmon and runc as soon as a container start '
                     'begins, with the bundle\'s config.json a FIFO that the '
                     'engine writes the spec into once it is built (runc reads '
                     'it once, as a stream); their start-up then overlaps the '
                     'mount, network namespace and spec. config.json is a '
                     'plain file again once runc has created the container. '
                     'False writes config.json first. Runtimes other than runc '
                     'always get a plain file.'),
    cfg.BoolOpt('warm_start',
                default=True,
                help='While the engine is idle, keep conmon and runc started '
                     'for the next container to be created, waiting for its '
                     'spec (this needs stream_spec and runc): its first start '
                     'then skips their start-up, about 4 ms. Only containers '
                     'without a TTY or stdin and with the default log options '
                     'take it; it costs one waiting conmon and runc (about 12 '
                     'MiB). False starts them when a container starts.'),
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
               default=64 << 30,
               min=0,
               help='Largest size in bytes of one image layer or imported '
                    'rootfs: its blob, its uncompressed tar and the file data '
                    'it unpacks to. 0 means no limit beyond the free-space '
                    'reserve (min_free_space, min_free_percent).'),
    cfg.IntOpt('max_archive_size',
               default=64 << 30,
               min=0,
               help='Largest size in bytes of a docker load or docker import '
                    'upload after decompression (the tar the engine spools '
                    'to <root>/images/tmp, or the rootfs tar of an import). '
                    'A larger upload is refused with 400. 0 means no limit '
                    'beyond the free-space reserve, which applies in any '
                    'case: the effective limit is the smaller of this and '
                    'the free space above the reserve.'),
    cfg.IntOpt('max_layer_entries',
               default=1000000,
               min=0,
               help='Most tar entries (files, directories, links: each an '
                    'inode) one image layer or imported rootfs may have; a '
                    'layer with more is refused with 400. 0 means no limit '
                    'beyond the free-inode reserve.'),
    cfg.IntOpt('min_free_space',
               default=1 << 30,
               min=0,
               help='Bytes the engine keeps free on the filesystem of its '
                    'root while it writes loads, imports, commits and their '
                    'unpacked layers. An operation that would go below the '
                    'reserve fails with 507 (not enough space) and removes '
                    'what it wrote. The reserve is the larger of this and '
                    'min_free_percent.'),
    cfg.IntOpt('min_free_percent',
               default=5,
               min=0,
               max=50,
               help='Percent of the size (and of the inodes) of the '
                    'filesystem of the engine root kept free, as '
                    'min_free_space; the larger of the two applies.'),
    cfg.IntOpt('api_request_limit',
               default=1 << 20,
               min=1024,
               help='Largest JSON request body in bytes the API accepts.'),
    cfg.IntOpt('max_connections',
               default=512,
               min=8,
               help='API connections served at once (each holds a thread; '
                    'attach, logs -f and events hold theirs while they '
                    'stream). Further connections get a 503.'),
    # -- security profile (engine/security.py) --
    cfg.StrOpt('seccomp_profile',
               default='',
               help='Docker-format seccomp profile every container gets unless '
                    'it is privileged or asks for another (SecurityOpt '
                    'seccomp=...). Empty means Docker\'s own default profile '
                    '(/usr/share/gocode/src/github.com/docker/docker/profiles/'
                    'seccomp/default.json, from Debian\'s '
                    'golang-github-docker-docker-dev), or containers-common\'s '
                    '/usr/share/containers/seccomp.json where that is missing. '
                    '"unconfined" runs containers without seccomp by default.'),
    cfg.BoolOpt('no_new_privileges',
                default=True,
                help='Set no_new_privs on container processes unless the '
                     'container asks otherwise (SecurityOpt '
                     'no-new-privileges=false). Docker\'s own default is off; '
                     'ours is on, so setuid binaries in an image cannot gain '
                     'privileges.'),
]

# Container logs (engine/logrotate.py).
log_opts = [
    cfg.StrOpt('log_max_size',
               default='20m',
               help='Size at which a container\'s log file is rotated when the '
                    'container gives no max-size log option (docker run '
                    '--log-opt max-size), in Docker\'s units (k, m, g: '
                    'powers of 1000). Docker\'s json-file default is '
                    'unlimited, which lets one chatty container fill the '
                    'disk of a compute host; 20m with log_max_file 5 are the '
                    'defaults of Docker\'s own bounded "local" driver, 100 MB '
                    'per container at most. Empty or 0 means no rotation.'),
    cfg.IntOpt('log_max_file',
               default=5,
               min=1,
               help='Log files kept per container (the current one and the '
                    'rotated ones) when the container gives no max-file log '
                    'option; used with log_max_size only. While the engine is '
                    'down conmon still rotates, keeping one more file.'),
]
engine_opts += log_opts


# -- [registry]: the registry client (pull, push, login, search) ------------
registry_opts = [
    cfg.ListOpt('insecure_registries',
                default=[],
                help='Registries reached without verifying TLS, falling back '
                     'to plain HTTP (as Docker\'s --insecure-registry): '
                     'host, host:port or a CIDR network. localhost, ::1 and '
                     '127.0.0.0/8 are always insecure, as with Docker.'),
    cfg.StrOpt('certs_dir',
               default='/etc/novadocker/certs.d',
               help='Per-registry TLS material in Docker\'s layout: '
                    '<certs_dir>/<host:port>/*.crt are CA certificates '
                    'trusted for that registry (on top of the system ones), '
                    'client.cert and client.key a client certificate.'),
    cfg.FloatOpt('connect_timeout',
                 default=15.0,
                 min=0.1,
                 help='Seconds to wait for a registry connection.'),
    cfg.FloatOpt('read_timeout',
                 default=120.0,
                 min=0.1,
                 help='Seconds a registry may stay silent in the middle of a '
                      'response before the request fails (and is retried).'),
    cfg.IntOpt('retries',
               default=3,
               min=0,
               help='How many times a request or blob download that failed '
                    'transiently (connection reset, timeout, HTTP 5xx) is '
                    'retried, with exponential backoff.'),
    cfg.FloatOpt('retry_backoff',
                 default=0.5,
                 min=0,
                 help='Seconds before the first retry; doubled at each one.'),
    cfg.IntOpt('max_redirects',
               default=10,
               min=0,
               help='Most redirects followed for one request (blob downloads '
                    'are often redirected to storage); more is a loop.'),
    cfg.IntOpt('max_manifest_size',
               default=4 << 20,
               min=1024,
               help='Largest manifest or index (bytes) accepted from a '
                    'registry, and largest JSON answer of any other kind.'),
    cfg.IntOpt('upload_chunk_size',
               default=32 << 20,
               min=0,
               help='Blobs up to this size (bytes) are uploaded in one PUT; '
                    'bigger ones in PATCH chunks of this size. 0 uploads '
                    'every blob in one PUT.'),
    cfg.StrOpt('incompressible_layers',
               default='tar',
               choices=[('tar', 'pushed as they are (media type '
                                'application/vnd.docker.image.rootfs.diff.tar): '
                                'no compression work, no second copy on disk, the '
                                'fewest bytes; Docker 20.10, containerd, podman and '
                                'skopeo pull them'),
                        ('gzip', 'wrapped in gzip stored blocks (a CRC, no '
                                 'deflate), for consumers that take only gzip '
                                 'layers')],
               help='How a local layer whose samples do not compress (random '
                    'or already compressed data) is pushed. Other local '
                    'layers are always gzip-compressed; a pulled layer is '
                    'pushed as the blob it came as.'),
    cfg.IntOpt('max_concurrent_downloads',
               default=3,
               min=1,
               help='Layers downloaded at the same time by one pull.'),
    cfg.IntOpt('max_concurrent_uploads',
               default=5,
               min=1,
               help='Layers uploaded at the same time by one push.'),
]


# Networking (engine/networks): the default bridge network, CNI plugins.
network_opts = [
    cfg.StrOpt('cni_path',
               default='/usr/lib/cni',
               help='Directories holding the CNI plugins (bridge, host-local, '
                    'static, portmap), separated by ":". Debian\'s '
                    'containernetworking-plugins install them in /usr/lib/cni.'),
    cfg.FloatOpt('cni_timeout',
                 default=30.0,
                 min=1.0,
                 help='Seconds one CNI plugin call may take before it is '
                      'killed and the operation fails.'),
    cfg.StrOpt('default_bridge',
               default='novadocker0',
               help='Linux bridge of the default "bridge" network, used when '
                    'no other engine on this host owns it; otherwise the '
                    'engine uses nd<tag> (its root\'s 8-hex tag).'),
    cfg.StrOpt('default_bridge_subnet',
               default='',
               help='IPv4 subnet (CIDR) of the default bridge network. Empty '
                    'picks the first default address pool that overlaps no '
                    'host route and no other network. A subnet that overlaps '
                    'is a startup error.'),
    cfg.ListOpt('default_address_pools',
                default=['172.%d.0.0/16' % n for n in range(17, 32)]
                + ['192.168.0.0/16:20'],
                help='Where subnets of networks created without --subnet '
                     'come from, in order: CIDR[:size] (size: the prefix '
                     'length of each subnet cut from the CIDR; the CIDR\'s '
                     'own by default). Docker\'s defaults.'),
    cfg.IntOpt('mtu',
               default=0,
               min=0,
               max=65535,
               help='MTU of bridge networks\' bridges and veths; 0 leaves the '
                    'kernel\'s (1500).'),
]


def engine_option(name):
    """The value of ``[engine] name``: configured when the options are
    registered on CONF (the daemon), else the option's default (a store
    built by a test or a tool)."""
    try:
        return CONF.engine[name]
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        pass
    for opt in engine_opts:
        if opt.name == name:
            return opt.default
    raise KeyError(name)


def register_opts(conf=CONF):
    conf.register_cli_opts(cli_opts)
    conf.register_opts(engine_opts, group='engine')
    conf.register_opts(registry_opts, group='registry')
    conf.register_opts(network_opts, group='network')


def list_opts():
    return [('DEFAULT', cli_opts), ('engine', engine_opts),
            ('registry', registry_opts), ('network', network_opts)]
