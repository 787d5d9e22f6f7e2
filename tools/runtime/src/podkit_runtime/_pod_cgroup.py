"""The pod cgroup (cgroupfs manager): ``<parent>/<podid>``, made at ``pod create`` with
the pod-level limits, parent of the infra's and every member's cgroup, removed with the
pod. podman does the same (libpod/runtime_pod_linux.go) with ``/libpod_parent``.

Plan apart from apply: :func:`limit_files` says what to write (pure); :func:`create` and
:func:`remove` touch /sys/fs/cgroup. Works on cgroups v1 (one directory per controller)
and v2 (one unified tree).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

from podkit_common import errors

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: v1 controllers a container's cgroup lives in (runc makes the same set)
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices",
                  "freezer")


def check_limits(cpus: str | None, memory: str | None) -> None:
    """Syntax of --cpus/--memory, before anything is made (UsageError)."""
    limit_files(cpus, memory, unified=False)


def limit_files(cpus: str | None, memory: str | None, *, unified: bool
                ) -> dict[str, dict[str, str]]:
    """{controller: {file: value}} for the pod's limits (pure); v2 uses "" as controller."""
    from podkit_runtime._parse_units import parse_cpus, parse_size

    out: dict[str, dict[str, str]] = {}
    if cpus is not None:
        quota, period = parse_cpus(cpus)
        if unified:
            out.setdefault("", {})["cpu.max"] = f"{quota} {period}"
        else:
            out["cpu"] = {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": str(quota)}
    if memory is not None:
        size = parse_size(memory, "memory")
        if size < 6 * 1024 * 1024:
            raise errors.UsageError("minimum memory limit allowed is 6MB",
                                    hint="give --memory 6m or more")
        if unified:
            out.setdefault("", {})["memory.max"] = str(size)
        else:
            out["memory"] = {"memory.limit_in_bytes": str(size)}
    return out


def _unified() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def _dirs(path: str) -> list[tuple[str, Path]]:
    rel = path.strip("/")
    if _unified():
        return [("", CGROUP_ROOT / rel)]
    out = []
    seen: set[str] = set()
    for c in V1_CONTROLLERS:
        base = CGROUP_ROOT / c
        if not base.is_dir():
            continue
        real = os.path.realpath(base)  # cpu and cpuacct may be one hierarchy
        if real in seen:
            continue
        seen.add(real)
        out.append((c, base / rel))
    return out


def _copy_cpuset(directory: Path) -> None:
    """A new v1 cpuset cgroup starts empty: no task can join it until cpus/mems are set."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        f = directory / name
        with contextlib.suppress(OSError):
            if not f.read_text().strip():
                f.write_text((directory.parent / name).read_text().strip() or "0")


def create(path: str, cpus: str | None, memory: str | None) -> None:
    """Make the pod cgroup with its limits (an existing one is kept and updated)."""
    unified = _unified()
    files = limit_files(cpus, memory, unified=unified)
    made: list[Path] = []
    try:
        for controller, directory in _dirs(path):
            cur = CGROUP_ROOT / controller if controller else CGROUP_ROOT
            for part in directory.relative_to(cur).parts:
                cur = cur / part
                if not cur.exists():
                    cur.mkdir()
                    made.append(cur)
                    if controller == "cpuset":
                        _copy_cpuset(cur)
            if unified:
                _enable_controllers(directory, files.get("", {}))
            for name, value in files.get(controller, {}).items():
                (directory / name).write_text(value)
    except OSError as exc:
        for d in reversed(made):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise errors.from_os_error(exc, f"create the pod cgroup {path}") from None


def _enable_controllers(directory: Path, files: dict[str, str]) -> None:
    """v2: a limit file exists only where the parent enabled its controller."""
    wanted = sorted({name.split(".")[0] for name in files})
    if not wanted:
        return
    rel = directory.relative_to(CGROUP_ROOT).parts
    cur = CGROUP_ROOT
    for part in rel:
        with contextlib.suppress(OSError):
            (cur / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        cur = cur / part


def _every_hierarchy(path: str) -> list[Path]:
    """The path in every mounted hierarchy: runc makes its containers' parents in all of
    them (name=systemd and the empty v2 one of a hybrid host too)."""
    rel = path.strip("/")
    if _unified():
        return [CGROUP_ROOT / rel]
    out, seen = [], set()
    for base in sorted(CGROUP_ROOT.iterdir()):
        real = os.path.realpath(base)
        if base.is_dir() and real not in seen:
            seen.add(real)
            out.append(base / rel)
    return out


def remove(path: str, wait: float = 5.0) -> None:
    """Remove the pod cgroup (its children, the containers' cgroups, are runc's and gone
    by now; a dying task may hold one for a moment, hence the short retry)."""
    deadline = time.monotonic() + wait
    for directory in _every_hierarchy(path):
        while True:
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise errors.from_os_error(exc, f"remove the pod cgroup {directory}") \
                        from None
                for child in [p for p in directory.iterdir() if p.is_dir()]:
                    with contextlib.suppress(OSError):
                        child.rmdir()
                time.sleep(0.05)


def exists(path: str) -> bool:
    return any(d.is_dir() for _c, d in _dirs(path))


def memory_limit(path: str) -> int | None:
    """The memory limit written to the pod cgroup (None: none set or no cgroup)."""
    for controller, directory in _dirs(path):
        name = "memory.max" if controller == "" else "memory.limit_in_bytes"
        if controller in ("", "memory"):
            try:
                text = (directory / name).read_text().strip()
            except OSError:
                return None
            return None if text == "max" else int(text)
    return None
