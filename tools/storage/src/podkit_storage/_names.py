"""Container names: podman's grammar, and friendly generated names."""

from __future__ import annotations

import os

from podkit_common import errors
from podkit_common.names import valid_name

_ADJECTIVES = (
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quirky", "sharp", "tender", "upbeat", "vivid", "witty", "zealous",
    "bold", "clever", "daring", "epic", "festive", "gallant", "hopeful", "kind", "lively",
)
_NOUNS = (
    "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "hypatia", "joule",
    "kepler", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie", "shannon",
    "tesla", "turing", "wozniak", "yalow", "zuse", "bohr", "carson", "dijkstra", "knuth",
)


def check_name(name: str) -> str:
    if len(name) > 253 or not valid_name(name):
        raise errors.UsageError(
            f"invalid container name {name!r}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return name


def _pick(words: tuple[str, ...]) -> str:
    # os.urandom, as secrets does, without importing secrets (hmac, hashlib, random:
    # ~6 ms of every `pod run` that names no container)
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]


def generated_name() -> str:
    return f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}"
