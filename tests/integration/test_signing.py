"""Sigstore signing and verification in the commands: copy --sign-by-sigstore-private-key,
regfs sign, regfs verify, signatures carried by copy and sync, and the policy copy enforces.

What regfs signs is checked by an independent verifier written here (PyNaCl/hashlib for the
key, cryptography for ECDSA, the payload rebuilt field by field), and by skopeo 1.9.3, which
reads the cosign attachment regfs writes and stores it as signature-N in a dir: copy: those
files must equal regfs's byte for byte."""

import base64
import hashlib
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from testlib import images, tools

from test_generate_key import decrypt_private_key

PASS = "sign-test-passphrase"
SIG_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch):
    monkeypatch.setenv("COSIGN_PASSWORD", PASS)


@pytest.fixture
def key(regfs_ok, work):
    """A key pair made by regfs generate-key: .private, .pub and the decrypted private key."""
    prefix = work / "key"
    regfs_ok("generate-key", "--output-prefix", prefix)
    private = prefix.with_name("key.private")
    return type("Key", (), {"private": private, "pub": prefix.with_name("key.pub"),
                            "decrypted": decrypt_private_key(private, PASS)})


@pytest.fixture
def key2(regfs_ok, work):
    prefix = work / "other"
    regfs_ok("generate-key", "--output-prefix", prefix)
    return type("Key", (), {"private": prefix.with_name("other.private"),
                            "pub": prefix.with_name("other.pub")})


def policy_file(work, name, requirement, scope=None, transport="docker"):
    """A policy accepting only what `requirement` accepts (for `scope`, else everywhere)."""
    if scope is None:
        doc = {"default": [requirement]}
    else:
        doc = {"default": [{"type": "reject"}], "transports": {transport: {scope: [requirement]}}}
    path = work / name
    path.write_text(json.dumps(doc))
    return path


def sigstore(pub, identity=None):
    req = {"type": "sigstoreSigned", "keyPath": str(pub)}
    if identity:
        req["signedIdentity"] = identity
    return req


EMPTY_CONFIG = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def attachment_tag(digest):
    return digest.replace(":", "-") + ".sig"


