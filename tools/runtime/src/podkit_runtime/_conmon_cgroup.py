"""conmon's own cgroup, podman's way with the cgroupfs manager.

podman 4.3.1 (``oci_conmon_linux.go`` moveConmonToCgroupAndSignal) puts conmon into
``<CgroupParent>/conmon`` before it sends the start byte, so conmon and whatever it
forks (runc, the exit command) are accounted next to the containers rather than left
in the caller's cgroup (a CI job's, a shell's, an Ansible task's), and outlive it
there. With cgroup v1 that is one directory per mounted controller, each created if
missing (cpuset's cpus/mems copied from the parent, or the kernel refuses tasks) and
the pid written to its ``cgroup.procs``; with cgroup v2 one directory. Named
hierarchies (``name=systemd``) are left alone, as podman does. Like podman it is best
effort: a failure leaves conmon where it was.

The directory is shared by every container with the same parent, so nothing owns it:
:func:`release` removes it whenever it is empty (``rm`` calls it), and the kernel's
refusal to remove a non-empty cgroup (EBUSY) is what makes that safe; a create racing
with the removal makes the directory again.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")


def conmon_cgroup(cgroups_path: str | None) -> str | None:
    """``<parent>/conmon`` for a container whose config.json has ``cgroupsPath`` (pure);
    None when it is not a cgroupfs path (systemd's ``slice:prefix:name``) or empty."""
    if not cgroups_path or ":" in cgroups_path or not cgroups_path.startswith("/"):
        return None
    return posixpath.join(posixpath.dirname(cgroups_path.rstrip("/")), "conmon")


def for_bundle(bundle: Path) -> str | None:
    """The conmon cgroup for the bundle's config.json (None if unreadable)."""
    from podkit_common import atomic, errors

    try:
        config = atomic.read_json(bundle / "config.json")
    except (OSError, errors.PodkitError):  # best effort, like podman
        return None
    return conmon_cgroup((config.get("linux") or {}).get("cgroupsPath"))


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    """The mount points to place a process in: the unified root (cgroup v2), or each
    mounted v1 controller's directory (co-mounted ones once)."""
    if (root / "cgroup.controllers").exists():
        return [root]
    seen: set[str] = set()
    out: list[Path] = []
    try:
        lines = Path("/proc/cgroups").read_text().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[1] == "0" or fields[3] != "1":
            continue  # not mounted in a v1 hierarchy, or disabled
        path = root / fields[0]
        with contextlib.suppress(OSError):
            real = os.path.realpath(path)
            if real not in seen and (path / "cgroup.procs").exists():
                seen.add(real)
                out.append(path)
    return out


def _fill_cpuset(hierarchy: Path, directory: Path) -> None:
    """A new v1 cpuset cgroup has empty cpus/mems and takes no task (nor a child's
    values) until they are set: copy them down from the hierarchy's root, each level
    from its parent."""
    levels = [directory, *directory.parents]
    chain = reversed(levels[:levels.index(hierarchy)])
    for level in chain:
        for name in ("cpuset.cpus", "cpuset.mems"):
            own = level / name
            if own.exists() and not own.read_text().strip():
                own.write_text((level.parent / name).read_text())


# -- keeping the first move cheap ---------------------------------------------------------
#
# Moving a process between cgroups takes the kernel's global cgroup_threadgroup_rwsem
# for writing. That percpu rwsem is kept in a fast mode for its readers (every fork and
# exit on the machine) and must first wait out an RCU grace period to leave it: the
# first cgroup.procs write after a quiet spell blocks ~6-12 ms here, while writes within
# a grace period of an earlier one return in ~0.2 ms (measured on this 6.18 kernel).
# podman pays that wait before every container's start, between spawning conmon and
# letting it run `runc create`. podkit pays it in the background instead: warm() starts
# a thread that moves this process into the cgroup it already is in (a no-op move,
# ``0`` written to its own cgroup.procs in one hierarchy) and repeats it every few
# milliseconds, so the lock is already out of its fast mode when conmon is moved; it
# stops after the moves it was told to expect (or a second at most). A failed write
# (no cgroupfs, no permission) ends it silently: moves then cost what they did.

_WARM_TICK = 0.004  # seconds between no-op moves: well inside one grace period
_WARM_MAX = 1.0  # seconds a warmer runs at most
_warm: dict[str, Any] = {"deadline": 0.0, "moves": 0, "running": False}


def _own_procs(root: Path) -> str | None:
    """This process's cgroup.procs in one hierarchy (the unified one with cgroup v2)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if (root / "cgroup.controllers").exists():
        rel = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
        return None if rel is None else f"{root}{rel.rstrip('/')}/cgroup.procs"
    for line in lines:
        _, names, rel = line.split(":", 2)
        if names and not names.startswith("name="):
            return f"{root}/{names}{rel.rstrip('/')}/cgroup.procs"
    return None


def warm(moves: int = 1, root: Path = CGROUP_ROOT) -> None:
    """Keep the next ``moves`` conmon moves off the grace-period wait (see above)."""
    import time

    if os.environ.get("PODKIT_NO_CGROUP_WARM") == "1":
        return
    _warm["moves"] = max(_warm["moves"], moves)  # nested callers: the outermost counts
    _warm["deadline"] = time.monotonic() + _WARM_MAX
    if _warm["running"]:
        return
    procs = _own_procs(root)
    if procs is None:
        return
    import _thread

    _warm["running"] = True

    def loop() -> None:
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            _warm["running"] = False
            return
        try:
            while _warm["moves"] > 0 and time.monotonic() < _warm["deadline"]:
                os.write(fd, b"0")
                time.sleep(_WARM_TICK)
        except OSError:
            pass
        finally:
            os.close(fd)
            _warm["running"] = False

    _thread.start_new_thread(loop, ())


def _moved() -> None:
    if _warm["moves"] > 0:
        _warm["moves"] -= 1


def move(pid: int, path: str, root: Path = CGROUP_ROOT) -> bool:
    """Put ``pid`` into the cgroup ``path`` in every hierarchy; True if it went into all."""
    try:
        return _move(pid, path, root)
    finally:
        _moved()


def _move(pid: int, path: str, root: Path) -> bool:
    ok = True
    for hierarchy in hierarchies(root):
        directory = hierarchy / path.lstrip("/")
        for _ in range(3):  # a concurrent release may remove the directory in between
            try:
                directory.mkdir(parents=True, exist_ok=True)
                if hierarchy.name == "cpuset":
                    _fill_cpuset(hierarchy, directory)
                (directory / "cgroup.procs").write_text(str(pid))
                break
            except FileNotFoundError:
                continue
            except OSError:
                ok = False
                break
        else:
            ok = False
    return ok


def release(path: str | None, root: Path = CGROUP_ROOT) -> None:
    """Remove the conmon cgroup ``path`` where it is empty (EBUSY otherwise: kept)."""
    if not path:
        return
    for hierarchy in hierarchies(root):
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy / path.lstrip("/"))


def release_container(bundle: Path, root: Path = CGROUP_ROOT) -> None:
    """After ``runc delete``: remove the container's own cgroup (config.json's
    ``cgroupsPath``) wherever runc left it, named hierarchies included. runc removes it
    itself unless its state was lost (a wiped runroot, a killed runc); an empty cgroup
    left behind would otherwise stay until reboot. Never a non-empty one (EBUSY)."""
    from podkit_common import atomic, errors

    try:
        config = atomic.read_json(bundle / "config.json")
    except (OSError, errors.PodkitError):
        return
    release_container_path((config.get("linux") or {}).get("cgroupsPath") or "", root)


def release_container_path(path: str, root: Path = CGROUP_ROOT) -> None:
    """:func:`release_container` for the ``cgroupsPath`` read from the bundle earlier."""
    if not path.startswith("/") or ":" in path or path.rstrip("/") == "":
        return
    try:
        mounts = [root] if (root / "cgroup.controllers").exists() else list(root.iterdir())
    except OSError:
        return
    for hierarchy in mounts:
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy / path.strip("/"))


def of_process(pid: int) -> dict[str, str]:
    """controller(s) -> cgroup path of ``pid``, from /proc/<pid>/cgroup."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        out[names or "unified"] = path
    return out
