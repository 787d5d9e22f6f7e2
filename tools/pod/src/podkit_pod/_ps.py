"""`pod ps`: podman's container listing, as data (`--format json`'s rows).

One row per container, with podman 4.3.1's keys and values: ``Created``/``StartedAt``/
``ExitedAt`` in unix seconds (Go's zero time, -62135596800, when it never happened),
``CreatedAt`` the human "2 seconds ago", ``Status`` like "Up 3 seconds ago" or
"Exited (0) 2 seconds ago", ``Labels``/``Ports`` null when empty. Runtime containers come
from the records of pod-runtime (reconciled with the machine at every read); a storage
container that was never created under conmon shows as podman's "configured" one.

Filters (podman's keys; values of one key OR'ed, different keys AND'ed): ``id``,
``name`` (regex), ``label`` / ``label!``, ``status``, ``exited``, ``ancestor``,
``before`` / ``since`` (a container), ``pod``, ``network``, ``health``, ``volume``.
"""

from __future__ import annotations

import re
import time

from podkit_common import errors
from podkit_common.humanize import human_duration as ago
from podkit_common.records import record as value_class
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: Go's zero time.Time as unix seconds: podman's value for "never".
ZERO_UNIX = -62135596800
FILTER_KEYS = ("id", "name", "label", "label!", "status", "exited", "ancestor", "before",
               "since", "pod", "network", "health", "volume")
STATES = ("created", "running", "paused", "stopped", "exited", "unknown", "configured")
SORT_KEYS = ("command", "created", "id", "image", "names", "runningfor", "status")


@value_class(frozen=True)
class PsOptions:
    """What `pod ps` was asked for (podman's ps flags that choose the rows)."""

    all: bool = False
    filters: tuple[str, ...] = ()
    last: int = -1
    latest: bool = False
    sort: str = "created"
    #: Read each container's mount destinations (its config.json): what --format json,
    #: templates with .Mounts and the volume filter need; the table does not.
    mounts: bool = True
    #: Measure what each container wrote and its whole rootfs (podman ps --size).
    size: bool = False


