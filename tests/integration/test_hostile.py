"""A registry that lies in every way a server can (testlib/hostile.py): copy, inspect, sync and
the mount end each lie with a clear error, soon, in bounded memory, writing nothing outside
their destination, and the mount keeps serving other registries and the lying registry's other
repositories meanwhile — its catalog, which never ends, holds up no lookup."""

import errno
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mountlib import (call_within, expect_errno, hexof, invalid_cache_entries, pid_alive,
                      read_all, wait_until)
from testlib import tools
from testlib.hostile import LAYER, LIES, HostileRegistry, _digest, _manifest

# Lies in the manifest itself: reading it fails, whatever the command.
MANIFEST_LIES = ["manifest-huge", "manifest-nested", "manifest-invalid", "manifest-types",
                 "manifest-length-huge", "manifest-truncated", "index-nested", "index-self"]
# Lies about or in a layer: copying the image fails.
LAYER_LIES = ["size-negative", "size-huge", "size-wrong", "digest-path", "digest-not-hex",
              "digest-other-algo", "blob-mismatch", "blob-truncated", "blob-redirect-loop"]
MAX_SECONDS = 30


def _baseline_rss_kib():
    """Peak RSS of `regfs --version` in a sanitizer build, else 0. Such a build starts big (an
    ASan+UBSan regfs is ~270 MiB resident before it does anything: the sanitizers' global
    metadata and its relocations); the bound below is on what a command adds to that."""
    try:
        if tools.sanitizer_build() is None:
            return 0
    except OSError:
        return 0  # no binary: the regfs_bin fixture says so
    p = tools.run(["/usr/bin/time", "-f", "RSS %M", tools.regfs_bin(), "--version"])
    return int(p.stderr.splitlines()[-1].split()[1])


MAX_RSS_KIB = 200 * 1024 + _baseline_rss_kib()


@pytest.fixture(scope="module")
def hostile():
    with HostileRegistry() as h:
        yield h


def run_measured(regfs_bin, *args):
    """(CompletedProcess, seconds, peak RSS in KiB) of one regfs command."""
    t0 = time.monotonic()
    p = tools.run(["/usr/bin/time", "-f", "RSS %M", regfs_bin, *args], timeout=120)
    lines = p.stderr.splitlines()
    rss = int(lines[-1].split()[1]) if lines and lines[-1].startswith("RSS ") else -1
    p.stderr = "\n".join(lines[:-1])
    return p, time.monotonic() - t0, rss


def assert_clean_failure(p, seconds, rss, command, kind):
    assert p.returncode == 1, (kind, p.returncode, p.stderr)
    assert p.stderr.startswith(f"regfs {command}: ") and len(p.stderr) < 2000, (kind, p.stderr)
    assert seconds < MAX_SECONDS, (kind, seconds)
    assert 0 < rss < MAX_RSS_KIB, (kind, rss)


def test_every_lie_is_named():
    assert sorted(MANIFEST_LIES + LAYER_LIES + ["manifest-trickle", "tags-endless"]) == \
        sorted(LIES)


@pytest.mark.parametrize("kind", MANIFEST_LIES)
def test_inspect_refuses_a_lying_manifest(regfs_bin, hostile, kind):
    p, seconds, rss = run_measured(regfs_bin, "inspect", hostile.ref(kind))
    assert_clean_failure(p, seconds, rss, "inspect", kind)
    # --raw prints what the registry sent, as skopeo does, unparsed — if it can be had whole.
    p, seconds, rss = run_measured(regfs_bin, "inspect", "--raw", hostile.ref(kind))
    if kind in ("manifest-huge", "manifest-length-huge", "manifest-truncated"):
        assert_clean_failure(p, seconds, rss, "inspect", kind)
    else:
        assert p.returncode == 0 and p.stdout, (kind, p.stderr)
        assert seconds < MAX_SECONDS and 0 < rss < MAX_RSS_KIB, (kind, seconds, rss)


