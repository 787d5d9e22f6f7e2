"""Run a bundle to completion with runc (the conmon-managed lifecycle comes later)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from podkit_common import atomic, errors
from podkit_common.roots import Roots
from podkit_runtime._layout import RuntimeLayout
from podkit_runtime._runc import (
    delete_force,
    read_runc_error,
    run_foreground,
    runc_argv,
    runc_binary,
)
from podkit_runtime._spec import with_network


class ContainerCannotStart(errors.RuntimeFailure):
    """runc could not start the process; ``run_exit_code`` is podman's 126/127."""

    def __init__(self, message: str, run_exit_code: int) -> None:
        hint = ("check the command exists in the image" if run_exit_code == 127
                else "check the command is an executable file")
        super().__init__(message, hint=hint)
        self.run_exit_code = run_exit_code


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def run_bundle(doc: dict[str, Any], roots: Roots,
               stdio: tuple[int, int, int] = (0, 1, 2)) -> dict[str, Any]:
    """Run the container of ``doc`` in the foreground; return the document with ``state``.

    ``stdio`` are the fds the container's stdin, stdout and stderr are connected to.
    """
    cid = doc["container"]["id"]
    bundle = Path(doc["bundle"]["path"])
    if not (bundle / "config.json").is_file():
        raise errors.NotFound(f"no config.json in bundle {bundle}",
                              hint="run pod-runtime bundle first")
    if "network" in doc:
        config_path = bundle / "config.json"
        config = atomic.read_json(config_path)
        updated = with_network(config, doc["network"])
        if updated != config:
            atomic.write_json(config_path, updated)
    layout = RuntimeLayout(roots)
    layout.runc_root.mkdir(parents=True, exist_ok=True)
    runc = runc_binary()
    log = bundle / "runc.log"
    with contextlib.suppress(FileNotFoundError):
        log.unlink()
    started = _now()
    code = run_foreground(runc_argv(runc, layout.runc_root, log, "run", "--bundle", str(bundle),
                                    cid), stdio)
    finished = _now()
    failure = read_runc_error(log)
    delete_force(runc, layout.runc_root, log, cid)
    if failure is not None:
        if failure.not_found:
            raise ContainerCannotStart(failure.message, 127)
        if failure.permission_denied:
            raise ContainerCannotStart(failure.message, 126)
        raise errors.RuntimeFailure(f"runc run {cid[:12]}: {failure.message}")
    if code < 0:  # runc itself died of a signal
        code = 128 - code
    state = {"status": "exited", "exit_code": code, "started_at": started,
             "finished_at": finished, "pid": 0}
    return {**doc, "changed": True, "state": state}


def stdio_for_cli(interactive: bool) -> tuple[int, int, int]:
    """The stage executable keeps stdout for its JSON document: the container's output
    goes to stderr, and stdin only with -i."""
    stdin = 0 if interactive else os.open(os.devnull, os.O_RDONLY)
    return (stdin, 2, 2)
