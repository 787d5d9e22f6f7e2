"""``ps --filter`` and ``ps --format`` with Go-template fields, podman's way (pure).

Filters: ``name=REGEX``, ``id=PREFIX``, ``status=STATE``, ``label=KEY[=VALUE]``,
``ancestor=IMAGE`` (name, name without tag, or id prefix), ``exited=CODE``. Values of
the same key are OR'ed, different keys AND'ed; a status filter lists stopped containers
too (podman sets --all for it). Formats: ``json``, ``table`` (the default table), or a
template such as ``{{.Names}}`` or ``table {{.ID}}\\t{{.Status}}`` with the common fields.
"""

from __future__ import annotations

import json
import re

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

FILTER_KEYS = ("name", "id", "status", "label", "ancestor", "exited")
STATES = ("created", "running", "paused", "exited", "stopped", "configured", "stopping",
          "removing", "unknown")


def parse_filters(specs: Iterable[str]) -> dict[str, list[str]]:
    """``["name=web", "status=exited"]`` as ``{"name": ["web"], "status": ["exited"]}``."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise errors.UsageError(f"invalid filter {spec!r}",
                                    hint="one of " + ", ".join(f"{k}=..." for k in FILTER_KEYS))
        if key == "status" and value not in STATES:
            raise errors.UsageError(f"{value} is not a valid status",
                                    hint="one of " + ", ".join(STATES))
        if key == "exited" and not value.lstrip("-").isdigit():
            raise errors.UsageError(f"exited code out of range {value!r}")
        out.setdefault(key, []).append(value)
    return out


def _image_matches(line: dict[str, Any], wanted: str) -> bool:
    image = line.get("Image") or ""
    bare = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    short = bare.rsplit("/", 1)[-1]
    image_id = line.get("ImageID") or ""
    return (wanted in (image, bare, short)
            or (len(wanted) >= 3 and image_id.startswith(wanted.removeprefix("sha256:"))))


def _label_matches(labels: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def matches(line: dict[str, Any], filters: dict[str, list[str]],
            labels: dict[str, str] | None = None) -> bool:
    """Whether one ps line passes every filter."""
    tests: dict[str, Callable[[str], bool]] = {
        "name": lambda v: any(re.search(v, n) for n in line["Names"]),
        "id": lambda v: line["Id"].startswith(v),
        "status": lambda v: line["State"] == v or (v == "stopped" and line["State"] == "exited"),
        "label": lambda v: _label_matches(labels or {}, v),
        "ancestor": lambda v: _image_matches(line, v),
        "exited": lambda v: line["State"] == "exited" and line["ExitCode"] == int(v),
    }
    return all(any(tests[k](v) for v in values) for k, values in filters.items())


def apply_filters(lines: list[dict[str, Any]], specs: Iterable[str],
                  labels_of: Callable[[str], dict[str, str]] | None = None
                  ) -> list[dict[str, Any]]:
    """The lines that pass ``specs``; ``labels_of(id)`` reads a container's labels."""
    filters = parse_filters(specs)
    if not filters:
        return lines
    return [line for line in lines
            if matches(line, filters, labels_of(line["Id"]) if labels_of and "label" in filters
                       else None)]


# -- Go templates -----------------------------------------------------------------------

def template_fields(line: dict[str, Any], labels: dict[str, str] | None = None
                    ) -> dict[str, Any]:
    """The fields podman's ps templates know, from one ps line."""
    return {
        "ID": line["Id"][:12], "Names": ",".join(line["Names"]), "Image": line["Image"],
        "ImageID": line.get("ImageID", ""), "Command": " ".join(line["Command"]),
        "CreatedAt": line.get("CreatedAt") or "", "Created": line.get("Created", 0),
        "Status": line["Status"], "State": line["State"], "Pid": line.get("Pid") or 0,
        "ExitCode": line.get("ExitCode", 0), "Exited": line.get("Exited", False),
        "AutoRemove": line.get("AutoRemove", False), "Ports": line.get("Ports") or "",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())),
    }


_ACTION = re.compile(r"\{\{\s*(json\s+)?\.(\w+)\s*\}\}")
_HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "ImageID": "IMAGE ID",
            "CreatedAt": "CREATED AT", "ExitCode": "EXIT CODE", "AutoRemove": "AUTO REMOVE"}


def render(lines: list[dict[str, Any]], fmt: str,
           labels_of: Callable[[str], dict[str, str]] | None = None) -> str:
    """``--format`` with a Go template: one line per container (``table`` adds a
    header and aligns the columns on tabs)."""
    table = fmt.startswith("table")
    text = fmt[5:].strip() if table else fmt
    text = text.replace("\\t", "\t").replace("\\n", "\n")
    unknown = [m.group(2) for m in _ACTION.finditer(text)
               if m.group(2) not in template_fields(_EMPTY)]
    if unknown or ("{{" in _ACTION.sub("", text)):
        raise errors.UsageError(f"template {fmt!r}: unsupported field or action "
                                f"{(unknown or ['?'])[0]}",
                                hint="fields: " + ", ".join(template_fields(_EMPTY)))

    def fill(fields: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            value = fields[m.group(2)]
            return json.dumps(value) if m.group(1) else str(value)
        return _ACTION.sub(one, text)

    rows = [fill(template_fields(line, labels_of(line["Id"]) if labels_of else None))
            for line in lines]
    if not table:
        return "".join(r + "\n" for r in rows)
    header = _ACTION.sub(lambda m: _HEADERS.get(m.group(2), m.group(2).upper()), text)
    cells = [r.split("\t") for r in [header, *rows]]
    width = max(len(c) for c in cells)
    widths = [max((len(r[i]) for r in cells if i < len(r)), default=0) for i in range(width)]
    return "".join("  ".join(c.ljust(widths[i]) if i < len(r) - 1 else c
                             for i, c in enumerate(r)).rstrip() + "\n" for r in cells)


_EMPTY: dict[str, Any] = {"Id": "", "Names": [], "Image": "", "Command": [], "Status": "",
                          "State": ""}


def record_labels(roots: Any) -> Callable[[str], dict[str, str]]:
    """``labels_of`` for runtime containers: the labels the bundle was written with."""
    from podkit_runtime import _state

    def labels_of(cid: str) -> dict[str, str]:
        try:
            record = _state.load_record(roots, cid)
        except errors.NotFound:
            return {}
        return dict(((record.get("doc") or {}).get("bundle") or {}).get("labels") or {})

    return labels_of


def wants_all(all_: bool, specs: Iterable[str] | None) -> bool:
    """``--all``, or a status filter (podman's ps turns --all on for one)."""
    return all_ or any(s.startswith("status=") for s in specs or ())


def ps_output(roots: Any, lines: list[dict[str, Any]], specs: Iterable[str] | None,
              fmt: str) -> tuple[list[dict[str, Any]], str | None]:
    """The hook ps commands call: the lines left by ``--filter``, and the text of a
    ``--format`` template (None for json/table, which the caller prints itself)."""
    labels_of = record_labels(roots)
    lines = apply_filters(lines, specs or (), labels_of)
    if fmt in ("json", "table"):
        return lines, None
    return lines, render(lines, fmt, labels_of)
