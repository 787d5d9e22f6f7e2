"""`pod network ...`'s documents in podman 4.3's shapes, over pod-netsetup's NetworkStore.

    inspect_doc(store, name)   `podman network inspect`'s object (netavark's Network:
                               name, id, driver, network_interface, created, subnets,
                               ipv6_enabled, internal, dns_enabled, labels, options,
                               ipam_options)
    ls_rows(docs)              the fields `network ls --format '{{.X}}'` sees
    matches(doc, filters)      `network ls --filter` (name, id, driver, label)

Labels are podman's `network create --label`; pod-netsetup has no notion of them, so
they live in the conflist's own ``podkit`` section under ``labels`` (plugins never read
top-level keys), written once right after the network is created.
"""

from __future__ import annotations

import re

from podkit_common import atomic, errors
from podkit_common.humanize import go_time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}"
HEADERS = {"Name": "NAME", "ID": "NETWORK ID", "Driver": "DRIVER",
           "NetworkInterface": "NETWORK INTERFACE", "Created": "CREATED",
           "Subnets": "SUBNETS", "IPv6Enabled": "IPV6 ENABLED", "Internal": "INTERNAL",
           "DNSEnabled": "DNS ENABLED", "Labels": "LABELS", "Options": "OPTIONS",
           "IPAMOptions": "IPAM OPTIONS"}
TYPE_NAME = "network.ListPrintReports"
FILTER_KEYS = ("name", "id", "driver", "label")


def store(roots: Any) -> Any:
    from podkit_netsetup import NetworkStore

    return NetworkStore(roots)


def inspect_doc(net_store: Any, name: str) -> dict[str, Any]:
    """podman's inspect object for network ``name`` (NotFound with podman's words)."""
    try:
        conflist = net_store.load(name)
    except errors.NotFound:
        raise errors.NotFound(f"unable to find network with name or ID {name}: "
                              "network not found",
                              hint="`pod network ls` lists the networks") from None
    except errors.UsageError:
        raise errors.NotFound(f"unable to find network with name or ID {name}: "
                              "network not found") from None
    report = net_store.report(name)
    meta = conflist.get("podkit") or {}
    subnets = []
    for s in report.get("subnets") or []:
        entry: dict[str, Any] = {"subnet": s.get("subnet"), "gateway": s.get("gateway")}
        if meta.get("ip_range"):
            import ipaddress

            rng = ipaddress.ip_network(meta["ip_range"], strict=False)
            entry["lease_range"] = {"start_ip": str(rng[0] if rng[0] != rng.network_address
                                                    else rng[1]),
                                    "end_ip": str(rng[-2] if rng.num_addresses > 2
                                                  else rng[-1])}
        subnets.append(entry)
    doc: dict[str, Any] = {
        "name": report["name"], "id": report["id"], "driver": report["driver"],
        "network_interface": report.get("network_interface") or "",
        "created": report.get("created") or "",
        "subnets": subnets, "ipv6_enabled": False,
        "internal": bool(report.get("internal")),
        "dns_enabled": bool(report.get("dns_enabled")),
    }
    if meta.get("labels"):
        doc["labels"] = dict(meta["labels"])
    if report.get("options"):
        doc["options"] = dict(report["options"])
    doc["ipam_options"] = {"driver": "host-local"}
    return doc


def set_labels(net_store: Any, name: str, labels: dict[str, str]) -> None:
    """Record ``labels`` in the network's conflist (see the module doc)."""
    with net_store.lock(name):
        conflist = net_store.load(name)
        conflist.setdefault("podkit", {})["labels"] = dict(labels)
        atomic.write_json(net_store.path(name), conflist)


def ls_rows(docs: list[dict[str, Any]], *, no_trunc: bool = False) -> list[dict[str, Any]]:
    rows = []
    for d in docs:
        labels = d.get("labels") or {}
        rows.append({
            "Name": d["name"], "ID": d["id"] if no_trunc else d["id"][:12],
            "Driver": d["driver"], "NetworkInterface": d["network_interface"],
            "Created": go_time(d["created"]), "Subnets": d["subnets"],
            "IPv6Enabled": d["ipv6_enabled"], "Internal": d["internal"],
            "DNSEnabled": d["dns_enabled"],
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
            "Options": d.get("options") or {}, "IPAMOptions": d["ipam_options"],
        })
    return rows


def _filter(spec: str) -> Any:
    key, eq, value = spec.partition("=")
    if key not in FILTER_KEYS or not eq:
        raise errors.UsageError(f"invalid filter {key!r}",
                                hint=f"filters: {', '.join(FILTER_KEYS)} (KEY=VALUE)")
    if key == "name":
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise errors.UsageError(f"--filter name={value}: {exc}") from None
        return lambda d: bool(pattern.search(d["name"]))
    if key == "id":
        return lambda d: d["id"].startswith(value)
    if key == "driver":
        return lambda d: d["driver"] == value
    lkey, leq, lval = value.partition("=")
    return lambda d: lkey in (d.get("labels") or {}) and (
        not leq or d["labels"][lkey] == lval)


def matches(docs: list[dict[str, Any]], filters: list[str]) -> list[dict[str, Any]]:
    """The networks passing every filter; several values of one key are alternatives,
    as in podman."""
    by_key: dict[str, list[Any]] = {}
    for spec in filters:
        by_key.setdefault(spec.partition("=")[0], []).append(_filter(spec))
    return [d for d in docs if all(any(t(d) for t in tests) for tests in by_key.values())]
