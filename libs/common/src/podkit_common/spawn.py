"""Starting conmon, runc and CNI plugins without ``subprocess``: what the run path needs,
and no more (podkit_runtime for conmon and runc, podkit_netsetup for the plugins).

Why not subprocess: importing it (with ``signal``, ``locale``, ``selectors``) was ~5-10 ms
of every `pod run`, and Popen's bookkeeping is more than a run needs. What it needs:

* :func:`spawn`: start a long-lived program (conmon) with exactly the fds we mean to
  give it — stdin, stdout and stderr (None: /dev/null) and ``fds`` placed at 3, 4, ...
  (Go's ExtraFiles, what podman hands conmon) — and nothing else (cf. CVE-2024-21626: no
  fd of ours leaks into conmon or runc, inheritable or not), optionally in its own
  process group and working directory (conmon writes its OOM marker there).
  ``os.fork`` + ``os.execve``: glibc's posix_spawn leaves its two internal signals (32
  and 33) *ignored* in the child, a disposition that survives exec and would reach the
  container through conmon and runc; and 3.11's posix_spawn cannot change directory.
* :func:`run`: run a short-lived helper (``runc start``, ``runc state``, ``runc
  delete``, a CNI plugin) to its end with ``os.posix_spawn`` (vfork: ~0.3 ms in a
  process of our size, against ~1 ms for fork), feed it ``input`` on stdin (a plugin's
  config) and capture its stdout and stderr, all three pipes served with
  ``select.poll`` so that none can fill up and stall it.
* :func:`start`: such a helper left running while the caller does other work.
* :func:`wait`: a child's exit code (``subprocess``'s convention: -N for a signal N),
  with a timeout through a pidfd.

Signals the interpreter ignores (SIGPIPE, SIGXFSZ) are reset to their defaults in the
child, as ``subprocess`` does (``restore_signals``).
"""

from __future__ import annotations

import _signal
import contextlib
import os

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: what Python ignores at start-up and a child must not inherit ignored
_RESET_SIGNALS = (_signal.SIGPIPE, _signal.SIGXFSZ)
_CHUNK = 65536


