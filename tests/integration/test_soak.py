"""A soak of the mount (issue #14, part 5): 8 readers and 2 writers through one mount for
REGFS_SOAK_SECONDS seconds (default 90; the full soak is 1200), with the fault
proxy between the mount and a real registry dropping 5% of the connections (a TCP reset at a
random moment: before the request is forwarded, after the answer, or somewhere in the body)
and answering 5% of the requests with 503 or 429.

- Readers read blobs (whole, and at random offsets and lengths), manifests and listings of a
  set of known images of different sizes (the largest blobs span many Range requests). Every
  read returns exactly the right bytes, or fails with EIO (EAGAIN is counted with them: the
  errno table of DESIGN §1 gives it where retrying later helps). Any other errno, a wrong
  byte, a short read or a listing that lacks an entry fails the test.
- Writers `cp -r` dir: images (known ones, whose blobs the registry already holds, and fresh
  ones that must be uploaded) into MNT/<registry>/<repo>/<new tag>/. A cp that succeeds has
  pushed the image: the tag's manifest digest and every blob are checked against the
  registry directly, not through the proxy. A cp that fails has left no tag — checked at
  once and again at the end, after staging images have settled.
- The daemon's RSS (VmRSS) and open fds are sampled once a second; see leak_limits() for what
  "at the end within 10% of the first minute's" means here.
- No operation may hang: each one has HANG_S seconds, far more than timeout= and the retries
  allow.

One line of summary is printed (pytest -s, or it shows in the report of a failure):
  soak: 90s reads=… bytes=… eio=… pushes ok=… failed=… rss_kib first=… last=… fds first=… last=…
"""

import errno
import hashlib
import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mountlib import MiB, Mount, entries_of, hexof
from testlib import images, tools
from testlib.faultproxy import Fault, FaultProxy
from testlib.registry import Registry

SECONDS = int(os.environ.get("REGFS_SOAK_SECONDS", "90"))
READERS = 8
WRITERS = 2
DROP = 0.05          # of the requests, their connection reset at a random moment
STATUS = 0.05        # of the requests, answered 503 (half) or 429 (half) by the proxy
HANG_S = 180         # no single read or cp may take longer than this
# Short TTLs so that tags, listings and catalogs are looked up again and again through the
# faults; a cache smaller than the known images so that blobs are evicted and fetched again.
MOUNT_OPTS = ["tag_ttl=2", "list_ttl=2", "timeout=10", "cache_size=24M"]
CLEAN_ERRNOS = (errno.EIO, errno.EAGAIN)


# ---- what the readers know ---------------------------------------------------------------------

class Known:
    """The known images: {repo: images.Image}, every blob's bytes by digest, every tag."""

    def __init__(self, root):
        root = Path(root)
        self.images = {
            # small OCI image, gzip and tar layers
            "soak/small": images.make_image(root / "small", seed=1401),
            # Docker schema 2 with 3-space JSON, three layers of ~300 KiB
            "soak/docker": images.make_image(root / "docker", seed=1402, fmt="docker",
                                             layers=("gzip", "tar", "gzip"),
                                             layer_size=300 * 1024),
            # a multi-platform index
            "soak/index": images.make_index(root / "index", seed=1403,
                                            layer_size=200 * 1024),
            # a few MiB: reads span several ranges
            "soak/mid": images.make_image(root / "mid", seed=1404, layers=("tar", "gzip"),
                                          layer_size=[5 * MiB, 1 * MiB]),
            # the largest: 16 MiB in one uncompressed layer
            "soak/big": images.make_image(root / "big", seed=1405, layers=("tar",),
                                          layer_size=16 * MiB),
        }
        self.tag = "v1"
        self.blobs = {}
        for img in self.images.values():
            self.blobs.update(img.blobs())
        self.blob_list = sorted(self.blobs.values(), key=lambda b: b.digest)

    def push(self, addr):
        for repo, img in self.images.items():
            images.push(img.path, addr, repo, self.tag)

    def total_bytes(self):
        return sum(b.size for b in self.blob_list)


