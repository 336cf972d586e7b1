"""Dockerfile builds (classic protocol) through the real docker CLI with
DOCKER_BUILDKIT=0 and docker-py: every test runs the built image or reads
its config and history back."""

import os

import docker
import pytest

from tests.compat.conftest import NOKIT, inspect, ok

pytestmark = pytest.mark.compat



def build_dir(tmp_path, dockerfile, files=None):
    d = tmp_path / 'ctx'
    d.mkdir(exist_ok=True)
    (d / 'Dockerfile').write_text(dockerfile)
    for name, content in (files or {}).items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return str(d)


def no_build_containers(engine, docker_cli):
    out = ok(docker_cli(['ps', '-a', '--format', '{{.ID}} {{.Command}}'])).stdout
    return [l for l in out.splitlines() if '/bin/sh -c' in l and 'build-marker' in l]


def test_brief_ping_from_stdin(docker_cli, tag):
    """The brief's Dockerfile on stdin, then run the image."""
    t = tag('ping')
    dockerfile = ('FROM busybox\n'
                  'MAINTAINER Jane Doe <jane@example.com>\n'
                  'RUN echo build-marker > /built && echo step-output\n'
                  'ENTRYPOINT ["cat"]\n')
    res = ok(docker_cli(['build', '-t', t, '-'], input=dockerfile, env=NOKIT))
    assert 'Step 1/4 : FROM busybox' in res.stdout
    assert 'step-output' in res.stdout
    assert 'Successfully tagged %s' % t in res.stdout
    run = ok(docker_cli(['run', '--rm', t, '/built']))
    assert run.stdout == 'build-marker\n'
    hist = ok(docker_cli(['history', '--no-trunc', '--format', '{{.CreatedBy}}', t])).stdout
    assert hist.splitlines()[:3] == [
        '/bin/sh -c #(nop)  ENTRYPOINT ["cat"]',
        '/bin/sh -c echo build-marker > /built && echo step-output',
        '/bin/sh -c #(nop)  MAINTAINER Jane Doe <jane@example.com>']


def test_context_dir_metadata_and_history(docker_cli, engine, tmp_path, tag):
    t = tag('meta')
    d = build_dir(tmp_path, (
        'FROM busybox\n'
        'ARG GREETING=hello\n'
        'ENV APP_HOME=/app \\\n    MODE=prod\n'
        'WORKDIR $APP_HOME\n'
        'COPY hello.txt sub/ ./\n'
        'RUN echo "$GREETING-$MODE" > greeting && chown 1000 greeting\n'
        'LABEL org.example.name="my app"\n'
        'EXPOSE 8080/tcp\n'
        'VOLUME /data\n'
        'USER 1000\n'
        'STOPSIGNAL SIGTERM\n'
        'CMD ["sh", "-c", "cat /app/greeting /app/hello.txt /app/inner.txt; id -u; pwd; echo $MODE"]\n'),
        {'hello.txt': 'hello file\n', 'sub/inner.txt': 'inner\n'})
    res = ok(docker_cli(['build', '--build-arg', 'GREETING=hi', '-t', t, d], env=NOKIT))
    assert 'Step 12/12 : CMD' in res.stdout
    run = ok(docker_cli(['run', '--rm', t]))
    assert run.stdout == 'hi-prod\nhello file\ninner\n1000\n/app\nprod\n'
    img = inspect(engine, t, 'images')
    cfg = img['Config']
    assert cfg['Labels'] == {'org.example.name': 'my app'}
    assert cfg['ExposedPorts'] == {'8080/tcp': {}}
    assert cfg['Volumes'] == {'/data': {}}
    assert cfg['StopSignal'] == 'SIGTERM'
    assert cfg['User'] == '1000'
    assert 'GREETING=hi' not in cfg['Env']
    hist = ok(docker_cli(['history', '--no-trunc', '--format',
                          '{{.CreatedBy}}|{{.Size}}', t])).stdout.splitlines()
    created_by = [h.rsplit('|', 1)[0] for h in hist]
    assert created_by[0] == '/bin/sh -c #(nop)  CMD ["sh" "-c" "cat /app/greeting ' \
        '/app/hello.txt /app/inner.txt; id -u; pwd; echo $MODE"]'
    assert created_by[5] == '/bin/sh -c #(nop)  LABEL org.example.name=my app'
    assert created_by[6].startswith('|1 GREETING=hi /bin/sh -c echo "$GREETING-$MODE"')
    assert created_by[7].startswith('/bin/sh -c #(nop) COPY multi:')
    assert created_by[8] == '/bin/sh -c #(nop) WORKDIR /app'
    assert created_by[9] == '/bin/sh -c #(nop)  ENV APP_HOME=/app MODE=prod'
    assert created_by[10] == '/bin/sh -c #(nop)  ARG GREETING=hello'
    # Metadata rows have no layer; the RUN and COPY rows do.
    sizes = dict(zip(range(len(hist)), [h.rsplit('|', 1)[1] for h in hist]))
    assert sizes[0] == '0B' and sizes[5] == '0B' and sizes[8] == '0B'
    assert sizes[6] != '0B' and sizes[7] != '0B'
    # WORKDIR made /app (a layer with 0 B of data, as Docker's), COPY, RUN.
    assert len(img['RootFS']['Layers']) == len(
        inspect(engine, 'busybox', 'images')['RootFS']['Layers']) + 3


