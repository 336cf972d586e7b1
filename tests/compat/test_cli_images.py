"""Images through the real docker CLI: list, inspect, history, tag, rmi,
import, load, save (into a fresh engine), export and commit."""

import json
import re
import subprocess
import sys
import tarfile
import time

import pytest

from tests import daemons
from tests.compat.conftest import CLIS, inspect

pytestmark = pytest.mark.compat

IMAGE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def ok(res):
    assert res.returncode == 0, 'rc=%s\nstdout: %s\nstderr: %s' % (
        res.returncode, res.stdout, res.stderr)
    return res


def mkimage(path, tag, *extra):
    """tools/mkimage.py: a busybox archive tagged ``tag``; returns its ID."""
    res = subprocess.run([sys.executable, daemons.MKIMAGE, '-o', path, '-t',
                          tag, '--print-id'] + list(extra),
                         check=True, capture_output=True, text=True)
    return res.stdout.strip()


@pytest.fixture
def sfx(names):
    return names.suffix


@pytest.fixture
def imported(docker_cli, busybox_rootfs, images_to_remove, sfx):
    """A fresh image of our own (imported from the busybox rootfs)."""
    ref = 'compat-imp-%s:base' % sfx
    images_to_remove.append(ref)
    ok(docker_cli(['import', '--change', 'CMD ["sh"]', busybox_rootfs, ref]))
    return ref


# --------------------------------------------------------------------------
# images, inspect, history


@pytest.mark.parametrize('cli', CLIS)
def test_images_lists_busybox(docker_cli, engine, cli):
    image_id = inspect(engine, 'busybox', 'images')['Id']
    res = ok(docker_cli(['images', '--format',
                         '{{.Repository}}|{{.Tag}}|{{.ID}}|{{.Size}}'],
                        cli=cli))
    rows = [line.split('|') for line in res.stdout.splitlines()]
    row = [r for r in rows if r[:2] == ['busybox', 'latest']]
    assert len(row) == 1, res.stdout
    assert image_id.split(':')[1].startswith(row[0][2])
    assert len(row[0][2]) == 12
    assert re.match(r'^[\d.]+[kMG]?B$', row[0][3]), row[0][3]
    table = ok(docker_cli(['images'], cli=cli)).stdout.splitlines()
    assert table[0].split()[:4] == ['REPOSITORY', 'TAG', 'IMAGE', 'ID']
    assert any(line.split()[:3] == ['busybox', 'latest', row[0][2]]
               for line in table[1:])
    # -q --no-trunc prints full IDs; a reference filters the list.
    full = ok(docker_cli(['images', '-q', '--no-trunc', 'busybox'], cli=cli))
    assert full.stdout.split() == [image_id]


def test_image_inspect(docker_cli, engine):
    data = json.loads(ok(docker_cli(['image', 'inspect', 'busybox'])).stdout)
    assert len(data) == 1
    img = data[0]
    assert re.match(r'^sha256:[0-9a-f]{64}$', img['Id'])
    assert 'busybox:latest' in img['RepoTags']
    assert img['Config']['Cmd'] == ['sh']
    assert IMAGE_PATH in img['Config']['Env']
    assert img['Os'] == 'linux'
    assert img['Architecture']
    assert img['RootFS']['Type'] == 'layers'
    assert len(img['RootFS']['Layers']) == 1
    assert img['Size'] > 500000  # the static busybox binary
    assert img['Created'].startswith('2024-01-01T00:00:00')
    # Short IDs and the full ID resolve to the same image.
    short = img['Id'].split(':')[1][:12]
    assert inspect(engine, short, 'images')['Id'] == img['Id']
    assert inspect(engine, img['Id'], 'images')['Id'] == img['Id']
    res = docker_cli(['image', 'inspect', 'compat-no-such-image:1'])
    assert res.returncode == 1 and 'No such image' in res.stderr


