"""Errors through the mount: ENOENT for what does not exist, EACCES from a registry that
refuses, EIO (logged) from a registry that is dead or hangs, within the timeout, while the
other registries of the mount keep answering (issue #3)."""

import base64
import errno
import json
import os
import threading
import time

import pytest

from mountlib import BlackHole, call_within, expect_errno, hexof, read_all
from testlib import images, tools
from testlib.faultproxy import Fault
from testlib.wait import wait_for


# ---- ENOENT ------------------------------------------------------------------------------------

def test_missing_repository_tag_digest_and_file_are_enoent(imgs, registry, mounts):
    m = mounts()
    r = m.reg(registry.addr)
    zero = "sha256:" + "0" * 64
    for p in [r / "no-such-repo-x1",
              r / "img" / "no-such-repo",
              r / "img" / "oci" / "no-such-tag",
              r / "img" / "oci" / "v1" / "no-such-file",
              r / "img" / "oci" / "v1" / ("ab" * 32),
              r / "img" / "oci:no-such-tag",
              r / "img" / "no-such-repo:v1"]:
        expect_errno(errno.ENOENT, os.stat, p)
    expect_errno(errno.ENOENT, read_all, r / "img" / "oci" / "no-such-tag" / "manifest.json")
    expect_errno(errno.ENOENT, os.listdir, r / "img" / "no-such-repo")
    # a digest directory may exist until it is read (looking it up costs no request), but it
    # has nothing in it
    for p in [r / "img" / "oci" / zero, r / "img" / f"oci@{zero}"]:
        expect_errno(errno.ENOENT, os.listdir, p)
        expect_errno(errno.ENOENT, read_all, p / "manifest.json")
    # what exists is still there
    assert (r / "img" / "oci" / "v1" / "manifest.json").read_bytes() == imgs.oci.image.manifest


def test_invalid_names_are_enoent_without_a_request(imgs, proxy, mounts):
    m = mounts()
    r = m.reg(proxy.addr)
    assert (r / "img" / "oci" / "v1" / "manifest.json").read_bytes() == \
        imgs.oci.image.manifest
    n = len(proxy.requests())
    for p in [r / "Upper_Case",
              r / "img" / "-dash-first",
              r / "img" / "oci" / ".hidden-tag",
              r / "img" / "oci" / "sha256:nothex",
              r / "img" / "oci" / "v1" / "random-name"]:
        expect_errno(errno.ENOENT, os.stat, p)
    expect_errno(errno.ENOENT, os.stat, m.mnt / "not a host!")
    assert proxy.requests()[n:] == [], proxy.dump()


def test_a_removed_tag_becomes_enoent(imgs, registry, mounts, repo_name):
    repo = repo_name("mount-gone")
    images.push(imgs.oci.dir, registry.addr, repo, "t")
    images.push(imgs.docker.dir, registry.addr, repo, "keep")
    m = mounts("tag_ttl=1", "list_ttl=1")
    d = m.image(registry.addr, repo, "t")
    assert (d / "manifest.json").read_bytes() == imgs.oci.image.manifest
    tools.skopeo_ok("delete", "--tls-verify=false", registry.ref(repo, "t"))

    def gone():   # due once tag_ttl and list_ttl have passed; polled, bounded by 15 s
        return not d.exists() and sorted(os.listdir(d.parent)) == ["keep"]
    wait_for(gone, 15, "the deleted tag is gone from the mount")
    expect_errno(errno.ENOENT, os.stat, d)


# ---- EACCES --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_image(auth_registry, session_dir):
    return images.pushed_image(session_dir / "mount-auth", auth_registry, "mount/secret",
                               seed=95, fmt="docker", layers=["gzip"])


def test_refusing_registry_is_eacces_and_logged(auth_image, auth_registry, mounts):
    m = mounts()
    d = m.image(auth_registry.addr, "mount/secret", "v1")
    expect_errno(errno.EACCES, read_all, d / "manifest.json")
    expect_errno(errno.EACCES, os.listdir, m.reg(auth_registry.addr))
    log = m.log_text()
    assert "authentication required" in log, "the registry's message is not logged:\n" + \
        m.diag()


