"""Who is attached to a network, and name resolution between them.

Each network keeps ``<config dir>/.state/<name>.members.json`` (container id -> name,
hostname, addresses, hosts file, attachment record), changed only under the network's
lock. Every member's /etc/hosts (the bundle's ``hosts`` file, bind-mounted into the
container) carries a block with every member's addresses and names; the block is
rewritten **in place** (same inode) as members come and go, so running containers see
the change: a rename would leave them the old file.
"""

from __future__ import annotations

from pathlib import Path

from podkit_common import atomic, errors, inplace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

    from podkit_netsetup._networks import NetworkStore

BEGIN = "# podkit network members: begin (generated, rewritten as members change)"
END = "# podkit network members: end"


def _path(store: NetworkStore, name: str) -> Path:
    return store.state / f"{name}.members.json"


def read_members(store: NetworkStore, name: str) -> dict[str, Any]:
    try:
        return atomic.read_json(_path(store, name))
    except FileNotFoundError:
        return {}
    except errors.InvalidDocument:
        return {}


def _write(store: NetworkStore, name: str, members: dict[str, Any]) -> None:
    store.state.mkdir(parents=True, exist_ok=True)
    atomic.write_json(_path(store, name), members, durable=False)


def replace_block(text: str, block_lines: list[str], begin: str = BEGIN,
                  end: str = END) -> str:
    """``text`` with this stage's block of members replaced (see podkit_common.inplace)."""
    return inplace.replace_block(text, block_lines, begin, end)


rewrite_in_place = inplace.rewrite_in_place


def hosts_lines(members: dict[str, Any]) -> list[str]:
    """One ``address<TAB>names`` line per member address (pure, sorted by container id)."""
    out = []
    for _cid, m in sorted(members.items()):
        names = [n for n in dict.fromkeys([m.get("name"), m.get("hostname")]) if n]
        for address in m.get("addresses") or []:
            out.append(f"{address.split('/')[0]}\t{' '.join(names)}")
    return out


def _sync_hosts(members: dict[str, Any], lines: list[str]) -> None:
    for m in members.values():
        hosts = m.get("hosts_file")
        if hosts:
            rewrite_in_place(hosts, lambda text: replace_block(text, lines))


def add_member(store: NetworkStore, network: str, cid: str, member: dict[str, Any],
               dns_enabled: bool) -> None:
    with store.lock(network):
        members = read_members(store, network)
        members[cid] = member
        _write(store, network, members)
        if dns_enabled:
            _sync_hosts(members, hosts_lines(members))


def remove_member(store: NetworkStore, network: str, cid: str, dns_enabled: bool = True) -> None:
    with store.lock(network):
        members = read_members(store, network)
        gone = members.pop(cid, None)
        if gone is None:
            return
        _write(store, network, members)
        if dns_enabled:
            _sync_hosts(members, hosts_lines(members))
            if gone.get("hosts_file"):
                rewrite_in_place(gone["hosts_file"], lambda text: replace_block(text, []))


def force_detach(store: NetworkStore, network: str, cid: str, member: dict[str, Any]) -> None:
    """`network rm --force`: DEL this container from ``network`` using its cached record."""
    from podkit_netsetup._attach import detach_one_network

    detach_one_network(store, member.get("record"), cid, network)
