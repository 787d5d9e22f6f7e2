"""``cp`` between a container's filesystem and the host (podman/docker cp semantics).

Safety (CVE-2018-15664, CVE-2019-10152): a running container can swap any path
component for a symlink to ``/`` or ``..`` at any moment, so resolving a path once and
then using the string is racy. Every lookup inside the rootfs goes through
``openat2(rootfd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``: the kernel resolves
symlinks and ``..`` as if the rootfs were ``/``, atomically. Entries are then created
or read *relative to the parent's fd* with ``O_NOFOLLOW``, so the last component is
never followed either. Directory trees are walked by fd (``os.fwalk``, symlinks not
followed). The host side of a copy out is a sink rooted the same way at the
destination, so a tree from the container cannot write outside it.

Semantics (``podman cp``): SRC a file -> DEST a file (created or replaced) or into DEST
when it is a directory; SRC a directory -> DEST created as a copy of it, or
``DEST/<basename>`` when DEST is a directory, or its contents into DEST with ``SRC/.``;
``-`` as SRC is a tar stream extracted into the DEST directory, as DEST a tar stream of
SRC on stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import posixpath
import stat
import tarfile
from pathlib import Path

from podkit_common import errors, records

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO, Any

SYS_OPENAT2 = 437  # x86_64 and aarch64 alike
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
COPY_CHUNK = 1 << 20


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """openat2 with RESOLVE_IN_ROOT: ``path`` resolved as if ``root_fd`` were ``/``."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    while True:
        fd = _libc.syscall(SYS_OPENAT2, root_fd, os.fsencode(path or "."),
                           ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EINTR, errno.EAGAIN):
            raise OSError(err, os.strerror(err), path)


def clean(path: str) -> str:
    """A path inside a root, lexically cleaned and relative ("" is the root itself)."""
    return posixpath.normpath("/" + path).lstrip("/")


@records.record(frozen=True)
class Entry:
    """One file of a tree being copied: ``rel`` is relative to the tree's top ("" is
    the top); ``read`` opens a regular file's content."""

    rel: str
    st: os.stat_result
    link: str | None = None
    read: Callable[[], IO[bytes]] | None = None


# -- sources ----------------------------------------------------------------------------

def fd_tree(fd: int) -> Iterator[Entry]:
    """The tree at ``fd`` (an O_PATH fd of a file or directory), never following a
    symlink below it."""
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):
        yield Entry("", st, read=lambda: os.fdopen(
            os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC), "rb"))
        return
    yield Entry("", st)
    for top, dirs, files, dfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        rel_top = clean(top)
        for name in sorted(dirs + files):
            rel = posixpath.join(rel_top, name)
            est = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISLNK(est.st_mode):
                yield Entry(rel, est, link=os.readlink(name, dir_fd=dfd))
            elif stat.S_ISREG(est.st_mode):
                yield Entry(rel, est, read=_opener(name, dfd))
            elif stat.S_ISDIR(est.st_mode):
                yield Entry(rel, est)
        dirs.sort()


def _opener(name: str, dfd: int) -> Callable[[], IO[bytes]]:
    def open_() -> IO[bytes]:
        return os.fdopen(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=dfd), "rb")
    return open_


def tar_tree(stream: IO[bytes]) -> Iterator[Entry]:
    """The entries of a tar stream (``cp - CTR:DIR``); unsafe names are refused."""
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for m in tar:
            name = m.name
            if name.startswith("/") or ".." in name.split("/"):
                raise errors.UnsafeContent(f"copy tar stream: entry {name!r} leaves the "
                                           "destination", hint="use relative names")
            mode = (stat.S_IFDIR if m.isdir() else stat.S_IFLNK if m.issym()
                    else stat.S_IFREG if m.isfile() else 0)
            if not mode:
                continue  # devices, fifos, hard links: not copied
            st = os.stat_result((mode | m.mode, 0, 0, 1, m.uid, m.gid, m.size,
                                 int(m.mtime), int(m.mtime), int(m.mtime)))
            reader = tar.extractfile(m) if m.isfile() else None
            yield Entry(clean(name), st, link=m.linkname if m.issym() else None,
                        read=(lambda r=reader: r) if reader is not None else None)


# -- sinks ------------------------------------------------------------------------------

def _parent_fd(root_fd: int, parent: str, make: bool) -> int:
    """An O_PATH fd of ``parent`` inside the root; with ``make``, missing directories
    are created one at a time, each relative to the fd of the one above (tar streams
    need not list their directories)."""
    flags = os.O_PATH | os.O_DIRECTORY
    try:
        return open_in_root(root_fd, parent, flags)
    except FileNotFoundError:
        if not make or not parent:
            raise
    above, leaf = posixpath.split(parent)
    afd = _parent_fd(root_fd, above, make)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(leaf, 0o755, dir_fd=afd)
        return os.open(leaf, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=afd)
    finally:
        os.close(afd)


