"""`python -m bench [--quick] [--scenario NAME ...] [--runs N] [--list]`.

Builds and pushes the benchmark images to a loopback registry, runs each scenario
podkit / podman alternately, prints the table, writes bench/results/<stamp>-<mode>.json
and .png, and (for a full run of every scenario) docs/bench/latest.json and ratios.png.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import CACHE_DIR, DOCS_DIR, RESULTS_DIR, SCRATCH_PARENT
from .runner import GNU_TIME, BenchFailure

REGISTRIES_CONF = "unqualified-search-registries = []\n"


def parse(argv: list[str]) -> argparse.Namespace:
    from .scenarios import SCENARIOS

    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Side-by-side benchmarks of podkit against podman (ratios, same run).",
        epilog="scenarios: " + ", ".join(s.name for s in SCENARIOS))
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds (finishes in under two minutes with a warm image cache)")
    p.add_argument("--scenario", "-s", action="append", default=[], metavar="NAME",
                   help="run only this scenario (repeatable)")
    p.add_argument("--runs", type=int, metavar="N", help="counted rounds per scenario")
    p.add_argument("--warmup", type=int, metavar="N", help="warm-up rounds per scenario")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--chart", metavar="RESULTS.json", type=Path,
                   help="only redraw the chart of a results file (next to it, .png)")
    p.add_argument("--no-publish", action="store_true",
                   help="do not update docs/bench/ even after a full run")
    return p.parse_args(argv)


def preflight() -> None:
    """Fail early, with the fix, when something the bench needs is missing."""
    if os.geteuid() != 0:
        raise BenchFailure("run the bench as root (both sides mount overlays and run runc)")
    missing = [t for t in ("podman", "runc", "conmon", "docker-registry", "unshare")
               if shutil.which(t) is None]
    if not os.access(GNU_TIME, os.X_OK):
        missing.append(f"{GNU_TIME} (package time)")
    if missing:
        raise BenchFailure(f"missing {', '.join(missing)}: run scripts/bench, which installs "
                           "them (podman from Debian, as the reference only)")
    try:
        from .report import warm_up_matplotlib

        warm_up_matplotlib()
    except ImportError:
        raise BenchFailure("matplotlib is missing: uv sync --all-packages --group bench") from None


def _lock() -> int:
    """One bench at a time on a machine (they would disturb each other's numbers)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(CACHE_DIR / "bench.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BenchFailure("another bench is running on this machine") from None
    return fd


def harness_overhead(logs: Path, runs: int = 11) -> float:
    """Median wall time of /bin/true through the timing harness (in every figure, both
    sides)."""
    import statistics

    from .runner import base_env, run_timed

    true = shutil.which("true") or "/bin/true"
    return round(statistics.median(
        run_timed([true], base_env(), logs / "harness").wall_s for _ in range(runs)), 6)


def report_table(doc: dict[str, Any]) -> str:
    from .report import table

    return table(doc["scenarios"], doc.get("machine"),
                 doc.get("setup", {}).get("harness_overhead_s"))


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    from .scenarios import SCENARIOS, by_name

    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:24} {s.title}")
        return 0
    if args.chart:
        from .report import chart, load

        doc = load(args.chart)
        print(report_table(doc))
        chart(doc, args.chart.with_suffix(".png"))
        print(f"bench: chart {args.chart.with_suffix('.png')}", file=sys.stderr)
        return 0
    try:
        chosen = by_name(args.scenario) if args.scenario else list(SCENARIOS)
        if (args.runs is not None and args.runs < 1) or (args.warmup or 0) < 0:
            raise ValueError("--runs must be at least 1 and --warmup at least 0")
        preflight()
    except (ValueError, BenchFailure) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    from .sandbox import ensure_namespace

    ensure_namespace(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.monotonic()
    try:
        _lock()
        doc = run(args, chosen)
    except BenchFailure as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; cleaned up", file=sys.stderr)
        return 130
    print(f"bench: done in {time.monotonic() - started:.1f} s "
          f"(results {doc['results_file']}, chart {doc['chart_file']})", file=sys.stderr)
    return 0


def run(args: argparse.Namespace, chosen: list[Any]) -> dict[str, Any]:
    """Set up, measure every chosen scenario, report; cleans up whatever happens."""
    from . import images, podkit, podman, report
    from .registry import Registry
    from .sandbox import Sandbox
    from .scenarios import Context, Plan, measure

    t0 = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    if load_start[0] > (os.cpu_count() or 1) / 2:
        report.say(f"bench: warning: load average {load_start[0]} on {os.cpu_count()} cores: "
                   "other work on this machine will slow both sides and widen the ranges")
    mode = "quick" if args.quick else "full"
    needed = {s.image for s in chosen if s.image}
    large_build = None
    if "large" in needed:
        large_build = images.build_large(CACHE_DIR / "images")
    Sandbox.remove_stale(SCRATCH_PARENT)
    rebuilt = large_build is not None and not large_build.cached
    with Sandbox(SCRATCH_PARENT) as box, Registry(CACHE_DIR / "registry", fresh=rebuilt) as reg:
        pushed: dict[str, images.BenchImage] = {"small": images.push_small(reg.url)}
        if large_build:
            pushed["large"] = images.push_large(reg.url, large_build)
        for img in pushed.values():
            reg.prime(img.blobs)
        setup_s = time.monotonic() - t0
        report.say(f"bench: images ready in {setup_s:.1f} s: " + "; ".join(
            f"{i.label} {i.layers} layers, {i.files} files, {i.uncompressed_bytes / 1e6:.0f} MB"
            + ("" if i.cached else f" (built in {i.build_seconds:.0f} s)")
            for i in pushed.values()))
        # Both sides read the same registries.conf (and the host's policy.json and
        # registries.conf.d drop-ins); refs are fully qualified, so no search list.
        regconf = box.base / "registries.conf"
        regconf.write_text(REGISTRIES_CONF)
        pk = podkit.Podkit(box.dir("podkit"), regconf)
        pm = podman.Podman(box.dir("podman"), regconf)
        ctx = Context(reg.url, pushed, pk, pm, box.dir("logs"), quick=args.quick)
        try:
            pm.reset()
            pk.reset()
            setups = {"podkit": pk.describe(), "podman": pm.describe(),
                      "registries_conf": REGISTRIES_CONF,
                      "harness_overhead_s": harness_overhead(box.dir("logs"))}
            results = []
            for scn in chosen:
                base = scn.quick if args.quick else scn.full
                plan = Plan(base.warmup if args.warmup is None else args.warmup,
                            base.runs if args.runs is None else args.runs)
                results.append(measure(scn, ctx, plan))
        finally:
            problems = pk.cleanup() + pm.cleanup()
            if problems:
                report.say("bench: cleanup problems: " + "; ".join(problems))
        doc = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": mode,
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "machine": {**report.machine(), "loadavg_start": load_start},
            "versions": {**podman.versions(), "podkit": podkit.versions()["pod"],
                         "podkit_tools": podkit.versions(), "python": sys.version.split()[0],
                         "kernel": os.uname().release},
            "setup": setups,
            "images": {k: v.as_json() for k, v in pushed.items()},
            "setup_seconds": round(setup_s, 2),
            "scenarios": results,
        }
    doc["total_seconds"] = round(time.monotonic() - t0, 2)
    return publish(doc, args, chosen)


