"""Reading conmon's k8s-file log like podman logs: F/P lines, timestamps, --tail,
--since/--until (pure parsing, no containers)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from podkit_common import errors
from podkit_runtime._logs import (
    follow_log,
    format_time,
    parse_log,
    parse_time_filter,
    parse_timestamp,
    select,
)

LOG = (b"2024-03-01T10:00:00.000000001+00:00 stdout F first line\n"
       b"2024-03-01T10:00:01.500000000+00:00 stderr F an error\n"
       b"2024-03-01T10:00:02.000000000+00:00 stdout P half \n"
       b"2024-03-01T10:00:02.100000000+00:00 stdout P and \n"
       b"2024-03-01T10:00:02.200000000+00:00 stdout F the rest\n"
       b"2024-03-01T11:00:00.000000000+01:00 stdout F  leading  spaces kept \n"
       b"2024-03-01T10:00:04.000000000+00:00 stdout F \xff\xfe binary\n"
       b"2024-03-01T10:00:05.000000000+00:00 stdout F \n"
       b"2024-03-01T10:00:06.000000000+00:00 stdout P no newline at the end\n")

T0 = 1709287200  # 2024-03-01T10:00:00Z


def test_timestamps_keep_nanoseconds_and_offsets():
    assert parse_timestamp(b"2024-03-01T10:00:00.000000001+00:00") == (T0 * 10**9 + 1, 0)
    assert parse_timestamp(b"2024-03-01T11:00:00.5+01:00") == (T0 * 10**9 + 500_000_000,
                                                               3600)
    assert parse_timestamp(b"2024-03-01T04:00:00.000000000-06:00")[0] == T0 * 10**9
    with pytest.raises(errors.InvalidDocument):
        parse_timestamp(b"yesterday")


def test_format_time_is_gos_rfc3339nano_with_fixed_digits():
    assert format_time(T0 * 10**9 + 1) == "2024-03-01T10:00:00.000000001Z"
    assert format_time(T0 * 10**9, 3600) == "2024-03-01T11:00:00.000000000+01:00"
    assert format_time(T0 * 10**9, -19800) == "2024-03-01T04:30:00.000000000-05:30"


def test_full_and_partial_lines_render_like_podman_logs():
    entries = parse_log(LOG)
    out = b"".join(e.render() for e in entries if e.stream == "stdout")
    assert out == (b"first line\nhalf and the rest\n leading  spaces kept \n"
                   b"\xff\xfe binary\n\nno newline at the end")
    assert [e.message for e in entries if e.stream == "stderr"] == [b"an error"]
    # A joined partial line carries the time of the full line that ends it.
    joined = next(e for e in entries if e.message.startswith(b"half"))
    assert joined.time_ns == T0 * 10**9 + 2_200_000_000


def test_timestamps_prefix_each_line():
    entries = parse_log(LOG)
    assert entries[0].render(timestamps=True) == (
        b"2024-03-01T10:00:00.000000001Z first line\n")
    assert entries[3].render(timestamps=True).startswith(
        b"2024-03-01T11:00:00.000000000+01:00  leading")


def test_tail_counts_lines_after_joining_partials():
    entries = parse_log(LOG)
    assert [e.message for e in select(entries, tail=2)] == [b"", b"no newline at the end"]
    assert select(entries, tail=0) == []
    assert len(select(entries, tail=100)) == len(entries) == 7


def test_since_and_until_bound_the_lines_inclusively():
    entries = parse_log(LOG)
    since = parse_time_filter("2024-03-01T10:00:01.5Z")
    until = parse_time_filter("2024-03-01T10:00:04Z")
    # The "11:00:00+01:00" line is 10:00:00Z: offsets are honoured, not compared as text.
    assert [e.message for e in select(entries, since_ns=since, until_ns=until)] == [
        b"an error", b"half and the rest", b"\xff\xfe binary"]
    assert [e.message for e in select(entries, until_ns=parse_time_filter(str(T0)))] == [
        b" leading  spaces kept "]


def test_time_filters_accept_rfc3339_unix_seconds_and_durations():
    now = T0 + 3600.0
    assert parse_time_filter("2024-03-01T10:00:00Z") == T0 * 10**9
    assert parse_time_filter("2024-03-01T11:00:00+01:00") == T0 * 10**9
    assert parse_time_filter(str(T0)) == T0 * 10**9
    assert parse_time_filter("1h", now=now) == T0 * 10**9
    assert parse_time_filter("30m30s", now=now) == (T0 + 1770) * 10**9
    with pytest.raises(errors.UsageError):
        parse_time_filter("last tuesday")


def test_a_torn_last_line_is_skipped_not_fatal():
    entries = parse_log(b"2024-03-01T10:00:00.000000000+00:00 stdout F ok\n2024-03-01T10:0")
    assert [e.message for e in entries] == [b"ok"]


def test_follow_yields_lines_as_they_are_written_until_done(tmp_path: Path):
    log = tmp_path / "ctr.log"
    log.write_bytes(b"2024-03-01T10:00:00.000000000+00:00 stdout F one\n")
    done = threading.Event()

    def writer() -> None:
        with open(log, "ab") as fh:
            for chunk in (b"2024-03-01T10:00:01.000000000+00:00 stdout P tw",
                          b"o-a \n2024-03-01T10:00:01.100000000+00:00 stdout F two-b\n",
                          b"2024-03-01T10:00:02.000000000+00:00 stderr F three\n"):
                fh.write(chunk)
                fh.flush()
                time.sleep(0.05)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    got = [(e.stream, e.message) for e in follow_log(log, done.is_set, poll=0.01)]
    thread.join()
    assert got == [("stdout", b"one"), ("stdout", b"two-a two-b"), ("stderr", b"three")]


def test_follow_with_tail_starts_from_the_last_lines(tmp_path: Path):
    log = tmp_path / "ctr.log"
    log.write_bytes(b"".join(f"2024-03-01T10:00:0{i}.000000000+00:00 stdout F l{i}\n".encode()
                             for i in range(5)))
    got = [e.message for e in follow_log(log, lambda: True, tail=2, poll=0.01)]
    assert got == [b"l3", b"l4"]
