"""Reading conmon's k8s-file log the way ``podman logs`` does.

Each line conmon writes is ``<time> <stream> <F|P> <bytes>\\n``: time in local time with
nine fractional digits and a numeric offset (``2020-09-23T13:34:58.644824420-06:00``),
stream ``stdout``/``stderr``, ``F`` for a full line (the trailing newline is the
line's own) and ``P`` for a partial chunk (conmon still ends it with a newline, which is
not the container's). Like podman, partial chunks join the full line that follows them;
a partial chunk at the very end is printed without a newline.

Everything here is pure except :func:`read_log` and :func:`follow_log`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

from podkit_common import errors, records

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

_TS = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@records.record(frozen=True)
class LogEntry:
    """One line of output (partial chunks already joined)."""

    time_ns: int
    #: the offset of the original timestamp, in seconds east of UTC
    utc_offset: int
    stream: str
    message: bytes
    partial: bool

    def render(self, timestamps: bool = False) -> bytes:
        """What podman logs prints for this entry."""
        out = self.message if self.partial else self.message + b"\n"
        if timestamps:
            out = format_time(self.time_ns, self.utc_offset).encode() + b" " + out
        return out


def parse_timestamp(raw: bytes) -> tuple[int, int]:
    """(nanoseconds since the epoch, utc offset in seconds) of a k8s-file timestamp."""
    m = _TS.match(raw)
    if not m:
        raise errors.InvalidDocument(f"not a k8s-file timestamp: {raw[:40]!r}")
    zone = m.group(3).decode()
    base = datetime.fromisoformat(m.group(1).decode() + ("+00:00" if zone == "Z" else zone))
    frac = (m.group(2) or b"0").decode().ljust(9, "0")
    offset = int(base.utcoffset().total_seconds())  # type: ignore[union-attr]
    return int(base.timestamp()) * 1_000_000_000 + int(frac), offset


def format_time(time_ns: int, utc_offset: int = 0) -> str:
    """Go's "2006-01-02T15:04:05.000000000Z07:00" (podman's LogTimeFormat)."""
    secs, ns = divmod(time_ns, 1_000_000_000)
    local = time.gmtime(secs + utc_offset)
    if utc_offset == 0:
        zone = "Z"
    else:
        sign = "+" if utc_offset > 0 else "-"
        h, m = divmod(abs(utc_offset) // 60, 60)
        zone = f"{sign}{h:02d}:{m:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{ns:09d}{zone}"


def parse_line(line: bytes) -> tuple[int, int, str, bool, bytes]:
    """(time_ns, offset, stream, partial, message) of one log line without its newline."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"F", b"P"):
        raise errors.InvalidDocument(f"not a k8s-file log line: {line[:80]!r}")
    ts, offset = parse_timestamp(parts[0])
    return ts, offset, parts[1].decode("ascii", "replace"), parts[2] == b"P", (
        parts[3] if len(parts) == 4 else b"")


def parse_log(data: bytes) -> list[LogEntry]:
    """Entries of a whole log file; partial chunks joined to the next full line of the
    same stream. A malformed line (a log truncated mid-write) is skipped."""
    entries: list[LogEntry] = []
    pending: dict[str, bytes] = {}
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        try:
            ts, offset, stream, partial, msg = parse_line(line)
        except errors.InvalidDocument:
            continue
        if partial:
            pending[stream] = pending.get(stream, b"") + msg
            continue
        entries.append(LogEntry(ts, offset, stream, pending.pop(stream, b"") + msg, False))
    if pending:
        # A partial chunk at the end: printed as it is, no newline added (conmon's own
        # newline after a P chunk is not the container's).
        last_ts = entries[-1].time_ns if entries else 0
        for stream, msg in pending.items():
            entries.append(LogEntry(last_ts, 0, stream, msg, True))
    return entries


