"""Run one command and measure it: wall-clock time, exit code, peak RSS (wait4)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: GNU time (Debian package `time`), to read each command's own peak RSS.
GNU_TIME = "/usr/bin/time"
#: Proxies must never see the loopback registry; both sides get the same environment.
_DROPPED_ENV = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


class BenchFailure(RuntimeError):
    """A run failed or could not be verified: the bench stops and says why."""


def base_env(**extra: str) -> dict[str, str]:
    """os.environ without proxy settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _DROPPED_ENV}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Sample:
    """One timed run: seconds of wall-clock, ru_maxrss (KiB) and the exit code."""

    wall_s: float
    maxrss_kib: int
    exit_code: int
    stdout: Path
    stderr: Path
    argv: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The numbers only (the command is in the scenario, the logs are scratch files)."""
        d = asdict(self)
        del d["stdout"], d["stderr"], d["argv"]
        d["wall_s"] = round(self.wall_s, 6)
        return d

    def tail(self, lines: int = 15) -> str:
        """The last lines of stderr and stdout, for failure messages."""
        out = []
        for path in (self.stderr, self.stdout):
            try:
                text = path.read_text(errors="replace").strip().splitlines()[-lines:]
            except OSError:
                text = []
            if text:
                out.append(f"--- {path.name}:\n" + "\n".join(text))
        return "\n".join(out) or "(no output)"


def run_timed(argv: list[str], env: dict[str, str], log_stem: Path) -> Sample:
    """Run argv with stdin from /dev/null and stdout/stderr to log files; time it.

    The clock covers fork/exec to reaping. The command runs under GNU time, which
    reports its ru_maxrss from wait4: the largest resident set of the command or of any
    descendant it waited for (daemonized ones, such as conmon, are not counted). A
    process's ru_maxrss also covers its pre-exec image, so measuring from this Python
    process directly would report the bench's own size; GNU time's is under 1 MiB.
    """
    out_path = log_stem.with_suffix(".out")
    err_path = log_stem.with_suffix(".err")
    rss_path = log_stem.with_suffix(".rss")
    timed = [GNU_TIME, "-f", "%M", "-o", str(rss_path), "--", *argv]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        # Its own process group: on Ctrl-C the bench stops the whole command (GNU time
        # ignores SIGINT and would leave the command running on its own).
        proc = subprocess.Popen(timed, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, process_group=0)
        try:
            _, status, _ = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc)
            raise
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:  # the last line: "Command exited with non-zero status N" may come first
        maxrss = int(rss_path.read_text().split()[-1])
    except (OSError, ValueError, IndexError) as e:
        raise BenchFailure(f"no peak RSS from {GNU_TIME} for {argv[0]}: {e}") from e
    return Sample(wall, maxrss, proc.returncode, out_path, err_path, tuple(argv))


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop the process group of a command we started (SIGTERM, then SIGKILL)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)  # reap the leader, or the group lives on
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)


def count_files(dirs: list[Path]) -> int:
    """Regular files under each of dirs (symlinks not followed)."""
    total = 0
    stack = [str(d) for d in dirs]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += 1
    return total


def check_output(argv: list[str], env: dict[str, str], what: str, timeout: float = 120) -> str:
    """Run an untimed helper command (listing, set-up); its stdout, or BenchFailure."""
    try:
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchFailure(f"{what}: {' '.join(argv)}: {e}") from e
    if res.returncode != 0:
        raise BenchFailure(f"{what}: {' '.join(argv)} exited {res.returncode}:\n"
                           f"{res.stderr.strip()[-2000:]}")
    return res.stdout
