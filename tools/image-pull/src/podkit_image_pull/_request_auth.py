"""Authorizing registry requests: Basic credentials and bearer tokens, per scope.

Where credentials go: only to the registry they were looked up for (_auth), to the
token realm its ``WWW-Authenticate`` challenge names (as containers/image does; the
realm may be on another host, that is how token auth works), never over plain HTTP
unless the registry is insecure (``--tls-verify=false`` or ``insecure = true`` in
registries.conf), and never along a redirect to another origin (httpx drops
``Authorization`` there).

Bearer tokens are cached per scope and reused until ``issued_at + expires_in`` (at
least 60 s, as containers/image does) or until the registry answers 401. A token is
fetched with GET and Basic credentials, or with an OAuth2 refresh-token POST when the
credentials are an identity token.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from podkit_common import jsonio
from podkit_common.errors import AuthenticationFailed, InvalidDocument, RemoteError
from podkit_common.records import field, record
from podkit_image_pull._auth import Credentials, CredentialsLike

if TYPE_CHECKING:
    import httpx

    from podkit_image_pull._registry import Challenge

#: Tokens claiming a shorter life are kept this long (containers/image's minimum).
MIN_TOKEN_LIFETIME = 60.0
_MAX_TOKEN_ANSWER = 1024 * 1024


@record(frozen=True)
class BearerToken:
    """A registry token and the wall-clock time (``time.time()``) it expires at."""

    token: str = field(repr=False)
    expires_at: float


class RegistryAuth:
    """Authorization for one registry: credentials (looked up once, on first need) and
    bearer tokens cached per scope. RegistryClient asks it for headers and tells it
    about 401 answers; everything else about auth lives here.
    """

    def __init__(self, registry: str, credentials: CredentialsLike = None, *,
                 insecure: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.insecure = insecure
        self.clock = clock
        if isinstance(credentials, tuple):
            credentials = Credentials(credentials[0], credentials[1], origin="credentials=")
        self._source = credentials
        self._credentials: Credentials | None = None
        self._resolved = not callable(credentials)
        if self._resolved and isinstance(credentials, Credentials) and credentials:
            self._credentials = credentials
        self._tokens: dict[str, BearerToken] = {}
        self._lock = threading.Lock()
        self._scope_locks: dict[str, threading.Lock] = {}

    @property
    def credentials(self) -> Credentials | None:
        """The credentials, looked up now if this is the first time they are needed."""
        with self._lock:
            if not self._resolved:
                found = self._source() if callable(self._source) else None
                self._credentials = found if found else None
                self._resolved = True
            return self._credentials

    def headers(self, client: httpx.Client, challenge: Challenge | None,
                scope: str) -> dict[str, str]:
        """The ``Authorization`` header for a request needing ``scope``, or {}."""
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            creds = self.credentials
            if not creds or not creds.username:
                return {}
            raw = f"{creds.username}:{creds.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if challenge.scheme != "bearer":
            return {}
        return {"Authorization": f"Bearer {self.token(client, challenge, scope)}"}

    def token(self, client: httpx.Client, challenge: Challenge, scope: str) -> str:
        """A valid token for ``scope``: the cached one, else a new one from the realm."""
        with self._lock:
            scope_lock = self._scope_locks.setdefault(scope, threading.Lock())
        # One fetch per scope at a time: parallel blob downloads share the new token.
        with scope_lock:
            with self._lock:
                cached = self._tokens.get(scope)
            if cached is not None and self.clock() < cached.expires_at:
                return cached.token
            fresh = self._fetch(client, challenge, scope)
            with self._lock:
                self._tokens[scope] = fresh
            return fresh.token

    def renew(self, old: Challenge | None, new: Challenge | None, scope: str) -> bool:
        """After a 401 carrying challenge ``new``: True if a retry with new auth may help."""
        if new is None:
            return False
        if new.scheme == "bearer":
            with self._lock:
                self._tokens.pop(scope, None)
            return True
        if new.scheme == "basic":
            # Retrying only helps if the credentials were not sent the first time.
            return (old is None or old.scheme != "basic") and bool(self.credentials)
        return False

    def hint(self) -> str:
        """What to tell a user the registry refused."""
        with self._lock:
            creds, resolved = self._credentials, self._resolved
        if resolved and creds:
            return (f"the registry refused the credentials from {creds.origin}; check the "
                    "user name and password")
        return ("the registry refused anonymous access: log in (podman login writes "
                "auth.json), or pass --authfile FILE or --creds USER:PASSWORD")

    def _fetch(self, client: httpx.Client, challenge: Challenge, scope: str) -> BearerToken:
        import httpx

        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise AuthenticationFailed(f"registry {self.registry} asks for a bearer token "
                                       f"without a usable realm ({realm!r})")
        creds = self.credentials
        what = f"get a token for {self.registry} from {realm}"
        if creds and realm.startswith("http://") and not self.insecure:
            raise AuthenticationFailed(
                f"{what}: refusing to send credentials over plain HTTP",
                hint="the token server must use HTTPS; mark the registry insecure only if "
                     "you trust the network")
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        scopes = [scope]
        extra = challenge.params.get("scope")
        if extra and extra not in scopes:
            scopes.append(extra)
        params += [("scope", s) for s in scopes]
        try:
            if creds and creds.identity_token:
                form = [*params, ("grant_type", "refresh_token"),
                        ("refresh_token", creds.identity_token),
                        ("client_id", "containers/image")]
                resp = client.post(realm, data=dict(_multi(form)))
            else:
                basic = (creds.username, creds.password) if creds and creds.username else None
                if basic:
                    params.insert(0, ("account", basic[0]))
                resp = client.get(realm, params=params, auth=basic)
        except httpx.TransportError as exc:
            raise RemoteError(f"{what}: {type(exc).__name__}: {exc}",
                              hint="is the token server reachable?") from None
        body = _limited_body(resp)
        if resp.status_code in (401, 403):
            raise AuthenticationFailed(f"{what}: HTTP {resp.status_code}{_said(body)}",
                                       hint=self.hint())
        if resp.status_code != 200:
            raise RemoteError(f"{what}: HTTP {resp.status_code}{_said(body)}")
        return parse_token_answer(body, what, now=self.clock())


def _said(body: bytes) -> str:
    """``: message`` from a token server's error answer (distribution's ``errors`` list,
    OAuth2's ``error_description``, or ``details``), else ''."""
    try:
        doc = jsonio.loads(body)
    except InvalidDocument:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = []
    errors = doc.get("errors")
    if isinstance(errors, list):
        parts = [str(e.get("message") or e.get("code")) for e in errors
                 if isinstance(e, dict) and (e.get("message") or e.get("code"))]
    for key in ("error_description", "details", "error"):
        if not parts and isinstance(doc.get(key), str):
            parts = [doc[key]]
    return (": " + "; ".join(parts))[:300] if parts else ""