def attachment(registry, repo, digest):
    """The attachment manifest, its config and its layers' bytes; None when absent."""
    r = registry.manifest(repo, attachment_tag(digest))
    if r.status == 404:
        return None
    assert r.status == 200, (r.status, r.body)
    manifest = json.loads(r.body)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"

    def blob(desc):
        b = registry.get(f"/v2/{repo}/blobs/{desc['digest']}")
        assert b.status == 200, b.status
        assert "sha256:" + hashlib.sha256(b.body).hexdigest() == desc["digest"]
        assert len(b.body) == desc["size"]
        return b.body

    config = json.loads(blob(manifest["config"]))
    layers = [blob(d) for d in manifest["layers"]]
    # The config is OCI's empty descriptor, shared by every attachment of the registry.
    assert manifest["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                                  "digest": EMPTY_CONFIG, "size": 2}
    assert config == {}
    return manifest, config, layers


def check_signature(pub_path, mime, payload, annotations, identity, digest):
    """An independent check of one sigstore signature: the payload is containers/image's
    'cosign container image signature' for (identity, digest), signed by pub_path's key."""
    assert mime == SIG_TYPE
    doc = json.loads(payload)
    assert list(doc) == ["critical", "optional"], doc
    assert doc["critical"] == {"identity": {"docker-reference": identity},
                               "image": {"docker-manifest-digest": digest},
                               "type": "cosign container image signature"}, doc
    # As containers/image writes it: who signed, and when (whole seconds since the epoch).
    assert set(doc["optional"]) == {"creator", "timestamp"}, doc
    assert isinstance(doc["optional"]["timestamp"], int)
    public = serialization.load_pem_public_key(pub_path.read_bytes())
    der = base64.b64decode(annotations[SIG_ANNOTATION], validate=True)
    public.verify(der, payload, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature


def pushed(work, registry, repo_name, seed=1, **make):
    repo = repo_name("sig")
    img = images.pushed_image(work / f"img{seed}", registry, repo, "v1", seed=seed, **make)
    return repo, img


def sig_files(d):
    return sorted(p.name for p in d.iterdir() if "signature-" in p.name)


# ---- signing in copy ---------------------------------------------------------------------

def test_copy_signs_what_it_writes(regfs_ok, registry, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    dst = repo_name("signed")
    regfs_ok("copy", "--sign-by-sigstore-private-key", key.private,
             registry.ref(repo, "v1"), registry.ref(dst, "v1"))
    assert registry.manifest_digest(dst, "v1") == img.digest
    manifest, _, layers = attachment(registry, dst, img.digest)
    assert len(layers) == 1
    desc = manifest["layers"][0]
    check_signature(key.pub, desc["mediaType"], layers[0], desc["annotations"],
                    f"{registry.addr}/{dst}:v1", img.digest)
    # The signature is the key's: a different key does not verify it.
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(InvalidSignature):
        other.verify(base64.b64decode(desc["annotations"][SIG_ANNOTATION]), layers[0],
                     ec.ECDSA(hashes.SHA256()))
    # Nothing signed at the source.
    assert attachment(registry, repo, img.digest) is None


def test_sign_identity_and_passphrase_file(regfs_ok, regfs, registry, work, repo_name, key,
                                           monkeypatch):
    monkeypatch.delenv("COSIGN_PASSWORD")
    repo, img = pushed(work, registry, repo_name)
    dst = repo_name("signed")
    pw = work / "pw"
    pw.write_text(PASS + "\n")
    regfs_ok("copy", "--sign-by-sigstore-private-key", key.private, "--sign-passphrase-file", pw,
             "--sign-identity", "example.com/product/app:1.0",
             registry.ref(repo, "v1"), registry.ref(dst, "v1"))
    manifest, _, layers = attachment(registry, dst, img.digest)
    check_signature(key.pub, SIG_TYPE, layers[0], manifest["layers"][0]["annotations"],
                    "example.com/product/app:1.0", img.digest)
    # A wrong passphrase writes nothing.
    pw.write_text("wrong\n")
    dst2 = repo_name("signed")
    p = regfs("copy", "--sign-by-sigstore-private-key", key.private, "--sign-passphrase-file", pw,
              registry.ref(repo, "v1"), registry.ref(dst2, "v1"))
    assert p.returncode == 1
    assert "passphrase" in p.stderr.lower(), p.stderr
    assert registry.tags(dst2) == []
    # A --sign-identity that is not canonical is refused before anything is written.
    pw.write_text(PASS + "\n")
    p = regfs("copy", "--sign-by-sigstore-private-key", key.private, "--sign-passphrase-file",
              work / "pw", "--sign-identity", "busybox", registry.ref(repo, "v1"),
              registry.ref(dst2, "v1"))
    assert p.returncode != 0 and "canonical" in p.stderr, p.stderr
    assert registry.tags(dst2) == []


def test_copy_to_dir_signs_with_identity_only(regfs_ok, regfs, registry, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    p = regfs("copy", "--sign-by-sigstore-private-key", key.private, registry.ref(repo, "v1"),
              f"dir:{work / 'nope'}")
    assert p.returncode == 1 and "--sign-identity" in p.stderr, p.stderr
    assert not (work / "nope").exists()
    regfs_ok("copy", "--sign-by-sigstore-private-key", key.private, "--sign-identity",
             "example.com/app:1", registry.ref(repo, "v1"), f"dir:{work / 'd'}")
    assert sig_files(work / "d") == ["signature-1"]
    blob = (work / "d" / "signature-1").read_bytes()
    assert blob.startswith(b"\0sigstore-json\n")
    sig = json.loads(blob[len(b"\0sigstore-json\n"):])
    assert list(sig) == ["mimeType", "payload", "annotations"]
    check_signature(key.pub, sig["mimeType"], base64.b64decode(sig["payload"]),
                    sig["annotations"], "example.com/app:1", img.digest)


# ---- skopeo reads what regfs writes ------------------------------------------------------

def test_skopeo_copies_regfs_signatures_byte_for_byte(regfs_ok, registry, work, repo_name, key,
                                                      attachments_d):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    tools.skopeo_ok("--registries.d", attachments_d, "copy", "-q", "--src-tls-verify=false",
                    registry.ref(repo, "v1"), f"dir:{work / 'skopeo'}")
    regfs_ok("copy", registry.ref(repo, "v1"), f"dir:{work / 'regfs'}")
    assert sig_files(work / "skopeo") == ["signature-1"]
    assert sig_files(work / "regfs") == ["signature-1"]
    assert tools.tree_diff(work / "skopeo", work / "regfs") == ""
    # And back: skopeo's dir: copy (with its signature) pushed by regfs keeps the signature.
    dst = repo_name("back")
    regfs_ok("copy", f"dir:{work / 'skopeo'}", registry.ref(dst, "v1"))
    _, _, layers = attachment(registry, dst, img.digest)
    _, _, source_layers = attachment(registry, repo, img.digest)
    assert layers == source_layers


# ---- regfs sign ----------------------------------------------------------------------------

def test_sign_in_place_appends(regfs_ok, registry, work, repo_name, key, key2):
    repo, img = pushed(work, registry, repo_name)
    tags_before = registry.tags(repo)
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    regfs_ok("sign", "--key", key2.private, registry.ref(repo, "v1"))
    manifest, config, layers = attachment(registry, repo, img.digest)
    assert len(layers) == 2
    check_signature(key.pub, SIG_TYPE, layers[0], manifest["layers"][0]["annotations"],
                    f"{registry.addr}/{repo}:v1", img.digest)
    check_signature(key2.pub, SIG_TYPE, layers[1], manifest["layers"][1]["annotations"],
                    f"{registry.addr}/{repo}:v1", img.digest)
    # The image itself is untouched; only the attachment tag is new.
    assert registry.manifest_digest(repo, "v1") == img.digest
    assert sorted(registry.tags(repo)) == sorted(tags_before + [attachment_tag(img.digest)])


def test_copy_carries_signatures_without_duplicates(regfs_ok, registry, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    dst = repo_name("carried")
    for _ in range(2):
        regfs_ok("copy", registry.ref(repo, "v1"), registry.ref(dst, "v1"))
    src_att, dst_att = attachment(registry, repo, img.digest), attachment(registry, dst, img.digest)
    assert dst_att[2] == src_att[2]
    assert [d["annotations"] for d in dst_att[0]["layers"]] == \
        [d["annotations"] for d in src_att[0]["layers"]]
    # --remove-signatures drops them.
    dst2 = repo_name("removed")
    regfs_ok("copy", "--remove-signatures", registry.ref(repo, "v1"), registry.ref(dst2, "v1"))
    assert registry.manifest_digest(dst2, "v1") == img.digest
    assert attachment(registry, dst2, img.digest) is None


def test_signed_image_to_oci_needs_remove_signatures(regfs_ok, regfs, registry, work, repo_name,
                                                     key):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    p = regfs("copy", registry.ref(repo, "v1"), f"oci:{work / 'layout'}:v1")
    assert p.returncode == 1
    assert "signatures" in p.stderr and "--remove-signatures" in p.stderr, p.stderr
    assert not (work / "layout" / "index.json").exists()
    regfs_ok("copy", "--remove-signatures", registry.ref(repo, "v1"), f"oci:{work / 'layout'}:v1")


def test_signing_adds_one_manifest_put_and_one_blob_per_signature(regfs_ok, registry, work,
                                                                  repo_name, key, key2, proxy):
    """Counted at a proxy: a signed copy to a destination that has the image already costs the
    attachment's manifest PUT and one upload, its payload, beyond the unsigned copy's requests.
    The attachment's config is the empty one, uploaded once per registry: the first signature
    (nothing known about the registry) uploads it, later ones mount it from where it went, or
    find it in the repository."""
    env = {"XDG_CACHE_HOME": str(work / "cache")}  # what this test's commands learn, only
    repo, img = pushed(work, registry, repo_name)

    def signed_copy(dst, signing_key):
        start = len(proxy.log)
        regfs_ok("copy", "--dest-tls-verify=false", "--sign-by-sigstore-private-key",
                 signing_key.private, "--sign-identity", f"{registry.addr}/{dst}:v1",
                 registry.ref(repo, "v1"), f"docker://{proxy.addr}/{dst}:v1", env=env)
        reqs = proxy.log[start:]
        puts = [e.path.rsplit("/", 1)[1] for e in reqs
                if e.method == "PUT" and "/manifests/" in e.path]
        assert puts == [attachment_tag(img.digest), "v1"], puts
        posts = [e.path for e in reqs if e.method == "POST" and "/blobs/uploads/" in e.path]
        uploads = [p for p in posts if "mount=" not in p]
        mounts = [p for p in posts if "mount=" in p and EMPTY_CONFIG.split(":")[1] in p]
        return len(uploads), len(mounts)

    dsts = [repo_name("counted"), repo_name("counted")]
    for dst in dsts:
        regfs_ok("copy", registry.ref(repo, "v1"), registry.ref(dst, "v1"), env=env)
    # Nothing known of the registry's attachments: the payload and the 2-byte empty config.
    assert signed_copy(dsts[0], key) == (2, 0)
    # Another repository: the payload; the config mounted from where it went.
    assert signed_copy(dsts[1], key) == (1, 1)
    # A second signature of the same image: the payload alone.
    assert signed_copy(dsts[0], key2) == (1, 0)
    manifest, _, layers = attachment(registry, dsts[0], img.digest)
    assert len(layers) == 2


# ---- regfs verify and the policy ----------------------------------------------------------

def test_verify_reports_each_signature(regfs_ok, regfs, registry, work, repo_name, key, key2):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key2.private, registry.ref(repo, "v1"))
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    policy = policy_file(work, "p.json", sigstore(key.pub))
    p = regfs_ok("verify", "--policy", policy, registry.ref(repo, "v1"))
    lines = p.stdout.splitlines()
    assert lines[0] == f"{registry.ref(repo, 'v1')} {img.digest}", p.stdout
    assert "signature 1 (sigstore): not accepted" in lines[1], p.stdout
    assert "signature 2 (sigstore): verified" in lines[2], p.stdout
    assert str(key.pub) in lines[-1] and "accepted" in lines[-1], p.stdout
    # The same image under a policy naming only the other key's absent: rejected, exit 1.
    (work / "k3").mkdir()
    regfs_ok("generate-key", "--output-prefix", work / "k3" / "k")
    policy = policy_file(work, "p3.json", sigstore(work / "k3" / "k.pub"))
    p = regfs("verify", "--policy", policy, registry.ref(repo, "v1"))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "rejected" in p.stdout.splitlines()[-1], p.stdout


def test_verify_unsigned_and_reject(regfs, registry, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    p = regfs("verify", "--policy", policy_file(work, "p.json", sigstore(key.pub)),
              registry.ref(repo, "v1"))
    assert p.returncode == 1
    assert "no signatures" in p.stdout, p.stdout
    p = regfs("verify", "--policy", policy_file(work, "r.json", {"type": "reject"}),
              registry.ref(repo, "v1"))
    assert p.returncode == 1 and "reject" in p.stdout.lower(), p.stdout
    p = regfs("verify", "--policy",
              policy_file(work, "a.json", {"type": "insecureAcceptAnything"}),
              registry.ref(repo, "v1"))
    assert p.returncode == 0, p.stdout + p.stderr


def test_verify_identity_rules(regfs_ok, regfs, registry, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key.private, "--sign-identity", "example.com/app:1",
             registry.ref(repo, "v1"))
    ref = registry.ref(repo, "v1")
    # The default (matchRepoDigestOrExact) refuses a signature claiming another image.
    p = regfs("verify", "--policy", policy_file(work, "d.json", sigstore(key.pub)), ref)
    assert p.returncode == 1
    assert "example.com/app:1" in p.stdout, p.stdout
    ok = {"type": "exactReference", "dockerReference": "example.com/app:1"}
    regfs_ok("verify", "--policy", policy_file(work, "e.json", sigstore(key.pub, ok)), ref)
    remap = {"type": "remapIdentity", "prefix": f"{registry.addr}/{repo}",
             "signedPrefix": "example.com/app"}
    p = regfs("verify", "--policy", policy_file(work, "m.json", sigstore(key.pub, remap)),
              registry.ref(repo, "1"))
    assert p.returncode == 1  # there is no tag "1" here: reading fails first
    regfs_ok("copy", ref, registry.ref(repo, "1"))
    regfs_ok("verify", "--policy", policy_file(work, "m.json", sigstore(key.pub, remap)),
             registry.ref(repo, "1"))


def test_copy_enforces_policy_before_writing(regfs_ok, regfs, registry, work, repo_name, key,
                                             key2):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key2.private, registry.ref(repo, "v1"))
    dst = repo_name("guarded")
    policy = policy_file(work, "p.json", sigstore(key.pub), scope=f"{registry.addr}/{repo}")
    p = regfs("--policy", policy, "copy", registry.ref(repo, "v1"), registry.ref(dst, "v1"))
    assert p.returncode == 1
    assert "rejected" in p.stderr.lower(), p.stderr
    assert registry.tags(dst) == []
    p = regfs("copy", "--policy", policy, registry.ref(repo, "v1"), f"dir:{work / 'd'}")
    assert p.returncode == 1 and not (work / "d").exists()
    # Signed by the key the policy names: copied, signatures and all.
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    regfs_ok("copy", "--policy", policy, registry.ref(repo, "v1"), registry.ref(dst, "v1"))
    assert registry.manifest_digest(dst, "v1") == img.digest
    assert len(attachment(registry, dst, img.digest)[2]) == 2
    # --insecure-policy, skopeo's global flag, accepts anything.
    other = repo_name("unsigned")
    images.pushed_image(work / "u", registry, other, "v1", seed=5)
    regfs_ok("--insecure-policy", "copy", registry.ref(other, "v1"), f"dir:{work / 'u2'}")


def test_policy_file_strict_and_unsupported(regfs, registry, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    bad = work / "bad.json"
    bad.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything", "extra": 1}]}))
    p = regfs("copy", "--policy", bad, registry.ref(repo, "v1"), f"dir:{work / 'd'}")
    assert p.returncode == 1 and "extra" in p.stderr, p.stderr
    fulcio = work / "fulcio.json"
    fulcio.write_text(json.dumps({"default": [{
        "type": "sigstoreSigned",
        "fulcio": {"caPath": str(key.pub), "oidcIssuer": "https://example.com",
                   "subjectEmail": "a@example.com"},
        "rekorPublicKeyPath": str(key.pub)}]}))
    p = regfs("verify", "--policy", fulcio, registry.ref(repo, "v1"))
    assert p.returncode == 1 and "not supported" in p.stderr, p.stderr
    assert not (work / "d").exists()


def test_sync_carries_and_signs(regfs_ok, registry, registry2, work, repo_name, key, key2):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    regfs_ok("sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false",
             "--dest-tls-verify=false", "--sign-by-sigstore-private-key", key2.private,
             f"{registry.addr}/{repo}", f"{registry2.addr}/mirror")
    base = repo.rsplit("/", 1)[1]
    dst = f"mirror/{base}"
    assert registry2.manifest_digest(dst, "v1") == img.digest
    manifest, _, layers = attachment(registry2, dst, img.digest)
    assert len(layers) == 2  # the carried one and the new one
    check_signature(key.pub, SIG_TYPE, layers[0], manifest["layers"][0]["annotations"],
                    f"{registry.addr}/{repo}:v1", img.digest)
    check_signature(key2.pub, SIG_TYPE, layers[1], manifest["layers"][1]["annotations"],
                    f"{registry2.addr}/{dst}:v1", img.digest)


def test_sync_policy_refuses_unsigned(regfs, regfs_ok, registry, registry2, work, repo_name, key):
    repo, img = pushed(work, registry, repo_name)
    policy = policy_file(work, "p.json", sigstore(key.pub))
    p = regfs("sync", "--policy", policy, "--src", "docker", "--dest", "dir",
              "--src-tls-verify=false", f"{registry.addr}/{repo}", work / "out")
    assert p.returncode == 1, p.stderr
    assert "rejected" in p.stderr.lower(), p.stderr
    assert not any((work / "out").rglob("manifest.json")) if (work / "out").exists() else True


# ---- multi-platform images ----------------------------------------------------------------

def test_index_signatures(regfs_ok, regfs, registry, work, repo_name, key, key2):
    """The index's signatures go with the index (--all), an instance's with the instance; the
    policy accepts an index either by its own signatures or, for the instances copied, by
    theirs."""
    repo = repo_name("sigidx")
    idx = images.make_index(work / "idx", seed=31)
    images.push(idx.path, registry.addr, repo, "v1")
    amd64 = idx.instance("linux", "amd64")
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    regfs_ok("sign", "--key", key2.private, "--sign-identity", f"{registry.addr}/{repo}:v1",
             registry.ref(repo, amd64.digest))

    dst = repo_name("all")
    regfs_ok("copy", "--all", registry.ref(repo, "v1"), registry.ref(dst, "v1"))
    assert registry.manifest_digest(dst, "v1") == idx.digest
    assert attachment(registry, dst, idx.digest)[2] == attachment(registry, repo, idx.digest)[2]
    assert attachment(registry, dst, amd64.digest)[2] == \
        attachment(registry, repo, amd64.digest)[2]

    one = repo_name("one")
    regfs_ok("copy", registry.ref(repo, "v1"), registry.ref(one, "v1"))
    assert registry.manifest_digest(one, "v1") == amd64.digest
    manifest, _, layers = attachment(registry, one, amd64.digest)
    check_signature(key2.pub, SIG_TYPE, layers[0], manifest["layers"][0]["annotations"],
                    f"{registry.addr}/{repo}:v1", amd64.digest)
    assert len(layers) == 1  # the index's own signature is not the instance's

    # Only the amd64 instance is signed by key2: its copy passes a key2 policy, --all does not.
    policy = policy_file(work, "k2.json", sigstore(key2.pub))
    regfs_ok("copy", "--policy", policy, registry.ref(repo, "v1"), f"dir:{work / 'amd64'}")
    p = regfs("copy", "--all", "--policy", policy, registry.ref(repo, "v1"), f"dir:{work / 'x'}")
    assert p.returncode == 1 and "rejected" in p.stderr.lower(), p.stderr
    assert not (work / "x").exists()
    # The index's key accepts every instance.
    regfs_ok("copy", "--all", "--policy", policy_file(work, "k1.json", sigstore(key.pub)),
             registry.ref(repo, "v1"), f"dir:{work / 'all'}")
    assert sig_files(work / "all") == sorted(
        ["signature-1", f"{amd64.digest.split(':')[1]}.signature-1"])
    # A reduced index would have a new digest its signature doesn't cover.
    p = regfs("sync", "--src", "docker", "--dest", "dir", "--src-tls-verify=false", "--all",
              "--platform", "linux/amd64", f"{registry.addr}/{repo}", work / "reduced")
    assert p.returncode == 1 and "--remove-signatures" in p.stderr, p.stderr


def test_sign_dir_image(regfs_ok, regfs, registry, work, repo_name, key, key2):
    repo, img = pushed(work, registry, repo_name)
    regfs_ok("copy", registry.ref(repo, "v1"), f"dir:{work / 'd'}")
    p = regfs("sign", "--key", key.private, f"dir:{work / 'd'}")
    assert p.returncode == 2 and "--sign-identity" in p.stderr, p.stderr
    for k in (key, key2, key):  # the same key twice: ECDSA signatures differ, both are kept
        regfs_ok("sign", "--key", k.private, "--sign-identity", "example.com/app:1",
                 f"dir:{work / 'd'}")
    assert sig_files(work / "d") == ["signature-1", "signature-2", "signature-3"]
    rule = {"type": "exactReference", "dockerReference": "example.com/app:1"}
    p = regfs_ok("verify", "--policy",
                 policy_file(work, "p.json", sigstore(key2.pub, rule), scope="", transport="dir"),
                 f"dir:{work / 'd'}")
    assert "signature 2 (sigstore): verified" in p.stdout, p.stdout
    # Pushed back to a registry, the three signatures go with it.
    dst = repo_name("fromdir")
    regfs_ok("copy", f"dir:{work / 'd'}", registry.ref(dst, "v1"))
    assert len(attachment(registry, dst, img.digest)[2]) == 3


def test_sync_adds_signatures_made_since(regfs_ok, registry, registry2, work, repo_name, key,
                                         key2):
    """An image already at the destination is synced again only for signatures it lacks there;
    a destination whose attachment has more than the source (its own signature) is left alone,
    so a signing sync run twice does not sign twice."""
    repo, img = pushed(work, registry, repo_name)
    base = repo.rsplit("/", 1)[1]
    dst = f"mirror/{base}"
    flags = ["--src", "docker", "--dest", "docker", "--src-tls-verify=false",
             "--dest-tls-verify=false", "--report", work / "report.jsonl"]

    def sync(*extra):
        regfs_ok("sync", *flags, *extra, f"{registry.addr}/{repo}", f"{registry2.addr}/mirror")
        return [json.loads(ln)["action"] for ln in (work / "report.jsonl").read_text().splitlines()]

    assert sync() == ["copy"]
    assert attachment(registry2, dst, img.digest) is None
    assert sync() == ["skip"]
    regfs_ok("sign", "--key", key.private, registry.ref(repo, "v1"))
    assert sync() == ["update"]
    assert attachment(registry2, dst, img.digest)[2] == attachment(registry, repo, img.digest)[2]
    assert sync() == ["skip"]
    # The destination's own signature (key2) on top of the carried one: still up to date.
    regfs_ok("sign", "--key", key2.private, registry2.ref(dst, "v1"))
    assert sync("--sign-by-sigstore-private-key", key2.private) == ["skip"]
    assert len(attachment(registry2, dst, img.digest)[2]) == 2
    # To dir: the signature files count the same way.
    out = work / "out"
    dflags = ["--src", "docker", "--dest", "dir", "--src-tls-verify=false", "--report",
              work / "d.jsonl"]
    for want in (["copy"], ["skip"]):
        regfs_ok("sync", *dflags, f"{registry.addr}/{repo}", out)
        assert [json.loads(ln)["action"] for ln in
                (work / "d.jsonl").read_text().splitlines()] == want
    assert sig_files(out / f"{base}:v1") == ["signature-1"]
