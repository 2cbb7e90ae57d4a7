"""TLS: a docker-registry serving HTTPS with a certificate from a test CA (IP SAN 127.0.0.1).

Verification is on by default, so without the CA regfs refuses with a message that says what
to do; with the CA in certs.d (containers-certs.d(5): ~/.config/containers/certs.d/HOST:PORT/,
or a root named by $REGFS_CERTS_D) or given by --cert-dir it works, for every command. A
registry that requires client certificates works with a *.cert/*.key pair in certs.d.
"""

import shutil

import pytest

from testlib import images, tools
from testlib.registry import Registry, RegistryTLS


@pytest.fixture(scope="module")
def mtls_registry(ca):
    server = ca.issue("mtls-server", server=True)
    client = ca.issue("harness-client", client=True)
    tls = RegistryTLS(cert=server.cert, key=server.key, ca=ca.cert, client_cas=[ca.cert],
                      harness_client=client)
    with Registry(name="mtls", tls=tls) as r:
        yield r


@pytest.fixture(scope="module")
def tls_image(tls_registry, tmp_path_factory):
    img = tmp_path_factory.mktemp("tls-img") / "img"
    images.make_image(img, seed=501, fmt="oci", layers=["gzip", "tar"])
    images.push(img, tls_registry.addr, "tls/img", "v1")   # skopeo, without verification
    return img


def test_refused_without_the_ca_with_a_clear_message(regfs, oracle, tls_registry, tls_image):
    ref = tls_registry.ref("tls/img", "v1")
    assert tools.skopeo("inspect", ref).returncode != 0   # skopeo refuses too
    p = regfs("inspect", ref)
    assert p.returncode == 1, p.stderr
    line = tools.one_line_error(p)
    assert "certificate" in line and "not trusted" in line, line
    assert "certs.d" in line and "--cert-dir" in line, line


def test_cert_dir_flag_on_every_command(regfs, oracle, tls_registry, tls_image, cert_dir, work):
    ref = tls_registry.ref("tls/img", "v1")
    p = regfs("inspect", "--cert-dir", cert_dir, ref)
    assert p.returncode == 0, p.stderr
    tools.assert_same_inspect(p, tools.skopeo("inspect", "--cert-dir", str(cert_dir), ref))
    p = regfs("list-tags", "--cert-dir", cert_dir, f"docker://{tls_registry.addr}/tls/img")
    assert p.returncode == 0, p.stderr
    assert '"v1"' in p.stdout
    out = work / "out"
    p = regfs("copy", "-q", "--src-cert-dir", cert_dir, ref, f"dir:{out}")
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(out, tls_image) == ""
    p = regfs("copy", "-q", "--dest-cert-dir", cert_dir, f"dir:{tls_image}",
              tls_registry.ref("tls/pushed", "v2"))
    assert p.returncode == 0, p.stderr
    assert tls_registry.has_manifest("tls/pushed", "v2")
    p = regfs("delete", "--cert-dir", cert_dir, tls_registry.ref("tls/pushed", "v2"))
    assert p.returncode == 0, p.stderr
    assert not tls_registry.has_manifest("tls/pushed", "v2")


def test_a_cert_dir_without_the_ca_is_still_refused(regfs, tls_registry, tls_image, work):
    empty = work / "empty"
    empty.mkdir()
    p = regfs("inspect", "--cert-dir", empty, tls_registry.ref("tls/img", "v1"))
    assert p.returncode == 1
    assert "not trusted" in tools.one_line_error(p)


def test_certs_d_in_the_home_directory(regfs, ca, tls_registry, tls_image, work):
    home = work / "home"
    ca.certs_d(home / ".config" / "containers" / "certs.d", tls_registry.addr)
    p = regfs("inspect", "--raw", tls_registry.ref("tls/img", "v1"), env={"HOME": str(home)},
              binary=True)
    assert p.returncode == 0, p.stderr
    assert tools.sha256_bytes(p.stdout) == tools.sha256_file(tls_image / "manifest.json")


def test_certs_d_roots_from_the_environment(regfs, ca, tls_registry, tls_image, work):
    root = work / "certs.d"
    ca.certs_d(root, tls_registry.addr)
    p = regfs("inspect", "--raw", tls_registry.ref("tls/img", "v1"),
              env={"REGFS_CERTS_D": f"{work}/nothing-here:{root}"})
    assert p.returncode == 0, p.stderr