def iso_ts(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time as podkit records write them (UTC, "Z", up to
    nanoseconds), or None."""
    if not text:
        return None
    if text.endswith("Z"):
        from podkit_common.humanize import parse_time

        seconds = parse_time(text)  # no datetime import on ps's path
        if seconds is not None:
            return seconds
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        from podkit_runtime._inspect import _ts

        return _ts(text)


def parse_filters(specs: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """``["name=web", "status=exited"]`` -> ``{"name": ["web"], "status": ["exited"]}``,
    refused with podman's messages."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if key == "label" and value.startswith("!"):  # never podman's, but harmless
            key = "label!"
        if not sep or key not in FILTER_KEYS:
            raise errors.UsageError(f"{key} is an invalid filter",
                                    hint="filters: " + ", ".join(FILTER_KEYS))
        if key == "status" and value not in STATES:
            raise errors.UsageError(f"{value} is not a valid status",
                                    hint="one of " + ", ".join(STATES[:-1]))
        if key == "exited" and not value.lstrip("-").isdigit():
            raise errors.UsageError(f"exited code out of range {value!r}")
        out.setdefault(key, []).append(value)
    return out


def _status(record: dict[str, Any], seen: Any, now: float) -> str:
    """podman 4.3.1's Status column ("Up 3 seconds ago", with "(healthy)" after)."""
    from podkit_runtime._health import status_suffix

    if seen.status == "running":
        started = record.get("started_ts") or now
        return f"Up {ago(now - started)} ago{status_suffix(record)}"
    if seen.status == "paused":
        return "Paused"
    if seen.status in ("created", "configured"):
        return "Created"
    finished = iso_ts(seen.finished_at) or now
    return f"Exited ({seen.exit_code}) {ago(now - finished)} ago"


def _ports(network: dict[str, Any]) -> list[dict[str, Any]] | None:
    ports = [{"host_ip": p.get("hostIP") or "", "container_port": p["containerPort"],
              "host_port": p["hostPort"], "range": 1, "protocol": p["protocol"]}
             for p in network.get("ports") or []]
    return ports or None


#: Mounts every container gets from the engine: not the user's (podman's UserVolumes).
_ENGINE_MOUNTS = frozenset({"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/shm", "/sys",
                            "/sys/fs/cgroup", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                            "/run/.containerenv", "/run/podman-init"})


def user_mounts(roots: Roots, cid: str) -> list[str]:
    """The destinations of the volumes and bind mounts the user asked for, in order
    (podman ps's Mounts), from the container's config.json."""
    from podkit_common import atomic
    from podkit_runtime._state import ContainerPaths

    bundle = ContainerPaths(roots, cid).bundle
    try:
        config = atomic.read_json(bundle / "config.json")
    except (FileNotFoundError, errors.InvalidDocument):
        return []
    out = []
    for m in config.get("mounts") or []:
        dest, source = m.get("destination", ""), str(m.get("source", ""))
        if m.get("type") != "bind" or dest in _ENGINE_MOUNTS \
                or source.startswith(str(bundle)) or source.startswith(str(roots.runroot)):
            continue
        out.append(dest)
    return out


def runtime_row(record: dict[str, Any], seen: Any, now: float,
                mounts: list[str] | None = None) -> dict[str, Any]:
    """podman ps's JSON row for a container pod-runtime knows."""
    doc = record.get("doc") or {}
    network = doc.get("network") or {}
    bundle = doc.get("bundle") or {}
    pod = record.get("pod") or {}
    created = int(record.get("created_ts") or 0)
    started = int(record.get("started_ts") or 0)
    finished = iso_ts(seen.finished_at) if seen.status == "exited" else None
    return {
        "AutoRemove": bool(record.get("auto_remove")),
        "Command": list(record.get("command") or []),
        "CreatedAt": f"{ago(now - created)} ago" if created else "",
        "Exited": seen.status == "exited",
        "ExitedAt": int(finished) if finished else ZERO_UNIX,
        "ExitCode": seen.exit_code if seen.exit_code is not None else 0,
        "Id": record["id"],
        "Image": record.get("image") or "",
        "ImageID": record.get("image_id") or "",
        "IsInfra": bool(record.get("infra") or pod.get("infra")),
        "Labels": dict(bundle.get("labels") or {}) or None,
        "Mounts": list(mounts or []),
        "_volumes": list(bundle.get("volumes") or []),
        "Names": [record["name"]],
        "Namespaces": {},
        "Networks": [n["name"] for n in network.get("networks") or []],
        "Pid": (seen.pid or 0) if seen.status in ("running", "paused") else 0,
        "Pod": pod.get("id") or "",
        "PodName": pod.get("name") or "",
        "Ports": _ports(network),
        "Size": None,
        "StartedAt": started if started else ZERO_UNIX,
        "State": seen.status,
        "Status": _status(record, seen, now),
        "Created": created,
        # Not podman's keys: what --filter health needs, dropped before printing.
        "_health": ((record.get("health") or {}).get("Status", "starting")
                    if record.get("healthcheck") else "none"),
        "_created": float(record.get("created_ts") or 0),
        "_started": float(record.get("started_ts") or 0),
    }


def storage_row(c: dict[str, Any], now: float) -> dict[str, Any]:
    """A container pod-storage made that was never created under conmon."""
    created = int(iso_ts(c.get("created")) or 0)
    return {
        "AutoRemove": False, "Command": [], "CreatedAt": f"{ago(now - created)} ago"
        if created else "", "Exited": False, "ExitedAt": ZERO_UNIX, "ExitCode": 0,
        "Id": c["id"], "Image": c.get("image_name") or "", "ImageID": c.get("image_id") or "",
        "IsInfra": False, "Labels": None, "Mounts": [], "Names": [c["name"]],
        "Namespaces": {}, "Networks": [], "Pid": 0, "Pod": "", "PodName": "", "Ports": None,
        "Size": None, "StartedAt": ZERO_UNIX, "State": "configured", "Status": "Created",
        "Created": created, "_health": "none", "_volumes": [], "_created": float(created),
        "_started": 0.0,
    }


def all_rows(roots: Roots, *, include_storage: bool = True, mounts: bool = False
             ) -> list[dict[str, Any]]:
    """Every container's row, oldest first (runtime records reconciled now; ``mounts``:
    with their mount destinations)."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync

    now = time.time()
    rows = []
    for record in _state.all_records(roots):
        try:
            record, seen = sync(roots, record["id"], record)
        except errors.NotFound:  # removed while we looked
            continue
        rows.append(runtime_row(record, seen, now,
                                user_mounts(roots, record["id"]) if mounts else None))
    if include_storage:
        from podkit_storage._layout import StoreLayout
        from podkit_storage._listing import container_records

        known = {r["Id"] for r in rows}
        rows += [storage_row(c, now) for c in container_records(StoreLayout(roots))
                 if c.get("id") not in known]
    rows.sort(key=lambda r: r["_created"])
    return rows


def _image_matches(row: dict[str, Any], wanted: str) -> bool:
    """podman's ancestor filter (the image's name, the name without a ``latest`` tag,
    its id or an id prefix of 12 digits or more), and docker's short repository name
    (``busybox``) besides."""
    image = row["Image"]
    repo = image.rpartition(":")[0] if ":" in image.rsplit("/", 1)[-1] else image
    wanted_id = wanted.removeprefix("sha256:")
    return (wanted in (image, repo, repo.rsplit("/", 1)[-1])
            or (len(wanted_id) >= 12 and row["ImageID"].startswith(wanted_id)))


def _label_matches(labels: dict[str, str] | None, wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    labels = labels or {}
    return key in labels and (not sep or labels[key] == value)


def _find(rows: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    for row in rows:
        if ref in row["Names"] or row["Id"] == ref:
            return row
    found = [r for r in rows if len(ref) >= 3 and r["Id"].startswith(ref)]
    if len(found) == 1:
        return found[0]
    raise errors.NotFound(f'no container with name or ID "{ref}" found: no such container')


def _tests(rows: list[dict[str, Any]]) -> dict[str, Callable[[dict[str, Any], str], bool]]:
    def created_of(ref: str) -> int:
        return _find(rows, ref)["_created"]

    return {
        "id": lambda r, v: r["Id"].startswith(v),
        "name": lambda r, v: any(re.search(v, n) for n in r["Names"]),
        "label": lambda r, v: _label_matches(r["Labels"], v),
        "label!": lambda r, v: not _label_matches(r["Labels"], v.removeprefix("!")),
        "status": lambda r, v: r["State"] == v or (v == "stopped" and r["State"] == "exited"),
        "exited": lambda r, v: r["Exited"] and r["ExitCode"] == int(v),
        "ancestor": _image_matches,
        "before": lambda r, v: r["_created"] < created_of(v),
        "since": lambda r, v: r["_created"] > created_of(v),
        "pod": lambda r, v: bool(r["Pod"]) and (v == r["PodName"] or r["Pod"].startswith(v)),
        "network": lambda r, v: v in r["Networks"],
        "health": lambda r, v: r["_health"] == v,
        "volume": lambda r, v: v in r["_volumes"],  # a named volume, as podman matches
    }


def shows_all(opts: PsOptions, filters: dict[str, list[str]]) -> bool:
    """Whether stopped containers are listed too: --all, and what podman turns it on for
    (a status filter, --last, --latest)."""
    return opts.all or "status" in filters or opts.latest or opts.last >= 0


def select(rows: list[dict[str, Any]], opts: PsOptions) -> list[dict[str, Any]]:
    """The rows ``opts`` asks for, in its order (pure)."""
    filters = parse_filters(opts.filters)
    if opts.sort not in SORT_KEYS:
        raise errors.UsageError(f"invalid option for --sort, options are: "
                                f"{' '.join(SORT_KEYS)}")
    shown_all = shows_all(opts, filters)
    tests = _tests(rows)
    out = [r for r in rows
           if (shown_all or r["State"] == "running")
           and all(any(tests[k](r, v) for v in values) for k, values in filters.items())]
    last = 1 if opts.latest else opts.last
    if last >= 0:
        out = sorted(out, key=lambda r: r["_created"])[len(out) - last:] if last else []
    return sort_rows(out, opts.sort)


def sort_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """podman's --sort orders (created: oldest first; runningfor: by start time, the
    never started first)."""
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "command": lambda r: " ".join(r["Command"]), "created": lambda r: r["_created"],
        "id": lambda r: r["Id"], "image": lambda r: r["Image"],
        "names": lambda r: r["Names"][0] if r["Names"] else "",
        "runningfor": lambda r: (r["_started"], r["_created"]),
        "status": lambda r: r["Status"],
    }
    return sorted(rows, key=keys[key])


def add_sizes(roots: Roots, rows: list[dict[str, Any]]) -> None:
    """podman's ``Size`` of each row: {"rwSize": bytes the container wrote (its upper
    dir), "rootFsSize": those plus its image's layers}."""
    from podkit_pod._system_space import tree_size
    from podkit_storage._layout import StoreLayout
    from podkit_storage._listing import container_records

    stored = {c["id"]: c for c in container_records(StoreLayout(roots))}
    layers: dict[tuple[str, ...], int] = {}
    for row in rows:
        c = stored.get(row["Id"]) or {}
        lower = tuple(c.get("lower") or ())
        if lower not in layers:
            layers[lower] = sum(tree_size(p) for p in lower)
        rw = tree_size(c["upper"]) if c.get("upper") else 0
        row["Size"] = {"rwSize": rw, "rootFsSize": rw + layers[lower]}


def ps_rows(roots: Roots, opts: PsOptions = PsOptions()) -> list[dict[str, Any]]:
    """podman ps --format json's rows for ``opts``."""
    # Containers only pod-storage knows are never running: `ps` without --all skips them.
    stopped_too = shows_all(opts, parse_filters(opts.filters))
    rows = select(all_rows(roots, mounts=opts.mounts, include_storage=stopped_too), opts)
    if opts.size:
        add_sizes(roots, rows)
    for r in rows:
        for hidden in ("_health", "_created", "_started", "_volumes"):
            r.pop(hidden, None)
    return rows
