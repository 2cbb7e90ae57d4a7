"""Signatures in the mount (issue 12, "In the mount"): an image directory lists the sigstore
signatures of its `sha256-<hex>.sig` attachment as signature-N, byte for byte what skopeo's
dir: copy writes when registries.d enables attachments; signature-N files copied into a tag
directory are pushed as the new image's attachment; policy=FILE makes a verified-only view.
Keys come from `regfs generate-key`, signatures from `regfs sign`; skopeo is the oracle."""

import errno
import json
import os
import shutil
import subprocess

import pytest

from mountlib import expect_errno, hexof, lazy_unmount
from testlib import images, tools

PASSPHRASE = "mount signatures"
ENV = {"COSIGN_PASSWORD": PASSPHRASE}


# ---- helpers ------------------------------------------------------------------------------------

def run(*argv, timeout=120):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def keys(regfs_ok, work):
    """Two key pairs: keys.a and keys.b, each with .private and .pub."""
    class Pair:
        def __init__(self, prefix):
            self.private = work / f"{prefix}.private"
            self.pub = work / f"{prefix}.pub"
    for prefix in ("a", "b"):
        regfs_ok("generate-key", "--output-prefix", work / prefix, env=ENV)

    class Keys:
        a = Pair("a")
        b = Pair("b")
    return Keys


def push(work, registry, repo, seed, tag="v1"):
    return images.pushed_image(work / f"src-{seed}-{repo.replace('/', '_')}", registry, repo,
                               tag, seed=seed)


def sign(regfs_ok, key, registry, repo, tag="v1"):
    regfs_ok("sign", "-q", "--key", key, f"docker://{registry.addr}/{repo}:{tag}", env=ENV)


def skopeo_dir(registry, repo, tag, dest, registries_d):
    """skopeo copy docker://… dir:DEST with attachments enabled by `registries_d`."""
    tools.run([tools.SKOPEO, "--registries.d", registries_d, "copy", "-q",
               "--src-tls-verify=false", f"docker://{registry.addr}/{repo}:{tag}",
               f"dir:{dest}"], check=True)
    return dest


def signature_names(d):
    return sorted(n for n in os.listdir(d) if n.startswith("signature-"))


def policy_file(work, key, name="policy.json", identity=None):
    """Every docker image must carry a sigstore signature by `key`."""
    req = {"type": "sigstoreSigned", "keyPath": str(key)}
    if identity:
        req["signedIdentity"] = identity
    p = work / name
    p.write_text(json.dumps({"default": [{"type": "reject"}],
                             "transports": {"docker": {"": [req]}}}))
    return p


def attachment_tag(digest):
    return digest.replace(":", "-") + ".sig"


# ---- (a) listing and reading ----------------------------------------------------------------

def test_signatures_are_listed_and_read_as_skopeo_writes_them(
        registry, mounts, repo_name, regfs_ok, keys, work, attachments_d):
    repo = repo_name("sig")
    img = push(work, registry, repo, seed=101)
    sign(regfs_ok, keys.a.private, registry, repo)
    want = skopeo_dir(registry, repo, "v1", work / "skopeo", attachments_d)
    assert signature_names(want) == ["signature-1"]

    m = mounts()
    d = m.image(registry.addr, repo, "v1")
    names = os.listdir(d)
    assert names[-1] == "signature-1", names  # after the blobs
    assert names[:2] == ["manifest.json", "version"]
    assert os.stat(d / "signature-1").st_size == (want / "signature-1").stat().st_size
    assert (d / "signature-1").read_bytes() == (want / "signature-1").read_bytes()
    assert (d / "manifest.json").read_bytes() == img.manifest

    got = work / "cp"
    p = run("cp", "-r", d, got)
    assert p.returncode == 0, p.stderr + m.diag()
    p = run("diff", "-r", want, got)
    assert p.returncode == 0, p.stdout + p.stderr

    # The attachment's tag is still a tag of the repository.
    assert attachment_tag(img.digest) in os.listdir(m.mnt / registry.addr / repo)


