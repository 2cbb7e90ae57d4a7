"""docker-daemon: against a real Docker engine (the `dockerd` fixture, testlib/dockerd.py),
with the engine itself (`docker image inspect`) and skopeo's docker-daemon: transport as the
oracles, both ways (issue #13).

An image's ID in the engine is its config's digest: what every copy must keep.
"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

import pytest

from testlib import images, tools
from testlib.loopback_server import LoopbackHTTPServer
from testlib.standard import SINGLE


def _name(prefix="regfs-it"):
    """A fresh NAME:TAG for the engine."""
    return f"{prefix}/i{uuid.uuid4().hex[:10]}:v1"


def _config_digest_at(oracle, ref):
    """The config digest of the image skopeo reads at the registry reference `ref`."""
    raw = json.loads(oracle.inspect(ref, "--raw").stdout)
    return raw["config"]["digest"]


def _diff_ids(config_bytes):
    return json.loads(config_bytes)["rootfs"]["diff_ids"]


# ---- registry → engine ------------------------------------------------------------------

@pytest.mark.parametrize("which", SINGLE)
def test_copy_to_daemon_loads_the_image_under_its_config_digest(regfs_ok, dockerd, imgs,
                                                                 which):
    it = getattr(imgs, which)
    name = _name()
    regfs_ok("copy", "-q", "--dest-daemon-host", dockerd.host, it.ref, f"docker-daemon:{name}")
    info = dockerd.inspect(name)
    assert info is not None, f"{name} is not in the engine"
    assert info["Id"] == it.image.config.digest
    assert info["RepoTags"] == [name]
    assert info["RootFS"]["Layers"] == _diff_ids(it.image.config.data)


def test_copy_of_an_index_to_daemon_loads_this_machines_platform(regfs_ok, dockerd, imgs):
    it = imgs.oci_index
    name = _name()
    regfs_ok("copy", "-q", "--dest-daemon-host", dockerd.host, it.ref, f"docker-daemon:{name}")
    assert dockerd.inspect(name)["Id"] == it.image.instance("linux", "amd64").config.digest


def test_daemon_destination_matches_skopeos(regfs_ok, oracle, dockerd, imgs):
    """What regfs loads is what skopeo loads: the same image, layers and config."""
    it = imgs.docker
    mine, theirs = _name("regfs"), _name("skopeo")
    regfs_ok("copy", "-q", "--dest-daemon-host", dockerd.host, it.ref, f"docker-daemon:{mine}")
    oracle.copy(it.ref, f"docker-daemon:{theirs}", "--dest-daemon-host", dockerd.host)
    a, b = dockerd.inspect(mine), dockerd.inspect(theirs)
    for key in ("Id", "RootFS", "Config", "Architecture", "Os", "Created"):
        assert a[key] == b[key], key
    # and skopeo reads it back as the image that was pushed
    out = tools.skopeo_ok("inspect", "--config", "--raw", "--daemon-host", dockerd.host,
                          f"docker-daemon:{mine}", binary=True).stdout
    assert tools.sha256_bytes(out) == it.image.config.digest


def test_an_index_with_all_is_refused_and_loads_nothing(regfs, dockerd, imgs):
    before = dockerd.image_ids()
    name = _name()
    p = regfs("copy", "-q", "--all", "--dest-daemon-host", dockerd.host, imgs.oci_index.ref,
              f"docker-daemon:{name}")
    assert p.returncode == 1
    assert "manifest lists are not supported" in tools.one_line_error(p)
    assert dockerd.inspect(name) is None
    assert dockerd.image_ids() == before


def test_daemon_destination_needs_a_name_and_tag(regfs, dockerd, imgs):
    before = dockerd.image_ids()
    by_id = regfs("copy", "-q", "--dest-daemon-host", dockerd.host, imgs.docker.ref,
                  f"docker-daemon:{imgs.docker.image.config.digest}")
    assert by_id.returncode == 1
    assert "a destination must be a name:tag" in tools.one_line_error(by_id)
    no_tag = regfs("copy", "-q", "--dest-daemon-host", dockerd.host, imgs.docker.ref,
                   "docker-daemon:regfs-it/untagged")
    assert no_tag.returncode == 1
    assert "has neither a tag nor a digest" in tools.one_line_error(no_tag)
    assert dockerd.image_ids() == before


# ---- engine → registry and dir: -----------------------------------------------------------

@pytest.fixture
def loaded(oracle, dockerd, imgs):
    """imgs.docker loaded into the engine by skopeo, under a fresh name: (name, image)."""
    name = _name("loaded")
    oracle.copy(imgs.docker.ref, f"docker-daemon:{name}", "--dest-daemon-host", dockerd.host)
    return name, imgs.docker.image


def test_copy_from_daemon_to_registry_keeps_the_config_digest(regfs_ok, oracle, registry,
                                                              dockerd, loaded, repo_name):
    name, image = loaded
    dst = registry.ref(repo_name(), "v1")
    regfs_ok("copy", "-q", "--src-daemon-host", dockerd.host, f"docker-daemon:{name}", dst)
    assert _config_digest_at(oracle, dst) == image.config.digest
    config = tools.skopeo_ok("inspect", "--config", "--raw", "--tls-verify=false", dst,
                             binary=True).stdout
    assert tools.sha256_bytes(config) == image.config.digest


def test_daemon_source_reads_what_skopeo_reads(regfs_ok, oracle, dockerd, loaded, work):
    """dir: copies of a docker-daemon: image, by regfs and by skopeo, are the same files."""
    name, _ = loaded
    mine, theirs = work / "regfs", work / "skopeo"
    regfs_ok("copy", "-q", "--src-daemon-host", dockerd.host, f"docker-daemon:{name}",
             f"dir:{mine}")
    oracle.copy(f"docker-daemon:{name}", f"dir:{theirs}", "--src-daemon-host", dockerd.host)
    assert tools.tree_diff(mine, theirs) == ""


def test_daemon_source_by_image_id_and_by_docker_host(regfs_ok, dockerd, loaded, work):
    name, image = loaded
    regfs_ok("copy", "-q", "--src-daemon-host", dockerd.host,
             f"docker-daemon:{image.config.digest}", f"dir:{work / 'by-id'}")
    assert tools.sha256_file(work / "by-id" / image.config.digest[7:]) == image.config.digest
    # $DOCKER_HOST when no flag names the engine
    regfs_ok("copy", "-q", f"docker-daemon:{name}", f"dir:{work / 'env'}",
             env={"DOCKER_HOST": dockerd.host})
    assert tools.tree_diff(work / "by-id", work / "env") == ""


def test_the_saved_tar_is_gone_after_the_copy(regfs_ok, dockerd, loaded, work):
    """docker save goes into an unlinked temporary file in $TMPDIR: nothing is left there."""
    name, _ = loaded
    tmp = work / "tmp"
    tmp.mkdir()
    regfs_ok("copy", "-q", "--src-daemon-host", dockerd.host, f"docker-daemon:{name}",
             f"dir:{work / 'out'}", env={"TMPDIR": str(tmp)})
    assert (work / "out" / "manifest.json").exists()
    assert list(tmp.iterdir()) == []


def test_inspect_of_a_daemon_image_matches_skopeo(regfs, dockerd, loaded):
    name, _ = loaded
    ref = f"docker-daemon:{name}"
    mine = regfs("inspect", "--daemon-host", dockerd.host, ref)
    theirs = tools.skopeo("inspect", "--daemon-host", dockerd.host, ref)
    tools.assert_same_inspect(mine, theirs)


def test_docker_load_of_a_regfs_archive_then_daemon_to_registry(regfs_ok, oracle, registry,
                                                                 dockerd, imgs, work,
                                                                 repo_name):
    """The issue's round trip: docker:// → docker-archive: (regfs), `docker load`,
    docker-daemon: → docker:// (regfs): skopeo sees the same config digest."""
    it = imgs.oci
    tar = work / "x.tar"
    name = _name("archive")
    regfs_ok("copy", "-q", it.ref, f"docker-archive:{tar}:{name}")
    dockerd.docker("load", "-i", str(tar))
    assert dockerd.inspect(name)["Id"] == it.image.config.digest
    dst = registry.ref(repo_name(), "v1")
    regfs_ok("copy", "-q", "--src-daemon-host", dockerd.host, f"docker-daemon:{name}", dst)
    assert _config_digest_at(oracle, dst) == it.image.config.digest


