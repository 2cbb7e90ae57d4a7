"""cp -r of a namespace or repository directory through the mount copies every tag below it
(DESIGN §1 "Writing = pushing"): coreutils cp against real registries, digests preserved,
cross-repository mounts within one registry. skopeo and the registry's own HTTP API are the
oracle; the fault proxy's request log shows what went over the network."""

import json
import re
import subprocess
import uuid

from mountlib import hexof
from testlib import images, tools
from testlib.faultproxy import Fault


# ---- helpers ---------------------------------------------------------------------------------

def cp_r(*argv, m=None, check=True):
    p = subprocess.run(["cp", "-r", *map(str, argv)], capture_output=True, text=True,
                       timeout=240, stdin=subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, (f"cp -r {' '.join(map(str, argv))} exited {p.returncode}:\n"
                                   f"{p.stdout}{p.stderr}" + (m.diag() if m else ""))
    return p


def top_namespace(prefix):
    """A namespace name of one component, unique to the test: cp -r MNT/A/ns MNT/B/ makes
    MNT/B/ns."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def seed_namespace(imgs, registry, ns):
    """ns/app (oci, oci_index) and ns/sub/tool (docker, docker_list) on `registry`; returns
    {repo: {tag: standard image}}."""
    layout = {f"{ns}/app": {"a": imgs.oci, "idx": imgs.oci_index},
              f"{ns}/sub/tool": {"b": imgs.docker, "list": imgs.docker_list}}
    for repo, tags in layout.items():
        for tag, it in tags.items():
            images.push(it.dir, registry.addr, repo, tag)
    return layout


def assert_copied(oracle, registry, layout, rename=lambda repo: repo, m=None):
    """Every repository of `layout` has exactly its tags on `registry` (under rename(repo)),
    each with the source's manifest digest, as skopeo and the registry's API read it; an
    index with every instance manifest and blob."""
    for repo, tags in layout.items():
        dst = rename(repo)
        assert registry.tags(dst) == sorted(tags), (
            f"{dst}: tags {registry.tags(dst)}, expected {sorted(tags)}" +
            (m.diag() if m else ""))
        for tag, it in tags.items():
            assert registry.manifest_digest(dst, tag) == it.digest, f"{dst}:{tag}"
            assert oracle.digest_of(registry.ref(dst, tag)) == it.digest, f"{dst}:{tag}"
            for inst in it.image.instances:
                assert registry.manifest_digest(dst, inst.digest) == inst.digest, \
                    f"{dst}:{tag} lacks instance {inst.digest}"
            for digest in it.image.blobs():
                assert registry.has_blob(dst, digest), f"{dst}:{tag} lacks blob {digest}"


def assert_same_via_skopeo(oracle, registry, repo, tag, it, work):
    """skopeo copy --all of repo:tag gives the source dir: image byte for byte."""
    back = work / f"back-{repo.replace('/', '_')}-{tag}"
    oracle.copy(registry.ref(repo, tag), f"dir:{back}", "--all")
    assert tools.tree_diff(back, it.dir) == ""


# ---- a namespace to another registry ---------------------------------------------------------

def test_cp_r_of_a_namespace_copies_every_repository_and_tag(imgs, registry, registry2, mounts,
                                                             oracle, work):
    ns = top_namespace("sync-ns")
    layout = seed_namespace(imgs, registry, ns)
    m = mounts()
    cp_r(m.reg(registry.addr) / ns, m.reg(registry2.addr), m=m)
    assert_copied(oracle, registry2, layout, m=m)
    assert sorted(r for r in registry2.catalog() if r.startswith(ns + "/")) == sorted(layout)
    # the multi-platform one whole, by skopeo's reading
    assert_same_via_skopeo(oracle, registry2, f"{ns}/app", "idx", imgs.oci_index, work)
    # and the mount shows the copy as it shows the source
    for repo, tags in layout.items():
        assert sorted(p.name for p in (m.reg(registry2.addr) / repo).iterdir()) == sorted(tags)
    d = m.image(registry2.addr, f"{ns}/sub/tool", "list")
    assert (d / "manifest.json").read_bytes() == imgs.docker_list.image.manifest


def test_cp_r_into_an_existing_namespace_leaves_its_repositories(imgs, registry, registry2,
                                                                 mounts, oracle):
    ns = top_namespace("sync-into")
    layout = seed_namespace(imgs, registry, ns)
    # B has the namespace already, with a repository A lacks and one A has too (another tag)
    images.push(imgs.docker.dir, registry2.addr, f"{ns}/other", "keep")
    images.push(imgs.oci.dir, registry2.addr, f"{ns}/app", "own")
    m = mounts()
    assert (m.reg(registry2.addr) / ns).is_dir()
    cp_r(m.reg(registry.addr) / ns, m.reg(registry2.addr), m=m)
    merged = {repo: dict(tags) for repo, tags in layout.items()}
    merged[f"{ns}/app"]["own"] = imgs.oci
    assert_copied(oracle, registry2, merged, m=m)
    assert registry2.tags(f"{ns}/other") == ["keep"]
    assert registry2.manifest_digest(f"{ns}/other", "keep") == imgs.docker.digest
    assert oracle.digest_of(registry2.ref(f"{ns}/other", "keep")) == imgs.docker.digest


# ---- a repository ----------------------------------------------------------------------------

def test_cp_r_of_a_repository_to_a_new_name_copies_all_its_tags(imgs, registry, registry2,
                                                                mounts, oracle, work,
                                                                repo_name):
    src = repo_name("sync-repo")
    tags = {"v1": imgs.oci, "v2": imgs.docker, "multi": imgs.oci_index}
    for tag, it in tags.items():
        images.push(it.dir, registry.addr, src, tag)
    dst_parent = repo_name("sync-dst")
    m = mounts()
    (m.reg(registry2.addr) / dst_parent).mkdir(parents=True)
    cp_r(m.reg(registry.addr) / src, m.reg(registry2.addr) / dst_parent / "newrepo", m=m)
    dst = f"{dst_parent}/newrepo"
    assert_copied(oracle, registry2, {src: tags}, rename=lambda _: dst, m=m)
    assert_same_via_skopeo(oracle, registry2, dst, "multi", imgs.oci_index, work)


# ---- within one registry: mounts, no blob bytes ----------------------------------------------

def test_cp_r_of_a_namespace_within_one_registry_moves_no_blob_bytes(imgs, registry, proxy,
                                                                     mounts, oracle):
    ns = top_namespace("sync-one")
    layout = seed_namespace(imgs, registry, ns)
    ns2 = ns + "-copy"
    m = mounts()
    a = m.reg(proxy.addr)
    proxy.clear_log()
    cp_r(a / ns, a / ns2, m=m)
    assert_copied(oracle, registry, layout, rename=lambda r: ns2 + r[len(ns):], m=m)
    log = proxy.dump()
    assert proxy.requests("GET", r"/blobs/") == [], "blob bytes were read:\n" + log
    assert proxy.requests("PATCH") == [], "blob bytes were uploaded:\n" + log
    sent = [e for e in proxy.requests(path=r"/blobs/") if e.request_bytes > 0]
    assert sent == [], "blob bytes were uploaded:\n" + log
    mounted = {}
    for e in proxy.requests("POST", r"/blobs/uploads/\?.*mount="):
        repo = re.search(r"/v2/(.+)/blobs/uploads/", e.path).group(1)
        digest = re.search(r"mount=([^&]+)", e.path).group(1).replace("%3A", ":").replace(
            "%3a", ":")
        mounted.setdefault(repo, set()).add(digest)
    for repo, tags in layout.items():
        dst = ns2 + repo[len(ns):]
        want = set()
        for it in tags.values():
            want |= set(it.image.blobs())
        assert mounted.get(dst) == want, f"{dst}: blobs not mounted from the source:\n" + log


# ---- a tag that cannot be read ---------------------------------------------------------------

def test_cp_r_with_an_unreadable_blob_fails_and_leaves_that_tag_out(imgs, registry, registry2,
                                                                    proxy, mounts, oracle,
                                                                    work):
    """One tag's layer comes back corrupt from A, every time: cp exits non-zero, that tag is
    not on B, and the other tags are copied whole."""
    ns = top_namespace("sync-bad")
    good = {"a": imgs.oci, "b": imgs.docker}
    for tag, it in good.items():
        images.push(it.dir, registry.addr, f"{ns}/app", tag)
    bad = images.pushed_image(work / "bad", registry, f"{ns}/app", "broken", seed=991,
                              layers=["gzip", "tar"])
    layer = max(bad.layers, key=lambda b: b.size)
    proxy.add(Fault.flip_byte(), method="GET", path=re.escape(layer.digest), forever=True)
    m = mounts("timeout=5")
    r = cp_r(m.reg(proxy.addr) / ns, m.reg(registry2.addr), check=False)
    assert r.returncode != 0, "cp of a namespace with a corrupt blob succeeded\n" + m.diag()
    assert hexof(layer.digest) in r.stderr, r.stderr
    assert re.search(f"{hexof(layer.digest)}.*digest", m.log_text()), \
        "the log does not say why:\n" + m.diag()
    assert proxy.requests("GET", re.escape(layer.digest)), proxy.dump()
    assert not registry2.has_manifest(f"{ns}/app", "broken"), "the broken tag was pushed"
    assert not registry2.has_manifest(f"{ns}/app", bad.digest)
    assert not registry2.has_blob(f"{ns}/app", layer.digest), "the corrupt blob was completed"
    lt = oracle.list_tags(f"docker://{registry2.addr}/{ns}/app")
    assert "broken" not in (json.loads(lt.stdout).get("Tags") or []), lt.stdout
    assert_copied(oracle, registry2, {f"{ns}/app": good}, m=m)
