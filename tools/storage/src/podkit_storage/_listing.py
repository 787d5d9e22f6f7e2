"""Reading many container records fast: ``containers`` and ``images`` with thousands of
containers.

One pass over ``containers/`` with a plain read of each ``container.json`` (no
pathlib, one syscall triple per record), and ``/proc/self/mountinfo`` read once into a
set rather than once per container: that per-container scan was most of the time of a
2000-container listing. Records stay the single source of truth (no index file to
keep in step, so nothing new to repair after a crash): a record that is being removed
right now is simply skipped, as a missing one.
"""

from __future__ import annotations

import os

from podkit_common import errors
from podkit_common.jsonio import loads
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

_HEX = frozenset("0123456789abcdef")


def container_records(layout: StoreLayout) -> list[dict[str, Any]]:
    """Every complete container record, in directory order."""
    base = os.fspath(layout.containers)
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if len(name) != 64 or not _HEX.issuperset(name):
            continue
        path = f"{base}/{name}/container.json"
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            record = loads(data, what=path)
        except errors.InvalidDocument:
            continue  # a damaged record: `check` reports it, a listing goes on
        if isinstance(record, dict):
            out.append(record)
    return out


def mount_points() -> set[str]:
    """Every mount point of this mount namespace, unescaped, from one read of mountinfo."""
    from podkit_storage._mount import _unescape

    with open("/proc/self/mountinfo", "rb") as fh:
        data = fh.read()
    points = set()
    for line in data.splitlines():
        fields = line.split(b" ", 5)
        if len(fields) > 4:
            points.add(_unescape(fields[4]))
    return points


class MountTable:
    """``mounted(path)`` against one snapshot of mountinfo; a path's parent dir is
    resolved once (all rootfs mount points share ``<runroot>/mounts``)."""

    def __init__(self) -> None:
        self.points = mount_points()
        self._real_dirs: dict[str, str] = {}

    def mounted(self, path: str) -> bool:
        parent, name = os.path.split(path)
        real = self._real_dirs.get(parent)
        if real is None:
            real = self._real_dirs[parent] = os.path.realpath(parent)
        return os.path.join(real, name) in self.points
