"""Phase times of one `pod run` on stderr: ``PODKIT_TRACE_TIMINGS=1``.

Each :func:`mark` notes the time a phase ended; at the end :func:`report` writes one
line per phase to fd 2, ``podkit-timing <phase> <ms since the previous mark> <ms since
the process started>``, the first phase being the interpreter's start and our imports
(measured from the process's start time in /proc/self/stat). Off (the default), a mark
is one global lookup and nothing is imported; the bench reads these lines (bench.podkit).
"""

from __future__ import annotations

import os
import time

ENABLED = bool(os.environ.get("PODKIT_TRACE_TIMINGS"))
PREFIX = "podkit-timing"
_marks: list[tuple[str, float]] = []


def _process_start() -> float:
    """The process's start on CLOCK_BOOTTIME (seconds), from /proc/self/stat."""
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def mark(phase: str) -> None:
    """Note that ``phase`` just ended (a no-op unless PODKIT_TRACE_TIMINGS is set)."""
    if ENABLED:
        _marks.append((phase, time.clock_gettime(time.CLOCK_BOOTTIME)))


def lines() -> list[str]:
    """The report's lines (see the module docstring); [] when nothing was marked."""
    if not _marks:
        return []
    try:
        previous = start = _process_start()
    except (OSError, ValueError, IndexError):
        previous = start = _marks[0][1]
    out = []
    for phase, at in _marks:
        out.append(f"{PREFIX} {phase} {(at - previous) * 1000:.1f} {(at - start) * 1000:.1f}")
        previous = at
    return out


def report() -> None:
    """Write the lines to stderr (fd 2) once, at the end of the command."""
    text = "".join(line + "\n" for line in lines())
    _marks.clear()
    if text:
        import contextlib

        with contextlib.suppress(OSError):
            os.write(2, text.encode())
