"""Overlay mounts: plan the options as data, then apply them with mount(2).

Plan apart from apply: :func:`overlay_options` is pure; :func:`mount_overlay` and
:func:`unmount` do the system calls.
"""

from __future__ import annotations

import errno
import os
from _thread import allocate_lock  # threading.Lock itself, without importing threading
from pathlib import Path

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    import ctypes

#: The kernel copies mount data into one page; longer option strings fail with EINVAL.
_MAX_MOUNT_DATA = 4000
MNT_DETACH = 2
_cwd_lock = allocate_lock()
_libc = None


def _lib() -> ctypes.CDLL:
    import ctypes

    global _libc
    if _libc is None:
        # the process's own libc: find_library("c") would spawn ldconfig each start
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def overlay_options(lower: list[Path], upper: Path, work: Path, base: Path | None = None) -> str:
    """The overlay mount data; lower dirs top-most first. With ``base`` the paths are made
    relative to it (the caller mounts from inside ``base``) to stay under one page."""
    def rel(p: Path) -> str:
        return os.path.relpath(p, base) if base is not None else str(p)

    for p in (*lower, upper, work):
        if any(c in str(p) for c in ",:"):
            raise errors.UnsafeContent(f"overlay path contains ',' or ':': {p}")
    return (f"lowerdir={':'.join(rel(p) for p in lower)},upperdir={rel(upper)},"
            f"workdir={rel(work)}")


def mount_overlay(target: Path, lower: list[Path], upper: Path, work: Path,
                  links_dir: Path | None = None) -> None:
    """Mount an overlay on ``target`` (which must exist).  When the options pass one page
    and ``links_dir`` is given, lowers go by their short links (see _overlay_links)."""
    data = overlay_options(lower, upper, work)
    base = None
    if len(data) > _MAX_MOUNT_DATA and links_dir is not None:
        from podkit_storage._overlay_links import ensure_links

        base = links_dir.parent
        data = overlay_options(ensure_links(links_dir, lower), upper, work, base=base)
    elif len(data) > _MAX_MOUNT_DATA:
        base = Path(os.path.commonpath([*lower, upper, work]))
        data = overlay_options(lower, upper, work, base=base)
    if len(data) > _MAX_MOUNT_DATA:
        raise errors.ResourceExhausted(
            f"mount overlay on {target}: {len(lower)} lower layers do not fit the "
            f"{_MAX_MOUNT_DATA}-byte mount options", hint="squash the image into fewer layers")
    _mount("overlay", target, "overlay", data, base)


def _mount(source: str, target: Path, fstype: str, data: str, cwd: Path | None) -> None:
    import ctypes

    libc = _lib()
    args = (source.encode(), str(target).encode(), fstype.encode(), 0, data.encode())
    if cwd is None:
        rc = libc.mount(*args)
    else:
        # Relative overlay paths resolve against the caller's cwd; keep the chdir short
        # and serialised since cwd is process-wide.
        with _cwd_lock:
            old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.chdir(cwd)
                rc = libc.mount(*args)
            finally:
                os.fchdir(old)
                os.close(old)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EPERM, errno.EACCES):
            raise errors.PermissionDenied(f"mount overlay on {target}: {os.strerror(err)}")
        raise errors.RuntimeFailure(
            f"mount overlay on {target}: {os.strerror(err)}",
            hint="is overlayfs available (modprobe overlay), and is the root on a "
                 "filesystem overlay supports as upper dir (not overlay itself)?")


def is_mounted(target: Path) -> bool:
    t = os.path.realpath(target)
    with open("/proc/self/mountinfo", "rb") as fh:
        for line in fh:
            fields = line.split(b" ", 5)
            if len(fields) > 4 and _unescape(fields[4]) == t:
                return True
    return False


def _unescape(field: bytes) -> str:
    return field.decode("utf-8", "surrogateescape").replace("\\040", " ").replace(
        "\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def unmount(target: Path) -> bool:
    """Unmount ``target`` (lazily if busy); False if it was not mounted."""
    import ctypes

    libc = _lib()
    rc = libc.umount2(str(target).encode(), 0)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EBUSY:
        if libc.umount2(str(target).encode(), MNT_DETACH) == 0:
            return True
        err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise errors.RuntimeFailure(f"unmount {target}: {os.strerror(err)}")
