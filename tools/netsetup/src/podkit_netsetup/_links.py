"""Host links podkit owns (a network's bridge), through pyroute2.

pyroute2 costs ~250 ms to import here, so only `network rm`/`prune` reach this module;
attach and detach never need it (the plugins make and remove the veths).
"""

from __future__ import annotations

from pathlib import Path

from podkit_common import errors


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> bool:
    """Delete the host link ``name``; False if there was none."""
    if not link_exists(name):
        return False
    from pyroute2.iproute.linux import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        try:
            idx = ipr.link_lookup(ifname=name)
            if not idx:
                return False
            ipr.link("del", index=idx[0])
        except NetlinkError as exc:
            if exc.code == 19:  # ENODEV: gone meanwhile
                return False
            raise errors.RuntimeFailure(f"delete link {name}: {exc}") from None
    return True
