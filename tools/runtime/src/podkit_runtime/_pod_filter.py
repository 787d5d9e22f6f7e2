"""`pod ps --filter KEY=VALUE`: podman's pod filters over `pod ps` lines (pure).

Keys (podman 4.3.1 pod ps): ``id`` (prefix), ``name`` (regular expression), ``label``
(``KEY`` or ``KEY=VALUE``), ``status``, ``network``, ``ctr-names``, ``ctr-ids``
(prefix), ``ctr-status``, ``ctr-number``. The same key given twice matches either
value; different keys must all match.
"""

from __future__ import annotations

import re

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STATUSES = ("created", "running", "degraded", "paused", "exited", "stopped", "dead")
CTR_STATUSES = ("created", "running", "paused", "stopped", "exited", "unknown", "configured")


def _label(line: dict[str, Any], value: str) -> bool:
    key, sep, want = value.partition("=")
    labels = line.get("Labels") or {}
    return key in labels and (not sep or labels[key] == want)


def _name(line: dict[str, Any], value: str) -> bool:
    try:
        return re.search(value, line["Name"]) is not None
    except re.error:
        raise errors.UsageError(f"invalid name filter {value!r}: not a regular expression",
                                hint="e.g. --filter name=^web") from None


def _one(key: str, value: str) -> Callable[[dict[str, Any]], bool]:
    ctrs = lambda line: line.get("Containers") or []  # noqa: E731
    if key == "id":
        return lambda line: line["Id"].startswith(value)
    if key == "name":
        return lambda line: _name(line, value)
    if key == "label":
        return lambda line: _label(line, value)
    if key == "status":
        if value.lower() not in STATUSES:
            raise errors.UsageError(f"{value} is not a valid status",
                                    hint="one of " + ", ".join(STATUSES))
        return lambda line: line["Status"].lower() == value.lower()
    if key == "network":
        return lambda line: value in (line.get("Networks") or [])
    if key == "ctr-names":
        return lambda line: any(c["Names"] == value for c in ctrs(line))
    if key == "ctr-ids":
        return lambda line: any(c["Id"].startswith(value) for c in ctrs(line))
    if key == "ctr-status":
        if value not in CTR_STATUSES:
            raise errors.UsageError(f"{value} is not a valid status",
                                    hint="one of " + ", ".join(CTR_STATUSES))
        return lambda line: any(c["Status"] == value for c in ctrs(line))
    if key == "ctr-number":
        try:
            number = int(value)
        except ValueError:
            raise errors.UsageError(f"invalid ctr-number filter {value!r}") from None
        return lambda line: len(ctrs(line)) == number
    raise errors.UsageError(f"{key} is an invalid filter",
                            hint="id, name, label, status, network, ctr-names, ctr-ids, "
                                 "ctr-status, ctr-number")


def filter_pods(lines: list[dict[str, Any]], filters: list[str] | None
                ) -> list[dict[str, Any]]:
    """The lines every filter key matches (values of one key: any of them)."""
    by_key: dict[str, list[Callable[[dict[str, Any]], bool]]] = {}
    for item in filters or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise errors.UsageError(f"invalid filter {item!r}", hint="use KEY=VALUE")
        by_key.setdefault(key, []).append(_one(key, value))
    return [line for line in lines
            if all(any(test(line) for test in tests) for tests in by_key.values())]
