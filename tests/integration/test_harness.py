"""The test harness itself, checked with skopeo and plain HTTP only (no regfs): if these
fail, a failure elsewhere says nothing about regfs."""

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testlib import images, tools
from testlib.faultproxy import Fault


def test_generated_images_are_deterministic(work):
    a = images.make_image(work / "a", seed=5, fmt="oci", layers=["gzip", "tar"])
    b = images.make_image(work / "b", seed=5, fmt="oci", layers=["gzip", "tar"])
    c = images.make_image(work / "c", seed=6, fmt="oci", layers=["gzip", "tar"])
    assert tools.tree_diff(a.path, b.path) == ""
    assert a.digest == b.digest != c.digest
    i1 = images.make_index(work / "i1", seed=5, fmt="docker")
    i2 = images.make_index(work / "i2", seed=5, fmt="docker")
    assert tools.tree_diff(i1.path, i2.path) == ""


def test_generated_image_content(work):
    img = images.make_image(work / "x", seed=7, fmt="docker", layers=["gzip", "tar", "gzip"])
    m = json.loads((img.path / "manifest.json").read_bytes())
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [layer["mediaType"].rsplit(".", 1)[-1] for layer in m["layers"]] == \
        ["gzip", "tar", "gzip"]
    cfg = json.loads((img.path / m["config"]["digest"][7:]).read_bytes())
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux"
    assert len(cfg["rootfs"]["diff_ids"]) == 3
    for name in tools.tree_files(img.path):
        if name not in ("version", "manifest.json"):
            assert tools.sha256_file(img.path / name) == "sha256:" + name
    assert (img.path / "version").read_bytes() == b"Directory Transport Version: 1.1\n"


@pytest.mark.parametrize("name", ["oci", "docker", "oci_index", "docker_list"])
def test_skopeo_reads_back_generated_images(imgs, oracle, work, name):
    """Generated dir: layouts are exactly what skopeo writes for the pushed image."""
    it = getattr(imgs, name)
    flags = ["--all"] if it.image.is_index else []
    oracle.copy(it.ref, f"dir:{work / 'out'}", *flags)
    assert tools.tree_diff(work / "out", it.dir) == ""
    assert oracle.digest_of(it.ref) == it.digest


def test_registry_with_auth(auth_registry, oracle, work):
    img = images.make_image(work / "img", seed=21)
    assert auth_registry.get("/v2/", auth=False).status == 401
    images.push(img.path, auth_registry.addr, "auth/x", "v1", creds=auth_registry.creds)
    p = oracle.inspect(auth_registry.ref("auth/x", "v1"), check=False)
    assert p.returncode != 0
    assert auth_registry.has_manifest("auth/x", "v1")


def test_proxy_passthrough_push_and_pull(proxy, registry, oracle, work, imgs, repo_name):
    """skopeo pushes and pulls through the proxy; digests survive; the log sees it all."""
    repo = repo_name("px")
    oracle.copy(f"dir:{imgs.oci_index.dir}", proxy.ref(repo, "t"), "--all",
                "--preserve-digests")
    assert registry.manifest_digest(repo, "t") == imgs.oci_index.digest
    oracle.copy(proxy.ref(repo, "t"), f"dir:{work / 'out'}", "--all")
    assert tools.tree_diff(work / "out", imgs.oci_index.dir) == ""
    methods = {e.method for e in proxy.requests(path=repo)}
    assert {"HEAD", "POST", "PATCH", "PUT", "GET"} <= methods, proxy.dump()
    assert all(e.status and not e.error for e in proxy.requests()), proxy.dump()


