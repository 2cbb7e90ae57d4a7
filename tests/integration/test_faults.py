"""regfs copy through the fault proxy: resumed resets, verified bytes, honoured Retry-After,
retried 503s, latency (issue #2).

The proxy sits in front of `registry` (and `proxy2` in front of `registry2`); regfs talks to
the proxy's plain-HTTP loopback port like to any loopback registry."""

import re

import pytest

from testlib import images, tools
from testlib.faultproxy import Fault

BIG_LAYER = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def big(registry, session_dir):
    """An image with one 2 MiB (incompressible) gzip layer, pushed as faults/big:v1."""
    return images.pushed_image(session_dir / "faults-big", registry, "faults/big", seed=51,
                               fmt="oci", layers=["gzip", "tar"], layer_size=[BIG_LAYER, 8192])


def _blob_path(img, i=0):
    return f"/blobs/{img.layers[i].digest}"


def _ok_to_dir(regfs, src, dest, *flags):
    p = regfs("copy", "-q", *flags, src, f"dir:{dest}", timeout=180)
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr}"
    return p


# ---- resets ------------------------------------------------------------------------------

def test_reset_mid_blob_resumes_with_range(regfs, proxy, big, work):
    bpath = _blob_path(big)
    proxy.add(Fault.reset_after(512 * 1024), method="GET", path=bpath, count=1)
    _ok_to_dir(regfs, proxy.ref("faults/big", "v1"), work / "out")
    assert tools.tree_diff(work / "out", big.path) == ""
    gets = proxy.requests("GET", bpath)
    assert gets[0].error == "reset", proxy.dump()
    resumed = [e for e in gets[1:] if e.range_start]
    assert resumed, "no Range request after the reset:\n" + proxy.dump()
    assert 0 < resumed[0].range_start <= 512 * 1024, proxy.dump()
    assert resumed[0].status == 206, proxy.dump()
    # it resumed: far less than the whole blob again
    assert sum(e.body_bytes for e in gets) < big.layers[0].size * 1.5, proxy.dump()


def test_two_resets_in_one_blob(regfs, proxy, big, work):
    bpath = _blob_path(big)
    proxy.add(Fault.reset_after(300 * 1024), method="GET", path=bpath, count=2)
    _ok_to_dir(regfs, proxy.ref("faults/big", "v1"), work / "out")
    assert tools.tree_diff(work / "out", big.path) == ""
    assert len([e for e in proxy.requests("GET", bpath) if e.error == "reset"]) == 2


def test_reset_mid_blob_in_registry_to_registry_copy(regfs, proxy, registry2, big,
                                                     repo_name):
    """A reset while a blob streams from one registry to another resumes too, and the
    pushed blob is whole."""
    bpath = _blob_path(big)
    proxy.add(Fault.reset_after(700 * 1024), method="GET", path=bpath, count=1)
    repo = repo_name("faults")
    p = regfs("copy", "-q", proxy.ref("faults/big", "v1"), registry2.ref(repo, "r"),
              timeout=180)
    assert p.returncode == 0, p.stderr
    assert registry2.manifest_digest(repo, "r") == big.digest
    got = registry2.get(f"/v2/{repo}/blobs/{big.layers[0].digest}")
    assert got.status == 200 and tools.sha256_bytes(got.body) == big.layers[0].digest
    assert any(e.range_start for e in proxy.requests("GET", bpath)), proxy.dump()


# ---- wrong bytes -------------------------------------------------------------------------

def _mentions_digest(line, digest):
    return "digest" in line.lower() or digest[7:19] in line


def test_flipped_byte_fails_copy_to_dir(regfs, proxy, imgs, work):
    blob = imgs.oci.image.layers[0]
    proxy.add(Fault.flip_byte(), method="GET", path=f"/blobs/{blob.digest}", forever=True)
    dest = work / "out"
    p = regfs("copy", "-q", proxy.ref(imgs.oci.repo, "v1"), f"dir:{dest}", timeout=180)
    assert p.returncode == 1, (p.returncode, p.stderr)
    line = tools.one_line_error(p)
    assert _mentions_digest(line, blob.digest), line
    assert not dest.exists(), tools.tree_files(dest)
    assert any("flip" in e.faults for e in proxy.requests()), proxy.dump()


def test_flipped_byte_in_uncompressed_layer_fails(regfs, proxy, imgs, work):
    blob = imgs.oci.image.layers[1]   # "tar"
    proxy.add(Fault.flip_byte(offset=700), method="GET", path=f"/blobs/{blob.digest}",
              forever=True)
    dest = work / "out"
    p = regfs("copy", "-q", proxy.ref(imgs.oci.repo, "v1"), f"dir:{dest}", timeout=180)
    assert p.returncode == 1
    assert _mentions_digest(tools.one_line_error(p), blob.digest)
    assert not dest.exists()


