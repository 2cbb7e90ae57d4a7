"""`regfs sync` beyond skopeo sync: HEAD-only skips, atomic and incremental dir: destinations,
include/exclude, platforms, target, prune, reports, 429s, shards, jobs and request limits,
shared layers and failures. Real docker-registry instances; the fault proxy's request log
shows what went over the network (testlib/faultproxy.py)."""

import gzip
import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import tarfile
import time
import urllib.parse
from pathlib import Path

import pytest

from testlib import images, tools
from testlib.faultproxy import Fault, FaultProxy
from testlib.wait import wait_until

SIG_TAG = r"^/v2/.+/manifests/sha256-[0-9a-f]{64}\.sig$"

OCI_MANIFEST = images.MT["oci"]["manifest"]
REPORT_KEYS = ["source", "destination", "digest", "action", "bytes", "seconds", "error"]
ACTIONS = {"copy", "skip", "update", "prune", "failed"}


# ---- images, pushed without skopeo (many small ones: a few requests each) -----------------------

def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_gz(seed, size):
    rng = random.Random(f"sync-ext-{seed}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(f"data-{seed}.bin")
        info.size = size
        info.mtime = 1_600_000_000
        tf.addfile(info, io.BytesIO(rng.randbytes(size)))
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0), buf.getvalue()


class Img:
    """One OCI image: its manifest bytes and blobs (config first)."""

    def __init__(self, seed, size=2048, base=None, nlayers=1):
        layers, diff_ids = [], []
        if base is not None:
            layers.append(base[0])
            diff_ids.append(sha(base[1]))
        for i in range(nlayers):
            gz, tar = tar_gz(f"{seed}-{i}", size)
            layers.append(gz)
            diff_ids.append(sha(tar))
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Env": [f"SEED={seed}"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        self.config, self.layers = config, layers
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": images.MT["oci"]["config"], "digest": sha(config),
                       "size": len(config)},
            "layers": [{"mediaType": images.MT["oci"]["gzip"], "digest": sha(b),
                        "size": len(b)} for b in layers]}).encode()
        self.media_type = OCI_MANIFEST
        self.digest = sha(self.manifest)

    def blobs(self):
        return {sha(b): b for b in [self.config, *self.layers]}


