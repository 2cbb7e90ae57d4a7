#!/usr/bin/python3
"""regfs against skopeo, side by side in one run.

Generates a random image (default 256 MiB in 4 gzip layers, with tests/testlib), pushes it
with skopeo to a throw-away docker-registry on loopback, and times both tools on the same
work. The registries serve HTTPS with certificates from a test CA made for the run
(tests/testlib/tlsca.py), verification on for both tools: regfs finds the CA in a certs.d
root named by $REGFS_CERTS_D (ROOT/HOST:PORT/ca.crt for every registry and relay address),
skopeo gets --cert-dir / --src-cert-dir / --dest-cert-dir ROOT/HOST:PORT.

  (a)  copy docker:// -> dir:                                          target <= 0.5
  (b)  copy between two repositories of one registry, both tools' caches warm
                                                                       target <= 0.5
  (c)  copy between two registries: a fresh, empty destination registry for every run and
       both tools' caches cold (empty), so neither can skip the transfer   target <= 0.8
  (c2) copy between two registries where the destination already holds the blobs in
       another repository and both tools' caches know it (untimed first: each tool copies
       the image to dest/other-<tool>; timed: to dest/new-<tool>-<rep>)    target <= 1.0
  (d)  inspect                                                         target <= 0.7
  (d10) inspect through a TCP relay (tests/testlib/tcprelay.py) adding 10 ms each way and a
       round trip per new connection, as TCP's handshake costs         target <= 0.5
  (e-a) … (e-c2) peak RSS of each copy case (/usr/bin/time -v)          target <= 1.0

The caches: skopeo's blob-info cache is the benchmark's own, never the machine's. As root
skopeo keeps it in /var/lib/containers/cache, so skopeo copies run in a private mount
namespace with a directory of the run bound there (made once per directory, entered with
nsenter); otherwise XDG_DATA_HOME points at it. regfs gets XDG_CACHE_HOME (its
blob-location cache lives in $XDG_CACHE_HOME/regfs). "Warm" is a directory per tool kept for
the whole run and filled by untimed copies first; "cold" is a new, empty one per run.

With --plain the registries speak plain HTTP on loopback instead (skopeo gets
--tls-verify=false, regfs needs nothing), as before HTTPS became the default: the same cases,
ratios printed, no targets.

Each case runs N times per tool (default 3), the tools alternating which goes first, regfs
being a copy of build/regfs taken at the start; the table shows medians. Every copy is
checked to have preserved the manifest digest. Registries, relays, namespaces and temporary
directories are removed at the end, also on failure or Ctrl-C.

    /usr/bin/python3 tests/bench/bench.py [--reps N] [--size-mib M] [--layers L] [--plain]
                                          [--json FILE]

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
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from testlib import images, tools  # noqa: E402
from testlib.registry import Registry, RegistryTLS  # noqa: E402
from testlib.tcprelay import TCPRelay  # noqa: E402
from testlib.tlsca import OPENSSL, TestCA  # noqa: E402

SKOPEO = tools.SKOPEO
GNU_TIME = "/usr/bin/time"
REGFS = tools.regfs_bin()
DOCKER_REGISTRY = "/usr/bin/docker-registry"
COMMAND_TIMEOUT = 600
ROOT_BLOB_CACHE = Path("/var/lib/containers/cache")   # skopeo's blob-info cache as root
NSENTER = "/usr/bin/nsenter"
RELAY_DELAY_MS = 10
INSPECT_SAMPLES = 10  # per repetition and tool

TARGETS = {"a": 0.5, "b": 0.5, "c": 0.8, "c2": 1.0, "d": 0.7, "d10": 0.5,
           "e-a": 1.0, "e-b": 1.0, "e-c": 1.0, "e-c2": 1.0}


class CommandFailed(Exception):
    pass


# ---- the network: registries, relays, and how each tool is told to trust them ---------------


class Network:
    """The registries and relays of one benchmark run, on loopback.

    TLS (the default): one TestCA; every registry serves a certificate it issued (IP SAN
    127.0.0.1), and every registry or relay address gets ROOT/HOST:PORT/ca.crt in a certs.d
    root of its own. plain=True: plain HTTP, as skopeo is told with --tls-verify=false and
    regfs assumes for loopback. stop() ends everything that is still running."""

    def __init__(self, workdir, plain=False):
        self.plain = plain
        self.certs_d = workdir / "certs.d"
        self.certs_d.mkdir()
        self.ca = self.tls = None
        if not plain:
            self.ca = TestCA(workdir / "ca")
            server = self.ca.issue("registry", server=True)
            self.tls = RegistryTLS(cert=server.cert, key=server.key, ca=self.ca.cert)
        self.registries, self.relays = [], []

    @property
    def scheme(self):
        return "http" if self.plain else "https"

    @property
    def env(self):
        """For every command of the run: regfs looks for certificates in our certs.d only."""
        return {"REGFS_CERTS_D": str(self.certs_d)}

    def _trust(self, addr):
        if self.ca is not None:
            self.ca.certs_d(self.certs_d, addr)

    def _untrust(self, addr):
        shutil.rmtree(self.certs_d / addr, ignore_errors=True)

    def registry(self):
        r = Registry(name="bench", tls=self.tls).start()
        self.registries.append(r)
        self._trust(r.addr)
        return r

    def relay(self, registry, delay_ms):
        """A TCPRelay in front of registry, delay_ms each way and a round trip per new
        connection; its address is trusted like the registry's."""
        relay = TCPRelay(registry.addr, delay_ms=delay_ms, handshake=True).start()
        self.relays.append(relay)
        self._trust(relay.addr)
        return relay

    def drop(self, thing):
        """Stops a registry or relay of this network now."""
        thing.stop()
        for group in (self.registries, self.relays):
            if thing in group:
                group.remove(thing)
        self._untrust(thing.addr)

    def stop(self):
        for thing in [*self.relays, *self.registries]:
            thing.stop()
        self.relays.clear()
        self.registries.clear()

    # ---- skopeo's and curl's flags ---------------------------------------------------------

    def _skopeo_trust(self, ref, prefix):
        """Flags for one docker:// reference (prefix "src-", "dest-" or "")."""
        if not ref.startswith("docker://"):
            return []
        if self.plain:
            return [f"--{prefix}tls-verify=false"]
        host = ref[len("docker://"):].split("/", 1)[0]
        return [f"--{prefix}cert-dir", str(self.certs_d / host)]

    def skopeo_copy(self, src, dst, *flags):
        return [SKOPEO, "copy", "--quiet", *flags, *self._skopeo_trust(src, "src-"),
                *self._skopeo_trust(dst, "dest-"), src, dst]

    def skopeo_inspect(self, ref, *flags):
        return [SKOPEO, "inspect", *flags, *self._skopeo_trust(ref, ""), ref]

    def curl_trust(self):
        return [] if self.plain else ["--cacert", str(self.ca.cert)]

    def push(self, src_dir, registry, repo, tag, skopeo):
        """Pushes a dir: image with skopeo (digests preserved; skopeo(argv) makes the
        Command) and checks the registry serves the same manifest. Returns its digest."""
        want = tools.sha256_file(Path(src_dir) / "manifest.json")
        cmd = skopeo(self.skopeo_copy(f"dir:{src_dir}", registry.ref(repo, tag),
                                      "--all", "--preserve-digests"))
        p = tools.run([*cmd.prefix, *cmd.argv], env={**self.env, **cmd.env},
                      timeout=COMMAND_TIMEOUT)
        if p.returncode != 0:
            raise CommandFailed(f"push of {src_dir}: {p.stderr.strip()[-2000:]}")
        got = registry.manifest_digest(repo, tag)
        if got != want:
            raise CommandFailed(f"push of {src_dir}: registry serves {got}, dir has {want}")
        return want


