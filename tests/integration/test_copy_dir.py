"""`regfs copy docker://… dir:D` writes what `skopeo copy docker://… dir:D` writes: the same
file names with the same bytes (issue #2)."""

import pytest

from testlib.standard import ALL_IMAGES, MULTI, SINGLE
from testlib import images, tools


def _both(regfs_ok, oracle, work, src, *flags):
    """Copy src to dir: with regfs and with skopeo; return (regfs_dir, skopeo_dir)."""
    mine, theirs = work / "regfs", work / "skopeo"
    regfs_ok("copy", "-q", *flags, src, f"dir:{mine}")
    oracle.copy(src, f"dir:{theirs}", *flags)
    return mine, theirs


@pytest.mark.parametrize("name", SINGLE)
def test_single_image_to_dir_matches_skopeo(regfs_ok, oracle, imgs, work, name):
    it = getattr(imgs, name)
    mine, theirs = _both(regfs_ok, oracle, work, it.ref)
    assert tools.tree_diff(mine, theirs) == ""
    assert tools.tree_diff(mine, it.dir) == ""   # and it is the image that was pushed


@pytest.mark.parametrize("name", MULTI)
def test_index_all_to_dir_matches_skopeo(regfs_ok, oracle, imgs, work, name):
    it = getattr(imgs, name)
    mine, theirs = _both(regfs_ok, oracle, work, it.ref, "--all")
    assert tools.tree_diff(mine, theirs) == ""
    assert tools.tree_diff(mine, it.dir) == ""
    # every instance manifest is there under its own name
    for inst in it.image.instances:
        assert (mine / (inst.digest[7:] + ".manifest.json")).read_bytes() == inst.manifest


@pytest.mark.parametrize("name", MULTI)
def test_index_without_all_copies_the_amd64_instance(regfs_ok, oracle, imgs, work, name):
    it = getattr(imgs, name)
    mine, theirs = _both(regfs_ok, oracle, work, it.ref)
    assert tools.tree_diff(mine, theirs) == ""
    amd64 = it.image.instance("linux", "amd64")
    assert (mine / "manifest.json").read_bytes() == amd64.manifest
    assert sorted(tools.tree_files(mine)) == sorted(
        ["manifest.json", "version", amd64.config.digest[7:]]
        + [b.digest[7:] for b in amd64.layers])


@pytest.mark.parametrize("name", ["oci", "oci_index"])
def test_copy_by_digest_reference(regfs_ok, oracle, registry, imgs, work, name):
    it = getattr(imgs, name)
    ref = registry.ref(it.repo, it.digest)
    flags = ["--all"] if it.image.is_index else []
    mine, theirs = _both(regfs_ok, oracle, work, ref, *flags)
    assert tools.tree_diff(mine, theirs) == ""
    assert tools.sha256_file(mine / "manifest.json") == it.digest


def test_copy_instance_by_digest(regfs_ok, oracle, registry, imgs, work):
    """An instance of an index, addressed by its digest, is a plain image."""
    inst = imgs.oci_index.image.instance("linux", "arm64")
    mine, theirs = _both(regfs_ok, oracle, work, registry.ref(imgs.oci_index.repo, inst.digest))
    assert tools.tree_diff(mine, theirs) == ""
    assert (mine / "manifest.json").read_bytes() == inst.manifest


def test_existing_empty_dir_is_used(regfs_ok, imgs, work):
    dest = work / "empty"
    dest.mkdir()
    regfs_ok("copy", "-q", imgs.docker.ref, f"dir:{dest}")
    assert tools.tree_diff(dest, imgs.docker.dir) == ""


def test_existing_image_dir_is_replaced_like_skopeo(regfs_ok, oracle, imgs, work):
    """An existing image directory is overwritten; nothing of the old image stays (what
    skopeo does too)."""
    mine, theirs = work / "regfs", work / "skopeo"
    for d in (mine, theirs):
        images.make_image(d, seed=99, fmt="oci", layers=["gzip"])
    regfs_ok("copy", "-q", imgs.docker.ref, f"dir:{mine}")
    oracle.copy(imgs.docker.ref, f"dir:{theirs}")
    assert tools.tree_diff(theirs, imgs.docker.dir) == ""   # skopeo's behaviour
    assert tools.tree_diff(mine, theirs) == ""


def test_quiet_copy_prints_nothing(regfs_ok, imgs, work):
    p = regfs_ok("copy", "-q", imgs.oci.ref, f"dir:{work / 'q'}")
    assert p.stdout == "" and p.stderr == ""


def test_dir_to_dir_and_oci_to_dir_match_skopeo(regfs_ok, oracle, imgs, work):
    """Local sources: dir: → dir: is a byte copy; oci: → dir: matches skopeo."""
    regfs_ok("copy", "-q", "--all", f"dir:{imgs.oci_index.dir}", f"dir:{work / 'd2d'}")
    assert tools.tree_diff(work / "d2d", imgs.oci_index.dir) == ""
    layout = work / "layout"
    oracle.copy(imgs.oci.ref, f"oci:{layout}:v1", "--preserve-digests")
    mine, theirs = _both(regfs_ok, oracle, work, f"oci:{layout}:v1")
    assert tools.tree_diff(mine, theirs) == ""
    assert tools.tree_diff(mine, imgs.oci.dir) == ""


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_image_parallel_copies_and_retry_flags_accepted(regfs_ok, imgs, work, name):
    it = getattr(imgs, name)
    flags = ["--all"] if it.image.is_index else []
    regfs_ok("copy", "-q", "--image-parallel-copies", "1", "--retry-times", "2", *flags,
             it.ref, f"dir:{work / 'p1'}")
    regfs_ok("copy", "-q", "--image-parallel-copies=8", *flags, it.ref, f"dir:{work / 'p8'}")
    assert tools.tree_diff(work / "p1", it.dir) == ""
    assert tools.tree_diff(work / "p8", it.dir) == ""
