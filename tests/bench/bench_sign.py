#!/usr/bin/python3
"""What signing and verifying cost, over HTTPS with a test CA, the registry behind the 10 ms
relay (bench.py's d10), regfs and skopeo side by side where skopeo can do the same.

The data: a 4 MiB image (2 gzip layers) pushed once with skopeo. A GPG key in a GnuPG home
of the run (no passphrase), a sigstore key from `regfs generate-key`, and for each tool a
registries.d with a file:// lookaside of its own.

  (p1) copy --sign-by FPR (GPG simple signing, lookaside) into a new repository of the same
       registry, through the relay: wall time, regfs vs skopeo                     no target
  (p2) what signing adds to a copy, counted in the registry's access log: the same copy
       into a new repository, unsigned and then with --sign-by-sigstore-private-key (regfs;
       skopeo 1.9.3 has no sigstore signing), and with --sign-by (both tools). Target: at
       most one manifest PUT and one blob upload per signature.
  (p3) regfs verify under a sigstoreSigned policy, through the relay, beside skopeo inspect
       of the same image (the one read skopeo offers; it checks no signature)      no target
  (p4) the mount with policy=: the first read of a signed image (manifest, a layer, its
       signature) and the same reads again, requests counted in MNT/.regfs/stats. Target: no
       request for the second.

Each case runs N times per tool (default 3), the tools alternating which goes first; the
table shows medians. Registries, relays, the mount and temporary directories are removed at
the end, also on failure.

    /usr/bin/python3 tests/bench/bench_sign.py [--reps N] [--plain] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import GNU_TIME, RELAY_DELAY_MS, SKOPEO, CommandFailed, Command  # noqa: E402
from bench import Network, Runner, SkopeoCaches, print_table, record_result  # noqa: E402
from bench import regfs_cmd, run_bench, summary_row, transport_words  # noqa: E402
from bench import REGFS as BUILT_REGFS  # noqa: E402
from bench_mount import Mount, detach_mounts_below  # noqa: E402
from bench_sync import AccessLog, classify  # noqa: E402
from testlib import images, tools  # noqa: E402

PASSPHRASE = "bench-sign"
TOOLS = ("regfs", "skopeo")


EMPTY_CONFIG_HEX = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


class SignBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.runner = Runner(workdir, self.network)
        self.skopeo_caches = SkopeoCaches()
        self.results = {}
        self.added = {}   # (p2) what -> list of {"manifest PUT": n, "blob upload": n}
        self.mount_requests = {"first": [], "again": []}
        self.serial = 0
        self.regfs = str(workdir / "regfs")
        shutil.copy2(BUILT_REGFS, self.regfs)
        self.gnupg = workdir / "gnupg"
        self.mounts_root = workdir / "mounts"
        self.mounts_root.mkdir()

    def new_dir(self, prefix):
        self.serial += 1
        d = self.workdir / f"{prefix}-{self.serial}"
        d.mkdir()
        return d

    def tools_in_order(self, rep):
        return TOOLS if rep % 2 == 0 else TOOLS[::-1]

    # ---- set-up ------------------------------------------------------------------------------

    def make_keys(self):
        self.gnupg.mkdir(mode=0o700)
        env = {"GNUPGHOME": str(self.gnupg)}
        gpg = ["gpg", "--batch", "--yes", "--passphrase", ""]
        tools.run([*gpg, "--quick-gen-key", "regfs bench <bench@example.com>", "default",
                   "default", "never"], env=env, check=True)
        colons = tools.run(["gpg", "--list-keys", "--with-colons"], env=env, check=True).stdout
        self.fpr = next(ln.split(":")[9] for ln in colons.splitlines() if ln.startswith("fpr:"))
        self.key = self.workdir / "sigstore"
        tools.run([self.regfs, "generate-key", "--output-prefix", self.key],
                  env={"COSIGN_PASSWORD": PASSPHRASE}, check=True)
        self.policy = self.workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{
            "type": "sigstoreSigned", "keyPath": f"{self.key}.pub"}]}))
        self.registries_d = {}
        for tool in TOOLS:
            d = self.new_dir(f"registries.d-{tool}")
            store = self.new_dir(f"lookaside-{tool}")
            (d / "default.yaml").write_text(
                f"default-docker:\n  lookaside: file://{store}\n  lookaside-staging: "
                f"file://{store}\n")
            self.registries_d[tool] = d

    def env(self):
        return {"GNUPGHOME": str(self.gnupg), "COSIGN_PASSWORD": PASSPHRASE}

    def copy(self, tool, src, dst, *flags):
        if tool == "regfs":
            cmd = regfs_cmd([self.regfs, "--registries.d", self.registries_d[tool], "copy", "-q",
                             *flags, src, dst], self.workdir / "regfs-cache")
        else:
            argv = self.network.skopeo_copy(src, dst, *flags)
            argv[1:1] = ["--registries.d", str(self.registries_d[tool])]
            cmd = self.skopeo_caches.command(argv, self.workdir / "skopeo-cache")
        cmd.env.update(self.env())
        return cmd

    # ---- the cases ---------------------------------------------------------------------------

    def run(self):
        net, reps = self.network, self.args.reps
        (self.workdir / "regfs-cache").mkdir()
        (self.workdir / "skopeo-cache").mkdir()
        image = self.workdir / "image"
        images.make_image(image, seed=7, fmt="oci", layers=["gzip", "gzip"],
                          layer_size=2 << 20)
        reg = net.registry()
        self.reg = reg
        digest = net.push(image, reg, "bench/sign", "1",
                          lambda argv: self.skopeo_caches.command(argv,
                                                                  self.workdir / "skopeo-cache"))
        self.make_keys()
        relay = net.relay(reg, RELAY_DELAY_MS)
        src = f"docker://{relay.addr}/bench/sign:1"
        signed = f"docker://{relay.addr}/bench/signed:1"
        tools.run([self.regfs, "copy", "-q", src, signed], env=net.env, check=True)
        tools.run([self.regfs, "sign", "-q", "--key", f"{self.key}.private", signed],
                  env={**net.env, **self.env()}, check=True)
        print(f"pushed and signed over {net.scheme} ({digest})", flush=True)

        for rep in range(reps):
            print(f"repetition {rep + 1}/{reps}", flush=True)
            for tool in self.tools_in_order(rep):
                dst = f"docker://{relay.addr}/bench/p1-{tool}-{rep}:1"
                self.record("p1", tool,
                            lambda: self.runner.run(self.copy(tool, src, dst, "--sign-by",
                                                              self.fpr)))
            self.count_added(rep, relay, src)
            for tool in self.tools_in_order(rep):
                if tool == "regfs":
                    cmd = regfs_cmd([self.regfs, "verify", "--policy", self.policy, signed],
                                    self.workdir / "regfs-cache")
                else:
                    cmd = Command(net.skopeo_inspect(signed))
                self.record("p3", tool, lambda: self.runner.run(cmd))
            self.mount_reads(relay)
        return [f"{case} {tool}" for case, per_tool in self.results.items()
                for tool, v in per_tool.items() if isinstance(v, str)]

    def record(self, case, tool, fn):
        return record_result(self.results, case, tool, fn)

    def count_added(self, rep, relay, src):
        """(p2): the requests of a signed copy less those of the same copy unsigned."""
        def counted(tool, name, *flags):
            log = AccessLog(self.reg)
            dst = f"docker://{relay.addr}/bench/p2-{name}-{rep}:1"
            self.runner.run(self.copy(tool, src, dst, *flags))
            requests = log.requests()
            c = classify(requests)
            # The attachments' shared empty config: uploaded once per registry, by the first
            # signature written to it (mounted or found later); counted apart.
            c["empty config upload"] = sum(
                1 for method, uri, _, _ in requests
                if method == "PUT" and "/blobs/uploads/" in uri and EMPTY_CONFIG_HEX in uri)
            c["blob upload"] -= c["empty config upload"]
            return c

        for tool, name, flags in (
                ("regfs", "regfs sigstore", ("--sign-by-sigstore-private-key",
                                             f"{self.key}.private")),
                ("regfs", "regfs GPG", ("--sign-by", self.fpr)),
                ("skopeo", "skopeo GPG", ("--sign-by", self.fpr))):
            slug = name.replace(" ", "-").lower()
            plain = counted(tool, f"{slug}-unsigned")
            signed = counted(tool, slug, *flags)
            self.added.setdefault(name, []).append(
                {k: signed[k] - plain[k]
                 for k in ("manifest PUT", "blob upload", "empty config upload", "requests")})

    def mount_reads(self, relay):
        """(p4): requests of a verified-only mount for a signed image, first and again."""
        env = {**self.network.env, "XDG_CACHE_HOME": str(self.new_dir("mount-cache-home"))}
        with Mount(self.regfs, self.new_dir("mount"), env,
                   options=f"policy={self.policy},tag_ttl=600") as m:
            d = m.mnt / relay.addr / "bench" / "signed" / "1"

            def stats():
                return json.loads((m.mnt / ".regfs" / "stats").read_text())["requests"]

            def read_all():
                names = sorted(p.name for p in d.iterdir())
                for name in ("manifest.json", "signature-1", names[0]):
                    (d / name).read_bytes()

            start = stats()
            read_all()
            first = stats()
            read_all()
            self.mount_requests["first"].append(first - start)
            self.mount_requests["again"].append(stats() - first)

    # ---- the report --------------------------------------------------------------------------

    def summary(self):
        rows = []
        for case, label in (("p1", "copy --sign-by (GPG) -> new repo, 10 ms"),
                            ("p3", "verify (sigstore) | skopeo inspect, 10 ms")):
            per_tool = {t: v if isinstance(v, str) else [x[0] for x in v]
                        for t, v in self.results.get(case, {}).items()}
            rows.append(summary_row(case, label, per_tool, "skopeo", "s", None))
        return rows

    def notes(self):
        lines = []
        for name, runs in self.added.items():
            worst = {k: max(r[k] for r in runs) for k in runs[0]}
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            line = (f"(p2) {name}: a signature adds {med['manifest PUT']:g} manifest PUT, "
                    f"{med['blob upload']:g} blob upload(s), {med['requests']:g} requests")
            if worst["empty config upload"]:
                line += (f" (and the 2-byte empty attachment config, once per registry: "
                         f"{sum(r['empty config upload'] for r in runs)} in {len(runs)} runs)")
            if name.startswith("regfs"):
                ok = worst["manifest PUT"] <= 1 and worst["blob upload"] <= 1
                line += " — target <= 1 PUT and <= 1 upload: " + ("met" if ok else "MISSED")
            lines.append(line)
        first, again = self.mount_requests["first"], self.mount_requests["again"]
        if first:
            lines.append(f"(p4) policy= mount, signed image: first read "
                         f"{statistics.median(first):g} requests, read again "
                         f"{max(again):g} (worst run) — target 0: "
                         + ("met" if max(again) == 0 else "MISSED"))
        return lines

    def json_fields(self):
        return {"added": self.added, "mount_requests": self.mount_requests}

    def cleanup(self):
        detach_mounts_below(self.workdir)
        self.network.stop()
        self.skopeo_caches.stop()
        subprocess.run(["gpgconf", "--homedir", str(self.gnupg), "--kill", "all"],
                       capture_output=True, timeout=30)


def print_sign_table(rows, args, notes=()):
    print_table(f"signing and verifying, regfs vs skopeo over {transport_words(args)}, "
                f"registry {RELAY_DELAY_MS} ms away, median of {args.reps} runs each", rows,
                "skopeo", notes=notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP registries instead of HTTPS (no targets)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    return run_bench("bench_sign", SignBench, args, print_sign_table, needs=(
        (BUILT_REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (GNU_TIME, "apt-get install time")))


if __name__ == "__main__":
    started = time.perf_counter()
    rc = main()
    print(f"({time.perf_counter() - started:.0f} s)")
    sys.exit(rc)