def build_ids(stdout):
    return [l.split()[-1] for l in stdout.splitlines() if l.startswith(' ---> ')
            and 'Using cache' not in l and 'Running in' not in l]


def test_cache_hits_and_changed_file_invalidates(docker_cli, engine, tmp_path, tag):
    t = tag('cache')
    d = build_dir(tmp_path, (
        'FROM busybox\n'
        'ENV STEP=one\n'
        'RUN echo ran-first-run && cat /proc/sys/kernel/random/uuid > /stamp1\n'
        'COPY data.txt /data.txt\n'
        'RUN cat /data.txt > /copy && cat /proc/sys/kernel/random/uuid > /stamp2\n'),
        {'data.txt': 'version 1\n'})
    first = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert 'Using cache' not in first
    first_id = inspect(engine, t, 'images')['Id']
    stamps1 = ok(docker_cli(['run', '--rm', t, 'cat', '/stamp1', '/stamp2'])).stdout

    again = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    assert again.count(' ---> Using cache') == 4
    assert 'ran-first-run' not in again.splitlines()
    assert inspect(engine, t, 'images')['Id'] == first_id
    assert 'Successfully built %s' % first_id.split(':')[1][:12] in again

    with open(os.path.join(d, 'data.txt'), 'w') as f:
        f.write('version 2\n')
    changed = ok(docker_cli(['build', '-t', t, d], env=NOKIT)).stdout
    # ENV and the first RUN come from the cache; COPY and what follows do not.
    assert changed.count(' ---> Using cache') == 2
    assert inspect(engine, t, 'images')['Id'] != first_id
    out = ok(docker_cli(['run', '--rm', t, 'cat', '/copy', '/stamp1', '/stamp2'])).stdout
    lines = out.splitlines()
    assert lines[0] == 'version 2'
    assert lines[1] == stamps1.splitlines()[0]      # the cached RUN's file
    assert lines[2] != stamps1.splitlines()[1]      # the RUN after COPY ran again

    nocache = ok(docker_cli(['build', '--no-cache', '-t', t, d], env=NOKIT)).stdout
    assert 'Using cache' not in nocache and 'ran-first-run' in nocache.splitlines()


