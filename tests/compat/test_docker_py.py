"""docker-py (the PyPI ``docker`` package) against the engine, unchanged."""

import io
import subprocess
import sys
import tarfile
import time

import docker
import pytest

from tests import daemons
from tests.compat.conftest import inspect, wait_for

pytestmark = pytest.mark.compat

IMAGE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


@pytest.fixture
def client(engine):
    c = docker.DockerClient(base_url=engine.url, timeout=120)
    yield c
    c.close()


def test_version_and_ping(client):
    assert client.ping() is True
    v = client.version()
    assert v['ApiVersion'] and v['Os'] == 'linux'
    # docker-py negotiated an API version the engine accepts.
    assert client.api.api_version
    info = client.info()
    assert isinstance(info, dict) and 'Containers' in info


def test_run_attached_returns_output(client, names):
    name = names('py')
    out = client.containers.run('busybox', ['sh', '-c', 'echo hi; echo err >&2'],
                                name=name)
    assert out == b'hi\n'
    c = client.containers.get(name)
    assert c.status == 'exited'
    assert c.attrs['State']['ExitCode'] == 0
    # stderr on request.
    out = client.containers.run('busybox', ['sh', '-c', 'echo err >&2'],
                                stdout=False, stderr=True, remove=True)
    assert out == b'err\n'


def test_run_failure_raises_container_error(client, names):
    name = names('pyfail')
    with pytest.raises(docker.errors.ContainerError) as exc:
        client.containers.run('busybox', ['sh', '-c', 'echo bad >&2; exit 3'],
                              name=name)
    assert exc.value.exit_status == 3
    assert b'bad' in exc.value.stderr


def test_run_remove(client, engine, names):
    name = names('pyrm')
    out = client.containers.run('busybox', ['echo', 'gone'], name=name,
                                remove=True)
    assert out == b'gone\n'
    wait_for(lambda: inspect(engine, name) is None, timeout=10,
             what='removal')
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_run_detached_logs_and_wait(client, names):
    name = names('pyd')
    c = client.containers.run('busybox', ['sh', '-c',
                                          'echo one; echo two >&2; exit 4'],
                              name=name, detach=True,
                              environment={'X': '1'}, labels={'k': 'v'},
                              working_dir='/tmp', hostname='pyhost')
    assert isinstance(c, docker.models.containers.Container)
    result = c.wait(timeout=30)
    assert result['StatusCode'] == 4
    assert c.logs() == b'one\ntwo\n'
    assert c.logs(stdout=True, stderr=False) == b'one\n'
    assert c.logs(stdout=False, stderr=True) == b'two\n'
    assert c.logs(tail=1) in (b'two\n', b'one\n')
    c.reload()
    assert c.status == 'exited'
    assert c.labels == {'k': 'v'}
    assert c.attrs['Config']['WorkingDir'] == '/tmp'
    assert c.attrs['Config']['Hostname'] == 'pyhost'
    assert 'X=1' in c.attrs['Config']['Env']


def test_logs_stream(client, names):
    name = names('pystream')
    c = client.containers.run('busybox', ['sh', '-c',
                                          'for i in 1 2 3; do echo s$i; '
                                          'sleep 0.2; done'],
                              name=name, detach=True)
    lines = b''.join(c.logs(stream=True, follow=True)).split()
    assert lines == [b's1', b's2', b's3']


def test_list_and_filters(client, names):
    name = names('pylist')
    c = client.containers.run('busybox', ['sleep', '300'], name=name,
                              detach=True, labels={'suite': names.suffix})
    listed = client.containers.list(filters={'label': 'suite=' + names.suffix})
    assert [x.id for x in listed] == [c.id]
    assert listed[0].name == name
    assert listed[0].status == 'running'
    c.stop(timeout=1)
    assert client.containers.list(
        filters={'label': 'suite=' + names.suffix}) == []
    every = client.containers.list(all=True,
                                   filters={'label': 'suite=' + names.suffix})
    assert [x.id for x in every] == [c.id]
    assert every[0].status == 'exited'


