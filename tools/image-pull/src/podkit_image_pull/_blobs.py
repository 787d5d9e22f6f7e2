"""A content-addressed blob store: ``<root>/blobs/<algorithm>/<hex>``.

Nothing unverified ever gets a final name: content is written under ``blobs/tmp/``
while it is hashed, checked against the expected size and digest, fsynced and only then
renamed into place. A per-blob lock (``<root>/locks/blob-<algorithm>_<hex>.lock``) makes a
second writer of the same blob wait and then find it present instead of fetching it again.
A download through :meth:`BlobStore.ensure_resumable` is kept in
``blobs/tmp/<algorithm>-<hex>.partial`` and continued by the next attempt (``_resume``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from podkit_common.atomic import fsync_dir
from podkit_common.errors import VerificationFailed, from_os_error
from podkit_common.locks import object_lock
from podkit_image_pull._digest import Digest, DigestHasher, parse_digest
from podkit_image_pull._resume import (
    PARTIAL_SUFFIX,
    OpenRange,
    fetch_resumable,
    sweep_partials,
)
from podkit_image_pull._retry import RetryPolicy

#: Temporary files older than this are left over from a killed pull.
STALE_TEMP_SECONDS = 3600.0


class BlobStore:
    """Verified blobs under ``root``, named by their digest."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.blobs_dir / "tmp"
        self.locks_dir = self.root / "locks"

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it is present)."""
        d = parse_digest(digest)
        return self.blobs_dir / d.algorithm / d.hex

    def has(self, digest: str) -> bool:
        """Whether the blob is present (only verified content is ever present)."""
        return self.path(digest).is_file()

    def put_bytes(self, digest: str, data: bytes) -> bool:
        """Store ``data`` as ``digest``; True if written, False if it was already present."""
        return self.put_stream(digest, len(data), (data,))

    def put_stream(self, digest: str, size: int | None, chunks: Iterable[bytes]) -> bool:
        """Store a stream as ``digest``, verifying ``size`` (if known) and the digest.

        True if written, False if the blob was already present (``chunks`` is then not
        read). A mismatch raises VerificationFailed and leaves nothing behind.
        """
        return self.ensure(digest, size, lambda: contextlib.nullcontext(chunks))

    def ensure(self, digest: str, size: int | None,
               open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]]) -> bool:
        """Make the blob present, calling ``open_chunks`` only if it is missing.

        ``open_chunks`` returns a context manager yielding the content (e.g. an open HTTP
        download), so a blob another process is storing right now is waited for, then
        found present, and never fetched twice.
        """
        d = parse_digest(digest)
        with object_lock(self.locks_dir, "blob", str(d)):
            if self.has(digest):
                return False
            with open_chunks() as chunks:
                self._write_verified(d, size, chunks)
            return True

    def ensure_resumable(self, digest: str, size: int | None, open_range: OpenRange, *,
                         retry: RetryPolicy | None = None) -> bool:
        """Like :meth:`ensure`, but ``open_range(offset)`` opens the content from byte
        ``offset``: failed attempts are retried as ``retry`` says (default: once) and a
        partial download, left by one of them or by a killed pull, is continued (see
        ``_resume``)."""
        d = parse_digest(digest)
        with object_lock(self.locks_dir, "blob", str(d)):
            if self.has(digest):
                return False
            fetch_resumable(self.tmp_dir, self.path(digest), d, size, open_range,
                            retry or RetryPolicy(attempts=1))
            return True

    def discard(self, digest: str) -> None:
        """Remove the blob (under its lock, so no writer of it is cut short)."""
        d = parse_digest(digest)
        with object_lock(self.locks_dir, "blob", str(d)) as held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(digest))
                fsync_dir(self.path(digest).parent)
            held.unlink()

    def cleanup_temp(self, max_age: float = STALE_TEMP_SECONDS) -> int:
        """Remove temporary files left by killed pulls (older than ``max_age`` seconds)."""
        try:
            entries = list(os.scandir(self.tmp_dir))
        except FileNotFoundError:
            return 0
        cutoff = time.time() - max_age
        removed = 0
        for entry in entries:
            if entry.name.endswith(PARTIAL_SUFFIX):
                continue  # resumable downloads: swept by their own rule below
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed + sweep_partials(self.tmp_dir, self.locks_dir)

    def _write_verified(self, d: Digest, size: int | None, chunks: Iterable[bytes]) -> None:
        what = f"store blob {d}"
        final = self.blobs_dir / d.algorithm / d.hex
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix=f"{d.hex[:16]}-")
        except OSError as exc:
            raise from_os_error(exc, what) from exc
        try:
            hasher = DigestHasher(d.algorithm)
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    hasher.update(chunk)
                    if size is not None and hasher.size > size:
                        raise VerificationFailed(
                            f"blob {d}: the registry sent more than the {size} bytes declared")
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if size is not None and hasher.size != size:
                raise VerificationFailed(
                    f"blob {d}: got {hasher.size} bytes, the manifest declares {size}")
            if hasher.digest != str(d):
                raise VerificationFailed(f"blob {d}: the content has digest {hasher.digest}")
            os.chmod(tmp, 0o644)
            os.rename(tmp, final)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise from_os_error(exc, what) from exc
            raise
        fsync_dir(final.parent)
