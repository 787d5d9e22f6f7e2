"""Starting conmon the way podman 4.3.1 does, and the create handshake.

``conmon_argv`` and ``conmon_env`` are pure; ``spawn_conmon`` runs it:

1. two ``socketpair(AF_UNIX, SOCK_SEQPACKET)``: the sync pipe (conmon tells us the
   container pid, or ``{"data": -1, "message": ...}``) and the start pipe (conmon waits
   for one byte before it forks anything: the moment to move it into a cgroup);
2. conmon in its own process group with only fds 0-2 and those two ends inherited, at 3
   and 4 as podman passes them (cf. CVE-2024-21626: nothing else of ours leaks into
   conmon or runc; ``_spawn``);
3. the first conmon process exits after writing the long-lived conmon's pid to
   ``--conmon-pidfile``; the survivor runs ``runc create`` and reports on the sync pipe.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podkit_common import errors
from podkit_common.cli_base import sibling_executable
from podkit_common.records import record
from podkit_runtime._log_options import conmon_log_arg
from podkit_runtime._state import ContainerPaths

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

#: how long `runc create` may take before we give up (podman allows 240 s)
CREATE_TIMEOUT = 240.0


def conmon_binary() -> str:
    from podkit_common.spawn import which

    path = os.environ.get("PODKIT_CONMON") or which("conmon")
    for candidate in (path, "/usr/bin/conmon", "/usr/libexec/podman/conmon"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise errors.NotFound("conmon not found", hint="apt-get install conmon")


def exit_command_binary() -> str:
    """The absolute path of pod-runtime, which conmon runs as the exit command."""
    return sibling_executable("pod-runtime", "PODKIT_RUNTIME_EXE")


@record(frozen=True)
class ConmonOptions:
    """What changes from one container to the next."""

    name: str
    stdin: bool = False
    tty: bool = False
    remove: bool = False
    log_level: str = "warning"
    log_size_max: int | None = None
    log_driver: str = "k8s-file"  # or json-file, none, passthrough (_log_options)
    #: None: ``pod-runtime cleanup``; else the exit command argv (pod passes its own)
    exit_command: tuple[str, ...] | None = None


def conmon_argv(conmon: str, runc: str, paths: ContainerPaths, opts: ConmonOptions,
                exit_command: str) -> list[str]:
    """conmon's command line, in podman's order (oci_conmon_common.go createOCIContainer)."""
    cid = paths.cid
    argv = [conmon, "--api-version", "1", "-c", cid, "-u", cid, "-r", runc,
            "-b", str(paths.bundle), "-p", str(paths.pidfile), "-n", opts.name,
            "--exit-dir", str(paths.exit_dir), "--full-attach",
            "--runtime-arg", "--root", "--runtime-arg", str(paths.runc_root),
            "-l", conmon_log_arg(opts.log_driver, str(paths.log)),
            "--log-level", opts.log_level]
    if opts.log_size_max:
        argv += ["--log-size-max", str(opts.log_size_max)]
    argv += ["--runtime-arg", "--log-format=json", "--runtime-arg", "--log",
             f"--runtime-arg={paths.oci_log}"]
    if opts.log_driver == "passthrough":
        pass  # conmon hands its own stdio to the container: no pipes, no pty
    elif opts.tty:
        argv.append("-t")
    elif opts.stdin:
        argv.append("-i")
    argv += ["--conmon-pidfile", str(paths.conmon_pidfile)]
    command = opts.exit_command or (
        exit_command, "--root", str(paths.roots.root), "--runroot", str(paths.roots.runroot),
        "cleanup", *(["--rm"] if opts.remove else []), cid)
    argv += ["--exit-command", command[0]]
    for arg in command[1:]:
        argv += ["--exit-command-arg", arg]
    return argv


def conmon_env(base: dict[str, str]) -> dict[str, str]:
    """podman's conmon environment (LC_*, PATH, HOME, XDG_RUNTIME_DIR) plus podkit's own
    PODKIT_* settings, so the exit command sees the configuration the caller saw (podman
    passes its flags on the exit command line instead); spawn_conmon adds the pipes."""
    env: dict[str, str] = {}
    for key, value in base.items():
        if (key.startswith(("LC_", "PODKIT_"))
                or key in ("PATH", "HOME", "XDG_RUNTIME_DIR", "LANG")):
            env[key] = value
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


@record(frozen=True)
class Created:
    pid: int
    conmon_pid: int


class CreateFailed(Exception):
    """conmon reported that ``runc create`` failed; ``message`` is runc's stderr."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _read_sync(sock: _socket.socket, timeout: float) -> dict | None:
    from podkit_common.jsonio import loads

    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        raise errors.Timeout(f"conmon said nothing for {timeout:g}s",
                             hint="is runc hanging? see the container's oci-log") from None
    if not data:
        return None
    with contextlib.suppress(errors.InvalidDocument):
        doc = loads(data.split(b"\n", 1)[0], what="conmon sync pipe")
        if isinstance(doc, dict):
            return doc
    raise errors.RuntimeFailure(f"conmon wrote nonsense on the sync pipe: {data[:200]!r}")