def push_blob(registry, repo, data):
    d = sha(data)
    if registry.get(f"/v2/{repo}/blobs/{d}", method="HEAD").status == 200:
        return
    r = registry.get(f"/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    assert r.status == 202, (r.status, r.body)
    loc = urllib.parse.urlsplit(r.headers["Location"])
    path = loc.path + "?" + (loc.query + "&" if loc.query else "") + "digest=" + d
    r = registry.get(path, method="PUT", data=data,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, (r.status, r.body)


def push_manifest(registry, repo, ref, body, media_type):
    r = registry.get(f"/v2/{repo}/manifests/{ref}", method="PUT", data=body,
                     headers={"Content-Type": media_type})
    assert r.status == 201, (repo, ref, r.status, r.body)


def push(registry, repo, tag, img):
    """Push an Img, or an images.Image (single or index), as repo:tag."""
    if isinstance(img, images.Image):
        for b in img.blobs().values():
            push_blob(registry, repo, b.data)
        for inst in img.instances:
            push_manifest(registry, repo, inst.digest, inst.manifest, inst.media_type)
    else:
        for b in img.blobs().values():
            push_blob(registry, repo, b)
    push_manifest(registry, repo, tag, img.manifest, img.media_type)
    return img.digest


def delete_manifest(registry, repo, digest):
    r = registry.get(f"/v2/{repo}/manifests/{digest}", method="DELETE")
    assert r.status == 202, (r.status, r.body)


# ---- running sync -------------------------------------------------------------------------------

def sync(regfs_bin, *args, timeout=120):
    return tools.run([regfs_bin, "sync", *map(str, args)], timeout=timeout)


def sync_ok(regfs_bin, *args, **kw):
    p = sync(regfs_bin, *args, **kw)
    assert p.returncode == 0, f"regfs sync {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
    return p


def read_report(path):
    """The --report file's lines, checked for shape and order."""
    lines = Path(path).read_text().splitlines()
    out = [json.loads(line) for line in lines]
    for o in out:
        assert list(o) == REPORT_KEYS, o
        assert o["action"] in ACTIONS, o
        assert isinstance(o["bytes"], int) and o["bytes"] >= 0, o
        assert isinstance(o["seconds"], (int, float)) and o["seconds"] >= 0, o
        assert (o["error"] != "") == (o["action"] == "failed"), o
    sources = [o["source"] for o in out]
    assert sources == sorted(sources), f"report not sorted by source: {sources}"
    return out


def by_dest(report):
    return {o["destination"]: o for o in report}


def actions(report):
    return sorted((o["destination"].rsplit("/", 1)[-1], o["action"]) for o in report)


def yaml_file(work, text, name="sync.yaml"):
    p = work / name
    p.write_text(text)
    return p


def base(repo):
    return repo.rsplit("/", 1)[-1]


def uniq(repo_name, prefix="dst"):
    """A fresh destination namespace."""
    return repo_name(prefix).replace("/", "-")


# ---- dir: destinations --------------------------------------------------------------------------

def check_dir_image(path):
    """A complete image directory: manifest.json and every blob (and instance) it names,
    each with the sha256 of its name. Returns the manifest digest."""
    path = Path(path)
    raw = (path / "manifest.json").read_bytes()
    m = json.loads(raw)

    def blobs_of(man, where):
        for d in [man["config"]] + man.get("layers", []):
            f = path / d["digest"].split(":", 1)[1]
            assert f.is_file(), f"{where}: {f.name} missing in {path}"
            assert sha(f.read_bytes()) == d["digest"], f"{where}: {f.name} corrupt in {path}"

    if "manifests" in m:
        for inst in m["manifests"]:
            f = path / (inst["digest"].split(":", 1)[1] + ".manifest.json")
            assert f.is_file() and sha(f.read_bytes()) == inst["digest"], f"{f} bad"
            blobs_of(json.loads(f.read_bytes()), inst["digest"])
    else:
        blobs_of(m, "manifest.json")
    return sha(raw)


def leftovers(root):
    return [str(p) for p in Path(root).rglob("*") if re.search(r"\.regfs-(tmp|old)-", p.name)]


def stats(path):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(Path(path).iterdir())}


# ---- the proxy's log ----------------------------------------------------------------------------

def blob_requests(px):
    return [e for e in px.requests() if re.search(r"^/v2/.+/blobs/", e.path)]


def manifest_gets(px):
    return px.requests("GET", r"^/v2/.+/manifests/")


def max_in_flight(entries, key=lambda e: None, slack=0.02):
    """Most requests in flight at once (by the log's start/end times; overlaps shorter than
    `slack` seconds do not count: a response's last write and the next request race). With a
    key, the most distinct keys in flight at once."""
    events = []
    for e in entries:
        end = e.end if e.end else time.monotonic()
        if end - slack > e.start:
            events.append((e.start, 1, e))
            events.append((end - slack, -1, e))
    events.sort(key=lambda x: (x[0], x[1]))
    live, best = [], 0
    for _, kind, e in events:
        if kind == 1:
            live.append(e)
        else:
            live.remove(e)
        n = len(live) if key(e) is None else len({key(x) for x in live})
        best = max(best, n)
    return best


def repo_of(entry):
    m = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/", entry.path)
    return m.group(1) if m else None


# ---- 1. HEAD-only re-sync -----------------------------------------------------------------------

def test_resync_unchanged_is_head_only_docker_and_dir(regfs_bin, registry, registry2, proxy,
                                                      repo_name, work):
    repo = repo_name("src")
    for i, tag in enumerate(["a", "b", "c"]):
        push(registry, repo, tag, Img(f"head-{repo}-{i}", nlayers=2))
    ns = uniq(repo_name)
    with FaultProxy(registry2.addr) as px2:
        rep = work / "r1.jsonl"
        sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--report", rep,
                f"{proxy.addr}/{repo}", f"{px2.addr}/{ns}")
        first = read_report(rep)
        assert [o["action"] for o in first] == ["copy"] * 3, first
        assert all(o["bytes"] > 0 for o in first), first
        assert registry2.tags(f"{ns}/{base(repo)}") == ["a", "b", "c"]

        proxy.clear_log()
        px2.clear_log()
        sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--report", rep,
                f"{proxy.addr}/{repo}", f"{px2.addr}/{ns}")
        again = read_report(rep)
        assert [o["action"] for o in again] == ["skip"] * 3, again
        assert all(o["bytes"] == 0 for o in again), again
        assert {o["digest"] for o in again} == {o["digest"] for o in first}
        for side in (proxy, px2):
            assert manifest_gets(side) == [], side.dump()
            assert blob_requests(side) == [], side.dump()
            heads = side.requests("HEAD", r"^/v2/.+/manifests/(?!sha256-)")
            assert len(heads) == 3, side.dump()
            # Whether signatures were added since: one HEAD of each source image's attachment
            # (none here), so the destination's is never asked.
            sig_heads = side.requests("HEAD", SIG_TAG)
            assert len(sig_heads) == (3 if side is proxy else 0), side.dump()
            assert not side.requests("PUT") and not side.requests("POST"), side.dump()

    # dir: destination: the source side is HEAD only too
    out = work / "out"
    sync_ok(regfs_bin, "--src", "docker", "--dest", "dir", f"{proxy.addr}/{repo}", out)
    proxy.clear_log()
    sync_ok(regfs_bin, "--src", "docker", "--dest", "dir", "--report", rep,
            f"{proxy.addr}/{repo}", out)
    again = read_report(rep)
    assert [o["action"] for o in again] == ["skip"] * 3, again
    assert manifest_gets(proxy) == [] and blob_requests(proxy) == [], proxy.dump()
    assert len(proxy.requests("HEAD", r"^/v2/.+/manifests/(?!sha256-)")) == 3, proxy.dump()
    assert len(proxy.requests("HEAD", SIG_TAG)) == 3, proxy.dump()


