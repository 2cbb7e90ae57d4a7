"""A throw-away certificate authority made with the openssl CLI, for TLS registries on loopback.

    ca = TestCA(tmpdir)                         # ca.cert (PEM path), ca.key
    server = ca.issue("server", server=True)    # .cert/.key, SANs IP:127.0.0.1, DNS:localhost
    client = ca.issue("client", client=True)    # a client certificate (extendedKeyUsage clientAuth)
    ca.certs_d(root, "127.0.0.1:5000", client=client)   # root/HOST/ca.crt (+ client.cert/.key)

Keys are P-256 (fast to make); certificates are valid for two days.
"""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "/usr/bin/openssl"


@dataclass
class Pair:
    cert: Path
    key: Path


def _openssl(*args, cwd):
    subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, check=True, capture_output=True,
                   timeout=60)


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory, name="regfs test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
                 "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)

    def issue(self, name, server=False, client=False, ips=("127.0.0.1",), dns=("localhost",)):
        key = self.dir / f"{name}.key"
        csr = self.dir / f"{name}.csr"
        cert = self.dir / f"{name}.pem"
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}", cwd=self.dir)
        usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
        ext = ["basicConstraints=critical,CA:FALSE",
               "keyUsage=critical,digitalSignature,keyEncipherment"]
        if usages:
            ext.append("extendedKeyUsage=" + ",".join(usages))
        if server:
            sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]
            ext.append("subjectAltName=" + ",".join(sans))
        extfile = self.dir / f"{name}.ext"
        extfile.write_text("\n".join(ext) + "\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                 "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extfile,
                 cwd=self.dir)
        key.chmod(0o600)
        return Pair(cert=cert, key=key)

    def certs_d(self, root, host, client=None, ca=True):
        """Lay out root/HOST/ as containers-certs.d(5) says: ca.crt, and client.cert +
        client.key when a client pair is given. Returns the directory."""
        d = Path(root) / host
        d.mkdir(parents=True, exist_ok=True)
        if ca:
            shutil.copy(self.cert, d / "ca.crt")
        if client is not None:
            shutil.copy(client.cert, d / "client.cert")
            shutil.copy(client.key, d / "client.key")
            (d / "client.key").chmod(0o600)
        return d
