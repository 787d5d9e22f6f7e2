"""Networks as CNI conflists (cniVersion 1.0.0) in podkit's own config directory.

    <config dir>/<name>.conflist          one network (default dir: <root>/networks,
                                           or --network-config-dir / PODKIT_NETWORK_CONFIG_DIR)
    <config dir>/.state/<name>.lock       per-network lock (members, rm)
    <config dir>/.state/<name>.members.json  containers attached (see _members)

A conflist carries podkit's own description of the network under the top-level key
``podkit`` (plugins never see top-level keys): what `network inspect` reports and what
an ensure-style `network create` compares against.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.hashing import sha256_hex
from podkit_common.names import valid_name
from podkit_common.records import field, record
from podkit_common.roots import Roots
from podkit_netsetup import _subnets

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

CNI_VERSION = "1.0.0"
DEFAULT_NETWORK = "podkit"
DRIVERS = ("bridge", "macvlan", "ipvlan")
FORBIDDEN_BRIDGES = ("podman0", "cni-podman0")
#: Names that are modes, not networks.
RESERVED_NAMES = ("none", "host", "bridge", "default", "private", "slirp4netns")


def config_dir(roots: Roots, override: str | os.PathLike[str] | None = None) -> Path:
    """--network-config-dir, then PODKIT_NETWORK_CONFIG_DIR, then <root>/networks."""
    chosen = override or os.environ.get("PODKIT_NETWORK_CONFIG_DIR")
    return Path(os.path.abspath(chosen)) if chosen else roots.root / "networks"


@record(frozen=True)
class NetworkSpec:
    """What `network create` asks for; None means "choose for me"."""

    name: str
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    internal: bool = False
    disable_dns: bool = False
    driver: str = "bridge"
    options: dict[str, str] = field(default_factory=dict)


def parse_options(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    from podkit_common.keyvalues import key_values

    return key_values(items, "--opt", need_value=True)


def validate_name(name: str) -> None:
    if not valid_name(name) or len(name) > 200:
        raise errors.UsageError(f"network name {name!r} is not valid",
                                hint="letters, digits, '_', '.', '-'; first a letter or digit")
    if name in RESERVED_NAMES:
        raise errors.UsageError(f"network name {name!r} is reserved for a network mode")


def _ranges(spec: NetworkSpec, subnet: _subnets.Net, gateway: str) -> list[dict[str, str]]:
    rng: dict[str, str] = {"subnet": str(subnet), "gateway": gateway}
    if spec.ip_range:
        r = ipaddress.ip_network(spec.ip_range, strict=False)
        hosts = list(r.hosts()) if r.num_addresses <= 65536 else [r[1], r[-2]]
        rng["rangeStart"], rng["rangeEnd"] = str(hosts[0]), str(hosts[-1])
    return [rng]


def build_conflist(spec: NetworkSpec, subnet: _subnets.Net, gateway: str, iface: str,
                   data_dir: Path, created: str) -> dict[str, Any]:
    """The conflist for ``spec`` (pure): podman's default shape, cniVersion 1.0.0.

    An internal network keeps the gateway address on the bridge (the host reaches the
    containers, so published ports on 127.0.0.1 work) but gives the containers no
    default route and no masquerading.
    """
    ipam: dict[str, Any] = {"type": "host-local", "dataDir": str(data_dir),
                            "ranges": [_ranges(spec, subnet, gateway)],
                            "routes": [] if spec.internal else [{"dst": "0.0.0.0/0"}]}
    mtu = spec.options.get("mtu")
    plugins: list[dict[str, Any]]
    if spec.driver == "bridge":
        bridge: dict[str, Any] = {"type": "bridge", "bridge": iface, "isGateway": True,
                                  "ipMasq": not spec.internal, "hairpinMode": True,
                                  "capabilities": {"ips": True}, "ipam": ipam}
        if mtu:
            bridge["mtu"] = int(mtu)
        plugins = [bridge,
                   {"type": "portmap", "capabilities": {"portMappings": True}},
                   {"type": "firewall", "backend": "iptables"},
                   {"type": "tuning", "capabilities": {"mac": True}}]
    else:
        link: dict[str, Any] = {"type": spec.driver, "master": iface,
                                "capabilities": {"ips": True}, "ipam": ipam}
        if mtu:
            link["mtu"] = int(mtu)
        if spec.options.get("mode"):
            link["mode"] = spec.options["mode"]
        plugins = [link, {"type": "tuning", "capabilities": {"mac": True}}]
    meta = {"driver": spec.driver, "network_interface": iface, "subnet": str(subnet),
            "gateway": gateway, "ip_range": spec.ip_range, "internal": spec.internal,
            "dns_enabled": not spec.disable_dns, "options": dict(spec.options),
            "created": created}
    return {"cniVersion": CNI_VERSION, "name": spec.name, "plugins": plugins, "podkit": meta}


def conflicts_with(spec: NetworkSpec, existing: dict[str, Any]) -> list[str]:
    """What ``spec`` asks for that the existing network does not have (pure)."""
    meta = existing.get("podkit") or {}
    diffs = []
    wanted: dict[str, Any] = {"driver": spec.driver, "internal": spec.internal,
                              "dns_enabled": not spec.disable_dns,
                              "ip_range": spec.ip_range}
    if spec.subnet:
        wanted["subnet"] = str(ipaddress.ip_network(spec.subnet, strict=False))
    if spec.gateway:
        wanted["gateway"] = spec.gateway
    for key, value in wanted.items():
        if meta.get(key) != value:
            diffs.append(f"{key}: {meta.get(key)!r} != {value!r}")
    for key, value in spec.options.items():
        if (meta.get("options") or {}).get(key) != value:
            diffs.append(f"option {key}: {(meta.get('options') or {}).get(key)!r} != {value!r}")
    return diffs


def network_report(conflist: dict[str, Any], path: Path, members: int = 0) -> dict[str, Any]:
    """What `network ls`/`inspect` print for one network (podman's field names)."""
    meta = conflist.get("podkit") or {}
    return {"name": conflist["name"],
            "id": sha256_hex(conflist["name"].encode()),
            "driver": meta.get("driver", "bridge"),
            "network_interface": meta.get("network_interface"),
            "created": meta.get("created"),
            "subnets": [{"subnet": meta.get("subnet"), "gateway": meta.get("gateway")}],
            "ip_range": meta.get("ip_range"),
            "internal": bool(meta.get("internal")),
            "dns_enabled": bool(meta.get("dns_enabled", True)),
            "options": meta.get("options") or {},
            "config_path": str(path),
            "containers": members}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _host_default_interface() -> str:
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) > 2 and f[1] == "00000000":
            return f[0]
    raise errors.UsageError("network create: no default route to pick a parent interface",
                            hint="give one with --opt parent=IFACE")


