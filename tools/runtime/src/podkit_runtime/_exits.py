"""Exit codes of containers that ``--rm`` removed, kept a while for ``wait``.

podman keeps an exit-code table in its database for containers removed by ``--rm`` and
prunes entries older than five minutes; ``podman wait`` on such a container still
returns its exit code. podkit keeps one small JSON file per removed container under
``<runroot>/runtime/removed-exits/<id>.json`` ({id, name, exit_code, finished_at,
kept_ts}); every write prunes entries older than :data:`KEEP_SECONDS`.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: podman's exit-code prune interval (5 minutes)
KEEP_SECONDS = 300.0


def exits_dir(roots: Roots) -> Path:
    return roots.runroot / "runtime" / "removed-exits"


def keep(roots: Roots, record: dict[str, Any], now: float | None = None) -> None:
    """Remember the exit code of a container about to be removed."""
    now = time.time() if now is None else now
    d = exits_dir(roots)
    d.mkdir(parents=True, exist_ok=True)
    atomic.write_json(d / f"{record['id']}.json",
                      {"id": record["id"], "name": record.get("name"),
                       "exit_code": record.get("exit_code"),
                       "finished_at": record.get("finished_at"), "kept_ts": now},
                      durable=False)
    prune(roots, now)


def prune(roots: Roots, now: float | None = None) -> int:
    """Forget exit codes older than KEEP_SECONDS; how many were forgotten."""
    now = time.time() if now is None else now
    gone = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(exits_dir(roots)):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < now - KEEP_SECONDS:
                    os.unlink(entry.path)
                    gone += 1
    return gone


def lookup(roots: Roots, ref: str) -> dict[str, Any] | None:
    """The kept exit of ``ref`` (an id, an id prefix of 3+ digits, or a name), if any."""
    d = exits_dir(roots)
    if len(ref) == 64:
        with contextlib.suppress(FileNotFoundError, errors.InvalidDocument):
            return atomic.read_json(d / f"{ref}.json")
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(d):
            with contextlib.suppress(FileNotFoundError, errors.InvalidDocument):
                kept = atomic.read_json(Path(entry.path))
                if kept.get("name") == ref or (len(ref) >= 3 and kept["id"].startswith(ref)):
                    found.append(kept)
    found.sort(key=lambda k: k.get("kept_ts", 0))
    return found[-1] if found else None
