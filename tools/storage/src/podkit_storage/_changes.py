"""What a container changed, like ``podman diff``: A (added), C (changed), D (deleted).

The image side is the layers merged the way overlayfs shows them.  For an overlay
container the upper dir *is* the change set: a new name is A, a name the image has is
C (a directory only when its mode or owner differ), a 0:0 whiteout device is D, and an
opaque directory over one the image has is D (its new content then shows as A).  A vfs
container is compared with the image tree by stat, as containers/storage's
``ChangesDirs`` does: type, mode, owner, device, symlink target, and for non-dirs size
and mtime (the copy keeps mtimes, so an untouched file is equal).  As in podman, every
directory holding a change is itself reported as C.  Deleted subtrees show only their
top.

All walks go through directory fds with ``O_NOFOLLOW``: a running container may swap
names for symlinks under our feet, and we must not wander out of its tree.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podkit_common.records import record
from podkit_storage._vfs import is_opaque, is_whiteout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator

_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@record(frozen=True)
class Node:
    """What a name is, as far as a diff cares."""

    mode: int
    uid: int
    gid: int
    rdev: int
    size: int
    mtime_ns: int
    target: bytes | None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def differs(self, other: Node) -> bool:
        if (self.mode, self.uid, self.gid, self.rdev, self.target) != (
                other.mode, other.uid, other.gid, other.rdev, other.target):
            return True
        return not self.is_dir and (self.size, self.mtime_ns) != (other.size, other.mtime_ns)


def _walk(fd: int, prefix: str = "") -> Iterator[tuple[str, os.stat_result, int, str]]:
    """(path, lstat, parent fd, name) for everything below ``fd``, parents first."""
    for name in sorted(os.listdir(fd)):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        path = f"{prefix}/{name}"
        yield path, st, fd, name
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, _DIR_OPEN, dir_fd=fd)
            try:
                yield from _walk(child, path)
            finally:
                os.close(child)


def _node(st: os.stat_result, fd: int, name: str) -> Node:
    target = os.readlink(name, dir_fd=fd).encode("utf-8", "surrogateescape") \
        if stat.S_ISLNK(st.st_mode) else None
    return Node(st.st_mode, st.st_uid, st.st_gid, st.st_rdev, st.st_size, st.st_mtime_ns,
                target)


def _drop_below(tree: dict[str, Node], path: str) -> None:
    prefix = path + "/"
    for p in [p for p in tree if p.startswith(prefix)]:
        del tree[p]


def _open(path: Path) -> int:
    return os.open(path, _DIR_OPEN)


def layers_tree(lower: list[Path]) -> dict[str, Node]:
    """The image as overlayfs shows it: ``lower`` bottom-most first."""
    tree: dict[str, Node] = {}
    for layer in lower:
        fd = _open(layer)
        try:
            for path, st, pfd, name in _walk(fd):
                if is_whiteout(st):
                    tree.pop(path, None)
                    _drop_below(tree, path)
                    continue
                if not stat.S_ISDIR(st.st_mode) or is_opaque(pfd, name):
                    _drop_below(tree, path)
                tree[path] = _node(st, pfd, name)
        finally:
            os.close(fd)
    return tree


def plain_tree(root: Path) -> dict[str, Node]:
    fd = _open(root)
    try:
        return {path: _node(st, pfd, name) for path, st, pfd, name in _walk(fd)}
    finally:
        os.close(fd)


def _with_parents(changes: dict[str, str]) -> list[dict[str, str]]:
    for path in list(changes):
        parent = os.path.dirname(path)
        while parent != "/" and parent not in changes:
            changes[parent] = "C"
            parent = os.path.dirname(parent)
    return [{"path": _show(p), "kind": k} for p, k in sorted(changes.items())]


def _show(path: str) -> str:
    # Names that are not UTF-8 still make valid JSON, with their odd bytes escaped.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def overlay_changes(lower: list[Path], upper: Path) -> list[dict[str, str]]:
    """The changes recorded in an overlay upper dir over the image ``lower``."""
    image = layers_tree(lower)
    changes: dict[str, str] = {}
    fresh: set[str] = set()         # dirs whose whole content is new
    fd = _open(upper)
    try:
        for path, st, pfd, name in _walk(fd):
            is_dir = stat.S_ISDIR(st.st_mode)
            old = image.get(path)
            if is_whiteout(st):
                changes[path] = "D"
            elif os.path.dirname(path) in fresh or old is None:
                # Below a recreated (opaque) dir everything is new, whatever the image had.
                changes[path] = "A"
                if is_dir:
                    fresh.add(path)
            elif is_dir and is_opaque(pfd, name):
                changes[path] = "D"
                fresh.add(path)
            elif old.is_dir and is_dir:
                if old.differs(_node(st, pfd, name)):
                    changes[path] = "C"
            else:
                changes[path] = "C"
    finally:
        os.close(fd)
    return _with_parents(changes)


def tree_changes(lower: list[Path], rootfs: Path) -> list[dict[str, str]]:
    """The changes in a plain-copy rootfs against the image ``lower``."""
    image = layers_tree(lower)
    now = plain_tree(rootfs)
    changes: dict[str, str] = {}
    for path, node in now.items():
        old = image.get(path)
        if old is None:
            changes[path] = "A"
        elif old.differs(node):
            changes[path] = "C"
    for path in image:
        if path in now:
            continue
        parent = os.path.dirname(path)
        if parent == "/" or (parent in now and now[parent].is_dir and parent in image):
            changes[path] = "D"
    return _with_parents(changes)
