"""registries.conf mirrors: a docker-registry in proxy mode (a pull-through cache of the origin)
configured as the origin's [[registry.mirror]] via $CONTAINERS_REGISTRIES_CONF. Pulls go
through the mirror (a fault proxy in front of it logs them); with the mirror stopped they fall
back to the origin; pushes always go to the origin. Also: `insecure = true` and `blocked`."""

import pytest

from testlib import images, tools
from testlib.faultproxy import FaultProxy
from testlib.registry import Registry


@pytest.fixture(scope="module")
def origin():
    with Registry(name="origin") as r:
        yield r


@pytest.fixture(scope="module")
def image(origin, tmp_path_factory):
    return images.pushed_image(tmp_path_factory.mktemp("mirror-img") / "img", origin,
                               "mirrored/img", seed=901, fmt="docker", layers=["gzip", "tar"]).path


@pytest.fixture
def mirror(origin):
    with Registry(name="mirror", proxy_remote=origin.url) as m:
        with FaultProxy(m.addr) as px:
            yield px


def test_pulls_go_through_the_mirror(regfs, origin, image, mirror, work):
    env = tools.registries_conf_env(work, tools.mirror_conf(origin.addr, mirror.addr))
    ref = origin.ref("mirrored/img", "v1")
    p = regfs("copy", "-q", ref, f"dir:{work / 'out'}", env=env)
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "out", image) == ""
    assert mirror.requests(method="GET", path=r"/v2/mirrored/img/manifests/v1")
    assert len(mirror.requests(method="GET", path=r"/v2/mirrored/img/blobs/")) == 3
    # inspect reads the image through the mirror too
    before = len(mirror.requests(path=r"/manifests/"))
    p = regfs("inspect", "--raw", ref, env=env, binary=True)
    assert p.returncode == 0, p.stderr
    assert tools.sha256_bytes(p.stdout) == tools.sha256_file(image / "manifest.json")
    assert len(mirror.requests(path=r"/manifests/")) > before


def test_pulls_fall_back_to_the_origin_when_the_mirror_is_down(regfs, origin, image, work):
    down = tools.free_port()
    env = tools.registries_conf_env(work, tools.mirror_conf(origin.addr, f"127.0.0.1:{down}"))
    p = regfs("copy", "-q", origin.ref("mirrored/img", "v1"), f"dir:{work / 'out'}", env=env)
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "out", image) == ""


def test_stopped_mirror_falls_back(regfs, origin, image, mirror, work):
    env = tools.registries_conf_env(work, tools.mirror_conf(origin.addr, mirror.addr))
    ref = origin.ref("mirrored/img", "v1")
    assert regfs("copy", "-q", ref, f"dir:{work / 'a'}", env=env).returncode == 0
    mirror.stop()
    p = regfs("copy", "-q", ref, f"dir:{work / 'b'}", env=env)
    assert p.returncode == 0, p.stderr
    assert tools.tree_diff(work / "b", image) == ""


def test_pushes_go_to_the_origin(regfs, origin, image, mirror, work):
    env = tools.registries_conf_env(work, tools.mirror_conf(origin.addr, mirror.addr))
    p = regfs("copy", "-q", f"dir:{image}", origin.ref("mirrored/pushed", "v2"), env=env)
    assert p.returncode == 0, p.stderr
    assert origin.has_manifest("mirrored/pushed", "v2")
    assert mirror.requests() == []


def test_mirror_by_digest_only_skips_the_mirror_for_tags(regfs, origin, image, mirror, work):
    env = tools.registries_conf_env(
        work, tools.mirror_conf(origin.addr, mirror.addr, "mirror-by-digest-only = true\n"))
    p = regfs("copy", "-q", origin.ref("mirrored/img", "v1"), f"dir:{work / 'a'}", env=env)
    assert p.returncode == 0, p.stderr
    assert mirror.requests() == []
    digest = tools.sha256_file(image / "manifest.json")
    p = regfs("copy", "-q", origin.ref("mirrored/img", digest), f"dir:{work / 'b'}", env=env)
    assert p.returncode == 0, p.stderr
    assert mirror.requests(path=r"/manifests/sha256:")


def test_blocked_registry_is_refused(regfs, origin, image, work):
    env = tools.registries_conf_env(
        work, f'[[registry]]\nlocation = "{origin.addr}"\nblocked = true\n')
    p = regfs("copy", "-q", origin.ref("mirrored/img", "v1"), f"dir:{work / 'a'}", env=env)
    assert p.returncode == 1
    assert "blocked" in tools.one_line_error(p)
    p = regfs("copy", "-q", f"dir:{image}", origin.ref("mirrored/x", "v1"), env=env)
    assert p.returncode == 1
    assert "blocked" in tools.one_line_error(p)
    # Every command that talks to the registry refuses it, as containers/image does.
    for argv in (["inspect", origin.ref("mirrored/img", "v1")],
                 ["list-tags", f"docker://{origin.addr}/mirrored/img"],
                 ["delete", origin.ref("mirrored/img", "v1")]):
        p = regfs(*argv, env=env)
        assert p.returncode == 1, argv
        assert "blocked" in tools.one_line_error(p), argv
    assert origin.has_manifest("mirrored/img", "v1")


def test_a_broken_registries_conf_is_a_clear_error(regfs, origin, image, work):
    env = tools.registries_conf_env(work, '[[registry]]\nlocation = "x"\ninsecure = 1\n')
    p = regfs("inspect", origin.ref("mirrored/img", "v1"), env=env)
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert "registries.conf" in line and "line 3" in line, line
