"""regfs sync as a drop-in for skopeo sync, with skopeo itself as the oracle: the same
arguments (or the same YAML file) given to both, and the destination trees compared byte for
byte (diff -r), or the destination tags and manifest digests compared.

Forms skopeo 1.9.3 lacks (--append-suffix, --digestfile, images-by-semver) and behaviour where
regfs deliberately differs (a second sync into the same directory skips what is up to date,
where skopeo refuses to overwrite) are asserted directly.

Loopback registries are plain HTTP: the same --*-tls-verify=false flags (or `tls-verify:
false` in the YAML) are given to both programs so that their arguments stay identical.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from testlib import images, tools
from testlib.faultproxy import Fault

NO_TLS = ["--src-tls-verify=false", "--dest-tls-verify=false"]


# ---- helpers -----------------------------------------------------------------------------

def skopeo_sync(*args):
    return tools.run([tools.SKOPEO, "sync", *map(str, args)])


def regfs_sync(*args):
    return tools.regfs("sync", *map(str, args))


def ok(p, who):
    assert p.returncode == 0, f"{who} sync failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def both(args, sk_dest, rf_dest):
    """skopeo sync ARGS SK_DEST and regfs sync ARGS RF_DEST, both successful."""
    sk = ok(skopeo_sync(*args, sk_dest), "skopeo")
    rf = ok(regfs_sync(*args, rf_dest), "regfs")
    return sk, rf


def assert_same_tree(mine, theirs, expect_entries):
    """diff -r finds no difference, and the trees hold the expected top-level entries (two
    empty trees are not a success)."""
    assert sorted(os.listdir(theirs)) == sorted(expect_entries), (
        f"skopeo wrote {sorted(os.listdir(theirs))}")
    assert sorted(os.listdir(mine)) == sorted(expect_entries), (
        f"regfs wrote {sorted(os.listdir(mine))}")
    p = subprocess.run(["diff", "-r", str(theirs), str(mine)], capture_output=True, text=True)
    assert p.returncode == 0, f"diff -r skopeo regfs:\n{p.stdout}{p.stderr}"
    assert tools.tree_diff(mine, theirs) == ""


def image_dirs(root):
    """Paths (relative to root) of the image directories below root."""
    root = Path(root)
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("manifest.json")
                  if p.parent != root and not p.name.endswith(".manifest.json"))


def file_stats(root):
    """{relative path: (inode, mtime_ns)} of every file and directory below root."""
    root = Path(root)
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def put_tag(reg, repo, manifest, media_type, tag):
    """Tags an image whose blobs repo already has, by PUTting its manifest bytes."""
    r = reg.get(f"/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                headers={"Content-Type": media_type})
    assert r.status == 201, (r.status, r.body)


def tags_and_digests(reg, repo):
    return {t: reg.manifest_digest(repo, t) for t in reg.tags(repo)}


def repos_under(reg, ns):
    """{repository without the namespace: {tag: digest}} of the repositories below ns/."""
    return {r[len(ns) + 1:]: tags_and_digests(reg, r) for r in reg.catalog()
            if r.startswith(ns + "/")}


def write_yaml(path, text):
    path.write_text(text)
    return path


def authfile(path, reg, user, password):
    tok = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {reg.addr: {"auth": tok}}}))
    path.chmod(0o600)
    return path


DRY_LINE = re.compile(r"^(copy|skip|update)\s+(\S+) -> (\S+)$")


def dry_plan(p):
    """{source: (action, destination)} of a dry run's stdout; every line must be a plan line."""
    plan = {}
    for line in p.stdout.splitlines():
        m = DRY_LINE.match(line)
        assert m, f"not a plan line: {line!r}\nstdout: {p.stdout}"
        assert m.group(2) not in plan, f"two lines for {m.group(2)}"
        plan[m.group(2)] = (m.group(1), m.group(3))
    return plan


# ---- source images -----------------------------------------------------------------------

APP_TAGS = {"v1": "oci", "v2": "docker", "multi": "oci_index", "list": "docker_list"}


@pytest.fixture(scope="module")
def ns():
    """A namespace of this module's source repositories on `registry`."""
    return f"sync{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def app(registry, imgs, ns):
    """NS/app with tags v1 (OCI), v2 (Docker), multi (OCI index), list (Docker list)."""
    repo = f"{ns}/app"
    digests = {}
    for tag, name in APP_TAGS.items():
        digests[tag] = images.push(getattr(imgs, name).dir, registry.addr, repo, tag)
    return type("App", (), {"repo": repo, "name": f"{registry.addr}/{repo}",
                            "digests": digests, "tags": sorted(APP_TAGS)})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return images.make_image(tmp_path_factory.mktemp("sync-small") / "img", seed=901,
                             fmt="oci", layers=["gzip"], layer_size=2048)


