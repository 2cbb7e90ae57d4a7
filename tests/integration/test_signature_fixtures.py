"""The cosign-made signature fixtures (tests/fixtures/sigstore, README.md there) get their
expected verdicts from `regfs verify`, read from a dir: source and from a registry.

The fixtures hold manifests without their blobs, which no registry accepts by a push, so the
registry case puts each manifest into docker-registry's storage directly and pushes the
signatures as a cosign attachment over the registry API (blobs, config, manifest), as cosign
would have."""

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sigstore"
SAMPLE = "192.168.64.2:5000/cosign-signed-single-sample"


def repo_rule(repo):
    return {"type": "exactRepository", "dockerRepository": repo}


# fixture, public key, identity rule, accepted
CASES = [
    ("dir-img-cosign-valid", "cosign.pub", repo_rule(SAMPLE), True),
    ("dir-img-cosign-valid-2", "cosign.pub", repo_rule(SAMPLE), True),
    ("dir-img-cosign-valid-with-tag", "cosign.pub",
     {"type": "exactReference", "dockerReference": "192.168.64.2:5000/skopeo-signed:tag"}, True),
    ("dir-img-cosign-key-rekor-valid", "cosign2.pub",
     repo_rule("192.168.64.2:5000/cosign-signed/key-1"), True),
    ("dir-img-cosign-mixed", "cosign.pub", repo_rule(SAMPLE), True),
    ("dir-img-cosign-fulcio-rekor-valid", "cosign.pub",
     repo_rule("192.168.64.2:5000/cosign-signed/fulcio-rekor-1"), False),
    ("dir-img-cosign-pki-valid", "cosign.pub", repo_rule("localhost:5000/test"), False),
    ("dir-img-cosign-modified-manifest", "cosign.pub", repo_rule(SAMPLE), False),
    ("dir-img-cosign-manifest-digest-error", "cosign.pub", repo_rule(SAMPLE), False),
    ("dir-img-cosign-other-attachment", "cosign.pub", repo_rule(SAMPLE), False),
]


def policy(work, transport, key, identity):
    path = work / f"policy-{transport}.json"
    path.write_text(json.dumps({
        "default": [{"type": "reject"}],
        "transports": {transport: {"": [{"type": "sigstoreSigned",
                                         "keyPath": str(FIXTURES / key),
                                         "signedIdentity": identity}]}}}))
    return path


def verdict_lines(p):
    return p.stdout.splitlines()


@pytest.mark.parametrize("name,key,identity,accepted", CASES, ids=[c[0] for c in CASES])
def test_fixture_from_dir(regfs, work, name, key, identity, accepted):
    p = regfs("verify", "--policy", policy(work, "dir", key, identity), f"dir:{FIXTURES / name}")
    assert p.returncode == (0 if accepted else 1), p.stdout + p.stderr
    lines = verdict_lines(p)
    n = len(list((FIXTURES / name).glob("signature-*")))
    assert sum(1 for ln in lines if ln.strip().startswith("signature ")) == n, p.stdout
    assert ("accepted by" in lines[-1]) == accepted, p.stdout


def test_reasons_name_the_cause(regfs, work):
    # A manifest changed after signing: the digests differ.
    p = regfs("verify", "--policy", policy(work, "dir", "cosign.pub", repo_rule(SAMPLE)),
              f"dir:{FIXTURES / 'dir-img-cosign-modified-manifest'}")
    assert p.returncode == 1 and "digest" in p.stdout, p.stdout
    # A key the policy does not name.
    d = work / "unknown"
    d.mkdir()
    shutil.copy(FIXTURES / "dir-img-cosign-valid" / "manifest.json", d)
    shutil.copy(FIXTURES / "unknown-cosign-key.signature", d / "signature-1")
    p = regfs("verify", "--policy", policy(work, "dir", "cosign.pub", repo_rule(SAMPLE)),
              f"dir:{d}")
    assert p.returncode == 1 and "key" in p.stdout, p.stdout
    # An RSA key can't have made these ECDSA signatures.
    p = regfs("verify", "--policy", policy(work, "dir", "some-rsa-key.pub", repo_rule(SAMPLE)),
              f"dir:{FIXTURES / 'dir-img-cosign-valid'}")
    assert p.returncode == 1, p.stdout
    # A valid signature for an identity the policy does not accept.
    p = regfs("verify", "--policy",
              policy(work, "dir", "cosign.pub", repo_rule("192.168.64.2:5000/something-else")),
              f"dir:{FIXTURES / 'dir-img-cosign-valid'}")
    assert p.returncode == 1 and SAMPLE in p.stdout, p.stdout
    # A signature without a manifest is an error, not a verdict.
    p = regfs("verify", "--policy", policy(work, "dir", "cosign.pub", repo_rule(SAMPLE)),
              f"dir:{FIXTURES / 'dir-img-cosign-no-manifest'}")
    assert p.returncode == 1 and "manifest.json" in p.stderr, p.stdout + p.stderr


