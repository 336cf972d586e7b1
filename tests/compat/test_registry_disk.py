"""What a push leaves on the engine's disk goes with the image."""

import os
import uuid

from tests import daemons
from tests import registries as regs


def _blob(eng, digest):
    return os.path.join(eng.root, 'content', 'blobs', 'sha256', digest.split(':', 1)[1])


def test_rmi_of_a_pushed_image_frees_its_compressed_layer(engine_factory, registry):
    eng = engine_factory()
    regs.require_engine_registry(eng, 'push')
    name = 'disk-' + uuid.uuid4().hex[:8]
    status, _, body = daemons.api(eng.sock, 'POST', '/containers/create?name=' + name, {
        'Image': 'busybox:latest', 'Cmd': ['sh', '-c', 'head -c 300000 /dev/urandom > /d'],
        'HostConfig': {'NetworkMode': 'none'}})
    assert status == 201, body
    assert daemons.api(eng.sock, 'POST', '/containers/%s/start' % name)[0] == 204
    assert daemons.api(eng.sock, 'POST', '/containers/%s/wait' % name, timeout=60)[0] == 200
    ref = '%s/disk/app' % registry.host
    status, _, body = daemons.api(eng.sock, 'POST', '/commit?container=%s&repo=%s&tag=v1'
                                  % (name, ref))
    assert status == 201, body
    status, _, body = daemons.api(eng.sock, 'POST', '/images/%s/push?tag=v1' % ref,
                                  headers={'X-Registry-Auth': regs.x_registry_auth()},
                                  timeout=300)
    assert regs.StreamResult(status, body).ok, body
    manifest, _ = registry.manifest('disk/app', 'v1')
    base, new = (layer['digest'] for layer in manifest['layers'])
    # The engine keeps the compressed form it pushed (a second push sends
    # the same blob) while the image exists...
    assert os.path.exists(_blob(eng, new))
    assert daemons.api(eng.sock, 'DELETE', '/containers/' + name)[0] == 204
    assert daemons.api(eng.sock, 'DELETE', '/images/%s:v1' % ref)[0] == 200
    # ...and not after: the layer is gone, so is its compressed form.  The
    # base layer is still busybox's, so its compressed form stays.
    assert not os.path.exists(_blob(eng, new))
    assert os.path.exists(_blob(eng, base))
