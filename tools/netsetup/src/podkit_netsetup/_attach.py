"""Attach a container to its networks (only the modes that need no CNI so far)."""

from __future__ import annotations

from typing import Any

from podkit_common import errors

#: Modes that need no CNI plugin: the runtime gives the container its own empty
#: network namespace ("none") or the host's ("host").
LOCAL_MODES = ("none", "host")


def attach(doc: dict[str, Any], network: str) -> dict[str, Any]:
    """Add the ``network`` section to ``doc``. CNI networks come with the network issue."""
    if network not in LOCAL_MODES:
        raise errors.NotImplementedYet(
            f"pod-netsetup attach --network {network}: CNI networks are not implemented yet",
            hint="use --network none (or host)")
    section = {"mode": network, "networks": [], "netns": None, "ports": []}
    changed = doc.get("network") != section
    return {**doc, "changed": bool(doc.get("changed")) or changed, "network": section}


def detach(doc: dict[str, Any]) -> dict[str, Any]:
    """Nothing to undo for the local modes."""
    net = doc.get("network") or {}
    if net.get("mode") not in (None, *LOCAL_MODES):
        raise errors.NotImplementedYet("pod-netsetup detach of CNI networks is not implemented")
    return {**doc, "changed": bool(doc.get("changed")), "network": {**net, "attached": False}}
