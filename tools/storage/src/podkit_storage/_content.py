"""A compact content summary of an unpacked layer, so ``check`` can tell it is intact.

Once a layer is unpacked there is no tar left to hash against its diff_id, so ``check``
unpacks the layer's blob afresh into a scratch dir and compares the summaries of the two
trees (import pays nothing for it; layers from an older import carry a summary). Like
containers/storage's per-layer file list, it covers every entry's path, type, mode,
owner, size, link target, device number and xattrs, plus the bytes of each regular
file. Times are left out: they say nothing about whether the content is right.

    {"algorithm": "podkit-tree-v1", "digest": "sha256:…", "entries": 123, "bytes": 4567}
"""

from __future__ import annotations

import hashlib
import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

ALGORITHM = "podkit-tree-v1"
_CHUNK = 1 << 20
_TYPES = {stat.S_IFREG: b"f", stat.S_IFDIR: b"d", stat.S_IFLNK: b"l", stat.S_IFCHR: b"c",
          stat.S_IFBLK: b"b", stat.S_IFIFO: b"p", stat.S_IFSOCK: b"s"}


def content_summary(diff_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise the tree under ``diff_dir`` (never following a symlink)."""
    tree = hashlib.sha256()
    counts = {"entries": 0, "bytes": 0}
    root = os.fsencode(diff_dir)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        tree.update(_entry_line(b".", os.fstat(fd), fd, None, counts))
        _walk(fd, b"", tree, counts)
    finally:
        os.close(fd)
    return {"algorithm": ALGORITHM, "digest": "sha256:" + tree.hexdigest(), **counts}


def _walk(dfd: int, prefix: bytes, tree: Any, counts: dict[str, int]) -> None:
    # Sorted by raw name, so the digest does not depend on directory order.
    for name in sorted(os.fsencode(n) for n in os.listdir(dfd)):
        rel = prefix + name
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=dfd)
            try:
                tree.update(_entry_line(rel, st, child, None, counts))
                _walk(child, rel + b"/", tree, counts)
            finally:
                os.close(child)
        else:
            tree.update(_entry_line(rel, st, None, (dfd, name), counts))


def _entry_line(rel: bytes, st: os.stat_result, fd: int | None,
                at: tuple[int, bytes] | None, counts: dict[str, int]) -> bytes:
    counts["entries"] += 1
    kind = _TYPES.get(stat.S_IFMT(st.st_mode), b"?")
    extra = b""
    own_fd = None
    if kind == b"f":
        dfd, name = at  # type: ignore[misc]
        own_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        fd = own_fd
        h = hashlib.sha256()
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
        counts["bytes"] += st.st_size
        extra = h.hexdigest().encode()
    elif kind == b"l":
        dfd, name = at  # type: ignore[misc]
        extra = os.readlink(name, dir_fd=dfd)
    elif kind in (b"c", b"b"):
        extra = b"%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    try:
        xattrs = _xattrs(fd, at)
    finally:
        if own_fd is not None:
            os.close(own_fd)
    fields = [rel, kind, b"%o" % stat.S_IMODE(st.st_mode), b"%d" % st.st_uid,
              b"%d" % st.st_gid, b"%d" % (st.st_size if kind == b"f" else 0), extra, xattrs]
    return b"\0".join(fields) + b"\n"


def _xattrs(fd: int | None, at: tuple[int, bytes] | None) -> bytes:
    # Symlinks and nodes have no fd of their own: read them through /proc/self/fd of the
    # parent, which never follows the last component.
    target: int | bytes
    follow = True
    if fd is not None:
        target = fd
    else:
        dfd, name = at  # type: ignore[misc]
        target, follow = b"/proc/self/fd/%d/%s" % (dfd, name), False
    try:
        names = sorted(os.listxattr(target, follow_symlinks=follow))
    except OSError:
        return b""
    parts = []
    for xname in names:
        try:
            value = os.getxattr(target, xname, follow_symlinks=follow)
        except OSError:
            continue
        parts.append(xname.encode() + b"=" + value.hex().encode())
    return b";".join(parts)
