"""The write side of the mount: writing a dir: image into MNT/<registry>/<repo>/<tag>/ pushes
it (DESIGN §1 "Writing = pushing", issue #4). skopeo is the oracle: what it reads back from
the registry is compared with what was written; the fault proxy's request log shows what
went over the network and when."""

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from mountlib import (MiB, cache_entries, cache_listing, entries_of, expect_errno, hexof,
                      make_big_image, wait_until)
from testlib import images, tools
from testlib.faultproxy import Fault
from testlib.standard import ALL_IMAGES
from testlib.wait import elapse

# fs/filesystem_write.cc kSettleMs: a pushed staging image is dropped after this long idle.
SETTLE_S = 2.0


# ---- helpers ------------------------------------------------------------------------------------

def run(*argv, timeout=120):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def run_ok(*argv, timeout=120, m=None):
    p = run(*argv, timeout=timeout)
    assert p.returncode == 0, (f"{' '.join(map(str, argv))} exited {p.returncode}:\n"
                               f"{p.stdout}{p.stderr}" + (m.diag() if m else ""))
    return p


def skopeo_dir(oracle, ref, dest, multi):
    """A skopeo-made dir: image of ref (--all for a multi-platform one)."""
    oracle.copy(ref, f"dir:{dest}", *(["--all"] if multi else []))
    return dest


def raw_manifest(oracle, ref):
    return oracle.inspect(ref, "--raw", binary=True).stdout


def tag_absent(oracle, registry, repo, tag, why=""):
    """skopeo cannot inspect repo:tag, and list-tags either fails (no such repository) or
    does not list it."""
    r = oracle.inspect(registry.ref(repo, tag), "--raw", check=False)
    assert r.returncode != 0, f"{repo}:{tag} exists at the registry {why}"
    lt = oracle.list_tags(f"docker://{registry.addr}/{repo}", check=False)
    if lt.returncode == 0:
        tags = json.loads(lt.stdout).get("Tags") or []
        assert tag not in tags, f"skopeo list-tags shows {tag} {why}: {tags}"


def write_file(path, data, chunk=None):
    """open()/write()/close() of a new file; close() returns the push's result."""
    with open(path, "wb") as f:
        if chunk is None:
            f.write(data)
        else:
            for i in range(0, len(data), chunk):
                f.write(data[i:i + chunk])


def blob_names(src):
    """The names of a dir: image's blobs and instance manifests, sorted: all but manifest.json
    and version."""
    return sorted(n for n in os.listdir(src) if n not in ("manifest.json", "version"))


def manifest_puts(proxy, ref=None):
    return proxy.requests("PUT", f"/manifests/{ref}$" if ref else r"/manifests/")


def blob_files(img):
    """(name, bytes) of every blob of an images.Image, config first, in manifest order."""
    out = []
    for im in (img.instances or [img]):
        for b in [im.config] + im.layers:
            out.append((hexof(b.digest), b.data))
    return out


def assert_pushed(oracle, registry, repo, tag, src_dir, work, m=None):
    """skopeo reads back exactly the dir: image src_dir: the manifest bytes under the tag, and
    with copy --all every instance manifest and blob, byte for byte."""
    want = (src_dir / "manifest.json").read_bytes()
    got = raw_manifest(oracle, registry.ref(repo, tag))
    assert got == want, (f"{repo}:{tag}: skopeo reads {tools.sha256_bytes(got)}, "
                         f"the dir has {tools.sha256_bytes(want)}" + (m.diag() if m else ""))
    back = work / f"back-{repo.replace('/', '_')}-{tag}"
    oracle.copy(registry.ref(repo, tag), f"dir:{back}", "--all")
    assert tools.tree_diff(back, src_dir) == ""


# ---- cp -r of a dir: image pushes it ------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_IMAGES)
def test_cp_r_of_a_skopeo_dir_pushes_the_same_digest(name, imgs, registry2, mounts, oracle,
                                                     work, repo_name):
    it = getattr(imgs, name)
    src = skopeo_dir(oracle, it.ref, work / "src", it.image.is_index)
    m = mounts()
    repo = repo_name("write-cp")
    parent = m.reg(registry2.addr) / repo
    run_ok("mkdir", "-p", parent, m=m)
    run_ok("cp", "-r", src, parent / "tag", m=m)
    assert_pushed(oracle, registry2, repo, "tag", src, work, m)
    assert oracle.digest_of(registry2.ref(repo, "tag")) == it.digest
    # and the mount shows it there (a fresh lookup, past the staging image)
    d = m.image(registry2.addr, repo, "tag")
    assert (d / "manifest.json").read_bytes() == it.image.manifest
    config = (it.image.instances or [it.image])[0].config
    assert (d / hexof(config.digest)).read_bytes() == config.data


def test_cp_r_into_a_second_tag_uploads_no_blob(imgs, registry, proxy, mounts, oracle, work,
                                                repo_name):
    """A blob the repository has already is checked, not uploaded again."""
    it = imgs.oci
    repo = repo_name("write-again")
    images.push(it.dir, registry.addr, repo, "first")
    m = mounts()
    proxy.clear_log()
    run_ok("cp", "-r", it.dir, m.reg(proxy.addr) / repo / "second", m=m)
    assert registry.manifest_digest(repo, "second") == it.digest
    assert oracle.digest_of(registry.ref(repo, "second")) == it.digest
    uploads = proxy.requests(path=r"/blobs/uploads/")
    assert uploads == [], "blobs uploaded again:\n" + proxy.dump()
    assert len(manifest_puts(proxy, "second")) == 1, proxy.dump()


