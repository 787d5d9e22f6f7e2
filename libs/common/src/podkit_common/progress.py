"""Progress on stderr: a live bar on a terminal, JSON lines with ``--progress=json``,
nothing with ``--quiet`` (or ``--progress=none``, or when stderr is not a terminal).

Thread-safe: parallel downloads report into one Progress.
"""

from __future__ import annotations

import sys
import threading
import time
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

    def advance(self, n: int) -> None:
        self.current += n
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
        self._lock = threading.Lock()
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
                self._write_bar()

    def _write_json(self, task: Task) -> None:
        from podkit_common.jsonio import dumps

        event = {"progress": {"tool": self.tool, "task": task.name, "current": task.current,
                              "total": task.total, "unit": task.unit, "done": task.done}}
        self.stream.write(dumps(event).decode() + "\n")
        self.stream.flush()

    def _write_bar(self) -> None:
        active = [t for t in self._tasks if not t.done]
        shown = active or self._tasks[-1:]
        current = sum(t.current for t in shown)
        totals = [t.total for t in shown]
        total = sum(totals) if totals and None not in totals else None  # type: ignore[arg-type]
        label = shown[-1].name if len(shown) == 1 else f"{len(shown)} tasks"
        if total:
            frac = min(current / total, 1.0)
            filled = int(frac * 24)
            line = (f"{self.tool}: {label} [{'#' * filled}{'.' * (24 - filled)}] "
                    f"{frac * 100:3.0f}% {_human(current)}/{_human(total)}")
        else:
            line = f"{self.tool}: {label} {_human(current)}"
        pad = max(self._bar_width - len(line), 0)
        self._bar_width = len(line)
        end = "\n" if not active else ""
        if not active:
            self._bar_width = 0
        self.stream.write("\r" + line + " " * pad + end)
        self.stream.flush()

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
            else:
                self.stream.write(f"{self.tool}: {text}\n")
            self.stream.flush()


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    return f"{size:.1f} GB"


NULL = Progress("podkit", "none")
