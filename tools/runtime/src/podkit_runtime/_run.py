"""Run a bundle to completion: create + start under conmon (``_lifecycle``), attached."""

from __future__ import annotations

import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.roots import Roots
from podkit_runtime._spec import with_network

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


class ContainerCannotStart(errors.RuntimeFailure):
    """runc could not start the process; ``run_exit_code`` is podman's 126/127."""

    def __init__(self, message: str, run_exit_code: int) -> None:
        hint = ("check the command exists in the image" if run_exit_code == 127
                else "check the command is an executable file")
        super().__init__(message, hint=hint)
        self.run_exit_code = run_exit_code


def prepare_bundle(doc: dict[str, Any]) -> Path:
    """Check the bundle of ``doc`` and apply its ``network`` section to it; its path."""
    cid = doc["container"]["id"]
    bundle = Path(doc["bundle"]["path"])
    if not (bundle / "config.json").is_file():
        raise errors.NotFound(f"no config.json in bundle {bundle}",
                              hint="run pod-runtime bundle first")
    if "network" in doc:
        config_path = bundle / "config.json"
        config = atomic.read_json(config_path)
        updated = with_network(config, doc["network"])
        if not _same_config(updated, config):
            from podkit_runtime._bundle import write_config

            write_config(config_path, updated)
        from podkit_runtime._netfiles import apply_network_files

        apply_network_files(bundle, doc["network"], config.get("hostname") or cid[:12])
    return bundle


def _same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal configs, the order of ``linux.namespaces`` aside (runc joins and creates
    namespaces in its own order): with_network moves the network entry to the end,
    which alone is no reason to write config.json again."""
    if a == b:
        return True
    la, lb = a.get("linux") or {}, b.get("linux") or {}
    if {**a, "linux": None} != {**b, "linux": None} or \
            {**la, "namespaces": None} != {**lb, "namespaces": None}:
        return False

    def key(ns: dict[str, Any]) -> str:
        return f"{ns.get('type')}\0{ns.get('path', '')}"

    na, nb = la.get("namespaces") or [], lb.get("namespaces") or []
    return len(na) == len(nb) and sorted(na, key=key) == sorted(nb, key=key)


def _is_devnull(fd: int) -> bool:
    try:
        st, null = os.fstat(fd), os.stat(os.devnull)
    except OSError:
        return True
    return (st.st_rdev, st.st_mode & 0o170000) == (null.st_rdev, null.st_mode & 0o170000)


def run_bundle(doc: dict[str, Any], roots: Roots,
               stdio: tuple[int, int, int] = (0, 1, 2), *,
               options: Any = None, detach: bool = False,
               before_start: Any = None, on_exit: Any = None) -> dict[str, Any]:
    """Run the container of ``doc`` under conmon; return the document with ``state``.

    ``stdio`` are the fds the container's stdin, stdout and stderr are connected to
    (stdin is passed through unless it is /dev/null). ``options`` are
    ``_lifecycle.CreateOptions``; ``detach`` returns once the container runs.

    ``before_start(created_doc) -> doc | None`` runs between ``runc create`` and ``runc
    start``; a returned document whose ``network`` section changed (CNI ADD finished
    while runc created the container) goes into the bundle's hosts/resolv.conf and the
    record. If it raises, the created container stays for the caller to remove.
    ``on_exit()`` runs (attached) as soon as the exit file shows the container exited,
    before runc delete and the record are settled.
    """
    from podkit_common.records import replace
    from podkit_runtime._lifecycle import CreateOptions, run

    # _lifecycle.create prepares the bundle (checks it, applies the network section)
    opts = options or CreateOptions()
    if not detach and not opts.stdin and not _is_devnull(stdio[0]):
        opts = replace(opts, stdin=True)
    return run(doc, roots, opts, stdio=stdio, detach=detach, before_start=before_start,
               on_exit=on_exit)


#: what an attached run needs once runc created the container (``_lifecycle.run``)
ATTACHED_TAIL = ("selectors", "termios", "tty", "podkit_runtime._attach",
                 "podkit_runtime._tty", "podkit_runtime._attached_restart")


def prepare_attached() -> None:
    """Import what an attached run needs after ``runc create`` while runc works (the
    hook ``_conmon.spawn_conmon`` calls): the main thread would only wait there."""
    import importlib

    for name in ATTACHED_TAIL:
        importlib.import_module(name)


def finish_before_start(roots: Roots, created: dict[str, Any], before_start: Any,
                        doc: dict[str, Any]) -> dict[str, Any]:
    """Call ``before_start`` (see :func:`run_bundle`); the document to go on with."""
    if before_start is None:
        return doc
    updated = before_start(created)
    if not updated or updated.get("network") == created.get("network"):
        return doc
    if created["bundle"].get("pod") and (created.get("network") or {}).get("mode") == \
            "container":  # a pod member: the infra's network, joined at create (_pod_members)
        return {**doc, "network": created["network"]}
    from podkit_runtime import _state
    from podkit_runtime._netfiles import apply_network_files

    cid = created["container"]["id"]
    bundle = Path(created["bundle"]["path"])
    hostname = atomic.read_json(bundle / "config.json").get("hostname") or cid[:12]
    apply_network_files(bundle, updated["network"], hostname)  # in place: bind-mounted
    with _state.lock(roots, cid):
        record = _state.load_record(roots, cid)
        record["doc"] = {**record["doc"], "network": updated["network"]}
        _state.save_record(roots, record)
    return {**doc, "network": updated["network"]}


def stdio_for_cli(interactive: bool) -> tuple[int, int, int]:
    """The stage executable keeps stdout for its JSON document: the container's output
    goes to stderr, and stdin only with -i."""
    stdin = 0 if interactive else os.open(os.devnull, os.O_RDONLY)
    return (stdin, 2, 2)
