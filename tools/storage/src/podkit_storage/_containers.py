"""Container root filesystems: a writable overlay layer over the image's layers."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.roots import Roots
from podkit_storage._images import find_image
from podkit_storage._layout import StoreLayout
from podkit_storage._names import check_name, generated_name
from podkit_storage._rootfs import drop_count, make_rootfs, mount_rootfs, unmount_rootfs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def _reserve_name(layout: StoreLayout, name: str, cid: str) -> bool:
    try:
        layout.names.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.names / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise errors.from_os_error(exc, f"reserve the container name {name}") from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(cid)
    except OSError as exc:
        # An empty name file would hold the name forever with no container behind it.
        with contextlib.suppress(OSError):
            os.unlink(layout.names / name)
        raise errors.from_os_error(exc, f"reserve the container name {name}") from None
    return True


def _name_owner(layout: StoreLayout, name: str) -> str | None:
    try:
        return (layout.names / name).read_text().strip()
    except FileNotFoundError:
        return None


def create_container(doc: dict[str, Any], roots: Roots, *, name: str | None = None,
                     mount: bool = True, driver: str | None = None) -> dict[str, Any]:
    """Make a container's writable layer over the image in ``doc`` and mount it.

    ``driver``: "overlay", "vfs" (a plain copy), or None for overlay that falls back to
    vfs (with a ``note``) when the overlay mount fails."""
    from podkit_storage._image_remove import gc_lock

    # Shared with imports, exclusive with rmi/prune: the image and its layers cannot be
    # reclaimed between finding them here and the container record naming them.
    with gc_lock(StoreLayout(roots), shared=True):
        return _create_container(doc, roots, name=name, mount=mount, driver=driver)


def _create_container(doc: dict[str, Any], roots: Roots, *, name: str | None,
                      mount: bool, driver: str | None) -> dict[str, Any]:
    layout = StoreLayout(roots)
    record = find_image(roots, doc["image"]["id"])
    from podkit_storage._images import _sweep_staging

    _sweep_staging(layout, (layout.containers, layout.names))  # a killed writer's .tmp-
    _sweep_abandoned(layout)
    if name is not None:
        check_name(name)
    cid = os.urandom(32).hex()  # secrets.token_hex's source, without its imports
    # Held from the name to the record: what a create killed anywhere leaves is a
    # recordless container nobody holds the lock of, which the next create sweeps.
    with layout.container_lock(cid):
        return _create_locked(layout, record, doc, cid, name, mount, driver)


def _create_locked(layout: StoreLayout, record: dict[str, Any], doc: dict[str, Any],
                   cid: str, name: str | None, mount: bool,
                   driver: str | None) -> dict[str, Any]:
    if name is not None:
        if not _reserve_name(layout, name, cid):
            owner = _name_owner(layout, name) or "another container"
            raise errors.Conflict(
                f'the container name "{name}" is already in use by {owner}',
                hint="remove that container or choose another name")
    else:
        for _ in range(20):
            name = generated_name()
            if _reserve_name(layout, name, cid):
                break
        else:
            name = f"podkit_{cid[:12]}"
            _reserve_name(layout, name, cid)
    cdir = layout.container_dir(cid)
    try:
        cdir.mkdir(parents=True, mode=0o700)
        lower = [Path(layer["diff_path"]) for layer in reversed(record.get("layers", []))]
        if not lower:
            layout.empty_layer.mkdir(parents=True, exist_ok=True)
            lower = [layout.empty_layer]
        container = {
            "id": cid, "name": name, "image_id": record["id"],
            "image_name": (record.get("names") or [None])[-1],
            "driver": "overlay", "lower": [str(p) for p in lower],
            "upper": str(cdir / "upper"), "work": str(cdir / "work"),
            "rootfs": str(layout.mountpoint(cid)),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        container = make_rootfs(layout, container, driver=driver, mount=mount)
    except BaseException as exc:
        _remove_files(layout, cid, name)
        if isinstance(exc, OSError):
            raise errors.from_os_error(exc, f"create container {name}") from None
        raise
    return {**doc, "changed": True, "container": container}


def load_container(roots: Roots, ref: str) -> dict[str, Any]:
    """A container record by id, unique id prefix, or name."""
    layout = StoreLayout(roots)
    owner = _name_owner(layout, ref) if "/" not in ref and ref not in (".", "..") else None
    cid = owner
    if cid is None and len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
        try:
            matches = [e.name for e in os.scandir(layout.containers) if e.name.startswith(ref)
                       and e.name != "names"]
        except FileNotFoundError:
            matches = []
        if len(matches) == 1:
            cid = matches[0]
        elif len(matches) > 1:
            raise errors.Conflict(f"container id prefix {ref} is ambiguous")
    if cid is None or len(cid) != 64:
        raise errors.NotFound(f"no such container: {ref}")
    try:
        return atomic.read_json(layout.container_dir(cid) / "container.json")
    except FileNotFoundError:
        raise errors.NotFound(f"no such container: {ref}") from None


def mount_container(roots: Roots, ref: str) -> dict[str, Any]:
    """Mount the container's rootfs if it is not mounted (after a reboot, say)."""
    layout = StoreLayout(roots)
    c = load_container(roots, ref)
    with layout.container_lock(c["id"]):
        return mount_rootfs(layout, _still_there(layout, c, ref))


