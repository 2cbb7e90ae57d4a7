"""Credentials never follow a redirect to another host: a registry (htpasswd) behind a proxy
that answers blob GETs with 307 to a server on another loopback port, as object-storage
backends do. That server's request log shows no Authorization header, and the pull still
verifies every blob."""

import pytest

from testlib import images, tools
from testlib.blobredirect import BlobHost, RedirectingProxy


@pytest.fixture(scope="module")
def pushed(auth_registry, tmp_path_factory):
    return images.pushed_image(tmp_path_factory.mktemp("redirect-img") / "img", auth_registry,
                               "redirect/img", seed=801, fmt="oci", layers=["gzip", "tar"]).path


@pytest.mark.parametrize("how", ["creds", "authfile"])
def test_blob_redirect_to_another_host_carries_no_credentials(regfs, auth_registry, pushed, work,
                                                             how):
    if how == "creds":
        cred_flags = ["--src-creds", auth_registry.creds]
    else:
        p = regfs("login", "-u", "alice", "--password-stdin", "--authfile", work / "auth.json",
                  auth_registry.addr, input="wonderland\n")
        assert p.returncode == 0, p.stderr
        cred_flags = ["--authfile", str(work / "auth.json")]
    with BlobHost(pushed) as blobs, RedirectingProxy(auth_registry.addr, blobs) as px:
        if how == "authfile":
            # The file names the registry as the client sees it: the proxy's address.
            text = (work / "auth.json").read_text().replace(auth_registry.addr, px.addr)
            (work / "auth.json").write_text(text)
        src = f"docker://{px.addr}/redirect/img:v1"
        p = regfs("copy", "-q", *cred_flags, src, f"dir:{work / 'out'}")
        assert p.returncode == 0, p.stderr
        assert tools.tree_diff(work / "out", pushed) == ""
        blob_requests = list(blobs.log)
        proxied = list(px.log)
    # The registry itself got the credentials ...
    assert any("authorization" in r["headers"] for r in proxied
               if "/manifests/" in r["path"]), proxied
    # ... and the blobs came from the other host, which never saw them.
    assert len(blob_requests) == 3, blob_requests   # config and two layers
    for r in blob_requests:
        assert "authorization" not in r["headers"], r
        assert "cookie" not in r["headers"], r
