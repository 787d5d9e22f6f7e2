"""Resumable blob downloads: a partial file named by digest, continued with HTTP ranges.

A blob being downloaded lives in ``<root>/blobs/tmp/<algorithm>-<hex>.partial`` and gets
its final name only once the whole of it verifies. The partial file survives a failed
attempt and a killed process: the next attempt, in this pull or a new one, re-hashes the
bytes kept (the hash state is never stored, only recomputed from the file) and asks the
source for the rest (``open_range(offset)``, a ``Range: bytes=offset-`` request). A
source that sends the whole blob again instead (``start == 0``) starts the file over.

Only the holder of the blob's lock touches its partial file, so two pulls never append
to one. The file is removed when its content is proven wrong (VerificationFailed), when
the pull gives up for a reason other than the network, and when it stays untouched for
:data:`PARTIAL_MAX_AGE`; a network failure keeps it for the next pull to resume.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from podkit_common.atomic import fsync_dir
from podkit_common.errors import (
    AuthenticationFailed,
    RemoteError,
    Timeout,
    VerificationFailed,
    from_os_error,
)
from podkit_common.locks import object_lock
from podkit_image_pull._digest import Digest, DigestHasher
from podkit_image_pull._retry import RetryableError, RetryPolicy, call_with_retries, gave_up

PARTIAL_SUFFIX = ".partial"
#: A partial download untouched this long is swept; younger ones are resumed.
PARTIAL_MAX_AGE = 24 * 3600.0
_REHASH_CHUNK = 1 << 20
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class RangeStream(Protocol):
    """What ``open_range`` yields: the bytes from ``start`` on (a BlobStream)."""

    start: int
    chunks: Iterable[bytes]


#: ``open_range(offset)``: open the content from byte ``offset`` (or from 0, saying so).
OpenRange = Callable[[int], AbstractContextManager[RangeStream]]


def partial_path(tmp_dir: Path, digest: Digest) -> Path:
    """Where the partial download of ``digest`` lives."""
    return tmp_dir / f"{digest.algorithm}-{digest.hex}{PARTIAL_SUFFIX}"


class PartialBlob:
    """The partial file of one blob, opened for appending; the caller holds the blob lock."""

    def __init__(self, tmp_dir: Path, digest: Digest, size: int | None) -> None:
        self.digest = digest
        self.size = size
        self.path = partial_path(tmp_dir, digest)
        #: The most bytes ever held: what retries count as progress (a restart is none).
        self.furthest = 0
        self._hasher = DigestHasher(digest.algorithm)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "r+b")
        try:
            self._rehash()
        except BaseException:
            self._file.close()
            raise

    @property
    def offset(self) -> int:
        """How many bytes the file holds (all of them hashed)."""
        return self._hasher.size

    @property
    def complete(self) -> bool:
        """Whether the file holds as many bytes as the blob is declared to have."""
        return self.size is not None and self.offset == self.size

    def _rehash(self) -> None:
        """Hash what an earlier attempt left, so the download continues after it."""
        self._file.seek(0)
        limit = self.size
        while True:
            chunk = self._file.read(_REHASH_CHUNK)
            if not chunk:
                break
            if limit is not None and self._hasher.size + len(chunk) > limit:
                # More than the blob can hold: whatever wrote it, it is not this blob.
                self.restart()
                return
            self._hasher.update(chunk)
        self.furthest = self.offset

    def restart(self) -> None:
        """Drop the bytes held and start the blob from its first byte."""
        self._file.seek(0)
        self._file.truncate(0)
        self._hasher = DigestHasher(self.digest.algorithm)

    def append(self, chunk: bytes) -> None:
        if self.size is not None and self._hasher.size + len(chunk) > self.size:
            raise VerificationFailed(
                f"blob {self.digest}: the registry sent more than the {self.size} bytes "
                f"declared")
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.furthest = max(self.furthest, self._hasher.size)

    def commit(self, final: Path) -> None:
        """Check size and digest, then give the file its final name (durably)."""
        self._file.flush()
        if self.size is not None and self.offset != self.size:
            raise VerificationFailed(
                f"blob {self.digest}: got {self.offset} bytes, the manifest declares "
                f"{self.size}")
        if self._hasher.digest != str(self.digest):
            raise VerificationFailed(
                f"blob {self.digest}: the content has digest {self._hasher.digest}")
        os.fsync(self._file.fileno())
        self._file.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o644)
        os.rename(self.path, final)
        fsync_dir(final.parent)

    def close(self, *, keep: bool) -> None:
        """Close the file; remove it unless ``keep`` (and it holds something)."""
        with contextlib.suppress(OSError):
            self._file.close()
        if not keep or self.offset == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def fetch_resumable(tmp_dir: Path, final: Path, digest: Digest, size: int | None,
                    open_range: OpenRange, retry: RetryPolicy) -> None:
    """Download ``digest`` into ``final`` through its partial file; the caller holds its lock.

    Retryable failures are retried (each attempt resumes at the bytes held). If the blob
    was pieced together from several answers (resumed) and then fails, it is fetched once
    more from its first byte: the bytes kept, not the registry, may be what is wrong.
    """
    what = f"store blob {digest}"
    try:
        partial = PartialBlob(tmp_dir, digest, size)
    except OSError as exc:
        raise from_os_error(exc, what) from exc
    resumed = [False]

    def attempt() -> None:
        if partial.complete:
            return
        offset = partial.offset
        with open_range(offset) as stream:
            if stream.start != offset:
                if stream.start != 0:
                    raise RemoteError(f"blob {digest}: asked for the bytes from {offset}, "
                                      f"got them from {stream.start}")
                partial.restart()  # the source ignored the range: start over
            elif offset:
                resumed[0] = True
            for chunk in stream.chunks:
                partial.append(chunk)

    def download() -> None:
        call_with_retries(retry, attempt, progress=lambda: partial.furthest)
        partial.commit(final)

    keep = False
    try:
        resumed[0] = partial.offset > 0
        try:
            download()
        except (VerificationFailed, RemoteError) as exc:
            if not resumed[0] or gave_up(exc) \
                    or isinstance(exc, RetryableError | AuthenticationFailed):
                raise
            partial.restart()
            resumed[0] = False
            download()
    except RemoteError:
        keep = True  # the network failed, not the bytes held: the next pull resumes them
        raise
    except OSError as exc:
        raise from_os_error(exc, what) from exc
    finally:
        partial.close(keep=keep)


def content_range_start(header: str | None, offset: int, what: str) -> int:
    """Check the ``Content-Range`` of a 206 answer to ``Range: bytes=offset-``; return offset."""
    match = _CONTENT_RANGE_RE.fullmatch((header or "").strip())
    if match is None:
        raise RemoteError(f"{what}: a partial answer (206) without a valid Content-Range "
                          f"({header!r})")
    first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
    if first != offset or last < first or (total != "*" and int(total) != last + 1):
        raise RemoteError(f"{what}: asked for the bytes from {offset} on, the registry sent "
                          f"Content-Range {header!r}")
    return first


def range_headers(offset: int) -> dict[str, str]:
    """The request header asking for the bytes from ``offset`` on (none for 0)."""
    return {"Range": f"bytes={offset}-"} if offset > 0 else {}


def sweep_partials(tmp_dir: Path, locks_dir: Path, max_age: float = PARTIAL_MAX_AGE) -> int:
    """Remove partial downloads untouched for ``max_age`` seconds that nobody holds."""
    try:
        entries = [e for e in os.scandir(tmp_dir) if e.name.endswith(PARTIAL_SUFFIX)]
    except FileNotFoundError:
        return 0
    cutoff = time.time() - max_age
    removed = 0
    for entry in entries:
        algorithm, _, hexpart = entry.name.removesuffix(PARTIAL_SUFFIX).partition("-")
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime >= cutoff:
                continue
            # A pull resuming it holds the blob's lock: skip it rather than pull the file
            # from under its writer.
            with object_lock(locks_dir, "blob", f"{algorithm}:{hexpart}", timeout=0):
                os.unlink(entry.path)
                removed += 1
        except (FileNotFoundError, Timeout):
            pass
    return removed
