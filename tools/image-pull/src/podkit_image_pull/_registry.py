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

import ipaddress
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from podkit_common import jsonio
from podkit_common.errors import (
    AuthenticationFailed,
    InvalidDocument,
    NotFound,
    PodkitError,
    RemoteError,
    VerificationFailed,
)
from podkit_common.records import field, record
from podkit_image_pull import __version__
from podkit_image_pull._auth import CredentialsLike
from podkit_image_pull._certs import tls_context
from podkit_image_pull._digest import digest_of, parse_digest
from podkit_image_pull._manifest import MAX_MANIFEST_BYTES
from podkit_image_pull._reference import check_repository, check_tag
from podkit_image_pull._request_auth import RegistryAuth
from podkit_image_pull._resume import content_range_start, range_headers
from podkit_image_pull._retry import (
    RETRYABLE_STATUS,
    RetryableError,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)
from podkit_image_pull._source import BlobStream  # re-exported: every transport's stream

#: docker.io is a name; its API lives elsewhere.
_API_HOSTS = {"docker.io": "registry-1.docker.io"}
_USER_AGENT = f"podkit-image-pull/{__version__}"
#: Error bodies are read only this far: they are for a message, not for content.
_MAX_ERROR_BODY = 64 * 1024
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@record(frozen=True)
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