class Completed:
    """What :func:`run` returns (the parts of ``subprocess.CompletedProcess`` we use)."""

    __slots__ = ("args", "returncode", "stderr", "stdout")

    def __init__(self, args: list[str], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr

    def __repr__(self) -> str:
        return f"Completed(args={self.args!r}, returncode={self.returncode})"


def which(name: str, path: str | None = None) -> str | None:
    """The first executable ``name`` on ``path`` (default: $PATH), ``shutil.which``
    without shutil."""
    if path is None:
        path = os.environ.get("PATH", os.defpath)
    for d in path.split(os.pathsep):
        candidate = os.path.join(d or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def _open_fds() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the fds up to a generous bound
        return list(range(3, 1024))


def _plan(stdio: Sequence[int], fds: Sequence[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """(dup2 pairs, fds to close) that leave the child with ``stdio`` at 0-2, ``fds`` at
    3.. and nothing else. Sources go to fresh high numbers first, so that a source
    sitting on another one's target is never overwritten before it was copied."""
    wanted = [*stdio, *fds]
    open_now = _open_fds()
    high = max([*open_now, *wanted, len(wanted) + 2]) + 1
    dups = [(src, high + i) for i, src in enumerate(wanted)]
    dups += [(high + i, i) for i in range(len(wanted))]
    keep = set(range(len(wanted)))
    close = [fd for fd in open_now if fd not in keep and _inheritable(fd)]
    close += [high + i for i in range(len(wanted))]
    return dups, close


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # closed meanwhile (the fd that listed /proc/self/fd)
        return False


def _null() -> int:
    return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)


def spawn(argv: Sequence[str], *, env: Mapping[str, str], stdin: int | None = None,
          stdout: int | None = None, stderr: int | None = None, fds: Sequence[int] = (),
          cwd: str | None = None, process_group: bool = False) -> int:
    """Start ``argv[0]`` (a path, or a name looked up on ``env``'s PATH) with exactly
    these fds; its pid.

    Raises OSError when it cannot be started (missing, not executable, bad ``cwd``)."""
    null = _null() if None in (stdin, stdout, stderr) else -1
    # Made before the plan, whose temporary fds then land above it; and above every
    # target, so that the child still holds it when exec fails.
    err_read, err_write = os.pipe2(os.O_CLOEXEC)
    if err_write < 3 + len(fds):
        import fcntl

        moved = fcntl.fcntl(err_write, fcntl.F_DUPFD_CLOEXEC, 3 + len(fds))
        os.close(err_write)
        err_write = moved
    try:
        stdio = [null if fd is None else fd for fd in (stdin, stdout, stderr)]
        dups, close = _plan(stdio, fds)
        return _fork_exec(_program(argv[0], env), list(argv), dict(env), dups, close, cwd,
                          process_group, err_read, err_write)
    finally:
        if null >= 0:
            os.close(null)


def start(argv: Sequence[str], *, env: Mapping[str, str]) -> int:
    """Start a short-lived helper (``runc delete``) with stdio on /dev/null and return
    its pid at once, for the caller to do other work and then :func:`wait`."""
    null = _null()
    try:
        return _posix_spawn(argv, env, (null, null, null))
    finally:
        os.close(null)


def _program(name: str, env: Mapping[str, str]) -> str:
    """A bare name is looked up on the child's PATH, as subprocess does."""
    if "/" in name:
        return name
    return which(name, env.get("PATH", os.defpath)) or name


def _posix_spawn(argv: Sequence[str], env: Mapping[str, str], stdio: Sequence[int]) -> int:
    program = _program(argv[0], env)
    dups, close = _plan(stdio, ())
    actions = [(os.POSIX_SPAWN_DUP2, src, dst) for src, dst in dups]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in close]
    return os.posix_spawn(program, list(argv), dict(env), file_actions=actions,
                          setsigdef=_RESET_SIGNALS)


def _fork_exec(program: str, argv: list[str], env: dict[str, str],
               dups: list[tuple[int, int]],
               close: list[int], cwd: str | None, process_group: bool,
               err_read: int, err_write: int) -> int:
    """Fork, arrange the fds and exec; the child reports a failure on ``err_write``
    (closed at exec), the parent reads ``err_read``. Both are closed here."""
    try:
        pid = os.fork()
    except BaseException:
        os.close(err_read)
        os.close(err_write)
        raise
    if pid == 0:  # the child: os calls only, then exec (err_write closes) or _exit
        step = b"dup"
        try:
            for src, dst in dups:
                os.dup2(src, dst)  # dup2 makes dst inheritable
            for fd in close:
                os.close(fd)
            for sig in _RESET_SIGNALS:
                _signal.signal(sig, _signal.SIG_DFL)
            if process_group:
                os.setpgid(0, 0)
            step = b"chdir"
            if cwd is not None:
                os.chdir(cwd)
            step = b"exec"
            os.execve(program, argv, env)
        except OSError as exc:
            os.write(err_write, b"%d:%s" % (exc.errno or 0, step))
        finally:
            os._exit(127)
    os.close(err_write)
    try:
        report = b""
        while chunk := os.read(err_read, 64):  # EOF: exec'd (CLOEXEC) or exited
            report += chunk
    finally:
        os.close(err_read)
    if report:
        os.waitpid(pid, 0)
        code, _, step = report.partition(b":")
        number = int(code or 0)
        raise OSError(number, os.strerror(number),
                      cwd if step == b"chdir" and cwd is not None else program)
    return pid


def wait(pid: int, timeout: float | None = None) -> int:
    """The exit code of child ``pid`` (-N: killed by signal N); errors.Timeout after
    ``timeout`` seconds (None: no limit)."""
    if timeout is not None:
        _wait_readable(pid, timeout)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status)


def _wait_readable(pid: int, timeout: float) -> None:
    import select

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already reaped elsewhere: waitpid says so
    except OSError:  # a kernel before 5.3: poll
        _poll_exit(pid, timeout)
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise errors.Timeout(f"process {pid} ({_name(pid)}) still runs after {timeout:g}s",
                                 hint="is it hanging? see its log")
    finally:
        os.close(pidfd)


def _poll_exit(pid: int, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            raise errors.Timeout(f"process {pid} ({_name(pid)}) still runs after {timeout:g}s",
                                 hint="is it hanging? see its log")
        time.sleep(0.005)


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return "?"


def run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float | None = None,
        input: bytes | None = None) -> Completed:
    """Run ``argv`` (``argv[0]`` a path, or a name looked up on ``env``'s PATH) to its
    end with ``input`` on its stdin (None: /dev/null); its exit code, stdout and stderr.

    Raises OSError when it cannot start, errors.Timeout (after killing it) when it runs
    longer than ``timeout`` seconds."""
    import select

    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    if input is None:
        in_r = in_w = _null()
    else:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _posix_spawn(argv, env, (in_r, out_w, err_w))
    except BaseException:
        for fd in (out_r, err_r, *(() if input is None else (in_w,))):
            os.close(fd)
        raise
    finally:
        for fd in {out_w, err_w, in_r}:
            os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    pending = memoryview(input or b"")
    if input is not None:
        if pending:
            os.set_blocking(in_w, False)
            poller.register(in_w, select.POLLOUT)
        else:
            os.close(in_w)
    deadline = None if timeout is None else _now() + timeout
    try:
        open_fds = 2
        while open_fds or pending:
            wait_ms = None if deadline is None else max(0, int((deadline - _now()) * 1000))
            ready = poller.poll(wait_ms)
            if not ready:
                _kill(pid)
                what = " ".join([os.path.basename(argv[0]), *argv[1:2]])
                raise errors.Timeout(f"{what} ran longer than {timeout:g}s",
                                     hint="is it hanging?")
            for fd, _ in ready:
                if fd not in chunks:  # stdin: write what fits, close at the end
                    try:
                        pending = pending[os.write(fd, pending[:_CHUNK]):]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # it does not read (any more): its business
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(fd)
                        os.close(fd)
                    continue
                chunk = os.read(fd, _CHUNK)
                if chunk:
                    chunks[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
    finally:
        os.close(out_r)
        os.close(err_r)
        if pending:
            os.close(in_w)
    return Completed(list(argv), wait(pid), b"".join(chunks[out_r]), b"".join(chunks[err_r]))


def _now() -> float:
    import time

    return time.monotonic()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, _signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