def test_history(docker_cli, engine):
    res = ok(docker_cli(['history', '--no-trunc', '--format',
                         '{{.ID}}|{{.CreatedBy}}|{{.Size}}', 'busybox']))
    rows = [line.split('|') for line in res.stdout.splitlines()]
    assert len(rows) == 2, res.stdout
    image_id = inspect(engine, 'busybox', 'images')['Id']
    # Newest first: the CMD entry (no layer), then the layer's ADD.
    assert rows[0][0] == image_id
    assert 'CMD ["sh"]' in rows[0][1]
    assert rows[0][2] == '0B'
    assert 'ADD file:' in rows[1][1]
    assert rows[1][0] == '<missing>'
    assert rows[1][2] != '0B'
    table = ok(docker_cli(['history', 'busybox'])).stdout.splitlines()
    assert 'CREATED BY' in table[0]
    assert len(table) == 3


# --------------------------------------------------------------------------
# tag and rmi


def test_tag_and_rmi_untags(docker_cli, engine, images_to_remove, sfx):
    ref = 'compat-tag-%s:v1' % sfx
    images_to_remove.append(ref)
    busybox_id = inspect(engine, 'busybox', 'images')['Id']
    res = ok(docker_cli(['tag', 'busybox', ref]))
    assert res.stdout == ''
    assert inspect(engine, ref, 'images')['Id'] == busybox_id
    assert ref in inspect(engine, 'busybox', 'images')['RepoTags']
    listed = ok(docker_cli(['images', '--format', '{{.Repository}}:{{.Tag}}',
                            'compat-tag-%s' % sfx])).stdout.split()
    assert listed == [ref]
    # A tag given without one means :latest.
    ok(docker_cli(['tag', ref, 'compat-tag-%s' % sfx]))
    images_to_remove.append('compat-tag-%s:latest' % sfx)
    assert inspect(engine, 'compat-tag-%s:latest' % sfx, 'images')['Id'] == \
        busybox_id
    res = ok(docker_cli(['rmi', ref]))
    assert res.stdout.strip() == 'Untagged: ' + ref
    assert inspect(engine, ref, 'images') is None
    assert inspect(engine, 'busybox', 'images')['Id'] == busybox_id
    ok(docker_cli(['rmi', 'compat-tag-%s' % sfx]))
    res = docker_cli(['tag', 'compat-no-such-image:1', 'x-%s:1' % sfx])
    assert res.returncode == 1 and 'No such image' in res.stderr


def test_rmi_deletes_last_reference(docker_cli, engine, imported):
    image_id = inspect(engine, imported, 'images')['Id']
    res = ok(docker_cli(['rmi', imported]))
    assert 'Untagged: ' + imported in res.stdout
    assert 'Deleted: ' + image_id in res.stdout
    assert inspect(engine, image_id, 'images') is None
    res = docker_cli(['rmi', imported])
    assert res.returncode == 1 and 'No such image' in res.stderr


def test_rmi_conflict_when_in_use_and_force(docker_cli, engine, imported,
                                            names):
    name = names('rmiuse')
    image_id = inspect(engine, imported, 'images')['Id']
    ok(docker_cli(['create', '--name', name, imported, 'true']))
    res = docker_cli(['rmi', image_id])
    assert res.returncode == 1
    assert 'conflict' in res.stderr.lower(), res.stderr
    assert inspect(engine, imported, 'images')['Id'] == image_id
    res = ok(docker_cli(['rmi', '-f', imported]))
    assert 'Untagged: ' + imported in res.stdout
    assert inspect(engine, imported, 'images') is None
    # The container is still there and still knows its image.
    assert inspect(engine, name)['Image'] == image_id


# --------------------------------------------------------------------------
# import, load, save


