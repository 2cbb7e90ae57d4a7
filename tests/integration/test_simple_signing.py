"""regfs standalone-sign and standalone-verify: GPG simple signing checked against skopeo
standalone-sign/-verify both ways, with keys made in a GnuPG home of the module's own (the
user's keyring is never read nor changed; its gpg-agent is stopped at the end)."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testlib import tools

PASSPHRASE = "correct horse battery"


def _gpg(home, *args, input=None):
    p = subprocess.run(["gpg", "--homedir", str(home), "--batch", *map(str, args)],
                       input=input, capture_output=True, timeout=120)
    assert p.returncode == 0, f"gpg {' '.join(map(str, args))}: {p.stderr.decode()}"
    return p.stdout


def _fingerprint(home, uid):
    out = _gpg(home, "--with-colons", "--list-secret-keys", uid).decode()
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="module")
def gnupg():
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    # Short: gpg-agent's socket path must fit in sockaddr_un.
    home = Path(tempfile.mkdtemp(prefix="rg-gpg-"))
    home.chmod(0o700)
    try:
        _gpg(home, "--passphrase", "", "--quick-gen-key", "regfs test <t@example.com>",
             "default", "default", "never")
        _gpg(home, "--pinentry-mode", "loopback", "--passphrase", PASSPHRASE,
             "--quick-gen-key", "regfs protected <p@example.com>", "default", "default", "never")
        yield type("GnuPG", (), {
            "home": home,
            "env": {"GNUPGHOME": str(home)},
            "plain": _fingerprint(home, "t@example.com"),
            "protected": _fingerprint(home, "p@example.com"),
        })
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"],
                       capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def manifest(work):
    m = work / "manifest.json"
    m.write_text(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": "sha256:" + "4" * 64},
        "layers": [],
    }))
    return m


def _digest(path):
    return tools.sha256_bytes(Path(path).read_bytes())


def _regfs(gnupg, *args):
    return tools.regfs(*args, env=gnupg.env)


def _skopeo(gnupg, *args):
    return tools.skopeo(*args, env=gnupg.env)


def _ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def test_regfs_signs_skopeo_verifies(gnupg, manifest, work):
    sig = work / "sig"
    p = _ok(_regfs(gnupg, "standalone-sign", manifest, "example.com/ns/repo:v1", gnupg.plain,
                   "-o", sig))
    assert p.stdout == ""
    v = _ok(_skopeo(gnupg, "standalone-verify", manifest, "example.com/ns/repo:v1",
                    gnupg.plain, sig))
    assert v.stdout == f"Signature verified, digest {_digest(manifest)}\n"


def test_skopeo_signs_regfs_verifies(gnupg, manifest, work):
    sig = work / "sig"
    _ok(_skopeo(gnupg, "standalone-sign", manifest, "example.com/ns/repo:v1", gnupg.plain,
                "-o", sig))
    v = _ok(_regfs(gnupg, "standalone-verify", manifest, "example.com/ns/repo:v1", gnupg.plain,
                   sig))
    expected = _ok(_skopeo(gnupg, "standalone-verify", manifest, "example.com/ns/repo:v1",
                           gnupg.plain, sig))
    assert v.stdout == expected.stdout == f"Signature verified, digest {_digest(manifest)}\n"


def test_payload_is_what_skopeo_writes(gnupg, manifest, work):
    """A non-armored OpenPGP message whose plaintext has skopeo's fields and layout."""
    ours, theirs = work / "ours", work / "theirs"
    _ok(_regfs(gnupg, "standalone-sign", manifest, "example.com/a:v1", gnupg.plain, "-o", ours))
    _ok(_skopeo(gnupg, "standalone-sign", manifest, "example.com/a:v1", gnupg.plain,
                "-o", theirs))
    assert not ours.read_bytes().startswith(b"-----BEGIN")
    assert ours.read_bytes()[0] & 0x80
    docs = [json.loads(_gpg(gnupg.home, "--decrypt", p)) for p in (ours, theirs)]
    for doc in docs:
        assert list(doc) == ["critical", "optional"]
        assert doc["critical"] == {
            "identity": {"docker-reference": "example.com/a:v1"},
            "image": {"docker-manifest-digest": _digest(manifest)},
            "type": "atomic container signature",
        }
        assert list(doc["critical"]) == ["identity", "image", "type"]
        assert sorted(doc["optional"]) == ["creator", "timestamp"]
        assert isinstance(doc["optional"]["timestamp"], int)


def test_reference_is_normalized_by_both(gnupg, manifest, work):
    sig = work / "sig"
    _ok(_regfs(gnupg, "standalone-sign", manifest, "busybox:1", gnupg.plain, "-o", sig))
    for tool in (_regfs, _skopeo):
        _ok(tool(gnupg, "standalone-verify", manifest, "docker.io/library/busybox:1",
                 gnupg.plain, sig))
        # No tag is not ":latest".
        assert tool(gnupg, "standalone-verify", manifest, "busybox", gnupg.plain,
                    sig).returncode != 0


