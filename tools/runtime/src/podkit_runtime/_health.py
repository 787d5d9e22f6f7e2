"""Healthchecks without systemd.

podman 4.3.1 runs ``podman healthcheck run ID`` from a transient systemd timer. podkit
has neither a daemon nor systemd here, so each container with a healthcheck gets a
small timer process, ``pod-runtime healthcheck loop ID``, started by ``start`` in its
own session (pid and start time in the record, and in ``<runroot>/runtime/<id>/
healthcheck.pid``). It sleeps ``interval`` seconds, runs the check, and ends itself
when the container is no longer running or the record names another timer; the exit
command (every exit path: exit, stop, kill, rm) and ``rm`` end it at once.

A check (:func:`run_check`) runs the command through exec (conmon + ``runc exec``),
like podman, and records the result in podman's shape under the container's lock::

    "health": {"Status": "starting|healthy|unhealthy", "FailingStreak": N,
               "Log": [{"Start", "End", "ExitCode", "Output"}, ...]}   # last 5

A failure inside ``start_period`` does not count. ``retries`` failures in a row make the
container unhealthy, and then ``on_failure`` (podman 4.3's --health-on-failure: none,
kill, restart, stop) acts. ``restart`` kills the container and lets the exit command
start it again (``restart_pending``), whatever the restart policy.

The command's ``timeout`` is enforced by killing the exec'd process (its pid comes from
the exec session) once it is overdue; the check then counts as failed, as in podman.
"""

from __future__ import annotations

import contextlib
import os
import re
import time

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: podman's defaults (define.DefaultHealthCheck*)
DEFAULT_INTERVAL = 30.0
DEFAULT_RETRIES = 3
DEFAULT_TIMEOUT = 30.0
#: podman keeps this many results, and this many bytes of each output
MAX_LOG = 5
MAX_OUTPUT = 500
ON_FAILURE = ("none", "kill", "restart", "stop")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, what: str) -> float:
    """Seconds in a Go duration ("30s", "1m30s", "500ms"); a bare number is seconds."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise errors.UsageError(f"invalid value for {what}: invalid duration {text!r}",
                                hint="e.g. 30s, 1m, 500ms")
    return total


def parse_test(cmd: str) -> list[str] | None:
    """podman's --health-cmd: a JSON array (``["CMD","a"]`` or ``["CMD-SHELL","x"]``),
    ``none`` (no check), or a shell command line (CMD-SHELL)."""
    cmd = cmd.strip()
    if not cmd or cmd.lower() == "none":
        return None
    if cmd.startswith("["):
        from podkit_common.jsonio import loads

        test = loads(cmd.encode(), what="--health-cmd")
        if not (isinstance(test, list) and test and all(isinstance(x, str) for x in test)):
            raise errors.UsageError("--health-cmd: a JSON array of strings is needed")
        if test[0] == "NONE":
            return None
        if test[0] not in ("CMD", "CMD-SHELL"):
            test = ["CMD", *test]
        return test
    return ["CMD-SHELL", cmd]


def health_config(cmd: str | None, interval: str = "30s", retries: int = DEFAULT_RETRIES,
                  start_period: str = "0s", timeout: str = "30s",
                  on_failure: str = "none") -> dict[str, Any] | None:
    """The healthcheck options as the record keeps them (None: no healthcheck)."""
    test = parse_test(cmd) if cmd else None
    if test is None:
        return None
    if on_failure not in ON_FAILURE:
        raise errors.UsageError(f"invalid --health-on-failure {on_failure!r}",
                                hint="none, kill, restart or stop")
    if retries < 1:
        raise errors.UsageError("healthcheck-retries must be greater than 0")
    every = 0.0 if interval == "disable" else parse_duration(interval, "--health-interval")
    if interval != "disable" and every < 1:
        raise errors.UsageError("healthcheck-interval must be at least 1 second")
    wait = parse_duration(timeout, "--health-timeout")
    if wait < 1:
        raise errors.UsageError("healthcheck-timeout must be at least 1 second")
    return {"test": test, "interval": every, "retries": retries,
            "start_period": parse_duration(start_period, "--health-start-period"),
            "timeout": wait, "on_failure": on_failure}


def record_fields(config: dict[str, Any] | None) -> dict[str, Any]:
    if not config:
        return {}
    return {"healthcheck": config, "health": {"Status": "starting", "FailingStreak": 0,
                                              "Log": []}}


def reset_health(record: dict[str, Any]) -> None:
    """A (re)started container is ``starting`` again (its log is kept)."""
    if record.get("healthcheck"):
        health = record.get("health") or {"Log": []}
        record["health"] = {**health, "Status": "starting", "FailingStreak": 0}


def status_suffix(record: dict[str, Any]) -> str:
    """`` (healthy)`` for ps's Status column of a running container with a check."""
    health = record.get("health") if record.get("healthcheck") else None
    return f" ({health['Status']})" if health else ""


