"""A throw-away Docker engine (Debian's ``dockerd``, package docker.io) for docker-daemon: tests.

    with Dockerd() as d:                     # unix socket in a fresh temporary directory
        d.host                               # "unix:///tmp/regfs-dockerd-…/docker.sock"
        d.docker("image", "ls")              # Debian's docker CLI against this engine
        d.inspect("name:tag")                # `docker image inspect` as a dict, None if absent
        d.image_ids()                        # the IDs of every image it holds

The engine runs without networking (no iptables rules, no bridge) on the vfs storage driver,
with its own socket, data root, exec root and pid file, and starts its own containerd under
the exec root: only image save and load are used, never containers. It is ready once
``GET /_ping`` answers, and ``stop()`` (also the context manager's exit, and interpreter exit)
terminates it, kills its process group if it lingers, and removes every directory it had
(vfs keeps every layer unpacked, so a data root grows with each image loaded).
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from . import tools
from .wait import wait_until

DOCKERD_BIN = "/usr/sbin/dockerd"
DOCKER_BIN = "/usr/bin/docker"

_live = set()


@atexit.register
def _stop_all():
    for d in list(_live):
        d.stop()


def _ping(sock):
    """True when the engine at the unix socket `sock` answers /_ping with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            return reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"OK")
    except OSError:
        return False


class Dockerd:
    def __init__(self, name="dockerd"):
        self.name = name
        self.workdir = None
        self.proc = None
        self._log = None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self, timeout=60):
        """Start the engine; on any failure nothing is left running or on disk."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        # Under /tmp with a short name: a unix socket path must fit in 108 bytes, and
        # containerd puts its own sockets under the exec root.
        self.workdir = tempfile.mkdtemp(prefix=f"regfs-{self.name}-", dir="/tmp")
        for d in ("data", "exec"):
            Path(self.workdir, d).mkdir()
        self._log = open(Path(self.workdir, "dockerd.log"), "ab")
        self.proc = subprocess.Popen(
            [DOCKERD_BIN, "--iptables=false", "--ip6tables=false", "--bridge=none",
             "--storage-driver=vfs", "-H", self.host, "--data-root", self.data_root,
             "--exec-root", f"{self.workdir}/exec", "--pidfile", f"{self.workdir}/dockerd.pid"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, env=tools.clean_env())
        _live.add(self)
        ready = wait_until(lambda: self.proc.poll() is not None or _ping(self.socket), timeout)
        if ready and self.proc.poll() is None:
            return self
        why = (f"exited with {self.proc.returncode}" if self.proc.poll() is not None
               else f"/_ping unanswered after {timeout} s")
        raise RuntimeError(f"dockerd did not start: {why}\n{self.log_text()}")

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left of its session (containerd, were dockerd killed) goes too.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.proc.poll() is None:
                self.proc.wait(10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        _live.discard(self)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        try:
            return Path(self.workdir, "dockerd.log").read_text(errors="replace")[-5000:]
        except (OSError, TypeError):
            return ""

    # ---- names ------------------------------------------------------------------------

    @property
    def socket(self):
        return f"{self.workdir}/docker.sock"

    @property
    def host(self):
        """The engine's address as --daemon-host and DOCKER_HOST take it."""
        return f"unix://{self.socket}"

    @property
    def data_root(self):
        return f"{self.workdir}/data"

    # ---- the docker CLI against this engine -------------------------------------------

    def docker(self, *args, check=True, **kw):
        return tools.run([DOCKER_BIN, "--host", self.host, *args], check=check, **kw)

    def inspect(self, name):
        """`docker image inspect NAME` as a dict; None when the engine has no such image."""
        p = self.docker("image", "inspect", name, check=False)
        if p.returncode != 0:
            assert "No such image" in p.stderr, p.stderr
            return None
        return json.loads(p.stdout)[0]

    def image_ids(self):
        out = self.docker("image", "ls", "-a", "-q", "--no-trunc").stdout
        return sorted(set(out.split()))

    def remove_all_images(self):
        ids = self.image_ids()
        if ids:
            self.docker("image", "rm", "-f", *ids)
