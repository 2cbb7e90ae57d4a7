"""A throw-away CNCF Distribution registry (Debian's ``docker-registry``) on loopback.

    with Registry() as reg:                  # http://127.0.0.1:<free port>, delete enabled
        reg.addr                             # "127.0.0.1:PORT"
        reg.ref("repo", "tag")               # "docker://127.0.0.1:PORT/repo:tag"
        reg.tags("repo"), reg.manifest("repo", "tag"), reg.has_manifest(...)

    Registry(users={"alice": "secret"})      # htpasswd (bcrypt) basic auth
    Registry(tls=RegistryTLS(...))           # https, optionally requiring client certificates
    Registry(token={"realm": …, "service": …, "issuer": …, "rootcertbundle": …},
             admin_token=lambda path: "<jwt>")   # token auth; the harness signs its own requests
    Registry(proxy_remote="http://127.0.0.1:PORT")   # a pull-through cache of that registry

Each registry has its own temporary storage directory and generated config file. It is
started on a free 127.0.0.1 port, ready once ``GET /v2/`` answers, and stopped
(terminate, wait, kill) by ``stop()``, by the context manager, or at interpreter exit.
``crash()`` SIGKILLs the process and keeps the rest; ``restart()`` then starts it again on
the same port and storage (a registry restarted under its clients).
"""

import atexit
import base64
import json
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import tools
from .wait import wait_until

REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN = "/usr/bin/htpasswd"

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])

_live = set()


@atexit.register
def _stop_all():
    for r in list(_live):
        r.stop()


# No proxy from the environment may ever see loopback test traffic.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HTTPResult:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


@dataclass
class RegistryTLS:
    """Files of a TLS registry: its certificate and key, the CA that signed it (for the
    harness's own requests), client CAs to require (None: no client certificates), and the
    client pair the harness uses when they are required."""
    cert: Path
    key: Path
    ca: Path
    client_cas: list = None
    harness_client: object = None   # tlsca.Pair