@pytest.mark.parametrize("kind", MANIFEST_LIES + LAYER_LIES)
def test_copy_fails_and_writes_nothing(regfs_bin, hostile, work, kind):
    dest = work / "out" / "img"
    dest.parent.mkdir()
    p, seconds, rss = run_measured(regfs_bin, "copy", hostile.ref(kind), f"dir:{dest}")
    assert_clean_failure(p, seconds, rss, "copy", kind)
    assert list(dest.parent.iterdir()) == [], (kind, list(dest.parent.iterdir()))
    # Nothing was written outside the destination either (a digest that is a path).
    assert not (work / "etc").exists() and not list(work.glob("**/passwd"))
    oci = work / "layout"
    p, seconds, rss = run_measured(regfs_bin, "copy", hostile.ref(kind), f"oci:{oci}:v1")
    assert_clean_failure(p, seconds, rss, "copy", kind)
    assert not (oci / "index.json").exists()


@pytest.mark.parametrize("kind", ["manifest-invalid", "digest-path", "blob-mismatch"])
def test_sync_fails_the_image_and_writes_nothing(regfs_bin, hostile, work, kind):
    dest = work / "mirror"
    p, seconds, rss = run_measured(regfs_bin, "sync", "--src", "docker", "--dest", "dir",
                                   f"{hostile.addr}/lie/{kind}:v1", dest)
    assert p.returncode == 1, p.stderr
    assert seconds < MAX_SECONDS and 0 < rss < MAX_RSS_KIB, (seconds, rss)
    assert "sync failed" in p.stderr, p.stderr
    leftovers = [q for q in dest.rglob("*") if q.is_file()] if dest.exists() else []
    assert leftovers == [], leftovers


def test_endless_tag_pages_end_with_an_error(regfs_bin, hostile):
    p, seconds, rss = run_measured(regfs_bin, "list-tags", f"docker://{hostile.addr}/lie/"
                                   "tags-endless")
    assert_clean_failure(p, seconds, rss, "list-tags", "tags-endless")


# ---- through the mount ------------------------------------------------------------------------

TIMEOUT = 3  # the mounts' timeout= (seconds)
# Every access through the mount ends within this: a trickle is cut by the rate floor after
# `timeout` seconds (curl averages its rate, so it may take up to twice that).
MOUNT_MAX_SECONDS = 3 * TIMEOUT
# How each lie ends through the mount (DESIGN §1 "Errors"). The lies in the manifest fail the
# listing of the tag directory and its manifest.json; those in a layer's bytes fail its read.
MOUNT_ERRNO = {
    "size-negative": errno.EINVAL, "digest-path": errno.EINVAL,
    "digest-not-hex": errno.EINVAL, "digest-other-algo": errno.EINVAL,
    "manifest-huge": errno.EFBIG, "manifest-nested": errno.EINVAL,
    "manifest-invalid": errno.EINVAL, "manifest-types": errno.EINVAL,
    "manifest-length-huge": errno.EIO, "manifest-truncated": errno.EIO,
    "manifest-trickle": errno.EIO, "index-nested": errno.EOPNOTSUPP, "index-self": errno.EIO,
    "size-huge": errno.EIO, "size-wrong": errno.EIO, "blob-mismatch": errno.EIO,
    "blob-truncated": errno.EIO, "blob-redirect-loop": errno.EIO,
    "tags-endless": errno.EFBIG,
}
LAYER_READ_LIES = ["size-huge", "size-wrong", "blob-mismatch", "blob-truncated",
                   "blob-redirect-loop"]
LAYER_HEX = hexof(_digest(LAYER))


def read_some(path, limit=16 << 20):
    """The first `limit` bytes of a file (a lying size may claim exabytes)."""
    with open(path, "rb") as f:
        return f.read(limit)