def publish(doc: dict[str, Any], args: argparse.Namespace, chosen: list[Any]) -> dict[str, Any]:
    """Print the table; write the JSON and the chart; refresh docs/bench/ after full runs."""
    from . import report
    from .scenarios import SCENARIOS

    stem = RESULTS_DIR / f"{report.stamp()}-{doc['mode']}"
    doc["results_file"] = str(stem.with_suffix(".json").relative_to(RESULTS_DIR.parents[1]))
    doc["chart_file"] = str(stem.with_suffix(".png").relative_to(RESULTS_DIR.parents[1]))
    report.write_json(doc, stem.with_suffix(".json"))
    print(report.table(doc["scenarios"], doc["machine"], doc["setup"]["harness_overhead_s"]))
    try:
        report.chart(doc, stem.with_suffix(".png"))
    except Exception as e:  # the numbers are saved; the chart can be redrawn from them
        raise BenchFailure(f"chart failed ({type(e).__name__}: {e}); the results are in "
                           f"{stem.with_suffix('.json')}: redraw with "
                           f"python -m bench --chart {stem.with_suffix('.json')}") from e
    full = (doc["mode"] == "full" and len(chosen) == len(SCENARIOS) and args.runs is None
            and args.warmup is None)
    if full and not args.no_publish:
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stem.with_suffix(".png"), DOCS_DIR / "ratios.png")
        report.write_json(doc, DOCS_DIR / "latest.json")
        report.say(f"bench: updated {DOCS_DIR / 'ratios.png'} and {DOCS_DIR / 'latest.json'}")
    return doc


if __name__ == "__main__":
    sys.exit(main())
