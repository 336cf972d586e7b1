"""The image tools/mkimage.py builds is one Docker 20.10 itself accepts."""

import pytest

from tests.conftest import DOCKER_CLI_2010, run_docker

pytestmark = [pytest.mark.compat, pytest.mark.slow]


def test_docker_loads_and_runs_it(dockerd, busybox_archive):
    res = run_docker(['image', 'inspect', '-f', '{{json .Config.Cmd}}',
                      'busybox:latest'], dockerd.url, cli=DOCKER_CLI_2010)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '["sh"]'
    res = run_docker(['run', '--rm', 'busybox', 'sh', '-c',
                      'id -un; ls -ld /tmp; test -x /bin/ls && echo ok'],
                     dockerd.url, cli=DOCKER_CLI_2010)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == 'root'
    assert lines[1].startswith('drwxrwxrwt')
    assert lines[2] == 'ok'


def test_docker_imports_the_rootfs(dockerd, busybox_rootfs):
    res = run_docker(['import', busybox_rootfs, 'mkimage-rootfs:test'],
                     dockerd.url, cli=DOCKER_CLI_2010)
    assert res.returncode == 0, res.stderr
    res = run_docker(['run', '--rm', 'mkimage-rootfs:test', '/bin/echo', 'hi'],
                     dockerd.url, cli=DOCKER_CLI_2010)
    assert (res.returncode, res.stdout) == (0, 'hi\n'), res.stderr