# ---- commands and caches -----------------------------------------------------------------


@dataclass
class Command:
    """argv, run after `prefix` (which execs it) with `env` on top of the run's."""
    argv: list
    env: dict = field(default_factory=dict)
    prefix: list = field(default_factory=list)


class SkopeoCaches:
    """skopeo's blob-info cache in directories of the run, never the machine's.

    As root skopeo keeps it in /var/lib/containers/cache: each directory gets a private mount
    namespace with it bound there, made once (untimed) and held by a small process that ends
    when its stdin closes (at stop(), or when the benchmark dies); skopeo commands enter it
    with nsenter, which costs next to nothing, where a new namespace and mount per command
    (unshare -m) cost ~7 ms. Otherwise XDG_DATA_HOME points at the directory."""

    def __init__(self):
        self.holders = {}   # directory -> Popen holding its namespace

    def command(self, argv, directory):
        """argv (a skopeo command) with skopeo's blob-info cache in `directory`."""
        if os.geteuid() != 0:
            return Command(argv, env={"XDG_DATA_HOME": str(directory)})
        holder = self.holders.get(directory)
        if holder is None:
            holder = self.holders[directory] = self._hold(directory)
        return Command(argv, prefix=[NSENTER, f"--mount=/proc/{holder.pid}/ns/mnt", "--"])

    def _hold(self, directory):
        ROOT_BLOB_CACHE.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'mount --bind "$0" {ROOT_BLOB_CACHE} && echo ready && exec head -c1',
             str(directory)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        if p.stdout.readline() != b"ready\n":
            p.stdin.close()
            err = p.stderr.read().decode(errors="replace").strip()
            p.wait()
            raise CommandFailed(f"cannot bind {directory} on {ROOT_BLOB_CACHE} in a mount "
                                f"namespace: {err}")
        return p

    def stop(self):
        for p in self.holders.values():
            p.stdin.close()
        for p in self.holders.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.holders.clear()


