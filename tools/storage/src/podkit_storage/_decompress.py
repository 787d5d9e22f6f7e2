"""The uncompressed bytes of one layer stream, produced on a background thread.

``LayerSource`` turns the (possibly compressed) blob into its uncompressed bytes on a
background thread — zlib, zstd and sha256 all release the GIL, so inflating overlaps with
the extractor's syscalls the way ``tar -xz`` overlaps with its ``gzip`` child — and counts
and hashes every byte, trailing padding included, for the diff_id.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import sys
import threading
import zlib

try:  # zlib-ng inflates about twice as fast as zlib, with the same API.
    from zlib_ng import zlib_ng as _inflate_lib
except ImportError:
    _inflate_lib = zlib

from podkit_common.errors import (
    PodkitError,
    ResourceExhausted,
    UsageError,
    VerificationFailed,
    from_os_error,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

CHUNK = 1 << 20          # uncompressed bytes handed over per queue item
_READ = 1 << 20          # compressed bytes read from the source at a time
# Chunks held ahead per layer: with several layers unpacking at once, CHUNK x depth x
# layers is the pull's memory, which must stay flat (< 100 MB for the whole pull).
_QUEUE_DEPTH = 4

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

class _Prepended:
    """``src`` with the sniffed magic bytes put back in front."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head, self._src = head, src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._src.read(n)


class _ZstdFrames:
    """Walk zstd frame and block headers (RFC 8878) over the compressed bytes.

    python-zstandard's stream_reader answers a stream cut inside a frame with a short read
    rather than an error; following the block sizes tells a truncated blob from a whole one.
    """

    def __init__(self) -> None:
        self._state, self._need, self._skip, self._pending = "magic", 4, 0, b""
        self._checksum = False
        self.frames = 0

    @property
    def complete(self) -> bool:
        return self.frames > 0 and self._state == "magic" and not self._pending and not self._skip

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            take = data[pos:pos + self._need - len(self._pending)]
            pos += len(take)
            self._pending += take
            if len(self._pending) == self._need:
                field, self._pending = self._pending, b""
                self._advance(field)

    def _advance(self, field: bytes) -> None:
        value = int.from_bytes(field, "little")
        state = self._state
        if state == "magic":
            if value == 0xFD2FB528:
                self._state, self._need = "descriptor", 1
            elif _is_zstd_skippable(field):
                self._state, self._need = "skippable", 4
            else:
                raise VerificationFailed("zstd: bad frame magic")
        elif state == "skippable":
            self._skip, self._state, self._need = value, "magic", 4
        elif state == "descriptor":
            fcs, single = value >> 6, value >> 5 & 1
            self._checksum = bool(value & 4)
            rest = (0 if single else 1) + (0, 1, 2, 4)[value & 3] + (single, 2, 4, 8)[fcs]
            self._state, self._need = ("header", rest) if rest else ("block", 3)
        elif state == "header":
            self._state, self._need = "block", 3
        elif state == "block":
            kind, size = value >> 1 & 3, value >> 3
            if kind == 3:
                raise VerificationFailed("zstd: reserved block type")
            self._skip = 1 if kind == 1 else size
            if value & 1 and self._checksum:        # the frame's last block
                self._state, self._need = "checksum", 4
            elif value & 1:
                self._state, self._need = "magic", 4
                self.frames += 1
        else:  # checksum
            self._state, self._need = "magic", 4
            self.frames += 1


def _is_zstd_skippable(head: bytes) -> bool:
    return len(head) == 4 and int.from_bytes(head, "little") & 0xFFFFFFF0 == 0x184D2A50


