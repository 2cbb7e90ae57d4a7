"""Lazy blobs: listing costs no blob bytes, a read fetches about what it reads, and
concurrent readers share one download (issue #3). Byte counts come from the fault proxy's
request log (body bytes the registry sent through it) and from MNT/.regfs/stats."""

import hashlib
import os
import subprocess
import threading

import pytest

from mountlib import (MiB, BIG_REPO, BIG_TAG, big_image, blob_body_bytes, blob_gets, call_within,
                      hexof)
from testlib import images, tools
from testlib.faultproxy import Fault


@pytest.fixture(scope="module")
def big(registry, session_dir):
    return big_image(registry, session_dir)


def test_ls_l_of_a_256mib_image_fetches_no_blob_bytes(big, proxy, mounts):
    m = mounts()
    d = m.image(proxy.addr, BIG_REPO, BIG_TAG)
    p = subprocess.run(["ls", "-l", str(d)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    sizes = {}
    for line in p.stdout.splitlines()[1:]:
        f = line.split()
        sizes[f[-1]] = int(f[4])
    assert sizes == {"manifest.json": len(big.manifest), "version": 33,
                     hexof(big.config.digest): big.config.size,
                     hexof(big.layer.digest): big.layer.size}, p.stdout
    assert blob_gets(proxy) == [], proxy.dump()
    assert proxy.requests("GET", "/manifests/"), proxy.dump()  # it did go to the registry
    assert m.stats()["blob_bytes"] == 0, m.stats()


def test_ls_l_of_an_index_fetches_no_blob_bytes(imgs, proxy, mounts):
    m = mounts()
    d = m.image(proxy.addr, imgs.oci_index.repo, imgs.oci_index.tag)
    p = subprocess.run(["ls", "-lR", str(d)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert blob_gets(proxy) == [], proxy.dump()
    # the index, and each instance manifest by digest
    fetched = {e.path.rsplit("/", 1)[1] for e in proxy.requests("GET", "/manifests/")}
    assert {i.digest for i in imgs.oci_index.image.instances} <= fetched, proxy.dump()


def test_read_1mib_at_200mib_fetches_at_most_16mib(big, proxy, mounts):
    m = mounts()
    f = m.image(proxy.addr, BIG_REPO, BIG_TAG) / hexof(big.layer.digest)
    off = 200 * MiB
    with open(big.layer.file, "rb") as want:
        want.seek(off)
        expected = want.read(MiB)

    def read():
        with open(f, "rb") as r:
            r.seek(off)
            return r.read(MiB)
    got = call_within(60, read)
    assert got.error is None, f"{got.error!r}\n{m.diag()}"
    assert got.value == expected
    fetched = blob_body_bytes(proxy)
    assert 0 < fetched <= 16 * MiB, f"{fetched} bytes of blobs fetched:\n{proxy.dump()}"
    assert all(e.range_start is not None for e in blob_gets(proxy)), proxy.dump()
    assert m.stats()["blob_bytes"] <= 16 * MiB, m.stats()


def test_scattered_small_reads_fetch_little(big, proxy, mounts):
    """Random 4 KiB reads at 8 places: fetched bytes stay far below the blob size."""
    m = mounts()
    f = m.image(proxy.addr, BIG_REPO, BIG_TAG) / hexof(big.layer.digest)
    offsets = [i * 31 * MiB + 12345 for i in range(8)]

    def read():
        out = []
        with open(f, "rb") as r:
            for o in offsets:
                r.seek(o)
                out.append(r.read(4096))
        return out
    got = call_within(60, read)
    assert got.error is None, f"{got.error!r}\n{m.diag()}"
    with open(big.layer.file, "rb") as want:
        for o, data in zip(offsets, got.value):
            want.seek(o)
            assert data == want.read(4096), o
    assert blob_body_bytes(proxy) <= 48 * MiB, proxy.dump()


CONC_SIZE = 8 * MiB


@pytest.fixture(scope="module")
def conc(registry, session_dir):
    return images.pushed_image(session_dir / "mount-conc", registry, "mount/conc", seed=91,
                               fmt="oci", layers=["tar"], layer_size=[CONC_SIZE])


def test_eight_concurrent_readers_share_one_download(conc, proxy, mounts):
    blob = conc.layers[0]
    # slow enough (about 2 s) that all eight readers are there while it downloads
    proxy.add(Fault.bandwidth(CONC_SIZE // 2), method="GET", path=f"/blobs/{blob.digest}",
              forever=True)
    m = mounts()
    f = m.image(proxy.addr, "mount/conc", "v1") / hexof(blob.digest)
    os.stat(f)
    barrier = threading.Barrier(8)
    results = [None] * 8

    def reader(i):
        try:
            barrier.wait(30)
            h = hashlib.sha256()
            with open(f, "rb") as r:
                for piece in iter(lambda: r.read(256 * 1024), b""):
                    h.update(piece)
            results[i] = "sha256:" + h.hexdigest()
        except BaseException as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)

    def run_all():
        ts = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    r = call_within(120, run_all)
    assert r.error is None
    assert results == [blob.digest] * 8, f"{results}\n{m.diag()}"
    fetched = blob_body_bytes(proxy, blob.digest)
    assert fetched <= 1.25 * blob.size, (
        f"{fetched} bytes fetched for a {blob.size}-byte blob read by 8 readers:\n"
        + proxy.dump())
    assert m.stats()["blob_bytes"] <= 1.25 * blob.size, m.stats()


def test_sequential_read_of_a_whole_layer_is_correct_and_fetched_once(conc, proxy, mounts):
    blob = conc.layers[0]
    m = mounts()
    f = m.image(proxy.addr, "mount/conc", "v1") / hexof(blob.digest)
    r = call_within(60, tools.sha256_file, f)
    assert r.error is None and r.value == blob.digest, (r.error, m.diag())
    assert blob_body_bytes(proxy, blob.digest) <= 1.25 * blob.size, proxy.dump()
    # a second read is served without the registry
    n = len(blob_gets(proxy))
    assert tools.sha256_file(f) == blob.digest
    assert len(blob_gets(proxy)) == n, proxy.dump()
