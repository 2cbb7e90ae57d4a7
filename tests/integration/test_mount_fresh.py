"""Freshness: a tag follows the registry after tag_ttl, lists after list_ttl, and an open
file keeps the image it was opened on (issue #3)."""

import os

import pytest

from mountlib import MiB, entries_of, hexof
from testlib import images, tools
from testlib.wait import wait_for, wait_until

# How long a test waits for a change due after tag_ttl=1 or list_ttl=1. The waits poll and
# end when the change shows, so this only bounds a failure; the tests that a change does not
# come early are test_tag_is_stable_within_tag_ttl and the lookups before each push.
TTL_DEADLINE = 15


@pytest.fixture(scope="module")
def two(session_dir):
    """Two different images; A has a 2 MiB layer (read across the re-tag)."""
    a = images.make_image(session_dir / "fresh-a", seed=81, fmt="oci", layers=["tar", "gzip"],
                          layer_size=[2 * MiB, 4096])
    b = images.make_image(session_dir / "fresh-b", seed=82, fmt="docker", layers=["gzip"])
    return a, b


def _digest_of(d):
    return os.getxattr(d, "user.regfs.digest").decode()


def _retag(two, registry, mounts, repo_name, while_open=None):
    """Push A to repo:t, mount with tag_ttl=1, look at t, run while_open(d) (which opens
    files of A), push B to repo:t, and wait until the mount has resolved t anew (its
    digest xattr, which reads no file of the tag). Returns (mount, tag dir, what while_open
    returned)."""
    a, b = two
    repo = repo_name("mount-fresh")
    images.push(a.path, registry.addr, repo, "t")
    m = mounts("tag_ttl=1")
    d = m.image(registry.addr, repo, "t")
    assert (d / "manifest.json").read_bytes() == a.manifest
    assert os.listdir(d) == entries_of(a)
    assert os.getxattr(d, "user.regfs.digest") == a.digest.encode()
    held = while_open(d) if while_open else None
    images.push(b.path, registry.addr, repo, "t")   # skopeo copy to the same tag
    wait_for(lambda: _digest_of(d) == b.digest, TTL_DEADLINE, "the tag moved to B")
    return m, d, held


def _reads_b(d, b):
    """manifest.json reads B's manifest. The kernel keeps what it was told of the file (its
    size) for tag_ttl after it last asked, which may end a moment after the mount resolved
    the tag anew: so this is waited for too."""
    return (d / "manifest.json").read_bytes() == b.manifest


def test_retag_shows_after_tag_ttl(two, registry, mounts, repo_name):
    a, b = two
    m, d, _ = _retag(two, registry, mounts, repo_name)
    wait_for(lambda: _reads_b(d, b), TTL_DEADLINE, "manifest.json is B's")
    assert os.listdir(d) == entries_of(b)
    assert os.getxattr(d, "user.regfs.digest") == b.digest.encode()
    assert os.getxattr(d, "user.regfs.mediatype") == b.media_type.encode()
    layer = b.layers[0]
    assert tools.sha256_file(d / hexof(layer.digest)) == layer.digest
    # the old image stays reachable by digest
    assert (d.parent / a.digest / "manifest.json").read_bytes() == a.manifest


def test_retag_removes_the_old_blobs_from_the_tag_dir(two, registry, mounts, repo_name):
    a, b = two

    def look(d):   # the old blobs are looked up (and so known to the kernel) before
        for blob in [a.config] + a.layers:
            assert os.stat(d / hexof(blob.digest)).st_size == blob.size

    m, d, _ = _retag(two, registry, mounts, repo_name, look)
    assert os.listdir(d) == entries_of(b)
    old = [hexof(blob.digest) for blob in [a.config] + a.layers]
    # The kernel forgets the looked-up names tag_ttl after look(): poll until it has.
    found = lambda: [n for n in old if (d / n).exists()]  # noqa: E731
    assert wait_until(lambda: not found(), TTL_DEADLINE), \
        f"blobs of the old image are still found in the moved tag's directory: {found()}"


def test_open_blob_keeps_reading_the_old_image(two, registry, mounts, repo_name):
    a, b = two
    layer = a.layers[0]

    def open_layer(d):
        f = open(d / hexof(layer.digest), "rb", buffering=0)
        return f, f.read(64 * 1024)

    m, d, (f, head) = _retag(two, registry, mounts, repo_name, open_layer)
    with f:
        wait_for(lambda: _reads_b(d, b), TTL_DEADLINE, "manifest.json is B's")
        rest = b"".join(iter(lambda: f.read(256 * 1024), b""))
    assert tools.sha256_bytes(head + rest) == layer.digest


def test_open_manifest_keeps_the_old_image(two, registry, mounts, repo_name):
    """manifest.json opened before the tag moved reads the old manifest, even after the new
    one was read through the same path."""
    a, b = two
    m, d, f = _retag(two, registry, mounts, repo_name,
                     lambda d: open(d / "manifest.json", "rb", buffering=0))
    with f:
        wait_for(lambda: _reads_b(d, b), TTL_DEADLINE, "manifest.json is B's")
        assert f.read() == a.manifest


def test_open_manifest_unread_keeps_the_old_image(two, registry, mounts, repo_name):
    a, b = two
    m, d, f = _retag(two, registry, mounts, repo_name,
                     lambda d: open(d / "manifest.json", "rb", buffering=0))
    with f:
        assert f.read() == a.manifest


def test_tag_is_stable_within_tag_ttl(two, registry, mounts, repo_name):
    """Within tag_ttl the tag does not move (it is resolved once, not per access)."""
    a, b = two
    repo = repo_name("mount-fresh")
    images.push(a.path, registry.addr, repo, "t")
    m = mounts("tag_ttl=30")
    d = m.image(registry.addr, repo, "t")
    assert (d / "manifest.json").read_bytes() == a.manifest
    images.push(b.path, registry.addr, repo, "t")
    assert (d / "manifest.json").read_bytes() == a.manifest
    assert os.listdir(d) == entries_of(a)


def test_new_tag_is_listed_after_list_ttl(two, registry, mounts, repo_name):
    a, b = two
    repo = repo_name("mount-fresh")
    images.push(a.path, registry.addr, repo, "t")
    m = mounts("list_ttl=1")
    r = m.reg(registry.addr) / repo
    assert os.listdir(r) == ["t"]
    images.push(b.path, registry.addr, repo, "u")
    wait_for(lambda: "u" in os.listdir(r), TTL_DEADLINE, "the new tag u is listed")
    assert sorted(os.listdir(r)) == ["t", "u"]
    assert (r / "u" / "manifest.json").read_bytes() == b.manifest


def test_new_repository_is_listed_after_list_ttl(two, registry, mounts, repo_name):
    a, _ = two
    repo = repo_name("mount-fresh")   # "mount-fresh/r<N>-<hex>"
    ns, leaf = repo.split("/")
    images.push(a.path, registry.addr, f"{ns}/first", "t")
    m = mounts("list_ttl=1")
    before = os.listdir(m.reg(registry.addr) / ns)
    assert "first" in before and leaf not in before
    images.push(a.path, registry.addr, repo, "t")
    wait_for(lambda: leaf in os.listdir(m.reg(registry.addr) / ns), TTL_DEADLINE,
             f"the new repository {leaf} is listed")
