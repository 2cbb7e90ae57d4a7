"""Bearer token auth: docker-registry with `auth: token` and the test tree's token server,
whose RS256 JWTs (x5c header) the registry validates itself.

Anonymous pulls are allowed or denied per scope; a push asks for pull,push; a cross-repository
mount asks for both repositories in one token; tokens are reused until they stop working (the
token server counts its requests); identity tokens use the refresh-token grant; login checks
credentials with the token service.
"""

import json

import pytest

from testlib import images, tools
from testlib.faultproxy import FaultProxy
from testlib.registry import Registry
from testlib.tokenserver import TokenServer

USERS = {"alice": "rabbit", "bob": "builder"}


def policy(user, rtype, name, actions):
    if user is None:
        return ["pull"] if name.startswith("public/") and "pull" in actions else []
    if user == "bob":
        return [a for a in actions if a == "pull"]
    return list(actions)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    with TokenServer(tmp_path_factory.mktemp("token"), users=USERS, policy=policy,
                     refresh_tokens={"refresh-alice": "alice"}) as ts:
        yield ts


@pytest.fixture(scope="module")
def token_registry(tokens):
    with Registry(name="token", token=tokens.registry_config(),
                  admin_token=tokens.admin_token) as r:
        yield r


@pytest.fixture(scope="module")
def seeded(token_registry, tmp_path_factory):
    img = tmp_path_factory.mktemp("token-img") / "img"
    images.make_image(img, seed=701, fmt="docker", layers=["gzip", "tar", "gzip"])
    for repo in ("public/img", "private/img"):
        images.push(img, token_registry.addr, repo, "v1", creds="alice:rabbit")
    return img


@pytest.fixture
def fresh(tokens):
    """The token server's request log, emptied for this test."""
    with tokens._lock:
        tokens.requests.clear()
        tokens.stale_tokens = 0
    return tokens


def test_anonymous_pull_allowed_or_denied_per_scope(regfs, token_registry, seeded, fresh, work):
    p = regfs("copy", "-q", token_registry.ref("public/img", "v1"), f"dir:{work / 'pub'}")
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "pub", seeded) == ""
    p = regfs("inspect", token_registry.ref("private/img", "v1"))
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert "401" in line or "denied" in line.lower() or "unauthorized" in line.lower(), line
    # Both asked anonymously, for pull only.
    assert all(r["user"] is None for r in fresh.requests)
    assert fresh.token_requests("repository:private/img:pull")


def test_push_needs_pull_and_push(regfs, token_registry, seeded, fresh, work, repo_name):
    repo = repo_name("private")
    dest = token_registry.ref(repo, "v1")
    p = regfs("copy", "-q", "--dest-creds", "bob:builder", f"dir:{seeded}", dest)
    assert p.returncode == 1
    tools.one_line_error(p)
    assert not token_registry.has_manifest(repo, "v1")
    asked = fresh.token_requests(f"repository:{repo}:pull,push")
    assert asked and all(r["user"] == "bob" for r in asked)
    p = regfs("copy", "-q", "--dest-creds", "alice:rabbit", f"dir:{seeded}", dest)
    assert p.returncode == 0, p.stderr
    assert token_registry.manifest_digest(repo, "v1") == tools.sha256_file(seeded / "manifest.json")


def test_cross_repository_mount_asks_for_both_scopes(regfs, token_registry, seeded, fresh,
                                                     repo_name):
    repo = repo_name("private")
    with FaultProxy(token_registry.addr) as px:
        src = f"docker://{px.addr}/private/img:v1"
        dst = f"docker://{px.addr}/{repo}:v1"
        p = regfs("copy", "-q", "--src-creds", "alice:rabbit", "--dest-creds", "alice:rabbit",
                  src, dst)
        assert p.returncode == 0, p.stderr
        mounts = px.requests(method="POST", path=r"mount=")
        uploads = px.requests(method="PUT", path=r"/blobs/uploads/")
    assert mounts and all(m.status == 201 for m in mounts), mounts
    assert not uploads, "blobs were uploaded instead of mounted"
    both = [r for r in fresh.requests
            if f"repository:{repo}:pull,push" in r["scopes"]
            and "repository:private/img:pull" in r["scopes"]]
    assert both, [r["scopes"] for r in fresh.requests]
    assert token_registry.manifest_digest(repo, "v1") == tools.sha256_file(seeded / "manifest.json")


