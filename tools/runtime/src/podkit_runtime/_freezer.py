"""pause / unpause: the cgroup freezer through ``runc pause`` / ``runc resume``.

A frozen process cannot act on a signal, not even SIGKILL, so whoever signals a paused
container thaws it afterwards (:func:`thaw_if_paused`), as podman does.
"""

from __future__ import annotations

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths, Observed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def _freeze(roots: Roots, ref: str, *, pause: bool) -> dict[str, Any]:
    """``runc pause`` a running container or ``runc resume`` a paused one, and record it."""
    from podkit_runtime._lifecycle import _runc, document, sync

    need, verb, command = (("running", "pause", "pause") if pause
                           else ("paused", "unpause", "resume"))
    cid = _state.resolve(roots, ref)
    with _state.lock(roots, cid):
        record, seen = sync(roots, cid)
        if seen.status != need:
            raise errors.Conflict(f"\"{record['name']}\" is not {need}, can't {verb}: "
                                  "container state improper")
        _runc(ContainerPaths(roots, cid), command, cid)
        record["paused"] = pause
        _state.save_record(roots, record)
        from podkit_runtime._container_events import emit

        emit(roots, record, verb)
    return document(*sync(roots, cid), True)


def pause(roots: Roots, ref: str) -> dict[str, Any]:
    """Freeze the container's processes (``runc pause``, the cgroup freezer)."""
    return _freeze(roots, ref, pause=True)


def unpause(roots: Roots, ref: str) -> dict[str, Any]:
    """Thaw a paused container (``runc resume``)."""
    return _freeze(roots, ref, pause=False)


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
