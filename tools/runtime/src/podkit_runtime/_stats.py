"""``stats --no-stream``: one sample of a container's cgroup v1 figures.

memory.usage_in_bytes / memory.limit_in_bytes (the limit capped at the host's RAM, as
podman shows it), cpuacct.usage over the time since start (podman's first sample),
pids.current, blkio service bytes, and the network bytes of the container's netns
(/proc/<pid>/net/dev, loopback excluded).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from podkit_common import errors
from podkit_runtime._top import cgroup_dir


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


def stats(roots: Any, ref: str) -> dict[str, Any]:
    """One podman-shaped stats record for a running container."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync

    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    if seen.status not in ("running", "paused") or not seen.pid:
        raise errors.Conflict(f"stats: container {record['name']} is {seen.status}",
                              hint="stats are for running containers")
    pid = seen.pid
    mem_dir, cpu_dir = cgroup_dir(pid, "memory"), cgroup_dir(pid, "cpuacct")
    usage = _read_int(mem_dir / "memory.usage_in_bytes")
    limit = min(_read_int(mem_dir / "memory.limit_in_bytes") or _host_memory(), _host_memory())
    cpu_ns = _read_int(cpu_dir / "cpuacct.usage")
    started = record.get("started_ts") or record.get("created_ts") or time.time()
    elapsed_ns = max(time.time() - started, 1e-9) * 1e9
    block_in, block_out = _blkio(cgroup_dir(pid, "blkio"))
    net_in, net_out = _net(pid)
    return {"changed": False, "ContainerID": cid, "Name": record["name"],
            "PIDs": _read_int(cgroup_dir(pid, "pids") / "pids.current"),
            "CPU": round(100.0 * cpu_ns / elapsed_ns, 2), "CPUNano": cpu_ns,
            "MemUsage": usage, "MemLimit": limit,
            "MemPerc": round(100.0 * usage / limit, 2) if limit else 0.0,
            "NetInput": net_in, "NetOutput": net_out,
            "BlockInput": block_in, "BlockOutput": block_out}


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


def stats_table(rows: list[dict[str, Any]]) -> str:
    """podman stats --no-stream's table (4.3's columns)."""
    header = ("ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET IO", "BLOCK IO",
              "PIDS", "CPU TIME", "AVG CPU %")
    table = [header] + [(
        r["ContainerID"][:12], r["Name"], f"{r['CPU']:.2f}%",
        f"{_human(r['MemUsage'])} / {_human(r['MemLimit'])}", f"{r['MemPerc']:.2f}%",
        f"{_human(r['NetInput'])} / {_human(r['NetOutput'])}",
        f"{_human(r['BlockInput'])} / {_human(r['BlockOutput'])}", str(r["PIDs"]),
        go_duration(r["CPUNano"]), f"{r['CPU']:.2f}%")
        for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True))
                   + "  " + r[-1] + "\n" for r in table)