# ---- counters and failures ---------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = Counter()
        self.failures = []
        self.stop = threading.Event()
        self.busy = {}      # worker name -> (since, what) while an operation runs

    def add(self, **kw):
        with self.lock:
            self.c.update(kw)

    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)
            if len(self.failures) >= 20:
                self.stop.set()   # enough to tell what is wrong

    def begin(self, who, what):
        with self.lock:
            self.busy[who] = (time.monotonic(), what)

    def end(self, who):
        with self.lock:
            self.busy.pop(who, None)

    def hung(self):
        now = time.monotonic()
        with self.lock:
            return [(who, now - t, what) for who, (t, what) in self.busy.items()
                    if now - t > HANG_S]


def clean_error(tally, e, what):
    """An OSError from the mount: EIO/EAGAIN are counted, anything else is a failure."""
    if isinstance(e, OSError) and e.errno in CLEAN_ERRNOS:
        tally.add(eio=1, **{f"eio_{errno.errorcode[e.errno]}": 1})
        return
    tally.fail(f"{what}: {e!r} (only correct bytes or EIO are allowed)")


# ---- readers -----------------------------------------------------------------------------------

def read_blob_whole(path, blob, rng, tally):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb", buffering=0) as f:
        # drop the kernel's cached pages so that the read reaches the daemon
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while True:
            piece = f.read(rng.choice([4096, 128 * 1024, 1 * MiB]))
            if not piece:
                break
            h.update(piece)
            n += len(piece)
    tally.add(reads=1, bytes=n)
    if n != blob.size or "sha256:" + h.hexdigest() != blob.digest:
        tally.fail(f"whole read of {path}: {n} bytes, sha256:{h.hexdigest()}; "
                   f"expected {blob.size} bytes, {blob.digest}")


def read_blob_ranges(path, blob, rng, tally):
    with open(path, "rb", buffering=0) as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.1:
                off = max(0, blob.size - rng.randint(1, 8192))   # across the end
            else:
                off = rng.randrange(blob.size)
            length = rng.choice([1, 511, 4096, 65537, 300 * 1024, 2 * MiB + 3])
            got = os.pread(f.fileno(), length, off)
            want = blob.data[off:off + length]
            tally.add(reads=1, bytes=len(got))
            if got != want:
                first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                             min(len(got), len(want)))
                tally.fail(f"pread({path}, {length}, {off}): {len(got)} bytes, first "
                           f"difference at +{first}; expected {len(want)} bytes")
                return


def read_manifest(tag_dir, img, rng, tally):
    parts = [("manifest.json", img.manifest)]
    parts += [(hexof(im.digest) + ".manifest.json", im.manifest) for im in img.instances]
    name, want = rng.choice(parts)
    with open(tag_dir / name, "rb") as f:
        got = f.read()
    tally.add(reads=1, bytes=len(got), manifests=1)
    if got != want:
        tally.fail(f"{tag_dir / name}: {len(got)} bytes, {tools.sha256_bytes(got)}; "
                   f"expected {tools.sha256_bytes(want)}")


def read_listing(reg_dir, known, repo, rng, tally):
    kind = rng.choice(["tag", "repo", "registry"])
    if kind == "tag":
        path, want = reg_dir / repo / known.tag, entries_of(known.images[repo])
        got = os.listdir(path)
        ok = got == want
    elif kind == "repo":
        path, want = reg_dir / repo, [known.tag]
        got = os.listdir(path)
        ok = set(want) <= set(got)
    else:
        path = reg_dir / "soak"
        want = sorted(r.split("/", 1)[1] for r in known.images)
        got = os.listdir(path)
        ok = set(want) <= set(got)
    tally.add(reads=1, listings=1)
    if not ok:
        tally.fail(f"listdir({path}) = {sorted(got)}; expected {'' if kind == 'tag' else '⊇ '}"
                   f"{want}")


