"""registries.conf through the mount, as for the commands (test_mirror.py): a `blocked`
registry is refused with EACCES and never contacted; pulls go through [[registry.mirror]]
(`mirror-by-digest-only` keeps tags at the origin); writes go to the origin alone. The daemon
reads the file named by $CONTAINERS_REGISTRIES_CONF."""

import errno
import os
import subprocess

import pytest

from mountlib import expect_errno, read_all
from testlib import images, tools
from testlib.faultproxy import FaultProxy
from testlib.registry import Registry
from testlib.tcprelay import TCPRelay

REPO = "mirrored/img"


@pytest.fixture(scope="module")
def origin():
    with Registry(name="conf-origin") as r:
        yield r


@pytest.fixture(scope="module")
def image(origin, tmp_path_factory):
    return images.pushed_image(tmp_path_factory.mktemp("conf-img") / "img", origin, REPO,
                               seed=911, fmt="docker", layers=["gzip", "tar"]).path


@pytest.fixture(scope="module")
def stale(tmp_path_factory):
    """Another image, for a mirror whose v1 is behind the origin's."""
    img = tmp_path_factory.mktemp("conf-stale") / "img"
    images.make_image(img, seed=912, fmt="docker", layers=["gzip"])
    return img


@pytest.fixture
def origin_px(origin):
    """The origin as the mount reaches it: its requests are logged."""
    with FaultProxy(origin.addr) as px:
        yield px


def cp_r(src, dst, m):
    try:
        p = tools.run(["cp", "-r", src, dst], timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"cp -r {src} {dst} hung\n{m.diag()}")
    assert p.returncode == 0, f"cp -r {src} {dst}: {p.stderr}\n{m.diag()}"


def assert_blobs_verify(d):
    for f in d.iterdir():
        if len(f.name) == 64:
            assert tools.sha256_file(f) == "sha256:" + f.name, f


def test_a_blocked_registry_is_refused_and_never_contacted(origin, image, mounts, work):
    with TCPRelay(origin.addr) as relay:
        env = tools.registries_conf_env(
            work, f'[[registry]]\nlocation = "{relay.addr}"\nblocked = true\n')
        m = mounts(env=env)
        blocked = m.reg(relay.addr)
        expect_errno(errno.EACCES, os.listdir, blocked)
        expect_errno(errno.EACCES, os.stat, blocked / REPO / "v1")
        expect_errno(errno.EACCES, os.stat, blocked / f"{REPO}:v1")
        expect_errno(errno.EACCES, os.mkdir, blocked / "new")
        assert relay.connections == 0
        assert "registries.conf" in m.log_text(), m.diag()
        # The same registry, not blocked under its own address, is served by this mount.
        assert "manifest.json" in os.listdir(m.image(origin.addr, REPO, "v1"))
        assert relay.connections == 0


def test_the_mount_reads_through_the_mirror(origin, image, origin_px, mounts, work):
    # A pull-through cache of the origin: it fetches from the origin itself, not through
    # origin_px, so what origin_px logs is what the mount asked of the origin.
    with Registry(name="conf-cache", proxy_remote=origin.url) as cache, \
            FaultProxy(cache.addr) as mirror:
        conf = tools.mirror_conf(origin_px.addr, mirror.addr)
        m = mounts(env=tools.registries_conf_env(work, conf))
        d = m.image(origin_px.addr, REPO, "v1")
        cp_r(d, work / "out", m)
        assert tools.tree_diff(work / "out", image) == ""
        assert_blobs_verify(work / "out")
        assert mirror.requests(method="GET", path=r"/v2/mirrored/img/manifests/")
        assert len(mirror.requests(method="GET", path=r"/v2/mirrored/img/blobs/")) >= 3
        # The image has no sigstore attachment: the mirror's 404 for its sha256-<hex>.sig tag
        # falls back to the origin, as in containers/image; nothing else is asked of it.
        asked = [e for e in origin_px.requests(path=r"/manifests/|/blobs/")
                 if not e.path.endswith(".sig")]
        assert asked == [], origin_px.dump()


@pytest.mark.parametrize("by_digest_only", [False, True])
def test_mirror_by_digest_only_keeps_tags_at_the_origin(origin, image, stale, origin_px, mounts,
                                                        work, by_digest_only):
    with Registry(name="conf-stale") as behind, FaultProxy(behind.addr) as mirror:
        images.push(stale, behind.addr, REPO, "v1")
        keys = "mirror-by-digest-only = true\n" if by_digest_only else ""
        conf = tools.mirror_conf(origin_px.addr, mirror.addr, keys)
        m = mounts(env=tools.registries_conf_env(work, conf))
        manifest = read_all(m.image(origin_px.addr, REPO, "v1") / "manifest.json")
        want = image if by_digest_only else stale
        assert tools.sha256_bytes(manifest) == tools.sha256_file(want / "manifest.json")
        tag_requests = mirror.requests(path=r"/manifests/v1$")
        assert bool(tag_requests) != by_digest_only, mirror.dump()
        # By digest the mirror serves, also what the origin does not have.
        digest = tools.sha256_file(stale / "manifest.json")
        d = m.image(origin_px.addr, REPO, digest)
        assert tools.sha256_bytes(read_all(d / "manifest.json")) == digest
        cp_r(d, work / "by-digest", m)
        assert tools.tree_diff(work / "by-digest", stale) == ""
        assert not origin_px.requests(path=r"/blobs/"), origin_px.dump()


def test_writes_go_to_the_origin_only(origin, image, origin_px, repo_name, mounts, work):
    with Registry(name="conf-cache2", proxy_remote=origin.url) as cache, \
            FaultProxy(cache.addr) as mirror:
        conf = tools.mirror_conf(origin_px.addr, mirror.addr)
        m = mounts(env=tools.registries_conf_env(work, conf))
        repo = repo_name("mirrored")
        dst = m.image(origin_px.addr, repo, "v2")
        dst.parent.mkdir(parents=True)
        cp_r(image, dst, m)
        assert origin.has_manifest(repo, "v2")
        # The mirror is asked only what lookups read (tag lists), never for blobs.
        assert [r for r in mirror.requests() if r.method not in ("GET", "HEAD")] == [], \
            mirror.dump()
        assert not mirror.requests(path=r"/blobs/"), mirror.dump()
        # Re-tagged from the origin's manifest, where the tag is moved.
        os.rename(dst, m.image(origin_px.addr, repo, "v3"))
        assert origin.has_manifest(repo, "v3")
        assert not origin.has_manifest(repo, "v2")