def unmount_container(roots: Roots, ref: str, *, remove: bool = False,
                      force: bool = False) -> dict[str, Any]:
    """Count one user of the rootfs less and unmount at zero (``force``: unmount now);
    with ``remove`` unmount whatever the count and delete the container's files."""
    layout = StoreLayout(roots)
    c = load_container(roots, ref)
    with layout.container_lock(c["id"]):
        c = _still_there(layout, c, ref)
        out = unmount_rootfs(layout, c, force=force or remove)
        if remove:
            _remove_files(layout, c["id"], c["name"])
            out["mounted"] = False
    return {**out, **({"removed": True} if remove else {})}


def _still_there(layout: StoreLayout, c: dict[str, Any], ref: str) -> dict[str, Any]:
    """The record read again under the container's lock: a concurrent ``rm`` may have
    removed the container between finding it and getting the lock (then NotFound, as if
    it had been gone from the start, never a mount over deleted dirs)."""
    try:
        return atomic.read_json(layout.container_dir(c["id"]) / "container.json")
    except FileNotFoundError:
        raise errors.NotFound(f"no such container: {ref}",
                              hint="it was removed while this command waited") from None


def remove_container(roots: Roots, ref: str) -> dict[str, Any]:
    """Unmount and delete the container's files; a removal killed half-way (the record
    gone, some of its files, name or mount point left) is finished."""
    try:
        return {"changed": True, "container": unmount_container(roots, ref, remove=True)}
    except errors.NotFound:
        layout = StoreLayout(roots)
        cid = half_removed(layout, ref)
        if cid is None or not _finish_removal(layout, cid):
            raise
        return {"changed": True, "container": {"id": cid, "mounted": False, "removed": True}}


def half_removed(layout: StoreLayout, ref: str) -> str | None:
    """The id of what a removal killed after dropping ``container.json`` left (pure
    reading): ``ref`` a name still reserved for it, or its full id; None when there is
    no such remnant (then ``ref`` is simply unknown)."""
    owner = _name_owner(layout, ref) if "/" not in ref and ref not in (".", "..") else None
    cid = owner or ref
    if len(cid) != 64 or cid.strip("0123456789abcdef"):
        return None
    if (layout.container_dir(cid) / "container.json").exists():
        return None
    if owner or layout.container_dir(cid).exists() or layout.mountpoint(cid).exists():
        return cid
    return None


def _finish_removal(layout: StoreLayout, cid: str) -> bool:
    """Remove a recordless container's files, mount point and names (True), under its
    lock; False if its record is there after all (a create finished meanwhile) or if
    nothing is left of it (a concurrent rm, whose lock we waited for, finished it: this
    rm is then the second of two, NotFound like any second rm)."""
    with layout.container_lock(cid):
        return _remove_remnant(layout, cid)


def _sweep_abandoned(layout: StoreLayout) -> None:
    """Finish what a create or an rm killed half-way left: a container directory without
    a record whose lock nobody holds (a create holds it from the name to the record, an
    rm from the record to the last file). One stat per container."""
    from podkit_common.errors import Timeout

    try:
        entries = [e.name for e in os.scandir(layout.containers) if len(e.name) == 64]
    except FileNotFoundError:
        return
    for cid in entries:
        if os.path.exists(layout.container_dir(cid) / "container.json"):
            continue
        with contextlib.suppress(Timeout), layout.container_lock(cid, timeout=0):
            _remove_remnant(layout, cid)


def _remove_remnant(layout: StoreLayout, cid: str) -> bool:
    """``_finish_removal``'s work; the caller holds the container's lock."""
    from podkit_storage._mount import is_mounted, unmount

    if (layout.container_dir(cid) / "container.json").exists():
        return False
    mp = layout.mountpoint(cid)
    names = []
    with contextlib.suppress(FileNotFoundError):
        names = [e.name for e in os.scandir(layout.names)
                 if not e.name.startswith(".") and _name_owner(layout, e.name) == cid]
    if not (names or mp.exists() or layout.container_dir(cid).exists()):
        return False   # (the lock file this wait made again goes at its release)
    if is_mounted(mp):
        unmount(mp)
    _remove_files(layout, cid, None)
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.names / name)
    return True


def _remove_files(layout: StoreLayout, cid: str, name: str | None) -> None:
    import shutil

    cdir = layout.container_dir(cid)
    # Drop the record first: a crash mid-removal leaves a recordless dir the next
    # cleanup sweeps, never a record pointing at half-deleted files.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cdir / "container.json")
    shutil.rmtree(cdir, ignore_errors=True)
    drop_count(layout, cid)
    mp = layout.mountpoint(cid)
    with contextlib.suppress(OSError):
        os.rmdir(mp)
    if name and _name_owner(layout, name) == cid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.names / name)


def list_containers(roots: Roots) -> list[dict[str, Any]]:
    """Every container record with ``mounted`` as mountinfo says now, oldest first."""
    from podkit_storage._listing import MountTable, container_records

    table = MountTable()
    out = container_records(StoreLayout(roots))
    for c in out:
        c["mounted"] = c.get("driver") == "vfs" or table.mounted(str(c.get("rootfs", "")))
    out.sort(key=lambda c: c.get("created", ""))
    return out
