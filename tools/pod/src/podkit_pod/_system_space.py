"""`pod system df|prune|reset|check`: disk use, clean-up and consistency of everything
podkit keeps under its roots (pod-storage's store, pod-runtime's records and volumes,
pod-netsetup's networks), composed in-process.

    disk_usage(roots)                 -> {"Images": [...], "Containers": [...], "Volumes": [...]}
    df_summary(usage)                 -> podman's three TYPE rows
    prune(roots, all_images=, volumes=) -> what went, and the bytes freed
    reset(roots)                      -> what went (only podkit's own entries under the roots)
    check(roots, repair=)             -> pod-storage's check + runtime reconciliation
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: What pod-runtime, pod-netsetup and pods keep under the roots, besides pod-storage's own
#: entries (podkit_storage._reset): `reset` deletes these names and nothing else.
ROOT_ENTRIES = ("runtime", "volumes", "netsetup", "networks", "overlay", "pods", "events")
RUNROOT_ENTRIES = ("runtime", "netns", "netsetup", "storage", "seccomp-cache",
                   "containers-conf-cache", "pods")


def human(n: float, precision: int = 4) -> str:
    """Go's units.HumanSizeWithPrecision (decimal): 2.142MB, 24B, 0B."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def tree_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the regular files and links under ``path`` (never following links)."""
    total = 0
    stack = [os.fspath(path)]
    while stack:
        top = stack.pop()
        try:
            entries = list(os.scandir(top))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


def disk_usage(roots: Roots) -> dict[str, list[dict[str, Any]]]:
    """Every image, container and volume with its size and whether something uses it."""
    from podkit_pod._ps import all_rows
    from podkit_runtime import list_volumes
    from podkit_storage import list_containers, list_images
    from podkit_storage._image_report import image_size
    from podkit_storage._layout import StoreLayout

    layout = StoreLayout(roots)
    stored = {c["id"]: c for c in list_containers(roots)}
    rows = all_rows(roots)
    users: dict[str, int] = {}
    for c in stored.values():
        users[c.get("image_id") or ""] = users.get(c.get("image_id") or "", 0) + 1
    images = [{"id": r["id"], "names": r.get("names") or [], "created": r.get("created"),
               "size": image_size(layout, r) + _metadata_size(roots, r),
               "containers": users.get(r["id"], 0)} for r in list_images(roots)]
    containers = []
    for row in rows:
        c = stored.get(row["Id"]) or {}
        upper = c.get("upper")
        containers.append({"id": row["Id"], "image_id": row["ImageID"],
                           "command": " ".join(row["Command"]), "state": row["State"],
                           "names": row["Names"], "created": row["Created"],
                           "volumes": len(row["Mounts"]),
                           "size": tree_size(upper) if upper else 0})
    volumes = [{"name": v["Name"], "links": len(v.get("users") or []),
                "size": tree_size(v.get("Mountpoint") or "")} for v in list_volumes(roots)]
    return {"Images": images, "Containers": containers, "Volumes": volumes}


def _metadata_size(roots: Roots, record: dict[str, Any]) -> int:
    """The manifest and config blobs: containers/storage counts an image's "big data"
    in its size (the config, and the manifest twice: under "manifest" and under
    "manifest-DIGEST"), so podman's df does."""
    total = 0
    for digest, times in ((f"sha256:{record['id']}", 1), (record.get("digest") or "", 2)):
        algo, _, hexd = digest.partition(":")
        if hexd:
            with contextlib.suppress(OSError):
                total += times * os.stat(roots.root / "blobs" / algo / hexd).st_size
    return total