def test_tokens_are_reused_until_they_stop_working(regfs, token_registry, seeded, fresh, work):
    ref = token_registry.ref("private/img", "v1")
    p = regfs("copy", "-q", "--src-creds", "alice:rabbit", ref, f"dir:{work / 'a'}")
    assert p.returncode == 0, p.stderr
    # One token for the whole copy: manifest, config and three layers share the scope.
    assert len(fresh.token_requests("repository:private/img:pull")) == 1, fresh.requests
    # An expired token is refused by the registry; the client asks for a new one once and
    # then uses that one for everything else.
    with fresh._lock:
        fresh.requests.clear()
        fresh.stale_tokens = 1
    p = regfs("copy", "-q", "--src-creds", "alice:rabbit", ref, f"dir:{work / 'b'}")
    assert p.returncode == 0, p.stderr
    asked = fresh.token_requests("repository:private/img:pull")
    assert [r["stale"] for r in asked] == [True, False], asked
    assert tools.tree_diff(work / "b", seeded) == ""


def test_identity_token_uses_the_refresh_grant(regfs, token_registry, seeded, fresh, work):
    af = work / "auth.json"
    af.write_text(json.dumps({"auths": {token_registry.addr: {"identitytoken": "refresh-alice"}}}))
    p = regfs("inspect", "--raw", "--authfile", af, token_registry.ref("private/img", "v1"),
              binary=True)
    assert p.returncode == 0, p.stderr
    assert tools.sha256_bytes(p.stdout) == tools.sha256_file(seeded / "manifest.json")
    posts = [r for r in fresh.requests if r["method"] == "POST"]
    assert posts and all(r["grant_type"] == "refresh_token" for r in posts)
    assert all(r["client_id"] and r["service"] == fresh.service for r in posts)
    assert any("repository:private/img:pull" in r["scopes"] for r in posts)
    # A refresh token the server does not know is refused.
    af.write_text(json.dumps({"auths": {token_registry.addr: {"identitytoken": "stolen"}}}))
    p = regfs("inspect", "--raw", "--authfile", af, token_registry.ref("private/img", "v1"))
    assert p.returncode == 1
    tools.one_line_error(p)


def test_login_checks_with_the_token_service(regfs, token_registry, seeded, fresh, work):
    af = work / "auth.json"
    p = regfs("login", "-u", "alice", "--password-stdin", "--authfile", af, token_registry.addr,
              input="wrong\n")
    assert p.returncode == 1
    assert "invalid username/password" in tools.one_line_error(p)
    assert not af.exists()
    p = regfs("login", "-u", "alice", "--password-stdin", "--authfile", af, token_registry.addr,
              input="rabbit\n")
    assert p.returncode == 0, p.stderr
    assert any(r["user"] == "alice" and r["account"] == "alice" for r in fresh.requests)
    p = regfs("inspect", "--raw", "--authfile", af, token_registry.ref("private/img", "v1"))
    assert p.returncode == 0, p.stderr


def test_plain_http_realm_on_a_non_loopback_name_is_refused(regfs, tmp_path_factory):
    name = tools.loopback_host_name()
    if name is None:
        pytest.skip("this machine's host name does not resolve to 127.0.0.1")
    with TokenServer(tmp_path_factory.mktemp("token2"), users=USERS, host=name) as ts:
        with Registry(name="token2", token=ts.registry_config(), admin_token=ts.admin_token) as r:
            p = regfs("inspect", "--creds", "alice:rabbit", r.ref("public/x", "v1"))
            assert p.returncode == 1
            assert "refusing token realm" in tools.one_line_error(p)
            assert ts.requests == []   # the credentials never left