def _tagged_repo(registry, small, repo, tags):
    images.push(small.path, registry.addr, repo, tags[0])
    for t in tags[1:]:
        put_tag(registry, repo, small.manifest, small.media_type, t)
    assert registry.tags(repo) == sorted(tags)
    return repo


REGEX_TAGS = ["v1", "v1-alpine", "x-v1", "v2", "latest"]
SEMVER_TAGS = ["1.0.0", "1.2.0", "2.0.0", "latest"]


@pytest.fixture(scope="module")
def tagged(registry, small, ns):
    """NS/tags (REGEX_TAGS) and NS/semver (SEMVER_TAGS), all the same small image."""
    return (_tagged_repo(registry, small, f"{ns}/tags", REGEX_TAGS),
            _tagged_repo(registry, small, f"{ns}/semver", SEMVER_TAGS))


# ---- 1. docker → dir ---------------------------------------------------------------------

@pytest.mark.parametrize("flags", [[], ["--all"], ["--scoped"], ["--scoped", "--all"]],
                         ids=lambda f: " ".join(f) or "plain")
def test_docker_repository_to_dir_same_tree_as_skopeo(registry, app, work, flags):
    both(["--src", "docker", "--dest", "dir", *NO_TLS, *flags, app.name],
         work / "sk", work / "rf")
    names = [f"app:{t}" for t in app.tags]
    if "--scoped" in flags:
        # DEST/HOST:PORT/NS/app:TAG
        host, rest = registry.addr, app.repo.rsplit("/", 1)[0]
        assert_same_tree(work / "rf", work / "sk", [host])
        assert sorted(os.listdir(work / "rf" / host / rest)) == sorted(names)
    else:
        assert_same_tree(work / "rf", work / "sk", names)
    for tag, digest in app.digests.items():
        d = (work / "rf" / registry.addr / app.repo.rsplit("/", 1)[0]
             if "--scoped" in flags else work / "rf") / f"app:{tag}"
        if "--all" in flags or APP_TAGS[tag] in ("oci", "docker"):
            assert tools.sha256_file(d / "manifest.json") == digest


@pytest.mark.parametrize("form", ["tag", "digest", "tag-scoped"])
def test_docker_single_image_to_dir_same_tree_as_skopeo(registry, app, work, form):
    flags = ["--scoped"] if form == "tag-scoped" else []
    ref = (f"{app.name}@{app.digests['v2']}" if form == "digest" else f"{app.name}:multi")
    both(["--src", "docker", "--dest", "dir", *NO_TLS, *flags, ref], work / "sk", work / "rf")
    if form == "digest":
        assert_same_tree(work / "rf", work / "sk", [f"app@{app.digests['v2']}"])
    elif form == "tag":
        assert_same_tree(work / "rf", work / "sk", ["app:multi"])
    else:
        assert_same_tree(work / "rf", work / "sk", [registry.addr])
        assert image_dirs(work / "rf") == [f"{registry.addr}/{app.repo}:multi"]


def test_append_suffix(registry, app, work):
    # skopeo 1.9.3 lacks --append-suffix: regfs's images are skopeo's, under NAME:TAG+SUFFIX.
    ok(skopeo_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--all", app.name, work / "sk"),
       "skopeo")
    ok(regfs_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--all",
                  "--append-suffix", "-mirror", app.name, work / "rf"), "regfs")
    assert sorted(os.listdir(work / "rf")) == sorted(f"app:{t}-mirror" for t in app.tags)
    for t in app.tags:
        assert tools.tree_diff(work / "rf" / f"app:{t}-mirror", work / "sk" / f"app:{t}") == ""
    ok(regfs_sync("--src", "docker", "--dest", "docker", *NO_TLS, "--all", "--append-suffix",
                  "-m", f"{app.name}:v1", f"{registry.addr}/{app.repo.split('/')[0]}/suffixed"),
       "regfs")
    assert tags_and_digests(registry, f"{app.repo.split('/')[0]}/suffixed/app") == {
        "v1-m": app.digests["v1"]}


# ---- 2. yaml → dir -----------------------------------------------------------------------

def test_yaml_images_and_tag_regex_same_tree_as_skopeo(registry, imgs, app, tagged, work):
    tags_repo, semver_repo = tagged
    y = write_yaml(work / "sync.yaml", f"""\
{registry.addr}:
  tls-verify: false
  images:
    {app.repo}:
      - v1
      - multi
    {semver_repo}: []
    {imgs.docker.repo}:
      - "{imgs.docker.digest}"
  images-by-tag-regex:
    {tags_repo}: v1
""")
    both(["--src", "yaml", "--dest", "dir", y], work / "sk", work / "rf")
    expect = (["app:v1", "app:multi", f"docker@{imgs.docker.digest}"]
              + [f"semver:{t}" for t in SEMVER_TAGS]
              # unanchored, as skopeo: v1, v1-alpine and x-v1
              + ["tags:v1", "tags:v1-alpine", "tags:x-v1"])
    assert_same_tree(work / "rf", work / "sk", expect)


