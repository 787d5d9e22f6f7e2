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


def move(pid: int, path: str, root: Path = CGROUP_ROOT) -> bool:
    """Put ``pid`` into the cgroup ``path`` in every hierarchy; True if it went into all."""
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
