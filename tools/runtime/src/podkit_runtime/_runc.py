"""Running runc: the argv is computed by pure functions, the process runs behind a seam."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podkit_common import errors
from podkit_common.records import record


def runc_binary() -> str:
    from podkit_common.spawn import which

    path = os.environ.get("PODKIT_RUNC") or which("runc")
    if not path:
        raise errors.NotFound("runc not found on PATH", hint="apt-get install runc")
    return path


def runc_argv(runc: str, state_root: Path, log: Path, *args: str) -> list[str]:
    return [runc, "--root", str(state_root), "--log", str(log), "--log-format", "json", *args]


@record(frozen=True)
class RuncFailure:
    """What runc said when it failed, classified the way podman classifies it."""

    message: str

    @property
    def not_found(self) -> bool:
        m = self.message.lower()
        return "executable file not found" in m or "no such file or directory" in m

    @property
    def permission_denied(self) -> bool:
        m = self.message.lower()
        return "permission denied" in m or "operation not permitted" in m


def read_runc_error(log: Path) -> RuncFailure | None:
    """The last error runc logged (its --log-format=json log), if any."""
    from podkit_common.jsonio import loads

    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return None
    last = None
    for line in data.splitlines():
        with contextlib.suppress(errors.InvalidDocument):
            entry = loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                last = str(entry.get("msg", ""))
    return RuncFailure(last) if last else None


def run_foreground(argv: list[str], stdio: tuple[int, int, int]) -> int:
    """Run ``runc run`` with the given stdio fds and wait, riding out ^C (runc forwards
    signals to the container, which decides)."""
    import subprocess

    proc = subprocess.Popen(argv, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                            close_fds=True)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


def delete_force(runc: str, state_root: Path, log: Path, cid: str) -> None:
    from podkit_common.spawn import run

    run(runc_argv(runc, state_root, log, "delete", "--force", cid), env=os.environ)