def test_cache_survives_engine_restart(engine_factory, tmp_path):
    eng = engine_factory.start()
    d = build_dir(tmp_path, 'FROM busybox\nRUN echo x > /x\nCMD ["cat", "/x"]\n')
    from tests.conftest import run_docker
    first = run_docker(['build', '-t', 'restart:1', d], eng.url, env=NOKIT)
    ok(first)
    eng.restart()
    again = ok(run_docker(['build', '-t', 'restart:1', d], eng.url, env=NOKIT)).stdout
    assert again.count(' ---> Using cache') == 2
    # Removing the image removes its cache entries with it.
    ok(run_docker(['rmi', 'restart:1'], eng.url))
    third = ok(run_docker(['build', '-t', 'restart:1', d], eng.url, env=NOKIT)).stdout
    assert 'Using cache' not in third


def test_failing_run_reports_exit_code_and_leaves_no_container(docker_cli, engine, tag):
    t = tag('fail')
    before = set(ok(docker_cli(['ps', '-aq', '--no-trunc'])).stdout.split())
    res = docker_cli(['build', '-t', t, '-'], env=NOKIT,
                     input='FROM busybox\nRUN echo about-to-fail && exit 3\nRUN echo never\n')
    assert res.returncode == 3  # the CLI exits with the RUN's code (errorDetail.code)
    assert 'about-to-fail' in res.stdout
    assert "The command '/bin/sh -c echo about-to-fail && exit 3' returned a non-zero " \
        "code: 3" in res.stderr
    assert 'never' not in res.stdout
    after = set(ok(docker_cli(['ps', '-aq', '--no-trunc'])).stdout.split())
    assert after <= before
    assert inspect(engine, t, 'images') is None


def test_failing_run_kept_with_rm_false(docker_cli, engine, tag):
    before = set(ok(docker_cli(['ps', '-aq', '--no-trunc'])).stdout.split())
    res = docker_cli(['build', '--rm=false', '-'], env=NOKIT,
                     input='FROM busybox\nRUN exit 2\n')
    assert res.returncode == 2
    left = set(ok(docker_cli(['ps', '-aq', '--no-trunc'])).stdout.split()) - before
    try:
        assert len(left) == 1
        cid = left.pop()
        assert inspect(engine, cid)['State']['ExitCode'] == 2
    finally:
        for cid in left:
            docker_cli(['rm', '-f', cid])


def test_unknown_instruction_names_the_line(docker_cli):
    res = docker_cli(['build', '-'], env=NOKIT,
                     input='FROM busybox\nRUN true\nFROBNICATE now\n')
    assert res.returncode == 1
    assert 'dockerfile parse error line 3: unknown instruction: FROBNICATE' in res.stderr


def test_bad_base_image_and_missing_copy_source(docker_cli, tmp_path):
    res = docker_cli(['build', '-'], env=NOKIT, input='FROM no-such-base:1\nRUN true\n')
    assert res.returncode == 1
    # Not local, so pulled: the registry is out of reach here.
    assert 'pulling no-such-base:1 (not present locally): ' in res.stderr
    assert 'registry-1.docker.io' in res.stderr
    d = build_dir(tmp_path, 'FROM busybox\nCOPY missing.txt /x\n')
    res = docker_cli(['build', d], env=NOKIT)
    assert res.returncode == 1
    assert 'COPY failed: file not found in build context or excluded by ' \
        '.dockerignore: stat missing.txt: file does not exist' in res.stderr


def test_docker_py_images_build(engine, tmp_path, tag):
    t = tag('py')
    client = docker.DockerClient(base_url=engine.url, version='1.41')
    try:
        d = build_dir(tmp_path, 'FROM busybox\nARG WHO=nobody\n'
                      'RUN echo "built by $WHO" > /who\nCMD ["cat", "/who"]\n')
        image, logs = client.images.build(path=d, tag=t, buildargs={'WHO': 'docker-py'},
                                          labels={'made.by': 'test'}, rm=True)
        streams = ''.join(entry.get('stream', '') for entry in logs)
        assert 'Step 5/5 : LABEL made.by=test' in streams
        assert image.labels == {'made.by': 'test'}
        assert t in image.tags
        out = client.containers.run(t, remove=True)
        assert out == b'built by docker-py\n'
        import io
        image2, _ = client.images.build(
            fileobj=io.BytesIO(b'FROM busybox\nENV FROM_STDIN=yes\n'), tag=t.replace(':latest', ':two'))
        assert 'FROM_STDIN=yes' in image2.attrs['Config']['Env']
        client.images.remove(t.replace(':latest', ':two'))
        with pytest.raises(docker.errors.BuildError) as err:
            client.images.build(fileobj=io.BytesIO(b'FROM busybox\nRUN false\n'))
        assert "returned a non-zero code: 1" in str(err.value)
    finally:
        client.close()


