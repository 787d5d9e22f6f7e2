"""`pod system check`'s findings beyond pod-storage's and the runtime records': lock
files of containers that are gone, and network leftovers of containers that are gone.

    stale_locks(roots, repair=)   -> [problem]   kind "stale-lock"
    network_leftovers(roots)      -> [problem]   kinds "network-attachment-stale",
                                                 "netns-orphan", "network-member-orphan",
                                                 "ip-lease-orphan", "bridge-half-made"

A problem is the check document's ``{"kind", "object", "detail", "repairable",
"repaired"}``. Network leftovers are read here without changing anything, with
pod-netsetup's own rule for what is stale (``record_is_stale``); ``--repair`` releases
them with pod-netsetup's cleanup, and a problem counts as repaired once a second look
no longer finds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

_LOCK = re.compile(r"(container|runtime)-([0-9a-f]{64})\.lock")


def _problem(kind: str, obj: str, detail: str) -> dict[str, Any]:
    return {"kind": kind, "object": obj, "detail": detail, "repairable": True,
            "repaired": False}


def _ids(path: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(path)}
    except FileNotFoundError:
        return set()


def _exists(roots: Roots, cid: str) -> bool:
    return (roots.root / "containers" / cid).exists() or \
        (roots.root / "runtime" / "containers" / cid).exists()


def stale_locks(roots: Roots, *, repair: bool = False) -> list[dict[str, Any]]:
    """Lock files of containers that exist neither in the store nor in the runtime's
    records (a command killed while removing one), that nobody holds. ``repair``
    deletes each while holding it."""
    locks = roots.root / "locks"
    known = _ids(roots.root / "containers") | _ids(roots.root / "runtime" / "containers")
    out = []
    for name in sorted(_ids(locks)):
        m = _LOCK.fullmatch(name)
        if not m or m.group(2) in known:
            continue
        cid = m.group(2)
        path = locks / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: a command is at work on that id right now
            if _exists(roots, cid):
                continue  # made meanwhile
            problem = _problem("stale-lock", f"locks/{name}",
                               f"{m.group(1)} lock of container {cid[:12]}, which is gone "
                               "(left by a killed command); repair deletes the file")
            if repair:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                problem["repaired"] = True
            out.append(problem)
        finally:
            os.close(fd)
    return out


def network_leftovers(roots: Roots) -> list[dict[str, Any]]:
    """What pod-netsetup's cleanup would release, without releasing it."""
    from podkit_common import atomic
    from podkit_netsetup._attach import attachments_dir
    from podkit_netsetup._cleanup import record_is_stale

    out: list[dict[str, Any]] = []
    live: set[str] = set()
    folder = attachments_dir(roots)
    for rpath in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = atomic.read_json(rpath)
            cid = str(record["container_id"])
        except (OSError, KeyError, TypeError, errors.PodkitError):
            continue
        why = record_is_stale(record, roots)
        if why is None:
            live.add(cid)
            continue
        out.append(_problem("network-attachment-stale", f"netsetup/attachments/{rpath.name}",
                            f"network attachment of container {cid[:12]}: {why}"))
    netns_dir = roots.runroot / "netns"
    for ns in sorted(netns_dir.glob("netns-*")) if netns_dir.is_dir() else []:
        cid = ns.name.removeprefix("netns-")
        if cid not in live:
            out.append(_problem("netns-orphan", f"runroot/netns/{ns.name}",
                                f"network namespace of container {cid[:12]}, which is gone"))
    out += _members_and_leases(roots, live)
    out += _half_made_bridges(roots)
    return out


def _half_made_bridges(roots: Roots) -> list[dict[str, Any]]:
    from podkit_netsetup._bridge_repair import conflists_of, half_made_bridges
    from podkit_netsetup._networks import NetworkStore

    return [_problem("bridge-half-made", f"bridge/{bridge}",
                     f"bridge {bridge} of network {net} was left half made by a killed "
                     "bridge plugin (no ports, MAC 00:00:00:00:00:00); repair deletes it "
                     "and the next attach makes it anew")
            for net, bridge in half_made_bridges(conflists_of(NetworkStore(roots)))]


def _members_and_leases(roots: Roots, live: set[str]) -> list[dict[str, Any]]:
    from podkit_netsetup._cleanup import stale_leases
    from podkit_netsetup._members import read_members
    from podkit_netsetup._networks import NetworkStore

    out: list[dict[str, Any]] = []
    try:
        store = NetworkStore(roots)
        names = store.names()
    except errors.PodkitError:
        return out
    for name in names:
        try:
            members = list(read_members(store, name))
            conflist = store.load(name)
        except errors.PodkitError:
            continue
        out += [_problem("network-member-orphan", f"networks/{name}/{cid}",
                         f"network {name} lists container {cid[:12]}, which is gone")
                for cid in members if cid not in live]
        data_dir = (conflist["plugins"][0].get("ipam") or {}).get("dataDir")
        if not data_dir:
            continue
        out += [_problem("ip-lease-orphan", f"networks/{name}/leases/{lease.name}",
                         f"IP {lease.name} on network {name} is leased to "
                         f"container {owner[:12]}, which is gone")
                for lease, owner in stale_leases(Path(data_dir) / name, live)]
    return out
