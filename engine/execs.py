"""Exec instances: extra processes run inside a running container.

Like Docker, exec records live in memory only; the exec'd process is a
child of the engine (through the OCI runtime's ``exec``).
"""

import threading

from oslo_log import log as logging

from engine import containerconfig
from engine import errors
from engine import stdio
from engine import util

LOG = logging.getLogger(__name__)

_EXEC_TYPES = {
    'AttachStdin': bool, 'AttachStdout': bool, 'AttachStderr': bool, 'Tty': bool,
    'DetachKeys': str, 'Privileged': bool, 'User': str, 'WorkingDir': str,
    'Cmd': containerconfig._STR_LIST, 'Env': containerconfig._STR_LIST,
    'ConsoleSize': list,
}


class ExecInstance:
    def __init__(self, eid, container, config):
        self.id = eid
        self.container = container
        self.config = config
        self.running = False
        self.started = False
        self.exit_code = None
        self.process = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def inspect(self):
        cfg = self.config
        return {
            'ID': self.id,
            'Running': self.running,
            'ExitCode': self.exit_code,
            'ProcessConfig': {
                'tty': cfg.get('Tty', False),
                'entrypoint': cfg['Cmd'][0],
                'arguments': cfg['Cmd'][1:],
                'privileged': cfg.get('Privileged', False),
                'user': cfg.get('User', ''),
            },
            'OpenStdin': cfg.get('AttachStdin', False),
            'OpenStderr': cfg.get('AttachStderr', False),
            'OpenStdout': cfg.get('AttachStdout', False),
            'CanRemove': False,
            'ContainerID': self.container.id,
            'DetachKeys': cfg.get('DetachKeys', ''),
            'Pid': (self.process.pid or 0) if self.process else 0,
        }


class ExecService:
    def __init__(self, containers, tasks, process_builder, events):
        self.containers = containers
        self.tasks = tasks
        self.process_builder = process_builder
        self.events = events
        self._execs = {}
        self._lock = threading.Lock()

    def create(self, ref, body):
        c = self.containers.get(ref)
        if not isinstance(body, dict):
            raise errors.InvalidArgument('exec config must be a JSON object')
        for name, kind in _EXEC_TYPES.items():
            containerconfig._check_type('ExecConfig', name, body.get(name), kind)
        if isinstance(body.get('Cmd'), str):
            body = dict(body, Cmd=[body['Cmd']])
        if not body.get('Cmd'):
            raise errors.InvalidArgument('No exec command specified')
        if body.get('ConsoleSize') is not None:
            containerconfig.check_console_size(body['ConsoleSize'], 'ConsoleSize')
        if not c.is_running():
            raise errors.Conflict('Container %s is not running' % c.id)
        if c.status == 'paused':
            raise errors.Conflict('Container %s is paused, unpause the container before exec'
                                  % c.id)
        eid = util.new_id()
        inst = ExecInstance(eid, c, dict(body))
        with self._lock:
            self._execs[eid] = inst
        self.events.publish('container', 'exec_create: ' + _action_command(body['Cmd']), c.id,
                            self.containers._event_attrs(c, execID=eid))
        return eid

    def get(self, eid):
        with self._lock:
            inst = self._execs.get(eid)
        if inst is None:
            raise errors.NoSuchExec(eid)
        return inst

    def forget_container(self, cid):
        with self._lock:
            for eid in [e for e, i in self._execs.items() if i.container.id == cid]:
                del self._execs[eid]

    def start(self, eid, tty=None, console_size=None, hijack=None):
        """Start an exec; with ``hijack`` (a callable returning the hijacked
        connection once headers are sent) relay its stdio until it ends."""
        inst = self.get(eid)
        with inst.lock:
            if inst.started:
                raise errors.Conflict('exec %s has already been started' % eid)
            inst.started = True
        c = inst.container
        if not c.is_running():
            raise errors.Conflict('Container %s is not running' % c.id)
        cfg = inst.config
        if tty is None:
            tty = cfg.get('Tty', False)
        attach_stdin = bool(cfg.get('AttachStdin')) and hijack is not None
        process = self.process_builder(c, cfg, tty)
        size = console_size or cfg.get('ConsoleSize')
        if not (tty and size and len(size) == 2 and all(size)):
            size = None
        proc = self.tasks.exec(c.id, process, tty=tty, stdin=attach_stdin, console_size=size)
        inst.process = proc
        inst.running = True
        self.events.publish('container', 'exec_start: ' + _action_command(cfg['Cmd']), c.id,
                            self.containers._event_attrs(c, execID=eid))
        waiter = threading.Thread(target=self._reap, args=(inst,), daemon=True)
        waiter.start()
        if hijack is None:
            # Nobody reads a detached exec's output; drain it so it never blocks.
            threading.Thread(target=self._relay, args=(inst, _Discard(), tty, False),
                             daemon=True).start()
            return None
        client = hijack()
        self._relay(inst, client, tty, attach_stdin)
        return client

    def _relay(self, inst, client, tty, attach_stdin):
        proc = inst.process
        try:
            if tty:
                outputs = {proc.master: stdio.STDOUT}
            else:
                outputs = {}
                if proc.stdout is not None:
                    outputs[proc.stdout] = stdio.STDOUT
                if proc.stderr is not None:
                    outputs[proc.stderr] = stdio.STDERR
            stdin_fd = proc.take_stdin() if attach_stdin else None
            stdio.pump_fds(client, tty, outputs, stdin_fd)
            inst.done.wait()
        finally:
            client.close()
            proc.close()

    def _reap(self, inst):
        try:
            code = inst.process.wait()
        except Exception:
            LOG.exception('waiting for exec %s failed', inst.id)
            code = 126
        failure = inst.process.error
        if failure:
            # The runtime could not start the process: Docker's 126/127 convention.
            low = failure.lower()
            code = 127 if ('not found' in low or 'no such file' in low) else 126
        inst.exit_code = code
        inst.running = False
        inst.done.set()
        self.events.publish('container', 'exec_die', inst.container.id,
                            self.containers._event_attrs(inst.container, execID=inst.id,
                                                         exitCode=str(code)))

    def resize(self, eid, height, width):
        inst = self.get(eid)
        containerconfig.check_terminal_size(height, width)
        if not inst.running or inst.process is None:
            raise errors.Conflict('exec %s is not running' % eid)
        if inst.config.get('Tty'):
            inst.process.resize(height, width)


class _Discard:
    """A client that takes output and sends nothing."""

    def write(self, data):
        pass

    def read(self, n=65536):
        return b''

    def close(self):
        pass


def _action_command(cmd):
    """Docker's exec event suffix: the entrypoint, a space, the arguments
    (so a command without arguments keeps a trailing space)."""
    cmd = list(cmd or [''])
    return cmd[0] + ' ' + ' '.join(cmd[1:])