def test_yaml_scoped_same_tree_as_skopeo(registry, app, tagged, work):
    tags_repo, _ = tagged
    y = write_yaml(work / "sync.yaml", f"""\
{registry.addr}:
  tls-verify: false
  images:
    {app.repo}: [v2, list]
  images-by-tag-regex:
    {tags_repo}: ^v
""")
    both(["--src", "yaml", "--dest", "dir", "--scoped", "--all", y], work / "sk", work / "rf")
    assert_same_tree(work / "rf", work / "sk", [registry.addr])
    nsdir = app.repo.split("/")[0]
    assert image_dirs(work / "rf") == sorted(
        f"{registry.addr}/{nsdir}/{n}" for n in
        ["app:v2", "app:list", "tags:v1", "tags:v1-alpine", "tags:v2"])


def test_yaml_images_by_semver(registry, tagged, work):
    # skopeo 1.9.3 does not know images-by-semver: regfs's selection is asserted directly.
    _, semver_repo = tagged
    y = write_yaml(work / "sync.yaml", f"""\
{registry.addr}:
  tls-verify: false
  images-by-semver:
    {semver_repo}: ">= 1.1.0 < 2"
""")
    ok(regfs_sync("--src", "yaml", "--dest", "dir", y, work / "rf"), "regfs")
    assert os.listdir(work / "rf") == ["semver:1.2.0"]
    y.write_text(y.read_text().replace(">= 1.1.0 < 2", ">= 1.0.0"))
    ok(regfs_sync("--src", "yaml", "--dest", "dir", y, work / "rf2"), "regfs")
    assert sorted(os.listdir(work / "rf2")) == ["semver:1.0.0", "semver:1.2.0", "semver:2.0.0"]


# ---- 3. docker → docker ------------------------------------------------------------------

def test_docker_to_docker_same_digests_as_skopeo(registry2, app, work):
    dest_ns = f"dd{uuid.uuid4().hex[:8]}"
    args = ["--src", "docker", "--dest", "docker", *NO_TLS, "--preserve-digests", app.name]
    ok(skopeo_sync(*args, f"{registry2.addr}/{dest_ns}-sk"), "skopeo")
    rf = ok(regfs_sync(*args, f"{registry2.addr}/{dest_ns}-rf"), "regfs")
    theirs = tags_and_digests(registry2, f"{dest_ns}-sk/app")
    mine = tags_and_digests(registry2, f"{dest_ns}-rf/app")
    assert sorted(theirs) == app.tags
    assert mine == theirs
    # without --all a multi-platform image is one instance, the one skopeo copies, and regfs
    # says so on stderr, naming the image
    for tag, kind in APP_TAGS.items():
        src = f"docker://{app.name}:{tag}"
        if kind in ("oci_index", "docker_list"):
            assert mine[tag] != app.digests[tag]
            warning = [l for l in rf.stderr.splitlines() if src in l and "multi-platform" in l]
            assert warning, f"no multi-platform warning for {src}:\n{rf.stderr}"
            assert "linux/amd64" in warning[0], warning
        else:
            assert mine[tag] == app.digests[tag]
            assert not [l for l in rf.stderr.splitlines() if src in l and "multi-platform" in l]


def test_docker_to_docker_all_keeps_index_digests(registry2, app, work):
    dest_ns = f"dd{uuid.uuid4().hex[:8]}"
    args = ["--src", "docker", "--dest", "docker", *NO_TLS, "--all", "--preserve-digests",
            app.name]
    ok(skopeo_sync(*args, f"{registry2.addr}/{dest_ns}-sk"), "skopeo")
    rf = ok(regfs_sync(*args, f"{registry2.addr}/{dest_ns}-rf"), "regfs")
    assert "multi-platform" not in rf.stderr
    assert tags_and_digests(registry2, f"{dest_ns}-rf/app") == app.digests
    assert tags_and_digests(registry2, f"{dest_ns}-sk/app") == app.digests


# ---- 4. dir → docker ---------------------------------------------------------------------