# ---- any order of arrival, pushed once --------------------------------------------------------

@pytest.mark.parametrize("name", ["oci", "docker_list"])
def test_reverse_order_pushes_once_after_the_last_blob(name, imgs, registry, proxy, mounts,
                                                      oracle, work, repo_name):
    """manifest.json first, then instance manifests, then the blobs last to first, version
    last: no tag and no manifest PUT until the last blob's close(), which pushes; exactly
    one PUT under the tag."""
    it = getattr(imgs, name)
    src = skopeo_dir(oracle, it.ref, work / "src", it.image.is_index)
    repo = repo_name("write-reverse")
    m = mounts()
    d = m.reg(proxy.addr) / repo / "rev"
    os.makedirs(d)
    order = [("manifest.json", (src / "manifest.json").read_bytes())]
    order += [(hexof(im.digest) + ".manifest.json", im.manifest) for im in it.image.instances]
    blobs = list(reversed(blob_files(it.image)))
    order += blobs
    last_blob = blobs[-1][0]
    proxy.clear_log()
    for name_, data in order:
        write_file(d / name_, data, chunk=16 * 1024)
        if name_ == last_blob:
            break
        assert manifest_puts(proxy) == [], f"a manifest PUT after {name_}:\n" + proxy.dump()
        tag_absent(oracle, registry, repo, "rev", f"after writing only up to {name_}")
    puts = manifest_puts(proxy, "rev")
    assert len(puts) == 1, "expected one manifest PUT under the tag:\n" + proxy.dump()
    # the push is the close() of the last blob: done when it returned
    assert raw_manifest(oracle, registry.ref(repo, "rev")) == it.image.manifest
    # A push is made by a file's close() (flush), and the proxy logs a request when it
    # starts: once write_file returned, a second push would be in the log.
    write_file(d / "version", images.DIR_VERSION)
    assert len(manifest_puts(proxy, "rev")) == 1, "pushed again:\n" + proxy.dump()
    # instance manifests went by digest, once each, before the index
    inst_puts = [e for e in manifest_puts(proxy) if "/manifests/sha256:" in e.path]
    assert len(inst_puts) == len(it.image.instances), proxy.dump()
    assert all(e.start < puts[0].start for e in inst_puts), proxy.dump()
    assert_pushed(oracle, registry, repo, "rev", src, work, m)


