"""`pod events`: the event log (podkit_common.events) selected and printed like podman's.

    select_events(roots, EventsOptions, stop)   the events to print, oldest first; with
                                                 ``stream`` it goes on with new ones
    format_event(event, fmt, no_trunc)           one event as podman prints it: the
                                                 default line, ``json``, or a Go template

The default line is podman's ``ToHumanReadable``::

    2024-05-01 10:00:00.123456789 +0000 UTC container died 3f2a... (image=busybox,
        name=web, app=x, containerExitCode=3)

(one line; ``containerExitCode`` is podkit's addition for ``died``/``exec_died``, so
the history says how each container ended). ``--format json`` prints each event as
the JSON object podman 4.3 prints (and podkit stores): ``urn:podkit:common:event``.
"""

from __future__ import annotations

from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any


class EventsOptions:
    """What `pod events` takes besides the roots (a plain class: no dataclass cost)."""

    def __init__(self, filters: list[str] | tuple[str, ...] = (), since: str | None = None,
                 until: str | None = None, stream: bool = True, fmt: str | None = None,
                 no_trunc: bool = True) -> None:
        self.filters, self.since, self.until = list(filters), since, until
        self.stream, self.fmt, self.no_trunc = stream, fmt, no_trunc


def select_events(roots: Roots, opts: EventsOptions, stop: Callable[[], bool] = lambda: False,
                  *, poll: float = 0.1) -> Iterator[dict[str, Any]]:
    """The matching events, oldest first. With ``opts.stream`` the log is followed until
    ``stop()`` is true or the ``--until`` time has passed (podman stops there too)."""
    import time

    from podkit_common import events

    match = events.compile_filter(opts.filters, opts.since, opts.until)
    if not opts.stream:
        for event in events.read_events(roots):
            if match(event):
                yield event
        return
    until_ns = events.parse_time(opts.until, since=False) if opts.until else None

    def done() -> bool:
        return stop() or (until_ns is not None and time.time_ns() >= until_ns)

    for event in events.follow(roots, stop=done, poll=poll):
        if match(event):
            yield event


# -- formatting -------------------------------------------------------------------------

def go_time(text: str) -> str:
    """An event's RFC3339 time as Go's ``time.Time.String()`` in the local zone:
    ``2024-05-01 10:00:00.123456789 +0000 UTC`` (fraction without trailing zeros)."""
    from datetime import datetime

    from podkit_common.events import parse_event_time

    ns = parse_event_time(text)
    sec, frac = divmod(ns, 1_000_000_000)
    local = datetime.fromtimestamp(sec).astimezone()
    out = local.strftime("%Y-%m-%d %H:%M:%S")
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return f"{out} {local.strftime('%z')} {local.tzname() or 'UTC'}"


def _exit_suffix(event: Mapping[str, Any]) -> str:
    if event.get("Status") in ("died", "exec_died") and "ContainerExitCode" in event:
        return f", containerExitCode={event['ContainerExitCode']}"
    return ""


def human_line(event: Mapping[str, Any], *, no_trunc: bool = True) -> str:
    """podman's default event line (libpod/events ToHumanReadable)."""
    when = go_time(str(event.get("Time", "")))
    kind, status = event.get("Type", ""), event.get("Status", "")
    eid = str(event.get("ID", ""))
    short = eid if no_trunc else eid[:12]
    attrs = event.get("Attributes") or {}
    if kind in ("container", "pod"):
        text = f"{when} {kind} {status} {short} (image={event.get('Image', '')}, " \
               f"name={event.get('Name', '')}"
        if event.get("PodID"):
            text += f", pod_id={event['PodID']}"
        for k, v in attrs.items():
            text += f", {k}={v}"
        return text + _exit_suffix(event) + ")"
    if kind == "network":
        if status in ("create", "remove"):
            return f"{when} {kind} {status} {eid} (name={event.get('Network', '')}, " \
                   f"type={attrs.get('driver', 'bridge')})"
        return f"{when} {kind} {status} {short} (container={short}, " \
               f"name={event.get('Network', '')})"
    if kind == "image":
        text = f"{when} {kind} {status} {short} {event.get('Name', '')}"
        return text + (" " + event["Error"] if event.get("Error") else "")
    if kind == "system":
        return f"{when} {kind} {status}" + (f" {event['Name']}" if event.get("Name") else "")
    return f"{when} {kind} {status} {event.get('Name', '')}"


def go_json_line(event: Mapping[str, Any]) -> str:
    """The event as Go's json.Marshal writes it: compact, ``<>&`` escaped, podman's
    key order."""
    import json

    from podkit_common.events import FIELD_ORDER

    ordered = {k: event[k] for k in FIELD_ORDER if k in event}
    ordered.update({k: v for k, v in event.items() if k not in ordered})
    ordered.setdefault("Attributes", None)
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def template_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as podman's template sees it: every field of events.Event (zero values
    for the missing ones), ``.Time`` as Go prints a time.Time."""
    from podkit_common.events import parse_event_time

    text = str(event.get("Time", ""))
    try:
        time_ns = parse_event_time(text)
        when = go_time(text)
    except ValueError:
        time_ns, when = 0, text
    return {"ContainerExitCode": int(event.get("ContainerExitCode") or 0),
            "ID": event.get("ID", ""), "Image": event.get("Image", ""),
            "Name": event.get("Name", ""), "Network": event.get("Network", ""),
            "Status": event.get("Status", ""), "Time": when, "TimeNano": time_ns,
            "Type": event.get("Type", ""), "Error": event.get("Error", ""),
            "PodID": event.get("PodID", ""), "Attributes": dict(event.get("Attributes") or {}),
            "Details": {"PodID": event.get("PodID", ""),
                        "Attributes": dict(event.get("Attributes") or {})}}


def format_event(event: Mapping[str, Any], fmt: str | None = None, *,
                 no_trunc: bool = True) -> str:
    """One event as `pod events` prints it, ending with a newline."""
    from podkit_common import gotemplate

    if not fmt:
        return human_line(event, no_trunc=no_trunc) + "\n"
    if gotemplate.is_json(fmt):
        return go_json_line(event) + "\n"
    return gotemplate.render_one(fmt, template_row(event), name="events",
                                 type_name="events.Event")


def check_format(fmt: str | None) -> None:
    """A bad template fails before anything is printed (podman parses it first)."""
    if fmt:
        from podkit_common.events import make_event

        format_event(make_event("container", "create", time_ns=0), fmt)
