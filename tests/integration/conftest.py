"""Fixtures of the real-parts integration suite.

Registries are real ``docker-registry`` processes on loopback ports, skopeo is the oracle,
and regfs is $REGFS_BIN (default <repo>/build/regfs). Everything started here is stopped and
every temporary directory removed, whatever the outcome of the test.

Run:  /usr/bin/python3 -m pytest -q tests/integration
Under CI=true a test that cannot run here fails instead of skipping (testlib/ci.py).
"""

import itertools
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testlib import standard, tools  # noqa: E402
from testlib.ci import pytest_runtest_makereport  # noqa: E402, F401 - the CI=true rule
from testlib.dockerd import Dockerd  # noqa: E402
from testlib.faultproxy import FaultProxy  # noqa: E402
from testlib.registry import Registry, RegistryTLS  # noqa: E402
from testlib.tlsca import TestCA  # noqa: E402

from mountlib import mounts_fixture  # noqa: E402, F401 - the `mounts` fixture (mountlib.py)


collect_ignore = []


def _sanitizer_build():
    try:
        return tools.sanitizer_build()
    except OSError:
        return None  # no binary: the regfs_bin fixture says so


# That a sanitizer's reports are seen (test_mount_sanitizer_reports.py) is a question only for
# a sanitizer build (tools/test --sanitize, --tsan): a Release build makes none.
if _sanitizer_build() is None:
    collect_ignore.append("test_mount_sanitizer_reports.py")


# ---- regfs -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def regfs_bin():
    path = tools.regfs_bin()
    assert os.path.isfile(path) and os.access(path, os.X_OK), (
        f"regfs binary not found at {path}: build it (cmake --build build) or set REGFS_BIN")
    return path


@pytest.fixture
def regfs(regfs_bin):
    """Run regfs with arguments; returns CompletedProcess (text)."""
    def run(*args, **kw):
        return tools.run([regfs_bin, *args], **kw)
    return run


@pytest.fixture
def regfs_ok(regfs):
    def run(*args, **kw):
        p = regfs(*args, **kw)
        assert p.returncode == 0, (
            f"regfs {' '.join(args)} failed with {p.returncode}:\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p
    return run


# ---- temporary directories and names -----------------------------------------------------

@pytest.fixture
def work():
    """A fresh temporary directory, removed after the test."""
    d = tempfile.mkdtemp(prefix="regfs-it-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="regfs-it-session-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


_counter = itertools.count()


@pytest.fixture
def repo_name():
    """Unique repository names for one test: repo_name() or repo_name('prefix')."""
    def make(prefix="it"):
        return f"{prefix}/r{next(_counter)}-{uuid.uuid4().hex[:8]}"
    return make


# ---- registries --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def registry():
    with Registry(name="reg1") as r:
        yield r


@pytest.fixture(scope="session")
def registry2():
    with Registry(name="reg2") as r:
        yield r


@pytest.fixture(scope="module")
def auth_registry():
    with Registry(users={"alice": "wonderland", "bob": "builder"}, name="auth") as r:
        yield r


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """A test CA, one per module (tests/testlib/tlsca.py)."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_registry(ca):
    """A registry serving HTTPS with a certificate from `ca`."""
    server = ca.issue("server", server=True)
    with Registry(name="tls", tls=RegistryTLS(cert=server.cert, key=server.key, ca=ca.cert)) as r:
        yield r


@pytest.fixture
def cert_dir(ca, work):
    """A certs.d-style directory holding `ca`'s certificate (for --cert-dir)."""
    d = work / "certs"
    d.mkdir()
    shutil.copy(ca.cert, d / "ca.crt")
    return d


@pytest.fixture
def proxy(registry):
    """A fault proxy in front of `registry`, fresh for each test."""
    with FaultProxy(registry.addr) as px:
        yield px


@pytest.fixture
def proxy2(registry2):
    with FaultProxy(registry2.addr) as px:
        yield px


@pytest.fixture
def attachments_d(work):
    """A registries.d directory that turns sigstore attachments on, for skopeo (whose default
    is off; regfs reads and writes them unless told otherwise)."""
    d = work / "registries.d"
    d.mkdir()
    (d / "default.yaml").write_text("default-docker:\n  use-sigstore-attachments: true\n")
    return d


# ---- a Docker engine ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def dockerd():
    """A real dockerd on a unix socket of its own (testlib/dockerd.py), one per module: its
    vfs data root holds every image loaded unpacked, and goes when the module ends."""
    with Dockerd() as d:
        yield d


# ---- test images, pushed once per session --------------------------------------------------

@pytest.fixture(scope="session")
def imgs(registry, session_dir):
    """Standard images on `registry`: imgs.oci, imgs.docker, imgs.oci_index,
    imgs.docker_list, each with .image (images.Image), .repo, .tag, .ref, .digest, .dir."""
    return standard.image_set(session_dir / "images", registry)


# ---- skopeo, the oracle --------------------------------------------------------------------

def _tls_flags(ref, flag):
    return [f"--{flag}=false"] if ref.startswith("docker://") else []


@pytest.fixture(scope="session")
def oracle():
    """skopeo wrappers that add the --*tls-verify=false flags loopback registries need.
    Keyword arguments go to tools.run (check defaults to True here)."""
    def copy(src, dst, *flags, check=True, **kw):
        argv = ["copy", "-q", *flags, *_tls_flags(src, "src-tls-verify"),
                *_tls_flags(dst, "dest-tls-verify"), src, dst]
        return tools.run([tools.SKOPEO, *argv], check=check, **kw)

    def inspect(ref, *flags, check=True, **kw):
        return tools.run([tools.SKOPEO, "inspect", *flags, *_tls_flags(ref, "tls-verify"), ref],
                         check=check, **kw)

    def list_tags(ref, *flags, check=True, **kw):
        return tools.run([tools.SKOPEO, "list-tags", *flags, *_tls_flags(ref, "tls-verify"),
                          ref], check=check, **kw)

    def digest_of(ref, *flags):
        """sha256 of the raw manifest skopeo reads for ref."""
        return tools.sha256_bytes(inspect(ref, "--raw", *flags, binary=True).stdout)

    return SimpleNamespace(copy=copy, inspect=inspect, list_tags=list_tags,
                           digest_of=digest_of)