def reader(idx, reg_dir, known, tally):
    rng = random.Random(f"soak-reader-{idx}")
    who = f"reader{idx}"
    repos = sorted(known.images)
    while not tally.stop.is_set():
        r = rng.random()
        repo = rng.choice(repos)
        img = known.images[repo]
        tag_dir = reg_dir / repo / known.tag
        if r < 0.6:
            # a blob of that image, found under its own tag directory
            blob = rng.choice(sorted(img.blobs().values(), key=lambda b: b.digest))
            path = tag_dir / hexof(blob.digest)
            what = f"{'whole' if r < 0.25 else 'ranges'} read of {path}"
            fn = read_blob_whole if r < 0.25 else read_blob_ranges
            args = (path, blob, rng, tally)
        elif r < 0.8:
            what, fn, args = f"manifest of {tag_dir}", read_manifest, (tag_dir, img, rng, tally)
        else:
            what, fn, args = f"listing near {tag_dir}", read_listing, (reg_dir, known, repo,
                                                                       rng, tally)
        tally.begin(who, what)
        try:
            fn(*args)
        except OSError as e:
            clean_error(tally, e, what)
            if e.errno == errno.ENOTCONN:
                tally.stop.set()
        except Exception as e:  # noqa: BLE001 - a failure of the test, reported
            tally.fail(f"{what}: {e!r}")
        finally:
            tally.end(who)


# ---- writers -----------------------------------------------------------------------------------

def image_files(src):
    """(digest, name) of the blobs and instance manifests of a dir: image."""
    out = []
    for p in sorted(Path(src).iterdir()):
        if p.name in ("manifest.json", "version"):
            continue
        if p.name.endswith(".manifest.json"):
            out.append(("manifest", "sha256:" + p.name[:-len(".manifest.json")]))
        else:
            out.append(("blob", "sha256:" + p.name))
    return out


def check_pushed(registry, repo, tag, src):
    """Problems with repo:tag at the registry (asked directly) against the dir: image src."""
    want = tools.sha256_file(Path(src) / "manifest.json")
    got = registry.manifest_digest(repo, tag)
    if got != want:
        return [f"{repo}:{tag}: the registry serves manifest {got}, the pushed dir has {want}"]
    bad = []
    for kind, digest in image_files(src):
        path = (f"/v2/{repo}/blobs/{digest}" if kind == "blob"
                else f"/v2/{repo}/manifests/{digest}")
        r = (registry.get(path) if kind == "blob" else registry.manifest(repo, digest))
        if r.status != 200 or tools.sha256_bytes(r.body) != digest:
            bad.append(f"{repo}:{tag}: {kind} {digest}: status {r.status}, "
                       f"{len(r.body)} bytes hashing to {tools.sha256_bytes(r.body)}")
    return bad


def writer(idx, reg_dir, registry, known, scratch, tally, failed_tags):
    rng = random.Random(f"soak-writer-{idx}")
    who = f"writer{idx}"
    repo = f"soak/w{idx}"
    parent = reg_dir / repo
    n = 0
    while not tally.stop.is_set():
        n += 1
        tag = f"t{n}"
        fresh = None
        if rng.random() < 0.3:
            src = rng.choice(list(known.images.values())).path
        else:
            # a new image: its blobs must be uploaded
            fresh = scratch / f"w{idx}-{n}"
            images.make_image(fresh, seed=100000 * (idx + 1) + n, layers=("tar", "gzip"),
                              layer_size=[rng.randint(16 * 1024, 3 * MiB),
                                          rng.randint(4 * 1024, 256 * 1024)])
            src = fresh
        tally.begin(who, f"cp -r {src} {parent / tag}")
        try:
            p = subprocess.run(["mkdir", "-p", str(parent)], capture_output=True, text=True,
                               timeout=HANG_S)
            if p.returncode == 0:
                p = subprocess.run(["cp", "-r", str(src), str(parent / tag)],
                                   capture_output=True, text=True, timeout=HANG_S,
                                   stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            tally.fail(f"cp -r {src} {parent / tag}: still running after {HANG_S} s")
            tally.stop.set()
            return
        finally:
            tally.end(who)
        try:
            if p.returncode == 0:
                bad = check_pushed(registry, repo, tag, src)
                for b in bad:
                    tally.fail(f"cp -r succeeded but {b}")
                tally.add(pushes_ok=0 if bad else 1)
            else:
                tally.add(pushes_failed=1)
                if registry.has_manifest(repo, tag):
                    tally.fail(f"cp -r {src} {parent / tag} failed ({p.stderr.strip()[:300]}) "
                               f"but the registry has {repo}:{tag}")
                failed_tags.append((repo, tag, p.stderr.strip()[:300]))
        except Exception as e:  # noqa: BLE001 - a failure of the test, reported
            tally.fail(f"checking {repo}:{tag}: {e!r}")
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)


