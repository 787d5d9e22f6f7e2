"""Removing images: ``rmi`` and ``prune``, with layer and blob reclamation.

Layers are shared between images by chain id and blobs by digest, so what an image
owns alone is computed from every *other* image record, under the exclusive
``images-gc`` lock (imports hold it shared, so no import can start to reuse a layer
between the count and the delete).

Crash safety, in order:

1. the record is renamed to a tombstone ``images/.tmp-rmi-<id>.<pid>`` (rename is
   atomic, and ``list_images`` never shows ``.tmp-`` names): the image is gone;
2. each layer directory no remaining image uses is renamed to
   ``layers/.tmp-rmi-<chain>.<pid>`` and then deleted (the import's staging sweep
   removes one a crash left behind, since its pid is dead);
3. each blob the image named (manifest, index, config, layers) that no remaining image
   names is unlinked, but only inside ``<root>/blobs``;
4. the tombstone is unlinked last. A tombstone whose process died is finished (steps
   2-4) by the next ``rmi`` or ``prune``.

Bytes freed are measured, not estimated: ``st_blocks * 512`` of every file and
directory removed, each inode counted once (hard links inside a layer share one).
``statvfs`` before/after would also see other processes' writes on the same disk.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.locks import object_lock
from podkit_common.roots import Roots
from podkit_storage._images import find_image, list_images
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

TOMBSTONE = f"{atomic.TMP_PREFIX}rmi-"


def gc_lock(layout: StoreLayout, *, shared: bool = False) -> Any:
    """Held shared by whatever makes an image use layers (import), exclusive by removal."""
    return object_lock(layout.locks, "images", "gc", shared=shared)


_ALGORITHM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HEX = frozenset("0123456789abcdef")


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def _safe(digest: str) -> bool:
    """A digest that can only name a file inside its directory (no ``/``, no ``..``):
    ``[a-z0-9]+:[0-9a-f]{32,128}``, checked without re (whose import costs every
    container create a cold start's milliseconds)."""
    algorithm, sep, hexpart = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    return (bool(sep and algorithm) and _ALGORITHM.issuperset(algorithm)
            and 32 <= len(hexpart) <= 128 and _HEX.issuperset(hexpart))


def image_blobs(record: dict[str, Any]) -> dict[str, str | None]:
    """digest -> the path the record gives for it (None where it names none)."""
    out: dict[str, str | None] = {}
    for key, path_key in (("digest", "manifest_path"), ("index_digest", None),
                          ("config_digest", "config_path")):
        if record.get(key):
            out[record[key]] = record.get(path_key) if path_key else None
    for layer in record.get("layers", []):
        if layer.get("digest"):
            out[layer["digest"]] = layer.get("path")
    return out


def image_chains(record: dict[str, Any]) -> set[str]:
    return {layer["chain_id"] for layer in record.get("layers", []) if layer.get("chain_id")}


def containers_by_image(layout: StoreLayout) -> dict[str, list[dict[str, Any]]]:
    """image id -> the container records that use it."""
    from podkit_storage._listing import container_records

    out: dict[str, list[dict[str, Any]]] = {}
    for c in container_records(layout):
        out.setdefault(c.get("image_id", ""), []).append(c)
    return out


class _Freed:
    """Counts what a removal really gave back: blocks of each inode, once."""

    def __init__(self) -> None:
        self.bytes = 0
        self._seen: set[tuple[int, int]] = set()

    def count(self, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if key not in self._seen:
            self._seen.add(key)
            self.bytes += st.st_blocks * 512

    def tree(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.count(os.lstat(path))
        for dirpath, dirnames, filenames in os.walk(path):
            for name in (*dirnames, *filenames):
                with contextlib.suppress(FileNotFoundError):
                    self.count(os.lstat(os.path.join(dirpath, name)))


def _reclaim(layout: StoreLayout, record: dict[str, Any], freed: _Freed,
             report: dict[str, Any]) -> None:
    """Delete the layers and blobs of ``record`` that no image in the store uses."""
    import shutil

    remaining = list_images(layout.roots)
    used_chains = set().union(*(image_chains(r) for r in remaining)) if remaining else set()
    used_blobs = set().union(*(image_blobs(r) for r in remaining)) if remaining else set()
    for chain in sorted(image_chains(record) - used_chains):
        if not _safe(chain):
            continue
        final = layout.layer_dir(_hex(chain))
        if not final.exists():
            continue
        with object_lock(layout.locks, "layer", _hex(chain)) as held:
            doomed = layout.layers / f"{TOMBSTONE}{_hex(chain)}.{os.getpid()}"
            try:
                os.rename(final, doomed)
            except FileNotFoundError:
                continue
            atomic.fsync_dir(layout.layers)
            held.unlink()   # its lock file goes with it (see podkit_common.locks)
        freed.tree(doomed)
        shutil.rmtree(doomed)
        report["layers_removed"].append(chain)
    blobs_dir = (layout.roots.root / "blobs").resolve()
    for digest, given in sorted(image_blobs(record).items()):
        if digest in used_blobs or not _safe(digest):
            continue
        algorithm, _, hexpart = digest.partition(":")
        path = blobs_dir / algorithm / hexpart
        # Only the puller's blob store in this root, never a path a record points
        # elsewhere (an image pulled with another --root keeps its blobs).
        if given is not None and Path(given).resolve() != path:
            continue
        # Under the puller's lock of the blob: a pull storing it now finishes first.
        with object_lock(layout.locks, "blob", digest) as held:
            try:
                st = os.lstat(path)
                os.unlink(path)
            except FileNotFoundError:
                continue
            held.unlink()
        freed.count(st)
        report["blobs_removed"].append(digest)


def _bury(layout: StoreLayout, image_id: str, freed: _Freed) -> Path:
    """Make the image invisible: its record becomes a tombstone (atomic rename)."""
    tomb = layout.images / f"{TOMBSTONE}{image_id}.{os.getpid()}"
    record_path = layout.image_record(image_id)
    freed.count(os.lstat(record_path))
    os.rename(record_path, tomb)
    atomic.fsync_dir(layout.images)
    return tomb


def _finish_interrupted(layout: StoreLayout, freed: _Freed, report: dict[str, Any]) -> None:
    """Complete removals whose process died after burying the record."""
    try:
        entries = list(os.scandir(layout.images))
    except FileNotFoundError:
        return
    for entry in entries:
        if not entry.name.startswith(TOMBSTONE):
            continue
        if not atomic.abandoned(entry.name):
            continue
        try:
            record = atomic.read_json(entry.path)
        except (FileNotFoundError, ValueError, errors.PodkitError):
            record = {}
        _reclaim(layout, record, freed, report)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)


def _new_report() -> dict[str, Any]:
    return {"changed": False, "untagged": [], "deleted": [], "containers_removed": [],
            "layers_removed": [], "blobs_removed": [], "bytes_freed": 0}


def _delete(layout: StoreLayout, image_id: str, freed: _Freed,
            report: dict[str, Any]) -> None:
    """Bury the record (under the index lock, so no tag revives it), then reclaim."""
    with object_lock(layout.locks, "images", "index"):
        try:
            record = atomic.read_json(layout.image_record(image_id))
        except FileNotFoundError:
            return
        tomb = _bury(layout, image_id, freed)
    _reclaim(layout, record, freed, report)
    os.unlink(tomb)
    atomic.fsync_dir(layout.images)
    report["deleted"].append(image_id)
    report["untagged"].extend(record.get("names", []))
    from podkit_common.events import record as event

    for name in record.get("names", []):
        event(layout.roots, "image", "untag", id=image_id, name=name)
    event(layout.roots, "image", "remove", id=image_id, name=image_id)


def _is_by_name(record: dict[str, Any], ref: str) -> bool:
    want = ref.removeprefix("docker://")
    by_id = want.startswith("sha256:") or (len(want) >= 3 and record["id"].startswith(want))
    return not by_id


def remove_images(roots: Roots, refs: list[str], *, force: bool = False) -> dict[str, Any]:
    """``rmi``: remove images (by name, id, id prefix), like ``podman rmi``.

    An image named by one of several names only loses that name. An image a container
    uses is refused (Conflict) unless ``force``, which removes those containers first,
    as ``podman rmi -f`` does. Removing by id an image with several names needs
    ``force`` too.
    """
    from podkit_storage._containers import remove_container
    from podkit_storage._image_tags import untag_image

    layout = StoreLayout(roots)
    report = _new_report()
    freed = _Freed()
    with gc_lock(layout):
        _finish_interrupted(layout, freed, report)
        users = containers_by_image(layout)
        # Check everything before changing anything: a refusal leaves the store as it was.
        plan: list[tuple[str, dict[str, Any], str]] = []
        for ref in refs:
            record = find_image(roots, ref)
            names = record.get("names", [])
            if _is_by_name(record, ref) and len(names) > 1:
                plan.append(("untag", record, _name_in(names, ref)))
                continue
            if len(names) > 1 and not force:
                raise errors.Conflict(
                    f"remove image {record['id'][:12]}: referenced by id but it has "
                    f"{len(names)} names ({', '.join(names)})",
                    hint="remove it by name, or use --force")
            using = users.get(record["id"], [])
            if using and not force:
                raise errors.Conflict(
                    f"remove image {record['id'][:12]}: in use by container(s) "
                    f"{', '.join(c['name'] for c in using)}",
                    hint="remove the containers first, or use --force to remove them too")
            plan.append(("delete", record, ref))
        for action, record, arg in plan:
            if action == "untag":
                report["untagged"].extend(untag_image(roots, record["id"], [arg])["untagged"])
                continue
            if record["id"] in report["deleted"]:
                continue
            for c in users.get(record["id"], []):
                remove_container(roots, c["id"])
                report["containers_removed"].append(c["id"])
            _delete(layout, record["id"], freed, report)
    report["bytes_freed"] = freed.bytes
    report["changed"] = bool(report["deleted"] or report["untagged"]
                             or report["layers_removed"] or report["blobs_removed"])
    return report


def _name_in(names: list[str], ref: str) -> str:
    from podkit_storage._image_tags import _matching_name

    return _matching_name(names, ref) or ref


def prune_images(roots: Roots, *, all_unused: bool = False) -> dict[str, Any]:
    """``prune``: remove dangling images (no names), or with ``all_unused`` every image
    no container uses. Images a container uses are always kept."""
    layout = StoreLayout(roots)
    report = _new_report()
    freed = _Freed()
    with gc_lock(layout):
        _finish_interrupted(layout, freed, report)
        users = containers_by_image(layout)
        for record in list_images(roots):
            if record["id"] in users:
                continue
            if all_unused or not record.get("names"):
                _delete(layout, record["id"], freed, report)
    report["bytes_freed"] = freed.bytes
    report["changed"] = bool(report["deleted"] or report["layers_removed"]
                             or report["blobs_removed"])
    return report