class RegistryClient:
    """Speaks the distribution API v2 to one registry, anonymously or with a bearer token.

    ``tls_verify=False`` (podman's ``--tls-verify=false``) tries HTTPS without checking the
    certificate and then plain HTTP, as containers/image does for insecure registries.
    ``credentials`` (user, password), Credentials, or a lookup run on the first challenge
    (``_auth.credentials_lookup``) go to a Basic challenge or the token server as
    _request_auth says; ``cert_dir`` is podman's ``--cert-dir`` (else certs.d, _certs).
    A client passed in is used as is and not closed; one made here is closed by ``close``.
    ``retry`` says how often manifest requests are retried and sets the timeouts of a
    client made here; blob downloads are retried (and resumed) by the blob store.
    """

    def __init__(self, registry: str, *, tls_verify: bool = True,
                 client: httpx.Client | None = None,
                 credentials: CredentialsLike = None,
                 retry: RetryPolicy | None = None,
                 cert_dir: str | os.PathLike[str] | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self.registry = registry
        self.host = _API_HOSTS.get(registry, registry)
        self.tls_verify = tls_verify
        self._auth = RegistryAuth(registry, credentials, insecure=not tls_verify)
        self._owns_client = client is None
        #: The httpx client the caller gave (None if made here): foreign-layer URLs go
        #: through it too (_foreign), so a test's MockTransport sees every request.
        self.given_client = client
        if client is None:
            # Like Go's net/http (so podman), never send loopback traffic to a proxy.
            direct = {f"all://{self.host}": None} if _is_loopback(self.host) else None
            # read/write: no byte for stall_timeout seconds fails the attempt (retried).
            timeout = httpx.Timeout(self.retry.stall_timeout, connect=self.retry.connect_timeout)
            verify = tls_context(self.host, tls_verify=tls_verify, cert_dir=cert_dir)
            client = httpx.Client(verify=verify, timeout=timeout, mounts=direct,
                                  headers={"User-Agent": _USER_AGENT})
        self._client = client
        self._base: str | None = None
        self._challenge: Challenge | None = None
        #: X-Registry-Supports-Signatures: 1 on /v2/ (signatures then come from the
        #: registry's extension instead of a lookaside; see _signatures).
        self.supports_signatures = False
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
                    self.supports_signatures = \
                        resp.headers.get("X-Registry-Supports-Signatures") == "1"
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
        Failures worth it (5xx, 429, resets, timeouts) are retried as ``retry`` says.
        """
        return call_with_retries(
            self.retry, lambda: self._get_manifest_once(repository, reference, accept))

    def _get_manifest_once(self, repository: str, reference: str,
                           accept: Sequence[str]) -> tuple[bytes, str, str]:
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
    def open_blob(self, repository: str, digest: str, *,
                  offset: int = 0) -> Iterator[BlobStream]:
        """Open a blob for streaming (redirects followed). The caller verifies the bytes.

        ``offset`` > 0 asks for the rest only (``Range: bytes=offset-``); the stream's
        ``start`` is ``offset`` on a checked 206 answer, 0 when the registry sent it all.
        One attempt: what is worth retrying raises RetryableError, here or mid-stream.
        """
        check_repository(repository)
        parse_digest(digest, what="blob digest")
        what = f"blob {self.registry}/{repository}@{digest}"
        url = f"{self.ping()}/v2/{repository}/blobs/{digest}"
        # identity: the digest covers the stored bytes, not a re-encoding of them.
        with self._send("GET", url, repository, what,
                        {"Accept-Encoding": "identity", **range_headers(offset)},
                        follow_redirects=True) as resp:
            start = 0
            if resp.status_code == 206 and offset > 0:
                start = content_range_start(resp.headers.get("Content-Range"), offset, what)
            elif resp.status_code != 200:
                raise self._status_error(resp, what)
            length = resp.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            yield BlobStream(size, self._chunks(resp, what), start)

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
                if self._auth.renew(self._challenge, challenge, scope):
                    resp.close()
                    with self._lock:
                        self._challenge = challenge
                    continue
            try:
                yield resp
            finally:
                resp.close()
            return

    def _auth_headers(self, scope: str) -> dict[str, str]:
        return self._auth.headers(self._client, self._challenge, scope)

    def _auth_hint(self) -> str:
        return self._auth.hint()

    def _status_error(self, resp: httpx.Response, what: str) -> PodkitError:
        message = _registry_message(resp)
        status = resp.status_code
        if status in (401, 403):
            return AuthenticationFailed(f"{what}: HTTP {status}{message}", hint=self._auth_hint())
        if status == 404:
            return NotFound(f"{what}: not found{message}",
                            hint="check the repository name and the tag or digest")
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status == 429:
            return RetryableError(f"{what}: HTTP 429 too many requests{message}",
                                  hint="the registry is rate limiting; retry later",
                                  retry_after=retry_after)
        if status in RETRYABLE_STATUS:
            return RetryableError(f"{what}: HTTP {status} {resp.reason_phrase}{message}",
                                  retry_after=retry_after)
        return RemoteError(f"{what}: HTTP {status} {resp.reason_phrase}{message}")

    def _transport_error(self, exc: httpx.TransportError, what: str) -> RemoteError:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return RetryableError(f"{what}: timed out ({type(exc).__name__})",
                                  hint=f"is the registry {self.registry} reachable?")
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return RemoteError(f"{what}: TLS certificate not trusted: {text}",
                               hint=f"trust its CA with --cert-dir DIR (DIR/ca.crt) or "
                                    f"/etc/containers/certs.d/{self.host}/ca.crt; for a "
                                    "registry you trust anyway, use --tls-verify=false")
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return RemoteError(f"{what}: TLS handshake failed: {text}",
                               hint="the registry may speak plain HTTP; use --tls-verify=false")
        if isinstance(exc, httpx.ConnectError):
            return RemoteError(f"{what}: cannot connect: {text}",
                               hint=f"is the registry {self.registry} running and reachable?")
        # A reset or a connection dropped mid-answer: worth another attempt (resumed).
        broken = isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError)
        return (RetryableError if broken else RemoteError)(
            f"{what}: {type(exc).__name__}: {text}",
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
        raise RetryableError(f"{what}: connection failed while reading: {exc}") from None
    return b"".join(parts)


def _registry_message(resp: httpx.Response) -> str:
    """``: CODE message`` from the registry's error JSON, or '' if there is none."""
    try:
        body = _read_limited(resp, _MAX_ERROR_BODY, "error answer")
    except PodkitError:
        return ""
    try:
        errors = jsonio.loads(body).get("errors")
    except (InvalidDocument, AttributeError):
        return ""
    if not isinstance(errors, list):
        return ""
    parts = []
    for err in errors:
        if isinstance(err, dict):
            code, message = err.get("code"), err.get("message")
            parts.append(" ".join(str(x) for x in (code, message) if x))
    return (": " + "; ".join(parts)) if parts else ""