def test_import_from_file_and_stdin(docker_cli, engine, busybox_rootfs,
                                    images_to_remove, sfx, names):
    ref1, ref2 = 'compat-imp-%s:1' % sfx, 'compat-imp-%s:2' % sfx
    images_to_remove.extend([ref1, ref2])
    res = ok(docker_cli(['import', '--change', 'CMD ["echo","x"]',
                         '--message', 'from a file', busybox_rootfs, ref1]))
    new_id = res.stdout.strip()
    assert re.match(r'^sha256:[0-9a-f]{64}$', new_id), res.stdout
    img = inspect(engine, ref1, 'images')
    assert img['Id'] == new_id
    assert img['Config']['Cmd'] == ['echo', 'x']
    assert len(img['RootFS']['Layers']) == 1
    assert img['Comment'] == 'from a file'
    assert ok(docker_cli(['run', '--rm', '--name', names('imp1'), ref1])
              ).stdout == 'x\n'
    # From stdin, as `cat rootfs.tar | docker import - NAME`.
    with open(busybox_rootfs, 'rb') as f:
        res = docker_cli(['import', '--change', 'CMD ["echo","from-stdin"]',
                          '-', ref2], input=f.read())
    assert res.returncode == 0, res.stderr
    img2 = inspect(engine, ref2, 'images')
    assert img2['Config']['Cmd'] == ['echo', 'from-stdin']
    # Same rootfs, same layer.
    assert img2['RootFS']['Layers'] == img['RootFS']['Layers']
    assert ok(docker_cli(['run', '--rm', '--name', names('imp2'), ref2])
              ).stdout == 'from-stdin\n'
    res = ok(docker_cli(['run', '--rm', '--name', names('imp3'), ref2,
                         'sh', '-c',
                         'ls /bin/busybox && head -1 /etc/passwd']))
    assert res.stdout == '/bin/busybox\nroot:x:0:0:root:/root:/bin/sh\n'


def test_import_rejects_garbage(docker_cli, engine, tmp_path, sfx):
    junk = tmp_path / 'junk.tar'
    junk.write_bytes(b'this is not a tar archive\n' * 100)
    ref = 'compat-junk-%s:1' % sfx
    res = docker_cli(['import', str(junk), ref])
    assert res.returncode == 1
    assert res.stderr.strip()
    assert inspect(engine, ref, 'images') is None


@pytest.mark.parametrize('gz', [False, True], ids=['plain', 'gzip'])
def test_load(docker_cli, engine, tmp_path, images_to_remove, sfx, gz):
    ref = 'compat-load-%s:%s' % (sfx, 'gz' if gz else 'plain')
    images_to_remove.append(ref)
    path = str(tmp_path / ('img.tar.gz' if gz else 'img.tar'))
    expected = mkimage(path, ref, *(['--gzip'] if gz else []))
    if gz:
        with open(path, 'rb') as f:
            assert f.read(2) == b'\x1f\x8b'
    res = ok(docker_cli(['load', '-i', path]))
    assert res.stdout.strip() == 'Loaded image: ' + ref
    assert inspect(engine, ref, 'images')['Id'] == expected
    assert ok(docker_cli(['run', '--rm', ref, 'echo', 'loaded'])
              ).stdout == 'loaded\n'


def test_load_from_stdin_and_gzip_layers(docker_cli, engine, tmp_path,
                                         images_to_remove, sfx):
    ref = 'compat-load-%s:gzlayers' % sfx
    images_to_remove.append(ref)
    path = str(tmp_path / 'img.tar')
    expected = mkimage(path, ref, '--gzip-layers')
    with open(path, 'rb') as f:
        res = docker_cli(['load'], input=f.read())
    assert res.returncode == 0, res.stderr
    assert b'Loaded image: ' + ref.encode() in res.stdout
    assert inspect(engine, ref, 'images')['Id'] == expected


def test_load_rejects_garbage(docker_cli, engine, tmp_path):
    before = ok(docker_cli(['images', '-q', '--no-trunc'])).stdout
    junk = tmp_path / 'junk.tar'
    junk.write_bytes(b'\0' * 10 + b'garbage' * 100)
    res = docker_cli(['load', '-i', str(junk)])
    assert res.returncode == 1 and res.stderr.strip()
    assert ok(docker_cli(['images', '-q', '--no-trunc'])).stdout == before


def _archive_manifest(path):
    with tarfile.open(path) as tar:
        return json.load(tar.extractfile('manifest.json'))


