"""hypothesis strategies shared by the fuzz tests: JSON values of every shape, and
documents that follow a stage's input schema with one field broken."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: PODKIT_FUZZ_SCALE=N multiplies every test's examples (a long run: `make soak`-style);
#: PODKIT_FUZZ_RANDOM=1 draws new examples instead of CI's fixed sequence.
SCALE = max(1, int(os.environ.get("PODKIT_FUZZ_SCALE", "1")))
RANDOM = os.environ.get("PODKIT_FUZZ_RANDOM") == "1"


def examples(n: int) -> int:
    """``n`` examples in CI, ``n * PODKIT_FUZZ_SCALE`` in a long run."""
    return n * SCALE


#: CI settings: a fixed sequence of examples (derandomize), no example database
#: written in the repository, no per-example deadline (a shared 2-core machine).
FUZZ = settings(derandomize=not RANDOM, database=None, deadline=None,
                max_examples=examples(60),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

HEX64 = "0123456789abcdef" * 4

# Strings never start with "/": a fuzzed abspath must not name a real host path (a
# rootfs of "/" would get /etc/hosts written into it); documents' paths come from the
# safe pool each test passes in.
safe_text = st.text(max_size=40).filter(lambda s: not s.startswith("/"))
huge_ints = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, -1, 0, 2**31])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_ints,
                    st.floats(allow_nan=False, allow_infinity=False), safe_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(safe_text, inner, max_size=4)),
    max_leaves=20)


def dumps(value: Any) -> bytes:
    """JSON text the way any client might write it (stdlib: huge ints, NaN allowed)."""
    return json.dumps(value).encode()


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw, template: dict, safe_values: list[Any] = ()) -> dict:
    """``template`` with one to three of its fields removed, retyped, replaced by a
    random JSON value (or one of ``safe_values``), or given unknown siblings."""
    doc = copy.deepcopy(template)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get(doc, path[:-1])
        key = path[-1]
        action = draw(st.sampled_from(["remove", "retype", "random", "sibling", "safe"]))
        if action == "remove":
            del parent[key]
        elif action == "retype":
            old = parent[key]
            parent[key] = draw(st.sampled_from(
                [v for v in ([], {}, 0, -1, 1.5, True, None, "", "x", [old], {"v": old})
                 if type(v) is not type(old)]))
        elif action == "random":
            parent[key] = draw(json_values)
        elif action == "safe" and safe_values:
            parent[key] = draw(st.sampled_from(list(safe_values)))
        elif isinstance(parent, dict):
            parent[draw(safe_text)] = draw(json_values)
    return doc


def deep(n: int) -> bytes:
    """A document nested ``n`` levels deep."""
    return b'{"container":' + b"[" * n + b"]" * n + b"}"


#: Byte strings no JSON reader should choke on with anything but a clean error.
NASTY_INPUTS = [
    b"", b"\x00", b"\xff\xfe\xfd", b'{"container": "\xff"}', b"{" * 100_000, deep(2000),
    b'{"a": 1e999}', b'{"a": NaN}', b'{"image": {"id": 123456789012345678901234567890}}',
    b'{"a": "\\ud800"}', b"[]" * 10, b'{"a":1}{"b":2}', b"\xef\xbb\xbf{}", b"null", b"1",
    b'{"image": {"id": "' + b"a" * 64 + b'", "layers": [' + b"{}," * 1000 + b"{}]}}",
]
