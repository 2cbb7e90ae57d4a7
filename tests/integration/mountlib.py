"""Helpers for the integration tests of ``regfs mount`` (test_mount_*.py).

    m = mounts()                             # the `mounts` fixture (conftest.py has it):
                                             # a started mount, own cache_dir and log
    m = mounts("tag_ttl=1", "timeout=3", cache_dir=..., name="second")
    m = mounts(env={"CONTAINERS_REGISTRIES_CONF": path})  # variables for the daemon
    m.image(registry.addr, "img/oci", "v1")  # Path of MNT/127.0.0.1:PORT/img/oci/v1
    m.stats()                                # MNT/.regfs/stats, parsed
    m.pid, m.kill(), m.unmount(), m.log_text()

Every mount made through the ``mounts`` fixture is unmounted when the test ends, pass or
fail: ``regfs unmount``, then ``fusermount3 -u``, then ``fusermount3 -uz``; a daemon still
alive after that is killed by its pid (read from MNT/.regfs/pid, or found by its own
mountpoint on its command line). A watchdog kills the test's daemons if the test runs for
longer than WATCHDOG seconds, so that a hung FUSE request fails the test (ENOTCONN) instead
of hanging the suite.

Also here: a listener that accepts connections and never answers (BlackHole), a 256 MiB
image generated with os.urandom without holding it in memory (big_image), and views of
the cache directory (cache_entries, cache_usage). The tests assume that a complete,
valid cache entry is a regular file whose name is the blob's hex digest (regfs:
CACHE/blobs/sha256/<hex>; a "sha256:"/"sha256-"/"sha256_" prefix is accepted too), and that
partial downloads or temporary files carry some other name (regfs: partial/<hex>.<random>).
"""

import errno
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from testlib import images, tools
from testlib.tools import is_mounted, pid_alive  # the test modules import them from here too
from testlib.wait import wait_until  # the test modules import it from here too

MiB = 1024 * 1024
WATCHDOG = 300          # seconds a test may keep its mounts before they are killed
MOUNT_TIMEOUT = 30      # seconds `regfs mount` may take to return
FUSERMOUNT = "fusermount3"


# ---- processes and mount points ------------------------------------------------------------

def pids_serving(mnt):
    """Pids of regfs processes whose command line names this (unique) mount point."""
    mnt = str(mnt)
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if mnt in args and "mount" in args and pid_alive(int(d)):
            out.append(int(d))
    return out


def lazy_unmount(mnt):
    if is_mounted(mnt):
        subprocess.run([FUSERMOUNT, "-uz", str(mnt)], capture_output=True, timeout=20)
    if is_mounted(mnt):
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def call_within(seconds, fn, *args, **kw):
    """Run fn in a thread; return SimpleNamespace(value, error, elapsed). Fails the test if fn
    has not returned after `seconds` (the thread stays blocked until the mount's daemon is
    killed at teardown)."""
    out = SimpleNamespace(value=None, error=None, elapsed=None, done=threading.Event())

    def body():
        t0 = time.monotonic()
        try:
            out.value = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out.error = e
        out.elapsed = time.monotonic() - t0
        out.done.set()

    threading.Thread(target=body, daemon=True).start()
    if not out.done.wait(seconds):
        pytest.fail(f"{getattr(fn, '__name__', fn)}{args} did not return within {seconds} s")
    return out


def expect_errno(code, fn, *args, within=60, **kw):
    """fn(*args) fails with OSError errno `code` within `within` seconds; returns the
    call_within result."""
    r = call_within(within, fn, *args, **kw)
    assert r.error is not None, (
        f"{getattr(fn, '__name__', fn)}{args} succeeded ({r.value!r:.200}); expected "
        f"{errno.errorcode[code]}")
    assert isinstance(r.error, OSError) and r.error.errno == code, (
        f"{getattr(fn, '__name__', fn)}{args}: expected {errno.errorcode[code]}, got "
        f"{r.error!r}")
    return r