def regfs_cmd(argv, cache_home):
    """argv (a regfs command) with XDG_CACHE_HOME, home of its blob-location cache, there."""
    return Command(argv, env={"XDG_CACHE_HOME": str(cache_home)})


class Runner:
    """Runs Commands through testlib's runner (private HOME, no proxies), with the network's
    environment, under /usr/bin/time -v (inside the prefix, so it measures the tool alone)."""

    def __init__(self, workdir, network):
        self.time_file = workdir / "time.txt"
        self.network = network

    def run_plain(self, cmd):
        """Wall time alone, for short commands: no /usr/bin/time, output discarded rather
        than read through pipes. Returns (wall seconds, 0)."""
        env = tools._env(tools.private_home())
        env.update(self.network.env)
        env.update(cmd.env)
        argv = [str(a) for a in (*cmd.prefix, *cmd.argv)]
        start = time.perf_counter()
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=env, timeout=COMMAND_TIMEOUT)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise CommandFailed(f"{' '.join(map(str, cmd.argv))}\n  exit {p.returncode}: "
                                f"{p.stderr.decode(errors='replace').strip()[-2000:]}")
        return wall, 0

    def run(self, cmd):
        """Returns (wall seconds, peak RSS in KiB)."""
        self.time_file.unlink(missing_ok=True)
        argv = [*cmd.prefix, GNU_TIME, "-v", "-o", self.time_file, *cmd.argv]
        start = time.perf_counter()
        p = tools.run(argv, timeout=COMMAND_TIMEOUT, env={**self.network.env, **cmd.env})
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise CommandFailed(f"{' '.join(map(str, cmd.argv))}\n  exit {p.returncode}: "
                                f"{p.stderr.strip()[-2000:]}")
        rss = 0
        for line in self.time_file.read_text().splitlines():
            if "Maximum resident set size" in line:
                rss = int(line.rsplit(":", 1)[1])
        return wall, rss


def check_digest(tool, what, got, want):
    if got != want:
        raise CommandFailed(f"{tool} {what}: manifest digest {got}, expected {want}")


# ---- the benchmark -----------------------------------------------------------------------


