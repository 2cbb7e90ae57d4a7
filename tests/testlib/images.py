"""Deterministic random test images in skopeo's ``dir:`` layout, and pushing them.

    img = make_image(path, seed=1, fmt="oci", layers=["gzip", "tar", "gzip"])
    idx = make_index(path, seed=2, fmt="docker", platforms=["linux/amd64", "linux/arm64/v8"])
    digest = push(img.path, registry.addr, "repo", "tag")
    img = pushed_image(path, registry, "repo", "tag", seed=1)   # both, for a fixture

Same seed, same arguments → same bytes. A layer is a real tar (made with tarfile) holding
one file of random bytes, stored gzip-compressed ("gzip") or as is ("tar"). With
content="tree" (for benchmarks that compress) a layer holds instead the next files of this
machine's /usr, walked in name order, until it has layer_size bytes of file data: real
binaries, libraries and text, the same on every run on one machine. The config has
architecture, os, created, config.Env, config.Labels, rootfs.diff_ids and history.

A single image directory holds ``version``, ``manifest.json`` and one file per blob, named
by the hex of its sha256. A multi-platform directory is laid out as ``skopeo copy --all``
writes one: ``manifest.json`` is the OCI index / Docker manifest list, each instance
manifest is ``<hex>.manifest.json``, and the blobs of all instances sit side by side.
"""

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from . import tools

DIR_VERSION = b"Directory Transport Version: 1.1\n"

MT = {
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "index": "application/vnd.oci.image.index.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
        "tar": "application/vnd.oci.image.layer.v1.tar",
    },
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "tar": "application/vnd.docker.image.rootfs.diff.tar",
    },
}


def _digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _hex(d):
    return d.split(":", 1)[1]


@dataclass
class Blob:
    digest: str
    size: int
    media_type: str
    data: bytes = field(repr=False)


@dataclass
class Image:
    """One generated image (single manifest) or index, as written to ``path``."""
    path: Path
    fmt: str                 # "oci" | "docker"
    media_type: str          # of manifest.json
    manifest: bytes = field(repr=False)
    digest: str = ""
    config: Blob = None
    layers: list = field(default_factory=list)
    instances: list = field(default_factory=list)   # Images, for an index
    platform: dict = None    # {"os":..., "architecture":..., "variant"?:...}

    @property
    def is_index(self):
        return bool(self.instances)

    def blobs(self):
        """All blobs (config and layers) of this image and its instances."""
        out = {}
        for im in ([self] + self.instances):
            if im.config is not None:
                out[im.config.digest] = im.config
            for b in im.layers:
                out[b.digest] = b
        return out

    def instance(self, os="linux", arch="amd64"):
        for im in self.instances:
            if im.platform["os"] == os and im.platform["architecture"] == arch:
                return im
        raise KeyError(f"{os}/{arch}")


def _usr_files():
    """This machine's regular files under /usr in name order, forever (from the start again)."""
    while True:
        found = False
        for root, dirs, files in os.walk("/usr"):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(root, name)
                if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK):
                    found = True
                    yield p
        if not found:
            raise FileNotFoundError("no readable files under /usr")


def _tree_layer(files, size, seed):
    """A tar of the next files from `files` (an iterator over _usr_files()) holding about
    `size` bytes of their data, with fixed owners and times."""
    buf = io.BytesIO()
    held, dirs = 0, set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        while held < size:
            p = next(files)
            data = Path(p).read_bytes()[:size - held]
            name = p.lstrip("/")
            parent = os.path.dirname(name)
            missing = []
            while parent and parent not in dirs:
                missing.append(parent)
                dirs.add(parent)
                parent = os.path.dirname(parent)
            for d in reversed(missing):
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000 + seed
                tf.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000 + seed
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
            held += len(data)
    return buf.getvalue()


def _tar_layer(rng, index, size, seed):
    payload = rng.randbytes(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        d = tarfile.TarInfo(f"layer{index}")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        d.mtime = 1_600_000_000 + seed
        tf.addfile(d)
        info = tarfile.TarInfo(f"layer{index}/data-{seed}-{index}.bin")
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 1_600_000_000 + seed
        info.uname = info.gname = "root"
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _json(obj, fmt):
    # Docker tools indent with 3 spaces, OCI tools often write compact JSON; both kinds of
    # bytes must survive unchanged, so the generator uses both.
    if fmt == "docker":
        return json.dumps(obj, indent=3).encode()
    return json.dumps(obj, separators=(",", ":")).encode()


def _parse_platform(p):
    parts = p.split("/")
    plat = {"architecture": parts[1], "os": parts[0]}
    if len(parts) > 2:
        plat["variant"] = parts[2]
    return plat


def _build_image(rng, seed, fmt, layers, platform, layer_size, base=(), content="random"):
    """Blobs and manifest bytes of one image (nothing written); the Blobs in `base` are its
    first layers, as they are."""
    if content not in ("random", "tree"):
        raise ValueError(f"content {content!r}")
    files = _usr_files() if content == "tree" else None
    mt = MT[fmt]
    layer_blobs, diff_ids, history = [], [], []
    created = f"2024-0{1 + seed % 9}-1{seed % 10}T12:00:00Z"
    for b in base:
        compressed = b.data[:2] == b"\x1f\x8b"
        diff_ids.append(_digest(gzip.decompress(b.data) if compressed else b.data))
        layer_blobs.append(b)
        history.append({"created": created,
                        "created_by": f"/bin/sh -c #(nop) ADD file:{diff_ids[-1][7:19]} in /"})
    for i, kind in enumerate(layers, start=len(base)):
        size = layer_size[i - len(base)] if isinstance(layer_size, (list, tuple)) else layer_size
        tar = _tree_layer(files, size, seed) if files else _tar_layer(rng, i, size, seed)
        diff_ids.append(_digest(tar))
        data = gzip.compress(tar, compresslevel=6, mtime=0) if kind == "gzip" else tar
        if kind not in ("gzip", "tar"):
            raise ValueError(f"layer kind {kind!r}")
        layer_blobs.append(Blob(_digest(data), len(data), mt[kind], data))
        history.append({"created": created,
                        "created_by": f"/bin/sh -c #(nop) ADD file:{diff_ids[-1][7:19]} in /"})
    history.append({"created": created, "created_by": "/bin/sh -c #(nop) ENV REGFS_TEST=1",
                    "empty_layer": True})
    cfg = {
        "architecture": platform["architecture"],
        "os": platform["os"],
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    f"REGFS_SEED={seed}", "REGFS_TEST=1"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.regfs.test.seed": str(seed),
                       "org.regfs.test.platform": "/".join(platform[k] for k in ("os", "architecture", "variant") if k in platform)},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if "variant" in platform:
        cfg["variant"] = platform["variant"]
    cfg_bytes = _json(cfg, fmt)
    config = Blob(_digest(cfg_bytes), len(cfg_bytes), mt["config"], cfg_bytes)
    manifest = {"schemaVersion": 2, "mediaType": mt["manifest"],
                "config": {"mediaType": config.media_type, "digest": config.digest,
                           "size": config.size},
                "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size}
                           for b in layer_blobs]}
    if fmt == "oci":
        manifest["annotations"] = {"org.regfs.test.seed": str(seed)}
    mbytes = _json(manifest, fmt)
    return Image(path=None, fmt=fmt, media_type=mt["manifest"], manifest=mbytes,
                 digest=_digest(mbytes), config=config, layers=layer_blobs, platform=platform)


