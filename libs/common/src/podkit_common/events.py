"""The event log: what happened to containers, images, pods, networks and volumes.

Every stage appends to one log under the root, podman's ``events_logger = "file"``::

    <root>/events/events.log        JSON lines, newest last (podman 4.3's file format)
    <root>/events/events.log.1      the previous generation, after a rotation
    <root>/events/events.log.lock   flock'ed by writers (never rotated)

An event is podman's ``events.Event`` as podman writes it to its log file and prints
it with ``podman events --format json``::

    {"ID": "...", "Image": "...", "Name": "web", "Status": "died",
     "Time": "2024-05-01T10:00:00.123456789Z", "Type": "container",
     "ContainerExitCode": 3, "PodID": "...", "Attributes": {"app": "x"}}

Writing (:func:`record`) is one ``write(2)`` of one whole line on an ``O_APPEND`` file
descriptor, made under an exclusive flock of the lock file: concurrent writers, in any
number of processes, never interleave or lose a line. The log is bounded: a write that
would take it past ``max_size`` (1 MB, podman's ``events_logfile_max_size``;
``PODKIT_EVENTS_MAX_SIZE`` changes it) first renames it to ``events.log.1`` (dropping
the older generation), then writes the event to a fresh file, so the newest events are
kept and the one being written is never lost. ``PODKIT_EVENTS=none`` (podman's
``events_logger = "none"``) turns writing off.

Writing an event never fails the operation it reports: an unwritable log (a full
disk, a read-only root) is skipped silently, as podman only logs such errors.

Reading: :func:`read_events` (the history, oldest first), :func:`follow` (the history,
then new events as they are written, across rotations), :func:`compile_filter`
(podman's ``--filter``, ``--since``, ``--until``) and :func:`parse_time`.

This module is imported by every stage's hot path: it imports nothing but ``os`` at
import time (json only when an event is written or read; datetime only to parse times).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

#: podman's default events_logfile_max_size
DEFAULT_MAX_SIZE = 1_000_000
ENV_LOGGER = "PODKIT_EVENTS"
ENV_MAX_SIZE = "PODKIT_EVENTS_MAX_SIZE"

TYPES = ("container", "image", "pod", "network", "volume", "system")
#: podman's event statuses (libpod/events/config.go)
STATUSES = (
    "attach", "auto-update", "build", "checkpoint", "cleanup", "commit", "connect", "create",
    "died", "disconnect", "exec", "exec_died", "exited", "export", "health_status",
    "history", "import", "init", "kill", "loadfromimage", "mount", "pause", "prune", "pull",
    "pull-error", "push", "refresh", "remove", "rename", "renumber", "restart", "restore",
    "rotate", "save", "start", "stop", "sync", "tag", "unmount", "unpause", "untag", "update",
)
#: podman's filter keys (libpod/events/filters.go), plus network
FILTER_KEYS = ("container", "event", "status", "image", "label", "network", "pod", "type",
               "volume")
#: the key order podman 4.3 writes
FIELD_ORDER = ("ContainerExitCode", "ID", "Image", "Name", "Network", "Status", "Time",
               "Type", "Error", "PodID", "Attributes")


def log_path(root: Any) -> str:
    """The log file under ``root`` (a path, or anything with a ``.root``: Roots)."""
    # A Path has a .root too ("/"): only a Roots (which is no os.PathLike) is unwrapped.
    base = root if isinstance(root, (str, bytes, os.PathLike)) else root.root
    return os.path.join(os.fspath(base), "events", "events.log")


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``PODKIT_EVENTS=none`` (podman's events_logger = "none")."""
    env = os.environ if env is None else env
    return env.get(ENV_LOGGER, "file").strip().lower() not in ("none", "off", "0")


