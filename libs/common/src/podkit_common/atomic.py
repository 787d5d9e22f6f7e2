"""Atomic file writes: write a temporary name in the same directory, fsync, rename.

A process killed at any point leaves either the old file or the new one, never half
of one. Temporary names start with ``.tmp-`` so cleanup can find leftovers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

TMP_PREFIX = ".tmp-"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """A unique temporary sibling of ``path`` (same directory, so rename is atomic)."""
    p = Path(path)
    # "r" before the random part: all-digit hex would read as the writer's pid, and a
    # concurrent sweep would take a live writer's file for abandoned.
    return p.with_name(f"{TMP_PREFIX}{p.name}.{os.getpid()}.r{os.urandom(4).hex()}")


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644,
                durable: bool = True) -> None:
    """Atomically replace ``path`` with ``data``."""
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(Path(path).parent)


def write_json(path: str | os.PathLike[str], doc: Any, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``doc`` as JSON."""
    from podkit_common.jsonio import dumps

    write_bytes(path, dumps(doc, pretty=True) + b"\n", durable=durable)


def read_json(path: str | os.PathLike[str]) -> Any:
    from podkit_common.jsonio import loads

    with open(path, "rb") as fh:
        return loads(fh.read(), what=os.fspath(path))


def writer_pid(name: str) -> int | None:
    """The pid a temporary or staging name carries: ``.tmp-<name>.<pid>`` or
    ``.tmp-<name>.<pid>.<rand>`` (as :func:`temp_path_for` makes them)."""
    if not name.startswith(TMP_PREFIX):
        return None
    parts = name.split(".")
    for candidate in (parts[-1], parts[-2] if len(parts) > 2 else ""):
        if candidate.isdigit():
            return int(candidate)
    return None


def pid_alive(pid: int | None) -> bool:
    """Whether a live process with this pid exists (so its half-made files may still
    grow, its locks still be held); a zombie counts as gone."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def abandoned(name: str) -> bool:
    """A temporary name whose writer is gone: it will never be finished."""
    pid = writer_pid(name)
    return pid is not None and pid != os.getpid() and not pid_alive(pid)
