"""The HTTP stack (DESIGN §1): one libcurl client per process, the CA store parsed once,
connections reused (HTTP/2 for buffered requests, a pooled HTTP/1.1 connection per streamed
blob), loopback registries probed over TLS first, the blob-location cache that turns pushes
into cross-repository mounts, concurrent pushes into one repository, and proxies from the
environment.

Connections and bytes are counted at a TCPRelay (a plain TCP relay: TLS passes through it
untouched) in front of a registry; regfs is pointed at the relay's address, which has its own
certs.d entry. Every command gets an XDG_CACHE_HOME of its own unless a test says otherwise,
so that no blob-location cache entry of another command changes what it does.

What regfs may open, by design (http_client.h):
  - buffered requests (pings, manifests, HEADs, mounts, tag lists, blobs up to 1 MiB) share
    one connection: over TLS it is HTTP/2 and carries concurrent requests; over plain HTTP it
    is HTTP/1.1, so concurrent buffered requests need a connection each;
  - a streamed transfer (a blob over 1 MiB down, any blob up) has an HTTP/1.1 connection of
    its own, kept in a pool for the next streamed transfer.
"""

import itertools
import os
import re
import shutil
import ssl
from concurrent.futures import ThreadPoolExecutor

import pytest

from testlib import images, tools
from testlib.registry import Registry, RegistryTLS
from testlib.tcprelay import TCPRelay

# Just over 1 MiB, the largest blob fetched as one buffered request: layers of this size are
# streamed, each on a connection of its own.
STREAMED = (1 << 20) + 32 * 1024
LAYERS4 = 4


# ---- registries and relays, one set per module ---------------------------------------------

@pytest.fixture(scope="module")
def tls_reg(ca):
    server = ca.issue("http-stack-server", server=True)
    with Registry(name="tls-http", tls=RegistryTLS(cert=server.cert, key=server.key,
                                                   ca=ca.cert)) as r:
        yield r


@pytest.fixture(scope="module")
def tls_relay(tls_reg):
    with TCPRelay(tls_reg.addr) as relay:
        yield relay


@pytest.fixture(scope="module")
def certs_root(ca, tls_reg, tls_relay, tmp_path_factory):
    """A certs.d root (for REGFS_CERTS_D) trusting the test CA at the registry's address and
    at the relay's."""
    root = tmp_path_factory.mktemp("http-certs") / "certs.d"
    ca.certs_d(root, tls_reg.addr)
    ca.certs_d(root, tls_relay.addr)
    return root


@pytest.fixture(scope="module")
def plain_reg():
    with Registry(name="plain-http") as r:
        yield r


@pytest.fixture(scope="module")
def plain_relay(plain_reg):
    with TCPRelay(plain_reg.addr) as relay:
        yield relay


@pytest.fixture(scope="module")
def src_reg():
    """The source registry of the cache and concurrency tests (plain HTTP)."""
    with Registry(name="src-http") as r:
        yield r


@pytest.fixture(scope="module")
def dest_reg():
    """A destination registry other than the source (plain HTTP)."""
    with Registry(name="dest-http") as r:
        yield r


@pytest.fixture(scope="module")
def dest_relay(dest_reg):
    with TCPRelay(dest_reg.addr) as relay:
        yield relay


# ---- images ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def img4(tls_reg, tmp_path_factory):
    """Four streamed layers (~4.3 MiB), at tls/img4:v1 on the TLS registry."""
    return images.pushed_image(tmp_path_factory.mktemp("http-img4") / "img", tls_reg,
                               "tls/img4", seed=901, fmt="oci", layers=["gzip"] * LAYERS4,
                               layer_size=STREAMED)


@pytest.fixture(scope="module")
def img1(tmp_path_factory):
    """One streamed layer, in a dir: only."""
    return images.make_image(tmp_path_factory.mktemp("http-img1") / "img", seed=902,
                             fmt="docker", layers=["gzip"], layer_size=STREAMED)


@pytest.fixture(scope="module")
def plain_img(plain_reg, tmp_path_factory):
    """A small image at plain/img:v1 on the plain-HTTP registry."""
    return images.pushed_image(tmp_path_factory.mktemp("http-plain-img") / "img", plain_reg,
                               "plain/img", seed=903, fmt="docker", layers=["gzip", "tar"])


# ---- helpers ---------------------------------------------------------------------------

_cache_counter = itertools.count(1)