def no_known_locations(work):
    """An empty blob-location cache: else registry2 may already hold the good blob in another
    repository, and a mount from there would (rightly) make the copy succeed."""
    return {"XDG_CACHE_HOME": str(work / "empty-cache")}


def test_flipped_byte_fails_copy_to_registry_without_tag(regfs, proxy, registry2, imgs,
                                                         repo_name, work):
    blob = imgs.docker.image.layers[-1]
    proxy.add(Fault.flip_byte(), method="GET", path=f"/blobs/{blob.digest}", forever=True)
    repo = repo_name("faults")
    p = regfs("copy", "-q", proxy.ref(imgs.docker.repo, "v1"), registry2.ref(repo, "bad"),
              timeout=180, env=no_known_locations(work))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert _mentions_digest(tools.one_line_error(p), blob.digest)
    assert registry2.tags(repo) == []
    assert not registry2.has_manifest(repo, imgs.docker.digest)
    assert not registry2.has_blob(repo, blob.digest)


def test_flipped_byte_in_manifest_fails(regfs, proxy, registry, imgs, work):
    """A manifest fetched by digest must hash to that digest."""
    proxy.add(Fault.flip_byte(offset=30), method="GET", path=f"/manifests/{imgs.oci.digest}",
              forever=True)
    dest = work / "out"
    p = regfs("copy", "-q", proxy.ref(imgs.oci.repo, imgs.oci.digest), f"dir:{dest}",
              timeout=180)
    assert p.returncode == 1
    assert _mentions_digest(tools.one_line_error(p), imgs.oci.digest)
    assert not dest.exists()


def test_flipped_byte_in_index_instance_fails_all(regfs, proxy, registry2, imgs, repo_name,
                                                  work):
    inst = imgs.oci_index.image.instance("linux", "arm64")
    proxy.add(Fault.flip_byte(), method="GET", path=f"/blobs/{inst.layers[0].digest}",
              forever=True)
    repo = repo_name("faults")
    p = regfs("copy", "-q", "--all", proxy.ref(imgs.oci_index.repo, "v1"),
              registry2.ref(repo, "bad"), timeout=180, env=no_known_locations(work))
    assert p.returncode == 1
    tools.one_line_error(p)
    assert registry2.tags(repo) == []
    assert not registry2.has_manifest(repo, imgs.oci_index.digest)
    dest = work / "out"
    p = regfs("copy", "-q", "--all", proxy.ref(imgs.oci_index.repo, "v1"), f"dir:{dest}",
              timeout=180)
    assert p.returncode == 1
    assert not dest.exists()


# ---- 429 / 503 ---------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_429_retry_after_is_honoured(regfs, proxy, imgs, work, what):
    path = (f"/manifests/{imgs.docker.tag}$" if what == "manifest"
            else f"/blobs/{imgs.docker.image.layers[0].digest}$")
    proxy.add(Fault.status(429, retry_after=2), method="GET", path=path, count=1)
    _ok_to_dir(regfs, proxy.ref(imgs.docker.repo, "v1"), work / "out")
    assert tools.tree_diff(work / "out", imgs.docker.dir) == ""
    hits = [e for e in proxy.requests(path=path) if e.method in ("GET", "HEAD")]
    first429 = next(i for i, e in enumerate(hits) if e.status == 429)
    assert len(hits) > first429 + 1, proxy.dump()
    gap = hits[first429 + 1].start - hits[first429].end
    assert gap >= 1.8, f"next request after 429 came {gap:.2f}s later\n" + proxy.dump()
    assert gap < 30


@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_503_twice_then_success(regfs, proxy, imgs, work, what):
    path = (f"/manifests/{imgs.oci.tag}$" if what == "manifest"
            else f"/blobs/{imgs.oci.image.layers[2].digest}$")
    proxy.add(Fault.status(503), method="GET", path=path, count=2)
    _ok_to_dir(regfs, proxy.ref(imgs.oci.repo, "v1"), work / "out")
    assert tools.tree_diff(work / "out", imgs.oci.dir) == ""
    statuses = [e.status for e in proxy.requests("GET", path)]
    assert statuses[:2] == [503, 503] and statuses[2] in (200, 206), proxy.dump()


def test_503_forever_fails_cleanly(regfs, proxy, imgs, work):
    proxy.add(Fault.status(503), method="GET", path=f"/blobs/{imgs.oci.image.layers[0].digest}",
              forever=True)
    dest = work / "out"
    p = regfs("copy", "-q", "--retry-times", "1", proxy.ref(imgs.oci.repo, "v1"), f"dir:{dest}",
              timeout=180)
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert re.search(r"503|unavailable", line, re.I), line
    assert not dest.exists()


