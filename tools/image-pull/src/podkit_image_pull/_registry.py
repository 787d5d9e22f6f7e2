"""A client for the distribution (Docker Registry HTTP API v2) protocol, read side.

The httpx client is injectable (``client=httpx.Client(transport=httpx.MockTransport(...))``)
so everything here tests without a network. Failures map onto podkit's error tree:

    connection refused, timeout, TLS failure   RemoteError (exit 7), with a hint
    401 / 403                                  AuthenticationFailed (exit 8)
    404 on a manifest or blob                  NotFound (exit 4)
    any other HTTP error                       RemoteError, with the registry's message
    content that does not match its digest     VerificationFailed (exit 6)
"""

from __future__ import annotations

import base64
import ipaddress
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import orjson

from podkit_common.errors import (
    AuthenticationFailed,
    NotFound,
    PodkitError,
    RemoteError,
    VerificationFailed,
)
from podkit_image_pull import __version__
from podkit_image_pull._digest import digest_of, parse_digest
from podkit_image_pull._manifest import MAX_MANIFEST_BYTES
from podkit_image_pull._reference import check_repository, check_tag

#: docker.io is a name; its API lives elsewhere.
_API_HOSTS = {"docker.io": "registry-1.docker.io"}
_USER_AGENT = f"podkit-image-pull/{__version__}"
_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
#: Error bodies are read only this far: they are for a message, not for content.
_MAX_ERROR_BODY = 64 * 1024
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: the scheme (lowercased) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse ``Bearer realm="...",service="...",scope="..."`` (or ``Basic realm=...``)."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM_RE.match(rest, pos)
        if match is None or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = (re.sub(r"\\(.)", r"\1", quoted)
                                         if quoted is not None else bare)
        pos = match.end()
    return Challenge(scheme.lower(), params)


@dataclass
class BlobStream:
    """An open blob download: ``size`` from Content-Length (or None) and the byte chunks."""

    size: int | None
    chunks: Iterator[bytes]


