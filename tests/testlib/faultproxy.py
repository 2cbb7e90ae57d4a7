"""A fault-injecting HTTP/1.1 reverse proxy, in process, for one upstream registry.

    with FaultProxy(registry.addr) as px:          # listens on 127.0.0.1:<free port>
        px.add(Fault.reset_after(256 * 1024), method="GET", path=r"/blobs/sha256:")
        ...  copy from docker://{px.addr}/repo:tag ...
        px.requests(method="GET", path=r"/blobs/")  # the request log, filtered

Requests go to the upstream unchanged (the Host header too, so the registry's Location
headers name the proxy), with keep-alive on the client side, streamed bodies both ways
(Content-Length or chunked requests; Content-Length or chunked responses), HEAD, Range
passthrough and redirects passed through untouched. An upstream that goes away (a registry
killed) gets a 502 for requests it could not answer, and a response whose body it cut short
ends the client's connection there too.

Faults apply to requests whose method matches (None = any) and whose path (with query)
matches a regular expression (re.search). Each fires ``count`` times (None = every
time), on each matching request with its ``probability`` (default 1: always); every
matching armed fault fires on a request, in the order added:

    Fault.latency(seconds)           wait before forwarding
    Fault.bandwidth(bytes_per_sec)   pace the response body
    Fault.reset_after(n)             send n bytes of the response body, then a TCP reset
    Fault.status(429, retry_after=2) answer this status (registry-style JSON error body)
                                     without forwarding; Retry-After when given
    Fault.flip_byte(offset=None)     invert one byte of the response body (default: the
                                     middle one)
    Fault.upload_bandwidth(bps)      pace the request body (an upload) on its way upstream
    Fault.hold_upload(event, after)  stop forwarding the request body after `after` bytes
                                     until the threading.Event is set (the log entry shows
                                     `held` meanwhile); never longer than HOLD_LIMIT seconds
    Fault.drop(when=None)            a TCP reset of the client connection at a random moment:
                                     before the request is forwarded (half of the time), or
                                     once the upstream has answered, after a random part of
                                     the response body (or none of it: the answer is lost);
                                     when="before" or "answered" (the upstream has handled the
                                     request, the client gets none of its answer) chooses

    px.add(Fault.drop(probability=0.05), forever=True)   # 5% of requests, at random

The log (``px.log``) has one LogEntry per request: start/end times (time.monotonic()),
method, path, Range header, response status, body bytes sent, request body bytes forwarded
upstream (``request_bytes``, counted while the request runs), and the faults fired.
"""

import fcntl
import http.client
import json
import random
import re
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import tools
from .wait import wait_until

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
              "proxy-connection"}
CHUNK = 64 * 1024
HOLD_LIMIT = 120  # a hold_upload the test never releases ends after this, not never


@dataclass
class Fault:
    kind: str
    method: str = None
    path: str = ".*"
    count: int = 1          # None = unlimited
    seconds: float = 0.0    # latency
    rate: float = 0         # bandwidth, bytes per second
    after: int = 0          # reset after this many body bytes
    code: int = 0           # status
    retry_after: object = None
    offset: int = None      # flip_byte
    event: object = None    # hold_upload: threading.Event that releases it
    probability: float = 1.0  # chance that a matching request fires it
    when: str = None        # drop: "before", "answered", None = at random
    skip: int = 0           # the first `skip` matching requests pass untouched
    fired: int = 0

    @classmethod
    def latency(cls, seconds, **kw):
        return cls("latency", seconds=seconds, **kw)

    @classmethod
    def bandwidth(cls, bytes_per_sec, **kw):
        return cls("bandwidth", rate=bytes_per_sec, **kw)  # below 1: a trickle

    @classmethod
    def reset_after(cls, nbytes, **kw):
        return cls("reset", after=int(nbytes), **kw)

    @classmethod
    def status(cls, code, retry_after=None, **kw):
        return cls("status", code=int(code), retry_after=retry_after, **kw)

    @classmethod
    def flip_byte(cls, offset=None, **kw):
        return cls("flip", offset=offset, **kw)

    @classmethod
    def upload_bandwidth(cls, bytes_per_sec, **kw):
        return cls("upload_bandwidth", rate=int(bytes_per_sec), **kw)

    @classmethod
    def hold_upload(cls, event, after=0, **kw):
        return cls("hold_upload", event=event, after=int(after), **kw)

    @classmethod
    def drop(cls, when=None, **kw):
        if when not in (None, "before", "answered"):
            raise ValueError(f"Fault.drop(when={when!r})")
        return cls("drop", when=when, **kw)

    def matches(self, method, path, rng):
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if re.search(self.path, path) is None:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return self.probability >= 1 or rng.random() < self.probability


