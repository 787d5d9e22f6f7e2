"""Checking a signature: the cryptography of sigstore's public keys (``cryptography``)
and the signed payload, read as strictly as containers/image reads it.

(GPG's cryptography is :mod:`._gpg`; fetching signatures is :mod:`._signatures`.)
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from podkit_common.errors import InvalidDocument, NotFound, from_os_error
from podkit_image_pull._digest import digest_of, parse_digest
from podkit_image_pull._gpg import SignatureRejected

if TYPE_CHECKING:
    from podkit_image_pull._signatures import FetchedSignature

SIMPLE_SIGNING_TYPE = "atomic container signature"
COSIGN_TYPE = "cosign container image signature"
SIGSTORE_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
#: A key file is small; anything bigger is not a key.
MAX_KEY_BYTES = 1024 * 1024


def parse_payload(payload: bytes, expected_type: str) -> tuple[str, str]:
    """(docker-reference, docker-manifest-digest) from a signed payload, read strictly.

    Raises SignatureRejected for anything but exactly ``{"critical": {"type", "image":
    {"docker-manifest-digest"}, "identity": {"docker-reference"}}, "optional": {...}}``.
    """
    try:
        doc = json.loads(payload, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureRejected(f"the signed payload is not JSON: {exc}") from None
    critical = _exact(doc, ("critical", "optional"), "payload")["critical"]
    optional = doc["optional"]
    if not (optional is None and expected_type == COSIGN_TYPE) and not isinstance(optional, dict):
        raise SignatureRejected("payload: 'optional' must be an object")
    if isinstance(optional, dict):
        stamp = optional.get("timestamp")
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float)
                                  or stamp != int(stamp)):
            raise SignatureRejected("payload: optional.timestamp is not an integer")
        if "creator" in optional and not isinstance(optional["creator"], str):
            raise SignatureRejected("payload: optional.creator is not a string")
    _exact(critical, ("type", "image", "identity"), "payload critical")
    if critical["type"] != expected_type:
        raise SignatureRejected(f"payload: unrecognized signature type {critical['type']!r} "
                                f"(expected {expected_type!r})")
    image = _exact(critical["image"], ("docker-manifest-digest",), "payload critical.image")
    identity = _exact(critical["identity"], ("docker-reference",), "payload critical.identity")
    digest, reference = image["docker-manifest-digest"], identity["docker-reference"]
    if not isinstance(digest, str) or not isinstance(reference, str):
        raise SignatureRejected("payload: the digest and the reference must be strings")
    return reference, digest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _exact(doc: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise SignatureRejected(f"{what} is not a JSON object")
    if set(doc) != set(keys):
        raise SignatureRejected(f"{what} must have exactly the fields {', '.join(keys)}; "
                                f"has {', '.join(sorted(doc)) or 'none'}")
    return doc


def manifest_matches(manifest: bytes, claimed: str) -> bool:
    """Whether the signed digest is the digest of these manifest bytes."""
    try:
        wanted = parse_digest(claimed)
    except Exception:
        return False
    return digest_of(manifest, wanted.algorithm) == str(wanted)


def load_public_keys(pems: list[bytes], what: str) -> list[Any]:
    """Parse PEM public keys (ECDSA, RSA, Ed25519) with ``cryptography``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys = []
    for number, pem in enumerate(pems, 1):
        try:
            key = load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise InvalidDocument(f"{what}: public key {number} is not a PEM public key: {exc}",
                                  hint="sigstoreSigned needs a PEM 'PUBLIC KEY' (cosign.pub)"
                                  ) from None
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey
                          | ed25519.Ed25519PublicKey):
            raise InvalidDocument(f"{what}: public key {number} is a {type(key).__name__}; "
                                  "only ECDSA, RSA and Ed25519 keys are supported")
        keys.append(key)
    return keys


def verify_sigstore(sig: FetchedSignature, keys: list[Any]) -> tuple[bytes, int]:
    """Check a sigstore payload's signature; return (payload, index of the key that made it)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    encoded = sig.annotations.get(SIGSTORE_SIGNATURE_ANNOTATION)
    if encoded is None:
        raise SignatureRejected(f"missing the {SIGSTORE_SIGNATURE_ANNOTATION} annotation")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise SignatureRejected(f"the signature annotation is not base64: {exc}") from None
    for index, key in enumerate(keys):
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(raw, sig.blob, ec.ECDSA(hashes.SHA256()))
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(raw, sig.blob, padding.PKCS1v15(), hashes.SHA256())
            else:
                key.verify(raw, sig.blob)
        except InvalidSignature:
            continue
        return sig.blob, index
    raise SignatureRejected(f"cryptographic verification failed with "
                            f"{'the' if len(keys) == 1 else f'all {len(keys)}'} "
                            f"{'key' if len(keys) == 1 else 'keys'} of the policy "
                            "(a different key made it, or the payload was altered)")


def read_key_file(path: str, what: str) -> bytes:
    """A key file named by the policy (at most 1 MiB)."""
    limit = MAX_KEY_BYTES
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise NotFound(f"{what}: key file {path} does not exist",
                       hint="fix keyPath/keyPaths in the signature policy") from None
    except OSError as exc:
        raise from_os_error(exc, f"{what}: read key file {path}") from exc
    if len(data) > limit:
        raise InvalidDocument(f"{what}: key file {path} is larger than {limit} bytes")
    return data
