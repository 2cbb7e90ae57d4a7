"""`regfs inspect`, `list-tags` and `manifest-digest` print exactly what skopeo prints
(issue #2)."""

import pytest

from testlib import images, tools
from testlib.standard import ALL_IMAGES

INSPECT_FLAGS = [[], ["--raw"], ["--config"], ["--config", "--raw"], ["--no-tags"]]


def _same(mine, theirs):
    tools.assert_same_inspect(mine, theirs)


@pytest.mark.parametrize("flags", INSPECT_FLAGS, ids=lambda f: " ".join(f) or "plain")
@pytest.mark.parametrize("name", ALL_IMAGES)
def test_inspect_docker_matches_skopeo(regfs, oracle, imgs, name, flags):
    it = getattr(imgs, name)
    _same(regfs("inspect", *flags, it.ref, binary=True),
          oracle.inspect(it.ref, *flags, binary=True))


@pytest.mark.parametrize("flags", [[], ["--raw"], ["--config"]],
                         ids=lambda f: " ".join(f) or "plain")
def test_inspect_by_digest_matches_skopeo(regfs, oracle, registry, imgs, flags):
    ref = registry.ref(imgs.docker_list.repo, imgs.docker_list.digest)
    _same(regfs("inspect", *flags, ref, binary=True), oracle.inspect(ref, *flags, binary=True))
    inst = imgs.docker_list.image.instance("linux", "arm64")
    ref = registry.ref(imgs.docker_list.repo, inst.digest)
    _same(regfs("inspect", *flags, ref, binary=True), oracle.inspect(ref, *flags, binary=True))


def test_inspect_raw_is_the_manifest(regfs, imgs):
    for name in ALL_IMAGES:
        it = getattr(imgs, name)
        p = regfs("inspect", "--raw", it.ref, binary=True)
        assert p.returncode == 0 and p.stdout == it.image.manifest


def test_inspect_lists_all_tags(regfs, oracle, registry, repo_name, work):
    repo = repo_name("tags")
    img = images.make_image(work / "img", seed=31)
    for tag in ("v1", "latest", "a-b_c.d"):
        images.push(img.path, registry.addr, repo, tag)
    ref = registry.ref(repo, "v1")
    _same(regfs("inspect", ref, binary=True), oracle.inspect(ref, binary=True))
    assert b'"a-b_c.d"' in regfs("inspect", ref, binary=True).stdout


@pytest.mark.parametrize("flags", [[], ["--raw"], ["--config"]],
                         ids=lambda f: " ".join(f) or "plain")
@pytest.mark.parametrize("name", ["oci", "oci_index"])
def test_inspect_local_layouts_match_skopeo(regfs, oracle, imgs, work, name, flags):
    it = getattr(imgs, name)
    _same(regfs("inspect", *flags, f"dir:{it.dir}", binary=True),
          oracle.inspect(f"dir:{it.dir}", *flags, binary=True))
    all_ = ["--all"] if it.image.is_index else []
    oracle.copy(it.ref, f"oci:{work / 'layout'}:t", "--preserve-digests", *all_)
    ref = f"oci:{work / 'layout'}:t"
    _same(regfs("inspect", *flags, ref, binary=True), oracle.inspect(ref, *flags, binary=True))


def test_list_tags_matches_skopeo(regfs, oracle, registry, repo_name, work):
    repo = repo_name("tags")
    img = images.make_image(work / "img", seed=32, layers=["gzip"])
    for tag in ("v2", "v10", "latest", "1.0", "A_b-c"):
        images.push(img.path, registry.addr, repo, tag)
    ref = f"docker://{registry.addr}/{repo}"
    _same(regfs("list-tags", ref, binary=True), oracle.list_tags(ref, binary=True))


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_list_tags_standard_repos(regfs, oracle, registry, imgs, name):
    ref = f"docker://{registry.addr}/{getattr(imgs, name).repo}"
    _same(regfs("list-tags", ref, binary=True), oracle.list_tags(ref, binary=True))


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_manifest_digest_matches_skopeo(regfs, imgs, name):
    it = getattr(imgs, name)
    files = [it.dir / "manifest.json"] + [it.dir / (i.digest[7:] + ".manifest.json")
                                          for i in it.image.instances]
    for f in files:
        mine = regfs("manifest-digest", f)
        theirs = tools.skopeo("manifest-digest", f, check=True)
        _same(mine, theirs)
    assert regfs("manifest-digest", it.dir / "manifest.json").stdout.strip() == it.digest


def test_manifest_digest_of_arbitrary_bytes(regfs, work):
    """skopeo hashes what is not a manifest (here: not even JSON) as is; so does regfs."""
    f = work / "weird.json"
    f.write_bytes(b'{"schemaVersion": 2, "layers": []}\n')
    _same(regfs("manifest-digest", f), tools.skopeo("manifest-digest", f))