def test_exec_run(client, names):
    name = names('pyexec')
    c = client.containers.run('busybox', ['sleep', '300'], name=name,
                              detach=True)
    res = c.exec_run(['sh', '-c', 'echo out; exit 5'])
    assert res.exit_code == 5
    assert res.output == b'out\n'
    res = c.exec_run('id -u', user='nobody')
    assert (res.exit_code, res.output) == (0, b'65534\n')
    res = c.exec_run('pwd', workdir='/tmp')
    assert res.output == b'/tmp\n'
    res = c.exec_run(['sh', '-c', 'echo $E'], environment={'E': 'env-ok'})
    assert res.output == b'env-ok\n'
    res = c.exec_run(['sh', '-c', 'echo o; echo e >&2'], demux=True)
    assert res.output == (b'o\n', b'e\n')
    # Low-level API: exec_inspect reports the exit code.
    api = client.api
    ex = api.exec_create(c.id, ['sh', '-c', 'exit 9'])
    api.exec_start(ex['Id'])
    info = wait_for(lambda: (lambda i: i if not i['Running'] else None)(
        api.exec_inspect(ex['Id'])), what='exec to finish')
    assert info['ExitCode'] == 9
    assert info['ContainerID'] == c.id


def test_api_inspect_container(client, names):
    name = names('pyinsp')
    c = client.containers.create('busybox', ['sh', '-c', 'exit 0'], name=name,
                                 user='nobody', environment=['A=b'])
    data = client.api.inspect_container(name)
    assert data['Id'] == c.id
    assert data['Name'] == '/' + name
    assert data['Config']['Cmd'] == ['sh', '-c', 'exit 0']
    assert data['Config']['User'] == 'nobody'
    assert 'A=b' in data['Config']['Env'] and IMAGE_PATH in \
        data['Config']['Env']
    assert data['State']['Status'] == 'created'
    with pytest.raises(docker.errors.NotFound) as exc:
        client.api.inspect_container('compat-no-such-container')
    assert exc.value.status_code == 404
    assert 'No such container' in str(exc.value)


def test_lifecycle_methods(client, names):
    name = names('pylife')
    c = client.containers.run('busybox', ['sh', '-c',
                                          'trap "exit 0" TERM; '
                                          'sleep 300 & wait'],
                              name=name, detach=True)
    c.pause()
    c.reload()
    assert c.status == 'paused'
    c.unpause()
    c.reload()
    assert c.status == 'running'
    c.rename(name + '-r')
    c.reload()
    assert c.name == name + '-r'
    c.rename(name)
    c.stop(timeout=10)
    c.reload()
    assert c.status == 'exited' and c.attrs['State']['ExitCode'] == 0
    c.start()
    c.reload()
    assert c.status == 'running'
    c.kill()
    assert c.wait(timeout=30)['StatusCode'] == 137
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_images_list_get_tag_remove(client, engine, names, images_to_remove):
    busybox = client.images.get('busybox')
    assert 'busybox:latest' in busybox.tags
    assert busybox.id == inspect(engine, 'busybox', 'images')['Id']
    assert busybox.id in [i.id for i in client.images.list()]
    assert [i.id for i in client.images.list('busybox')] == [busybox.id]
    repo = 'compat-py-%s' % names.suffix
    images_to_remove.append(repo + ':t1')
    assert busybox.tag(repo, 't1') is True
    tagged = client.images.get(repo + ':t1')
    assert tagged.id == busybox.id
    busybox.reload()
    assert repo + ':t1' in busybox.tags
    hist = busybox.history()
    assert len(hist) == 2 and 'CMD' in hist[0]['CreatedBy']
    client.images.remove(repo + ':t1')
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(repo + ':t1')
    assert client.images.get('busybox').id == busybox.id


