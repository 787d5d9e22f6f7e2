"""CNI attach/detach of one container: namespace, ADD chain per network, record, members."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.roots import Roots
from podkit_netsetup._attach import (
    DEFAULT_ALIASES,
    AttachOptions,
    netns_path,
    record_path,
)
from podkit_netsetup._cni import CniRuntime, RuntimeConf, result_summary
from podkit_netsetup._networks import DEFAULT_NETWORK, NetworkStore, lease_dir, validate_name
from podkit_netsetup._plugin_plan import active_conflist

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: Plugin messages that mean "that address is taken" (host-local's wording).
IP_TAKEN = ("not available", "already allocated", "has been allocated")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, record, durable=False)


def _rt(entry: dict[str, Any], cid: str, netns: str) -> RuntimeConf:
    return RuntimeConf(container_id=cid, netns=netns, ifname=entry["ifname"],
                       args=tuple((k, v) for k, v in entry.get("cni_args", [])),
                       capability_args=entry.get("capability_args") or {})


def _leased(conflist: dict[str, Any], ip: str) -> bool:
    ipam = (conflist["plugins"][0].get("ipam") or {})
    data_dir = ipam.get("dataDir")
    return bool(data_dir) and (Path(data_dir) / conflist["name"] / ip).exists()


def _assign_ips(opts: AttachOptions, conflists: list[dict[str, Any]]) -> list[list[str]]:
    """Each static --ip goes to the network whose subnet holds it; Conflict otherwise."""
    per = [[] for _ in conflists]  # type: list[list[str]]
    for ip_text in opts.ips:
        try:
            ip = ipaddress.ip_address(ip_text)
        except ValueError:
            raise errors.UsageError(f"--ip {ip_text!r} is not an IP address") from None
        for i, conf in enumerate(conflists):
            meta = conf.get("podkit") or {}
            subnet = ipaddress.ip_network(meta.get("subnet", "0.0.0.0/32"))
            if ip in subnet:
                if ip in (subnet.network_address, subnet.broadcast_address) or \
                        str(ip) == meta.get("gateway"):
                    raise errors.Conflict(f"--ip {ip}: reserved address of network "
                                          f"{conf['name']} ({subnet})")
                if _leased(conf, str(ip)):
                    raise errors.Conflict(f"--ip {ip}: already in use on network "
                                          f"{conf['name']}", hint="choose another address")
                per[i].append(f"{ip}/{subnet.prefixlen}")
                break
        else:
            nets = ", ".join(f"{c['name']} {(c.get('podkit') or {}).get('subnet')}"
                             for c in conflists)
            raise errors.Conflict(f"--ip {ip} is outside the subnet of every network ({nets})",
                                  hint="choose an address inside the network's subnet")
    return per


def begin_cni(doc: dict[str, Any], opts: AttachOptions, names: list[str], roots: Roots,
              cni: CniRuntime | None, base: dict[str, Any]) -> Any:
    """Check the request, write the record and create the namespace: the first half of
    an attach. Returns a :class:`PendingCni` (or a finished attachment when the
    container is already attached exactly so)."""
    from podkit_netsetup._attach import Attached
    from podkit_netsetup._ports import port_mappings

    cni = cni or CniRuntime()
    container = doc["container"]
    cid = container["id"]
    store = NetworkStore(roots, opts.config_dir)
    names = [DEFAULT_NETWORK if n in DEFAULT_ALIASES else n for n in names]
    if len(set(names)) != len(names):
        raise errors.UsageError(f"--network {','.join(names)}: a network is named twice")
    for n in names:
        validate_name(n)
    if DEFAULT_NETWORK in names:
        store.ensure_default()
    conflists = [store.load(n) for n in names]
    rpath = record_path(roots, cid)
    if rpath.is_file():
        from podkit_netsetup._cleanup import record_is_stale

        old = atomic.read_json(rpath)
        from podkit_netsetup._netns import mounted

        if old.get("complete") and not mounted(old["netns"]):
            # a detach killed between unmounting the namespace and removing the record:
            # runc would fail to join the dead namespace ("can't get final child's PID
            # from pipe: EOF"); finish that detach, then attach anew. The dead file goes
            # first: plugins DEL a missing namespace (leases too), not a file that is none
            from podkit_netsetup._netns import delete_netns

            delete_netns(old["netns"])
            _teardown(old, rpath, cni)
        elif old.get("complete") and [n["name"] for n in old["networks"]] == names:
            return Attached({**doc, "changed": bool(doc.get("changed")),
                             "network": old["section"]})
        elif not old.get("complete") and record_is_stale(old, roots):
            _teardown(old, rpath, cni)  # a crashed attach of this container: undo it first
    if rpath.is_file():
        old = atomic.read_json(rpath)
        raise errors.Conflict(f"container {cid[:12]} is already attached to "
                              f"{', '.join(n['name'] for n in old['networks']) or 'a network'}",
                              hint="detach it first (pod-netsetup detach)")
    if opts.mac and len(names) > 1:
        raise errors.UsageError("--mac-address needs exactly one network")
    ips = _assign_ips(opts, conflists)
    image_cfg = ((doc.get("image") or {}).get("config") or {}).get("config") or {}
    ports = port_mappings(opts.publish, opts.publish_all, image_cfg)
    bundle = (doc.get("bundle") or {}).get("path")
    hostname = (doc.get("bundle") or {}).get("hostname") or cid[:12]
    ns = netns_path(roots, cid)
    record: dict[str, Any] = {
        "container_id": cid, "name": container.get("name", ""), "hostname": hostname,
        "bundle": bundle, "netns": str(ns), "netns_owned": True, "config_dir": str(store.dir),
        "attacher_pid": os.getpid(), "complete": False, "networks": [], "section": None}
    _write_record(rpath, record)
    from podkit_netsetup._netns import create_netns

    try:
        create_netns(ns)
    except BaseException:
        with contextlib.suppress(Exception):
            _teardown(record, rpath, cni)
        raise
    early = {**base, "mode": "bridge", "netns": str(ns), "networks": [], "ports": ports}
    return PendingCni({**doc, "network": early}, doc, opts, store, conflists, ips, record,
                      rpath, cni)


class PendingCni:
    """An attach whose namespace exists but whose plugins have not run yet.

    ``doc`` already holds the section a runtime needs to create the container (mode,
    namespace path, ports, DNS wishes); :meth:`run_plugins` (the slow half: one process
    per plugin, most of them running iptables) may run in another thread meanwhile;
    :meth:`complete` finishes in the caller's thread (members' hosts files, the final
    section). Any failure undoes everything: DEL of what ran, lease, namespace, record.
    """

    has_plugins = True

    def __init__(self, early: dict[str, Any], doc: dict[str, Any], opts: AttachOptions,
                 store: NetworkStore, conflists: list[dict[str, Any]], ips: list[list[str]],
                 record: dict[str, Any], rpath: Path, cni: CniRuntime) -> None:
        self.doc = early
        self._input = doc
        self._opts = opts
        self._store = store
        self._conflists = conflists
        self._ips = ips
        self._record = record
        self._rpath = rpath
        self._cni = cni
        self._plugins_ran = False
        self._done = False

    def run_plugins(self, undo_on_failure: bool = True) -> None:
        """CNI ADD through each network's chain, the record written before each ADD.

        On failure the attach is undone first, unless ``undo_on_failure`` is False: a
        runtime may be creating a container in the namespace at that moment, and must
        not see it vanish; the caller then calls :meth:`abort` once that is over."""
        if self._plugins_ran:
            return
        record, cni, opts = self._record, self._cni, self._opts
        container = self._input["container"]
        cid = container["id"]
        ports = self.doc["network"]["ports"]
        try:
            for i, conflist in enumerate(self._conflists):
                caps: dict[str, Any] = {}
                if i == 0 and ports:
                    caps["portMappings"] = ports
                if self._ips[i]:
                    caps["ips"] = self._ips[i]
                if opts.mac:
                    caps["mac"] = opts.mac
                args = [["K8S_POD_NAME", container.get("name") or cid[:12]]]
                if opts.mac:
                    args.append(["MAC", opts.mac])
                ran, skipped = active_conflist(conflist, caps, args)  # DEL runs what ADD ran
                entry = {"name": conflist["name"], "ifname": f"eth{i}", "conflist": ran,
                         "cni_args": args, "capability_args": caps, "result": None,
                         "skipped_plugins": skipped}
                record["networks"].append(entry)
                _write_record(self._rpath, record)  # before ADD: DEL possible after a crash
                try:
                    from podkit_netsetup._bridge_repair import add_with_bridge_repair

                    entry["result"], repairs = add_with_bridge_repair(
                        cni, ran, _rt(entry, cid, record["netns"]), self._store.state)
                    if repairs:
                        entry["repairs"] = repairs
                except errors.RuntimeFailure as exc:
                    if self._ips[i] and any(t in exc.message for t in IP_TAKEN):
                        raise errors.Conflict(f"--ip {', '.join(self._ips[i])}: {exc.message}",
                                              hint="choose another address") from None
                    raise
                _write_record(self._rpath, record)
        except BaseException:
            if undo_on_failure:
                self.abort()
            raise
        self._plugins_ran = True

    def complete(self) -> dict[str, Any]:
        """Run the plugins unless done; register the members; the final document."""
        from podkit_netsetup._members import add_member

        self.run_plugins()
        record, store = self._record, self._store
        cid = record["container_id"]
        bundle, hostname = record["bundle"], record["hostname"]
        try:
            networks = []
            for entry, conflist in zip(record["networks"], self._conflists, strict=True):
                meta = conflist.get("podkit") or {}
                summary = {"name": entry["name"],
                           **result_summary(entry["result"], entry["ifname"]),
                           "subnet": meta.get("subnet"), "internal": bool(meta.get("internal"))}
                networks.append(summary)
                hosts_file = str(Path(bundle) / "hosts") if bundle else None
                add_member(store, entry["name"], cid,
                           {"name": record["name"], "hostname": hostname,
                            "hosts_file": hosts_file, "addresses": summary["addresses"],
                            "record": str(self._rpath)},
                           bool(meta.get("dns_enabled", True)))
            section = {**self.doc["network"], "networks": networks}
            repairs = [r for e in record["networks"] for r in e.get("repairs") or []]
            if repairs:
                section["warnings"] = repairs
            record["section"] = section
            record["complete"] = True
            _write_record(self._rpath, record)
        except BaseException:
            self.abort()
            raise
        self._done = True
        from podkit_common.events import network_event

        for entry in record["networks"]:
            network_event(store.roots, "connect", entry["name"], cid, record.get("name"))
        return {**self._input, "changed": True, "network": section}

    def abort(self) -> list[str]:
        """Undo whatever of the attach was done (never raises); the warnings."""
        if self._done or not self._rpath.is_file():
            return []
        try:
            return _teardown(self._record, self._rpath, self._cni)
        except Exception as exc:  # an undo reports, it does not fail
            return [str(exc)]


def _lease_result(conflist: dict[str, Any], cid: str) -> dict[str, Any] | None:
    """A stand-in prevResult from host-local's lease files, for an ADD killed before its
    result was recorded (chaos suite): without one the firewall plugin's DEL cannot name
    the address and its FORWARD rules stay for good."""
    leases = lease_dir(conflist)
    if leases is None:
        return None
    ipam = conflist["plugins"][0]["ipam"]
    ranges = [r for rs in ipam.get("ranges") or [] for r in rs if r.get("subnet")]
    ips = []
    with contextlib.suppress(OSError):
        for lease in leases.iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if lease.read_text().split()[0] != cid:
                    continue
                addr = ipaddress.ip_address(lease.name)
                for r in ranges:
                    net = ipaddress.ip_network(r["subnet"])
                    if addr in net:
                        ips.append({"address": f"{addr}/{net.prefixlen}",
                                    **({"gateway": r["gateway"]} if r.get("gateway") else {})})
    return {"cniVersion": conflist.get("cniVersion", "1.0.0"), "ips": ips} if ips else None


def _teardown(record: dict[str, Any], rpath: Path, cni: CniRuntime) -> list[str]:
    """DEL every network of the record (reverse order), drop memberships, remove the
    namespace and the record. Never stops early; returns what failed."""
    from podkit_netsetup._members import remove_member
    from podkit_netsetup._netns import delete_netns

    warnings: list[str] = []
    cid = record["container_id"]
    store = NetworkStore(_roots_of(rpath), record.get("config_dir"))
    for entry in reversed(record.get("networks") or []):
        warnings += cni.delete(entry["conflist"], _rt(entry, cid, record["netns"]),
                               entry.get("result") or _lease_result(entry["conflist"], cid))
        from podkit_netsetup._bridge_repair import release_after_del

        warnings += release_after_del(entry["conflist"], store.state)
        dns = bool((entry["conflist"].get("podkit") or {}).get("dns_enabled", True))
        try:
            remove_member(store, entry["name"], cid, dns)
        except errors.PodkitError as exc:
            warnings.append(exc.message)
    if record.get("netns_owned"):
        try:
            delete_netns(record["netns"])
        except errors.PodkitError as exc:
            warnings.append(exc.message)
    rpath.unlink(missing_ok=True)
    return warnings


def _roots_of(rpath: Path) -> Roots:
    # <runroot>/netsetup/attachments/<id>.json; the root only matters for the default
    # config dir, and records always name their config dir.
    runroot = rpath.parents[2]
    return Roots(runroot, runroot)


def detach_cni(cid: str, roots: Roots, cni: CniRuntime | None) -> tuple[list[str], bool]:
    rpath = record_path(roots, cid)
    try:
        record = atomic.read_json(rpath)
    except FileNotFoundError:
        return [], False
    warnings = _teardown(record, rpath, cni or CniRuntime())
    from podkit_common.events import network_event

    for entry in reversed(record.get("networks") or []):
        network_event(roots, "disconnect", entry["name"], cid, record.get("name"))
    return warnings, True


def detach_network_from_record(store: NetworkStore, record_file: str | None, cid: str,
                               network: str, cni: CniRuntime | None = None) -> None:
    """DEL one network of a container (for `network rm --force`); the record keeps the
    others."""
    from podkit_netsetup._members import remove_member

    cni = cni or CniRuntime()
    if record_file:
        rpath = Path(record_file)
        with contextlib.suppress(FileNotFoundError):
            record = atomic.read_json(rpath)
            keep = []
            for entry in record.get("networks") or []:
                if entry["name"] == network:
                    cni.delete(entry["conflist"], _rt(entry, cid, record["netns"]),
                               entry.get("result"))
                else:
                    keep.append(entry)
            record["networks"] = keep
            _write_record(rpath, record)
    with contextlib.suppress(errors.PodkitError):
        remove_member(store, network, cid)
    from podkit_common.events import network_event

    network_event(store.roots, "disconnect", network, cid)


def check_cni(cid: str, roots: Roots, cni: CniRuntime | None = None) -> list[dict[str, Any]]:
    """CHECK every network of the container; raise RuntimeFailure on the first problem."""
    cni = cni or CniRuntime()
    try:
        record = atomic.read_json(record_path(roots, cid))
    except FileNotFoundError:
        raise errors.NotFound(f"container {cid[:12]} is not attached to any CNI network",
                              hint="pod-netsetup attach first") from None
    if not os.path.exists(record["netns"]):
        raise errors.RuntimeFailure(f"network namespace {record['netns']} is gone")
    out = []
    for entry in record["networks"]:
        cni.check(entry["conflist"], _rt(entry, cid, record["netns"]), entry["result"])
        out.append({"name": entry["name"], "interface": entry["ifname"], "ok": True})
    return out


def status(cid: str, roots: Roots) -> dict[str, Any]:
    from podkit_netsetup._netns import mounted, pids_in

    try:
        record = atomic.read_json(record_path(roots, cid))
    except FileNotFoundError:
        return {"container_id": cid, "attached": False, "networks": []}
    return {"container_id": cid, "attached": True, "complete": record.get("complete", False),
            "netns": record["netns"], "netns_mounted": mounted(record["netns"]),
            "processes": len(pids_in(record["netns"])),
            "networks": (record.get("section") or {}).get("networks")
            or [{"name": e["name"], "interface": e["ifname"]} for e in record["networks"]]}