def _multi(pairs: list[tuple[str, str]]) -> Iterator[tuple[str, str | list[str]]]:
    """Form pairs as httpx ``data=`` wants them: repeated keys become lists."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    for key, values in grouped.items():
        yield key, values if len(values) > 1 else values[0]


def _limited_body(resp: httpx.Response) -> bytes:
    parts, total = [], 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > _MAX_TOKEN_ANSWER:
            raise RemoteError(f"token answer from {resp.request.url.host} is larger than "
                              f"{_MAX_TOKEN_ANSWER} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_token_answer(body: bytes, what: str, *, now: float) -> BearerToken:
    """Parse a token server's JSON (``token``/``access_token``, ``expires_in``, ``issued_at``)."""
    try:
        answer = jsonio.loads(body)
    except InvalidDocument:
        raise RemoteError(f"{what}: the token server did not answer JSON") from None
    if not isinstance(answer, dict):
        raise RemoteError(f"{what}: the token server did not answer a JSON object")
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthenticationFailed(f"{what}: the answer holds no token")
    lifetime = answer.get("expires_in")
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool):
        lifetime = 0
    issued = _parse_time(answer.get("issued_at"))
    start = now if issued is None else issued
    return BearerToken(token, start + max(float(lifetime), MIN_TOKEN_LIFETIME))


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    # RFC 3339 allows more fraction digits than fromisoformat takes (at most 6).
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()
