"""`cp -r` out of a regfs mount gives skopeo's dir: layout, byte for byte, and skopeo pushes
that directory on with the same digest (issue #3)."""

import subprocess

import pytest

from mountlib import hexof
from testlib import tools
from testlib.standard import ALL_IMAGES


def _cp_r(src, dst):
    p = subprocess.run(["cp", "-r", str(src), str(dst)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"cp -r {src} {dst} failed: {p.stderr}"


def _diff_r(a, b):
    p = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"diff -r {a} {b}:\n{p.stdout}{p.stderr}"


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_cp_r_equals_skopeo_dir_and_pushes_on(name, imgs, registry, registry2, mounts,
                                              oracle, work, repo_name):
    it = getattr(imgs, name)
    m = mounts()
    flags = ["--all"] if it.image.is_index else []
    oracle.copy(it.ref, f"dir:{work / 'skopeo'}", *flags)

    _cp_r(m.image(registry.addr, it.repo, it.tag), work / "cp")
    _diff_r(work / "cp", work / "skopeo")
    # and both are the image that was pushed (not merely the same mistake twice)
    assert tools.tree_diff(work / "cp", it.dir) == ""

    repo = repo_name("mount-copy")
    oracle.copy(f"dir:{work / 'cp'}", registry2.ref(repo, "t"), "--all", "--preserve-digests")
    assert registry2.manifest_digest(repo, "t") == it.digest
    assert oracle.digest_of(registry2.ref(repo, "t")) == it.digest


@pytest.mark.parametrize("name", ["oci", "docker_list"])
def test_cp_r_by_digest_equals_by_tag(name, imgs, registry, mounts, work):
    it = getattr(imgs, name)
    m = mounts()
    _cp_r(m.image(registry.addr, it.repo, it.digest), work / "by-digest")
    assert tools.tree_diff(work / "by-digest", it.dir) == ""


def test_cp_r_of_a_repository_copies_every_tag(imgs, registry, mounts, work, repo_name):
    """A repository directory is its tags: cp -r of it copies each image whole."""
    from testlib import images
    repo = repo_name("mount-repo")
    images.push(imgs.oci.dir, registry.addr, repo, "a")
    images.push(imgs.docker.dir, registry.addr, repo, "b")
    m = mounts()
    _cp_r(m.reg(registry.addr) / repo, work / "repo")
    assert sorted(p.name for p in (work / "repo").iterdir()) == ["a", "b"]
    assert tools.tree_diff(work / "repo" / "a", imgs.oci.dir) == ""
    assert tools.tree_diff(work / "repo" / "b", imgs.docker.dir) == ""


def test_cat_instance_manifest_and_blob_of_index(imgs, registry, mounts):
    """Each instance manifest of an index is there under <hex>.manifest.json, with the bytes
    the registry serves for that digest."""
    it = imgs.oci_index
    m = mounts()
    d = m.image(registry.addr, it.repo, it.tag)
    for inst in it.image.instances:
        got = (d / (hexof(inst.digest) + ".manifest.json")).read_bytes()
        assert got == inst.manifest
        assert got == registry.manifest(it.repo, inst.digest).body
        assert (d / hexof(inst.config.digest)).read_bytes() == inst.config.data