class Registry:
    def __init__(self, users=None, name="registry", tls=None, token=None, admin_token=None,
                 proxy_remote=None):
        self.users = dict(users or {})
        self.name = name
        self.tls = tls
        self.token = dict(token) if token else None
        self.admin_token = admin_token
        self.proxy_remote = proxy_remote
        self.port = None
        self.proc = None
        self.workdir = None
        self._opener = _opener
        if tls is not None:
            ctx = ssl.create_default_context(cafile=str(tls.ca))
            if tls.harness_client is not None:
                ctx.load_cert_chain(str(tls.harness_client.cert), str(tls.harness_client.key))
            self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                       urllib.request.HTTPSHandler(context=ctx))

    # ---- lifecycle -------------------------------------------------------------------

    def _config(self):
        auth = ""
        if self.users:
            auth = (
                "auth:\n"
                "  htpasswd:\n"
                "    realm: regfs-test\n"
                f"    path: {self.workdir}/htpasswd\n"
            )
        elif self.token:
            auth = "auth:\n  token:\n" + "".join(
                f"    {k}: {v}\n" for k, v in self.token.items())
        tls = ""
        if self.tls is not None:
            tls = (f"  tls:\n    certificate: {self.tls.cert}\n    key: {self.tls.key}\n")
            if self.tls.client_cas:
                tls += "    clientcas:\n" + "".join(f"      - {c}\n" for c in self.tls.client_cas)
        proxy = ""
        if self.proxy_remote:
            proxy = f"proxy:\n  remoteurl: {self.proxy_remote}\n"
        return (
            "version: 0.1\n"
            "log:\n"
            "  level: info\n"
            "  formatter: text\n"
            "storage:\n"
            "  filesystem:\n"
            f"    rootdirectory: {self.workdir}/storage\n"
            "  delete:\n"
            "    enabled: true\n"
            "  maintenance:\n"
            "    uploadpurging:\n"
            "      enabled: false\n"
            "http:\n"
            f"  addr: 127.0.0.1:{self.port}\n"
            "  secret: regfs-integration-tests\n"
            "  headers:\n"
            "    X-Content-Type-Options: [nosniff]\n"
            + tls + auth + proxy
        )

    def start(self, timeout=15):
        """Start the registry; on any failure nothing is left running or on disk."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        self.workdir = tempfile.mkdtemp(prefix=f"regfs-{self.name}-")
        Path(self.workdir, "storage").mkdir()
        if self.users:
            pw = Path(self.workdir, "htpasswd")
            lines = []
            for user, password in self.users.items():
                out = subprocess.run([HTPASSWD_BIN, "-nbB", user, password], check=True,
                                     capture_output=True, text=True).stdout
                lines.append(out.strip())
            pw.write_text("\n".join(lines) + "\n")
        last_err = None
        for _attempt in range(5):
            self.port = tools.free_port()
            cfg = Path(self.workdir, "config.yml")
            cfg.write_text(self._config())
            self._log = open(Path(self.workdir, "registry.log"), "ab")
            # fork may fail with EAGAIN on a loaded machine: try again until it succeeds.
            errors = []
            self.proc = wait_until(lambda: self._spawn(cfg, errors), timeout, step=0.5)
            if self.proc is None:
                last_err = f"cannot start {REGISTRY_BIN}: {errors[-1]!r}"
                self._kill()
                break
            _live.add(self)
            if wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout):
                if self.proc.poll() is None:
                    return self
                last_err = f"docker-registry exited with {self.proc.returncode}"
            else:
                last_err = f"GET /v2/ unanswered after {timeout} s"
            self._kill()
        log = self.log_text()
        raise RuntimeError(f"docker-registry did not start: {last_err}\n{log}")

    def _spawn(self, cfg, errors):
        try:
            return subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdin=subprocess.DEVNULL,
                                    stdout=self._log, stderr=subprocess.STDOUT)
        except OSError as e:
            errors.append(e)
            return None

    def _answers(self):
        try:
            return self.get("/v2/", auth=False).status in (200, 401)
        except OSError:
            return False

    def _kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        _live.discard(self)

    def crash(self):
        """SIGKILL the registry process; its port, configuration and storage stay, so that
        restart() brings the same registry back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._kill()

    def restart(self, timeout=15):
        """Start the registry again after crash(): the same port and storage (the port is
        free again at once, the registry sets SO_REUSEADDR). Returns once GET /v2/ answers."""
        assert self.workdir and self.port, "restart() of a registry never started"
        cfg = Path(self.workdir, "config.yml")
        self._log = open(Path(self.workdir, "registry.log"), "ab")
        errors = []
        self.proc = wait_until(lambda: self._spawn(cfg, errors), timeout, step=0.5)
        assert self.proc is not None, f"cannot start {REGISTRY_BIN} again: {errors[-1]!r}"
        _live.add(self)
        if not wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout) \
                or self.proc.poll() is not None:
            log = self.log_text()
            self._kill()
            raise RuntimeError(f"docker-registry did not come back on {self.addr}:\n{log}")
        return self

    def stop(self):
        self._kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        try:
            return Path(self.workdir, "registry.log").read_text(errors="replace")[-5000:]
        except (OSError, TypeError):
            return ""

    # ---- names ------------------------------------------------------------------------

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{self.addr}"

    def ref(self, repo, tag_or_digest="latest"):
        return tools.docker_ref(self.addr, repo, tag_or_digest)

    @property
    def creds(self):
        """'user:password' of the first user, for --creds flags."""
        user, pw = next(iter(self.users.items()))
        return f"{user}:{pw}"

    # ---- direct HTTP (the test's own view of the registry, never through a proxy) ----

    def get(self, path, method="GET", headers=None, auth=True, data=None):
        req = urllib.request.Request(self.url + path, method=method, data=data)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if auth and self.users:
            tok = base64.b64encode(self.creds.encode()).decode()
            req.add_header("Authorization", "Basic " + tok)
        elif auth and self.admin_token:
            req.add_header("Authorization", "Bearer " + self.admin_token(path))
        try:
            with self._opener.open(req, timeout=30) as r:
                return HTTPResult(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return HTTPResult(e.code, e.headers, e.read())

    def manifest(self, repo, ref, method="GET"):
        """HTTPResult of the manifest request (status 404 when absent)."""
        return self.get(f"/v2/{repo}/manifests/{ref}", method=method,
                        headers={"Accept": MANIFEST_ACCEPT})

    def has_manifest(self, repo, ref):
        st = self.manifest(repo, ref, method="HEAD").status
        assert st in (200, 404), f"unexpected status {st} for {repo}:{ref}"
        return st == 200

    def manifest_digest(self, repo, ref):
        """sha256 of the manifest bytes served for ref, or None when absent."""
        r = self.manifest(repo, ref)
        if r.status == 404:
            return None
        assert r.status == 200, (r.status, r.body)
        import hashlib
        return "sha256:" + hashlib.sha256(r.body).hexdigest()

    def tags(self, repo):
        """Tags of repo ([] when the repository is unknown or has none)."""
        r = self.get(f"/v2/{repo}/tags/list")
        if r.status == 404:
            return []
        assert r.status == 200, (r.status, r.body)
        return sorted(r.json().get("tags") or [])

    def has_blob(self, repo, digest):
        return self.get(f"/v2/{repo}/blobs/{digest}", method="HEAD").status == 200

    def catalog(self):
        r = self.get("/v2/_catalog?n=1000")
        assert r.status == 200, (r.status, r.body)
        return r.json().get("repositories") or []
