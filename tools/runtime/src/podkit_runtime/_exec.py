"""Exec in a running container through conmon, the way podman 4.3.1 does it.

A session gets its own directory ``<bundle>/<session id>/`` holding the process spec,
conmon's attach socket and exit dir. conmon runs ``runc exec --detach --process SPEC``
and reports the pid, then the exit code, on the sync pipe. The handshake differs from
create by one step: conmon announces its attach socket on a third socketpair
(``_OCI_ATTACHPIPE``) and waits for a *second* start byte, sent once we are connected,
before it runs runc, so not one byte of output is lost.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from podkit_common import atomic, errors, records
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

EXEC_TIMEOUT = 240.0


@records.record(frozen=True)
class ExecOptions:
    """podman exec's options."""

    command: tuple[str, ...]
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    stdin: bool = False
    detach: bool = False
    tty: bool = False


def exec_process_spec(process: dict[str, Any], opts: ExecOptions,
                      user: Any | None = None) -> dict[str, Any]:
    """The OCI process for the session: the container's, with the command, env, cwd and
    user replaced (pure)."""
    if not opts.command:
        raise errors.UsageError("exec needs a command")
    env: dict[str, str] = {}
    for item in [*process.get("env", []), *opts.env]:
        key, _, value = item.partition("=")
        env[key] = value
    spec = {**process, "args": list(opts.command), "terminal": opts.tty,
            "env": [f"{k}={v}" for k, v in env.items()]}
    if opts.workdir:
        spec["cwd"] = opts.workdir
    if user is not None:
        spec["user"] = {"uid": user.uid, "gid": user.gid,
                        **({"additionalGids": list(user.additional_gids)}
                           if user.additional_gids else {})}
        if not any(e.startswith("HOME=") for e in spec["env"]):
            spec["env"].append(f"HOME={user.home}")
    return spec


def exec_conmon_argv(conmon: str, runc: str, paths: ContainerPaths, name: str, sid: str,
                     session: Path, spec_file: Path, stdin: bool, attach: bool,
                     tty: bool = False) -> list[str]:
    """conmon's command line for an exec session (podman's startExec, ``-l none``)."""
    argv = [conmon, "--api-version", "1", "-c", paths.cid, "-u", sid, "-r", runc,
            "-b", str(session), "-p", str(session / "exec_pid"), "-n", name,
            "--exit-dir", str(session / "exit"), "--full-attach",
            "--runtime-arg", "--root", "--runtime-arg", str(paths.runc_root),
            "-l", "none", "--log-level", "warning",
            "--runtime-arg", "--log-format=json", "--runtime-arg", "--log",
            f"--runtime-arg={session / 'oci-log'}"]
    if tty:
        argv.append("-t")
    if stdin:
        argv.append("-i")
    argv += ["-e", *(["--exec-attach"] if attach else []), "--exec-process-spec",
             str(spec_file), "--conmon-pidfile", str(session / "conmon.pid")]
    return argv


def _recv_json(sock: socket.socket, what: str) -> dict[str, Any] | None:
    from podkit_common.jsonio import loads

    sock.settimeout(EXEC_TIMEOUT)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        raise errors.Timeout(f"conmon said nothing on the {what} pipe") from None
    if not data:
        return None
    doc = loads(data.split(b"\n", 1)[0], what=f"conmon {what} pipe")
    return doc if isinstance(doc, dict) else None


