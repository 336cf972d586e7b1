"""``novadocker-engine``: serve the API, or check a store.

    novadocker-engine [--root DIR] [--host unix:///PATH] [--config-file F] [--debug]
    novadocker-engine --root DIR check
"""

import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from engine import conf as conf_mod
from engine import errors

LOG = logging.getLogger(__name__)
CONF = conf_mod.CONF


def _add_actions(subparsers):
    subparsers.add_parser('serve', help='serve the API (the default)')
    subparsers.add_parser('check', help='check the store under --root and exit '
                                        '(status 1 when problems are found)')
    subparsers.add_parser('purge-networks', help='remove the bridges, iptables rules, leases '
                                                 'and namespaces this engine made on the host '
                                                 '(no container may be running)')
    subparsers.add_parser('purge-orphans', help='remove the bridges and iptables rules of '
                                                'engines whose root directory is gone (deleted '
                                                'without purge-networks); --root is ignored')


ACTIONS = ('serve', 'check', 'purge-networks', 'purge-orphans')


def parse_args(argv):
    argv = list(argv)
    if not any(a in ACTIONS for a in argv) and not any(a in ('-h', '--help', '--version')
                                                       for a in argv):
        argv.append('serve')  # dockerd-like: no action means serve
    conf_mod.register_opts(CONF)
    CONF.register_cli_opt(cfg.SubCommandOpt('action', handler=_add_actions,
                                            help='what to do (serve by default)'))
    logging.register_options(CONF)
    CONF(argv, project='novadocker', prog='novadocker-engine',
         default_config_files=[], version='0.1.0')
    logging.setup(CONF, 'novadocker-engine')


def socket_path(host):
    if not host.startswith('unix://'):
        raise errors.InvalidArgument(
            'unsupported --host %r: the engine serves only unix:///PATH sockets '
            '(TCP needs TLS, which is not implemented)' % host)
    path = host[len('unix://'):]
    if not path.startswith('/'):
        raise errors.InvalidArgument('--host must name an absolute socket path: %r' % host)
    return path


def check():
    from engine import daemon
    eng = daemon.Engine(CONF, follow_root=True)
    try:
        problems = eng.check()
        notes = eng.leftovers()
    finally:
        eng.close()
    for line in notes:
        print('leftover (removed at the next start): %s' % line)
    for line in problems:
        print(line)
    if problems:
        print('%d problem(s) found in %s' % (len(problems), eng.root), file=sys.stderr)
        return 1
    print('store %s is consistent' % eng.root)
    return 0


def purge_networks():
    from engine import daemon
    eng = daemon.Engine(CONF, follow_root=True)
    try:
        eng.purge_networks()
    finally:
        eng.close()
    print('networks of %s purged from the host' % eng.root)
    return 0


def purge_orphans():
    from engine.networks import drivers
    from engine.networks import firewall
    removed = drivers.purge_orphans(firewall.Firewall())
    for tag, bridge, root in removed:
        if root:
            print('removed network %s (bridge %s) of the vanished root %s'
                  % (tag, bridge or '-', root))
        else:
            print('removed the rules of network %s: no engine accounts for them and '
                  'their interfaces are gone' % tag)
    # The engine of a vanished root runs no more containers: its parent
    # cgroup, empty, goes too (a busy one stays and is named).
    from engine.runtime import oci
    for root in sorted({root for _tag, _bridge, root in removed if root}):
        parent = oci.engine_cgroup_parent(root)
        if not oci.cgroup_parent_paths(parent):
            continue
        oci.cleanup_cgroup_parent(parent)
        if oci.cgroup_parent_paths(parent):
            print('left the cgroup %s of the vanished root %s: it is not empty' % (parent, root))
        else:
            print('removed the cgroup %s of the vanished root %s' % (parent, root))
    print('%d orphaned network(s) removed' % len(removed))
    return 0


def serve():
    import grp

    from engine import daemon
    from engine.api import http
    from engine.api import routes

    path = socket_path(CONF.host)
    eng = daemon.Engine(CONF)
    eng.start()
    gid = None
    if CONF.engine.socket_group:
        gid = grp.getgrnam(CONF.engine.socket_group).gr_gid
    server = http.UnixServer(path, routes.build(eng), mode=0o660, gid=gid,
                             max_connections=CONF.engine.max_connections)
    stopping = threading.Event()

    def shutdown(signum, frame):
        if not stopping.is_set():
            stopping.set()
            LOG.info('signal %d: shutting down; containers keep running', signum)
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    LOG.info('engine serving %s (root %s, runtime %s, snapshotter %s)',
             path, eng.root, eng.runtime.name, eng.snapshotter.name)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        eng.close()
    return 0


def main(argv=None):
    try:
        parse_args(sys.argv[1:] if argv is None else argv)
        if CONF.action.name == 'check':
            return check()
        if CONF.action.name == 'purge-networks':
            return purge_networks()
        if CONF.action.name == 'purge-orphans':
            return purge_orphans()
        return serve()
    except errors.EngineError as exc:
        print('novadocker-engine: %s' % exc, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
