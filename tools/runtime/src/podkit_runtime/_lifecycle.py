"""The container lifecycle under conmon and runc: create, start, run, attach, wait, kill,
stop, pause, unpause, rm, cleanup. State lives in ``_state`` (see its docstring for the
design); exec sessions in ``_exec``; reports in ``_inspect``; logs in ``_logs``.

The state machine fits here (the checks are ``can_start``, ``can_kill``,
``can_remove_without_force``)::

    (create) -> created --start--> running --exit/kill/stop--> exited --rm--> (gone)
                   |               |     ^
                   +--kill/stop/rm-+  pause/unpause
                                   v     |
                                   paused

Every command reconciles the record with the machine first (:func:`sync`), so a
container killed behind our back, or whose conmon was killed, ends up exited.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from podkit_common import errors, records
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._container_events import emit as _event
from podkit_runtime._freezer import thaw_if_paused
from podkit_runtime._state import ContainerPaths, Observed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from podkit_common.spawn import Completed

#: podman's killContainerTimeout: how long to wait after SIGKILL
KILL_WAIT = 5.0
#: how long to wait for conmon (and the exit command it runs) once the container exited
CONMON_EXIT_WAIT = 30.0
POLL = 0.02
#: the exit file follows the attach socket's hangup within milliseconds
EXIT_FILE_POLL = 0.005


def can_start(status: str) -> bool:
    return status == "created"


def can_kill(status: str) -> bool:
    return status in ("created", "running", "paused")


def can_remove_without_force(status: str) -> bool:
    return status in ("created", "exited", "stopped")


@records.record(frozen=True)
class CreateOptions:
    """What ``pod-runtime create`` takes besides the document."""

    stdin: bool = False
    tty: bool = False
    remove: bool = False
    log_size_max: int | None = None
    log_driver: str = "k8s-file"
    stop_signal: str | None = None
    stop_timeout: int = 10
    exit_command: tuple[str, ...] | None = None
    #: podman's --restart (``_restart``) and the healthcheck (``_health.health_config``)
    restart_policy: str | None = None
    health: dict[str, Any] | None = None
    #: --log-driver passthrough: the stdin, stdout, stderr conmon hands to the container
    passthrough_stdio: tuple[int, int, int] = (0, 1, 2)


# -- runc -------------------------------------------------------------------------------

def _runc(paths: ContainerPaths, *args: str, check: bool = True) -> Completed:
    """runc's exit code, stdout and stderr (stdin /dev/null); RuntimeFailure if it failed
    and ``check``."""
    from podkit_common.spawn import run
    from podkit_runtime._runc import runc_binary

    argv = [runc_binary(), "--root", str(paths.runc_root), *args]
    proc = run(argv, env={"PATH": os.environ.get("PATH", os.defpath)})
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise errors.RuntimeFailure(f"runc {args[0]} {paths.cid[:12]}: {msg}")
    return proc


def _runc_delete(paths: ContainerPaths, kill_first: bool) -> bool:
    """Remove runc's state for the container; True if a live process had to be killed."""
    if not (paths.runc_root / paths.cid).exists():
        return False  # runc keeps nothing for it: no process of it can be left either
    killed = False
    if kill_first:
        state = _runc(paths, "state", paths.cid, check=False)
        if state.returncode == 0 and b'"status": "stopped"' not in state.stdout:
            killed = True
    if (paths.runc_root / paths.cid).exists():
        _runc(paths, "delete", "--force", paths.cid, check=False)
    return killed


# -- reading state ----------------------------------------------------------------------

def sync(roots: Roots, cid: str, record: dict[str, Any] | None = None
         ) -> tuple[dict[str, Any], Observed]:
    """The record (read now unless given) and its true state; settles orphans and exits
    nobody cleaned up."""
    record = _state.load_record(roots, cid) if record is None else record
    seen = _state.observe(roots, record)
    if seen.orphaned or seen.needs_cleanup:
        record = _state.settle(roots, cid, _runc_delete)
        seen = _state.observe(roots, record)
    return record, seen