def test_tls_verify_false_skips_verification(regfs, tls_registry, tls_image):
    p = regfs("inspect", "--tls-verify=false", "--raw", tls_registry.ref("tls/img", "v1"))
    assert p.returncode == 0, p.stderr


def test_client_certificate_from_certs_d(regfs, ca, mtls_registry, work):
    img = work / "img"
    images.make_image(img, seed=502, fmt="docker", layers=["gzip"])
    ref = mtls_registry.ref("mtls/img", "v1")
    # Trusting the server is not enough: the registry wants a client certificate.
    only_ca = work / "only-ca"
    ca.certs_d(only_ca, mtls_registry.addr)
    p = regfs("copy", "-q", f"dir:{img}", ref, env={"REGFS_CERTS_D": str(only_ca)})
    assert p.returncode == 1
    assert "client certificate" in tools.one_line_error(p)
    assert not mtls_registry.has_manifest("mtls/img", "v1")
    with_pair = work / "with-pair"
    ca.certs_d(with_pair, mtls_registry.addr, client=ca.issue("user", client=True))
    env = {"REGFS_CERTS_D": str(with_pair)}
    p = regfs("copy", "-q", f"dir:{img}", ref, env=env)
    assert p.returncode == 0, p.stderr
    assert mtls_registry.manifest_digest("mtls/img", "v1") == \
        tools.sha256_file(img / "manifest.json")
    p = regfs("copy", "-q", ref, f"dir:{work / 'back'}", env=env)
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "back", img) == ""


def test_a_client_certificate_without_its_key_is_an_error(regfs, ca, mtls_registry, work):
    d = ca.certs_d(work / "certs.d", mtls_registry.addr, client=ca.issue("u2", client=True))
    (d / "client.key").unlink()
    p = regfs("inspect", mtls_registry.ref("mtls/img", "v1"),
              env={"REGFS_CERTS_D": str(work / "certs.d")})
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert "client.key" in line and "client.cert" in line, line


def test_mount_uses_certs_d(mounts, ca, tls_registry, tls_image):
    # The mount reads certs.d from its HOME (the suite's private one); the registry's port is
    # its own, so no other test sees this directory.
    home = tools.private_home()
    d = ca.certs_d(f"{home}/.config/containers/certs.d", tls_registry.addr)
    try:
        m = mounts()
        img = m.image(tls_registry.addr, "tls/img", "v1")
        assert (img / "manifest.json").read_bytes() == (tls_image / "manifest.json").read_bytes()
        for blob in (p.name for p in tls_image.iterdir() if len(p.name) == 64):
            assert (img / blob).read_bytes() == (tls_image / blob).read_bytes()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_registries_conf_insecure_skips_verification(regfs, tls_registry, tls_image, work):
    conf = work / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{tls_registry.addr}"\ninsecure = true\n')
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf)}
    ref = tls_registry.ref("tls/img", "v1")
    p = regfs("inspect", "--raw", ref, env=env)
    assert p.returncode == 0, p.stderr
    # An explicit --tls-verify wins over registries.conf.
    p = regfs("inspect", "--raw", "--tls-verify=true", ref, env=env)
    assert p.returncode == 1
    assert "not trusted" in tools.one_line_error(p)


def test_login_verifies_tls_too(regfs, tls_registry, cert_dir, work):
    af = work / "auth.json"
    args = ["login", "-u", "someone", "--password-stdin", "--authfile", af]
    p = regfs(*args, tls_registry.addr, input="pw\n")
    assert p.returncode == 1
    assert "not trusted" in tools.one_line_error(p)
    assert not af.exists()
    # This registry asks for no credentials, so any are accepted once TLS is.
    p = regfs(*args, "--cert-dir", cert_dir, tls_registry.addr, input="pw\n")
    assert p.returncode == 0, p.stderr
    assert af.exists()


def test_a_proxy_in_the_environment_carries_plain_http_too(regfs, imgs):
    # With http_proxy set, plain HTTP goes through the proxy (here a loopback port nobody
    # listens on), unless no_proxy exempts the host.
    proxy_port = tools.free_port()
    env = {"http_proxy": f"http://127.0.0.1:{proxy_port}", "no_proxy": "", "NO_PROXY": ""}
    p = regfs("inspect", "--raw", imgs.oci.ref, env=env)
    assert p.returncode == 1
    assert f"port {proxy_port}" in p.stderr, p.stderr
    p = regfs("inspect", "--raw", imgs.oci.ref, env={**env, "no_proxy": "127.0.0.1"})
    assert p.returncode == 0, p.stderr
