"""TLS that is really checked: a registry on a non-loopback address of this
host (127.0.0.0/8 and localhost are insecure by default, for Docker and for
our engine, so there the certificate is never verified).

* the engine trusts the registry's CA from ``certs_dir/<host:port>/ca.crt``
  and refuses the registry without it;
* a registry that demands a client certificate gets the one in
  ``certs_dir/<host:port>/client.cert|client.key``, and refuses an engine
  that has none;
* ``insecure_registries`` lets the engine skip verification for one host.
"""

import os

import pytest

from tests import registries as regs

pytestmark = pytest.mark.compat

ADDRESSES = regs.global_addresses()
needs_address = pytest.mark.skipif(
    not ADDRESSES, reason='this host has no non-loopback IPv4 address')


def seed(reg, busybox_archive, repo='tls/busybox:v1'):
    """Put busybox into the registry with skopeo (an independent client)."""
    regs.skopeo('copy', *reg.skopeo_args('dest'),
                'docker-archive:%s' % busybox_archive,
                'docker://%s/%s' % (reg.host, repo))
    return '%s/%s' % (reg.host, repo)


def certs_dir(tmp_path, reg, name, ca=True, client=False):
    path = tmp_path / name
    path.mkdir()
    if ca:
        reg.pki.install_certs_dir(str(path), reg.host, client=client)
    return str(path)


def assert_pulled(eng, ref):
    status, data = eng.api_json('GET', '/images/%s/json' % ref)
    assert status == 200, data
    return data


def assert_not_pulled(eng, ref):
    assert eng.api_json('GET', '/images/%s/json' % ref)[0] == 404
    assert regs.ingest_leftovers(eng) == []


@needs_address
def test_engine_verifies_registry_ca(registry_factory, engine_factory,
                                     busybox_archive, tmp_path):
    reg = registry_factory(tls=True, auth='basic', address=ADDRESSES[0])
    ref = seed(reg, busybox_archive)

    trusting = engine_factory(config=regs.engine_config_text(reg),
                              load_busybox=False)
    regs.require_engine_registry(trusting)
    res = regs.daemon_pull(trusting, ref, reg=reg)
    assert res.ok, res
    assert_pulled(trusting, ref)

    # The same engine configuration without the CA: the certificate is
    # not trusted, the pull fails and says why.
    empty = certs_dir(tmp_path, reg, 'no-ca', ca=False)
    doubting = engine_factory(config='[registry]\ncerts_dir = %s\n' % empty,
                              load_busybox=False)
    res = regs.daemon_pull(doubting, ref, reg=reg)
    assert not res.ok
    assert 'certificate' in res.error.lower() or 'ssl' in res.error.lower(), \
        res.error
    assert reg.password not in res.error
    assert_not_pulled(doubting, ref)


@needs_address
def test_insecure_registry_option_skips_verification(
        registry_factory, engine_factory, busybox_archive, tmp_path):
    reg = registry_factory(tls=True, auth='basic', address=ADDRESSES[0])
    ref = seed(reg, busybox_archive)
    empty = certs_dir(tmp_path, reg, 'no-ca', ca=False)
    eng = engine_factory(config='[registry]\ncerts_dir = %s\n'
                         'insecure_registries = %s\n' % (empty, reg.host),
                         load_busybox=False)
    regs.require_engine_registry(eng)
    res = regs.daemon_pull(eng, ref, reg=reg)
    assert res.ok, res
    assert_pulled(eng, ref)


@needs_address
def test_engine_presents_client_certificate(registry_factory, engine_factory,
                                            busybox_archive, tmp_path):
    reg = registry_factory(tls=True, client_ca=True, address=ADDRESSES[0])
    ref = seed(reg, busybox_archive)
    # skopeo got in with the client certificate; without one, not even the
    # test's own client does.
    with_client = certs_dir(tmp_path, reg, 'with-client', client=True)
    ca_only = certs_dir(tmp_path, reg, 'ca-only')
    assert os.path.exists(os.path.join(with_client, reg.host, 'client.cert'))

    eng = engine_factory(config='[registry]\ncerts_dir = %s\n' % with_client,
                         load_busybox=False)
    regs.require_engine_registry(eng)
    res = regs.daemon_pull(eng, ref)
    assert res.ok, res
    assert_pulled(eng, ref)

    refused = engine_factory(config='[registry]\ncerts_dir = %s\n' % ca_only,
                             load_busybox=False)
    res = regs.daemon_pull(refused, ref)
    assert not res.ok
    assert 'certificate' in res.error.lower(), res.error
    assert_not_pulled(refused, ref)
