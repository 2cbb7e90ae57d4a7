"""A threaded HTTP server on a free 127.0.0.1 port, for the test tree's small servers."""

import threading
from http.server import ThreadingHTTPServer


class LoopbackHTTPServer:
    """Mixin: _serve(handler_cls) starts serving on a free loopback port (self.port); stop()
    ends it. Safe to stop twice."""

    _server = None
    port = None

    def _serve(self, handler_cls):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