def _write_blobs(path, blobs):
    for b in blobs:
        (path / _hex(b.digest)).write_bytes(b.data)


def _new_dir(path):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise FileExistsError(f"{path} is not empty")
    (path / "version").write_bytes(DIR_VERSION)
    return path


def make_image(path, seed=0, fmt="oci", layers=("gzip", "tar"), platform="linux/amd64",
               layer_size=64 * 1024, base=(), content="random"):
    """Write a single-manifest image in dir: layout to path (created; must be empty).

    layers: one "gzip" or "tar" per layer. layer_size: bytes of random payload per layer
    (an int, or one per layer). base: Blobs (say another Image's layers) to put below them,
    so that images share layers. content: "random", or "tree" for files of /usr."""
    rng = random.Random(f"regfs-image-{seed}")
    path = _new_dir(path)
    img = _build_image(rng, seed, fmt, list(layers), _parse_platform(platform), layer_size,
                       base, content)
    img.path = path
    _write_blobs(path, [img.config] + img.layers)
    (path / "manifest.json").write_bytes(img.manifest)
    return img


def make_index(path, seed=0, fmt="oci", platforms=("linux/amd64", "linux/arm64/v8"),
               layers=("gzip", "tar"), layer_size=32 * 1024):
    """Write a multi-platform image (OCI index or Docker manifest list) in the dir: layout
    of ``skopeo copy --all``. Every instance has its own config and layers."""
    rng = random.Random(f"regfs-index-{seed}")
    path = _new_dir(path)
    mt = MT[fmt]
    instances = []
    for i, p in enumerate(platforms):
        im = _build_image(rng, seed * 100 + i, fmt, list(layers), _parse_platform(p), layer_size)
        im.path = path
        instances.append(im)
        _write_blobs(path, [im.config] + im.layers)
        (path / (_hex(im.digest) + ".manifest.json")).write_bytes(im.manifest)
    index = {"schemaVersion": 2, "mediaType": mt["index"],
             "manifests": [{"mediaType": im.media_type, "digest": im.digest,
                            "size": len(im.manifest), "platform": im.platform}
                           for im in instances]}
    ibytes = _json(index, fmt)
    (path / "manifest.json").write_bytes(ibytes)
    return Image(path=path, fmt=fmt, media_type=mt["index"], manifest=ibytes,
                 digest=_digest(ibytes), instances=instances)


def push(src_dir, registry_addr, repo, tag, creds=None, extra=()):
    """Push a dir: image (single or multi-platform, always --all) with skopeo, preserving
    digests, and check that the registry serves the same manifest digest. Returns it."""
    src_dir = Path(src_dir)
    want = tools.sha256_file(src_dir / "manifest.json")
    argv = ["copy", "--all", "--preserve-digests", "-q", "--dest-tls-verify=false"]
    if creds:
        argv += ["--dest-creds", creds]
    argv += [*extra, f"dir:{src_dir}", f"docker://{registry_addr}/{repo}:{tag}"]
    tools.skopeo_ok(*argv)
    argv = ["inspect", "--raw", "--tls-verify=false"]
    if creds:
        argv += ["--creds", creds]
    raw = tools.run([tools.SKOPEO, *argv, f"docker://{registry_addr}/{repo}:{tag}"],
                    check=True, binary=True).stdout
    got = tools.sha256_bytes(raw)
    if got != want:
        raise AssertionError(f"push of {src_dir} to {repo}:{tag}: registry serves {got}, "
                             f"dir has {want}")
    return want


def pushed_image(path, registry, repo, tag="v1", **make):
    """make_image(path, **make), pushed to `registry` (a testlib Registry, whose credentials
    are used when it has users) as repo:tag. Returns the Image."""
    img = make_image(path, **make)
    push(img.path, registry.addr, repo, tag, creds=registry.creds if registry.users else None)
    return img
