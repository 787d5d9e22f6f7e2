"""Per-object file locks (flock), released by the kernel if the holder dies.

Lock files live in a ``locks/`` directory chosen by the caller (normally under the
root) and are named after the object, so two processes working on different images or
containers never wait for each other.

A lock file may be unlinked by its holder when the object goes (so they do not pile
up). A waiter then wakes holding a lock on a file that has no name any more, while a
newcomer creates and locks a new file of the same name: ``acquire`` therefore checks,
once it holds the lock, that the path still names the file it locked, and starts over
if not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from podkit_common.errors import Timeout


class FileLock:
    """An exclusive (or shared) flock on ``path``; a context manager.

    ``timeout=None`` waits forever; otherwise raise ``Timeout`` after that many seconds.
    """

    def __init__(self, path: str | os.PathLike[str], *, shared: bool = False,
                 timeout: float | None = None,
                 keep_while: tuple[str | os.PathLike[str], ...] = ()) -> None:
        self.path = Path(path)
        self.shared = shared
        self.timeout = timeout
        #: The object's own paths: when none exists at release, the file is unlinked
        #: (still held), so a lock taken by a late comer on a gone object does not stay.
        self.keep_while = keep_while
        self._fd: int | None = None

    def acquire(self) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            fd = self._lock_once(deadline)
            try:
                held, named = os.fstat(fd), os.stat(self.path)
            except FileNotFoundError:
                held = named = None
            except BaseException:
                os.close(fd)
                raise
            if held is not None and (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                self._fd = fd
                return
            os.close(fd)   # its holder removed the file: lock the one the name has now

    def _lock_once(self, deadline: float | None) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            if deadline is None:
                fcntl.flock(fd, op)
            else:
                delay = 0.005
                while True:
                    try:
                        fcntl.flock(fd, op | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EACCES):
                            raise
                        if time.monotonic() >= deadline:
                            raise Timeout(f"waited {self.timeout:g}s for lock {self.path}",
                                          hint="another podkit process holds it") from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.1)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def unlink(self) -> None:
        """Remove the lock file; call it while holding the lock, as the object goes."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def release(self) -> None:
        if self._fd is not None:
            if self.keep_while and not self.shared and \
                    not any(os.path.exists(p) for p in self.keep_while):
                self.unlink()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def object_lock(locks_dir: str | os.PathLike[str], kind: str, name: str, *,
                shared: bool = False, timeout: float | None = None,
                keep_while: tuple[str | os.PathLike[str], ...] = ()) -> FileLock:
    """The lock for one object, e.g. ``object_lock(root/"locks", "layer", chain_id)``;
    ``keep_while``: the object's paths, see :class:`FileLock`."""
    safe = name.replace("/", "_").replace(":", "_")
    return FileLock(Path(locks_dir) / f"{kind}-{safe}.lock", shared=shared, timeout=timeout,
                    keep_while=keep_while)