# ---- 2. dir: destinations: incremental and atomic -----------------------------------------------

def test_dir_destination_replaces_only_the_changed_tag(regfs_bin, registry, repo_name, work):
    repo = repo_name("src")
    for i, tag in enumerate(["v1", "v2", "v3"]):
        push(registry, repo, tag, Img(f"inc-{repo}-{i}"))
    out = work / "out"
    sync_ok(regfs_bin, "--src", "docker", "--dest", "dir", f"{registry.addr}/{repo}", out)
    dirs = {t: out / f"{base(repo)}:{t}" for t in ["v1", "v2", "v3"]}
    before = {t: stats(d) for t, d in dirs.items()}
    for d in dirs.values():
        check_dir_image(d)

    new = Img(f"inc-{repo}-changed")
    push(registry, repo, "v2", new)
    rep = work / "r.jsonl"
    sync_ok(regfs_bin, "--src", "docker", "--dest", "dir", "--report", rep,
            f"{registry.addr}/{repo}", out)
    got = {o["destination"].rsplit(":", 1)[-1]: o for o in read_report(rep)}
    assert {t: o["action"] for t, o in got.items()} == {"v1": "skip", "v2": "update",
                                                       "v3": "skip"}, got
    assert got["v2"]["digest"] == new.digest and got["v2"]["bytes"] > 0
    assert check_dir_image(dirs["v2"]) == new.digest
    assert sorted(os.listdir(dirs["v2"])) == sorted(
        ["version", "manifest.json"] + [d.split(":")[1] for d in new.blobs()]), "not replaced whole"
    for t in ["v1", "v3"]:
        assert stats(dirs[t]) == before[t], f"{t} was rewritten"
    assert leftovers(out) == []


