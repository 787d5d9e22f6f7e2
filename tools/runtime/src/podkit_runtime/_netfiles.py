"""The network stage's wishes for the container's /etc/hosts and /etc/resolv.conf.

pod-netsetup writes ``--add-host``, ``--dns``, ``--dns-search`` and ``--dns-option`` into
the document's ``network`` section (pod-runtime cannot import it); this module puts
them into the bundle's generated ``hosts`` and ``resolv.conf`` just before the container
starts. Both files are rewritten in place (same inode): they are bind-mounted, and the
network stage also keeps its own block of network members in ``hosts``.
"""

from __future__ import annotations

from pathlib import Path

from podkit_common.inplace import replace_block, rewrite_in_place

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

BEGIN = "# podkit hosts: begin (--add-host and own addresses)"
END = "# podkit hosts: end"


def hosts_block(network: dict[str, Any], hostname: str) -> list[str]:
    """``--add-host`` entries, then the container's own addresses under its hostname (pure)."""
    out = [f"{h['ip']}\t{h['name']}" for h in network.get("hosts") or []]
    for att in network.get("networks") or []:
        out += [f"{a.split('/')[0]}\t{hostname}" for a in att.get("addresses") or []]
    return out


def resolv_text(old: str, dns: dict[str, Any]) -> str:
    """``old`` with the name servers, search domains and options the user gave (pure)."""
    servers, search, options = (dns.get(k) or [] for k in ("servers", "search", "options"))
    if not (servers or search or options):
        return old
    kept = []
    for line in old.splitlines():
        word = line.split()[0] if line.split() else ""
        if (word == "nameserver" and servers) or (word in ("search", "domain") and search) \
                or (word == "options" and options):
            continue
        kept.append(line)
    kept += [f"search {' '.join(search)}"] if search else []
    kept += [f"nameserver {s}" for s in servers]
    kept += [f"options {' '.join(options)}"] if options else []
    return "\n".join(kept) + "\n"


def apply_network_files(bundle: Path, network: dict[str, Any], hostname: str) -> None:
    """Write the network section's hosts and DNS wishes into the bundle's files."""
    if network.get("mode") == "host":
        return
    rewrite_in_place(bundle / "hosts",
                     lambda text: replace_block(text, hosts_block(network, hostname), BEGIN, END))
    rewrite_in_place(bundle / "resolv.conf",
                     lambda text: resolv_text(text, network.get("dns") or {}))
