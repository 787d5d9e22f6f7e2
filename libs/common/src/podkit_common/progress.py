"""Progress on stderr: a live bar on a terminal, JSON lines with ``--progress=json``,
nothing with ``--quiet`` (or ``--progress=none``, or when stderr is not a terminal).

Thread-safe: parallel downloads report into one Progress.
"""

from __future__ import annotations

import sys
import time
from _thread import allocate_lock  # threading.Lock itself, without importing threading

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import TextIO

MODES = ("auto", "bar", "json", "none")


class Task:
    """One unit of work with an optional total, e.g. one blob download."""

    def __init__(self, progress: Progress, name: str, total: int | None, unit: str) -> None:
        self._progress = progress
        self.name = name
        self.total = total
        self.unit = unit
        self.current = 0
        self.done = False
        self.started = time.monotonic()
        self.transferred = 0

    @property
    def rate(self) -> float:
        """Units per second moved by this task (``advance``), since it started."""
        elapsed = time.monotonic() - self.started
        return self.transferred / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int) -> None:
        self.current += n
        self.transferred += n
        self._progress._update(self)

    def seek(self, position: int) -> None:
        """Set ``current`` without counting a transfer (a download resumed or restarted)."""
        self.current = position
        self._progress._update(self)

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self._progress._update(self, force=True)


class Progress:
    """Reports tasks in one of the modes ``bar``, ``json`` or ``none``."""

    def __init__(self, tool: str, mode: str = "auto", stream: TextIO | None = None,
                 interval: float = 0.1) -> None:
        self.tool = tool
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "none"
        self.mode = mode
        self.interval = interval
        self._lock = allocate_lock()
        self._last = 0.0
        self._tasks: list[Task] = []
        self._bar_width = 0

    def task(self, name: str, total: int | None = None, unit: str = "B") -> Task:
        t = Task(self, name, total, unit)
        with self._lock:
            self._tasks.append(t)
        self._update(t, force=True)
        return t

    def _update(self, task: Task, force: bool = False) -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.interval:
                return
            self._last = now
            if self.mode == "json":
                self._write_json(task)
            else:
                self._write_bar(finished=task if task.done else None)

    def _write_json(self, task: Task) -> None:
        from podkit_common.jsonio import dumps

        event = {"progress": {"tool": self.tool, "task": task.name, "current": task.current,
                              "total": task.total, "unit": task.unit, "done": task.done,
                              "rate": int(task.rate)}}
        self.stream.write(dumps(event).decode() + "\n")
        self.stream.flush()

    def _write_bar(self, finished: Task | None = None, note: str | None = None) -> None:
        """Print a line for a finished task (or a note), then redraw the live bar of the
        active tasks: their bytes, percentage and combined rate."""
        out = ""
        if note is not None:
            out += self._bar_line(f"{self.tool}: {note}", final=True)
        if finished is not None:
            out += self._bar_line(f"{self.tool}: {finished.name} {_summary(finished)}",
                                  final=True)
        active = [t for t in self._tasks if not t.done]
        if active:
            current = sum(t.current for t in active)
            totals = [t.total for t in active]
            total = sum(totals) if None not in totals else None  # type: ignore[arg-type]
            label = active[0].name if len(active) == 1 else f"{len(active)} tasks"
            rate = f"{_human(sum(t.rate for t in active))}/s"
            if total:
                frac = min(current / total, 1.0)
                filled = int(frac * 24)
                line = (f"{self.tool}: {label} [{'#' * filled}{'.' * (24 - filled)}] "
                        f"{frac * 100:3.0f}% {_human(current)}/{_human(total)} {rate}")
            else:
                line = f"{self.tool}: {label} {_human(current)} {rate}"
            out += self._bar_line(line, final=False)
        self.stream.write(out)
        self.stream.flush()

    def _bar_line(self, line: str, *, final: bool) -> str:
        """``line`` over the live bar (padded to erase it); ``final`` ends it with a newline."""
        pad = max(self._bar_width - len(line), 0)
        self._bar_width = 0 if final else len(line)
        return "\r" + line + " " * pad + ("\n" if final else "")

    def message(self, text: str) -> None:
        """A one-off status line (bar mode) or event (json mode)."""
        if self.mode == "none":
            return
        with self._lock:
            if self.mode == "json":
                from podkit_common.jsonio import dumps

                self.stream.write(dumps({"progress": {"tool": self.tool, "task": text,
                                                      "current": 0, "done": True}}).decode()
                                  + "\n")
                self.stream.flush()
            else:
                self._write_bar(note=text)


def _summary(task: Task) -> str:
    """``done 12.3 MB in 2.1s (5.9 MB/s)``, or ``stopped at ...`` for an unfinished one."""
    elapsed = time.monotonic() - task.started
    if task.total is not None and task.current < task.total:
        amount = f"stopped at {_human(task.current)}/{_human(task.total)}"
    else:
        amount = f"done {_human(task.current)}"
    return f"{amount} in {elapsed:.1f}s ({_human(task.rate)}/s)"


def _human(n: float) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    return f"{size:.1f} GB"


NULL = Progress("podkit", "none")
