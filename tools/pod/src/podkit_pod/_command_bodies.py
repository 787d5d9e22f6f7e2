"""Bodies of hot `pod` commands, typer-free: each typer command (its declaration stays
in its cli_* module) and the fast argv path (fast_path) call the same function with the
same parameters, the command's keyword arguments by name."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def ps_body(obj: Any, p: dict[str, Any]) -> None:
    """List containers as `pod ps` does; ``p`` are cli_ps.ps_command's parameters.
    With ``watch`` > 0, podman's --watch: clear the screen and list again every so many
    seconds until SIGINT ends the process (by the signal, as podman's does)."""
    if p.get("watch", 0) > 0:
        _watch(obj, p)
    else:
        _ps_once(obj, p)


def _watch(obj: Any, p: dict[str, Any]) -> None:
    import signal
    import time

    from podkit_common import errors

    if p["latest"]:
        raise errors.UsageError("the watch and latest flags cannot be used together")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    while True:
        sys.stdout.write("\x1b[2J\x1b[1;1H")  # goterm's Clear and MoveCursor(1, 1)
        _ps_once(obj, p)
        sys.stdout.flush()
        time.sleep(p["watch"])


def _ps_once(obj: Any, p: dict[str, Any]) -> None:
    from podkit_pod._ps import PsOptions, ps_rows
    from podkit_pod._ps_format import needs_mounts, render

    rows = ps_rows(obj.roots, PsOptions(all=p["all_"], filters=tuple(p["filter_"] or ()),
                                        last=p["last"], latest=p["latest"], sort=p["sort"],
                                        mounts=needs_mounts(p["fmt"]),
                                        size=bool(p.get("size"))))
    sys.stdout.write(render(rows, p["fmt"], quiet_=p["quiet"] or obj.quiet,
                            no_trunc=p["no_trunc"], pod=p["pod"], noheading=p["noheading"],
                            size=bool(p.get("size"))))


def images_body(obj: Any, p: dict[str, Any]) -> None:
    """List images as `pod images` does; ``p`` are cli_image.images_command's parameters."""
    from podkit_common.gotemplate import is_json, render_rows
    from podkit_pod import _image_list as L

    filters = list(p["filter_"] or [])
    if p["image"]:
        filters.append(f"reference={p['image']}")
    items = L.summaries(obj.roots, all_=p["all_"], filters=filters)
    # pod's argv rewriting moves -q/--quiet in front of the command as the global flag
    if p["quiet"] or obj.quiet:
        sys.stdout.write("".join(i + "\n" for i in L.quiet_ids(items, no_trunc=p["no_trunc"])))
        return
    if is_json(p["fmt"]):
        from podkit_common.gotemplate import go_json

        sys.stdout.write(go_json(L.json_rows(items)))
        return
    rows = L.sort_rows(L.report_rows(items, no_trunc=p["no_trunc"]), p["sort"])
    sys.stdout.write(render_rows(p["fmt"], rows, noheading=p["noheading"],
                                 default=L.TABLE_DIGESTS if p["digests"] else L.TABLE,
                                 headers=L.HEADERS, name="images", type_name=L.TYPE_NAME))


def start_body(obj: Any, p: dict[str, Any]) -> int:
    """Start containers (created ones, and exited ones again), printing each reference
    (`pod start`); with ``attach`` (one container) its output instead, until it exits,
    and its exit code as ours (podman's ``start --attach``)."""
    from podkit_pod._container_admin import start  # CLIC's: exited ones run again

    if p.get("attach"):
        from podkit_common import errors
        from podkit_pod._container_admin import start_attached

        if len(p["containers"]) != 1:
            raise errors.UsageError("you cannot start and attach multiple containers at once",
                                    hint="start the others without --attach")
        return start_attached(obj.roots, p["containers"][0])
    for ref in p["containers"]:
        start(obj.roots, ref)
        sys.stdout.write(ref + "\n")
    return 0


def cleanup_body(obj: Any, p: dict[str, Any]) -> None:
    """conmon's exit command for pod's containers (`pod cleanup [--rm] ID`): record the
    exit, release the container (or remove it with --rm); prints the document."""
    from podkit_common.jsonio import write_document
    from podkit_pod._containers import cleanup

    write_document(cleanup(obj.roots, p["container"], remove_after=p["rm"]))