def test_out_of_order_writes_of_a_blob_are_staged_and_pushed(imgs, registry, mounts, oracle,
                                                            work, repo_name):
    """A blob written back to front (pwrite at descending offsets) is staged on disk,
    checked when closed, and uploaded by the push."""
    it = imgs.docker
    repo = repo_name("write-ooo")
    m = mounts()
    d = m.reg(registry.addr) / repo / "ooo"
    os.makedirs(d)
    write_file(d / "version", images.DIR_VERSION)
    write_file(d / "manifest.json", it.image.manifest)
    big = max(it.image.layers, key=lambda b: b.size)
    for name_, data in blob_files(it.image):
        if name_ != hexof(big.digest):
            write_file(d / name_, data)
    tag_absent(oracle, registry, repo, "ooo", "before the last blob")
    fd = os.open(d / hexof(big.digest), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        step = 8 * 1024
        offsets = list(range(0, len(big.data), step))
        for off in reversed(offsets):
            assert os.pwrite(fd, big.data[off:off + step], off) == len(big.data[off:off + step])
    finally:
        os.close(fd)
    assert oracle.digest_of(registry.ref(repo, "ooo")) == it.digest, m.diag()
    assert_pushed(oracle, registry, repo, "ooo", it.dir, work, m)


# ---- copies inside the mount happen at the registry ------------------------------------------

@pytest.mark.parametrize("name", ["oci", "docker_list"])
def test_cp_r_within_one_registry_moves_no_blob_bytes(name, imgs, registry, proxy, mounts,
                                                     oracle, repo_name):
    """cp -r MNT/A/repo/v1 MNT/A/other/v1: every blob is a cross-repository mount (POST
    /blobs/uploads/?mount=…); no blob is read (GET) or uploaded (PATCH, PUT with bytes)."""
    it = getattr(imgs, name)
    src_repo, dst_repo = repo_name("write-src"), repo_name("write-dst")
    images.push(it.dir, registry.addr, src_repo, "v1")
    m = mounts()
    a = m.reg(proxy.addr)
    os.makedirs(a / dst_repo)
    proxy.clear_log()
    run_ok("cp", "-r", a / src_repo / "v1", a / dst_repo / "v1", m=m)
    assert oracle.digest_of(registry.ref(dst_repo, "v1")) == it.digest
    assert registry.manifest_digest(dst_repo, "v1") == it.digest
    log = proxy.dump()
    assert proxy.requests("GET", r"/blobs/") == [], "blob bytes were read:\n" + log
    assert proxy.requests("PATCH") == [], "blob bytes were uploaded:\n" + log
    sent = [e for e in proxy.requests(path=r"/blobs/") if e.request_bytes > 0]
    assert sent == [], "blob bytes were uploaded:\n" + log
    mounted = {re.search(r"mount=([^&]+)", e.path).group(1).replace("%3A", ":").replace(
        "%3a", ":") for e in proxy.requests("POST", r"/blobs/uploads/\?.*mount=")}
    assert mounted == set(it.image.blobs()), "blobs not mounted from the source:\n" + log
    for digest in it.image.blobs():
        assert registry.has_blob(dst_repo, digest)


def test_cp_r_between_registries_goes_through_copy_file_range(imgs, registry, registry2,
                                                              mounts, oracle, work, repo_name):
    """cp -r MNT/A/repo/v1 MNT/B/repo/v1: cp's copy_file_range calls for the blobs succeed
    whole (strace), the daemon streams them registry to registry (none lands in the mount's
    cache, as a read through the mount would), and the digest is preserved."""
    it = imgs.oci
    repo = repo_name("write-x")
    images.push(it.dir, registry.addr, repo, "v1")
    m = mounts()
    os.makedirs(m.reg(registry2.addr) / repo)
    trace = work / "strace.txt"
    run_ok("strace", "-f", "-o", trace, "-e", "trace=copy_file_range",
           "cp", "-r", m.image(registry.addr, repo, "v1"), m.image(registry2.addr, repo, "v1"),
           m=m)
    assert oracle.digest_of(registry2.ref(repo, "v1")) == it.digest
    assert_pushed(oracle, registry2, repo, "v1", it.dir, work, m)
    calls = re.findall(r"copy_file_range\((\d+), NULL, (\d+), NULL, (\d+), \d+\) = (-?\d+)",
                       trace.read_text())
    returned = [int(c[3]) for c in calls]
    sizes = [b.size for b in it.image.blobs().values()]
    for size in sizes:
        assert size in returned, (f"no copy_file_range returned a blob's size {size}:\n"
                                  + trace.read_text())
    # A blob read through the mount lands in its cache (committed just after the reader has
    # its bytes): read one now, and once it is there, none of the others may be.
    layer = it.image.layers[0]
    assert tools.sha256_file(m.image(registry.addr, repo, "v1") / hexof(layer.digest)) == \
        layer.digest
    assert wait_until(lambda: hexof(layer.digest) in cache_entries(m.cache_dir), 5), \
        cache_listing(m.cache_dir)
    cached = set(cache_entries(m.cache_dir)) & {hexof(d) for d in it.image.blobs()}
    assert cached == {hexof(layer.digest)}, \
        f"blobs went through the mount (its cache has them): {cached}\n" + m.diag()


# ---- incomplete and corrupt images never appear ---------------------------------------------

def test_missing_blob_means_no_tag_until_it_arrives(imgs, registry, mounts, oracle, work,
                                                    repo_name):
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    missing = it.image.layers[1]
    (src / hexof(missing.digest)).rename(work / "held-back")
    repo = repo_name("write-missing")
    m = mounts()
    os.makedirs(m.reg(registry.addr) / repo)
    d = m.image(registry.addr, repo, "t")
    run("cp", "-r", src, d)  # its exit status is not the point: the tag is
    closed = time.monotonic()   # the staging image was last touched before this
    tag_absent(oracle, registry, repo, "t", "without one of its blobs")
    # Still nothing once the settle interval has passed: time passing is the subject here and
    # nothing changes meanwhile to poll for, so wait exactly that long since the last close.
    elapse(SETTLE_S, since=closed)
    tag_absent(oracle, registry, repo, "t", "without one of its blobs (later)")
    assert not registry.has_manifest(repo, it.digest)
    # the blob arriving completes the image: pushed then
    write_file(d / hexof(missing.digest), (work / "held-back").read_bytes())
    assert oracle.digest_of(registry.ref(repo, "t")) == it.digest, m.diag()


def test_blob_not_matching_its_name_fails_cp_and_no_tag(imgs, registry, mounts, oracle, work,
                                                        repo_name):
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    bad = max(it.image.layers, key=lambda b: b.size)
    p = src / hexof(bad.digest)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    repo = repo_name("write-corrupt")
    m = mounts()
    os.makedirs(m.reg(registry.addr) / repo)
    r = run("cp", "-r", src, m.image(registry.addr, repo, "t"))
    assert r.returncode != 0, "cp of a corrupt blob succeeded\n" + m.diag()
    assert "Input/output error" in r.stderr and hexof(bad.digest) in r.stderr, r.stderr
    tag_absent(oracle, registry, repo, "t", "with a corrupt blob")
    assert not registry.has_blob(repo, bad.digest), "the corrupt upload was completed"
    assert re.search(f"{hexof(bad.digest)}.*digest", m.log_text()), \
        "the log does not say why:\n" + m.diag()


def staging_fds(m):
    """The daemon's open descriptors of files below cache_dir/staging (blob spills)."""
    out = []
    for fd in os.listdir(f"/proc/{m.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{m.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(m.cache_dir / "staging")):
            out.append(target)
    return out


def test_a_failed_staging_image_holds_no_descriptors(imgs, registry, mounts, oracle, work,
                                                     repo_name):
    """A staging image that failed waits (for its bad file to be written again) with every
    file closed: it keeps its spill files, not a descriptor for each; writing the bad blob
    again correctly completes the push."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    bad = max(it.image.layers, key=lambda b: b.size)
    good = (src / hexof(bad.digest)).read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01
    (src / hexof(bad.digest)).write_bytes(bytes(data))
    repo = repo_name("write-waits")
    m = mounts()
    os.makedirs(m.reg(registry.addr) / repo)
    tag_dir = m.image(registry.addr, repo, "t")
    r = run("cp", "-r", src, tag_dir)
    assert r.returncode != 0, "cp of a corrupt blob succeeded\n" + m.diag()
    assert staging_fds(m) == []
    # the blob written again, right this time
    (work / "good").write_bytes(good)
    run_ok("cp", work / "good", tag_dir / hexof(bad.digest), m=m)
    assert registry.manifest_digest(repo, "t") == it.digest
    assert staging_fds(m) == []


@pytest.mark.parametrize("then", ["listed", "quiet"])
def test_a_failed_copy_leaves_no_staging_image_behind(then, imgs, registry, mounts, oracle, work,
                                                      repo_name):
    """A failed cp's staging image waits for its bad file to be written again while the cp
    runs and 4x timeout= after it ends; then it goes, with its directory and spill files
    (else a long-lived mount would keep one for every failed copy): when its repository is
    listed, or, on a mount nobody uses, within the daemon's housekeeping period (10 s). The
    tag never exists."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    bad = max(it.image.layers, key=lambda b: b.size)
    data = bytearray((src / hexof(bad.digest)).read_bytes())
    data[len(data) // 2] ^= 0x01
    (src / hexof(bad.digest)).write_bytes(bytes(data))
    repo = repo_name("write-abandoned")
    m = mounts("timeout=1")  # held for 4 s once its writer has ended
    os.makedirs(m.reg(registry.addr) / repo)
    tag_dir = m.image(registry.addr, repo, "t")
    r = run("cp", "-r", src, tag_dir)
    assert r.returncode != 0, "cp of a corrupt blob succeeded\n" + m.diag()
    held = m.stats()["entries"]
    assert held["staging_images"] == 1 and tag_dir.is_dir(), (held, m.diag())
    spilled = [p for p in (m.cache_dir / "staging").rglob("*") if p.is_file()]
    time.sleep(4.5)
    if then == "listed":
        # the next listing drops it; the kernel forgets the directory
        assert "t" not in os.listdir(tag_dir.parent), m.diag()
    else:
        assert wait_until(lambda: m.stats()["entries"]["staging_images"] == 0, 12), m.diag()
    assert not tag_dir.exists(), m.diag()
    after = m.stats()["entries"]
    assert after["staging_images"] == 0, (after, m.diag())
    assert after["local_dirs"] == held["local_dirs"] - 1, (held, after)
    assert not [p for p in spilled if p.exists()], spilled
    assert re.search(rf"dropped the unpushed image written to \S+/{re.escape(repo)}:t: the "
                     rf"close\(\) of {hexof(bad.digest)} failed", m.log_text()), m.diag()
    tag_absent(oracle, registry, repo, "t", "after a failed cp")
    # and the tag can be written afresh
    run_ok("cp", "-r", it.dir, tag_dir, m=m)
    assert registry.manifest_digest(repo, "t") == it.digest


def test_failed_push_fails_the_completing_close(imgs, registry, proxy, mounts, oracle, work,
                                                repo_name):
    """The registry refuses the manifest: the close() that completed the image reports it, so
    cp exits non-zero, and the registry's message is in the log."""
    it = imgs.docker
    repo = repo_name("write-refused")
    proxy.add(Fault.status(403), method="PUT", path=r"/manifests/", forever=True)
    m = mounts("timeout=5")
    os.makedirs(m.reg(proxy.addr) / repo)
    t0 = time.monotonic()
    r = run("cp", "-r", it.dir, m.image(proxy.addr, repo, "t"))
    assert r.returncode != 0, "cp succeeded although the push failed\n" + m.diag()
    assert time.monotonic() - t0 < 30
    assert manifest_puts(proxy), proxy.dump()
    tag_absent(oracle, registry, repo, "t", "after a refused push")
    assert "injected by faultproxy (403)" in m.log_text(), m.diag()


@pytest.mark.parametrize("retries", ["lost", "429"])
def test_push_whose_manifest_answer_is_lost_succeeds(retries, imgs, registry, proxy, mounts,
                                                     work, repo_name):
    """The registry stores the manifest and the connection breaks before its answer; every
    retry's answer is lost too, or is a 429: the tag is there, so the cp that pushed it
    succeeds (a failed cp leaves no tag, and this one left one)."""
    it = imgs.docker
    repo = repo_name("write-lost-" + retries)
    if retries == "lost":
        drop = proxy.add(Fault.drop(when="answered"), method="PUT", path=r"/manifests/", count=5)
    else:
        drop = proxy.add(Fault.drop(when="answered"), method="PUT", path=r"/manifests/", count=1)
        proxy.add(Fault.status(429, skip=1), method="PUT", path=r"/manifests/", forever=True)
    m = mounts()
    os.makedirs(m.reg(proxy.addr) / repo)
    r = run("cp", "-r", it.dir, m.image(proxy.addr, repo, "t"))
    assert drop.fired >= 1, proxy.dump()
    assert r.returncode == 0, r.stderr + m.diag()
    assert registry.manifest_digest(repo, "t") == it.digest


# ---- names ----------------------------------------------------------------------------------

def test_non_layout_names_are_einval_and_logged(imgs, registry, mounts, oracle, repo_name):
    repo = repo_name("write-names")
    images.push(imgs.docker.dir, registry.addr, repo, "pushed")
    m = mounts()
    new = m.reg(registry.addr) / repo / "new"
    os.mkdir(new)
    pushed = m.image(registry.addr, repo, "pushed")
    for d, name in [(new, "notes.txt"), (new, "signature-0"), (new, "ABCD" * 16),
                    (new, "manifest.json.tmp"), (pushed, "README")]:
        expect_errno(errno.EINVAL, write_file, d / name, b"x")
        assert name in m.log_text() and "dir: layout" in m.log_text(), \
            f"no log line says why {name} was refused:\n" + m.diag()
    # nothing came of it
    assert "README" not in os.listdir(pushed)
    assert oracle.digest_of(registry.ref(repo, "pushed")) == imgs.docker.digest
    # an image directory holds files only
    expect_errno(errno.EINVAL, os.mkdir, pushed / "sub")
    # version's content is checked
    expect_errno(errno.EINVAL, write_file, new / "version", b"Directory Transport Version: 9\n")


# ---- a new manifest moves the tag ------------------------------------------------------------

def test_new_manifest_into_an_existing_tag_moves_it(imgs, registry, mounts, oracle, work,
                                                    repo_name):
    repo = repo_name("write-move")
    images.push(imgs.oci.dir, registry.addr, repo, "t")
    m = mounts()
    d = m.image(registry.addr, repo, "t")
    assert (d / "manifest.json").read_bytes() == imgs.oci.image.manifest
    new = imgs.docker
    for name_, data in blob_files(new.image):
        write_file(d / name_, data)
    write_file(d / "version", images.DIR_VERSION)
    before = oracle.digest_of(registry.ref(repo, "t"))
    assert before == imgs.oci.digest, "the tag moved before the new manifest was written"
    write_file(d / "manifest.json", new.image.manifest)
    assert oracle.digest_of(registry.ref(repo, "t")) == new.digest, m.diag()
    assert_pushed(oracle, registry, repo, "t", new.dir, work, m)


# ---- cp -a ----------------------------------------------------------------------------------

def test_cp_a_into_the_mount(imgs, registry, mounts, oracle, work, repo_name):
    """cp -a sets modes, owners and times, which a staging image accepts."""
    it = imgs.docker_list
    repo = repo_name("write-cpa")
    m = mounts()
    os.makedirs(m.reg(registry.addr) / repo)
    d = m.image(registry.addr, repo, "t")
    r = run("cp", "-a", it.dir, d)
    assert r.returncode == 0 and r.stderr == "", f"cp -a: {r.returncode} {r.stderr}\n" + m.diag()
    assert oracle.digest_of(registry.ref(repo, "t")) == it.digest
    # and directly, on a staged file
    d2 = m.reg(registry.addr) / repo / "direct"
    os.mkdir(d2)
    f = d2 / "version"
    write_file(f, images.DIR_VERSION)
    os.chmod(f, 0o600)
    os.chown(f, os.getuid(), os.getgid())
    os.utime(f, (1_000_000_000, 1_000_000_000))


# ---- a push in flight holds up nothing else ------------------------------------------------------

def test_pushed_staging_images_do_not_pile_up(registry, mounts, work, repo_name):
    """Each staging image keeps its blobs' spill files (open) until it is dropped; pushing tag
    after tag, never looked at again, must not keep every one of them — nor the inodes of
    every file and directory written (the kernel is told to drop its entries of them once
    the image settles, so it forgets them)."""
    m = mounts()
    repo = repo_name("write-many")
    parent = m.reg(registry.addr) / repo
    run_ok("mkdir", "-p", parent, m=m)

    def staged():
        fds = []
        for fd in os.listdir(f"/proc/{m.pid}/fd"):
            try:
                fds.append(os.readlink(f"/proc/{m.pid}/fd/{fd}"))
            except OSError:
                pass
        spill = m.cache_dir / "staging"
        files = [p for p in spill.rglob("*") if p.is_file()] if spill.exists() else []
        return [f for f in fds if f.startswith(str(spill))], files

    for i in range(6):
        src = images.make_image(work / f"src{i}", seed=700 + i).path
        run_ok("cp", "-r", src, parent / f"t{i}", m=m)
        assert registry.manifest_digest(repo, f"t{i}") == \
            tools.sha256_file(src / "manifest.json")
        elapse(SETTLE_S + 0.5, since=time.monotonic())  # the pushed image settles
        if i == 1:
            inodes = m.stats()["entries"]["inodes"]
    fds, files = staged()
    # the five files and the directory of every tag pushed since are forgotten as they settle
    assert m.stats()["entries"]["inodes"] <= inodes + 6, (inodes, m.stats())
    # at most the last image's 3 blobs (config and two layers) are still staged
    assert len(fds) <= 3 and len(files) <= 3, (fds, files)


def test_stat_and_ls_answer_while_a_blob_upload_is_held(registry, proxy, mounts, oracle, work,
                                                        repo_name):
    """stat and ls of an image directory being pushed, and stat of the blob being written,
    answer from local state while that blob's upload is stalled at the registry (issue 10):
    no request runs under a lock they need. The upload is released only after they returned."""
    big = make_big_image(work / "big", 8 * MiB, seed=405)
    repo = repo_name("write-held")
    release = threading.Event()
    proxy.add(Fault.hold_upload(release, after=1 * MiB), path=r"/blobs/uploads/", forever=True)
    # regfs must not give up on the held request before the guard below does
    m = mounts("timeout=600")
    os.makedirs(m.reg(proxy.addr) / repo)
    d = m.image(proxy.addr, repo, "t")
    os.mkdir(d)
    write_file(d / "manifest.json", big.manifest)
    write_file(d / hexof(big.config.digest), big.config.file.read_bytes())
    layer = d / hexof(big.layer.digest)
    want = sorted(["manifest.json", hexof(big.config.digest), hexof(big.layer.digest)])
    cp = subprocess.Popen(["cp", str(big.layer.file), str(layer)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers = {}

    def look():
        answers["dir"] = stat.S_ISDIR(os.stat(d).st_mode)
        answers["names"] = sorted(os.listdir(d))
        answers["layer size"] = os.stat(layer).st_size
        answers["ls"] = run("ls", "-l", d, m.reg(proxy.addr) / repo, timeout=60)
        answers["other"] = os.listdir(m.reg(registry.addr))  # another registry, meanwhile

    try:
        def held():
            return [e for e in proxy.requests(path=r"/blobs/uploads/") if e.held]
        assert wait_until(held, 30), "the blob's upload never reached the hold:\n" + \
            proxy.dump() + m.diag()
        upload = held()[0]
        looker = threading.Thread(target=look, daemon=True)
        looker.start()
        # A guard against hanging, not a measurement: whatever waits for the held upload
        # waits until it is released, which happens only after this.
        assert wait_until(lambda: not looker.is_alive(), 60), \
            "stat or ls of the directory waited for the held upload\n" + m.diag()
        assert upload.held, proxy.dump()
        assert cp.poll() is None, "cp finished while its upload was held"
        assert manifest_puts(proxy) == [], proxy.dump()
    finally:
        release.set()
        try:
            _, err = cp.communicate(timeout=120)
        finally:
            if cp.poll() is None:
                cp.kill()
                cp.wait()
    assert answers["dir"] and answers["names"] == want, answers
    assert 0 < answers["layer size"] <= big.layer.size, answers
    assert answers["ls"].returncode == 0, answers["ls"].stderr
    assert cp.returncode == 0, err + m.diag()
    assert oracle.digest_of(registry.ref(repo, "t")) == big.digest, m.diag()


# ---- SIGKILL in the middle of a push ----------------------------------------------------------

def test_sigkill_during_a_push_leaves_no_tag(registry, proxy, mounts, oracle, work, repo_name):
    big = make_big_image(work / "big", 24 * MiB, seed=404)
    repo = repo_name("write-kill")
    # uploads crawl at 4 MiB/s through the proxy
    proxy.add(Fault.upload_bandwidth(4 * MiB), path=r"/blobs/uploads/", forever=True)
    m = mounts()
    os.makedirs(m.reg(proxy.addr) / repo)
    d = m.image(proxy.addr, repo, "t")
    # manifest.json and config first, so that only the big layer is left
    os.mkdir(d)
    write_file(d / "manifest.json", big.manifest)
    write_file(d / hexof(big.config.digest), big.config.file.read_bytes())
    cp = subprocess.Popen(["cp", str(big.layer.file), str(d / hexof(big.layer.digest))],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        def uploading():
            return any(e.request_bytes >= 2 * MiB
                       for e in proxy.requests(path=r"/blobs/uploads/"))
        assert wait_until(uploading, 30), "the big blob's upload never started:\n" + \
            proxy.dump() + m.diag()
        assert cp.poll() is None, "cp finished before the kill: the upload was not throttled"
        m.kill(signal.SIGKILL)
        _, err = cp.communicate(timeout=30)
    finally:
        if cp.poll() is None:
            cp.kill()
            cp.wait()
    assert cp.returncode != 0, "cp succeeded although the daemon was killed"
    assert wait_until(lambda: not os.path.exists(f"/proc/{m.pid}"), 10)
    uploaded = max(e.request_bytes for e in proxy.requests(path=r"/blobs/uploads/"))
    assert 0 < uploaded < big.layer.size, proxy.dump()
    assert manifest_puts(proxy) == [], proxy.dump()
    tag_absent(oracle, registry, repo, "t", "after the daemon was killed mid-push")
    assert not registry.has_blob(repo, big.layer.digest)
    # the dead mount goes away
    m.unmount()
    assert m.gone()


@pytest.mark.parametrize("known", ["read through the mount", "in the blob location cache",
                                   "in the same repository"])
def test_corrupt_blob_the_registry_has_elsewhere_leaves_no_tag(imgs, registry, mounts, oracle,
                                                               work, repo_name, regfs_ok, known):
    """The registry holds the blob — in another repository, and the mount knows where (it read
    that image, or a copy recorded it), or in the destination repository itself: a cp whose
    copy of the blob is corrupt fails, and the image must not be pushed with the registry's
    good blob in its place. The files are copied one by one, the corrupt blob first, since
    cp -r's order is the source directory's. The orders in which the image is complete from
    the registry's side before the corrupt blob is written (manifest.json first) are in
    test_kill.py: the push is undone."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    bad = max(it.image.layers, key=lambda b: b.size)
    p = src / hexof(bad.digest)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    home = work / "home"
    env = {"XDG_CACHE_HOME": str(home / ".cache"), "HOME": str(home)}
    if known == "in the blob location cache":
        regfs_ok("copy", it.ref, registry.ref(repo_name("write-elsewhere-seen"), "t"), env=env)
    m = mounts(env=env)
    if known == "read through the mount":
        for f in sorted(m.image(registry.addr, it.repo, it.tag).iterdir()):
            f.read_bytes()
    repo = repo_name("write-corrupt-elsewhere")
    if known == "in the same repository":
        regfs_ok("copy", it.ref, registry.ref(repo, "other"), env=env)
    dst = m.image(registry.addr, repo, "t")
    os.makedirs(dst)
    names = sorted(f.name for f in src.iterdir() if f.name != "manifest.json")
    names.sort(key=lambda n: n != hexof(bad.digest))  # the corrupt one first
    names.append("manifest.json")
    failed = [n for n in names if run("cp", src / n, dst / n).returncode != 0]
    assert failed == [hexof(bad.digest)], (failed, m.diag())
    tag_absent(oracle, registry, repo, "t", "with a corrupt blob the registry has elsewhere")


def test_a_failed_push_is_not_made_by_a_later_close(imgs, registry, proxy, mounts, oracle, work,
                                                    repo_name):
    """The push that manifest.json's close() made failed (the registry refused the manifest
    once): cp reports that close and goes on to the next file. That file's close must not push
    the image — a failed cp leaves no tag — until manifest.json is written again."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    repo = repo_name("write-failed-then-version")
    proxy.add(Fault.status(403), method="PUT", path=r"/manifests/", count=1)
    m = mounts("timeout=5")
    dst = m.image(proxy.addr, repo, "t")
    os.makedirs(dst)
    names = blob_names(src)
    for n in names + ["manifest.json", "version"]:
        r = run("cp", src / n, dst / n)
        assert (r.returncode != 0) == (n == "manifest.json"), (n, r.stderr, m.diag())
    assert manifest_puts(proxy), proxy.dump()
    tag_absent(oracle, registry, repo, "t", "after its push failed and version was closed")
    run_ok("cp", src / "manifest.json", dst / "manifest.json", m=m)  # written again: pushed
    assert_pushed(oracle, registry, repo, "t", src, work, m)


def test_a_file_failing_after_the_push_undoes_it(imgs, registry, mounts, oracle, work,
                                                 repo_name):
    """manifest.json and the blobs complete the image, which is pushed; then the cp's version
    file has the wrong content, so its close() fails: the cp failed, and the push is undone."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    (src / "version").write_text("Directory Transport Version: 9.9\n")
    repo = repo_name("write-bad-version-after-push")
    m = mounts()
    dst = m.image(registry.addr, repo, "t")
    os.makedirs(dst)
    names = blob_names(src)
    for n in names + ["manifest.json"]:
        run_ok("cp", src / n, dst / n, m=m)
    assert oracle.digest_of(registry.ref(repo, "t")) == it.digest, m.diag()
    r = run("cp", src / "version", dst / "version")
    assert r.returncode != 0, m.diag()
    tag_absent(oracle, registry, repo, "t", "after its version file failed")
    assert "the tag is removed" in m.log_text(), m.diag()


def test_a_failed_write_fails_the_close_and_holds_the_image(imgs, registry, mounts, oracle,
                                                            work, repo_name):
    """A manifest.json written past the 4 MiB limit: the write fails (EFBIG), so does the
    close, and what was written of it is never pushed — not by the next file's close either."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    repo = repo_name("write-broken-manifest")
    m = mounts()
    dst = m.image(registry.addr, repo, "t")
    os.makedirs(dst)
    for n in blob_names(src):
        run_ok("cp", src / n, dst / n, m=m)
    manifest = (src / "manifest.json").read_bytes()
    fd = os.open(dst / "manifest.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        assert os.write(fd, manifest) == len(manifest)
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b" ", 4 * MiB)  # past the limit
        assert e.value.errno == errno.EFBIG
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)
    assert e.value.errno == errno.EIO
    run_ok("cp", src / "version", dst / "version", m=m)
    tag_absent(oracle, registry, repo, "t", "after a failed write of manifest.json")


class LateWriter:
    """A process that copies the blobs and manifest.json of dir: image src into dst (pushing
    it), then waits, still running, until finish() lets it create version — a copy whose last
    file comes late."""

    SCRIPT = (
        "import os, shutil, sys\n"
        "src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
        "for n in names + ['manifest.json']:\n"
        "    shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))\n"
        "print('pushed', flush=True)\n"
        "sys.stdin.readline()\n"
        "fd = os.open(os.path.join(dst, 'version'), os.O_WRONLY | os.O_CREAT | os.O_EXCL)\n"
        "os.write(fd, open(os.path.join(src, 'version'), 'rb').read())\n"
        "os.close(fd)\n")

    def __init__(self, src, dst, m):
        self.names = blob_names(src)
        self.m = m
        self.p = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(src), str(dst),
                                   *self.names], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

    def __enter__(self):
        assert self.p.stdout.readline() == "pushed\n", self.p.stderr.read() + self.m.diag()
        return self

    def finish(self):
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        assert self.p.wait(timeout=60) == 0, self.p.stderr.read() + self.m.diag()

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_a_pushed_image_stays_staged_while_its_writer_runs(imgs, registry, mounts, oracle, work,
                                                           repo_name):
    """A copy whose next file comes late (its path walk held up by a slow registry) still finds
    the staging image it writes: the image is pushed, and the writer, still running after the
    settle interval, creates version in it — no lookup at the registry in between, the
    directory still shows what was written. Once the writer has exited, the pushed image
    settles as before."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    repo = repo_name("write-late-file")
    m = mounts()
    dst = m.image(registry.addr, repo, "t")
    os.makedirs(dst)
    with LateWriter(src, dst, m) as writer:
        closed = time.monotonic()
        assert oracle.digest_of(registry.ref(repo, "t")) == it.digest, m.diag()
        elapse(SETTLE_S + 1, since=closed)
        # still the staging image: what was written, without version
        assert sorted(os.listdir(dst)) == sorted(writer.names + ["manifest.json"]), m.diag()
        writer.finish()
    exited = time.monotonic()
    assert oracle.digest_of(registry.ref(repo, "t")) == it.digest, m.diag()
    elapse(SETTLE_S + 0.5, since=exited)
    # settled: looked up, the directory is the registry's image again, and the staging image
    # with its spill files is gone
    assert os.listdir(dst) == entries_of(it.image), m.diag()
    spill = m.cache_dir / "staging"
    assert not [p for p in spill.rglob("*") if p.is_file()], m.diag()


def test_a_registry_failing_for_a_moment_does_not_fail_a_copy_under_way(imgs, registry, proxy,
                                                                       mounts, oracle, work,
                                                                       repo_name):
    """The kernel looks up every directory above a path again when its entry expires: with the
    registry failing every GET for a while, the namespace a copy writes below (which only the
    registry knows) is what it was a moment ago, so the copy's next file is created and the
    copy completes. A name never looked up fails (EIO) meanwhile."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    ns = it.repo.split("/")[0]  # a namespace at the registry, not made by mkdir here
    repo = ns + "/" + repo_name("write-hiccup").replace("/", "-")
    m = mounts("tag_ttl=1", "list_ttl=1", "timeout=3")
    dst = m.image(proxy.addr, repo, "t")
    os.makedirs(dst)
    try:
        with LateWriter(src, dst, m) as writer:
            assert oracle.digest_of(registry.ref(repo, "t")) == it.digest, m.diag()
            proxy.add(Fault.status(503), method="GET", forever=True)
            elapse(1.5, since=time.monotonic())  # every entry on the way has expired
            expect_errno(errno.EIO, os.stat, m.reg(proxy.addr) / "neverlookedup", within=60)
            writer.finish()
    finally:
        proxy.clear_faults()
    assert oracle.digest_of(registry.ref(repo, "t")) == it.digest, m.diag()


@pytest.mark.parametrize("catalog", ["slow", "failing"])
def test_a_new_tag_is_no_namespace_while_the_catalog_cannot_tell(catalog, imgs, registry, proxy,
                                                                  mounts, oracle, work,
                                                                  repo_name):
    """`cp -r IMG REPO/TAG` looks TAG up first. While the registry's catalog is slow or failing,
    TAG is not taken for a namespace (which would send the copy into REPO/TAG/IMG and push
    REPO/TAG:IMG): a slow catalog is no answer, and the copy pushes REPO:TAG; a failing one
    fails the lookup, and the copy, with nothing pushed anywhere."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "img", False)
    repo = repo_name("write-catalog-" + catalog)
    oracle.copy(it.ref, registry.ref(repo, "old"))  # a repository with tags, in the catalog
    m = mounts("timeout=3")
    reg = m.reg(proxy.addr)
    if catalog == "slow":
        proxy.add(Fault.latency(8), path=r"^/v2/_catalog", forever=True)
    else:
        proxy.add(Fault.status(503), path=r"^/v2/_catalog", forever=True)
        # The listing fails, and its failure is remembered for the lookups that follow.
        expect_errno(errno.EIO, os.listdir, reg, within=60)
    p = run("cp", "-r", src, m.image(proxy.addr, repo, "new"))
    assert not registry.has_manifest(f"{repo}/new", "img"), m.diag()
    if catalog == "slow":
        assert p.returncode == 0, p.stderr + m.diag()
        assert oracle.digest_of(registry.ref(repo, "new")) == it.digest, m.diag()
    else:
        assert p.returncode != 0 and "Input/output error" in p.stderr, p.stderr + m.diag()
        tag_absent(oracle, registry, repo, "new", "after a failed cp")
    assert proxy.requests("GET", r"^/v2/_catalog"), "the catalog was never asked for"


def test_the_first_file_of_a_copy_asks_the_registry_nothing(imgs, registry, proxy, mounts,
                                                             oracle, work, repo_name):
    """cp looks up each file before it creates it. In a directory just made for an image, the
    first file's name (here `version`, as cp may write it first) is not asked about as a
    repository at the registry: with the registry failing every GET, the file is created, and
    the copy completes."""
    it = imgs.oci
    src = skopeo_dir(oracle, it.ref, work / "src", False)
    repo = repo_name("write-first-file")
    m = mounts("timeout=2")
    tag_dir = m.image(proxy.addr, repo, "t")
    os.makedirs(tag_dir)
    proxy.add(Fault.status(503), method="GET", forever=True)
    try:
        write_file(tag_dir / "version", (src / "version").read_bytes())
        assert not proxy.requests(path=r"/t/version"), proxy.dump()
        for name in blob_names(src) + ["manifest.json"]:
            write_file(tag_dir / name, (src / name).read_bytes())
    finally:
        proxy.clear_faults()
    assert registry.manifest_digest(repo, "t") == it.digest, m.diag()
