"""Bad input: one line on stderr, exit 1 (2 for usage errors), and nothing written — no
directory created, no tag pushed (issue #2). skopeo is asked first wherever it is the
reference for what counts as an error."""

import pytest

from testlib import images, tools


def _fails(p, code=1):
    assert p.returncode == code, (
        f"expected exit {code}, got {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return tools.one_line_error(p)


# ---- references ---------------------------------------------------------------------------

def test_unknown_transport(regfs, oracle, imgs, work):
    dest = work / "out"
    assert oracle.copy("foo:bar", f"dir:{dest}", check=False).returncode == 1
    line = _fails(regfs("copy", "foo:bar", f"dir:{dest}"))
    assert "foo" in line
    assert not dest.exists()
    _fails(regfs("copy", imgs.oci.ref, "foo:bar"))
    assert not (work / "bar").exists() and not (work / "foo:bar").exists()
    _fails(regfs("inspect", "foo:bar"))


@pytest.mark.parametrize("bad", ["UPPER", "repo:bad:tag", "repo@sha256:1234", "-lead/x", ""],
                         ids=["uppercase", "two-tags", "short-digest", "leading-dash",
                              "empty-repo"])
def test_malformed_docker_reference(regfs, oracle, registry, work, bad):
    ref = f"docker://{registry.addr}/{bad}"
    dest = work / "out"
    assert oracle.copy(ref, f"dir:{dest}", check=False).returncode == 1   # skopeo agrees
    _fails(regfs("copy", ref, f"dir:{dest}"))
    assert not dest.exists()
    _fails(regfs("inspect", ref))


def test_empty_docker_reference(regfs, oracle, work):
    dest = work / "out"
    assert oracle.copy("docker://", f"dir:{dest}", check=False).returncode == 1
    _fails(regfs("copy", "docker://", f"dir:{dest}"))
    assert not dest.exists()


def test_malformed_destination_pushes_nothing(regfs, registry, imgs, repo_name):
    repo = repo_name("bad")
    _fails(regfs("copy", imgs.oci.ref, f"docker://{registry.addr}/{repo}:bad:tag"))
    _fails(regfs("copy", imgs.oci.ref, f"docker://{registry.addr}/{repo.upper()}:t"))
    assert registry.tags(repo) == []


# ---- missing things -----------------------------------------------------------------------

def test_missing_tag_404(regfs, oracle, registry, imgs, work):
    dest = work / "out"
    ref = registry.ref(imgs.oci.repo, "no-such-tag")
    assert oracle.copy(ref, f"dir:{work / 'sk'}", check=False).returncode == 1
    _fails(regfs("copy", ref, f"dir:{dest}"))
    assert not dest.exists()
    _fails(regfs("inspect", ref))


def test_missing_repository_404(regfs, registry, registry2, work, repo_name):
    dest = work / "out"
    _fails(regfs("copy", registry.ref(repo_name("nothing"), "v1"), f"dir:{dest}"))
    assert not dest.exists()
    repo = repo_name("bad")
    _fails(regfs("copy", registry.ref(repo_name("nothing"), "v1"), registry2.ref(repo, "v1")))
    assert registry2.tags(repo) == []
    _fails(regfs("list-tags", f"docker://{registry.addr}/{repo_name('nothing')}"))


def test_missing_digest_404(regfs, registry, imgs, work):
    dest = work / "out"
    ref = registry.ref(imgs.oci.repo, "sha256:" + "0" * 64)
    _fails(regfs("copy", ref, f"dir:{dest}"))
    assert not dest.exists()


def test_unreachable_registry(regfs, registry2, imgs, work, repo_name):
    port = tools.free_port()
    ref = f"docker://127.0.0.1:{port}/some/repo:v1"
    dest = work / "out"
    _fails(regfs("copy", ref, f"dir:{dest}", timeout=60))
    assert not dest.exists()
    _fails(regfs("inspect", ref, timeout=60))
    _fails(regfs("list-tags", f"docker://127.0.0.1:{port}/some/repo", timeout=60))
    _fails(regfs("delete", ref, timeout=60))
    _fails(regfs("copy", f"dir:{imgs.oci.dir}", ref, timeout=60))


def test_missing_local_sources(regfs, work):
    dest = work / "out"
    _fails(regfs("copy", f"dir:{work / 'nope'}", f"dir:{dest}"))
    _fails(regfs("copy", f"oci:{work / 'nope'}:t", f"dir:{dest}"))
    (work / "empty").mkdir()
    _fails(regfs("copy", f"dir:{work / 'empty'}", f"dir:{dest}"))
    assert not dest.exists()
    _fails(regfs("manifest-digest", work / "nope.json"))


def test_oci_layout_without_that_ref(regfs, oracle, imgs, work):
    layout = work / "layout"
    oracle.copy(imgs.oci.ref, f"oci:{layout}:present", "--preserve-digests")
    dest = work / "out"
    _fails(regfs("copy", f"oci:{layout}:absent", f"dir:{dest}"))
    assert not dest.exists()


# ---- destinations -------------------------------------------------------------------------

def test_nonempty_non_image_dir_is_refused_like_skopeo(regfs, oracle, imgs, work):
    dest = work / "precious"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me\n")
    (dest / "sub").mkdir()
    # skopeo refuses to overwrite it ...
    p = oracle.copy(imgs.oci.ref, f"dir:{dest}", check=False)
    assert p.returncode == 1 and "not a containers image directory" in p.stderr
    assert tools.tree_files(dest) == ["notes.txt"]
    # ... and so does regfs, leaving it as it was
    _fails(regfs("copy", imgs.oci.ref, f"dir:{dest}"))
    assert tools.tree_files(dest) == ["notes.txt"]
    assert (dest / "notes.txt").read_text() == "keep me\n"
    assert (dest / "sub").is_dir()


def test_dir_with_foreign_version_file_is_refused_like_skopeo(regfs, oracle, imgs, work):
    dest = work / "odd"
    dest.mkdir()
    (dest / "version").write_text("Directory Transport Version: 9.9\n")
    (dest / "manifest.json").write_text("{}")
    p = oracle.copy(imgs.oci.ref, f"dir:{dest}", check=False)
    assert p.returncode == 1
    _fails(regfs("copy", imgs.oci.ref, f"dir:{dest}"))
    assert sorted(tools.tree_files(dest)) == ["manifest.json", "version"]


def test_destination_is_a_file(regfs, imgs, work):
    f = work / "file"
    f.write_text("x")
    _fails(regfs("copy", imgs.oci.ref, f"dir:{f}"))
    assert f.read_text() == "x"


def test_failed_push_leaves_no_tag_for_bad_local_image(regfs, registry, imgs, work,
                                                       repo_name):
    """A dir: image with a corrupted blob is refused before any tag exists."""
    src = work / "broken"
    img = images.make_image(src, seed=61, layers=["gzip", "tar"])
    victim = src / img.layers[1].digest[7:]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    repo = repo_name("bad")
    line = _fails(regfs("copy", f"dir:{src}", registry.ref(repo, "v1")))
    assert "digest" in line.lower() or img.layers[1].digest[7:19] in line
    assert registry.tags(repo) == []
    # the same for a missing blob
    victim.unlink()
    _fails(regfs("copy", f"dir:{src}", registry.ref(repo, "v1")))
    assert registry.tags(repo) == []


# ---- usage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    [],
    ["no-such-command"],
    ["copy"],
    ["copy", "dir:/tmp/only-one-arg"],
    ["copy", "--no-such-flag", "dir:/a", "dir:/b"],
    ["copy", "dir:/a", "dir:/b", "dir:/c"],
    ["inspect"],
    ["inspect", "--bogus", "docker://127.0.0.1:1/x:y"],
    ["list-tags"],
    ["manifest-digest"],
    ["delete"],
], ids=lambda a: " ".join(a) or "no-args")
def test_usage_errors_exit_2(regfs, argv, work):
    _fails(regfs(*argv), code=2)
    assert not any(work.iterdir())


def test_help_exits_0(regfs):
    for argv in (["--help"], ["copy", "--help"], ["inspect", "--help"]):
        p = regfs(*argv)
        assert p.returncode == 0, (argv, p.stderr)
        assert p.stdout.strip()
