"""`pod-netsetup cleanup`: release what containers that are gone left behind.

Stale are:
- an attachment record whose attach never completed and whose attaching process is dead
  (kill -9 in the middle of ADD);
- a completed attachment whose namespace no process uses any more and whose container
  has no runc state (the container was killed, or never started and its bundle is gone)
  and is not waiting for its first start (a runtime record still ``configured``);
- a namespace file under <runroot>/netns with no record;
- a host-local lease (or a member entry) naming a container with no record.

Records are torn down exactly like `detach` (DEL in reverse from the cache).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.locks import FileLock
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


def record_is_stale(record: dict[str, Any], roots: Roots) -> str | None:
    """Why ``record`` belongs to a container that is gone, or None if it may be live."""
    from podkit_netsetup._netns import pids_in

    if not record.get("complete"):
        if atomic.pid_alive(record.get("attacher_pid")):
            return None
        return "attach did not finish and its process is gone"
    if pids_in(record["netns"]):
        return None
    if (roots.runroot / "runc" / record["container_id"]).exists():
        return None
    if _waits_for_start(roots, record["container_id"]):
        return None
    bundle = record.get("bundle")
    if bundle and Path(bundle).exists() and not record.get("netns_owned", True):
        return None
    return "no process uses its network namespace and the container is not running"


def _waits_for_start(roots: Roots, cid: str) -> bool:
    """A container created but not yet started (podman's create): its runtime record
    says ``configured`` (podkit_runtime._configured); no process or runc state yet."""
    try:
        record = atomic.read_json(roots.root / "runtime" / "containers" / cid / "record.json")
    except (OSError, errors.PodkitError):
        return False
    return isinstance(record, dict) and bool(record.get("configured"))


def cleanup(roots: Roots, config_dir: str | None = None) -> dict[str, Any]:
    from podkit_netsetup._attach import attachments_dir
    from podkit_netsetup._cni import CniRuntime
    from podkit_netsetup._cni_attach import _teardown
    from podkit_netsetup._members import read_members, remove_member
    from podkit_netsetup._netns import delete_netns
    from podkit_netsetup._networks import NetworkStore, lease_dir

    cni = CniRuntime()
    released: list[dict[str, Any]] = []
    warnings: list[str] = []
    live: set[str] = set()
    folder = attachments_dir(roots)
    for rpath in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = atomic.read_json(rpath)
        except (OSError, errors.PodkitError):
            continue
        why = record_is_stale(record, roots)
        if why is None:
            live.add(record["container_id"])
            continue
        warnings += _teardown(record, rpath, cni)
        released.append({"container_id": record["container_id"], "reason": why,
                          "networks": [e["name"] for e in record.get("networks") or []]})
    netns_dir = roots.runroot / "netns"
    for ns in sorted(netns_dir.glob("netns-*")) if netns_dir.is_dir() else []:
        if ns.name.removeprefix("netns-") not in live:
            with contextlib.suppress(errors.PodkitError):
                delete_netns(ns)
                released.append({"netns": str(ns), "reason": "no attachment record"})
    store = NetworkStore(roots, config_dir)
    for name in store.names():
        with contextlib.suppress(errors.PodkitError):
            for cid in list(read_members(store, name)):
                if cid not in live:
                    remove_member(store, name, cid)
                    released.append({"container_id": cid, "network": name,
                                     "reason": "member without attachment"})
            leases = lease_dir(store.load(name))
            if leases is not None:
                released += _release_leases(leases, live)
    from podkit_netsetup._bridge_repair import conflists_of, release_half_made

    released += release_half_made(conflists_of(store), store.state)
    return {"changed": bool(released), "released": released, "warnings": warnings}


def stale_leases(lease_dir: Path, live: set[str]) -> Iterator[tuple[Path, str]]:
    """(lease file, owner) of each host-local lease in ``lease_dir`` whose container is
    not in ``live``, in name order."""
    if not lease_dir.is_dir():
        return
    for lease in sorted(lease_dir.iterdir()):
        if lease.name == "lock" or lease.name.startswith("last_reserved_ip"):
            continue
        try:
            owner = lease.read_text().split()[0]
        except (OSError, IndexError):
            continue
        if owner not in live:
            yield lease, owner


def _release_leases(lease_dir: Path, live: set[str]) -> list[dict[str, Any]]:
    """Remove host-local lease files of containers that are gone (under its own lock)."""
    out: list[dict[str, Any]] = []
    if not lease_dir.is_dir():
        return out
    with FileLock(lease_dir / "lock", timeout=60):
        for lease, owner in stale_leases(lease_dir, live):
            lease.unlink(missing_ok=True)
            out.append({"lease": lease.name, "container_id": owner,
                        "reason": "lease of a container that is gone"})
    return out
