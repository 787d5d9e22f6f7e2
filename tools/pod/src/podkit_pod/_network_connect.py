"""`pod network connect|disconnect`: one more (or one less) network for a container
that is already attached to networks, through pod-netsetup's attachment record.

connect runs the network's CNI ADD chain in the container's namespace with the next
free interface name (eth1, eth2, ...), recording the entry before the ADD (so a crash
leaves something `detach` can DEL) and registering the container as a member (hosts
files, `network rm` refusing); disconnect runs DEL for that one network and forgets
the membership. A container with ``--network none|host`` has no namespace of its own
to connect, as in podman.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def _record(roots: Roots, ref: str) -> tuple[str, Path, dict[str, Any]]:
    from podkit_netsetup._attach import record_path
    from podkit_pod._containers import container_id

    cid = container_id(roots, ref)
    rpath = record_path(roots, cid)
    try:
        record = atomic.read_json(rpath)
    except FileNotFoundError:
        raise errors.Conflict(f"container {ref} has no network namespace of its own "
                              "(network mode none or host)",
                              hint="run it with --network NAME to connect networks") from None
    if not record.get("complete"):
        raise errors.Conflict(f"container {ref}: its network attach is not complete",
                              hint="wait for it to start, or run `pod-netsetup cleanup`")
    return cid, rpath, record


def _network_store(roots: Roots, network: str) -> tuple[Any, dict[str, Any]]:
    from podkit_pod._network_report import store

    net_store = store(roots)
    try:
        return net_store, net_store.load(network)
    except (errors.NotFound, errors.UsageError):
        raise errors.NotFound(f"unable to find network with name or ID {network}: "
                              "network not found") from None


def connect(roots: Roots, network: str, ref: str) -> dict[str, Any]:
    """ADD ``network`` to the attached container ``ref``; its new interface summary."""
    from podkit_netsetup._cni import CniRuntime, result_summary
    from podkit_netsetup._cni_attach import _rt, _write_record
    from podkit_netsetup._members import add_member
    from podkit_netsetup._plugin_plan import active_conflist

    net_store, conflist = _network_store(roots, network)
    from podkit_pod._network_offline import connect_offline, offline_record

    stopped = offline_record(roots, ref)  # not running: its configuration only
    if stopped is not None:
        return connect_offline(roots, *stopped, network, ref)
    cid, rpath, record = _record(roots, ref)
    entries = record.get("networks") or []
    if any(e["name"] == network for e in entries):
        raise errors.Conflict(f"container {ref} is already connected to network {network}")
    used = [int(e["ifname"][3:]) for e in entries if e.get("ifname", "").startswith("eth")
            and e["ifname"][3:].isdigit()]
    ifname = f"eth{max(used) + 1 if used else 0}"
    args = [["K8S_POD_NAME", record.get("name") or cid[:12]]]
    ran, skipped = active_conflist(conflist, {}, args)
    entry = {"name": network, "ifname": ifname, "conflist": ran, "cni_args": args,
             "capability_args": {}, "result": None, "skipped_plugins": skipped}
    cni = CniRuntime()
    record["networks"] = [*entries, entry]
    _write_record(rpath, record)  # before ADD: a crash leaves a DEL-able entry
    try:
        from podkit_netsetup._bridge_repair import add_with_bridge_repair

        entry["result"], _ = add_with_bridge_repair(cni, ran, _rt(entry, cid, record["netns"]),
                                                    net_store.state)
        meta = conflist.get("podkit") or {}
        summary = {"name": network, **result_summary(entry["result"], ifname),
                   "subnet": meta.get("subnet"), "internal": bool(meta.get("internal"))}
        bundle = record.get("bundle")
        add_member(net_store, network, cid,
                   {"name": record.get("name", ""), "hostname": record.get("hostname"),
                    "hosts_file": str(Path(bundle) / "hosts") if bundle else None,
                    "addresses": summary["addresses"], "record": str(rpath)},
                   bool(meta.get("dns_enabled", True)))
    except BaseException:
        # DEL is idempotent: undo whatever part of the chain ran
        with contextlib.suppress(errors.PodkitError, OSError):
            cni.delete(ran, _rt(entry, cid, record["netns"]), entry["result"])
        record["networks"] = entries
        _write_record(rpath, record)
        raise
    section = record.get("section") or {}
    section["networks"] = [*(section.get("networks") or []), summary]
    record["section"] = section
    _write_record(rpath, record)
    from podkit_common.events import network_event

    network_event(roots, "connect", network, cid, record.get("name"))
    return summary


def disconnect(roots: Roots, network: str, ref: str) -> None:
    """DEL ``network`` from the container ``ref`` (Conflict if it is not connected)."""
    from podkit_netsetup._attach import detach_one_network
    from podkit_netsetup._cni_attach import _write_record

    net_store, _ = _network_store(roots, network)
    from podkit_pod._network_offline import disconnect_offline, offline_record

    stopped = offline_record(roots, ref)  # not running: its configuration only
    if stopped is not None:
        disconnect_offline(roots, *stopped, network, ref)
        return
    cid, rpath, record = _record(roots, ref)
    if not any(e["name"] == network for e in record.get("networks") or []):
        raise errors.Conflict(f"container {ref} is not connected to network {network}")
    detach_one_network(net_store, str(rpath), cid, network)
    record = atomic.read_json(rpath)
    section = record.get("section") or {}
    section["networks"] = [n for n in section.get("networks") or [] if n.get("name") != network]
    record["section"] = section
    _write_record(rpath, record)
