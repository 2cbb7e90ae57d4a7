"""The mount through mount(8), as an fstab line or `mount -t fuse.regfs` makes it: mount(8)
runs mount.fuse3, which runs `regfs SOURCE MOUNTPOINT -o OPTIONS` through /bin/sh without a
PATH of its own, so from the shell's default path: the tests put the binary under test in
/usr/local/bin for their duration (what was there is put back). Options meant for mount itself
or systemd (_netdev, noauto, nofail, x-systemd.*) and the generic ones mount adds (dev, suid)
are ignored; an unknown regfs option is an error."""

import os
import shutil
import signal
from pathlib import Path

import pytest

from mountlib import is_mounted, lazy_unmount, pid_alive, pids_serving
from testlib import tools
from testlib.wait import wait_until


@pytest.fixture
def on_path(regfs_bin, work):
    """regfs installed where mount.fuse3's shell finds it."""
    installed = Path("/usr/local/bin/regfs")
    saved = work / "regfs.saved"
    had = installed.exists() or installed.is_symlink()
    if had:
        shutil.move(installed, saved)
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(regfs_bin, installed)
    try:
        yield {}
    finally:
        installed.unlink()
        if had:
            shutil.move(saved, installed)


@pytest.fixture
def mnt(work):
    m = work / "mnt"
    m.mkdir()
    yield m
    pids = pids_serving(m)
    tools.run(["umount", str(m)], timeout=30)
    wait_until(lambda: not any(pid_alive(p) for p in pids), 5)
    for p in pids:
        if pid_alive(p):
            os.kill(p, signal.SIGKILL)
    lazy_unmount(m)


def opts(work, *more):
    return ",".join([f"cache_dir={work / 'cache'}", f"log={work / 'log.txt'}", *more])


def serves(mnt, imgs, registry):
    got = (mnt / registry.addr / imgs.oci.repo / imgs.oci.tag / "manifest.json").read_bytes()
    return got == imgs.oci.image.manifest


def test_mount_t_fuse_regfs(imgs, registry, work, mnt, on_path):
    p = tools.run(["mount", "-t", "fuse.regfs", "regfs", mnt, "-o",
                   opts(work, "_netdev", "nofail", "x-systemd.idle-timeout=60", "tag_ttl=5")],
                  env=on_path, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert is_mounted(mnt)
    assert serves(mnt, imgs, registry)
    p = tools.run(["umount", mnt], timeout=30)
    assert p.returncode == 0, p.stderr
    assert wait_until(lambda: not is_mounted(mnt), 10)


def test_fstab_line(imgs, registry, work, mnt, on_path):
    fstab = work / "fstab"
    fstab.write_text(f"regfs {mnt} fuse.regfs defaults,_netdev,noauto,"
                     f"{opts(work, 'cache_size=1G')} 0 0\n")
    p = tools.run(["mount", "-T", fstab, mnt], env=on_path, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert serves(mnt, imgs, registry)
    st = os.statvfs(mnt)
    assert st.f_blocks * st.f_frsize == 1 << 30  # cache_size= reached regfs


def test_the_environment_reaches_the_daemon(imgs, registry, work, mnt, on_path):
    """mount(8), mount.fuse3 and its shell pass the environment on to the daemon: a sanitizer
    build's variables (where its reports go) too, and in such a build a report of the daemon
    (made with SIGSEGV) lands where they say."""
    reports = work / "reports"
    reports.mkdir()
    env = {**on_path, **tools.sanitizer_env_into(reports), "REGFS_TEST_MARK": "fstab"}
    p = tools.run(["mount", "-t", "fuse.regfs", "regfs", mnt, "-o", opts(work)], env=env,
                  timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert serves(mnt, imgs, registry)
    pid = int((mnt / ".regfs" / "pid").read_text())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for k, v in env.items():
        assert f"{k}={v}".encode() in environ, (k, v)
    kind = tools.sanitizer_build()
    if kind is not None:
        prefix, name = {"address": ("asan", "AddressSanitizer"),
                        "thread": ("tsan", "ThreadSanitizer")}[kind]
        os.kill(pid, signal.SIGSEGV)
        report = reports / f"{prefix}.{pid}"
        assert wait_until(lambda: report.exists() and
                          f"ERROR: {name}: SEGV" in report.read_text(errors="replace"), 60), (
            sorted(x.name for x in reports.iterdir()))


def test_unknown_option_is_an_error(work, mnt, on_path):
    p = tools.run(["mount", "-t", "fuse.regfs", "regfs", mnt, "-o", opts(work, "cache_sise=1G")],
                  env=on_path, timeout=60)
    assert p.returncode != 0
    assert "cache_sise=1G" in p.stdout + p.stderr, p.stdout + p.stderr
    assert not is_mounted(mnt)


def test_regfs_mount_takes_fstab_options_too(regfs_ok, imgs, registry, work, mnt):
    regfs_ok("mount", "-o", opts(work, "defaults", "_netdev"), mnt)
    assert serves(mnt, imgs, registry)