# ---- failures ------------------------------------------------------------------------------

def test_unknown_image_is_named(regfs, dockerd, work):
    p = regfs("copy", "-q", "--src-daemon-host", dockerd.host, "docker-daemon:regfs-it/nothere:v1",
              f"dir:{work / 'out'}")
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert "docker-daemon:regfs-it/nothere:v1" in line
    assert "Error response from daemon" in line
    assert not (work / "out").exists()
    p = regfs("inspect", "--daemon-host", dockerd.host, "docker-daemon:regfs-it/nothere:v1")
    assert p.returncode == 1
    assert "Error response from daemon" in tools.one_line_error(p)


@pytest.mark.parametrize("side", ["src", "dest"])
def test_no_daemon_is_a_clear_error_not_a_hang(regfs, imgs, work, side):
    host = f"unix://{work}/no-docker.sock"
    t0 = time.monotonic()
    if side == "src":
        p = regfs("copy", "-q", "--src-daemon-host", host, "docker-daemon:busybox:latest",
                  f"dir:{work / 'out'}", timeout=60)
    else:
        p = regfs("copy", "-q", "--dest-daemon-host", host, imgs.docker.ref,
                  "docker-daemon:regfs-it/x:v1", timeout=60)
    assert time.monotonic() - t0 < 30
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert f"cannot connect to the Docker daemon at {host}" in line
    assert "Is the docker daemon running?" in line