# ---- a mount --------------------------------------------------------------------------------

class Mount:
    def __init__(self, regfs_bin, root, name, opts, cache_dir=None, log=True, env=None):
        self.regfs_bin = regfs_bin
        self.env = dict(env or {})
        self.root = Path(root)
        self.mnt = self.root / f"mnt-{name}"
        self.cache_dir = Path(cache_dir) if cache_dir else self.root / f"cache-{name}"
        self.log_path = self.root / f"log-{name}.txt" if log else None
        self.out_path = self.root / f"out-{name}.txt"
        self.opts = list(opts)
        self.pid = None
        self.fg = None

    def argv(self, foreground=False):
        opts = [f"cache_dir={self.cache_dir}"]
        if self.log_path:
            opts.append(f"log={self.log_path}")
        opts += self.opts
        return [self.regfs_bin, "mount", *(["-f"] if foreground else []),
                "-o", ",".join(opts), str(self.mnt)]

    def start(self, foreground=False):
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        env = tools._env(tools.private_home())
        env.update(self.env)
        with open(self.out_path, "ab") as out:
            p = subprocess.Popen(self.argv(foreground), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=env)
        if foreground:
            self.fg = p
            if not wait_until(lambda: is_mounted(self.mnt) or p.poll() is not None,
                              MOUNT_TIMEOUT):
                raise AssertionError(f"regfs mount -f: not mounted after {MOUNT_TIMEOUT} s")
            assert p.poll() is None, f"regfs mount -f exited {p.returncode}: {self.output()}"
            assert wait_until(lambda: (self.mnt / ".regfs" / "pid").exists(), 10), \
                "no MNT/.regfs/pid"
        else:
            try:
                rc = p.wait(MOUNT_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError(f"regfs mount did not return within {MOUNT_TIMEOUT} s: "
                                     f"{self.output()}")
            assert rc == 0, f"regfs mount exited {rc}: {self.output()}"
            assert is_mounted(self.mnt), \
                f"regfs mount returned 0 but {self.mnt} is not mounted: {self.output()}"
        self.pid = int((self.mnt / ".regfs" / "pid").read_text().strip())
        assert pid_alive(self.pid), f"MNT/.regfs/pid names {self.pid}, which is not running"
        return self

    # ---- paths --------------------------------------------------------------------------

    def reg(self, addr):
        return self.mnt / addr

    def image(self, addr, repo, ref="latest"):
        return self.mnt / addr / repo / ref

    def stats(self):
        return json.loads((self.mnt / ".regfs" / "stats").read_bytes())

    # ---- diagnostics ----------------------------------------------------------------------

    def output(self):
        try:
            return self.out_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def diag(self):
        return f"--- regfs output:\n{self.output()}\n--- regfs log:\n{self.log_text()[-4000:]}"

    # ---- ending -------------------------------------------------------------------------

    def kill(self, sig=signal.SIGKILL):
        """Send sig to the daemon (SIGKILL by default); does not unmount."""
        if self.pid and pid_alive(self.pid):
            os.kill(self.pid, sig)

    def unmount(self, how="regfs"):
        """Unmount the clean way (`regfs unmount`, or fusermount3 -u with how="fusermount"),
        then make sure: lazy unmount, and kill what still runs. Returns the CompletedProcess
        of the clean attempt (None if nothing was mounted)."""
        p = None
        try:
            if is_mounted(self.mnt):
                if how == "regfs":
                    p = tools.run([self.regfs_bin, "unmount", str(self.mnt)], timeout=30)
                else:
                    p = tools.run([FUSERMOUNT, "-u", str(self.mnt)], timeout=30)
                if p.returncode != 0 and is_mounted(self.mnt):
                    tools.run([FUSERMOUNT, "-u", str(self.mnt)], timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self._cleanup()
        return p

    def _cleanup(self):
        pids = set(pids_serving(self.mnt))
        if self.pid:
            pids.add(self.pid)
        wait_until(lambda: not any(pid_alive(x) for x in pids), 5)
        for x in pids:
            if pid_alive(x):
                try:
                    os.kill(x, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        lazy_unmount(self.mnt)
        if self.fg is not None:
            try:
                self.fg.wait(10)
            except subprocess.TimeoutExpired:
                self.fg.kill()
                self.fg.wait()

    def gone(self):
        """Unmounted and no daemon left."""
        return (not is_mounted(self.mnt) and not (self.pid and pid_alive(self.pid))
                and not pids_serving(self.mnt))


@pytest.fixture(name="mounts")
def mounts_fixture(regfs_bin, work):
    """Factory: mounts(*opts, cache_dir=None, name=None, foreground=False, env=None) → a
    started Mount (env: variables added to the daemon's environment). All are unmounted (and
    their daemons killed) at the end of the test."""
    made = []
    fired = []

    def watchdog():
        fired.append(True)
        for m in made:
            m.kill()
            lazy_unmount(m.mnt)

    timer = threading.Timer(WATCHDOG, watchdog)
    timer.daemon = True
    timer.start()

    def make(*opts, cache_dir=None, name=None, foreground=False, log=True, start=True,
             env=None):
        m = Mount(regfs_bin, work, name or str(len(made)), opts, cache_dir=cache_dir, log=log,
                  env=env)
        made.append(m)
        return m.start(foreground=foreground) if start else m

    make.all = made
    try:
        yield make
    finally:
        timer.cancel()
        for m in reversed(made):
            try:
                m.unmount()
            except Exception:  # noqa: BLE001 - keep cleaning the others
                m._cleanup()
        if fired:
            pytest.fail(f"watchdog: the test ran longer than {WATCHDOG} s; its regfs "
                        "daemons were killed", pytrace=False)


# ---- a registry that never answers ---------------------------------------------------------

class BlackHole:
    """Listens on a loopback port, accepts every connection and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.conns = []
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @property
    def addr(self):
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            self.accepted += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


# ---- test images ----------------------------------------------------------------------------

def hexof(digest):
    return digest.split(":", 1)[1]


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def make_big_image(path, size, seed=0):
    """A single-platform OCI image with one uncompressed tar layer holding `size` bytes of
    os.urandom, written to `path` in dir: layout without holding the layer in memory.
    Returns SimpleNamespace(path, digest, manifest, config, layer) where config and layer
    have .digest, .size, .media_type, .file; layer also has .payload_offset."""
    mt = images.MT["oci"]
    path = Path(path)
    path.mkdir(parents=True)
    (path / "version").write_bytes(images.DIR_VERSION)
    info = tarfile.TarInfo(f"big/data-{seed}.bin")
    info.size = size
    info.mode = 0o644
    info.mtime = 1_600_000_000 + seed
    info.uname = info.gname = "root"
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    h = hashlib.sha256()
    tmp = path / "layer.tmp"
    with open(tmp, "wb") as f:
        for piece in [header]:
            f.write(piece)
            h.update(piece)
        left = size
        while left:
            piece = os.urandom(min(8 * MiB, left))
            f.write(piece)
            h.update(piece)
            left -= len(piece)
        tail = b"\0" * ((-size) % 512) + b"\0" * 1024
        f.write(tail)
        h.update(tail)
    layer_digest = "sha256:" + h.hexdigest()
    layer_file = path / hexof(layer_digest)
    tmp.rename(layer_file)
    layer = SimpleNamespace(digest=layer_digest, size=layer_file.stat().st_size,
                            media_type=mt["tar"], file=layer_file,
                            payload_offset=len(header))
    cfg = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [f"REGFS_BIG_SEED={seed}"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "big layer"}],
    }, separators=(",", ":")).encode()
    config = SimpleNamespace(digest=tools.sha256_bytes(cfg), size=len(cfg),
                             media_type=mt["config"], file=path / hexof(tools.sha256_bytes(cfg)))
    config.file.write_bytes(cfg)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt["manifest"],
        "config": {"mediaType": config.media_type, "digest": config.digest,
                   "size": config.size},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest,
                    "size": layer.size}],
    }, separators=(",", ":")).encode()
    (path / "manifest.json").write_bytes(manifest)
    return SimpleNamespace(path=path, digest=tools.sha256_bytes(manifest), manifest=manifest,
                           config=config, layer=layer)


_BIG = {}
_BIG_LOCK = threading.Lock()
BIG_SIZE = 256 * MiB
BIG_REPO, BIG_TAG = "mount/big", "v1"


def big_image(registry, session_dir):
    """The 256 MiB image, generated and pushed to `registry` as mount/big:v1 once per
    session (shared by every module that asks)."""
    with _BIG_LOCK:
        if registry.addr not in _BIG:
            img = make_big_image(Path(session_dir) / f"big-{registry.port}",
                                 BIG_SIZE - 2 * MiB, seed=256)
            images.push(img.path, registry.addr, BIG_REPO, BIG_TAG)
            _BIG[registry.addr] = img
        return _BIG[registry.addr]


def entries_of(img):
    """Expected readdir order of a tag directory of an images.Image (single or index):
    manifest.json, version, instance manifests, then config and layers in manifest order
    (each blob once)."""
    names = ["manifest.json", "version"]
    parts = img.instances if img.is_index else [img]
    if img.is_index:
        names += [hexof(im.digest) + ".manifest.json" for im in img.instances]
    seen = set()
    for im in parts:
        for b in [im.config] + im.layers:
            if b.digest not in seen:
                seen.add(b.digest)
                names.append(hexof(b.digest))
    return names


# ---- the cache directory -------------------------------------------------------------------

_ENTRY = re.compile(r"^(?:sha256[:_-])?([0-9a-f]{64})$")


def cache_entries(cache_dir):
    """{hex: Path} of the complete entries of the cache's blob store (see module doc)."""
    out = {}
    for p in Path(cache_dir).rglob("*"):
        m = _ENTRY.match(p.name)
        if m and p.is_file() and not p.is_symlink():
            out[m.group(1)] = p
    return out


def cache_files_naming(cache_dir, hex_):
    """Every file below cache_dir whose relative path mentions hex_ (entries, partial files,
    temporaries)."""
    return [p for p in Path(cache_dir).rglob("*")
            if hex_ in str(p.relative_to(cache_dir)) and not p.is_dir()]


def invalid_cache_entries(cache_dir):
    """Entries whose bytes do not hash to their name: [(path, actual digest)]."""
    bad = []
    for hex_, p in cache_entries(cache_dir).items():
        got = tools.sha256_file(p)
        if got != "sha256:" + hex_:
            bad.append((str(p), got))
    return bad


def cache_usage(cache_dir):
    """Disk usage of cache_dir in bytes, as du counts it (allocated blocks, hard links
    once)."""
    seen = set()
    total = 0
    for p in [Path(cache_dir), *Path(cache_dir).rglob("*")]:
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_blocks * 512
    return total


def cache_listing(cache_dir):
    """Text listing of cache_dir for assertion messages."""
    rows = []
    for p in sorted(Path(cache_dir).rglob("*")):
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        rows.append(f"{st.st_size:>12} {st.st_blocks * 512:>12} {p.relative_to(cache_dir)}")
    return "\n".join(rows) or "(empty)"


def blob_gets(proxy, digest=None):
    """Log entries of GETs of blobs (of one digest, or any)."""
    return proxy.requests("GET", f"/blobs/{digest}" if digest else r"/blobs/")


def blob_body_bytes(proxy, digest=None):
    return sum(e.body_bytes for e in blob_gets(proxy, digest))
