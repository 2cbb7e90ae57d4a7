"""A small Docker registry token server (the distribution token auth spec) on loopback.

    with TokenServer(users={"alice": "pw"}, policy=my_policy) as ts:
        reg = Registry(token=ts.registry_config(), admin_token=ts.admin_token)
        ts.requests          # every token request: method, user, scopes, grant_type, status
        ts.token_requests(scope="repository:a/b:pull")

It issues RS256 JWTs — claims iss, sub, aud (= the service), exp, nbf, iat, jti and access[] —
whose header carries the issuer's self-signed certificate in ``x5c``; docker-registry, given
that certificate as its ``rootcertbundle``, validates them itself.

Requests: GET ?service=&scope=…&account= with optional Basic credentials (wrong ones → 401),
and the OAuth2 form POST with grant_type=refresh_token (refresh_token → a user, see
``refresh_tokens``) or grant_type=password. ``policy(user, type, name, actions)`` returns the
actions granted (user None: anonymous); the default grants anonymous users pull on public/*
and known users everything they ask for.

``stale_tokens`` > 0 makes that many next tokens already expired (past the registry's 60 s
leeway): the registry refuses them, as it refuses any expired token.
"""

import base64
import datetime
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .loopback_server import LoopbackHTTPServer


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def default_policy(user, rtype, name, actions):
    if user is None:
        return [a for a in actions if a == "pull"] if name.startswith("public/") else []
    return list(actions)


class TokenServer(LoopbackHTTPServer):
    def __init__(self, directory, users=None, policy=default_policy, refresh_tokens=None,
                 service="regfs-test-registry", issuer="regfs-test-issuer", expires_in=300,
                 host="127.0.0.1"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users or {})
        self.policy = policy
        self.refresh_tokens = dict(refresh_tokens or {})
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.host = host   # the name put into the realm
        self.stale_tokens = 0
        self.requests = []
        self._lock = threading.Lock()
        self._make_key()

    # ---- keys ------------------------------------------------------------------------

    def _make_key(self):
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self._key, hashes.SHA256()))
        self.cert_path = self.dir / "token-issuer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def mint(self, subject, access, lifetime=None):
        """A signed JWT granting `access` ([{type, name, actions}])."""
        now = int(time.time())
        exp = now + (lifetime if lifetime is not None else self.expires_in)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": subject or "", "aud": self.service, "exp": exp,
                  "nbf": now - 1, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)

    def admin_token(self, path):
        """A token for the harness's own request to `path` (/v2/<name>/…): everything."""
        parts = path.split("?")[0].split("/")
        markers = ("manifests", "blobs", "tags")
        idx = next((i for i, p in enumerate(parts) if p in markers), None)
        access = []
        if idx is not None:
            access.append({"type": "repository", "name": "/".join(parts[2:idx]),
                           "actions": ["pull", "push", "delete", "*"]})
        if "_catalog" in parts:
            access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
        return self.mint("admin", access)

    # ---- the registry's view -----------------------------------------------------------

    @property
    def realm(self):
        return f"http://{self.host}:{self.port}/token"

    def registry_config(self):
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": str(self.cert_path)}

    def token_requests(self, scope=None):
        with self._lock:
            reqs = list(self.requests)
        return [r for r in reqs if scope is None or scope in r["scopes"]]

    # ---- serving -----------------------------------------------------------------------

    def _grant(self, user, scopes):
        access = []
        for scope in scopes:
            rtype, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if not rtype or not name:
                continue
            granted = self.policy(user, rtype, name, [a for a in actions.split(",") if a])
            if granted:
                access.append({"type": rtype, "name": name, "actions": granted})
        return access

    def _handle(self, handler, method):
        url = urlparse(handler.path)
        if url.path != "/token":
            return handler.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
        params = parse_qs(url.query)
        grant = None
        user = None
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = parse_qs(handler.rfile.read(length).decode())
            params.update(form)
            grant = (form.get("grant_type") or [None])[0]
            if grant == "refresh_token":
                user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            elif grant == "password":
                u, p = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
                user = u if self.users.get(u) == p and u else None
            ok = user is not None
        else:
            auth = handler.headers.get("Authorization") or ""
            ok = True
            if auth.startswith("Basic "):
                try:
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    u, p = "", None
                ok = bool(u) and self.users.get(u) == p
                user = u if ok else None
        scopes = []
        for s in params.get("scope", []):
            scopes.extend(s.split(" "))
        entry = {"method": method, "user": user, "scopes": scopes, "grant_type": grant,
                 "service": (params.get("service") or [None])[0],
                 "client_id": (params.get("client_id") or [None])[0],
                 "account": (params.get("account") or [None])[0], "time": time.monotonic()}
        if not ok:
            entry["status"] = 401
            with self._lock:
                self.requests.append(entry)
            return handler.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                   "message": "authentication failed"}]})
        lifetime = None
        with self._lock:
            if self.stale_tokens > 0:
                self.stale_tokens -= 1
                lifetime = -300
            entry["status"] = 200
            entry["stale"] = lifetime is not None
            self.requests.append(entry)
        token = self.mint(user, self._grant(user, scopes), lifetime)
        body = {"token": token, "access_token": token, "expires_in": self.expires_in,
                "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        if grant == "refresh_token":
            body["refresh_token"] = (params.get("refresh_token") or [""])[0]
        return handler.reply(200, body)

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

        return self._serve(Handler)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