def _sigkill_once(p, ready, what):
    """SIGKILLs the running sync `p` once ready() holds (within 60 s); it must still run."""
    try:
        assert wait_until(ready, 60), what
        assert p.poll() is None, f"sync ended before it could be killed: {p.communicate()}"
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _start_slow_sync(regfs_bin, argv):
    env = tools._env(tools.private_home())
    return subprocess.Popen([regfs_bin, "sync", *map(str, argv)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _many_images(registry, repo, n, size=96 * 1024):
    out = {}
    for i in range(n):
        img = Img(f"kill-{repo}-{i}", size=size, nlayers=2)
        push(registry, repo, f"t{i}", img)
        out[f"t{i}"] = img
    return out


def test_dir_destination_survives_sigkill(regfs_bin, registry, proxy, repo_name, work):
    repo = repo_name("src")
    imgs = _many_images(registry, repo, 8)
    out = work / "out"
    proxy.add(Fault.bandwidth(200 * 1024), method="GET", path=r"/blobs/sha256:", forever=True)
    argv = ["--src", "docker", "--dest", "dir", "--jobs", "2", f"{proxy.addr}/{repo}", out]
    done = lambda: [d for d in out.glob(f"{base(repo)}:t*")  # noqa: E731
                    if (d / "manifest.json").exists() and ".regfs-" not in d.name]
    _sigkill_once(_start_slow_sync(regfs_bin, argv), done, "no image directory appeared")
    # what the killed run left under the images' names is whole
    partial = sorted(d.name for d in done())
    assert len(partial) < len(imgs), "nothing left to do after the kill: the test is too fast"
    for name in partial:
        check_dir_image(out / name)

    proxy.clear_faults()
    sync_ok(regfs_bin, *argv)
    for tag, img in imgs.items():
        assert check_dir_image(out / f"{base(repo)}:{tag}") == img.digest
    assert leftovers(out) == [], leftovers(out)
    assert sorted(os.listdir(out)) == sorted(f"{base(repo)}:{t}" for t in imgs)


def test_docker_destination_survives_sigkill(regfs_bin, registry, registry2, proxy, repo_name,
                                             work):
    repo = repo_name("src")
    imgs = _many_images(registry, repo, 8)
    ns = uniq(repo_name)
    dest_repo = f"{ns}/{base(repo)}"
    proxy.add(Fault.bandwidth(200 * 1024), method="GET", path=r"/blobs/sha256:", forever=True)
    argv = ["--src", "docker", "--dest", "docker", "--jobs", "2", f"{proxy.addr}/{repo}",
            f"{registry2.addr}/{ns}"]
    _sigkill_once(_start_slow_sync(regfs_bin, argv), lambda: registry2.tags(dest_repo),
                  "no tag appeared")
    assert len(registry2.tags(dest_repo)) < len(imgs), "the test is too fast"
    proxy.clear_faults()
    sync_ok(regfs_bin, *argv)
    assert registry2.tags(dest_repo) == sorted(imgs)
    for tag, img in imgs.items():
        r = registry2.manifest(dest_repo, tag)
        assert r.status == 200 and sha(r.body) == img.digest
        m = json.loads(r.body)
        for d in [m["config"]] + m["layers"]:
            assert registry2.has_blob(dest_repo, d["digest"]), f"{tag}: {d['digest']} missing"


# ---- 3. include / exclude -----------------------------------------------------------------------

TAGS = ["v1", "v1.1", "v2", "v2-rc", "latest"]


@pytest.fixture
def tagged(registry, repo_name):
    """A repository with TAGS, all one image."""
    repo = repo_name("src")
    img = Img(f"tags-{repo}")
    push(registry, repo, TAGS[0], img)
    for t in TAGS[1:]:
        push_manifest(registry, repo, t, img.manifest, img.media_type)
    return repo


def test_include_exclude_flags(regfs_bin, registry, registry2, tagged, repo_name):
    ns = uniq(repo_name)
    sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--include", "v.*",
            "--exclude", ".*-rc", f"{registry.addr}/{tagged}", f"{registry2.addr}/{ns}")
    assert registry2.tags(f"{ns}/{base(tagged)}") == ["v1", "v1.1", "v2"]
    # anchored (the whole tag), and repeatable
    ns = uniq(repo_name)
    sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--include", "v1",
            "--include", "late", "--include", "v2-rc", "--exclude", "rc", f"{registry.addr}/{tagged}",
            f"{registry2.addr}/{ns}")
    assert registry2.tags(f"{ns}/{base(tagged)}") == ["v1", "v2-rc"]


def test_include_exclude_yaml(regfs_bin, registry, registry2, tagged, repo_name, work):
    ns = uniq(repo_name)
    y = yaml_file(work, f"""
{registry.addr}:
  include: ["v.*"]
  exclude: [".*-rc"]
  images:
    {tagged}: []
""")
    sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", y, f"{registry2.addr}/{ns}")
    assert registry2.tags(f"{ns}/{base(tagged)}") == ["v1", "v1.1", "v2"]

    # per repository, overriding the registry's defaults
    ns = uniq(repo_name)
    y = yaml_file(work, f"""
{registry.addr}:
  exclude: ["latest"]
  images:
    {tagged}:
      include: ["v1.*", "latest"]
      exclude: ["v1"]
""")
    sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", y, f"{registry2.addr}/{ns}")
    assert registry2.tags(f"{ns}/{base(tagged)}") == ["latest", "v1.1"]



