"""Container state that outlives the process that made it (no daemon).

Design
------
Two halves, like podman's database plus its run directory:

    <root>/runtime/containers/<id>/record.json   persistent: name, image, bundle, doc,
                                                 created/started/finished, exit code
    <root>/runtime/containers/<id>/ctr.log       the k8s-file log conmon writes
    <runroot>/runtime/<id>/conmon.pid            conmon's pid (written by conmon)
    <runroot>/runtime/<id>/pidfile               the container's pid (written by runc)
    <runroot>/runtime/<id>/oci-log               runc's --log-format=json log
    <runroot>/runtime/exits/<id>                 conmon's exit file: the decimal exit code
    <runroot>/bundles/<id>/{attach,ctl,winsz}    conmon's attach socket and FIFOs

The record is written atomically and only under the per-container lock
(``object_lock(<root>/locks, "runtime", id)``). Nothing is trusted blindly: every read
reconciles the record with what is on the machine (:func:`observe`):

* a recorded exit code              -> exited (cleanup already ran);
* an exit file                      -> exited with that code (cleanup may be running);
* conmon alive (pid + start time)   -> created, or running once ``start`` recorded it;
* conmon gone and no exit file      -> orphaned: conmon was killed, or the runroot was
  wiped by a reboot. :func:`settle` then kills what is left of the container through runc,
  deletes runc's state and records exit code 137 (we killed it) or -1 (unknown, podman's
  value), so a container is never "running" forever.

Status names are podman's: created, running, paused, exited (``stopped`` is accepted in
the schema: podman shows it between the exit and the cleanup).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from podkit_common import atomic, errors, records
from podkit_common.locks import FileLock, object_lock
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

#: podman's code for an exit nobody saw (conmon died, no exit file).
UNKNOWN_EXIT = -1


@records.record(frozen=True)
class ContainerPaths:
    """Every file of one container, persistent and volatile."""

    roots: Roots
    cid: str

    @property
    def record_dir(self) -> Path:
        return self.roots.root / "runtime" / "containers" / self.cid

    @property
    def record(self) -> Path:
        return self.record_dir / "record.json"

    @property
    def log(self) -> Path:
        return self.record_dir / "ctr.log"

    @property
    def run_dir(self) -> Path:
        return self.roots.runroot / "runtime" / self.cid

    @property
    def conmon_pidfile(self) -> Path:
        return self.run_dir / "conmon.pid"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "pidfile"

    @property
    def runc_pidfile_temp(self) -> Path:
        """runc writes the pidfile as ``.pidfile`` (O_EXCL) and renames it: a runc killed
        in between leaves it, and every later ``runc create`` fails "file exists"."""
        return self.run_dir / ".pidfile"

    @property
    def volatile(self) -> tuple[Path, ...]:
        """What one conmon + runc create leaves for the next to trip on: removed before
        each create (first start, init, restart)."""
        return (self.attach_socket, self.ctl, self.bundle / "winsz", self.exit_file,
                self.pidfile, self.runc_pidfile_temp, self.conmon_pidfile, self.oci_log)

    @property
    def oci_log(self) -> Path:
        return self.run_dir / "oci-log"

    @property
    def exit_dir(self) -> Path:
        return self.roots.runroot / "runtime" / "exits"

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.cid

    @property
    def bundle(self) -> Path:
        return self.roots.runroot / "bundles" / self.cid

    @property
    def attach_socket(self) -> Path:
        return self.bundle / "attach"

    @property
    def ctl(self) -> Path:
        return self.bundle / "ctl"

    @property
    def runc_root(self) -> Path:
        return self.roots.runroot / "runc"


def records_dir(roots: Roots) -> Path:
    return roots.root / "runtime" / "containers"


#: locks this process holds, so a locked section may call another one (flock is per
#: open file: a second flock of the same file in the same process would wait forever)
_HELD: dict[str, int] = {}


@contextlib.contextmanager
def lock(roots: Roots, cid: str, timeout: float | None = 60.0) -> Iterator[None]:
    """The container's lock (re-entrant within this process)."""
    key = f"{roots.root}\0{cid}"
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    # A container that is gone (removed under this lock, or before a late comer such as
    # conmon's exit command made the file again) takes its lock file with it.
    held: FileLock = object_lock(roots.root / "locks", "runtime", cid, timeout=timeout,
                                 keep_while=(records_dir(roots) / cid,))
    with held:
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]


def now_iso() -> str:
    return iso_time(time.time())


def iso_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def load_record(roots: Roots, cid: str) -> dict[str, Any]:
    try:
        return atomic.read_json(ContainerPaths(roots, cid).record)
    except FileNotFoundError:
        raise errors.NotFound(f"no such container: {cid}",
                              hint="pod-runtime ps --all lists the containers") from None


def save_record(roots: Roots, record: dict[str, Any]) -> None:
    paths = ContainerPaths(roots, record["id"])
    paths.record_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic.write_json(paths.record, record)


def all_records(roots: Roots) -> list[dict[str, Any]]:
    out = []
    try:
        entries = list(os.scandir(records_dir(roots)))
    except FileNotFoundError:
        return []
    for entry in entries:
        if len(entry.name) != 64:
            continue
        with contextlib.suppress(FileNotFoundError):
            out.append(atomic.read_json(Path(entry.path) / "record.json"))
    out.sort(key=lambda r: r.get("created_at", ""))
    return out