def _move_while(pid: int, cgroup: str | None, work: Callable[[], None] | None) -> None:
    """Move ``pid`` into ``cgroup`` (best effort, like podman) while ``work()`` runs."""
    from podkit_runtime._conmon_cgroup import _moved, move

    if not cgroup:
        _moved()  # one move a warmer expected (warm()) that will not come
        if work is not None:
            work()
        return

    if work is None:
        move(pid, cgroup)
        return
    from podkit_common.threads import start

    moved = start(move, pid, cgroup)
    try:
        work()
    finally:
        moved()


def _kill_unreleased(pid: int) -> None:
    import signal

    from podkit_common.spawn import wait

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        wait(pid)


def spawn_conmon(argv: list[str], env: dict[str, str], conmon_log: Path,
                 timeout: float = CREATE_TIMEOUT,
                 stdio: tuple[int, int, int] | None = None,
                 cgroup: str | None = None,
                 while_waiting: Callable[[], None] | None = None,
                 before_start: Callable[[], None] | None = None) -> Created:
    """Start conmon, release it with the start byte, and learn the container's pid.

    ``stdio``: conmon's own stdin, stdout and stderr (``--log-driver passthrough``:
    conmon hands them to the container); otherwise /dev/null and ``conmon_log``.
    ``cgroup``: where conmon goes before it may fork (``_conmon_cgroup``).
    ``before_start()`` runs after conmon started and before it is released, while it is
    moved into its cgroup: the first write to a cgroup v1 ``cgroup.procs`` waits out an
    RCU grace period (~10 ms here), time for what must be ready before runc runs (the
    bundle's last touches, stale files removed). If it raises, conmon is killed.
    ``while_waiting()`` runs once conmon is released, while it runs ``runc create`` (tens
    of milliseconds in which we would only wait): the caller's chance to get ready for
    what follows (imports, files) in parallel with runc."""
    # The C module: socket.py's wrappers (and its selectors, enums) cost ~3 ms to import.
    import _socket

    from podkit_common.spawn import spawn, wait

    # (non-inheritable, as every socket Python makes; _spawn places the child ends)
    sync_parent, sync_child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    start_parent, start_child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    child_fds = (sync_child.fileno(), start_child.fileno())  # at 3 and 4 in conmon
    env = {**env, "_OCI_SYNCPIPE": "3", "_OCI_STARTPIPE": "4"}
    # conmon 2.1.6 writes its OOM marker as "oom" in its working directory: run it in
    # the bundle, where inspect looks (<bundle>/oom, podman's place), and start clean.
    bundle = argv[argv.index("-b") + 1] if "-b" in argv else None
    if bundle:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(bundle, "oom"))
    log_fd = os.open(conmon_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        streams = stdio or (None, log_fd, log_fd)
        pid = spawn(argv, env=env, stdin=streams[0], stdout=streams[1], stderr=streams[2],
                    fds=child_fds, process_group=True, cwd=bundle)
    except OSError as exc:
        for s in (sync_parent, sync_child, start_parent, start_child):
            s.close()
        raise errors.RuntimeFailure(f"start conmon: {exc}",
                                    hint="is conmon installed?") from None
    finally:
        os.close(log_fd)
    sync_child.close()
    start_child.close()
    from podkit_runtime._timings import mark

    mark("conmon-spawn")
    try:
        try:  # podman's moveConmonToCgroupAndSignal: first the cgroup ...
            _move_while(pid, cgroup, before_start)
        except BaseException:
            _kill_unreleased(pid)  # at EOF on the start pipe it would go on: kill it
            raise
        mark("conmon-cgroup")
        # ... then the start byte: conmon forks nothing until it reads it. (Gone already,
        # say on a log it could not open: the sync pipe's EOF below says so.)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            start_parent.send(b"\0")
        if while_waiting is not None:
            while_waiting()
        # The report comes after runc create; the first conmon exits once the long-lived
        # one is forked and its pid written, long before: reaping it is then immediate.
        report = _read_sync(sync_parent, timeout)
        mark("runc-create")
        first_rc = wait(pid, timeout)
    finally:
        sync_parent.close()
        start_parent.close()
    if report is None:
        raise CreateFailed(f"conmon exited ({first_rc}) without reporting the container")
    pid = int(report.get("data", -1))
    if pid < 0:
        raise CreateFailed(str(report.get("message") or "runc create failed"))
    if bundle:  # conmon makes its ctl/winsz fifos 0640: only root may write to them
        for fifo in ("ctl", "winsz"):
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(bundle, fifo), 0o600)
    return Created(pid, 0)
