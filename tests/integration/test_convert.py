

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
