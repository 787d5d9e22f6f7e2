"""Files that are bind-mounted into containers, edited in place.

A container's /etc/hosts and /etc/resolv.conf are bind mounts of files in its bundle;
a bind mount pins the inode, so an atomic rename would leave the container the old file.
These helpers rewrite such a file keeping its inode, and keep one tool's lines in a
marked block so that several writers (the runtime, the network stage) can share a file.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable


def replace_block(text: str, block_lines: list[str], begin: str, end: str) -> str:
    """``text`` with the lines between the ``begin`` and ``end`` markers replaced (pure);
    the block is appended when missing and dropped when ``block_lines`` is empty."""
    lines = text.splitlines()
    if begin in lines and end in lines[lines.index(begin):]:
        i = lines.index(begin)
        j = lines.index(end, i)
        lines = lines[:i] + lines[j + 1:]
    if block_lines:
        lines += [begin, *block_lines, end]
    return "\n".join(lines) + "\n" if lines else ""


def rewrite_in_place(path: str | os.PathLike[str], transform: Callable[[str], str]) -> bool:
    """Apply ``transform(text) -> text`` to ``path`` keeping its inode; False if absent."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        old = fh.read()
        new = transform(old)
        if new != old:
            fh.seek(0)
            fh.write(new)
            fh.truncate()
    return True
