"""Image names: ``tag`` adds names (a name moves from any other image, as import does)
and ``untag`` removes them; both edit only image records, under the images index lock.

Names are normalised the way podman does: ``docker://`` is dropped, a name without a
registry gets ``localhost/``, and one without a tag or digest gets ``:latest``.
"""

from __future__ import annotations

import re

from podkit_common import atomic, errors
from podkit_common.locks import object_lock
from podkit_common.roots import Roots
from podkit_storage._images import _untag_others, find_image
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

# distribution/reference's grammar, simplified: lowercase path components, an optional
# registry host[:port] in front, and a tag or digest at the end.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = (r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])"
         r"(?::[0-9]+)?")
_HOST_RE = re.compile(rf"^{_HOST}$")
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*"
                      r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


def normalize_name(name: str) -> str:
    """``busybox`` -> ``localhost/busybox:latest``; ``host:5000/a/b:1`` stays as it is."""
    raw = name.removeprefix("docker://")
    first, sep, rest = raw.partition("/")
    # Like distribution/reference: the first component is a registry only if it looks
    # like a host (a dot, a port, or "localhost"); otherwise it is part of the path.
    has_host = bool(sep) and ("." in first or ":" in first or first == "localhost")
    valid = (_HOST_RE.match(first) and _PATH_RE.match(rest)) if has_host else \
        _PATH_RE.match(raw)
    if not raw or not valid:
        raise errors.UsageError(f"tag image: {name!r} is not a valid image name",
                                hint="use [REGISTRY/]REPOSITORY[:TAG], lowercase")
    if not has_host:
        raw = f"localhost/{raw}"
    if "@" not in raw and ":" not in raw.rsplit("/", 1)[-1]:
        raw += ":latest"
    return raw


def _write(layout: StoreLayout, record: dict[str, Any]) -> None:
    atomic.write_json(layout.image_record(record["id"]), record)


def tag_image(roots: Roots, ref: str, names: list[str]) -> dict[str, Any]:
    """Add ``names`` to the image ``ref``; each name leaves whichever image had it."""
    layout = StoreLayout(roots)
    wanted = [normalize_name(n) for n in names]
    with object_lock(layout.locks, "images", "index"):
        record = find_image(roots, ref)
        before = list(record.get("names", []))
        added = [n for n in dict.fromkeys(wanted) if n not in before]
        for name in added:
            _untag_others(layout, name, keep=record["id"])
        if added:
            record["names"] = before + added
            _write(layout, record)
    from podkit_common.events import record as event

    for name in added:
        event(roots, "image", "tag", id=record["id"], name=name)
    return {"changed": bool(added), "id": record["id"], "names": record.get("names", []),
            "tagged": added, "untagged": []}


def untag_image(roots: Roots, ref: str, names: list[str] | None = None) -> dict[str, Any]:
    """Remove ``names`` (all names when none are given) from the image ``ref``.

    A name the image does not carry is an error, as in podman; the image stays in the
    store (without names it is dangling, and ``prune`` removes it).
    """
    layout = StoreLayout(roots)
    with object_lock(layout.locks, "images", "index"):
        record = find_image(roots, ref)
        before = list(record.get("names", []))
        if names:
            drop = []
            for name in names:
                norm = _matching_name(before, name)
                if norm is None:
                    raise errors.NotFound(f"untag image {record['id'][:12]}: it is not "
                                          f"tagged {name}", hint=f"its names: {before}")
                drop.append(norm)
        else:
            drop = before
        remaining = [n for n in before if n not in drop]
        if remaining != before:
            record["names"] = remaining
            history = list(record.get("names_history", []))
            record["names_history"] = [*drop, *[h for h in history if h not in drop]]
            _write(layout, record)
    from podkit_common.events import record as event

    for name in (n for n in before if n in drop):
        event(roots, "image", "untag", id=record["id"], name=name)
    return {"changed": remaining != before, "id": record["id"], "names": remaining,
            "tagged": [], "untagged": [n for n in before if n in drop]}


def _matching_name(names: list[str], name: str) -> str | None:
    """The stored name ``name`` refers to: exactly, normalised, or by a ``/repo:tag`` tail."""
    raw = name.removeprefix("docker://")
    if raw in names:
        return raw
    try:
        norm = normalize_name(raw)
    except errors.UsageError:
        return None
    if norm in names:
        return norm
    tail = raw if ":" in raw.rsplit("/", 1)[-1] else raw + ":latest"
    for n in names:
        if n.endswith("/" + tail):
            return n
    return None
