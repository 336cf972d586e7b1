import ddt
import unittest

from engine import containerconfig as cc
from engine import errors


@ddt.ddt
class ValidateCreateTest(unittest.TestCase):

    def test_minimal(self):
        config, host = cc.validate_create({'Image': 'busybox'})
        self.assertEqual('busybox', config['Image'])
        self.assertEqual({}, host)

    def test_string_cmd_becomes_list(self):
        config, _ = cc.validate_create({'Image': 'b', 'Cmd': 'true'})
        self.assertEqual(['true'], config['Cmd'])

    @ddt.data(
        ({'Image': 'b', 'Cmd': [1]}, 'Config.Cmd must be a list of strings'),
        ({'Image': 'b', 'Tty': 'yes'}, 'Config.Tty must be a boolean'),
        ({'Image': 'b', 'StopTimeout': True}, 'Config.StopTimeout must be an integer'),
        ({'Image': 'b', 'Labels': {'a': 1}}, 'Labels values must be strings'),
        ({'Image': 'b', 'Env': ['=x']}, 'invalid environment variable'),
        ({}, 'Config.Image is required'),
        ({'Image': 'b', 'HostConfig': []}, 'HostConfig must be a JSON object'),
        ({'Image': 'b', 'HostConfig': {'CgroupParent': 'x'}}, 'HostConfig.CgroupParent is not supported'),
        ({'Image': 'b', 'HostConfig': {'RestartPolicy': {'Name': 'sometimes'}}},
         "invalid restart policy 'sometimes'"),
        ({'Image': 'b', 'HostConfig': {'NetworkMode': 'my net'}}, 'network mode'),
        ({'Image': 'b', 'StopSignal': 'SIGFOO'}, 'Invalid signal'),
        ({'Image': 'b', 'HostConfig': {'CapAdd': ['NOT_A_CAP']}}, 'unknown capability'),
        ({'Image': 'b', 'HostConfig': {'LogConfig': {'Type': 'syslog'}}}, 'log driver'),
    )
    @ddt.unpack
    def test_rejects(self, body, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            cc.validate_create(body)
        self.assertIn(message, str(ctx.exception))

    def test_zero_values_of_unsupported_fields_accepted(self):
        # The docker CLI sends every HostConfig field, mostly zero.
        body = {'Image': 'b', 'HostConfig': {
            'Memory': 0, 'Binds': None, 'PortBindings': {}, 'LogConfig': {'Type': '', 'Config': {}},
            'RestartPolicy': {'Name': 'no', 'MaximumRetryCount': 0}, 'ConsoleSize': [24, 80],
            'Ulimits': [], 'OomKillDisable': False}}
        cc.validate_create(body)


@ddt.ddt
class MergeTest(unittest.TestCase):
    image = {'Env': ['PATH=/bin', 'A=1'], 'Cmd': ['sh'], 'Entrypoint': None,
             'WorkingDir': '/w', 'Labels': {'x': 'img'}, 'User': 'nobody'}

    def test_image_defaults(self):
        out, args = cc.merge_image_config({'Image': 'b'}, self.image)
        self.assertEqual(['sh'], args)
        self.assertEqual('/w', out['WorkingDir'])
        self.assertEqual('nobody', out['User'])
        self.assertEqual(['PATH=/bin', 'A=1'], out['Env'])

    def test_env_override_by_key(self):
        out, _ = cc.merge_image_config({'Image': 'b', 'Env': ['A=2', 'B=3']}, self.image)
        self.assertEqual(['PATH=/bin', 'A=2', 'B=3'], out['Env'])

    def test_entrypoint_drops_image_cmd(self):
        out, args = cc.merge_image_config({'Image': 'b', 'Entrypoint': ['echo']}, self.image)
        self.assertEqual(['echo'], args)
        self.assertIsNone(out['Cmd'])

    def test_empty_entrypoint_resets(self):
        img = dict(self.image, Entrypoint=['/init'])
        out, args = cc.merge_image_config({'Image': 'b', 'Entrypoint': [''], 'Cmd': ['ls']}, img)
        self.assertEqual(['ls'], args)

    def test_cmd_appended_to_image_entrypoint(self):
        img = dict(self.image, Entrypoint=['/init'])
        _, args = cc.merge_image_config({'Image': 'b', 'Cmd': ['a']}, img)
        self.assertEqual(['/init', 'a'], args)

    def test_no_command(self):
        with self.assertRaises(errors.InvalidArgument):
            cc.merge_image_config({'Image': 'b'}, {})

    def test_labels_merged(self):
        out, _ = cc.merge_image_config({'Image': 'b', 'Labels': {'y': 'c'}}, self.image)
        self.assertEqual({'x': 'img', 'y': 'c'}, out['Labels'])

    @ddt.data(('SIGTERM', 15), ('TERM', 15), ('9', 9), ('sigkill', 9), ('SIGRTMIN+1', None))
    @ddt.unpack
    def test_parse_signal(self, text, num):
        if num is None:
            with self.assertRaises(errors.InvalidArgument):
                cc.parse_signal(text)
        else:
            self.assertEqual(num, cc.parse_signal(text))