def test_authfile_opens_the_refusing_registry(auth_image, auth_registry, mounts, work):
    user, pw = auth_registry.creds.split(":", 1)
    authfile = work / "auth.json"
    authfile.write_text(json.dumps({"auths": {auth_registry.addr: {
        "auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}}}))
    os.chmod(authfile, 0o600)
    m = mounts(f"authfile={authfile}")
    d = m.image(auth_registry.addr, "mount/secret", "v1")
    assert (d / "manifest.json").read_bytes() == auth_image.manifest
    for b in auth_image.blobs().values():
        assert tools.sha256_file(d / hexof(b.digest)) == b.digest
    assert "mount" in os.listdir(m.reg(auth_registry.addr))


def test_wrong_credentials_are_eacces(auth_image, auth_registry, mounts, work):
    authfile = work / "auth.json"
    authfile.write_text(json.dumps({"auths": {auth_registry.addr: {
        "auth": base64.b64encode(b"alice:not-her-password").decode()}}}))
    m = mounts(f"authfile={authfile}")
    expect_errno(errno.EACCES, read_all,
                 m.image(auth_registry.addr, "mount/secret", "v1") / "manifest.json")


# ---- EIO -------------------------------------------------------------------------------------

def _manifest_of(m, addr, repo="some/repo", tag="v1"):
    return lambda: read_all(m.image(addr, repo, tag) / "manifest.json")


def test_closed_port_is_eio_and_logged_while_others_answer(imgs, registry, mounts):
    port = tools.free_port()
    dead = f"127.0.0.1:{port}"
    m = mounts("timeout=3")
    r = expect_errno(errno.EIO, _manifest_of(m, dead), within=30)
    assert r.elapsed < 12, f"EIO after {r.elapsed:.1f} s"
    assert str(port) in m.log_text(), "no log line names the dead registry:\n" + m.diag()
    assert (m.image(registry.addr, imgs.oci.repo, "v1") / "manifest.json").read_bytes() == \
        imgs.oci.image.manifest
    expect_errno(errno.EIO, os.listdir, m.reg(dead), within=30)


def test_hanging_registry_is_eio_within_the_timeout_while_others_answer(imgs, registry,
                                                                          mounts):
    m = mounts("timeout=3")
    with BlackHole() as bh:
        hole_port = bh.addr.split(":")[1]
        stalled = {}
        done = threading.Event()

        def ask_the_hole():
            t0 = time.monotonic()
            try:
                stalled["value"] = _manifest_of(m, bh.addr)()
            except BaseException as e:  # noqa: BLE001 - checked below
                stalled["error"] = e
            stalled["elapsed"] = time.monotonic() - t0
            done.set()

        threading.Thread(target=ask_the_hole, daemon=True).start()
        wait_for(lambda: bh.accepted >= 1, 10, "regfs connected to the hanging registry")
        assert not done.is_set(), f"the hanging registry answered? {stalled}"
        # meanwhile, another registry of the same mount answers at once (a cold lookup)
        good = call_within(10, read_all,
                           m.image(registry.addr, imgs.docker.repo, "v1") / "manifest.json")
        assert good.error is None and good.value == imgs.docker.image.manifest, good.error
        assert good.elapsed < 2.5, f"the good registry took {good.elapsed:.1f} s"
        assert not done.is_set(), "the good registry answered only after the hang ended"
        assert done.wait(60), "the hanging registry still hangs the reader after 60 s"
        assert bh.accepted >= 1, "regfs never connected to the hanging registry"
    err = stalled.get("error")
    assert isinstance(err, OSError) and err.errno == errno.EIO, repr(stalled)
    assert 2.5 <= stalled["elapsed"] <= 12, f"EIO after {stalled['elapsed']:.1f} s, timeout=3"
    assert hole_port in m.log_text(), \
        "no log line names the hanging registry:\n" + m.diag()


def test_hanging_blob_read_is_eio_within_the_timeout(imgs, proxy, mounts):
    """A registry that stops sending mid-blob: the read fails, the mount lives on."""
    it = imgs.oci
    blob = max(it.image.layers, key=lambda b: b.size)
    m = mounts("timeout=3")
    d = m.image(proxy.addr, it.repo, "v1")
    assert (d / "manifest.json").read_bytes() == it.image.manifest
    proxy.add(Fault.latency(40), method="GET", path=f"/blobs/{blob.digest}", forever=True)
    r = expect_errno(errno.EIO, read_all, d / hexof(blob.digest), within=40)
    assert r.elapsed <= 12, f"EIO after {r.elapsed:.1f} s"
    proxy.clear_faults()
    other = it.image.config
    assert (d / hexof(other.digest)).read_bytes() == other.data


def test_server_errors_are_eio_with_the_registry_message(imgs, proxy, mounts):
    it = imgs.docker
    proxy.add(Fault.status(500), method="GET", path="/manifests/", forever=True)
    m = mounts("timeout=3")
    expect_errno(errno.EIO, read_all, m.image(proxy.addr, it.repo, "v1") / "manifest.json",
                 within=60)
    assert "injected by faultproxy (500)" in m.log_text(), m.diag()
    # once the registry recovers, the same path works
    proxy.clear_faults()
    m2 = mounts(name="recovered")
    assert (m2.image(proxy.addr, it.repo, "v1") / "manifest.json").read_bytes() == \
        it.image.manifest


def test_a_trickling_manifest_fails_within_the_timeout_and_is_remembered_briefly(
        imgs, proxy, mounts):
    """A registry that sends a manifest one byte every 4 seconds: the lookup fails with EIO
    within the timeout (a minimum rate, not "no byte for N seconds"), other repositories of
    the same registry answer meanwhile, and the failure is remembered for a few seconds, so
    the next accesses fail at once instead of each paying the timeout again."""
    slow, fast = imgs.oci, imgs.docker
    proxy.add(Fault.bandwidth(0.25), method="GET", path=f"/{slow.repo}/manifests/",
              forever=True)
    m = mounts("timeout=3")
    tag = m.image(proxy.addr, slow.repo, "v1")

    def gets():
        return sum(1 for e in proxy.log
                   if e.method == "GET" and f"/{slow.repo}/manifests/" in e.path)

    stalled = {}
    done = threading.Event()

    def look():
        t0 = time.monotonic()
        try:
            os.listdir(tag)
        except OSError as e:
            stalled["error"] = e
        stalled["elapsed"] = time.monotonic() - t0
        done.set()

    threading.Thread(target=look, daemon=True).start()
    wait_for(lambda: gets() >= 1, 10, "regfs asked for the trickling manifest")
    good = call_within(10, read_all, m.image(proxy.addr, fast.repo, "v1") / "manifest.json")
    assert good.error is None and good.value == fast.image.manifest, good.error
    assert not done.is_set() and good.elapsed < 2.5, (good.elapsed, stalled)
    assert done.wait(30), "the trickling manifest still holds the reader after 30 s"
    err = stalled.get("error")
    assert isinstance(err, OSError) and err.errno == errno.EIO, repr(stalled)
    assert 2.5 <= stalled["elapsed"] <= 12, f"EIO after {stalled['elapsed']:.1f} s, timeout=3"
    # Remembered: the next access fails at once, without a request.
    asked = gets()
    again = expect_errno(errno.EIO, os.listdir, tag, within=10)
    assert again.elapsed < 1, f"the remembered failure took {again.elapsed:.1f} s"
    assert gets() == asked
    # Briefly: once the registry recovers, the path works again after a few seconds.
    proxy.clear_faults()
    wait_for(lambda: call_within(10, os.listdir, tag).error is None, 15,
             "the recovered registry is asked again")
    assert (tag / "manifest.json").read_bytes() == slow.image.manifest
    assert gets() > asked


# ---- the log -----------------------------------------------------------------------------------

def test_a_failure_is_logged_once_with_its_operation_and_path(imgs, registry, mounts):
    """The FUSE adapter logs each failed operation once, as '<op> <path>: <message>'; a lookup
    of a name that is not there is an answer, not a failure, and is not logged."""
    m = mounts()
    r = m.reg(registry.addr)
    for _ in range(3):
        expect_errno(errno.ENOENT, os.stat, r / "img" / "oci" / "no-such-tag-l1")
    expect_errno(errno.EINVAL, os.mkdir, r / "img" / "bad!name-l1")
    log = m.log_text()
    assert "no-such-tag-l1" not in log, "an ENOENT lookup was logged:\n" + log
    lines = [line for line in log.splitlines() if "bad!name-l1" in line]
    assert len(lines) == 1, "the failed mkdir is not logged exactly once:\n" + log
    assert f"mkdir {registry.addr}/img/bad!name-l1: " in lines[0], lines[0]
    assert "not a repository name component" in lines[0], lines[0]
