"""Restart policies, carried out by conmon's exit command (no daemon).

podman 4.3.1 has no daemon either: conmon runs ``podman container cleanup`` when the
container exits, and cleanup restarts the container when its policy says so. podkit does
the same in :func:`after_exit`, which ``pod-runtime cleanup`` (and ``pod cleanup``)
calls once the exit is recorded:

    exit -> conmon's exit command -> settle (exit code recorded)
         -> should_restart? -> new conmon + runc create + runc start, restart_count += 1

Policies (podman's names): ``no``, ``on-failure[:N]`` (only a non-zero exit, at most N
restarts when N is given), ``always`` and ``unless-stopped`` (any exit). A ``stop`` or
``kill`` by the user sets ``stopped_by_user`` (podman's StoppedByUser) under the
container's lock, and no policy undoes it. A restart that fails records
``restart_error`` and leaves the container exited.

There is no daemon, so nothing restarts ``always`` containers after a reboot (the same
as podman without systemd units): the runroot is gone and the next read reconciles the
container to exited.

Record fields: ``restart_policy`` {"name", "max"}, ``restart_count``,
``stopped_by_user``, ``restart_pending`` (a healthcheck's ``restart`` action),
``restart_error``, ``restart_note`` (what the last exit command decided), and what a
new conmon needs: ``exit_command``, ``log_size_max``.
"""

from __future__ import annotations

import contextlib
import os
import time

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

POLICIES = ("no", "on-failure", "always", "unless-stopped")


def parse_policy(text: str | None) -> dict[str, Any]:
    """``on-failure:3`` -> {"name": "on-failure", "max": 3} (pure; podman's rules)."""
    text = (text or "no").strip() or "no"
    name, _, count = text.partition(":")
    if name not in POLICIES:
        raise errors.UsageError(f"invalid restart policy {text!r}",
                                hint="no, on-failure[:N], always or unless-stopped")
    if count and name != "on-failure":
        raise errors.UsageError(f"restart policy {name} does not take a retry count",
                                hint="only on-failure:N counts restarts")
    if count and not (count.isdigit() and int(count) >= 0):
        raise errors.UsageError(f"invalid retry count in restart policy {text!r}",
                                hint="on-failure:N with N >= 0")
    return {"name": name, "max": int(count) if count else 0}


def record_fields(opts: Any) -> dict[str, Any]:
    """What ``create`` keeps in the record for restarts and healthchecks."""
    policy = parse_policy(getattr(opts, "restart_policy", None))
    if policy["name"] != "no" and opts.remove:
        raise errors.UsageError("the --rm option conflicts with --restart",
                                hint="podman refuses both too: drop one")
    return {"restart_policy": policy, "restart_count": 0, "stopped_by_user": False,
            "exit_command": list(opts.exit_command) if opts.exit_command else None,
            "log_size_max": opts.log_size_max, **_health_fields(getattr(opts, "health", None))}


def _health_fields(config: dict[str, Any] | None) -> dict[str, Any]:
    if not config:  # most containers: no need to load the healthcheck module
        return {}
    from podkit_runtime._health import record_fields

    return record_fields(config)


def should_restart(record: dict[str, Any], exit_code: int | None) -> bool:
    """Does the policy restart a container that exited with ``exit_code``? (pure)"""
    if record.get("restart_pending"):
        return True
    if record.get("stopped_by_user") or record.get("auto_remove"):
        return False
    policy = record.get("restart_policy") or {"name": "no", "max": 0}
    if policy["name"] in ("always", "unless-stopped"):
        return True
    if policy["name"] == "on-failure":
        return exit_code not in (0, None) and (
            not policy["max"] or int(record.get("restart_count") or 0) < policy["max"])
    return False


def will_restart(roots: Roots, cid: str) -> bool:
    """Would the exit command restart this container (read only: ``pod cleanup`` asks
    first, so it keeps the network and the rootfs mount of a container coming back)."""
    try:
        record = _state.load_record(roots, cid)
    except errors.NotFound:
        return False
    seen = _state.observe(roots, record)
    return seen.status == "exited" and should_restart(record, seen.exit_code)


