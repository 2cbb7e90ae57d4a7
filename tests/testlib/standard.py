"""The standard set of test images: generated, pushed to a registry, described.

    imgs = image_set(tmpdir, registry)
    imgs.oci          OCI manifest, 4 layers: gzip, tar, gzip, tar
    imgs.docker       Docker v2 schema 2, 3 layers: gzip, gzip, tar
    imgs.oci_index    OCI index: linux/amd64, linux/arm64/v8, linux/arm/v7
    imgs.docker_list  Docker manifest list: linux/arm64/v8, linux/amd64

Each has .image (images.Image), .dir, .repo ('img/<name>'), .tag ('v1'), .ref, .digest.
"""

from types import SimpleNamespace

from . import images

SINGLE = ["oci", "docker"]
MULTI = ["oci_index", "docker_list"]
ALL_IMAGES = SINGLE + MULTI

_SPECS = {
    "oci": lambda p: images.make_image(p, seed=11, fmt="oci",
                                       layers=["gzip", "tar", "gzip", "tar"]),
    "docker": lambda p: images.make_image(p, seed=12, fmt="docker",
                                          layers=["gzip", "gzip", "tar"]),
    "oci_index": lambda p: images.make_index(
        p, seed=13, fmt="oci", platforms=["linux/amd64", "linux/arm64/v8", "linux/arm/v7"],
        layers=["gzip", "tar"]),
    "docker_list": lambda p: images.make_index(
        p, seed=14, fmt="docker", platforms=["linux/arm64/v8", "linux/amd64"],
        layers=["gzip"]),
}


def image_set(root, registry, tag="v1"):
    out = {}
    for name, make in _SPECS.items():
        img = make(root / name)
        repo = f"img/{name.replace('_', '-')}"
        images.push(img.path, registry.addr, repo, tag)
        out[name] = SimpleNamespace(name=name, image=img, repo=repo, tag=tag,
                                    digest=img.digest, dir=img.path,
                                    ref=registry.ref(repo, tag))
    return SimpleNamespace(**out)
