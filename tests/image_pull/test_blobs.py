"""The blob store: only verified content ever gets a final name."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from contextlib import contextmanager

import pytest

from podkit_common.errors import ResourceExhausted, UsageError, VerificationFailed
from podkit_image_pull import BlobStore, digest_of

DATA = os.urandom(300_000)
DIGEST = digest_of(DATA)


def chunked(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def test_stream_is_stored_under_its_digest(tmp_path):
    store = BlobStore(tmp_path)
    assert store.put_stream(DIGEST, len(DATA), chunked(DATA)) is True
    path = tmp_path / "blobs" / "sha256" / DIGEST[7:]
    assert store.path(DIGEST) == path
    assert path.read_bytes() == DATA
    assert store.has(DIGEST)
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_present_blob_is_not_read_again(tmp_path):
    store = BlobStore(tmp_path)
    store.put_bytes(DIGEST, DATA)

    def explode():
        raise AssertionError("the stream must not be read")
        yield b""  # pragma: no cover

    assert store.put_stream(DIGEST, len(DATA), explode()) is False


def test_sha512_blobs_live_in_their_own_directory(tmp_path):
    digest = "sha512:" + hashlib.sha512(DATA).hexdigest()
    store = BlobStore(tmp_path)
    store.put_bytes(digest, DATA)
    assert (tmp_path / "blobs" / "sha512" / digest[7:]).read_bytes() == DATA


@pytest.mark.parametrize("data, size, words", [
    (DATA[:-1] + bytes([DATA[-1] ^ 1]), len(DATA), "has digest"),  # b"x" was DATA's own
    # last byte one run in 256 (random DATA): then nothing differed (CI of 2026-11-29)
    (DATA + b"extra", len(DATA), "more than"),
    (DATA[:-10], len(DATA), "got"),
    (DATA, len(DATA) - 1, "more than"),
])
def test_mismatch_leaves_nothing_behind(tmp_path, data, size, words):
    store = BlobStore(tmp_path)
    with pytest.raises(VerificationFailed, match=words):
        store.put_stream(DIGEST, size, chunked(data))
    assert not store.has(DIGEST)
    assert files_under(tmp_path / "blobs") == []


def test_unknown_size_still_checks_the_digest(tmp_path):
    store = BlobStore(tmp_path)
    assert store.put_stream(DIGEST, None, chunked(DATA))
    with pytest.raises(VerificationFailed):
        store.put_stream(digest_of(b"other"), None, [b"not other"])


def test_no_space_is_resource_exhausted_and_removes_the_temp(tmp_path):
    def fill_disk():
        yield DATA[:1000]
        raise OSError(errno.ENOSPC, "No space left on device")

    store = BlobStore(tmp_path)
    with pytest.raises(ResourceExhausted, match="No space left"):
        store.put_stream(DIGEST, len(DATA), fill_disk())
    assert files_under(tmp_path / "blobs") == []


def test_interrupted_write_removes_the_temp(tmp_path):
    def interrupted():
        yield DATA[:1000]
        raise KeyboardInterrupt

    store = BlobStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.put_stream(DIGEST, len(DATA), interrupted())
    assert files_under(tmp_path / "blobs") == []


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256:abc", "md5:00"])
def test_malformed_digest_builds_no_path(tmp_path, digest):
    store = BlobStore(tmp_path)
    with pytest.raises(UsageError):
        store.put_bytes(digest, b"x")
    with pytest.raises(UsageError):
        store.path(digest)
    assert not (tmp_path / "blobs").exists()


def test_second_writer_waits_and_then_finds_the_blob(tmp_path):
    store = BlobStore(tmp_path)
    first_started = threading.Event()
    opened = []

    @contextmanager
    def slow_download():
        opened.append(threading.current_thread().name)
        first_started.set()
        time.sleep(0.3)
        yield chunked(DATA)

    results = {}

    def worker(name):
        results[name] = store.ensure(DIGEST, len(DATA), slow_download)

    first = threading.Thread(target=worker, args=("first",), name="first")
    first.start()
    first_started.wait(5)
    second = threading.Thread(target=worker, args=("second",), name="second")
    second.start()
    first.join(10)
    second.join(10)
    assert results == {"first": True, "second": False}
    assert opened == ["first"]


def test_stale_temp_files_are_swept(tmp_path):
    store = BlobStore(tmp_path)
    store.tmp_dir.mkdir(parents=True)
    old, fresh = store.tmp_dir / "old-partial", store.tmp_dir / "fresh-partial"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert store.cleanup_temp() == 1
    assert not old.exists() and fresh.exists()
    assert BlobStore(tmp_path / "nothing-here").cleanup_temp() == 0
