"""``pod-storage export``: a container's filesystem as one tar, as ``podman export`` writes it.

The merged view (overlay) or the plain copy (vfs) is walked and written with owners,
modes (setuid included), mtimes, symlinks, hard links (a second name of an inode is a
hard link to the first), device nodes, fifos and xattrs (``SCHILY.xattr.*`` PAX records,
as GNU tar and containers/storage write them). Overlay's own bookkeeping never shows:
whiteouts are hidden by the merged view and ``trusted.overlay.*`` xattrs are dropped.
Sockets cannot be stored in a tar and are skipped.

The walk goes through directory file descriptors and opens every entry with
``O_NOFOLLOW`` relative to its parent, so a symlink in the container (``/etc -> /``) is
written as a symlink and never followed out of the rootfs.
"""

from __future__ import annotations

import os
import stat
import tarfile

from podkit_common import errors
from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

#: xattrs that are overlayfs' bookkeeping, not the container's content.
_SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.")


def export_container(roots: Roots, ref: str, output: str | BinaryIO, *,
                     progress: Progress = NULL) -> dict[str, Any]:
    """Write the filesystem of container ``ref`` as a tar to ``output`` (a path, written
    atomically, or an open binary stream); return ``{"changed", "export"}``."""
    from podkit_storage._archive_save import write_tar_file, write_tar_stream
    from podkit_storage._containers import load_container, mount_container, unmount_container

    container = load_container(roots, ref)
    cid = container["id"]
    mounted = mount_container(roots, cid)
    counts = {"entries": 0}
    try:
        rootfs = mounted["rootfs"]

        def write(tar: tarfile.TarFile, *_: Any) -> None:
            counts["entries"] = write_tree(tar, rootfs, progress)

        if isinstance(output, str):
            path: str | None = os.path.abspath(output)
            size = write_tar_file(path, write)
        else:
            path = None
            size = write_tar_stream(output, write)
    finally:
        unmount_container(roots, cid)
    return {"changed": True, "export": {"container": cid, "name": container.get("name"),
                                        "path": path, "size": size,
                                        "entries": counts["entries"]}}


def write_tree(tar: tarfile.TarFile, root: str, progress: Progress = NULL) -> int:
    """Add everything below ``root`` (not ``root`` itself) to ``tar``; return the count."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise errors.from_os_error(exc, "export: open the container's rootfs") from None
    task = progress.task("export", None)
    try:
        links: dict[tuple[int, int], str] = {}
        count = 0
        for _ in _walk(tar, fd, "", links, task):
            count += 1
        return count
    finally:
        os.close(fd)
        task.finish()


def _walk(tar: tarfile.TarFile, dir_fd: int, prefix: str, links: dict[tuple[int, int], str],
          task: Any) -> Iterator[None]:
    names = sorted(os.listdir(dir_fd))
    for name in names:
        path = f"{prefix}{name}"
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while we walked
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            continue
        info = tarfile.TarInfo(path)
        info.mode = stat.S_IMODE(mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = int(st.st_mtime)
        info.uname = info.gname = ""
        xattrs = _xattrs(dir_fd, name, mode)
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                                for k, v in xattrs.items()}
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            tar.addfile(info)
            yield
            continue
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            links[key] = path
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            yield
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=dir_fd)
            try:
                yield from _walk(tar, child, f"{path}/", links, task)
            finally:
                os.close(child)
            continue
        if stat.S_ISREG(mode):
            info.type, info.size = tarfile.REGTYPE, st.st_size
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as data:
                tar.addfile(info, data)
            task.advance(st.st_size)
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
            tar.addfile(info)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
        yield


def _xattrs(dir_fd: int, name: str, mode: int) -> dict[str, bytes]:
    # Through /proc/self/fd: the *xattr calls take no dir_fd, and a path built this way
    # names the entry in the directory we hold open, never a path resolved afresh.
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for key in sorted(keys):
        if key.startswith(_SKIPPED_XATTRS):
            continue
        try:
            out[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
    return out
