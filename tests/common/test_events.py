"""The event log (podkit_common.events): concurrent writers, rotation, filters, times,
following, and the switch that turns it off. Real processes and files; no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from podkit_common import errors, events
from podkit_common.schemas import SchemaSet

SCHEMAS = SchemaSet([])
CID = "c0ffee" + "0" * 58

WRITER = """
import os, sys
from podkit_common import events
root, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    events.container_event(root, "start", "%064d" % i, name=f"{who}-{i}",
                           image="busybox", labels={"who": who, "seq": str(i)})
"""


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def _spawn_writers(root: Path, count: int, per: int, env: dict[str, str]) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), f"w{k}", str(per)],
                              env=env) for k in range(count)]
    for p in procs:
        assert p.wait(timeout=120) == 0


def test_event_has_podman_fields_and_validates():
    event = events.make_event("container", "died", id=CID, name="web", image="busybox",
                              pod_id="ab" * 32, exit_code=0, attributes={"app": "x"},
                              time_ns=1_700_000_000_123_456_789)
    assert list(event) == ["ContainerExitCode", "ID", "Image", "Name", "Status", "Time",
                           "Type", "PodID", "Attributes"]
    assert event["ContainerExitCode"] == 0  # kept for died even when 0
    assert event["Time"] == "2023-11-14T22:13:20.123456789Z"
    SCHEMAS.validate(event, "urn:podkit:common:event")
    image = events.make_event("image", "pull", name="busybox:latest", time_ns=0)
    assert image["Attributes"] is None and "ID" not in image
    SCHEMAS.validate(image, "urn:podkit:common:event")


def test_time_round_trips_with_nanoseconds():
    for ns in (0, 1, 1_700_000_000_000_000_000, 1_700_000_000_100_000_000,
               1_799_999_999_999_999_999):
        assert events.parse_event_time(events.format_time(ns)) == ns
    # Go drops trailing zeros of the fraction
    assert events.format_time(1_700_000_000_100_000_000).endswith(":20.1Z")
    assert events.parse_event_time("2023-11-14T23:13:20.5+01:00") == \
        1_700_000_000_500_000_000


def test_concurrent_writers_lose_and_tear_nothing(tmp_path):
    """8 processes append 250 events each at once: every line is one whole event, and
    every event of every writer is there once, in each writer's order."""
    env = {**os.environ, events.ENV_MAX_SIZE: str(50_000_000)}
    _spawn_writers(tmp_path, 8, 250, env)
    lines = _lines(tmp_path / "events" / "events.log")
    assert len(lines) == 8 * 250
    seen: dict[str, list[int]] = {}
    for raw in lines:
        event = json.loads(raw)  # a torn or interleaved line would not parse
        SCHEMAS.validate(event, "urn:podkit:common:event")
        seen.setdefault(event["Attributes"]["who"], []).append(int(event["Attributes"]["seq"]))
    assert seen == {f"w{k}": list(range(250)) for k in range(8)}


def test_rotation_keeps_the_newest_events(tmp_path):
    limit = 4_000
    for i in range(200):
        events.append(events.log_path(tmp_path), events.make_event(
            "container", "start", id=CID, name=f"n{i}"), limit)
    log = tmp_path / "events" / "events.log"
    assert log.stat().st_size <= limit
    assert (tmp_path / "events" / "events.log.1").stat().st_size <= limit
    kept = [e["Name"] for e in events.read_events(tmp_path)]
    assert kept[-1] == "n199"
    first = int(kept[0][1:])
    assert first > 0, "the log is bounded: old events went"
    assert kept == [f"n{i}" for i in range(first, 200)], "the newest, in order, no gap"


def test_rotation_under_concurrency_keeps_every_line_whole(tmp_path):
    env = {**os.environ, events.ENV_MAX_SIZE: "20000"}
    _spawn_writers(tmp_path, 4, 300, env)
    d = tmp_path / "events"
    lines = _lines(d / "events.log.1") + _lines(d / "events.log")
    assert (d / "events.log").stat().st_size <= 20_000
    kept: dict[str, list[int]] = {}
    for raw in lines:
        event = json.loads(raw)  # whole lines only
        kept.setdefault(event["Attributes"]["who"], []).append(int(event["Attributes"]["seq"]))
    assert kept
    # What is kept is a window of the newest events: for each writer still in it, its
    # events from some point on up to its last one, none missing in between.
    for who, seqs in kept.items():
        assert seqs == list(range(seqs[0], 300)), who


def test_write_is_cheap_and_measured(tmp_path):
    n = 500
    t0 = time.perf_counter()
    for i in range(n):
        events.container_event(tmp_path, "start", CID, name=f"n{i}", image="busybox",
                               labels={"a": "b"})
    per_event_us = (time.perf_counter() - t0) / n * 1e6
    print(f"event write: {per_event_us:.0f} us")  # reported, not asserted (shared cores)
    assert len(events.read_events(tmp_path)) == n


def test_events_none_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(events.ENV_LOGGER, "none")
    assert events.record(tmp_path, "image", "pull", name="x") is None
    assert not (tmp_path / "events").exists()


def test_unwritable_log_never_fails_the_operation(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "events").write_text("a file where the directory should be")
    assert events.record(root, "image", "pull", name="x") is None


