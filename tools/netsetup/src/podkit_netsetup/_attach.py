"""Attach a container to its networks, and detach it again.

Modes: ``none`` (own empty namespace, loopback only), ``host``, ``container:ID`` (the
namespace of another attached container), ``ns:PATH`` (a namespace someone else made),
and ``NAME[,NAME]`` CNI networks (``bridge``/``default`` mean the default network).

For CNI networks the attachment record ``<runroot>/netsetup/attachments/<id>.json`` is
written *before* each ADD with the exact conflist and runtime config about to be used,
then completed with the plugin's result. DEL always runs from that record, so it works
after the network's config changed or was removed, and after a kill -9 in the middle of
an ADD (`cleanup` finds such records).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.records import record
from podkit_common.roots import Roots, resolve_roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: Modes that need no CNI plugin.
LOCAL_MODES = ("none", "host")
DEFAULT_ALIASES = ("bridge", "default", "")


@record(frozen=True)
class AttachOptions:
    """podman's network options for one container."""

    network: str = "none"
    ips: tuple[str, ...] = ()
    mac: str | None = None
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    add_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    config_dir: str | None = None


def attachments_dir(roots: Roots) -> Path:
    return roots.runroot / "netsetup" / "attachments"


def record_path(roots: Roots, cid: str) -> Path:
    return attachments_dir(roots) / f"{cid}.json"


def netns_path(roots: Roots, cid: str) -> Path:
    return roots.runroot / "netns" / f"netns-{cid}"


def parse_add_host(item: str) -> dict[str, str]:
    name, sep, ip = item.partition(":")
    if not sep or not name:
        raise errors.UsageError(f"--add-host {item!r}: expected HOST:IP")
    import ipaddress  # only for these options: its import costs a cold start ms

    try:
        ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        raise errors.UsageError(f"--add-host {item!r}: {ip!r} is not an IP address") from None
    return {"name": name, "ip": ip.strip("[]")}


def _extras(opts: AttachOptions) -> dict[str, Any]:
    for server in opts.dns:
        import ipaddress

        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise errors.UsageError(f"--dns {server!r} is not an IP address") from None
    return {"hosts": [parse_add_host(h) for h in opts.add_hosts],
            "dns": {"servers": list(opts.dns), "search": list(opts.dns_search),
                    "options": list(opts.dns_options)}}


def _finish(doc: dict[str, Any], section: dict[str, Any], changed: bool) -> dict[str, Any]:
    return {**doc, "changed": bool(doc.get("changed")) or changed, "network": section}


class Attached:
    """An attachment with nothing left to do (local modes, or already attached)."""

    has_plugins = False

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def run_plugins(self, undo_on_failure: bool = True) -> None:
        """Nothing to run."""

    def complete(self) -> dict[str, Any]:
        return self.doc

    def abort(self) -> list[str]:
        return []


def attach(doc: dict[str, Any], network: str | AttachOptions = "none", *,
           roots: Roots | None = None, cni: Any = None) -> dict[str, Any]:
    """Add the ``network`` section to ``doc`` (creating the namespace and running CNI ADD
    for network modes). ``network`` is a mode string or full :class:`AttachOptions`."""
    return begin_attach(doc, network, roots=roots, cni=cni).complete()


