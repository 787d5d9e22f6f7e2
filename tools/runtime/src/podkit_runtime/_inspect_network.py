"""podman inspect's NetworkSettings, from the network section pod-netsetup wrote into the
container's document (libpod's getContainerNetworkInfo, in podman's shape)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


#: The network `pod run` joins when none is named: like podman with its default network,
#: a container on it alone also gets the top-level address fields.
DEFAULT_NETWORK = "podkit"

_BASIC_EMPTY: dict[str, Any] = {
    "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
}


def _basic(attachment: dict[str, Any]) -> dict[str, Any]:
    """InspectBasicNetworkConfig of one attachment: its first IPv4 and IPv6 address."""
    out = dict(_BASIC_EMPTY)
    out["Gateway"] = attachment.get("gateway") or ""
    out["MacAddress"] = attachment.get("mac") or ""
    for cidr in attachment.get("addresses") or []:
        ip, _, prefix = cidr.partition("/")
        if ":" in ip and not out["GlobalIPv6Address"]:
            out["GlobalIPv6Address"], out["GlobalIPv6PrefixLen"] = ip, int(prefix or 0)
        elif ":" not in ip and not out["IPAddress"]:
            out["IPAddress"], out["IPPrefixLen"] = ip, int(prefix or 0)
    return out


def port_bindings(ports: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}``, ranges expanded."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in ports or []:
        for proto in str(p.get("protocol") or "tcp").split(","):
            for i in range(int(p.get("range") or 1)):
                out.setdefault(f"{p['containerPort'] + i}/{proto}", []).append(
                    {"HostIp": p.get("hostIP") or "", "HostPort": str(p["hostPort"] + i)})
    return out


def network_settings(network: dict[str, Any], *, running: bool,
                     aliases: list[str]) -> dict[str, Any]:
    """NetworkSettings for a container whose document's network section is ``network``;
    a container that is not running keeps only its networks' names (podman's dummies)."""
    attachments = network.get("networks") or []
    settings: dict[str, Any] = {**_BASIC_EMPTY, "Bridge": "", "SandboxID": "",
                                "HairpinMode": False, "LinkLocalIPv6Address": "",
                                "LinkLocalIPv6PrefixLen": 0,
                                "Ports": port_bindings(network.get("ports")),
                                "SandboxKey": (network.get("netns") or "") if running else ""}
    if network.get("mode") == "bridge" and attachments:
        nets = {}
        for a in attachments:
            entry: dict[str, Any] = {"NetworkID": a["name"]}
            if running:
                entry = {**_basic(a), "NetworkID": a["name"], "DriverOpts": None,
                         "IPAMConfig": None, "Links": None}
            entry["Aliases"] = list(aliases)
            nets[a["name"]] = entry
        settings["Networks"] = nets
        if running and len(attachments) == 1 and attachments[0]["name"] == DEFAULT_NETWORK:
            settings.update(_basic(attachments[0]))
    return settings
