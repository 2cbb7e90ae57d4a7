#!/usr/bin/python3
"""regfs against skopeo, side by side in one run.

Generates a random image (default 256 MiB in 4 gzip layers, with tests/testlib), pushes it
with skopeo to a throw-away docker-registry on loopback, and times both tools on the same
work:

  (a) copy docker:// -> dir:                       target regfs/skopeo <= 0.5
  (b) copy between two repositories of one registry, skopeo's blob-info cache warm
                                                   target <= 0.5
  (c) copy between two registries (a fresh, empty destination registry for every run, so
      neither tool can skip the transfer)          target <= 1.0
  (d) inspect                                      target <= 0.5
  (e) peak RSS of (a) (/usr/bin/time -v)           target <= 1.0

Each case runs N times per tool (default 3), the tools alternating which goes first; the
table shows medians. Every copy is checked to have preserved the manifest digest. Registries
and temporary directories are removed at the end, also on failure or Ctrl-C.

    /usr/bin/python3 tests/bench/bench.py [--reps N] [--size-mib M] [--layers L] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from testlib import images, tools  # noqa: E402
from testlib.registry import Registry  # noqa: E402

SKOPEO = tools.SKOPEO
GNU_TIME = "/usr/bin/time"
REGFS = tools.regfs_bin()
COMMAND_TIMEOUT = 600

# skopeo needs to be told that a loopback registry speaks plain HTTP; regfs does not.
SKOPEO_COPY = [SKOPEO, "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"]
SKOPEO_INSPECT = [SKOPEO, "inspect", "--tls-verify=false"]
INSPECT_SAMPLES = 10  # per repetition and tool
REGFS_COPY = [REGFS, "copy", "-q"]
REGFS_INSPECT = [REGFS, "inspect"]

TARGETS = {"a": 0.5, "b": 0.5, "c": 1.0, "d": 0.5, "e": 1.0}


class CommandFailed(Exception):
    pass


# ---- running and measuring -----------------------------------------------------------------


class Runner:
    """Runs commands under /usr/bin/time -v, through testlib's runner (private HOME, no
    proxies), and returns (wall seconds, peak RSS in KiB)."""

    def __init__(self, workdir):
        self.time_file = workdir / "time.txt"

    def run_plain(self, argv):
        """Wall time alone, for short commands: the same environment, output discarded rather
        than read through pipes."""
        env = tools._env(tools.private_home())
        start = time.perf_counter()
        p = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                           timeout=COMMAND_TIMEOUT)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise CommandFailed(f"{' '.join(map(str, argv))}\n  exit {p.returncode}: "
                                f"{p.stderr.decode(errors='replace').strip()[-2000:]}")
        return wall, 0

    def run(self, argv):
        start = time.perf_counter()
        p = tools.run([GNU_TIME, "-v", "-o", self.time_file, *argv], timeout=COMMAND_TIMEOUT)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise CommandFailed(f"{' '.join(map(str, argv))}\n  exit {p.returncode}: "
                                f"{p.stderr.strip()[-2000:]}")
        rss = 0
        for line in self.time_file.read_text().splitlines():
            if "Maximum resident set size" in line:
                rss = int(line.rsplit(":", 1)[1])
        return wall, rss


def check_digest(tool, what, got, want):
    if got != want:
        raise CommandFailed(f"{tool} {what}: manifest digest {got}, expected {want}")


class Bench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.runner = Runner(workdir)
        self.results = {}  # case -> tool -> list of values, or an error string
        self.registries = []

    def registry(self):
        r = Registry(name="bench").start()
        self.registries.append(r)
        return r

    def record(self, case, tool, fn):
        """Runs fn() (returning a value or a (wall, rss) pair) unless this tool already
        failed this case."""
        slot = self.results.setdefault(case, {}).setdefault(tool, [])
        if isinstance(slot, str):
            return None
        try:
            value = fn()
        except (CommandFailed, subprocess.TimeoutExpired) as e:
            self.results[case][tool] = f"failed: {e}"
            print(f"  {tool} {case}: {e}", file=sys.stderr)
            return None
        slot.append(value)
        return value

    def tools_in_order(self, rep):
        return ("regfs", "skopeo") if rep % 2 == 0 else ("skopeo", "regfs")

    def run(self):
        a = self.args
        total = a.size_mib << 20
        print(f"generating a {a.size_mib} MiB image in {a.layers} gzip layers ...", flush=True)
        started = time.perf_counter()
        image = self.workdir / "image"
        images.make_image(image, seed=1, fmt="oci", layers=["gzip"] * a.layers,
                          layer_size=total // a.layers)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)

        src_reg = self.registry()
        src = src_reg.ref("bench/image", "1")
        digest = images.push(image, src_reg.addr, "bench/image", "1")
        shutil.rmtree(image)
        print(f"pushed {src} ({digest})", flush=True)

        copy = {"regfs": REGFS_COPY, "skopeo": SKOPEO_COPY}
        inspect = {"regfs": REGFS_INSPECT, "skopeo": SKOPEO_INSPECT}

        # Warm-up, untimed: page cache of the registry storage, and skopeo's blob-info cache
        # learns where the blobs are (as it would have after any earlier pull or push).
        for tool in ("regfs", "skopeo"):
            dest = self.workdir / f"warm-{tool}"
            self.record("warm-up", tool,
                        lambda: self.runner.run([*copy[tool], src, f"dir:{dest}"]))
            shutil.rmtree(dest, ignore_errors=True)
        self.runner.run([*SKOPEO_COPY, src, src_reg.ref("bench/warm", "1")])

        for rep in range(a.reps):
            print(f"repetition {rep + 1}/{a.reps}", flush=True)
            for tool in self.tools_in_order(rep):
                # (a) and (e): registry -> dir:
                dest = self.workdir / f"dir-{tool}-{rep}"

                def to_dir():
                    result = self.runner.run([*copy[tool], src, f"dir:{dest}"])
                    check_digest(tool, "copy to dir:", tools.sha256_file(dest / "manifest.json"),
                                 digest)
                    return result
                self.record("a", tool, to_dir)
                shutil.rmtree(dest, ignore_errors=True)

            for tool in self.tools_in_order(rep):
                # (b): to a fresh repository of the same registry
                repo = f"bench/b-{tool}-{rep}"

                def same_registry():
                    result = self.runner.run([*copy[tool], src, src_reg.ref(repo, "1")])
                    check_digest(tool, "copy within a registry",
                                 src_reg.manifest_digest(repo, "1"), digest)
                    return result
                self.record("b", tool, same_registry)

            for tool in self.tools_in_order(rep):
                # (c): to a brand-new registry
                dest_reg = self.registry()

                def other_registry():
                    dest = dest_reg.ref("bench/image", "1")
                    result = self.runner.run([*copy[tool], src, dest])
                    check_digest(tool, "copy between registries",
                                 dest_reg.manifest_digest("bench/image", "1"), digest)
                    return result
                try:
                    self.record("c", tool, other_registry)
                finally:
                    dest_reg.stop()
                    self.registries.remove(dest_reg)

            # (d) takes tens of milliseconds: many interleaved samples, timed without the
            # /usr/bin/time wrapper, whose own start-up would weigh on both sides.
            for _ in range(INSPECT_SAMPLES):
                for tool in self.tools_in_order(rep):
                    self.record("d", tool, lambda: self.runner.run_plain([*inspect[tool], src]))

        failed = [f"{case} {tool}" for case, per_tool in self.results.items()
                  for tool, v in per_tool.items() if isinstance(v, str)]
        return failed

    def cleanup(self):
        for r in self.registries:
            r.stop()
        self.registries.clear()

    # ---- the report ------------------------------------------------------------------------

    def summary(self):
        rows = []
        cases = [("a", "copy docker:// -> dir:", 0),
                 ("b", "copy repo -> repo, one registry", 0),
                 ("c", "copy registry -> registry", 0),
                 ("d", "inspect", 0),
                 ("e", "peak RSS of (a)", 1)]
        for key, label, field in cases:
            per_tool = self.results.get("a" if key == "e" else key, {})
            medians = {}
            for tool in ("regfs", "skopeo"):
                values = per_tool.get(tool)
                if isinstance(values, list) and values:
                    medians[tool] = statistics.median(v[field] for v in values)
                else:
                    medians[tool] = None
            ratio = None
            if medians["regfs"] is not None and medians["skopeo"]:
                ratio = medians["regfs"] / medians["skopeo"]
            rows.append({"case": key, "label": label, "unit": "KiB" if field else "s",
                         "regfs": medians["regfs"], "skopeo": medians["skopeo"],
                         "ratio": ratio, "target": TARGETS[key],
                         "met": ratio is not None and ratio <= TARGETS[key]})
        return rows


def fmt(value, unit):
    if value is None:
        return "—"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    return f"{value:.3f} s"


def print_table(rows, args):
    print()
    print(f"regfs vs skopeo: {args.size_mib} MiB image, {args.layers} layers, "
          f"median of {args.reps} runs each")
    header = f"{'case':<38} {'regfs':>11} {'skopeo':>11} {'ratio':>7} {'target':>8}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        result = "met" if r["met"] else ("MISSED" if r["ratio"] is not None else "no data")
        print(f"({r['case']}) {r['label']:<34} {fmt(r['regfs'], r['unit']):>11} "
              f"{fmt(r['skopeo'], r['unit']):>11} {ratio:>7} {'<= ' + str(r['target']):>8}  "
              f"{result}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--size-mib", type=int, default=256, help="image size in MiB (256)")
    parser.add_argument("--layers", type=int, default=4, help="number of layers (4)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    return run_bench("bench", Bench, args, print_table, needs=(
        (REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (GNU_TIME, "apt-get install time"),
        ("/usr/bin/docker-registry", "apt-get install docker-registry")))


def run_bench(name, bench_cls, args, print_table, needs):
    """Checks the tools in `needs` ((path, install hint) pairs), runs bench_cls(args, workdir)
    in a temporary work directory that goes whatever happens, and prints its table."""
    for path, hint in needs:
        if not os.access(path, os.X_OK):
            sys.exit(f"{name}: {path} is missing ({hint})")

    # SIGTERM unwinds like Ctrl-C, so that registries and temporary files go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    workdir = Path(tempfile.mkdtemp(prefix=f"regfs-{name}-"))
    # testlib runs every command in a private HOME of its own making; keep it in workdir so
    # that it goes with the rest.
    (workdir / "home").mkdir()
    tools._HOME = str(workdir / "home")
    bench = bench_cls(args, workdir)
    try:
        failed = bench.run()
        rows = bench.summary()
    except CommandFailed as e:
        sys.exit(f"{name}: {e}")
    finally:
        bench.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows,
                                               "runs": getattr(bench, "results", None)},
                                              indent=2, default=str) + "\n")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