def inspect_health(record: dict[str, Any]) -> dict[str, Any] | None:
    """State.Health for inspect (podman's shape)."""
    if not record.get("healthcheck"):
        return None
    health = record.get("health") or {}
    return {"Status": health.get("Status", "starting"),
            "FailingStreak": health.get("FailingStreak", 0), "Log": health.get("Log", [])}


def inspect_config(record: dict[str, Any]) -> dict[str, Any] | None:
    """Config.Healthcheck for inspect (durations in nanoseconds, like podman)."""
    hc = record.get("healthcheck")
    if not hc:
        return None
    return {"Test": hc["test"], "Interval": int(hc["interval"] * 1e9),
            "Timeout": int(hc["timeout"] * 1e9), "StartPeriod": int(hc["start_period"] * 1e9),
            "Retries": hc["retries"]}


# -- one check --------------------------------------------------------------------------

def _argv(test: list[str]) -> list[str]:
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


def _run_command(roots: Roots, cid: str, argv: list[str], timeout: float
                 ) -> tuple[int, str]:
    """(exit code, output) of ``argv`` exec'd in the container; 1 and a note when it
    overran ``timeout`` (the exec'd process is killed)."""
    import signal
    import tempfile
    import threading

    from podkit_runtime._exec import ExecOptions, exec_in
    from podkit_runtime._run import ContainerCannotStart

    paths = ContainerPaths(roots, cid)
    before = set(_sessions(paths))
    overdue = threading.Event()

    def kill_overdue() -> None:
        overdue.set()
        for sid in set(_sessions(paths)) - before:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((paths.bundle / sid / "exec_pid").read_text()), signal.SIGKILL)

    timer = threading.Timer(timeout, kill_overdue)
    timer.daemon = True
    with tempfile.TemporaryFile() as out:
        null = os.open(os.devnull, os.O_RDONLY)
        timer.start()
        try:
            doc = exec_in(roots, cid, ExecOptions(command=tuple(argv)),
                          stdio=(null, out.fileno(), out.fileno()))
            code = doc["exec"]["exit_code"]
            code = 1 if code is None else int(code)
        except ContainerCannotStart as exc:
            code, out_text = exc.run_exit_code, str(exc)
            return code, out_text[:MAX_OUTPUT]
        finally:
            timer.cancel()
            os.close(null)
        out.seek(0)
        text = out.read(MAX_OUTPUT * 4).decode(errors="replace")
    if overdue.is_set():
        return 1, f"Health check exceeded timeout of {timeout:g}s"
    return code, text[:MAX_OUTPUT]


def _sessions(paths: ContainerPaths) -> list[str]:
    try:
        return [e.name for e in os.scandir(paths.bundle) if len(e.name) == 64 and e.is_dir()]
    except FileNotFoundError:
        return []


def apply_result(record: dict[str, Any], code: int, output: str, start: float, end: float
                 ) -> bool:
    """Fold one result into ``record["health"]`` (pure); True when it just turned
    unhealthy."""
    hc = record["healthcheck"]
    health = dict(record.get("health") or {"Status": "starting", "FailingStreak": 0,
                                           "Log": []})
    entry = {"Start": _state.iso_time(start), "End": _state.iso_time(end), "ExitCode": code,
             "Output": output}
    health["Log"] = [*(health.get("Log") or []), entry][-MAX_LOG:]
    was = health.get("Status")
    if code == 0:
        health["Status"], health["FailingStreak"] = "healthy", 0
    else:
        started = float(record.get("started_ts") or 0)
        if not (hc.get("start_period") and start - started < hc["start_period"]):
            health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
            if health["FailingStreak"] >= hc["retries"]:
                health["Status"] = "unhealthy"
    record["health"] = health
    return health["Status"] == "unhealthy" and was != "unhealthy"