@pytest.mark.engine_only
@pytest.mark.parametrize('cli', CLIS)
def test_save_then_load_into_a_fresh_engine(docker_cli, engine, engine_factory,
                                            tmp_path, docker_config_dir, cli):
    image_id = inspect(engine, 'busybox', 'images')['Id']
    path = str(tmp_path / 'saved.tar')
    res = ok(docker_cli(['save', '-o', path, 'busybox'], cli=cli))
    assert res.stdout == ''
    manifest = _archive_manifest(path)
    assert manifest[0]['RepoTags'] == ['busybox:latest']
    assert len(manifest[0]['Layers']) == 1
    # Also to stdout.
    res = docker_cli(['save', 'busybox'], input=b'', cli=cli)
    assert res.returncode == 0 and res.stdout[257:262] == b'ustar'

    fresh = engine_factory(load_busybox=False)
    assert daemons.api_json(fresh.sock, 'GET', '/images/json')[1] == []
    res = ok(docker_cli(['load', '-i', path], cli=cli, host=fresh.url))
    assert res.stdout.strip() == 'Loaded image: busybox:latest'
    assert inspect(fresh, 'busybox', 'images')['Id'] == image_id
    res = ok(docker_cli(['run', '--rm', 'busybox', 'echo', 'fresh'], cli=cli,
                        host=fresh.url))
    assert res.stdout == 'fresh\n'


@pytest.mark.engine_only
def test_save_of_committed_image_round_trips(docker_cli, engine,
                                             engine_factory, names, tmp_path,
                                             images_to_remove, sfx):
    name = names('save')
    ref = 'compat-saved-%s:1' % sfx
    images_to_remove.append(ref)
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                   'echo saved > /saved.txt']))
    ok(docker_cli(['commit', name, ref]))
    src = inspect(engine, ref, 'images')
    path = str(tmp_path / 'two-layers.tar')
    ok(docker_cli(['save', '-o', path, ref]))
    assert len(_archive_manifest(path)[0]['Layers']) == 2
    fresh = engine_factory(load_busybox=False)
    ok(docker_cli(['load', '-i', path], host=fresh.url))
    got = inspect(fresh, ref, 'images')
    assert got['Id'] == src['Id']
    assert got['RootFS']['Layers'] == src['RootFS']['Layers']
    res = ok(docker_cli(['run', '--rm', ref, 'cat', '/saved.txt'],
                        host=fresh.url))
    assert res.stdout == 'saved\n'


@pytest.mark.slow
def test_save_is_loadable_by_docker(docker_cli, dockerd, tmp_path,
                                    engine, images_to_remove, names, sfx):
    """Our `docker save` output loads into Docker 20.10 with the same ID."""
    name = names('todocker')
    ref = 'compat-todocker-%s:1' % sfx
    images_to_remove.append(ref)
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                   'echo hi > /hi.txt; rm /etc/shadow']))
    ok(docker_cli(['commit', name, ref]))
    image_id = inspect(engine, ref, 'images')['Id']
    path = str(tmp_path / 'for-docker.tar')
    ok(docker_cli(['save', '-o', path, ref]))
    try:
        ok(docker_cli(['load', '-i', path], host=dockerd.url))
        assert inspect(dockerd, ref, 'images')['Id'] == image_id
        res = ok(docker_cli(['run', '--rm', ref, 'sh', '-c',
                             'cat /hi.txt; ls /etc/shadow || echo gone'],
                            host=dockerd.url))
        assert res.stdout.splitlines()[0] == 'hi'
        assert res.stdout.splitlines()[-1] == 'gone'
    finally:
        docker_cli(['rmi', '-f', ref], host=dockerd.url)


# --------------------------------------------------------------------------
# export


