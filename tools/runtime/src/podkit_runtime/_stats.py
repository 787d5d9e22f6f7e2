"""``stats``: podman's container statistics from the cgroup v1 files, one sample or a
stream of them.

Figures: memory.usage_in_bytes / memory.limit_in_bytes (the limit capped at the host's
RAM, as podman shows it), cpuacct.usage, pids.current, blkio service bytes, and the
network bytes of the container's netns (/proc/<pid>/net/dev, loopback excluded).

CPU % is podman 4.3.1's (libpod/stats_linux.go ``calculateCPUPercent``): the cpuacct
nanoseconds used since the previous sample over the wall-clock nanoseconds since it,
times 100 (so one busy core is 100 %). The first sample of a container has no previous
one and measures from the container's start, like podman; ``AvgCPU`` always does. A
cpuacct total smaller than the previous one means the container restarted in a new
cgroup: the previous sample is dropped. A container that is not running gives a row of
zeros, as podman's ``GetContainerStats`` does.

:func:`stream` yields one round of rows every ``interval`` seconds (podman's default 5);
with ``stream=False`` one round only (``--no-stream``). Without names, every running
container is sampled, a new list each round (podman queries them all and skips the
ones that are not running).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from podkit_common import errors
from podkit_runtime._top import cgroup_dir

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

#: podman stats --interval's default, in seconds
DEFAULT_INTERVAL = 5


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _blkio(path: Path) -> tuple[int, int]:
    read = write = 0
    try:
        lines = (path / "blkio.throttle.io_service_bytes").read_text().splitlines()
    except OSError:
        return 0, 0
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return read, write


def _net(pid: int) -> tuple[int, int]:
    rx = tx = 0
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = data.split()
        rx, tx = rx + int(fields[0]), tx + int(fields[8])
    return rx, tx


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cpu_percent(cpu_ns: int, previous_cpu_ns: int, now_ns: int, previous_ns: int) -> float:
    """podman's calculateCPUPercent (pure): CPU time used over wall time passed, in %."""
    cpu_delta, system_delta = cpu_ns - previous_cpu_ns, now_ns - previous_ns
    if system_delta > 0 and cpu_delta > 0:
        return 100.0 * cpu_delta / system_delta
    return 0.0


def _zero_row(cid: str, name: str) -> dict[str, Any]:
    return {"changed": False, "ContainerID": cid, "Name": name, "PIDs": 0, "CPU": 0.0,
            "AvgCPU": 0.0, "CPUNano": 0, "SystemNano": 0, "MemUsage": 0, "MemLimit": 0,
            "MemPerc": 0.0, "NetInput": 0, "NetOutput": 0, "BlockInput": 0,
            "BlockOutput": 0}


def stats(roots: Any, ref: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """One podman-shaped stats row for a container; ``previous`` is this container's
    row from the last round (None: measure from its start). Not running: zeros."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync

    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    if seen.status not in ("running", "paused") or not seen.pid:
        return _zero_row(cid, record["name"])
    pid = seen.pid
    try:
        mem_dir, cpu_dir = cgroup_dir(pid, "memory"), cgroup_dir(pid, "cpuacct")
    except (OSError, errors.NotFound):  # exited between the sync and now
        return _zero_row(cid, record["name"])
    usage = _read_int(mem_dir / "memory.usage_in_bytes")
    limit = min(_read_int(mem_dir / "memory.limit_in_bytes") or _host_memory(), _host_memory())
    cpu_ns = _read_int(cpu_dir / "cpuacct.usage")
    now_ns = time.time_ns()
    started = record.get("started_ts") or record.get("created_ts") or time.time()
    started_ns = int(started * 1e9)
    if previous is not None and (previous.get("CPUNano", 0) > cpu_ns
                                 or not previous.get("SystemNano")):
        previous = None  # restarted in a new cgroup since (or a row of zeros)
    if previous is None:
        previous = {"CPUNano": 0, "SystemNano": started_ns}
    block_in, block_out = _blkio(cgroup_dir(pid, "blkio"))
    net_in, net_out = _net(pid)
    return {"changed": False, "ContainerID": cid, "Name": record["name"],
            "PIDs": _read_int(cgroup_dir(pid, "pids") / "pids.current"),
            "CPU": round(cpu_percent(cpu_ns, previous["CPUNano"], now_ns,
                                     previous["SystemNano"]), 2),
            "AvgCPU": round(cpu_percent(cpu_ns, 0, now_ns, started_ns), 2),
            "CPUNano": cpu_ns, "SystemNano": now_ns,
            "MemUsage": usage, "MemLimit": limit,
            "MemPerc": round(100.0 * usage / limit, 2) if limit else 0.0,
            "NetInput": net_in, "NetOutput": net_out,
            "BlockInput": block_in, "BlockOutput": block_out}


def _running_ids(roots: Any) -> list[str]:
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync

    ids = []
    for record in _state.all_records(roots):
        try:
            _, seen = sync(roots, record["id"], record)
        except errors.NotFound:
            continue
        if seen.status in ("running", "paused"):
            ids.append(record["id"])
    return ids


def sample(roots: Any, refs: Sequence[str], previous: dict[str, dict[str, Any]]
           ) -> list[dict[str, Any]]:
    """One round: a row per named container (every running one when ``refs`` is empty);
    ``previous`` (container id -> last row) is updated in place for the next round."""
    rows = []
    for ref in refs or _running_ids(roots):
        try:
            row = stats(roots, ref, previous.get(ref))
        except errors.NotFound:
            if refs:
                raise
            continue  # removed while we looked: podman skips it too
        previous[ref] = row
        rows.append(row)
    return rows


def stream(roots: Any, refs: Sequence[str] = (), *, interval: float = DEFAULT_INTERVAL,
           stream: bool = True, all_: bool = False,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[list[dict[str, Any]]]:
    """podman stats: rounds of rows, one every ``interval`` seconds until the caller
    stops iterating (``stream=False``: one round). ``all_`` is podman 4.3.1's ``--all``,
    which it accepts but which changes nothing (only running containers have figures)."""
    if interval < 1:
        raise errors.UsageError("invalid interval, must be a positive number greater zero",
                                hint="--interval 1 or more (seconds)")
    if all_ and refs:
        raise errors.UsageError("--all, --latest and containers cannot be used together")
    previous: dict[str, dict[str, Any]] = {}
    while True:
        yield sample(roots, list(refs), previous)
        if not stream:
            return
        sleep(interval)


def _human(n: float) -> str:
    """go-units HumanSize (decimal, 4 significant digits), as podman stats prints."""
    units = ("B", "kB", "MB", "GB", "TB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n, i = n / 1000, i + 1
    return f"{n:.4g}{units[i]}"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String (``3.474ms``, ``1.5s``, ``2m3.1s``), as podman prints
    CPU TIME."""
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3f}".rstrip("0").rstrip(".") + "µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.6f}".rstrip("0").rstrip(".") + "ms"
    total_s = ns / 1e9
    h, rest = divmod(int(total_s), 3600)
    m = rest // 60
    sec = f"{total_s - h * 3600 - m * 60:.9f}".rstrip("0").rstrip(".")
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{sec}s"


