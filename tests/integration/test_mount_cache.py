"""The blob cache: verified before it is kept, crash-safe, bounded by cache_size, kept across
remounts; bad bytes reach no reader that gets to the end of the blob (issue #3)."""

import errno
import os
import threading

import pytest

from mountlib import (MiB, blob_body_bytes, blob_gets, cache_entries, cache_files_naming,
                      cache_listing, cache_usage, call_within, expect_errno, hexof,
                      invalid_cache_entries, is_mounted, lazy_unmount, pid_alive, read_all,
                      wait_until)
from testlib import images, tools
from testlib.faultproxy import Fault


@pytest.fixture(scope="module")
def one(registry, session_dir):
    """mount/one:v1, one 1 MiB uncompressed layer."""
    return images.pushed_image(session_dir / "mount-one", registry, "mount/one", seed=94,
                               fmt="oci", layers=["tar"], layer_size=[MiB])


@pytest.fixture(scope="module")
def eight(registry, session_dir):
    """mount/eight:v1, one 8 MiB uncompressed layer."""
    return images.pushed_image(session_dir / "mount-eight", registry, "mount/eight", seed=92,
                               fmt="oci", layers=["tar"], layer_size=[8 * MiB])


@pytest.fixture(scope="module")
def five(registry, session_dir):
    """mount/five:v1, five uncompressed layers of 3 MiB."""
    return images.pushed_image(session_dir / "mount-five", registry, "mount/five", seed=93,
                               fmt="oci", layers=["tar"] * 5, layer_size=3 * MiB)


def _mentions(text, digest):
    return digest in text or hexof(digest)[:12] in text


# ---- wrong bytes -----------------------------------------------------------------------------

def test_flipped_byte_gives_eio_is_not_cached_and_a_good_path_reads(one, registry, proxy,
                                                                   mounts, work):
    blob = one.layers[0]
    hex_ = hexof(blob.digest)
    proxy.add(Fault.flip_byte(), method="GET", path=f"/blobs/{blob.digest}", forever=True)
    cache = work / "cache"
    m = mounts(cache_dir=cache)
    f = m.image(proxy.addr, "mount/one", "v1") / hex_
    expect_errno(errno.EIO, read_all, f)
    assert any(e.faults == ["flip"] for e in blob_gets(proxy, blob.digest)), proxy.dump()
    assert _mentions(m.log_text(), blob.digest), "no log line names the blob:\n" + m.diag()
    assert wait_until(lambda: not cache_files_naming(cache, hex_), 3), cache_listing(cache)
    # again, in the same mount: still EIO, never the bad bytes
    expect_errno(errno.EIO, read_all, f)
    assert wait_until(lambda: not cache_files_naming(cache, hex_), 3), cache_listing(cache)
    m.unmount()

    # the registry directly, same cache: right bytes
    m2 = mounts(cache_dir=cache, name="direct")
    got = call_within(60, tools.sha256_file, m2.image(registry.addr, "mount/one", "v1") / hex_)
    assert got.error is None and got.value == blob.digest, (got.error, m2.diag())
    m2.unmount()

    # the proxy again, fault off: right bytes
    proxy.clear_faults()
    proxy.clear_log()
    m3 = mounts(cache_dir=cache, name="fixed")
    got = call_within(60, tools.sha256_file, m3.image(proxy.addr, "mount/one", "v1") / hex_)
    assert got.error is None and got.value == blob.digest, (got.error, m3.diag())
    assert invalid_cache_entries(cache) == []


def test_flipped_byte_then_fault_off_in_a_fresh_cache_refetches(one, proxy, mounts, work):
    """What was bad is fetched again, not served from some leftover."""
    blob = one.layers[0]
    hex_ = hexof(blob.digest)
    proxy.add(Fault.flip_byte(), method="GET", path=f"/blobs/{blob.digest}", forever=True)
    cache = work / "cache"
    m = mounts(cache_dir=cache)
    expect_errno(errno.EIO, read_all, m.image(proxy.addr, "mount/one", "v1") / hex_)
    m.unmount()
    proxy.clear_faults()
    proxy.clear_log()
    m2 = mounts(cache_dir=cache, name="again")
    got = call_within(60, tools.sha256_file, m2.image(proxy.addr, "mount/one", "v1") / hex_)
    assert got.error is None and got.value == blob.digest, (got.error, m2.diag())
    assert blob_body_bytes(proxy, blob.digest) >= blob.size, proxy.dump()
    # a verified blob becomes an entry (committed just after the reader has its bytes)
    assert wait_until(lambda: hex_ in cache_entries(cache), 5), cache_listing(cache)
    assert invalid_cache_entries(cache) == []