class ExecFailed(Exception):
    """conmon reported that ``runc exec`` failed; ``message`` is what it relayed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def exec_in(roots: Roots, ref: str, opts: ExecOptions,
            stdio: tuple[int, int, int] = (0, 1, 2)) -> dict[str, Any]:
    """Run ``opts.command`` in the running container ``ref``; the document holds
    ``exec: {id, pid, exit_code}`` (``exit_code`` None when detached)."""
    from podkit_runtime._attach import pump
    from podkit_runtime._conmon import conmon_binary
    from podkit_runtime._lifecycle import classify_failure, sync
    from podkit_runtime._runc import runc_binary
    from podkit_runtime._users import resolve_user

    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    if seen.status != "running":
        raise errors.Conflict(f"can only create exec sessions on running containers: "
                              f"{record['name']} is {seen.status}: container state improper")
    paths = ContainerPaths(roots, cid)
    config = atomic.read_json(paths.bundle / "config.json")
    rootfs = Path((record.get("doc") or {}).get("container", {}).get("rootfs")
                  or config["root"]["path"])
    user = resolve_user(rootfs, opts.user) if opts.user else None
    sid = secrets.token_hex(32)
    session = paths.bundle / sid
    (session / "exit").mkdir(parents=True)
    stdin = opts.stdin and not opts.detach
    try:
        spec_file = session / "exec-process.json"
        atomic.write_json(spec_file, exec_process_spec(config["process"], opts, user),
                          durable=False)
        argv = exec_conmon_argv(conmon_binary(), runc_binary(), paths, record["name"], sid,
                                session, spec_file, stdin, attach=True, tty=opts.tty)
        try:
            pid, sync_sock, sock = _spawn(argv, session, attach=not opts.detach,
                                          cgroup=record.get("conmon_cgroup"))
        except ExecFailed as exc:
            raise classify_failure(session / "oci-log", exc.message,
                                   f"runc exec in {record['name']}") from None
        exit_code = None
        from podkit_runtime._container_events import emit

        emit(roots, record, "exec")
        try:
            if sock is not None:
                from podkit_runtime._tty import terminal_for

                try:
                    with terminal_for(opts.tty, stdio[0] if stdin else None,
                                      session / "ctl", stdio[1]):
                        pump(sock, stdio[1], stdio[2], stdio[0] if stdin else None)
                finally:
                    sock.close()
                report = _recv_json(sync_sock, "sync")
                exit_code = int(report["data"]) if report else _exit_file(session, cid)
        finally:
            sync_sock.close()
    except BaseException:
        shutil.rmtree(session, ignore_errors=True)
        raise
    if not opts.detach:
        shutil.rmtree(session, ignore_errors=True)
        emit(roots, record, "exec_died", exit_code)
    return {**record["doc"], "changed": True,
            "exec": {"id": sid, "pid": pid, "exit_code": exit_code}}


def _exit_file(session: Path, cid: str) -> int | None:
    try:
        return int((session / "exit" / cid).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _spawn(argv: list[str], session: Path, attach: bool, cgroup: str | None = None
           ) -> tuple[int, socket.socket, socket.socket | None]:
    """conmon for an exec session: (pid, the sync pipe, the attach socket or None)."""
    from podkit_runtime._attach import connect
    from podkit_runtime._conmon import conmon_env

    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(3)]
    (sync_p, sync_c), (start_p, start_c), (attach_p, attach_c) = pairs
    child = (sync_c.fileno(), start_c.fileno(), attach_c.fileno())
    env = {**conmon_env(dict(os.environ)), "_OCI_SYNCPIPE": str(child[0]),
           "_OCI_STARTPIPE": str(child[1]), "_OCI_ATTACHPIPE": str(child[2])}
    log_fd = os.open(session / "conmon.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log_fd,
                                stderr=log_fd, close_fds=True, pass_fds=child,
                                process_group=0, cwd=session)
    finally:
        os.close(log_fd)
        for s in (sync_c, start_c, attach_c):
            s.close()
    sock = None
    ok = False
    try:
        if cgroup:  # podman moves the exec conmon too (<CgroupParent>/conmon)
            from podkit_runtime._conmon_cgroup import move

            move(proc.pid, cgroup)
        start_p.send(b"\0")  # 1: conmon may go on
        if _recv_json(attach_p, "attach") is None:
            raise ExecFailed("conmon exited before it made the attach socket")
        if attach:
            sock = connect(session / "attach")
        start_p.send(b"\0")  # 2: connected (or detached): now runc exec may run
        proc.wait(timeout=EXEC_TIMEOUT)
        report = _recv_json(sync_p, "sync")
        if report is None:
            raise ExecFailed("conmon exited without reporting the exec'd process")
        pid = int(report.get("data", -1))
        if pid < 0:
            raise ExecFailed(str(report.get("message") or "runc exec failed"))
        ok = True
        return pid, sync_p, sock
    finally:
        start_p.close()
        attach_p.close()
        if not ok:
            sync_p.close()
            if sock is not None:
                sock.close()


exec_container = exec_in  # the name the package exports