def _env(work, certs_root=None, cache=None, **extra):
    """Environment overrides for one command: a fresh XDG_CACHE_HOME (or `cache`), and the
    certs.d root when given."""
    env = {"XDG_CACHE_HOME": str(cache or work / f"cache-{next(_cache_counter)}")}
    if certs_root is not None:
        env["REGFS_CERTS_D"] = str(certs_root)
    env.update(extra)
    return env


def _counted(relay, regfs, *args, env, **kw):
    """Runs regfs with the relay's counts reset first; returns (CompletedProcess, connections,
    bytes_up, bytes_down)."""
    relay.reset_counts()
    p = regfs(*args, env=env, **kw)
    return p, relay.connections, relay.bytes_up, relay.bytes_down


def _ok(p, what):
    assert p.returncode == 0, f"{what} failed ({p.returncode}):\n{p.stderr}"


def _system_bundle_names():
    """Every name the system's CA bundle goes by: Debian's file, $SSL_CERT_FILE, OpenSSL's
    default file, and what each of them resolves to."""
    names = {"/etc/ssl/certs/ca-certificates.crt"}
    if os.environ.get("SSL_CERT_FILE"):
        names.add(os.environ["SSL_CERT_FILE"])
    paths = ssl.get_default_verify_paths()
    for p in (paths.openssl_cafile, paths.cafile):
        if p:
            names.add(p)
    names |= {os.path.realpath(n) for n in list(names)}
    return sorted(names)


def _opens(trace_text, path):
    """open/openat calls of exactly `path` in strace output (an <unfinished ...> line names
    the path, its resumption does not, so each call is counted once)."""
    pat = re.compile(r'\bopen(at)?\((AT_FDCWD, )?"' + re.escape(path) + '"')
    return [line for line in trace_text.splitlines() if pat.search(line)]


def _connects(trace_text, port):
    pat = re.compile(r"\bconnect\(\d+, \{sa_family=AF_INET, sin_port=htons\(" + str(port) + r"\)")
    return [line for line in trace_text.splitlines() if pat.search(line)]


def _strace(regfs_bin, work, name, *args, env):
    trace = work / f"{name}.strace"
    p = tools.run(["strace", "-f", "-qq", "-e", "trace=openat,open,connect", "-o", trace,
                   regfs_bin, *args], env=tools.without_leak_check(env), timeout=180)
    return p, trace.read_text(errors="replace")


# ---- 1. the CA store is parsed once per process ---------------------------------------------

def test_the_certs_d_ca_is_read_once_and_the_system_bundle_never(regfs_bin, tls_relay,
                                                                 certs_root, img4, work):
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (tools/test installs it)")
    ca_crt = str(certs_root / tls_relay.addr / "ca.crt")
    bundle = _system_bundle_names()
    src = f"docker://{tls_relay.addr}/tls/img4:v1"
    runs = {
        "registry-to-dir": ["copy", "-q", "--image-parallel-copies", "4", src,
                            f"dir:{work / 'out'}"],
        "dir-to-registry": ["copy", "-q", "--image-parallel-copies", "4", f"dir:{img4.path}",
                            f"docker://{tls_relay.addr}/tls/strace-push:v1"],
    }
    for name, args in runs.items():
        tls_relay.reset_counts()
        p, trace = _strace(regfs_bin, work, name, *args, env=_env(work, certs_root))
        _ok(p, name)
        connects = _connects(trace, tls_relay.port)
        # Meaningful only if several TLS connections were made, each needing the trust store.
        assert tls_relay.connections > 1 and len(connects) > 1, (
            f"{name}: only {tls_relay.connections} relay connections, {len(connects)} connect()s")
        opened = _opens(trace, ca_crt)
        assert len(opened) == 1, (
            f"{name}: {ca_crt} opened {len(opened)} times over {len(connects)} connections:\n"
            + "\n".join(opened))
        for path in bundle:
            assert _opens(trace, path) == [], (
                f"{name}: the system bundle {path} was opened:\n"
                + "\n".join(_opens(trace, path)))
    assert tools.tree_diff(work / "out", img4.path) == ""


def test_two_registries_in_one_copy_read_each_ca_once(regfs_bin, tls_reg, tls_relay,
                                                      certs_root, img4, work):
    """A registry-to-registry copy between two addresses (the registry, and the relay in
    front of it): two certs.d directories, each parsed once, the bundle never."""
    ca_direct = str(certs_root / tls_reg.addr / "ca.crt")
    ca_relay = str(certs_root / tls_relay.addr / "ca.crt")
    tls_relay.reset_counts()
    p, trace = _strace(regfs_bin, work, "two-registries", "copy", "-q",
                       "--image-parallel-copies", "4", f"docker://{tls_relay.addr}/tls/img4:v1",
                       f"docker://{tls_reg.addr}/tls/strace-two:v1", env=_env(work, certs_root))
    _ok(p, "copy")
    assert tls_relay.connections > 1, tls_relay.connections
    assert len(_opens(trace, ca_relay)) == 1, _opens(trace, ca_relay)
    assert len(_opens(trace, ca_direct)) == 1, _opens(trace, ca_direct)
    for path in _system_bundle_names():
        assert _opens(trace, path) == [], path
    assert tls_reg.manifest_digest("tls/strace-two", "v1") == img4.digest


