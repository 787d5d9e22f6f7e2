"""Apply one image layer to an overlayfs "diff" directory, safely and fast.

The safety model follows umoci's ``oci/layer/tar_extract.go``:

* every member name is cleaned lexically first (no leading ``/``, ``..`` clamped at the root);
* only the *parent* directory is resolved on disk, inside the destination: symlinks on the
  way are followed but clamped to it as if it were ``/`` (``openat2`` with
  ``RESOLVE_IN_ROOT``, or a component-by-component walk where that syscall is missing);
* the last component is never followed: every create, remove, chown, chmod, utime and
  setxattr works on (parent fd, name) with no-follow semantics, or on the fd we created;
* hard-link targets are resolved the same way, so a link can only reach inside the layer.

Whiteouts become overlayfs whiteouts (0:0 character devices and the
``trusted.overlay.opaque`` xattr).  Directory modes and times are applied last, since
creating children changes them and a read-only mode would stop a non-root extraction.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat

from podkit_common.errors import (
    PermissionDenied,
    PodkitError,
    ResourceExhausted,
    UnsafeContent,
    UsageError,
    VerificationFailed,
    from_os_error,
)
from podkit_common.records import record

from ._decompress import LayerSource
from ._rootdir import _OPAQUE, _RootDir
from ._tar import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry, TarReader
from ._tar import show as _show

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["LayerStats", "UnpackOptions", "apply_layer", "clean_name"]


@record(frozen=True)
class UnpackOptions:
    """Limits and ownership policy for ``apply_layer``."""

    max_bytes: int = 64 * 2**30        # uncompressed stream limit -> ResourceExhausted
    max_entries: int = 5_000_000        # -> ResourceExhausted
    same_owner: bool = True             # chown entries to the tar's uid/gid (needs root)


@record(frozen=True)
class LayerStats:
    """What was read: the uncompressed stream's digest and size, and the member count."""

    diff_id: str
    size: int
    entries: int


def apply_layer(src: BinaryIO, dest: str | os.PathLike[str], *, compression: str = "auto",
                expected_diff_id: str | None = None,
                options: UnpackOptions = UnpackOptions()) -> LayerStats:
    """Unpack the layer stream ``src`` into the existing directory ``dest``.

    ``compression`` is "gzip", "zstd", "none" or "auto" (sniffed from the magic bytes).
    The whole uncompressed stream, trailing padding included, is hashed; with
    ``expected_diff_id`` a mismatch raises VerificationFailed.  Errors are podkit errors:
    UnsafeContent, VerificationFailed, ResourceExhausted, PermissionDenied, ...; on error
    ``dest`` is left half-made for the caller to delete, with no fd left open.
    """
    doing = f"unpack layer {expected_diff_id}" if expected_diff_id else "unpack layer"
    if compression not in ("auto", "gzip", "zstd", "none"):
        raise UsageError(f"{doing}: unknown compression {compression!r}")
    try:
        with _Extractor(dest, options) as extractor, \
                LayerSource(src, compression, options.max_bytes) as source:
            reader = TarReader(source, options.max_entries)
            extractor.extract(reader)
            source.drain()
            stats = LayerStats(source.diff_id, source.size, reader.entries)
    except PodkitError as exc:
        raise type(exc)(f"{doing}: {exc.message}", hint=exc.hint) from exc
    except OSError as exc:      # opening dest; everything after maps its own errors
        raise from_os_error(exc, f"{doing}: open {os.fsdecode(dest)}") from exc
    if expected_diff_id is not None and stats.diff_id != expected_diff_id:
        raise VerificationFailed(f"{doing}: diff_id mismatch: the stream hashes to "
                                 f"{stats.diff_id}")
    return stats


def clean_name(name: bytes) -> bytes:
    """Clean a member name lexically: relative, no ``.`` or empty parts, ``..`` clamped."""
    if name.startswith(b"./"):
        name = name[2:]
    if name.endswith(b"/"):
        name = name[:-1]
    if name and not (name.startswith((b"/", b".")) or b"//" in name or b"/." in name):
        return name
    parts: list[bytes] = []
    for part in name.split(b"/"):
        if part == b"..":
            if parts:
                parts.pop()
        elif part and part != b".":
            parts.append(part)
    return b"/".join(parts)


# --- errors -----------------------------------------------------------------------------

_INCONSISTENT = {errno.ENOENT, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY,
                 errno.ENAMETOOLONG, errno.EMLINK, errno.EINVAL}


def _os_failure(exc: OSError, doing: str) -> PodkitError:
    text = f"{doing}: {exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE):
        return ResourceExhausted(text, hint="free some space; the caller removes the "
                                            "half-made layer")
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(text)
    if exc.errno == errno.ELOOP:
        return UnsafeContent(text)
    if exc.errno in _INCONSISTENT:
        return VerificationFailed(text, hint="the layer's tar stream is malformed")
    return PodkitError(text)


def _join(parent: bytes, base: bytes) -> bytes:
    return parent + b"/" + base if parent else base


