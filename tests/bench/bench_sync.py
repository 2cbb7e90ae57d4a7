#!/usr/bin/python3
"""regfs sync against skopeo sync, side by side in one run.

`regfs sync` is a drop-in for `skopeo sync`: same flags, same YAML, same destination paths.
So both tools get the very same arguments; regfs additionally finds the test CA through
$REGFS_CERTS_D (ROOT/HOST:PORT/ca.crt for every registry and relay address), as in
bench.py, while skopeo reads the `cert-dir` keys of the YAML and --dest-cert-dir.

The data: 20 repositories (sync/r01 … sync/r20) × 3 tags (t1 … t3) of small Docker v2s2
images, generated with tests/testlib/images.py: every image is a shared 2 MiB gzip base
layer plus a 64 KiB gzip layer of its own (60 images, ~2.1 MiB of distinct blobs per
repository), pushed once with skopeo to a source docker-registry on loopback. Every
registry is reached through a TCP relay (tests/testlib/tcprelay.py) adding 10 ms each way
and a round trip per new connection (bench.py's d10): a sync is dozens of requests per
image, so latency, not bandwidth, is what a sync of many small images spends its time on.
The YAML lists the 20 repositories with `images: {sync/rNN: []}` (all tags) and the
relay's `cert-dir`.

  (s1) sync --src yaml --dest docker YAML RELAY/mirror into a fresh, empty destination
       registry for every run, both tools' caches cold (empty): wall time   target <= 0.3
  (s2) the same command again, nothing changed, destination synced by the same tool
       (same cache): wall time                                              target <= 0.2
       and what was transferred meanwhile, counted in the access logs of both registries
       (docker-registry logs every request in combined log format, method, URI, status and
       bytes sent, to its registry.log; the bench reads what was appended during the run):
       blob bodies (GET of /v2/*/blobs/sha256:*, PATCH/PUT of /v2/*/blobs/uploads/*, POST
       of an upload with ?digest=) and manifest GETs (GET of /v2/*/manifests/*). For regfs
       both must be 0 (HEADs are fine); printed for both tools.
  (s3) sync --src yaml --dest dir into separate empty directories: `diff -r` of the two
       trees must be empty (else the bench fails); then the same command into the same
       directory again: skopeo refuses ("Refusing to overwrite destination directory"),
       regfs must succeed; both outcomes printed. Then the round trip
       sync --src dir --dest docker TREE RELAY/back (each tool from its own tree, a fresh
       registry each): every manifest digest must equal the source's. Timed, no targets.
  (s4) regfs only (--skopeo-only: skopeo, for information): a sync killed with SIGKILL
       once 40% of the images are there (counted as manifest PUTs in the destination's
       access log, or manifest.json files in the destination directory), then the same
       command again, which must complete. Then no partial result may be left: for --dest
       docker, every tag of the destination serves the source's manifest and a HEAD of
       every blob it names succeeds; for --dest dir, every image directory has
       manifest.json, its digest is the source's and every blob it names is there with its
       digest, and no *.regfs-tmp-* is left anywhere. Both kinds of destination are done.
  (s5) peak RSS (/usr/bin/time -v) of the (s1) sync                        target <= 1.0

Caches as in bench.py: skopeo's blob-info cache is a directory of the run, entered through
a private mount namespace as root (bench.SkopeoCaches), regfs gets XDG_CACHE_HOME; "cold"
is a new, empty directory per run. Each case runs N times per tool (default 3), the tools
alternating which goes first, regfs being a copy of $REGFS_BIN (else build/regfs) taken at
the start; the table shows medians. Registries, relays, namespaces and temporary
directories are removed at the end, also on failure or Ctrl-C.

With --plain the registries speak plain HTTP (the YAML says `tls-verify: false`, the
destination gets --dest-tls-verify=false): the same cases, ratios printed, no targets.
--skopeo-only runs skopeo's side alone (and (s4) with skopeo), for when regfs has no sync.
--regfs-jobs N adds --jobs N to regfs's commands alone (to see how time and memory scale).

    /usr/bin/python3 tests/bench/bench_sync.py [--reps N] [--plain] [--json FILE]
                                               [--cases s1,s2,s3,s4,s5] [--skopeo-only]
                                               [--regfs-jobs N]

Not a test: it measures and prints; it exits non-zero only when a command or one of the
checks above fails (missed targets are printed, not failures).
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import COMMAND_TIMEOUT, DOCKER_REGISTRY, GNU_TIME, NSENTER, OPENSSL  # noqa: E402
from bench import RELAY_DELAY_MS, SKOPEO, CommandFailed, Network, Runner  # noqa: E402
from bench import (SkopeoCaches, connection_notes, failed_cases, print_table,  # noqa: E402
                   record_result)
from bench import regfs_cmd, run_bench, summary_row, transport_words  # noqa: E402
from bench import REGFS as BUILT_REGFS  # noqa: E402
from testlib import images, tools  # noqa: E402

REPOS, TAGS = 20, 3
BASE_BYTES = 2 << 20     # random payload of the shared base layer
OWN_BYTES = 64 << 10     # and of each image's own layer
KILL_AT = 0.4            # (s4): share of the images synced when the sync is killed
CASES = ("s1", "s2", "s3", "s4", "s5")
TARGETS = {"s1": 0.3, "s2": 0.2, "s5": 1.0}
TOOLS = ("regfs", "skopeo")

# docker-registry's access log, combined log format:
#   127.0.0.1 - - [01/Dec/2026:12:45:08 +0000] "GET /v2/r/blobs/sha256:… HTTP/1.1" 200 1240 …
ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+) (\d+|-)')


def repo_name(r):
    return f"r{r:02d}"


def blob_digests(manifest):
    """Digests of the config and layers of a single-image manifest (parsed)."""
    out = [manifest["config"]["digest"]] if "config" in manifest else []
    return out + [layer["digest"] for layer in manifest.get("layers", [])]


# ---- what the registries were asked ------------------------------------------------------


class AccessLog:
    """The requests a testlib Registry answers from the moment this is made on, from its
    access log (registry.log in its work directory)."""

    def __init__(self, registry):
        self.path = Path(registry.workdir) / "registry.log"
        self.offset = self.path.stat().st_size

    def requests(self):
        """[(method, uri, status, bytes sent)]"""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        out = []
        for line in text.splitlines():
            m = ACCESS_LINE.match(line)
            if m:
                size = 0 if m[4] == "-" else int(m[4])
                out.append((m[1], m[2], int(m[3]), size))
        return out


def classify(requests):
    """Counts of what a tool transferred, by kind of request."""
    c = {"requests": len(requests), "HEAD": 0, "blob GET": 0, "blob GET bytes": 0,
         "blob upload": 0, "blob mount": 0, "manifest GET": 0, "manifest PUT": 0}
    for method, uri, _status, size in requests:
        path, _, query = uri.partition("?")
        if method == "HEAD":
            c["HEAD"] += 1
        elif "/blobs/uploads/" in path or path.endswith("/blobs/uploads"):
            if method in ("PATCH", "PUT") or (method == "POST" and "digest=" in query):
                c["blob upload"] += 1
            elif method == "POST" and "mount=" in query:
                c["blob mount"] += 1
        elif "/blobs/" in path and method == "GET":
            c["blob GET"] += 1
            c["blob GET bytes"] += size
        elif "/manifests/" in path:
            if method == "GET":
                c["manifest GET"] += 1
            elif method == "PUT":
                c["manifest PUT"] += 1
    c["blob bodies"] = c["blob GET"] + c["blob upload"]
    return c


def manifest_puts(log):
    return sum(1 for method, uri, status, _ in log.requests()
               if method == "PUT" and "/manifests/" in uri and status == 201)


# ---- checks of a destination ---------------------------------------------------------------


def registry_problems(registry, expected):
    """What is wrong with `registry` given expected {(repo, tag): manifest digest}: a tag
    that is missing or serves another manifest, and any tag of any repository whose
    manifest names a blob that a HEAD does not find."""
    problems = []
    for (repo, tag), want in sorted(expected.items()):
        got = registry.manifest_digest(repo, tag)
        if got != want:
            problems.append(f"{repo}:{tag} serves {got}, the source {want}")
    for repo in registry.catalog():
        for tag in registry.tags(repo):
            r = registry.manifest(repo, tag)
            if r.status != 200:
                problems.append(f"{repo}:{tag} listed, but GET of its manifest: {r.status}")
                continue
            for digest in blob_digests(r.json()):
                if not registry.has_blob(repo, digest):
                    problems.append(f"{repo}:{tag}: blob {digest} missing")
    return problems


def dir_tree_problems(root, expected):
    """What is wrong with a `sync --dest dir` tree given expected {name: manifest digest}:
    image directories missing, unexpected or incomplete (manifest.json, version, every blob
    it names with its digest), and *.regfs-tmp-* left anywhere."""
    problems = []
    leftovers = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                       if ".regfs-tmp-" in p.name)
    if leftovers:
        problems.append(f"left over: {leftovers[:5]}{' …' if len(leftovers) > 5 else ''}")
    names = {p.name for p in root.iterdir() if ".regfs-tmp-" not in p.name}
    for name in sorted(names - set(expected)):
        problems.append(f"unexpected {name}")
    for name in sorted(set(expected) - names):
        problems.append(f"missing {name}")
    for name in sorted(names & set(expected)):
        d = root / name
        mf = d / "manifest.json"
        if not mf.is_file():
            problems.append(f"{name}: no manifest.json")
            continue
        if tools.sha256_file(mf) != expected[name]:
            problems.append(f"{name}: manifest.json is not the source's")
        if not (d / "version").is_file():
            problems.append(f"{name}: no version")
        for digest in blob_digests(json.loads(mf.read_bytes())):
            blob = d / digest.split(":", 1)[1]
            if not blob.is_file():
                problems.append(f"{name}: blob {digest} missing")
            elif tools.sha256_file(blob) != digest:
                problems.append(f"{name}: blob {digest} has other bytes")
    return problems


def problems_text(problems, limit=4):
    if not problems:
        return "OK"
    more = f" (+{len(problems) - limit} more)" if len(problems) > limit else ""
    return f"{len(problems)} problem(s): " + "; ".join(problems[:limit]) + more


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[-300:] if lines else ""


# ---- the benchmark -------------------------------------------------------------------------


class SyncBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.cases = set(args.cases)
        self.tools = ("skopeo",) if args.skopeo_only else TOOLS
        self.network = Network(workdir, plain=args.plain)
        self.runner = Runner(workdir, self.network)
        self.skopeo_caches = SkopeoCaches()
        self.results = {}       # case -> tool -> list of (wall, rss), or an error string
        self.connections = {}   # case -> tool -> connections through the relays per run
        self.transfers = {}     # tool -> list of classify() of each (s2) run
        self.checks = []        # {"case", "tool", "ok", "text"}
        self.serial = 0
        self.src_reg = self.src_relay = None
        self.digests = {}       # (r, t) -> manifest digest
        self.regfs = None
        if not args.skopeo_only:
            # One binary for the whole run, even if it is rebuilt meanwhile.
            self.regfs = str(workdir / "regfs")
            shutil.copy2(BUILT_REGFS, self.regfs)
            p = tools.run([self.regfs, "sync", "--help"])
            if p.returncode != 0:
                raise CommandFailed(f"{BUILT_REGFS} has no sync ({last_line(p.stderr)}); "
                                    "--skopeo-only runs skopeo's side alone")
        self.warm_skopeo = self.new_dir("skopeo-cache-push")

    def new_dir(self, prefix):
        self.serial += 1
        d = self.workdir / f"{prefix}-{self.serial}"
        d.mkdir()
        return d

    # ---- commands ------------------------------------------------------------------------

    def sync(self, tool, src_kind, dest_kind, src, dest, cache):
        """The Command `TOOL sync --src SRC_KIND --dest DEST_KIND SRC DEST`, the same
        arguments for both tools, the tool's cache in directory `cache`."""
        flags = ["--src", src_kind, "--dest", dest_kind]
        if dest_kind == "docker":
            host = dest.split("/", 1)[0]
            flags += (["--dest-tls-verify=false"] if self.network.plain
                      else ["--dest-cert-dir", str(self.network.certs_d / host)])
        if tool == "regfs":
            jobs = ["--jobs", str(self.args.regfs_jobs)] if self.args.regfs_jobs else []
            return regfs_cmd([self.regfs, "sync", *flags, *jobs, src, dest], cache)
        return self.skopeo_caches.command([SKOPEO, "sync", *flags, src, dest], cache)

    def attempt(self, cmd):
        """Runs cmd; (exit status, wall seconds, stderr) whatever the status."""
        start = time.perf_counter()
        p = tools.run([*cmd.prefix, *cmd.argv], timeout=COMMAND_TIMEOUT,
                      env={**self.network.env, **cmd.env})
        return p.returncode, time.perf_counter() - start, p.stderr

    def write_yaml(self, addr):
        path = self.workdir / "sync.yaml"
        trust = ("  tls-verify: false\n" if self.network.plain
                 else f"  cert-dir: {self.network.certs_d / addr}\n")
        path.write_text(f"{addr}:\n  images:\n"
                        + "".join(f"    sync/{repo_name(r)}: []\n"
                                  for r in range(1, REPOS + 1))
                        + trust)
        return path

    def record(self, case, tool, fn):
        return record_result(self.results, case, tool, fn)

    def check(self, case, tool, ok, text):
        if case == "s4" and tool == "skopeo":
            ok = True   # --skopeo-only: skopeo's outcome, for information
        self.checks.append({"case": case, "tool": tool, "ok": ok, "text": text})
        print(f"  ({case}) {tool}: {text}", flush=True)

    def tools_in_order(self, rep):
        order = ("regfs", "skopeo") if rep % 2 == 0 else ("skopeo", "regfs")
        return [t for t in order if t in self.tools]

    def dest_registry(self):
        """A fresh registry and a relay in front of it."""
        reg = self.network.registry()
        return reg, self.network.relay(reg, RELAY_DELAY_MS)

    def drop(self, *things):
        for thing in things:
            if thing is not None:
                self.network.drop(thing)

    def expected(self, ns):
        return {(f"{ns}/{repo_name(r)}", f"t{t}"): d for (r, t), d in self.digests.items()}

    def expected_dirs(self):
        return {f"{repo_name(r)}:t{t}": d for (r, t), d in self.digests.items()}

    # ---- the source ----------------------------------------------------------------------

    def make_source(self):
        print(f"generating {REPOS * TAGS} images ({REPOS} repositories × {TAGS} tags, a "
              f"{BASE_BYTES >> 20} MiB base layer shared, {OWN_BYTES >> 10} KiB each of "
              f"their own) ...", flush=True)
        started = time.perf_counter()
        gen = self.workdir / "generated"
        base = images.make_image(gen / "base", seed=1000, fmt="docker", layers=["gzip"],
                                 layer_size=BASE_BYTES)
        work = []
        for r in range(1, REPOS + 1):
            for t in range(1, TAGS + 1):
                img = images.make_image(gen / f"{repo_name(r)}-t{t}", seed=r * 10 + t,
                                        fmt="docker", layers=["gzip"], layer_size=OWN_BYTES,
                                        base=base.layers)
                work.append(((r, t), img.path))
        self.src_reg = self.network.registry()

        def push(item, tries=3):
            (r, t), path = item
            for attempt in range(tries):
                try:
                    self.digests[(r, t)] = self.network.push(
                        path, self.src_reg, f"sync/{repo_name(r)}", f"t{t}",
                        lambda argv: self.skopeo_caches.command(argv, self.warm_skopeo))
                    return
                except CommandFailed:
                    if attempt == tries - 1:
                        raise
        # The first tag of every repository one after the other (docker-registry may answer
        # 500 to concurrent pushes of one blob), which also makes skopeo's namespace before
        # the threads use it; then the rest, which only add their own layers, side by side.
        for item in work:
            if item[0][1] == 1:
                push(item)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            list(pool.map(push, [item for item in work if item[0][1] != 1]))
        shutil.rmtree(gen)
        self.src_relay = self.network.relay(self.src_reg, RELAY_DELAY_MS)
        self.yaml = self.write_yaml(self.src_relay.addr)
        print(f"  pushed to {self.src_reg.addr} over {self.network.scheme} in "
              f"{time.perf_counter() - started:.1f} s; the YAML names its relay "
              f"{self.src_relay.addr} ({RELAY_DELAY_MS} ms each way)", flush=True)

    # ---- the cases -----------------------------------------------------------------------

    def case_s1_s2(self, tool, rep):
        """(s1) and (s5): a first sync into a fresh registry, caches cold; (s2): again."""
        reg, relay = self.dest_registry()
        try:
            cache = self.new_dir(f"{tool}-cache-cold")
            cmd = self.sync(tool, "yaml", "docker", str(self.yaml), f"{relay.addr}/mirror",
                            cache)
            expected = self.expected("mirror")

            def first():
                self.src_relay.reset_counts()
                relay.reset_counts()
                result = self.runner.run(cmd)
                self.connections.setdefault("s1", {}).setdefault(tool, []).append(
                    self.src_relay.connections + relay.connections)
                problems = registry_problems(reg, expected)
                if problems:
                    raise CommandFailed(f"after the sync: {problems_text(problems)}")
                return result
            if self.record("s1", tool, first) is None or "s2" not in self.cases:
                return

            def again():
                logs = (AccessLog(self.src_reg), AccessLog(reg))
                self.src_relay.reset_counts()
                relay.reset_counts()
                result = self.runner.run(cmd)
                self.connections.setdefault("s2", {}).setdefault(tool, []).append(
                    self.src_relay.connections + relay.connections)
                counts = classify([q for log in logs for q in log.requests()])
                counts["relay bytes"] = (self.src_relay.bytes_up + self.src_relay.bytes_down
                                         + relay.bytes_up + relay.bytes_down)
                self.transfers.setdefault(tool, []).append(counts)
                print(f"  (s2) {tool}: {counts_text(counts)}", flush=True)
                return result
            self.record("s2", tool, again)
        finally:
            self.drop(relay, reg)

    def case_s3(self, tools_order, rep):
        trees = {}
        for tool in tools_order:
            tree = self.new_dir(f"dir-{tool}-{rep}")
            cmd = self.sync(tool, "yaml", "dir", str(self.yaml), str(tree),
                            self.new_dir(f"{tool}-cache-cold"))

            def to_dir():
                result = self.runner.run(cmd)
                problems = dir_tree_problems(tree, self.expected_dirs())
                if problems:
                    raise CommandFailed(f"after the sync to dir: {problems_text(problems)}")
                return result
            if self.record("s3", tool, to_dir) is not None:
                trees[tool] = (tree, cmd)
        if len(trees) == 2:
            p = subprocess.run(["diff", "-r", str(trees["regfs"][0]), str(trees["skopeo"][0])],
                               capture_output=True, text=True)
            self.check("s3", "both", p.returncode == 0,
                       "diff -r of the two dir trees: " + (
                           "OK" if p.returncode == 0 else
                           "DIFF\n    " + "\n    ".join(
                               (p.stdout + p.stderr).strip().splitlines()[:10])))
        # The same command into the same, now full, directory.
        for tool in tools_order:
            if tool not in trees:
                continue
            status, wall, err = self.attempt(trees[tool][1])
            if tool == "regfs":
                ok = status == 0
                if ok:
                    ok = not dir_tree_problems(trees[tool][0], self.expected_dirs())
                self.check("s3", tool, ok, "second sync into the same dir: " + (
                    f"succeeded in {wall:.2f} s" if status == 0 else
                    f"FAILED, exit {status}: {last_line(err)}")
                    + ("" if ok or status != 0 else ", but the tree is no longer right"))
                if status == 0:
                    self.results.setdefault("s3b", {}).setdefault(tool, []).append(
                        (wall, 0))
            else:
                self.check("s3", tool, True, "second sync into the same dir: " + (
                    f"succeeded in {wall:.2f} s" if status == 0 else
                    f"fails as expected, exit {status}: {last_line(err)}"))
        # dir -> docker, each tool from its own tree.
        for tool in tools_order:
            if tool not in trees:
                continue
            reg, relay = self.dest_registry()
            try:
                cmd = self.sync(tool, "dir", "docker", str(trees[tool][0]),
                                f"{relay.addr}/back", self.new_dir(f"{tool}-cache-cold"))

                def round_trip():
                    result = self.runner.run(cmd)
                    problems = registry_problems(reg, self.expected("back"))
                    self.check("s3", tool, not problems,
                               f"dir -> docker round trip, manifest digests: "
                               f"{problems_text(problems)}")
                    return result
                self.record("s3r", tool, round_trip)
            finally:
                self.drop(relay, reg)
        for tree, _ in trees.values():
            shutil.rmtree(tree, ignore_errors=True)

    def kill_midway(self, cmd, progress, total):
        """Starts cmd, SIGKILLs it once progress() >= KILL_AT * total. Returns a sentence
        saying what happened, and whether it was killed."""
        env = tools._env(tools.private_home())
        env.update(self.network.env)
        env.update(cmd.env)
        argv = [str(a) for a in (*cmd.prefix, *cmd.argv)]
        err = self.workdir / "killed.stderr"
        start = time.perf_counter()
        with open(err, "wb") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=f, env=env)
        try:
            deadline = start + COMMAND_TIMEOUT
            while p.poll() is None and time.perf_counter() < deadline:
                done = progress()
                if done >= KILL_AT * total:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    return (f"killed with SIGKILL after {time.perf_counter() - start:.2f} s, "
                            f"{done}/{total} images done", True)
                time.sleep(0.01)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return (f"ended before the kill, exit {p.returncode} after "
                f"{time.perf_counter() - start:.2f} s: {last_line(err.read_text())}", False)

    def case_s4(self, tool):
        total = len(self.digests)
        # docker -> docker
        reg, relay = self.dest_registry()
        try:
            cmd = self.sync(tool, "yaml", "docker", str(self.yaml), f"{relay.addr}/mirror",
                            self.new_dir(f"{tool}-cache-cold"))
            log = AccessLog(reg)
            what, killed = self.kill_midway(cmd, lambda: manifest_puts(log), total)
            tags = sum(len(reg.tags(repo)) for repo in reg.catalog())
            broken = [p for p in registry_problems(reg, {}) if "missing" in p]
            self.check("s4", tool, killed, f"docker -> docker {what}; then {tags} tags, "
                       f"{len(broken)} of them with blobs missing")
            status, wall, err = self.attempt(cmd)
            problems = registry_problems(reg, self.expected("mirror"))
            self.check("s4", tool, status == 0 and not problems,
                       "docker -> docker rerun: " + (
                           f"exit 0 in {wall:.2f} s" if status == 0 else
                           f"FAILED, exit {status}: {last_line(err)}")
                       + f"; destination: {problems_text(problems)}")
        finally:
            self.drop(relay, reg)
        # docker -> dir
        tree = self.new_dir(f"killed-{tool}")
        cmd = self.sync(tool, "yaml", "dir", str(self.yaml), str(tree),
                        self.new_dir(f"{tool}-cache-cold"))
        done = lambda: sum(1 for _ in tree.glob("*/manifest.json"))  # noqa: E731
        what, killed = self.kill_midway(cmd, done, total)
        leftovers = sum(1 for p in tree.rglob("*") if ".regfs-tmp-" in p.name)
        complete = sum(1 for p in tree.glob("*/manifest.json")
                       if ".regfs-tmp-" not in p.parent.name)
        self.check("s4", tool, killed, f"docker -> dir {what} (manifest.json files); then "
                   f"{complete} image dirs with manifest.json, {leftovers} *.regfs-tmp-* "
                   "entries")
        status, wall, err = self.attempt(cmd)
        problems = dir_tree_problems(tree, self.expected_dirs())
        self.check("s4", tool, status == 0 and not problems,
                   "docker -> dir rerun: " + (
                       f"exit 0 in {wall:.2f} s" if status == 0 else
                       f"FAILED, exit {status}: {last_line(err)}")
                   + f"; destination: {problems_text(problems)}")
        shutil.rmtree(tree, ignore_errors=True)

    def run(self):
        self.make_source()
        for rep in range(self.args.reps):
            print(f"repetition {rep + 1}/{self.args.reps}", flush=True)
            if self.cases & {"s1", "s2", "s5"}:
                for tool in self.tools_in_order(rep):
                    self.case_s1_s2(tool, rep)
            if "s3" in self.cases:
                self.case_s3(self.tools_in_order(rep), rep)
        if "s4" in self.cases:
            print("(s4) SIGKILL mid-sync", flush=True)
            self.case_s4("skopeo" if self.args.skopeo_only else "regfs")
        return failed_cases(self.results) + [f"{c['case']} {c['tool']}" for c in self.checks
                                             if not c["ok"]]

    def cleanup(self):
        self.network.stop()
        self.skopeo_caches.stop()

    # ---- the report ----------------------------------------------------------------------

    def summary(self):
        n = len(self.digests)
        cases = [("s1", f"sync {n} images -> new registry, cold", "s1", 0, "s1"),
                 ("s2", "re-sync, nothing changed", "s2", 0, "s2"),
                 ("s3", f"sync {n} images -> dir", "s3", 0, "s3"),
                 ("s3b", "the same again into the same dir", "s3b", 0, "s3"),
                 ("s3r", "sync dir -> new registry", "s3r", 0, "s3"),
                 ("s5", "peak RSS of (s1)", "s1", 1, "s5")]
        rows = []
        for key, label, source, index, selected in cases:
            if selected not in self.cases:
                continue
            per_tool = {tool: values if isinstance(values, str) else [v[index] for v in values]
                        for tool, values in self.results.get(source, {}).items()}
            rows.append(summary_row(key, label, per_tool, "skopeo", "KiB" if index else "s",
                                    None if self.args.plain else TARGETS.get(key)))
        return rows

    def notes(self):
        lines = connection_notes(self.connections)
        for tool, runs in self.transfers.items():
            median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            line = f"(s2) {tool}, per re-sync (median): {counts_text(median)}"
            if tool == "regfs":
                ok = median["blob bodies"] == 0 and median["manifest GET"] == 0
                worst = max(r["blob bodies"] + r["manifest GET"] for r in runs)
                line += (" — no blob bodies, no manifest GETs: "
                         + ("met" if ok and worst == 0 else f"MISSED (worst run {worst})"))
            lines.append(line)
        # A check made in every repetition is one line when all of them came out alike
        # (the same words but for numbers and quoted paths).
        groups = {}
        for c in self.checks:
            groups.setdefault((c["case"], c["tool"], c["text"].split(":", 1)[0]), []).append(c)
        for (case, tool, _), checks in groups.items():
            alike = len({(c["ok"], re.sub(r'[0-9.]+|"(?:[^"\\]|\\.)*"', "", c["text"]))
                         for c in checks}) == 1
            for c in checks[-1:] if alike else checks:
                lines.append(f"({case}) {tool}: {c['text']}"
                             + (f"   [all {len(checks)} runs alike]"
                                if alike and len(checks) > 1 else "")
                             + ("" if c["ok"] else "   <-- FAILED"))
        return lines

    def json_fields(self):
        return {"transfers": self.transfers, "checks": self.checks,
                "relay_delay_ms": RELAY_DELAY_MS}


