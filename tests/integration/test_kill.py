"""Faults with nothing lost (issue 14): `regfs copy`, `regfs sync` and the mount's daemon
killed with SIGKILL in the middle of a transfer, the cache directory full, a cache file
corrupted on disk, a cp whose corrupt blob the registry already holds, and the registry
itself killed and restarted (same port, same storage) under a reader of the mount and under
`regfs copy`.

Each kill lands mid-transfer because the fault proxy slows the transfer down and the test
waits for evidence that it is under way (bytes through the proxy, a temporary on disk), never
for a fixed time. What test_faults.py, test_mount_write.py (SIGKILL of the daemon mid-push,
the corrupt blob written first), test_mount_cache.py (SIGKILL mid-download) and
test_sync_extensions.py (sync killed, then run again) cover is not repeated here."""

import errno
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mountlib import (MiB, blob_body_bytes, cache_entries, cache_listing, call_within, hexof,
                      invalid_cache_entries, make_big_image, pid_alive, wait_until)
from testlib import images, tools
from testlib.faultproxy import Fault, FaultProxy
from testlib.registry import Registry

LAYER = 12 * MiB          # the big layer of the images killed mid-transfer
SLOW = 2 * MiB            # bytes per second through the proxy while a kill is due


# ---- helpers ------------------------------------------------------------------------------------

def run(*argv, timeout=120):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def leftovers(root):
    """Temporaries a regfs process leaves while it writes: NAME.regfs-tmp-* and
    NAME.regfs-old-*, anywhere below root."""
    return sorted(str(p) for p in Path(root).rglob("*") if re.search(r"\.regfs-(tmp|old)-",
                                                                      p.name))