def test_quiet_prints_only_the_id(docker_cli, engine, tag):
    t = tag('quiet')
    res = ok(docker_cli(['build', '-q', '-t', t, '-'], env=NOKIT,
                        input='FROM busybox\nRUN echo noisy\n'))
    assert res.stdout.strip() == inspect(engine, t, 'images')['Id']
    assert 'noisy' not in res.stdout


def test_dockerignore_and_custom_dockerfile(docker_cli, tmp_path, tag):
    t = tag('ignore')
    d = build_dir(tmp_path, 'FROM scratch\n', {
        'keep.txt': 'kept\n', 'secret.key': 'nope\n', 'logs/a.log': 'x\n',
        'build.Dockerfile': 'FROM busybox\nCOPY . /ctx/\nCMD ["sh", "-c", "ls /ctx | sort"]\n',
        '.dockerignore': '*.key\nlogs\n'})
    ok(docker_cli(['build', '-f', os.path.join(d, 'build.Dockerfile'), '-t', t, d], env=NOKIT))
    listing = ok(docker_cli(['run', '--rm', t])).stdout.split()
    assert 'keep.txt' in listing
    assert 'secret.key' not in listing and 'logs' not in listing


def test_git_repository_context(docker_cli, engine, tmp_path, tag):
    import subprocess
    t = tag('git')
    repo = tmp_path / 'repo'
    repo.mkdir()
    (repo / 'Dockerfile').write_text('FROM busybox\nCOPY msg /msg\nCMD ["cat", "/msg"]\n')
    (repo / 'msg').write_text('from git\n')
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@e',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@e')
    for cmd in (['init', '-q', '-b', 'main'], ['add', '.'], ['commit', '-qm', 'c']):
        subprocess.run(['git'] + cmd, cwd=repo, check=True, env=env)
    from tests import daemons
    status, _h, body = daemons.api(
        engine.sock, 'POST', '/build?t=%s&remote=%s' % (t, 'file://' + str(repo)),
        timeout=120)
    assert status == 200, body
    assert b'Successfully tagged' in body, body
    assert ok(docker_cli(['run', '--rm', t])).stdout == 'from git\n'


def test_hostile_context_is_refused_and_leaves_nothing(engine, tmp_path):
    import io
    import tarfile
    from tests import daemons
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        for name, data in (('Dockerfile', b'FROM busybox\n'), ('../escape', b'x')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tmp_dir = os.path.join(engine.root, 'images', 'tmp')
    before = set(os.listdir(tmp_dir)) if os.path.isdir(tmp_dir) else set()
    status, _h, body = daemons.api(engine.sock, 'POST', '/build?t=hostile:1',
                                   body=buf.getvalue(),
                                   headers={'Content-Type': 'application/x-tar'})
    assert status == 400, body
    assert b'escape' in body
    assert not os.path.exists(os.path.join(engine.root, 'images', 'escape'))
    after = set(os.listdir(tmp_dir)) if os.path.isdir(tmp_dir) else set()
    assert after <= before
    # A Dockerfile outside the context is refused by name as well.
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode='w') as tf:
        info = tarfile.TarInfo('Dockerfile')
        info.size = 13
        tf.addfile(info, io.BytesIO(b'FROM busybox\n'))
    status, _h, body = daemons.api(
        engine.sock, 'POST', '/build?dockerfile=../../../../etc/passwd',
        body=good.getvalue(), headers={'Content-Type': 'application/x-tar'})
    assert status == 400, body
    assert b'root:x:0' not in body
