"""Walking the tar headers of one layer's uncompressed stream.

``TarReader`` is a lean ustar/pax/gnu header reader over a ``LayerSource`` (see
``_decompress``).  ``tarfile`` is not used: iterating a big layer with it costs more
than GNU tar's whole extraction, and its extraction filters are not trusted here.  The
reader only parses; it never touches the filesystem, and names come out raw (cleaning
them is the extractor's job).
"""

from __future__ import annotations

import os
import struct
import zlib

from podkit_common.errors import (
    NotImplementedYet,
    ResourceExhausted,
    UnsafeContent,
    VerificationFailed,
)

from ._decompress import LayerSource

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_MAX_META = 1 << 20      # cap on one pax record set or GNU long name held in memory

# Normalised entry kinds (the ustar typeflag bytes).
REG, LNK, SYM, CHR, BLK, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_AS_REG = {b"\0", b"0", b"7"}
_HEADER_ONLY = {LNK, SYM, CHR, BLK, DIR, FIFO}
_META_KINDS = {b"x", b"g", b"L", b"K"}      # pax records and GNU long names for the next member


class TarEntry:
    """One member as the extractor needs it; ``kind`` is one of REG..FIFO or a raw typeflag."""

    __slots__ = ("atime_ns", "devmajor", "devminor", "gid", "kind", "linkname", "mode",
                 "mtime_ns", "name", "size", "uid", "xattrs")

    def __repr__(self) -> str:
        return f"TarEntry({self.kind!r}, {self.name!r}, size={self.size})"


def show(name: bytes) -> str:
    """A member name for messages: undecodable bytes escaped, the root shown as "."."""
    return name.decode("utf-8", "backslashreplace") or "."


def _corrupt(what: str) -> VerificationFailed:
    return VerificationFailed(f"read tar: {what}")


