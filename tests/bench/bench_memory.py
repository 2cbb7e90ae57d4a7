#!/usr/bin/python3
"""The memory of a long-lived `regfs mount`: does the daemon's RSS stay flat over repeated walks?

Starts a throw-away docker-registry on loopback, uploads one small image's blobs (HTTP, no
skopeo), and PUTs N manifests (default 5,000) under the tags t0 … tN-1 of one repository,
each manifest the image's with an annotation naming its tag, so that every tag is an image
of its own (its own digest, its own image directory view in the daemon). Then it mounts with
`-o tag_ttl=1,list_ttl=1` (so every walk resolves every tag and lists again) and walks the
repository three times, `find MNT/REG/repo -type f -print0 | xargs -0 stat`, printing after
each walk the daemon's RSS (VmRSS of /proc/PID/status, PID from MNT/.regfs/pid), what its
caches hold (MNT/.regfs/stats "entries") and how long the walk took.

  (steady) the same N images for the three walks
  (moving) a busy registry: before each walk every tag is moved to a new manifest (the
           annotation names the walk too), so each walk meets N images never seen before

Target: RSS after the third walk <= 1.10 × RSS after the second, in both cases — the daemon's
caches are bounded (fs/lru_cache.h, the caps in fs/mount_options.h), so once they are full a
walk costs no more memory than the one before.

The registry speaks HTTPS with a test CA (the mount finds it through $REGFS_CERTS_D), or plain
HTTP with --plain. Every mount gets a fresh, empty cache_dir and XDG_CACHE_HOME, and a copy of
build/regfs ($REGFS_BIN) taken at the start: run it with REGFS_BIN pointing at another build
to compare. The mount is unmounted and the registry stopped at the end, also on failure or
Ctrl-C.

    /usr/bin/python3 tests/bench/bench_memory.py [--tags N] [--walks W] [--plain] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import COMMAND_TIMEOUT, DOCKER_REGISTRY, CommandFailed, Network  # noqa: E402
from bench import run_bench, transport_words  # noqa: E402
from bench import REGFS as BUILT_REGFS  # noqa: E402
from bench_mount import FUSERMOUNT, Mount, detach_mounts_below  # noqa: E402
from testlib import images  # noqa: E402

REPO = "bench/many"
TARGET = 1.10
PUT_THREADS = 8
CASES = [
    ("steady", "the same images every walk"),
    ("moving", "every tag moved before each walk"),
]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise CommandFailed(f"no VmRSS for pid {pid}")


def upload_blob(reg, repo, data, digest):
    """A monolithic upload: POST for a session, PUT of the bytes with their digest."""
    r = reg.get(f"/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    if r.status != 202:
        raise CommandFailed(f"POST blob upload: {r.status} {r.body[:500]!r}")
    location = r.headers["Location"]
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    sep = "&" if "?" in location else "?"
    r = reg.get(f"{location}{sep}digest={digest}", method="PUT", data=data,
                headers={"Content-Type": "application/octet-stream"})
    if r.status != 201:
        raise CommandFailed(f"PUT blob {digest}: {r.status} {r.body[:500]!r}")


class MemoryBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.results = {}  # case -> list of per-walk dicts, or an error string
        # One binary for the whole run, even if build/regfs is rebuilt meanwhile.
        self.regfs = str(workdir / "regfs")
        shutil.copy2(BUILT_REGFS, self.regfs)

    def put_tags(self, reg, img, generation):
        """Tags t0 … tN-1, each a manifest of its own (an annotation names tag and generation)."""
        base = json.loads(img.manifest)

        def put(i):
            m = dict(base)
            m["annotations"] = {**base.get("annotations", {}), "org.regfs.bench.tag": str(i),
                                "org.regfs.bench.generation": str(generation)}
            r = reg.get(f"/v2/{REPO}/manifests/t{i}", method="PUT",
                        data=json.dumps(m).encode(), headers={"Content-Type": img.media_type})
            if r.status != 201:
                raise CommandFailed(f"PUT manifest t{i}: {r.status} {r.body[:500]!r}")

        with concurrent.futures.ThreadPoolExecutor(PUT_THREADS) as pool:
            list(pool.map(put, range(self.args.tags)))

    def walk(self, m, reg):
        root = m.mnt / reg.addr / REPO
        started = time.perf_counter()
        p = subprocess.run(f'find "{root}" -type f -print0 | xargs -0 -r stat --format=%s',
                           shell=True, capture_output=True, timeout=COMMAND_TIMEOUT)
        seconds = time.perf_counter() - started
        files = len(p.stdout.split())
        if p.returncode != 0 or files < self.args.tags:
            raise CommandFailed(f"walk of {root}: exit {p.returncode}, {files} files: "
                                f"{p.stderr.decode(errors='replace')[-2000:]}")
        stats = json.loads((m.mnt / ".regfs" / "stats").read_bytes())
        return {"rss_kib": rss_kib(m.pid), "seconds": seconds, "files": files,
                "entries": stats.get("entries"), "requests": stats.get("requests")}

    def run(self):
        a = self.args
        reg = self.network.registry()
        img = images.make_image(self.workdir / "image", seed=1, fmt="oci", layers=["gzip"],
                                layer_size=4096)
        for blob in [img.config, *img.layers]:
            upload_blob(reg, REPO, blob.data, blob.digest)
        print(f"registry {self.network.scheme}://{reg.addr}; {a.tags} tags in {REPO}, "
              f"{a.walks} walks per case", flush=True)
        generation = 0
        for case, label in CASES:
            generation += 1
            started = time.perf_counter()
            self.put_tags(reg, img, generation)
            print(f"({case}) {a.tags} manifests put in {time.perf_counter() - started:.1f} s",
                  flush=True)
            walks = []
            try:
                xdg, root = self.workdir / f"xdg-{case}", self.workdir / f"mount-{case}"
                xdg.mkdir()
                root.mkdir()
                env = {**self.network.env, "XDG_CACHE_HOME": str(xdg)}
                with Mount(self.regfs, root, env,
                           options="tag_ttl=1,list_ttl=1") as m:
                    for w in range(a.walks):
                        if case == "moving" and w > 0:
                            generation += 1
                            self.put_tags(reg, img, generation)
                        walks.append(self.walk(m, reg))
                        r = walks[-1]
                        print(f"  walk {w + 1}: {r['files']} files in {r['seconds']:.1f} s, "
                              f"RSS {r['rss_kib'] / 1024:.1f} MiB, caches {r['entries']}",
                              flush=True)
                self.results[case] = walks
            except (CommandFailed, subprocess.TimeoutExpired, OSError) as e:
                self.results[case] = f"failed: {e}"
                print(f"  {case}: {e}", file=sys.stderr)
        return [case for case, v in self.results.items() if isinstance(v, str)]

    def summary(self):
        rows = []
        for case, label in CASES:
            walks = self.results.get(case)
            ok = isinstance(walks, list) and len(walks) >= 3
            ratio = walks[2]["rss_kib"] / walks[1]["rss_kib"] if ok else None
            rows.append({"case": case, "label": label,
                         "rss_mib": [w["rss_kib"] / 1024 for w in walks] if ok else None,
                         "ratio": ratio, "target": TARGET,
                         "met": None if ratio is None else ratio <= TARGET})
        return rows

    def notes(self):
        return []

    def cleanup(self):
        self.network.stop()
        # Mount.__exit__ has unmounted; should a mount be left, detach it before the work
        # directory goes, so that removing it cannot reach through the mount.
        detach_mounts_below(self.workdir)


def print_table(rows, args, notes=()):
    print()
    print(f"regfs mount memory over {transport_words(args)}: {args.tags} tags, "
          f"tag_ttl=1,list_ttl=1, RSS after each walk")
    header = (f"{'case':<9} {'':<34} {'walk 1':>9} {'walk 2':>9} {'walk 3':>9} "
              f"{'3rd/2nd':>8} {'target':>8}  result")
    print(header)
    print("-" * len(header))
    for r in rows:
        rss = r["rss_mib"] or [None] * 3
        cells = "".join(f"{'—' if v is None else f'{v:.1f} MiB':>10}" for v in rss[:3])
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.3f}"
        result = {True: "met", False: "MISSED", None: "no data"}[r["met"]]
        print(f"({r['case']})".ljust(9) + f" {r['label']:<34}{cells} {ratio:>8} "
              f"{'<= ' + str(r['target']):>8}  {result}")
    for line in notes:
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=5000, help="tags in the repository (5000)")
    parser.add_argument("--walks", type=int, default=3, help="walks per case (3, at least 3)")
    parser.add_argument("--plain", action="store_true",
                        help="a plain HTTP registry instead of HTTPS")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    if args.walks < 3:
        parser.error("--walks must be at least 3")

    return run_bench("bench-memory", MemoryBench, args, print_table, needs=(
        (BUILT_REGFS, "build it: tools/test --build-only"),
        (FUSERMOUNT, "apt-get install fuse3"),
        (DOCKER_REGISTRY, "apt-get install docker-registry")))


if __name__ == "__main__":
    sys.exit(main())
