"""`pod ps/logs/stop/rm/wait/inspect/cleanup`: the runtime's lifecycle composed with
pod-storage, in-process (the same library calls a pipeline of the stages makes).

A container is two halves: its root filesystem (pod-storage) and its runtime state
(pod-runtime: conmon, runc, record, log). ``pod rm`` removes both; ``pod run --rm``
does the same once the container exits, through ``pod cleanup --rm`` as conmon's exit
command when detached.
"""

from __future__ import annotations

import contextlib

from podkit_common import errors
from podkit_common.cli_base import sibling_executable
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def pod_executable() -> str:
    """The absolute path of `pod`, for conmon's exit command."""
    return sibling_executable("pod")


def exit_command(roots: Roots, cid: str, remove: bool) -> tuple[str, ...]:
    """podman's `podman ... container cleanup [--rm] ID`, as pod's own command."""
    return (pod_executable(), "--root", str(roots.root), "--runroot", str(roots.runroot),
            "cleanup", *(["--rm"] if remove else []), cid)


def container_id(roots: Roots, ref: str) -> str:
    """The id for ``ref`` (id, prefix or name), from the runtime or else from storage."""
    from podkit_runtime._state import resolve
    from podkit_storage import load_container

    try:
        return resolve(roots, ref)
    except errors.NotFound:
        return str(load_container(roots, ref)["id"])


def remove(roots: Roots, ref: str, *, force: bool = False, remove_volumes: bool = False,
           timeout: int | None = None) -> str:
    """Remove the runtime half (refusing a running container without ``force``) and
    the storage half; returns the id."""
    from podkit_pod._network import release_network
    from podkit_runtime import remove_runtime
    from podkit_runtime._lifecycle import forget
    from podkit_runtime._state import load_record
    from podkit_storage import remove_container

    remnant = False
    try:
        cid = container_id(roots, ref)
    except errors.NotFound:
        # An rm killed after the storage record went: its name, files or mount point
        # are left, and this rm finishes it (chaos suite, seed 1245428684).
        from podkit_storage._containers import half_removed
        from podkit_storage._layout import StoreLayout

        cid = half_removed(StoreLayout(roots), ref)
        if cid is None:
            raise
        remnant = True
    try:
        doc = load_record(roots, cid).get("doc") or {}
        remove_runtime(roots, cid, force=force, timeout=timeout, remove_volumes=remove_volumes)
        release_network(doc, roots)
    except errors.NotFound:
        # No runtime record: a create killed after its network attach (chaos suite)
        # leaves an attachment record only; DEL it by id, else netns and lease leak.
        release_network({"container": {"id": cid}, "network": {"mode": "bridge"}}, roots)
        forget(roots, cid, remove_volumes=remove_volumes)
    try:
        remove_container(roots, cid)
    except errors.NotFound:
        if remnant:  # a concurrent rm finished it first: this one is the second rm
            raise
    return cid


def cleanup(roots: Roots, cid: str, *, remove_after: bool) -> dict[str, Any]:
    """conmon's exit command for pod's containers: the runtime's cleanup, then (with
    ``remove_after``) the storage container too, else just its mount released."""
    from podkit_pod._network import release_network
    from podkit_runtime import cleanup_container as cleanup_runtime
    from podkit_runtime._restart import will_restart
    from podkit_runtime._state import load_record
    from podkit_storage import remove_container, unmount_container

    with contextlib.suppress(errors.NotFound):
        if load_record(roots, cid).get("configured"):  # never ran: its start needs all
            return {"changed": False, "container": {"id": cid}, "removed": False}
    # A container its restart policy brings back keeps its network and rootfs mount.
    restarting = not remove_after and will_restart(roots, cid)
    with contextlib.suppress(errors.NotFound):
        # podman's cleanup tears the network down once the container has exited.
        if not restarting:
            release_network(load_record(roots, cid).get("doc") or {}, roots)
    out = cleanup_runtime(roots, cid, remove_after=remove_after)
    if out.get("restarted"):
        return out
    if restarting:  # the restart failed after all: release what was kept
        with contextlib.suppress(errors.NotFound):
            release_network(load_record(roots, cid).get("doc") or {}, roots)
    with contextlib.suppress(errors.NotFound):
        if remove_after:
            remove_container(roots, cid)
        else:
            unmount_container(roots, cid)
    return out


def ps(roots: Roots, *, all_: bool = False) -> list[dict[str, Any]]:
    """Runtime containers, plus (with ``all_``) storage containers never created under
    conmon, shown as podman shows a configured container."""
    from podkit_runtime import list_containers as runtime_ps

    lines = runtime_ps(roots, all_=all_)
    if not all_:
        return lines
    from podkit_storage import list_containers

    known = {line["Id"] for line in lines}
    for c in list_containers(roots):
        if c["id"] in known:
            continue
        lines.append({"Id": c["id"], "Names": [c["name"]], "Image": c.get("image_name") or "",
                      "ImageID": c.get("image_id") or "", "Command": [],
                      "Created": 0, "CreatedAt": c.get("created"), "State": "configured",
                      "Status": "Created", "Pid": 0, "ExitCode": 0, "Exited": False,
                      "StartedAt": 0, "ExitedAt": 0, "AutoRemove": False})
    return lines


def run_options(roots: Roots, opts: Any, cid: str) -> dict[str, Any]:
    """run_bundle's keyword arguments for `pod run` (RunOptions ``opts``)."""
    from podkit_runtime import CreateOptions

    detached_exit = exit_command(roots, cid, opts.remove) if opts.detach else None
    # Attached with a restart policy: the runtime's own exit command restarts it (rootfs
    # and network stay) and run_bundle returns after the last run, like podman's run;
    # the teardown below it then happens once.
    extras = dict(getattr(opts, "create_extras", {}))
    return {"options": CreateOptions(stdin=opts.interactive, remove=opts.remove,
                                     exit_command=detached_exit, **extras),
            "detach": opts.detach}


def discard_runtime(roots: Roots, cid: str) -> None:
    """Remove whatever runtime state a failed or finished `pod run --rm` left."""
    from podkit_runtime import remove_runtime

    with contextlib.suppress(errors.PodkitError):
        remove_runtime(roots, cid, force=True, timeout=0, remove_volumes=True)
