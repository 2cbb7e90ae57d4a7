"""Format and compression conversion in copy and sync (issue #13): -f oci|v2s2,
--dest-compress-format gzip|zstd, --dest-compress, --dest-decompress, against skopeo as the
oracle. Compressor output differs between zlib/libzstd and Go's, so layer digests of
re-encoded layers are compared through what they decompress to; everything else — media types,
config, the manifest's shape, and for a format change alone the manifest bytes — must equal
skopeo's."""

import base64
import gzip
import hashlib
import json
import subprocess

from types import SimpleNamespace

import pytest

from testlib import images, tools

ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _raw(oracle, ref):
    return oracle.inspect(ref, "--raw", binary=True).stdout


def _manifest(oracle, ref):
    return json.loads(_raw(oracle, ref))


def _blob(registry, repo, digest):
    resp = registry.get(f"/v2/{repo}/blobs/{digest}")
    assert resp.status == 200, (repo, digest, resp.status)
    return resp.body


def _unzstd(data):
    return subprocess.run(["zstd", "-dc"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def _uncompressed(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return _unzstd(data)
    return data


def _diff_ids(registry, repo, manifest):
    """sha256 of each layer's uncompressed bytes, read from the registry."""
    return ["sha256:" + hashlib.sha256(_uncompressed(_blob(registry, repo, l["digest"])))
            .hexdigest() for l in manifest["layers"]]


def _config(registry, repo, manifest):
    return json.loads(_blob(registry, repo, manifest["config"]["digest"]))


def _shape(m):
    """A manifest without what depends on the compressor's bytes."""
    m = json.loads(json.dumps(m))
    for l in m["layers"]:
        l.pop("digest")
        l.pop("size")
    return m


def _both(regfs_ok, oracle, registry, repo_name, src, *flags):
    """The same copy by regfs and by skopeo into fresh repositories of `registry` — another
    registry than the source's, where skopeo can't mount the source's blobs instead of
    converting them: (mine, theirs) refs."""
    mine = registry.ref(repo_name("conv-regfs"), "v1")
    theirs = registry.ref(repo_name("conv-skopeo"), "v1")
    regfs_ok("copy", "-q", *flags, src, mine)
    oracle.copy(src, theirs, *flags)
    return mine, theirs


def _repo(ref):
    return ref.split("/", 3)[3].rsplit(":", 1)[0]


@pytest.mark.parametrize("name,fmt", [("docker", "oci"), ("oci", "v2s2")])
def test_format_conversion_equals_skopeo_byte_for_byte(regfs_ok, oracle, imgs, work, name, fmt):
    it = getattr(imgs, name)
    regfs_ok("copy", "-q", "-f", fmt, it.ref, f"dir:{work / 'mine'}")
    oracle.copy(it.ref, f"dir:{work / 'theirs'}", "-f", fmt)
    raw = (work / "mine" / "manifest.json").read_bytes()
    assert raw == (work / "theirs" / "manifest.json").read_bytes()
    m = json.loads(raw)
    assert m["mediaType"] == images.MT["oci" if fmt == "oci" else "docker"]["manifest"]
    # The config converted to OCI's as skopeo converts it (or kept for v2s2), and the layers
    # are the source's, digest for digest: the same files.
    assert tools.tree_diff(work / "mine", work / "theirs") == ""
    assert [l["digest"] for l in m["layers"]] == [b.digest for b in it.image.layers]


def test_format_conversion_to_a_registry_equals_skopeo(regfs_ok, oracle, registry, registry2,
                                                        repo_name, work):
    """An image of gzip layers only: nothing is recompressed, and the converted manifest
    pushed equals skopeo's byte for byte."""
    img = images.pushed_image(work / "gz", registry, "conv/gz", seed=31, fmt="docker",
                              layers=["gzip", "gzip"])
    src = registry.ref("conv/gz", "v1")
    mine, theirs = _both(regfs_ok, oracle, registry2, repo_name, src, "-f", "oci")
    assert _raw(oracle, mine) == _raw(oracle, theirs)
    assert [l["digest"] for l in _manifest(oracle, mine)["layers"]] == \
        [b.digest for b in img.layers]


def test_format_conversion_is_deterministic(regfs_ok, oracle, registry, imgs, repo_name):
    a = registry.ref(repo_name("det"), "v1")
    b = registry.ref(repo_name("det"), "v1")
    for ref in (a, b):
        regfs_ok("copy", "-q", "-f", "oci", "--dest-compress-format", "zstd", imgs.docker.ref,
                 ref)
    assert oracle.digest_of(a) == oracle.digest_of(b)


def test_gzip_to_zstd_equals_skopeo_but_for_the_compressed_bytes(regfs_ok, oracle, registry2,
                                                                 imgs, repo_name, work):
    it = imgs.oci   # gzip, tar, gzip, tar: all become zstd
    registry = registry2
    mine, theirs = _both(regfs_ok, oracle, registry, repo_name, it.ref,
                         "--dest-compress-format", "zstd")
    m, t = _manifest(oracle, mine), _manifest(oracle, theirs)
    assert _shape(m) == _shape(t)
    assert [l["mediaType"] for l in m["layers"]] == [ZSTD_LAYER] * len(it.image.layers)
    # The config is the source's, and the zstd layers decompress to its diff_ids.
    assert m["config"] == json.loads(it.image.manifest)["config"]
    config = _config(registry, _repo(mine), m)
    assert _diff_ids(registry, _repo(mine), m) == config["rootfs"]["diff_ids"]
    assert _diff_ids(registry, _repo(theirs), t) == config["rootfs"]["diff_ids"]
    # skopeo reads regfs's zstd image, and regfs skopeo's.
    oracle.copy(mine, f"dir:{work / 'sk'}")
    regfs_ok("copy", "-q", theirs, f"dir:{work / 'rf'}")
    assert (work / "sk" / "manifest.json").read_bytes() == _raw(oracle, mine)
    assert (work / "rf" / "manifest.json").read_bytes() == _raw(oracle, theirs)


def test_recompression_is_deterministic(regfs_ok, oracle, registry, imgs, repo_name):
    refs = [registry.ref(repo_name("det"), "v1") for _ in range(2)]
    for ref in refs:
        regfs_ok("copy", "-q", "--dest-compress-format", "zstd", "--dest-compress-level", "5",
                 imgs.oci.ref, ref)
    assert _raw(oracle, refs[0]) == _raw(oracle, refs[1])


def test_docker_image_recompressed_to_zstd_becomes_oci_as_skopeo_makes_it(
        regfs_ok, oracle, registry2, imgs, repo_name):
    """v2s2 can't carry zstd: without -f, the manifest becomes OCI (config converted)."""
    mine, theirs = _both(regfs_ok, oracle, registry2, repo_name, imgs.docker.ref,
                         "--dest-compress-format", "zstd")
    m, t = _manifest(oracle, mine), _manifest(oracle, theirs)
    assert m["mediaType"] == images.MT["oci"]["manifest"]
    assert _shape(m) == _shape(t)
    assert m["config"] == t["config"]


def test_zstd_in_v2s2_is_refused_before_anything_is_written(regfs, registry, imgs, repo_name):
    repo = repo_name("refused")
    r = regfs("copy", "-q", "-f", "v2s2", "--dest-compress-format", "zstd", imgs.oci.ref,
              registry.ref(repo, "v1"))
    assert r.returncode == 1
    assert "zstd compression is not supported" in r.stderr
    assert registry.manifest(repo, "v1", method="HEAD").status == 404
    assert registry.get(f"/v2/{repo}/tags/list").status == 404  # not even a blob pushed


def test_schema1_and_unknown_formats_are_refused(regfs, imgs, work):
    r = regfs("copy", "-f", "v2s1", imgs.oci.ref, f"dir:{work / 'x'}")
    assert r.returncode == 2 and "schema 1" in r.stderr
    r = regfs("copy", "-f", "v3", imgs.oci.ref, f"dir:{work / 'x'}")
    assert r.returncode == 2 and "unknown format" in r.stderr
    r = regfs("copy", "--dest-compress-format", "bzip2", imgs.oci.ref, f"dir:{work / 'x'}")
    assert r.returncode == 2 and "bzip2" in r.stderr
    assert not (work / "x").exists()


def test_uncompressed_layers_are_gzipped_for_a_registry_as_skopeo_pushes_them(
        regfs_ok, oracle, registry2, imgs, repo_name, work):
    """A dir: source with tar layers → docker:// with a compression asked for: the registry
    gets gzip layers (without one, the copy preserves digests)."""
    # A new image: skopeo's blob-info cache knows no variant of its layers to substitute.
    it = SimpleNamespace(image=images.make_image(work / "img", seed=41, fmt="oci",
                                                 layers=["gzip", "tar", "gzip", "tar"]))
    registry = registry2
    src = f"dir:{it.image.path}"
    mine, theirs = _both(regfs_ok, oracle, registry, repo_name, src,
                         "--dest-compress-format", "gzip")
    m, t = _manifest(oracle, mine), _manifest(oracle, theirs)
    assert _shape(m) == _shape(t)
    assert [l["mediaType"] for l in m["layers"]] == [GZIP_LAYER] * 4
    # The gzip layers already were: same digests as the source; the others are new.
    for got, src_layer in zip(m["layers"], it.image.layers):
        assert (got["digest"] == src_layer.digest) == (src_layer.media_type == GZIP_LAYER)
    config = _config(registry, _repo(mine), m)
    assert _diff_ids(registry, _repo(mine), m) == config["rootfs"]["diff_ids"]
    # And again: the same bytes (deterministic gzip).
    again = registry.ref(repo_name("conv-regfs"), "v1")
    regfs_ok("copy", "-q", "--dest-compress-format", "gzip", src, again)
    assert _raw(oracle, again) == _raw(oracle, mine)


def test_dest_decompress_to_dir_equals_skopeo_byte_for_byte(regfs_ok, oracle, imgs, work):
    it = imgs.oci
    regfs_ok("copy", "-q", "--dest-decompress", it.ref, f"dir:{work / 'mine'}")
    oracle.copy(it.ref, f"dir:{work / 'theirs'}", "--dest-decompress")
    assert (work / "mine" / "manifest.json").read_bytes() == \
        (work / "theirs" / "manifest.json").read_bytes()
    assert tools.tree_diff(work / "mine", work / "theirs") == ""


def test_dest_compress_to_dir_matches_skopeo(regfs_ok, oracle, imgs, work):
    it = imgs.docker   # gzip, gzip, tar
    regfs_ok("copy", "-q", "--dest-compress", it.ref, f"dir:{work / 'mine'}")
    oracle.copy(it.ref, f"dir:{work / 'theirs'}", "--dest-compress")
    m = json.loads((work / "mine" / "manifest.json").read_bytes())
    t = json.loads((work / "theirs" / "manifest.json").read_bytes())
    assert _shape(m) == _shape(t)
    assert m["layers"][2]["mediaType"] == images.MT["docker"]["gzip"]
    for l in m["layers"]:
        data = (work / "mine" / l["digest"].split(":")[1]).read_bytes()
        assert data[:2] == b"\x1f\x8b"
        assert "sha256:" + hashlib.sha256(data).hexdigest() == l["digest"]
    # skopeo reads regfs's directory
    oracle.inspect(f"dir:{work / 'mine'}")


def test_skopeo_decompresses_regfs_gzip_of_several_members(regfs_ok, oracle, work):
    """regfs's gzip is a member per MiB of input: Go's reader (skopeo --dest-decompress) reads
    every member back into the layer's exact tar bytes."""
    img = images.make_image(work / "img", seed=43, fmt="oci", layers=["tar"],
                            layer_size=(3 << 20) + 4321)
    regfs_ok("copy", "-q", "--dest-compress", f"dir:{img.path}", f"dir:{work / 'mine'}")
    m = json.loads((work / "mine" / "manifest.json").read_bytes())
    gz = (work / "mine" / m["layers"][0]["digest"].split(":")[1]).read_bytes()
    assert gz.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff") >= 4   # a member per MiB
    oracle.copy(f"dir:{work / 'mine'}", f"dir:{work / 'back'}", "--dest-decompress")
    back = json.loads((work / "back" / "manifest.json").read_bytes())
    tar = (work / "back" / back["layers"][0]["digest"].split(":")[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == img.layers[0].digest


def test_compress_and_decompress_at_once_is_a_usage_error(regfs, imgs, work):
    r = regfs("copy", "--dest-compress", "--dest-decompress", imgs.oci.ref, f"dir:{work / 'x'}")
    assert r.returncode == 2


def test_a_conversion_does_not_carry_signatures(regfs, regfs_ok, oracle, registry, imgs, work,
                                                repo_name, monkeypatch):
    """A signed image: converting would invalidate its signatures, so it fails before writing
    unless they are removed; a new signature signs the converted manifest."""
    monkeypatch.setenv("COSIGN_PASSWORD", "convert-test")
    key = work / "key"
    regfs_ok("generate-key", "--output-prefix", key)
    signed = f"dir:{work / 'signed'}"
    regfs_ok("copy", "-q", "--sign-by-sigstore-private-key", f"{key}.private",
             "--sign-identity", "example.com/signed:v1", imgs.docker.ref, signed)
    assert (work / "signed" / "signature-1").exists()
    repo = repo_name("signed")
    r = regfs("copy", "-q", "-f", "oci", signed, registry.ref(repo, "v1"))
    assert r.returncode == 1 and "--remove-signatures" in r.stderr
    assert registry.manifest(repo, "v1", method="HEAD").status == 404
    out = work / "resigned"
    regfs_ok("copy", "-q", "-f", "oci", "--remove-signatures", "--sign-by-sigstore-private-key",
             f"{key}.private", "--sign-identity", "example.com/signed:v1", signed, f"dir:{out}")
    m = (out / "manifest.json").read_bytes()
    assert json.loads(m)["mediaType"] == images.MT["oci"]["manifest"]
    sig = json.loads((out / "signature-1").read_bytes().split(b"\n", 1)[1])
    payload = json.loads(base64.b64decode(sig["payload"]))
    assert payload["critical"]["image"]["docker-manifest-digest"] == \
        "sha256:" + hashlib.sha256(m).hexdigest()   # the converted manifest is what is signed


def test_sync_format_converts_and_never_skips_on_the_source_digest(regfs_ok, oracle, registry,
                                                                   registry2, imgs, work):
    src = f"{registry.addr}/{imgs.docker.repo}:{imgs.docker.tag}"
    args = ["sync", "-q", "--src", "docker", "--dest", "docker", "--src-tls-verify=false",
            "--dest-tls-verify=false"]
    regfs_ok(*args, "-f", "oci", src, f"{registry2.addr}/conv")
    dst = registry2.ref("conv/docker", imgs.docker.tag)
    first = _manifest(oracle, dst)
    assert first["mediaType"] == images.MT["oci"]["manifest"]
    # Without -f the unchanged source is copied as is (its digest) ...
    regfs_ok(*args, src, f"{registry2.addr}/conv")
    assert oracle.digest_of(dst) == imgs.docker.digest
    # ... and with -f again, the image there under the source's digest is converted anyway.
    regfs_ok(*args, "-f", "oci", src, f"{registry2.addr}/conv")
    assert _manifest(oracle, dst) == first


# ---- reading zstd: images skopeo made with zstd layers -------------------------------------

def test_zstd_images_copy_inspect_and_mount_like_gzip_ones(regfs_ok, oracle, registry,
                                                           registry2, imgs, work, mounts,
                                                           repo_name):
    # skopeo makes it on a registry of its own (the source's blobs can't be mounted there).
    ref = registry2.ref(repo_name("zstd-by-skopeo"), "v1")
    oracle.copy(imgs.oci.ref, ref, "--dest-compress-format", "zstd")
    raw = _raw(oracle, ref)
    m = json.loads(raw)
    assert [l["mediaType"] for l in m["layers"]] == [ZSTD_LAYER] * 4
    # copy: to dir:, oci: and another registry, digest for digest, as skopeo copies it
    regfs_ok("copy", "-q", ref, f"dir:{work / 'mine'}")
    oracle.copy(ref, f"dir:{work / 'theirs'}")
    assert tools.tree_diff(work / "mine", work / "theirs") == ""
    regfs_ok("copy", "-q", ref, f"oci:{work / 'layout'}:z")
    assert oracle.digest_of(f"oci:{work / 'layout'}:z") == tools.sha256_bytes(raw)
    back = registry.ref(repo_name("zstd-back"), "v1")
    regfs_ok("copy", "-q", f"oci:{work / 'layout'}:z", back)
    assert _raw(oracle, back) == raw
    # inspect: the same JSON as skopeo's
    tools.assert_same_inspect(regfs_ok("inspect", ref), oracle.inspect(ref))
    # the mount: the image directory equals skopeo's dir: copy
    mnt = mounts()
    repo = ref.split("/", 3)[3].rsplit(":", 1)[0]
    got = work / "cp"
    subprocess.run(["cp", "-r", str(mnt.image(registry2.addr, repo, "v1")), str(got)],
                   check=True, timeout=120)
    assert tools.tree_diff(got, work / "theirs") == ""
    # and decompressing: --dest-decompress of the zstd image equals skopeo's, byte for byte
    regfs_ok("copy", "-q", "--dest-decompress", ref, f"dir:{work / 'plain-mine'}")
    oracle.copy(ref, f"dir:{work / 'plain-theirs'}", "--dest-decompress")
    assert tools.tree_diff(work / "plain-mine", work / "plain-theirs") == ""
    config = _config(registry2, repo, m)
    for layer in json.loads((work / "plain-mine" / "manifest.json").read_bytes())["layers"]:
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
        assert layer["digest"] in config["rootfs"]["diff_ids"]


def test_zstd_back_to_gzip_equals_skopeos_shape(regfs, regfs_ok, oracle, registry2, imgs,
                                               repo_name, work):
    ref = registry2.ref(repo_name("zstd-src"), "v1")
    oracle.copy(imgs.oci.ref, ref, "--dest-compress-format", "zstd")
    # To dir: (where skopeo substitutes no variant it knows of another blob).
    flags = ["--dest-compress", "--dest-compress-format", "gzip"]
    regfs_ok("copy", "-q", *flags, ref, f"dir:{work / 'mine'}")
    oracle.copy(ref, f"dir:{work / 'theirs'}", *flags)
    m = json.loads((work / "mine" / "manifest.json").read_bytes())
    t = json.loads((work / "theirs" / "manifest.json").read_bytes())
    assert _shape(m) == _shape(t)
    assert [l["mediaType"] for l in m["layers"]] == [GZIP_LAYER] * 4
    config = json.loads((work / "mine" / m["config"]["digest"].split(":")[1]).read_bytes())
    got = ["sha256:" + hashlib.sha256(gzip.decompress(
        (work / "mine" / l["digest"].split(":")[1]).read_bytes())).hexdigest()
        for l in m["layers"]]
    assert got == config["rootfs"]["diff_ids"]
    # -f v2s2 can't carry zstd layers kept as they are: refused, nothing written.
    r = regfs("copy", "-q", "-f", "v2s2", ref, f"dir:{work / 'v2s2'}")
    assert r.returncode == 1 and "zstd" in r.stderr
    assert not (work / "v2s2").exists()
    regfs_ok("copy", "-q", "-f", "v2s2", f"dir:{work / 'mine'}", f"dir:{work / 'v2s2'}")


def test_decompressed_layers_get_their_original_compressed_digests_back(
        regfs_ok, oracle, registry, registry2, imgs, work, repo_name):
    """docker:// → (decompressed) dir: → docker:// compressing again: the blob-info cache knows
    each uncompressed layer's gzip original, which the destination registry has in another
    repository, so the original digests come back instead of new gzip bytes."""
    it = imgs.docker_list.image.instances[0]   # gzip layers only
    src = registry.ref(imgs.docker_list.repo, it.digest)
    there = registry2.ref(repo_name("orig"), "v1")
    regfs_ok("copy", "-q", src, there)
    regfs_ok("copy", "-q", "--dest-decompress", src, f"dir:{work / 'plain'}")
    plain = json.loads((work / "plain" / "manifest.json").read_bytes())
    assert [l["digest"] for l in plain["layers"]] != [b.digest for b in it.layers]
    back = registry2.ref(repo_name("back"), "v1")
    regfs_ok("copy", "-q", "--dest-compress-format", "gzip", f"dir:{work / 'plain'}", back)
    m = _manifest(oracle, back)
    assert [l["digest"] for l in m["layers"]] == [b.digest for b in it.layers]
    assert [l["mediaType"] for l in m["layers"]] == [b.media_type for b in it.layers]
    # Another algorithm is no substitute: zstd is compressed afresh.
    z = registry2.ref(repo_name("zstd"), "v1")
    regfs_ok("copy", "-q", "--dest-compress-format", "zstd", f"dir:{work / 'plain'}", z)
    assert all(l["mediaType"] == ZSTD_LAYER for l in _manifest(oracle, z)["layers"])


def test_preserve_digests_refuses_a_conversion(regfs, imgs, work):
    r = regfs("copy", "-q", "--preserve-digests", "-f", "v2s2", imgs.oci.ref, f"dir:{work / 'x'}")
    assert r.returncode == 1 and "--preserve-digests" in r.stderr
    assert not (work / "x").exists()


def test_an_index_recompressed_names_its_new_instances(regfs, regfs_ok, oracle, registry2, imgs,
                                                       work, repo_name):
    """--all with zstd: every instance is rebuilt and the index lists them by their new
    digests; a format change of a whole index is refused (regfs does not convert indexes)."""
    it = imgs.oci_index
    dst = registry2.ref(repo_name("idx"), "v1")
    regfs_ok("copy", "-q", "--all", "--dest-compress-format", "zstd", it.ref, dst)
    index = _manifest(oracle, dst)
    assert index["mediaType"] == images.MT["oci"]["index"]
    for entry, inst in zip(index["manifests"], it.image.instances):
        assert entry["digest"] != inst.digest
        assert entry["platform"] == json.loads(it.image.manifest)["manifests"][
            it.image.instances.index(inst)]["platform"]
        m = _manifest(oracle, registry2.ref(_repo(dst), entry["digest"]))
        assert all(l["mediaType"] == ZSTD_LAYER for l in m["layers"])
    r = regfs("copy", "-q", "--all", "-f", "v2s2", it.ref, f"dir:{work / 'v2s2'}")
    assert r.returncode == 1 and "multi-platform" in r.stderr
    assert not (work / "v2s2").exists()


def test_oci_layout_gets_zstd_layers_named_at_commit(regfs_ok, oracle, imgs, work):
    """oci: with --dest-compress --dest-compress-format zstd: blobs named once re-encoded,
    no temporary left, skopeo reads the layout and its layers decompress to the diff_ids."""
    layout = work / "layout"
    regfs_ok("copy", "-q", "--dest-compress", "--dest-compress-format", "zstd", imgs.oci.ref,
             f"oci:{layout}:z")
    m = json.loads(_raw(oracle, f"oci:{layout}:z"))
    assert [l["mediaType"] for l in m["layers"]] == [ZSTD_LAYER] * 4
    blobs = layout / "blobs" / "sha256"
    assert sorted(p.name for p in blobs.iterdir()) == sorted(
        d.split(":")[1] for d in [m["config"]["digest"], *(l["digest"] for l in m["layers"])]
        + [tools.sha256_bytes(_raw(oracle, f"oci:{layout}:z"))])
    config = json.loads((blobs / m["config"]["digest"].split(":")[1]).read_bytes())
    got = ["sha256:" + hashlib.sha256(_unzstd((blobs / l["digest"].split(":")[1]).read_bytes()))
           .hexdigest() for l in m["layers"]]
    assert got == config["rootfs"]["diff_ids"]
