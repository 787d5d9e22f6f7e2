"""``top``: the container's processes, read from /proc for every pid in its cgroup.

podman runs ``ps`` inside the container with descriptors; we read the same figures from
the host's /proc (no binary in the image needed): podman's default columns USER PID
PPID %CPU ELAPSED TTY TIME COMMAND, pids as the container sees them (NSpid), users
named from the container's own /etc/passwd.
"""

from __future__ import annotations

import os
from pathlib import Path

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

COLUMNS = ("USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_dir(pid: int, controller: str = "pids") -> Path:
    """The cgroup v1 directory of ``pid`` for ``controller``."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/")
    raise errors.NotFound(f"process {pid} has no {controller} cgroup")


def container_pids(pid: int) -> list[int]:
    """Every pid in the cgroup of the container whose init is ``pid``."""
    procs = (cgroup_dir(pid) / "cgroup.procs").read_text().split()
    return sorted(int(p) for p in procs)


def _users(rootfs: Path | None) -> dict[int, str]:
    users: dict[int, str] = {}
    if rootfs is None:
        return users
    try:
        # A symlinked /etc/passwd in the rootfs is read as a plain file only.
        fd = os.open(rootfs / "etc/passwd", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
    except OSError:
        return users
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2].isdigit():
            users.setdefault(int(parts[2]), parts[0])
    return users


def _duration(seconds: float) -> str:
    """Go's time.Duration text as podman prints it (``7.493s``, ``1m2s``)."""
    if seconds < 60:
        return f"{seconds:.9g}s".replace(".000000000", "") if seconds else "0s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return (f"{h}h" if h else "") + f"{m}m{s}s"


def _tty(tty_nr: int) -> str:
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if major == 136:
        return f"pts/{minor}"
    return "?" if not tty_nr else f"tty{minor}"


def process_row(pid: int, users: dict[int, str]) -> dict[str, Any]:
    """One process's columns from /proc/<pid> (raises OSError when it is gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    tty_nr, utime, stime, start = int(fields[4]), int(fields[11]), int(fields[12]), int(fields[19])
    status = Path(f"/proc/{pid}/status").read_text()
    info = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    nspid = int(info["NSpid"].split()[-1])
    ppid_host = int(info["PPid"])
    uid = int(info["Uid"].split()[1])  # effective, like ps's USER
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    comm = (argv and " ".join(argv)) or f"[{stat[stat.index('(') + 1:stat.rindex(')')]}]"
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    elapsed = max(uptime - start / ticks, 0.0)
    cpu = (utime + stime) / ticks
    return {"USER": users.get(uid, str(uid)), "PID": nspid, "PPID": ppid_host,
            "%CPU": round(100.0 * cpu / elapsed, 3) if elapsed else 0.0,
            "ELAPSED": _duration(round(elapsed, 3)), "TTY": _tty(tty_nr),
            "TIME": _duration(int(cpu)), "COMMAND": comm, "host_pid": pid}


def top(roots: Any, ref: str) -> dict[str, Any]:
    """The processes of a running container (podman top's default columns)."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync

    cid = _state.resolve(roots, ref)
    record, seen = sync(roots, cid)
    if seen.status not in ("running", "paused") or not seen.pid:
        raise errors.Conflict(f"top can only be used on running containers: "
                              f"{record['name']} is {seen.status}", hint="start it first")
    rootfs = ((record.get("doc") or {}).get("container") or {}).get("rootfs")
    users = _users(Path(rootfs) if rootfs else None)
    rows = []
    nspid_of = {}
    for pid in container_pids(seen.pid):
        try:
            row = process_row(pid, users)
        except (OSError, KeyError, ValueError, IndexError):
            continue  # exited while we looked
        rows.append(row)
        nspid_of[pid] = row["PID"]
    for row in rows:  # the parent as the container sees it; 0 for init's (outside) parent
        row["PPID"] = nspid_of.get(row["PPID"], 0)
    rows.sort(key=lambda r: r["PID"])
    return {"changed": False, "container": {"id": cid, "name": record["name"]},
            "processes": [{k: v for k, v in r.items() if k != "host_pid"} for r in rows]}


def top_table(doc: dict[str, Any]) -> str:
    """podman top's table."""
    rows = [COLUMNS] + [tuple(str(p[c]) for c in COLUMNS) for p in doc["processes"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True))
                   + "  " + r[-1] + "\n" for r in rows)


def parse_port_spec(spec: str) -> tuple[int, str]:
    """``80`` or ``80/tcp`` -> (80, "tcp") (pure; podman port's rules)."""
    fields = spec.split("/")
    if len(fields) > 2:
        raise errors.UsageError(f"port formats are port/protocol. '{spec}' is invalid")
    number, proto = fields[0], fields[1] if len(fields) == 2 else "tcp"
    if not number.isdigit() or not 0 <= int(number) <= 65535:
        raise errors.UsageError(f"invalid port {spec!r}", hint="PORT or PORT/PROTOCOL")
    return int(number), proto


def port_lines(record: dict[str, Any], spec: str | None = None) -> list[str]:
    """podman port's lines from the network section: ``80/tcp -> 0.0.0.0:8080`` for
    each mapping (ranges expanded), or, for one ``spec`` (``80/tcp``), the host
    address it is published on (``0.0.0.0:8080``)."""
    network = (record.get("doc") or {}).get("network") or {}
    wanted = parse_port_spec(spec) if spec else None
    out = []
    for p in network.get("ports") or []:
        host_ip = p.get("hostIP") or "0.0.0.0"
        span = int(p.get("range") or 1)
        for proto in str(p.get("protocol") or "tcp").split(","):
            if wanted is None:
                out += [f"{p['containerPort'] + i}/{proto} -> {host_ip}:{p['hostPort'] + i}"
                        for i in range(span)]
            elif proto == wanted[1] and 0 <= wanted[0] - p["containerPort"] < span:
                out.append(f"{host_ip}:{p['hostPort'] + wanted[0] - p['containerPort']}")
    if spec and not out:
        raise errors.NotFound(f'failed to find published port "{spec}"',
                              hint="port CONTAINER lists what is published")
    return out[:1] if spec else out


def port(roots: Any, ref: str | None, spec: str | None = None, *,
         all_: bool = False) -> list[str]:
    """The published ports of a container (podman port [--all] [CONTAINER [PORT]]);
    with ``all_`` every running container's, each line prefixed by its short id."""
    from podkit_runtime import _state

    if not all_:
        if not ref:
            raise errors.UsageError("you must supply a running container name or id")
        return port_lines(_state.load_record(roots, _state.resolve(roots, ref)), spec)
    from podkit_runtime._lifecycle import sync

    out = []
    for record in _state.all_records(roots):
        try:
            record, seen = sync(roots, record["id"], record)
        except errors.NotFound:
            continue
        if seen.status == "running":
            out += [f"{record['id'][:12]}\t{line}" for line in port_lines(record)]
    return out