def note_user_stop(roots: Roots, cid: str) -> None:
    """podman's StoppedByUser: a user's stop or kill is never undone by the policy."""
    with _state.lock(roots, cid):
        record = _state.load_record(roots, cid)
        if not record.get("stopped_by_user") or record.get("restart_pending"):
            record["stopped_by_user"] = True
            record["restart_pending"] = False
            _state.save_record(roots, record)


def after_exit(roots: Roots, cid: str) -> bool:
    """The exit command's second half: restart the exited container when its policy
    says so. True when it runs again."""
    with _state.lock(roots, cid):
        try:
            record = _state.load_record(roots, cid)
        except errors.NotFound:
            return False
        if record.get("exit_code") is None:
            return False  # not exited (already restarted by another exit command)
        if not should_restart(record, record["exit_code"]):
            record["restart_note"] = "not restarted: " + (
                "stopped by the user" if record.get("stopped_by_user") else
                "the restart policy says no")
            _state.save_record(roots, record)
            return False
        try:
            from podkit_runtime._container_events import emit

            emit(roots, record, "restart")
            _restart_now(roots, record)
        except errors.PodkitError as exc:
            record = _state.load_record(roots, cid)
            record["restart_error"] = f"restart {cid[:12]}: {exc}"
            record["restart_note"] = "restart failed"
            record["restart_pending"] = False
            _state.save_record(roots, record)
            return False
        return True


def _restart_now(roots: Roots, record: dict[str, Any]) -> None:
    """A new conmon (runc create) and runc start for the same bundle; under the lock."""
    from podkit_runtime._conmon import (
        ConmonOptions,
        CreateFailed,
        conmon_argv,
        conmon_binary,
        conmon_env,
        exit_command_binary,
        spawn_conmon,
    )
    from podkit_runtime._health import reset_health, start_timer
    from podkit_runtime._lifecycle import _abandon, _read_pid, _runc, _runc_delete
    from podkit_runtime._runc import runc_binary

    cid = record["id"]
    paths = ContainerPaths(roots, cid)
    for stale in paths.volatile:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
    paths.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _runc_delete(paths, False)
    exit_command = tuple(record["exit_command"]) if record.get("exit_command") else None
    copts = ConmonOptions(name=record["name"], stdin=bool(record.get("stdin")),
                          tty=bool(record.get("tty")), remove=False,
                          log_size_max=record.get("log_size_max"), exit_command=exit_command,
                          log_driver=record.get("log_driver") or "k8s-file")
    argv = conmon_argv(conmon_binary(), runc_binary(), paths, copts, exit_command_binary())
    try:
        created = spawn_conmon(argv, conmon_env(dict(os.environ)),
                               paths.run_dir / "conmon.log",
                               cgroup=record.get("conmon_cgroup"))
    except CreateFailed as exc:
        _abandon(paths)
        raise errors.RuntimeFailure(f"runc create: {exc.message}") from None
    conmon_pid = _read_pid(paths.conmon_pidfile)
    now = time.time()  # before runc start: a short run may be over when it returns
    try:
        _runc(paths, "start", cid)
    except errors.PodkitError:
        _abandon(paths)  # no half-restarted container: conmon and runc's state go
        raise
    record.update({
        "pid": created.pid, "conmon_pid": conmon_pid,
        "conmon_start": _state.proc_start_time(conmon_pid) if conmon_pid else None,
        "exit_code": None, "finished_at": None, "exit_note": None,
        "started_at": _state.iso_time(now), "started_ts": now, "paused": False,
        "restart_count": int(record.get("restart_count") or 0) + 1,
        "restart_pending": False, "restart_error": None, "restart_note": "restarted",
    })
    reset_health(record)
    _state.save_record(roots, record)
    from podkit_runtime._container_events import emit

    emit(roots, record, "init")
    emit(roots, record, "start")
    start_timer(roots, record)
