"""A threaded TCP relay on loopback, in front of one loopback host:port, that adds one-way delay
and counts connections and bytes.

    with TCPRelay(registry.addr, delay_ms=10) as relay:   # listens on 127.0.0.1:<free port>
        ... talk to relay.addr (TLS passes through untouched) ...
        relay.connections, relay.bytes_up, relay.bytes_down, relay.active
        relay.reset_counts()

Bytes are relayed unchanged, both ways, with TCP_NODELAY on both sockets. With ``delay_ms``
each chunk read from one side is written to the other ``delay_ms`` after it was read, in
order: a reader thread per direction timestamps the chunks into a queue and a sender thread
writes each one when it is due, so the delay does not cap throughput (up to ``buffer`` bytes
may be in flight per direction; beyond that the reader waits, and TCP's flow control reaches
the sender). With ``handshake=True`` a new connection also costs one round trip before the
client's first bytes leave, as TCP's handshake does on a real network: they reach the upstream
no earlier than 3 × delay_ms after the connection was accepted.

A half-close (EOF) is passed on, after the delay, as shutdown(SHUT_WR); a connection is closed
once both directions have ended, or at once on an error on either side. ``connections`` counts
accepted client connections, ``bytes_up`` bytes written to the upstream, ``bytes_down`` bytes
written back to clients. ``stop()`` (also the context manager's exit, and interpreter exit)
closes the listener and every relayed socket. The relay listens on 127.0.0.1 only and refuses
a target that is not a loopback address.
"""

import atexit
import collections
import ipaddress
import socket
import threading
import time

CHUNK = 256 * 1024
_live = set()


@atexit.register
def _stop_all():
    for r in list(_live):
        r.stop()


def _loopback_target(target):
    """(host, port) of "host:port" or a pair; ValueError unless host is a loopback address."""
    if isinstance(target, str):
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
    else:
        host, port = target
    if host == "localhost":
        host = "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"TCPRelay relays to loopback only, not {host}")
    return host, int(port)


def _nodelay(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)   # wakes a thread blocked in recv() on it
    except OSError:
        pass
    sock.close()


class _Direction:
    """One direction of one relayed connection: src -> dst, each chunk written `delay` seconds
    after it was read and not before `not_before` (time.monotonic())."""

    def __init__(self, conn, src, dst, counter, delay, not_before, buffer):
        self.conn, self.src, self.dst, self.counter = conn, src, dst, counter
        self.delay, self.not_before, self.buffer = delay, not_before, buffer
        self.queue = collections.deque()   # (due, bytes); b"" is EOF
        self.queued = 0
        self.cv = threading.Condition()

    def start(self):
        threads = [threading.Thread(target=self._read, daemon=True)]
        if self.delay > 0 or self.not_before > 0:
            threads.append(threading.Thread(target=self._send_when_due, daemon=True))
        for t in threads:
            t.start()
        return threads

    def _write(self, data):
        if data:
            self.conn.relay._count(self.counter, len(data))   # before: the peer may be quick
            self.dst.sendall(data)
        else:
            self.dst.shutdown(socket.SHUT_WR)

    def _read(self):
        direct = self.delay <= 0 and self.not_before <= 0
        try:
            while True:
                data = self.src.recv(CHUNK)
                if direct:
                    self._write(data)
                else:
                    due = max(time.monotonic(), self.not_before) + self.delay
                    with self.cv:
                        while self.queued >= self.buffer and not self.conn.closed:
                            self.cv.wait()
                        if self.conn.closed:
                            return
                        self.queue.append((due, data))
                        self.queued += len(data)
                        self.cv.notify_all()
                if not data:
                    if direct:
                        self.conn.direction_done()
                    return
        except OSError:
            self.conn.close()

    def _send_when_due(self):
        try:
            while True:
                with self.cv:
                    while not self.queue and not self.conn.closed:
                        self.cv.wait()
                    if self.conn.closed:
                        return
                    due, data = self.queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if self.conn.closed:
                    return
                self._write(data)
                with self.cv:
                    self.queued -= len(data)
                    self.cv.notify_all()
                if not data:
                    self.conn.direction_done()
                    return
        except OSError:
            self.conn.close()

    def wake(self):
        with self.cv:
            self.cv.notify_all()


class _Connection:
    def __init__(self, relay, client):
        self.relay, self.client = relay, client
        self.upstream = None
        self.closed = False
        self.done = 0
        self.directions = []
        self.lock = threading.Lock()

    def run(self, accepted):
        relay = self.relay
        try:
            self.upstream = socket.create_connection(relay.target, timeout=10)
            self.upstream.settimeout(None)
            _nodelay(self.upstream)
        except OSError:
            self.close()
            return
        if self.closed:   # stop() came while connecting
            _close(self.upstream)
            return
        delay = relay.delay_ms / 1000
        not_before = accepted + 2 * delay if relay.handshake else 0
        self.directions = [
            _Direction(self, self.client, self.upstream, "bytes_up", delay, not_before,
                       relay.buffer),
            _Direction(self, self.upstream, self.client, "bytes_down", delay, 0, relay.buffer)]
        for d in self.directions:
            d.start()

    def direction_done(self):
        with self.lock:
            self.done += 1
            both = self.done == 2
        if both:
            self.close()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            if s is not None:
                _close(s)
        for d in self.directions:
            d.wake()
        self.relay._forget(self)


class TCPRelay:
    def __init__(self, target, delay_ms=0, handshake=False, buffer=16 << 20):
        self.target = _loopback_target(target)
        self.delay_ms = float(delay_ms)
        self.handshake = handshake
        self.buffer = buffer
        self.port = None
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._listener = None
        self._conns = set()
        self._lock = threading.Lock()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @property
    def active(self):
        """Relayed connections open now."""
        with self._lock:
            return len(self._conns)

    def reset_counts(self):
        with self._lock:
            self.connections = self.bytes_up = self.bytes_down = 0

    def _count(self, counter, n):
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def _forget(self, conn):
        with self._lock:
            self._conns.discard(conn)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self):
        if self._listener is not None:
            return self
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        self._listener = ls
        self.port = ls.getsockname()[1]
        _live.add(self)
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()
        return self

    def _accept(self, ls):
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return   # the listener was closed
            accepted = time.monotonic()
            _nodelay(client)
            conn = _Connection(self, client)
            with self._lock:
                if self._listener is not ls:
                    client.close()
                    return
                self.connections += 1
                self._conns.add(conn)
            threading.Thread(target=conn.run, args=(accepted,), daemon=True).start()

    def stop(self):
        with self._lock:
            ls, self._listener = self._listener, None
            conns = list(self._conns)
        if ls is not None:
            _close(ls)
        for c in conns:
            c.close()
        _live.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
