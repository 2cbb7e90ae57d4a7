"""GPG simple signing in copy and verify, with registries.d lookaside storage, against
skopeo 1.9.3: what regfs signs skopeo accepts under a signedBy policy, and what skopeo signs
regfs verify accepts. GnuPG runs in a temporary home; the user's keyring is never touched."""

import json
import subprocess

import pytest

from testlib import images, tools


@pytest.fixture
def gpg(work):
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home)}

    def run(*args, **kw):
        return tools.run(["gpg", "--batch", "--yes", *args], env=env, check=True, **kw)

    run("--passphrase", "", "--quick-gen-key", "regfs test <test@example.com>", "default",
        "default", "never")
    colons = run("--list-keys", "--with-colons").stdout
    fpr = next(ln.split(":")[9] for ln in colons.splitlines() if ln.startswith("fpr:"))
    pub = work / "pub.gpg"
    pub.write_bytes(run("--export", fpr, binary=True).stdout)
    yield type("Gpg", (), {"env": env, "fpr": fpr, "pub": pub, "home": home})
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture
def lookaside(work):
    """registries.d with a file:// lookaside for every docker image."""
    store = work / "sigstore"
    store.mkdir()
    d = work / "registries.d"
    d.mkdir()
    (d / "default.yaml").write_text(
        f"default-docker:\n  lookaside: file://{store}\n  lookaside-staging: file://{store}\n")
    return type("Lookaside", (), {"dir": d, "store": store})


def signed_by(work, pub):
    path = work / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "signedBy", "keyType": "GPGKeys",
                                             "keyPath": str(pub)}]}))
    return path


def test_regfs_signs_skopeo_verifies(regfs_ok, registry, work, repo_name, gpg, lookaside):
    repo = repo_name("gpg")
    img = images.pushed_image(work / "img", registry, repo, "v1", seed=21)
    dst = repo_name("gpgsigned")
    regfs_ok("--registries.d", lookaside.dir, "copy", "--sign-by", gpg.fpr,
             registry.ref(repo, "v1"), registry.ref(dst, "v1"), env=gpg.env)
    # containers/image's lookaside layout: <repo>@sha256=<hex>/signature-1
    sig = lookaside.store / f"{dst}@sha256={img.digest.split(':')[1]}" / "signature-1"
    assert sig.is_file(), sorted(p.relative_to(lookaside.store) for p in
                                 lookaside.store.rglob("*"))
    policy = signed_by(work, gpg.pub)
    tools.skopeo_ok("--policy", policy, "--registries.d", lookaside.dir, "copy", "-q",
                    "--src-tls-verify=false", registry.ref(dst, "v1"), f"dir:{work / 'out'}")
    # The oracle can say no: it refuses the unsigned source under the same policy.
    p = tools.skopeo("--policy", policy, "--registries.d", lookaside.dir, "copy", "-q",
                     "--src-tls-verify=false", registry.ref(repo, "v1"), f"dir:{work / 'out2'}")
    assert p.returncode != 0 and "rejected" in p.stderr.lower(), p.stderr


def test_skopeo_signs_regfs_verifies(regfs, regfs_ok, registry, work, repo_name, gpg, lookaside):
    repo = repo_name("gpg")
    img = images.pushed_image(work / "img", registry, repo, "v1", seed=22)
    dst = repo_name("skopeosigned")
    tools.skopeo_ok("--registries.d", lookaside.dir, "copy", "-q", "--src-tls-verify=false",
                    "--dest-tls-verify=false", "--sign-by", gpg.fpr, registry.ref(repo, "v1"),
                    registry.ref(dst, "v1"), env=gpg.env)
    policy = signed_by(work, gpg.pub)
    p = regfs_ok("verify", "--policy", policy, "--registries.d", lookaside.dir,
                 registry.ref(dst, "v1"))
    assert "signature 1 (simple signing): verified" in p.stdout, p.stdout
    assert gpg.fpr in p.stdout.splitlines()[-1], p.stdout
    # regfs copy enforces it, and carries the signature to a dir: copy as skopeo does.
    regfs_ok("--policy", policy, "--registries.d", lookaside.dir, "copy",
             registry.ref(dst, "v1"), f"dir:{work / 'regfs'}")
    tools.skopeo_ok("--policy", policy, "--registries.d", lookaside.dir, "copy", "-q",
                    "--src-tls-verify=false", registry.ref(dst, "v1"), f"dir:{work / 'skopeo'}")
    assert tools.tree_diff(work / "skopeo", work / "regfs") == ""
    assert (work / "regfs" / "signature-1").is_file()
    # The unsigned source is rejected.
    p = regfs("verify", "--policy", policy, "--registries.d", lookaside.dir,
              registry.ref(repo, "v1"))
    assert p.returncode == 1, p.stdout


def test_unwritable_lookaside_leaves_no_tag(regfs, registry, work, repo_name, gpg):
    """A lookaside regfs can only read (http://) can't take the new signature: the copy fails
    with the reason, after its blobs but before the tag, so no image appears."""
    repo = repo_name("gpg")
    images.pushed_image(work / "img", registry, repo, "v1", seed=23)
    d = work / "http.d"
    d.mkdir()
    (d / "default.yaml").write_text("default-docker:\n  lookaside: http://127.0.0.1:9/sigs\n")
    dst = repo_name("nowhere")
    p = regfs("--registries.d", d, "copy", "--sign-by", gpg.fpr, registry.ref(repo, "v1"),
              registry.ref(dst, "v1"), env=gpg.env)
    assert p.returncode == 1 and "http" in p.stderr, p.stderr
    assert registry.tags(dst) == []
