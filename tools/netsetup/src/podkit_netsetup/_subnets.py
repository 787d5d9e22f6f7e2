"""Subnet allocation for new networks, host-wide.

Pool (ours, documented in the README): 10.99.0.0/16 then 10.100.0.0/16 ... 10.109.0.0/16,
cut into /24s. It stays clear of podman's 10.88.0.0/16 default and its 10.89.x.0/24
pool, and a candidate is skipped when it overlaps any podkit network (in any config
directory on this host: they are registered under the host-wide state directory) or any
route of the host.

The pure half (:func:`pick_subnet`) takes everything in use as data; the other half
reads the host's routes and the registry under a host-wide flock, so two `network create`
calls in different roots never pick the same subnet.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.hashing import sha256_hex
from podkit_common.locks import FileLock

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Never allocated, never overlapped: podman's default network and its pool start.
RESERVED = (ipaddress.ip_network("10.88.0.0/16"), ipaddress.ip_network("10.89.0.0/16"))
POOL = tuple(ipaddress.ip_network(f"10.{b}.0.0/16") for b in range(99, 110))
POOL_PREFIX = 24
DEFAULT_STATE_DIR = "/run/podkit-net"


def state_dir() -> Path:
    """The host-wide directory for the allocation lock and the subnet registry."""
    return Path(os.environ.get("PODKIT_NET_STATE_DIR") or DEFAULT_STATE_DIR)


def candidates(pool: Iterable[Net] = POOL, prefix: int = POOL_PREFIX) -> Iterator[Net]:
    for block in pool:
        yield from block.subnets(new_prefix=prefix)


def overlaps_any(net: Net, used: Iterable[Net]) -> bool:
    return any(net.version == u.version and net.overlaps(u) for u in used)


def pick_subnet(used: Iterable[Net], routes: Iterable[Net],
                pool: Iterable[Net] = POOL, prefix: int = POOL_PREFIX) -> Net:
    """The first /``prefix`` of ``pool`` overlapping neither ``used`` nor ``routes`` (pure).

    A default route (0.0.0.0/0) is no obstacle: it overlaps everything.
    """
    taken = [*RESERVED, *used, *(r for r in routes if r.prefixlen > 0)]
    for net in candidates(pool, prefix):
        if not overlaps_any(net, taken):
            return net
    raise errors.ResourceExhausted("network create: no free subnet left in podkit's pool",
                                   hint="give one with --subnet")


def parse_proc_route(text: str) -> list[Net]:
    """IPv4 destinations from /proc/net/route (hex little-endian fields)."""
    out: list[Net] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        dest = ipaddress.IPv4Address(bytes.fromhex(f[1])[::-1])
        mask = ipaddress.IPv4Address(bytes.fromhex(f[7])[::-1])
        out.append(ipaddress.ip_network(f"{dest}/{mask}", strict=False))
    return out


def host_routes() -> list[Net]:
    """The destinations of the host's IPv4 routes (main table) and its addresses' subnets."""
    try:
        return parse_proc_route(Path("/proc/net/route").read_text())
    except OSError:
        return []


def bridge_name(config_dir: Path, name: str) -> str:
    """``pk`` + 10 hex digits of the config dir and name: unique per host, ≤ 15 chars."""
    digest = sha256_hex(f"{config_dir.resolve()}\0{name}".encode())
    return "pk" + digest[:10]


class SubnetRegistry:
    """Host-wide record of the subnets podkit networks use: one file per subnet naming the
    conflist that owns it. A record whose conflist is gone (or now names another subnet)
    is stale and ignored, so a removed config dir frees its subnets."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base or state_dir()
        self.dir = self.base / "subnets"

    def lock(self) -> FileLock:
        return FileLock(self.base / "alloc.lock", timeout=60)

    @staticmethod
    def _key(net: Net) -> str:
        return str(net).replace("/", "_").replace(":", "-")

    def live(self) -> list[Net]:
        from podkit_common.jsonio import loads

        out: list[Net] = []
        if not self.dir.is_dir():
            return out
        for entry in self.dir.iterdir():
            try:
                rec = loads(entry.read_bytes())
                owner = loads(Path(rec["conflist"]).read_bytes())
            except (OSError, errors.PodkitError, KeyError, TypeError):
                continue
            if (owner.get("podkit") or {}).get("subnet") == rec["subnet"]:
                out.append(ipaddress.ip_network(rec["subnet"]))
        return out

    def record(self, net: Net, conflist: Path) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.dir / self._key(net),
                          {"subnet": str(net), "conflist": str(conflist)}, durable=False)

    def forget(self, net: Net, conflist: Path) -> None:
        from podkit_common.jsonio import loads

        path = self.dir / self._key(net)
        try:
            if loads(path.read_bytes()).get("conflist") == str(conflist):
                path.unlink()
        except (OSError, errors.PodkitError):
            pass