# ---- 2. connections are reused ---------------------------------------------------------

def test_inspect_over_tls_makes_one_connection(regfs, tls_relay, certs_root, img4, work):
    # Ping, manifest, config and the tag list (fetched concurrently) share one HTTP/2
    # connection.
    p, conns, _, _ = _counted(tls_relay, regfs, "inspect",
                              f"docker://{tls_relay.addr}/tls/img4:v1",
                              env=_env(work, certs_root))
    _ok(p, "inspect")
    assert '"v1"' in p.stdout and img4.digest in p.stdout
    assert conns == 1, f"inspect over TLS made {conns} connections"


def test_copy_to_dir_makes_one_connection_per_streamed_layer_plus_one(regfs, tls_relay,
                                                                      certs_root, img4, work):
    p, conns, _, down = _counted(tls_relay, regfs, "copy", "-q", "--image-parallel-copies", "4",
                                 f"docker://{tls_relay.addr}/tls/img4:v1", f"dir:{work / 'out'}",
                                 env=_env(work, certs_root))
    _ok(p, "copy")
    assert tools.tree_diff(work / "out", img4.path) == ""
    # One HTTP/2 connection for ping, manifest and config; one per streamed layer.
    assert conns <= LAYERS4 + 1, f"{conns} connections for {LAYERS4} streamed layers"
    assert down >= sum(b.size for b in img4.layers)   # the bytes did come through the relay


def test_copy_within_one_registry_makes_one_connection(regfs, tls_relay, tls_reg, certs_root,
                                                       img4, work, repo_name):
    # Another repository of the same registry: mounts and the manifest PUT, all buffered,
    # all on one HTTP/2 connection; no blob bytes go up.
    repo = repo_name("tls-mount")
    p, conns, up, _ = _counted(tls_relay, regfs, "copy", "-q",
                               f"docker://{tls_relay.addr}/tls/img4:v1",
                               f"docker://{tls_relay.addr}/{repo}:v1", env=_env(work, certs_root))
    _ok(p, "copy")
    assert tls_reg.manifest_digest(repo, "v1") == img4.digest
    assert conns == 1, f"a copy within one registry made {conns} connections"
    assert up < 64 * 1024, f"{up} bytes went up for a copy that only mounts"


def test_push_makes_one_connection_per_concurrent_upload_plus_one(regfs, tls_relay, tls_reg,
                                                                  certs_root, img1, img4, work,
                                                                  repo_name):
    # Every blob goes up streamed (a pooled HTTP/1.1 connection each); HEADs, POSTs and the
    # manifest share one HTTP/2 connection.
    for img, parallel in ((img1, 4), (img4, 4)):
        repo = repo_name("tls-push")
        p, conns, up, _ = _counted(tls_relay, regfs, "copy", "-q", "--image-parallel-copies",
                                   str(parallel), f"dir:{img.path}",
                                   f"docker://{tls_relay.addr}/{repo}:v1",
                                   env=_env(work, certs_root))
        _ok(p, "copy")
        assert tls_reg.manifest_digest(repo, "v1") == img.digest
        blobs = len(img.layers) + 1
        assert conns <= 1 + min(parallel, blobs), (
            f"pushing {blobs} blobs, {parallel} at a time, made {conns} connections")
        assert up >= sum(b.size for b in img.layers)


def test_a_plain_http_registry_costs_one_failed_tls_probe(regfs, plain_relay, plain_img, work):
    ref = f"docker://{plain_relay.addr}/plain/img:v1"
    # Sequential requests: the TLS probe's connection, then one plain HTTP/1.1 connection.
    for args in (["inspect", "--raw", ref], ["inspect", "--no-tags", ref]):
        p, conns, _, _ = _counted(plain_relay, regfs, *args, env=_env(work))
        _ok(p, " ".join(args))
        assert conns == 2, f"regfs {' '.join(args)} made {conns} connections"
    # The plain output lists the tags concurrently; HTTP/1.1 cannot multiplex, so that
    # request may need one more connection.
    p, conns, _, _ = _counted(plain_relay, regfs, "inspect", ref, env=_env(work))
    _ok(p, "inspect")
    assert plain_img.digest in p.stdout and '"v1"' in p.stdout
    assert conns <= 3, f"inspect of a plain-HTTP registry made {conns} connections"