def write_tree(root_fd: int, base: str, entries: Iterator[Entry], *,
               contents_only: bool = False, make_parents: bool = False) -> int:
    """Create ``entries`` at ``base`` (relative, inside ``root_fd``); every parent is
    resolved in the root at the moment of use and the leaf is never followed. Returns
    the number of entries written.

    The fd of the last parent is reused for its next entries: it keeps naming the
    directory it was opened on even if that path is swapped for a symlink later, and
    that directory is inside the root, so reuse is as safe as a fresh lookup."""
    count = 0
    cached: tuple[str, int] | None = None
    try:
        for e in entries:
            if contents_only and e.rel == "":
                continue
            full = clean(posixpath.join(base, e.rel)) if e.rel else clean(base)
            parent, leaf = posixpath.split(full)
            if not leaf:
                raise errors.UsageError("copy: cannot replace the root directory")
            if cached is None or cached[0] != parent:
                if cached is not None:
                    os.close(cached[1])
                    cached = None
                try:
                    cached = (parent, _parent_fd(root_fd, parent, make_parents))
                except (FileNotFoundError, NotADirectoryError):
                    raise errors.NotFound(f"copy: {parent or '/'}: no such directory (paths "
                                          "resolve inside the destination only)") from None
            _create(cached[1], leaf, e)
            count += 1
    finally:
        if cached is not None:
            os.close(cached[1])
    return count


def _existing(pfd: int, leaf: str) -> os.stat_result | None:
    try:
        return os.stat(leaf, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _create(pfd: int, leaf: str, e: Entry) -> None:
    old = _existing(pfd, leaf)
    mode = stat.S_IMODE(e.st.st_mode)
    if stat.S_ISDIR(e.st.st_mode):
        if old is None:
            os.mkdir(leaf, mode, dir_fd=pfd)
        elif not stat.S_ISDIR(old.st_mode):
            raise errors.Conflict(f"copy: cannot overwrite non-directory {leaf!r} with a "
                                  "directory")
        fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=pfd)
        try:
            os.fchmod(fd, mode)
            with contextlib.suppress(PermissionError):
                os.fchown(fd, e.st.st_uid, e.st.st_gid)
        finally:
            os.close(fd)
        return
    if old is not None:
        if stat.S_ISDIR(old.st_mode):
            raise errors.Conflict(f"copy: cannot overwrite directory {leaf!r} with a "
                                  "non-directory")
        os.unlink(leaf, dir_fd=pfd)
    if e.link is not None:
        os.symlink(e.link, leaf, dir_fd=pfd)
        with contextlib.suppress(PermissionError):
            os.chown(leaf, e.st.st_uid, e.st.st_gid, dir_fd=pfd, follow_symlinks=False)
        return
    fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=pfd)
    with os.fdopen(fd, "wb") as out:
        if e.read is not None:
            src = e.read()
            try:
                while chunk := src.read(COPY_CHUNK):
                    out.write(chunk)
            finally:
                if not isinstance(src, tarfile.ExFileObject):
                    src.close()
        os.fchmod(out.fileno(), mode)
        with contextlib.suppress(PermissionError):
            os.fchown(out.fileno(), e.st.st_uid, e.st.st_gid)
        mtime_ns = e.st.st_mtime_ns or int(e.st.st_mtime) * 1_000_000_000  # tar: seconds
        os.utime(out.fileno(), ns=(mtime_ns, mtime_ns))


