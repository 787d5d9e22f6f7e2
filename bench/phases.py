"""Where podkit's `run` spends its wall time: one extra, untimed run of the `run` and
`run-bridge` scenarios with PODKIT_TRACE_TIMINGS=1, which makes `pod run` print one line
per phase on stderr (podkit_runtime._timings)::

    podkit-timing <phase> <ms since the previous phase ended> <ms since the process started>

The first phase, ``start``, is the interpreter's start, our imports and the argv parse
(from the process's start time in /proc, so to 10 ms); the rest are the steps of the
run (image lookup, storage, bundle, conmon, runc create/start, the container's life,
teardown). The breakdown goes into the results JSON (``podkit_phases``) and the report.
"""

from __future__ import annotations

from typing import Any

PREFIX = "podkit-timing"


def parse(text: str) -> list[tuple[str, float]]:
    """The (phase, milliseconds) pairs in ``text`` (a stderr), in order."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] == PREFIX:
            try:
                out.append((fields[1], float(fields[2])))
            except ValueError:
                continue
    return out


def line(phases: list[tuple[str, float]]) -> str:
    """One readable line: ``start 120 · image 0.3 · ... = 250 ms``."""
    total = sum(ms for _, ms in phases)
    return " · ".join(f"{name} {ms:.0f}" for name, ms in phases) + f" = {total:.0f} ms"


def measure(scn: Any, ctx: Any, side: Any) -> list[tuple[str, float]]:
    """One untimed run of ``scn`` on the podkit ``side`` with the trace on; its phases
    (checked like any round: exit 0, nothing left behind)."""
    from .runner import run_timed

    env = {**side.env, "PODKIT_TRACE_TIMINGS": "1"}
    sample = run_timed(scn.argv(ctx, side), env, ctx.logs / f"{scn.name}-{side.name}-phases")
    scn.verify(ctx, side, sample)
    return parse(sample.stderr.read_text(errors="replace"))
