"""pause / unpause: the cgroup freezer through ``runc pause`` / ``runc resume``.

A frozen process cannot act on a signal, not even SIGKILL, so whoever signals a paused
container thaws it afterwards (:func:`thaw_if_paused`), as podman does.
"""

from __future__ import annotations

from typing import Any

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths, Observed


def pause(roots: Roots, ref: str) -> dict[str, Any]:
    """Freeze the container's processes (``runc pause``, the cgroup freezer)."""
    from podkit_runtime._lifecycle import _runc, document, sync

    cid = _state.resolve(roots, ref)
    with _state.lock(roots, cid):
        record, seen = sync(roots, cid)
        if seen.status != "running":
            raise errors.Conflict(f"\"{record['name']}\" is not running, can't pause: "
                                  "container state improper")
        _runc(ContainerPaths(roots, cid), "pause", cid)
        record["paused"] = True
        _state.save_record(roots, record)
    return document(*sync(roots, cid), True)


def unpause(roots: Roots, ref: str) -> dict[str, Any]:
    """Thaw a paused container (``runc resume``)."""
    from podkit_runtime._lifecycle import _runc, document, sync

    cid = _state.resolve(roots, ref)
    with _state.lock(roots, cid):
        record, seen = sync(roots, cid)
        if seen.status != "paused":
            raise errors.Conflict(f"\"{record['name']}\" is not paused, can't unpause: "
                                  "container state improper")
        _runc(ContainerPaths(roots, cid), "resume", cid)
        record["paused"] = False
        _state.save_record(roots, record)
    return document(*sync(roots, cid), True)


def thaw_if_paused(roots: Roots, cid: str, seen: Observed) -> None:
    """A frozen process cannot act on a signal, not even SIGKILL: thaw it after one."""
    from podkit_runtime._lifecycle import _runc

    if seen.status == "paused":
        _runc(ContainerPaths(roots, cid), "resume", cid, check=False)
        with _state.lock(roots, cid):
            record = _state.load_record(roots, cid)
            record["paused"] = False
            _state.save_record(roots, record)


pause_container = pause
unpause_container = unpause
