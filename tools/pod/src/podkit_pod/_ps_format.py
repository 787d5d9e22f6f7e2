"""`pod ps` as text: podman's default table, `--quiet`, `--format json` and Go templates
over the rows of :mod:`podkit_pod._ps` (pure: rows in, text out).

The table is laid out like Go's tabwriter as podman configures it (minimum cell width
12 including 2 spaces of padding, last column unpadded). Template fields are podman's
ps reporter's: ``.ID`` (12 digits unless --no-trunc), ``.Names``, ``.Image``,
``.Command`` (17 characters and "..." unless --no-trunc), ``.RunningFor``,
``.CreatedAt``, ``.Status``, ``.State``, ``.Ports``, ``.Networks``, ``.Mounts``,
``.Labels``, ``.Pod``, ``.PodName``, ``.Pid``, ``.ExitCode``, ``.Exited``, ...
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: podman's column titles for template fields (others: the name in capitals).
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
           "CreatedHuman": "CREATED", "RunningFor": "CREATED", "CreatedAt": "CREATED AT",
           "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Pod": "POD ID",
           "PodName": "PODNAME", "Size": "SIZE", "ImageID": "IMAGE ID", "State": "STATE",
           "Networks": "NETWORKS", "Mounts": "MOUNTS", "Labels": "LABELS",
           "ExitCode": "EXIT CODE", "AutoRemove": "AUTO REMOVE", "IsInfra": "IS INFRA"}


def tabwriter(rows: Sequence[Sequence[str]], *, minwidth: int = 12, padding: int = 2) -> str:
    """Go's text/tabwriter as containers/common's report uses it."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    if all(len(r) == ncols for r in rows):  # the usual table: every row full
        widths = [max(max(map(len, col)) + padding, minwidth) for col in zip(*rows, strict=True)]
        return "".join("".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False))
                       + r[-1] + "\n" for r in rows)
    widths = [max(max((len(r[i]) for r in rows if i < len(r) - 1), default=0) + padding,
                  minwidth) for i in range(ncols)]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append("".join(cells) + "\n")
    return "".join(out)


def ports_text(ports: list[dict[str, Any]] | None) -> str:
    """``0.0.0.0:8080->80/tcp, ...`` like podman's PORTS column."""
    return ", ".join(f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->"
                     f"{p['container_port']}/{p['protocol']}" for p in ports or [])


def go_time(unix: float) -> str:
    """A time as Go's time.Time prints it (UTC): 2026-11-29 02:23:30 +0000 UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(unix))


def size_text(size: dict[str, int] | None) -> str:
    """podman's SIZE cell: ``12B (virtual 1.98MB)`` (three significant digits)."""
    if not size:
        return ""
    from podkit_pod._system_space import human

    return f"{human(size['rwSize'], 3)} (virtual {human(size['rootFsSize'], 3)})"


def template_row(row: dict[str, Any], *, no_trunc: bool = False) -> dict[str, Any]:
    """The fields podman's ps templates see for one JSON row."""
    command = " ".join(row["Command"])
    if not no_trunc and len(command) > 17:
        command = command[:17] + "..."
    return {
        "ID": row["Id"] if no_trunc else row["Id"][:12], "Names": ",".join(row["Names"]),
        "Image": row["Image"], "ImageID": row["ImageID"], "Command": command,
        "CreatedAt": go_time(row["Created"]), "Created": go_time(row["Created"]),
        "CreatedHuman": row["CreatedAt"], "RunningFor": row["CreatedAt"],
        "Status": row["Status"], "State": row["State"], "Ports": ports_text(row["Ports"]),
        "Networks": list(row["Networks"]), "Mounts": list(row["Mounts"]),
        "Labels": dict(row["Labels"] or {}), "Pod": row["Pod"][:12] if not no_trunc
        else row["Pod"], "PodName": row["PodName"], "Pid": row["Pid"],
        "ExitCode": row["ExitCode"], "Exited": row["Exited"], "ExitedAt": row["ExitedAt"],
        "StartedAt": row["StartedAt"], "AutoRemove": row["AutoRemove"],
        "IsInfra": row["IsInfra"], "Size": size_text(row["Size"]), "Namespaces": {},
    }


_EMPTY_ROW: dict[str, Any] = {
    "Id": "", "Names": [], "Image": "", "ImageID": "", "Command": [], "Created": 0,
    "CreatedAt": "", "Status": "", "State": "", "Ports": None, "Networks": [], "Mounts": [],
    "Labels": None, "Pod": "", "PodName": "", "Pid": 0, "ExitCode": 0, "Exited": False,
    "ExitedAt": 0, "StartedAt": 0, "AutoRemove": False, "IsInfra": False, "Size": None}


def default_table(rows: list[dict[str, Any]], *, no_trunc: bool = False, pod: bool = False,
                  noheading: bool = False, size: bool = False) -> str:
    """podman ps's default table (with SIZE for --size, POD ID and PODNAME for --pod)."""
    fields = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
    if size:
        fields.append("Size")
    if pod:
        fields += ["Pod", "PodName"]
    cells = [] if noheading else [[HEADERS[f] for f in fields]]
    for row in rows:  # the cells straight from the row: this is the hot path of `ps -a`
        command = " ".join(row["Command"])
        if not no_trunc and len(command) > 17:
            command = command[:17] + "..."
        line = [row["Id"] if no_trunc else row["Id"][:12], row["Image"], command,
                row["CreatedAt"], row["Status"],
                ports_text(row["Ports"]) if row["Ports"] else "", ",".join(row["Names"])]
        if size:
            line.append(size_text(row["Size"]))
        if pod:
            line += [row["Pod"] if no_trunc else row["Pod"][:12], row["PodName"]]
        cells.append(line)
    return tabwriter(cells)


def quiet(rows: list[dict[str, Any]], *, no_trunc: bool = False) -> str:
    return "".join((r["Id"] if no_trunc else r["Id"][:12]) + "\n" for r in rows)


def json_text(rows: list[dict[str, Any]]) -> str:
    """podman's --format json: an indented array ("[]" when empty)."""
    from podkit_common.jsonio import dumps

    text = dumps(rows, pretty=True).decode()  # Go's encoder escapes <, > and &
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def render_template(fmt: str, rows: list[dict[str, Any]], *, no_trunc: bool = False,
                    noheading: bool = False) -> str:
    """A Go template over the rows (``table ...`` adds podman's headers)."""
    from podkit_common.gotemplate import headers_for, render_rows

    fields = template_row(_EMPTY_ROW)
    return render_rows(fmt, [template_row(r, no_trunc=no_trunc) for r in rows],
                       noheading=noheading, name="ps", type_name="ps.psReporter",
                       headers={**headers_for(fields), **HEADERS})


def needs_mounts(fmt: str | None) -> bool:
    """Whether this --format shows Mounts (json, or a template naming it)."""
    return bool(fmt) and (fmt.strip().lower() == "json" or "Mounts" in fmt)  # type: ignore


def render(rows: list[dict[str, Any]], fmt: str | None, *, quiet_: bool = False,
           no_trunc: bool = False, pod: bool = False, noheading: bool = False,
           size: bool = False) -> str:
    """Whatever `pod ps` prints for these rows and flags."""
    if quiet_:
        return quiet(rows, no_trunc=no_trunc)
    if fmt is None or fmt == "" or fmt == "table":
        return default_table(rows, no_trunc=no_trunc, pod=pod, noheading=noheading,
                             size=size)
    if fmt == "json":
        return json_text(rows)
    return render_template(fmt, rows, no_trunc=no_trunc, noheading=noheading)
