"""The container's /dev/shm, made on the host like podman's.

podman mounts a tmpfs (``mode=1777,size=--shm-size``, nosuid, nodev, noexec) in the
container's own directory and bind-mounts it at /dev/shm, so that it outlives the
container's mount namespace and can be shared with the containers that join its IPC
namespace (pods). podkit does the same at ``<bundle>/shm``; it is unmounted when the
bundle is removed (or when making the bundle fails).
"""

from __future__ import annotations

import ctypes
import errno
import os

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

DEFAULT_SHM_BYTES = 64 << 20  # podman's shm_size "65536k"
SHM_DIR = "shm"
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH = 2
_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        # the process's own libc: find_library("c") would spawn ldconfig each start
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def mount_shm(path: str, size: int) -> None:
    """Mount a fresh tmpfs of ``size`` bytes at ``path`` (made if missing)."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    data = f"mode=1777,size={size}".encode()
    if _lib().mount(b"shm", os.fsencode(path), b"tmpfs",
                    _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, data) != 0:
        err = ctypes.get_errno()
        raise errors.from_os_error(OSError(err, os.strerror(err), path),
                                   "mount the container's /dev/shm tmpfs")


def unmount_shm(path: str) -> None:
    """Detach the tmpfs at ``path``; nothing mounted there (or no path) is fine."""
    if _lib().umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise errors.from_os_error(OSError(err, os.strerror(err), path),
                                       "unmount the container's /dev/shm tmpfs")


def shm_mount(source: str) -> dict[str, Any]:
    """The config.json entry binding the host tmpfs at /dev/shm (pure; podman's options)."""
    return {"destination": "/dev/shm", "type": "bind", "source": source,
            "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]}
