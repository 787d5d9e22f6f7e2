"""`pod restart`, `diff`, `mount`, `umount`, `container prune|exists|cleanup`: podman's
container housekeeping, composed from pod-runtime and pod-storage in-process.

restart
    A running container gets the stop signal with ``restart_pending`` set in its record,
    so conmon's exit command (``pod cleanup``) keeps its network and rootfs and starts it
    again under the container's lock, the way a restart policy does: nothing else can
    tear down the new run half-way. An exited container (its network and mount released
    by that exit command) is mounted, re-attached with the network it had, and started
    by a new conmon; a created one is simply started.
diff / mount / umount
    pod-storage's change list and counted mounts (podman's A/C/D lines and merged path).
prune / exists / cleanup
    remove every stopped container; 0/1 for presence; the exit command by hand.
"""

from __future__ import annotations

import contextlib
import sys
import time

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: What the engine itself puts in every rootfs (mount points of the files it writes):
#: libpod's diff leaves them out, and so do we.
INIT_INODES = frozenset({"/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc",
                         "/run", "/run/notify", "/run/.containerenv", "/run/secrets", "/sys",
                         "/etc/mtab"})

#: How long `restart` waits for the exit command to bring a container back.
RESTART_WAIT = 60.0


def _sync(roots: Roots, cid: str) -> tuple[dict[str, Any], Any]:
    from podkit_runtime._lifecycle import sync

    return sync(roots, cid)


def exists(roots: Roots, ref: str) -> bool:
    """Whether ``ref`` names a container (runtime or storage)."""
    from podkit_pod._containers import container_id

    try:
        container_id(roots, ref)
    except errors.NotFound:
        return False
    return True


def network_options_of(section: dict[str, Any]) -> Any:
    """The AttachOptions that give a container the network section it had."""
    from podkit_netsetup import AttachOptions

    mode = section.get("mode") or "none"
    network = (",".join(n["name"] for n in section.get("networks") or []) or "podkit"
               if mode == "bridge" else mode)
    publish = tuple(f"{p['hostIP'] + ':' if p.get('hostIP') else ''}{p['hostPort']}:"
                    f"{p['containerPort']}/{p['protocol']}" for p in section.get("ports") or [])
    dns = section.get("dns") or {}
    return AttachOptions(network=network, publish=publish,
                         add_hosts=tuple(f"{h['name']}:{h['ip']}"
                                         for h in section.get("hosts") or []),
                         dns=tuple(dns.get("servers") or ()),
                         dns_search=tuple(dns.get("search") or ()),
                         dns_options=tuple(dns.get("options") or ()))


def _start_exited(roots: Roots, cid: str) -> None:
    """Start an exited container again: rootfs, network, a new conmon."""
    from podkit_pod._network import attach_network, release_network
    from podkit_runtime import _state
    from podkit_runtime._restart import _restart_now
    from podkit_storage import mount_container, unmount_container

    with contextlib.suppress(errors.NotFound):
        mount_container(roots, cid)
    record = _state.load_record(roots, cid)
    doc = record.get("doc") or {}
    section = doc.get("network") or {}
    attached = None
    if section.get("mode") not in (None, "none", "host"):
        attached = attach_network({k: v for k, v in doc.items() if k != "network"}, roots,
                                  network_options_of(section))
    try:
        with _state.lock(roots, cid):
            record = _state.load_record(roots, cid)
            if attached is not None:
                record["doc"]["network"] = attached["network"]
            record["stopped_by_user"] = False
            _restart_now(roots, record)
    except BaseException:
        if attached is not None:
            release_network(attached, roots)
        with contextlib.suppress(errors.PodkitError):
            unmount_container(roots, cid)
        raise


def start(roots: Roots, ref: str) -> dict[str, Any]:
    """podman start: a created container starts; an exited one runs again (its rootfs
    mounted, its network attached again, a new conmon); a running one is left alone."""
    from podkit_pod._start_repair import revive_network
    from podkit_runtime import start_container

    revive_network(roots, ref)  # a namespace a killed detach left dead
    try:
        return start_container(roots, ref)
    except errors.Conflict:
        from podkit_pod._containers import container_id

        cid = container_id(roots, ref)
        _, seen = _sync(roots, cid)
        if seen.status not in ("exited", "stopped"):
            raise
    _start_exited(roots, cid)
    record, seen = _sync(roots, cid)
    return {"changed": True, "container": {"id": cid, "name": record["name"]},
            "state": {"status": seen.status, "pid": seen.pid}}