def start(regfs_bin, *args):
    return subprocess.Popen([regfs_bin, *map(str, args)], env=tools.clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_when(p, ready, what, timeout=60):
    """SIGKILLs the running process p once ready() holds; p must still be running then. The
    process is reaped whatever happens."""
    try:
        assert wait_until(lambda: ready() or p.poll() is not None, timeout), what
        assert p.poll() is None, f"it ended before the kill: {p.communicate()}"
        assert ready(), what
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        assert p.returncode == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def tag_absent(oracle, registry, repo, tag, why):
    r = oracle.inspect(registry.ref(repo, tag), "--raw", check=False)
    assert r.returncode != 0, f"{repo}:{tag} exists at the registry {why}"
    assert tag not in registry.tags(repo), f"{repo}:{tag} is listed {why}"


def manifest_puts(proxy):
    return proxy.requests("PUT", r"/manifests/")


def image_complete(registry, repo, tag):
    """The manifest under repo:tag and every blob it names are at the registry; returns the
    manifest's digest."""
    r = registry.manifest(repo, tag)
    assert r.status == 200, (repo, tag, r.status)
    m = json.loads(r.body)
    for d in [m["config"]] + m["layers"]:
        got = registry.get(f"/v2/{repo}/blobs/{d['digest']}")
        assert got.status == 200, f"{repo}:{tag}: blob {d['digest']} missing"
        assert tools.sha256_bytes(got.body) == d["digest"], f"{repo}:{tag}: {d['digest']} bad"
    return tools.sha256_bytes(r.body)


@pytest.fixture(scope="module")
def big(registry, session_dir):
    """An OCI image with one 12 MiB random uncompressed layer, pushed as kill/big:v1."""
    img = make_big_image(session_dir / "kill-big", LAYER, seed=1401)
    images.push(img.path, registry.addr, "kill/big", "v1")
    return img


# ---- 1. regfs copy killed ------------------------------------------------------------------------

def test_copy_killed_mid_push_leaves_no_tag_and_the_next_run_pushes(regfs_bin, regfs, big,
                                                                    registry, registry2,
                                                                    proxy2, oracle, repo_name):
    repo = repo_name("kill-copy")
    proxy2.add(Fault.upload_bandwidth(SLOW), path=r"/blobs/uploads/", forever=True)
    src = registry.ref("kill/big", "v1")
    p = start(regfs_bin, "copy", "-q", src, proxy2.ref(repo, "t"))

    def uploading():
        return any(e.request_bytes >= MiB for e in proxy2.requests(path=r"/blobs/uploads/"))
    kill_when(p, uploading, "the big blob's upload never started:\n" + proxy2.dump())
    uploaded = max(e.request_bytes for e in proxy2.requests(path=r"/blobs/uploads/"))
    assert uploaded < big.layer.size, proxy2.dump()
    assert manifest_puts(proxy2) == [], proxy2.dump()
    tag_absent(oracle, registry2, repo, "t", "after regfs copy was killed mid-push")
    assert not registry2.has_manifest(repo, big.digest)

    proxy2.clear_faults()
    again = regfs("copy", "-q", src, proxy2.ref(repo, "t"), timeout=180)
    assert again.returncode == 0, again.stderr
    assert image_complete(registry2, repo, "t") == big.digest


def _check_written(oracle, kind, out, big, work):
    """What the second run wrote is the image: skopeo reads it back, the big layer intact."""
    back = work / f"back-{kind}"
    oracle.copy(f"{kind}:{out}", f"dir:{back}")
    layer = back / hexof(big.layer.digest)
    assert layer.is_file(), tools.tree_files(back)
    assert tools.sha256_file(layer) == big.layer.digest
    if kind in ("dir", "oci"):  # the manifest is kept byte for byte
        assert tools.sha256_file(back / "manifest.json") == big.digest


@pytest.mark.parametrize("kind", ["dir", "oci", "docker-archive", "oci-archive"])
def test_copy_killed_mid_copy_the_next_run_succeeds_and_leaves_no_temporary(
        regfs_bin, regfs, big, proxy, oracle, work, kind):
    proxy.add(Fault.bandwidth(SLOW), method="GET", path=r"/blobs/sha256:", forever=True)
    dest = work / "dest"
    dest.mkdir()
    out = dest / ("out.tar" if kind.endswith("archive") else "out")
    argv = ["copy", "-q", proxy.ref("kill/big", "v1"), f"{kind}:{out}"]
    p = start(regfs_bin, *argv)

    def midway():
        return blob_body_bytes(proxy, big.layer.digest) >= MiB and leftovers(dest)
    kill_when(p, midway, f"no temporary below {dest} while the layer streamed:\n" +
              proxy.dump())
    assert blob_body_bytes(proxy, big.layer.digest) < big.layer.size, proxy.dump()
    assert leftovers(dest), "the killed copy left nothing to clean: the test proves nothing"

    proxy.clear_faults()
    again = regfs(*argv, timeout=180)
    assert again.returncode == 0, again.stderr
    assert leftovers(dest) == [], "temporaries of the killed copy are still there"
    assert sorted(os.listdir(dest)) == ["out" if kind in ("dir", "oci") else "out.tar"]
    _check_written(oracle, kind, out, big, work)


# ---- 2. regfs sync killed -----------------------------------------------------------------------

def test_sync_killed_mid_run_leaves_only_complete_tags_then_completes(regfs_bin, regfs,
                                                                     registry, registry2,
                                                                     proxy, repo_name, work):
    """Tags at the destination when sync is killed name complete images only; the next run
    brings every tag, complete. (test_sync_extensions.py checks the state after the second
    run; this checks the state the kill left.)"""
    repo = repo_name("kill-sync-src")
    want = {}
    for i in range(6):
        img = images.pushed_image(work / f"src{i}", registry, repo, f"t{i}", seed=1410 + i,
                                  layers=["tar", "gzip"], layer_size=[256 * 1024, 8192])
        want[f"t{i}"] = img.digest
    proxy.add(Fault.bandwidth(256 * 1024), method="GET", path=r"/blobs/sha256:", forever=True)
    ns = "kill-ns-" + hashlib.sha256(repo.encode()).hexdigest()[:8]
    dest_repo = f"{ns}/{repo.rsplit('/', 1)[1]}"
    argv = ["sync", "--src", "docker", "--dest", "docker", f"{proxy.addr}/{repo}",
            f"{registry2.addr}/{ns}"]
    p = start(regfs_bin, *argv)
    kill_when(p, lambda: registry2.tags(dest_repo), "no tag appeared at the destination")
    present = registry2.tags(dest_repo)
    assert len(present) < len(want), "every image was synced before the kill: too fast"
    for tag in present:
        assert image_complete(registry2, dest_repo, tag) == want[tag], tag

    proxy.clear_faults()
    again = regfs(*argv, timeout=180)
    assert again.returncode == 0, again.stderr
    assert registry2.tags(dest_repo) == sorted(want)
    for tag, digest in want.items():
        assert image_complete(registry2, dest_repo, tag) == digest, tag


# ---- 3. the mount's daemon killed mid-push ------------------------------------------------------

def test_daemon_killed_mid_cp_then_the_next_mount_on_its_cache_serves(big, imgs, registry,
                                                                      proxy, mounts, oracle,
                                                                      work, repo_name):
    cache = work / "cache"
    m = mounts("timeout=60", cache_dir=cache)
    small = imgs.oci
    before = {hexof(b.digest): b.digest for b in small.image.blobs().values()}
    for name, digest in before.items():  # cached by the first mount
        assert tools.sha256_file(m.image(registry.addr, small.repo, small.tag) / name) == digest
    repo = repo_name("kill-mount")
    proxy.add(Fault.upload_bandwidth(SLOW), path=r"/blobs/uploads/", forever=True)
    os.makedirs(m.reg(proxy.addr) / repo)
    dst = m.image(proxy.addr, repo, "t")
    cp = subprocess.Popen(["cp", "-r", str(big.path), str(dst)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def uploading():
            return any(e.request_bytes >= MiB for e in proxy.requests(path=r"/blobs/uploads/"))
        assert wait_until(lambda: uploading() or cp.poll() is not None, 60), proxy.dump()
        assert cp.poll() is None, f"cp ended before the kill: {cp.communicate()}"
        m.kill(signal.SIGKILL)
        _, err = cp.communicate(timeout=30)
    finally:
        if cp.poll() is None:
            cp.kill()
            cp.wait()
    assert cp.returncode != 0, "cp succeeded although the daemon was killed"
    assert wait_until(lambda: not pid_alive(m.pid), 10), "SIGKILL did not end the daemon"
    assert manifest_puts(proxy) == [], proxy.dump()
    tag_absent(oracle, registry, repo, "t", "after the daemon was killed mid-push")
    m.unmount(how="fusermount")
    assert m.gone()

    proxy.clear_faults()
    proxy.clear_log()
    m2 = mounts("timeout=60", cache_dir=cache, name="after")
    assert invalid_cache_entries(cache) == [], cache_listing(cache)
    d = m2.image(registry.addr, small.repo, small.tag)
    assert (d / "manifest.json").read_bytes() == small.image.manifest
    for name, digest in before.items():
        got = call_within(60, tools.sha256_file, d / name)
        assert got.error is None and got.value == digest, (got.error, m2.diag())
    assert not list((cache / "staging").iterdir()), "the killed daemon's spill files are left"
    # and the push the kill interrupted goes through now (the repository directory was
    # only the dead mount's: nothing of it reached the registry)
    os.makedirs(m2.reg(proxy.addr) / repo)
    r = run("cp", "-r", big.path, m2.image(proxy.addr, repo, "t"), timeout=180)
    assert r.returncode == 0, r.stderr + m2.diag()
    assert registry.manifest_digest(repo, "t") == big.digest


# ---- 5. the cache directory full ----------------------------------------------------------------

@pytest.fixture
def small_fs(work):
    """An 8 MiB tmpfs at work/small, unmounted at the end whatever happens."""
    d = work / "small"
    d.mkdir()
    r = run("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", d)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield d
    finally:
        for _ in range(3):
            if run("umount", d).returncode == 0:
                break
            run("umount", "-l", d)


def test_a_full_cache_directory_serves_correct_bytes_or_eio_never_a_bad_entry(
        big, imgs, registry, mounts, small_fs):
    cache = small_fs / "cache"
    small = imgs.oci
    m = mounts(cache_dir=cache)  # cache_size is far more than the 8 MiB of the tmpfs
    d = m.image(registry.addr, small.repo, small.tag)
    for b in small.image.blobs().values():  # fit: become entries
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest
    f = m.image(registry.addr, "kill/big", "v1") / hexof(big.layer.digest)
    outcomes = []
    for _ in range(2):
        r = call_within(120, tools.sha256_file, f)
        if r.error is None:
            assert r.value == big.layer.digest, "wrong bytes from a full cache\n" + m.diag()
            outcomes.append("bytes")
        else:
            assert isinstance(r.error, OSError) and r.error.errno == errno.EIO, r.error
            outcomes.append("EIO")
        assert invalid_cache_entries(cache) == [], cache_listing(cache)
        assert hexof(big.layer.digest) not in cache_entries(cache), cache_listing(cache)
    m.unmount()
    # room again: the same cache directory serves both, correct
    assert run("mount", "-o", "remount,size=64m", small_fs).returncode == 0
    m2 = mounts(cache_dir=cache, name="room")
    assert tools.sha256_file(m2.image(registry.addr, "kill/big", "v1")
                             / hexof(big.layer.digest)) == big.layer.digest
    d = m2.image(registry.addr, small.repo, small.tag)
    for b in small.image.blobs().values():
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest
    assert invalid_cache_entries(cache) == [], cache_listing(cache)
    m2.unmount()
    print("full cache:", outcomes)


# ---- 6. a cache file corrupted on disk ----------------------------------------------------------

def test_a_cache_entry_corrupted_between_mounts_is_refetched_never_served(big, proxy, mounts,
                                                                         work):
    cache = work / "cache"
    hex_ = hexof(big.layer.digest)
    m = mounts(cache_dir=cache)
    f = m.image(proxy.addr, "kill/big", "v1") / hex_
    assert tools.sha256_file(f) == big.layer.digest
    m.unmount()
    entry = cache_entries(cache)[hex_]
    with open(entry, "r+b") as e:  # one byte flipped, size unchanged
        e.seek(big.layer.size // 2)
        b = e.read(1)
        e.seek(big.layer.size // 2)
        e.write(bytes([b[0] ^ 0x40]))
    proxy.clear_log()
    m2 = mounts(cache_dir=cache, name="after")
    f = m2.image(proxy.addr, "kill/big", "v1") / hex_
    assert tools.sha256_file(f) == big.layer.digest, "the corrupt entry was served\n" + m2.diag()
    assert blob_body_bytes(proxy, big.layer.digest) >= big.layer.size, \
        "the blob was not fetched again:\n" + proxy.dump()
    assert invalid_cache_entries(cache) == [], cache_listing(cache)
    # read again: from the (now good) entry
    assert tools.sha256_file(f) == big.layer.digest


# ---- 7. a corrupt blob the registry holds elsewhere, manifest.json first ------------------------

@pytest.mark.parametrize("known", ["in another repository", "in the same repository"])
@pytest.mark.parametrize("order", ["corrupt blob last", "corrupt blob right after manifest"])
def test_corrupt_blob_known_elsewhere_after_manifest_json_leaves_no_tag(imgs, registry, mounts,
                                                                        oracle, work, regfs_ok,
                                                                        repo_name, order, known):
    """manifest.json is written first, and the registry holds every blob already: in another
    repository (the mount read them there), or in the destination repository under another
    tag — where the image is complete, and pushed, as soon as manifest.json is closed, before
    the cp writes its corrupt copy of one blob. The cp of that file fails, and no tag is left
    (the push is undone; the other tag stays); written again correctly, the image is pushed.
    (test_mount_write.py has the order with the corrupt blob first.)"""
    it = imgs.oci
    src = work / "src"
    oracle.copy(it.ref, f"dir:{src}")
    bad = max(it.image.layers, key=lambda b: b.size)
    good_bytes = (src / hexof(bad.digest)).read_bytes()
    data = bytearray(good_bytes)
    data[len(data) // 2] ^= 0x01
    (src / hexof(bad.digest)).write_bytes(bytes(data))
    m = mounts()
    for f in sorted(m.image(registry.addr, it.repo, it.tag).iterdir()):
        f.read_bytes()  # the mount knows where every blob is
    repo = repo_name("kill-corrupt-after-manifest")
    if known == "in the same repository":
        regfs_ok("copy", it.ref, registry.ref(repo, "other"))
    dst = m.image(registry.addr, repo, "t")
    os.makedirs(dst)
    others = sorted(f.name for f in src.iterdir()
                    if f.name not in ("manifest.json", hexof(bad.digest)))
    if order == "corrupt blob last":
        names = ["manifest.json", *others, hexof(bad.digest)]
    else:
        names = ["manifest.json", hexof(bad.digest), *others]
    failed = [n for n in names if run("cp", src / n, dst / n).returncode != 0]
    assert failed == [hexof(bad.digest)], (failed, m.diag())
    tag_absent(oracle, registry, repo, "t", f"with a corrupt blob ({order}, {known})")
    if known == "in the same repository":
        assert registry.manifest_digest(repo, "other") == it.digest, "the other tag went too"
    # the failed file written again correctly: the image is pushed
    (src / hexof(bad.digest)).write_bytes(good_bytes)
    r = run("cp", src / hexof(bad.digest), dst / hexof(bad.digest))
    assert r.returncode == 0, r.stderr + m.diag()
    assert wait_until(lambda: registry.manifest_digest(repo, "t") == it.digest, 10), m.diag()


# ---- 8. the registry restarted mid-read ---------------------------------------------------------

RESTART_LAYER = 64 * MiB
RESTART_REPO = "kill/restart"


@pytest.fixture(scope="module")
def restartable(session_dir):
    """A registry of this module's own, which its tests kill and start again, holding an image
    with one 64 MiB random layer as kill/restart:v1. Returns SimpleNamespace(reg, img)."""
    with Registry(name="restart") as reg:
        img = make_big_image(session_dir / "kill-restart", RESTART_LAYER, seed=1402)
        images.push(img.path, reg.addr, RESTART_REPO, "v1")
        yield SimpleNamespace(reg=reg, img=img)


@pytest.fixture
def victim(restartable):
    """The restartable registry, running again when the test ends whatever it did."""
    yield restartable
    reg = restartable.reg
    if reg.proc is None or reg.proc.poll() is not None:
        reg.restart()


def restart_after(reg, seconds):
    """Starts `reg` again `seconds` from now, on a thread; join() it to know it is back."""
    t = threading.Thread(target=lambda: (time.sleep(seconds), reg.restart()), daemon=True)
    t.start()
    return t


def read_with(fh, on_progress, step=MiB, pause=0.0):
    """Reads the open file `fh` to its end, step bytes at a time (pausing between reads),
    calling on_progress(bytes read so far) after each; returns the sha256 of what it read."""
    h = hashlib.sha256()
    got = 0
    while True:
        b = fh.read(step)
        if not b:
            return "sha256:" + h.hexdigest()
        h.update(b)
        got += len(b)
        on_progress(got)
        if pause:
            time.sleep(pause)


def range_length(entry):
    """Bytes asked for by a proxy log entry's 'bytes=A-B' Range (0 without one)."""
    m = re.match(r"bytes=(\d+)-(\d+)", entry.range or "")
    return int(m.group(2)) - int(m.group(1)) + 1 if m else 0


def layer_bytes(img, off, n):
    with open(img.layer.file, "rb") as f:
        f.seek(off)
        return f.read(n)


def test_registry_restarted_mid_read_the_reader_gets_every_byte(victim, mounts):
    """docker-registry killed while a reader is a few MiB into a 64 MiB blob and started again
    3 s later: the reader waits and gets every byte right, the same open file."""
    reg, img = victim.reg, victim.img
    m = mounts("timeout=20", "debug")
    f = m.image(reg.addr, RESTART_REPO, "v1") / hexof(img.layer.digest)
    back = []

    def progress(got):
        if got >= 4 * MiB and not back:
            reg.crash()
            back.append(restart_after(reg, 3))

    def read():
        with open(f, "rb", buffering=0) as fh:
            return read_with(fh, progress, pause=0.05)  # ~20 MiB/s: the kill lands mid-blob

    r = call_within(120, read)
    assert back, "the registry was never killed"
    back[0].join(30)
    assert r.error is None, f"the read failed: {r.error!r}\n" + m.diag()
    assert r.value == img.layer.digest, "wrong bytes after the restart\n" + m.diag()
    # The reader did meet the dead registry: regfs retried the blob while it refused.
    log = m.log_text()
    assert re.search(r"retrying http://[^ ]*/blobs/" + img.layer.digest, log), \
        "regfs never had to retry a blob request: the kill proves nothing\n" + m.diag()
    assert r.elapsed < 3 + 20 + 30, f"the read took {r.elapsed:.1f} s"


def test_registry_restarted_behind_a_proxy_the_cut_range_resumes_where_it_stopped(victim,
                                                                                  mounts):
    """The kill lands inside a range request in flight (slowed by the proxy): its body ends
    short, requests meanwhile get the proxy's 502, and the range is resumed at its first
    missing byte once the registry is back."""
    reg, img = victim.reg, victim.img
    with FaultProxy(reg.addr) as px:
        px.add(Fault.bandwidth(SLOW * 4), method="GET", path=r"/blobs/", forever=True)
        m = mounts("timeout=20", "debug")
        f = m.image(px.addr, RESTART_REPO, "v1") / hexof(img.layer.digest)
        back = []

        def in_flight():
            # A range that has far more to come than the sockets between the registry and the
            # proxy hold: the kill cuts it rather than the proxy sending what it has already.
            return [e for e in px.requests("GET", "/blobs/" + img.layer.digest)
                    if e.end == 0 and e.body_bytes >= 256 * 1024
                    and range_length(e) - e.body_bytes >= 12 * MiB]

        def progress(got):
            if not back and in_flight():
                reg.crash()
                back.append(restart_after(reg, 2))

        def read():
            with open(f, "rb", buffering=0) as fh:
                return read_with(fh, progress)

        r = call_within(120, read)
        assert back, "the registry was never killed with a range in flight:\n" + px.dump()
        back[0].join(30)
        assert r.error is None, f"the read failed: {r.error!r}\n{px.dump()}\n{m.diag()}"
        assert r.value == img.layer.digest, "wrong bytes after the restart\n" + m.diag()
        gets = px.requests("GET", "/blobs/" + img.layer.digest)
        cut = [e for e in gets if e.status == 206 and "ended after" in e.error]
        assert cut, "no range was cut by the kill:\n" + px.dump()
        assert any(e.status == 502 for e in gets), "no request met the dead registry:\n" + \
            px.dump()
        for c in cut:
            resumed = c.range_start + c.body_bytes
            assert any(e.range_start == resumed and e.status == 206 for e in gets), (
                f"the range cut at byte {resumed} was not resumed there:\n" + px.dump())


def test_registry_down_longer_than_the_timeout_is_eio_then_the_same_file_reads_again(victim,
                                                                                     mounts):
    reg, img = victim.reg, victim.img
    m = mounts("timeout=3")
    f = m.image(reg.addr, RESTART_REPO, "v1") / hexof(img.layer.digest)
    far = 40 * MiB  # not fetched by the first read's readahead
    fd = os.open(f, os.O_RDONLY)
    try:
        assert os.pread(fd, MiB, 0) == layer_bytes(img, 0, MiB)
        reg.crash()
        r = call_within(60, os.pread, fd, MiB, far)
        assert r.error is not None, "a read of bytes never fetched succeeded with the registry " \
            "down\n" + m.diag()
        assert isinstance(r.error, OSError) and r.error.errno == errno.EIO, repr(r.error)
        # retried for the timeout (3 s) before it failed, and not much longer: the kernel may
        # ask once more after a failed readahead
        assert 2.5 <= r.elapsed <= 15, f"EIO after {r.elapsed:.1f} s with timeout=3"
        assert "every location failed" in m.log_text(), m.diag()
        reg.restart()
        # No remembered failure: the same open file reads on, right, to the end.
        again = call_within(60, os.pread, fd, MiB, far)
        assert again.error is None, f"the next read failed: {again.error!r}\n" + m.diag()
        assert again.value == layer_bytes(img, far, MiB)
        with os.fdopen(os.dup(fd), "rb", buffering=0) as fh:
            fh.seek(0)
            whole = call_within(60, read_with, fh, lambda got: None)
        assert whole.error is None, f"{whole.error!r}\n" + m.diag()
        assert whole.value == img.layer.digest
    finally:
        os.close(fd)
    assert tools.sha256_file(f) == img.layer.digest  # a new open too


def _copy_through(regfs_bin, px, out, *flags):
    return start(regfs_bin, "copy", "-q", *flags, px.ref(RESTART_REPO, "v1"), f"dir:{out}")


def _wait_midway(px, p, img):
    """Until the copy p has read 4 MiB of the layer through px, its request still open."""
    def midway():
        return any(e.end == 0 and e.body_bytes >= 4 * MiB
                   for e in px.requests("GET", "/blobs/" + img.layer.digest))
    assert wait_until(lambda: midway() or p.poll() is not None, 60), px.dump()
    assert p.poll() is None, f"the copy ended before the kill: {p.communicate()}"


def test_registry_restarted_mid_copy_the_copy_resumes_and_is_correct(regfs_bin, victim, work):
    reg, img = victim.reg, victim.img
    out = work / "out"
    with FaultProxy(reg.addr) as px:
        px.add(Fault.bandwidth(SLOW * 4), method="GET", path=r"/blobs/", forever=True)
        p = _copy_through(regfs_bin, px, out, "--retry-times", "5")
        try:
            _wait_midway(px, p, img)
            reg.crash()
            reg.restart()
            stdout, stderr = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, f"copy failed across a restart: {stderr}\n{px.dump()}"
        gets = px.requests("GET", "/blobs/" + img.layer.digest)
        assert any("ended after" in e.error for e in gets), "the kill cut nothing:\n" + px.dump()
    assert (out / "manifest.json").read_bytes() == img.manifest
    assert tools.sha256_file(out / hexof(img.layer.digest)) == img.layer.digest
    assert tools.sha256_file(out / hexof(img.config.digest)) == img.config.digest
    assert leftovers(work) == []


def test_registry_gone_mid_copy_fails_cleanly_and_the_next_run_succeeds(regfs_bin, victim, work):
    reg, img = victim.reg, victim.img
    out = work / "out"
    with FaultProxy(reg.addr) as px:
        px.add(Fault.bandwidth(SLOW * 4), method="GET", path=r"/blobs/", forever=True)
        p = _copy_through(regfs_bin, px, out)
        try:
            _wait_midway(px, p, img)
            reg.crash()
            t0 = time.monotonic()
            stdout, stderr = p.communicate(timeout=120)
            elapsed = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 1, f"copy exited {p.returncode} with the registry gone: {stderr}"
        assert elapsed < 30, f"the copy took {elapsed:.1f} s to give up"
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and hexof(img.layer.digest) in lines[0], stderr
        assert leftovers(work) == [], "the failed copy left temporaries"
        assert not (out / "manifest.json").exists(), "a failed copy left a manifest.json"
        reg.restart()
        p = _copy_through(regfs_bin, px, out)
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr
    assert (out / "manifest.json").read_bytes() == img.manifest
    assert tools.sha256_file(out / hexof(img.layer.digest)) == img.layer.digest


def test_copy_that_meets_a_registry_restarting_waits_for_it(regfs_bin, victim, work):
    """Straight to the registry, no proxy: while it restarts its port refuses connections,
    which is retried like a reset, not taken for an answer."""
    reg, img = victim.reg, victim.img
    out = work / "out"
    reg.crash()
    back = restart_after(reg, 0.5)
    p = start(regfs_bin, "copy", "-q", reg.ref(RESTART_REPO, "v1"), f"dir:{out}")
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        back.join(30)
    assert p.returncode == 0, f"the copy did not wait for the restarting registry: {stderr}"
    assert (out / "manifest.json").read_bytes() == img.manifest
    assert tools.sha256_file(out / hexof(img.layer.digest)) == img.layer.digest
