"""Progress as a user sees it: on a terminal (a real pseudo-terminal, from script(1)), `copy`
draws a live line per blob in flight with bytes, total and rate, redrawn in place, and leaves a
line per finished blob; -q silences it; on a pipe there is none."""

import re
import shlex

import pytest

from testlib import images, tools
from testlib.faultproxy import Fault

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def slow_image(registry, session_dir):
    """Two incompressible 3 MiB layers: long enough behind a 4 MiB/s proxy to be drawn."""
    return images.pushed_image(session_dir / "progress-img", registry, "progress/img", seed=77,
                               fmt="oci", layers=["gzip", "gzip"], layer_size=[3 * MiB, 3 * MiB])


def in_a_terminal(argv, timeout=120):
    """Runs argv with its stdin, stdout and stderr on a new pseudo-terminal; returns (exit
    code, everything written to the terminal)."""
    cmd = " ".join(shlex.quote(str(a)) for a in argv)
    p = tools.run(["script", "-qfec", cmd, "/dev/null"], timeout=timeout, binary=True)
    return p.returncode, p.stdout.decode(errors="replace")


def test_copy_on_a_terminal_draws_live_blob_lines(regfs_bin, slow_image, proxy, work):
    proxy.add(Fault.bandwidth(4 * MiB), method="GET", path="/blobs/", forever=True)
    src = f"docker://{proxy.addr}/progress/img:v1"
    rc, out = in_a_terminal([regfs_bin, "copy", src, f"dir:{work / 'out'}"])
    assert rc == 0, out
    layers = [b.digest.split(":")[1][:12] for b in slow_image.layers]
    # A live line: digest, a bar, bytes of the total, a rate.
    live = re.findall(r"Copying blob ([0-9a-f]{12}) \[[=>-]+\] [0-9.]+[KM]?i?B / 3\.0MiB \| "
                      r"[0-9.]+[KMG]?i?B/s", out)
    assert set(layers) <= set(live), out[-3000:]
    # Redrawn in place (cursor up, clear to the end), and an overall line.
    assert "\x1b[" in out and re.search(r"\x1b\[\d+A\r\x1b\[J", out), out[-3000:]
    assert re.search(r"Copying \d+ blobs done", out), out[-3000:]
    # Each finished blob leaves its line, and the pipeline's events are there.
    for hex12 in layers:
        assert f"Copying blob {hex12} done" in out, out[-3000:]
    assert "Writing manifest to image destination" in out, out[-3000:]
    assert (work / "out" / "manifest.json").read_bytes() == slow_image.manifest


def test_quiet_on_a_terminal_prints_nothing(regfs_bin, slow_image, registry, work):
    rc, out = in_a_terminal([regfs_bin, "copy", "-q", registry.ref("progress/img", "v1"),
                             f"dir:{work / 'out'}"])
    assert rc == 0, out
    assert out.strip() == "", out


def test_no_progress_on_a_pipe(regfs, slow_image, registry, work):
    p = regfs("copy", registry.ref("progress/img", "v1"), f"dir:{work / 'out'}")
    assert p.returncode == 0, p.stderr
    assert "Copying blob" not in p.stderr and "\x1b[" not in p.stderr, p.stderr


def test_sync_on_a_terminal_shows_images_done_of_all(regfs_bin, slow_image, registry, work):
    rc, out = in_a_terminal([regfs_bin, "sync", "--src", "docker", "--dest", "dir",
                             "--src-tls-verify=false", f"{registry.addr}/progress/img",
                             work / "mirror"])
    assert rc == 0, out
    assert "Syncing: 0/1 images;" in out and "Syncing: 1/1 images;" in out, out[-3000:]
    assert re.search(r"Copying blob [0-9a-f]{12} done", out), out[-3000:]
    assert "Copied docker://" in out, out[-3000:]
    assert "\x1b[" in out