def counts_text(c):
    return (f"blob bodies {c['blob bodies']:g} ({c['blob GET']:g} GET, "
            f"{c['blob GET bytes'] / 1024:.0f} KiB; {c['blob upload']:g} PATCH/PUT), "
            f"manifest GET {c['manifest GET']:g}, manifest PUT {c['manifest PUT']:g}, "
            f"HEAD {c['HEAD']:g}, mounts {c['blob mount']:g}, requests {c['requests']:g}, "
            f"{c['relay bytes'] / 1024:.0f} KiB through the relays")


def print_sync_table(rows, args, notes=()):
    print_table(f"regfs sync vs skopeo sync over {transport_words(args)}, every registry "
                f"behind a {RELAY_DELAY_MS} ms relay: {REPOS} repos × {TAGS} tags, median of "
                f"{args.reps} runs each", rows, "skopeo", notes=notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP registries instead of HTTPS (no targets)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated cases to run ({','.join(CASES)})")
    parser.add_argument("--skopeo-only", action="store_true",
                        help="run skopeo's side alone (and (s4) with skopeo)")
    parser.add_argument("--regfs-jobs", type=int, metavar="N",
                        help="give regfs --jobs N (default: no such flag, regfs's own 4)")
    args = parser.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    needs = [(SKOPEO, "apt-get install skopeo"), (GNU_TIME, "apt-get install time"),
             (OPENSSL, "apt-get install openssl"), (NSENTER, "apt-get install util-linux"),
             (DOCKER_REGISTRY, "apt-get install docker-registry")]
    if not args.skopeo_only:
        needs.insert(0, (BUILT_REGFS, "build it: tools/test --build-only, or set REGFS_BIN"))
    return run_bench("bench-sync", SyncBench, args, print_sync_table, needs)


if __name__ == "__main__":
    sys.exit(main())