@pytest.mark.parametrize("form", ["plain", "scoped", "from-scoped-tree"])
def test_dir_to_docker_round_trip_same_names_as_skopeo(registry2, app, work, form):
    tree = work / "tree"
    if form == "from-scoped-tree":
        # skopeo's --scoped tree (TREE/HOST:PORT/NS/app:TAG), pushed without --scoped
        ok(skopeo_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--all", "--scoped",
                       app.name, tree), "skopeo")
        assert image_dirs(tree) == sorted(f"{app.name}:{t}" for t in app.tags)
    else:
        ok(skopeo_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--all", app.name,
                       tree / "team"), "skopeo")
    dest_ns = f"dd{uuid.uuid4().hex[:8]}"
    flags = ["--scoped"] if form == "scoped" else []
    args = ["--src", "dir", "--dest", "docker", *NO_TLS, "--all", "--preserve-digests",
            *flags, tree]
    ok(skopeo_sync(*args, f"{registry2.addr}/{dest_ns}-sk"), "skopeo")
    ok(regfs_sync(*args, f"{registry2.addr}/{dest_ns}-rf"), "regfs")
    theirs = repos_under(registry2, f"{dest_ns}-sk")
    mine = repos_under(registry2, f"{dest_ns}-rf")
    assert theirs == {("team/app" if form == "scoped" else "app"): app.digests}
    assert mine == theirs
    # and a dry run now finds every image up to date
    p = ok(regfs_sync("--dry-run", *args, f"{registry2.addr}/{dest_ns}-rf"), "regfs")
    plan = dry_plan(p)
    assert len(plan) == len(app.tags) and {a for a, _ in plan.values()} == {"skip"}, p.stdout


# ---- 5. a second sync into the same directory --------------------------------------------

def test_second_sync_into_dir_skips_while_skopeo_refuses(app, work):
    args = ["--src", "docker", "--dest", "dir", *NO_TLS, app.name]
    both(args, work / "sk", work / "rf")
    before = file_stats(work / "rf")
    assert len([p for p in before if "/" in p]) > 10
    rf = ok(regfs_sync(*args, work / "rf"), "regfs")
    assert file_stats(work / "rf") == before, "the second run rewrote files"
    for t in app.tags:
        assert f"Skipped docker://{app.name}:{t}" in rf.stderr, rf.stderr
    assert_same_tree(work / "rf", work / "sk", [f"app:{t}" for t in app.tags])
    # skopeo's known limitation: it refuses to sync into what it wrote before
    sk = skopeo_sync(*args, work / "sk")
    assert sk.returncode == 1, sk.stderr
    assert "Refusing to overwrite" in sk.stderr, sk.stderr


# ---- 6. --dry-run ------------------------------------------------------------------------

@pytest.fixture
def fresh_app(registry, imgs, repo_name):
    """A repository of this test's own (changed by it): v1 OCI, v2 Docker, list."""
    repo = repo_name("syncdry")
    for tag, it in (("v1", imgs.oci), ("v2", imgs.docker), ("list", imgs.docker_list)):
        images.push(it.dir, registry.addr, repo, tag)
    return repo


def test_dry_run_to_dir(registry, imgs, fresh_app, work):
    name = f"{registry.addr}/{fresh_app}"
    base = fresh_app.rsplit("/", 1)[1]
    dest = work / "dest"
    args = ["--src", "docker", "--dest", "dir", *NO_TLS, name, dest]
    p = ok(regfs_sync("--dry-run", *args), "regfs")
    assert not dest.exists(), "a dry run created the destination"
    assert dry_plan(p) == {f"docker://{name}:{t}": ("copy", f"dir:{dest}/{base}:{t}")
                           for t in ("v1", "v2", "list")}

    ok(regfs_sync(*args), "regfs")
    before = file_stats(dest)
    p = ok(regfs_sync("--dry-run", *args), "regfs")
    assert {s: a for s, (a, _) in dry_plan(p).items()} == {
        f"docker://{name}:{t}": "skip" for t in ("v1", "v2", "list")}

    images.push(imgs.docker.dir, registry.addr, fresh_app, "v1")   # v1 changes
    p = ok(regfs_sync("--dry-run", *args), "regfs")
    assert {s: a for s, (a, _) in dry_plan(p).items()} == {
        f"docker://{name}:v1": "update", f"docker://{name}:v2": "skip",
        f"docker://{name}:list": "skip"}
    assert file_stats(dest) == before, "a dry run changed the destination"


def test_dry_run_to_docker(registry, registry2, fresh_app, work):
    name = f"{registry.addr}/{fresh_app}"
    dest_ns = f"dry{uuid.uuid4().hex[:8]}"
    base = fresh_app.rsplit("/", 1)[1]
    args = ["--src", "docker", "--dest", "docker", *NO_TLS, "--all", name,
            f"{registry2.addr}/{dest_ns}"]
    p = ok(regfs_sync("--dry-run", *args), "regfs")
    assert dry_plan(p) == {
        f"docker://{name}:{t}": ("copy", f"docker://{registry2.addr}/{dest_ns}/{base}:{t}")
        for t in ("v1", "v2", "list")}
    assert [r for r in registry2.catalog() if r.startswith(dest_ns)] == []
    ok(regfs_sync(*args), "regfs")
    assert registry2.tags(f"{dest_ns}/{base}") == ["list", "v1", "v2"]
    p = ok(regfs_sync("--dry-run", *args), "regfs")
    assert {a for a, _ in dry_plan(p).values()} == {"skip"}
    assert len(dry_plan(p)) == 3


