"""Namespaces: podman's --pid/--ipc/--uts/--cgroupns modes, and joining another
container's namespaces by path (what pods need).

A container gets new pid, mount, ipc, uts, network and cgroup namespaces. The cgroup
namespace is private by default even on cgroups v1, where podman 4.3.1 keeps the
host's: a private one hides the host's cgroup tree from the container (a deliberate
difference, listed in the side-by-side test). The network namespace is settled by
pod-netsetup's section at run time (``_spec.with_network``).

Pure: :func:`parse_mode`, :func:`namespace_list`. I/O: :func:`container_namespaces`
(runc state -> /proc/PID/ns/*) and :func:`resolve_modes`.
"""

from __future__ import annotations

import os
from pathlib import Path

from podkit_common import errors
from podkit_common.records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: OCI namespace type -> the file under /proc/PID/ns.
PROC_NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "cgroup": "cgroup", "user": "user"}
DEFAULT_PRIVATE = ("pid", "network", "ipc", "uts", "mount", "cgroup")


@record(frozen=True)
class NamespaceMode:
    """One namespace's mode: "private", "host", "container" (with ``target``) or "path"."""

    kind: str = "private"
    target: str = ""


def parse_mode(value: str | None, option: str) -> NamespaceMode:
    """host | private | container:ID | ns:PATH (podman's spelling)."""
    if value is None or value in ("", "private"):
        return NamespaceMode()
    if value == "host":
        return NamespaceMode("host")
    kind, sep, target = value.partition(":")
    if sep and target and kind == "container":
        return NamespaceMode("container", target)
    if sep and target and kind in ("ns", "path"):
        if not target.startswith("/"):
            raise errors.UsageError(f"invalid {option} {value!r}: the path must be absolute",
                                    hint=f"use {option} ns:/proc/PID/ns/...")
        return NamespaceMode("path", target)
    raise errors.UsageError(f"invalid {option} {value!r}",
                            hint=f"use {option} host|private|container:ID|ns:PATH")


def namespace_list(paths: dict[str, str | None]) -> list[dict[str, Any]]:
    """linux.namespaces from {type: None (new) | path (join)}; types absent share the
    host's."""
    out: list[dict[str, Any]] = []
    for ns_type in DEFAULT_PRIVATE:
        if ns_type not in paths:
            continue
        path = paths[ns_type]
        out.append({"type": ns_type, **({"path": path} if path else {})})
    return out


def container_namespaces(runc_root: Path, container: str) -> dict[str, str]:
    """The namespace paths (/proc/PID/ns/*) of a running container, from runc's state.

    ``container`` is a full id or an unambiguous prefix of one.
    """
    import subprocess

    from podkit_common.jsonio import loads
    from podkit_runtime._runc import runc_binary

    cid = _full_id(runc_root, container)
    proc = subprocess.run([runc_binary(), "--root", str(runc_root), "state", cid],
                          capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise errors.NotFound(f"container {container} is not known to runc: "
                              f"{proc.stderr.decode(errors='replace').strip()}",
                              hint="is it running? (pod-runtime run or start it first)")
    state = loads(proc.stdout, what="runc state")
    pid = int(state.get("pid") or 0)
    if state.get("status") not in ("running", "created", "paused") or pid <= 0:
        raise errors.Conflict(f"container {container} is {state.get('status')}, so it has no "
                              "namespaces to join", hint="start it first")
    return {t: f"/proc/{pid}/ns/{f}" for t, f in PROC_NS.items()
            if os.path.exists(f"/proc/{pid}/ns/{f}")}


def _full_id(runc_root: Path, prefix: str) -> str:
    try:
        names = [p.name for p in runc_root.iterdir() if p.is_dir()]
    except FileNotFoundError:
        names = []
    if prefix in names:
        return prefix
    found = [n for n in names if n.startswith(prefix)]
    if len(found) != 1:
        what = "no container" if not found else "more than one container"
        raise errors.NotFound(f"{what} with id {prefix!r} is running under {runc_root}",
                              hint="give the container's full id")
    return found[0]


def resolve_modes(modes: dict[str, NamespaceMode], runc_root: Path) -> dict[str, str | None]:
    """{type: None | path} for every namespace not shared with the host (I/O: looks up
    other containers and checks ns: paths exist)."""
    out: dict[str, str | None] = {}
    joined: dict[str, dict[str, str]] = {}
    for ns_type in DEFAULT_PRIVATE:
        mode = modes.get(ns_type, NamespaceMode())
        if mode.kind == "host":
            continue
        if mode.kind == "private":
            out[ns_type] = None
        elif mode.kind == "path":
            if not os.path.exists(mode.target):
                raise errors.NotFound(f"{ns_type} namespace {mode.target} does not exist",
                                      hint="give the path of a namespace file, e.g. "
                                           "/proc/PID/ns/" + PROC_NS[ns_type])
            out[ns_type] = mode.target
        else:
            if mode.target not in joined:
                joined[mode.target] = container_namespaces(runc_root, mode.target)
            if ns_type not in joined[mode.target]:
                raise errors.NotFound(f"container {mode.target} has no {ns_type} namespace "
                                      "to join", hint="is its process still running?")
            out[ns_type] = joined[mode.target][ns_type]
    return out