def start_attached(roots: Roots, ref: str) -> int:
    """podman's ``start --attach``: start ``ref``, copy what it writes (its stdout to
    ours, its stderr to ours) until it exits, and return its exit code. The output is
    read from its log from the moment of the start (conmon's k8s-file holds all of it,
    so nothing written before we look is lost); with ``--log-driver none`` there is no
    output to show, only the exit code."""
    from podkit_pod._containers import container_id
    from podkit_runtime import container_log

    since = time.time_ns()
    start(roots, ref)
    cid = container_id(roots, ref)
    record, seen = _sync(roots, cid)
    if record.get("log_driver") not in ("none", "passthrough"):
        for entry in container_log(roots, cid, follow=True, since_ns=since):
            stream = sys.stderr if entry.stream == "stderr" else sys.stdout
            stream.buffer.write(entry.render(False))
            stream.flush()
    while True:
        try:
            record, seen = _sync(roots, cid)
        except errors.NotFound:  # --rm: removed with its exit (podman says 0 too)
            return 0
        if seen.status in ("exited", "stopped") and seen.exit_code is not None:
            return int(seen.exit_code)
        time.sleep(0.05)


def _wait_restarted(roots: Roots, cid: str, count_before: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        record, seen = _sync(roots, cid)
        if int(record.get("restart_count") or 0) > count_before and seen.status != "created":
            return
        if record.get("restart_error") and not record.get("restart_pending"):
            raise errors.RuntimeFailure(record["restart_error"],
                                        hint="see `pod inspect` State.Error")
        if seen.status == "exited" and not record.get("restart_pending") \
                and record.get("exit_code") is not None:
            _start_exited(roots, cid)  # the exit command did not restart it: do it here
            return
        if time.monotonic() > deadline:
            raise errors.Timeout(f"restart {cid[:12]}: the container did not come back "
                                 f"within {timeout:g}s")
        time.sleep(0.05)


def restart(roots: Roots, ref: str, timeout: int | None = None) -> str:
    """podman restart: stop (stop signal, SIGKILL after ``timeout``) and start again;
    returns the id. The container runs again when this returns."""
    from podkit_pod._containers import container_id
    from podkit_runtime import _state, start_container
    from podkit_runtime._lifecycle import _exited, _runc, _wait_until, signal_name
    from podkit_runtime._state import ContainerPaths

    cid = container_id(roots, ref)
    record, seen = _sync(roots, cid)
    if seen.status == "created":
        start_container(roots, cid)
        return cid
    if seen.status in ("exited", "stopped", "configured"):
        _start_exited(roots, cid)
        return cid
    if not record.get("exit_command"):
        # Nobody runs an exit command for it: stop, then start it again here.
        from podkit_runtime import stop_container

        stop_container(roots, cid, timeout)
        _sync(roots, cid)
        _start_exited(roots, cid)
        return cid
    with _state.lock(roots, cid):
        record = _state.load_record(roots, cid)
        count_before = int(record.get("restart_count") or 0)
        record["restart_pending"] = True
        record["stopped_by_user"] = False
        _state.save_record(roots, record)
    paths = ContainerPaths(roots, cid)
    timeout = record.get("stop_timeout", 10) if timeout is None else timeout
    if timeout > 0:
        _runc(paths, "kill", cid, signal_name(record.get("stop_signal") or "SIGTERM"),
              check=False)
        if seen.status == "paused":
            from podkit_runtime._freezer import thaw_if_paused

            thaw_if_paused(roots, cid, seen)
    if timeout <= 0 or not _wait_until(lambda: _exited(roots, cid), timeout):
        _runc(paths, "kill", cid, "SIGKILL", check=False)
    _wait_restarted(roots, cid, count_before, RESTART_WAIT)
    return cid


def diff(roots: Roots, ref: str) -> list[dict[str, str]]:
    """A container's changes: [{"path", "kind": A|C|D}], sorted by path."""
    from podkit_pod._containers import container_id
    from podkit_storage import container_changes, load_container

    changes = container_changes(load_container(roots, container_id(roots, ref)))
    return [c for c in changes if c["path"] not in INIT_INODES]


def mount(roots: Roots, ref: str) -> dict[str, Any]:
    """Mount a container's rootfs (counted, like podman mount): its record with the
    ``rootfs`` path (overlay's merged dir)."""
    from podkit_pod._containers import container_id
    from podkit_storage import mount_container

    return mount_container(roots, container_id(roots, ref))


def mounted(roots: Roots) -> list[dict[str, Any]]:
    """The containers whose rootfs is mounted now: [{"id", "Names", "mountpoint"}]."""
    from podkit_storage import list_containers

    return [{"id": c["id"], "Names": [c["name"]], "mountpoint": c["rootfs"]}
            for c in list_containers(roots)
            if c.get("mounted") and c.get("driver", "overlay") != "vfs"]


def umount(roots: Roots, refs: list[str], *, all_: bool = False, force: bool = False
           ) -> list[str]:
    """Count one user less of each rootfs (``force``: unmount now); returns the refs.
    The last mount of a running or paused container is refused without ``force``;
    ``all_`` takes every mounted container that is not running, paused or created."""
    from podkit_pod._containers import container_id
    from podkit_pod._ps import all_rows
    from podkit_storage import unmount_container

    states = {r["Id"]: r["State"] for r in all_rows(roots)}
    busy = ("running", "paused")
    if all_:
        targets = [(m["id"], m["id"]) for m in mounted(roots)
                   if force or states.get(m["id"]) not in (*busy, "created")]
    else:
        targets = [(ref, container_id(roots, ref)) for ref in refs]
        for ref, cid in targets:
            # libpod's rule: a running container's last mount is its own, never taken away
            if states.get(cid) in busy and not force and _mount_count(roots, cid) <= 1:
                raise errors.Conflict(f"cannot unmount storage for container {ref} as it is "
                                      f"{states[cid]}: container state improper",
                                      hint="stop it first")
    for _, cid in targets:
        unmount_container(roots, cid, force=force)
    return [shown for shown, _ in targets]


def _mount_count(roots: Roots, cid: str) -> int:
    from podkit_storage._layout import StoreLayout
    from podkit_storage._rootfs import read_count

    return read_count(StoreLayout(roots), cid)


def prune(roots: Roots) -> list[str]:
    """Remove every container that is not running, paused or being created; their ids."""
    from podkit_pod._containers import remove
    from podkit_pod._ps import all_rows

    removed = []
    for row in all_rows(roots):
        # an infra container goes with its pod (`pod pod rm`), never on its own
        if row["State"] in ("exited", "stopped", "created", "configured") \
                and not row["IsInfra"]:
            with contextlib.suppress(errors.NotFound, errors.Conflict):  # Conflict: a pod's infra
                removed.append(remove(roots, row["Id"], remove_volumes=False))
    return removed


def cleanup_containers(roots: Roots, refs: list[str], *, all_: bool = False,
                       remove_after: bool = False) -> list[str]:
    """podman container cleanup: release the network and mount of exited containers
    (and remove them with ``remove_after``); a running one is refused like podman."""
    from podkit_pod._containers import cleanup, container_id
    from podkit_pod._ps import all_rows

    if all_:
        cids = [r["Id"] for r in all_rows(roots, include_storage=False)
                if r["State"] in ("exited", "stopped")]
    else:
        cids = [container_id(roots, ref) for ref in refs]
    done = []
    for cid in cids:
        _, seen = _sync(roots, cid)
        if seen.status in ("running", "paused"):
            raise errors.Conflict(f"container {cid[:12]} is running or paused, refusing to "
                                  "clean up: container state improper")
        cleanup(roots, cid, remove_after=remove_after)
        done.append(cid)
    return done