# ---- the daemon's resources --------------------------------------------------------------------

def sample(pid):
    """(VmRSS in KiB, open fds) of pid, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    rss = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:"))
    return rss, fds


def held_by(m):
    """The daemon's cached entries, heap and threads, from .regfs/stats (None if it cannot be read)."""
    try:
        st = m.stats()
    except (OSError, ValueError):
        return None
    heap = {"heap_" + k: v for k, v in st["heap"].items()}
    return {**st["entries"], **heap, "threads": st["threads"]}


def fd_kinds(pid):
    """What the open fds of pid are, counted: sockets, pipes, and files by directory."""
    kinds = Counter()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kinds[target.split(":", 1)[0] + ":" if ":[" in target
                  else os.path.dirname(target)] += 1
    except OSError:
        pass
    return dict(kinds.most_common(8))


def sampler(pid, samples, px, proxy_counts, tally, t0):
    while not tally.stop.is_set():
        s = sample(pid)
        if s is None:
            tally.fail(f"the mount's daemon (pid {pid}) is gone")
            tally.stop.set()
            return
        samples.append((time.monotonic() - t0, *s))
        for e in px.take_log():
            proxy_counts.update(["requests"] + e.faults)
            if e.status:
                proxy_counts[f"status_{e.status}"] += 1
        tally.stop.wait(1)


def leak_limits(samples, duration):
    """The baseline and the end figures of RSS and fds, and the limits the end must keep.

    Both are the maximum over a window of samples, not one sample: a daemon serving 8 readers
    moves by a few MiB and a few fds from one second to the next (a read's buffers, an open
    cache file, a connection being replaced after a reset), and the maximum over a window is
    what a leak raises steadily while noise does not. The baseline window is the first minute
    (the first third of a run shorter than 3 minutes), once the caches have had a chance to
    fill; the end window is as long, at the end. The end maximum must be within 10% of the
    baseline maximum. A short run adds a small absolute slack (4 MiB, 4 fds), because its
    first third (30 s in CI) is too short for the daemon's arenas and connection pool to reach
    their steady size — a leak of 1 KiB per request (~100 requests a second here) still
    outgrows it in the full run many times over. Returns (first_rss, last_rss, rss_limit,
    first_fds, last_fds, fd_limit)."""
    window = 60.0 if duration >= 180 else duration / 3.0
    short = duration < 600
    end = samples[-1][0]
    first = [s for s in samples if s[0] <= window]
    last = [s for s in samples if s[0] >= end - window]
    first_rss, last_rss = max(s[1] for s in first), max(s[1] for s in last)
    first_fds, last_fds = max(s[2] for s in first), max(s[2] for s in last)
    rss_limit = first_rss * 1.10 + (4096 if short else 0)
    fd_limit = first_fds * 1.10 + (4 if short else 0)
    return first_rss, last_rss, rss_limit, first_fds, last_fds, fd_limit


# ---- the soak ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def soak_registry():
    with Registry(name="soak") as r:
        yield r