def test_two_signatures_and_an_unsigned_image(
        registry, mounts, repo_name, regfs_ok, keys, work, attachments_d):
    repo = repo_name("sig")
    push(work, registry, repo, seed=102)
    push(work, registry, repo, seed=103, tag="plain")
    sign(regfs_ok, keys.a.private, registry, repo)
    sign(regfs_ok, keys.b.private, registry, repo)
    want = skopeo_dir(registry, repo, "v1", work / "skopeo", attachments_d)
    assert signature_names(want) == ["signature-1", "signature-2"]

    m = mounts()
    d = m.image(registry.addr, repo, "v1")
    assert signature_names(d) == ["signature-1", "signature-2"]
    for n in ("signature-1", "signature-2"):
        assert (d / n).read_bytes() == (want / n).read_bytes(), n
    plain = m.image(registry.addr, repo, "plain")
    assert signature_names(plain) == []
    assert not (plain / "signature-1").exists()


def test_listing_fetches_no_payload(registry, mounts, repo_name, regfs_ok, keys, work, proxy):
    repo = repo_name("sig")
    push(work, registry, repo, seed=104)
    sign(regfs_ok, keys.a.private, registry, repo)
    m = mounts()
    d = m.image(proxy.addr, repo, "v1")
    assert signature_names(d) == ["signature-1"]
    assert os.stat(d / "signature-1").st_size > 0
    assert proxy.requests("GET", r"/blobs/") == [], "listing and stat fetched blob bytes"
    assert (d / "signature-1").read_bytes().startswith(b"\0sigstore-json\n")
    assert len(proxy.requests("GET", r"/blobs/")) == 1  # the payload, on read


# ---- (b) pushing signatures -------------------------------------------------------------------

def test_cp_of_a_signed_dir_pushes_its_signatures(
        registry, mounts, repo_name, regfs_ok, regfs, keys, work, attachments_d):
    repo = repo_name("sig")
    img = push(work, registry, repo, seed=105)
    sign(regfs_ok, keys.a.private, registry, repo)
    src = skopeo_dir(registry, repo, "v1", work / "skopeo", attachments_d)

    m = mounts()
    dest_repo = repo_name("copied")
    (m.mnt / registry.addr / dest_repo).mkdir(parents=True)
    p = run("cp", "-r", src, m.mnt / registry.addr / dest_repo / "v1")
    assert p.returncode == 0, p.stderr + m.diag()

    # The attachment of the pushed digest exists, holding the same signature.
    tools.run([tools.SKOPEO, "inspect", "--raw", "--tls-verify=false",
               f"docker://{registry.addr}/{dest_repo}:{attachment_tag(img.digest)}"], check=True)
    back = skopeo_dir(registry, dest_repo, "v1", work / "back", attachments_d)
    assert (back / "signature-1").read_bytes() == (src / "signature-1").read_bytes()
    # And it verifies there, for the identity it was signed with.
    policy = policy_file(work, keys.a.pub, identity={
        "type": "exactReference", "dockerReference": f"{registry.addr}/{repo}:v1"})
    v = regfs("verify", "--policy", policy, f"docker://{registry.addr}/{dest_repo}:v1")
    assert v.returncode == 0, v.stdout + v.stderr


def test_a_corrupt_signature_fails_cp_and_leaves_no_tag(
        registry, mounts, repo_name, regfs_ok, keys, work, attachments_d, oracle):
    repo = repo_name("sig")
    push(work, registry, repo, seed=106)
    sign(regfs_ok, keys.a.private, registry, repo)
    src = skopeo_dir(registry, repo, "v1", work / "skopeo", attachments_d)
    (src / "signature-1").write_bytes(b"\0sigstore-json\n{\"mimeType\": 1}")

    m = mounts()
    dest_repo = repo_name("corrupt")
    tag_dir = m.mnt / registry.addr / dest_repo / "v1"
    tag_dir.mkdir(parents=True)
    # The signature first: its close() fails and it holds the push whatever comes after.
    p = run("cp", src / "signature-1", tag_dir)
    assert p.returncode != 0, "cp of a corrupt signature succeeded"
    assert "Invalid argument" in p.stderr, p.stderr
    p = run("cp", "-r", f"{src}/.", tag_dir)
    assert p.returncode != 0, "cp -r with a corrupt signature succeeded"
    r = oracle.inspect(registry.ref(dest_repo, "v1"), "--raw", check=False)
    assert r.returncode != 0, "the tag exists though a signature was corrupt"
    assert "signature-1" in m.log_text(), m.diag()


