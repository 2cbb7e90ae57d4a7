"""Deleting and renaming through the mount (DESIGN §1 "Writing = pushing", issue #4): rm -r of a
tag or a repository deletes at the registry, EBUSY where deleting by digest would take other
tags along, mv re-tags, and a `ro` mount refuses every write with EROFS. The registry is
docker-registry 2.8, which deletes only by digest. skopeo is the oracle."""

import errno
import json
import os

import pytest

from mountlib import expect_errno, hexof
from test_mount_write import run, run_ok, tag_absent, write_file
from testlib import images


def tags_of(oracle, registry, repo):
    """Tags skopeo lists ([] when the repository is unknown)."""
    lt = oracle.list_tags(f"docker://{registry.addr}/{repo}", check=False)
    if lt.returncode != 0:
        assert "unknown" in lt.stderr.lower() or "not found" in lt.stderr.lower(), lt.stderr
        return []
    return sorted(json.loads(lt.stdout).get("Tags") or [])


def test_registry_deletes_only_by_digest(imgs, registry, repo_name):
    """The premise of the EBUSY and mv tests: this registry refuses DELETE by tag."""
    repo = repo_name("del-premise")
    images.push(imgs.oci.dir, registry.addr, repo, "t")
    r = registry.get(f"/v2/{repo}/manifests/t", method="DELETE")
    assert r.status in (400, 405), (r.status, r.body)
    assert registry.has_manifest(repo, "t")


# ---- rm -r ------------------------------------------------------------------------------------

def test_rm_r_of_a_tag_removes_it(imgs, registry, mounts, oracle, repo_name):
    repo = repo_name("del-tag")
    images.push(imgs.oci.dir, registry.addr, repo, "a")
    images.push(imgs.docker.dir, registry.addr, repo, "b")
    m = mounts()
    r = run("rm", "-r", m.image(registry.addr, repo, "a"))
    tag_absent(oracle, registry, repo, "a", "after rm -r")
    assert tags_of(oracle, registry, repo) == ["b"]
    assert oracle.digest_of(registry.ref(repo, "b")) == imgs.docker.digest
    assert r.returncode == 0, f"rm -r exited {r.returncode}:\n{r.stderr}{m.diag()}"
    assert os.listdir(m.reg(registry.addr) / repo) == ["b"]
    assert not os.path.exists(m.image(registry.addr, repo, "a"))


def test_rm_r_of_a_tag_sharing_its_digest_is_ebusy(imgs, registry, mounts, oracle, repo_name):
    repo = repo_name("del-busy")
    images.push(imgs.oci.dir, registry.addr, repo, "a")
    images.push(imgs.oci.dir, registry.addr, repo, "b")
    m = mounts()
    r = run("rm", "-r", m.image(registry.addr, repo, "a"))
    assert r.returncode != 0, "rm -r of a tag sharing its digest succeeded\n" + m.diag()
    assert "Device or resource busy" in r.stderr, r.stderr
    assert tags_of(oracle, registry, repo) == ["a", "b"]
    for t in ("a", "b"):
        assert oracle.digest_of(registry.ref(repo, t)) == imgs.oci.digest
    log = m.log_text()
    assert "b" in log and "also tagged" in log, "the log does not name the other tag:\n" + \
        m.diag()
    # still readable through the mount
    assert (m.image(registry.addr, repo, "a") / "manifest.json").read_bytes() == \
        imgs.oci.image.manifest


def test_rm_r_of_a_repository_removes_every_tag(imgs, registry, mounts, oracle, repo_name):
    repo = repo_name("del-repo")
    for tag, it in [("a", imgs.oci), ("b", imgs.docker), ("c", imgs.docker_list)]:
        images.push(it.dir, registry.addr, repo, tag)
    m = mounts()
    r = run("rm", "-r", m.reg(registry.addr) / repo)
    assert tags_of(oracle, registry, repo) == []
    for tag in ("a", "b", "c"):
        tag_absent(oracle, registry, repo, tag, "after rm -r of the repository")
    assert r.returncode == 0, f"rm -r exited {r.returncode}:\n{r.stderr}{m.diag()}"
    assert not os.path.exists(m.reg(registry.addr) / repo)


