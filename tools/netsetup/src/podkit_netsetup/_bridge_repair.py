"""Bridges a killed bridge plugin left half made: how to tell, and the repair.

Why this exists: the CNI bridge plugin (containernetworking-plugins 1.1) creates the
bridge, attaches the container's veth, and only at the end adds the gateway address
and pins the bridge's MAC to the one it read when it found the bridge. A plugin
SIGKILLed between the veth and that pinning (soak seed 1469077523) leaves a bridge
whose MAC still follows its ports. Once the veth goes (DEL of the killed attach), the
kernel gives a bridge with no ports and no pinned address the MAC
``00:00:00:00:00:00``; the next ADD reads that, attaches its veth, adds the gateway
address and then fails to pin the zero MAC: "could not set bridge's mac: invalid
argument".

The repair: after an ADD of a bridge network failed, DEL what it did; if the bridge
is now half made (:func:`half_made`: a bridge, no ports, the zero MAC), delete it and
run the ADD once more; the plugin makes a fresh bridge. A bridge being made right now
by another ADD always has a non-zero MAC (random, then its first port's), and a bridge
the plugin finished has a pinned one, so neither is ever taken for half made.

    bridge_of(conflist)            -> bridge name or None (pure)
    half_made(name)                -> bool
    half_made_bridges(conflists)   -> [(network, bridge)]
    release_half_made(conflists, lock_dir) -> [released]   (cleanup, system check --repair)
    release_after_del(conflist, lock_dir)  -> [warning]    (detach: right after the DEL)
    add_with_bridge_repair(cni, conflist, rt, lock_dir, warn) -> (result, [repair])
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path
    from typing import Any

    from podkit_netsetup._cni import CniRuntime, RuntimeConf

ZERO_MAC = "00:00:00:00:00:00"
SYS_NET = "/sys/class/net"


def bridge_of(conflist: dict[str, Any]) -> str | None:
    """The bridge a bridge-driver conflist's first plugin creates, else None (pure)."""
    plugins = conflist.get("plugins") or []
    if plugins and plugins[0].get("type") == "bridge":
        return plugins[0].get("bridge") or "cni0"
    return None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def half_made(name: str, sys_net: str = SYS_NET) -> bool:
    """True when ``name`` is a bridge with no ports and the all-zero MAC: what a bridge
    plugin killed before pinning the bridge's MAC leaves once its veth is gone."""
    base = os.path.join(sys_net, name)
    if not os.path.isdir(os.path.join(base, "bridge")):
        return False
    try:
        if os.listdir(os.path.join(base, "brif")):
            return False
    except OSError:
        return False
    return _read(os.path.join(base, "address")) == ZERO_MAC


def conflists_of(store: Any) -> Iterator[dict[str, Any]]:
    """Every conflist of a NetworkStore that loads."""
    from podkit_common import errors

    for name in store.names():
        try:
            yield store.load(name)
        except errors.PodkitError:
            continue


def half_made_bridges(conflists: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(network, bridge) of each conflist whose bridge is half made."""
    out = []
    for conflist in conflists:
        bridge = bridge_of(conflist)
        if bridge and half_made(bridge):
            out.append((conflist.get("name", ""), bridge))
    return out


def delete_half_made(name: str) -> bool:
    """Delete ``name`` if it is (still) half made; True if it was deleted."""
    if not half_made(name):
        return False
    from podkit_netsetup._links import delete_link

    return delete_link(name)


def release_half_made(conflists: Iterable[dict[str, Any]], lock_dir: Path
                      ) -> list[dict[str, Any]]:
    """Delete every half-made bridge of ``conflists`` (`pod-netsetup cleanup`, `pod
    system check --repair`); what was released, in cleanup's shape."""
    from podkit_common.locks import FileLock

    out = []
    for network, bridge in half_made_bridges(conflists):
        with FileLock(lock_dir / f"bridge-{bridge}.lock", timeout=60):
            if delete_half_made(bridge):
                out.append({"bridge": bridge, "network": network,
                            "reason": "bridge left half made by a killed bridge plugin "
                                      f"(no ports, MAC {ZERO_MAC})"})
    return out


def release_after_del(conflist: dict[str, Any], lock_dir: Path) -> list[str]:
    """After a DEL: the bridge of ``conflist`` if that DEL left it half made (its last
    port gone from a bridge whose plugin never pinned its MAC), deleted at once, so the
    state is not there for `system check` to find before the next attach; a bridge the
    user named (``com.docker.network.bridge.name``) is left to the failure path.
    The warnings (none unless the deletion failed)."""
    bridge = bridge_of(conflist)
    options = (conflist.get("podkit") or {}).get("options") or {}
    if bridge is None or "com.docker.network.bridge.name" in options or not half_made(bridge):
        return []
    from podkit_common import errors

    try:
        release_half_made([conflist], lock_dir)
    except errors.PodkitError as exc:
        return [exc.message]
    return []


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def add_with_bridge_repair(cni: CniRuntime, conflist: dict[str, Any], rt: RuntimeConf,
                           lock_dir: Path,
                           warn: Callable[[str], None] = _stderr,
                           ) -> tuple[dict[str, Any], list[str]]:
    """``cni.add`` of ``conflist``; when it fails on a half-made bridge, delete the bridge
    and ADD once more. Returns the result and the repairs made (messages, also given
    to ``warn``); raises the first failure when there was nothing to repair."""
    from podkit_common import errors

    try:
        return cni.add(conflist, rt), []
    except errors.RuntimeFailure as exc:
        bridge = bridge_of(conflist)
        # only a failure of the bridge plugin itself: a later plugin's needs its result
        # for the DEL (the firewall's rules), which the caller's undo has
        if bridge is None or f"{conflist.get('name')}/bridge (" not in exc.message \
                or not os.path.isdir(os.path.join(SYS_NET, bridge)):
            raise
        # the failed ADD left its veth on the bridge (the plugin does not undo it):
        # DEL first, as a retry needs anyway, then look at the bridge alone; no later
        # plugin ran, so there is no result to give the DEL
        cni.delete(conflist, rt, None)
        if not half_made(bridge):
            raise
        from podkit_common.locks import FileLock

        with FileLock(lock_dir / f"bridge-{bridge}.lock", timeout=60):
            # under the lock: two failed ADDs must not both delete (the second would
            # delete the bridge the first one's retry is making)
            deleted = delete_half_made(bridge)
        repairs = []
        if deleted:
            repairs.append(f"network {conflist.get('name')}: deleted bridge {bridge}, left "
                           "half made by a killed bridge plugin (no ports, MAC "
                           f"{ZERO_MAC}); retried the attach")
            warn("WARNING: " + repairs[-1])
    return cni.add(conflist, rt), repairs