# --- applying members -------------------------------------------------------------------

# A directory's mode and times, applied at the end: (parent or None for the root, name,
# mode, atime_ns, mtime_ns).
_PendingDir = tuple[bytes | None, bytes, int, int, int]
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NODE_TYPES = {CHR: stat.S_IFCHR, BLK: stat.S_IFBLK, FIFO: stat.S_IFIFO}
_VERBS = {REG: "create", DIR: "mkdir", SYM: "symlink", LNK: "link", CHR: "mknod",
          BLK: "mknod", FIFO: "mkfifo"}


def _process_umask() -> int | None:
    """The umask, read without setting it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return None


def _xattr_allowed(name: bytes) -> bool:
    if b"\0" in name:
        raise UnsafeContent(f"NUL byte in xattr name {_show(name)}")
    # SELinux labels belong to the host's policy, not to the image; overlay.* xattrs in a
    # layer would let it steer overlayfs (opaque dirs, redirects) behind the whiteout rules.
    return not (name == b"security.selinux" or name.startswith((b"trusted.overlay.",
                                                                 b"user.overlay.")))


class _Extractor:
    """Applies members in stream order to a ``_RootDir``; use as a context manager."""

    def __init__(self, dest: str | os.PathLike[str], options: UnpackOptions) -> None:
        self._root = _RootDir(dest)
        self._same_owner = options.same_owner
        umask = _process_umask()
        # Files are created with their final permission bits; chmod only when the umask
        # took some away or setuid/setgid/sticky are wanted (a chown clears those).
        self._chmod_bits = 0o7777 if umask is None else 0o7000 | umask
        self._reader: TarReader | None = None
        self._dirs: dict[tuple[int, int], _PendingDir] = {}     # by (st_dev, st_ino)
        self._handlers = {REG: self._file, DIR: self._directory, SYM: self._symlink,
                          LNK: self._hardlink, CHR: self._node, BLK: self._node,
                          FIFO: self._node}

    def __enter__(self) -> _Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._root.close()

    def extract(self, reader: TarReader) -> None:
        self._reader = reader
        root = self._root
        for e in reader:
            if root.retired:
                root.release()
            name = clean_name(e.name)
            parent, _, base = name.rpartition(b"/")
            try:
                if base.startswith(b".wh."):
                    self._whiteout(parent, base)
                elif not base:
                    self._root_entry(e)
                else:
                    handler = self._handlers.get(e.kind)
                    # Sockets, volume labels and vendor types have nothing to create.
                    if handler is not None:
                        handler(root.parent(parent), parent, base, e)
            except OSError as exc:
                verb = "whiteout" if base.startswith(b".wh.") else _VERBS.get(e.kind, "unpack")
                raise _os_failure(exc, f"{verb} {_show(name)}") from exc
            except OverflowError as exc:
                raise VerificationFailed(f"{_show(name)}: value out of range: {exc}") from exc
        self._finish_dirs()

    # -- member kinds --

    def _file(self, pfd: int, parent: bytes, base: bytes, e: TarEntry) -> None:
        try:
            fd = os.open(base, _CREATE, e.mode & 0o777, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base)
            fd = os.open(base, _CREATE, e.mode & 0o777, dir_fd=pfd)
        try:
            if e.size:
                self._reader.copy_data(fd)
            if self._same_owner:
                os.chown(fd, e.uid, e.gid)
            if e.mode & self._chmod_bits:
                os.chmod(fd, e.mode)    # after chown, which clears setuid/setgid
            if e.xattrs:                # after chown, which clears security.capability
                self._set_xattrs(fd, e.xattrs)
            os.utime(fd, ns=(e.atime_ns or e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _directory(self, pfd: int, parent: bytes, base: bytes, e: TarEntry) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(base, dir_fd=pfd, follow_symlinks=False).st_mode):
                self._clear(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
        st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        self._owner_and_xattrs(pfd, base, e)
        self._dirs[st.st_dev, st.st_ino] = (parent, base, e.mode, e.atime_ns or e.mtime_ns,
                                            e.mtime_ns)

    def _symlink(self, pfd: int, parent: bytes, base: bytes, e: TarEntry) -> None:
        try:
            os.symlink(e.linkname, base, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base)
            os.symlink(e.linkname, base, dir_fd=pfd)
        self._owner_and_xattrs(pfd, base, e)
        os.utime(base, ns=(e.atime_ns or e.mtime_ns, e.mtime_ns), dir_fd=pfd,
                 follow_symlinks=False)

    def _hardlink(self, pfd: int, parent: bytes, base: bytes, e: TarEntry) -> None:
        target = clean_name(e.linkname)
        if not target:
            raise UnsafeContent(f"hard link {_show(_join(parent, base))} to the layer root")
        tparent, _, tbase = target.rpartition(b"/")
        tfd = self._root.parent(tparent, create=False)
        if stat.S_ISDIR(os.stat(tbase, dir_fd=tfd, follow_symlinks=False).st_mode):
            # link(2) says EPERM, which would read as "run as root": it is the layer's fault
            raise UnsafeContent(f"hard link {_show(_join(parent, base))} to the directory "
                                f"{_show(target)}")
        try:
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileExistsError:
            old = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            new = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
            if (old.st_dev, old.st_ino) == (new.st_dev, new.st_ino):
                return
            self._clear(pfd, base)
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _node(self, pfd: int, parent: bytes, base: bytes, e: TarEntry) -> None:
        dev = os.makedev(e.devmajor, e.devminor) if e.kind != FIFO else 0
        try:
            os.mknod(base, _NODE_TYPES[e.kind] | 0o600, dev, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base)
            os.mknod(base, _NODE_TYPES[e.kind] | 0o600, dev, dir_fd=pfd)
        self._owner_and_xattrs(pfd, base, e)
        os.chmod(base, e.mode, dir_fd=pfd, follow_symlinks=False)
        os.utime(base, ns=(e.atime_ns or e.mtime_ns, e.mtime_ns), dir_fd=pfd,
                 follow_symlinks=False)

    def _root_entry(self, e: TarEntry) -> None:
        if e.kind != DIR:
            # Turning the root into a symlink would redirect everything after it.
            raise UnsafeContent(f"member of type {e.kind!r} names the layer root")
        fd = self._root.fd
        if self._same_owner:
            os.chown(fd, e.uid, e.gid)
        if e.xattrs:
            self._set_xattrs(fd, e.xattrs)
        st = os.fstat(fd)
        self._dirs[st.st_dev, st.st_ino] = (None, b"", e.mode, e.atime_ns or e.mtime_ns,
                                            e.mtime_ns)

    def _whiteout(self, parent: bytes, base: bytes) -> None:
        if base == b".wh..wh..opq":
            pfd = self._root.parent(parent)
            os.setxattr(b"/proc/self/fd/%d" % pfd, _OPAQUE, b"y")
            return
        if base.startswith(b".wh..wh."):
            if base.startswith(b".wh..wh..opq"):
                raise UnsafeContent(f"bad opaque whiteout {_show(base)}")
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs), meaningless to overlayfs
        victim = base[4:]
        if victim in (b"", b".", b".."):
            # ".wh.." must never be read as "remove my parent".
            raise UnsafeContent(f"bad whiteout name {_show(_join(parent, base))}")
        pfd = self._root.parent(parent)
        with contextlib.suppress(FileNotFoundError):
            self._clear(pfd, victim)
        os.mknod(victim, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        if self._same_owner:
            os.chown(victim, 0, 0, dir_fd=pfd, follow_symlinks=False)

    # -- helpers --

    def _clear(self, pfd: int, base: bytes) -> None:
        """Remove whatever is at ``base`` so a member of another type can take its place."""
        st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            try:
                shutil.rmtree(base, dir_fd=pfd)   # fd-based: never follows a symlink
            except RecursionError:
                raise ResourceExhausted(f"{_show(base)}: directory tree too deep to "
                                        "replace") from None
        else:
            os.unlink(base, dir_fd=pfd)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self._root.forget()

    def _owner_and_xattrs(self, pfd: int, base: bytes, e: TarEntry) -> None:
        if self._same_owner:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            self._set_xattrs(b"/proc/self/fd/%d/%s" % (pfd, base), e.xattrs)

    @staticmethod
    def _set_xattrs(target: int | bytes, xattrs: dict[bytes, bytes]) -> None:
        follow = isinstance(target, int)    # an fd has nothing to follow; a path must not
        for name, value in xattrs.items():
            if _xattr_allowed(name):
                os.setxattr(target, name, value, follow_symlinks=follow)

    def _finish_dirs(self) -> None:
        """Apply directory modes and times, deepest first so none locks out its children."""
        def depth(item: tuple[tuple[int, int], _PendingDir]) -> int:
            parent, base = item[1][:2]
            return -1 if parent is None else len(parent) + len(base)

        for key, pending in sorted(self._dirs.items(), key=depth, reverse=True):
            parent, base = pending[:2]
            try:
                self._set_dir_metadata(key, pending)
            except OSError as exc:
                name = b"" if parent is None else _join(parent, base)
                raise _os_failure(exc, f"set mode and times {_show(name)}") from exc
            self._root.release()

    def _set_dir_metadata(self, key: tuple[int, int], pending: _PendingDir) -> None:
        parent, base, mode, atime, mtime = pending
        if parent is None:
            fd = self._root.fd
        else:
            try:
                pfd = self._root.parent(parent, create=False)
                fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=pfd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    return      # replaced or removed by a later member
                raise
        try:
            st = os.fstat(fd)
            # The name may now hold another directory (removed and made again later).
            if (st.st_dev, st.st_ino) == key:
                os.chmod(fd, mode)
                os.utime(fd, ns=(atime, mtime))
        finally:
            if parent is not None:
                os.close(fd)