def test_export(docker_cli, names, tmp_path):
    name = names('export')
    ok(docker_cli(['run', '--name', name, 'busybox', 'sh', '-c',
                   'echo exported > /exported.txt; rm /etc/shadow']))
    path = str(tmp_path / 'export.tar')
    res = ok(docker_cli(['export', '-o', path, name]))
    assert res.stdout == ''
    with tarfile.open(path) as tar:
        members = {m.name.lstrip('./').rstrip('/'): m for m in tar}
        assert 'bin/busybox' in members
        # The busybox binary is in there once (its applets may hardlink it).
        assert max(m.size for m in members.values() if m.isfile()) > 500000
        assert tar.extractfile(members['exported.txt']).read() == \
            b'exported\n'
        assert 'etc/passwd' in members
        # A flattened filesystem: no whiteouts, the deleted file is absent.
        assert 'etc/shadow' not in members
        assert not any('.wh.' in n for n in members)
    # To stdout as well.
    res = docker_cli(['export', name], input=b'')
    assert res.returncode == 0
    with open(str(tmp_path / 'stdout.tar'), 'wb') as f:
        f.write(res.stdout)
    with tarfile.open(str(tmp_path / 'stdout.tar')) as tar:
        assert any(n.lstrip('./') == 'exported.txt' for n in tar.getnames())


# --------------------------------------------------------------------------
# commit


def _events(docker_cli, since, name):
    res = ok(docker_cli(['events', '--since', since, '--until',
                         '%.3f' % time.time(), '--filter',
                         'container=' + name, '--format', '{{.Action}}']))
    return res.stdout.split()


def test_commit_with_changes(docker_cli, engine, names, images_to_remove, sfx):
    name = names('commit')
    ref = 'compat-commit-%s:1' % sfx
    images_to_remove.append(ref)
    ok(docker_cli(['run', '-d', '--name', name, 'busybox', 'sh', '-c',
                   'echo data > /newfile; rm /etc/shadow; echo ready; '
                   'sleep 300']))
    deadline = time.time() + 20
    while 'ready' not in ok(docker_cli(['logs', name])).stdout:
        assert time.time() < deadline, 'container never got ready'
        time.sleep(0.05)
    since = '%.3f' % (time.time() - 1)
    res = ok(docker_cli([
        'commit',
        '--change', 'CMD ["cat", "/newfile"]',
        '--change', 'ENV FOO=bar',
        '--change', 'WORKDIR /tmp',
        '--change', 'LABEL k=v',
        '--change', 'USER nobody',
        '--change', 'EXPOSE 8080',
        '-a', 'Compat Author <compat@example.org>',
        '-m', 'compat message',
        name, ref]))
    new_id = res.stdout.strip()
    assert re.match(r'^sha256:[0-9a-f]{64}$', new_id), res.stdout
    # Paused for the commit by default, running again afterwards.
    st = inspect(engine, name)['State']
    assert st['Running'] is True and st['Paused'] is False
    actions = _events(docker_cli, since, name)
    assert 'pause' in actions and 'unpause' in actions, actions
    assert actions.index('pause') < actions.index('unpause')

    img = inspect(engine, ref, 'images')
    parent = inspect(engine, 'busybox', 'images')
    assert img['Id'] == new_id
    cfg = img['Config']
    assert cfg['Cmd'] == ['cat', '/newfile']
    assert 'FOO=bar' in cfg['Env'] and IMAGE_PATH in cfg['Env']
    assert cfg['WorkingDir'] == '/tmp'
    assert cfg['Labels'] == {'k': 'v'}
    assert cfg['User'] == 'nobody'
    assert cfg['ExposedPorts'] == {'8080/tcp': {}}
    assert img['Author'] == 'Compat Author <compat@example.org>'
    assert img['Comment'] == 'compat message'
    layers = img['RootFS']['Layers']
    assert layers[:-1] == parent['RootFS']['Layers']
    assert len(layers) == len(parent['RootFS']['Layers']) + 1

    assert ok(docker_cli(['run', '--rm', ref])).stdout == 'data\n'
    res = ok(docker_cli(['run', '--rm', ref, 'sh', '-c',
                         'id -u; pwd; echo $FOO; '
                         'test -e /etc/shadow && echo present || echo absent']))
    assert res.stdout.split() == ['65534', '/tmp', 'bar', 'absent']

    hist = ok(docker_cli(['history', '--format', '{{.Comment}}', ref])
              ).stdout.splitlines()
    parent_rows = ok(docker_cli(['history', '-q', 'busybox'])
                     ).stdout.splitlines()
    assert len(hist) == len(parent_rows) + 1
    assert hist[0] == 'compat message'


