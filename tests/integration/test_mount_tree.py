"""The read side of the tree: listings, readdir order, modes, symlinks, digest directories,
xattrs, hard links, .regfs/stats and the mount's life cycle (issue #3)."""

import errno
import os
import signal
import stat
import subprocess

import pytest

from mountlib import (entries_of, expect_errno, hexof, is_mounted, lazy_unmount, pid_alive,
                      wait_until)
from testlib import images, tools
from testlib.standard import ALL_IMAGES


# ---- listings ------------------------------------------------------------------------------

def test_registry_namespace_and_repository_listings(imgs, registry, mounts):
    m = mounts()
    top = os.listdir(m.reg(registry.addr))
    assert "img" in top, top
    assert all("/" not in n for n in top), top
    ns = os.listdir(m.reg(registry.addr) / "img")
    assert {"oci", "docker", "oci-index", "docker-list"} <= set(ns), ns
    assert os.listdir(m.reg(registry.addr) / "img" / "oci") == ["v1"]


def test_repository_lists_tags_and_deeper_components(registry, mounts, repo_name, imgs):
    repo = repo_name("mount-tree")
    images.push(imgs.oci.dir, registry.addr, repo, "one")
    images.push(imgs.oci.dir, registry.addr, repo, "two")
    images.push(imgs.docker.dir, registry.addr, f"{repo}/deeper", "x")
    m = mounts()
    d = m.reg(registry.addr) / repo
    assert sorted(os.listdir(d)) == ["deeper", "one", "two"]
    assert os.listdir(d / "deeper") == ["x"]
    assert stat.S_ISDIR(os.stat(d / "one").st_mode)
    assert (d / "deeper" / "x" / "manifest.json").read_bytes() == imgs.docker.image.manifest


def test_tag_dir_listing_needs_manifest_only(imgs, registry, mounts):
    m = mounts()
    before = m.stats()
    d = m.image(registry.addr, imgs.oci.repo, imgs.oci.tag)
    names = os.listdir(d)
    assert names == entries_of(imgs.oci.image)
    after = m.stats()
    assert after["blob_bytes"] == before["blob_bytes"] == 0, after
    assert after["requests"] > before["requests"], (before, after)


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_readdir_order_and_sizes(name, imgs, registry, mounts):
    """manifest.json, version, instance manifests, then config and layers in manifest order;
    sizes from the descriptors."""
    it = getattr(imgs, name)
    m = mounts()
    d = m.image(registry.addr, it.repo, it.tag)
    assert os.listdir(d) == entries_of(it.image)
    assert os.stat(d / "manifest.json").st_size == len(it.image.manifest)
    assert (d / "version").read_bytes() == b"Directory Transport Version: 1.1\n"
    for b in it.image.blobs().values():
        assert os.stat(d / hexof(b.digest)).st_size == b.size
    for inst in it.image.instances:
        assert os.stat(d / (hexof(inst.digest) + ".manifest.json")).st_size == \
            len(inst.manifest)
    assert m.stats()["blob_bytes"] == 0


def test_digest_dirs_and_reference_symlinks_are_looked_up_not_listed(imgs, registry, mounts):
    it = imgs.oci
    m = mounts()
    ns = m.reg(registry.addr) / "img"
    repo = ns / "oci"
    listing = os.listdir(repo) + os.listdir(ns)
    assert not any(":" in n or "@" in n for n in listing), listing

    by_digest = repo / it.digest
    assert stat.S_ISDIR(os.stat(by_digest).st_mode)
    assert (by_digest / "manifest.json").read_bytes() == it.image.manifest
    assert os.listdir(by_digest) == entries_of(it.image)

    for link, target in [(ns / "oci:v1", repo / "v1"),
                         (ns / f"oci@{it.digest}", repo / it.digest)]:
        st = os.lstat(link)
        assert stat.S_ISLNK(st.st_mode), oct(st.st_mode)
        dest = os.readlink(link)
        assert os.path.normpath(os.path.join(ns, dest)) == str(target), dest
        assert (link / "manifest.json").read_bytes() == it.image.manifest
        layer = it.image.layers[0]
        assert tools.sha256_file(link / hexof(layer.digest)) == layer.digest


