"""regfs login / logout against docker-registry with htpasswd auth, with skopeo as the oracle:
credentials are checked before anything is written, the file is skopeo's format and place
(0600), regfs commands and the mount use it (the mount without a remount), logout removes it,
and a file written by `skopeo login` works for regfs. Also: the password prompt does not echo,
credential helpers (docker-credential-* on $PATH) are asked and told, and credentials are
never logged nor sent in plain HTTP to a host that is not loopback.
"""

import base64
import json
import os
import pty
import select
import signal
import stat
import subprocess
import time

import pytest

from mountlib import expect_errno, wait_until
from testlib import images, tools

USER, PASSWORD = "alice", "wonderland"


@pytest.fixture(scope="module")
def pushed(auth_registry, tmp_path_factory):
    return images.pushed_image(tmp_path_factory.mktemp("login-img") / "img", auth_registry,
                               "login/img", seed=601, fmt="oci", layers=["gzip", "tar"]).path


def login(regfs, registry, authfile=None, password=PASSWORD, user=USER, extra=(), env=None,
          key=None):
    args = ["login", "--username", user, "--password-stdin", *extra]
    if authfile is not None:
        args += ["--authfile", str(authfile)]
    return regfs(*args, key or registry.addr, input=password + "\n", env=env)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_wrong_password_writes_nothing(regfs, auth_registry, work):
    af = work / "dir" / "auth.json"
    p = login(regfs, auth_registry, af, password="not-it")
    assert p.returncode == 1, p.stderr
    line = tools.one_line_error(p)
    assert "invalid username/password" in line
    assert not af.exists() and not af.parent.exists()
    # An existing file is left as it was.
    af.parent.mkdir()
    af.write_text('{"auths": {}}')
    assert login(regfs, auth_registry, af, user="mallory").returncode == 1
    assert af.read_text() == '{"auths": {}}'


def test_login_writes_skopeo_format_that_skopeo_and_regfs_use(regfs, oracle, auth_registry,
                                                              pushed, work):
    af = work / "new" / "auth.json"
    p = login(regfs, auth_registry, af)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Login Succeeded!\n"
    assert mode(af) == 0o600 and mode(af.parent) == 0o700
    doc = json.loads(af.read_text())
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert doc == {"auths": {auth_registry.addr: {"auth": token}}}
    ref = auth_registry.ref("login/img", "v1")
    # skopeo reads it,
    theirs = oracle.inspect(ref, "--authfile", str(af))
    # and so do regfs inspect and copy.
    tools.assert_same_inspect(regfs("inspect", "--authfile", af, ref), theirs)
    p = regfs("copy", "-q", "--authfile", af, ref, f"dir:{work / 'out'}")
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "out", pushed) == ""
    p = regfs("login", "--get-login", "--authfile", af, auth_registry.addr)
    assert (p.returncode, p.stdout) == (0, USER + "\n"), p.stderr


def test_default_file_is_skopeos(regfs, auth_registry, pushed, work):
    run_dir = work / "run"
    run_dir.mkdir()
    env = {"XDG_RUNTIME_DIR": str(run_dir), "HOME": str(work / "home")}
    p = login(regfs, auth_registry, env=env)
    assert p.returncode == 0, p.stderr
    af = run_dir / "containers" / "auth.json"
    assert af.is_file() and mode(af) == 0o600
    ref = auth_registry.ref("login/img", "v1")
    assert tools.skopeo("inspect", "--tls-verify=false", "--raw", ref, env=env).returncode == 0
    assert regfs("inspect", "--raw", ref, env=env).returncode == 0
    # REGISTRY_AUTH_FILE names the file for both.
    env2 = dict(env, REGISTRY_AUTH_FILE=str(work / "env-auth.json"))
    assert login(regfs, auth_registry, env=env2).returncode == 0
    assert (work / "env-auth.json").is_file()


