"""Reset the store: unmount, then delete what podkit made under the root and runroot.

Only podkit's own top-level entries are deleted (:data:`ROOT_ENTRIES`,
:data:`RUNROOT_ENTRIES`); anything else a user keeps there stays. Every mount under
either root is unmounted first, and nothing is deleted while one remains: deleting
through a bind mount would delete the host files behind it. A top-level entry that is
a symlink is unlinked, never followed; below that, ``shutil.rmtree`` walks with
directory fds and does not follow symlinks either.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

ROOT_ENTRIES = ("containers", "images", "layers", "blobs", "locks")
RUNROOT_ENTRIES = ("mounts", "bundles", "runc")


def _mounts_under(bases: list[Path]) -> list[Path]:
    from podkit_storage._mount import _unescape

    real = [os.path.realpath(b) for b in bases]
    found = []
    with open("/proc/self/mountinfo", "rb") as fh:
        for line in fh:
            fields = line.split(b" ", 5)
            if len(fields) < 5:
                continue
            target = _unescape(fields[4])
            if any(target == b or target.startswith(b.rstrip("/") + "/") for b in real):
                found.append(Path(target))
    # Deepest first, so a mount on top of another comes off first.
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def reset_store(roots: Roots) -> dict[str, Any]:
    """Unmount everything under the roots and delete podkit's entries there."""
    from podkit_storage._mount import unmount

    bases = [roots.root, roots.runroot]
    unmounted = []
    for _ in range(3):  # stacked mounts come off one layer per pass
        mounts = _mounts_under(bases)
        if not mounts:
            break
        for mp in mounts:
            if unmount(mp):
                unmounted.append(str(mp))
    left = _mounts_under(bases)
    if left:
        raise errors.RuntimeFailure(
            f"reset: still mounted: {', '.join(map(str, left))}; nothing was deleted",
            hint="stop the containers using them, then reset again")
    removed = []
    for base, names in ((roots.root, ROOT_ENTRIES), (roots.runroot, RUNROOT_ENTRIES)):
        for name in names:
            path = base / name
            if not os.path.lexists(path):
                continue
            try:
                # rmtree itself refuses a symlink, so a swapped-in link is never followed.
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError as exc:
                raise errors.from_os_error(exc, f"reset: remove {path}") from None
            removed.append(str(path))
    return {"changed": bool(removed or unmounted), "removed": removed,
            "unmounted": sorted(set(unmounted))}
