"""The runtime's entries in the event log (podkit_common.events), made from what it
knows of a container: the runtime record, or the document ``pod-runtime bundle`` wrote.

    runc create      create, init  (podman's create then its init: pod create and
                                    pod run make the container under conmon at once)
    runc start       start       (and attach, when the caller stays attached)
    exit recorded    died        with the exit code, once: by whoever settles it first
    exit command     cleanup
    kill/stop/pause/unpause/exec/exec_died/restart/remove   as they happen

Each hook in the lifecycle modules is one call here; nothing here raises.
"""

from __future__ import annotations

from podkit_common.events import container_event

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def emit(roots: Any, record: dict[str, Any] | None, status: str,
         exit_code: int | None = None) -> None:
    """The event for ``record`` (a runtime record; None: nothing to say)."""
    if not record or not record.get("id"):
        return
    bundle = (record.get("doc") or {}).get("bundle") or {}
    container_event(roots, status, record["id"], name=record.get("name"),
                    image=record.get("image"), pod=record.get("pod"),
                    labels=bundle.get("labels"), exit_code=exit_code)


def load(roots: Any, cid: str) -> dict[str, Any] | None:
    """The runtime record of ``cid``, or None when it has none (any more)."""
    from podkit_common import errors
    from podkit_runtime import _state

    try:
        return _state.load_record(roots, cid)
    except (errors.PodkitError, OSError, ValueError):
        return None


def emit_for(roots: Any, cid: str, status: str, exit_code: int | None = None) -> None:
    emit(roots, load(roots, cid), status, exit_code)


def died(roots: Any, record: dict[str, Any]) -> None:
    emit(roots, record, "died", record.get("exit_code"))