def state_section(record: dict[str, Any], seen: Observed) -> dict[str, Any]:
    return {"status": seen.status, "exit_code": seen.exit_code, "pid": seen.pid,
            "conmon_pid": seen.conmon_pid, "created_at": record.get("created_at"),
            "started_at": record.get("started_at"), "finished_at": seen.finished_at}


def document(record: dict[str, Any], seen: Observed, changed: bool) -> dict[str, Any]:
    """The document a lifecycle command prints: the one create saw, with ``state``."""
    return {**record["doc"], "changed": changed, "state": state_section(record, seen)}


def _wait_until(predicate: Any, timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def _exited(roots: Roots, cid: str) -> bool:
    try:
        record = _state.load_record(roots, cid)
    except errors.NotFound:  # removed by its --rm exit command: it exited
        return True
    return _state.observe(roots, record).status == "exited"


def _conmon_gone(record: dict[str, Any]) -> bool:
    return not _state.process_matches(record.get("conmon_pid"), record.get("conmon_start"))


# -- create / start / run ---------------------------------------------------------------

def _doc_for_record(doc: dict[str, Any]) -> dict[str, Any]:
    """The parts of the input document worth keeping (not the image's layer list)."""
    kept = {k: v for k, v in doc.items() if k in ("container", "bundle", "network")}
    image = doc.get("image") or {}
    if image:
        kept["image"] = {k: image[k] for k in ("id", "names", "ref", "digest") if k in image}
    return kept


def _image_stop_signal(doc: dict[str, Any]) -> str | None:
    config = ((doc.get("image") or {}).get("config") or {}).get("config") or {}
    return config.get("StopSignal") or None


def create(doc: dict[str, Any], roots: Roots, opts: CreateOptions = CreateOptions(),
           while_creating: Any = None, *, configure_only: bool = False,
           configured: dict[str, Any] | None = None) -> dict[str, Any]:
    """conmon + ``runc create`` for the bundle in ``doc``; returns it with ``state``.
    ``while_creating()`` runs while runc creates it (``_conmon.spawn_conmon``).
    ``configure_only``: podman's create, the record alone (``_configured``);
    ``configured``: the init of such a record."""
    from podkit_runtime._conmon import (
        ConmonOptions,
        CreateFailed,
        conmon_argv,
        conmon_binary,
        conmon_env,
        exit_command_binary,
        spawn_conmon,
    )
    from podkit_runtime._run import prepare_bundle
    from podkit_runtime._runc import runc_binary

    cid = doc["container"]["id"]
    name = doc["container"].get("name") or cid[:12]
    bundle = Path(doc["bundle"]["path"])
    paths = ContainerPaths(roots, cid)
    extra_fields = _restart_fields(opts)  # bad --restart/--health-* before anything is made
    if bundle != paths.bundle:
        raise errors.InvalidDocument(f"bundle {bundle} is not this runroot's bundle "
                                     f"{paths.bundle}", hint="use the same --runroot")
    if paths.record.exists() and configured is None:
        raise errors.Conflict(f"container {name} ({cid[:12]}) already exists",
                              hint="pod-runtime start it, or rm it first")
    if configure_only:
        from podkit_runtime._configured import configure

        return configure(doc, roots, opts, extra_fields)
    if doc["bundle"].get("pod"):  # a pod member: the infra runs first, its namespaces joined
        from podkit_runtime._pod_members import join_pod

        doc = join_pod(roots, doc)
    tty = opts.tty or bool(doc["bundle"].get("tty"))
    conmon_stdio = _passthrough_stdio(opts, tty)  # refused on a terminal before anything
    from podkit_runtime._conmon_cgroup import for_bundle as conmon_cgroup_for

    conmon_cgroup = conmon_cgroup_for(bundle)  # <CgroupParent>/conmon, like podman
    with _state.lock(roots, cid):
        # private state; conmon opens its logs (here and in the record's dir) at start
        for d in (paths.run_dir, paths.exit_dir, paths.record_dir, paths.runc_root):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

        def ready_for_runc() -> None:  # while conmon moves into its cgroup (spawn_conmon)
            prepare_bundle(doc)
            for stale in paths.volatile:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            # A leftover runc container of the same id (a crash mid-create) would fail
            # create.
            _runc_delete(paths, False)

        copts = ConmonOptions(name=name, stdin=opts.stdin, tty=tty, remove=opts.remove,
                              log_size_max=opts.log_size_max, exit_command=opts.exit_command,
                              log_driver=opts.log_driver)
        conmon, runc = conmon_binary(), runc_binary()
        argv = conmon_argv(conmon, runc, paths, copts, exit_command_binary())
        created_at = time.time()
        try:
            created = spawn_conmon(argv, conmon_env(dict(os.environ)),
                                   paths.run_dir / "conmon.log",
                                   stdio=conmon_stdio, cgroup=conmon_cgroup,
                                   before_start=ready_for_runc,
                                   while_waiting=_while_creating(roots, runc, conmon,
                                                                 while_creating))
        except CreateFailed as exc:
            _abandon(paths)
            raise _cannot_start(paths, exc.message) from None
        except BaseException:
            _abandon(paths)
            raise
        conmon_pid = _read_pid(paths.conmon_pidfile)
        record = new_record(
            doc, opts, paths, created_at, tty=tty, pid=created.pid, conmon_pid=conmon_pid,
            conmon_start=_state.proc_start_time(conmon_pid) if conmon_pid else None,
            conmon_cgroup=conmon_cgroup, **extra_fields)
        if configured is not None:
            from podkit_runtime._configured import merged

            record = merged(configured, record)
        _state.save_record(roots, record)
        if configured is None:
            _event(roots, record, "create")
        _event(roots, record, "init")
    seen = _state.observe(roots, record)
    return {**doc, "changed": True, "state": state_section(record, seen)}


def _while_creating(roots: Roots, runc: str, conmon: str, then: Any) -> Any:
    """What runs while conmon runs ``runc create`` (``_conmon.spawn_conmon``): the
    version check, then the caller's ``then()``; off the path before conmon starts."""
    def run() -> None:
        from podkit_runtime._versions import check_at_start

        check_at_start(roots, runc, conmon)  # known-vulnerable releases: a stat each
        if then is not None:
            then()
    return run


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _abandon(paths: ContainerPaths) -> None:
    """Undo a failed create: conmon (if it lingers), runc's state, our volatile files."""
    pid = _read_pid(paths.conmon_pidfile)
    if pid and _state.proc_start_time(pid) is not None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _runc_delete(paths, False)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(paths.exit_file)


def _cannot_start(paths: ContainerPaths, message: str) -> errors.PodkitError:
    """A failed create, classified; our files for it removed."""
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(paths.run_dir)
        shutil.rmtree(paths.record_dir)
    return classify_failure(paths.oci_log, message, f"runc create {paths.cid[:12]}")


def classify_failure(oci_log: Path, message: str, doing: str) -> errors.PodkitError:
    """podman's classification of a failed runc create/exec (runc's JSON log first, then
    what conmon relayed): 127 not found, 126 cannot invoke, else a RuntimeFailure."""
    from podkit_runtime._run import ContainerCannotStart
    from podkit_runtime._runc import RuncFailure, read_runc_error

    failure = read_runc_error(oci_log) or RuncFailure(message.strip())
    if failure.not_found:
        return ContainerCannotStart(failure.message, 127)
    if failure.permission_denied:
        return ContainerCannotStart(failure.message, 126)
    return errors.RuntimeFailure(f"{doing}: {failure.message}",
                                 hint="see the bundle's config.json")


def start(roots: Roots, ref: str) -> dict[str, Any]:
    """``runc start`` a created container (a running one is left as it is)."""
    cid = _state.resolve(roots, ref)
    with _state.lock(roots, cid):
        record, seen = sync(roots, cid)
        if seen.status in ("running", "paused"):
            return document(record, seen, False)
        if not can_start(seen.status):
            raise errors.Conflict(
                f"container {record['name']} is {seen.status}: only a created container "
                "can start", hint="create a new container (podkit does not restart yet)")
        if record.get("configured"):  # podman's init first: conmon + runc create
            from podkit_runtime._configured import init
            from podkit_runtime._conmon_cgroup import warm

            warm()  # conmon's move, in a few ms: its lock's wait starts now

            record = init(roots, record)
        paths = ContainerPaths(roots, cid)
        # The start time is taken before runc start: a short-lived container may have
        # finished (exit file written) by the time runc start returns.
        started_at, started_ts = _state.now_iso(), time.time()
        done = _runc(paths, "start", cid, check=False)
        # "already running": an earlier start was killed between runc start and the
        # record (chaos suite); podman's start of a running container succeeds.
        if done.returncode != 0 and b"already running" not in done.stderr:
            msg = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise errors.RuntimeFailure(f"runc start {cid[:12]}: {msg}")
        record["started_at"] = started_at
        record["started_ts"] = started_ts
        _state.save_record(roots, record)
        _event(roots, record, "start")
        _start_health_timer(roots, record)
        # Read the state under the lock: with --rm, the exit command of a container that
        # is already done may remove everything the moment the lock is free.
        return document(record, _state.observe(roots, record), True)


def run(doc: dict[str, Any], roots: Roots, opts: CreateOptions = CreateOptions(), *,
        stdio: tuple[int, int, int] = (0, 1, 2), detach: bool = False,
        before_start: Any = None, on_exit: Any = None) -> dict[str, Any]:
    """create + start. Attached (the default): the container's stdout/stderr go to
    ``stdio[1]``/``stdio[2]`` (and ``stdio[0]`` to its stdin with ``opts.stdin``) until it
    exits; the document then holds the exit code. Detached: return once it runs.
    ``before_start(doc) -> doc | None`` and ``on_exit()``: see ``_run.run_bundle``."""
    from podkit_common.records import replace
    from podkit_runtime._conmon_cgroup import warm
    from podkit_runtime._run import finish_before_start, prepare_attached
    from podkit_runtime._timings import mark

    warm()  # conmon's cgroup move in a moment: its lock's wait starts now (there)
    if opts.log_driver == "passthrough":  # no attach socket: conmon hands over stdio
        from podkit_runtime._passthrough import run_passthrough

        return run_passthrough(doc, roots, opts, stdio, detach, before_start, on_exit)
    if detach:
        created = create(doc, roots, opts)
        doc = finish_before_start(roots, created, before_start, doc)
        started = start(roots, created["container"]["id"])
        return {**doc, "changed": True, "state": started["state"]}
    # Attached, --rm happens here once the exit code is read, not in the exit command.
    created = create(doc, roots, replace(opts, remove=False), while_creating=prepare_attached)
    from podkit_runtime._attach import connect, pump
    from podkit_runtime._tty import terminal_for

    cid = created["container"]["id"]
    paths = ContainerPaths(roots, cid)
    # Connect before runc start, so not one byte of output is lost.
    sock = connect(paths.attach_socket)
    terminal = contextlib.ExitStack()  # tty: raw mode and resizes while attached (_tty)
    try:
        terminal.enter_context(terminal_for(bool(created.get("bundle", {}).get("tty"))
                                            or opts.tty, stdio[0] if opts.stdin else None,
                                            paths.ctl, stdio[1]))
        doc = finish_before_start(roots, created, before_start, doc)
        mark("before-start")
        start(roots, cid)
        _event(roots, _load_for_event(roots, cid), "attach")
        mark("runc-start")
        stdin_fd: int | None = stdio[0] if opts.stdin else None
        exit_file = paths.exit_file
        while True:
            try:
                pump(sock, stdio[1], stdio[2], stdin_fd, finished=exit_file.exists)
                break
            except KeyboardInterrupt:
                # podman's sig-proxy: the container decides what ^C means.
                with contextlib.suppress(errors.PodkitError):
                    kill(roots, cid, "SIGINT")
                stdin_fd = None
    finally:
        terminal.close()
        sock.close()
    mark("attached")
    _await_exit_file(roots, cid, paths)
    mark("exit-file")
    restarted = _wait_out_restarts(roots, cid, paths)  # None unless the policy restarts it
    if restarted is not None:
        record, seen = restarted
    elif _state.read_exit_file(paths) is not None:
        if on_exit is not None:
            on_exit()
        # Record the exit ourselves rather than wait for conmon's exit command (a
        # process start-up away); the exit command then finds it done (or gone).
        if opts.remove:  # runc delete runs alongside the removals (_attached_rm)
            from podkit_runtime._attached_rm import settle_and_remove

            record, seen = settle_and_remove(roots, cid, mark=mark)
            mark("remove-runtime")
        else:
            record = _state.settle(roots, cid, _runc_delete)
            mark("settle")
            seen = _state.observe(roots, record)
    else:
        record, seen = wait(roots, cid)
        if opts.remove:
            remove(roots, cid, force=True, remove_volumes=True)
    return {**doc, "changed": True, "state": state_section(record, seen)}


# -- wait / kill / stop -----------------------------------------------------------------

WAIT_CONDITIONS = ("configured", "created", "running", "paused", "stopped", "exited")


def wait(roots: Roots, ref: str, conditions: Iterable[str] = ("stopped", "exited"),
         timeout: float | None = None) -> tuple[dict[str, Any], Observed]:
    """Until the container reaches one of ``conditions`` (podman's wait --condition).

    Waiting for an exit also waits for conmon's exit command to finish, so the record
    holds the exit code when this returns."""
    try:
        cid = _state.resolve(roots, ref)
    except errors.NotFound:
        return _removed_exit(roots, ref)  # removed by --rm: its kept exit code
    wanted = {"exited" if c == "stopped" else c for c in conditions}
    for c in wanted:
        if c not in WAIT_CONDITIONS:
            raise errors.UsageError(f"unknown wait condition {c!r}",
                                    hint="one of " + ", ".join(WAIT_CONDITIONS))
    result: list[tuple[dict[str, Any], Observed]] = [(_state.load_record(roots, cid),
                                                     Observed("created", None, None, 0, 0))]

    def reached() -> bool:
        try:
            record, seen = sync(roots, cid)
        except errors.NotFound:
            # Removed while we waited (--rm): it exited; its exit code was kept.
            try:
                result[:] = [_removed_exit(roots, cid)]
            except errors.NotFound:
                result[:] = [(result[0][0], Observed("exited", None, None, 0, 0))]
            return True
        result[:] = [(record, seen)]
        return seen.status in wanted

    if not _wait_until(reached, timeout):
        raise errors.Timeout(f"container {cid[:12]} did not reach {', '.join(sorted(wanted))} "
                             f"within {timeout:g}s")
    record, seen = result[0]
    if seen.status == "exited" and record.get("exit_code") is None and seen.exit_code is not None:
        _wait_until(lambda: _conmon_gone(record), CONMON_EXIT_WAIT)
        with contextlib.suppress(errors.NotFound):
            record, seen = sync(roots, cid)
    return record, seen


def signal_name(sig: str | int) -> str:
    """A normalised signal name for runc (``TERM``, ``15`` and ``SIGTERM`` all work)."""
    import signal as signal_mod

    text = str(sig).strip().upper()
    if text.isdigit():
        try:
            return signal_mod.Signals(int(text)).name
        except ValueError:
            raise errors.UsageError(f"invalid signal {sig}") from None
    name = text if text.startswith("SIG") else "SIG" + text
    if name not in signal_mod.Signals.__members__:
        raise errors.UsageError(f"invalid signal {sig}", hint="e.g. SIGTERM, KILL or 9")
    return name


def kill(roots: Roots, ref: str, sig: str | int = "SIGKILL") -> dict[str, Any]:
    """Send a signal to the container's init process (``runc kill``)."""
    cid = _state.resolve(roots, ref)
    name = signal_name(sig)
    record, seen = sync(roots, cid)
    if record.get("configured"):
        from podkit_runtime._configured import refuse_kill

        refuse_kill(record)
    if not can_kill(seen.status):
        raise errors.Conflict(f"can only kill running containers. {cid[:12]} is in state "
                              f"{seen.status}: container state improper")
    _note_user_stop(roots, cid)  # podman's StoppedByUser: no restart policy undoes it
    _runc(ContainerPaths(roots, cid), "kill", cid, name)
    _event(roots, record, "kill")
    with contextlib.suppress(errors.NotFound):  # --rm: it may be gone already
        thaw_if_paused(roots, cid, seen)
        record, seen = sync(roots, cid)
    return document(record, seen, True)


def stop(roots: Roots, ref: str, timeout: int | None = None,
         stop_signal: str | None = None) -> dict[str, Any]:
    """The stop signal, then SIGKILL after ``timeout`` seconds (podman's stop)."""
    cid = _state.resolve(roots, ref)
    _note_user_stop(roots, cid)  # first: an exit command mid-restart must see it
    record, seen = sync(roots, cid)
    if not can_kill(seen.status) or record.get("configured"):  # configured: nothing runs
        return {**document(record, seen, False), "warnings": []}
    timeout = record.get("stop_timeout", 10) if timeout is None else timeout
    sig = signal_name(stop_signal or record.get("stop_signal") or "SIGTERM")
    paths = ContainerPaths(roots, cid)
    warnings: list[str] = []
    exited = False
    if timeout > 0:
        _runc(paths, "kill", cid, sig, check=False)
        thaw_if_paused(roots, cid, seen)
        exited = _wait_until(lambda: _exited(roots, cid), timeout)
        if not exited:
            warnings.append(f"StopSignal {sig} failed to stop container {record['name']} in "
                            f"{timeout} seconds, resorting to SIGKILL")
    if not exited:
        _runc(paths, "kill", cid, "SIGKILL", check=False)
        thaw_if_paused(roots, cid, seen)
        if not _wait_until(lambda: _exited(roots, cid), KILL_WAIT):
            raise errors.Timeout(f"container {record['name']} did not die within "
                                 f"{KILL_WAIT:g}s of SIGKILL",
                                 hint="is the process stuck in the kernel (state D)?")
    record, seen = wait(roots, cid)
    _event(roots, record, "stop")
    return {**document(record, seen, True), "warnings": warnings}


# -- rm / cleanup -----------------------------------------------------------------------

def remove(roots: Roots, ref: str, *, force: bool = False, timeout: int | None = None,
           remove_volumes: bool = False) -> dict[str, Any]:
    """Remove the container's runtime state (runc, bundle, conmon files, record, log).

    A running container needs ``force`` (stop first), like podman. ``remove_volumes``
    also deletes its anonymous volumes (podman's ``rm --volumes``)."""
    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    if (record.get("pod") or {}).get("infra"):  # only with its pod (pod rm)
        from podkit_runtime._pod_members import refuse_infra_removal

        refuse_infra_removal(roots, record)
    if not can_remove_without_force(seen.status):
        if not force:
            raise errors.Conflict(
                f"cannot remove container {cid} as it is {seen.status} - running or paused "
                "containers cannot be removed without force: container state improper",
                hint="stop it first, or use --force")
        stop(roots, cid, timeout)
    elif seen.status == "created" and not record.get("configured"):
        # runc delete --force kills the waiting init; conmon then exits on its own.
        _runc_delete(ContainerPaths(roots, cid), False)
        wait(roots, cid)
    record = _state.load_record(roots, cid)
    _wait_until(lambda: _conmon_gone(record), CONMON_EXIT_WAIT)
    _remove_now(roots, cid, remove_volumes)
    return {"changed": True, "container": {"id": cid, "name": record["name"]},
            "removed": True}


def _remove_now(roots: Roots, cid: str, remove_volumes: bool = False) -> None:
    from podkit_runtime._bundle import remove_bundle

    with _state.lock(roots, cid):
        gone = _load_for_event(roots, cid)  # the record, read once here
        if gone is not None:
            _stop_health_timer(roots, cid, gone)
        paths = ContainerPaths(roots, cid)
        _runc_delete(paths, True)
        _release_conmon_cgroup((gone or {}).get("conmon_cgroup"))
        _release_container_cgroup(paths)
        _state.remove_files(roots, cid)
        remove_bundle(roots, cid, remove_volumes=remove_volumes)
        _event(roots, gone, "remove")


def forget(roots: Roots, cid: str, remove_volumes: bool = False) -> None:
    """Finish the removal of a container whose record is gone (an rm killed after
    ``_state.remove_files`` dropped it, or a create killed before it wrote one): its
    bundle, volatile files and lock file. Nothing when the record is there."""
    from podkit_runtime._bundle import remove_bundle

    with _state.lock(roots, cid):
        if ContainerPaths(roots, cid).record.exists():
            return
        _state.remove_files(roots, cid)
        remove_bundle(roots, cid, remove_volumes=remove_volumes)


def cleanup(roots: Roots, ref: str, *, remove_after: bool = False) -> dict[str, Any]:
    """What conmon's exit command runs: record the exit, ``runc delete``, and with
    ``remove_after`` (``--rm``) remove the container. Quiet when it is already gone."""
    try:
        cid = _state.resolve(roots, ref)
    except errors.NotFound:
        return {"changed": False, "container": {"id": ref}, "removed": False}
    try:
        record = _state.settle(roots, cid, _runc_delete)
    except errors.NotFound:
        return {"changed": False, "container": {"id": cid}, "removed": False}
    if record.get("configured"):  # it never ran: nothing to clean up
        return {"changed": False, "container": {"id": cid}, "removed": False}
    from podkit_runtime import _exits, _restart

    _stop_health_timer(roots, cid, record)
    _event(roots, record, "cleanup")
    if record.get("pod"):  # --exit-policy stop: the last member out stops the pod
        from podkit_runtime._pods import after_member_exit

        after_member_exit(roots, record)
    if not remove_after and _restart.after_exit(roots, cid):
        return {"changed": True, "container": {"id": cid, "name": record.get("name")},
                "exit_code": record.get("exit_code"), "removed": False, "restarted": True}
    if remove_after:
        _exits.keep(roots, record)  # wait on a removed --rm container: its exit code
        # podman's --rm takes the anonymous volumes along.
        _remove_now(roots, cid, remove_volumes=True)
    return {"changed": True, "container": {"id": cid, "name": record.get("name")},
            "exit_code": record.get("exit_code"), "removed": remove_after}


# The names the package exports (podkit_runtime.create_container, ...).
create_container = create
start_container = start
run_container = run
wait_container = wait
kill_container = kill
stop_container = stop
remove_runtime = remove
cleanup_container = cleanup


# -- hooks into restart policies, healthchecks and kept exit codes ------------------------

def _await_exit_file(roots: Roots, cid: str, paths: ContainerPaths) -> None:
    """conmon may hang up the attach socket (the container's stdio at EOF) a moment
    before it writes the exit file: wait for the file while conmon lives, rather than
    fall back to wait(), which also waits for conmon's exit command (a process start-up
    later)."""
    try:
        record = _state.load_record(roots, cid)
    except errors.NotFound:
        return
    while not paths.exit_file.exists() and not _conmon_gone(record):
        time.sleep(EXIT_FILE_POLL)


def _wait_out_restarts(roots: Roots, cid: str, paths: ContainerPaths
                       ) -> tuple[dict[str, Any], Observed] | None:
    from podkit_runtime._attached_restart import wait_out_restarts

    return wait_out_restarts(roots, cid, paths)


def _release_conmon_cgroup(path: str | None) -> None:
    from podkit_runtime._conmon_cgroup import release

    release(path)


def _release_container_cgroup(paths: ContainerPaths) -> None:
    from podkit_runtime._conmon_cgroup import release_container

    release_container(paths.bundle)


def _passthrough_stdio(opts: CreateOptions, tty: bool) -> tuple[int, int, int] | None:
    from podkit_runtime._log_options import check_passthrough

    if opts.log_driver != "passthrough":
        return None
    check_passthrough(opts.log_driver, tty, opts.passthrough_stdio)
    return opts.passthrough_stdio


def new_record(doc: dict[str, Any], opts: Any, paths: ContainerPaths, created_at: float,
               **fields: Any) -> dict[str, Any]:
    """A container's record as create makes it (``fields`` add to or override it: the
    pids of conmon and the container, or a configured container's zeros)."""
    cid = doc["container"]["id"]
    return {
        "id": cid, "name": doc["container"].get("name") or cid[:12],
        "created_at": _state.iso_time(created_at), "created_ts": created_at,
        "started_at": None, "finished_at": None, "exit_code": None,
        "pid": 0, "conmon_pid": 0, "conmon_start": None,
        "image": (doc["container"].get("image_name")
                  or ((doc.get("image") or {}).get("names") or [None])[-1]),
        "image_id": doc["container"].get("image_id") or (doc.get("image") or {}).get("id"),
        "command": list(doc["bundle"].get("args") or []),
        "stdin": opts.stdin, "tty": opts.tty, "auto_remove": opts.remove,
        "stop_signal": opts.stop_signal or _image_stop_signal(doc) or "SIGTERM",
        "stop_timeout": opts.stop_timeout, "log_path": str(paths.log),
        "log_driver": opts.log_driver, "log_size_max": opts.log_size_max,
        "doc": _doc_for_record(doc), "pod": doc["bundle"].get("pod"), "conmon_cgroup": None,
        **fields,
    }


def _restart_fields(opts: CreateOptions) -> dict[str, Any]:
    from podkit_runtime._restart import record_fields

    return record_fields(opts)


def _start_health_timer(roots: Roots, record: dict[str, Any]) -> None:
    if not record.get("healthcheck"):  # most containers: no timer, no module to load
        return
    from podkit_runtime._health import start_timer

    start_timer(roots, record)


def _stop_health_timer(roots: Roots, cid: str, record: dict[str, Any]) -> None:
    if not (record.get("healthcheck") or record.get("health_timer")):
        return  # none was ever started
    from podkit_runtime._health import stop_timer

    stop_timer(roots, cid, record)


def _note_user_stop(roots: Roots, cid: str) -> None:
    from podkit_runtime._restart import note_user_stop

    note_user_stop(roots, cid)


def _load_for_event(roots: Roots, cid: str) -> dict[str, Any] | None:
    from podkit_runtime._container_events import load

    return load(roots, cid)


def _removed_exit(roots: Roots, ref: str) -> tuple[dict[str, Any], Observed]:
    from podkit_runtime._exits import lookup

    kept = lookup(roots, ref)
    if kept is None:
        raise errors.NotFound(f"no such container: {ref}",
                              hint="pod-runtime ps --all lists the containers")
    return ({"id": kept["id"], "name": kept.get("name"), "doc": {}},
            Observed("exited", kept.get("exit_code"), kept.get("finished_at"), 0, 0))
