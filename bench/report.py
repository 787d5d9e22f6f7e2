"""The results: a table on stdout, a JSON file, and a chart of the ratios (PNG)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

TABLE_NOTE = (
    "ratio = podkit median / podman median wall time (below 1: podkit is faster).\n"
    "peak RSS = ru_maxrss from wait4: the largest resident set of the command or of any\n"
    "process it waited for (daemonized helpers such as conmon are not included), max over runs."
)


def machine() -> dict[str, Any]:
    """Cores, CPU, memory, kernel and load of this machine."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {"cores": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def _secs(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _range(d: dict[str, Any]) -> str:
    lo, hi = d["min_s"], d["max_s"]
    if hi < 1:
        return f"{lo * 1000:.0f}–{hi * 1000:.0f} ms"
    return f"{lo:.2f}–{hi:.2f} s"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def table(scenarios: list[dict[str, Any]], m: dict[str, Any] | None = None,
          overhead: float | None = None) -> str:
    """The results as an aligned text table with a note on how to read it."""
    head = ["scenario", "runs", "podkit median", "podman median", "ratio",
            "podkit min–max", "podman min–max", "podkit peak RSS", "podman peak RSS"]
    rows = [head]
    for s in scenarios:
        pk, pm = s["podkit"], s["podman"]
        rows.append([s["name"], str(s["runs"]), _secs(pk["median_s"]), _secs(pm["median_s"]),
                     f"{s['ratio']:.2f}×", _range(pk), _range(pm),
                     _mib(pk["peak_rss_kib"]), _mib(pm["peak_rss_kib"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for n, r in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    note = TABLE_NOTE
    for s in scenarios:
        if s.get("podkit_phases"):  # bench/phases.py
            from .phases import line

            note += f"\npodkit {s['name']} by phase (ms, one untimed run): " \
                f"{line(s['podkit_phases'])}"
    if overhead is not None:
        note += (f"\nEvery time includes {overhead * 1000:.1f} ms of harness (fork/exec of GNU "
                 "time, /bin/true median) on both sides.")
    if m and "loadavg_start" in m:
        note += (f"\n{m['cores']} cores; 1-min load average {m['loadavg_start'][0]} at start, "
                 f"{m['loadavg_end'][0]} at end (other work on the machine slows both sides).")
    return "\n".join(lines) + "\n\n" + note


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Write the results document atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def load(path: Path) -> dict[str, Any]:
    """Read a results file."""
    return json.loads(path.read_text())


def warm_up_matplotlib() -> None:
    """Import matplotlib's Agg backend and render text once, at start-up.

    A `uv sync` without the bench group (scripts/install.sh) may remove matplotlib from
    the venv while a bench runs; what is loaded (modules, the open font) keeps working.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: F401

    fig, ax = plt.subplots(1, 2, figsize=(2, 1))
    ax[0].barh([0], [1.0], left=1)
    ax[0].errorbar([1.0], [0], xerr=([0.1], [0.1]), fmt="none", capsize=3)
    ax[0].set_xscale("log")
    ax[0].text(1, 0, "1.00× warm-up", fontsize=8)
    fig.suptitle("warm-up", fontsize=10)
    fig.tight_layout()
    fig.savefig(io.BytesIO(), format="png", dpi=50)
    plt.close(fig)


def chart(doc: dict[str, Any], path: Path) -> None:
    """Draw the time and peak-memory ratios of each scenario as horizontal bars (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scns = doc["scenarios"]
    names = [s["name"] for s in scns]
    time_r = [s["ratio"] for s in scns]
    # The bar is the ratio of medians, which may lie outside the rounds' own ratios.
    lo = [max(0.0, r - min(s["round_ratios"])) for r, s in zip(time_r, scns, strict=True)]
    hi = [max(0.0, max(s["round_ratios"]) - r) for r, s in zip(time_r, scns, strict=True)]
    mem_r = [s["podkit"]["peak_rss_kib"] / s["podman"]["peak_rss_kib"] for s in scns]
    height = 1.2 + 0.45 * len(scns)
    fig, axes = plt.subplots(1, 2, figsize=(11, height), sharey=True,
                             gridspec_kw={"width_ratios": [3, 2]})
    ys = list(range(len(scns)))[::-1]
    panels = (
        (axes[0], time_r, (lo, hi),
         "wall time, podkit / podman (median; whiskers: min–max over rounds)"),
        (axes[1], mem_r, None, "peak RSS, podkit / podman"),
    )
    for ax, values, err, label in panels:
        _ratio_panel(ax, ys, values, err, label)
    axes[0].set_yticks(ys, names, fontsize=9)
    m, v = doc["machine"], doc["versions"]
    fig.suptitle(f"podkit vs podman on one machine ({doc['mode']} mode, {doc['date'][:10]}): "
                 "below 1 = podkit faster / smaller", fontsize=10)
    fig.text(0.01, 0.005, f"{m['cores']} cores, {m['cpu']}, kernel {m['kernel']}; "
             f"{v['podman']}, {v['runc']}, {v['conmon']}; stores on tmpfs, overlay; "
             f"load {m.get('loadavg_start', ['?'])[0]}→{m.get('loadavg_end', ['?'])[0]}",
             fontsize=7, color="#444444")
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ratio_panel(ax: Any, ys: list[int], values: list[float],
                 err: tuple[list[float], list[float]] | None, label: str) -> None:
    """Bars from 1 to each ratio on a log axis (red: podkit slower/bigger, blue: not)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = err if err else ([0.0] * len(values), [0.0] * len(values))
    colors = ["#c0504d" if v > 1 else "#4f81bd" for v in values]
    ax.barh(ys, [v - 1 for v in values], left=1, color=colors, height=0.6)
    if err:
        ax.errorbar(values, ys, xerr=(lo, hi), fmt="none", ecolor="#333333", capsize=3,
                    linewidth=1)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    left = min(min(v - e for v, e in zip(values, lo, strict=True)), 1.0) / 1.8
    right = max(max(v + e for v, e in zip(values, hi, strict=True)), 1.0) * 1.8
    ax.set_xlim(left, right)
    ticks = [2.0 ** k for k in range(-8, 9) if left <= 2.0 ** k <= right]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}×"))
    ax.xaxis.set_minor_locator(NullLocator())
    for y, v, e_lo, e_hi in zip(ys, values, lo, hi, strict=True):
        if v >= 1:
            ax.text((v + e_hi) * 1.05, y, f"{v:.2f}×", va="center", ha="left", fontsize=8)
        else:
            ax.text((v - e_lo) / 1.05, y, f"{v:.2f}×", va="center", ha="right", fontsize=8)
    ax.set_xlabel(label, fontsize=8)
    ax.grid(axis="x", alpha=0.25)


def stamp() -> str:
    """A UTC timestamp usable in file names."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