# ---- the same fixtures in a registry --------------------------------------------------------

def plant_manifest(registry, repo, tag, data):
    """Puts manifest bytes into docker-registry's filesystem storage under repo:tag."""
    hexd = hashlib.sha256(data).hexdigest()
    root = Path(registry.workdir) / "storage" / "docker" / "registry" / "v2"
    blob = root / "blobs" / "sha256" / hexd[:2] / hexd / "data"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    manifests = root / "repositories" / repo / "_manifests"
    for link in (manifests / "revisions" / "sha256" / hexd / "link",
                 manifests / "tags" / tag / "current" / "link",
                 manifests / "tags" / tag / "index" / "sha256" / hexd / "link"):
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(f"sha256:{hexd}")
    return f"sha256:{hexd}"


def push_blob(registry, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = registry.get(f"/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    assert r.status == 202, (r.status, r.body)
    loc = r.headers["Location"]
    loc = loc[loc.index("/v2/"):] if "://" in loc else loc
    sep = "&" if "?" in loc else "?"
    r = registry.get(f"{loc}{sep}digest={digest}", method="PUT", data=data,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, (r.status, r.body)
    return {"digest": digest, "size": len(data)}


def push_cosign_attachment(registry, repo, manifest_digest, sig_files):
    layers = []
    for f in sig_files:
        sig = json.loads(f.read_bytes()[len(b"\0sigstore-json\n"):])
        payload = base64.b64decode(sig["payload"])
        desc = push_blob(registry, repo, payload)
        layers.append({"mediaType": sig["mimeType"], **desc, "annotations": sig["annotations"]})
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": [d["digest"] for d in layers]}}).encode()
    cdesc = push_blob(registry, repo, config)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      **cdesc},
                           "layers": layers}).encode()
    tag = manifest_digest.replace(":", "-") + ".sig"
    r = registry.get(f"/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status == 201, (r.status, r.body)


REGISTRY_CASES = [c for c in CASES if c[0] != "dir-img-cosign-manifest-digest-error"]


@pytest.mark.parametrize("name,key,identity,accepted", REGISTRY_CASES,
                         ids=[c[0] for c in REGISTRY_CASES])
def test_fixture_from_registry(regfs, registry, work, repo_name, name, key, identity, accepted):
    """(manifest-digest-error's manifest.json is not a manifest, which a registry can't
    serve: it is checked from dir: only.)"""
    repo = repo_name("fixture")
    digest = plant_manifest(registry, repo, "v1", (FIXTURES / name / "manifest.json").read_bytes())
    sigs = sorted((FIXTURES / name).glob("signature-*"))
    # Beside the manifest under the tag, where a lookup finds them (for modified-manifest, the
    # manifest changed after signing, so its digest is not the one signed).
    push_cosign_attachment(registry, repo, digest, sigs)
    p = regfs("verify", "--tls-verify=false", "--policy",
              policy(work, "docker", key, identity), registry.ref(repo, "v1"))
    assert p.returncode == (0 if accepted else 1), p.stdout + p.stderr
    lines = verdict_lines(p)
    assert lines[0].endswith(digest), p.stdout
    # Every layer of the attachment is a signature to the verifier, whatever its MIME type.
    assert sum(1 for ln in lines if ln.strip().startswith("signature ")) == len(sigs), p.stdout
    assert ("accepted by" in lines[-1]) == accepted, p.stdout
