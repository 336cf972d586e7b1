"""Dockerfile parsing and instruction evaluation (engine.build)."""

import collections
import os
import tempfile
import unittest

import ddt

from engine import build as build_mod
from engine.build import dockerfile as df
from engine.build import executor


def one(text):
    instrs = df.parse('FROM busybox\n' + text)
    return instrs[1]


@ddt.ddt
class ParseTest(unittest.TestCase):

    def test_continuations_and_comments(self):
        instrs = df.parse('# comment\nFROM busybox\nRUN echo a \\\n  && echo b\n')
        self.assertEqual(['FROM', 'RUN'], [i.cmd for i in instrs])
        self.assertEqual(3, instrs[1].line)
        self.assertEqual('echo a   && echo b', instrs[1].rest)

    @ddt.data('FROBNICATE x', 'frobnicate x')
    def test_unknown_instruction_names_line(self, line):
        with self.assertRaises(df.BuildError) as err:
            df.parse('FROM busybox\nRUN true\n' + line + '\n')
        self.assertEqual('dockerfile parse error line 3: unknown instruction: FROBNICATE',
                         str(err.exception))

    @ddt.unpack
    @ddt.data(('ONBUILD ONBUILD RUN x', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'),
              ('ONBUILD FROM x', "FROM isn't allowed as an ONBUILD trigger"),
              ('ONBUILD MAINTAINER x', "MAINTAINER isn't allowed as an ONBUILD trigger"),
              ('ONBUILD FROBNICATE x', 'unknown instruction: FROBNICATE'))
    def test_bad_onbuild_triggers(self, line, message):
        with self.assertRaises(df.BuildError) as err:
            df.parse('FROM busybox\n' + line + '\n')
        self.assertIn(message, str(err.exception))
        self.assertEqual(400, err.exception.status)

    @ddt.unpack
    @ddt.data(('FROM a AS Build', 'build'), ('FROM a as b-1.x', 'b-1.x'), ('FROM a', None))
    def test_stage_names(self, line, name):
        self.assertEqual(name, df.parse_from(df.parse(line + '\n')[0])[1])

    @ddt.data('FROM a AS 1st', 'FROM a AS b$c', 'FROM a b c', 'FROM a AS', 'FROM --foo=1 a')
    def test_bad_from_lines(self, line):
        with self.assertRaises(df.BuildError):
            df.parse(line + '\n')

    def test_trigger_is_one_instruction(self):
        self.assertEqual('RUN', df.parse_trigger('run echo hi').cmd)
        with self.assertRaises(df.BuildError):
            df.parse_trigger('RUN a\nRUN b')
        with self.assertRaises(df.BuildError):
            df.parse_trigger('FROM x')

    def test_escape_directive(self):
        instrs = df.parse('# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY a\\b c\n')
        self.assertEqual('echo a   b', instrs[1].rest)
        self.assertEqual(('a\\b', 'c'), instrs[2].value)

    def test_heredocs_are_refused_clearly(self):
        with self.assertRaises(df.BuildError) as err:
            df.parse('# syntax=docker/dockerfile:1\nFROM busybox\nRUN <<EOF\necho\nEOF\n')
        self.assertIn('heredoc', str(err.exception))

    def test_empty_and_no_from(self):
        with self.assertRaises(df.BuildError):
            df.parse('# nothing\n')
        with self.assertRaises(df.BuildError) as err:
            df.parse('RUN true\n')
        self.assertIn('no build stage', str(err.exception))

    def test_flags_are_split_from_the_rest(self):
        ins = one('COPY --chown=1:1 a b /x/\n')
        self.assertEqual(('--chown=1:1',), ins.flags)
        self.assertEqual('a b /x/', ins.rest)
        self.assertEqual(('a', 'b', '/x/'), ins.value)

    @ddt.unpack
    @ddt.data(('ARG A', ('A', None)), ('ARG A=1', ('A', '1')), ('ARG A=', ('A', '')))
    def test_arg(self, line, expected):
        self.assertEqual(expected, df.parse_arg(one(line)))

    @ddt.unpack
    @ddt.data(('RUN echo $A', ['/bin/sh', '-c', 'echo $A']),
              ('RUN ["echo", "$A"]', ['echo', '$A']))
    def test_run_argv_is_not_expanded(self, line, argv):
        self.assertEqual(argv, df.run_argv(one(line), {}, {'A': 'x'}))


@ddt.ddt
class MetadataTest(unittest.TestCase):

    def apply(self, line, config=None, args=None):
        return df.apply_metadata(one(line), config or {}, args or {})

    @ddt.unpack
    @ddt.data(
        ('CMD ["a", "b c"]', 'Cmd', ['a', 'b c'], 'CMD ["a" "b c"]'),
        ('CMD echo hi', 'Cmd', ['/bin/sh', '-c', 'echo hi'],
         'CMD ["/bin/sh" "-c" "echo hi"]'),
        ('ENTRYPOINT ["/app"]', 'Entrypoint', ['/app'], 'ENTRYPOINT ["/app"]'),
        ('USER 1000:1000', 'User', '1000:1000', 'USER 1000:1000'),
        ('STOPSIGNAL SIGINT', 'StopSignal', 'SIGINT', 'STOPSIGNAL SIGINT'),
        ('VOLUME ["/a", "/b"]', 'Volumes', {'/a': {}, '/b': {}}, 'VOLUME [/a /b]'),
        ('EXPOSE 80 53/udp', 'ExposedPorts', {'80/tcp': {}, '53/udp': {}},
         'EXPOSE 53/udp 80'),
        ('LABEL a=b "c d"="e f"', 'Labels', {'a': 'b', 'c d': 'e f'}, 'LABEL a=b c d=e f'),
    )
    def test_values_and_history(self, line, key, value, history):
        cfg, text = self.apply(line)
        self.assertEqual(value, cfg[key])
        self.assertEqual(history, text)

    def test_env_expands_and_replaces(self):
        cfg, text = self.apply('ENV B=$A-x A=new', config={'Env': ['A=old', 'P=1']})
        # Replaced where it stood, as Docker 20.10.
        self.assertEqual(['A=new', 'P=1', 'B=old-x'], cfg['Env'])
        self.assertEqual('ENV B=old-x A=new', text)

    def test_args_expand_but_stay_out_of_the_image(self):
        cfg, _ = self.apply('WORKDIR /srv/$APP', config={'Env': ['X=1']},
                            args={'APP': 'web'})
        self.assertEqual('/srv/web', cfg['WorkingDir'])
        self.assertEqual(['X=1'], cfg['Env'])
        cfg, _ = self.apply('ENV HOME_OF=$APP', args={'APP': 'web'})
        self.assertEqual(['HOME_OF=web'], cfg['Env'])

    def test_env_wins_over_arg(self):
        self.assertEqual('env', df.expand('$A', {'Env': ['A=env']}, {'A': 'arg'}))

    def test_relative_workdir_joins_the_previous(self):
        cfg, text = self.apply('WORKDIR b', config={'WorkingDir': '/a'})
        self.assertEqual('/a/b', cfg['WorkingDir'])
        self.assertEqual('WORKDIR /a/b', text)

    def test_input_config_is_not_changed(self):
        base = {'Env': ['A=1'], 'Labels': {'x': 'y'}}
        self.apply('LABEL z=1', config=base)
        self.assertEqual({'x': 'y'}, base['Labels'])

    def test_bad_signal_is_400(self):
        with self.assertRaises(Exception) as err:
            self.apply('STOPSIGNAL NOPE')
        self.assertEqual(400, err.exception.status)


@ddt.ddt
class OptionsTest(unittest.TestCase):

    @ddt.data('UPPER:1', 'a b', 'x@sha256:' + 'a' * 64)
    def test_bad_tags_are_400(self, tag):
        with self.assertRaises(Exception) as err:
            build_mod.parse_tags([tag])
        self.assertEqual(400, err.exception.status)

    def test_label_option_becomes_a_label_step(self):
        ins = build_mod._label_instruction({'b': 'two words', 'a': '1'})
        self.assertEqual('LABEL a=1 b="two words"', ins.original)
        cfg, _ = df.apply_metadata(ins, {}, {})
        self.assertEqual({'a': '1', 'b': 'two words'}, cfg['Labels'])


Src = collections.namedtuple('Src', 'rel path is_dir')


class CopyIntoTest(unittest.TestCase):
    """COPY's destination rules, symlinks in the image never leading out."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, 'rootfs')
        self.ctx = os.path.join(self.tmp.name, 'ctx')
        self.outside = os.path.join(self.tmp.name, 'outside')
        for d in (self.root, self.ctx, self.outside):
            os.mkdir(d)
        with open(os.path.join(self.ctx, 'f'), 'w') as f:
            f.write('data')
        os.mkdir(os.path.join(self.ctx, 'd'))
        with open(os.path.join(self.ctx, 'd', 'inner'), 'w') as f:
            f.write('in')

    def tearDown(self):
        self.tmp.cleanup()

    def src(self, rel):
        path = os.path.join(self.ctx, rel)
        return Src(rel, path, os.path.isdir(path))

    def read(self, rel):
        with open(os.path.join(self.root, rel)) as f:
            return f.read()

    def test_file_to_new_name_and_into_dir(self):
        executor._copy_into(self.root, [self.src('f')], '/etc/conf', '/')
        self.assertEqual('data', self.read('etc/conf'))
        executor._copy_into(self.root, [self.src('f')], '/opt/', '/')
        self.assertEqual('data', self.read('opt/f'))
        self.assertEqual(0o755, os.stat(os.path.join(self.root, 'opt')).st_mode & 0o777)

    def test_relative_dest_uses_workdir_and_dir_copies_contents(self):
        executor._copy_into(self.root, [self.src('d')], 'sub', '/app')
        self.assertEqual('in', self.read('app/sub/inner'))

    def test_several_sources_need_a_dir_dest(self):
        with self.assertRaises(df.BuildError):
            executor._copy_into(self.root, [self.src('f'), self.src('d')], '/x', '/')

    def test_absolute_symlink_in_image_stays_inside(self):
        os.symlink(self.outside, os.path.join(self.root, 'evil'))
        os.symlink('/../../..' + self.outside, os.path.join(self.root, 'evil2'))
        executor._copy_into(self.root, [self.src('f')], '/evil/', '/')
        executor._copy_into(self.root, [self.src('f')], '/evil2/x', '/')
        self.assertEqual([], os.listdir(self.outside))
        self.assertEqual('data', self.read(self.outside.lstrip('/') + '/f'))

    def test_existing_symlink_file_is_replaced_not_followed(self):
        target = os.path.join(self.outside, 'victim')
        with open(target, 'w') as f:
            f.write('keep')
        os.symlink(target, os.path.join(self.root, 'link'))
        executor._copy_into(self.root, [self.src('f')], '/link', '/')
        with open(target) as f:
            self.assertEqual('keep', f.read())
        self.assertFalse(os.path.islink(os.path.join(self.root, 'link')))
        self.assertEqual('data', self.read('link'))


@ddt.ddt
class NewInstructionsTest(unittest.TestCase):
    """SHELL, HEALTHCHECK and ONBUILD: config and Docker 20.10's history text."""

    def apply(self, line, config=None):
        return df.apply_metadata(one(line), config or {}, {})

    def test_shell_changes_run_cmd_and_entrypoint(self):
        cfg, text = self.apply('SHELL ["/bin/bash", "-c"]')
        self.assertEqual(['/bin/bash', '-c'], cfg['Shell'])
        self.assertEqual('SHELL [/bin/bash -c]', text)
        self.assertEqual(['/bin/bash', '-c', 'echo hi'],
                         df.run_argv(one('RUN echo hi'), cfg, {}))
        cmd, text = df.apply_metadata(one('CMD echo hi'), cfg, {})
        self.assertEqual(['/bin/bash', '-c', 'echo hi'], cmd['Cmd'])
        ep, _ = df.apply_metadata(one('ENTRYPOINT exec app'), cfg, {})
        self.assertEqual(['/bin/bash', '-c', 'exec app'], ep['Entrypoint'])
        # The #(nop) comments are written under the SHELL too.
        self.assertEqual(['/bin/bash', '-c', '#(nop) ', 'X'],
                         build_mod._commented(cfg, 'X')['Cmd'])

    @ddt.data('SHELL /bin/bash -c', 'SHELL []')
    def test_shell_needs_json(self, line):
        with self.assertRaises(df.BuildError):
            self.apply(line)

    @ddt.unpack
    @ddt.data(
        ('HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://x/ || exit 1',
         {'Test': ['CMD-SHELL', 'curl -f http://x/ || exit 1'],
          'Interval': 300000000000, 'Timeout': 3000000000},
         'HEALTHCHECK &{["CMD-SHELL" "curl -f http://x/ || exit 1"] "5m0s" "3s" "0s" \'\\x00\'}'),
        ('HEALTHCHECK --retries=3 --start-period=1m30s CMD ["/bin/check", "-v"]',
         {'Test': ['CMD', '/bin/check', '-v'], 'Retries': 3, 'StartPeriod': 90000000000},
         'HEALTHCHECK &{["CMD" "/bin/check" "-v"] "0s" "0s" "1m30s" \'\\x03\'}'),
        ('HEALTHCHECK NONE', {'Test': ['NONE']},
         'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}'),
    )
    def test_healthcheck(self, line, hc, text):
        cfg, got = self.apply(line)
        self.assertEqual(hc, cfg['Healthcheck'])
        self.assertEqual(text, got)

    @ddt.data('HEALTHCHECK --interval=1us CMD true', 'HEALTHCHECK --retries=-1 CMD true',
              'HEALTHCHECK --bogus=1 CMD true', 'HEALTHCHECK CMD', 'HEALTHCHECK RUN true',
              'HEALTHCHECK --interval=soon CMD true', 'HEALTHCHECK NONE now')
    def test_bad_healthchecks(self, line):
        with self.assertRaises(df.BuildError):
            self.apply(line)

    def test_onbuild_keeps_the_trigger_as_written(self):
        cfg, text = self.apply('ONBUILD run echo "$HOME"', {'OnBuild': ['COPY . /app']})
        self.assertEqual(['COPY . /app', 'run echo "$HOME"'], cfg['OnBuild'])
        self.assertEqual('ONBUILD run echo "$HOME"', text)

    @ddt.unpack
    @ddt.data((0, '0s'), (1500, '1.5µs'), (2000000, '2ms'), (1500000000, '1.5s'),
              (90 * 10**9, '1m30s'), (3600 * 10**9, '1h0m0s'), (3661 * 10**9, '1h1m1s'))
    def test_go_duration(self, ns, text):
        self.assertEqual(text, df.go_duration(ns))
