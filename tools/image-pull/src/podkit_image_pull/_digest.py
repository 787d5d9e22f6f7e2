"""Content digests: validated before any URL or path is built from one, and hashed streamingly.

A digest is ``sha256:`` + 64 lowercase hex or ``sha512:`` + 128 lowercase hex. Anything
else is refused: a digest from the user is a :class:`UsageError`, one from a registry's
answer (a manifest, a header) is a :class:`VerificationFailed`, the caller says which.
"""

from __future__ import annotations

import hashlib
import re

from podkit_common.errors import PodkitError, UsageError
from podkit_common.records import record

#: Hex length of each supported algorithm.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

_DIGEST_RE = re.compile(r"(sha256):([a-f0-9]{64})|(sha512):([a-f0-9]{128})")


@record(frozen=True)
class Digest:
    """A validated digest; ``str(d)`` is its ``algorithm:hex`` form."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(value: object, *, error: type[PodkitError] = UsageError,
                 what: str = "digest") -> Digest:
    """Validate ``value`` as a digest, raising ``error`` (UsageError by default) if it is not.

    ``what`` names the value in the message, e.g. ``"layer digest in the manifest"``.
    """
    if not isinstance(value, str):
        raise error(f"invalid {what}: expected a string, got {type(value).__name__}")
    match = _DIGEST_RE.fullmatch(value)
    if match is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise error(f"invalid {what} {shown!r}: expected sha256:<64 hex> or sha512:<128 hex>")
    if match.group(1):
        return Digest(match.group(1), match.group(2))
    return Digest(match.group(3), match.group(4))


class DigestHasher:
    """Hash a stream chunk by chunk; ``digest`` is the ``algorithm:hex`` of what was fed."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self.size = 0
        self._hash = hashlib.new(algorithm)

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    hasher = DigestHasher(algorithm)
    hasher.update(data)
    return hasher.digest
