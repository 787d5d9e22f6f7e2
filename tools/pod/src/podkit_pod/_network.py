"""`pod run`'s network: podman's default (the bridge network ``podkit``) and its flags,
handed to pod-netsetup's library; and the detach when the container is done."""

from __future__ import annotations

import contextlib
import os

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: podman's default is the "podman" bridge network; ours is "podkit". PODKIT_NETWORK
#: changes the default like containers.conf's ``netns`` does for podman.
DEFAULT_NETWORK = "podkit"


def default_network() -> str:
    return os.environ.get("PODKIT_NETWORK") or DEFAULT_NETWORK


def network_options(network: str | None, *, publish: list[str] | None = None,
                    publish_all: bool = False, ip: list[str] | None = None,
                    mac: str | None = None, add_host: list[str] | None = None,
                    dns: list[str] | None = None, dns_search: list[str] | None = None,
                    dns_option: list[str] | None = None) -> Any:
    """podman's network flags as podkit_netsetup.AttachOptions."""
    from podkit_netsetup import AttachOptions

    return AttachOptions(network=network or default_network(), ips=tuple(ip or ()), mac=mac,
                         publish=tuple(publish or ()), publish_all=publish_all,
                         add_hosts=tuple(add_host or ()), dns=tuple(dns or ()),
                         dns_search=tuple(dns_search or ()), dns_options=tuple(dns_option or ()))


def attach_network(doc: dict[str, Any], roots: Roots, network: Any) -> dict[str, Any]:
    from podkit_netsetup import attach

    return attach(doc, network, roots=roots)


def release_network(doc: dict[str, Any], roots: Roots) -> None:
    """Detach the container's networks (DEL, namespace removed); never raises."""
    if (doc.get("network") or {}).get("mode") in (None, "none", "host"):
        return
    from podkit_netsetup import detach

    with contextlib.suppress(errors.PodkitError, OSError):
        detach(doc, roots=roots)
