"""An uncompressed tar file read in place: members indexed by name, read by offset.

An archive is never unpacked. Its headers are read once (``tarfile`` seeks over the
data), each member's data offset and size are kept, and a blob is then streamed with
``pread`` straight from the archive file, so parallel downloads share one descriptor.

Member names are only ever keys of the index: nothing here builds a host path from one.
Names are cleaned lexically (``./a//b`` is ``a/b``); a member whose name is absolute or
climbs with ``..`` cannot be looked up at all. Symbolic and hard links (containers/image
writes ``<id>/layer.tar -> ../<digest>.tar``) are followed inside the index only, and a
link that leaves the archive's root is :class:`UnsafeContent`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator

from podkit_common.errors import (
    NotFound,
    NotImplementedYet,
    UnsafeContent,
    VerificationFailed,
    from_os_error,
)
from podkit_common.records import record
from podkit_image_pull._source import BlobStream

CHUNK = 1024 * 1024
#: Links followed for one lookup before the chain counts as a loop.
MAX_LINK_HOPS = 16
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bzip2"),
               (b"\xfd7zXZ\x00", "xz"))


@record(frozen=True)
class TarMember:
    """One member: ``kind`` is file, dir, symlink, hardlink or other."""

    name: str
    kind: str
    offset: int
    size: int
    linkname: str = ""


def clean_member_name(name: str) -> str | None:
    """``name`` without ``.`` and empty components; None if absolute or it has ``..``."""
    if name.startswith("/") or "\0" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


class TarIndex:
    """The members of the tar file ``path``; ``what`` names it in messages."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        self.members: dict[str, TarMember] = {}
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise from_os_error(exc, f"open {what}") from None
        try:
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                raise NotFound(f"{what}: {path} is not a regular file")
            self._check_not_compressed()
            self._read_headers()
        except BaseException:
            os.close(self._fd)
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def __enter__(self) -> TarIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------

    def resolve(self, name: str) -> TarMember:
        """The regular file ``name`` refers to, following links inside the archive."""
        wanted = name
        current = clean_member_name(name)
        for _ in range(MAX_LINK_HOPS):
            member = self.members.get(current) if current is not None else None
            if member is None:
                raise NotFound(f"{self.what}: no member {wanted!r}"
                               + (f" (a link leads to {current!r})" if current != wanted else ""))
            if member.kind == "file":
                return member
            if member.kind == "symlink":
                current = _link_target(posixpath.dirname(member.name), member.linkname)
            elif member.kind == "hardlink":
                current = _link_target("", member.linkname)
            else:
                raise VerificationFailed(f"{self.what}: member {member.name!r} is a "
                                         f"{member.kind}, not a file")
            if current is None:
                raise UnsafeContent(f"{self.what}: member {member.name!r} links to "
                                    f"{member.linkname!r}, outside the archive")
        raise UnsafeContent(f"{self.what}: more than {MAX_LINK_HOPS} links from {wanted!r}")

    def read(self, name: str, limit: int) -> bytes:
        """The whole content of member ``name``; refuse one larger than ``limit``."""
        member = self.resolve(name)
        if member.size > limit:
            raise VerificationFailed(f"{self.what}: {name} is {member.size} bytes, more than "
                                     f"the {limit} it may have")
        return b"".join(self._chunks(member))

    @contextlib.contextmanager
    def open(self, name: str, offset: int = 0) -> Iterator[BlobStream]:
        """Stream member ``name``, from byte ``offset`` of it."""
        member = self.resolve(name)
        offset = min(max(offset, 0), member.size)
        yield BlobStream(member.size - offset, self._chunks(member, offset), offset)

    def _chunks(self, member: TarMember, skip: int = 0) -> Iterator[bytes]:
        pos, end = member.offset + skip, member.offset + member.size
        while pos < end:
            try:
                chunk = os.pread(self._fd, min(CHUNK, end - pos), pos)
            except OSError as exc:
                raise from_os_error(exc, f"read {member.name} from {self.what}") from None
            if not chunk:
                raise VerificationFailed(f"{self.what}: member {member.name!r} is cut short "
                                         "(the archive is truncated)")
            pos += len(chunk)
            yield chunk

    # --- indexing -------------------------------------------------------------------

    def _check_not_compressed(self) -> None:
        head = os.pread(self._fd, 6, 0)
        for magic, kind in _COMPRESSED:
            if head.startswith(magic):
                raise NotImplementedYet(
                    f"{self.what} is {kind}-compressed; only uncompressed tar archives are "
                    "read in place", hint=f"decompress it first (e.g. with {kind} -dk)")

    def _read_headers(self) -> None:
        with open(self._fd, "rb", closefd=False, buffering=0) as raw:
            try:
                with tarfile.open(fileobj=raw, mode="r:") as tar:
                    for info in tar:
                        self._add(info)
            except tarfile.TarError as exc:
                raise VerificationFailed(f"{self.what} is not a valid tar archive: {exc}",
                                         hint="the archive is damaged or not an image archive"
                                         ) from None
            except OSError as exc:
                raise from_os_error(exc, f"read {self.what}") from None

    def _add(self, info: tarfile.TarInfo) -> None:
        name = clean_member_name(info.name)
        if not name:
            return  # unreachable by any lookup: absolute, "..", or the root itself
        if info.issparse():
            kind = "other"
        elif info.isreg():
            kind = "file"
        elif info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        else:
            kind = "other"
        size = info.size if kind == "file" else 0
        self.members[name] = TarMember(name, kind, info.offset_data, size, info.linkname)


def _link_target(directory: str, target: str) -> str | None:
    """``target`` resolved lexically from ``directory``; None if it leaves the root."""
    if target.startswith("/") or "\0" in target:
        return None
    parts: list[str] = [p for p in directory.split("/") if p]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)
