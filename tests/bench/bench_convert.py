#!/usr/bin/python3
"""gzip → zstd recompression between registries, regfs against skopeo side by side, over
HTTPS with a test CA (bench.py's Network, Runner and report).

The data: a random image (default 256 MiB in 4 gzip layers, OCI, tests/testlib) pushed once
with skopeo to a registry on loopback.

  (z)  copy --dest-compress-format zstd to a brand-new registry, both tools' caches cold
       (nothing to mount or substitute): every layer is decompressed and recompressed while it
       streams                                                             target <= 0.7
  (z-rss) peak RSS of (z) (/usr/bin/time -v)                               target <= 1.0
  (z-cpu) CPU time of (z), user + system: what the tool itself burns, steadier than wall
       time on a loaded machine                                             no target

Every copy is checked: the destination's manifest lists zstd layers only, the config is the
source's, and each layer decompresses (zstd -d) to the config's diff_id. Each case runs N
times per tool (default 3), the tools alternating which goes first; the table shows medians.
Registries and temporary directories are removed at the end, also on failure.

    /usr/bin/python3 tests/bench/bench_convert.py [--reps N] [--size-mib M] [--layers L] [--content random|tree]
                                                  [--plain] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (DOCKER_REGISTRY, GNU_TIME, REGFS, SKOPEO, CommandFailed,  # noqa: E402
                   Network, Runner, SkopeoCaches, check_digest, failed_cases, images,
                   print_table, record_result, regfs_cmd, run_bench, summary_row, tools,
                   transport_words)
from testlib.tlsca import OPENSSL  # noqa: E402

ZSTD = "/usr/bin/zstd"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
TARGETS = {"z": 0.7, "z-rss": 1.0, "z-cpu": None}
FLAGS = ["--dest-compress-format", "zstd"]


def fetch(network, registry, path, accept=None):
    """GET of a registry path, trusting the run's CA."""
    req = urllib.request.Request(f"{registry.url}{path}")
    if accept:
        req.add_header("Accept", accept)
    ctx = None
    if not network.plain:
        import ssl
        ctx = ssl.create_default_context(cafile=str(network.ca.cert))
    with urllib.request.urlopen(req, timeout=120, context=ctx) as r:
        return r.read()


def cpu_seconds(time_file):
    """User + system seconds from /usr/bin/time -v's report."""
    total = 0.0
    for line in Path(time_file).read_text().splitlines():
        if "User time (seconds)" in line or "System time (seconds)" in line:
            total += float(line.rsplit(":", 1)[1])
    return total


class ConvertBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.runner = Runner(workdir, self.network)
        self.skopeo_caches = SkopeoCaches()
        self.results = {}
        self.serial = 0
        self.regfs = str(workdir / "regfs")
        shutil.copy2(REGFS, self.regfs)

    def new_dir(self, prefix):
        self.serial += 1
        d = self.workdir / f"{prefix}-{self.serial}"
        d.mkdir()
        return d

    def copy(self, tool, src, dst, cache):
        if tool == "regfs":
            return regfs_cmd([self.regfs, "copy", "-q", *FLAGS, src, dst], cache)
        return self.skopeo_caches.command(self.network.skopeo_copy(src, dst, *FLAGS), cache)

    def check(self, tool, registry, repo, config_digest, diff_ids):
        """The destination holds zstd layers that decompress to the source's diff_ids."""
        raw = fetch(self.network, registry, f"/v2/{repo}/manifests/1",
                    "application/vnd.oci.image.manifest.v1+json")
        m = json.loads(raw)
        if m["config"]["digest"] != config_digest:
            raise CommandFailed(f"{tool}: config {m['config']['digest']}, not {config_digest}")
        got = []
        for layer in m["layers"]:
            if layer["mediaType"] != ZSTD_LAYER:
                raise CommandFailed(f"{tool}: layer of type {layer['mediaType']}")
            blob = fetch(self.network, registry, f"/v2/{repo}/blobs/{layer['digest']}")
            check_digest(tool, "layer blob", "sha256:" + hashlib.sha256(blob).hexdigest(),
                         layer["digest"])
            plain = subprocess.run([ZSTD, "-dc"], input=blob, stdout=subprocess.PIPE,
                                   check=True).stdout
            got.append("sha256:" + hashlib.sha256(plain).hexdigest())
        if got != diff_ids:
            raise CommandFailed(f"{tool}: zstd layers decompress to {got}, not {diff_ids}")

    def run(self):
        a = self.args
        total = a.size_mib << 20
        print(f"generating a {a.size_mib} MiB image in {a.layers} gzip layers of {a.content} data ...",
              flush=True)
        image = self.workdir / "image"
        img = images.make_image(image, seed=1, fmt="oci", layers=["gzip"] * a.layers,
                                layer_size=total // a.layers, content=a.content)
        config = json.loads(img.config.data)
        diff_ids = config["rootfs"]["diff_ids"]
        src_reg = self.network.registry()
        src = src_reg.ref("bench/image", "1")
        warm = self.new_dir("skopeo-push-cache")
        self.network.push(image, src_reg, "bench/image", "1",
                          lambda argv: self.skopeo_caches.command(argv, warm))
        shutil.rmtree(image)
        print(f"pushed {src} over {self.network.scheme}", flush=True)

        for rep in range(a.reps):
            print(f"repetition {rep + 1}/{a.reps}", flush=True)
            for tool in (("regfs", "skopeo") if rep % 2 == 0 else ("skopeo", "regfs")):
                dest_reg = self.network.registry()

                def recompress():
                    dest = dest_reg.ref("bench/zstd", "1")
                    wall, rss = self.runner.run(self.copy(tool, src, dest,
                                                          self.new_dir(f"{tool}-cache-cold")))
                    cpu = cpu_seconds(self.runner.time_file)
                    self.check(tool, dest_reg, "bench/zstd", img.config.digest, diff_ids)
                    return wall, rss, cpu
                try:
                    record_result(self.results, "z", tool, recompress)
                finally:
                    self.network.drop(dest_reg)
        return failed_cases(self.results)

    def cleanup(self):
        self.network.stop()
        self.skopeo_caches.stop()

    def summary(self):
        rows = []
        for key, label, index in (("z", "copy gzip -> zstd, registry -> new registry", 0),
                                  ("z-rss", "peak RSS of (z)", 1),
                                  ("z-cpu", "CPU time of (z), user + system", 2)):
            per_tool = {tool: values if isinstance(values, str) else [v[index] for v in values]
                        for tool, values in self.results.get("z", {}).items()}
            rows.append(summary_row(key, label, per_tool, "skopeo", "KiB" if index == 1 else "s",
                                    None if self.args.plain else TARGETS[key]))
        return rows

    def notes(self):
        return []


def print_convert_table(rows, args, notes=()):
    print_table(f"regfs vs skopeo recompression over {transport_words(args)}: {args.size_mib} "
                f"MiB image, {args.layers} layers, median of {args.reps} runs each", rows,
                "skopeo", notes=notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--size-mib", type=int, default=256, help="image size in MiB (256)")
    parser.add_argument("--layers", type=int, default=4, help="number of layers (4)")
    parser.add_argument("--content", choices=("random", "tree"), default="random",
                        help="layer data: random bytes (the default), or files of this "
                             "machine's /usr (real binaries, libraries and text)")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP registries instead of HTTPS (no targets)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    return run_bench("bench_convert", ConvertBench, args, print_convert_table, needs=(
        (REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (GNU_TIME, "apt-get install time"), (OPENSSL, "apt-get install openssl"),
        (ZSTD, "apt-get install zstd"), (DOCKER_REGISTRY, "apt-get install docker-registry")))


if __name__ == "__main__":
    sys.exit(main())