def _number(field: bytes) -> int:
    """A numeric header field: NUL/space-terminated octal, or GNU base-256."""
    if field[0] & 0x80:
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.partition(b"\0")[0].strip(b" ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise _corrupt(f"bad octal field {field!r}") from None


def _header_sum(block: bytes, field: bytes) -> int:
    """The ustar checksum of ``block``: its byte sum with the checksum ``field`` as spaces."""
    # Adler-32's low half is 1 + the byte sum mod 65521; for 256 bytes the sum stays below
    # the modulus, so two adler32 calls give the exact sum several times faster than sum().
    total = (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2
    return total + 8 * 32 - sum(field)


def _signed_header_sum(block: bytes) -> int:
    """The checksum as some old writers computed it, over signed chars."""
    return sum(b - 256 if b > 127 else b for b in block[:148] + b" " * 8 + block[156:])


# name mode uid gid size mtime chksum typeflag linkname magic+version uname gname
# devmajor devminor prefix
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s")


def _parse_header(block: bytes) -> TarEntry:
    """One 512-byte header as an entry (before pax and GNU long-name records apply)."""
    (name, mode, uid, gid, size, mtime, chksum, kind, linkname, magic, _uname, _gname,
     devmajor, devminor, prefix) = _HEADER.unpack_from(block)
    try:
        nums = (int(mode.rstrip(b" \0"), 8), int(uid.rstrip(b" \0"), 8),
                int(gid.rstrip(b" \0"), 8), int(size.rstrip(b" \0"), 8),
                int(mtime.rstrip(b" \0"), 8), int(chksum.rstrip(b" \0"), 8))
    except ValueError:      # base-256, empty or oddly padded fields
        nums = tuple(map(_number, (mode, uid, gid, size, mtime, chksum)))
    if nums[5] != _header_sum(block, chksum) and nums[5] != _signed_header_sum(block):
        raise _corrupt(f"bad header checksum (name field {show(name.rstrip(bytes(1)))!r})")
    e = TarEntry()
    e.name = name.partition(b"\0")[0]
    if magic[:6] == b"ustar\0" and prefix[0]:
        e.name = prefix.partition(b"\0")[0] + b"/" + e.name
    e.linkname = linkname.partition(b"\0")[0]
    e.kind = kind
    e.mode, e.uid, e.gid, e.size = nums[0] & 0o7777, nums[1], nums[2], nums[3]
    e.mtime_ns = nums[4] * 1_000_000_000
    e.atime_ns = e.xattrs = None
    if kind in (CHR, BLK):
        e.devmajor, e.devminor = _number(devmajor), _number(devminor)
    return e


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        length = data[pos:space]
        if space < 0 or not length.isdigit():
            raise _corrupt("bad pax record")
        end = pos + int(length)
        if end > len(data) or end <= space or data[end - 1] != 0x0A:
            raise _corrupt("bad pax record length")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if not eq:
            raise _corrupt("pax record without '='")
        records[key] = value
        pos = end
    return records


def _pax_time(value: bytes) -> int:
    """A pax decimal timestamp ("1700000000.123456789") as integer nanoseconds."""
    secs, _, frac = value.partition(b".")
    negative = secs.startswith(b"-")
    if not secs.lstrip(b"-").isdigit() or (frac and not frac.isdigit()):
        raise _corrupt(f"bad pax time {value!r}")
    ns = abs(int(secs)) * 1_000_000_000 + int(frac[:9].ljust(9, b"0") or b"0")
    return -ns if negative else ns


# Pax keys honoured from global ('g') headers: path, linkpath and size cannot sensibly
# apply to every later member, so a global header may not set them.
_PER_ENTRY_ONLY = (b"path", b"linkpath", b"size")


class TarReader:
    """Iterate the members of a tar stream held by a ``LayerSource``.

    Each yielded entry's data is either written out by ``copy_data`` or skipped when the
    iteration moves on.  A clean end of stream at a header boundary ends the archive as it
    does for Go's archive/tar (which containers/storage uses); a partial block is corrupt.
    """

    def __init__(self, source: LayerSource, max_entries: int) -> None:
        self._source, self._max_entries = source, max_entries
        self._buf = b""
        self._view = memoryview(self._buf)
        self._pos = 0
        self._left = 0       # bytes of the current member (data + padding) not yet consumed
        self._data = 0       # of which data
        self._global: dict[bytes, bytes] = {}
        self.entries = 0

    def __iter__(self) -> Iterator[TarEntry]:
        while True:
            if self._left:
                self._skip(self._left)
                self._left = 0
            entry = self._next_entry()
            if entry is None:
                return
            self.entries += 1
            if self.entries > self._max_entries:
                raise ResourceExhausted(f"layer has more than {self._max_entries} entries")
            yield entry

    def copy_data(self, fd: int) -> None:
        """Write the current member's data to ``fd``."""
        n, self._data = self._data, 0
        self._left -= n
        view, pos = self._view, self._pos
        while n:
            avail = len(view) - pos
            if not avail:
                self._more()
                view, pos = self._view, 0
                continue
            written = os.write(fd, view[pos:pos + n] if n < avail else view[pos:])
            pos += written
            n -= written
        self._pos = pos

    # -- buffer --

    def _more(self) -> None:
        chunk = self._source.read()
        if not chunk:
            raise _corrupt("truncated stream")
        self._buf, self._view, self._pos = chunk, memoryview(chunk), 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end <= len(self._buf):
            self._pos = end
            return self._buf[end - n:end]
        parts, have = [self._buf[self._pos:]], len(self._buf) - self._pos
        while have < n:
            self._more()
            parts.append(self._buf)
            have += len(self._buf)
        data = b"".join(parts)
        self._buf, self._view, self._pos = data, memoryview(data), n
        return data[:n]

    def _skip(self, n: int) -> None:
        while n > len(self._buf) - self._pos:
            n -= len(self._buf) - self._pos
            self._more()
        self._pos += n

    def _at_eof(self) -> bool:
        if self._pos < len(self._buf):
            return False
        chunk = self._source.read()
        if chunk:
            self._buf, self._view, self._pos = chunk, memoryview(chunk), 0
        return not chunk

    # -- headers --

    def _member_data(self, size: int) -> bytes:
        if size > _MAX_META:
            raise ResourceExhausted(f"tar metadata record of {size} bytes")
        data = self._take(size)
        self._skip(-size % _BLOCK)
        return data

    def _next_entry(self) -> TarEntry | None:
        pax: dict[bytes, bytes] = {}
        longname = longlink = None
        while True:
            if self._pos >= len(self._buf) and self._at_eof():
                return None
            block = self._take(_BLOCK)
            if block == _ZERO_BLOCK:
                if not self._at_eof() and self._take(_BLOCK) != _ZERO_BLOCK:
                    raise _corrupt("data after a zero block")
                return None
            e = _parse_header(block)
            if e.kind not in _META_KINDS:
                return self._complete(e, pax, longname, longlink)
            data = self._member_data(e.size)
            if e.kind == b"x":
                pax.update(_pax_records(data))
            elif e.kind == b"g":
                self._global.update((k, v) for k, v in _pax_records(data).items()
                                    if k not in _PER_ENTRY_ONLY)
            elif e.kind == b"L":
                longname = data.partition(b"\0")[0]
            else:
                longlink = data.partition(b"\0")[0]

    def _complete(self, e: TarEntry, pax: dict[bytes, bytes], longname: bytes | None,
                  longlink: bytes | None) -> TarEntry:
        """Apply the records that preceded ``e`` and set up reading its data."""
        if longname is not None:
            e.name = longname
        if longlink is not None:
            e.linkname = longlink
        if pax or self._global:
            self._apply_pax(e, {**self._global, **pax})
        kind = e.kind
        if e.size < 0:
            raise _corrupt(f"negative size for {show(e.name)}")
        self._data = 0 if kind in _HEADER_ONLY else e.size
        if kind in _AS_REG:
            e.kind = DIR if kind == b"\0" and e.name.endswith(b"/") else REG
        elif kind == b"D":      # a GNU dumpdir: a directory whose data lists its contents
            e.kind = DIR
        elif kind == b"S":
            raise NotImplementedYet(f"sparse file {show(e.name)}: GNU sparse members are "
                                    "not supported")
        self._left = self._data + (-self._data % _BLOCK)
        return e

    @staticmethod
    def _apply_pax(e: TarEntry, pax: dict[bytes, bytes]) -> None:
        try:
            for key, value in pax.items():
                if not value:
                    continue    # an empty record cancels a global one: the header's value holds
                if key == b"path":
                    e.name = value
                elif key == b"linkpath":
                    e.linkname = value
                elif key == b"size":
                    e.size = int(value)
                elif key == b"uid":
                    e.uid = int(value)
                elif key == b"gid":
                    e.gid = int(value)
                elif key == b"mtime":
                    e.mtime_ns = _pax_time(value)
                elif key == b"atime":
                    e.atime_ns = _pax_time(value)
                elif key.startswith(b"SCHILY.xattr."):
                    e.xattrs = e.xattrs or {}
                    e.xattrs[key[13:]] = value
                elif key.startswith(b"GNU.sparse."):
                    raise NotImplementedYet(f"sparse file {show(e.name)}: pax sparse members "
                                            "are not supported")
        except ValueError as exc:
            raise _corrupt(f"bad pax value for {show(e.name)}: {exc}") from exc
        if b"\0" in e.name or b"\0" in e.linkname:
            raise UnsafeContent(f"NUL byte in the pax name of {show(e.name)}")