def test_symlink_paths_of_a_namespaced_repo_resolve_from_the_registry(imgs, registry, mounts):
    """A reference pasted after the registry (img/docker-list:v1) resolves."""
    it = imgs.docker_list
    m = mounts()
    link = m.reg(registry.addr) / "img" / "docker-list:v1"
    assert (link / "manifest.json").read_bytes() == it.image.manifest
    assert os.path.realpath(link) == str(m.image(registry.addr, it.repo, "v1"))


def test_modes_of_a_read_only_mount(imgs, registry, mounts):
    m = mounts("ro")
    d = m.image(registry.addr, imgs.oci_index.repo, "v1")
    for p in [m.reg(registry.addr), m.reg(registry.addr) / "img", d.parent, d]:
        st = os.stat(p)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555, (p, oct(st.st_mode))
    for name in os.listdir(d):
        st = os.lstat(d / name)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444, \
            (name, oct(st.st_mode))
    expect_errno(errno.EROFS, os.mkdir, m.reg(registry.addr) / "img" / "newrepo")
    expect_errno(errno.EROFS, open, d / "manifest.json", "r+b")


def test_files_are_read_only_in_a_read_write_mount(imgs, registry, mounts):
    m = mounts()
    d = m.image(registry.addr, imgs.docker.repo, "v1")
    for name in os.listdir(d):
        st = os.stat(d / name)
        assert stat.S_IMODE(st.st_mode) == 0o444, (name, oct(st.st_mode))


# ---- xattrs and hard links -----------------------------------------------------------------

def test_xattrs_of_image_dirs_and_blobs(imgs, registry, mounts):
    m = mounts()
    for name in ["oci", "docker_list"]:
        it = getattr(imgs, name)
        for ref in [it.tag, it.digest]:
            d = m.image(registry.addr, it.repo, ref)
            assert os.getxattr(d, "user.regfs.digest") == it.digest.encode()
            assert os.getxattr(d, "user.regfs.mediatype") == it.image.media_type.encode()
            assert {"user.regfs.digest", "user.regfs.mediatype"} <= set(os.listxattr(d))
        d = m.image(registry.addr, it.repo, it.tag)
        for b in it.image.blobs().values():
            f = d / hexof(b.digest)
            assert os.getxattr(f, "user.regfs.digest") == b.digest.encode()
            assert os.getxattr(f, "user.regfs.mediatype") == b.media_type.encode()
    f = m.image(registry.addr, imgs.oci.repo, "v1") / hexof(imgs.oci.image.layers[0].digest)
    expect_errno(errno.ENODATA, os.getxattr, f, "user.regfs.nothing")
    expect_errno(errno.ENOTSUP, os.setxattr, f, "user.regfs.digest", b"sha256:00")
    assert os.getxattr(f, "user.regfs.digest") == imgs.oci.image.layers[0].digest.encode()


@pytest.fixture(scope="module")
def sharing(registry, session_dir):
    """Two images with the same first layer: repo:a, repo:b, and other-repo:c (= b)."""
    a = images.make_image(session_dir / "share-a", seed=71, fmt="oci", layers=["tar"])
    b = images.make_image(session_dir / "share-b", seed=71, fmt="oci", layers=["tar", "gzip"])
    assert a.layers[0].digest == b.layers[0].digest and a.digest != b.digest
    images.push(a.path, registry.addr, "mount/share", "a")
    images.push(b.path, registry.addr, "mount/share", "b")
    images.push(b.path, registry.addr, "mount/share-other", "c")
    return a, b


def test_shared_layer_is_one_inode(sharing, registry, mounts):
    a, b = sharing
    m = mounts()
    layer = hexof(a.layers[0].digest)
    da = m.image(registry.addr, "mount/share", "a")
    db = m.image(registry.addr, "mount/share", "b")
    dc = m.image(registry.addr, "mount/share-other", "c")
    for d in (da, db, dc):
        os.listdir(d)
    sa, sb, sc = (os.stat(d / layer) for d in (da, db, dc))
    assert sa.st_ino == sb.st_ino == sc.st_ino, (sa.st_ino, sb.st_ino, sc.st_ino)
    assert sa.st_nlink >= 2, sa.st_nlink
    assert os.path.samefile(da / layer, db / layer)
    # find -samefile finds the images sharing it
    p = subprocess.run(["find", str(m.reg(registry.addr) / "mount"), "-samefile",
                        str(da / layer)], capture_output=True, text=True, timeout=60)
    found = sorted(p.stdout.split())
    assert str(da / layer) in found and str(db / layer) in found, p.stdout + p.stderr
    # unshared blobs are distinct inodes
    assert os.stat(da / hexof(a.config.digest)).st_ino != \
        os.stat(db / hexof(b.config.digest)).st_ino
    assert tools.sha256_file(db / layer) == a.layers[0].digest