def max_size(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        return max(int(env.get(ENV_MAX_SIZE) or DEFAULT_MAX_SIZE), 1)
    except ValueError:
        return DEFAULT_MAX_SIZE


def format_time(ns: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    import time

    sec, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def make_event(type: str, status: str, *, id: str | None = None, name: str | None = None,
               image: str | None = None, pod_id: str | None = None,
               network: str | None = None, exit_code: int | None = None,
               attributes: Mapping[str, str] | None = None, error: str | None = None,
               time_ns: int | None = None) -> dict[str, Any]:
    """One event as podman writes it (empty fields left out, like Go's omitempty).

    ``exit_code`` is kept for ``died`` and ``exec_died`` even when 0 (podman 5 does; 4.3
    dropped a 0)."""
    import time

    event: dict[str, Any] = {}
    if exit_code is not None:
        event["ContainerExitCode"] = int(exit_code)
    if id:
        event["ID"] = id
    if image:
        event["Image"] = image
    if name:
        event["Name"] = name
    if network:
        event["Network"] = network
    event["Status"] = status
    event["Time"] = format_time(time.time_ns() if time_ns is None else time_ns)
    event["Type"] = type
    if error:
        event["Error"] = error
    if pod_id:
        event["PodID"] = pod_id
    event["Attributes"] = {str(k): str(v) for k, v in attributes.items()} if attributes \
        else None
    return event


def record(root: Any, type: str, status: str, **fields: Any) -> dict[str, Any] | None:
    """Append one event (:func:`make_event`'s arguments) to the log under ``root``;
    returns it, or None when events are off or the log could not be written."""
    if not enabled():
        return None
    event = make_event(type, status, **fields)
    try:
        append(log_path(root), event)
    except OSError:
        return None  # never fail the operation the event reports
    return event


def container_event(root: Any, status: str, cid: str, *, name: str | None = None,
                    image: str | None = None, pod: Mapping[str, Any] | str | None = None,
                    labels: Mapping[str, str] | None = None, exit_code: int | None = None
                    ) -> dict[str, Any] | None:
    """A container event; ``pod`` is the pod's id or a ``{"id": ...}`` section."""
    pod_id = pod.get("id") if isinstance(pod, Mapping) else pod
    return record(root, "container", status, id=cid, name=name, image=image, pod_id=pod_id,
                  attributes=labels, exit_code=exit_code)


def pod_event(root: Any, status: str, pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """A pod event; ``pod`` is its record or report (``id``, ``name``)."""
    return record(root, "pod", status, id=pod.get("id"), name=pod.get("name"))


def network_event(root: Any, status: str, network: str, cid: str,
                  name: str | None = None) -> dict[str, Any] | None:
    """podman's network connect/disconnect: the container's id and name, the network."""
    return record(root, "network", status, id=cid, name=name, network=network)


def append(path: str, event: Mapping[str, Any], limit: int | None = None) -> None:
    """Write ``event`` as one line; rotate first when it would pass ``limit`` bytes."""
    import fcntl

    from podkit_common.jsonio import dumps

    line = dumps(event) + b"\n"
    limit = max_size() if limit is None else limit
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    try:
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        fd = os.open(path, flags, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and size + len(line) > limit:
                # Readers following the log finish the old file (now .1), then reopen.
                os.replace(path, path + ".1")
                os.close(fd)
                fd = -1
                fd = os.open(path, flags, 0o600)
            view = memoryview(line)
            while view:  # a regular file takes it whole; a short write is finished
                view = view[os.write(fd, view):]
        finally:
            if fd >= 0:
                os.close(fd)
    finally:
        os.close(lock_fd)  # releases the flock


# -- reading ----------------------------------------------------------------------------

def _parse_line(line: bytes) -> dict[str, Any] | None:
    from podkit_common.jsonio import InvalidDocument, loads

    try:
        event = loads(line)
    except InvalidDocument:
        return None
    return event if isinstance(event, dict) and "Status" in event else None


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for raw in data.split(b"\n"):
        if raw.strip():
            event = _parse_line(raw)
            if event is not None:
                yield event


def read_events(root: Any) -> list[dict[str, Any]]:
    """Every event kept (the rotated generation first), oldest first."""
    path = log_path(root)
    out: list[dict[str, Any]] = []
    for p in (path + ".1", path):
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            continue
        # A line still being written has no newline yet: leave it for the next read.
        out.extend(_lines(data[:data.rfind(b"\n") + 1]))
    return out


def follow(root: Any, *, stop: Callable[[], bool] = lambda: False, poll: float = 0.1,
           history: bool = True) -> Iterator[dict[str, Any]]:
    """The events kept (with ``history``), then each new one as it is written, until
    ``stop()`` is true (checked every ``poll`` seconds while nothing new comes)."""
    import time

    path = log_path(root)
    fh = None
    pending = b""
    if not history:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held across the loop, closed below
            fh.seek(0, os.SEEK_END)
        except FileNotFoundError:
            fh = None
    else:
        try:
            with open(path + ".1", "rb") as old:
                data = old.read()
            yield from _lines(data[:data.rfind(b"\n") + 1])
        except FileNotFoundError:
            pass
    try:
        while True:
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115 - closed in finally
                except FileNotFoundError:
                    if stop():
                        return
                    time.sleep(poll)
                    continue
            chunk = fh.read()
            if chunk:
                pending += chunk
                end = pending.rfind(b"\n") + 1
                if end:
                    yield from _lines(pending[:end])
                    pending = pending[end:]
                continue
            try:
                rotated = os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                rest = fh.read()  # what was written before the rename
                pending += rest
                end = pending.rfind(b"\n") + 1
                yield from _lines(pending[:end])
                fh.close()
                fh, pending = None, b""
                continue
            if stop():
                return
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()


# -- filters and times ------------------------------------------------------------------

def parse_event_time(text: str) -> int:
    """An event's ``Time`` (RFC3339 with up to 9 fraction digits) as Unix nanoseconds."""
    from datetime import UTC, datetime, timedelta, timezone

    body, frac_ns = text, 0
    tz: Any = UTC
    if body.endswith("Z"):
        body = body[:-1]
    elif len(body) > 6 and body[-6] in "+-" and body[-3] == ":":
        sign = 1 if body[-6] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(body[-5:-3]), minutes=int(body[-2:])))
        body = body[:-6]
    if "." in body:
        body, frac = body.split(".", 1)
        frac_ns = int(frac[:9].ljust(9, "0"))
    dt = datetime.strptime(body, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                   "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration ("10m", "1h30m", "1.5s", "-2h") in nanoseconds."""
    import re

    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"invalid duration {text!r}")
    return sign * int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def parse_time(text: str, *, since: bool, now_ns: int | None = None) -> int:
    """podman's ParseInputTime: RFC3339 (with or without fraction or zone: no zone means
    UTC, as Go's time.Parse), a date, Unix seconds (``1700000000.5``), or a duration
    counted back from now for ``--since`` and forward for ``--until``. Unix ns."""
    import time
    from datetime import UTC, datetime

    from podkit_common.errors import UsageError

    value = text.strip()
    try:
        return parse_event_time(value)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            dt = datetime.strptime(value, fmt).replace(tzinfo=UTC)
            return int(dt.timestamp()) * 1_000_000_000
        except ValueError:
            continue
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        whole = int(seconds)
        return whole * 1_000_000_000 + round((seconds - whole) * 1e9)
    try:
        delta = parse_duration(value)
    except ValueError:
        raise UsageError(f"unable to convert {'since' if since else 'until'} time of "
                         f"{text}: unable to interpret time value",
                         hint="RFC3339 (2024-05-01T10:00:00Z), Unix seconds, or a "
                              "duration like 10m") from None
    now = time.time_ns() if now_ns is None else now_ns
    return now - delta if since else now + delta


def _match_container(value: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda e: e.get("Type") == "container" and (
        e.get("Name") == value or str(e.get("ID", "")).startswith(value))


def _match_named(kind: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda e: e.get("Type") == kind and (
        e.get("Name") == value or str(e.get("ID", "")).startswith(value))


def _match_label(value: str) -> Callable[[Mapping[str, Any]], bool]:
    key, has_value, want = value.partition("=")

    def match(e: Mapping[str, Any]) -> bool:
        attrs = e.get("Attributes") or {}
        if key not in attrs:
            return False
        return not has_value or attrs[key] == want
    return match


def _one_filter(key: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    from podkit_common.errors import UsageError

    k = key.lower()
    if k == "container":
        return _match_container(value)
    if k in ("event", "status"):
        status = "died" if value == "die" else value  # Docker's name
        return lambda e: e.get("Status") == status
    if k in ("image", "pod"):
        return _match_named(k, value)
    if k == "volume":
        return lambda e: e.get("Type") == "volume" and str(e.get("Name", "")).startswith(value)
    if k == "network":
        return lambda e: e.get("Type") == "network" and (
            e.get("Network") == value or str(e.get("ID", "")).startswith(value)
            or e.get("Name") == value)
    if k == "type":
        return lambda e: e.get("Type") == value
    if k == "label":
        return _match_label(value)
    raise UsageError(f"{key} is an invalid filter",
                     hint="filters: " + ", ".join(FILTER_KEYS))


def compile_filter(filters: list[str] | tuple[str, ...] = (), since: str | None = None,
                   until: str | None = None, *, now_ns: int | None = None
                   ) -> Callable[[Mapping[str, Any]], bool]:
    """podman's event filters: ``key=value`` strings, the same key ORed, different keys
    ANDed; ``since``/``until`` (:func:`parse_time`) bound the event's time (exclusive)."""
    from podkit_common.errors import UsageError

    groups: dict[str, list[Callable[[Mapping[str, Any]], bool]]] = {}
    for text in filters:
        key, eq, value = text.partition("=")
        if not eq or not key:
            raise UsageError(f"{text} is an invalid filter", hint="use key=value")
        groups.setdefault(key.lower() if key.lower() != "status" else "event",
                          []).append(_one_filter(key, value))
    lo = parse_time(since, since=True, now_ns=now_ns) if since else None
    hi = parse_time(until, since=False, now_ns=now_ns) if until else None
    checks = list(groups.values())

    def match(event: Mapping[str, Any]) -> bool:
        if lo is not None or hi is not None:
            try:
                t = parse_event_time(str(event.get("Time", "")))
            except ValueError:
                return False
            if (lo is not None and t <= lo) or (hi is not None and t >= hi):
                return False
        return all(any(f(event) for f in group) for group in checks)
    return match


__all__ = [
    "DEFAULT_MAX_SIZE",
    "ENV_LOGGER",
    "ENV_MAX_SIZE",
    "FIELD_ORDER",
    "FILTER_KEYS",
    "STATUSES",
    "TYPES",
    "append",
    "compile_filter",
    "container_event",
    "enabled",
    "follow",
    "format_time",
    "log_path",
    "make_event",
    "max_size",
    "network_event",
    "parse_duration",
    "parse_event_time",
    "parse_time",
    "pod_event",
    "read_events",
    "record",
]
