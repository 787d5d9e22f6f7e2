"""sha256 for the cold paths: CPython's built-in ``_sha256`` where there is one, not
``hashlib``, which loads OpenSSL (~4-7 ms of a command's start on these machines). For
names and cache keys; digests of image content go through hashlib (big data, where
OpenSSL's speed matters)."""

from __future__ import annotations


def sha256_hex(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    try:
        from _sha256 import sha256
    except ImportError:  # another interpreter
        from hashlib import sha256
    return sha256(data).hexdigest()