def test_namespace_key_and_logout(regfs, auth_registry, pushed, work):
    af = work / "auth.json"
    assert login(regfs, auth_registry, af, key=f"{auth_registry.addr}/login").returncode == 0
    assert list(json.loads(af.read_text())["auths"]) == [f"{auth_registry.addr}/login"]
    ref = auth_registry.ref("login/img", "v1")
    assert regfs("inspect", "--raw", "--authfile", af, ref).returncode == 0
    # Logging out of the host does not touch the namespace's entry.
    p = regfs("logout", "--authfile", af, auth_registry.addr)
    assert p.returncode == 1 and "not logged into" in tools.one_line_error(p)
    p = regfs("logout", "--authfile", af, f"{auth_registry.addr}/login")
    assert p.returncode == 0, p.stderr
    assert json.loads(af.read_text()) == {"auths": {}}
    assert mode(af) == 0o600
    p = regfs("inspect", "--raw", "--authfile", af, ref)
    assert p.returncode == 1
    tools.one_line_error(p)


def test_logout_all_keeps_the_rest_of_the_file(regfs, auth_registry, work):
    af = work / "auth.json"
    af.write_text(json.dumps({"auths": {"other.example": {"auth": "eDp5"}},
                              "credHelpers": {}, "extra": True}))
    assert login(regfs, auth_registry, af).returncode == 0
    doc = json.loads(af.read_text())
    assert set(doc["auths"]) == {"other.example", auth_registry.addr}
    assert doc["extra"] is True
    p = regfs("logout", "--authfile", af, "--all")
    assert p.returncode == 0, p.stderr
    assert json.loads(af.read_text()) == {"auths": {}, "credHelpers": {}, "extra": True}


def test_regfs_uses_a_file_written_by_skopeo_login(regfs, auth_registry, pushed, work):
    af = work / "skopeo-auth.json"
    p = tools.skopeo("login", "--tls-verify=false", "--authfile", str(af), "-u", USER,
                     "--password-stdin", auth_registry.addr, input=PASSWORD + "\n")
    assert p.returncode == 0, p.stderr
    ref = auth_registry.ref("login/img", "v1")
    p = regfs("inspect", "--raw", "--authfile", af, ref, binary=True)
    assert p.returncode == 0, p.stderr
    assert tools.sha256_bytes(p.stdout) == tools.sha256_file(pushed / "manifest.json")
    # and skopeo logout reads what regfs login wrote.
    af2 = work / "regfs-auth.json"
    assert login(regfs, auth_registry, af2).returncode == 0
    p = tools.skopeo("logout", "--authfile", str(af2), auth_registry.addr)
    assert p.returncode == 0, p.stderr


def test_mount_uses_login_and_rereads_it(mounts, regfs, auth_registry, pushed, work):
    af = work / "mount-auth.json"
    m = mounts(f"authfile={af}")
    img = m.image(auth_registry.addr, "login/img", "v1")
    expect_errno(13, lambda: (img / "manifest.json").read_bytes())   # EACCES: no credentials
    assert login(regfs, auth_registry, af).returncode == 0
    want = (pushed / "manifest.json").read_bytes()

    def readable():
        try:
            return (img / "manifest.json").read_bytes() == want
        except OSError:
            return False
    assert wait_until(readable, 10), m.diag()
    layer = next(p.name for p in pushed.iterdir() if len(p.name) == 64)
    assert (img / layer).read_bytes() == (pushed / layer).read_bytes()


def test_password_prompt_does_not_echo(regfs_bin, auth_registry, work):
    af = work / "auth.json"
    pid, fd = pty.fork()
    if pid == 0:
        env = tools._env(tools.private_home())
        os.execve(regfs_bin, [regfs_bin, "login", "--authfile", str(af), auth_registry.addr],
                  env)
    seen = b""

    def read_until(marker, timeout=20):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    seen += os.read(fd, 1024)
                except OSError:
                    break
        return marker in seen

    try:
        assert read_until(b"Username: "), seen
        os.write(fd, USER.encode() + b"\n")
        assert read_until(b"Password: "), seen
        os.write(fd, PASSWORD.encode() + b"\n")
        assert read_until(b"Login Succeeded!"), seen
    finally:
        def reaped():   # (pid, wait status) once the child has exited
            r = os.waitpid(pid, os.WNOHANG)
            return r if r[0] == pid else None
        # A child left waiting for input by a failed step is killed, not waited for forever.
        done = wait_until(reaped, 10)
        if done is None:
            os.kill(pid, signal.SIGKILL)
            done = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(done[1]) == 0, seen
    assert USER.encode() in seen               # the username echoes,
    assert PASSWORD.encode() not in seen       # the password does not
    assert af.is_file()