def test_include_exclude_yaml_filter_named_tags(regfs_bin, registry, registry2, tagged,
                                                repo_name, work):
    ns = uniq(repo_name)
    y = yaml_file(work, f"""
{registry.addr}:
  images:
    {tagged}:
      tags: ["v2", "v2-rc", "latest"]
      exclude: [".*-rc"]
""")
    sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", y, f"{registry2.addr}/{ns}")
    assert registry2.tags(f"{ns}/{base(tagged)}") == ["latest", "v2"]


# ---- 4. platforms -------------------------------------------------------------------------------

def _check_reduced(registry2, dest_repo, tag, src, platform, report):
    r = registry2.manifest(dest_repo, tag)
    assert r.status == 200
    idx = json.loads(r.body)
    want = src.image.instance(*platform.split("/")[:2])
    assert idx.get("manifests") and [m["digest"] for m in idx["manifests"]] == [want.digest], idx
    assert idx["mediaType"] == src.image.media_type
    [line] = report
    assert line["digest"] == sha(r.body) and line["digest"] != src.digest, line
    inst = registry2.manifest(dest_repo, want.digest)
    assert inst.status == 200 and inst.body == want.manifest
    for d in [want.config] + want.layers:
        assert registry2.has_blob(dest_repo, d.digest)
    others = [i for i in src.image.instances if i.digest != want.digest]
    assert not any(registry2.has_manifest(dest_repo, i.digest) for i in others)


def test_platform_flag_reduces_the_index(regfs_bin, registry, registry2, imgs, repo_name, work):
    ns = uniq(repo_name)
    rep = work / "r.jsonl"
    sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--platform", "linux/arm64/v8",
            "--report", rep, f"{registry.addr}/{imgs.oci_index.repo}:v1", f"{registry2.addr}/{ns}")
    first = read_report(rep)
    _check_reduced(registry2, f"{ns}/oci-index", "v1", imgs.oci_index, "linux/arm64/v8", first)
    # again: the reduced index is what the destination has, so nothing to do
    sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--platform", "linux/arm64/v8",
            "--report", rep, f"{registry.addr}/{imgs.oci_index.repo}:v1", f"{registry2.addr}/{ns}")
    [again] = read_report(rep)
    assert (again["action"], again["digest"]) == ("skip", first[0]["digest"]), again


def test_platforms_yaml_reduces_the_index(regfs_bin, registry, registry2, imgs, repo_name, work):
    ns = uniq(repo_name)
    rep = work / "r.jsonl"
    y = yaml_file(work, f"""
{registry.addr}:
  images:
    {imgs.docker_list.repo}: {{tags: ["v1"], platforms: ["linux/amd64"]}}
""")
    sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", "--report", rep, y,
            f"{registry2.addr}/{ns}")
    _check_reduced(registry2, f"{ns}/docker-list", "v1", imgs.docker_list, "linux/amd64",
                   read_report(rep))


def test_multi_platform_without_all_copies_one_and_says_so(regfs_bin, registry, registry2, imgs,
                                                           repo_name):
    ns = uniq(repo_name)
    p = sync_ok(regfs_bin, "--src", "docker", "--dest", "docker",
                f"{registry.addr}/{imgs.oci_index.repo}:v1", f"{registry2.addr}/{ns}")
    digest = registry2.manifest_digest(f"{ns}/oci-index", "v1")
    assert digest in {i.digest for i in imgs.oci_index.image.instances}
    assert "multi-platform" in p.stderr and "only the" in p.stderr, p.stderr


# ---- 5. target ----------------------------------------------------------------------------------

def test_yaml_target_renames(regfs_bin, registry, registry2, repo_name, work):
    repo = repo_name("src")
    img = Img(f"target-{repo}")
    push(registry, repo, "v1", img)
    ns = uniq(repo_name)
    y = yaml_file(work, f"""
{registry.addr}:
  images:
    {repo}: {{target: mirror/renamed}}
""")
    sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", y, f"{registry2.addr}/{ns}")
    assert registry2.manifest_digest(f"{ns}/mirror/renamed", "v1") == img.digest
    assert registry2.tags(f"{ns}/{base(repo)}") == []


# ---- 6. prune -----------------------------------------------------------------------------------

