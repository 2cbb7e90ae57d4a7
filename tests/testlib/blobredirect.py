"""A registry whose blobs live on another host, as with object-storage backends:

    with BlobHost(image_dir) as blobs, RedirectingProxy(registry.addr, blobs) as px:
        ... pull docker://{px.addr}/repo:tag ...
        blobs.log      # one dict per request: method, path, headers (lowercased names)
        px.log         # the same for every request the proxy saw

RedirectingProxy forwards every request to the upstream registry unchanged, except blob GETs,
which it answers with 307 to BlobHost on another loopback port. BlobHost serves the files of
a dir: image by digest (/sha256:<hex>) and records each request's headers, so a test can see
what a client carried across the redirect.
"""

import http.client
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from .loopback_server import LoopbackHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade"}


class _Server(LoopbackHTTPServer):
    def __init__(self):
        self.log = []
        self._lock = threading.Lock()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def record(self, handler):
        with self._lock:
            self.log.append({"method": handler.command, "path": handler.path,
                             "headers": {k.lower(): v for k, v in handler.headers.items()}})

    def __exit__(self, *exc):
        self.stop()


class BlobHost(_Server):
    def __init__(self, image_dir):
        super().__init__()
        self.dir = Path(image_dir)

    def __enter__(self):
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, body):
                host.record(self)
                name = self.path.split("?")[0].lstrip("/")
                path = host.dir / name.removeprefix("sha256:")
                if not name.startswith("sha256:") or not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self):
                self._answer(True)

            def do_HEAD(self):
                self._answer(False)

        return self._serve(Handler)


class RedirectingProxy(_Server):
    def __init__(self, upstream_addr, blob_host):
        super().__init__()
        self.upstream = upstream_addr
        self.blob_host = blob_host

    def __enter__(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                proxy.record(self)
                path = self.path.split("?")[0]
                if self.command == "GET" and "/blobs/sha256:" in path:
                    digest = path.rsplit("/", 1)[1]
                    self.send_response(307)
                    self.send_header("Location",
                                     f"http://{proxy.blob_host.addr}/{digest}?signature=x")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return self._serve(Handler)
