"""The vfs driver: a container rootfs as a plain copy of the image's layers.

Each layer's ``diff`` dir (overlay form) is applied bottom to top into the rootfs, the
way overlayfs would show it: a 0:0 character device deletes the name below it, a dir
with ``trusted.overlay.opaque=y`` hides everything lower layers put in it, and a name
of another type replaces what was there.

Every name is opened relative to an already open directory fd with ``O_NOFOLLOW``, on
both sides: a symlink a lower layer left in the rootfs is replaced like any file, never
followed, so nothing is written outside the rootfs however the layers are shaped.
Owners, modes (setuid included: chmod after chown), xattrs, times, devices, fifos and
hard links within a layer are kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

OPAQUE_XATTR = b"trusted.overlay.opaque"
#: overlayfs's own bookkeeping; it means nothing (or the wrong thing) in a plain copy.
_OVERLAY_XATTRS = b"trusted.overlay."
_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _proc(dirfd: int, name: str) -> bytes:
    # /proc/self/fd/N is the directory itself; the last name is never followed (callers
    # pass follow_symlinks=False), so xattrs of symlinks and devices are reachable too.
    return b"/proc/self/fd/%d/%s" % (dirfd, os.fsencode(name))


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(dirfd: int, name: str) -> bool:
    try:
        return os.getxattr(_proc(dirfd, name), OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def remove_name(dirfd: int, name: str) -> None:
    """Remove ``name`` below ``dirfd`` whatever it is (a dir with its content)."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)


def build_rootfs(lower: list[Path], dest: Path) -> None:
    """Apply the layer dirs ``lower`` (bottom-most first) into the empty dir ``dest``."""
    dfd = os.open(dest, _DIR_OPEN)
    try:
        for layer in lower:
            sfd = os.open(layer, _DIR_OPEN)
            try:
                _LayerCopy(dfd).copy_dir(sfd, dfd, b"")
            finally:
                os.close(sfd)
    finally:
        os.close(dfd)


class _LayerCopy:
    """Copies one layer; remembers its hard-linked inodes (links never span layers)."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.links: dict[tuple[int, int], bytes] = {}

    def copy_dir(self, sfd: int, dfd: int, rel: bytes) -> None:
        for name in os.listdir(sfd):
            st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
            if is_whiteout(st):
                remove_name(dfd, name)
            elif stat.S_ISDIR(st.st_mode):
                self._copy_subdir(sfd, dfd, rel, name, st)
            else:
                remove_name(dfd, name)
                self._copy_leaf(sfd, dfd, rel, name, st)

    def _copy_subdir(self, sfd: int, dfd: int, rel: bytes, name: str,
                     st: os.stat_result) -> None:
        try:
            old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and not stat.S_ISDIR(old.st_mode):
            os.unlink(name, dir_fd=dfd)
            old = None
        if old is None:
            os.mkdir(name, 0o700, dir_fd=dfd)
        child_s = os.open(name, _DIR_OPEN, dir_fd=sfd)
        try:
            child_d = os.open(name, _DIR_OPEN, dir_fd=dfd)
            try:
                if old is not None and is_opaque(sfd, name):
                    for below in os.listdir(child_d):
                        remove_name(child_d, below)
                self.copy_dir(child_s, child_d, rel + os.fsencode(name) + b"/")
            finally:
                os.close(child_d)
        finally:
            os.close(child_s)
        # Last, so the files written inside do not bump the dir's mtime afterwards.
        _copy_metadata(sfd, dfd, name, st)

    def _copy_leaf(self, sfd: int, dfd: int, rel: bytes, name: str,
                   st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        first = self.links.get(key) if st.st_nlink > 1 else None
        if first is not None:
            self._link(first, dfd, name)
            return
        mode = st.st_mode
        if stat.S_ISREG(mode):
            _copy_file(sfd, dfd, name)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
        else:
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
        _copy_metadata(sfd, dfd, name, st)
        if st.st_nlink > 1 and not stat.S_ISLNK(mode):
            self.links[key] = rel + os.fsencode(name)

    def _link(self, first: bytes, dfd: int, name: str) -> None:
        parent, _, base = first.rpartition(b"/")
        pfd = _open_below(self.root_fd, parent)
        try:
            os.link(base, name, src_dir_fd=pfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            if pfd != self.root_fd:
                os.close(pfd)


def _open_below(root_fd: int, rel: bytes) -> int:
    """A dir fd for ``rel`` below the root, one O_NOFOLLOW step at a time."""
    fd = root_fd
    for part in filter(None, rel.split(b"/")):
        nxt = os.open(part, _DIR_OPEN, dir_fd=fd)
        if fd != root_fd:
            os.close(fd)
        fd = nxt
    return fd


def _copy_file(sfd: int, dfd: int, name: str) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dfd)
        try:
            _copy_data(src, dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_data(src: int, dst: int) -> None:
    try:
        while os.copy_file_range(src, dst, 1 << 30):
            pass
        return
    except OSError as exc:
        # Across filesystems (old kernels) or on filesystems without it: copy by hand.
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    while chunk := os.read(src, 1 << 20):
        os.write(dst, chunk)


def _copy_metadata(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        # After chown, which clears setuid/setgid.
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dfd)
    src, dst = _proc(sfd, name), _proc(dfd, name)
    try:
        attrs = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        attrs = []
    for attr in attrs:
        if not os.fsencode(attr).startswith(_OVERLAY_XATTRS):
            os.setxattr(dst, attr, os.getxattr(src, attr, follow_symlinks=False),
                        follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