# ---- (d) policy= --------------------------------------------------------------------------------

def test_policy_mount_is_a_verified_only_view(
        registry, mounts, repo_name, regfs_ok, keys, work):
    repo = repo_name("sig")
    signed = push(work, registry, repo, seed=107, tag="signed")
    unsigned = push(work, registry, repo, seed=108, tag="unsigned")
    push(work, registry, repo, seed=109, tag="other")
    sign(regfs_ok, keys.a.private, registry, repo, "signed")
    sign(regfs_ok, keys.b.private, registry, repo, "other")
    policy = policy_file(work, keys.a.pub)

    m = mounts(f"policy={policy}", "tag_ttl=600")
    d = m.image(registry.addr, repo, "signed")
    assert (d / "manifest.json").read_bytes() == signed.manifest
    layer = d / hexof(signed.layers[0].digest)
    assert layer.read_bytes() == signed.layers[0].data
    verified = os.getxattr(d, "user.regfs.verified").decode()
    assert "a.pub" in verified, verified
    assert "user.regfs.verified" in os.listxattr(d)
    # A second read of the accepted image: no request.
    before = m.stats()["requests"]
    assert (d / "manifest.json").read_bytes() == signed.manifest
    (d / "signature-1").read_bytes()
    assert layer.read_bytes() == signed.layers[0].data
    assert m.stats()["requests"] == before, "reading an accepted image again made requests"

    for tag in ("unsigned", "other"):
        u = m.image(registry.addr, repo, tag)
        assert "manifest.json" in os.listdir(u)  # readdir and stat still work
        os.stat(u / "manifest.json")
        expect_errno(errno.EACCES, (u / "manifest.json").read_bytes)
        expect_errno(errno.EACCES, (u / "version").read_bytes)
        expect_errno(errno.ENODATA, os.getxattr, u, "user.regfs.verified")
        assert "user.regfs.verified" not in os.listxattr(u)
    layer = m.image(registry.addr, repo, "unsigned") / hexof(unsigned.layers[0].digest)
    expect_errno(errno.EACCES, layer.read_bytes)
    assert "policy" in m.log_text(), m.diag()


def test_without_policy_nothing_is_verified(registry, mounts, repo_name, work):
    repo = repo_name("sig")
    push(work, registry, repo, seed=110)
    m = mounts()
    d = m.image(registry.addr, repo, "v1")
    assert "user.regfs.verified" not in os.listxattr(d)
    expect_errno(errno.ENODATA, os.getxattr, d, "user.regfs.verified")


def test_a_bad_policy_file_fails_the_mount(regfs, work):
    bad = work / "bad.json"
    bad.write_text('{"default": [{"type": "nosuch"}]}')
    mnt = work / "mnt"
    mnt.mkdir()
    try:
        p = regfs("mount", "-o", f"cache_dir={work / 'cache'},policy={bad}", mnt)
        assert p.returncode != 0
        assert "policy" in p.stderr, p.stderr
    finally:
        lazy_unmount(mnt)  # a mount that should not have happened is not left behind


# ---- (e) registries.d ---------------------------------------------------------------------------

def test_registries_d_turns_attachments_off(registry, mounts, repo_name, regfs_ok, keys, work):
    repo = repo_name("sig")
    off_repo = repo_name("off")
    push(work, registry, repo, seed=111)
    push(work, registry, off_repo, seed=111)
    sign(regfs_ok, keys.a.private, registry, repo)
    sign(regfs_ok, keys.a.private, registry, off_repo)
    home = work / "home"
    rd = home / ".config" / "containers" / "registries.d"
    rd.mkdir(parents=True)
    (rd / "off.yaml").write_text(
        f"docker:\n  {registry.addr}/{off_repo}:\n    use-sigstore-attachments: false\n")
    m = mounts(env={"HOME": str(home)})
    assert signature_names(m.image(registry.addr, repo, "v1")) == ["signature-1"]
    off = m.image(registry.addr, off_repo, "v1")
    assert signature_names(off) == []
    assert not (off / "signature-1").exists()
