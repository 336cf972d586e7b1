"""Limits of docker load / docker import through the real engine and CLI:
decompression bombs are refused with a message naming the option, a full
reserve answers "not enough space", and nothing is left behind."""

import gzip
import os
import tarfile

import pytest

pytestmark = [pytest.mark.compat, pytest.mark.engine_only]

MiB = 1 << 20


@pytest.fixture(scope='module')
def bomb(tmp_path_factory):
    """gzip of a tar holding 200 MB of zeros: about 200 KB on the wire."""
    path = tmp_path_factory.mktemp('bomb') / 'bomb.tar.gz'
    with open(path, 'wb') as f, gzip.GzipFile(fileobj=f, mode='wb',
                                              mtime=0) as g:
        with tarfile.open(fileobj=g, mode='w|') as t, open('/dev/zero', 'rb') as zeros:
            # addfile copies exactly ti.size bytes from the file it is given.
            ti = tarfile.TarInfo('zeros')
            ti.size = 200 * MiB
            t.addfile(ti, zeros)
    assert os.path.getsize(path) < MiB
    return str(path)


def _leftovers(eng):
    out = []
    for d in ('content/ingest', 'images/images/tmp', 'images/tmp'):
        p = os.path.join(eng.root, d)
        if os.path.isdir(p):
            out += [os.path.join(d, n) for n in os.listdir(p)]
    return out


def _images(docker_cli, eng):
    res = docker_cli(['images', '-q', '--no-trunc'], host=eng.url)
    assert res.returncode == 0, res.stderr
    return sorted(res.stdout.split())


def test_bombs_are_refused_naming_the_limit(engine_factory, docker_cli, bomb):
    eng = engine_factory(config='[engine]\nmax_archive_size = %d\n'
                         % (50 * MiB))
    before = _images(docker_cli, eng)
    res = docker_cli(['load', '-i', bomb], host=eng.url)
    assert res.returncode != 0
    assert 'max_archive_size' in res.stderr, res.stderr
    assert 'too large' in res.stderr
    res = docker_cli(['import', bomb, 'bomb:1'], host=eng.url)
    assert res.returncode != 0
    assert 'max_archive_size' in res.stderr, res.stderr
    assert _leftovers(eng) == []
    assert _images(docker_cli, eng) == before
    # The engine still loads and imports what fits.
    res = docker_cli(['load', '-i', engine_factory.busybox_archive],
                     host=eng.url)
    assert res.returncode == 0, res.stderr


def test_full_reserve_answers_not_enough_space(engine_factory, docker_cli,
                                               busybox_archive):
    # A reserve larger than any disk: every write would eat into it.
    eng = engine_factory(config='[engine]\nmin_free_space = %d\n' % (1 << 60),
                         load_busybox=False)
    res = docker_cli(['load', '-i', busybox_archive], host=eng.url)
    assert res.returncode != 0
    assert 'not enough space' in res.stderr, res.stderr
    assert 'min_free_space' in res.stderr
    assert 'No space left' not in res.stderr
    res = docker_cli(['import', busybox_archive, 'x:1'], host=eng.url)
    assert res.returncode != 0
    assert 'not enough space' in res.stderr, res.stderr
    assert _leftovers(eng) == []
    assert _images(docker_cli, eng) == []
