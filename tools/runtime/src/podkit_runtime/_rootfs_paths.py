"""Resolve container paths inside a rootfs the way the container will see them.

A mount destination such as ``/data`` may be a symlink in the image, and the image
is untrusted: ``/data -> /etc`` on the host would put the mount on the host's /etc if
anyone followed it from outside (runc CVE-2021-30465). So every destination is
walked component by component from a directory fd of the rootfs, each step opened
with O_NOFOLLOW; symlinks are read and re-walked *inside* the rootfs (absolute
targets restart at the rootfs, ``..`` stops at it), exactly what the container's own
kernel view would give after pivot_root. Missing components are created with
``mkdirat`` relative to the fd of their parent, so nothing is ever created outside.

The result is the symlink-free container path, which the config then uses as the
mount destination: runc finds real directories all the way down.
"""

from __future__ import annotations

import errno
import os
import stat

from podkit_common import errors
from podkit_common.records import record

MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

#: Where runc mounts kernel filesystems and writes device symlinks (/dev/fd, /dev/ptmx,
#: ...). runc 1.1 creates those symlinks with plain path joins, so a rootfs whose /dev
#: is a symlink makes it write into whatever the symlink names on the host. What lies
#: below them in the image (/dev/shm -> /run/shm, say) is hidden by the fresh tmpfs,
#: sysfs and proc mounts and never followed.
KERNEL_PATHS = ("/proc", "/sys", "/dev")


@record(frozen=True)
class Resolved:
    """A container path resolved inside the rootfs."""

    path: str          # symlink-free container path, e.g. "/data"
    host_path: str     # the same under the rootfs on the host
    exists: bool
    is_dir: bool


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class _Walker:
    def __init__(self, rootfs: str) -> None:
        self.rootfs = os.path.realpath(rootfs)
        try:
            self.root_fd = os.open(self.rootfs, _DIR_FLAGS)
        except OSError as exc:
            raise errors.from_os_error(exc, "open container rootfs") from None

    def close(self) -> None:
        os.close(self.root_fd)

    def _open_chain(self, parts: list[str]) -> int:
        """A fresh fd for the already-resolved (symlink-free) ``parts``."""
        fd = os.dup(self.root_fd)
        for part in parts:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return fd

    def walk(self, path: str, *, create: str | None = None, mode: int = 0o755,
             owner: tuple[int, int] | None = None) -> Resolved:
        """Resolve ``path``; with ``create`` "dir" or "file", make what is missing (parents
        always as directories). ``owner`` chowns what this call created."""
        pending = _split(path)
        done: list[str] = []
        fd = os.dup(self.root_fd)
        links = 0
        try:
            while pending:
                part = pending.pop(0)
                if part == "..":
                    if done:
                        done.pop()
                    os.close(fd)
                    fd = self._open_chain(done)
                    continue
                last = not pending
                try:
                    st = os.lstat(part, dir_fd=fd)
                except FileNotFoundError:
                    if create is None:
                        for rest in [part, *pending]:
                            if rest != "..":
                                done.append(rest)
                            elif done:
                                done.pop()
                        return self._result(done, exists=False, is_dir=False)
                    self._make(fd, part, "file" if (last and create == "file") else "dir",
                               mode, owner)
                    st = os.lstat(part, dir_fd=fd)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise errors.UnsafeContent(
                            f"resolve {path} in the container: too many levels of symbolic links")
                    target = os.readlink(part, dir_fd=fd)
                    if target.startswith("/"):
                        done = []
                        os.close(fd)
                        fd = os.dup(self.root_fd)
                    pending = _split(target) + pending
                    continue
                done.append(part)
                if last:
                    return self._result(done, exists=True, is_dir=stat.S_ISDIR(st.st_mode))
                if not stat.S_ISDIR(st.st_mode):
                    raise errors.InvalidDocument(
                        f"resolve {path} in the container: /{'/'.join(done)} is not a directory")
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
            return self._result(done, exists=True, is_dir=True)
        finally:
            os.close(fd)

    def _make(self, fd: int, name: str, kind: str, mode: int,
              owner: tuple[int, int] | None) -> None:
        try:
            if kind == "dir":
                os.mkdir(name, mode, dir_fd=fd)
            else:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o644, dir_fd=fd))
        except FileExistsError:
            return  # made meanwhile; the caller lstat()s it again and follows the rules
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise errors.PermissionDenied(
                    f"create mount point {name} in the container: read-only file system") from None
            raise errors.from_os_error(exc, f"create {name} in the container rootfs") from None
        if owner is not None:
            os.chown(name, owner[0], owner[1], dir_fd=fd, follow_symlinks=False)

    def _result(self, parts: list[str], *, exists: bool, is_dir: bool) -> Resolved:
        rel = "/".join(parts)
        return Resolved(path="/" + rel, host_path=os.path.join(self.rootfs, rel) if rel
                        else self.rootfs, exists=exists, is_dir=is_dir)


def resolve(rootfs: str, path: str) -> Resolved:
    """Resolve ``path`` inside ``rootfs`` without creating anything."""
    w = _Walker(rootfs)
    try:
        return w.walk(path)
    finally:
        w.close()


def ensure(rootfs: str, path: str, kind: str = "dir", *, mode: int = 0o755,
           owner: tuple[int, int] | None = None) -> Resolved:
    """Resolve ``path`` inside ``rootfs`` and create what is missing (``kind`` "dir" or
    "file" for the last component)."""
    w = _Walker(rootfs)
    try:
        return w.walk(path, create=kind, mode=mode, owner=owner)
    finally:
        w.close()


def symlinked_component(rootfs: str, path: str) -> tuple[str, str] | None:
    """The first component of ``path`` that is a symlink in ``rootfs`` and its target, or
    None. Only real directories are descended; a missing component ends the search."""
    fd = os.open(os.path.realpath(rootfs), _DIR_FLAGS)
    seen: list[str] = []
    try:
        for part in _split(path):
            try:
                st = os.lstat(part, dir_fd=fd)
            except FileNotFoundError:
                return None
            seen.append(part)
            if stat.S_ISLNK(st.st_mode):
                return "/" + "/".join(seen), os.readlink(part, dir_fd=fd)
            if not stat.S_ISDIR(st.st_mode):
                return None
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return None
    finally:
        os.close(fd)


def refuse_symlinked_kernel_paths(rootfs: str, paths: tuple[str, ...] = KERNEL_PATHS) -> None:
    """Raise UnsafeContent when the image makes /dev, /proc, /sys (or a mount below them)
    a symlink: runc would create device links through it onto the host."""
    for path in paths:
        hit = symlinked_component(rootfs, path)
        if hit is not None:
            link, target = hit
            raise errors.UnsafeContent(
                f"container rootfs: {link} is a symbolic link (to {target}); refusing to "
                "mount kernel filesystems through it",
                hint=f"the image must have {link} as a directory (or not at all)")