def test_prune_docker(regfs_bin, registry, registry2, repo_name, work, tmp_path):
    repo = repo_name("src")
    a = Img(f"prune-a-{repo}")
    b = images.make_image(tmp_path / "b", seed=hash(repo) % 10000, fmt="docker",
                          layers=["gzip"], layer_size=2048)
    push(registry, repo, "a", a)
    push(registry, repo, "b", b)
    ns = uniq(repo_name)
    dest = f"{ns}/{base(repo)}"
    argv = ["--src", "docker", "--dest", "docker", f"{registry.addr}/{repo}",
            f"{registry2.addr}/{ns}"]
    sync_ok(regfs_bin, *argv)
    stale = Img(f"prune-stale-{repo}")
    push(registry2, dest, "old", stale)
    push_manifest(registry2, dest, "dup", b.manifest, b.media_type)  # shares b's digest
    sig = "sha256-" + hashlib.sha256(repo.encode()).hexdigest() + ".sig"
    push_manifest(registry2, dest, sig, stale.manifest, stale.media_type)
    other = f"{ns}/other"
    push(registry2, other, "x", stale)
    everything = sorted(["a", "b", "old", "dup", sig])

    sync_ok(regfs_bin, *argv)  # no --prune: nothing deleted
    assert registry2.tags(dest) == everything

    rep = work / "dry.jsonl"
    p = sync_ok(regfs_bin, "--prune", "--dry-run", "--report", rep, *argv)
    assert registry2.tags(dest) == everything
    pruned = sorted(o["destination"].rsplit(":", 1)[-1] for o in read_report(rep)
                    if o["action"] == "prune")
    assert pruned == ["dup", "old"], read_report(rep)
    assert re.search(r"(?m)^prune .*:old$", p.stdout), p.stdout

    rep = work / "r.jsonl"
    sync_ok(regfs_bin, "--prune", "--report", rep, *argv)
    report = read_report(rep)
    assert sorted((o["destination"].rsplit(":", 1)[-1], o["action"]) for o in report) == [
        ("a", "skip"), ("b", "skip"), ("dup", "prune"), ("old", "prune")], report
    assert registry2.tags(dest) == sorted(["a", "b", sig])
    assert registry2.manifest_digest(dest, "a") == a.digest
    assert registry2.manifest_digest(dest, "b") == b.digest  # dup's digest, kept
    assert registry2.manifest_digest(dest, sig) == stale.digest
    assert registry2.tags(other) == ["x"]


def test_prune_dir(regfs_bin, registry, repo_name, work):
    repo = repo_name("src")
    push(registry, repo, "a", Img(f"pdir-a-{repo}"))
    push(registry, repo, "b", Img(f"pdir-b-{repo}"))
    out = work / "out"
    argv = ["--src", "docker", "--dest", "dir", f"{registry.addr}/{repo}", out]
    sync_ok(regfs_bin, *argv)
    name = base(repo)
    sig = "sha256-" + "ab" * 32 + ".sig"
    for extra in [f"{name}:old", f"{name}:{sig}", "other:x"]:
        subprocess.run(["cp", "-a", str(out / f"{name}:a"), str(out / extra)], check=True)
    sync_ok(regfs_bin, *argv)
    assert (out / f"{name}:old").is_dir()
    rep = work / "r.jsonl"
    p = sync_ok(regfs_bin, "--prune", "--dry-run", "--report", rep, *argv)
    assert (out / f"{name}:old").is_dir()
    assert [o["destination"] for o in read_report(rep) if o["action"] == "prune"] == [
        f"dir:{out}/{name}:old"], p.stdout
    sync_ok(regfs_bin, "--prune", "--report", rep, *argv)
    assert sorted(os.listdir(out)) == sorted([f"{name}:a", f"{name}:b", f"{name}:{sig}",
                                              "other:x"])
    assert [o["destination"] for o in read_report(rep) if o["action"] == "prune"] == [
        f"dir:{out}/{name}:old"]
    assert leftovers(out) == []


# ---- 8. 429 with Retry-After --------------------------------------------------------------------

