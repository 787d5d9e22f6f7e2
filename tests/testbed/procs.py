"""Small /proc helpers for stopping processes we started, by pid only."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def cmdline(pid: int) -> list[str]:
    """argv of pid, or [] if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(a) for a in raw.split(b"\0") if a]


def is_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_pid(pid: int, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Send sig to pid, wait up to timeout for it to die, then SIGKILL; True if it died.

    Works for processes that are not our children (polls /proc instead of waitpid).
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return False


def eventually(predicate, what: str, limit: float = 30.0):
    """Poll until predicate() is truthy (a bound against hangs, not a timing claim)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def live_mentions(base: Path) -> list[str]:
    """Live processes (not zombies, not us) whose command line mentions ``base``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            argv = cmdline(int(entry))
            if argv and str(base) in " ".join(argv) and is_alive(int(entry)):
                found.append(" ".join(argv)[:160])
    return found
