"""`regfs delete`: docker-registry 2.8 deletes manifests by digest only, which removes every
tag on that digest; regfs refuses when other tags share it, unless --force (issue #2)."""

import pytest

from testlib import images, tools


@pytest.fixture(scope="module")
def small_image(session_dir):
    img = session_dir / "delete-img"
    if not img.exists():
        images.make_image(img, seed=41, fmt="oci", layers=["gzip"], layer_size=4096)
    return img


@pytest.fixture(scope="module")
def other_image(session_dir):
    img = session_dir / "delete-other"
    if not img.exists():
        images.make_image(img, seed=42, fmt="docker", layers=["gzip"], layer_size=4096)
    return img


def _gone(oracle, ref):
    p = oracle.inspect(ref, check=False)
    return p.returncode != 0 and "manifest unknown" in p.stderr


def test_delete_lone_tag(regfs, oracle, registry, small_image, repo_name):
    repo = repo_name("del")
    digest = images.push(small_image, registry.addr, repo, "only")
    p = regfs("delete", registry.ref(repo, "only"))
    assert p.returncode == 0, p.stderr
    assert _gone(oracle, registry.ref(repo, "only"))
    assert not registry.has_manifest(repo, digest)
    assert registry.tags(repo) == []


def test_delete_refuses_when_another_tag_shares_the_digest(regfs, oracle, registry,
                                                          small_image, repo_name):
    repo = repo_name("del")
    digest = images.push(small_image, registry.addr, repo, "first")
    images.push(small_image, registry.addr, repo, "second")
    p = regfs("delete", registry.ref(repo, "first"))
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    line = tools.one_line_error(p)
    assert "second" in line
    assert registry.tags(repo) == ["first", "second"]
    assert oracle.digest_of(registry.ref(repo, "first")) == digest
    assert oracle.digest_of(registry.ref(repo, "second")) == digest


def test_delete_names_every_other_tag(regfs, registry, small_image, repo_name):
    repo = repo_name("del")
    for tag in ("a1", "b2", "c3"):
        images.push(small_image, registry.addr, repo, tag)
    p = regfs("delete", registry.ref(repo, "b2"))
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert "a1" in line and "c3" in line
    assert registry.tags(repo) == ["a1", "b2", "c3"]


def test_delete_force_removes_all_tags_of_the_digest(regfs, oracle, registry, small_image,
                                                     repo_name):
    repo = repo_name("del")
    digest = images.push(small_image, registry.addr, repo, "first")
    images.push(small_image, registry.addr, repo, "second")
    p = regfs("delete", "--force", registry.ref(repo, "first"))
    assert p.returncode == 0, p.stderr
    assert _gone(oracle, registry.ref(repo, "first"))
    assert _gone(oracle, registry.ref(repo, "second"))
    assert not registry.has_manifest(repo, digest)


def test_delete_leaves_tags_of_other_digests(regfs, oracle, registry, small_image,
                                             other_image, repo_name):
    repo = repo_name("del")
    images.push(small_image, registry.addr, repo, "doomed")
    other = images.push(other_image, registry.addr, repo, "keeper")
    p = regfs("delete", registry.ref(repo, "doomed"))
    assert p.returncode == 0, p.stderr
    assert _gone(oracle, registry.ref(repo, "doomed"))
    assert registry.tags(repo) == ["keeper"]
    assert oracle.digest_of(registry.ref(repo, "keeper")) == other


def test_delete_by_digest(regfs, oracle, registry, small_image, repo_name):
    """A digest reference names exactly one manifest; deleting it is what was asked."""
    repo = repo_name("del")
    digest = images.push(small_image, registry.addr, repo, "t")
    p = regfs("delete", registry.ref(repo, digest))
    assert p.returncode == 0, p.stderr
    assert not registry.has_manifest(repo, digest)
    assert _gone(oracle, registry.ref(repo, "t"))


def test_delete_multi_platform_image(regfs, oracle, registry, imgs, repo_name):
    repo = repo_name("del")
    images.push(imgs.oci_index.dir, registry.addr, repo, "multi")
    p = regfs("delete", registry.ref(repo, "multi"))
    assert p.returncode == 0, p.stderr
    assert _gone(oracle, registry.ref(repo, "multi"))
    assert not registry.has_manifest(repo, imgs.oci_index.digest)


def test_delete_missing_tag_fails(regfs, registry, small_image, repo_name):
    repo = repo_name("del")
    images.push(small_image, registry.addr, repo, "present")
    p = regfs("delete", registry.ref(repo, "absent"))
    assert p.returncode == 1
    tools.one_line_error(p)
    assert registry.tags(repo) == ["present"]


def test_delete_usage_errors(regfs, registry):
    assert regfs("delete").returncode == 2
    assert regfs("delete", "--bogus-flag", registry.ref("x/y", "t")).returncode == 2
