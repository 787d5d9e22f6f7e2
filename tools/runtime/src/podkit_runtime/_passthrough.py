"""``run`` with ``--log-driver passthrough`` (podman 4.3.1's way).

conmon gets the caller's stdin, stdout and stderr as its own and, with ``-l
passthrough``, hands them to ``runc create`` unchanged: the container writes straight
into the caller's fds. There is no attach socket, no ctl FIFO and no log, so an
attached run does not pump anything; it starts the container and waits for conmon's
exit file (podman's Attach returns at once for passthrough and ``run`` then waits).
Detached, the container keeps the fds it was given; podman prints no id then.
"""

from __future__ import annotations

import contextlib

from podkit_common import errors
from podkit_common.records import replace
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def run_passthrough(doc: dict[str, Any], roots: Roots, opts: Any,
                    stdio: tuple[int, int, int], detach: bool, before_start: Any = None,
                    on_exit: Any = None) -> dict[str, Any]:
    """create (conmon holding ``stdio``) + start; attached, until the container exits.
    ``before_start``/``on_exit``: as for ``_lifecycle.run``."""
    from podkit_runtime import _lifecycle, _state
    from podkit_runtime._run import finish_before_start
    from podkit_runtime._state import ContainerPaths

    opts = replace(opts, passthrough_stdio=tuple(stdio))
    if detach:
        created = _lifecycle.create(doc, roots, opts)
        doc = finish_before_start(roots, created, before_start, doc)
        started = _lifecycle.start(roots, created["container"]["id"])
        return {**doc, "changed": True, "state": started["state"]}
    created = _lifecycle.create(doc, roots, replace(opts, remove=False))
    cid = created["container"]["id"]
    paths = ContainerPaths(roots, cid)
    doc = finish_before_start(roots, created, before_start, doc)
    _lifecycle.start(roots, cid)
    record = _state.load_record(roots, cid)

    def over() -> bool:  # the exit file, or a conmon that died without writing it
        return paths.exit_file.exists() or _lifecycle._conmon_gone(record)

    while True:
        try:
            _lifecycle._wait_until(over, None)
            break
        except KeyboardInterrupt:
            # podman's sig-proxy: the container decides what ^C means.
            with contextlib.suppress(errors.PodkitError):
                _lifecycle.kill(roots, cid, "SIGINT")
    from podkit_runtime._attached_restart import wait_out_restarts

    restarted = wait_out_restarts(roots, cid, paths)  # podman: its restarts waited out
    if restarted is not None:
        return {**doc, "changed": True, "state": _lifecycle.state_section(*restarted)}
    if _state.read_exit_file(paths) is None:  # conmon killed: sync reconciles the state
        record, seen = _lifecycle.wait(roots, cid)
        if opts.remove:
            _lifecycle.remove(roots, cid, force=True, remove_volumes=True)
        return {**doc, "changed": True, "state": _lifecycle.state_section(record, seen)}
    if on_exit is not None:
        on_exit()
    record = _state.settle(roots, cid, _lifecycle._runc_delete)
    seen = _state.observe(roots, record)
    if opts.remove:
        _lifecycle._remove_now(roots, cid, remove_volumes=True)
    return {**doc, "changed": True, "state": _lifecycle.state_section(record, seen)}
