"""``--change`` Dockerfile instructions (engine.changes)."""

import unittest

import ddt

from engine import changes
from engine import errors


@ddt.ddt
class ParseChangesTest(unittest.TestCase):

    def apply(self, *lines, config=None):
        return changes.parse_changes(list(lines), config)

    @ddt.unpack
    @ddt.data(
        ('CMD ["echo", "hi"]', ['echo', 'hi']),
        ('CMD echo "hi there"', ['/bin/sh', '-c', 'echo "hi there"']),
        ('cmd [not json', ['/bin/sh', '-c', '[not json']),
        ('CMD []', []),
    )
    def test_cmd(self, line, expected):
        self.assertEqual(expected, self.apply(line)['Cmd'])

    def test_entrypoint_resets_inherited_cmd(self):
        cfg = self.apply('ENTRYPOINT ["/bin/app"]', config={'Cmd': ['x']})
        self.assertEqual(['/bin/app'], cfg['Entrypoint'])
        self.assertIsNone(cfg['Cmd'])

    def test_entrypoint_keeps_cmd_set_in_same_changes(self):
        cfg = self.apply('CMD ["-v"]', 'ENTRYPOINT top -b')
        self.assertEqual(['/bin/sh', '-c', 'top -b'], cfg['Entrypoint'])
        self.assertEqual(['-v'], cfg['Cmd'])

    def test_env_forms(self):
        cfg = self.apply('ENV A 1 2 3', 'ENV B=2 C="x y" D=\'$A\'',
                         'ENV E=${A}-$B F=${MISSING:-dflt} G=${B:+set}',
                         config={'Env': ['PATH=/bin', 'A=old']})
        env = cfg['Env']
        self.assertEqual(['PATH=/bin', 'A=1 2 3', 'B=2', 'C=x y', 'D=$A',
                          'E=1 2 3-2', 'F=dflt', 'G=set'], env)

    def test_env_replaces_and_expands_previous(self):
        cfg = self.apply('ENV PATH=/opt/bin:$PATH',
                         config={'Env': ['PATH=/bin']})
        self.assertEqual(['PATH=/opt/bin:/bin'], cfg['Env'])

    def test_escaped_dollar(self):
        self.assertEqual(['A=$HOME'], self.apply('ENV A=\\$HOME')['Env'])

    def test_label_and_expose(self):
        cfg = self.apply('LABEL a=b "c d"=e', 'EXPOSE 80 53/udp 8000-8002/TCP')
        self.assertEqual({'a': 'b', 'c d': 'e'}, cfg['Labels'])
        self.assertEqual({'80/tcp': {}, '53/udp': {}, '8000/tcp': {},
                          '8001/tcp': {}, '8002/tcp': {}},
                         cfg['ExposedPorts'])

    def test_workdir_user_volume_stopsignal_onbuild(self):
        cfg = self.apply('WORKDIR /srv', 'WORKDIR app/../data', 'USER 1000:1000',
                         'VOLUME ["/a", "/b"]', 'VOLUME /c /d',
                         'STOPSIGNAL SIGUSR1', 'ONBUILD run echo hi')
        self.assertEqual('/srv/data', cfg['WorkingDir'])
        self.assertEqual('1000:1000', cfg['User'])
        self.assertEqual({'/a': {}, '/b': {}, '/c': {}, '/d': {}},
                         cfg['Volumes'])
        self.assertEqual('SIGUSR1', cfg['StopSignal'])
        self.assertEqual(['RUN echo hi'], cfg['OnBuild'])

    def test_healthcheck(self):
        cfg = self.apply('HEALTHCHECK --interval=1m30s --retries=3 CMD ["true"]')
        self.assertEqual({'Test': ['CMD', 'true'], 'Interval': 90 * 10 ** 9,
                          'Retries': 3}, cfg['Healthcheck'])
        cfg = self.apply('HEALTHCHECK NONE')
        self.assertEqual({'Test': ['NONE']}, cfg['Healthcheck'])

    def test_multiline_and_comments(self):
        cfg = self.apply('# comment\nENV A=1 \\\n  B=2', '')
        self.assertEqual(['A=1', 'B=2'], cfg['Env'])

    def test_input_not_modified(self):
        base = {'Env': ['A=1']}
        self.apply('ENV B=2', config=base)
        self.assertEqual({'Env': ['A=1']}, base)

    @ddt.unpack
    @ddt.data(
        ('FOO bar', 'unknown instruction: FOO'),
        ('RUN echo', 'run is not a valid change command'),
        ('FROM busybox', 'from is not a valid change command'),
        ('EXPOSE 70000', 'invalid containerPort'),
        ('EXPOSE 80/xyz', 'invalid proto'),
        ('EXPOSE abc', 'invalid containerPort'),
        ('STOPSIGNAL SIGNOPE', 'Invalid signal'),
        ('ENV', 'requires at least one argument'),
        ('ENV =x', 'names can not be blank'),
        ('ENV A', 'must have two arguments'),
        ('ONBUILD ONBUILD CMD x', "isn't allowed as an ONBUILD trigger"),
        ('HEALTHCHECK --bogus=1 CMD true', 'Unknown flag'),
        ('HEALTHCHECK --interval=5x CMD true', 'invalid duration'),
        ('WORKDIR', 'WORKDIR requires exactly one argument'),
    )
    def test_errors(self, line, message):
        with self.assertRaises(errors.InvalidArgument) as cm:
            self.apply(line)
        self.assertIn(message, str(cm.exception))