# ---- 7. --digestfile ---------------------------------------------------------------------

def _digestfile_lines(path):
    lines = path.read_text().splitlines()
    out = {}
    for line in lines:
        m = re.fullmatch(r"(sha256:[0-9a-f]{64}) (\S+)", line)
        assert m, f"not a digest line: {line!r}"
        assert m.group(2) not in out
        out[m.group(2)] = m.group(1)
    return out


def test_digestfile_dir_and_docker(registry2, app, work):
    df = work / "digests"
    dest = work / "dest"
    ok(regfs_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--digestfile", df,
                  app.name, dest), "regfs")
    got = _digestfile_lines(df)
    assert sorted(got) == sorted(f"dir:{dest}/app:{t}" for t in app.tags)
    for ref, digest in got.items():
        assert digest == tools.sha256_file(Path(ref[4:]) / "manifest.json"), ref

    dest_ns = f"df{uuid.uuid4().hex[:8]}"
    ok(regfs_sync("--src", "docker", "--dest", "docker", *NO_TLS, "--all", "--digestfile", df,
                  app.name, f"{registry2.addr}/{dest_ns}"), "regfs")
    got = _digestfile_lines(df)
    assert got == {f"docker://{registry2.addr}/{dest_ns}/app:{t}": d
                   for t, d in app.digests.items()}
    for t in app.tags:
        assert registry2.manifest_digest(f"{dest_ns}/app", t) == app.digests[t]
    # a second run (every image up to date) still names every image
    df.unlink()
    ok(regfs_sync("--src", "docker", "--dest", "docker", *NO_TLS, "--all", "--digestfile", df,
                  app.name, f"{registry2.addr}/{dest_ns}"), "regfs")
    assert _digestfile_lines(df) == got


# ---- 8. credentials ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_repo(auth_registry, imgs):
    repo = "syncauth/app"
    images.push(imgs.oci.dir, auth_registry.addr, repo, "v1", creds=auth_registry.creds)
    images.push(imgs.docker_list.dir, auth_registry.addr, repo, "list",
                creds=auth_registry.creds)
    return repo


@pytest.mark.parametrize("how", ["creds", "username-password", "authfile", "src-authfile"])
def test_src_credentials_same_tree_as_skopeo(auth_registry, auth_repo, work, how):
    if how == "creds":
        cred = ["--src-creds", "alice:wonderland"]
    elif how == "username-password":
        cred = ["--src-username", "bob", "--src-password", "builder"]
    else:
        cred = [f"--{how}", authfile(work / "auth.json", auth_registry, "alice", "wonderland")]
    both(["--src", "docker", "--dest", "dir", *NO_TLS, *cred,
          f"{auth_registry.addr}/{auth_repo}"], work / "sk", work / "rf")
    assert_same_tree(work / "rf", work / "sk", ["app:list", "app:v1"])


def test_yaml_credentials_same_tree_as_skopeo(auth_registry, auth_repo, work):
    y = write_yaml(work / "sync.yaml", f"""\
{auth_registry.addr}:
  tls-verify: false
  credentials:
    username: alice
    password: wonderland
  images:
    {auth_repo}: []
""")
    both(["--src", "yaml", "--dest", "dir", y], work / "sk", work / "rf")
    assert_same_tree(work / "rf", work / "sk", ["app:list", "app:v1"])


def test_dest_credentials_same_tags_as_skopeo(auth_registry, app, work):
    dest_ns = f"dc{uuid.uuid4().hex[:8]}"
    for who, run, cred in (
            ("skopeo", skopeo_sync, ["--dest-creds", "bob:builder"]),
            ("regfs", regfs_sync, ["--dest-username", "bob", "--dest-password", "builder"])):
        ok(run("--src", "docker", "--dest", "docker", *NO_TLS, "--all", "--preserve-digests",
               "--retry-times", "2", *cred, app.name, f"{auth_registry.addr}/{dest_ns}-{who}"),
           who)
    assert tags_and_digests(auth_registry, f"{dest_ns}-regfs/app") == app.digests
    assert tags_and_digests(auth_registry, f"{dest_ns}-skopeo/app") == app.digests
    # without credentials the push is refused
    p = regfs_sync("--src", "docker", "--dest", "docker", *NO_TLS, f"{app.name}:v1",
                   f"{auth_registry.addr}/{dest_ns}-anon")
    _assert_auth_failure(p, None)
    assert auth_registry.tags(f"{dest_ns}-anon/app") == []


def _assert_auth_failure(p, dest):
    assert p.returncode == 1, f"exit {p.returncode}\n{p.stderr}"
    assert re.search(r"401|unauthori[sz]ed|authentication", p.stderr, re.I), p.stderr
    if dest is not None:
        assert not Path(dest).exists() or image_dirs(dest) == []


