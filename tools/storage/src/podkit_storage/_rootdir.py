"""Resolving parent directories inside a layer root, never outside it.

``openat2(2)`` with ``RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`` resolves a path as if the
root were ``/``: symlinks on the way are followed but clamped to the root, and ``..``
stops there.  Where that syscall is missing, a component-by-component walk with
``O_NOFOLLOW`` does the same clamping by hand.  Parent fds are cached.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

_OPAQUE = b"trusted.overlay.opaque"

class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(os.uname().machine)
_RESOLVE = 0x02 | 0x10                  # RESOLVE_NO_MAGICLINKS | RESOLVE_IN_ROOT
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)
_openat2_usable: bool | None = None     # probed once; tests force False for the fallback


def _openat2(dirfd: int, path: bytes) -> int:
    how = _OpenHow(_DIR_FLAGS, 0, _RESOLVE)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_long(dirfd), ctypes.c_char_p(path),
                       ctypes.byref(how), ctypes.c_long(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def _probe_openat2(root_fd: int) -> bool:
    global _openat2_usable
    if _openat2_usable is None:
        _openat2_usable = False
        if _SYS_OPENAT2 is not None:
            try:
                os.close(_openat2(root_fd, b"."))
                _openat2_usable = True
            except OSError as exc:
                # Kernels before 5.6 say ENOSYS; some seccomp profiles answer EPERM instead.
                if exc.errno not in (errno.ENOSYS, errno.EPERM):
                    raise
    return _openat2_usable


class _RootDir:
    """The destination directory, and its parent directories opened by (cleaned) name.

    Cached fds are keyed by lexical path, so any removal of a directory or symlink makes
    them all suspect: ``forget`` retires the lot.  Retired fds stay open until ``release``
    at the next member, because the member being applied may still hold one.
    """

    _CACHE_SIZE = 128

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: dict[bytes, int] = {}
        self.retired: list[int] = []
        try:
            self._fast = _probe_openat2(self.fd)
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        self.forget()
        self.release()
        os.close(self.fd)

    def release(self) -> None:
        while self.retired:
            os.close(self.retired.pop())

    def forget(self) -> None:
        self.retired.extend(self._cache.values())
        self._cache.clear()

    def parent(self, path: bytes, create: bool = True) -> int:
        """An O_PATH fd for directory ``path`` inside the root, made on demand if ``create``."""
        if not path:
            return self.fd
        fd = self._cache.get(path)
        if fd is None:
            fd = self._open(path, create)
            if len(self._cache) >= self._CACHE_SIZE:
                self.retired.append(self._cache.pop(next(iter(self._cache))))
            self._cache[path] = fd
        return fd

    def _open(self, path: bytes, create: bool) -> int:
        if self._fast:
            try:
                return _openat2(self.fd, path)
            except OSError as exc:
                # EAGAIN: the kernel saw a concurrent rename and will not vouch for "..";
                # the walk below is slower but gives the same answer.
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EAGAIN):
                    raise
        return self._walk(path, create)

    def _walk(self, path: bytes, create: bool) -> int:
        """Resolve ``path`` one component at a time, as openat2(RESOLVE_IN_ROOT) would.

        Each step opens a single name with O_NOFOLLOW below a directory already inside the
        root; ".." stops at the root, and a symlink's target is spliced into what is left
        (from the root when absolute).  With ``create``, missing directories are made and a
        non-directory in the way is replaced, like umoci's mkdirAll.
        """
        todo = path.split(b"/")[::-1]
        stack: list[int] = []             # fds below the root, innermost last
        links = 0
        try:
            while todo:
                part = todo.pop()
                if part in (b"", b"."):
                    continue
                if part == b"..":
                    if stack:
                        os.close(stack.pop())
                    continue
                here = stack[-1] if stack else self.fd
                st = self._lstat(here, part, create)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > 40:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    target = os.readlink(part, dir_fd=here)
                    if target.startswith(b"/"):
                        while stack:
                            os.close(stack.pop())
                    todo.extend(target.split(b"/")[::-1])
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    if not create:
                        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                    self._replace_with_dir(here, part, st)
                stack.append(os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=here))
            return stack.pop() if stack else os.dup(self.fd)
        finally:
            for fd in stack:
                os.close(fd)

    @staticmethod
    def _lstat(here: int, part: bytes, create: bool) -> os.stat_result:
        try:
            return os.stat(part, dir_fd=here, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                raise
        os.mkdir(part, 0o755, dir_fd=here)
        os.chmod(part, 0o755, dir_fd=here, follow_symlinks=False)
        return os.stat(part, dir_fd=here, follow_symlinks=False)

    def _replace_with_dir(self, here: int, part: bytes, st: os.stat_result) -> None:
        os.unlink(part, dir_fd=here)
        os.mkdir(part, 0o755, dir_fd=here)
        os.chmod(part, 0o755, dir_fd=here, follow_symlinks=False)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            # A member below a name this layer whited out: the directory comes back, and
            # only this layer's content may show through it (umoci does the same).
            os.setxattr(b"/proc/self/fd/%d/%s" % (here, part), _OPAQUE, b"y",
                        follow_symlinks=False)