def test_unlink_of_manifest_deletes_but_unlink_of_a_blob_does_nothing(imgs, registry, mounts,
                                                                      oracle, repo_name):
    repo = repo_name("del-unlink")
    it = imgs.docker
    images.push(it.dir, registry.addr, repo, "t")
    m = mounts()
    d = m.image(registry.addr, repo, "t")
    layer = it.image.layers[0]
    os.unlink(d / hexof(layer.digest))
    os.unlink(d / "version")
    assert oracle.digest_of(registry.ref(repo, "t")) == it.digest
    assert registry.has_blob(repo, layer.digest)
    os.unlink(d / "manifest.json")
    tag_absent(oracle, registry, repo, "t", "after unlink manifest.json")


# ---- mv re-tags -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["oci", "docker", "docker_list"])
def test_mv_of_a_tag_retags(name, imgs, registry, mounts, oracle, repo_name):
    it = getattr(imgs, name)
    repo = repo_name("mv")
    images.push(it.dir, registry.addr, repo, "old")
    m = mounts()
    run_ok("mv", m.image(registry.addr, repo, "old"), m.image(registry.addr, repo, "new"), m=m)
    assert tags_of(oracle, registry, repo) == ["new"], m.diag()
    assert oracle.digest_of(registry.ref(repo, "new")) == it.digest
    tag_absent(oracle, registry, repo, "old", "after mv")
    assert sorted(os.listdir(m.reg(registry.addr) / repo)) == ["new"]
    # the renamed directory (the same inode to the kernel) now shows the image under "new"
    try:
        got = (m.image(registry.addr, repo, "new") / "manifest.json").read_bytes()
    except OSError as e:
        pytest.fail(f"reading new/manifest.json after mv: {e!r}\n{m.diag()}")
    assert got == it.image.manifest


def test_mv_of_a_tag_sharing_its_digest_keeps_the_other(imgs, registry, mounts, oracle,
                                                       repo_name):
    """Removing the old name never deletes the image the other tag still names."""
    it = imgs.oci
    repo = repo_name("mv-shared")
    images.push(it.dir, registry.addr, repo, "old")
    images.push(it.dir, registry.addr, repo, "keep")
    m = mounts()
    run_ok("mv", m.image(registry.addr, repo, "old"), m.image(registry.addr, repo, "new"), m=m)
    assert tags_of(oracle, registry, repo) == ["keep", "new"], m.diag()
    for t in ("keep", "new"):
        assert oracle.digest_of(registry.ref(repo, t)) == it.digest
    tag_absent(oracle, registry, repo, "old", "after mv")


# ---- ro -------------------------------------------------------------------------------------

def test_ro_mount_refuses_every_write_with_erofs(imgs, registry, mounts, oracle):
    it = imgs.oci
    m = mounts("ro")
    reg = m.reg(registry.addr)
    d = m.image(registry.addr, it.repo, it.tag)
    assert (d / "manifest.json").read_bytes() == it.image.manifest
    expect_errno(errno.EROFS, os.mkdir, reg / "ro-new")
    expect_errno(errno.EROFS, os.mkdir, reg / it.repo / "ro-tag")
    expect_errno(errno.EROFS, write_file, d / "version", images.DIR_VERSION)
    expect_errno(errno.EROFS, write_file, d / "manifest.json", it.image.manifest)
    expect_errno(errno.EROFS, write_file, d / ("ab" * 32), b"x")
    expect_errno(errno.EROFS, os.unlink, d / "manifest.json")
    expect_errno(errno.EROFS, os.unlink, d / hexof(it.image.layers[0].digest))
    expect_errno(errno.EROFS, os.rmdir, d)
    expect_errno(errno.EROFS, os.rename, d, reg / it.repo / "ro-renamed")
    assert oracle.digest_of(it.ref) == it.digest
    assert registry.tags(it.repo) == ["v1"]