def test_no_password_without_a_terminal_is_a_usage_error(regfs, auth_registry, work):
    p = regfs("login", "--username", USER, "--authfile", work / "a.json", auth_registry.addr)
    assert p.returncode == 1
    assert "password" in tools.one_line_error(p)
    assert not (work / "a.json").exists()


def test_debug_log_holds_no_credentials(regfs, auth_registry, pushed, work):
    secret_b64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    p = login(regfs, auth_registry, work / "auth.json", extra=["--debug"])
    assert p.returncode == 0, p.stderr
    ref = auth_registry.ref("login/img", "v1")
    q = regfs("copy", "-q", "--debug", "--src-creds", f"{USER}:{PASSWORD}", ref,
              f"dir:{work / 'out'}")
    assert q.returncode == 0, q.stderr
    for out in (p.stdout + p.stderr, q.stdout + q.stderr):
        assert "regfs: debug:" in out
        assert PASSWORD not in out and secret_b64 not in out


def test_no_credentials_over_plain_http_to_a_non_loopback_name(regfs, auth_registry, pushed):
    host = tools.loopback_host_name()
    if host is None:
        pytest.skip("this machine's host name does not resolve to 127.0.0.1")
    ref = f"docker://{host}:{auth_registry.port}/login/img:v1"
    p = regfs("inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", ref)
    assert p.returncode == 1
    assert "over plain HTTP" in tools.one_line_error(p)


HELPER = """#!/usr/bin/python3
# A docker-credential helper for the tests: a JSON file of ServerURL -> [Username, Secret].
import json, os, sys
store = os.environ["REGFS_TEST_HELPER_STORE"]
data = json.load(open(store)) if os.path.exists(store) else {}
action, body = sys.argv[1], sys.stdin.read()
with open(store + ".log", "a") as log:
    log.write(action + " " + (body.strip() if action != "store" else json.loads(body)["ServerURL"]) + "\\n")
if action == "get":
    if body.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    user, secret = data[body.strip()]
    print(json.dumps({"ServerURL": body.strip(), "Username": user, "Secret": secret}))
elif action == "store":
    d = json.loads(body); data[d["ServerURL"]] = [d["Username"], d["Secret"]]
    json.dump(data, open(store, "w"))
elif action == "erase":
    if data.pop(body.strip(), None) is None:
        print("credentials not found in native keychain"); sys.exit(1)
    json.dump(data, open(store, "w"))
"""


@pytest.fixture
def helper_env(work):
    bindir = work / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-regfstest"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    store = work / "helper-store.json"
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "REGFS_TEST_HELPER_STORE": str(store)}


def test_cred_helpers_are_asked(regfs, auth_registry, pushed, work, helper_env):
    store = work / "helper-store.json"
    store.write_text(json.dumps({auth_registry.addr: [USER, PASSWORD]}))
    af = work / "auth.json"
    af.write_text(json.dumps({"credHelpers": {auth_registry.addr: "regfstest"}}))
    ref = auth_registry.ref("login/img", "v1")
    p = regfs("inspect", "--raw", "--authfile", af, ref, env=helper_env)
    assert p.returncode == 0, p.stderr
    assert f"get {auth_registry.addr}" in (work / "helper-store.json.log").read_text()
    # credsStore (docker's) works the same way for registries without an "auths" entry.
    af.write_text(json.dumps({"auths": {}, "credsStore": "regfstest"}))
    assert regfs("inspect", "--raw", "--authfile", af, ref, env=helper_env).returncode == 0


def test_login_and_logout_through_a_cred_helper(regfs, auth_registry, pushed, work, helper_env):
    store = work / "helper-store.json"
    af = work / "auth.json"
    af.write_text(json.dumps({"credHelpers": {auth_registry.addr: "regfstest"}}))
    p = login(regfs, auth_registry, af, env=helper_env)
    assert p.returncode == 0, p.stderr
    assert json.loads(store.read_text()) == {auth_registry.addr: [USER, PASSWORD]}
    assert "auths" not in json.loads(af.read_text())   # the secret went to the helper only
    ref = auth_registry.ref("login/img", "v1")
    assert regfs("inspect", "--raw", "--authfile", af, ref, env=helper_env).returncode == 0
    p = regfs("logout", "--authfile", af, auth_registry.addr, env=helper_env)
    assert p.returncode == 0, p.stderr
    assert json.loads(store.read_text()) == {}
