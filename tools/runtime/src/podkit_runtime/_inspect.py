"""Reports about containers, shaped like podman's: ``ps`` lines and ``inspect``.

Both read the record, reconcile it with the machine (``_lifecycle.sync``) and fill what
podkit knows; podman fields podkit has no notion of yet are left out, not invented.
"""

from __future__ import annotations

import time

from podkit_common import atomic, errors
from podkit_common.humanize import human_duration as _ago
from podkit_common.roots import Roots
from podkit_runtime import _state
from podkit_runtime._state import ContainerPaths, Observed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    from podkit_runtime._logs import parse_time_filter

    return parse_time_filter(iso) / 1e9


def status_text(record: dict[str, Any], seen: Observed, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if seen.status == "running":
        started = record.get("started_ts") or _ts(record.get("started_at")) or now
        from podkit_runtime._health import status_suffix

        return f"Up {_ago(now - started)}{status_suffix(record)}"
    if seen.status == "paused":
        return "Paused"
    if seen.status == "created":
        return "Created"
    finished = _ts(seen.finished_at) or now
    return f"Exited ({seen.exit_code}) {_ago(now - finished)} ago"


def ps_line(record: dict[str, Any], seen: Observed) -> dict[str, Any]:
    """One line of ``pod-runtime ps`` (podman ps --format json's keys)."""
    return {
        "Id": record["id"], "Names": [record["name"]], "Image": record.get("image") or "",
        "ImageID": record.get("image_id") or "", "Command": record.get("command") or [],
        "Created": int(record.get("created_ts") or 0), "CreatedAt": record.get("created_at"),
        "State": seen.status, "Status": status_text(record, seen), "Pid": seen.pid,
        "ExitCode": seen.exit_code if seen.exit_code is not None else 0,
        "Exited": seen.status == "exited", "StartedAt": int(record.get("started_ts") or 0),
        "ExitedAt": int(_ts(seen.finished_at) or 0), "AutoRemove": bool(record.get("auto_remove")),
    }


def ps(roots: Roots, *, all_: bool = False) -> list[dict[str, Any]]:
    """Containers, oldest first; without ``all_`` only the running ones (podman ps)."""
    from podkit_runtime._lifecycle import sync

    out = []
    for record in _state.all_records(roots):
        try:
            record, seen = sync(roots, record["id"], record)
        except errors.NotFound:  # removed while we looked
            continue
        if all_ or seen.status == "running":
            out.append(ps_line(record, seen))
    return out


def table(lines: list[dict[str, Any]]) -> str:
    """podman ps's default table (columns as wide as their widest cell, two spaces apart)."""
    header = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")
    now = time.time()
    rows = [header]
    for line in lines:
        command = " ".join(line["Command"])
        command = command if len(command) <= 20 else command[:17] + "..."
        created = f"{_ago(now - line['Created'])} ago" if line["Created"] else ""
        rows.append((line["Id"][:12], line["Image"], command, created, line["Status"],
                     ",".join(line["Names"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True))
                   + "  " + r[-1] + "\n" for r in rows)


def inspect(roots: Roots, ref: str) -> dict[str, Any]:
    """podman inspect's shape for one container."""
    from podkit_runtime._inspect_network import network_settings
    from podkit_runtime._lifecycle import sync

    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    paths = ContainerPaths(roots, cid)
    try:
        config = atomic.read_json(paths.bundle / "config.json")
    except (FileNotFoundError, errors.InvalidDocument):
        config = {}
    process = config.get("process") or {}
    doc = record.get("doc") or {}
    network = doc.get("network") or {}
    mounts = [{"Type": m.get("type", "bind"), "Source": m.get("source", ""),
               "Destination": m.get("destination", ""),
               "Options": m.get("options") or [],
               "RW": "ro" not in (m.get("options") or [])}
              for m in config.get("mounts") or []
              if m.get("type") == "bind" and not str(m.get("source", "")).startswith(
                  str(paths.bundle))]
    env = process.get("env") or []
    return {
        "Id": cid,
        "Created": record.get("created_at"),
        "Path": (record.get("command") or [""])[0],
        "Args": (record.get("command") or [])[1:],
        "State": {
            "Status": seen.status,
            "Running": seen.status == "running",
            "Paused": seen.status == "paused",
            "Restarting": False,
            "OOMKilled": (paths.bundle / "oom").exists(),
            "Dead": False,
            "Pid": seen.pid,
            "ConmonPid": seen.conmon_pid,
            "ExitCode": seen.exit_code if seen.exit_code is not None else 0,
            "Error": record.get("restart_error") or record.get("exit_note") or "",
            "StartedAt": record.get("started_at") or _ZERO_TIME,
            "FinishedAt": seen.finished_at or _ZERO_TIME,
            **_health_state(record),
        },
        "RestartCount": int(record.get("restart_count") or 0),
        "Image": record.get("image_id") or "",
        "ImageName": record.get("image") or "",
        "Pod": (record.get("pod") or {}).get("id", ""),  # podman's: the pod's id or ""
        "Rootfs": (doc.get("container") or {}).get("rootfs", ""),
        "OCIRuntime": "runc",
        "ConmonPidFile": str(paths.conmon_pidfile),
        "PidFile": str(paths.pidfile),
        "Name": record["name"],
        "LogPath": record.get("log_path") or str(paths.log),
        "StaticDir": str(paths.record_dir),
        "OCIConfigPath": str(paths.bundle / "config.json"),
        "Mounts": mounts,
        "NetworkSettings": network_settings(network, running=seen.status in (
            "running", "paused"), aliases=[cid[:12]]),
        "Config": {
            "Hostname": config.get("hostname", ""),
            "Env": env,
            "Cmd": record.get("command") or [],
            "Image": record.get("image") or "",
            "WorkingDir": process.get("cwd", "/"),
            "User": f"{(process.get('user') or {}).get('uid', 0)}:"
                    f"{(process.get('user') or {}).get('gid', 0)}",
            "Tty": bool(record.get("tty")),
            "OpenStdin": bool(record.get("stdin")),
            "StopSignal": record.get("stop_signal") or "SIGTERM",
            "StopTimeout": record.get("stop_timeout", 10),
            "CreateCommand": None,
            "Labels": dict((doc.get("bundle") or {}).get("labels") or {}),
            **_health_config(record),
        },
        "HostConfig": {
            "AutoRemove": bool(record.get("auto_remove")),
            "LogConfig": {"Type": "k8s-file", "Path": record.get("log_path") or str(paths.log)},
            "NetworkMode": network.get("mode") or "",
            "ReadonlyRootfs": bool((config.get("root") or {}).get("readonly")),
            "CgroupParent": (config.get("linux") or {}).get("cgroupsPath", "").rsplit("/", 1)[0],
            "StopTimeout": record.get("stop_timeout", 10),
            "RestartPolicy": {"Name": (record.get("restart_policy") or {}).get("name", "no"),
                              "MaximumRetryCount":
                                  (record.get("restart_policy") or {}).get("max", 0)},
        },
    }


def _health_state(record: dict[str, Any]) -> dict[str, Any]:
    from podkit_runtime._health import inspect_health

    health = inspect_health(record)
    return {"Health": health} if health else {}


def _health_config(record: dict[str, Any]) -> dict[str, Any]:
    from podkit_runtime._health import inspect_config

    config = inspect_config(record)
    return {"Healthcheck": config} if config else {}


# The names the package exports.
list_containers = ps
inspect_container = inspect
