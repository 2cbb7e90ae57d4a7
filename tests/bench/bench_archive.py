#!/usr/bin/python3
"""docker-archive: both ways, regfs against skopeo, over HTTPS with a test CA (bench.py's
registries, trust and runner).

The data: a random image (default 256 MiB in 4 gzip layers, tests/testlib) pushed once with
skopeo to a registry on loopback, and a docker-archive of it written once by skopeo.

  (x1)  copy docker:// -> docker-archive:  the layers are pulled, decompressed (an archive
        stores them as `docker save` does) and written to the tar         target <= 0.6
  (x2)  copy docker-archive: -> docker://  to a new, empty registry, both tools' caches
        empty (so neither can reuse a compressed layer it saw before): the layers are read
        from the archive, gzip-compressed and pushed                     target <= 0.6
  (x3)  as (x2), regfs with --dest-compress given, which (x2) does unasked too: an
        archive's layers, uncompressed under a gzip media type, are compressed for a
        registry, as skopeo compresses them                               no target
  (r1), (r2)  peak RSS of (x1) and (x2) (/usr/bin/time -v)              target <= 1.0

Each case runs N times per tool (default 3), the tools alternating which goes first, regfs
being a copy of build/regfs taken at the start; the table shows medians. Every copy is
checked: (x1)'s archive names the image's config, (x2)'s pushed image has the image's config.
Registries and temporary files are removed at the end, also on failure.

    /usr/bin/python3 tests/bench/bench_archive.py [--reps N] [--size-mib M] [--layers L] [--content random|tree]
                                                  [--plain] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DOCKER_REGISTRY, GNU_TIME, SKOPEO, CommandFailed, Network  # noqa: E402
from bench import Runner, SkopeoCaches, failed_cases, print_table, record_result  # noqa: E402
from bench import regfs_cmd, run_bench, summary_row, transport_words  # noqa: E402
from bench import REGFS as BUILT_REGFS  # noqa: E402
from testlib import images, tools  # noqa: E402
from testlib.tlsca import OPENSSL  # noqa: E402

TARGETS = {"x1": 0.6, "x2": 0.6, "x3": None, "r1": 1.0, "r2": 1.0}
TOOLS = ("regfs", "skopeo")


def archive_config(path):
    """The Config entry of the one image in a docker-archive's manifest.json."""
    out = subprocess.run(["tar", "-xOf", str(path), "manifest.json"], check=True,
                         capture_output=True).stdout
    items = json.loads(out)
    if len(items) != 1:
        raise CommandFailed(f"{path}: {len(items)} images in manifest.json")
    return items[0]["Config"]


class ArchiveBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.runner = Runner(workdir, self.network)
        self.skopeo_caches = SkopeoCaches()
        self.results = {}
        self.serial = 0
        self.regfs = str(workdir / "regfs")
        shutil.copy2(BUILT_REGFS, self.regfs)

    def new_dir(self, prefix):
        self.serial += 1
        d = self.workdir / f"{prefix}-{self.serial}"
        d.mkdir()
        return d

    def tools_in_order(self, rep):
        return TOOLS if rep % 2 == 0 else TOOLS[::-1]

    def copy(self, tool, src, dst, cache, regfs_flags=()):
        if tool == "regfs":
            return regfs_cmd([self.regfs, "copy", "-q", *regfs_flags, src, dst], cache)
        return self.skopeo_caches.command(self.network.skopeo_copy(src, dst), cache)

    def config_at(self, registry, repo, tag):
        ref = registry.ref(repo, tag)
        p = tools.run(self.network.skopeo_inspect(ref, "--raw"), env=self.network.env)
        if p.returncode != 0:
            raise CommandFailed(f"inspect {ref}: {p.stderr.strip()}")
        return json.loads(p.stdout)["config"]["digest"]

    def run(self):
        a, net = self.args, self.network
        total = a.size_mib << 20
        print(f"generating a {a.size_mib} MiB image in {a.layers} gzip layers of {a.content} data ...",
              flush=True)
        started = time.perf_counter()
        image = self.workdir / "image"
        img = images.make_image(image, seed=1, fmt="oci", layers=["gzip"] * a.layers,
                                layer_size=total // a.layers, content=a.content)
        config_hex = img.config.digest[7:]
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
        src_reg = net.registry()
        src = src_reg.ref("bench/image", "1")
        net.push(image, src_reg, "bench/image", "1",
                 lambda argv: self.skopeo_caches.command(argv, self.new_dir("skopeo-cache")))
        shutil.rmtree(image)
        # Untimed: the archive (x2) reads, written by skopeo, and the registry's storage in
        # the page cache.
        archive = self.workdir / "image.tar"
        self.runner.run(self.copy("skopeo", src, f"docker-archive:{archive}:bench/image:1",
                                  self.new_dir("skopeo-cache")))
        if archive_config(archive) != config_hex + ".json":
            raise CommandFailed(f"skopeo's archive does not hold config {config_hex}")
        print(f"pushed {src} over {net.scheme}; archive {archive.stat().st_size >> 20} MiB",
              flush=True)

        for rep in range(a.reps):
            print(f"repetition {rep + 1}/{a.reps}", flush=True)
            for tool in self.tools_in_order(rep):
                out = self.workdir / f"out-{tool}-{rep}.tar"

                def to_archive():
                    result = self.runner.run(self.copy(tool, src, f"docker-archive:{out}",
                                                       self.new_dir(f"{tool}-cache")))
                    got = archive_config(out)
                    if got != config_hex + ".json":
                        raise CommandFailed(f"{tool}'s archive names config {got}")
                    return result
                try:
                    record_result(self.results, "x1", tool, to_archive)
                finally:
                    out.unlink(missing_ok=True)

            for case, flags in (("x2", ()), ("x3", ("--dest-compress",))):
                for tool in self.tools_in_order(rep):
                    self.push_archive(case, tool, archive, img.config.digest, flags)
        return failed_cases(self.results)

    def push_archive(self, case, tool, archive, config, regfs_flags):
        """One timed copy of `archive` to a new registry, caches cold."""
        dest_reg = self.network.registry()

        def from_archive():
            result = self.runner.run(self.copy(
                tool, f"docker-archive:{archive}", dest_reg.ref("bench/image", "1"),
                self.new_dir(f"{tool}-cache"), regfs_flags))
            got = self.config_at(dest_reg, "bench/image", "1")
            if got != config:
                raise CommandFailed(f"{tool} pushed config {got}")
            return result
        try:
            record_result(self.results, case, tool, from_archive)
        finally:
            self.network.drop(dest_reg)

    def cleanup(self):
        self.network.stop()
        self.skopeo_caches.stop()

    def summary(self):
        cases = [("x1", "copy docker:// -> docker-archive:", "x1", 0),
                 ("x2", "copy docker-archive: -> docker://, cold", "x2", 0),
                 ("x3", "(x2), regfs --dest-compress", "x3", 0),
                 ("r1", "peak RSS of (x1)", "x1", 1),
                 ("r2", "peak RSS of (x2)", "x2", 1)]
        rows = []
        for key, label, source, index in cases:
            per_tool = {tool: values if isinstance(values, str) else [v[index] for v in values]
                        for tool, values in self.results.get(source, {}).items()}
            rows.append(summary_row(key, label, per_tool, "skopeo", "KiB" if index else "s",
                                    None if self.args.plain else TARGETS[key]))
        return rows

    def notes(self):
        return []


def print_archive_table(rows, args, notes=()):
    print_table(f"docker-archive: regfs vs skopeo over {transport_words(args)}: "
                f"{args.size_mib} MiB image, {args.layers} gzip layers of {args.content} data, median of {args.reps} "
                f"runs each", rows, "skopeo", notes=notes)


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
    return run_bench("bench-archive", ArchiveBench, args, print_archive_table, needs=(
        (BUILT_REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (GNU_TIME, "apt-get install time"), (OPENSSL, "apt-get install openssl"),
        (DOCKER_REGISTRY, "apt-get install docker-registry")))


if __name__ == "__main__":
    sys.exit(main())