def test_503_on_destination_upload_fails_without_tag(regfs, proxy2, registry2, imgs,
                                                     repo_name):
    # every upload request (POST, PATCH, PUT; monolithic or chunked) answers 503
    proxy2.add(Fault.status(503), path=r"/blobs/uploads/", forever=True)
    repo = repo_name("faults")
    p = regfs("copy", "-q", "--retry-times", "1", imgs.oci.ref, proxy2.ref(repo, "t"),
              timeout=180)
    assert p.returncode == 1
    tools.one_line_error(p)
    assert registry2.tags(repo) == []


# ---- latency and bandwidth ----------------------------------------------------------------

def test_latency_and_bandwidth_do_not_break_copies(regfs, proxy, proxy2, registry2, big, imgs,
                                                   work, repo_name):
    proxy.add(Fault.latency(0.05), forever=True)
    proxy.add(Fault.bandwidth(4 * 1024 * 1024), method="GET", path="/blobs/", forever=True)
    proxy2.add(Fault.latency(0.05), forever=True)
    _ok_to_dir(regfs, proxy.ref("faults/big", "v1"), work / "big")
    assert tools.tree_diff(work / "big", big.path) == ""
    _ok_to_dir(regfs, proxy.ref(imgs.docker_list.repo, "v1"), work / "list", "--all")
    assert tools.tree_diff(work / "list", imgs.docker_list.dir) == ""
    repo = repo_name("faults")
    p = regfs("copy", "-q", "--all", proxy.ref(imgs.oci_index.repo, "v1"),
              proxy2.ref(repo, "slow"), timeout=180)
    assert p.returncode == 0, p.stderr
    assert registry2.manifest_digest(repo, "slow") == imgs.oci_index.digest
    assert all(not e.error for e in proxy.requests() + proxy2.requests())


def test_inspect_and_list_tags_through_faults(regfs, oracle, proxy, registry, imgs):
    proxy.add(Fault.status(503), method="GET", path="/tags/list", count=1)
    proxy.add(Fault.status(429, retry_after=1), method="GET", path="/manifests/", count=1)
    p = regfs("inspect", proxy.ref(imgs.oci.repo, "v1"), timeout=120)
    assert p.returncode == 0, p.stderr
    # the same as regfs says without faults (skopeo parity is test_inspect.py's business)
    direct = regfs("inspect", imgs.oci.ref)
    assert direct.returncode == 0, direct.stderr
    assert p.stdout == direct.stdout.replace(registry.addr, proxy.addr)
    assert [e.status for e in proxy.requests("GET", "/manifests/")][:2] == [429, 200]
    proxy.add(Fault.status(503), method="GET", path="/tags/list", count=2)
    ref = f"docker://{proxy.addr}/{imgs.oci.repo}"
    p = regfs("list-tags", ref, timeout=120)
    assert p.returncode == 0, p.stderr
    want = oracle.list_tags(f"docker://{registry.addr}/{imgs.oci.repo}").stdout
    assert p.stdout == want.replace(registry.addr, proxy.addr)
    assert [e.status for e in proxy.requests("GET", "/tags/list")][-3:] == [503, 503, 200]


# ---- a manifest PUT whose answer is lost ----------------------------------------------------

@pytest.mark.parametrize("times", [1, 5])
def test_manifest_put_whose_answer_is_lost_is_a_push(regfs, proxy2, registry2, imgs,
                                                     repo_name, times):
    """The registry stores the manifest, then the connection breaks before its answer (once,
    or on every attempt): the push happened, so the copy succeeds — it must not report a
    failure while the tag is there."""
    drop = proxy2.add(Fault.drop(when="answered"), method="PUT", path=r"/manifests/",
                      count=times)
    repo = repo_name("faults")
    p = regfs("copy", "-q", imgs.oci.ref, proxy2.ref(repo, "t"), timeout=180)
    assert drop.fired >= 1, proxy2.dump()
    assert p.returncode == 0, (p.stderr, proxy2.dump())
    assert registry2.manifest_digest(repo, "t") == imgs.oci.digest


def test_manifest_put_that_never_arrives_fails_without_tag(regfs, proxy2, registry2, imgs,
                                                           repo_name):
    proxy2.add(Fault.drop(when="before"), method="PUT", path=r"/manifests/", forever=True)
    repo = repo_name("faults")
    p = regfs("copy", "-q", imgs.oci.ref, proxy2.ref(repo, "t"), timeout=180)
    assert p.returncode == 1, (p.stderr, proxy2.dump())
    assert "writing manifest" in tools.one_line_error(p)
    assert registry2.tags(repo) == []
