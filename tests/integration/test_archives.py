"""docker-archive: and oci-archive: against skopeo, both ways (issue #13).

regfs writes what skopeo writes (a docker-archive byte for byte), skopeo reads every archive
regfs writes and regfs reads every archive skopeo writes, digest for digest; multi-image
archives are selected by RepoTags entry or @N; compressed archives are read; bad archives are
refused with a message naming what is wrong, and a failed copy leaves nothing behind.
"""

import gzip
import io
import json
import os
import subprocess
import tarfile

import pytest

from testlib import images, tools


def _both_read(regfs_ok, oracle, work, ref):
    """Copy ref to dir: with regfs and with skopeo; return (regfs_dir, skopeo_dir)."""
    mine, theirs = work / "read-regfs", work / "read-skopeo"
    regfs_ok("copy", "-q", ref, f"dir:{mine}")
    oracle.copy(ref, f"dir:{theirs}")
    return mine, theirs


def _members(path):
    with tarfile.open(path) as t:
        return [(m.name, m.type, m.size, m.linkname) for m in t.getmembers()]


def _leftovers(directory, keep=()):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """An image whose layers are uncompressed, in dir: (a docker-archive keeps them as they are)."""
    root = tmp_path_factory.mktemp("plain")
    return images.make_image(root / "img", seed=31, fmt="docker", layers=["tar", "tar", "tar"])