def peak_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def access_lie(m, hostile, kind):
    """The accesses of the lying image that fail, each checked for its errno in time; returns
    the paths whose repeated access must be answered from the failure cache."""
    code = MOUNT_ERRNO[kind]
    repo = m.reg(hostile.addr) / "lie" / kind
    tag = repo / "v1"
    if kind == "tags-endless":
        for fn, p in [(os.listdir, repo), (os.stat, tag)]:
            r = expect_errno(code, fn, p, within=MOUNT_MAX_SECONDS + 5)
            assert r.elapsed < MOUNT_MAX_SECONDS, (kind, r.elapsed)
        return [(os.listdir, repo), (os.stat, tag)]
    assert os.stat(tag).st_mode & 0o040000  # a tag from the list: a directory, no manifest yet
    if kind in LAYER_READ_LIES:
        names = call_within(MOUNT_MAX_SECONDS, os.listdir, tag)
        assert names.error is None, (kind, names.error)
        assert LAYER_HEX in names.value, (kind, names.value)
        r = expect_errno(code, read_some, tag / LAYER_HEX, within=MOUNT_MAX_SECONDS + 5)
        assert r.elapsed < MOUNT_MAX_SECONDS, (kind, r.elapsed)
        return []
    for fn, p in [(os.listdir, tag), (read_all, tag / "manifest.json")]:
        r = expect_errno(code, fn, p, within=MOUNT_MAX_SECONDS + 5)
        assert r.elapsed < MOUNT_MAX_SECONDS, (kind, fn.__name__, r.elapsed)
    return [(os.listdir, tag), (read_all, tag / "manifest.json")]


def read_the_others(m, hostile, registry, imgs, honest=True):
    """What the mount serves beside the lie: another registry, and (honest) an honest
    repository of the lying one; each must answer at once."""
    other = m.image(registry.addr, imgs.oci.repo, imgs.oci.tag) / "manifest.json"
    good = m.reg(hostile.addr) / "lie" / "honest" / "v1"
    reads = [(read_all, other, imgs.oci.image.manifest)]
    if honest:
        reads += [(read_all, good / "manifest.json", _manifest()), (os.listdir, good, None)]
    for fn, p, want in reads:
        r = call_within(MOUNT_MAX_SECONDS, fn, p)
        assert r.error is None, (p, r.error)
        assert want is None or r.value == want, p
        assert r.elapsed < 2, (p, r.elapsed)


@pytest.mark.parametrize("kind", sorted(LIES))
def test_the_mount_ends_each_lie_with_a_clear_error(hostile, registry, imgs, mounts, work,
                                                    kind):
    m = mounts(f"timeout={TIMEOUT}")
    # The honest image holds the same layer: once its directory is seen, a read of the layer
    # skips the lying location for it (DESIGN §1), so it is seen only after a layer's lie.
    honest = kind not in LAYER_READ_LIES
    read_the_others(m, hostile, registry, imgs, honest)
    with ThreadPoolExecutor(1) as pool:
        lie = pool.submit(access_lie, m, hostile, kind)
        time.sleep(0.2)  # the lie in flight (the slow ones still are)
        read_the_others(m, hostile, registry, imgs, honest)
        again = lie.result(timeout=4 * MOUNT_MAX_SECONDS)
    read_the_others(m, hostile, registry, imgs)
    # A failed lookup is remembered: asked again at once, it is answered without a request.
    before = hostile.requests_for(f"/v2/lie/{kind}/")
    for fn, p in again:
        r = expect_errno(MOUNT_ERRNO[kind], fn, p, within=10)
        assert r.elapsed < 1, (kind, p, r.elapsed)
    assert hostile.requests_for(f"/v2/lie/{kind}/") == before, kind
    # The log names the failure, where and why, in a line of its own.
    lines = [x for x in m.log_text().splitlines() if f"/lie/{kind}" in x]
    assert lines and all(len(x) < 4000 for x in lines), (kind, m.log_text()[-3000:])
    assert 0 < peak_rss_kib(m.pid) < MAX_RSS_KIB, kind
    # Nothing outside the cache directory (a digest that is a path), nothing invalid in it.
    assert sorted(p.name for p in work.iterdir()) == \
        sorted([m.mnt.name, m.cache_dir.name, m.log_path.name, m.out_path.name]), kind
    assert not list(m.cache_dir.rglob("passwd")) and not list(m.cache_dir.rglob("*..*"))
    assert invalid_cache_entries(m.cache_dir) == [], kind


