"""regfs generate-key: a sigstore key pair cosign and skopeo can use, checked here with
independent implementations (hashlib's scrypt, PyNaCl's secretbox, cryptography's key
parsing), since Debian's skopeo is too old to have generate-sigstore-key."""

import base64
import hashlib
import json
import os
import stat

import nacl.secret
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from testlib import tools


@pytest.fixture(autouse=True)
def _no_env_passphrase(monkeypatch):
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)


def _pem_body(text, kind):
    lines = text.strip().splitlines()
    assert lines[0] == f"-----BEGIN {kind}-----", lines[0]
    assert lines[-1] == f"-----END {kind}-----", lines[-1]
    assert all(len(line) <= 64 for line in lines[1:-1])
    return base64.b64decode("".join(lines[1:-1]), validate=True)


def decrypt_private_key(path, passphrase):
    """The private key inside a cosign-encrypted key file, checking the envelope on the way."""
    envelope = json.loads(_pem_body(path.read_text(), "ENCRYPTED SIGSTORE PRIVATE KEY"))
    assert list(envelope) == ["kdf", "cipher", "ciphertext"]
    kdf, cipher = envelope["kdf"], envelope["cipher"]
    assert list(kdf) == ["name", "params", "salt"]
    assert kdf["name"] == "scrypt"
    assert kdf["params"] == {"N": 65536, "r": 8, "p": 1}
    assert list(kdf["params"]) == ["N", "r", "p"]
    salt = base64.b64decode(kdf["salt"], validate=True)
    assert len(salt) == 32
    assert cipher["name"] == "nacl/secretbox"
    nonce = base64.b64decode(cipher["nonce"], validate=True)
    assert len(nonce) == 24
    key = hashlib.scrypt(passphrase.encode(), salt=salt, n=65536, r=8, p=1,
                         maxmem=128 * 8 * 65540 + (1 << 20), dklen=32)
    der = nacl.secret.SecretBox(key).decrypt(
        base64.b64decode(envelope["ciphertext"], validate=True), nonce)
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP256R1)
    # PKCS#8 (a PrivateKeyInfo: version 0, then the id-ecPublicKey algorithm), not SEC1
    # (an ECPrivateKey: version 1), which cosign refuses.
    assert der[0] == 0x30
    header = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    assert der[header:header + 3] == b"\x02\x01\x00", der[:16].hex()
    assert der[header + 3:header + 14].endswith(bytes.fromhex("06072a8648ce3d0201")), der.hex()
    return private


def assert_pair(prefix, passphrase):
    private_path = prefix.with_name(prefix.name + ".private")
    public_path = prefix.with_name(prefix.name + ".pub")
    private = decrypt_private_key(private_path, passphrase)
    public_text = public_path.read_text()
    _pem_body(public_text, "PUBLIC KEY")
    public = serialization.load_pem_public_key(public_text.encode())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert (public.public_bytes(serialization.Encoding.DER, spki) ==
            private.public_key().public_bytes(serialization.Encoding.DER, spki))
    assert stat.S_IMODE(os.stat(private_path).st_mode) == 0o600
    return private


def test_passphrase_file(regfs_ok, work):
    pw = work / "pw"
    pw.write_text("correct horse battery\nsecond line is not the passphrase\n")
    regfs_ok("generate-key", "--output-prefix", work / "k", "--passphrase-file", pw)
    assert sorted(p.name for p in work.iterdir()) == ["k.private", "k.pub", "pw"]
    assert_pair(work / "k", "correct horse battery")


def test_passphrase_file_without_line_break(regfs_ok, work):
    pw = work / "pw"
    pw.write_text("no newline")
    regfs_ok("generate-key", "--output-prefix", work / "k", "--passphrase-file", pw)
    assert_pair(work / "k", "no newline")


def test_cosign_password_env(regfs_ok, work):
    regfs_ok("generate-key", "--output-prefix", work / "k", env={"COSIGN_PASSWORD": "from env"})
    assert_pair(work / "k", "from env")


def test_passphrase_file_wins_over_env(regfs_ok, work):
    pw = work / "pw"
    pw.write_text("from file\n")
    regfs_ok("generate-key", "--output-prefix", work / "k", "--passphrase-file", pw,
             env={"COSIGN_PASSWORD": "from env"})
    assert_pair(work / "k", "from file")


def test_two_keys_differ(regfs_ok, work):
    env = {"COSIGN_PASSWORD": "pw"}
    regfs_ok("generate-key", "--output-prefix", work / "a", env=env)
    regfs_ok("generate-key", "--output-prefix", work / "b", env=env)
    assert (work / "a.pub").read_text() != (work / "b.pub").read_text()


@pytest.mark.parametrize("existing", ["k.private", "k.pub"])
def test_existing_files_are_not_overwritten(regfs, work, existing):
    (work / existing).write_text("keep me")
    p = regfs("generate-key", "--output-prefix", work / "k", env={"COSIGN_PASSWORD": "pw"})
    assert p.returncode == 1, p.stderr
    line = tools.one_line_error(p)
    assert "overwrite" in line and existing in line
    assert (work / existing).read_text() == "keep me"
    assert sorted(x.name for x in work.iterdir()) == [existing]


def test_no_passphrase_source(regfs, work):
    p = regfs("generate-key", "--output-prefix", work / "k")
    assert p.returncode == 1, p.stderr
    assert "no passphrase" in tools.one_line_error(p)
    assert list(work.iterdir()) == []


def test_output_prefix_is_required(regfs, work):
    p = regfs("generate-key", env={"COSIGN_PASSWORD": "pw"})
    assert p.returncode == 2, p.stderr
    assert "--output-prefix" in tools.one_line_error(p)


def test_missing_passphrase_file(regfs, work):
    p = regfs("generate-key", "--output-prefix", work / "k", "--passphrase-file", work / "nope")
    assert p.returncode == 1, p.stderr
    tools.one_line_error(p)
    assert list(work.iterdir()) == []


def _on_terminal(regfs_bin, args, typed):
    """Runs regfs with a pseudo-terminal as standard input, `typed` already typed on it."""
    import subprocess
    master, slave = os.openpty()
    try:
        os.write(master, typed.encode())
        env = tools._env(tools.private_home())
        env.pop("COSIGN_PASSWORD", None)
        p = subprocess.run([regfs_bin, *map(str, args)], stdin=slave, capture_output=True,
                           text=True, timeout=60, env=env)
    finally:
        os.close(slave)
        os.close(master)
    return p


def test_prompt_on_terminal_asks_twice(regfs_bin, work):
    p = _on_terminal(regfs_bin, ["generate-key", "--output-prefix", work / "k"],
                     "typed pw\ntyped pw\n")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("passphrase") == 2, p.stderr
    assert_pair(work / "k", "typed pw")


def test_prompt_on_terminal_mismatch(regfs_bin, work):
    p = _on_terminal(regfs_bin, ["generate-key", "--output-prefix", work / "k"], "one\ntwo\n")
    assert p.returncode == 1, p.stderr
    assert "do not match" in p.stderr
    assert list(work.iterdir()) == []