@pytest.mark.parametrize("what", ["manifests", "blobs"])
def test_429_with_retry_after_is_waited_out(regfs_bin, registry, registry2, proxy, repo_name,
                                            work, what):
    repo = repo_name("src")
    img = Img(f"429-{repo}")
    push(registry, repo, "v1", img)
    ns = uniq(repo_name)
    proxy.add(Fault.status(429, retry_after=1, count=3), path=rf"^/v2/.+/{what}/sha256:|"
              rf"^/v2/.+/{what}/v1")
    t0 = time.monotonic()
    sync_ok(regfs_bin, "--src", "docker", "--dest", "docker", "--retry-times", "0", "--jobs", "1",
            f"{proxy.addr}/{repo}", f"{registry2.addr}/{ns}")
    took = time.monotonic() - t0
    assert len([e for e in proxy.requests() if e.status == 429]) == 3, proxy.dump()
    assert took >= 0.9, took
    assert registry2.manifest_digest(f"{ns}/{base(repo)}", "v1") == img.digest


# ---- 9. shards ----------------------------------------------------------------------------------

def test_shards_partition_the_repositories(regfs_bin, registry, registry2, repo_name, work):
    prefix = repo_name("shard")
    repos = [f"{prefix}/r{i}" for i in range(7)]
    img = Img(f"shard-{prefix}")
    for r in repos:
        push(registry, r, "v1", img)
    y = yaml_file(work, f"{registry.addr}:\n  images:\n" + "".join(f"    {r}: []\n" for r in repos))
    ns = uniq(repo_name)
    rep = work / "all.jsonl"
    sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", "--report", rep, y,
            f"{registry2.addr}/{ns}/all")
    whole = {o["destination"].split("/all/", 1)[1] for o in read_report(rep)}
    assert whole == {f"r{i}:v1" for i in range(7)}
    shards = []
    for k in (1, 2, 3):
        rep = work / f"s{k}.jsonl"
        sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", "--shard", f"{k}/3",
                "--report", rep, y, f"{registry2.addr}/{ns}/sh")
        shards.append({o["destination"].split("/sh/", 1)[1] for o in read_report(rep)})
    assert set().union(*shards) == whole, shards
    assert sum(len(s) for s in shards) == len(whole), f"shards overlap: {shards}"
    assert sorted(r for r in registry2.catalog() if r.startswith(f"{ns}/sh/")) == sorted(
        f"{ns}/sh/r{i}" for i in range(7))
    for bad in ["0/3", "4/3", "x", "1/0", "2"]:
        p = sync(regfs_bin, "--src", "yaml", "--dest", "docker", "--shard", bad, y,
                 f"{registry2.addr}/{ns}/bad")
        assert p.returncode == 2, (bad, p.returncode, p.stderr)
    assert not any(r.startswith(f"{ns}/bad/") for r in registry2.catalog())


# ---- 10. jobs and requests in flight ------------------------------------------------------------

def test_jobs_and_request_limit(regfs_bin, registry, registry2, proxy, repo_name, work):
    prefix = repo_name("jobs")
    repos = [f"{prefix}/r{i}" for i in range(8)]
    for i, r in enumerate(repos):
        push(registry, r, "v1", Img(f"jobs-{prefix}-{i}"))
    y = yaml_file(work, f"{proxy.addr}:\n  images:\n" + "".join(f"    {r}: []\n" for r in repos))
    proxy.add(Fault.latency(0.1), path=r"^/v2/.+/(manifests|blobs|tags)/", forever=True)

    def run(jobs, *extra):
        ns = uniq(repo_name)
        proxy.clear_log()
        sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", "--jobs", jobs, *extra, y,
                f"{registry2.addr}/{ns}")
        got = {r: registry2.manifest_digest(f"{ns}/r{i}", "v1") for i, r in enumerate(repos)}
        return got, [e for e in proxy.requests() if repo_of(e)]

    one, log1 = run(1)
    four, log4 = run(4)
    assert one == four and None not in one.values()
    assert max_in_flight(log1, key=repo_of) == 1, "--jobs 1 worked on two repositories at once"
    assert 2 <= max_in_flight(log4, key=repo_of) <= 4, "--jobs 4: no images synced at once"
    limited, logl = run(4, "--max-requests-per-registry", "2")
    assert limited == one
    assert max_in_flight(logl) <= 2, "more than 2 requests in flight with a limit of 2"
    assert max_in_flight(logl) == 2


# ---- 11. shared layers --------------------------------------------------------------------------

