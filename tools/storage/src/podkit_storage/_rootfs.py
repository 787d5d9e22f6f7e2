"""A container's root filesystem by driver: overlay (mounted) or vfs (a plain copy),
and the mount count that lets several users share one mount.

The count lives under the runroot (``<runroot>/storage/<id>.json``), so it dies with a
reboot exactly like the mounts it counts.  Every function here runs under the
container's object lock, taken by the caller.  The count is checked against
``/proc/self/mountinfo`` on each call: a count left behind by a crash, or a mount
someone removed by hand, is corrected instead of believed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_storage._layout import StoreLayout
from podkit_storage._mount import is_mounted, mount_overlay, unmount

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

DRIVERS = ("overlay", "vfs")
#: Failures of an overlay mount that a plain copy can work around.
_FALLBACK_ON = (errors.RuntimeFailure, errors.PermissionDenied, errors.ResourceExhausted)


def read_count(layout: StoreLayout, cid: str) -> int:
    try:
        return int(atomic.read_json(layout.mount_state(cid)).get("mount_count", 0))
    except FileNotFoundError:
        return 0


def write_count(layout: StoreLayout, cid: str, count: int) -> None:
    path = layout.mount_state(cid)
    if count <= 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Runtime state: durability across a power cut is pointless (the runroot is tmpfs).
    atomic.write_json(path, {"mount_count": count}, durable=False)


def drop_count(layout: StoreLayout, cid: str) -> None:
    write_count(layout, cid, 0)


def _lower_bottom_first(container: dict[str, Any]) -> list[Path]:
    return [Path(p) for p in reversed(container["lower"])]


def to_vfs(layout: StoreLayout, container: dict[str, Any], note: str | None = None
           ) -> dict[str, Any]:
    """Build the plain-copy rootfs and return the record for it (the caller writes it).

    The copy is made in a staging dir and renamed into place: a crash leaves either no
    rootfs or a whole one, never half of one behind a record.
    """
    import shutil

    cid = container["id"]
    final = layout.vfs_rootfs(cid)
    staging = final.with_name(f"{atomic.TMP_PREFIX}rootfs.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    from podkit_storage._vfs import build_rootfs

    try:
        staging.mkdir(mode=0o755)
        build_rootfs(_lower_bottom_first(container), staging)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    record = {k: v for k, v in container.items() if k not in ("upper", "work")}
    record.update(driver="vfs", rootfs=str(final))
    if note:
        record["note"] = note
    return record


def make_rootfs(layout: StoreLayout, container: dict[str, Any], *, driver: str | None,
                mount: bool) -> dict[str, Any]:
    """Make the container's files for ``driver`` (None: overlay, falling back to vfs when
    overlay cannot mount), write its record last, mount if asked; return the container."""
    if driver is not None and driver not in DRIVERS:
        raise errors.UsageError(f"unknown storage driver {driver!r}",
                                hint="use one of: " + ", ".join(DRIVERS))
    cdir = layout.container_dir(container["id"])
    if driver == "vfs":
        container = to_vfs(layout, container)
    else:
        (cdir / "upper").mkdir()
        (cdir / "work").mkdir()
    atomic.write_json(cdir / "container.json", container)
    if not mount:
        return {**container, "mounted": container["driver"] == "vfs", "mount_count": 0}
    try:
        return mount_rootfs(layout, container)
    except _FALLBACK_ON as exc:
        if driver is not None:
            raise
        note = (f"overlay mount failed ({exc.message}); fell back to the vfs driver, a plain "
                "copy of the image's layers (slower to create, uses more disk)")
        container = to_vfs(layout, container, note)
        atomic.write_json(cdir / "container.json", container)
        import shutil

        for leftover in ("upper", "work"):
            shutil.rmtree(cdir / leftover, ignore_errors=True)
        return mount_rootfs(layout, container)


def mount_rootfs(layout: StoreLayout, c: dict[str, Any]) -> dict[str, Any]:
    """Mount (overlay) if needed and count one more user.  vfs: nothing to mount."""
    count = read_count(layout, c["id"])
    if c.get("driver", "overlay") != "vfs":
        target = Path(c["rootfs"])
        target.mkdir(parents=True, exist_ok=True)
        if not is_mounted(target):
            count = 0           # whatever the file says, nobody is using a missing mount
            mount_overlay(target, [Path(p) for p in c["lower"]], Path(c["upper"]),
                          Path(c["work"]), links_dir=layout.overlay_links)
    write_count(layout, c["id"], count + 1)
    return {**c, "mounted": True, "mount_count": count + 1}


def unmount_rootfs(layout: StoreLayout, c: dict[str, Any], *, force: bool = False
                   ) -> dict[str, Any]:
    """Count one user less; unmount at zero (or at once with ``force``)."""
    count = 0 if force else max(read_count(layout, c["id"]) - 1, 0)
    vfs = c.get("driver", "overlay") == "vfs"
    target = Path(c["rootfs"])
    mounted = vfs or (target.exists() and is_mounted(target))
    if not mounted:
        count = 0
    # The count first: a crash before the unmount leaves a mount with count 0, which
    # the next umount removes; the reverse order could leave a count on nothing.
    write_count(layout, c["id"], count)
    if not vfs and mounted and count == 0:
        unmount(target)
        mounted = False
    return {**c, "mounted": mounted, "mount_count": count}


def container_changes(c: dict[str, Any]) -> list[dict[str, str]]:
    """``podman diff`` for one container record: [{"path", "kind"}], sorted by path."""
    from podkit_storage._changes import overlay_changes, tree_changes

    lower = _lower_bottom_first(c)
    if c.get("driver", "overlay") == "vfs":
        return tree_changes(lower, Path(c["rootfs"]))
    return overlay_changes(lower, Path(c["upper"]))
