"""Credentials: --creds / --src-creds / --dest-creds and --authfile against a registry with
htpasswd basic auth, compared with skopeo; without credentials → one-line error, exit 1."""

import base64
import json

import pytest

from testlib import images, tools


@pytest.fixture(scope="module")
def pushed(auth_registry, session_dir):
    return images.pushed_image(session_dir / "auth-img", auth_registry, "secure/img",
                               seed=71, fmt="docker", layers=["gzip", "tar"]).path


def _authfile(path, reg, user, password):
    tok = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {reg.addr: {"auth": tok}}}))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("flags", [[], ["--raw"], ["--config"]],
                         ids=lambda f: " ".join(f) or "plain")
def test_inspect_with_creds_matches_skopeo(regfs, oracle, auth_registry, pushed, flags):
    ref = auth_registry.ref("secure/img", "v1")
    tools.assert_same_inspect(
        regfs("inspect", "--creds", auth_registry.creds, *flags, ref, binary=True),
        oracle.inspect(ref, "--creds", auth_registry.creds, *flags, binary=True))


def test_inspect_with_authfile_matches_skopeo(regfs, oracle, auth_registry, pushed, work):
    af = _authfile(work / "auth.json", auth_registry, "bob", "builder")
    ref = auth_registry.ref("secure/img", "v1")
    tools.assert_same_inspect(regfs("inspect", "--authfile", af, ref),
                             oracle.inspect(ref, "--authfile", str(af)))


def test_copy_with_src_and_dest_creds(regfs, oracle, auth_registry, pushed, work, repo_name):
    ref = auth_registry.ref("secure/img", "v1")
    p = regfs("copy", "-q", "--src-creds", auth_registry.creds, ref, f"dir:{work / 'out'}")
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "out", pushed) == ""
    repo = repo_name("secure")
    p = regfs("copy", "-q", "--src-creds", auth_registry.creds, "--dest-creds", "bob:builder",
              ref, auth_registry.ref(repo, "copied"))
    assert p.returncode == 0, p.stderr
    assert auth_registry.manifest_digest(repo, "copied") == \
        tools.sha256_file(pushed / "manifest.json")


def test_copy_with_authfile(regfs, auth_registry, pushed, work, repo_name):
    af = _authfile(work / "auth.json", auth_registry, "alice", "wonderland")
    repo = repo_name("secure")
    p = regfs("copy", "-q", "--authfile", af, f"dir:{pushed}", auth_registry.ref(repo, "a"))
    assert p.returncode == 0, p.stderr
    assert auth_registry.has_manifest(repo, "a")


def test_list_tags_with_creds(regfs, oracle, auth_registry, pushed):
    ref = f"docker://{auth_registry.addr}/secure/img"
    tools.assert_same_output(regfs("list-tags", "--creds", auth_registry.creds, ref),
                             oracle.list_tags(ref, "--creds", auth_registry.creds))


@pytest.mark.parametrize("creds", [None, "alice:wrong", "mallory:x"],
                         ids=["none", "wrong-password", "unknown-user"])
def test_bad_or_missing_creds_fail(regfs, oracle, auth_registry, pushed, work, repo_name,
                                   creds):
    ref = auth_registry.ref("secure/img", "v1")
    cflag = ["--creds", creds] if creds else []
    assert oracle.inspect(ref, *cflag, check=False).returncode == 1   # skopeo agrees
    p = regfs("inspect", *cflag, ref)
    assert p.returncode == 1, (p.returncode, p.stderr)
    tools.one_line_error(p)
    dest = work / "out"
    sflag = ["--src-creds", creds] if creds else []
    p = regfs("copy", *sflag, ref, f"dir:{dest}")
    assert p.returncode == 1
    tools.one_line_error(p)
    assert not dest.exists()
    repo = repo_name("secure")
    dflag = ["--dest-creds", creds] if creds else []
    p = regfs("copy", *dflag, f"dir:{pushed}", auth_registry.ref(repo, "x"))
    assert p.returncode == 1
    tools.one_line_error(p)
    assert auth_registry.tags(repo) == []
