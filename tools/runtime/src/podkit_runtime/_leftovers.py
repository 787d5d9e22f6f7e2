"""What a killed create or start can leave of a container's previous try, found and
removed before the next try (chaos suite: `pod start` SIGKILLed while conmon ran
``runc create``, soak seed 1052147947).

Why the pidfile is not enough: conmon writes ``conmon.pid`` itself, some time after it
was spawned; a start killed before that leaves a conmon nobody can name by its pidfile,
still running ``runc create`` or waiting on the container it made. Left alive, it
races the next try — two ``runc create`` for one id, and its exit command (``pod
cleanup``: network released, rootfs unmounted) run under the new container — which then
fails with runc's "can't get final child's PID from pipe: EOF" or "container with id
exists". So such a conmon is found by its argv (``-c <id>``) and killed first (SIGKILL:
no exit command), then runc's state is deleted.

    conmon_pids(cid)            -> [pid]   live conmons of this container
    sweep(paths, runc_delete)   -> [what was done]
    leftover_failure(message)   -> bool    a create failure a sweep and one retry mend
"""

from __future__ import annotations

import _signal  # the C module: signal.py's enums cost ms on the start path
import contextlib
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from podkit_runtime._state import ContainerPaths

#: runc's words for a create that met the state of an earlier try of the same id
LEFTOVER_FAILURES = ("can't get final child's PID from pipe", "container with id exists",
                     "container with given ID already exists", "/.pidfile: file exists")
#: bound on waiting for a killed conmon to be gone (not a timing assertion: a SIGKILLed
#: process ends at once unless in uninterruptible sleep)
KILL_WAIT = 5.0


def leftover_failure(message: str) -> bool:
    return any(m in message for m in LEFTOVER_FAILURES)


def _argv(pid: str) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def conmon_pids(cid: str) -> list[int]:
    """Live conmon processes whose argv names container ``cid`` (``-c``/``--cid``)."""
    want = cid.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = _argv(entry)
        if not argv or not os.path.basename(argv[0]).startswith(b"conmon"):
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg in (b"-c", b"--cid") and argv[i + 1] == want:
                found.append(int(entry))
                break
    return found


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def sweep(paths: ContainerPaths, runc_delete: Callable[[ContainerPaths, bool], bool]
          ) -> list[str]:
    """Kill every conmon of ``paths.cid`` (SIGKILL: no exit command runs), wait for them
    to be gone, delete runc's state of the container, conmon's exit file and a killed
    runc's ``.pidfile``."""
    done = []
    pids = conmon_pids(paths.cid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, _signal.SIGKILL)
            done.append(f"killed conmon {pid} of an earlier try")
    deadline = time.monotonic() + KILL_WAIT
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if not _gone(p)]
        if pids:
            time.sleep(0.01)
    if (paths.runc_root / paths.cid).exists():
        runc_delete(paths, False)
        done.append("deleted runc's state of an earlier try")
    for stale in (paths.exit_file, paths.runc_pidfile_temp):  # .pidfile: a killed runc's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
    return done