def df_summary(usage: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """podman system df's rows: Type, Total, Active, Size, Reclaimable (bytes), and
    the reclaimable percentage."""
    def row(kind: str, items: list[dict[str, Any]], active: Any) -> dict[str, Any]:
        size = sum(i["size"] for i in items)
        reclaim = sum(i["size"] for i in items if not active(i))
        return {"Type": kind, "Total": len(items), "Active": sum(bool(active(i)) for i in items),
                "Size": size, "Reclaimable": reclaim,
                "ReclaimablePercent": round(100 * reclaim / size) if size else 0}

    return [row("Images", usage["Images"], lambda i: i["containers"]),
            row("Containers", usage["Containers"], lambda c: c["state"] == "running"),
            row("Local Volumes", usage["Volumes"], lambda v: v["links"])]


def prune(roots: Roots, *, all_images: bool = False, volumes: bool = False) -> dict[str, Any]:
    """podman system prune: stopped containers, unused networks, dangling (``all_images``:
    unused) images, and with ``volumes`` unused volumes."""
    from podkit_pod._container_admin import prune as prune_containers
    from podkit_pod._pods import prune as prune_pods
    from podkit_storage import prune_images

    pods = prune_pods(roots)  # podman's order: pods, containers, networks, volumes, images
    before = disk_usage(roots)
    sizes = {c["id"]: c["size"] for c in before["Containers"]}
    vol_sizes = {v["name"]: v["size"] for v in before["Volumes"]}
    containers = prune_containers(roots)
    networks = _prune_networks(roots)
    removed_volumes: list[str] = []
    if volumes:
        from podkit_runtime import prune_volumes

        removed_volumes = prune_volumes(roots)
    report = prune_images(roots, all_unused=all_images)
    freed = (sum(sizes.get(c, 0) for c in containers)
             + sum(vol_sizes.get(v, 0) for v in removed_volumes) + report["bytes_freed"])
    return {"changed": bool(pods or containers or networks or removed_volumes
                            or report["deleted"]),
            "pods": pods, "containers": containers, "networks": networks,
            "volumes": removed_volumes,
            "images": list(report["deleted"]), "bytes_freed": freed}


def _prune_networks(roots: Roots) -> list[str]:
    from podkit_netsetup import NetworkStore

    try:
        return NetworkStore(roots).prune()
    except errors.NotFound:
        return []


def reset(roots: Roots) -> dict[str, Any]:
    """Remove every container, volume and network, then the store; then delete the
    other podkit entries under the roots (only their names; a symlink is unlinked,
    never followed). Nothing else under the roots is touched."""
    from podkit_pod._containers import remove
    from podkit_pod._ps import all_rows
    from podkit_runtime import list_volumes, remove_volume
    from podkit_storage._reset import reset_store

    containers = []
    from podkit_pod._pods import remove_all_pods  # pods first: an infra goes with its pod

    containers += remove_all_pods(roots)
    for row in all_rows(roots):
        with contextlib.suppress(errors.NotFound):
            containers.append(remove(roots, row["Id"], force=True, timeout=0,
                                     remove_volumes=True))
    for vol in list_volumes(roots):
        with contextlib.suppress(errors.NotFound):
            remove_volume(roots, vol["Name"], force=True)
    networks = []
    with contextlib.suppress(errors.NotFound):
        from podkit_netsetup import NetworkStore

        store = NetworkStore(roots)
        for name in store.names():
            store.remove(name, force=True)
            networks.append(name)
    out = reset_store(roots)  # unmounts first, and deletes nothing while a mount is left
    removed = list(out["removed"])
    for base, names in ((roots.root, ROOT_ENTRIES), (roots.runroot, RUNROOT_ENTRIES)):
        for name in names:
            path = Path(base, name)
            if not os.path.lexists(path):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as exc:
                raise errors.from_os_error(exc, f"reset: remove {path}") from None
            removed.append(str(path))
    return {"changed": bool(removed or containers), "containers": containers,
            "networks": networks, "removed": removed, "unmounted": out["unmounted"]}


def check(roots: Roots, *, repair: bool = False) -> dict[str, Any]:
    """pod-storage's check, and the runtime's records reconciled with the machine and
    with the store: a runtime record whose storage container is gone is a problem
    (``repair`` removes the record); network leftovers of gone containers (stale
    attachments, netns files, network members, IP leases) and lock files of gone
    containers are problems too, released with ``repair`` (_system_check)."""
    from podkit_pod._ps import all_rows
    from podkit_runtime import remove_runtime
    from podkit_storage._check import check_store, exit_code_of

    report = check_store(roots, repair=repair)
    problems = list(report["problems"])
    stored = {r["Id"] for r in all_rows(roots) if r["State"] == "configured"}
    from podkit_storage._layout import StoreLayout
    from podkit_storage._listing import container_records

    in_store = {c["id"] for c in container_records(StoreLayout(roots))} | stored
    reconciled = 0
    for row in all_rows(roots, include_storage=False):  # every read settles orphans
        reconciled += 1
        if row["Id"] in in_store:
            continue
        problem = {"kind": "runtime-without-storage", "object": f"runtime/{row['Id']}",
                   "detail": f"container {row['Names'][0]} has a runtime record but no "
                             "root filesystem in the store", "repairable": True,
                   "repaired": False}
        if repair:
            with contextlib.suppress(errors.NotFound):
                remove_runtime(roots, row["Id"], force=True, timeout=0, remove_volumes=False)
            problem["repaired"] = True
        problems.append(problem)
    from podkit_pod._system_check import network_leftovers, stale_locks

    network = network_leftovers(roots)
    released: list[dict[str, Any]] = []
    if repair:
        with contextlib.suppress(errors.PodkitError):
            from podkit_netsetup import cleanup as net_cleanup

            doc = net_cleanup(roots=roots)
            released = list(doc.get("released") or [])
        left = {p["object"] for p in network_leftovers(roots)}
        for p in network:
            p["repaired"] = p["object"] not in left
    problems += network
    problems += stale_locks(roots, repair=repair)  # last: repairs above free some
    clean = all(p["repaired"] for p in problems)
    out = {**report, "changed": report["changed"] or any(p["repaired"] for p in problems)
           or bool(released), "clean": clean, "problems": problems,
           "containers_checked": reconciled, "network_released": released}
    out["exit_code"] = 0 if clean else max(exit_code_of({**report, "problems": problems}), 0)
    return out