# ---- 3. the blob-location cache turns a push into mounts ---------------------------------

@pytest.fixture(scope="module")
def cache_img(src_reg, tmp_path_factory):
    """Three random layers of ~2 MiB (incompressible), at cache/img:v1 on the source."""
    return images.pushed_image(tmp_path_factory.mktemp("http-cache-img") / "img", src_reg,
                               "cache/img", seed=904, fmt="oci", layers=["gzip", "gzip", "tar"],
                               layer_size=2 << 20)


def test_a_second_push_to_a_new_repository_mounts_known_blobs(regfs, src_reg, dest_reg,
                                                              dest_relay, cache_img, work,
                                                              repo_name):
    layer_bytes = sum(b.size for b in cache_img.layers)
    cache = work / "shared-cache"
    repo_a, repo_b, repo_c = repo_name("cache-a"), repo_name("cache-b"), repo_name("cache-c")
    # First: from the source registry; every blob is uploaded to repo-a.
    p, _, up_a, _ = _counted(dest_relay, regfs, "copy", "-q",
                             src_reg.ref("cache/img", "v1"),
                             f"docker://{dest_relay.addr}/{repo_a}:v1",
                             env=_env(work, cache=cache))
    _ok(p, "first copy")
    assert up_a >= layer_bytes
    assert dest_reg.manifest_digest(repo_a, "v1") == cache_img.digest
    # Second: from a dir, which says nothing of where the blobs are: only the blob-location
    # cache knows that repo-a has them, and a mount from there sends no blob bytes.
    p, _, up_b, _ = _counted(dest_relay, regfs, "copy", "-q", f"dir:{cache_img.path}",
                             f"docker://{dest_relay.addr}/{repo_b}:v1",
                             env=_env(work, cache=cache))
    _ok(p, "second copy")
    assert dest_reg.manifest_digest(repo_b, "v1") == cache_img.digest
    for digest in cache_img.blobs():
        assert dest_reg.has_blob(repo_b, digest), f"{digest} missing in {repo_b}"
    assert up_b < 64 * 1024, (
        f"the second copy sent {up_b} bytes up (image: {layer_bytes} bytes of layers)")
    # The control: the same copy with an empty cache does upload every layer.
    p, _, up_c, _ = _counted(dest_relay, regfs, "copy", "-q", f"dir:{cache_img.path}",
                             f"docker://{dest_relay.addr}/{repo_c}:v1", env=_env(work))
    _ok(p, "copy with an empty cache")
    assert dest_reg.manifest_digest(repo_c, "v1") == cache_img.digest
    assert up_c >= layer_bytes, f"only {up_c} bytes up without the cache"


# ---- 4. concurrent pushes into one repository ------------------------------------------------

ROUNDS = 3
WRITERS = 4


@pytest.fixture(scope="module")
def conc_img(src_reg, tmp_path_factory):
    """One streamed layer and two small ones, at conc/img:v1 on the source."""
    return images.pushed_image(tmp_path_factory.mktemp("http-conc-img") / "img", src_reg,
                               "conc/img", seed=905, fmt="docker", layers=["gzip", "tar", "gzip"],
                               layer_size=[STREAMED, 48 * 1024, 16 * 1024])


def _run_at_once(argvs, env):
    """Runs every argv at the same time (a thread each, tools.run's environment and
    timeout, which also kills a process left over); returns their CompletedProcesses."""
    with ThreadPoolExecutor(max_workers=len(argvs)) as pool:
        return list(pool.map(lambda argv: tools.run(argv, env=env, timeout=180), argvs))


