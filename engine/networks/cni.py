"""A CNI conflist runner: the plugins do the per-container plumbing.

We invoke the plugins ourselves (the CNI spec's execution protocol: the
network config on stdin, parameters in the environment, a result or an
error on stdout).  ADD runs the list in order, each plugin seeing the
previous one's result as ``prevResult``; DEL runs it in reverse with the
cached ADD result.  ``runtimeConfig`` is given only to plugins declaring
the capability, as the spec says.
"""

import json
import os
import subprocess

from oslo_log import log as logging

from engine import errors

LOG = logging.getLogger(__name__)

CNI_VERSION = '1.0.0'


class PluginError(errors.EngineError):
    """A plugin failed; the message carries its own words."""

    def __init__(self, plugin, command, msg, details='', code=None):
        text = 'CNI plugin %s %s failed: %s' % (plugin, command, msg)
        if details:
            text += ' (%s)' % details
        super().__init__(text)
        self.plugin, self.code, self.msg, self.details = plugin, code, msg, details


class CNIRunner:
    def __init__(self, paths, timeout=30.0):
        if isinstance(paths, str):
            paths = [p for p in paths.split(':') if p]
        self.paths = list(paths)
        self.timeout = timeout

    def find(self, plugin_type):
        if not isinstance(plugin_type, str) or not plugin_type or '/' in plugin_type:
            raise errors.InvalidArgument('invalid CNI plugin type %r' % (plugin_type,))
        for d in self.paths:
            p = os.path.join(d, plugin_type)
            if os.access(p, os.X_OK):
                return p
        raise errors.RuntimeFailure('CNI plugin %s not found in %s' % (
            plugin_type, ':'.join(self.paths)))

    def _exec(self, command, conf, container_id, netns, ifname, args=None):
        plugin = conf['type']
        env = {
            'CNI_COMMAND': command, 'CNI_CONTAINERID': container_id,
            'CNI_NETNS': netns or '', 'CNI_IFNAME': ifname,
            'CNI_PATH': ':'.join(self.paths), 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
        }
        if args:
            env['CNI_ARGS'] = ';'.join('%s=%s' % kv for kv in sorted(args.items()))
        try:
            proc = subprocess.run([self.find(plugin)], input=json.dumps(conf).encode(),
                                  capture_output=True, env=env, timeout=self.timeout,
                                  close_fds=True)
        except subprocess.TimeoutExpired:
            raise PluginError(plugin, command, 'timed out after %ss' % self.timeout)
        out = proc.stdout.decode('utf-8', 'replace').strip()
        if proc.returncode != 0:
            try:
                err = json.loads(out)
                msg, details, code = err.get('msg', ''), err.get('details', ''), err.get('code')
            except (ValueError, AttributeError):
                msg, details, code = (out or proc.stderr.decode('utf-8', 'replace').strip()
                                      or 'exit status %d' % proc.returncode), '', None
            raise PluginError(plugin, command, msg or 'exit status %d' % proc.returncode,
                              details, code)
        if command != 'ADD':
            return None
        try:
            return json.loads(out)
        except ValueError:
            raise PluginError(plugin, command, 'returned no JSON result: %r' % out[:200])

    @staticmethod
    def plugin_conf(conflist, plugin, runtime_config, prev_result):
        conf = dict(plugin)
        conf['name'] = conflist['name']
        conf['cniVersion'] = conflist.get('cniVersion', CNI_VERSION)
        caps = plugin.get('capabilities') or {}
        rc = {k: v for k, v in (runtime_config or {}).items() if caps.get(k)}
        conf.pop('capabilities', None)
        if rc:
            conf['runtimeConfig'] = rc
        if prev_result is not None:
            conf['prevResult'] = prev_result
        return conf

    def add(self, conflist, container_id, netns, ifname, runtime_config=None, args=None):
        """Run ADD through the list; return the last result.  On failure the
        plugins that ran are undone (DEL) before the error is raised."""
        result = None
        done = []
        try:
            for plugin in conflist['plugins']:
                conf = self.plugin_conf(conflist, plugin, runtime_config, result)
                done.append(plugin)
                result = self._exec('ADD', conf, container_id, netns, ifname, args) or result
        except BaseException:
            try:
                self.delete({**conflist, 'plugins': done}, container_id, netns, ifname,
                            runtime_config, prev_result=result, args=args)
            except errors.EngineError as exc:
                LOG.warning('undoing a failed CNI ADD for %s: %s', container_id[:12], exc)
            raise
        return result

    def delete(self, conflist, container_id, netns, ifname, runtime_config=None,
               prev_result=None, args=None):
        """DEL in reverse order; every plugin runs, the first error is raised."""
        first = None
        for plugin in reversed(conflist['plugins']):
            conf = self.plugin_conf(conflist, plugin, runtime_config, prev_result)
            try:
                self._exec('DEL', conf, container_id, netns, ifname, args)
            except errors.EngineError as exc:
                first = first or exc
        if first is not None:
            raise first

    def check(self, conflist, container_id, netns, ifname, runtime_config=None,
              prev_result=None, args=None):
        for plugin in conflist['plugins']:
            conf = self.plugin_conf(conflist, plugin, runtime_config, prev_result)
            self._exec('CHECK', conf, container_id, netns, ifname, args)
