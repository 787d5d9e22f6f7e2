"""Before `pod start` inits a configured container: its network namespace must be alive.

Why: a configured container (podman's create: no conmon, no runc yet) got its network
at create; its bundle names the namespace file. A detach SIGKILLed between unmounting
that namespace and removing its record (soak seed 1052147947, around a killed `pod
start`) leaves the file with no namespace behind it, and ``runc create`` then fails for
good with "can't get final child's PID from pipe: EOF" (runc cannot join it). The
start attaches the container's networks anew first: the same namespace path, the same
networks, ports and DNS (pod-netsetup finishes the half-done detach itself).

    revive_network(roots, ref) -> bool   True when the network was attached anew
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from podkit_common.roots import Roots


def _mounted(path: str) -> bool:
    # pod-netsetup's _netns.mounted, without importing that module (ctypes) on the path
    # of every start: something is mounted on path when its device differs from its dir's
    import os

    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def _dead_netns(record: dict) -> bool:
    section = (record.get("doc") or {}).get("network") or {}
    return bool(record.get("configured")) and section.get("mode") == "bridge" \
        and bool(section.get("netns")) and not _mounted(section["netns"])


def revive_network(roots: Roots, ref: str) -> bool:
    """Attach a configured container's networks anew when its namespace is dead."""
    from podkit_common import errors
    from podkit_runtime import _state

    try:
        cid = _state.resolve(roots, ref)
        if not _dead_netns(_state.load_record(roots, cid)):
            return False
    except errors.NotFound:
        return False  # start says what is wrong
    from podkit_pod._container_admin import network_options_of
    from podkit_pod._network import attach_network

    with _state.lock(roots, cid):
        record = _state.load_record(roots, cid)
        if not _dead_netns(record):
            return False
        doc = record["doc"]
        attached = attach_network({k: v for k, v in doc.items() if k != "network"}, roots,
                                  network_options_of(doc["network"]))
        record["doc"]["network"] = attached["network"]
        _state.save_record(roots, record)
    return True