def _ev(kind, status, **kw):
    return events.make_event(kind, status, time_ns=kw.pop("t", 1_700_000_000_000_000_000),
                             **kw)


SAMPLE = [
    _ev("container", "create", id=CID, name="web", attributes={"app": "x", "tier": "1"}),
    _ev("container", "died", id="ab" * 32, name="db", exit_code=3, attributes={"app": "y"}),
    _ev("image", "pull", id="cd" * 32, name="busybox:latest"),
    _ev("pod", "create", id="ef" * 32, name="p1"),
    _ev("network", "connect", id=CID, name="web", network="net1"),
    _ev("volume", "create", name="data1"),
]


def _names(filters):
    match = events.compile_filter(filters)
    return [f"{e['Type']}:{e.get('Name')}" for e in SAMPLE if match(e)]


@pytest.mark.parametrize(("filters", "expected"), [
    (["container=web"], ["container:web"]),
    (["container=c0ffee"], ["container:web"]),  # id prefix
    (["container=web", "container=db"], ["container:web", "container:db"]),  # ORed
    (["container=web", "event=died"], []),  # ANDed
    (["event=die"], ["container:db"]),  # Docker's name
    (["status=died", "status=create"],
     ["container:web", "container:db", "pod:p1", "volume:data1"]),
    (["label=app=x"], ["container:web"]),
    (["label=app"], ["container:web", "container:db"]),
    (["label=app=x", "label=app=y"], ["container:web", "container:db"]),
    (["image=busybox:latest"], ["image:busybox:latest"]),
    (["image=cdcd"], ["image:busybox:latest"]),
    (["pod=p1"], ["pod:p1"]),
    (["network=net1"], ["network:web"]),
    (["volume=data"], ["volume:data1"]),
    (["type=image"], ["image:busybox:latest"]),
    (["type=pod", "type=volume"], ["pod:p1", "volume:data1"]),
])
def test_filters_like_podman(filters, expected):
    assert _names(filters) == expected


@pytest.mark.parametrize("bad", ["nokey", "bogus=1", "=x"])
def test_bad_filter_is_a_usage_error(bad):
    with pytest.raises(errors.UsageError, match="invalid filter"):
        events.compile_filter([bad])


def test_since_and_until_in_podmans_forms():
    now = 1_700_000_000_000_000_000
    old = _ev("container", "start", id=CID, t=now - 3_600_000_000_000)  # an hour ago
    new = _ev("container", "start", id=CID, t=now - 60_000_000_000)  # a minute ago

    def kept(**kw):
        match = events.compile_filter([], now_ns=now, **kw)
        return ["new" if e is new else "old" for e in (old, new) if match(e)]

    assert kept(since="10m") == ["new"]
    assert kept(until="10m") == ["old", "new"]  # a duration counts forward for until
    assert kept(until="-10m") == ["old"]
    assert kept(since="2023-11-14T21:30:00Z") == ["new"]
    assert kept(since=str((now - 1_800_000_000_000) / 1e9)) == ["new"]  # Unix seconds
    assert kept(since="2023-11-14T20:00:00", until="2023-11-14T21:30:00") == ["old"]
    assert kept(since="2023-11-14") == ["old", "new"]
    assert kept(since="1h30m") == ["old", "new"]
    with pytest.raises(errors.UsageError, match="unable to interpret"):
        events.compile_filter([], since="yesterday")


def test_parse_duration_is_gos():
    assert events.parse_duration("1h30m") == 5_400_000_000_000
    assert events.parse_duration("1.5s") == 1_500_000_000
    assert events.parse_duration("250ms") == 250_000_000
    for bad in ("", "10", "1x", "m"):
        with pytest.raises(ValueError):
            events.parse_duration(bad)


def test_follow_sees_history_then_new_events_across_rotations(tmp_path):
    path = events.log_path(tmp_path)
    for i in range(3):
        events.append(path, _ev("container", "start", id=CID, name=f"h{i}"), 10**6)
    got: list[str] = []
    done = threading.Event()

    def writer() -> None:
        for i in range(60):  # ~120 bytes each: many rotations at 1500 bytes
            events.append(path, _ev("container", "start", id=CID, name=f"n{i}"), 1_500)
            time.sleep(0.005)

    t = threading.Thread(target=writer)
    for event in events.follow(tmp_path, stop=done.is_set, poll=0.01):
        got.append(event["Name"])
        if len(got) == 3:
            t.start()
        if event["Name"] == "n59":
            done.set()
            break
    t.join()
    assert got[:3] == ["h0", "h1", "h2"]
    assert got[3:] == [f"n{i}" for i in range(60)], "none lost or repeated across rotations"


def test_follow_stops_when_asked(tmp_path):
    stop_at = time.monotonic() + 0.3
    assert list(events.follow(tmp_path, stop=lambda: time.monotonic() > stop_at,
                              poll=0.02)) == []


def test_importing_events_stays_cheap():
    """A stage's hot path imports events: no orjson, no datetime, no json on import."""
    code = ("import sys; import podkit_common.events; "
            "print(' '.join(m for m in ('orjson', 'datetime', 'json', 'fcntl') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""
