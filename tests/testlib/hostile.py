"""A registry that lies on purpose, each repository in its own way, for the tests of what
regfs does with a server it cannot trust (tests/integration/test_hostile.py).

    with HostileRegistry() as h:
        h.addr                           # "127.0.0.1:PORT"
        h.ref("size-negative")           # docker://127.0.0.1:PORT/lie/size-negative:v1

Every repository is lie/<kind>, tag v1, and starts from the same small valid image (a config
and one layer); LIES names every kind with what it does, and any other kind (lie/honest) is
that valid image. /v2/ answers 200 without auth; the catalog of the registry never ends (each
page links to another), each page after `catalog_delay` seconds (HostileRegistry(catalog_delay=
0.5): a catalog that is endless and slow too).
"""

import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

from testlib.loopback_server import LoopbackHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


LAYER = b"hostile layer bytes " * 512
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [_digest(LAYER)]}}).encode()


def _manifest(layer=None, config=None):
    layer = layer or {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                      "digest": _digest(LAYER), "size": len(LAYER)}
    config = config or {"mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": _digest(CONFIG), "size": len(CONFIG)}
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                       "layers": [layer]}).encode()


def _layer(**changes):
    d = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(LAYER),
         "size": len(LAYER)}
    d.update(changes)
    return _manifest(layer=d)


# kind -> (what it does, the manifest served for v1 or None for the valid one)
LIES = {
    "size-negative": ("a layer whose size is -5", _layer(size=-5)),
    "size-huge": ("a layer of 2^62 bytes", _layer(size=1 << 62)),
    "size-wrong": ("a layer whose size is smaller than its bytes", _layer(size=100)),
    "digest-path": ("a layer digest that is a path", _layer(digest="sha256:../../../etc/passwd")),
    "digest-not-hex": ("a layer digest that is not hex", _layer(digest="sha256:" + "z" * 64)),
    "digest-other-algo": ("a layer digest of an unknown algorithm",
                          _layer(digest="md5:d41d8cd98f00b204e9800998ecf8427e")),
    "manifest-huge": ("a manifest over the 4 MiB limit",
                      json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                  "annotations": {"pad": "x" * (5 << 20)}}).encode()),
    "manifest-nested": ("JSON nested 100,000 deep", b"[" * 100000 + b"]" * 100000),
    "manifest-invalid": ("a manifest that is not JSON", b'{"schemaVersion": 2, "layers": ['),
    "manifest-types": ("a manifest with fields of the wrong types",
                       json.dumps({"schemaVersion": "2", "mediaType": OCI_MANIFEST,
                                   "config": "none", "layers": {"a": 1}}).encode()),
    "manifest-length-huge": ("a manifest whose Content-Length says 10 GiB", None),
    "manifest-truncated": ("a manifest body cut short", None),
    "manifest-trickle": ("a manifest sent one byte every 2 s", None),
    "blob-mismatch": ("a layer whose bytes don't match its digest", None),
    "blob-truncated": ("a layer body cut short", None),
    "blob-redirect-loop": ("a layer redirecting to itself for ever", None),
    "index-nested": ("an index whose instance is an index", None),
    "index-self": ("an index naming the digest it is served under", None),
    "tags-endless": ("a tag list whose pages never end", None),
}