def run_check(roots: Roots, ref: str) -> dict[str, Any]:
    """``healthcheck run``: run the check once and record it. The document holds
    ``health`` and ``healthy`` (this run's result, podman's exit 0/1)."""
    from podkit_runtime._lifecycle import sync

    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    hc = record.get("healthcheck")
    if not hc:
        raise errors.Conflict(f"container {record['name']} has no defined healthcheck",
                              hint="create it with --health-cmd")
    if seen.status != "running":
        raise errors.Conflict(f"container {record['name']} is {seen.status}: a healthcheck "
                              "needs a running container: container state improper")
    start = time.time()
    code, output = _run_command(roots, cid, _argv(hc["test"]), hc["timeout"])
    end = time.time()
    with _state.lock(roots, cid):
        record = _state.load_record(roots, cid)
        turned = apply_result(record, code, output, start, end)
        _state.save_record(roots, record)
    if turned:
        _on_failure(roots, cid, hc.get("on_failure", "none"))
    return {"changed": True, "container": {"id": cid, "name": record["name"]},
            "healthy": code == 0, "health": record["health"]}


def _on_failure(roots: Roots, cid: str, action: str) -> None:
    """podman 4.3's --health-on-failure, once the container turned unhealthy."""
    from podkit_runtime import _lifecycle

    with contextlib.suppress(errors.PodkitError):
        if action == "kill":
            _lifecycle.kill(roots, cid, "SIGKILL")
        elif action == "stop":
            _lifecycle.stop(roots, cid)
        elif action == "restart":
            with _state.lock(roots, cid):
                record = _state.load_record(roots, cid)
                record["restart_pending"] = True
                _state.save_record(roots, record)
            _lifecycle._runc(ContainerPaths(roots, cid), "kill", cid, "SIGKILL", check=False)


# -- the timer --------------------------------------------------------------------------

def _timer_pidfile(roots: Roots, cid: str):
    return ContainerPaths(roots, cid).run_dir / "healthcheck.pid"


def start_timer(roots: Roots, record: dict[str, Any]) -> None:
    """Start ``pod-runtime healthcheck loop ID`` for a just-started container (caller
    holds the lock; the record is saved with the timer's pid)."""
    hc = record.get("healthcheck")
    if not hc or not hc.get("interval"):
        return
    import subprocess

    from podkit_runtime._conmon import conmon_env, exit_command_binary

    roots_args = ["--root", str(roots.root), "--runroot", str(roots.runroot)]
    proc = subprocess.Popen(
        [exit_command_binary(), *roots_args, "healthcheck", "loop", record["id"]],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        close_fds=True, start_new_session=True, env=conmon_env(dict(os.environ)))
    # Detached for good: nothing of ours waits for it (avoid a ResourceWarning later).
    proc.returncode = 0
    record["health_timer"] = {"pid": proc.pid, "start": _state.proc_start_time(proc.pid)}
    _state.save_record(roots, record)
    with contextlib.suppress(OSError):
        _timer_pidfile(roots, record["id"]).write_text(f"{proc.pid}\n")


def stop_timer(roots: Roots, cid: str, record: dict[str, Any] | None = None) -> None:
    """End the container's timer process, if it runs (not when we are it)."""
    import signal

    if record is None:
        try:
            record = _state.load_record(roots, cid)
        except errors.NotFound:
            return
    timer = record.get("health_timer") or {}
    pid = timer.get("pid")
    if pid and pid != os.getpid() and _state.process_matches(pid, timer.get("start")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_timer_pidfile(roots, cid))


def loop(roots: Roots, cid: str) -> None:
    """The timer: a check every ``interval`` seconds while the container runs and the
    record still names this process as its timer."""
    while True:
        try:
            # Under the lock: start (or a restart) saves our pid while holding it.
            with _state.lock(roots, cid):
                record = _state.load_record(roots, cid)
        except errors.NotFound:
            return
        if (record.get("health_timer") or {}).get("pid") != os.getpid():
            return
        hc = record.get("healthcheck") or {}
        if not hc.get("interval"):
            return
        time.sleep(hc["interval"])
        try:
            from podkit_runtime._lifecycle import sync

            record, seen = sync(roots, cid)
        except errors.NotFound:
            return
        if (record.get("health_timer") or {}).get("pid") != os.getpid():
            return
        if seen.status == "exited":
            return
        if seen.status != "running":
            continue
        with contextlib.suppress(errors.PodkitError):
            run_check(roots, cid)
