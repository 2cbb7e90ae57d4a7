"""A sanitizer build's reports are not lost when nobody reads the process's output: the mount's
daemon (stderr /dev/null, its own session) and a command write theirs into the log_path=
directory, and tests/sanitizers/reports, with which tools/test --sanitize and --tsan decide,
fails on them.

The reports are real ones, made without a defect planted in regfs: a SIGSEGV sent to the
process is one the sanitizer's deadly-signal handler reports (with the process's stack), and
with LeakSanitizer's root sets off (use_globals=0 ...) everything the daemon still holds at its
exit-time leak check counts as leaked. Each test writes into a directory of its own, not the
run's, so that the reports it makes do not fail the run.

Collected only for a sanitizer build of regfs (conftest.py): a Release build makes no reports.
"""

import os
import signal
import subprocess
from pathlib import Path

from mountlib import BlackHole
from testlib import tools
from testlib.wait import wait_until

KIND = tools.sanitizer_build()
# The prefix of the report files of this build's sanitizer, and the name its reports start with.
PREFIX, NAME = {"address": ("asan", "AddressSanitizer"),
                "thread": ("tsan", "ThreadSanitizer")}[KIND]
REPORTS = tools.REPO_ROOT / "tests" / "sanitizers" / "reports"


def report_of(directory, pid):
    return Path(directory) / f"{PREFIX}.{pid}"


def text_of(path):
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def check(directory):
    """What tools/test decides on with the directory: (exit status, output)."""
    p = subprocess.run([str(REPORTS), str(directory)], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def reports_dir(work):
    d = work / "reports"
    d.mkdir()
    return d


def test_an_empty_directory_passes(work):
    assert check(reports_dir(work)) == (0, "")


def test_a_report_of_the_daemon_lands_in_the_directory(mounts, imgs, registry, work):
    d = reports_dir(work)
    m = mounts(env=tools.sanitizer_env_into(d))
    got = (m.image(registry.addr, imgs.oci.repo, imgs.oci.tag) / "manifest.json").read_bytes()
    assert got == imgs.oci.image.manifest
    # Nobody reads the daemon's output: its stderr is /dev/null.
    assert os.readlink(f"/proc/{m.pid}/fd/2") == "/dev/null"
    assert check(d) == (0, ""), "a report before the signal"
    os.kill(m.pid, signal.SIGSEGV)
    f = report_of(d, m.pid)
    assert wait_until(lambda: f"ERROR: {NAME}: SEGV" in text_of(f), 60), (
        f"no report of the daemon ({m.pid}) in {sorted(p.name for p in d.iterdir())}")
    assert wait_until(lambda: not tools.pid_alive(m.pid), 30)
    rc, out = check(d)
    assert rc == 1 and f.name in out and f"ERROR: {NAME}: SEGV" in out, out


if KIND == "address":
    def test_the_daemons_leak_check_at_exit_lands_in_the_directory(mounts, imgs, registry,
                                                                   work):
        d = reports_dir(work)
        # exitcode=0: `regfs mount`, which exits once the daemon serves, makes the same
        # report and would otherwise exit 1 for it.
        m = mounts(env=tools.sanitizer_env_into(
            d, ASAN_OPTIONS="exitcode=0",
            LSAN_OPTIONS="use_globals=0:use_stacks=0:use_registers=0:use_tls=0"))
        assert (m.image(registry.addr, imgs.oci.repo, imgs.oci.tag) / "manifest.json").exists()
        pid = m.pid
        p = m.unmount()
        assert p is not None and p.returncode == 0, p and p.stderr
        assert wait_until(lambda: not tools.pid_alive(pid), 30)
        f = report_of(d, pid)
        assert "ERROR: LeakSanitizer: detected memory leaks" in text_of(f), (
            f"no leak report of the daemon ({pid}) in {sorted(p.name for p in d.iterdir())}")
        rc, out = check(d)
        assert rc == 1 and f.name in out, out


def test_a_report_of_a_command_lands_in_the_directory(regfs_bin, work):
    """`regfs copy` from a registry that accepts and never answers: it waits, and is killed."""
    d = reports_dir(work)
    env = tools._env(tools.private_home())
    env.update(tools.sanitizer_env_into(d))
    with BlackHole() as hole:
        p = subprocess.Popen([regfs_bin, "copy", "--src-tls-verify=false",
                              f"docker://{hole.addr}/x:1", f"dir:{work / 'out'}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            assert wait_until(lambda: hole.accepted > 0 or p.poll() is not None, 60)
            assert p.poll() is None, p.communicate()
            p.send_signal(signal.SIGSEGV)
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert p.returncode != 0
    f = report_of(d, p.pid)
    assert f"ERROR: {NAME}: SEGV" in text_of(f), (
        f"stderr: {err.decode(errors='replace')}; in {sorted(x.name for x in d.iterdir())}")
    rc, out = check(d)
    assert rc == 1 and f.name in out, out