def record_result(results, case, tool, fn):
    """Runs fn() (returning a value or a (wall, rss) pair) unless this tool already failed
    this case, and appends what it returns to results[case][tool]; None when it fails (the
    failure is kept in place of the values)."""
    slot = results.setdefault(case, {}).setdefault(tool, [])
    if isinstance(slot, str):
        return None
    try:
        value = fn()
    except (CommandFailed, subprocess.TimeoutExpired) as e:
        results[case][tool] = f"failed: {e}"
        print(f"  {tool} {case}: {e}", file=sys.stderr)
        return None
    slot.append(value)
    return value


class Bench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.runner = Runner(workdir, self.network)
        self.skopeo_caches = SkopeoCaches()
        self.results = {}  # case -> tool -> list of values, or an error string
        self.connections = {}   # relay case -> tool -> connections per run
        self.serial = 0
        # One binary for the whole run, even if build/regfs is rebuilt meanwhile.
        self.regfs = str(workdir / "regfs")
        shutil.copy2(REGFS, self.regfs)
        # Caches kept for the whole run ("warm"), per tool; (c2) has its own pair.
        self.warm = {t: self.new_dir(f"{t}-cache-warm") for t in ("regfs", "skopeo")}
        self.c2_warm = {t: self.new_dir(f"{t}-cache-c2") for t in ("regfs", "skopeo")}

    def new_dir(self, prefix):
        self.serial += 1
        d = self.workdir / f"{prefix}-{self.serial}"
        d.mkdir()
        return d

    def copy(self, tool, src, dst, cache):
        """The Command copying src to dst with `tool`, its cache in directory `cache`."""
        if tool == "regfs":
            return regfs_cmd([self.regfs, "copy", "-q", src, dst], cache)
        return self.skopeo_caches.command(self.network.skopeo_copy(src, dst), cache)

    def inspect(self, tool, ref):
        # skopeo inspect opens no blob-info cache, so it runs without the namespace.
        if tool == "regfs":
            return regfs_cmd([self.regfs, "inspect", ref], self.warm["regfs"])
        return Command(self.network.skopeo_inspect(ref))

    def record(self, case, tool, fn):
        return record_result(self.results, case, tool, fn)

    def tools_in_order(self, rep):
        return ("regfs", "skopeo") if rep % 2 == 0 else ("skopeo", "regfs")

    def run(self):
        a = self.args
        net = self.network
        total = a.size_mib << 20
        print(f"generating a {a.size_mib} MiB image in {a.layers} gzip layers ...", flush=True)
        started = time.perf_counter()
        image = self.workdir / "image"
        images.make_image(image, seed=1, fmt="oci", layers=["gzip"] * a.layers,
                          layer_size=total // a.layers)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)

        src_reg = net.registry()
        src = src_reg.ref("bench/image", "1")
        digest = net.push(image, src_reg, "bench/image", "1",
                          lambda argv: self.skopeo_caches.command(argv, self.warm["skopeo"]))
        shutil.rmtree(image)
        print(f"pushed {src} over {net.scheme} ({digest})", flush=True)

        # Untimed: the page cache of the registry storage, and both tools' warm caches learn
        # where the blobs are (as they would have after any earlier pull or push).
        for tool in ("regfs", "skopeo"):
            dest = self.workdir / f"warm-{tool}"
            self.runner.run(self.copy(tool, src, f"dir:{dest}", self.warm[tool]))
            shutil.rmtree(dest, ignore_errors=True)
            self.runner.run(self.copy(tool, src, src_reg.ref(f"bench/warm-{tool}", "1"),
                                      self.warm[tool]))
        # (c2)'s destination: the blobs are there in another repository, and each tool's
        # cache saw them go there.
        c2_reg = net.registry()
        for tool in ("regfs", "skopeo"):
            repo = f"bench/other-{tool}"
            self.runner.run(self.copy(tool, src, c2_reg.ref(repo, "1"), self.c2_warm[tool]))
            check_digest(tool, "copy to (c2)'s registry", c2_reg.manifest_digest(repo, "1"),
                         digest)
        relay = net.relay(src_reg, RELAY_DELAY_MS)
        src10 = f"docker://{relay.addr}/bench/image:1"

        for rep in range(a.reps):
            print(f"repetition {rep + 1}/{a.reps}", flush=True)
            for tool in self.tools_in_order(rep):
                # (a) and (e-a): registry -> dir:
                dest = self.workdir / f"dir-{tool}-{rep}"

                def to_dir():
                    result = self.runner.run(self.copy(tool, src, f"dir:{dest}",
                                                       self.warm[tool]))
                    check_digest(tool, "copy to dir:", tools.sha256_file(dest / "manifest.json"),
                                 digest)
                    return result
                self.record("a", tool, to_dir)
                shutil.rmtree(dest, ignore_errors=True)

            for tool in self.tools_in_order(rep):
                # (b): to a fresh repository of the same registry
                repo = f"bench/b-{tool}-{rep}"

                def same_registry():
                    result = self.runner.run(self.copy(tool, src, src_reg.ref(repo, "1"),
                                                       self.warm[tool]))
                    check_digest(tool, "copy within a registry",
                                 src_reg.manifest_digest(repo, "1"), digest)
                    return result
                self.record("b", tool, same_registry)

            for tool in self.tools_in_order(rep):
                # (c): to a brand-new registry, caches cold
                dest_reg = net.registry()

                def other_registry():
                    dest = dest_reg.ref("bench/image", "1")
                    result = self.runner.run(self.copy(tool, src, dest,
                                                       self.new_dir(f"{tool}-cache-cold")))
                    check_digest(tool, "copy between registries",
                                 dest_reg.manifest_digest("bench/image", "1"), digest)
                    return result
                try:
                    self.record("c", tool, other_registry)
                finally:
                    net.drop(dest_reg)

            for tool in self.tools_in_order(rep):
                # (c2): to a new repository of a registry that has the blobs, caches warm
                repo = f"bench/new-{tool}-{rep}"

                def known_registry():
                    result = self.runner.run(self.copy(tool, src, c2_reg.ref(repo, "1"),
                                                       self.c2_warm[tool]))
                    check_digest(tool, "copy to a registry that has the blobs",
                                 c2_reg.manifest_digest(repo, "1"), digest)
                    return result
                self.record("c2", tool, known_registry)

            # (d) takes tens of milliseconds: many interleaved samples, timed without the
            # /usr/bin/time wrapper, whose own start-up would weigh on both sides.
            for _ in range(INSPECT_SAMPLES):
                for tool in self.tools_in_order(rep):
                    self.record("d", tool, lambda: self.runner.run_plain(self.inspect(tool, src)))
            for _ in range(INSPECT_SAMPLES):
                for tool in self.tools_in_order(rep):
                    relay.reset_counts()
                    if self.record("d10", tool,
                                   lambda: self.runner.run_plain(self.inspect(tool, src10))):
                        self.connections.setdefault("d10", {}).setdefault(tool, []).append(
                            relay.connections)

        return failed_cases(self.results)

    def cleanup(self):
        self.network.stop()
        self.skopeo_caches.stop()

    # ---- the report ------------------------------------------------------------------------

    def summary(self):
        cases = [("a", "copy docker:// -> dir:", "a", 0),
                 ("b", "copy repo -> repo, one registry, warm", "b", 0),
                 ("c", "copy registry -> new registry, cold", "c", 0),
                 ("c2", "copy reg -> reg that has the blobs, warm", "c2", 0),
                 ("d", "inspect", "d", 0),
                 ("d10", f"inspect, {RELAY_DELAY_MS} ms each way", "d10", 0),
                 ("e-a", "peak RSS of (a)", "a", 1),
                 ("e-b", "peak RSS of (b)", "b", 1),
                 ("e-c", "peak RSS of (c)", "c", 1),
                 ("e-c2", "peak RSS of (c2)", "c2", 1)]
        rows = []
        for key, label, source, index in cases:
            per_tool = {tool: values if isinstance(values, str) else [v[index] for v in values]
                        for tool, values in self.results.get(source, {}).items()}
            rows.append(summary_row(key, label, per_tool, "skopeo",
                                    "KiB" if index else "s",
                                    None if self.args.plain else TARGETS[key]))
        return rows

    def notes(self):
        return connection_notes(self.connections)


# ---- shared with bench_mount.py: the report, and run_bench() ---------------------------------


def failed_cases(results):
    return [f"{case} {tool}" for case, per_tool in results.items()
            for tool, v in per_tool.items() if isinstance(v, str)]


def summary_row(case, label, per_tool, other, unit, target):
    """One table row: the medians of regfs and of `other` in per_tool (tool -> list of
    numbers, or an error string), their ratio, and whether it meets target (None: none)."""
    medians = {}
    for tool in ("regfs", other):
        values = per_tool.get(tool)
        ok = isinstance(values, list) and values
        medians[tool] = statistics.median(values) if ok else None
    mine, theirs = medians["regfs"], medians[other]
    ratio = mine / theirs if mine is not None and theirs else None
    return {"case": case, "label": label, "unit": unit, "regfs": mine, "other": other,
            "other_value": theirs, "ratio": ratio, "target": target,
            "met": None if target is None or ratio is None else ratio <= target}


def connection_notes(connections):
    """Lines saying how many connections each tool opened through a relay, per run."""
    lines = []
    for case, per_tool in connections.items():
        counts = ", ".join(f"{tool} {statistics.median(v):g}" for tool, v in per_tool.items())
        lines.append(f"({case}) connections through the relay per run (median): {counts}")
    return lines


def fmt(value, unit):
    if value is None:
        return "—"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    if unit == "MB/s":
        return f"{value:.0f} MB/s"
    return f"{value:.3f} s"


def print_table(title, rows, other_header, label_width=44, notes=()):
    print()
    print(title)
    header = (f"{'case':<8} {'':<{label_width}} {'regfs':>11} {other_header:>11} {'ratio':>6} "
              f"{'target':>7}  result")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        target = "—" if r["target"] is None else f"<= {r['target']}"
        if r["target"] is None:
            result = "" if r["regfs"] is not None else "no data"
        else:
            result = {True: "met", False: "MISSED", None: "no data"}[r["met"]]
        print(f"({r['case']})".ljust(8) + f" {r['label']:<{label_width}} "
              f"{fmt(r['regfs'], r['unit']):>11} {fmt(r['other_value'], r['unit']):>11} "
              f"{ratio:>6} {target:>7}  {result}")
    for line in notes:
        print(line)


def transport_words(args):
    if args.plain:
        return "plain HTTP on loopback (--plain: no targets)"
    return "HTTPS with a test CA, verification on"


def print_bench_table(rows, args, notes=()):
    print_table(f"regfs vs skopeo over {transport_words(args)}: {args.size_mib} MiB image, "
                f"{args.layers} layers, median of {args.reps} runs each", rows, "skopeo",
                notes=notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--size-mib", type=int, default=256, help="image size in MiB (256)")
    parser.add_argument("--layers", type=int, default=4, help="number of layers (4)")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP registries instead of HTTPS (no targets)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    return run_bench("bench", Bench, args, print_bench_table, needs=(
        (REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (GNU_TIME, "apt-get install time"), (OPENSSL, "apt-get install openssl"),
        (NSENTER, "apt-get install util-linux"),
        (DOCKER_REGISTRY, "apt-get install docker-registry")))


def run_bench(name, bench_cls, args, print_table, needs):
    """Checks the tools in `needs` ((path, install hint) pairs), runs bench_cls(args, workdir)
    in a temporary work directory that goes whatever happens, and prints its table
    (print_table(rows, args, notes), notes from bench.notes()); --json also gets whatever
    bench.json_fields() returns, when it has one."""
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
    bench = None
    try:
        bench = bench_cls(args, workdir)
        failed = bench.run()
        rows = bench.summary()
        notes = bench.notes()
    except CommandFailed as e:
        sys.exit(f"{name}: {e}")
    finally:
        if bench is not None:
            bench.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    print_table(rows, args, notes)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "transport": "http" if args.plain else "https",
             "rows": rows, "notes": notes, "runs": bench.results,
             "connections": getattr(bench, "connections", None),
             **(bench.json_fields() if hasattr(bench, "json_fields") else {})},
            indent=2, default=str) + "\n")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