@dataclass
class LogEntry:
    start: float
    method: str
    path: str
    range: str
    status: int = 0
    body_bytes: int = 0
    end: float = 0.0
    faults: list = field(default_factory=list)
    error: str = ""
    request_bytes: int = 0
    held: bool = False      # a hold_upload fault is holding the request body now

    @property
    def range_start(self):
        """First byte of a 'bytes=N-[M]' Range header, or None."""
        m = re.match(r"bytes=(\d+)-", self.range or "")
        return int(m.group(1)) if m else None


class _Reset(Exception):
    """Raised inside the handler once the client connection has been reset on purpose."""


_STATUS_CODES = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNAVAILABLE",
                 503: "UNAVAILABLE", 504: "UNAVAILABLE", 401: "UNAUTHORIZED",
                 403: "DENIED", 404: "NAME_UNKNOWN"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server_version = "regfs-faultproxy"
    sys_version = ""

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.upstream = None
        self.server.proxy._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        if self.upstream is not None:
            self.upstream.close()
        self.server.proxy._track(self.connection, False)

    def _upstream(self):
        if self.upstream is None:
            host, port = self.server.proxy.upstream
            self.upstream = http.client.HTTPConnection(host, port, timeout=120)
        return self.upstream

    # every method goes through one handler
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    # ---- request body ----------------------------------------------------------------

    def _body_iter(self):
        """(iterable, chunked) for the request body, or (None, False) when there is none."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._read_chunked(), True
        length = self.headers.get("Content-Length")
        if length is None:
            return None, False
        n = int(length)

        def gen():
            left = n
            while left > 0:
                b = self.rfile.read(min(CHUNK, left))
                if not b:
                    raise ConnectionError("client closed during request body")
                left -= len(b)
                yield b
        return gen(), False

    def _read_chunked(self):
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed during chunked body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:   # trailers up to the empty line
                    t = self.rfile.readline(65537)
                    if t in (b"\r\n", b"\n", b""):
                        return
            left = size
            while left > 0:
                b = self.rfile.read(min(CHUNK, left))
                if not b:
                    raise ConnectionError("client closed during chunked body")
                left -= len(b)
                yield b
            self.rfile.readline(3)  # CRLF after the chunk

    def _drain_body(self):
        it, _ = self._body_iter()
        if it is not None:
            for _ in it:
                pass

    # ---- response --------------------------------------------------------------------

    def _send_status_fault(self, f, entry):
        self._drain_body()
        code = f.code
        body = json.dumps({"errors": [{"code": _STATUS_CODES.get(code, "UNKNOWN"),
                                       "message": f"injected by faultproxy ({code})",
                                       "detail": None}]}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if f.retry_after is not None:
            self.send_header("Retry-After", str(f.retry_after))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            entry.body_bytes = len(body)
        entry.status = code

    def _reset(self):
        try:
            self.wfile.flush()
        except OSError:
            pass
        # The reset discards what the client has not acknowledged yet: wait until it has all
        # of it (Linux keeps received bytes readable before reporting the reset). A client
        # that stops reading is reset anyway after the deadline.
        wait_until(lambda: self._unacknowledged() == 0, 10, step=0.005)
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        raise _Reset()

    def _unacknowledged(self):
        """Bytes sent on the client connection that its peer has not acknowledged."""
        try:
            out = fcntl.ioctl(self.connection.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return 0
        return struct.unpack("i", out)[0]

    def _write_body(self, data, state, faults, chunked):
        """Write one piece of the response body, applying body faults."""
        flip = state.get("flip")
        if flip is not None and state["sent"] <= flip < state["sent"] + len(data):
            i = flip - state["sent"]
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
            state["flip"] = None
        reset = state.get("reset")
        if reset is not None and state["sent"] + len(data) >= reset:
            data = data[:reset - state["sent"]]
            self._emit(data, state, chunked)
            self._reset()
        self._emit(data, state, chunked)

    def _emit(self, data, state, chunked):
        rate = state.get("rate")
        pieces = [data]
        if rate:
            step = max(1, int(rate // 20))
            pieces = [data[i:i + step] for i in range(0, len(data), step)]
        for p in pieces:
            if not p:
                continue
            # Counted before the write: once the client has the bytes (and a test that read
            # them looks at the log), the log says so — the write would race with the count.
            state["sent"] += len(p)
            state["entry"].body_bytes = state["sent"]
            if chunked:
                self.wfile.write(b"%x\r\n" % len(p) + p + b"\r\n")
            else:
                self.wfile.write(p)
            if rate:
                due = state["t0"] + state["sent"] / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    def _proxy(self):
        px = self.server.proxy
        entry = LogEntry(start=time.monotonic(), method=self.command, path=self.path,
                         range=self.headers.get("Range"))
        px._log_add(entry)
        try:
            faults = px._take(self.command, self.path)
            entry.faults = [f.kind for f in faults]
            for f in faults:
                if f.kind == "latency":
                    time.sleep(f.seconds)
            for f in faults:
                if f.kind == "status":
                    self._send_status_fault(f, entry)
                    return
            drop = next((f for f in faults if f.kind == "drop"), None)
            if drop is not None and (drop.when == "before"
                                     or (drop.when is None and px._random() < 0.5)):
                self._reset()   # before forwarding: the upstream never sees the request
            self._forward(entry, faults)
        except _Reset:
            entry.error = "reset"
        except (OSError, http.client.HTTPException, ConnectionError) as e:
            entry.error = f"{type(e).__name__}: {e}"
            self.close_connection = True
            if self.upstream is not None:
                self.upstream.close()
                self.upstream = None
        finally:
            entry.end = time.monotonic()

    def _forward(self, entry, faults):
        body, chunked = self._body_iter()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        conn = self._upstream()
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            if body is not None:
                rate = next((f.rate for f in faults if f.kind == "upload_bandwidth"), 0)
                hold = next((f for f in faults if f.kind == "hold_upload"), None)
                t0 = time.monotonic()
                for piece in body:
                    step = max(1, int(rate // 20)) if rate else len(piece) or 1
                    for i in range(0, len(piece), step):
                        part = piece[i:i + step]
                        if hold is not None and entry.request_bytes >= hold.after:
                            entry.held = True
                            hold.event.wait(HOLD_LIMIT)
                            entry.held = False
                            hold = None
                        if chunked:
                            conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
                        else:
                            conn.send(part)
                        entry.request_bytes += len(part)
                        if rate:
                            delay = t0 + entry.request_bytes / rate - time.monotonic()
                            if delay > 0:
                                time.sleep(delay)
                if chunked:
                    conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self.upstream = None
            if body is not None:
                self.close_connection = True  # unread request body may remain
            msg = f"faultproxy: upstream failed: {e}".encode()
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            entry.status, entry.body_bytes, entry.error = 502, len(msg), str(e)
            return

        entry.status = resp.status
        self.send_response_only(resp.status, resp.reason)
        length = None
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP:
                continue
            if lk == "content-length":
                length = int(v)
            self.send_header(k, v)
        no_body = (self.command == "HEAD" or resp.status in (204, 304)
                   or 100 <= resp.status < 200)
        drop = next((f for f in faults if f.kind == "drop"), None)
        if drop is not None and (drop.when == "answered" or no_body or length == 0
                                 or self.server.proxy._random() < 0.1):
            resp.read()          # the upstream has answered; the client never hears it
            conn.close()
            self.upstream = None
            self._reset()
        out_chunked = not no_body and length is None
        if out_chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            resp.read()
            if resp.will_close:
                conn.close()
                self.upstream = None
            return

        state = {"sent": 0, "entry": entry, "t0": time.monotonic()}
        for f in faults:
            if f.kind == "flip":
                off = f.offset
                if off is None:
                    off = (length // 2) if length else 0
                state["flip"] = off
            elif f.kind == "reset":
                state["reset"] = f.after
            elif f.kind == "bandwidth":
                state["rate"] = f.rate
            elif f.kind == "drop":
                # somewhere in the body (a chunked body of unknown length: its first 1 MiB)
                state["reset"] = int(self.server.proxy._random() * (length or 1 << 20))
        try:
            while True:
                data = resp.read1(CHUNK)
                if not data:
                    break
                self._write_body(data, state, faults, out_chunked)
            # read1() does not mark a Content-Length body as done when it ends, and the
            # connection refuses the next request until it is
            resp.close()
            if length is not None and state["sent"] < length:
                # The upstream went away mid-body (a registry killed, say): so does the client's
                # connection, as a real proxy's would. Kept open, the client would wait for the
                # rest of a body that never comes.
                entry.error = f"upstream body ended after {state['sent']} of {length} bytes"
                self.wfile.flush()
                conn.close()
                self.upstream = None
                self.close_connection = True
                return
            if out_chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except _Reset:
            conn.close()
            self.upstream = None
            raise
        if resp.will_close:
            conn.close()
            self.upstream = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True


class FaultProxy:
    def __init__(self, upstream_addr, seed=None):
        host, port = upstream_addr.rsplit(":", 1)
        self._rng = random.Random(seed)  # the probabilities and drop points
        self.upstream = (host, int(port))
        self.faults = []
        self.log = []
        self._lock = threading.Lock()
        self._conns = set()
        self._server = None
        self._thread = None

    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def ref(self, repo, tag_or_digest="latest"):
        return tools.docker_ref(self.addr, repo, tag_or_digest)

    # ---- faults ----------------------------------------------------------------------

    def add(self, fault, method=None, path=None, count=None, forever=False):
        """Arm a fault; method/path/count override the Fault's own. forever=True → count
        None (fires on every matching request)."""
        if method is not None:
            fault.method = method
        if path is not None:
            fault.path = path
        if count is not None:
            fault.count = count
        if forever:
            fault.count = None
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self):
        with self._lock:
            self.faults = []

    def _random(self):
        with self._lock:
            return self._rng.random()

    def _take(self, method, path):
        with self._lock:
            fired = [f for f in self.faults if f.matches(method, path, self._rng)]
            for f in fired:
                f.fired += 1
            return fired

    # ---- log -------------------------------------------------------------------------

    def _log_add(self, entry):
        with self._lock:
            self.log.append(entry)

    def _track(self, conn, add):
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def clear_log(self):
        with self._lock:
            self.log = []

    def take_log(self):
        """The log so far, which is then cleared (so that a long run keeps it small)."""
        with self._lock:
            entries, self.log = self.log, []
        return entries

    def requests(self, method=None, path=None):
        """Log entries (in arrival order) with this method and a path matching the regex."""
        with self._lock:
            entries = list(self.log)
        return [e for e in entries
                if (method is None or e.method == method)
                and (path is None or re.search(path, e.path))]

    def dump(self):
        """The log as text, for assertion messages."""
        return "\n".join(
            f"{e.start:.3f} {e.method} {e.path} range={e.range} -> {e.status} "
            f"{e.body_bytes}B req={e.request_bytes}B faults={e.faults} {e.error}"
            for e in self.requests())
