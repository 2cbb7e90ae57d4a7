"""skopeo reads what regfs writes and regfs reads what skopeo writes, digest for digest, in
the dir: and oci: layouts (issue #2)."""

import json

import pytest

from testlib import tools
from testlib.standard import ALL_IMAGES

OCI_IMAGES = ["oci", "oci_index"]   # a Docker list cannot go to oci: digest-preserved


def _flags(it):
    return ["--all"] if it.image.is_index else []


def _check_pushed(registry, repo, tag, it):
    """The registry has repo:tag with the image's digest, and every instance and blob."""
    assert registry.manifest_digest(repo, tag) == it.digest
    for inst in it.image.instances:
        assert registry.manifest_digest(repo, inst.digest) == inst.digest
    for digest in it.image.blobs():
        assert registry.has_blob(repo, digest), digest


# ---- regfs writes, skopeo reads ------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_IMAGES)
def test_skopeo_reads_regfs_dir(regfs_ok, oracle, registry, imgs, work, repo_name, name):
    it = getattr(imgs, name)
    out = work / "regfs-dir"
    regfs_ok("copy", "-q", *_flags(it), it.ref, f"dir:{out}")
    # skopeo inspect of regfs's directory equals skopeo inspect of its own
    oracle.copy(it.ref, f"dir:{work / 'skopeo-dir'}", *_flags(it))
    assert oracle.inspect(f"dir:{out}").stdout == \
        oracle.inspect(f"dir:{work / 'skopeo-dir'}").stdout
    assert oracle.inspect(f"dir:{out}", "--raw", binary=True).stdout == it.image.manifest
    # skopeo pushes it back, digest preserved
    repo = repo_name("interop")
    oracle.copy(f"dir:{out}", registry.ref(repo, "back"), "--preserve-digests", *_flags(it))
    _check_pushed(registry, repo, "back", it)


@pytest.mark.parametrize("name", OCI_IMAGES)
def test_skopeo_reads_regfs_oci(regfs_ok, oracle, registry, imgs, work, repo_name, name):
    it = getattr(imgs, name)
    layout = work / "regfs-oci"
    regfs_ok("copy", "-q", *_flags(it), it.ref, f"oci:{layout}:mytag")
    assert oracle.inspect(f"oci:{layout}:mytag", "--raw", binary=True).stdout == \
        it.image.manifest
    info = json.loads(oracle.inspect(f"oci:{layout}:mytag").stdout)
    assert info["Digest"] == it.digest   # for an index too: skopeo names the top manifest
    repo = repo_name("interop")
    oracle.copy(f"oci:{layout}:mytag", registry.ref(repo, "back"), "--preserve-digests",
                *_flags(it))
    _check_pushed(registry, repo, "back", it)


@pytest.mark.parametrize("name", OCI_IMAGES)
def test_regfs_oci_layout_matches_skopeo(regfs_ok, oracle, imgs, work, name):
    """Same oci-layout, same index.json (parsed), same blobs as skopeo --preserve-digests."""
    it = getattr(imgs, name)
    regfs_ok("copy", "-q", *_flags(it), it.ref, f"oci:{work / 'mine'}:v1")
    oracle.copy(it.ref, f"oci:{work / 'theirs'}:v1", "--preserve-digests", *_flags(it))
    assert tools.oci_layout_summary(work / "mine") == tools.oci_layout_summary(work / "theirs")


def test_regfs_adds_a_second_ref_to_an_oci_layout(regfs_ok, oracle, imgs, work):
    """A second image under another ref joins the layout; both refs stay readable."""
    layout = work / "layout"
    regfs_ok("copy", "-q", imgs.oci.ref, f"oci:{layout}:one")
    regfs_ok("copy", "-q", "--all", imgs.oci_index.ref, f"oci:{layout}:two")
    idx = json.loads((layout / "index.json").read_text())
    refs = sorted(m["annotations"]["org.opencontainers.image.ref.name"]
                  for m in idx["manifests"])
    assert refs == ["one", "two"]
    assert oracle.digest_of(f"oci:{layout}:one") == imgs.oci.digest
    assert oracle.digest_of(f"oci:{layout}:two") == imgs.oci_index.digest


# ---- skopeo writes, regfs reads ------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_IMAGES)
def test_regfs_reads_skopeo_dir(regfs_ok, oracle, registry, imgs, work, repo_name, name):
    it = getattr(imgs, name)
    src = work / "skopeo-dir"
    oracle.copy(it.ref, f"dir:{src}", *_flags(it))
    repo = repo_name("interop")
    regfs_ok("copy", "-q", *_flags(it), f"dir:{src}", registry.ref(repo, "pushed"))
    want = tools.skopeo("manifest-digest", src / "manifest.json", check=True).stdout.strip()
    assert want == it.digest
    assert oracle.digest_of(registry.ref(repo, "pushed")) == want
    _check_pushed(registry, repo, "pushed", it)


@pytest.mark.parametrize("name", OCI_IMAGES)
def test_regfs_reads_skopeo_oci(regfs_ok, oracle, registry, imgs, work, repo_name, name):
    it = getattr(imgs, name)
    layout = work / "skopeo-oci"
    oracle.copy(it.ref, f"oci:{layout}:src", "--preserve-digests", *_flags(it))
    repo = repo_name("interop")
    regfs_ok("copy", "-q", *_flags(it), f"oci:{layout}:src", registry.ref(repo, "pushed"))
    assert oracle.digest_of(registry.ref(repo, "pushed")) == it.digest
    _check_pushed(registry, repo, "pushed", it)
    # and oci: → dir: gives what skopeo gives
    regfs_ok("copy", "-q", *_flags(it), f"oci:{layout}:src", f"dir:{work / 'mine'}")
    oracle.copy(f"oci:{layout}:src", f"dir:{work / 'theirs'}", *_flags(it))
    assert tools.tree_diff(work / "mine", work / "theirs") == ""