def test_images_remove_in_use_conflicts(client, names, images_to_remove):
    repo = 'compat-pyuse-%s' % names.suffix
    images_to_remove.append(repo + ':1')
    client.images.get('busybox').tag(repo, '1')
    client.containers.create(repo + ':1', ['true'], name=names('pyuse'))
    img = client.images.get(repo + ':1')
    with pytest.raises(docker.errors.APIError) as exc:
        client.images.remove(img.id)
    assert exc.value.status_code == 409
    assert 'conflict' in str(exc.value).lower()


def test_images_load(client, tmp_path, images_to_remove, names):
    ref = 'compat-pyload-%s:1' % names.suffix
    images_to_remove.append(ref)
    path = str(tmp_path / 'img.tar')
    res = subprocess.run([sys.executable, daemons.MKIMAGE, '-o', path, '-t',
                          ref, '--print-id'], check=True, capture_output=True,
                         text=True)
    with open(path, 'rb') as f:
        loaded = client.images.load(f.read())
    assert [i.id for i in loaded] == [res.stdout.strip()]
    assert ref in loaded[0].tags


def test_container_commit(client, names, images_to_remove):
    name = names('pycommit')
    repo = 'compat-pycommit-%s' % names.suffix
    images_to_remove.append(repo + ':1')
    c = client.containers.run('busybox', ['sh', '-c',
                                          'echo py > /py.txt; rm /etc/shadow'],
                              name=name, detach=True)
    c.wait(timeout=30)
    img = c.commit(repository=repo, tag='1', message='py commit',
                   author='pytest', changes=['CMD ["cat", "/py.txt"]',
                                             'ENV PY=1'])
    assert img.id.startswith('sha256:')
    assert repo + ':1' in img.tags
    attrs = client.api.inspect_image(img.id)
    assert attrs['Comment'] == 'py commit' and attrs['Author'] == 'pytest'
    assert attrs['Config']['Cmd'] == ['cat', '/py.txt']
    assert 'PY=1' in attrs['Config']['Env']
    parent = client.api.inspect_image('busybox')
    assert len(attrs['RootFS']['Layers']) == \
        len(parent['RootFS']['Layers']) + 1
    out = client.containers.run(repo + ':1', remove=True)
    assert out == b'py\n'
    out = client.containers.run(repo + ':1', ['sh', '-c',
                                              'ls /etc/shadow || echo absent'],
                                remove=True)
    assert out.strip().endswith(b'absent')


def test_export_and_get_archive(client, names):
    name = names('pyexport')
    c = client.containers.run('busybox', ['sh', '-c', 'echo e > /e.txt'],
                              name=name, detach=True)
    c.wait(timeout=30)
    data = b''.join(c.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {n.lstrip('./') for n in tar.getnames()}
        assert 'e.txt' in files and 'bin/busybox' in files


def test_not_found_errors(client):
    with pytest.raises(docker.errors.NotFound):
        client.containers.get('compat-no-such-container')
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get('compat-no-such-image:1')
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create('compat-no-such-image:1')


def test_attach_socket_stdin(client, names):
    """Hijacked attach with stdin through docker-py's low-level socket."""
    name = names('pyattach')
    c = client.containers.create('busybox', ['sh', '-c',
                                             'read x; echo "got:$x"'],
                                 name=name, stdin_open=True)
    sock = client.api.attach_socket(c.id, params={'stdin': 1, 'stdout': 1,
                                                  'stream': 1})
    try:
        c.start()
        raw = sock._sock
        raw.sendall(b'pyline\n')
        deadline = time.monotonic() + 20
        buf = b''
        raw.settimeout(1)
        while b'got:pyline' not in buf and time.monotonic() < deadline:
            try:
                chunk = raw.recv(4096)
            except OSError:
                continue
            if not chunk:
                break
            buf += chunk
    finally:
        sock.close()
    # Without a TTY the stream is multiplexed: 8-byte header, stream 1.
    assert b'got:pyline\n' in buf
    assert buf[0] == 1
    assert c.wait(timeout=30)['StatusCode'] == 0
