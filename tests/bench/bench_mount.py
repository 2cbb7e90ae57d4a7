#!/usr/bin/python3
"""regfs mount against skopeo (and curl), side by side in one run.

Generates two random images (tests/testlib): a 256 MiB one in 4 gzip layers and one with a
single 256 MiB uncompressed layer, pushes both to a throw-away docker-registry on loopback
(registry A) and times, N times each (default 3), the tools alternating which goes first.
Every regfs run gets a fresh mount with a fresh, empty cache_dir (the mount is not timed),
of a copy of build/regfs taken at the start.

The registries serve HTTPS with certificates from a test CA made for the run, verification
on: the mount finds the CA in a certs.d root named by $REGFS_CERTS_D (ROOT/HOST:PORT/ca.crt
for every registry and relay address), skopeo gets --cert-dir / --src-cert-dir /
--dest-cert-dir, curl --cacert. With --plain they speak plain HTTP instead, as before:
the same cases, ratios printed, no targets.

  read side
  (f) cp -r MNT/A/repo/tag OUT        vs skopeo copy docker:// dir:OUT          <= 0.5
  (g) cat MNT/A/repo/tag/<layer> >/dev/null, the 256 MiB layer
                                      vs curl -s …/blobs/sha256:… | openssl dgst  <= 1.4
  (h) ls -l MNT/A/repo/tag, never listed before   vs skopeo inspect              <= 0.5
  (h10) the same with A reached through a TCP relay (tests/testlib/tcprelay.py) adding
      10 ms each way and a round trip per new connection, vs skopeo inspect through it
                                                                                 <= 0.5
  (i) cat of the same layer again, right after (g) and then after drop_caches (so that
      it comes from the cache dir, not the page cache): MB/s, no target
  write side (the `mkdir -p` of the destination repository is not timed)
  (j) cp -r MNT/A/repo/tag MNT/A/other-N/tag vs skopeo copy within A, skopeo's blob-info
      cache warm                                                                <= 1.0
      and the same against skopeo with a cold blob-info cache                    (report)
  (k) cp -r MNT/A/repo/tag MNT/B/repo/tag, B a fresh registry per run, vs skopeo copy A -> B
                                                                                 <= 1.0
  (l) cp -r LOCALDIR MNT/A/new-N/tag (the 4-layer image in dir: layout)
      vs skopeo copy dir:LOCALDIR docker://A/new-N:tag (cold blob-info cache, so that skopeo
      uploads as regfs does instead of mounting the blobs it saw in A)          <= 1.2

skopeo's blob-info cache: a run's own directory, never the machine's. As root skopeo keeps
it in /var/lib/containers/cache, so skopeo copies run in a private mount namespace with a
directory bound there (made once per directory, entered with nsenter: bench.SkopeoCaches);
otherwise XDG_DATA_HOME points at it. "Warm" is one directory kept for the whole benchmark
and filled by one untimed copy first; "cold" is a new, empty one per run. Likewise every
mount gets XDG_CACHE_HOME (regfs's blob-location cache lives in $XDG_CACHE_HOME/regfs): one
warm directory for the whole run, a new, empty one for (l).

Every copy is checked: a dir: has the source manifest's bytes and every blob at its size,
a registry serves the source manifest's bytes (skopeo inspect --raw). Mounts are unmounted
and registries, relays and namespaces stopped at the end of each run or on any failure or
Ctrl-C.

    /usr/bin/python3 tests/bench/bench_mount.py [--reps N] [--size-mib M] [--plain] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import COMMAND_TIMEOUT, DOCKER_REGISTRY, NSENTER, OPENSSL, RELAY_DELAY_MS  # noqa: E402
from bench import SKOPEO, CommandFailed, Network, SkopeoCaches  # noqa: E402
from bench import connection_notes, failed_cases, print_table as print_rows  # noqa: E402
from bench import run_bench  # noqa: E402
from bench import summary_row, transport_words  # noqa: E402
from bench import REGFS as BUILT_REGFS  # noqa: E402
from testlib import images, tools  # noqa: E402
from testlib.wait import wait_until  # noqa: E402

FUSERMOUNT = "/usr/bin/fusermount3"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")

# (case, label, target or None)
CASES = [
    ("f", "cp -r tag dir out, cold  | skopeo copy to dir:", 0.5),
    ("g", "cat big layer, cold      | curl | openssl dgst", 1.4),
    ("h", "ls -l new tag dir        | skopeo inspect", 0.5),
    ("h10", f"the same, {RELAY_DELAY_MS} ms each way | skopeo inspect", 0.5),
    ("i1", "cat layer again: page cache", None),
    ("i2", "cat layer again: cache dir", None),
    ("j", "cp -r repo -> repo       | skopeo, cache warm", 1.0),
    ("j-cold", "cp -r repo -> repo       | skopeo, cache cold", None),
    ("k", "cp -r reg A -> reg B     | skopeo copy A -> B", 1.0),
    ("l", "cp -r dir: into mount    | skopeo dir: -> docker", 1.2),
]


def detach_mounts_below(directory):
    """Lazily detaches every mount below `directory` (what a failed run may have left)."""
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f
                if line.split()[4].startswith(str(directory) + "/")]
    for mnt in left:
        subprocess.run([FUSERMOUNT, "-uz", mnt], capture_output=True, timeout=30)


def timed(argv, env=None):
    """Runs argv (testlib: private HOME, no proxies); returns (wall seconds, stdout)."""
    start = time.perf_counter()
    p = tools.run(argv, timeout=COMMAND_TIMEOUT, env=env)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise CommandFailed(f"{' '.join(map(str, argv))}\n  exit {p.returncode}: "
                            f"{p.stderr.strip()[-2000:]}")
    return wall, p.stdout


class Mount:
    """`regfs mount` on a new mount point with a new, empty cache_dir, `options` (more -o
    options, comma-separated) and `env` on top of testlib's; a context manager that unmounts (regfs unmount, then fusermount3 -u / -uz,
    then kills the daemon by its pid) and removes the cache whatever happened."""

    def __init__(self, regfs, root, env, options=""):
        self.regfs, self.root, self.env, self.options = regfs, root, env, options
        self.mnt, self.cache = root / "mnt", root / "cache"
        self.pid = None

    def __enter__(self):
        self.mnt.mkdir()
        self.cache.mkdir()
        opts = f"cache_dir={self.cache},log={self.root / 'regfs.log'}"
        if self.options:
            opts += "," + self.options
        try:
            with open(self.root / "mount.out", "wb") as out:
                p = subprocess.run([self.regfs, "mount", "-o", opts, str(self.mnt)],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env={**tools._env(tools.private_home()), **self.env},
                                   timeout=60)
            if p.returncode != 0 or not tools.is_mounted(self.mnt):
                raise CommandFailed(f"regfs mount exited {p.returncode}: "
                                    f"{(self.root / 'mount.out').read_text()[-2000:]}")
            self.pid = int((self.mnt / ".regfs" / "pid").read_text())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for argv in ([self.regfs, "unmount"], [FUSERMOUNT, "-u"], [FUSERMOUNT, "-uz"]):
            if not tools.is_mounted(self.mnt):
                break
            try:
                subprocess.run([*argv, str(self.mnt)], capture_output=True, timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if not wait_until(lambda: not tools.pid_alive(self.pid), 5):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not tools.is_mounted(self.mnt):
            shutil.rmtree(self.root, ignore_errors=True)

    def path(self, registry, repo, tag=None):
        p = self.mnt / registry.addr / repo
        return p / tag if tag else p


class MountBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.skopeo_caches = SkopeoCaches()
        self.results = {}  # case -> tool -> list of values, or an error string
        self.connections = {}   # relay case -> tool -> connections per run
        self.serial = 0
        # One binary for the whole run, even if build/regfs is rebuilt meanwhile.
        self.regfs = str(workdir / "regfs")
        shutil.copy2(BUILT_REGFS, self.regfs)
        self.warm_cache = self.new_dir("skopeo-cache-warm")
        self.regfs_warm_cache = self.new_dir("regfs-cache-warm")

    def new_dir(self, prefix):
        self.serial += 1
        d = self.workdir / f"{prefix}-{self.serial}"
        d.mkdir()
        return d

    def mount(self, cache_home=None):
        """A Mount whose XDG_CACHE_HOME is `cache_home` (default: the warm one)."""
        env = {**self.network.env, "XDG_CACHE_HOME": str(cache_home or self.regfs_warm_cache)}
        return Mount(self.regfs, self.new_dir("mount"), env)

    def timed(self, argv, env=None):
        return timed(argv, env={**self.network.env, **(env or {})})

    def skopeo_copy(self, src, dst, cache=None):
        """skopeo copy with its blob-info cache in `cache` (default: the warm one)."""
        cmd = self.skopeo_caches.command(self.network.skopeo_copy(src, dst),
                                         cache or self.warm_cache)
        return self.timed([*cmd.prefix, *cmd.argv], cmd.env)

    def skopeo_inspect(self, ref, *flags):
        # skopeo inspect opens no blob-info cache, so it runs without the namespace.
        return self.timed(self.network.skopeo_inspect(ref, *flags))

    def record(self, case, tool, fn):
        slot = self.results.setdefault(case, {}).setdefault(tool, [])
        if isinstance(slot, str):
            return None
        try:
            value = fn()
        except (CommandFailed, subprocess.TimeoutExpired, OSError) as e:
            self.results[case][tool] = f"failed: {e}"
            print(f"  {case} {tool}: {e}", file=sys.stderr)
            return None
        slot.append(value)
        return value

    # ---- checks ----------------------------------------------------------------------------

    def check_dir(self, out, img):
        got = tools.sha256_file(out / "manifest.json")
        if got != img.digest:
            raise CommandFailed(f"{out}: manifest digest {got}, expected {img.digest}")
        for blob in [img.config, *img.layers]:
            f = out / blob.digest.split(":", 1)[1]
            if not f.is_file() or f.stat().st_size != blob.size:
                raise CommandFailed(f"{out}: blob {blob.digest} missing or of the wrong size")

    def check_pushed(self, registry, repo, tag, img):
        p = tools.run(self.network.skopeo_inspect(registry.ref(repo, tag), "--raw"),
                      binary=True, env=self.network.env)
        got = tools.sha256_bytes(p.stdout) if p.returncode == 0 else p.stderr.decode()[-500:]
        if got != img.digest:
            raise CommandFailed(f"{registry.ref(repo, tag)}: manifest {got}, "
                                f"expected {img.digest}")

    # ---- the run ---------------------------------------------------------------------------

    def run(self):
        a = self.args
        size = a.size_mib << 20
        print(f"generating a {a.size_mib} MiB image in 4 gzip layers and one with a single "
              f"{a.size_mib} MiB layer ...", flush=True)
        started = time.perf_counter()
        local = self.workdir / "image"   # also the dir: source of (l)
        img = images.make_image(local, seed=1, fmt="oci", layers=["gzip"] * 4,
                                layer_size=size // 4)
        # (a tar of size - 4 KiB of payload: random.randbytes cannot make 256 MiB at once)
        big = images.make_image(self.workdir / "big", seed=2, fmt="oci", layers=["tar"],
                                layer_size=size - 4096)
        net = self.network
        reg = net.registry()
        warm = lambda argv: self.skopeo_caches.command(argv, self.warm_cache)  # noqa: E731
        net.push(local, reg, "bench/image", "1", warm)
        net.push(big.path, reg, "bench/big", "1", warm)
        shutil.rmtree(big.path)
        layer = big.layers[0]
        relay = net.relay(reg, RELAY_DELAY_MS)
        print(f"  done in {time.perf_counter() - started:.1f} s; registry A is "
              f"{net.scheme}://{reg.addr}, through a {RELAY_DELAY_MS} ms relay {relay.addr}",
              flush=True)

        # Untimed: skopeo's warm cache learns where the blobs are (as after any earlier pull
        # or push), and both binaries and the registry's files are in the page cache.
        self.skopeo_copy(reg.ref("bench/image", "1"), reg.ref("bench/warm", "1"))
        self.skopeo_inspect(reg.ref("bench/image", "1"))
        with self.mount() as m:
            timed(["ls", "-l", m.path(reg, "bench/image", "1")])

        for rep in range(a.reps):
            print(f"repetition {rep + 1}/{a.reps}", flush=True)

            def order(*names):   # the tools take turns going first
                return names[rep % len(names):] + names[:rep % len(names)]
            for tool in order("regfs", "skopeo"):
                self.record("f", tool, lambda: self.case_f(tool, reg, img))
            for tool in order("regfs", "curl"):
                self.record("g", tool, lambda: self.case_g(tool, reg, layer))
            for tool in order("regfs", "skopeo"):
                self.record("h", tool, lambda: self.case_h(tool, reg.addr, img))
            for tool in order("regfs", "skopeo"):
                relay.reset_counts()
                if self.record("h10", tool, lambda: self.case_h(tool, relay.addr, img)):
                    self.connections.setdefault("h10", {}).setdefault(tool, []).append(
                        relay.connections)
            for tool in order("regfs", "skopeo", "skopeo-cold"):
                case = "j-cold" if tool == "skopeo-cold" else "j"
                self.record(case, tool.split("-")[0], lambda: self.case_j(tool, reg, img, rep))
            for tool in order("regfs", "skopeo"):
                self.record("k", tool, lambda: self.case_k(tool, reg, img))
            for tool in order("regfs", "skopeo"):
                self.record("l", tool, lambda: self.case_l(tool, reg, img, local, rep))
        # the regfs runs of (j) serve both rows
        if "regfs" in self.results.get("j", {}):
            self.results.setdefault("j-cold", {})["regfs"] = self.results["j"]["regfs"]

        return failed_cases(self.results)

    def case_f(self, tool, reg, img):
        out = self.workdir / "f-out"
        try:
            if tool == "regfs":
                with self.mount() as m:
                    wall, _ = timed(["cp", "-r", m.path(reg, "bench/image", "1"), out])
            else:
                wall, _ = self.skopeo_copy(reg.ref("bench/image", "1"), f"dir:{out}")
            self.check_dir(out, img)
            return wall
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def case_g(self, tool, reg, layer):
        hex_ = layer.digest.split(":", 1)[1]
        if tool == "curl":
            url = f"{reg.url}/v2/bench/big/blobs/{layer.digest}"
            curl = " ".join(["curl", "-s", *self.network.curl_trust()])
            wall, out = self.timed(["sh", "-c", f'{curl} "$1" | openssl dgst -sha256', "sh", url])
            if hex_ not in out:
                raise CommandFailed(f"curl | openssl dgst printed {out.strip()!r}")
            return wall
        cat = ["sh", "-c", 'cat "$1" > /dev/null', "sh"]
        with self.mount() as m:
            blob = m.path(reg, "bench/big", "1") / hex_
            wall, _ = timed([*cat, blob])
            # (i): read it again, from the page cache, then from the cache dir
            mb = layer.size / 1e6
            self.record("i1", "regfs", lambda: mb / timed([*cat, blob])[0])

            def from_cache_dir():
                subprocess.run(["sync"], timeout=120)
                DROP_CACHES.write_text("3\n")
                return mb / timed([*cat, blob])[0]
            if os.access(DROP_CACHES, os.W_OK):   # root only
                self.record("i2", "regfs", from_cache_dir)
        return wall

    def case_h(self, tool, addr, img):
        """(h) and (h10): the registry at addr, directly or through the relay."""
        if tool == "regfs":
            with self.mount() as m:
                wall, out = timed(["ls", "-l", m.mnt / addr / "bench/image/1"])
            want = [b.digest.split(":", 1)[1] for b in [img.config, *img.layers]]
        else:
            wall, out = self.skopeo_inspect(f"docker://{addr}/bench/image:1")
            want = [img.digest]
        missing = [w for w in want if w not in out]
        if missing:
            raise CommandFailed(f"{tool} (h) printed no {missing[0]}:\n{out[-1000:]}")
        return wall

    def case_j(self, tool, reg, img, rep):
        repo = f"bench/j-{tool}-{rep}"
        if tool == "regfs":
            with self.mount() as m:
                m.path(reg, repo).mkdir(parents=True)
                wall, _ = timed(["cp", "-r", m.path(reg, "bench/image", "1"),
                                 m.path(reg, repo, "1")])
        else:
            cache = self.new_dir("skopeo-cache-cold") if tool == "skopeo-cold" else None
            wall, _ = self.skopeo_copy(reg.ref("bench/image", "1"), reg.ref(repo, "1"), cache)
        self.check_pushed(reg, repo, "1", img)
        return wall

    def case_k(self, tool, reg, img):
        dest = self.network.registry()
        try:
            if tool == "regfs":
                with self.mount() as m:
                    m.path(dest, "bench/image").mkdir(parents=True)
                    wall, _ = timed(["cp", "-r", m.path(reg, "bench/image", "1"),
                                     m.path(dest, "bench/image", "1")])
            else:
                wall, _ = self.skopeo_copy(reg.ref("bench/image", "1"),
                                           dest.ref("bench/image", "1"))
            self.check_pushed(dest, "bench/image", "1", img)
            return wall
        finally:
            self.network.drop(dest)

    def case_l(self, tool, reg, img, local, rep):
        repo = f"bench/l-{tool}-{rep}"
        if tool == "regfs":
            # a cold blob-location cache too, as skopeo's
            with self.mount(self.new_dir("regfs-cache-cold")) as m:
                m.path(reg, repo).mkdir(parents=True)
                wall, _ = timed(["cp", "-r", local, m.path(reg, repo, "1")])
        else:
            wall, _ = self.skopeo_copy(f"dir:{local}", reg.ref(repo, "1"),
                                       self.new_dir("skopeo-cache-cold"))
        self.check_pushed(reg, repo, "1", img)
        return wall

    def cleanup(self):
        self.network.stop()
        self.skopeo_caches.stop()
        # Mount.__exit__ has unmounted everything; should one be left, detach it before
        # the work directory goes, so that removing it cannot reach through the mount.
        detach_mounts_below(self.workdir)

    # ---- the report ------------------------------------------------------------------------

    def summary(self):
        rows = []
        for case, label, target in CASES:
            per_tool = self.results.get(case, {})
            other = next((t for t in per_tool if t != "regfs"), None)
            row = summary_row(case, label, per_tool, other,
                              "MB/s" if case.startswith("i") else "s",
                              None if self.args.plain else target)
            row["runs"] = per_tool
            rows.append(row)
        return rows

    def notes(self):
        return connection_notes(self.connections)


def print_table(rows, args, notes=()):
    print_rows(f"regfs mount vs skopeo / curl over {transport_words(args)}: {args.size_mib} "
               f"MiB images, median of {args.reps} runs each; the (i) rows are MB/s", rows,
               "other", label_width=50, notes=notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--size-mib", type=int, default=256, help="image size in MiB (256)")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP registries instead of HTTPS (no targets)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    return run_bench("bench-mount", MountBench, args, print_table, needs=(
        (BUILT_REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (FUSERMOUNT, "apt-get install fuse3"), (NSENTER, "apt-get install util-linux"),
        ("/usr/bin/curl", "apt-get install curl"), (OPENSSL, "apt-get install openssl"),
        (DOCKER_REGISTRY, "apt-get install docker-registry")))


if __name__ == "__main__":
    sys.exit(main())