def _raw(proxy, method, path, headers=None, body=None, encode_chunked=False):
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    c.request(method, path, body=body, headers=headers or {}, encode_chunked=encode_chunked)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def test_proxy_range_head_and_chunked_upload(proxy, registry, imgs, repo_name):
    blob = imgs.oci.image.layers[0]
    path = f"/v2/{imgs.oci.repo}/blobs/{blob.digest}"
    r, data = _raw(proxy, "GET", path, {"Range": "bytes=100-199"})
    assert r.status == 206 and data == blob.data[100:200]
    r, data = _raw(proxy, "HEAD", path)
    assert r.status == 200 and data == b"" and int(r.getheader("Content-Length")) == blob.size
    # a monolithic upload with a chunked request body
    repo = repo_name("px")
    r, _ = _raw(proxy, "POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status == 202
    loc = r.getheader("Location")
    assert f"127.0.0.1:{proxy.port}" in loc  # the registry names the proxy: Host passed on
    payload = b"chunky" * 50000
    loc_path = loc.split(f"127.0.0.1:{proxy.port}", 1)[1]
    sep = "&" if "?" in loc_path else "?"
    digest = tools.sha256_bytes(payload)
    pieces = (payload[i:i + 7000] for i in range(0, len(payload), 7000))
    r, _ = _raw(proxy, "PUT", f"{loc_path}{sep}digest={digest}",
                {"Content-Type": "application/octet-stream"}, body=pieces, encode_chunked=True)
    assert r.status == 201, proxy.dump()
    assert registry.has_blob(repo, digest)
    assert proxy.requests("GET", path)[0].range == "bytes=100-199"


def test_proxy_faults_seen_by_skopeo(proxy, imgs, oracle, work):
    blob = imgs.oci.image.layers[0]
    bpath = f"/blobs/{blob.digest}"
    # one flipped byte: skopeo notices the digest mismatch
    proxy.add(Fault.flip_byte(), method="GET", path=bpath, count=1)
    p = oracle.copy(proxy.ref(imgs.oci.repo, "v1"), f"dir:{work / 'a'}", check=False)
    assert p.returncode == 1 and "Digest did not match" in p.stderr, p.stderr
    # a reset after 10000 bytes
    proxy.add(Fault.reset_after(10000), method="GET", path=bpath, count=1)
    p = oracle.copy(proxy.ref(imgs.oci.repo, "v1"), f"dir:{work / 'b'}", check=False)
    assert p.returncode == 1 and "reset" in p.stderr, p.stderr
    e = [x for x in proxy.requests("GET", bpath) if x.faults == ["reset"]][0]
    assert e.body_bytes == 10000 and e.error == "reset"
    # 503 twice on the manifest (skopeo 1.9 retries no 503), then a normal answer
    proxy.add(Fault.status(503), method="GET", path="/manifests/v1", count=2)
    for d in ("c", "d"):
        p = oracle.copy(proxy.ref(imgs.oci.repo, "v1"), f"dir:{work / d}", check=False)
        assert p.returncode == 1 and "503" in p.stderr, p.stderr
    oracle.copy(proxy.ref(imgs.oci.repo, "v1"), f"dir:{work / 'e'}")
    assert [x.status for x in proxy.requests("GET", "/manifests/v1")][-3:] == [503, 503, 200]
    assert tools.tree_diff(work / "e", imgs.oci.dir) == ""


def test_proxy_latency_bandwidth_and_429(proxy, imgs, oracle, work):
    blob = max(imgs.oci.image.layers, key=lambda b: b.size)
    bpath = f"/blobs/{blob.digest}"
    proxy.add(Fault.latency(0.3), method="GET", path="/manifests/", count=1)
    proxy.add(Fault.bandwidth(200_000), method="GET", path=bpath, count=1)
    proxy.add(Fault.status(429, retry_after=1), method="GET", path="/manifests/", count=1)
    t0 = time.monotonic()
    oracle.copy(proxy.ref(imgs.oci.repo, "v1"), f"dir:{work / 'a'}", "--retry-times=2")
    took = time.monotonic() - t0
    assert tools.tree_diff(work / "a", imgs.oci.dir) == ""
    m = proxy.requests("GET", "/manifests/")
    assert m[0].status == 429 and m[0].end - m[0].start >= 0.3
    assert m[1].start - m[0].end >= 0.9, proxy.dump()
    b = proxy.requests("GET", bpath)[0]
    assert b.end - b.start >= blob.size / 200_000 * 0.8
    assert took >= 1.0


def test_proxy_reset_then_range_resume(proxy, imgs):
    """What a resuming client sees: a reset after N bytes, then a 206 for bytes=N-."""
    blob = max(imgs.oci.image.layers, key=lambda b: b.size)
    path = f"/v2/{imgs.oci.repo}/blobs/{blob.digest}"
    proxy.add(Fault.reset_after(20000), method="GET", path=path, count=1)
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) == blob.size
    got = b""
    with pytest.raises((ConnectionError, http.client.IncompleteRead)):
        while True:
            piece = r.read1(4096)
            if not piece:
                raise http.client.IncompleteRead(got)
            got += piece
    c.close()
    # every byte sent before the reset reaches the client (faultproxy waits for its ACK)
    assert len(got) == 20000 and got == blob.data[:len(got)]
    r, rest = _raw(proxy, "GET", path, {"Range": f"bytes={len(got)}-"})
    assert r.status == 206 and got + rest == blob.data
    log = proxy.requests("GET", path)
    assert log[0].error == "reset" and log[1].range_start == len(got)


def test_proxy_keeps_client_connections_alive(proxy, imgs):
    """Several requests, with and without bodies, on one client connection."""
    blob = imgs.oci.image.layers[0]
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    for method, path in [("GET", "/v2/"), ("GET", f"/v2/{imgs.oci.repo}/manifests/v1"),
                         ("HEAD", f"/v2/{imgs.oci.repo}/blobs/{blob.digest}"),
                         ("GET", f"/v2/{imgs.oci.repo}/blobs/{blob.digest}"),
                         ("GET", "/v2/nothing/here/manifests/x"), ("GET", "/v2/")]:
        c.request(method, path, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        r = c.getresponse()
        r.read()
        assert r.status in (200, 404), (method, path, r.status)
    c.close()
    assert [e.status for e in proxy.requests()] == [200, 200, 200, 200, 404, 200], proxy.dump()
    assert all(not e.error for e in proxy.requests()), proxy.dump()


def test_a_skip_fails_under_ci(work):
    """testlib/ci.py: a skipped test (pytest.skip, skipif) is a failure, with its reason,
    when CI=true; otherwise a skip."""
    tests_dir = Path(__file__).resolve().parents[1]
    (work / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(tests_dir)!r})\n"
        "from testlib.ci import pytest_runtest_makereport  # noqa: F401\n")
    (work / "test_probe.py").write_text(
        "import pytest\n\n"
        "def test_skips():\n    pytest.skip('no such device here')\n\n"
        "@pytest.mark.skipif(True, reason='not on this kernel')\n"
        "def test_marked():\n    pass\n\n"
        "def test_runs():\n    pass\n")

    def probe(ci):
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        if ci is not None:
            env["CI"] = ci
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p",
                               "no:cacheprovider", str(work)], capture_output=True, text=True,
                              env=env, cwd=work, timeout=120, stdin=subprocess.DEVNULL)

    p = probe("true")
    assert p.returncode == 1, p.stdout + p.stderr
    # (a skipif mark skips in setup, so that one is an error)
    assert "1 failed, 1 passed, 1 error" in p.stdout, p.stdout
    assert "no such device here" in p.stdout and "not on this kernel" in p.stdout, p.stdout
    for ci in (None, "false"):
        p = probe(ci)
        assert p.returncode == 0 and "1 passed, 2 skipped" in p.stdout, p.stdout + p.stderr