@pytest.fixture(scope="module")
def plain_oci(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain-oci")
    return images.make_image(root / "img", seed=32, fmt="oci", layers=["tar", "tar"])


# ---- docker-archive: written ---------------------------------------------------------------

@pytest.mark.parametrize("tag", ["", ":127.0.0.1:5000/some/repo:v2", ":busybox"])
def test_docker_archive_written_is_skopeos_byte_for_byte(regfs_ok, oracle, plain, work, tag):
    mine, theirs = work / "regfs.tar", work / "skopeo.tar"
    regfs_ok("copy", "-q", f"dir:{plain.path}", f"docker-archive:{mine}{tag}")
    oracle.copy(f"dir:{plain.path}", f"docker-archive:{theirs}{tag}")
    assert _members(mine) == _members(theirs)
    assert mine.read_bytes() == theirs.read_bytes()
    assert _leftovers(work) == ["regfs.tar", "skopeo.tar"]


def test_skopeo_reads_the_docker_archive_regfs_writes_from_a_registry(regfs_ok, oracle, imgs,
                                                                     work):
    for name in ("docker", "oci"):
        it = getattr(imgs, name)
        archive = work / f"{name}.tar"
        regfs_ok("copy", "-q", it.ref, f"docker-archive:{archive}:example.com/{name}:v1")
        manifest = json.loads(subprocess.run(["tar", "-xOf", archive, "manifest.json"],
                                             check=True, capture_output=True).stdout)
        assert manifest[0]["RepoTags"] == [f"example.com/{name}:v1"]
        assert manifest[0]["Config"] == it.image.config.digest[7:] + ".json"
        mine, theirs = work / f"{name}-regfs", work / f"{name}-skopeo"
        regfs_ok("copy", "-q", f"docker-archive:{archive}", f"dir:{mine}")
        oracle.copy(f"docker-archive:{archive}", f"dir:{theirs}")
        assert tools.tree_diff(mine, theirs) == ""
        # the config is the image's, and its layers are the image's diff_ids
        assert (mine / it.image.config.digest[7:]).read_bytes() == it.image.config.data


def test_docker_archive_written_from_a_gzip_image_is_skopeos_byte_for_byte(regfs_ok, oracle,
                                                                          imgs, work):
    """Layers are stored decompressed, named by their diff_ids, in the order of the manifest."""
    mine, theirs = work / "regfs.tar", work / "skopeo.tar"
    regfs_ok("copy", "-q", imgs.docker.ref, f"docker-archive:{mine}:example.com/app:v1")
    oracle.copy(imgs.docker.ref, f"docker-archive:{theirs}:example.com/app:v1")
    assert _members(mine) == _members(theirs)
    assert mine.read_bytes() == theirs.read_bytes()


def test_docker_archive_round_trip_keeps_the_config_and_the_diff_ids(regfs_ok, oracle, imgs,
                                                                     registry, repo_name,
                                                                     work):
    it = imgs.docker
    archive = work / "a.tar"
    regfs_ok("copy", "-q", it.ref, f"docker-archive:{archive}")
    dest = registry.ref(repo_name(), "back")
    regfs_ok("copy", "-q", f"docker-archive:{archive}", dest)
    pushed = json.loads(oracle.inspect(dest, "--raw").stdout)
    assert pushed["config"]["digest"] == it.image.config.digest
    diff_ids = json.loads(it.image.config.data)["rootfs"]["diff_ids"]
    assert [layer["digest"] for layer in pushed["layers"]] == diff_ids
    # and it is the image skopeo reads from the archive
    mine, theirs = work / "from-registry", work / "from-archive"
    oracle.copy(dest, f"dir:{mine}")
    oracle.copy(f"docker-archive:{archive}", f"dir:{theirs}")
    assert tools.tree_diff(mine, theirs) == ""


def test_docker_archive_destination_refuses_an_existing_archive(regfs, plain, work):
    archive = work / "a.tar"
    archive.write_bytes(b"not empty")
    p = regfs("copy", "-q", f"dir:{plain.path}", f"docker-archive:{archive}")
    assert p.returncode == 1
    assert "doesn't support modifying existing images" in p.stderr
    assert archive.read_bytes() == b"not empty"
    assert _leftovers(work) == ["a.tar"]


def test_a_failed_copy_to_docker_archive_leaves_nothing(regfs, plain, work):
    broken = work / "broken"
    subprocess.run(["cp", "-r", plain.path, broken], check=True)
    (broken / plain.layers[1].digest[7:]).write_bytes(b"corrupt")
    archive = work / "out.tar"
    p = regfs("copy", "-q", f"dir:{broken}", f"docker-archive:{archive}")
    assert p.returncode == 1
    assert "mismatch" in p.stderr
    assert _leftovers(work) == ["broken"]


def test_docker_archive_destination_refuses_an_index_selector(regfs, plain, work):
    p = regfs("copy", "-q", f"dir:{plain.path}", f"docker-archive:{work}/a.tar:@0")
    assert p.returncode == 1
    assert "@0" in p.stderr
    assert _leftovers(work) == []


# ---- docker-archive: read ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["docker", "oci"])
def test_regfs_reads_the_docker_archive_skopeo_writes(regfs, regfs_ok, oracle, imgs, work, name):
    it = getattr(imgs, name)
    archive = work / "skopeo.tar"
    oracle.copy(it.ref, f"docker-archive:{archive}:busybox:v1")
    # the manifest synthesized from the archive, byte for byte
    tools.assert_same_output(regfs("inspect", "--raw", f"docker-archive:{archive}"),
                             oracle.inspect(f"docker-archive:{archive}", "--raw", check=False))
    mine, theirs = _both_read(regfs_ok, oracle, work, f"docker-archive:{archive}")
    assert tools.tree_diff(mine, theirs) == ""
    # selected by its tag, normalized as containers/image normalizes it
    regfs_ok("copy", "-q", f"docker-archive:{archive}:docker.io/library/busybox:v1",
             f"dir:{work}/by-tag")
    assert tools.tree_diff(mine, work / "by-tag") == ""


def _rewrite(src, dst, change):
    """A copy of tar `src` as `dst`, each member passed through change(info, data) -> (info,
    data) or None to drop it; members are appended by `change.extra` if set."""
    with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as out:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else None
            r = change(m, data)
            if r is None:
                continue
            info, data = r
            if data is not None:
                info.size = len(data)
            out.addfile(info, io.BytesIO(data) if data is not None else None)


def test_compressed_layer_files_are_served_uncompressed_with_their_uncompressed_size(
        regfs, regfs_ok, oracle, plain, work):
    archive = work / "skopeo.tar"
    oracle.copy(f"dir:{plain.path}", f"docker-archive:{archive}")
    gz = work / "gz-layers.tar"
    first = plain.layers[0].digest[7:] + ".tar"
    _rewrite(archive, gz, lambda m, d: (m, gzip.compress(d, mtime=0) if m.name == first else d))
    tools.assert_same_output(regfs("inspect", "--raw", f"docker-archive:{gz}"),
                             oracle.inspect(f"docker-archive:{gz}", "--raw", check=False))
    mine, theirs = _both_read(regfs_ok, oracle, work, f"docker-archive:{gz}")
    assert tools.tree_diff(mine, theirs) == ""


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_a_compressed_docker_archive_is_read_as_the_plain_one(regfs, regfs_ok, oracle, plain,
                                                              work, compress):
    archive = work / "skopeo.tar"
    oracle.copy(f"dir:{plain.path}", f"docker-archive:{archive}")
    subprocess.run([compress, "-q", "-k", archive], check=True)
    packed = work / ("skopeo.tar.gz" if compress == "gzip" else "skopeo.tar.zst")
    tools.assert_same_output(regfs("inspect", "--raw", f"docker-archive:{packed}"),
                             oracle.inspect(f"docker-archive:{archive}", "--raw", check=False))
    regfs_ok("copy", "-q", f"docker-archive:{packed}", f"dir:{work}/from-packed")
    oracle.copy(f"docker-archive:{archive}", f"dir:{work}/from-plain")
    assert tools.tree_diff(work / "from-packed", work / "from-plain") == ""


@pytest.fixture
def multi(oracle, plain, plain_oci, work):
    """A `docker save` of two images in one archive: manifest.json lists both, with their
    RepoTags (skopeo 1.9.3 writes one image per archive, so the two are merged here)."""
    a, b = work / "a.tar", work / "b.tar"
    oracle.copy(f"dir:{plain.path}", f"docker-archive:{a}:example.com/first:v1")
    oracle.copy(f"dir:{plain_oci.path}", f"docker-archive:{b}:example.com/second:v2")
    out = work / "multi.tar"
    items, seen = [], set()
    with tarfile.open(out, "w") as t:
        for part in (a, b):
            with tarfile.open(part) as p:
                for m in p.getmembers():
                    if m.name == "manifest.json":
                        items += json.loads(p.extractfile(m).read())
                    elif m.name not in seen and m.name != "repositories":
                        seen.add(m.name)
                        t.addfile(m, p.extractfile(m) if m.isfile() else None)
        data = json.dumps(items).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize("selector", [":example.com/first:v1", ":@0", ":example.com/second:v2",
                                      ":@1"])
def test_multi_image_archives_select_by_tag_and_index(regfs, regfs_ok, oracle, multi, work,
                                                      selector):
    ref = f"docker-archive:{multi}{selector}"
    tools.assert_same_output(regfs("inspect", "--raw", ref),
                             oracle.inspect(ref, "--raw", check=False))
    mine, theirs = _both_read(regfs_ok, oracle, work, ref)
    assert tools.tree_diff(mine, theirs) == ""


def test_multi_image_archives_need_a_selector(regfs, multi):
    p = regfs("inspect", "--raw", f"docker-archive:{multi}")
    assert p.returncode == 1
    assert "expected 1 image in manifest.json, found 2" in p.stderr
    p = regfs("inspect", "--raw", f"docker-archive:{multi}:@2")
    assert p.returncode == 1 and "only 2 manifest items" in p.stderr
    p = regfs("inspect", "--raw", f"docker-archive:{multi}:example.com/third:v1")
    assert p.returncode == 1 and "not found" in p.stderr
    p = regfs("inspect", "--raw", f"docker-archive:{multi}:x@sha256:" + "0" * 64)
    assert p.returncode == 2 or p.returncode == 1
    assert "digest" in p.stderr


# ---- bad archives --------------------------------------------------------------------------

def _tar_with(path, members):
    """A tar of (name, bytes) files, written by Python's tarfile (no checks of its own)."""
    with tarfile.open(path, "w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.fixture
def skopeo_archive(oracle, plain, work):
    archive = work / "good.tar"
    oracle.copy(f"dir:{plain.path}", f"docker-archive:{archive}")
    return archive


def _refused(regfs, ref, *needles):
    p = regfs("copy", "-q", ref, f"dir:{ref.split(':')[1]}.out")
    assert p.returncode == 1, p.stderr
    for n in needles:
        assert n in p.stderr, p.stderr
    return p


def test_a_truncated_archive_is_refused(regfs, skopeo_archive, work):
    data = skopeo_archive.read_bytes()
    for cut in (len(data) // 3, 700):
        bad = work / "cut.tar"
        bad.write_bytes(data[:cut])
        _refused(regfs, f"docker-archive:{bad}", "truncated")
    assert not (work / "cut.tar.out").exists()


def test_a_member_climbing_out_is_refused(regfs, skopeo_archive, work):
    bad = work / "climb.tar"
    _rewrite(skopeo_archive, bad,
             lambda m, d: (m, d) if m.name != "repositories" else
             (tarfile.TarInfo("../../etc/evil"), d))
    _refused(regfs, f"docker-archive:{bad}", "../../etc/evil", "climbs out")
    bad = work / "abs.tar"
    _tar_with(bad, [("/etc/evil", b"x"), ("manifest.json", b"[]")])
    _refused(regfs, f"docker-archive:{bad}", "/etc/evil", "absolute")


def test_an_archive_without_manifest_json_is_refused(regfs, skopeo_archive, work):
    bad = work / "nomanifest.tar"
    _rewrite(skopeo_archive, bad, lambda m, d: None if m.name == "manifest.json" else (m, d))
    _refused(regfs, f"docker-archive:{bad}", "manifest.json")


def test_manifest_json_naming_a_missing_file_is_refused(regfs, skopeo_archive, plain, work):
    bad = work / "missing.tar"
    gone = plain.layers[2].digest[7:] + ".tar"
    _rewrite(skopeo_archive, bad, lambda m, d: None if m.name == gone else (m, d))
    _refused(regfs, f"docker-archive:{bad}", gone)
    bad = work / "noconfig.tar"
    config = plain.config.digest[7:] + ".json"
    _rewrite(skopeo_archive, bad, lambda m, d: None if m.name == config else (m, d))
    _refused(regfs, f"docker-archive:{bad}", config)


def test_huge_sizes_are_refused(regfs, work):
    # manifest.json claiming 2^50 bytes (base-256 in the size field), and a 2 MiB manifest.json
    header = bytearray(tarfile.TarInfo("manifest.json").tobuf(format=tarfile.USTAR_FORMAT))
    header[124:136] = b"\x80" + (1 << 50).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    bad = work / "huge.tar"
    bad.write_bytes(bytes(header) + b"\0" * 2048)
    _refused(regfs, f"docker-archive:{bad}", "manifest.json", "claims")
    big = work / "big.tar"
    _tar_with(big, [("manifest.json", b" " * (2 << 20))])
    _refused(regfs, f"docker-archive:{big}", "manifest.json", "limit")


# ---- oci-archive: --------------------------------------------------------------------------

def test_oci_archive_round_trip_keeps_the_manifest_digest(regfs_ok, oracle, imgs, registry,
                                                          repo_name, work):
    it = imgs.oci
    archive = work / "oci.tar"
    regfs_ok("copy", "-q", it.ref, f"oci-archive:{archive}:v1")
    assert _leftovers(work) == ["oci.tar"]
    dest = registry.ref(repo_name(), "back")
    regfs_ok("copy", "-q", f"oci-archive:{archive}:v1", dest)
    assert oracle.digest_of(dest) == it.digest
    # skopeo reads it, digest for digest
    mine, theirs = _both_read(regfs_ok, oracle, work, f"oci-archive:{archive}")
    assert tools.tree_diff(mine, theirs) == ""
    assert tools.sha256_file(mine / "manifest.json") == it.digest


@pytest.mark.parametrize("name", ["oci", "docker"])
def test_regfs_reads_the_oci_archive_skopeo_writes(regfs, regfs_ok, oracle, imgs, work, name):
    it = getattr(imgs, name)
    archive = work / "skopeo.tar"
    oracle.copy(it.ref, f"oci-archive:{archive}:v1")
    tools.assert_same_output(regfs("inspect", "--raw", f"oci-archive:{archive}:v1"),
                             oracle.inspect(f"oci-archive:{archive}:v1", "--raw", check=False))
    mine, theirs = _both_read(regfs_ok, oracle, work, f"oci-archive:{archive}")
    assert tools.tree_diff(mine, theirs) == ""


def test_oci_archive_is_read_in_place(regfs_ok, oracle, imgs, work):
    """Nothing is extracted: the only file the copy creates is its destination."""
    archive = work / "skopeo.tar"
    oracle.copy(imgs.oci.ref, f"oci-archive:{archive}")
    tmp = work / "tmp"
    tmp.mkdir()
    regfs_ok("copy", "-q", f"oci-archive:{archive}", f"dir:{work}/out",
             env={**os.environ, "TMPDIR": str(tmp)})
    assert _leftovers(tmp) == []
    assert _leftovers(work) == ["out", "skopeo.tar", "tmp"]


def test_bad_oci_archives_are_refused(regfs, oracle, imgs, work):
    archive = work / "skopeo.tar"
    oracle.copy(imgs.oci.ref, f"oci-archive:{archive}")
    bad = work / "noindex.tar"
    _rewrite(archive, bad, lambda m, d: None if m.name == "index.json" else (m, d))
    _refused(regfs, f"oci-archive:{bad}", "index.json")
    bad = work / "climb.tar"
    _tar_with(bad, [("oci-layout", b"{}"), ("blobs/../../x", b"x")])
    _refused(regfs, f"oci-archive:{bad}", "climbs out")


def test_a_failed_copy_to_oci_archive_leaves_nothing(regfs, plain, work):
    broken = work / "broken"
    subprocess.run(["cp", "-r", plain.path, broken], check=True)
    (broken / plain.layers[0].digest[7:]).write_bytes(b"corrupt")
    p = regfs("copy", "-q", f"dir:{broken}", f"oci-archive:{work}/out.tar")
    assert p.returncode == 1
    assert _leftovers(work) == ["broken"]