@pytest.mark.parametrize("signer", ["regfs", "skopeo"])
@pytest.mark.parametrize("wrong", ["fingerprint", "reference", "manifest"])
def test_mismatch_is_refused_by_both(gnupg, manifest, work, signer, wrong):
    sig = work / "sig"
    sign = _regfs if signer == "regfs" else _skopeo
    _ok(sign(gnupg, "standalone-sign", manifest, "example.com/ns/repo:v1", gnupg.plain,
             "-o", sig))
    args = {"manifest": manifest, "ref": "example.com/ns/repo:v1", "fpr": gnupg.plain}
    if wrong == "fingerprint":
        args["fpr"] = gnupg.protected
        message = "is not accepted"
    elif wrong == "reference":
        args["ref"] = "example.com/ns/repo:v2"
        message = 'Docker reference "example.com/ns/repo:v1" does not match'
    else:
        other = work / "other.json"
        other.write_text(manifest.read_text() + "\n")
        args["manifest"] = other
        message = f'Signature for docker digest "{_digest(manifest)}" does not match'
    argv = ["standalone-verify", args["manifest"], args["ref"], args["fpr"], sig]
    ours = _regfs(gnupg, *argv)
    theirs = _skopeo(gnupg, *argv)
    assert theirs.returncode != 0
    assert ours.returncode == 1, ours.stderr
    assert ours.stdout == ""
    assert ours.stderr.startswith("regfs standalone-verify: verifying the signature: ")
    assert message in ours.stderr, ours.stderr


def test_tampered_signature_is_refused(gnupg, manifest, work):
    sig = work / "sig"
    _ok(_regfs(gnupg, "standalone-sign", manifest, "example.com/a", gnupg.plain, "-o", sig))
    data = bytearray(sig.read_bytes())
    data[len(data) // 2] ^= 0x01
    sig.write_bytes(bytes(data))
    for tool in (_regfs, _skopeo):
        p = tool(gnupg, "standalone-verify", manifest, "example.com/a", gnupg.plain, sig)
        assert p.returncode != 0, p.stdout
    garbage = work / "garbage"
    garbage.write_text("not a signature")
    p = _regfs(gnupg, "standalone-verify", manifest, "example.com/a", gnupg.plain, garbage)
    assert p.returncode == 1
    assert "regfs standalone-verify: verifying the signature:" in p.stderr


def test_passphrase_file(gnupg, manifest, work):
    # Nothing cached in gpg-agent from an earlier use of the key.
    subprocess.run(["gpgconf", "--homedir", str(gnupg.home), "--reload", "gpg-agent"],
                   capture_output=True, timeout=60)
    sig = work / "sig"
    wrong = work / "wrong"
    wrong.write_text("not it\n")
    p = _regfs(gnupg, "standalone-sign", manifest, "example.com/a:v1", gnupg.protected,
               "-o", sig, "--passphrase-file", wrong)
    assert p.returncode == 1
    assert "regfs standalone-sign: creating the signature:" in p.stderr
    assert not sig.exists()

    right = work / "right"
    right.write_text(PASSPHRASE + "\nsecond line is not the passphrase\n")
    _ok(_regfs(gnupg, "standalone-sign", manifest, "example.com/a:v1", gnupg.protected,
               "-o", sig, "--passphrase-file", right))
    v = _ok(_skopeo(gnupg, "standalone-verify", manifest, "example.com/a:v1", gnupg.protected,
                    sig))
    assert v.stdout == f"Signature verified, digest {_digest(manifest)}\n"
    _ok(_regfs(gnupg, "standalone-verify", manifest, "example.com/a:v1", gnupg.protected, sig))


def test_unknown_signing_key(gnupg, manifest, work):
    sig = work / "sig"
    p = _regfs(gnupg, "standalone-sign", manifest, "example.com/a", "0" * 40, "-o", sig)
    assert p.returncode == 1
    assert "0" * 40 in p.stderr
    assert not sig.exists()
    assert _skopeo(gnupg, "standalone-sign", manifest, "example.com/a", "0" * 40,
                   "-o", sig).returncode != 0


def test_usage_errors(gnupg, manifest, work):
    p = _regfs(gnupg, "standalone-sign", manifest, "example.com/a", gnupg.plain)
    assert p.returncode == 2
    assert "--output" in p.stderr
    p = _regfs(gnupg, "standalone-verify", manifest, "example.com/a", gnupg.plain)
    assert p.returncode == 2
    p = _regfs(gnupg, "standalone-sign", work / "missing.json", "example.com/a", gnupg.plain,
               "-o", work / "sig")
    assert p.returncode == 1
    assert "missing.json" in p.stderr
    p = _regfs(gnupg, "standalone-verify", manifest, "Not A Reference", gnupg.plain, manifest)
    assert p.returncode == 1
