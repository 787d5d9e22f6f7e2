"""Published ports: podman's ``-p [hostIP:][hostPort:]containerPort[/tcp|udp]`` (with
ranges) and ``-P``, turned into the CNI ``portMappings`` capability args (pure apart
from asking the kernel for free ports)."""

from __future__ import annotations

import ipaddress

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo, dash, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if dash else int(lo)
    except ValueError:
        raise errors.UsageError(f"--publish: {what} {text!r} is not a port or range") from None
    if not (1 <= a <= b <= 65535):
        raise errors.UsageError(f"--publish: {what} {text!r} is out of 1-65535")
    return a, b


def free_port(host_ip: str, protocol: str) -> int:
    """A port the kernel says is free on ``host_ip`` right now."""
    import socket  # only with -P or a published port without a host port

    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return int(s.getsockname()[1])


def parse_publish(spec: str, allocate: Callable[[str, str], int] = free_port
                  ) -> list[dict[str, Any]]:
    """One ``-p`` value -> portMappings entries, one per port (podman expands ranges)."""
    body, _, proto = spec.partition("/")
    protocols = (proto or "tcp").split(",")
    for p in protocols:
        if p not in PROTOCOLS:
            raise errors.UsageError(f"--publish {spec}: protocol {p!r} is not tcp, udp or sctp")
    host_ip = ""
    if body.startswith("["):
        end = body.find("]")
        host_ip, body = body[1:end], body[end + 2:]
    parts = body.split(":")
    if len(parts) == 3:
        host_ip, host, ctr = parts
    elif len(parts) == 2:
        host, ctr = parts
    elif len(parts) == 1:
        host, ctr = "", parts[0]
    else:
        raise errors.UsageError(f"--publish {spec}: expected [hostIP:][hostPort:]containerPort")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise errors.UsageError(f"--publish {spec}: {host_ip!r} is not an IP address") from None
    c_lo, c_hi = _port_range(ctr, "container port")
    out = []
    for p in protocols:
        if host:
            h_lo, h_hi = _port_range(host, "host port")
            if h_hi - h_lo != c_hi - c_lo:
                raise errors.UsageError(f"--publish {spec}: host and container ranges differ "
                                        "in length")
            hosts = list(range(h_lo, h_hi + 1))
        else:
            hosts = [allocate(host_ip, p) for _ in range(c_lo, c_hi + 1)]
        for h, c in zip(hosts, range(c_lo, c_hi + 1), strict=True):
            entry: dict[str, Any] = {"hostPort": h, "containerPort": c, "protocol": p}
            if host_ip:
                entry["hostIP"] = host_ip
            out.append(entry)
    return out


def exposed_ports(image_config: dict[str, Any],
                  allocate: Callable[[str, str], int] = free_port) -> list[dict[str, Any]]:
    """``-P``: every ExposedPorts entry of the image onto a free host port."""
    out = []
    for key in sorted((image_config or {}).get("ExposedPorts") or {}):
        port, _, proto = key.partition("/")
        proto = proto or "tcp"
        out.append({"hostPort": allocate("", proto), "containerPort": int(port),
                    "protocol": proto})
    return out


def port_mappings(publish: Iterable[str], publish_all: bool, image_config: dict[str, Any],
                  allocate: Callable[[str, str], int] = free_port) -> list[dict[str, Any]]:
    out = [m for spec in publish for m in parse_publish(spec, allocate)]
    if publish_all:
        taken = {(m["containerPort"], m["protocol"]) for m in out}
        out += [m for m in exposed_ports(image_config, allocate)
                if (m["containerPort"], m["protocol"]) not in taken]
    seen = set()
    for m in out:
        key = (m.get("hostIP", ""), m["hostPort"], m["protocol"])
        if key in seen:
            raise errors.Conflict(f"--publish: host port {m['hostPort']}/{m['protocol']} "
                                  "is given twice")
        seen.add(key)
    return out
