"""The runtime half of an attached `pod run --rm` once the container exited.

In order, this is ``_state.settle`` (``runc delete``, the exit recorded) and then
``_lifecycle._remove_now`` (the record, the volatile files, the bundle, the cgroups).
``runc delete`` of a stopped container is a Go process start, a state file read and the
container's cgroups removed: ~10-15 ms in which we would only wait. It needs none of
our files, so it runs while the exit is recorded and the record, the run directory and
the bundle are removed; what depends on it (the check that runc kept nothing, the
fallback removal of the container's cgroup) comes after it. The bundle stays until then
when the container has poststop hooks, which runc delete runs and which may look at it.

Everything happens under the container's lock, as before, so conmon's exit command
(`pod-runtime cleanup`) finds the container gone, and the events and the outcome are
those of the sequential version.
"""

from __future__ import annotations

import os

from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths, Observed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def _bundle_facts(paths: ContainerPaths) -> tuple[bool, str]:
    """(has poststop hooks, cgroupsPath) from the bundle's config.json; unreadable: as
    if it had hooks (keep the sequential order)."""
    from podkit_common import atomic, errors

    try:
        config = atomic.read_json(paths.bundle / "config.json")
    except (OSError, errors.PodkitError):
        return True, ""
    hooks = bool((config.get("hooks") or {}).get("poststop"))
    return hooks, str((config.get("linux") or {}).get("cgroupsPath") or "")


def settle_and_remove(roots: Roots, cid: str, remove_volumes: bool = True,
                      mark: Any = None) -> tuple[dict[str, Any], Observed]:
    """Record the exit of the attached container ``cid`` and remove it (see the module
    docstring); the settled record and what it shows. ``mark(phase)`` notes the end of
    the settle phase (``_timings``)."""
    from podkit_common.spawn import start, wait
    from podkit_runtime import _lifecycle as lc
    from podkit_runtime._bundle import remove_bundle
    from podkit_runtime._conmon_cgroup import release_container_path

    paths = ContainerPaths(roots, cid)
    deleting: list[int] = []

    def runc_delete(p: ContainerPaths, kill_first: bool) -> bool:
        if kill_first or not (p.runc_root / p.cid).exists():
            return lc._runc_delete(p, kill_first)  # an orphan: as before, and waited for
        from podkit_runtime._runc import runc_binary

        deleting.append(start([runc_binary(), "--root", str(p.runc_root), "delete",
                               "--force", p.cid],
                              env={"PATH": os.environ.get("PATH", os.defpath)}))
        return False

    with _state.lock(roots, cid):
        hooks, cgroups_path = _bundle_facts(paths)
        try:
            record = _state.settle(roots, cid, runc_delete)
            seen = _state.observe(roots, record)
            if mark is not None:
                mark("settle")
            gone = record  # as saved: what the removal event describes
            lc._stop_health_timer(roots, cid, gone)
            lc._release_conmon_cgroup(gone.get("conmon_cgroup"))
            _state.remove_files(roots, cid)
            if not hooks:
                remove_bundle(roots, cid, remove_volumes=remove_volumes)
        finally:
            for pid in deleting:
                wait(pid)
        lc._runc_delete(paths, True)  # runc keeps nothing of it now, normally
        release_container_path(cgroups_path)
        if hooks:
            remove_bundle(roots, cid, remove_volumes=remove_volumes)
        lc._event(roots, gone, "remove")
    return record, seen