class RegistryClient:
    """Speaks the distribution API v2 to one registry, anonymously or with a bearer token.

    ``tls_verify=False`` (podman's ``--tls-verify=false``) tries HTTPS without checking the
    certificate and then plain HTTP, as containers/image does for insecure registries.
    ``credentials`` (user, password) are sent to a Basic challenge or the token server.
    A client passed in is used as is and not closed; one made here is closed by ``close``.
    """

    def __init__(self, registry: str, *, tls_verify: bool = True,
                 client: httpx.Client | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self.registry = registry
        self.host = _API_HOSTS.get(registry, registry)
        self.tls_verify = tls_verify
        self.credentials = credentials
        self._owns_client = client is None
        if client is None:
            # Like Go's net/http (so podman), never send loopback traffic to a proxy.
            direct = {f"all://{self.host}": None} if _is_loopback(self.host) else None
            client = httpx.Client(verify=tls_verify, timeout=_TIMEOUT, mounts=direct,
                                  headers={"User-Agent": _USER_AGENT})
        self._client = client
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the httpx client if this object made it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the API --------------------------------------------------------------------

    def ping(self) -> str:
        """Find the API base URL (``GET /v2/``) and the auth challenge; return the base."""
        with self._lock:
            if self._base is not None:
                return self._base
            schemes = ("https",) if self.tls_verify else ("https", "http")
            error: PodkitError | None = None
            for scheme in schemes:
                base = f"{scheme}://{self.host}"
                try:
                    resp = self._client.get(f"{base}/v2/")
                except httpx.TransportError as exc:
                    error = self._transport_error(exc, f"ping registry {self.registry}")
                    continue
                if resp.status_code in (200, 401):
                    self._base = base
                    if resp.status_code == 401:
                        self._challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                    return base
                error = RemoteError(
                    f"ping registry {self.registry}: HTTP {resp.status_code} from {base}/v2/"
                    f"{_registry_message(resp)}",
                    hint="is this a container registry (distribution API v2)?")
            raise error or RemoteError(f"ping registry {self.registry}: no scheme to try")

    def get_manifest(self, repository: str, reference: str,
                     accept: Sequence[str]) -> tuple[bytes, str, str]:
        """Fetch a manifest by tag or digest: (bytes, Content-Type, digest of the bytes).

        The digest is always computed from the bytes. Fetched by digest, the bytes must
        have that digest; a ``Docker-Content-Digest`` header must match them as well.
        """
        check_repository(repository)
        wanted = None
        if ":" in reference:
            wanted = parse_digest(reference, what="manifest digest")
        else:
            check_tag(reference)
        what = f"manifest {self.registry}/{repository}{'@' if wanted else ':'}{reference}"
        url = f"{self.ping()}/v2/{repository}/manifests/{reference}"
        with self._send("GET", url, repository, what, {"Accept": ", ".join(accept)}) as resp:
            if resp.status_code != 200:
                raise self._status_error(resp, what)
            body = _read_limited(resp, MAX_MANIFEST_BYTES, what)
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            header = resp.headers.get("Docker-Content-Digest")
        digest = digest_of(body, wanted.algorithm if wanted else "sha256")
        if wanted is not None and digest != str(wanted):
            raise VerificationFailed(f"{what}: the registry sent content with digest {digest}")
        if header:
            claimed = parse_digest(header.strip(), error=VerificationFailed,
                                   what=f"Docker-Content-Digest header of {what}")
            if digest_of(body, claimed.algorithm) != str(claimed):
                raise VerificationFailed(
                    f"{what}: content does not match its Docker-Content-Digest {claimed}")
        return body, content_type, digest

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BlobStream]:
        """Open a blob for streaming (redirects followed). The caller verifies the bytes."""
        check_repository(repository)
        parse_digest(digest, what="blob digest")
        what = f"blob {self.registry}/{repository}@{digest}"
        url = f"{self.ping()}/v2/{repository}/blobs/{digest}"
        # identity: the digest covers the stored bytes, not a re-encoding of them.
        with self._send("GET", url, repository, what, {"Accept-Encoding": "identity"},
                        follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise self._status_error(resp, what)
            length = resp.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            yield BlobStream(size, self._chunks(resp, what))

    # --- plumbing -------------------------------------------------------------------

    @contextmanager
    def _send(self, method: str, url: str, repository: str, what: str,
              headers: dict[str, str], *, follow_redirects: bool = False,
              ) -> Iterator[httpx.Response]:
        """Send with auth; on a 401, renew the token from the new challenge and retry once."""
        scope = f"repository:{repository}:pull"
        for attempt in (1, 2):
            request = self._client.build_request(
                method, url, headers={**headers, **self._auth_headers(scope)})
            try:
                resp = self._client.send(request, stream=True, follow_redirects=follow_redirects)
            except httpx.TransportError as exc:
                raise self._transport_error(exc, what) from None
            if resp.status_code == 401 and attempt == 1:
                challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                renewable = challenge is not None and (
                    challenge.scheme == "bearer"
                    or (challenge.scheme == "basic" and self.credentials is not None))
                if renewable:
                    resp.close()
                    with self._lock:
                        self._challenge = challenge
                        self._tokens.pop(scope, None)
                    continue
            try:
                yield resp
            finally:
                resp.close()
            return

    def _auth_headers(self, scope: str) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            if self.credentials is None:
                return {}
            raw = f"{self.credentials[0]}:{self.credentials[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if challenge.scheme != "bearer":
            return {}
        with self._lock:
            token = self._tokens.get(scope)
        if token is None:
            token = self._fetch_token(challenge, scope)
            with self._lock:
                self._tokens[scope] = token
        return {"Authorization": f"Bearer {token}"}

    def _fetch_token(self, challenge: Challenge, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise AuthenticationFailed(
                f"registry {self.registry} asks for a bearer token without a usable realm "
                f"({realm!r})")
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        scopes = [scope]
        extra = challenge.params.get("scope")
        if extra and extra not in scopes:
            scopes.append(extra)
        params += [("scope", s) for s in scopes]
        what = f"get a token for {self.registry} from {realm}"
        try:
            resp = self._client.get(realm, params=params, auth=self.credentials)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        if resp.status_code in (401, 403):
            raise AuthenticationFailed(f"{what}: HTTP {resp.status_code}"
                                       f"{_registry_message(resp)}", hint=self._auth_hint())
        if resp.status_code != 200:
            raise RemoteError(f"{what}: HTTP {resp.status_code}{_registry_message(resp)}")
        try:
            answer = resp.json()
        except ValueError:
            raise RemoteError(f"{what}: the token server did not answer JSON") from None
        token = None
        if isinstance(answer, dict):
            token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(f"{what}: the answer holds no token")
        return token

    def _auth_hint(self) -> str:
        if self.credentials is None:
            return "the registry refused anonymous access; credentials are not supported yet"
        return "check the user name and password for this registry"

    def _status_error(self, resp: httpx.Response, what: str) -> PodkitError:
        message = _registry_message(resp)
        status = resp.status_code
        if status in (401, 403):
            return AuthenticationFailed(f"{what}: HTTP {status}{message}", hint=self._auth_hint())
        if status == 404:
            return NotFound(f"{what}: not found{message}",
                            hint="check the repository name and the tag or digest")
        if status == 429:
            return RemoteError(f"{what}: HTTP 429 too many requests{message}",
                               hint="the registry is rate limiting; retry later")
        return RemoteError(f"{what}: HTTP {status} {resp.reason_phrase}{message}")

    def _transport_error(self, exc: httpx.TransportError, what: str) -> RemoteError:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"{what}: timed out ({type(exc).__name__})",
                               hint=f"is the registry {self.registry} reachable?")
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return RemoteError(f"{what}: TLS certificate not trusted: {text}",
                               hint="for a registry you trust, use --tls-verify=false")
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return RemoteError(f"{what}: TLS handshake failed: {text}",
                               hint="the registry may speak plain HTTP; use --tls-verify=false")
        if isinstance(exc, httpx.ConnectError):
            return RemoteError(f"{what}: cannot connect: {text}",
                               hint=f"is the registry {self.registry} running and reachable?")
        return RemoteError(f"{what}: {type(exc).__name__}: {text}",
                           hint="the connection to the registry failed; retry")

    def _chunks(self, resp: httpx.Response, what: str) -> Iterator[bytes]:
        try:
            yield from resp.iter_bytes()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, f"download {what}") from None


def _is_loopback(host: str) -> bool:
    """Whether ``host[:port]`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    name = host[1:host.find("]")] if host.startswith("[") else host.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read_limited(resp: httpx.Response, limit: int, what: str) -> bytes:
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in resp.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise RemoteError(f"{what}: larger than {limit} bytes; refusing to read it")
            parts.append(chunk)
    except httpx.TransportError as exc:
        raise RemoteError(f"{what}: connection failed while reading: {exc}") from None
    return b"".join(parts)


def _registry_message(resp: httpx.Response) -> str:
    """``: CODE message`` from the registry's error JSON, or '' if there is none."""
    try:
        body = _read_limited(resp, _MAX_ERROR_BODY, "error answer")
    except PodkitError:
        return ""
    try:
        errors = orjson.loads(body).get("errors")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    if not isinstance(errors, list):
        return ""
    parts = []
    for err in errors:
        if isinstance(err, dict):
            code, message = err.get("code"), err.get("message")
            parts.append(" ".join(str(x) for x in (code, message) if x))
    return (": " + "; ".join(parts)) if parts else ""