def write_tar(out: IO[bytes], top_name: str, entries: Iterator[Entry], *,
              contents_only: bool = False) -> int:
    """The entries as a tar stream, named under ``top_name`` (``cp CTR:SRC -``)."""
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if contents_only and e.rel == "":
                continue
            name = posixpath.join(top_name, e.rel) if e.rel else top_name
            info = tarfile.TarInfo(name.rstrip("/") or ".")
            info.mode = stat.S_IMODE(e.st.st_mode)
            info.uid, info.gid, info.mtime = e.st.st_uid, e.st.st_gid, int(e.st.st_mtime)
            if stat.S_ISDIR(e.st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, e.link
                tar.addfile(info)
            elif e.read is not None:
                info.size = e.st.st_size
                with e.read() as src:
                    tar.addfile(info, src)
            count += 1
    return count


# -- the command ------------------------------------------------------------------------

@records.record(frozen=True)
class CopyEnd:
    """One side of ``cp``: a container path, a host path, or ``-``."""

    container: str | None
    path: str

    @property
    def stream(self) -> bool:
        return self.container is None and self.path == "-"


def parse_end(arg: str) -> CopyEnd:
    """``CTR:PATH``, ``PATH`` or ``-`` (a host path with a colon starts with / or .)."""
    if arg == "-" or arg.startswith(("/", ".")) or ":" not in arg:
        return CopyEnd(None, arg)
    ctr, _, path = arg.partition(":")
    return CopyEnd(ctr, path or "/")


def _src_parts(path: str) -> tuple[str, bool]:
    """(path without a trailing ``/.``, whether only the contents are wanted)."""
    if path.endswith("/.") or path == ".":
        return path[:-1] or "/", True
    return path, False


def copy(roots: Any, src: str, dest: str, rootfs_of: Callable[[str], Path], *,
         stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> dict[str, Any]:
    """``cp SRC DEST``: exactly one side is ``CTR:PATH``. ``rootfs_of(ref)`` gives the
    mounted rootfs of a container. Returns the report document."""
    s, d = parse_end(src), parse_end(dest)
    if (s.container is None) == (d.container is None):
        raise errors.UsageError("copy: one of SRC and DEST must be a container path "
                                "(CONTAINER:PATH)", hint="e.g. pod cp ctr:/etc/hosts .")
    if s.container is not None:
        rootfs = rootfs_of(s.container)
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return _copy_out(root_fd, s.path, d.path, stdout)
        finally:
            os.close(root_fd)
    rootfs = rootfs_of(d.container)  # type: ignore[arg-type]
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _copy_in(root_fd, s.path, d.path, stdin)
    finally:
        os.close(root_fd)


def _report(src: str, dest: str, count: int) -> dict[str, Any]:
    return {"changed": True, "copy": {"source": src, "destination": dest, "entries": count}}


def _copy_out(root_fd: int, src_path: str, dest: str, stdout: IO[bytes] | None
              ) -> dict[str, Any]:
    path, contents = _src_parts(src_path)
    try:
        src_fd = open_in_root(root_fd, clean(path), os.O_PATH)
    except FileNotFoundError:
        raise errors.NotFound(f"copy from container: {src_path}: no such file or directory"
                              ) from None
    try:
        is_dir = stat.S_ISDIR(os.fstat(src_fd).st_mode)
        name = posixpath.basename(clean(path)) or "."
        if dest == "-":
            if stdout is None:
                raise errors.UsageError("copy to -: no output stream")
            count = write_tar(stdout, name, fd_tree(src_fd), contents_only=contents and is_dir)
            return _report(src_path, dest, count)
        target_dir, base, contents = _host_target(dest, name, is_dir, contents)
        dir_fd = os.open(target_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            count = write_tree(dir_fd, base, fd_tree(src_fd), contents_only=contents)
        finally:
            os.close(dir_fd)
        return _report(src_path, dest, count)
    finally:
        os.close(src_fd)


def _host_target(dest: str, name: str, is_dir: bool, contents: bool
                 ) -> tuple[str, str, bool]:
    """(directory to root the sink at, name under it, contents only) for a host DEST."""
    p = Path(dest)
    if p.is_dir():
        if is_dir and contents:
            return str(p), ".", True
        return str(p), name, False
    if dest.endswith("/"):
        raise errors.NotFound(f"copy: destination directory {dest} does not exist"
                              if is_dir else f"copy: {dest} is not a directory")
    if p.exists() and is_dir:
        raise errors.Conflict(f"copy: cannot copy a directory to the file {dest}")
    parent = p.parent
    if not parent.is_dir():
        raise errors.NotFound(f"copy: parent directory {parent} does not exist")
    return str(parent), p.name, False


def _copy_in(root_fd: int, src: str, dest_path: str, stdin: IO[bytes] | None
             ) -> dict[str, Any]:
    dest_rel = clean(dest_path)
    try:
        dfd = open_in_root(root_fd, dest_rel, os.O_PATH)
        dest_st: os.stat_result | None = os.fstat(dfd)
        os.close(dfd)
    except FileNotFoundError:
        dest_st = None
    dest_is_dir = dest_st is not None and stat.S_ISDIR(dest_st.st_mode)
    if src == "-":
        if not dest_is_dir:
            raise errors.NotFound(f"copy to container: {dest_path} is not a directory",
                                  hint="a tar stream extracts into a directory")
        if stdin is None:
            raise errors.UsageError("copy from -: no input stream")
        count = write_tree(root_fd, dest_rel, tar_tree(stdin), contents_only=True,
                           make_parents=True)
        return _report(src, dest_path, count)
    path, contents = _src_parts(src)
    try:
        src_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.NotFound(f"copy to container: {src}: no such file or directory") from None
    try:
        is_dir = stat.S_ISDIR(os.fstat(src_fd).st_mode)
        if dest_is_dir:
            base = dest_rel if (is_dir and contents) else posixpath.join(
                dest_rel, os.path.basename(os.path.normpath(path)))
            contents = is_dir and contents
        else:
            if dest_path.endswith("/") and dest_st is None:
                raise errors.NotFound(f"copy: destination directory {dest_path} does not "
                                      "exist")
            if dest_st is not None and is_dir:
                raise errors.Conflict(f"copy: cannot copy a directory to the file "
                                      f"{dest_path}")
            base, contents = dest_rel, False
        count = write_tree(root_fd, base, fd_tree(src_fd), contents_only=contents)
        return _report(src, dest_path, count)
    finally:
        os.close(src_fd)


def runtime_rootfs(roots: Any, ref: str) -> Path:
    """The mounted rootfs of a pod-runtime container (from its record)."""
    from podkit_runtime import _state

    cid = _state.resolve(roots, ref)
    record = _state.load_record(roots, cid)
    rootfs = ((record.get("doc") or {}).get("container") or {}).get("rootfs")
    if not rootfs or not Path(rootfs).is_dir():
        raise errors.NotFound(f"copy: the rootfs of container {ref} is not available",
                              hint="mount it with pod-storage mount, or use pod cp")
    return Path(rootfs)