@pytest.mark.parametrize("where", ["other-registry", "same-registry"])
def test_four_concurrent_copies_into_one_repository(regfs_bin, src_reg, dest_reg, conc_img,
                                                    work, repo_name, where):
    dest = dest_reg if where == "other-registry" else src_reg
    # One cache for all rounds and writers: round 1 uploads (other registry) or mounts from
    # the source (same registry); later rounds also find the earlier rounds' repositories
    # in the cache and mount from them, four processes at once into one repository.
    cache = work / "shared-cache"
    src = src_reg.ref("conc/img", "v1")
    for rnd in range(1, ROUNDS + 1):
        repo = repo_name(f"conc-{rnd}")
        tags = [f"t{i}" for i in range(1, WRITERS + 1)]
        results = _run_at_once([[regfs_bin, "copy", "-q", src, dest.ref(repo, t)] for t in tags],
                               {"XDG_CACHE_HOME": str(cache)})
        failed = [(t, p) for t, p in zip(tags, results) if p.returncode != 0]
        assert not failed, f"round {rnd}, {where}: " + "\n".join(
            f"{t}: exit {p.returncode}: {p.stderr}" for t, p in failed)
        assert dest.tags(repo) == tags
        for t in tags:
            assert dest.manifest_digest(repo, t) == conc_img.digest, f"round {rnd} {t}"
        # The oracle reads every tag back, blobs verified, bytes identical to the source.
        outs = [work / f"back-{where}-{rnd}-{t}" for t in tags]
        results = _run_at_once([[tools.SKOPEO, "copy", "-q", "--src-tls-verify=false",
                                 dest.ref(repo, t), f"dir:{out}"]
                                for t, out in zip(tags, outs)], {})
        for t, out, p in zip(tags, outs, results):
            assert p.returncode == 0, f"round {rnd}: skopeo cannot copy {repo}:{t} back: {p.stderr}"
            assert tools.sha256_file(out / "manifest.json") == conc_img.digest
            assert tools.tree_diff(out, conc_img.path) == "", f"round {rnd} {t}"


# ---- 5. loopback: plain HTTP works, TLS is never downgraded -----------------------------------

def test_a_plain_http_loopback_registry_needs_no_flags(regfs, plain_reg, plain_img, work,
                                                       repo_name):
    p = regfs("inspect", plain_reg.ref("plain/img", "v1"), env=_env(work))
    _ok(p, "inspect")
    assert plain_img.digest in p.stdout
    p = regfs("copy", "-q", plain_reg.ref("plain/img", "v1"), f"dir:{work / 'out'}",
              env=_env(work))
    _ok(p, "copy to dir")
    assert tools.tree_diff(work / "out", plain_img.path) == ""
    repo = repo_name("plain-push")
    p = regfs("copy", "-q", f"dir:{plain_img.path}", plain_reg.ref(repo, "v1"), env=_env(work))
    _ok(p, "copy from dir")
    assert plain_reg.manifest_digest(repo, "v1") == plain_img.digest


def test_a_tls_loopback_registry_without_the_ca_is_refused_not_downgraded(
        regfs, tls_relay, tls_reg, img4, work, repo_name):
    empty = work / "empty-certs.d"
    empty.mkdir()
    env = _env(work, empty)
    p, conns, _, _ = _counted(tls_relay, regfs, "inspect",
                              f"docker://{tls_relay.addr}/tls/img4:v1", env=env)
    assert p.returncode == 1, p.stderr
    line = tools.one_line_error(p)
    assert "certificate" in line and "certs.d" in line, line
    # Only the TLS attempt reached the registry: no second, plain-HTTP connection.
    assert conns == 1, f"{conns} connections: was it retried over plain HTTP?"
    repo = repo_name("tls-refused")
    p, conns, _, _ = _counted(tls_relay, regfs, "copy", "-q", f"dir:{img4.path}",
                              f"docker://{tls_relay.addr}/{repo}:v1", env=env)
    assert p.returncode == 1, p.stderr
    line = tools.one_line_error(p)
    assert "certificate" in line and "certs.d" in line, line
    assert conns == 1, conns
    assert not tls_reg.has_manifest(repo, "v1")


# ---- 6. proxies from the environment apply to TLS too ---------------------------------------

@pytest.mark.parametrize("var", ["https_proxy", "HTTPS_PROXY"])
def test_https_proxy_carries_tls_unless_no_proxy_exempts_the_host(regfs, tls_relay, certs_root,
                                                                  img4, work, var):
    port = tools.free_port()   # nobody listens there
    ref = f"docker://{tls_relay.addr}/tls/img4:v1"
    env = _env(work, certs_root, **{var: f"http://127.0.0.1:{port}", "no_proxy": "",
                                    "NO_PROXY": ""})
    p, conns, _, _ = _counted(tls_relay, regfs, "inspect", "--raw", ref, env=env)
    assert p.returncode == 1, p.stderr
    line = tools.one_line_error(p)
    assert f"port {port}" in line, line
    assert conns == 0, "the request went to the registry, not to the proxy"
    p, conns, _, _ = _counted(tls_relay, regfs, "inspect", "--raw", ref,
                              env={**env, "no_proxy": "127.0.0.1"}, binary=True)
    _ok(p, "inspect with no_proxy")
    assert tools.sha256_bytes(p.stdout) == img4.digest
    assert conns == 1