def resolve(roots: Roots, ref: str) -> str:
    """A container id from an id, a unique id prefix (3+ hex digits) or a name."""
    base = records_dir(roots)
    if len(ref) == 64 and (base / ref / "record.json").exists():
        return ref
    by_prefix, by_name = [], []
    hexish = len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref)
    for record in all_records(roots):
        if record.get("name") == ref:
            by_name.append(record["id"])
        elif hexish and record["id"].startswith(ref):
            by_prefix.append(record["id"])
    if by_name:
        return by_name[0]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise errors.Conflict(f"container id prefix {ref} is ambiguous",
                              hint="give more digits of the id")
    raise errors.NotFound(f"no such container: {ref}",
                          hint="pod-runtime ps --all lists the containers")


def proc_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie pid, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_matches(pid: int | None, start_time: int | None) -> bool:
    """pid is alive and is the process we recorded (not a recycled pid)."""
    if not pid:
        return False
    started = proc_start_time(pid)
    return started is not None and (start_time is None or started == start_time)


def read_exit_file(paths: ContainerPaths) -> tuple[int, float] | None:
    """(exit code, ctime) from conmon's exit file, or None when it is not there yet."""
    try:
        st = os.stat(paths.exit_file)
        text = paths.exit_file.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text), st.st_ctime
    except ValueError:
        return UNKNOWN_EXIT, st.st_ctime


@records.record(frozen=True)
class Observed:
    """What a container's state is right now, reconciled from the record and the machine."""

    status: str
    exit_code: int | None
    finished_at: str | None
    pid: int
    conmon_pid: int
    #: conmon is gone without an exit file: settle() must finish the container off
    orphaned: bool = False
    #: the exit is known but cleanup (runc delete, the record) has not run yet
    needs_cleanup: bool = False


def observe(roots: Roots, record: dict[str, Any]) -> Observed:
    """The true status of the container in ``record`` (no side effects)."""
    if record.get("exit_code") is not None:
        return Observed("exited", record["exit_code"], record.get("finished_at"), 0, 0)
    if record.get("configured"):  # no conmon/runc yet (_configured): podman's "created"
        return Observed("created", None, None, 0, 0)
    paths = ContainerPaths(roots, record["id"])
    conmon_alive = process_matches(record.get("conmon_pid"), record.get("conmon_start"))
    exited = read_exit_file(paths)
    if exited is None and not conmon_alive:
        # conmon may have written the exit file just before it exited: look again.
        exited = read_exit_file(paths)
    if exited is not None:
        return Observed("exited", exited[0], iso_time(exited[1]), 0, 0,
                        needs_cleanup=not conmon_alive)
    if not conmon_alive:
        return Observed("exited", None, None, 0, 0, orphaned=True)
    status = "paused" if record.get("paused") else (
        "running" if record.get("started_at") else "created")
    return Observed(status, None, None, int(record.get("pid") or 0),
                    int(record.get("conmon_pid") or 0))


def settle(roots: Roots, cid: str, runc_delete: Any) -> dict[str, Any]:
    """Record the exit of a container whose exit is known or whose conmon is gone.

    Takes the lock; ``runc_delete(paths, kill_first)`` removes runc's state and returns
    whether a live process had to be killed. Returns the updated record.
    """
    paths = ContainerPaths(roots, cid)
    with lock(roots, cid):
        record = load_record(roots, cid)
        seen = observe(roots, record)
        if record.get("exit_code") is not None:
            return record
        if seen.orphaned:
            killed = runc_delete(paths, True)
            record["exit_code"] = 137 if killed else UNKNOWN_EXIT
            record["finished_at"] = now_iso()
            record["exit_note"] = ("conmon was gone and the container was still running: "
                                   "killed" if killed else
                                   "conmon was gone without an exit file: exit code unknown")
        elif seen.exit_code is not None and (seen.needs_cleanup or seen.status == "exited"):
            runc_delete(paths, False)
            record["exit_code"] = seen.exit_code
            record["finished_at"] = seen.finished_at
        else:
            return record
        record["pid"] = 0
        record["conmon_pid"] = 0
        record["paused"] = False
        try:
            save_record(roots, record)
        except OSError as exc:
            import errno

            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # The disk is full (often with this container's own log): the exit file
            # still says how it ended, so the next call settles again; meanwhile
            # `logs` and `rm`, the way out of the full disk, must not fail here.
            return record
        from podkit_runtime._container_events import died

        died(roots, record)  # once: the exit is recorded here, under the lock
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.exit_file)
        return record


def remove_files(roots: Roots, cid: str) -> None:
    """Delete the record, the log and the volatile files (the bundle is ``_bundle``'s:
    it releases volumes). The record goes first, so a crash leaves a recordless
    directory, never a record pointing at half-deleted files."""
    import shutil

    paths = ContainerPaths(roots, cid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(paths.record)
    for d in (paths.run_dir, paths.record_dir):
        shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(paths.exit_file)
