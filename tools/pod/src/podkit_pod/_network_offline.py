"""`pod network connect|disconnect` on a container that is not running: podman's way.

A stopped container (exited: its exit command released its networks) has no namespace
to run plugins in. podman records the change and applies it at the next start: connect
adds the network to the container's configuration, disconnect drops it. Here that
configuration is the network section of the runtime record's document, which the next
`pod start` attaches again (``_container_admin.network_options_of``).

A container of network mode none or host has no networks to change (podman refuses
too); dropping the last network is refused, since a bridge-mode container with no
network would get the default network at its next start.

    offline_record(roots, ref)                 -> (cid, record) or None when attached/running
    connect_offline(roots, cid, record, net)   -> the new network's summary
    disconnect_offline(roots, cid, record, net)
"""

from __future__ import annotations

from podkit_common import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from podkit_common.roots import Roots


def offline_record(roots: Roots, ref: str) -> tuple[str, dict[str, Any]] | None:
    """The runtime record of ``ref`` when it is not running and has no attachment record
    (its networks live only in its configuration), else None."""
    from podkit_netsetup._attach import record_path
    from podkit_pod._containers import container_id
    from podkit_runtime._lifecycle import sync

    cid = container_id(roots, ref)
    if record_path(roots, cid).is_file():
        return None
    try:
        record, seen = sync(roots, cid)
    except errors.NotFound:
        return None
    if seen.status in ("running", "paused"):
        return None
    return cid, record


def _section(record: dict[str, Any], ref: str) -> dict[str, Any]:
    section = (record.get("doc") or {}).get("network") or {}
    if section.get("mode") != "bridge":
        raise errors.Conflict(f"container {ref} has no network namespace of its own "
                              f"(network mode {section.get('mode') or 'none'})",
                              hint="run it with --network NAME to connect networks")
    return section


def _save(roots: Roots, cid: str, change: Any) -> dict[str, Any]:
    """Apply ``change(section)`` to the record read again under the container's lock."""
    from podkit_runtime import _state

    with _state.lock(roots, cid):
        record = _state.load_record(roots, cid)
        out = change(_section(record, cid[:12]))
        _state.save_record(roots, record)
    return out


def connect_offline(roots: Roots, cid: str, record: dict[str, Any], network: str,
                    ref: str) -> dict[str, Any]:
    """Add ``network`` to a stopped container's configuration (attached at start)."""
    _section(record, ref)

    def change(section: dict[str, Any]) -> dict[str, Any]:
        nets = section.setdefault("networks", [])
        if any(n.get("name") == network for n in nets):
            raise errors.Conflict(f"container {ref} is already connected to network "
                                  f"{network}")
        used = [int(n["interface"][3:]) for n in nets
                if str(n.get("interface", "")).startswith("eth")
                and n["interface"][3:].isdigit()]
        summary = {"name": network, "interface": f"eth{max(used) + 1 if used else 0}",
                   "mac": None, "addresses": [], "gateway": None}
        nets.append(summary)
        return summary

    summary = _save(roots, cid, change)
    from podkit_common.events import network_event

    network_event(roots, "connect", network, cid, record.get("name"))
    return summary


def disconnect_offline(roots: Roots, cid: str, record: dict[str, Any], network: str,
                       ref: str) -> None:
    """Drop ``network`` from a stopped container's configuration."""
    _section(record, ref)

    def change(section: dict[str, Any]) -> None:
        nets = section.get("networks") or []
        if not any(n.get("name") == network for n in nets):
            raise errors.Conflict(f"container {ref} is not connected to network {network}")
        if len(nets) == 1:
            raise errors.Conflict(f"container {ref}: {network} is its only network",
                                  hint="connect another network first, or create the "
                                       "container again with --network none")
        section["networks"] = [n for n in nets if n.get("name") != network]

    _save(roots, cid, change)
    from podkit_common.events import network_event

    network_event(roots, "disconnect", network, cid, record.get("name"))
