"""A registry that lies in every way a server can (testlib/hostile.py): copy, inspect, sync and
the mount end each lie with a clear error, soon, in bounded memory, writing nothing outside
their destination, and the mount keeps serving the registry's other repositories."""

import errno
import os
import threading
import time

import pytest

from mountlib import call_within, expect_errno
from testlib import tools
from testlib.hostile import LIES, HostileRegistry

# Lies in the manifest itself: reading it fails, whatever the command.
MANIFEST_LIES = ["manifest-huge", "manifest-nested", "manifest-invalid", "manifest-types",
                 "manifest-length-huge", "manifest-truncated", "index-nested", "index-self"]
# Lies about or in a layer: copying the image fails.
LAYER_LIES = ["size-negative", "size-huge", "size-wrong", "digest-path", "digest-not-hex",
              "digest-other-algo", "blob-mismatch", "blob-truncated", "blob-redirect-loop"]
MAX_SECONDS = 30
MAX_RSS_KIB = 200 * 1024


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
