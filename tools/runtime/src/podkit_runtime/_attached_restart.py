"""An attached ``run`` of a container with a restart policy, as podman 4.3.1 does it.

podman attaches to the first run only: its output ends at the first exit (conmon
closes the attach socket), and the restarts are conmon's exit command's business
(``container cleanup``), as for a detached container. But ``podman run`` then waits
(``ContainerRun`` -> ``GetContainerExitCode`` -> ``WaitForExit``, which first blocks
on conmon's pidfd: conmon waits for its exit command, which has restarted the
container by then) until the container has exited for good, and its status is the
last run's exit code. Observed with podman 4.3.1 here: ``podman run --restart
on-failure:2 IMAGE sh -c 'echo run; exit 1'`` prints ``run`` once, exits 1, and
inspect then shows RestartCount 2.

So after the first exit of a container whose policy may restart it,
:func:`wait_out_restarts` waits until it is exited and settled for good: the exit
command wrote its decision (``restart_note`` "not restarted: ..." or "restart failed"
next to an exit code), or no conmon of it is alive any more (the newest one is in the
conmon pidfile, which each restart rewrites; a conmon killed with -9 runs no exit
command, and then nothing will restart it either).
"""

from __future__ import annotations

from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: polls (of POLL seconds) a missing conmon pidfile counts as "a restart is spawning"
MISSING_PIDFILE_POLLS = 500


def _conmon_alive(pidfile: Path, cid: str) -> bool | None:
    """Is the conmon in ``pidfile`` alive and this container's? None: no pidfile."""
    try:
        pid = int(pidfile.read_text().strip() or 0)
    except FileNotFoundError:
        return None
    except ValueError:
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return cid.encode() in argv


def _decided(record: dict[str, Any]) -> bool:
    note = str(record.get("restart_note") or "")
    return record.get("exit_code") is not None and (
        note.startswith("not restarted") or note == "restart failed")


def wait_out_restarts(roots: Roots, cid: str, paths: Any) -> tuple[dict[str, Any], Any] | None:
    """None when the container has no restart policy (the caller goes on as before);
    else (record, observed) once its last run has ended and nothing will restart it."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import _wait_until, sync

    try:
        record = _state.load_record(roots, cid)
    except errors.NotFound:
        return None
    policy = (record.get("restart_policy") or {}).get("name", "no")
    if policy == "no" and not record.get("restart_pending"):
        return None
    result: list[tuple[dict[str, Any], Any]] = []
    missing = [0]

    def over() -> bool:
        try:
            record, seen = sync(roots, cid)
        except errors.NotFound:  # removed meanwhile (rm -f by someone)
            raise errors.NotFound(f"container {cid[:12]} was removed while it restarted",
                                  hint="its restarts ended with it") from None
        if seen.status != "exited":
            return False
        alive = _conmon_alive(paths.conmon_pidfile, cid)
        if alive is None:  # a restart between unlinking the pidfile and writing it
            missing[0] += 1
            alive = missing[0] < MISSING_PIDFILE_POLLS
        if _decided(record) or not alive:
            result.append((record, seen))
            return True
        return False

    _wait_until(over, None)
    return result[-1]
