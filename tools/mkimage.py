#!/usr/bin/env python3
"""Build a busybox image from the host's static busybox, without Docker.

Writes either a Docker image archive (the ``docker save`` layout: manifest.json,
repositories, the image config, one directory per layer with VERSION, json and
layer.tar) or, with ``--rootfs``, a plain root filesystem tarball for
``docker import``.

Every mtime, owner and ordering is fixed, so the same busybox binary always
gives the same layer digest and image ID.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile

DEFAULT_BUSYBOX = '/bin/busybox'
DEFAULT_TAG = 'busybox:latest'
# A fixed point in time for every file and history entry: reproducible output.
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
CREATED = '2024-01-01T00:00:00Z'
PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

GOARCH = {
    'x86_64': 'amd64', 'amd64': 'amd64',
    'aarch64': 'arm64', 'arm64': 'arm64',
    'armv7l': 'arm', 'armv6l': 'arm',
    'i386': '386', 'i686': '386',
    'ppc64le': 'ppc64le', 's390x': 's390x', 'riscv64': 'riscv64',
}

PASSWD = ('root:x:0:0:root:/root:/bin/sh\n'
          'daemon:x:1:1:daemon:/usr/sbin:/bin/false\n'
          'nobody:x:65534:65534:nobody:/home:/bin/false\n')
GROUP = ('root:x:0:\n'
         'daemon:x:1:\n'
         'nogroup:x:65534:\n')
SHADOW = ('root:*:19723:0:99999:7:::\n'
          'daemon:*:19723:0:99999:7:::\n'
          'nobody:*:19723:0:99999:7:::\n')


def host_arch():
    machine = platform.machine()
    return GOARCH.get(machine, machine)


def busybox_applets(busybox):
    out = subprocess.run([busybox, '--list'], check=True,
                         capture_output=True, text=True).stdout
    names = sorted({n.strip() for n in out.split() if n.strip()})
    return [n for n in names if n != 'busybox' and '/' not in n]


def _info(name, kind=tarfile.REGTYPE, mode=0o644, size=0, linkname=''):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.linkname = linkname
    ti.mtime = EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ''
    return ti


def build_rootfs_tar(busybox=DEFAULT_BUSYBOX, links='hard'):
    """Return the bytes of a deterministic busybox root filesystem tarball."""
    with open(busybox, 'rb') as f:
        binary = f.read()
    applets = busybox_applets(busybox)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name, mode=0o755):
            tar.addfile(_info(name, tarfile.DIRTYPE, mode))

        def add_file(name, data, mode=0o644):
            if isinstance(data, str):
                data = data.encode()
            tar.addfile(_info(name, mode=mode, size=len(data)),
                        io.BytesIO(data))

        add_dir('bin/')
        add_file('bin/busybox', binary, 0o755)
        for applet in applets:
            if links == 'hard':
                tar.addfile(_info('bin/' + applet, tarfile.LNKTYPE, 0o755,
                                  linkname='bin/busybox'))
            else:
                tar.addfile(_info('bin/' + applet, tarfile.SYMTYPE, 0o777,
                                  linkname='busybox'))
        add_dir('dev/')
        add_dir('etc/')
        add_file('etc/group', GROUP)
        add_file('etc/hostname', 'busybox\n')
        add_file('etc/passwd', PASSWD)
        add_file('etc/shadow', SHADOW, 0o640)
        add_dir('home/')
        add_dir('root/', 0o700)
        add_dir('tmp/', 0o1777)
        add_dir('usr/')
        add_dir('usr/sbin/')
        add_dir('var/')
        add_dir('var/spool/')
        add_dir('var/spool/mail/')
        add_dir('var/www/')
    return buf.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _gzip(data):
    # mtime=0 and no file name keep compressed output reproducible too.
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode='wb', mtime=0, filename='') as g:
        g.write(data)
    return out.getvalue()


def build_archive(tag=DEFAULT_TAG, busybox=DEFAULT_BUSYBOX, links='hard',
                  gzip_layers=False):
    """Return (archive bytes, image id) of a ``docker save`` style archive."""
    layer = build_rootfs_tar(busybox, links)
    diff_id = 'sha256:' + sha256(layer)
    layer_blob = _gzip(layer) if gzip_layers else layer
    arch = host_arch()
    with open(busybox, 'rb') as f:
        bb_digest = sha256(f.read())
    config = {
        'architecture': arch,
        'os': 'linux',
        'created': CREATED,
        'config': {
            'Env': [PATH_ENV],
            'Cmd': ['sh'],
        },
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
        'history': [
            {'created': CREATED,
             'created_by': '/bin/sh -c #(nop) ADD file:%s in / ' % bb_digest},
            {'created': CREATED,
             'created_by': '/bin/sh -c #(nop)  CMD ["sh"]',
             'empty_layer': True},
        ],
    }
    config_bytes = json.dumps(config, sort_keys=True,
                              separators=(',', ':')).encode()
    image_id = sha256(config_bytes)
    # Docker names layer directories after v1 IDs; any stable hex works for load.
    layer_dir = sha256(('%s\n%s' % (diff_id, image_id)).encode())
    v1_json = {
        'id': layer_dir,
        'created': CREATED,
        'architecture': arch,
        'os': 'linux',
        'config': config['config'],
    }
    if ':' in tag.rsplit('/', 1)[-1]:
        repo, _, tagname = tag.rpartition(':')
    else:
        repo, tagname = tag, 'latest'
    manifest = [{
        'Config': image_id + '.json',
        'RepoTags': ['%s:%s' % (repo, tagname)],
        'Layers': [layer_dir + '/layer.tar'],
    }]
    repositories = {repo: {tagname: layer_dir}}

    members = [
        (layer_dir + '/', None),
        (layer_dir + '/VERSION', b'1.0'),
        (layer_dir + '/json', json.dumps(v1_json, sort_keys=True).encode()),
        (layer_dir + '/layer.tar', layer_blob),
        (image_id + '.json', config_bytes),
        ('manifest.json', json.dumps(manifest).encode()),
        ('repositories', json.dumps(repositories).encode()),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            if data is None:
                tar.addfile(_info(name, tarfile.DIRTYPE, 0o755))
            else:
                tar.addfile(_info(name, size=len(data)), io.BytesIO(data))
    return buf.getvalue(), 'sha256:' + image_id


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('-o', '--output', default='busybox.tar',
                   help="where to write the archive ('-' for stdout)")
    p.add_argument('-t', '--tag', default=DEFAULT_TAG,
                   help='repository:tag recorded in the archive')
    p.add_argument('--busybox', default=DEFAULT_BUSYBOX,
                   help='static busybox binary to package')
    p.add_argument('--rootfs', action='store_true',
                   help='write a plain rootfs tarball (for docker import) '
                        'instead of an image archive')
    p.add_argument('--symlinks', action='store_true',
                   help='make applets symlinks instead of hardlinks')
    p.add_argument('--gzip-layers', action='store_true',
                   help='gzip each layer.tar inside the archive')
    p.add_argument('--gzip', action='store_true',
                   help='gzip the whole output')
    p.add_argument('--print-id', action='store_true',
                   help='print the image ID (or rootfs digest) on stdout')
    args = p.parse_args(argv)

    links = 'sym' if args.symlinks else 'hard'
    if args.rootfs:
        data = build_rootfs_tar(args.busybox, links)
        ident = 'sha256:' + sha256(data)
    else:
        data, ident = build_archive(args.tag, args.busybox, links,
                                    args.gzip_layers)
    if args.gzip:
        data = _gzip(data)
    if args.output == '-':
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        tmp = args.output + '.tmp'
        with open(tmp, 'wb') as f:
            f.write(data)
        os.rename(tmp, args.output)
    if args.print_id:
        print(ident, file=sys.stderr if args.output == '-' else sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