def stats_table(rows: list[dict[str, Any]], no_trunc: bool = False) -> str:
    """podman stats' table (4.3's columns)."""
    header = ("ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET IO", "BLOCK IO",
              "PIDS", "CPU TIME", "AVG CPU %")
    table = [header] + [(
        r["ContainerID"] if no_trunc else r["ContainerID"][:12], r["Name"], f"{r['CPU']:.2f}%",
        f"{_human(r['MemUsage'])} / {_human(r['MemLimit'])}", f"{r['MemPerc']:.2f}%",
        f"{_human(r['NetInput'])} / {_human(r['NetOutput'])}",
        f"{_human(r['BlockInput'])} / {_human(r['BlockOutput'])}", str(r["PIDs"]),
        go_duration(r["CPUNano"]), f"{r.get('AvgCPU', r['CPU']):.2f}%")
        for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True))
                   + "  " + r[-1] + "\n" for r in table)


#: what podman writes before each round of the streamed table (goterm Clear, MoveCursor)
SCREEN_RESET = "\x1b[2J\x1b[1;1H"


def podman_json(rows: list[dict[str, Any]], no_trunc: bool = False) -> list[dict[str, str]]:
    """The rows as podman stats --format json prints them (its ``jstat``: strings)."""
    return [{"id": r["ContainerID"] if no_trunc else r["ContainerID"][:12],
             "name": r["Name"], "cpu_time": go_duration(r["CPUNano"]),
             "cpu_percent": f"{r['CPU']:.2f}%", "avg_cpu": f"{r.get('AvgCPU', 0.0):.2f}%",
             "mem_usage": f"{_human(r['MemUsage'])} / {_human(r['MemLimit'])}",
             "mem_percent": f"{r['MemPerc']:.2f}%",
             "net_io": f"{_human(r['NetInput'])} / {_human(r['NetOutput'])}",
             "block_io": f"{_human(r['BlockInput'])} / {_human(r['BlockOutput'])}",
             "pids": str(r["PIDs"])} for r in rows]


#: podman stats' header overrides for its template fields (cmd/podman/containers/stats.go)
HEADER_OVERRIDES = {"ID": "ID", "UpTime": "CPU TIME", "CPUPerc": "CPU %",
                    "AVGCPU": "Avg CPU %", "MemUsage": "MEM USAGE / LIMIT",
                    "MemUsageBytes": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                    "NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDS": "PIDS"}
#: libpod define.ContainerStats' fields, which podman's headers start from
STATS_FIELDS = ("AvgCPU", "ContainerID", "Name", "PerCPU", "CPU", "CPUNano",
                "CPUSystemNano", "SystemNano", "MemUsage", "MemLimit", "MemPerc",
                "NetInput", "NetOutput", "BlockInput", "BlockOutput", "PIDs", "UpTime",
                "Duration")


def template_headers() -> dict[str, str]:
    """podman's report.Headers(ContainerStats{}, overrides) for ``table`` templates."""
    from podkit_common.gotemplate import headers_for

    return headers_for(STATS_FIELDS, HEADER_OVERRIDES)


def _bytes_size(n: float) -> str:
    """go-units BytesSize (binary, 4 significant digits)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.4g}{units[i]}"


def template_row(r: dict[str, Any], no_trunc: bool = False) -> dict[str, Any]:
    """A row as podman's ``--format`` templates see it: ContainerStats' fields plus the
    reporter's methods (``{{.CPUPerc}}``, ``{{.MemUsage}}``, ``{{.NetIO}}``, ...)."""
    j = podman_json([r], no_trunc)[0]
    return {**{k: v for k, v in r.items() if k != "changed"},
            "ID": j["id"], "CPUPerc": j["cpu_percent"], "AVGCPU": j["avg_cpu"],
            "MemUsage": j["mem_usage"], "MemPerc": j["mem_percent"], "NetIO": j["net_io"],
            "BlockIO": j["block_io"], "PIDS": j["pids"], "UpTime": j["cpu_time"],
            "Up": j["cpu_time"],
            "MemUsageBytes": f"{_bytes_size(r['MemUsage'])} / {_bytes_size(r['MemLimit'])}"}
