"""Blob locations and link counts (issue 10): a blob known in several registries is read from
the next one when one serves bytes that do not verify, and st_nlink lets `du` count a blob
shared by several image directories once."""

import errno
import os
import subprocess

import pytest

from mountlib import MiB, hexof, read_all
from testlib import images, tools
from testlib.faultproxy import Fault

REPO = "mount/locations"


@pytest.fixture(scope="module")
def both(registry, registry2, session_dir):
    """One image, with a 4 MiB layer, pushed to both registries as REPO:v1."""
    img = images.make_image(session_dir / "locations", seed=1010, fmt="oci", layers=["tar"],
                            layer_size=4 * MiB)
    images.push(img.path, registry.addr, REPO, "v1")
    images.push(img.path, registry2.addr, REPO, "v1")
    return img


def corrupt_layer(proxy, img):
    layer = img.layers[0]
    # Every response for the layer has its 11th byte flipped: the proxy's registry is bad.
    proxy.add(Fault.flip_byte(offset=10), method="GET", path=f"/blobs/{layer.digest}",
              forever=True)
    return layer


def flipped(proxy):
    return any("flip" in e.faults for e in proxy.requests())


def test_a_read_falls_back_to_a_registry_whose_bytes_verify(both, proxy, registry2, mounts):
    # verify=full: no byte reaches the reader before the verdict, so the read itself falls back.
    layer = corrupt_layer(proxy, both)
    m = mounts("verify=full")
    bad_dir = m.image(proxy.addr, REPO, "v1")
    good_dir = m.image(registry2.addr, REPO, "v1")
    assert hexof(layer.digest) in os.listdir(bad_dir)  # the bad location first
    assert hexof(layer.digest) in os.listdir(good_dir)
    data = read_all(bad_dir / hexof(layer.digest))
    assert tools.sha256_bytes(data) == layer.digest, m.diag()
    assert flipped(proxy), proxy.dump()  # the bad registry was tried first
    assert "discarded" in m.log_text(), m.diag()
    assert read_all(good_dir / hexof(layer.digest)) == data  # one inode, verified and cached


def test_after_a_bad_read_the_next_read_gets_good_bytes_never_bad_ones(both, proxy, registry2,
                                                                       mounts):
    # verify=stream: the first reader may be given bytes of the bad registry before the
    # verdict, and then gets EIO; the kernel may have cached them. The next read must see the
    # good registry's bytes, not the cached bad ones.
    layer = corrupt_layer(proxy, both)
    m = mounts()
    bad_dir = m.image(proxy.addr, REPO, "v1")
    good_dir = m.image(registry2.addr, REPO, "v1")
    os.listdir(bad_dir)
    os.listdir(good_dir)
    path = bad_dir / hexof(layer.digest)
    try:
        first = read_all(path)
    except OSError as e:
        assert e.errno == errno.EIO, e
    else:
        assert tools.sha256_bytes(first) == layer.digest, "bad bytes read without an error"
    assert flipped(proxy), proxy.dump()
    gets = len(proxy.requests("GET", f"/blobs/{layer.digest}"))
    for p in (path, good_dir / hexof(layer.digest)):
        assert tools.sha256_bytes(read_all(p)) == layer.digest, m.diag()
    assert len(proxy.requests("GET", f"/blobs/{layer.digest}")) == gets  # skipped since


def test_when_every_location_is_bad_the_read_is_eio_naming_them(both, proxy, proxy2, mounts):
    corrupt_layer(proxy, both)
    layer = corrupt_layer(proxy2, both)
    m = mounts("verify=full")
    dirs = [m.image(px.addr, REPO, "v1") for px in (proxy, proxy2)]
    for d in dirs:
        os.listdir(d)
    with pytest.raises(OSError) as e:
        read_all(dirs[0] / hexof(layer.digest))
    assert e.value.errno == errno.EIO
    log = m.log_text()
    assert "every location failed" in log and proxy.addr in log and proxy2.addr in log, m.diag()


# ---- st_nlink and du ----------------------------------------------------------------------------

def du_sb(*paths):
    p = subprocess.run(["du", "-sb", *map(str, paths)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return [int(line.split("\t")[0]) for line in p.stdout.splitlines()]


def test_du_of_a_repository_counts_shared_blobs_once(registry, mounts, repo_name, work):
    img = images.make_image(work / "img", seed=1011, fmt="oci", layers=["tar", "gzip"])
    repo = repo_name("locations")
    images.push(img.path, registry.addr, repo, "t1")
    images.push(img.path, registry.addr, repo, "t2")  # two tags, every blob shared
    m = mounts()
    repo_dir = m.reg(registry.addr) / repo
    t1, t2 = repo_dir / "t1", repo_dir / "t2"
    [whole] = du_sb(repo_dir)  # one argument: GNU du remembers only inodes with st_nlink > 1
    [one] = du_sb(t1)
    small = sum(os.stat(t2 / n).st_size for n in ("manifest.json", "version"))
    blobs = sum(b.size for b in [img.config] + img.layers)
    assert one >= blobs, (one, blobs)
    assert whole == one + small, (whole, one, small, blobs)
    assert sum(du_sb(t1, t2)) == whole  # and with the tags given apart
    # ls -l shows the sharing: 1 (the registry's store) + the two directories
    assert os.stat(t1 / hexof(img.layers[0].digest)).st_nlink == 3
