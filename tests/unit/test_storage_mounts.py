"""Mount specification parsing (engine/mounts.py) and the volume store (engine/volumes.py)."""

import os
import tempfile
import unittest

import ddt

from engine import errors
from engine import events
from engine import mounts
from engine import volumes


def pick(point, *keys):
    return tuple(point[k] for k in keys)


@ddt.ddt
class TestParseBind(unittest.TestCase):

    @ddt.unpack
    @ddt.data(
        ('/h:/c', ('bind', '/h', '/c', True, '', 'rprivate')),
        ('/h:/c:ro', ('bind', '/h', '/c', False, 'ro', 'rprivate')),
        ('/h/:/c/../d/:rw,Z', ('bind', '/h', '/d', True, 'rw,Z', 'rprivate')),
        ('/h:/c:ro,rshared', ('bind', '/h', '/c', False, 'ro,rshared', 'rshared')),
        ('/h:/c:slave,z', ('bind', '/h', '/c', True, 'slave,z', 'slave')),
        ('/h:/c:delegated', ('bind', '/h', '/c', True, 'delegated', 'rprivate')),
        ('vol:/c', ('volume', '', '/c', True, 'z', '')),
        ('vol:/c:ro', ('volume', '', '/c', False, 'ro', '')),
        ('vol:/c:nocopy', ('volume', '', '/c', True, 'nocopy', '')),
        ('/c', ('volume', '', '/c', True, 'z', '')),
    )
    def test_valid(self, raw, expected):
        point = mounts.parse_bind(raw)
        self.assertEqual(pick(point, 'Type', 'Source', 'Destination', 'RW', 'Mode',
                              'Propagation'), expected)

    def test_named_and_anonymous_volumes(self):
        named = mounts.parse_bind('my.vol_1:/data:nocopy')
        self.assertEqual((named['Name'], named['Anonymous'], named['CopyData']),
                         ('my.vol_1', False, False))
        anon = mounts.parse_bind('/data')
        self.assertEqual((anon['Name'], anon['Anonymous'], anon['CopyData']), ('', True, True))

    @ddt.unpack
    @ddt.data(
        ('', "invalid volume specification: ''"),
        (':/c', "invalid volume specification: ':/c'"),
        ('/c:rw', "invalid volume specification: '/c:rw'"),
        ('/a:/b:ro:extra', "invalid volume specification: '/a:/b:ro:extra'"),
        ('/h:/c:rw,ro', 'invalid mode: rw,ro'),
        ('/h:/c:shared,slave', 'invalid mode: shared,slave'),
        ('/h:/c:z,Z', 'invalid mode: z,Z'),
        ('/h:/c:bogus', 'invalid mode: bogus'),
        ('/h:c', "invalid mount path: 'c' mount path must be absolute"),
        ('/h:/', "destination can't be '/'"),
        ('/h:/c/..', "destination can't be '/'"),
        ('/h:/c:nocopy', 'field VolumeOptions must not be specified'),
        ('vol:/c:rshared', 'field BindOptions must not be specified'),
        ('/c:ro', "invalid volume specification: '/c:ro'"),
        ('x!:/c', 'includes invalid characters for a local volume name'),
        ('./rel:/c', 'includes invalid characters for a local volume name'),
        ('v:/c', 'volume name is too short'),
    )
    def test_invalid(self, raw, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.parse_bind(raw)
        self.assertIn(message, str(ctx.exception))

    def test_invalid_spec_wraps_the_mount_config_error(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.parse_bind('/h:rel')
        self.assertEqual(str(ctx.exception),
                         "invalid volume specification: '/h:rel': invalid mount config for "
                         "type \"bind\": invalid mount path: 'rel' mount path must be absolute")

    @ddt.data(5, None, ['/a:/b'], '/a\x00:/b', '/' + 'a' * 9000 + ':/b')
    def test_hostile_input(self, raw):
        self.assertRaises(errors.InvalidArgument, mounts.parse_bind, raw)


@ddt.ddt
class TestParseMount(unittest.TestCase):

    def test_bind(self):
        point = mounts.parse_mount({'Type': 'bind', 'Source': '/h/', 'Target': '/c',
                                    'ReadOnly': True,
                                    'BindOptions': {'Propagation': 'rslave',
                                                    'NonRecursive': True}})
        self.assertEqual(pick(point, 'Type', 'Source', 'Destination', 'RW', 'Propagation',
                              'NonRecursive', 'Mode'),
                         ('bind', '/h', '/c', False, 'rslave', True, ''))
        self.assertEqual(mounts.oci_mount(point, '/h'),
                         {'destination': '/c', 'type': 'bind', 'source': '/h',
                          'options': ['bind', 'rslave', 'ro']})

    def test_volume(self):
        point = mounts.parse_mount({
            'Type': 'volume', 'Source': 'data', 'Target': '/d',
            'VolumeOptions': {'NoCopy': True, 'Labels': {'a': 'b'},
                              'DriverConfig': {'Name': 'local'}}})
        self.assertEqual(pick(point, 'Type', 'Name', 'RW', 'CopyData', 'Anonymous',
                              'VolumeLabels', 'Mode', 'Propagation'),
                         ('volume', 'data', True, False, False, {'a': 'b'}, 'z', ''))

    def test_anonymous_volume(self):
        point = mounts.parse_mount({'Type': 'volume', 'Target': '/d'})
        self.assertTrue(point['Anonymous'])

    @ddt.unpack
    @ddt.data(
        ({'SizeBytes': 64 << 20, 'Mode': 0o1777}, False, 'mode=1777,size=64m'),
        ({'SizeBytes': 1 << 30}, True, 'ro,size=1g'),
        ({'SizeBytes': 1536}, False, 'size=1536'),
        ({'SizeBytes': 2048}, False, 'size=2k'),
        (None, False, ''),
    )
    def test_tmpfs_options(self, opts, readonly, data):
        spec = {'Type': 'tmpfs', 'Target': '/t', 'ReadOnly': readonly}
        if opts is not None:
            spec['TmpfsOptions'] = opts
        point = mounts.parse_mount(spec)
        self.assertEqual(point['Data'], data)
        self.assertEqual(point['RW'], not readonly)

    @ddt.unpack
    @ddt.data(
        ({'Type': 'bind', 'Target': '/c'}, 'field Source must not be empty'),
        ({'Type': 'bind', 'Source': '/h'}, 'field Target must not be empty'),
        ({'Type': 'bind', 'Source': 'h', 'Target': '/c'}, 'must be absolute'),
        ({'Type': 'bind', 'Source': '/h', 'Target': 'c'}, 'must be absolute'),
        ({'Type': 'bind', 'Source': '/h', 'Target': '/'}, "destination can't be '/'"),
        ({'Type': 'bind', 'Source': '/h', 'Target': '/c', 'VolumeOptions': {}},
         'field VolumeOptions must not be specified'),
        ({'Type': 'bind', 'Source': '/h', 'Target': '/c', 'TmpfsOptions': {}},
         'field TmpfsOptions must not be specified'),
        ({'Type': 'bind', 'Source': '/h', 'Target': '/c',
          'BindOptions': {'Propagation': 'up'}}, 'invalid propagation mode: up'),
        ({'Type': 'volume', 'Target': '/c', 'BindOptions': {}},
         'field BindOptions must not be specified'),
        ({'Type': 'volume', 'Target': '/c', 'ReadOnly': True},
         'must not set ReadOnly mode when using anonymous volumes'),
        ({'Type': 'volume', 'Source': 'a b', 'Target': '/c'}, 'invalid characters'),
        ({'Type': 'tmpfs', 'Source': 'x', 'Target': '/c'}, 'field Source must not be specified'),
        ({'Type': 'tmpfs', 'Target': '/c', 'TmpfsOptions': {'SizeBytes': -1}},
         'non-negative'),
        ({'Type': 'tmpfs', 'Target': '/c', 'TmpfsOptions': {'Mode': 0o17777}},
         'not a file mode'),
        ({'Type': 'tmpfs', 'Target': '/c', 'TmpfsOptions': {'SizeBytes': '1m'}},
         'non-negative'),
        ({'Type': 'npipe', 'Target': '/c'}, 'mount type unknown'),
        ({'Type': 'bind', 'Source': 5, 'Target': '/c'}, 'must be a string'),
        ({'Type': 'bind', 'Source': '/h', 'Target': '/c', 'ReadOnly': 'yes'},
         'must be a boolean'),
        ('nope', 'must be JSON objects'),
    )
    def test_invalid(self, spec, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.parse_mount(spec)
        self.assertIn(message, str(ctx.exception))

    def test_errors_name_the_type(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.parse_mount({'Type': 'bind', 'Target': '/c'})
        self.assertEqual(str(ctx.exception),
                         'invalid mount config for type "bind": field Source must not be empty')


@ddt.ddt
class TestTmpfs(unittest.TestCase):

    @ddt.unpack
    @ddt.data(
        ('rw,size=64m,mode=1777', ['noexec', 'nosuid', 'nodev', 'rw', 'size=64m',
                                   'mode=1777']),
        ('exec', ['nosuid', 'nodev', 'exec']),
        ('size=1m,size=2m', ['noexec', 'nosuid', 'nodev', 'size=2m']),
        ('defaults,ro', ['noexec', 'nosuid', 'nodev', 'ro']),
        ('uid=1000,gid=1000,nr_inodes=1k', ['noexec', 'nosuid', 'nodev', 'uid=1000',
                                            'gid=1000', 'nr_inodes=1k']),
    )
    def test_merge(self, options, expected):
        point = mounts.parse_tmpfs('/t', options)
        self.assertEqual(mounts.oci_mount(point, 'tmpfs')['options'], expected)

    @ddt.data('bogus', 'size', 'size=lots', 'mode=999', 'uid=-1', 'size=1m;rm',
              'foo=bar')
    def test_invalid_options(self, options):
        self.assertRaises(errors.InvalidArgument, mounts.parse_tmpfs, '/t', options)

    @ddt.data('t', '/', '', 5)
    def test_invalid_destination(self, dest):
        self.assertRaises(errors.InvalidArgument, mounts.parse_tmpfs, dest, '')

    def test_readonly(self):
        self.assertFalse(mounts.parse_tmpfs('/t', 'rw,ro')['RW'])
        self.assertTrue(mounts.parse_tmpfs('/t', 'ro,rw')['RW'])


@ddt.ddt
class TestHostConfig(unittest.TestCase):

    def test_order_and_config_volumes_yield(self):
        points, refs = mounts.parse_host_config(
            {'Binds': ['/h:/a'], 'Mounts': [{'Type': 'volume', 'Target': '/b'}],
             'Tmpfs': {'/c': ''}, 'VolumesFrom': ['other:ro']},
            {'/a': {}, '/c': {}, '/d/': {}})
        self.assertEqual([p['Destination'] for p in points], ['/a', '/b', '/c', '/d'])
        self.assertEqual(refs, [('other', False)])
        self.assertTrue(points[3]['FromConfig'] and points[3]['Anonymous'])

    @ddt.unpack
    @ddt.data(
        ({'Binds': ['/h:/a', '/i:/a/']}, 'Duplicate mount point: /a'),
        ({'Binds': ['/h:/a'], 'Mounts': [{'Type': 'tmpfs', 'Target': '/a'}]},
         'Duplicate mount point: /a'),
        ({'Binds': ['/h:/a'], 'Tmpfs': {'/a': ''}}, 'Duplicate mount point: /a'),
        ({'Mounts': [{'Type': 'tmpfs', 'Target': '/a'}], 'Tmpfs': {'/a': ''}},
         'Duplicate mount point: /a'),
        ({'VolumesFrom': ['']}, 'cannot be an empty string'),
        ({'VolumesFrom': ['c:rx']}, 'invalid mode: rx'),
        ({'VolumesFrom': ['c:ro:rw']}, 'invalid volumes-from'),
        ({'VolumeDriver': 'nfs'}, 'volume driver "nfs" is not supported'),
        ({'Binds': '/h:/a'}, 'Binds must be a list'),
        ({'Tmpfs': ['/a']}, 'Tmpfs must be a JSON object'),
    )
    def test_invalid(self, host, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.parse_host_config(host)
        self.assertIn(message, str(ctx.exception))

    def test_relative_config_volume(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.parse_host_config({}, {'data': {}})
        self.assertIn('must be absolute', str(ctx.exception))

    def test_inspect_view(self):
        point = mounts.parse_bind('/h:/c:ro')
        self.assertEqual(mounts.api_view(point),
                         {'Type': 'bind', 'Source': '/h', 'Destination': '/c', 'Mode': 'ro',
                          'RW': False, 'Propagation': 'rprivate'})
        self.assertEqual(mounts.container_mounts_view([mounts.parse_tmpfs('/t', '')]), [])


@ddt.ddt
class TestPropagation(unittest.TestCase):
    INFO = [('/', ['shared:1']), ('/srv', []), ('/mnt', ['master:3']),
            ('/srv/x y', ['shared:5'])]

    @ddt.unpack
    @ddt.data(
        ('/etc', 'rshared', None),
        ('/srv/data', 'rshared', 'not a shared mount'),
        ('/srv/data', 'rslave', 'not a shared or slave mount'),
        ('/srv/data', 'rprivate', None),
        ('/mnt/a', 'slave', None),
        ('/mnt/a', 'shared', 'not a shared mount'),
        ('/srv/x y/z', 'shared', None),
    )
    def test_rules(self, source, mode, message):
        if message is None:
            mounts.check_propagation(source, mode, self.INFO)
        else:
            with self.assertRaises(errors.InvalidArgument) as ctx:
                mounts.check_propagation(source, mode, self.INFO)
            self.assertIn(message, str(ctx.exception))

    def test_rootfs_propagation(self):
        shared = mounts.parse_bind('/h:/a:rshared')
        slave = mounts.parse_bind('/h:/b:slave')
        private = mounts.parse_bind('/h:/c')
        self.assertEqual(mounts.rootfs_propagation([private, slave]), 'slave')
        self.assertEqual(mounts.rootfs_propagation([slave, shared]), 'shared')
        self.assertIsNone(mounts.rootfs_propagation([private]))


class TestBindSource(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.root = os.path.join(self.tmp, 'engine')
        os.makedirs(os.path.join(self.root, 'volumes'))
        self.forbidden = [('root', self.root)]

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp)

    def test_missing(self):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            mounts.check_bind_source(os.path.join(self.tmp, 'nope'), self.forbidden)
        self.assertIn('bind source path does not exist', str(ctx.exception))

    def test_engine_root_inside_and_parents(self):
        link = os.path.join(self.tmp, 'link')
        os.symlink(os.path.join(self.root, 'volumes'), link)
        for source in (self.root, os.path.join(self.root, 'volumes'), self.tmp, '/', link):
            with self.assertRaises(errors.InvalidArgument) as ctx:
                mounts.check_bind_source(source, self.forbidden)
            self.assertIn("engine's root", str(ctx.exception))

    def test_sibling_is_fine(self):
        other = os.path.join(self.tmp, 'engine-other')
        os.mkdir(other)
        self.assertEqual(mounts.check_bind_source(other, self.forbidden), other)


class TestVolumeStore(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.bus = events.EventBus()
        self.svc = volumes.VolumeService(self.tmp, self.bus)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp)

    def actions(self):
        return [(e['Action'], e['Actor']['ID']) for _, e in self.bus._ring]

    def test_create_get_remove(self):
        vol, made = self.svc.create('data', labels={'a': 'b'})
        self.assertTrue(made)
        self.assertEqual(self.svc.create('data')[1], False)
        view = self.svc.get('data').view()
        self.assertEqual(view['Labels'], {'a': 'b'})
        self.assertEqual(view['Mountpoint'], os.path.join(self.tmp, 'volumes', 'data', '_data'))
        self.svc.remove('data')
        self.assertRaises(errors.NotFound, self.svc.get, 'data')
        # As Docker, every create call logs "create", also for an existing volume.
        self.assertEqual(self.actions(), [('create', 'data'), ('create', 'data'),
                                          ('destroy', 'data')])
        self.assertEqual(os.listdir(os.path.join(self.tmp, 'volumes')), [])

    def test_anonymous(self):
        vol, _ = self.svc.create()
        self.assertEqual(len(vol.name), 64)
        self.assertEqual(vol.labels, {volumes.ANONYMOUS_LABEL: ''})

    def test_in_use_and_holds(self):
        self.svc.create('data')
        self.svc.users = lambda: {'data': {'c1'}}
        with self.assertRaises(errors.Conflict) as ctx:
            self.svc.remove('data', force=True)
        self.assertEqual(str(ctx.exception), 'remove data: volume is in use - [c1]')
        self.svc.users = lambda: {}
        self.svc.create('data', hold_for='c2')
        self.assertRaises(errors.Conflict, self.svc.remove, 'data')
        self.svc.release(['data'], 'c2')
        self.svc.remove('data')

    def test_prune_rules(self):
        self.svc.create('named', labels={'k': 'v'})
        anon, _ = self.svc.create()
        used, _ = self.svc.create()
        self.svc.users = lambda: {used.name: {'c'}}
        result = self.svc.prune({}, all_volumes=False)
        self.assertEqual(result['VolumesDeleted'], [anon.name])
        self.assertEqual(self.svc.prune({'label!': ['k']})['VolumesDeleted'], None)
        self.assertEqual(self.svc.prune({'label': ['k=v']})['VolumesDeleted'], ['named'])
        self.assertRaises(errors.InvalidArgument, self.svc.prune, {'until': ['1h']})

    def test_df_sizes(self):
        vol, _ = self.svc.create('data')
        with open(os.path.join(vol.data_path, 'f'), 'wb') as f:
            f.write(b'x' * 5000)
        os.link(os.path.join(vol.data_path, 'f'), os.path.join(vol.data_path, 'g'))
        self.svc.users = lambda: {'data': {'a', 'b'}}
        (usage,) = self.svc.df()
        self.assertEqual(usage['UsageData'], {'Size': 5000, 'RefCount': 2})

    def test_crash_leftovers_and_check(self):
        os.makedirs(os.path.join(self.tmp, 'volumes', '.tmp-x', '_data'))
        os.makedirs(os.path.join(self.tmp, 'volumes', '.trash-y', '_data'))
        os.makedirs(os.path.join(self.tmp, 'volumes', 'broken'))
        self.assertEqual(len(self.svc.leftover_notes()), 2)
        self.assertEqual(self.svc.check({'c' * 64: [{'Type': 'volume', 'Name': 'gone'}]}),
                         ['volume directory broken has no valid volume.json',
                          'container cccccccccccc uses missing volume gone'])
        self.svc.cleanup()
        self.assertEqual(sorted(os.listdir(os.path.join(self.tmp, 'volumes'))), ['broken'])
        self.assertEqual([v.name for v in self.svc.list()], [])

    def test_driver_options(self):
        self.assertRaises(errors.InvalidArgument, self.svc.create, 'data',
                          driver_opts={'type': 'tmpfs'})
        self.assertRaises(errors.NotFound, self.svc.create, 'data', driver='nfs')
        vol, _ = self.svc.create('data', driver_opts={'type': 'tmpfs', 'device': 'tmpfs',
                                                      'o': 'size=1m'})
        self.assertEqual(vol.view()['Options'],
                         {'type': 'tmpfs', 'device': 'tmpfs', 'o': 'size=1m'})


@ddt.ddt
class TestLocalOptions(unittest.TestCase):

    @ddt.unpack
    @ddt.data(
        ({'type': 'tmpfs', 'device': 'tmpfs', 'o': 'size=10m,uid=1000,ro'},
         ('tmpfs', 'tmpfs', 1, 'size=10m,uid=1000')),
        ({'type': 'tmpfs', 'device': 'x'}, ('tmpfs', 'x', 0, '')),
        ({'type': 'none', 'device': '/', 'o': 'bind'}, ('none', '/', 4096, '')),
        ({'type': 'none', 'device': '/', 'o': 'rbind,ro,nosuid'},
         ('none', '/', 4096 | 16384 | 1 | 2, '')),
    )
    def test_valid(self, opts, expected):
        self.assertEqual(volumes.parse_local_options(opts), expected)

    @ddt.unpack
    @ddt.data(
        ({'type': 'tmpfs'}, 'need "device"'),
        ({'device': 'tmpfs'}, 'need "type"'),
        ({'type': 'tmpfs', 'device': 't', 'o': 'bogus'}, 'Invalid tmpfs option'),
        ({'type': 'tmpfs', 'device': 't', 'x': '1'}, 'invalid option: "x"'),
        ({'type': 'tmpfs', 'device': 't', 'size': '1g'}, 'xfs quota'),
        ({'type': 'nfs', 'device': ':/export', 'o': 'addr=1.2.3.4'}, 'not supported'),
        ({'type': 'none', 'device': '/tmp'}, 'needs o=bind'),
        ({'type': 'none', 'device': 'rel', 'o': 'bind'}, 'absolute path'),
        ({'type': 'none', 'device': '/tmp', 'o': 'bind,size=1'}, 'invalid bind volume'),
        ({'type': 'tmpfs', 'device': 't\x00'}, 'not a valid string'),
    )
    def test_invalid(self, opts, message):
        with self.assertRaises(errors.InvalidArgument) as ctx:
            volumes.parse_local_options(opts)
        self.assertIn(message, str(ctx.exception))


class TestPopulate(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.rootfs = os.path.join(self.tmp, 'rootfs')
        self.dest = os.path.join(self.tmp, 'vol')
        os.makedirs(os.path.join(self.rootfs, 'data', 'sub'))
        os.mkdir(self.dest)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp)

    def test_copies_tree_links_and_modes(self):
        data = os.path.join(self.rootfs, 'data')
        with open(os.path.join(data, 'sub', 'f'), 'w') as f:
            f.write('x')
        os.chmod(os.path.join(data, 'sub', 'f'), 0o604)
        os.chown(os.path.join(data, 'sub', 'f'), 7, 8)
        os.link(os.path.join(data, 'sub', 'f'), os.path.join(data, 'hard'))
        os.symlink('/etc/shadow', os.path.join(data, 'abs'))
        os.mkfifo(os.path.join(data, 'fifo'))
        os.chmod(data, 0o750)
        self.assertTrue(volumes.populate(self.rootfs, '/data', self.dest))
        st = os.stat(os.path.join(self.dest, 'sub', 'f'))
        self.assertEqual((st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_nlink),
                         (0o604, 7, 8, 2))
        self.assertEqual(os.readlink(os.path.join(self.dest, 'abs')), '/etc/shadow')
        self.assertEqual(os.stat(self.dest).st_mode & 0o7777, 0o750)
        import stat
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(self.dest, 'fifo')).st_mode))

    def test_symlinked_destination_stays_in_the_rootfs(self):
        outside = os.path.join(self.tmp, 'outside')
        os.mkdir(outside)
        with open(os.path.join(outside, 'secret'), 'w') as f:
            f.write('s')
        # /link -> ../../outside would leave the rootfs; resolved as a chroot does,
        # it names <rootfs>/outside, which does not exist.
        os.symlink('../../outside', os.path.join(self.rootfs, 'link'))
        self.assertFalse(volumes.populate(self.rootfs, '/link', self.dest))
        os.symlink(outside, os.path.join(self.rootfs, 'abs'))
        self.assertFalse(volumes.populate(self.rootfs, '/abs', self.dest))
        self.assertEqual(os.listdir(self.dest), [])
        # A link that stays inside is followed.
        os.symlink('data', os.path.join(self.rootfs, 'alias'))
        self.assertTrue(volumes.populate(self.rootfs, '/alias', self.dest))
        self.assertEqual(os.listdir(self.dest), ['sub'])

    def test_non_empty_volume_is_left_alone(self):
        with open(os.path.join(self.dest, 'mine'), 'w') as f:
            f.write('m')
        self.assertFalse(volumes.populate(self.rootfs, '/data', self.dest))
        self.assertEqual(os.listdir(self.dest), ['mine'])

    def test_a_failed_copy_leaves_the_volume_empty(self):
        from unittest import mock
        with open(os.path.join(self.rootfs, 'data', 'sub', 'f'), 'w') as f:
            f.write('x')
        real_copy = volumes._copy_data

        def fail_after_first(fd_in, fd_out, size):
            real_copy(fd_in, fd_out, size)
            raise OSError(28, 'No space left on device')
        with mock.patch.object(volumes, '_copy_data', fail_after_first):
            self.assertRaises(OSError, volumes.populate, self.rootfs, '/data', self.dest)
        self.assertEqual(os.listdir(self.dest), [])
        self.assertTrue(volumes.populate(self.rootfs, '/data', self.dest))
        self.assertEqual(os.listdir(os.path.join(self.dest, 'sub')), ['f'])


class TestCreateRollback(unittest.TestCase):
    """A create that fails after its volumes were made takes them back."""

    def setUp(self):
        from unittest import mock
        from engine import containers
        self.tmp = tempfile.mkdtemp()
        bus = events.EventBus()
        self.vols = volumes.VolumeService(self.tmp, bus)
        image = mock.Mock(id='sha256:' + 'a' * 64, top_chain_id='chain')
        images = mock.Mock()
        images.resolve.return_value = image
        images.unpack.side_effect = lambda img: img
        images.image_config_for_container.return_value = {'Cmd': ['sh'],
                                                          'Volumes': {'/img': {}}}
        self.snap = mock.Mock()
        self.snap.name = 'fake'
        self.svc = containers.ContainerService(self.tmp, images, self.snap, None, bus,
                                               mock.Mock())
        self.svc.mounts = volumes.ContainerMounts(self.vols, bus, self.svc.get,
                                                  [('root', self.tmp)])
        self.vols.users = lambda: {n: {c.id for c in self.svc.list()
                                       for p in c.record['MountPoints'] if p['Name'] == n}
                                   for n in [v.name for v in self.vols.list()]}

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp)

    def test_failed_prepare_removes_the_volumes_it_made(self):
        self.vols.create('existing')
        self.snap.prepare.side_effect = errors.EngineError('disk on fire')
        body = {'Image': 'img', 'Volumes': {'/anon': {}},
                'HostConfig': {'Binds': ['existing:/e', 'fresh:/f']}}
        self.assertRaises(errors.EngineError, self.svc.create, body)
        self.assertEqual([v.name for v in self.vols.list()], ['existing'])
        self.assertEqual(self.vols._holds, {})
        self.snap.prepare.side_effect = None
        c, _ = self.svc.create(body)
        by_dest = {p['Destination']: p for p in c.record['MountPoints']}
        self.assertEqual(sorted(by_dest), ['/anon', '/e', '/f', '/img'])
        self.assertEqual(self.vols._holds, {})
        self.assertEqual(sorted(self.vols.in_use('fresh')), [c.id])
        self.assertRaises(errors.Conflict, self.vols.remove, 'existing')
