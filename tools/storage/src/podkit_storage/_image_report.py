"""What ``images`` and ``inspect`` print: podman's shapes, built from image records.

Pure functions of the records (plus layer sizes read from ``layers/*/layer.json``), so
the table and the inspect document test without a store.
"""

from __future__ import annotations

import time

from podkit_common import atomic
from podkit_common.humanize import utc_seconds
from podkit_common.roots import Roots
from podkit_storage._images import find_image, list_images
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

NONE = "<none>"


def split_name(name: str) -> tuple[str, str]:
    """``host:5000/a/b:1`` -> (``host:5000/a/b``, ``1``); a digest reference has no tag."""
    repo = name.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = repo.rpartition(":")
        return repo, tag
    return repo, NONE


def image_size(layout: StoreLayout, record: dict[str, Any]) -> int:
    """Bytes of the unpacked layers (the tar streams' sizes), as podman's Size."""
    total = 0
    for layer in record.get("layers", []):
        chain = layer.get("chain_id", "")
        try:
            meta = atomic.read_json(layout.layer_dir(chain.split(":", 1)[-1]) / "layer.json")
        except FileNotFoundError:
            continue
        total += int(meta.get("size") or 0)
    return total


def _created(record: dict[str, Any]) -> str | None:
    return (record.get("config") or {}).get("created") or record.get("stored_at")


def image_row(layout: StoreLayout, record: dict[str, Any],
              containers: int = 0) -> dict[str, Any]:
    """One line of ``pod-storage images``."""
    names = record.get("names", [])
    return {"id": record["id"], "names": names, "digest": record.get("digest"),
            "layers": len(record.get("layers", [])), "stored_at": record.get("stored_at"),
            "created": _created(record), "size": image_size(layout, record),
            "dangling": not names, "containers": containers}


def image_rows(roots: Roots) -> list[dict[str, Any]]:
    from podkit_storage._image_remove import containers_by_image

    layout = StoreLayout(roots)
    users = containers_by_image(layout)
    return [image_row(layout, r, len(users.get(r["id"], []))) for r in list_images(roots)]


def human_size(n: int) -> str:
    """podman's sizes: decimal units, three significant digits (``4.41 MB``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_age(created: str | None, now: float | None = None) -> str:
    """``3 days ago``-style age of an RFC 3339 time, as podman's CREATED column."""
    if not created:
        return NONE
    then = utc_seconds(created[:19])  # no strptime: it imports datetime and calendar
    if then is None:
        return created
    secs = max(0, int((time.time() if now is None else now) - then))
    for size, unit in ((365 * 86400, "year"), (30 * 86400, "month"), (7 * 86400, "week"),
                       (86400, "day"), (3600, "hour"), (60, "minute")):
        if secs >= size:
            count = secs // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "Less than a minute ago" if secs < 60 else f"{secs} seconds ago"


def images_table(rows: list[dict[str, Any]], now: float | None = None) -> str:
    """``podman images``: REPOSITORY TAG IMAGE ID CREATED SIZE, one line per name."""
    lines = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for row in rows:
        for name in row["names"] or [None]:
            repo, tag = split_name(name) if name else (NONE, NONE)
            lines.append((repo, tag, row["id"][:12], human_age(row.get("created"), now),
                          human_size(row.get("size") or 0)))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "".join("  ".join(f"{c:<{w}}" for c, w in zip(line, widths, strict=False))
                   + "  " + line[4] + "\n" for line in lines)


def inspect_record(layout: StoreLayout, record: dict[str, Any]) -> dict[str, Any]:
    """podman image inspect's document for one record."""
    config = record.get("config") or {}
    names = record.get("names", [])
    digest = record.get("digest")
    repo_digests = []
    if digest:
        repo_digests = list(dict.fromkeys(f"{split_name(n)[0]}@{digest}" for n in names))
    history = config.get("history") or []
    return {
        "Id": record["id"],
        "Digest": digest,
        "RepoTags": names,
        "RepoDigests": repo_digests,
        "Created": config.get("created"),
        "Config": config.get("config") or {},
        "Version": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Architecture": config.get("architecture"),
        "Os": config.get("os"),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Size": image_size(layout, record),
        "RootFS": {"Type": (config.get("rootfs") or {}).get("type", "layers"),
                   "Layers": [layer["diff_id"] for layer in record.get("layers", [])]},
        "Labels": (config.get("config") or {}).get("Labels") or {},
        "ManifestType": record.get("media_type"),
        "User": (config.get("config") or {}).get("User", ""),
        "History": history,
        "NamesHistory": list(dict.fromkeys([*names, *record.get("names_history", [])])),
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(la["diff_path"] for la in reversed(record.get("layers", []))
                                 if la.get("diff_path"))}},
        "StoredAt": record.get("stored_at"),
    }


def inspect_image(roots: Roots, ref: str) -> dict[str, Any]:
    """``inspect``: the podman-shaped description of one image in the store."""
    return {"changed": False,
            "inspect": inspect_record(StoreLayout(roots), find_image(roots, ref))}
