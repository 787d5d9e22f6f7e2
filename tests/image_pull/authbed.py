"""Registries that want credentials, for the auth tests: independent of podkit's code.

    make_pki(dir)              a test CA (openssl) and certificates for 127.0.0.1 (IP SAN):
                               server, client (for client-certificate auth), token signing
    write_htpasswd(path, ...)  an htpasswd file with bcrypt hashes (`htpasswd -B`)
    TokenIssuer                a token server on 127.0.0.1 (HTTPS) issuing ES256 JWTs the
                               distribution registry accepts (x5c chain to rootcertbundle)
    start_registry(...)        Debian's docker-registry over TLS with htpasswd or token auth
    write_credential_helper    a fake docker-credential-NAME script for a tmp PATH
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.testbed.registry import LocalRegistry

SERVICE = "podkit-test-registry"
ISSUER = "podkit-test-issuer"


@dataclass(frozen=True)
class Pki:
    """Paths of the test CA and the certificates it signed (PEM)."""

    ca_crt: Path
    server_crt: Path
    server_key: Path
    client_crt: Path
    client_key: Path
    signing_crt: Path
    signing_key: Path

    def cert_dir(self, folder: Path, *, client: bool = False) -> Path:
        """A podman --cert-dir: ca.crt, and client.cert/client.key when asked for."""
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca_crt, folder / "ca.crt")
        if client:
            shutil.copy(self.client_crt, folder / "client.cert")
            shutil.copy(self.client_key, folder / "client.key")
        return folder

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_crt))


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> Pki:
    """Make a CA and certificates with openssl (P-256 keys, 2 days) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=podkit test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{name}.ext").write_text(
            f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n{ext}\n")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=podkit test {name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=folder)
    # The token issuer's key: a self-signed certificate the registry trusts as a root.
    _openssl("req", "-x509", *ec, "-keyout", "signing.key", "-out", "signing.crt", "-days", "2",
             "-subj", "/CN=podkit test token issuer", cwd=folder)
    return Pki(folder / "ca.crt", folder / "server.crt", folder / "server.key",
               folder / "client.crt", folder / "client.key",
               folder / "signing.crt", folder / "signing.key")


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt entries, made by apache2-utils' ``htpasswd -B``."""
    lines = []
    for user, password in users.items():
        done = subprocess.run(["htpasswd", "-Bbn", user, password], check=True,
                              capture_output=True, text=True, timeout=60)
        lines.append(done.stdout.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    """What the issuer saw: method, account (from Basic auth or refresh token), scopes."""

    method: str
    account: str | None
    scopes: list[str]
    granted: bool


@dataclass
class TokenIssuer:
    """A docker token server (docs/spec/auth/token.md) on https://127.0.0.1:PORT/token.

    Users authenticate with Basic auth (``users``) or an OAuth2 refresh token
    (``refresh_tokens`` -> account). ``pull`` is granted to every user; ``push`` too for
    ``pushers``. Knobs: ``expires_in`` (seconds, also the JWT lifetime), ``issued_at_shift``
    (seconds added to the reported issued_at), ``expired_next`` (that many tokens are
    issued already expired: the registry refuses them).
    """

    pki: Pki
    users: dict[str, str]
    pushers: set[str] = field(default_factory=set)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    expires_in: int = 300
    issued_at_shift: float = 0.0
    expired_next: int = 0
    requests: list[TokenRequest] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        self._key = serialization.load_pem_private_key(self.pki.signing_key.read_bytes(), None)
        cert = x509.load_pem_x509_certificate(self.pki.signing_crt.read_bytes())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def mint(self, account: str, access: list[dict], *, expired: bool = False) -> str:
        """A signed JWT for ``account`` with ``access`` entries (type, name, actions)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        exp = now - 3600 if expired else now + self.expires_in
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {"iss": ISSUER, "sub": account, "aud": SERVICE, "exp": exp,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def token_requests(self) -> int:
        with self._lock:
            return len(self.requests)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        if url.path != "/token":
            handler.send_error(404)
            return
        if handler.command == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = parse_qs(handler.rfile.read(length).decode())
            params = form
            refresh = form.get("refresh_token", [""])[0]
            account = self.refresh_tokens.get(refresh) \
                if form.get("grant_type") == ["refresh_token"] else None
        else:
            params = parse_qs(url.query)
            account = self._basic_account(handler.headers.get("Authorization"))
        scopes = params.get("scope", [])
        granted = account is not None and params.get("service") == [SERVICE]
        with self._lock:
            self.requests.append(TokenRequest(handler.command, account, scopes, granted))
            expired = granted and self.expired_next > 0
            if expired:
                self.expired_next -= 1
        if not granted:
            self._send(handler, 401, {"errors": [{"code": "UNAUTHORIZED",
                                                  "message": "authentication required"}]})
            return
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = {"pull", "push"} if account in self.pushers else {"pull"}
            wanted = [a for a in actions.split(",") if a in allowed]
            if kind == "repository" and wanted:
                access.append({"type": "repository", "name": name, "actions": wanted})
        token = self.mint(account, access, expired=expired)
        issued = datetime.fromtimestamp(time.time() + self.issued_at_shift, UTC)
        self._send(handler, 200, {"token": token, "access_token": token,
                                  "expires_in": self.expires_in,
                                  "issued_at": issued.isoformat().replace("+00:00", "Z")})

    def _basic_account(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.users.get(user) == password else None

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer._answer(self)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.pki.server_crt), str(self.pki.server_key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="token-issuer", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def tls_config(pki: Pki, *, client_certs: bool = False) -> dict:
    """The registry's http.tls section (with client certificates required if asked)."""
    tls: dict = {"certificate": str(pki.server_crt), "key": str(pki.server_key)}
    if client_certs:
        tls["clientcas"] = [str(pki.ca_crt)]
    return {"http": {"tls": tls}}


def answers_with_client_cert(pki: Pki) -> Callable[[str], bool]:
    """A LocalRegistry probe for a registry that requires client certificates."""
    def probe(url: str) -> bool:
        try:
            with push_client(pki, client_certs=True) as client:
                return client.get(f"https://{url}/v2/", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False
    return probe


def htpasswd_config(path: Path) -> dict:
    return {"auth": {"htpasswd": {"realm": "podkit-test", "path": str(path)}}}


def token_config(issuer: TokenIssuer) -> dict:
    return {"auth": {"token": {"realm": issuer.realm, "service": SERVICE, "issuer": ISSUER,
                               "rootcertbundle": str(issuer.pki.signing_crt)}}}


@contextmanager
def started(registry: LocalRegistry) -> Iterator[LocalRegistry]:
    """Start ``registry`` and stop it (by its pid) whatever happens."""
    try:
        yield registry.start()
    finally:
        registry.stop()


def push_client(pki: Pki, *, auth: tuple[str, str] | None = None,
                bearer: str | None = None, client_certs: bool = False) -> httpx.Client:
    """An httpx client for tests/testbed/push.py against a TLS registry."""
    context = pki.ssl_context()
    if client_certs:
        context.load_cert_chain(str(pki.client_crt), str(pki.client_key))
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    return httpx.Client(verify=context, auth=auth, headers=headers, timeout=30.0,
                        trust_env=False)


HELPER_SCRIPT = """#!/bin/sh
# A fake docker-credential helper: answers from {store} (lines "SERVER USER SECRET").
[ "$1" = get ] || {{ echo "unsupported $1"; exit 1; }}
read -r server
echo "$server" >> {log}
case "$server" in
  fail.test) echo "the keychain is locked"; exit 3 ;;
  slow.test) sleep 5 ;;
esac
line=$(grep -F "$server " {store} | head -n 1)
if [ -z "$line" ]; then echo "credentials not found in native keychain"; exit 1; fi
set -- $line
printf '{{"ServerURL":"%s","Username":"%s","Secret":"%s"}}\\n' "$1" "$2" "$3"
"""


def write_credential_helper(bin_dir: Path, name: str,
                            entries: dict[str, tuple[str, str]]) -> Path:
    """``bin_dir/docker-credential-NAME`` answering ``get`` from ``entries``
    (server -> (user, secret)); servers it was asked about go to ``bin_dir/NAME.log``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    store = bin_dir / f"{name}.store"
    store.write_text("".join(f"{s} {u} {p}\n" for s, (u, p) in entries.items()))
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(HELPER_SCRIPT.format(store=store, log=bin_dir / f"{name}.log"))
    script.chmod(0o755)
    return script


def helper_log(bin_dir: Path, name: str) -> list[str]:
    path = bin_dir / f"{name}.log"
    return path.read_text().split() if path.exists() else []


def auth_json(entries: dict[str, tuple[str, str]], **extra: object) -> str:
    """An auth.json document: key -> (user, password) as base64 ``auth`` entries."""
    auths = {key: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()}
             for key, (u, p) in entries.items()}
    return json.dumps({"auths": auths, **extra})


def isolated_env(tmp: Path, **extra: str) -> dict[str, str]:
    """os.environ without credential or registries.conf variables, HOME in ``tmp``."""
    drop = ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
            "DOCKER_CONFIG", "CONTAINERS_REGISTRIES_CONF", "SSL_CERT_FILE", "SSL_CERT_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    # Set, so /run/containers/UID/auth.json of the real host is never read.
    runtime = tmp / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env.update(extra)
    return env