def test_shared_base_layer_uploaded_once(regfs_bin, registry, registry2, proxy2, repo_name, work):
    prefix = repo_name("shared")
    base_layer = tar_gz(f"base-{prefix}", 64 * 1024)
    base_digest = sha(base_layer[0])
    repos = [f"{prefix}/r{i}" for i in range(5)]
    want = {}
    for i, r in enumerate(repos):
        for t in ("t1", "t2"):
            img = Img(f"shared-{prefix}-{i}-{t}", base=base_layer)
            push(registry, r, t, img)
            want[(r, t)] = img.digest
    y = yaml_file(work, f"{registry.addr}:\n  images:\n" + "".join(f"    {r}: []\n" for r in repos))
    ns = uniq(repo_name)
    p = sync_ok(regfs_bin, "--src", "yaml", "--dest", "docker", y, f"{proxy2.addr}/{ns}")
    assert "MANIFEST_BLOB_UNKNOWN" not in p.stderr
    for (r, t), d in want.items():
        assert registry2.manifest_digest(f"{ns}/{base(r)}", t) == d
        assert registry2.has_blob(f"{ns}/{base(r)}", base_digest)
    assert not [e for e in proxy2.requests("PUT", "/manifests/") if e.status != 201], proxy2.dump()
    # upload sessions by their id: the PUT that ends one names its digest
    sessions = {}
    for e in proxy2.requests(path=r"/blobs/uploads/[^/?]+"):
        uid = re.search(r"/blobs/uploads/([^/?]+)", e.path).group(1)
        s = sessions.setdefault(uid, {"bytes": 0, "digest": None})
        s["bytes"] += e.request_bytes
        m = re.search(r"[?&]digest=([^&]+)", e.path)
        if m and e.method == "PUT":
            s["digest"] = urllib.parse.unquote(m.group(1))
    base_uploads = [s for s in sessions.values() if s["digest"] == base_digest and s["bytes"]]
    mono = [e for e in proxy2.requests("POST", r"/blobs/uploads/\?.*digest=")
            if urllib.parse.unquote(e.path).find(base_digest) >= 0 and e.request_bytes]
    assert len(base_uploads) + len(mono) <= 1, proxy2.dump()
    mounts = [e for e in proxy2.requests("POST", r"[?&]mount=")
              if base_digest in urllib.parse.unquote(e.path) and e.status == 201]
    assert len(mounts) >= 4, proxy2.dump()


# ---- 12. failures -------------------------------------------------------------------------------

def test_corrupt_blob_fails_that_image_only_with_keep_going(regfs_bin, registry, registry2, proxy,
                                                            repo_name, work):
    prefix = repo_name("fail")
    repos = [f"{prefix}/r{i}" for i in range(3)]
    imgs = {r: Img(f"fail-{prefix}-{i}") for i, r in enumerate(repos)}
    for r, img in imgs.items():
        push(registry, r, "v1", img)
    bad = repos[1]
    layer = sha(imgs[bad].layers[0])
    proxy.add(Fault.flip_byte(), method="GET", path=rf"^/v2/{bad}/blobs/{layer}", forever=True)
    y = yaml_file(work, f"{proxy.addr}:\n  images:\n" + "".join(f"    {r}: []\n" for r in repos))

    ns = uniq(repo_name)
    rep = work / "r.jsonl"
    p = sync(regfs_bin, "--src", "yaml", "--dest", "docker", "--keep-going", "--report", rep, y,
             f"{registry2.addr}/{ns}")
    assert p.returncode == 1, p.stderr
    report = read_report(rep)
    assert [o["action"] for o in report] == ["copy", "failed", "copy"], report
    assert report[1]["source"].endswith(f"{bad}:v1") and report[1]["error"], report
    assert registry2.tags(f"{ns}/r1") == []
    for r in (repos[0], repos[2]):
        assert registry2.manifest_digest(f"{ns}/{base(r)}", "v1") == imgs[r].digest

    ns = uniq(repo_name)
    p = sync(regfs_bin, "--src", "yaml", "--dest", "docker", "--jobs", "1", "--report", rep, y,
             f"{registry2.addr}/{ns}")
    assert p.returncode == 1, p.stderr
    failed = [o for o in read_report(rep) if o["action"] == "failed"]
    assert len(failed) == 1 and failed[0]["source"].endswith(f"{bad}:v1"), read_report(rep)
    assert registry2.tags(f"{ns}/r1") == []
