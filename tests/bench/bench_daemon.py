#!/usr/bin/python3
"""docker-daemon: both ways, regfs against skopeo, with a Docker engine of the run's own
(tests/testlib/dockerd.py) and registries over HTTPS with a test CA (bench.py's registries,
trust and runner).

The data: a random image (default 256 MiB in 4 gzip layers, tests/testlib) pushed once with
skopeo to a registry on loopback. The issue sets no target for these: ratios are printed.

  (l1)  copy docker:// -> docker-daemon:  pulled and streamed into `docker load`; the engine
        is emptied (untimed) before every run, so that no run finds the layers loaded
  (s1)  copy docker-daemon: -> docker://  `docker save` into a temporary file, then pushed
        to a new, empty registry, both tools' caches empty
  (r1), (r2)  peak RSS of each (/usr/bin/time -v)

Each case runs N times per tool (default 3), the tools alternating which goes first, regfs
being a copy of build/regfs taken at the start; the table shows medians. Every copy is
checked: (l1) leaves the image's config digest as the engine's image ID, (s1)'s pushed image
has the image's config. The engine, registries and temporary files are removed at the end,
also on failure (the engine's vfs data root holds the image unpacked: ~2.5x its size).

    /usr/bin/python3 tests/bench/bench_daemon.py [--reps N] [--size-mib M] [--layers L]
                                                 [--plain] [--json FILE]

Not a test: it measures and prints; it exits non-zero only when a command fails.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DOCKER_REGISTRY, GNU_TIME, SKOPEO, CommandFailed, Network  # noqa: E402
from bench import Runner, SkopeoCaches, failed_cases, print_table, record_result  # noqa: E402
from bench import regfs_cmd, run_bench, summary_row, transport_words  # noqa: E402
from bench import REGFS as BUILT_REGFS  # noqa: E402
from testlib import images, tools  # noqa: E402
from testlib.dockerd import DOCKERD_BIN, Dockerd  # noqa: E402
from testlib.tlsca import OPENSSL  # noqa: E402

TOOLS = ("regfs", "skopeo")


class DaemonBench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.network = Network(workdir, plain=args.plain)
        self.runner = Runner(workdir, self.network)
        self.skopeo_caches = SkopeoCaches()
        self.engine = Dockerd(name="bench-dockerd").start()
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

    def copy(self, tool, src, dst, cache):
        side = "--src-daemon-host" if src.startswith("docker-daemon:") else "--dest-daemon-host"
        if tool == "regfs":
            return regfs_cmd([self.regfs, "copy", "-q", side, self.engine.host, src, dst], cache)
        return self.skopeo_caches.command(
            self.network.skopeo_copy(src, dst, side, self.engine.host), cache)

    def config_at(self, registry, repo, tag):
        ref = registry.ref(repo, tag)
        p = tools.run(self.network.skopeo_inspect(ref, "--raw"), env=self.network.env)
        if p.returncode != 0:
            raise CommandFailed(f"inspect {ref}: {p.stderr.strip()}")
        return json.loads(p.stdout)["config"]["digest"]

    def run(self):
        a, net = self.args, self.network
        total = a.size_mib << 20
        print(f"generating a {a.size_mib} MiB image in {a.layers} gzip layers ...", flush=True)
        started = time.perf_counter()
        image = self.workdir / "image"
        img = images.make_image(image, seed=1, fmt="docker", layers=["gzip"] * a.layers,
                                layer_size=total // a.layers)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
        src_reg = net.registry()
        src = src_reg.ref("bench/image", "1")
        net.push(image, src_reg, "bench/image", "1",
                 lambda argv: self.skopeo_caches.command(argv, self.new_dir("skopeo-cache")))
        shutil.rmtree(image)
        print(f"pushed {src} over {net.scheme}", flush=True)

        for rep in range(a.reps):
            print(f"repetition {rep + 1}/{a.reps}", flush=True)
            for tool in self.tools_in_order(rep):
                name = f"bench/{tool}:{rep}"

                def load():
                    self.engine.remove_all_images()
                    result = self.runner.run(self.copy(tool, src, f"docker-daemon:{name}",
                                                       self.new_dir(f"{tool}-cache")))
                    info = self.engine.inspect(name)
                    if info is None or info["Id"] != img.config.digest:
                        raise CommandFailed(f"{tool} loaded {info and info['Id']}")
                    return result
                record_result(self.results, "l1", tool, load)

            # The image the saves read, loaded (untimed) by skopeo.
            self.engine.remove_all_images()
            self.runner.run(self.copy("skopeo", src, "docker-daemon:bench/image:1",
                                      self.new_dir("skopeo-cache")))
            for tool in self.tools_in_order(rep):
                dest_reg = net.registry()

                def save():
                    result = self.runner.run(self.copy(
                        tool, "docker-daemon:bench/image:1", dest_reg.ref("bench/image", "1"),
                        self.new_dir(f"{tool}-cache")))
                    got = self.config_at(dest_reg, "bench/image", "1")
                    if got != img.config.digest:
                        raise CommandFailed(f"{tool} pushed config {got}")
                    return result
                try:
                    record_result(self.results, "s1", tool, save)
                finally:
                    net.drop(dest_reg)
        return failed_cases(self.results)

    def cleanup(self):
        self.engine.stop()
        self.network.stop()
        self.skopeo_caches.stop()

    def summary(self):
        cases = [("l1", "copy docker:// -> docker-daemon:", "l1", 0),
                 ("s1", "copy docker-daemon: -> docker://, cold", "s1", 0),
                 ("r1", "peak RSS of (l1)", "l1", 1),
                 ("r2", "peak RSS of (s1)", "s1", 1)]
        rows = []
        for key, label, source, index in cases:
            per_tool = {tool: values if isinstance(values, str) else [v[index] for v in values]
                        for tool, values in self.results.get(source, {}).items()}
            rows.append(summary_row(key, label, per_tool, "skopeo", "KiB" if index else "s",
                                    None))
        return rows

    def notes(self):
        return []


def print_daemon_table(rows, args, notes=()):
    print_table(f"docker-daemon: regfs vs skopeo, registries over {transport_words(args)}: "
                f"{args.size_mib} MiB image, {args.layers} gzip layers, median of {args.reps} "
                f"runs each", rows, "skopeo", notes=notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per tool (3)")
    parser.add_argument("--size-mib", type=int, default=256, help="image size in MiB (256)")
    parser.add_argument("--layers", type=int, default=4, help="number of layers (4)")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP registries instead of HTTPS")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    return run_bench("bench-daemon", DaemonBench, args, print_daemon_table, needs=(
        (BUILT_REGFS, "build it: tools/test --build-only"), (SKOPEO, "apt-get install skopeo"),
        (GNU_TIME, "apt-get install time"), (OPENSSL, "apt-get install openssl"),
        (DOCKER_REGISTRY, "apt-get install docker-registry"),
        (DOCKERD_BIN, "apt-get install docker.io")))


if __name__ == "__main__":
    sys.exit(main())