# ---- stats -----------------------------------------------------------------------------------

def test_stats_is_json_and_counts(imgs, registry, mounts):
    m = mounts()
    s0 = m.stats()
    for k in ("requests", "blob_bytes", "cache_hits"):
        assert isinstance(s0[k], int) and s0[k] >= 0, s0
    assert s0["blob_bytes"] == 0
    for k in ("in_use", "free", "sqlite"):
        assert isinstance(s0["heap"][k], int) and s0["heap"][k] >= 0, s0
    # the daemon's threads (at least the FUSE loop and the housekeeper), as /proc counts them
    threads = len(os.listdir(f"/proc/{m.pid}/task"))
    assert 2 <= s0["threads"] and abs(s0["threads"] - threads) <= 2, (s0, threads)
    d = m.image(registry.addr, imgs.docker.repo, "v1")
    layer = imgs.docker.image.layers[0]
    assert tools.sha256_file(d / hexof(layer.digest)) == layer.digest
    # the counters may trail the reader by a moment (the last piece is counted after the
    # reader has it)
    wait_until(lambda: m.stats()["blob_bytes"] >= layer.size, 2)
    s1 = m.stats()
    assert s1["requests"] > s0["requests"], (s0, s1)
    assert s1["blob_bytes"] >= layer.size, (layer.size, s1)
    assert stat.S_IMODE(os.stat(m.mnt / ".regfs" / "stats").st_mode) == 0o444


# ---- life cycle ----------------------------------------------------------------------------

def test_unmount_command_stops_the_daemon(imgs, registry, mounts):
    m = mounts()
    assert (m.image(registry.addr, imgs.oci.repo, "v1") / "manifest.json").read_bytes() == \
        imgs.oci.image.manifest
    p = m.unmount(how="regfs")
    assert p is not None and p.returncode == 0, p and p.stderr
    assert not is_mounted(m.mnt)
    assert wait_until(lambda: not pid_alive(m.pid), 10), f"daemon {m.pid} still runs"


def test_fusermount_u_stops_the_daemon(registry, mounts):
    m = mounts()
    p = m.unmount(how="fusermount")
    assert p is not None and p.returncode == 0, p and p.stderr
    assert wait_until(lambda: not pid_alive(m.pid), 10), f"daemon {m.pid} still runs"


def test_sigterm_unmounts(registry, mounts):
    m = mounts()
    os.kill(m.pid, signal.SIGTERM)
    assert wait_until(lambda: not is_mounted(m.mnt), 10), "still mounted after SIGTERM"
    assert wait_until(lambda: not pid_alive(m.pid), 10), f"daemon {m.pid} still runs"


def test_foreground_mount(imgs, registry, mounts):
    m = mounts(foreground=True)
    assert m.pid == m.fg.pid
    assert (m.image(registry.addr, imgs.oci.repo, "v1") / "manifest.json").read_bytes() == \
        imgs.oci.image.manifest
    p = m.unmount(how="fusermount")
    assert p.returncode == 0, p.stderr
    assert m.fg.wait(10) == 0
    assert not is_mounted(m.mnt)


def test_unknown_mount_option_is_refused(regfs, work):
    (work / "mnt").mkdir()
    try:
        p = regfs("mount", "-o", f"cache_dir={work / 'c'},no_such_option=1", str(work / "mnt"),
                  timeout=30)
        assert p.returncode != 0
        assert "no_such_option" in p.stderr, p.stderr
        assert not is_mounted(work / "mnt")
    finally:
        lazy_unmount(work / "mnt")  # a mount that should not have happened is not left behind


def test_mount_on_a_missing_directory_fails(regfs, work):
    p = regfs("mount", "-o", f"cache_dir={work / 'c'}", str(work / "no" / "such"),
              timeout=30)
    assert p.returncode != 0
    assert not is_mounted(work / "no" / "such")