def test_soak(regfs_bin, soak_registry, work, capsys):
    known = Known(work / "known")
    known.push(soak_registry.addr)
    scratch = work / "scratch"
    scratch.mkdir()
    tally = Tally()
    failed_tags = []
    samples = []
    proxy_counts = Counter()
    threads = []
    m = Mount(regfs_bin, work, "soak", MOUNT_OPTS)
    with FaultProxy(soak_registry.addr, seed=14) as px:
        try:
            m.start()
            reg_dir = m.reg(px.addr)
            # the faults start with the soak: the mount sees a healthy registry first
            px.add(Fault.drop(probability=DROP), forever=True)
            px.add(Fault.status(503, probability=STATUS / 2), forever=True)
            px.add(Fault.status(429, probability=STATUS / 2), forever=True)
            t0 = time.monotonic()
            threads.append(threading.Thread(
                target=sampler, args=(m.pid, samples, px, proxy_counts, tally, t0),
                daemon=True))
            threads += [threading.Thread(target=reader, args=(i, reg_dir, known, tally),
                                         daemon=True) for i in range(READERS)]
            threads += [threading.Thread(target=writer, args=(i, reg_dir, soak_registry, known,
                                                              scratch, tally, failed_tags),
                                         daemon=True) for i in range(WRITERS)]
            for t in threads:
                t.start()
            deadline = t0 + SECONDS
            # What the daemon holds (its caches and heap) when the baseline window ends, and at
            # the end: which of them grew, when RSS does.
            window_end = t0 + (60.0 if SECONDS >= 180 else SECONDS / 3.0)
            held = {}
            while time.monotonic() < deadline and not tally.stop.is_set():
                if "first" not in held and time.monotonic() >= window_end:
                    held["first"] = held_by(m)
                for who, took, what in tally.hung():
                    tally.fail(f"{who}: {what} has not returned after {took:.0f} s")
                    tally.stop.set()
                tally.stop.wait(1)
            tally.stop.set()
            duration = time.monotonic() - t0
            for t in threads:
                t.join(HANG_S)
            stuck = [t.name for t in threads if t.is_alive()]
            if stuck:
                with tally.lock:
                    busy = dict(tally.busy)
                tally.fail(f"still running {HANG_S} s after the end: {busy}")
            px.clear_faults()
            # a failed cp left nothing behind, now that its staging image has settled
            time.sleep(3)
            for repo, tag, why in failed_tags:
                if soak_registry.has_manifest(repo, tag):
                    tally.fail(f"failed cp ({why}) but {repo}:{tag} exists at the end")
            end_sample = sample(m.pid)
            if end_sample is None:
                tally.fail("the mount's daemon died")
            end_fds = fd_kinds(m.pid)
            held["last"] = held_by(m)
        finally:
            tally.stop.set()
            m.unmount()
    assert m.gone(), "the mount is still there after unmount"
    c = tally.c
    rss0, rss1, rss_limit, fd0, fd1, fd_limit = leak_limits(samples, duration)
    summary = (f"soak: {duration:.0f}s readers={READERS} writers={WRITERS} "
               f"reads={c['reads']} bytes={c['bytes']} eio={c['eio']} "
               f"(eagain={c['eio_EAGAIN']}) listings={c['listings']} "
               f"manifests={c['manifests']} pushes ok={c['pushes_ok']} "
               f"failed={c['pushes_failed']} rss_kib first={rss0} last={rss1} "
               f"fds first={fd0} last={fd1} | proxy requests={proxy_counts['requests']} "
               f"drop={proxy_counts['drop']} status={proxy_counts['status']} "
               f"known_bytes={known.total_bytes()}\n"
               f"held at the baseline's end: {held.get('first')}\n"
               f"held at the end:            {held.get('last')}")
    with capsys.disabled():
        print("\n" + summary)
    problems = list(tally.failures)
    if rss1 > rss_limit:
        problems.append(f"RSS grew: {rss1} KiB at the end, the first window's maximum "
                        f"{rss0} KiB (limit {rss_limit:.0f})")
    if fd1 > fd_limit:
        problems.append(f"open fds grew: {fd1} at the end, the first window's maximum "
                        f"{fd0} (limit {fd_limit:.0f}); open at the end: {end_fds}")
    # the soak soaked: reads, both kinds of push and the faults all happened
    if c["reads"] < 100 or c["pushes_ok"] < 2 or proxy_counts["drop"] < 5 or \
            proxy_counts["status"] < 5:
        problems.append("too little happened for a soak")
    assert not problems, summary + "\n" + "\n".join(problems) + "\n" + m.diag()