@pytest.mark.parametrize("how", ["wrong-creds", "wrong-yaml-creds", "no-creds"])
def test_bad_or_missing_credentials_fail(auth_registry, auth_repo, work, how):
    src = f"{auth_registry.addr}/{auth_repo}"
    if how == "wrong-creds":
        args = ["--src", "docker", "--dest", "dir", *NO_TLS, "--src-creds", "alice:nope", src]
    elif how == "no-creds":
        # the authfile would do, but --src-no-creds goes anonymous
        af = authfile(work / "auth.json", auth_registry, "alice", "wonderland")
        args = ["--src", "docker", "--dest", "dir", *NO_TLS, "--authfile", af,
                "--src-no-creds", src]
    else:
        y = write_yaml(work / "sync.yaml", f"""\
{auth_registry.addr}:
  tls-verify: false
  credentials:
    username: alice
    password: nope
  images:
    {auth_repo}: [v1]
""")
        args = ["--src", "yaml", "--dest", "dir", y]
    sk = skopeo_sync(*args, work / "sk")
    assert sk.returncode != 0, sk.stderr   # skopeo fails as well
    _assert_auth_failure(regfs_sync(*args, work / "rf"), work / "rf")


def test_src_creds_with_src_username_is_a_usage_error(auth_registry, auth_repo, work):
    p = regfs_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--src-creds",
                   "alice:wonderland", "--src-username", "alice",
                   f"{auth_registry.addr}/{auth_repo}", work / "rf")
    assert p.returncode == 2, p.stderr
    assert "--src-creds" in p.stderr and "--src-username" in p.stderr, p.stderr
    assert not (work / "rf").exists()


# ---- 9. usage errors and failures --------------------------------------------------------

