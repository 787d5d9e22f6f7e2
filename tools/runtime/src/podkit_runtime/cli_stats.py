"""The output side of ``pod-runtime stats`` and ``pod stats`` (CLI glue, no typer):
rounds from :func:`podkit_runtime._stats.stream` written to a stream as they come.

pod-runtime writes JSON lines (one row per container per round, flushed each round);
``pod`` writes podman's shapes: the table (the screen cleared before each round unless
``--no-reset``), ``--format json``'s array of strings per round, or a Go template.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any


def write_stats(roots: Any, refs: Sequence[str], *, all_: bool = False, stream: bool = True,
                interval: int = 5, fmt: str = "json", reset: bool = True,
                no_trunc: bool = False, podman_shapes: bool = False,
                out: IO[str] | None = None) -> None:
    """Sample and write until the stream ends (``stream=False``: one round) or the
    caller is interrupted. ``podman_shapes``: ``json`` is podman's string array."""
    from podkit_common import errors
    from podkit_common.jsonio import dumps
    from podkit_runtime._stats import SCREEN_RESET, podman_json, stats_table
    from podkit_runtime._stats import stream as stats_stream

    template = fmt not in ("json", "table")
    if template and not podman_shapes:
        raise errors.UsageError(f"unsupported --format {fmt!r}", hint="json or table")
    out = out if out is not None else sys.stdout
    for rows in stats_stream(roots, refs, interval=interval, stream=stream, all_=all_):
        if template:  # a Go template, podman's way (podkit_common.gotemplate)
            from podkit_common.gotemplate import render_rows
            from podkit_runtime._stats import template_headers, template_row

            if stream and reset:
                out.write(SCREEN_RESET)
            out.write(render_rows(fmt, [template_row(r, no_trunc) for r in rows],
                                  headers=template_headers(), name="stats"))
        elif fmt == "table":
            if stream and reset:
                out.write(SCREEN_RESET)
            out.write(stats_table(rows, no_trunc=no_trunc))
        elif podman_shapes:  # json.MarshalIndent(stats, "", " "), as podman prints it
            from podkit_common.gotemplate import go_json

            out.write(go_json(podman_json(rows, no_trunc), indent=1))
        else:
            out.write("".join(dumps(row).decode() + "\n" for row in rows))
        out.flush()
