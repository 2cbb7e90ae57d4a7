"""Digests survive docker:// → docker:// copies, within one registry (another repository)
and between two registries, single- and multi-platform (issue #2)."""

import pytest

from testlib.standard import ALL_IMAGES, MULTI, SINGLE


def _flags(it):
    return ["--all"] if it.image.is_index else []


def _check_copy(reg, repo, tag, it):
    assert reg.manifest_digest(repo, tag) == it.digest
    assert reg.manifest(repo, tag).body == it.image.manifest
    for inst in it.image.instances:
        assert reg.manifest(repo, inst.digest).body == inst.manifest
    for digest in it.image.blobs():
        assert reg.has_blob(repo, digest), f"{digest} missing in {repo}"


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_same_registry_other_repository(regfs_ok, registry, imgs, repo_name, name):
    it = getattr(imgs, name)
    repo = repo_name("copy")
    regfs_ok("copy", "-q", *_flags(it), it.ref, registry.ref(repo, "c1"))
    _check_copy(registry, repo, "c1", it)
    assert registry.tags(repo) == ["c1"]
    # the source is untouched
    assert registry.manifest_digest(it.repo, it.tag) == it.digest


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_between_registries(regfs_ok, registry2, imgs, repo_name, name):
    it = getattr(imgs, name)
    repo = repo_name("copy")
    regfs_ok("copy", "-q", *_flags(it), it.ref, registry2.ref(repo, "c2"))
    _check_copy(registry2, repo, "c2", it)


@pytest.mark.parametrize("name", SINGLE)
def test_same_repository_new_tag(regfs_ok, registry, imgs, repo_name, name):
    # In a repository of its own: the standard images' repositories are shared, read-only.
    it = getattr(imgs, name)
    repo = repo_name("retag")
    regfs_ok("copy", "-q", it.ref, registry.ref(repo, "v1"))
    regfs_ok("copy", "-q", registry.ref(repo, "v1"), registry.ref(repo, "retagged"))
    assert registry.manifest_digest(repo, "retagged") == it.digest
    assert set(registry.tags(repo)) == {"v1", "retagged"}
    assert registry.tags(it.repo) == ["v1"]


@pytest.mark.parametrize("name", MULTI)
def test_index_without_all_matches_skopeo(regfs_ok, oracle, registry, registry2, imgs,
                                          repo_name, name):
    """Without --all only the linux/amd64 instance is copied, as skopeo does (skopeo needs
    --preserve-digests not to compress the uncompressed layers; regfs always preserves)."""
    it = getattr(imgs, name)
    mine, theirs = repo_name("copy"), repo_name("copy")
    regfs_ok("copy", "-q", it.ref, registry2.ref(mine, "x"))
    oracle.copy(it.ref, registry2.ref(theirs, "x"), "--preserve-digests")
    amd64 = it.image.instance("linux", "amd64")
    assert registry2.manifest_digest(theirs, "x") == amd64.digest   # skopeo's behaviour
    assert registry2.manifest_digest(mine, "x") == amd64.digest


def test_copy_by_digest_to_tag(regfs_ok, registry2, registry, imgs, repo_name):
    it = imgs.docker_list
    repo = repo_name("copy")
    regfs_ok("copy", "-q", "--all", registry.ref(it.repo, it.digest), registry2.ref(repo, "d"))
    _check_copy(registry2, repo, "d", it)


def test_copy_again_is_idempotent(regfs_ok, registry2, imgs, repo_name):
    it = imgs.oci_index
    repo = repo_name("copy")
    for _ in range(2):
        regfs_ok("copy", "-q", "--all", it.ref, registry2.ref(repo, "same"))
    _check_copy(registry2, repo, "same", it)
    assert registry2.tags(repo) == ["same"]


def test_tag_moves_to_the_new_image(regfs_ok, registry2, imgs, repo_name):
    repo = repo_name("copy")
    regfs_ok("copy", "-q", imgs.oci.ref, registry2.ref(repo, "moving"))
    regfs_ok("copy", "-q", imgs.docker.ref, registry2.ref(repo, "moving"))
    assert registry2.manifest_digest(repo, "moving") == imgs.docker.digest
    # the first image is still there by digest
    assert registry2.manifest_digest(repo, imgs.oci.digest) == imgs.oci.digest
