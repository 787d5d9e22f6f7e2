"""Retries and resumable downloads, in-process: the policy, the partial files, the ranges.

The blob store is driven with a scripted ``open_range`` (what a registry would send
from an offset), the registry client with httpx.MockTransport; test_faults.py runs the
same behaviour through the executable against a real registry.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from podkit_common.errors import (
    NotFound,
    RemoteError,
    UsageError,
    VerificationFailed,
    envelope,
)
from podkit_common.locks import object_lock
from podkit_common.progress import Progress
from podkit_image_pull import BlobStore, RegistryClient, RetryPolicy, digest_of
from podkit_image_pull import parse_digest as parse
from podkit_image_pull._resume import content_range_start, partial_path, sweep_partials
from podkit_image_pull._retry import (
    RetryableError,
    call_with_retries,
    gave_up,
    parse_duration,
    parse_retry_after,
)
from tests.image_pull.fakes import HOST, FakeRegistry

DATA = os.urandom(700_000)
DIGEST = digest_of(DATA)


def quick(**kw) -> tuple[RetryPolicy, list[float]]:
    """A policy that records its waits instead of sleeping, and the list of them."""
    waits: list[float] = []
    return RetryPolicy(sleep=waits.append, **kw), waits


# --- the retry policy ---------------------------------------------------------------------

def test_backoff_doubles_with_jitter_up_to_the_cap():
    policy = RetryPolicy(backoff=1.0, max_delay=3.0)
    for _ in range(50):
        assert 0.5 <= policy.wait_before(2) <= 1.0
        assert 1.0 <= policy.wait_before(3) <= 2.0
        assert 1.5 <= policy.wait_before(6) <= 3.0
    assert len({policy.wait_before(2) for _ in range(20)}) > 1  # jittered


def test_fixed_delay_and_retry_after():
    policy = RetryPolicy(delay=0.25)
    assert policy.wait_before(2) == policy.wait_before(5) == 0.25
    assert policy.wait_before(2, retry_after=4.0) == 4.0


@pytest.mark.parametrize("header, seconds", [
    ("7", 7.0), (" 0 ", 0.0), ("", None), (None, None), ("soon", None),
])
def test_retry_after_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date():
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True),
                             now=now) == 0.0


@pytest.mark.parametrize("text, seconds", [
    ("30", 30.0), ("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("0.5", 0.5), ("1h", 3600.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "2x", "-1", "1s2", "s"])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_duration(text, "--retry-delay")


def test_policy_checks_its_numbers():
    assert RetryPolicy.from_options(3, None, 30.0).attempts == 4
    with pytest.raises(UsageError):
        RetryPolicy(attempts=0)
    with pytest.raises(UsageError):
        RetryPolicy(stall_timeout=0)
    with pytest.raises(UsageError):
        RetryPolicy(delay=-1)


def test_retryable_failures_are_retried_then_succeed():
    policy, waits = quick(delay=0.5)
    reports: list[str] = []
    policy = policy.reporting_to(reports.append)
    calls = iter([RetryableError("blob x: HTTP 503"), RetryableError("blob x: reset"), "ok"])

    def attempt():
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    assert call_with_retries(policy, attempt) == "ok"
    assert waits == [0.5, 0.5]
    assert reports == ["blob x: HTTP 503; retrying in 0.5s (attempt 2 of 4)",
                       "blob x: reset; retrying in 0.5s (attempt 3 of 4)"]


def test_giving_up_names_the_attempts_and_the_last_cause():
    policy, waits = quick(attempts=3, delay=0)
    count = [0]

    def attempt():
        count[0] += 1
        raise RetryableError(f"manifest m: HTTP 500 (try {count[0]})", hint="h")

    with pytest.raises(RemoteError) as info:
        call_with_retries(policy, attempt)
    assert type(info.value) is RemoteError and gave_up(info.value)
    assert info.value.message == "manifest m: HTTP 500 (try 3) (gave up after 3 attempts)"
    assert count[0] == 3 and len(waits) == 2


def test_other_errors_are_not_retried():
    policy, waits = quick()

    def attempt():
        raise VerificationFailed("wrong bytes")

    with pytest.raises(VerificationFailed):
        call_with_retries(policy, attempt)
    assert waits == []


def test_an_attempt_that_moved_forward_starts_a_fresh_count():
    policy, _ = quick(attempts=2, delay=0)
    done = [0]

    def attempt():
        done[0] += 1
        if done[0] < 5:
            raise RetryableError("reset")  # but each attempt got a bit further
        return done[0]

    assert call_with_retries(policy, attempt, progress=lambda: done[0]) == 5
    with pytest.raises(RemoteError, match="gave up after 2 attempts"):
        call_with_retries(policy, lambda: (_ for _ in ()).throw(RetryableError("stuck")),
                          progress=lambda: 0)


def test_a_retry_after_beyond_the_limit_gives_up_at_once():
    policy, waits = quick(max_retry_after=60)

    def attempt():
        raise RetryableError("HTTP 429", retry_after=3600)

    with pytest.raises(RemoteError, match="asks to retry after 3600s"):
        call_with_retries(policy, attempt)
    assert waits == []


def test_retryable_errors_report_as_remote_errors():
    assert envelope("t", RetryableError("x"))["error"]["type"] == "RemoteError"


# --- partial files and resume (the blob store) -------------------------------------------

@dataclass
class Stream:
    start: int
    chunks: object


class Script:
    """An ``open_range`` that answers from DATA; ``plan`` says what each open does:
    ("ok"), ("fail", n) = n bytes then a reset, ("whole",) = ignore the range,
    ("corrupt",) = a wrong first byte, ("status",) = a 503 before any byte."""

    def __init__(self, *plan: tuple, data: bytes = DATA) -> None:
        self.plan = list(plan)
        self.data = data
        self.offsets: list[int] = []

    @contextmanager
    def __call__(self, offset: int):
        self.offsets.append(offset)
        step = self.plan.pop(0) if self.plan else ("ok",)
        if step[0] == "status":
            raise RetryableError("blob: HTTP 503")
        start = 0 if step[0] == "whole" else offset
        body = self.data[start:]
        if step[0] == "corrupt":
            body = bytes([body[0] ^ 1]) + body[1:]
        yield Stream(start, self._chunks(body, step))

    @staticmethod
    def _chunks(body: bytes, step: tuple):
        limit = step[1] if step[0] == "fail" else len(body)
        for i in range(0, limit, 65536):
            yield body[i:min(i + 65536, limit)]
        if step[0] == "fail":
            raise RetryableError("blob: ReadError: connection reset by peer")


def store_with(tmp_path):
    return BlobStore(tmp_path), RetryPolicy(delay=0, sleep=lambda s: None)


def test_fresh_download_gets_its_final_name_and_leaves_no_partial(tmp_path):
    store, retry = store_with(tmp_path)
    script = Script()
    assert store.ensure_resumable(DIGEST, len(DATA), script, retry=retry) is True
    assert store.path(DIGEST).read_bytes() == DATA
    assert script.offsets == [0]
    assert list(store.tmp_dir.iterdir()) == []
    assert store.ensure_resumable(DIGEST, len(DATA), script, retry=retry) is False
    assert script.offsets == [0]


def test_a_reset_resumes_at_the_bytes_held(tmp_path):
    store, retry = store_with(tmp_path)
    script = Script(("fail", 200_000), ("status",), ("fail", 100_000))
    store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets == [0, 200_000, 200_000, 300_000]
    assert store.path(DIGEST).read_bytes() == DATA


def test_a_source_ignoring_the_range_starts_over(tmp_path):
    store, retry = store_with(tmp_path)
    script = Script(("fail", 200_000), ("whole",))
    store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets == [0, 200_000]
    assert store.path(DIGEST).read_bytes() == DATA


def test_a_partial_left_by_a_killed_pull_is_rehashed_and_continued(tmp_path):
    store, retry = store_with(tmp_path)
    store.tmp_dir.mkdir(parents=True)
    partial = partial_path(store.tmp_dir, parse(DIGEST))
    partial.write_bytes(DATA[:123_456])
    script = Script()
    store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets == [123_456]
    assert store.path(DIGEST).read_bytes() == DATA and not partial.exists()


def test_a_complete_partial_needs_no_request(tmp_path):
    store, retry = store_with(tmp_path)
    store.tmp_dir.mkdir(parents=True)
    partial_path(store.tmp_dir, parse(DIGEST)).write_bytes(DATA)
    script = Script()
    store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets == []
    assert store.has(DIGEST)


@pytest.mark.parametrize("kept", [b"x" * 1000, os.urandom(len(DATA) + 1), b"x" * len(DATA)])
def test_a_wrong_partial_is_dropped_and_fetched_from_the_start(tmp_path, kept):
    store, retry = store_with(tmp_path)
    store.tmp_dir.mkdir(parents=True)
    partial_path(store.tmp_dir, parse(DIGEST)).write_bytes(kept)
    script = Script()
    store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets[-1] == 0 and len(script.offsets) <= 2
    assert store.path(DIGEST).read_bytes() == DATA
    assert list(store.tmp_dir.iterdir()) == []


def test_wrong_content_from_the_start_fails_once_and_leaves_nothing(tmp_path):
    store, retry = store_with(tmp_path)
    script = Script(("corrupt",), ("corrupt",))
    with pytest.raises(VerificationFailed, match="has digest"):
        store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets == [0]
    assert not store.has(DIGEST) and list(store.tmp_dir.iterdir()) == []


def test_giving_up_keeps_the_bytes_for_the_next_pull(tmp_path):
    store = BlobStore(tmp_path)
    retry = RetryPolicy(attempts=2, delay=0, sleep=lambda s: None)
    failing = Script(("fail", 250_000), ("status",))
    with pytest.raises(RemoteError, match="gave up after 2 attempts"):
        store.ensure_resumable(DIGEST, len(DATA), failing, retry=retry)
    partial = partial_path(store.tmp_dir, parse(DIGEST))
    assert partial.read_bytes() == DATA[:250_000]
    assert not store.has(DIGEST)
    script = Script()
    store.ensure_resumable(DIGEST, len(DATA), script, retry=retry)
    assert script.offsets == [250_000] and store.has(DIGEST)


@pytest.mark.parametrize("error", [NotFound("gone"), KeyboardInterrupt(), ValueError("bug")])
def test_other_failures_remove_the_partial(tmp_path, error):
    store, retry = store_with(tmp_path)

    @contextmanager
    def broken(offset):
        def chunks():
            yield DATA[:100_000]
            raise error
        yield Stream(offset, chunks())

    with pytest.raises(type(error)):
        store.ensure_resumable(DIGEST, len(DATA), broken, retry=retry)
    assert list(store.tmp_dir.iterdir()) == []


def test_more_bytes_than_declared_is_refused(tmp_path):
    store, retry = store_with(tmp_path)
    with pytest.raises(VerificationFailed, match="more than"):
        store.ensure_resumable(DIGEST, len(DATA) - 1, Script(), retry=retry)
    assert list(store.tmp_dir.iterdir()) == []


def test_two_writers_of_one_blob_share_the_download(tmp_path):
    store, retry = store_with(tmp_path)
    script = Script()
    opened = threading.Event()

    @contextmanager
    def slow(offset):
        opened.set()
        time.sleep(0.3)
        with script(offset) as stream:
            yield stream

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        store.ensure_resumable(DIGEST, len(DATA), slow, retry=retry))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [False, False, True]
    assert script.offsets == [0]


def test_stale_partials_are_swept_unless_held(tmp_path):
    store = BlobStore(tmp_path)
    store.tmp_dir.mkdir(parents=True)
    digests = [digest_of(str(i).encode()) for i in range(3)]
    paths = [partial_path(store.tmp_dir, parse(d)) for d in digests]
    for path in paths:
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    for path in paths[:2]:
        os.utime(path, (two_days_ago, two_days_ago))
    with object_lock(store.locks_dir, "blob", digests[1]):
        assert sweep_partials(store.tmp_dir, store.locks_dir) == 1
    assert [p.exists() for p in paths] == [False, True, True]
    # An hour-old partial is resumable, not stale: cleanup_temp leaves it alone.
    hour_ago = time.time() - 7200
    os.utime(paths[2], (hour_ago, hour_ago))
    store.cleanup_temp()
    assert paths[2].exists()


# --- ranges on the wire -------------------------------------------------------------------

@pytest.mark.parametrize("header", ["bytes 100-699999/700000", "bytes 100-699999/*"])
def test_content_range_must_start_at_the_offset(header):
    assert content_range_start(header, 100, "blob") == 100


@pytest.mark.parametrize("header", [None, "bytes 0-699999/700000", "bytes 100-50/700000",
                                    "bytes 100-699999/5", "items 100-2/3"])
def test_bad_content_range_is_a_remote_error(header):
    with pytest.raises(RemoteError):
        content_range_start(header, 100, "blob")


def ranged_registry(answer) -> tuple[RegistryClient, FakeRegistry]:
    fake = FakeRegistry()
    fake.blobs[DIGEST] = DATA
    fake.override = lambda request: answer(request) if "/blobs/" in request.url.path else None
    return RegistryClient(HOST, client=fake.client(), retry=RetryPolicy(delay=0)), fake


def test_open_blob_asks_for_a_range_and_checks_the_answer():
    def partial(request):
        first = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
        return httpx.Response(206, content=DATA[first:], headers={
            "Content-Range": f"bytes {first}-{len(DATA) - 1}/{len(DATA)}"})

    reg, fake = ranged_registry(partial)
    with reg.open_blob("app", DIGEST, offset=5000) as blob:
        assert blob.start == 5000
        assert b"".join(blob.chunks) == DATA[5000:]
    assert fake.requests[-1].headers["Range"] == "bytes=5000-"


def test_open_blob_from_zero_sends_no_range_and_a_200_means_the_whole_blob():
    reg, fake = ranged_registry(lambda request: httpx.Response(200, content=DATA))
    with reg.open_blob("app", DIGEST) as blob:
        assert blob.start == 0
    assert "Range" not in fake.requests[-1].headers
    with reg.open_blob("app", DIGEST, offset=10) as blob:
        assert blob.start == 0 and b"".join(blob.chunks) == DATA


def test_open_blob_refuses_a_range_it_did_not_ask_for():
    reg, _ = ranged_registry(lambda request: httpx.Response(
        206, content=DATA, headers={"Content-Range": f"bytes 0-{len(DATA) - 1}/{len(DATA)}"}))
    with pytest.raises(RemoteError, match="Content-Range"), reg.open_blob("app", DIGEST,
                                                                          offset=10):
        pass


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_open_blob_raises_retryable_errors_for_busy_answers(status):
    reg, _ = ranged_registry(lambda request: httpx.Response(
        status, headers={"Retry-After": "2"}))
    with pytest.raises(RetryableError) as info, reg.open_blob("app", DIGEST):
        pass
    assert info.value.retry_after == 2.0


def test_manifests_are_retried():
    from tests.image_pull.fakes import dump

    manifest = dump({"schemaVersion": 2, "config": {}, "layers": []})
    fake = FakeRegistry()
    fake.manifests["app:v1"] = (manifest, "application/vnd.oci.image.manifest.v1+json")
    failures = iter([httpx.ReadError("reset"), httpx.Response(503), None])

    def flaky(request):
        if "/manifests/" not in request.url.path:
            return None
        answer = next(failures)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake.override = flaky
    reg = RegistryClient(HOST, client=fake.client(), retry=RetryPolicy(delay=0))
    body, _, _ = reg.get_manifest("app", "v1", ["application/vnd.oci.image.manifest.v1+json"])
    assert body == manifest
    assert len([r for r in fake.requests if "/manifests/" in r.url.path]) == 3


# --- progress of a resumed download -------------------------------------------------------

def test_bar_shows_the_rate_and_a_line_per_finished_blob():
    out = io.StringIO()
    prog = Progress("pod-image-pull", "bar", stream=out, interval=0)
    first, second = prog.task("blob sha256:aaa", 1000), prog.task("blob sha256:bbb", 1000)
    first.advance(1000)
    first.finish()
    second.seek(400)  # resumed: those bytes were not transferred now
    assert second.transferred == 0
    second.advance(600)
    second.finish()
    text = out.getvalue()
    assert "/s" in text and "2 tasks" in text
    lines = [ln.split("\r")[-1].rstrip() for ln in text.split("\n") if ln]
    assert lines[0].startswith("pod-image-pull: blob sha256:aaa done 1.0 KB in ")
    assert lines[1].startswith("pod-image-pull: blob sha256:bbb done 1.0 KB in ")


def test_json_progress_carries_the_rate():
    from podkit_common.schemas import SchemaSet

    out = io.StringIO()
    prog = Progress("pod-image-pull", "json", stream=out, interval=0)
    task = prog.task("blob sha256:abc", 10)
    task.advance(10)
    task.finish()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(isinstance(e["progress"]["rate"], int) for e in events)
    for event in events:
        SchemaSet([]).validate(event, "urn:podkit:common:progress")