def test_entrypoint_and_cmd_merge_with_image_defaults(docker_cli, names,
                                                      images_to_remove, sfx):
    name = names('ep')
    ref = 'compat-ep-%s:1' % sfx
    images_to_remove.append(ref)
    ok(docker_cli(['create', '--name', name, 'busybox', 'true']))
    ok(docker_cli(['commit',
                   '--change', 'ENTRYPOINT ["echo", "ep"]',
                   '--change', 'CMD ["default"]',
                   '--change', 'ENV FOO=image BAR=kept',
                   name, ref]))
    # The image's CMD is the entrypoint's default argument ...
    assert ok(docker_cli(['run', '--rm', ref])).stdout == 'ep default\n'
    # ... replaced by the run's arguments.
    assert ok(docker_cli(['run', '--rm', ref, 'other', 'args'])
              ).stdout == 'ep other args\n'
    # A new entrypoint drops the image's CMD.
    assert ok(docker_cli(['run', '--rm', '--entrypoint', 'echo', ref])
              ).stdout == '\n'
    # An -e replaces the image's value of that variable only.
    res = ok(docker_cli(['run', '--rm', '-e', 'FOO=run', '--entrypoint',
                         'sh', ref, '-c', 'echo $FOO $BAR']))
    assert res.stdout == 'run kept\n'


def test_rmi_by_id_with_several_tags(docker_cli, engine, imported,
                                     images_to_remove, sfx):
    other = 'compat-other-%s:2' % sfx
    images_to_remove.append(other)
    ok(docker_cli(['tag', imported, other]))
    image_id = inspect(engine, imported, 'images')['Id']
    res = docker_cli(['rmi', image_id[7:19]])
    assert res.returncode == 1
    assert 'referenced in multiple repositories' in res.stderr
    assert inspect(engine, other, 'images')['Id'] == image_id
    res = ok(docker_cli(['rmi', '-f', image_id[7:19]]))
    assert 'Untagged: ' + imported in res.stdout
    assert 'Untagged: ' + other in res.stdout
    assert 'Deleted: ' + image_id in res.stdout
    assert inspect(engine, image_id, 'images') is None


def test_commit_without_pause_and_of_stopped_container(docker_cli, engine,
                                                       names, images_to_remove,
                                                       sfx):
    running, stopped = names('nopause'), names('stopped')
    ref1, ref2 = 'compat-np-%s:1' % sfx, 'compat-np-%s:2' % sfx
    images_to_remove.extend([ref1, ref2])
    ok(docker_cli(['run', '-d', '--name', running, 'busybox', 'sh', '-c',
                   'echo a > /a; sleep 300']))
    time.sleep(0.3)
    since = '%.3f' % (time.time() - 1)
    ok(docker_cli(['commit', '--pause=false', running, ref1]))
    assert 'pause' not in _events(docker_cli, since, running)
    ok(docker_cli(['run', '--name', stopped, 'busybox', 'sh', '-c',
                   'mkdir -p /d/e && echo f > /d/e/f']))
    ok(docker_cli(['commit', stopped, ref2]))
    assert ok(docker_cli(['run', '--rm', ref2, 'cat', '/d/e/f'])
              ).stdout == 'f\n'
    # Without --change the container's config is the image's config.
    assert inspect(engine, ref2, 'images')['Config']['Cmd'] == [
        'sh', '-c', 'mkdir -p /d/e && echo f > /d/e/f']
    res = docker_cli(['commit', 'compat-no-such-container', ref2])
    assert res.returncode == 1 and 'No such container' in res.stderr
