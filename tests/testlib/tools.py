"""Running the programs under test (regfs) and the oracle (skopeo), and small file helpers.

Every command runs with a timeout, no standard input and a clean containers environment
(no user auth.json, no registries.conf surprises), and returns a CompletedProcess with
text stdout/stderr.
"""

import filecmp
import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SKOPEO = os.environ.get("SKOPEO_BIN", "/usr/bin/skopeo")
DEFAULT_TIMEOUT = 120


def regfs_bin():
    """Path of the regfs binary: $REGFS_BIN, else <repo>/build/regfs."""
    return os.environ.get("REGFS_BIN") or str(REPO_ROOT / "build" / "regfs")


def _env(home):
    env = dict(os.environ)
    for k in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "DOCKER_HOST", "CONTAINERS_REGISTRIES_CONF",
              "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY"):
        env.pop(k, None)
    if home is not None:
        env["HOME"] = str(home)
        env["XDG_RUNTIME_DIR"] = str(home)
        env["XDG_CONFIG_HOME"] = str(Path(home) / ".config")
        env["XDG_CACHE_HOME"] = str(Path(home) / ".cache")
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    return env


# What a sanitizer build of regfs reads (tools/test --sanitize / --tsan set them, with the
# directory its reports go to): a test that runs regfs in an environment of its own passes them on.
SANITIZER_VARIABLES = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")


def sanitizer_build(path=None):
    """"address" if the regfs binary (default regfs_bin()) is built with ASan (and LSan and
    UBSan: REGFS_SANITIZE=address), "thread" with ThreadSanitizer, else None."""
    data = Path(path or regfs_bin()).read_bytes()
    if b"__asan_init" in data:
        return "address"
    if b"__tsan_init" in data:
        return "thread"
    return None


def sanitizer_env():
    """The sanitizer variables that are set, as NAME=VALUE strings (for env(1))."""
    return [f"{k}={os.environ[k]}" for k in SANITIZER_VARIABLES if k in os.environ]


# The files each sanitizer's reports go to under log_path=DIR/PREFIX (DIR/PREFIX.PID), as
# tools/test names them.
SANITIZER_LOG_PREFIXES = {"ASAN_OPTIONS": "asan", "UBSAN_OPTIONS": "ubsan", "TSAN_OPTIONS": "tsan"}


def sanitizer_env_into(directory, **more):
    """The sanitizer variables of this run with their reports sent to `directory` instead (a
    log_path= of its own, last, wins), and `more` (NAME=options) appended: for a process whose
    reports a test makes on purpose and reads itself."""
    def join(*parts):
        return ":".join(p for p in parts if p)
    env = {var: join(os.environ.get(var), f"log_path={directory}/{prefix}")
           for var, prefix in SANITIZER_LOG_PREFIXES.items()}
    for var, extra in more.items():
        env[var] = join(env.get(var, os.environ.get(var)), extra)
    return env