def test_an_endless_catalog_ends_the_registry_listing_with_an_error(hostile, mounts):
    m = mounts(f"timeout={TIMEOUT}")
    reg = m.reg(hostile.addr)
    # Until its 1000 pages are through, the listing answers EAGAIN (after the timeout), then
    # EFBIG; each answer comes within the time a request may take.
    for _ in range(10):
        r = call_within(MOUNT_MAX_SECONDS + 5, os.listdir, reg)
        assert isinstance(r.error, OSError), r.value
        assert r.error.errno in (errno.EAGAIN, errno.EFBIG), r.error
        assert r.elapsed < MOUNT_MAX_SECONDS, r.elapsed
        if r.error.errno == errno.EFBIG:
            break
    assert r.error.errno == errno.EFBIG, r.error
    assert "goes on for more than 1000 pages" in m.log_text(), m.log_text()[-2000:]
    # Remembered: listed again at once, no page is asked for.
    n = len(hostile.requests_for("/v2/_catalog"))
    expect_errno(errno.EFBIG, os.listdir, reg, within=5)
    assert len(hostile.requests_for("/v2/_catalog")) == n
    # And lookups below it do not wait for it.
    got = call_within(MOUNT_MAX_SECONDS, read_all, reg / "lie" / "honest" / "v1" / "manifest.json")
    assert got.error is None and got.value == _manifest(), got.error


def test_an_endless_slow_catalog_holds_up_no_lookup(regfs_bin, registry, imgs, mounts):
    with HostileRegistry(catalog_delay=0.2) as h:   # 1000 pages would take 200 s
        m = mounts(f"timeout={TIMEOUT}")
        reg = m.reg(h.addr)
        first = call_within(MOUNT_MAX_SECONDS, read_all, reg / "lie" / "honest" / "v1" /
                            "manifest.json")
        assert first.error is None and first.value == _manifest(), first.error
        assert first.elapsed < 2.5, first.elapsed  # the short wait for the catalog, once
        read_the_others(m, h, registry, imgs)
        r = call_within(MOUNT_MAX_SECONDS, os.listdir, reg / "lie" / "size-wrong" / "v1")
        assert r.error is None and LAYER_HEX in r.value and r.elapsed < 1, (r.error, r.elapsed)
        r = call_within(MOUNT_MAX_SECONDS, os.listdir, reg / "lie" / "honest")
        assert r.error is None and r.value == ["v1"] and r.elapsed < 1, (r.error, r.elapsed)
        # Listing the registry waits for the catalog as long as a request may stall, no longer.
        r = expect_errno(errno.EAGAIN, os.listdir, reg, within=MOUNT_MAX_SECONDS + 5)
        assert r.elapsed < TIMEOUT + 2, r.elapsed  # counted from the listing's start
        assert "still being listed" in m.log_text(), m.log_text()[-2000:]
        # One listing, shared by all of them.
        starts = [p for _, p in h.requests_for("/v2/_catalog") if "last=" not in p]
        assert len(starts) == 1, starts
        # The daemon ends at unmount without listing the rest: at the listing's next page.
        pid = m.pid
        p = tools.run([regfs_bin, "unmount", str(m.mnt)], timeout=30)
        assert p.returncode == 0, p.stderr
        assert wait_until(lambda: not pid_alive(pid), 4.5), "the daemon still runs"
        m.unmount()
        assert m.gone()
        n = len(h.requests_for("/v2/_catalog"))
        time.sleep(0.5)
        assert len(h.requests_for("/v2/_catalog")) == n