USAGE = {
    "missing-src": (["--dest", "dir", "R/x", "D"], "--src"),
    "missing-dest": (["--src", "docker", "R/x", "D"], "--dest"),
    "bad-src-transport": (["--src", "oci", "--dest", "dir", "R/x", "D"], "oci"),
    "bad-dest-transport": (["--src", "docker", "--dest", "oci", "R/x", "D"], "oci"),
    "dir-to-dir": (["--src", "dir", "--dest", "dir", "S", "D"], "dir"),
    "format": (["--src", "docker", "--dest", "dir", "--format", "v3", "R/x", "D"],
               "unknown format"),
    "format-schema1": (["--src", "docker", "--dest", "dir", "-f", "v2s1", "R/x", "D"],
                       "schema 1"),
    "one-arg": (["--src", "docker", "--dest", "dir", "R/x"], ""),
    "three-args": (["--src", "docker", "--dest", "dir", "R/x", "D", "E"], ""),
    "dest-creds-and-username": (["--src", "docker", "--dest", "docker", "--dest-creds", "a:b",
                                 "--dest-username", "a", "R/x", "R2"], "--dest-creds"),
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_errors_exit_2(registry, work, case):
    argv, needle = USAGE[case]
    (work / "S").mkdir()
    argv = [str(work / a) if a in ("S", "D", "E") else
            a.replace("R/", f"{registry.addr}/").replace("R2", f"{registry.addr}/dst")
            for a in argv]
    p = regfs_sync(*argv)
    assert p.returncode == 2, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    assert p.stderr.strip(), "no message"
    assert needle in p.stderr, p.stderr
    assert not (work / "D").exists()
    if case not in ("one-arg", "three-args"):   # skopeo 1.9.3 prints its help and exits 0
        sk = skopeo_sync(*argv)
        assert sk.returncode != 0, "skopeo accepted it"


def test_missing_source_repository_fails(registry, ns, work):
    args = ["--src", "docker", "--dest", "dir", *NO_TLS, f"{registry.addr}/{ns}/nosuch"]
    sk = skopeo_sync(*args, work / "sk")
    assert sk.returncode == 1 and "404" in sk.stderr, sk.stderr
    p = regfs_sync(*args, work / "rf")
    assert p.returncode == 1, p.stderr
    assert f"{ns}/nosuch" in p.stderr and "404" in p.stderr, p.stderr
    assert not (work / "rf").exists() or os.listdir(work / "rf") == []


def _yaml_with_missing(path, registry, ns, app):
    return write_yaml(path, f"""\
{registry.addr}:
  tls-verify: false
  images:
    {ns}/nosuch: []
    {app.repo}: [v1, v2]
""")


def test_keep_going_syncs_the_others_then_exits_1(registry, ns, app, work):
    y = _yaml_with_missing(work / "sync.yaml", registry, ns, app)
    p = regfs_sync("--src", "yaml", "--dest", "dir", "--keep-going", y, work / "rf")
    assert p.returncode == 1, p.stderr
    assert f"{ns}/nosuch" in p.stderr, p.stderr
    assert image_dirs(work / "rf") == ["app:v1", "app:v2"]
    assert tools.sha256_file(work / "rf" / "app:v1" / "manifest.json") == app.digests["v1"]


def test_keep_going_after_a_failed_image_same_tree_as_skopeo(registry, app, work):
    # a tag the repository does not have, between two it has: both programs copy the two and
    # exit 1
    y = write_yaml(work / "sync.yaml", f"""\
{registry.addr}:
  tls-verify: false
  images:
    {app.repo}: [v1, nosuch, v2]
""")
    sk = skopeo_sync("--src", "yaml", "--dest", "dir", "--keep-going", y, work / "sk")
    rf = regfs_sync("--src", "yaml", "--dest", "dir", "--keep-going", y, work / "rf")
    assert sk.returncode == 1, sk.stderr
    assert rf.returncode == 1, rf.stderr
    assert f"{app.name}:nosuch" in rf.stderr, rf.stderr
    # skopeo leaves the directory it made for the image it could not read; regfs makes none
    assert not (work / "sk" / "app:nosuch" / "manifest.json").exists()
    shutil.rmtree(work / "sk" / "app:nosuch")
    assert_same_tree(work / "rf", work / "sk", ["app:v1", "app:v2"])


def test_without_keep_going_a_failure_stops(registry, ns, app, work):
    y = _yaml_with_missing(work / "sync.yaml", registry, ns, app)
    p = regfs_sync("--src", "yaml", "--dest", "dir", y, work / "rf")
    assert p.returncode == 1, p.stderr
    assert f"{ns}/nosuch" in p.stderr, p.stderr
    assert not (work / "rf").exists() or image_dirs(work / "rf") == []


# ---- 10. TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_repo(tls_registry, imgs):
    images.push(imgs.oci.dir, tls_registry.addr, "synctls/app", "v1")   # unverified push
    images.push(imgs.docker.dir, tls_registry.addr, "synctls/app", "v2")
    return "synctls/app"


def test_tls_src_cert_dir_same_tree_as_skopeo(tls_registry, tls_repo, cert_dir, work):
    src = f"{tls_registry.addr}/{tls_repo}"
    both(["--src", "docker", "--dest", "dir", "--src-tls-verify=true", "--src-cert-dir",
          cert_dir, src], work / "sk", work / "rf")
    assert_same_tree(work / "rf", work / "sk", ["app:v1", "app:v2"])
    # without the CA, verification fails in both
    args = ["--src", "docker", "--dest", "dir", src]
    assert skopeo_sync(*args, work / "sk2").returncode != 0
    p = regfs_sync(*args, work / "rf2")
    assert p.returncode == 1, p.stderr
    assert "certificate" in p.stderr, p.stderr


def test_tls_yaml_cert_dir_same_tree_as_skopeo(tls_registry, tls_repo, cert_dir, work):
    y = write_yaml(work / "sync.yaml", f"""\
{tls_registry.addr}:
  tls-verify: true
  cert-dir: {cert_dir}
  images:
    {tls_repo}: []
""")
    both(["--src", "yaml", "--dest", "dir", y], work / "sk", work / "rf")
    assert_same_tree(work / "rf", work / "sk", ["app:v1", "app:v2"])
    # the file's cert-dir is what makes it work: without it neither syncs anything (skopeo
    # logs the registry's error, skips it and exits 0; regfs exits 1)
    y.write_text(y.read_text().replace(f"  cert-dir: {cert_dir}\n", ""))
    sk = skopeo_sync("--src", "yaml", "--dest", "dir", y, work / "sk2")
    assert "certificate signed by unknown authority" in sk.stderr, sk.stderr
    assert not (work / "sk2").exists() or image_dirs(work / "sk2") == []
    p = regfs_sync("--src", "yaml", "--dest", "dir", y, work / "rf2")
    assert p.returncode == 1, p.stderr
    assert "certificate" in p.stderr, p.stderr


# ---- more forms --------------------------------------------------------------------------

def test_digest_of_multi_platform_image_without_all_same_tree_as_skopeo(app, work):
    # the directory is named by the index digest; both copy the one instance into it
    ref = f"{app.name}@{app.digests['multi']}"
    both(["--src", "docker", "--dest", "dir", *NO_TLS, ref], work / "sk", work / "rf")
    assert_same_tree(work / "rf", work / "sk", [f"app@{app.digests['multi']}"])


def test_dir_source_that_is_one_image(registry2, app, work):
    ok(skopeo_sync("--src", "docker", "--dest", "dir", *NO_TLS, "--all", f"{app.name}:list",
                   work / "tree"), "skopeo")
    dest_ns = f"one{uuid.uuid4().hex[:8]}"
    for who, run in (("sk", skopeo_sync), ("rf", regfs_sync)):
        ok(run("--src", "dir", "--dest", "docker", *NO_TLS, "--all", "--preserve-digests",
               work / "tree" / "app:list", f"{registry2.addr}/{dest_ns}-{who}"), who)
    assert repos_under(registry2, f"{dest_ns}-sk") == {"app": {"list": app.digests["list"]}}
    assert repos_under(registry2, f"{dest_ns}-rf") == repos_under(registry2, f"{dest_ns}-sk")


def test_same_destination_from_two_repositories_fails(registry, small, ns, work):
    # without --scoped, NS/a/app and NS/b/app both go to DEST/app:TAG
    for sub in ("a", "b"):
        images.push(small.path, registry.addr, f"{ns}/{sub}/app", "v1")
    y = write_yaml(work / "sync.yaml", f"""\
{registry.addr}:
  tls-verify: false
  images:
    {ns}/a/app: [v1]
    {ns}/b/app: [v1]
""")
    sk = skopeo_sync("--src", "yaml", "--dest", "dir", y, work / "sk")
    assert sk.returncode == 1, sk.stderr
    p = regfs_sync("--src", "yaml", "--dest", "dir", y, work / "rf")
    assert p.returncode == 1, p.stderr
    assert f"{ns}/a/app" in p.stderr and f"{ns}/b/app" in p.stderr, p.stderr
    # with --scoped both are synced, as skopeo does
    both(["--src", "yaml", "--dest", "dir", "--scoped", y], work / "sk2", work / "rf2")
    assert_same_tree(work / "rf2", work / "sk2", [registry.addr])
    assert image_dirs(work / "rf2") == [f"{registry.addr}/{ns}/a/app:v1",
                                        f"{registry.addr}/{ns}/b/app:v1"]


def test_changed_source_tag_replaces_the_dir_image(registry, imgs, fresh_app, work):
    name = f"{registry.addr}/{fresh_app}"
    base = fresh_app.rsplit("/", 1)[1]
    args = ["--src", "docker", "--dest", "dir", *NO_TLS]
    ok(regfs_sync(*args, name, work / "rf"), "regfs")
    images.push(imgs.oci_index.dir, registry.addr, fresh_app, "v1")   # v1 changes
    before = file_stats(work / "rf")
    df = work / "digests"
    p = ok(regfs_sync(*args, "--digestfile", df, name, work / "rf"), "regfs")
    assert f"Updated docker://{name}:v1" in p.stderr, p.stderr
    # the new v1 is what skopeo writes for it into an empty directory; the others untouched
    ok(skopeo_sync(*args, f"{name}:v1", work / "sk"), "skopeo")
    assert tools.tree_diff(work / "rf" / f"{base}:v1", work / "sk" / f"{base}:v1") == ""
    after = file_stats(work / "rf")
    for path, st in before.items():
        if not path.startswith(f"{base}:v1"):
            assert after.get(path) == st, f"{path} changed"
    assert sorted(os.listdir(work / "rf")) == sorted(f"{base}:{t}" for t in ("v1", "v2", "list"))
    assert _digestfile_lines(df)[f"dir:{work / 'rf'}/{base}:v1"] == tools.sha256_file(
        work / "rf" / f"{base}:v1" / "manifest.json")


def test_dry_run_writes_no_digestfile(app, work):
    df = work / "digests"
    ok(regfs_sync("--dry-run", "--digestfile", df, "--src", "docker", "--dest", "dir", *NO_TLS,
                  app.name, work / "rf"), "regfs")
    assert not df.exists()
    assert not (work / "rf").exists()


def test_retry_times(proxy, imgs, app, work):
    """--retry-times 0: one attempt; --retry-times 3 gets past two 503s of a blob (with a
    short --retry-delay, a regfs flag newer skopeo has too)."""
    src = f"{proxy.addr}/{app.repo}:v1"
    blob = f"/blobs/{imgs.oci.image.layers[1].digest}"
    args = ["--src", "docker", "--dest", "dir", *NO_TLS]
    failures = lambda: len([e for e in proxy.requests("GET", blob) if e.status == 503])  # noqa
    proxy.add(Fault.status(503), method="GET", path=blob, forever=True)
    p = regfs_sync(*args, "--retry-times", "0", src, work / "rf0")
    assert p.returncode == 1, p.stderr
    assert "503" in p.stderr, p.stderr
    assert failures() == 1, proxy.dump()
    assert not (work / "rf0").exists() or image_dirs(work / "rf0") == []
    proxy.clear_faults()
    proxy.add(Fault.status(503), method="GET", path=blob, count=2)
    ok(regfs_sync(*args, "--retry-times", "3", "--retry-delay", "10ms", src, work / "rf"),
       "regfs")
    assert failures() == 3, proxy.dump()
    ok(skopeo_sync(*args, "--retry-times", "3", src, work / "sk"), "skopeo")
    assert_same_tree(work / "rf", work / "sk", ["app:v1"])