def _read_head(src: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        more = src.read(n - len(head))
        if not more:
            break
        head += more
    return head


def _gunzip(src: BinaryIO) -> Iterator[bytes]:
    """Inflate every gzip member in turn; garbage after a member is an error, as in Go."""
    d = _inflate_lib.decompressobj(31)
    pending = b""       # input read past the end of the previous member
    while True:
        data = d.unconsumed_tail or pending or src.read(_READ)
        pending = b""
        out = d.decompress(data, CHUNK)
        if out:
            yield out
        if d.eof:
            pending = d.unused_data or src.read(_READ)
            if not pending:
                return
            d = _inflate_lib.decompressobj(31)
        elif not data and not out:
            raise VerificationFailed("gzip: truncated stream")


class _FrameTee:
    """A reader that shows every compressed byte to a ``_ZstdFrames`` on its way through."""

    def __init__(self, src: BinaryIO, frames: _ZstdFrames) -> None:
        self._src, self._frames = src, frames

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._frames.feed(data)
        return data


def _unzstd(src: BinaryIO) -> Iterator[bytes]:
    import zstandard

    frames = _ZstdFrames()
    reader = zstandard.ZstdDecompressor().stream_reader(_FrameTee(src, frames), read_size=_READ,
                                                        read_across_frames=True)
    while out := reader.read(CHUNK):
        yield out
    if not frames.complete:
        raise VerificationFailed("zstd: truncated stream")


def _plain(src: BinaryIO) -> Iterator[bytes]:
    while data := src.read(CHUNK):
        yield data


def uncompressed_chunks(src: BinaryIO, compression: str) -> Iterator[bytes]:
    """Yield the uncompressed bytes of ``src``; ``compression`` "auto" sniffs the magic."""
    if compression not in ("auto", "gzip", "zstd", "none"):
        raise UsageError(f"unknown compression {compression!r}")
    head = _read_head(src, 4)
    if compression == "auto":
        compression = ("gzip" if head.startswith(GZIP_MAGIC) else
                       "zstd" if head == ZSTD_MAGIC or _is_zstd_skippable(head) else "none")
    stream = _Prepended(head, src)
    try:
        if compression == "gzip":
            yield from _gunzip(stream)
        elif compression == "zstd":
            yield from _unzstd(stream)
        else:
            yield from _plain(stream)
    except (zlib.error, _inflate_lib.error, _zstd_error()) as exc:
        raise VerificationFailed(f"{compression}: corrupt stream: {exc}") from exc



class _NoError(Exception):
    """Matches nothing: what ``_zstd_error`` gives before zstandard was imported."""


def _zstd_error() -> type[Exception]:
    """zstandard's error class once a zstd stream imported it (zstandard imports
    typing and platform: only zstd layers pay for it)."""
    module = sys.modules.get("zstandard")
    return module.ZstdError if module is not None else _NoError


class LayerSource:
    """The uncompressed bytes of one layer, counted, hashed and capped at ``max_bytes``.

    A daemon thread decompresses ahead into a small queue; ``close`` stops and joins it, so
    nothing outlives the call that opened the source.  Use as a context manager.
    """

    def __init__(self, src: BinaryIO, compression: str, max_bytes: int) -> None:
        self._src, self._compression, self._max = src, compression, max_bytes
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False
        self._thread = threading.Thread(target=self._produce, name="layer-inflate", daemon=True)

    def __enter__(self) -> LayerSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def read(self) -> bytes:
        """The next piece of the stream, or b"" once it has all been read."""
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    def drain(self) -> None:
        """Read (and so hash) whatever follows the end of the archive."""
        while self.read():
            pass

    def close(self) -> None:
        if self._thread.ident is None:
            return
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _produce(self) -> None:
        try:
            for chunk in uncompressed_chunks(self._src, self._compression):
                self.size += len(chunk)
                if self.size > self._max:
                    raise ResourceExhausted(f"layer is larger than the {self._max} byte limit")
                self._hash.update(chunk)
                if not self._put(chunk):
                    return
            self._put(b"")
        except PodkitError as exc:
            self._put(exc)
        except OSError as exc:
            self._put(from_os_error(exc, "read layer"))
        except BaseException as exc:  # handed to the reading thread, which re-raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False