class NetworkStore:
    """The conflists of one config directory."""

    def __init__(self, roots: Roots, directory: str | os.PathLike[str] | None = None) -> None:
        self.roots = roots
        self.dir = config_dir(roots, directory)
        self.state = self.dir / ".state"
        self.data_dir = roots.root / "netsetup" / "ipam"

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.conflist"

    def lock(self, name: str, timeout: float | None = 120) -> Any:
        from podkit_common.locks import FileLock

        # The file goes at the release that finds the network gone (its remove, or a
        # late comer after it).
        return FileLock(self.state / f"{name}.lock", timeout=timeout,
                        keep_while=(self.path(name),))

    def load(self, name: str) -> dict[str, Any]:
        validate_name(name)
        try:
            return atomic.read_json(self.path(name))
        except FileNotFoundError:
            raise errors.NotFound(f"network {name!r} does not exist in {self.dir}",
                                  hint="create it with `pod-netsetup network create`") from None

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name[:-len(".conflist")] for p in self.dir.glob("*.conflist"))

    def each(self, read: Callable[[str], T]) -> list[T]:
        """``read(name)`` for every network, leaving out those removed meanwhile (a
        concurrent `network rm` between listing and reading: NotFound)."""
        out = []
        for name in self.names():
            try:
                out.append(read(name))
            except errors.NotFound:
                continue
        return out

    def members(self, name: str) -> dict[str, Any]:
        from podkit_netsetup._members import read_members

        return read_members(self, name)

    def report(self, name: str) -> dict[str, Any]:
        return network_report(self.load(name), self.path(name), len(self.members(name)))

    def create(self, spec: NetworkSpec) -> tuple[dict[str, Any], bool]:
        """Ensure the network exists as asked: (report, changed). Conflict when a network
        of that name exists with a different configuration."""
        validate_name(spec.name)
        if spec.driver not in DRIVERS:
            raise errors.UsageError(f"--driver {spec.driver!r}: one of {', '.join(DRIVERS)}")
        if "mtu" in spec.options and not spec.options["mtu"].isdigit():
            raise errors.UsageError(f"--opt mtu={spec.options['mtu']}: not a number")
        self.dir.mkdir(parents=True, exist_ok=True)
        registry = _subnets.SubnetRegistry()
        with registry.lock(), self.lock(spec.name):
            if self.exists(spec.name):
                diffs = conflicts_with(spec, self.load(spec.name))
                if diffs:
                    raise errors.Conflict(
                        f"network {spec.name!r} exists with another configuration: "
                        + "; ".join(diffs), hint="remove it first, or ask for what it has")
                return self.report(spec.name), False
            subnet, gateway = self._choose_subnet(spec, registry)
            iface = self._interface(spec)
            conflist = build_conflist(spec, subnet, gateway, iface, self.data_dir, _now())
            atomic.write_json(self.path(spec.name), conflist)
            registry.record(subnet, self.path(spec.name))
        return self.report(spec.name), True

    def _choose_subnet(self, spec: NetworkSpec,
                       registry: _subnets.SubnetRegistry) -> tuple[_subnets.Net, str]:
        used = [*registry.live(), *self._own_subnets()]
        if spec.subnet:
            try:
                subnet = ipaddress.ip_network(spec.subnet, strict=False)
            except ValueError as exc:
                raise errors.UsageError(f"--subnet {spec.subnet}: {exc}") from None
            clash = sorted({str(u) for u in (*used, *_subnets.RESERVED) if subnet.overlaps(u)})
            if clash:
                raise errors.Conflict(f"network create {spec.name}: subnet {subnet} overlaps "
                                      f"{', '.join(clash)}", hint="choose another --subnet")
        else:
            subnet = _subnets.pick_subnet(used, _subnets.host_routes())
        try:
            gateway = ipaddress.ip_address(spec.gateway) if spec.gateway else subnet[1]
        except ValueError as exc:
            raise errors.UsageError(f"--gateway {spec.gateway}: {exc}") from None
        if gateway not in subnet:
            raise errors.UsageError(f"--gateway {gateway} is not in subnet {subnet}")
        if spec.ip_range:
            try:
                rng = ipaddress.ip_network(spec.ip_range, strict=False)
            except ValueError as exc:
                raise errors.UsageError(f"--ip-range {spec.ip_range}: {exc}") from None
            if not rng.subnet_of(subnet):  # type: ignore[arg-type]
                raise errors.UsageError(f"--ip-range {rng} is not inside subnet {subnet}")
        return subnet, str(gateway)

    def _own_subnets(self) -> list[_subnets.Net]:
        out = []
        for name in self.names():
            try:
                out.append(ipaddress.ip_network(self.load(name)["podkit"]["subnet"]))
            except (errors.PodkitError, KeyError, TypeError, ValueError):
                continue
        return out

    def _interface(self, spec: NetworkSpec) -> str:
        if spec.driver != "bridge":
            return spec.options.get("parent") or _host_default_interface()
        iface = (spec.options.get("com.docker.network.bridge.name")
                 or _subnets.bridge_name(self.dir, spec.name))
        if iface in FORBIDDEN_BRIDGES or len(iface) > 15 or "/" in iface:
            raise errors.UsageError(f"bridge name {iface!r} is not allowed",
                                    hint="≤ 15 characters, never podman's podman0/cni-podman0")
        for other in self.names():
            try:
                meta = self.load(other).get("podkit") or {}
            except errors.NotFound:  # removed since names() listed it (soak 1526167211)
                continue
            if meta.get("driver") == "bridge" and meta.get("network_interface") == iface:
                raise errors.Conflict(f"bridge {iface} is already used by network {other!r}")
        return iface

    def ensure_default(self) -> None:
        """Make the default network ``podkit`` when it is missing (podman's "podman")."""
        if not self.exists(DEFAULT_NETWORK):
            self.create(NetworkSpec(DEFAULT_NETWORK))

    def remove(self, name: str, force: bool = False) -> dict[str, Any]:
        """Remove the conflist (and its bridge); refuse while containers are attached unless
        ``force``: then detach them first (DEL from their cached results)."""
        from podkit_netsetup import _members

        conflist = self.load(name)
        members = self.members(name)
        if members and not force:
            raise errors.Conflict(f"network {name!r} has {len(members)} container(s) attached",
                                  hint="detach them first, or use --force")
        for cid, member in members.items():
            _members.force_detach(self, name, cid, member)
        with self.lock(name):
            meta = conflist.get("podkit") or {}
            if meta.get("driver") == "bridge" and meta.get("network_interface"):
                from podkit_netsetup._links import delete_link

                # The bridge before the conflist: a remove killed in between must leave
                # the conflist that names it for the retry (chaos suite).
                delete_link(meta["network_interface"])
            self.path(name).unlink(missing_ok=True)
            for suffix in (".members.json",):
                (self.state / f"{name}{suffix}").unlink(missing_ok=True)
            if meta.get("subnet"):
                _subnets.SubnetRegistry().forget(ipaddress.ip_network(meta["subnet"]),
                                                 self.path(name))
            _forget_leases(conflist)
        return {"name": name, "removed": True, "containers_detached": sorted(members)}

    def prune(self) -> list[str]:
        """Remove every network without containers, except the default one."""
        removed = []
        for name in self.names():
            if name != DEFAULT_NETWORK and not self.members(name):
                try:
                    self.remove(name)
                except errors.Conflict:
                    continue
                removed.append(name)
        return removed


def lease_dir(conflist: dict[str, Any]) -> Path | None:
    """Where host-local keeps the network's leases (``<dataDir>/<name>``); None when its
    first plugin does not allocate with host-local."""
    ipam = (conflist["plugins"][0].get("ipam") or {}) if conflist.get("plugins") else {}
    if ipam.get("type") != "host-local" or not ipam.get("dataDir") or not conflist.get("name"):
        return None
    return Path(ipam["dataDir"]) / conflist["name"]


def _forget_leases(conflist: dict[str, Any]) -> None:
    """Remove a removed network's host-local directory when no lease is left in it: only
    host-local's lock and last-reserved files (a later network of the same name then
    starts at the start of its range, as a new podman network does)."""
    from podkit_common.locks import FileLock

    leases = lease_dir(conflist)
    if leases is None or not leases.is_dir():
        return
    with FileLock(leases / "lock", timeout=60) as held:   # host-local's own lock
        names = os.listdir(leases)
        if any(n != "lock" and not n.startswith("last_reserved_ip") for n in names):
            return   # a lease whose owner is still there: system check's to judge
        for n in names:
            if n != "lock":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leases / n)
        held.unlink()
        with contextlib.suppress(OSError):
            os.rmdir(leases)