def test_verify_full_gives_no_byte_before_the_blob_is_verified(one, proxy, mounts):
    blob = one.layers[0]
    proxy.add(Fault.flip_byte(offset=blob.size - 10), method="GET",
              path=f"/blobs/{blob.digest}", forever=True)
    m = mounts("verify=full")
    f = m.image(proxy.addr, "mount/one", "v1") / hexof(blob.digest)

    def first_page():
        with open(f, "rb", buffering=0) as r:
            return r.read(4096)
    expect_errno(errno.EIO, first_page)


def test_verify_full_reads_good_blobs(one, registry, mounts):
    m = mounts("verify=full")
    d = m.image(registry.addr, "mount/one", "v1")
    for b in one.blobs().values():
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest


# ---- crashes ---------------------------------------------------------------------------------

def test_sigkill_mid_download_leaves_no_invalid_entry(eight, proxy, mounts, work):
    blob = eight.layers[0]
    # 512 KiB/s per request: even several parallel ranges need seconds for 8 MiB
    proxy.add(Fault.bandwidth(MiB // 2), method="GET", path=f"/blobs/{blob.digest}",
              forever=True)
    cache = work / "cache"
    m = mounts(cache_dir=cache)
    f = m.image(proxy.addr, "mount/eight", "v1") / hexof(blob.digest)
    os.stat(f)
    outcome = {}

    def reader():
        n = 0
        try:
            with open(f, "rb") as r:
                for piece in iter(lambda: r.read(64 * 1024), b""):
                    n += len(piece)
            outcome["done"] = n
        except OSError as e:
            outcome["error"] = e
        outcome["read"] = n

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert wait_until(lambda: blob_body_bytes(proxy, blob.digest) >= MiB, 30), \
        proxy.dump()
    m.kill()
    assert wait_until(lambda: not pid_alive(m.pid), 10), "SIGKILL did not end the daemon"
    t.join(20)
    assert not t.is_alive(), "the reader is still blocked after the daemon died"
    assert "error" in outcome, outcome  # it cannot have read all 8 MiB so soon
    lazy_unmount(m.mnt)
    assert not is_mounted(m.mnt)
    assert invalid_cache_entries(cache) == [], cache_listing(cache)

    proxy.clear_faults()
    m2 = mounts(cache_dir=cache, name="after")
    d = m2.image(proxy.addr, "mount/eight", "v1")
    assert (d / "manifest.json").read_bytes() == eight.manifest
    for b in eight.blobs().values():
        got = call_within(60, tools.sha256_file, d / hexof(b.digest))
        assert got.error is None and got.value == b.digest, (got.error, m2.diag())
    assert invalid_cache_entries(cache) == [], cache_listing(cache)


def test_sigkill_after_a_complete_read_keeps_the_cache_valid(eight, registry, mounts, work):
    blob = eight.layers[0]
    cache = work / "cache"
    m = mounts(cache_dir=cache)
    f = m.image(registry.addr, "mount/eight", "v1") / hexof(blob.digest)
    assert tools.sha256_file(f) == blob.digest
    m.kill()
    assert wait_until(lambda: not pid_alive(m.pid), 10)
    lazy_unmount(m.mnt)
    assert invalid_cache_entries(cache) == [], cache_listing(cache)
    m2 = mounts(cache_dir=cache, name="after")
    assert tools.sha256_file(m2.image(registry.addr, "mount/eight", "v1")
                             / hexof(blob.digest)) == blob.digest
    assert invalid_cache_entries(cache) == [], cache_listing(cache)


# ---- keeping and bounding ------------------------------------------------------------------

def test_cache_survives_remount(imgs, proxy, mounts, work):
    it = imgs.docker
    cache = work / "cache"
    m = mounts(cache_dir=cache)
    d = m.image(proxy.addr, it.repo, it.tag)
    for b in it.image.blobs().values():
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest
    # (the counter may trail the reader by a moment)
    total = sum(b.size for b in it.image.layers)
    assert wait_until(lambda: m.stats()["blob_bytes"] >= total, 2), (total, m.stats())
    m.unmount()
    assert set(cache_entries(cache)) >= {hexof(b.digest) for b in it.image.layers}, \
        cache_listing(cache)
    assert invalid_cache_entries(cache) == []

    proxy.clear_log()
    m2 = mounts(cache_dir=cache, name="again")
    d = m2.image(proxy.addr, it.repo, it.tag)
    for b in it.image.blobs().values():
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest
    assert blob_gets(proxy) == [], proxy.dump()
    s = m2.stats()
    assert s["blob_bytes"] == 0 and s["cache_hits"] >= 1, s


CACHE_LIMIT = 8 * MiB
SLACK = 512 * 1024   # metadata; less than one more 3 MiB blob


def test_cache_size_holds_under_a_larger_working_set(five, registry, mounts, work):
    cache = work / "cache"
    m = mounts("cache_size=8M", cache_dir=cache)
    d = m.image(registry.addr, "mount/five", "v1")
    for round_ in range(2):
        for b in five.layers:
            got = call_within(60, tools.sha256_file, d / hexof(b.digest))
            assert got.error is None and got.value == b.digest, (round_, got.error, m.diag())
            assert wait_until(lambda: cache_usage(cache) <= CACHE_LIMIT + SLACK, 5), (
                f"cache uses {cache_usage(cache)} bytes with cache_size=8M:\n"
                + cache_listing(cache))
    assert cache_entries(cache), "nothing cached at all:\n" + cache_listing(cache)
    assert invalid_cache_entries(cache) == []
    # and, still bounded, a second mount reads everything right
    m.unmount()
    m2 = mounts("cache_size=8M", cache_dir=cache, name="again")
    d = m2.image(registry.addr, "mount/five", "v1")
    for b in reversed(five.layers):
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest
    assert wait_until(lambda: cache_usage(cache) <= CACHE_LIMIT + SLACK, 5), \
        cache_listing(cache)


def test_an_open_file_is_not_evicted(five, registry, mounts, work):
    """cache_size smaller than the working set: a file held open stays readable, right."""
    cache = work / "cache"
    m = mounts("cache_size=4M", cache_dir=cache)
    d = m.image(registry.addr, "mount/five", "v1")
    first = five.layers[0]
    with open(d / hexof(first.digest), "rb", buffering=0) as held:
        assert tools.sha256_bytes(held.read()) == first.digest
        for b in five.layers[1:]:
            assert tools.sha256_file(d / hexof(b.digest)) == b.digest
        data = os.pread(held.fileno(), first.size, 0)
        assert tools.sha256_bytes(data) == first.digest
    assert invalid_cache_entries(cache) == []


def test_df_shows_the_cache(eight, registry, mounts, work):
    """statfs (df) of the mount: the size is cache_size, the space used what the cache holds."""
    m = mounts("cache_size=64M", cache_dir=work / "cache")
    before = os.statvfs(m.mnt)
    assert before.f_blocks * before.f_frsize == 64 * MiB
    assert before.f_bfree == before.f_bavail
    layer = eight.layers[0]
    assert tools.sha256_file(m.image(registry.addr, "mount/eight", "v1") / hexof(layer.digest)) \
        == layer.digest
    after = os.statvfs(m.mnt)
    used = (before.f_bfree - after.f_bfree) * after.f_frsize
    assert layer.size - 4096 <= used <= layer.size + 4096, used
    df = tools.run(["df", "-B1", "--output=size,used", str(m.mnt)], check=True).stdout.split()
    assert df[2] == str(64 * MiB), df
    assert abs(int(df[3]) - (64 * MiB - after.f_bfree * after.f_frsize)) <= 4096, df