class HostileRegistry(LoopbackHTTPServer):
    def __init__(self, catalog_delay=0.0):
        self.requests = []
        self.lock = threading.Lock()
        self.catalog_delay = catalog_delay

    def requests_for(self, prefix):
        """The (method, path) of the requests so far whose path starts with prefix."""
        with self.lock:
            return [r for r in self.requests if r[1].startswith(prefix)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def ref(self, kind, tag="v1"):
        return f"docker://{self.addr}/lie/{kind}:{tag}"

    def start(self):
        registry = self

        class Handler(_Handler):
            owner = registry

        return self._serve(Handler)


class _Handler(BaseHTTPRequestHandler):
    owner = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, each response of a long
        # pagination waits for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def do_POST(self):  # no pushes here
        self._send(405, b'{"errors":[{"code":"UNSUPPORTED"}]}')

    def do_PUT(self):
        self._send(405, b'{"errors":[{"code":"UNSUPPORTED"}]}')

    def _route(self, head):
        with self.owner.lock:
            self.owner.requests.append((self.command, self.path))
        path, _, query = self.path.partition("?")
        if path in ("/v2/", "/v2"):
            return self._send(200, b"{}", "application/json", head=head)
        if path == "/v2/_catalog":
            time.sleep(self.owner.catalog_delay)
            n = int(re.search(r"last=r(\d+)", query).group(1)) + 1 if "last=" in query else 0
            body = json.dumps({"repositories": [f"r{n}"]}).encode()
            link = f'</v2/_catalog?n=1&last=r{n}>; rel="next"'
            return self._send(200, body, "application/json", head=head, headers={"Link": link})
        m = re.match(r"^/v2/lie/([a-z0-9-]+)/(manifests|blobs|tags)/(.*)$", path)
        if not m:
            return self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        kind, what, ref = m.groups()
        if what == "tags":
            return self._tags(kind, query, head)
        if what == "manifests":
            return self._manifest(kind, ref, head)
        return self._blob(kind, ref, head)

    # ---- manifests ------------------------------------------------------------------------

    def _manifest(self, kind, ref, head):
        if kind == "index-nested":
            inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": _digest(_manifest()),
                 "size": len(_manifest()), "platform": {"os": "linux",
                                                        "architecture": "amd64"}}]}).encode()
            outer = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_INDEX, "digest": _digest(inner), "size": len(inner),
                 "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
            body = {"v1": outer, _digest(inner): inner, _digest(outer): outer,
                    _digest(_manifest()): _manifest()}.get(ref)
            if body is None:
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            return self._send(200, body, OCI_INDEX if body != _manifest() else OCI_MANIFEST,
                              head=head)
        if kind == "index-self":
            # An index naming X as its instance, served for X as well (X is not its digest).
            x = "sha256:" + "ab" * 32
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_INDEX, "digest": x, "size": 200,
                 "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
            return self._send(200, body, OCI_INDEX, head=head)
        body = LIES.get(kind, (None, None))[1] or _manifest()
        if kind == "manifest-length-huge":
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Content-Length", str(10 << 30))
            self.end_headers()
            if not head:
                self._write_slowly(body, 0)
            return self._close()
        if kind == "manifest-truncated":
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body[:len(body) // 2])
            return self._close()
        if kind == "manifest-trickle" and not head:
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Content-Digest", _digest(body))
            self.end_headers()
            self._write_slowly(body, 2.0)
            return self._close()
        return self._send(200, body, OCI_MANIFEST, head=head,
                          headers={"Docker-Content-Digest": _digest(body)})

    # ---- blobs ------------------------------------------------------------------------------

    def _blob(self, kind, digest, head):
        if kind == "blob-redirect-loop" and digest == _digest(LAYER):
            self.send_response(307)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = {_digest(LAYER): LAYER, _digest(CONFIG): CONFIG}.get(digest)
        if data is None:
            if kind == "size-wrong" and digest == _digest(LAYER):
                data = LAYER
            else:
                return self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        if kind == "blob-mismatch" and data is LAYER:
            data = b"not the layer" + LAYER[13:]
        if kind == "blob-truncated" and data is LAYER:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data[:len(data) // 3])
            return self._close()
        return self._send(200, data, "application/octet-stream", head=head)

    # ---- tags ------------------------------------------------------------------------------

    def _tags(self, kind, query, head):
        if kind != "tags-endless":
            return self._send(200, json.dumps({"name": f"lie/{kind}", "tags": ["v1"]}).encode(),
                              "application/json", head=head)
        n = int(re.search(r"last=t(\d+)", query).group(1)) + 1 if "last=" in query else 0
        body = json.dumps({"name": "lie/tags-endless", "tags": [f"t{n}"]}).encode()
        link = f'</v2/lie/tags-endless/tags/list?n=1&last=t{n}>; rel="next"'
        return self._send(200, body, "application/json", head=head, headers={"Link": link})

    # ---- plumbing ---------------------------------------------------------------------------

    def _send(self, status, body, ctype="application/json", head=False, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _write_slowly(self, body, every):
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                if every:
                    time.sleep(every)
        except OSError:
            pass

    def _close(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