def without_leak_check(env):
    """env with LeakSanitizer off in an ASan build: it cannot run in a process that strace
    traces (it stops the process's threads with ptrace itself). Memory errors are still caught."""
    if "ASAN_OPTIONS" not in os.environ:
        return env
    return {**env, "ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] + ":detect_leaks=0"}


# A private HOME for every command, so that no auth.json of the machine is used.
_HOME = None


def private_home():
    global _HOME
    if _HOME is None:
        import atexit
        import shutil
        import tempfile
        _HOME = tempfile.mkdtemp(prefix="regfs-test-home-")
        atexit.register(shutil.rmtree, _HOME, True)
    return _HOME


def clean_env():
    """The environment every command of the tests runs in (see run)."""
    return _env(private_home())


def run(argv, timeout=DEFAULT_TIMEOUT, check=False, env=None, input=None, binary=False):
    """Run argv, capture output (text, or bytes with binary=True). check=True raises with
    the output on failure."""
    e = _env(private_home())
    if env:
        e.update(env)
    p = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL if input is None else None,
                       input=input, capture_output=True, text=not binary, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise AssertionError(
            f"command failed ({p.returncode}): {' '.join(map(str, argv))}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def regfs(*args, **kw):
    return run([regfs_bin(), *args], **kw)


def skopeo(*args, **kw):
    return run([SKOPEO, *args], **kw)


def skopeo_ok(*args, **kw):
    return run([SKOPEO, *args], check=True, **kw)


def sha256_bytes(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def free_port():
    """A loopback TCP port that nothing listens on (bound, then released): one for a server
    to start on, or one where a connection is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def registries_conf_env(work, text):
    """Writes `text` to WORK/registries.conf; the environment that makes regfs read it."""
    conf = Path(work) / "registries.conf"
    conf.write_text(text)
    return {"CONTAINERS_REGISTRIES_CONF": str(conf)}


def mirror_conf(origin_addr, mirror_addr, entry_keys=""):
    """registries.conf text: the registry at origin_addr, with `entry_keys` (lines) and one
    [[registry.mirror]] at mirror_addr."""
    return (f'[[registry]]\nlocation = "{origin_addr}"\n{entry_keys}'
            f'[[registry.mirror]]\nlocation = "{mirror_addr}"\n')


def is_mounted(path):
    """True while path is a mount point in /proc/self/mountinfo (also when the daemon is dead
    and every access fails with ENOTCONN, where os.path.ismount says False)."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == target:
                return True
    return False


def pid_alive(pid):
    """True if pid runs and is not a zombie (a daemon's new parent may be slow to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def docker_ref(addr, repo, tag_or_digest="latest"):
    """docker://addr/repo:tag, or docker://addr/repo@digest for a value starting with
    "sha256:"."""
    sep = "@" if tag_or_digest.startswith("sha256:") else ":"
    return f"docker://{addr}/{repo}{sep}{tag_or_digest}"


def loopback_host_name():
    """The machine's own host name when it resolves to 127.0.0.1 (a name that reaches
    loopback without being a loopback name), else None."""
    name = socket.gethostname()
    try:
        addr = socket.gethostbyname(name)
    except OSError:
        return None
    return name if name != "localhost" and addr == "127.0.0.1" else None


def tree_files(root):
    """Sorted relative paths of all regular files below root."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def tree_diff(a, b):
    """Human-readable differences between two directory trees ('' when identical,
    same names and same bytes)."""
    fa, fb = tree_files(a), tree_files(b)
    out = []
    only_a = sorted(set(fa) - set(fb))
    only_b = sorted(set(fb) - set(fa))
    if only_a:
        out.append(f"only in {a}: {only_a}")
    if only_b:
        out.append(f"only in {b}: {only_b}")
    for name in sorted(set(fa) & set(fb)):
        if not filecmp.cmp(Path(a) / name, Path(b) / name, shallow=False):
            out.append(f"differs: {name}")
    subdirs_a = sorted(str(p.relative_to(a)) for p in Path(a).rglob("*") if p.is_dir())
    subdirs_b = sorted(str(p.relative_to(b)) for p in Path(b).rglob("*") if p.is_dir())
    if subdirs_a != subdirs_b:
        out.append(f"directories differ: {subdirs_a} vs {subdirs_b}")
    return "\n".join(out)


def oci_layout_summary(root):
    """What an OCI layout holds, independent of JSON formatting: the oci-layout file
    parsed, index.json parsed, and the set of blob file names (content-addressed, so
    names identify bytes once sha256 is checked)."""
    root = Path(root)
    blobs = {}
    for p in sorted((root / "blobs" / "sha256").iterdir()):
        got = sha256_file(p)
        assert got == "sha256:" + p.name, f"blob {p} has digest {got}"
        blobs[p.name] = p.stat().st_size
    return {
        "oci-layout": json.loads((root / "oci-layout").read_text()),
        "index.json": json.loads((root / "index.json").read_text()),
        "blobs": blobs,
    }


def one_line_error(proc):
    """Assert that a failed command printed exactly one non-empty line on stderr;
    return that line."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), (
        f"expected exactly one error line on stderr, got {len(lines)}:\n{proc.stderr!r}")
    return lines[0]


def output_diff(mine, theirs, names=("regfs", "skopeo")):
    """Unified diff of two outputs (str or bytes), '' when equal."""
    import difflib
    if isinstance(mine, bytes):
        mine = mine.decode("utf-8", "backslashreplace")
    if isinstance(theirs, bytes):
        theirs = theirs.decode("utf-8", "backslashreplace")
    if mine == theirs:
        return ""
    d = "".join(difflib.unified_diff(theirs.splitlines(True), mine.splitlines(True),
                                     fromfile=names[1], tofile=names[0]))
    return d or f"{names[0]}: {mine!r}\n{names[1]}: {theirs!r}"


def assert_same_output(mine, theirs):
    """Both commands succeeded and printed the same bytes on stdout."""
    assert theirs.returncode == 0, f"skopeo failed: {theirs.stderr}"
    assert mine.returncode == 0, f"regfs failed ({mine.returncode}): {mine.stderr}"
    d = output_diff(mine.stdout, theirs.stdout)
    assert d == "", "stdout differs (- skopeo, + regfs):\n" + d


def split_layers_data(out):
    """regfs inspect's stdout (bytes) without its "LayersData" block, and the block parsed
    (None when there is none)."""
    lines = out.split(b"\n")
    try:
        start = lines.index(b'    "LayersData": [')
    except ValueError:
        return out, None
    end = start + 1
    while lines[end] not in (b"    ],", b"    ]"):
        end += 1
    data = json.loads(b"\n".join([b"["] + lines[start + 1:end] + [b"]"]))
    return b"\n".join(lines[:start] + lines[end + 1:]), data


def assert_same_inspect(mine, theirs):
    """`regfs inspect` prints skopeo's JSON byte for byte, plus "LayersData" (DESIGN §2, as
    newer skopeo prints it), which Debian's skopeo 1.9.3 lacks: that block is checked against
    the image's layers, and everything else compared byte for byte."""
    assert theirs.returncode == 0, f"skopeo failed: {theirs.stderr}"
    assert mine.returncode == 0, f"regfs failed ({mine.returncode}): {mine.stderr}"
    as_bytes = lambda out: out.encode() if isinstance(out, str) else out  # noqa: E731
    if b'"LayersData"' in as_bytes(theirs.stdout) or b'\n    "Layers": ' not in as_bytes(theirs.stdout):
        return assert_same_output(mine, theirs)
    stripped, data = split_layers_data(as_bytes(mine.stdout))
    assert data is not None, "regfs inspect printed no LayersData"
    d = output_diff(stripped, as_bytes(theirs.stdout))
    assert d == "", "stdout differs (- skopeo, + regfs without LayersData):\n" + d
    doc = json.loads(mine.stdout)
    assert [l["Digest"] for l in data] == doc["Layers"]
    for layer in data:
        assert set(layer) == {"MIMEType", "Digest", "Size", "Annotations"}
        assert layer["MIMEType"].startswith("application/vnd.")
        assert isinstance(layer["Size"], int) and layer["Size"] > 0