def begin_attach(doc: dict[str, Any], network: str | AttachOptions = "none", *,
                 roots: Roots | None = None, cni: Any = None) -> Any:
    """:func:`attach` in two halves, so that CNI ADD can run while the runtime creates
    the container: the namespace and the attachment record exist when this returns.

    The result has ``doc`` (the document with the section a runtime needs to create the
    container: mode, namespace path, ports, DNS; no addresses yet), ``has_plugins``
    (False when nothing is left to run), ``run_plugins(undo_on_failure=True)``
    (the slow half; safe to run in another thread while the runtime works, once),
    ``complete() -> doc`` (in the caller's thread: runs the plugins unless done,
    registers the member, returns what :func:`attach` returns) and ``abort()`` (undo,
    never raises). A failing half undoes the whole attach before it raises.
    """
    opts = network if isinstance(network, AttachOptions) else AttachOptions(network=network)
    mode = opts.network
    base = {"networks": [], "ports": [], **_extras(opts)}
    if mode in LOCAL_MODES:
        if opts.publish or opts.publish_all or opts.ips or opts.mac:
            raise errors.UsageError(f"--network {mode}: -p/-P/--ip/--mac-address need a "
                                    "CNI network")
        section = {"mode": mode, "netns": None, **base}
        return Attached(_finish(doc, section, doc.get("network") != section))
    roots = roots or resolve_roots()
    if mode.startswith("ns:"):
        path = mode[3:]
        if not os.path.isabs(path) or not os.path.exists(path):
            raise errors.NotFound(f"--network ns:{path}: no such namespace file",
                                  hint="give the absolute path of a network namespace")
        section = {"mode": "ns", "netns": path, **base}
        return Attached(_finish(doc, section, doc.get("network") != section))
    if mode.startswith("container:"):
        other = _find_record(roots, mode.split(":", 1)[1])
        section = {"mode": "container", "netns": other["netns"], **base,
                   "container": other["container_id"],
                   "networks": (other.get("section") or {}).get("networks", [])}
        return Attached(_finish(doc, section, doc.get("network") != section))
    from podkit_netsetup._cni_attach import begin_cni

    names = [n.strip() for n in mode.split(",")]
    return begin_cni(doc, opts, names, roots, cni, base)


def _find_record(roots: Roots, ref: str) -> dict[str, Any]:
    """The attachment record of a container by id, id prefix or name."""
    folder = attachments_dir(roots)
    exact = record_path(roots, ref)
    if exact.is_file():
        return atomic.read_json(exact)
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        with contextlib.suppress(OSError, errors.PodkitError):
            rec = atomic.read_json(path)
            if rec["container_id"].startswith(ref) or rec.get("name") == ref:
                found.append(rec)
    if len(found) != 1:
        raise errors.NotFound(f"--network container:{ref}: no single attached container "
                              "matches", hint="attach that container to a network first")
    return found[0]


def detach(doc: dict[str, Any], *, roots: Roots | None = None,
           cni: Any = None) -> dict[str, Any]:
    """Undo attach: DEL in reverse order from the record, then delete the namespace."""
    net = doc.get("network") or {}
    if net.get("mode") in (None, *LOCAL_MODES, "ns", "container"):
        return {**doc, "changed": bool(doc.get("changed")),
                "network": {**net, "attached": False}}
    from podkit_netsetup._cni_attach import detach_cni

    roots = roots or resolve_roots()
    warnings, changed = detach_cni(doc["container"]["id"], roots, cni)
    section = {**net, "attached": False}
    if warnings:
        section["warnings"] = warnings
    return {**doc, "changed": bool(doc.get("changed")) or changed, "network": section}


def detach_one_network(store: Any, record: str | None, cid: str, network: str) -> None:
    from podkit_netsetup._cni_attach import detach_network_from_record

    detach_network_from_record(store, record, cid, network)


def check_networks(doc: dict[str, Any], *, roots: Roots | None = None) -> dict[str, Any]:
    """CNI CHECK of every network the container is attached to; RuntimeFailure if one fails."""
    net = doc.get("network") or {}
    if net.get("mode") in (None, *LOCAL_MODES, "ns", "container"):
        return {**doc, "changed": bool(doc.get("changed")),
                "network": {**net, "check": []}}
    from podkit_netsetup._cni_attach import check_cni

    results = check_cni(doc["container"]["id"], roots or resolve_roots())
    return {**doc, "changed": bool(doc.get("changed")), "network": {**net, "check": results}}


def network_status(doc: dict[str, Any], *, roots: Roots | None = None) -> dict[str, Any]:
    """What the attachment record says about the container (and whether its netns lives)."""
    from podkit_netsetup._cni_attach import status

    return {"changed": False, "status": status(doc["container"]["id"], roots or resolve_roots())}
