"""Image signatures: where podman finds them, fetched (unverified) with size limits.

Two formats, fetched from where containers/image (so podman) looks:

* **simple signing** (GPG): the registry's signature extension when its ``/v2/`` answer
  says ``X-Registry-Supports-Signatures: 1``
  (``GET /extensions/v2/<repo>/signatures/<digest>``), otherwise the lookaside storage
  that registries.d configures: ``<lookaside>/<repo>@sha256=<hex>/signature-1``, ``-2``,
  ... until one is missing (``file://``, ``http://`` or ``https://``).
* **sigstore** (cosign) attachments, when registries.d says ``use-sigstore-attachments:
  true``: the manifest tagged ``sha256-<hex>.sig`` in the same repository; each layer of
  type ``application/vnd.dev.cosign.simplesigning.v1+json`` is a payload, and its
  ``dev.cosignproject.cosign/signature`` annotation the base64 signature over it.

Verifying them is :mod:`._gpg` (GPG) and :mod:`._signature_check` (sigstore keys, the
signed payload); whether what they claim is acceptable is :mod:`._trust`'s decision.

Everything fetched has a size limit; a blob over it is refused, not truncated.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from podkit_common.errors import (
    InvalidDocument,
    NotFound,
    RemoteError,
    VerificationFailed,
    from_os_error,
)
from podkit_common.records import field, record
from podkit_image_pull._digest import digest_of, parse_digest
from podkit_image_pull._manifest import OCI_MANIFEST, media_type_of, parse_json_object

if TYPE_CHECKING:
    import httpx

    from podkit_image_pull._registries_d import SignatureStorage
    from podkit_image_pull._registry import RegistryClient

SIGSTORE_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
#: containers/image's limits (internal/iolimits).
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024
MAX_SIGNATURE_LIST_BYTES = 4 * 1024 * 1024
#: More signatures than this in one place is a broken server, not a signed image.
MAX_SIGNATURES = 128


@record(frozen=True)
class FetchedSignature:
    """One unverified signature and where it came from.

    ``blob`` is the OpenPGP message for simple signing, the payload for sigstore.
    """

    format: str
    origin: str
    blob: bytes
    media_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


class RegistrySignatures:
    """The signatures of one image manifest in a registry, fetched once, on demand."""

    def __init__(self, registry: RegistryClient, repository: str, manifest_digest: str,
                 storage: SignatureStorage, scopes: list[str], *,
                 http_client: httpx.Client | None = None, tls_verify: bool = True) -> None:
        self.repository = repository
        self.digest = str(parse_digest(manifest_digest, error=VerificationFailed,
                                       what="manifest digest"))
        self.registry = registry
        self.storage = storage
        self.scopes = scopes
        self._http = http_client
        self._own_http: httpx.Client | None = None
        self.tls_verify = tls_verify
        self._simple: list[FetchedSignature] | None = None
        self._sigstore: list[FetchedSignature] | None = None
        self.looked_in: list[str] = []

    def close(self) -> None:
        if self._own_http is not None:
            self._own_http.close()

    def simple_signing(self) -> list[FetchedSignature]:
        """GPG simple-signing signatures (registry extension or lookaside)."""
        if self._simple is None:
            if self.registry.supports_signatures:
                self._simple = self._from_extension()
            else:
                self._simple = self._from_lookaside()
        return self._simple

    def sigstore(self) -> list[FetchedSignature]:
        """Sigstore attachments, if registries.d enables them for this image (else none)."""
        if self._sigstore is None:
            if self.storage.use_sigstore_attachments(self.scopes):
                self._sigstore = self._from_attachments()
            else:
                self.looked_in.append("no sigstore attachments (use-sigstore-attachments is "
                                      "not enabled in registries.d for this image)")
                self._sigstore = []
        return self._sigstore

    # --- simple signing ---------------------------------------------------------------

    def _from_extension(self) -> list[FetchedSignature]:
        what = f"signatures of {self.registry.registry}/{self.repository}@{self.digest}"
        self.looked_in.append(f"the registry's signature extension ({self.registry.registry})")
        body = self._get_extension(what)
        try:
            doc = json.loads(body)
            entries = doc["signatures"] if isinstance(doc, dict) else None
        except (ValueError, KeyError):
            entries = None
        if not isinstance(entries, list):
            raise RemoteError(f"{what}: the registry's answer is not a signature list")
        found = []
        for number, entry in enumerate(entries[:MAX_SIGNATURES], 1):
            if not isinstance(entry, dict) or entry.get("schemaVersion") != 2 \
                    or entry.get("type") != "atomic" or not isinstance(entry.get("content"), str):
                continue
            try:
                blob = base64.b64decode(entry["content"], validate=True)
            except ValueError:
                blob = b""
            found.append(FetchedSignature("simple-signing",
                                          f"registry signature extension, entry {number}", blob))
        return found

    def _get_extension(self, what: str) -> bytes:
        import httpx

        registry, repository = self.registry, self.repository
        url = f"{registry.ping()}/extensions/v2/{repository}/signatures/{self.digest}"
        # _send is the client's authenticated request (token renewal on a 401 included).
        with registry._send("GET", url, repository, what, {"Accept": "application/json"}) \
                as resp:
            if resp.status_code != 200:
                raise registry._status_error(resp, what)
            data = bytearray()
            try:
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > MAX_SIGNATURE_LIST_BYTES:
                        raise RemoteError(f"{what}: larger than {MAX_SIGNATURE_LIST_BYTES} "
                                          "bytes; refusing it")
            except httpx.TransportError as exc:
                raise RemoteError(f"{what}: connection failed while reading: {exc}") from None
        return bytes(data)

    def _from_lookaside(self) -> list[FetchedSignature]:
        base = self.storage.lookaside_for(self.scopes)
        scheme, netloc, path, _, _ = urllib.parse.urlsplit(base)
        prefix = f"{base.rstrip('/')}/{self.repository}@{self.digest.replace(':', '=', 1)}"
        self.looked_in.append(f"lookaside {prefix}/signature-N")
        if scheme == "file" and netloc not in ("", "localhost"):
            raise InvalidDocument(f"registries.d lookaside {base!r}: a file:// URL needs an "
                                  "absolute path (file:///dir)")
        if scheme not in ("file", "http", "https"):
            raise InvalidDocument(f"registries.d lookaside {base!r}: unsupported scheme "
                                  f"{scheme!r}; use file://, http:// or https://")
        found = []
        for number in range(1, MAX_SIGNATURES + 2):
            if number > MAX_SIGNATURES:
                raise RemoteError(f"lookaside {prefix}: more than {MAX_SIGNATURES} signatures; "
                                  "assuming the server is broken")
            url = f"{prefix}/signature-{number}"
            if scheme == "file":
                local = urllib.parse.unquote(path).rstrip("/") + url[len(base.rstrip("/")):]
                blob = _read_file(local, MAX_SIGNATURE_BYTES)
            else:
                blob = self._http_get(url)
            if blob is None:
                break
            found.append(_from_lookaside_blob(blob, url))
        return found

    def _http_get(self, url: str) -> bytes | None:
        client = self._http or self._lookaside_client(url)
        what = f"signature {url}"
        import httpx

        try:
            with client.stream("GET", url, follow_redirects=True) as resp:
                if resp.status_code == 404:
                    return None
                if resp.status_code != 200:
                    raise RemoteError(f"read {what}: HTTP {resp.status_code}",
                                      hint="is the lookaside server configured in registries.d "
                                           "up?")
                data = bytearray()
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > MAX_SIGNATURE_BYTES:
                        raise RemoteError(f"read {what}: larger than {MAX_SIGNATURE_BYTES} "
                                          "bytes; refusing it")
                return bytes(data)
        except httpx.TransportError as exc:
            raise RemoteError(f"read {what}: {type(exc).__name__}: {exc}",
                              hint="is the lookaside server configured in registries.d up?"
                              ) from None

    def _lookaside_client(self, url: str) -> httpx.Client:
        import httpx

        if self._own_http is None:
            host = urllib.parse.urlsplit(url).hostname or ""
            self._own_http = httpx.Client(verify=self.tls_verify, timeout=60.0,
                                          trust_env=not _is_loopback(host))
        return self._own_http

    # --- sigstore ---------------------------------------------------------------------

    def _from_attachments(self) -> list[FetchedSignature]:
        tag = self.digest.replace(":", "-", 1) + ".sig"
        where = f"{self.registry.registry}/{self.repository}:{tag}"
        self.looked_in.append(f"sigstore attachments {where}")
        try:
            body, content_type, _ = self.registry.get_manifest(
                self.repository, tag, (OCI_MANIFEST,))
        except NotFound:
            return []
        doc = parse_json_object(body, f"sigstore attachment manifest {where}")
        if media_type_of(doc, content_type) != OCI_MANIFEST:
            raise VerificationFailed(f"sigstore attachment manifest {where} is not an OCI image "
                                     f"manifest ({content_type or 'no media type'})")
        layers = doc.get("layers")
        if not isinstance(layers, list) or len(layers) > MAX_SIGNATURES:
            raise VerificationFailed(f"sigstore attachment manifest {where}: 'layers' must be "
                                     f"a list of at most {MAX_SIGNATURES} descriptors")
        found = []
        for number, layer in enumerate(layers, 1):
            origin = f"{where} layer {number}"
            media_type, digest, size, annotations = _attachment_descriptor(layer, origin)
            if media_type != SIGSTORE_MEDIA_TYPE:
                found.append(FetchedSignature("sigstore", origin, b"", media_type, annotations))
                continue
            payload = self._read_blob(digest, size, origin)
            found.append(FetchedSignature("sigstore", origin, payload, media_type, annotations))
        return found

    def _read_blob(self, digest: str, size: int, origin: str) -> bytes:
        data = bytearray()
        with self.registry.open_blob(self.repository, digest) as blob:
            for chunk in blob.chunks:
                data += chunk
                if len(data) > size:
                    raise VerificationFailed(f"{origin}: the registry sent more than the "
                                             f"{size} bytes declared")
        if len(data) != size or digest_of(bytes(data), digest.split(":")[0]) != digest:
            raise VerificationFailed(f"{origin}: the content does not match its digest {digest}")
        return bytes(data)


def _attachment_descriptor(layer: Any, origin: str) -> tuple[str, str, int, dict[str, str]]:
    if not isinstance(layer, dict):
        raise VerificationFailed(f"{origin}: not a descriptor object")
    media_type, digest, size = layer.get("mediaType"), layer.get("digest"), layer.get("size")
    annotations = layer.get("annotations") or {}
    parse_digest(digest, error=VerificationFailed, what=f"digest of {origin}")
    if not isinstance(media_type, str) or not isinstance(size, int) or size < 0 \
            or not isinstance(annotations, dict) \
            or not all(isinstance(v, str) for v in annotations.values()):
        raise VerificationFailed(f"{origin}: malformed descriptor")
    if size > MAX_SIGNATURE_BYTES:
        raise VerificationFailed(f"{origin}: {size} bytes is more than the "
                                 f"{MAX_SIGNATURE_BYTES} a signature may have")
    return media_type, digest, size, annotations


def _from_lookaside_blob(blob: bytes, origin: str) -> FetchedSignature:
    """A lookaside file: raw OpenPGP (the historical form) or ``\\0simple-signing\\n...``."""
    if blob[:1] == b"\x00":
        name, newline, rest = blob[1:].partition(b"\n")
        if newline and name == b"simple-signing":
            return FetchedSignature("simple-signing", origin, rest)
        return FetchedSignature(f"unknown ({name[:40]!r})", origin, blob)
    return FetchedSignature("simple-signing", origin, blob)


def _read_file(path: str, limit: int) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise from_os_error(exc, f"read signature {path}") from exc
    if len(data) > limit:
        raise VerificationFailed(f"signature {path} is larger than {limit} bytes")
    return data


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
