"""`pod image inspect`: podman 4.3's document for an image, from pod-storage's record.

Field for field what `podman image inspect` prints (Id, Digest, RepoTags, RepoDigests,
Parent, Comment, Created, Config, Version, Author, Architecture, Os, Size, VirtualSize,
GraphDriver, RootFS, Labels, Annotations, ManifestType, User, History, NamesHistory),
with podkit's own layer directories in GraphDriver.
"""

from __future__ import annotations

from podkit_common import errors
from podkit_common.jsonio import loads
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: podman inspect indents its JSON by five spaces.
INDENT = 5


def _manifest_annotations(record: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(record["manifest_path"], "rb") as fh:
            manifest = loads(fh.read())
    except (KeyError, OSError, TypeError, errors.InvalidDocument):
        return {}
    return (manifest.get("annotations") or {}) if isinstance(manifest, dict) else {}


def inspect_document(roots: Roots, ref: str) -> dict[str, Any]:
    """The podman-shaped inspect document of the image ``ref`` (NotFound if unknown)."""
    from podkit_pod._image_list import _Store, names_history, split_name
    from podkit_storage import find_image

    record = find_image(roots, ref)
    store = _Store(roots)
    config = record.get("config") or {}
    inner = config.get("config") or {}
    names = record.get("names", [])
    digest = record.get("digest") or ""
    parent = store.parent(record)
    size = store.size(record)
    layers = record.get("layers", [])
    diff_paths = [la.get("diff_path") for la in layers if la.get("diff_path")]
    driver: dict[str, Any] = {}
    if diff_paths:
        if len(diff_paths) > 1:
            driver["LowerDir"] = ":".join(reversed(diff_paths[:-1]))
        driver["UpperDir"] = diff_paths[-1]
    doc: dict[str, Any] = {
        "Id": record["id"],
        "Digest": digest,
        "RepoTags": list(names),
        "RepoDigests": list(dict.fromkeys(f"{split_name(n)[0]}@{digest}" for n in names))
        if digest else [],
        "Parent": parent["id"] if parent else "",
        "Comment": config.get("comment", ""),
        "Created": config.get("created") or record.get("stored_at"),
        "Config": inner,
        "Version": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
    }
    if config.get("variant"):
        doc["Variant"] = config["variant"]
    doc.update({
        "Size": size,
        "VirtualSize": size,
        "GraphDriver": {"Name": "overlay", "Data": driver},
        "RootFS": {"Type": (config.get("rootfs") or {}).get("type", "layers"),
                   "Layers": [la["diff_id"] for la in layers]},
        "Labels": inner.get("Labels") or None,
        "Annotations": _manifest_annotations(record),
        "ManifestType": record.get("media_type", ""),
        "User": inner.get("User", ""),
        "History": config.get("history") or [],
        "NamesHistory": names_history(record),
    })
    return doc


def image_exists(roots: Roots, ref: str) -> bool:
    from podkit_storage import find_image

    try:
        find_image(roots, ref)
    except errors.NotFound:
        return False
    return True