def parse_time_filter(value: str, now: float | None = None) -> int:
    """--since/--until: RFC 3339 time, unix seconds, or a duration before now (10m, 1h30m)."""
    now = time.time() if now is None else now
    text = value.strip()
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    if _DURATION.fullmatch(text) or (text and "".join(
            m.group(0) for m in _DURATION.finditer(text)) == text):
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
        return int((now - seconds) * 1e9)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.UsageError(f"cannot parse time {value!r}",
                                hint="use RFC 3339 (2024-01-02T15:04:05Z), unix seconds "
                                     "or a duration like 10m") from None
    if ts.tzinfo is None:
        ts = ts.astimezone()
    frac_ns = 0
    m = re.search(r"\.(\d+)", text)
    if m:
        frac_ns = int(m.group(1)[:9].ljust(9, "0"))
    return int(ts.replace(microsecond=0).astimezone(UTC).timestamp()) * 10**9 + frac_ns


def select(entries: list[LogEntry], *, tail: int | None = None, since_ns: int | None = None,
           until_ns: int | None = None) -> list[LogEntry]:
    """podman's filters: --since (not before), --until (not after), then --tail N last."""
    out = [e for e in entries
           if (since_ns is None or e.time_ns >= since_ns)
           and (until_ns is None or e.time_ns <= until_ns)]
    if tail is not None and tail >= 0:
        out = out[len(out) - tail:] if tail else []
    return out


def read_log(path: Path) -> list[LogEntry]:
    try:
        return parse_log(path.read_bytes())
    except FileNotFoundError:
        return []


def follow_log(path: Path, done: Callable[[], bool], *, tail: int | None = None,
               since_ns: int | None = None, until_ns: int | None = None,
               poll: float = 0.1) -> Iterator[LogEntry]:
    """Entries as they are written, until ``done()`` says the container has exited (then
    whatever was written last)."""
    offset = 0
    buf = b""
    first = True
    while True:
        finished = done()
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        buf += chunk
        complete, _, buf = buf.rpartition(b"\n") if b"\n" in buf else (b"", b"", buf)
        if complete or first:
            # Keep trailing partial chunks until the full line arrives.
            data = complete + b"\n" if complete else b""
            entries = parse_log(data)
            held = b""
            while entries and entries[-1].partial:
                entries.pop()
            if data and data.rstrip(b"\n").rsplit(b"\n", 1)[-1].split(b" ", 3)[2:3] == [b"P"]:
                held = _trailing_partials(data)
            buf = held + buf
            yield from select(entries, tail=tail if first else None, since_ns=since_ns,
                              until_ns=until_ns)
            first = False
        if finished:
            if buf:
                yield from select(parse_log(buf), since_ns=since_ns, until_ns=until_ns)
            return
        time.sleep(poll)


def _trailing_partials(data: bytes) -> bytes:
    """The P lines at the end of ``data`` (with their newlines), to be parsed again later."""
    lines = data.rstrip(b"\n").split(b"\n")
    keep: list[bytes] = []
    while lines and lines[-1].split(b" ", 3)[2:3] == [b"P"]:
        keep.insert(0, lines.pop())
    return b"".join(line + b"\n" for line in keep)


def container_log(roots: Any, ref: str, *, follow: bool = False, tail: int | None = None,
                  since_ns: int | None = None, until_ns: int | None = None
                  ) -> Iterator[LogEntry]:
    """The log entries of a container (following it until it exits with ``follow``)."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync

    cid = _state.resolve(roots, ref)
    record, _ = sync(roots, cid)
    if record.get("log_driver") in ("none", "passthrough"):
        from podkit_runtime._log_options import no_logs_error

        raise no_logs_error(record["log_driver"])
    path = Path(record.get("log_path") or _state.ContainerPaths(roots, cid).log)
    if not follow:
        yield from select(read_log(path), tail=tail, since_ns=since_ns, until_ns=until_ns)
        return

    def done() -> bool:
        try:
            return sync(roots, cid)[1].status == "exited"
        except errors.NotFound:
            return True

    yield from follow_log(path, done, tail=tail, since_ns=since_ns, until_ns=until_ns)