def test_bad_daemon_host_is_refused(regfs, imgs):
    p = regfs("copy", "-q", "--dest-daemon-host", "ssh://somewhere", imgs.docker.ref,
              "docker-daemon:regfs-it/x:v1")
    assert p.returncode == 1
    assert 'invalid daemon host "ssh://somewhere"' in tools.one_line_error(p)


def test_a_copy_that_fails_midway_loads_nothing(regfs, dockerd, work):
    """A layer that does not match its digest, after others were sent: the upload is broken
    off before the tar ends, and the engine holds nothing new."""
    img = images.make_image(work / "src", seed=1301, fmt="docker", layers=["tar", "tar", "tar"],
                            layer_size=[4 << 20, 4 << 20, 1 << 20])
    last = work / "src" / img.layers[-1].digest[7:]
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    before = dockerd.image_ids()
    name = _name("broken")
    p = regfs("copy", "-q", "--dest-daemon-host", dockerd.host, f"dir:{work / 'src'}",
              f"docker-daemon:{name}")
    assert p.returncode == 1
    tools.one_line_error(p)
    assert dockerd.inspect(name) is None
    assert dockerd.image_ids() == before


# ---- an engine that fails on purpose ----------------------------------------------------------

class FailingEngine(LoopbackHTTPServer):
    """A fake Docker engine on http://127.0.0.1:PORT, to inject what a real one does rarely: an
    older API version, a failed save with its message, a load whose progress stream reports an
    error after the 200. Records every request line."""

    API_VERSION = "1.30"

    def __init__(self, truncated_save=False):
        self.truncated_save = truncated_save
        self.requests = []
        self.loaded_bytes = 0
        self._lock = threading.Lock()

    def __enter__(self):
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype="application/json"):
                self.send_response(status)
                self.send_header("Api-Version", engine.API_VERSION)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _read_chunked(self):
                n = 0
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return n
                    n += len(self.rfile.read(size))
                    self.rfile.readline()

            def do_GET(self):
                with engine._lock:
                    engine.requests.append(("GET", self.path))
                if self.path == "/_ping":
                    return self._reply(200, b"OK", "text/plain")
                if engine.truncated_save:
                    # A 200 whose body stops a tenth of the way: the engine went away.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-tar")
                    self.send_header("Content-Length", str(10240))
                    self.end_headers()
                    self.wfile.write(b"\0" * 1024)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._reply(500, b'{"message":"fake engine: no space left on device"}\n')

            def do_POST(self):
                with engine._lock:
                    engine.requests.append(("POST", self.path))
                got = self._read_chunked()
                with engine._lock:
                    engine.loaded_bytes += got
                self._reply(200, b'{"stream":"Loading layer"}\r\n'
                                 b'{"errorDetail":{"message":"fake engine: invalid tar header"},'
                                 b'"error":"fake engine: invalid tar header"}\r\n')

        return self._serve(Handler)

    def __exit__(self, *exc):
        self.stop()

    @property
    def host(self):
        return f"http://127.0.0.1:{self.port}"


def test_api_version_is_negotiated_and_the_engines_message_is_quoted(regfs, work):
    with FailingEngine() as engine:
        p = regfs("copy", "-q", "--src-daemon-host", engine.host, "docker-daemon:team/app:v1",
                  f"dir:{work / 'out'}")
    assert p.returncode == 1
    assert "fake engine: no space left on device" in tools.one_line_error(p)
    assert engine.requests == [("GET", "/_ping"),
                               ("GET", "/v1.30/images/get?names=team/app%3Av1")]
    assert not (work / "out").exists()


def test_a_save_that_breaks_off_is_an_error_and_leaves_nothing(regfs, work):
    with FailingEngine(truncated_save=True) as engine:
        p = regfs("copy", "-q", "--src-daemon-host", engine.host, "docker-daemon:team/app:v1",
                  f"dir:{work / 'out'}")
    assert p.returncode == 1
    line = tools.one_line_error(p)
    assert "saving team/app:v1 from the Docker daemon" in line
    assert engine.host in line
    assert not (work / "out").exists()


def test_an_error_in_the_load_progress_fails_the_copy(regfs, imgs):
    with FailingEngine() as engine:
        p = regfs("copy", "-q", "--dest-daemon-host", engine.host, imgs.docker.ref,
                  "docker-daemon:team/app:v1")
    assert p.returncode == 1
    assert "fake engine: invalid tar header" in tools.one_line_error(p)
    assert ("POST", "/v1.30/images/load?quiet=1") in engine.requests
    # the whole archive was sent before the engine's verdict was read
    assert engine.loaded_bytes > sum(b.size for b in imgs.docker.image.layers)
