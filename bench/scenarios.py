"""The scenarios, and the loop that runs one: podkit and podman alternately, verified.

Each scenario gives both sides the same image and the same command. A round runs
podkit, then podman; warm-up rounds come first and are not counted. Every run, warm-up
included, is checked (exit code 0, and what the command should have left behind)
before the next one starts, or the bench stops with the failing run's output.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import bridge, image_listing, listing, pods
from .images import BenchImage
from .runner import BenchFailure, Sample, run_timed

RUN_COMMAND = ["/bin/sh", "-c", "true"]


class Engine(Protocol):
    """What a side (bench.podkit.Podkit, bench.podman.Podman) offers a scenario."""

    name: str
    env: dict[str, str]

    def version_argv(self, tool: str) -> list[str]: ...
    def pull_argv(self, ref: str) -> list[str]: ...
    def run_argv(self, ref: str, command: list[str]) -> list[str]: ...
    def reset(self) -> None: ...
    def images(self) -> dict[str, str]: ...
    def unpacked_files(self) -> int: ...
    def containers(self) -> list[str]: ...


@dataclass(frozen=True)
class Plan:
    """Warm-up rounds (not counted) and counted rounds; a round is one run per side."""

    warmup: int
    runs: int


@dataclass
class Context:
    """What the scenarios run against."""

    registry_url: str
    images: dict[str, BenchImage]
    podkit: Engine
    podman: Engine
    logs: Path
    quick: bool = False

    @property
    def sides(self) -> tuple[Engine, Engine]:
        return (self.podkit, self.podman)

    def ref(self, label: str) -> str:
        return self.images[label].ref(self.registry_url)


@dataclass(frozen=True)
class Scenario:
    """One comparison: kind "version" (arg = podkit tool), "pull", "pipe-pull" (podkit as
    the shell pipeline `pod-image-pull | pod-storage import`) or "run" (arg = image)."""

    name: str
    title: str
    kind: str
    arg: str
    full: Plan
    quick: Plan

    @property
    def image(self) -> str | None:
        """The image label this scenario needs ("small"/"large"), if any."""
        return None if self.kind in ("version", "noop", "images") else self.arg

    def argv(self, ctx: Context, side: Engine) -> list[str]:
        if self.kind == "version":
            return side.version_argv(self.arg)
        if self.kind == "pull":
            return side.pull_argv(ctx.ref(self.arg))
        if self.kind == "pipe-pull":
            pipeline = getattr(side, "pipeline_pull_argv", side.pull_argv)
            return pipeline(ctx.ref(self.arg))
        if self.kind == "run-bridge":
            return bridge.argv(side, ctx.ref(self.arg), RUN_COMMAND)
        if self.kind == "list":
            return listing.argv(side, self.name)
        if self.kind == "images":
            return image_listing.argv(side)
        if self.kind == "noop":
            return listing.argv(side, "list-containers-ps")[:-1]  # `ps`: running ones
        if self.kind == "pod":  # pod create + 3 members + pod start (bench/pods.py)
            return pods.argv(side, ctx.ref(self.arg))
        return side.run_argv(ctx.ref(self.arg), RUN_COMMAND)

    def setup(self, ctx: Context) -> None:
        """Once before the rounds: `run` needs the image in both stores (pulled untimed)."""
        if self.kind == "list":
            listing.setup(ctx, self.name, self.arg, ctx.quick)
            return
        if self.kind == "images":
            image_listing.setup(ctx, ctx.quick)
            return
        if self.kind == "noop":  # empty stores: the command's start is all there is
            for side in ctx.sides:
                side.reset()
            return
        if self.kind not in ("run", "run-bridge", "pod"):
            return
        if self.kind == "run-bridge":
            bridge.setup(ctx)
        for side in ctx.sides:
            side.reset()
            sample = run_timed(side.pull_argv(ctx.ref(self.arg)), side.env,
                               ctx.logs / f"{self.name}-{side.name}-setup")
            _verify_pull(side, ctx.ref(self.arg), ctx.images[self.arg].digest, sample)

    def before_each(self, ctx: Context, side: Engine) -> None:
        """Untimed, before every run: pulls start from an empty store (cache emptied)."""
        if self.kind in ("pull", "pipe-pull"):
            side.reset()
        if self.kind == "pod":
            pods.before_each(side)

    def verify(self, ctx: Context, side: Engine, sample: Sample) -> None:
        """Untimed, after every run: exit 0 and the expected state, or BenchFailure."""
        if self.kind in ("pull", "pipe-pull"):
            _verify_pull(side, ctx.ref(self.arg), ctx.images[self.arg].digest, sample)
            # Every layer really unpacked, not deferred: count the files on disk.
            want, got = ctx.images[self.arg].files, side.unpacked_files()
            if got != want:
                raise BenchFailure(f"{side.name}: {got} files unpacked, the image has {want}")
            return
        _verify_exit(side, sample)
        if self.kind == "pod":
            pods.verify(side, sample)
            return
        if self.kind == "list":
            listing.verify(side, self.name, sample)
            return
        if self.kind == "images":
            image_listing.verify(side, sample)
            return
        if self.kind == "noop":
            lines = sample.stdout.read_text(errors="replace").splitlines()
            if len(lines) != 1 or "CONTAINER ID" not in lines[0]:
                raise BenchFailure(f"{side.name}: ps on an empty store printed {lines}")
            return
        if self.kind == "version":
            if "version" not in sample.stdout.read_text(errors="replace"):
                raise BenchFailure(f"{side.name}: --version printed no version\n{sample.tail()}")
        elif leftover := side.containers():
            raise BenchFailure(f"{side.name}: run --rm left containers {leftover}")
        if self.kind == "run-bridge":
            bridge.verify(side)

    def teardown(self, ctx: Context, say: Callable[[str], None]) -> None:
        """Once after the rounds (also after a failure)."""
        if self.kind == "run-bridge":
            bridge.teardown(ctx, say)
        if self.kind == "pod":
            pods.teardown(ctx)


def _verify_exit(side: Engine, sample: Sample) -> None:
    if sample.exit_code != 0:
        raise BenchFailure(f"{side.name} exited {sample.exit_code}: {' '.join(sample.argv)}\n"
                           f"{sample.tail()}")


def _verify_pull(side: Engine, ref: str, digest: str, sample: Sample) -> None:
    """Exit 0, and the store lists ref with the manifest digest the registry has."""
    _verify_exit(side, sample)
    listed = side.images()
    if listed.get(ref) != digest:
        raise BenchFailure(f"{side.name}: pulled {ref} ({digest}) but its store lists {listed}")


def _tool_scenario(tool: str) -> Scenario:
    return Scenario(f"start-{tool}", f"cold start: {tool} --version vs podman --version",
                    "version", tool, full=Plan(2, 15), quick=Plan(1, 5))


SCENARIOS: tuple[Scenario, ...] = (
    *(_tool_scenario(t) for t in ("pod-image-pull", "pod-storage", "pod-runtime",
                                  "pod-netsetup", "pod")),
    Scenario("start-ps", "cold start of a real command: pod ps vs podman ps, empty stores",
             "noop", "small", full=Plan(2, 15), quick=Plan(1, 7)),
    Scenario("pull-small", "pull + unpack busybox (1 layer) from the loopback registry",
             "pull", "small", full=Plan(1, 10), quick=Plan(1, 4)),
    Scenario("pull-large", "pull + unpack the large image (5 layers, >500 MB, >30k files)",
             "pull", "large", full=Plan(1, 5), quick=Plan(0, 2)),
    Scenario("pipe-pull-large", "pod-image-pull | pod-storage import of the large image "
             "vs podman pull", "pipe-pull", "large", full=Plan(1, 3), quick=Plan(0, 1)),
    Scenario("run", "run --rm --network none busybox /bin/sh -c true",
             "run", "small", full=Plan(2, 15), quick=Plan(1, 5)),
    Scenario("run-bridge", "run --rm busybox /bin/sh -c true on the default bridge network "
             "(podkit: CNI plugins; podman: netavark)",
             "run-bridge", "small", full=Plan(2, 15), quick=Plan(1, 5)),
    Scenario("list-containers", "pod-storage containers vs podman ps -a, N containers in "
             "each store (N=1000; 200 with --quick)", "list", "small",
             full=Plan(1, 10), quick=Plan(1, 5)),
    Scenario("list-containers-ps", "pod ps -a vs podman ps -a, N containers in each store "
             "(N=1000; 200 with --quick)", "list", "small", full=Plan(1, 10), quick=Plan(1, 5)),
    Scenario("pod-3", "pod create + 3 members created in it + pod start (issue #9), "
             "--network none", "pod", "small", full=Plan(1, 5), quick=Plan(1, 3)),
    Scenario("images-300", "pod images vs podman images, N distinct images in each store "
             "(N=300; 100 with --quick; issue #9)", "images", "small",
             full=Plan(1, 10), quick=Plan(1, 5)),
    Scenario("ps-500", "pod ps -a vs podman ps -a, 500 containers in each store (issue #7)",
             "list", "small", full=Plan(1, 10), quick=Plan(1, 5)),
)


def by_name(names: list[str]) -> list[Scenario]:
    """The scenarios with these names, in the bench's order; ValueError for unknown ones."""
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")
    return [s for s in SCENARIOS if s.name in names]


@dataclass
class SideResult:
    """Counted samples of one side."""

    argv: list[str]
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        walls = [s.wall_s for s in self.samples]
        return {
            "argv": self.argv,
            "median_s": statistics.median(walls),
            "min_s": min(walls),
            "max_s": max(walls),
            "peak_rss_kib": max(s.maxrss_kib for s in self.samples),
            "samples": [s.as_json() for s in self.samples],
        }


def measure(scn: Scenario, ctx: Context, plan: Plan,
            say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
            ) -> dict[str, Any]:
    """Run a scenario's rounds (podkit then podman, alternately) and summarise them."""
    try:
        scn.setup(ctx)
        return _measure(scn, ctx, plan, say)
    finally:
        scn.teardown(ctx, say)


def _measure(scn: Scenario, ctx: Context, plan: Plan,
             say: Callable[[str], None]) -> dict[str, Any]:
    results = {side.name: SideResult(scn.argv(ctx, side)) for side in ctx.sides}
    total = plan.warmup + plan.runs
    for i in range(total):
        counted = i >= plan.warmup
        line = []
        for side in ctx.sides:
            scn.before_each(ctx, side)
            sample = run_timed(scn.argv(ctx, side), side.env, ctx.logs / f"{scn.name}-{side.name}")
            scn.verify(ctx, side, sample)
            if counted:
                results[side.name].samples.append(sample)
            line.append(f"{side.name} {sample.wall_s:.3f}s")
        tag = f"{i - plan.warmup + 1}/{plan.runs}" if counted else "warm-up"
        say(f"bench: {scn.name} [{tag}] " + ", ".join(line))
    podkit, podman = (results[s.name].summary() for s in ctx.sides)
    pairs = zip(results[ctx.podkit.name].samples, results[ctx.podman.name].samples, strict=True)
    out = {
        "name": scn.name, "title": scn.title, "kind": scn.kind, "image": scn.image,
        "warmup": plan.warmup, "runs": plan.runs,
        "podkit": podkit, "podman": podman,
        "ratio": podkit["median_s"] / podman["median_s"],
        "round_ratios": [round(a.wall_s / b.wall_s, 4) for a, b in pairs],
    }
    if scn.kind in ("run", "run-bridge"):  # where podkit's time goes (bench/phases.py)
        from . import phases

        out["podkit_phases"] = phases.measure(scn, ctx, ctx.podkit)
        say(f"bench: {scn.name} podkit phases (ms, one untimed run): "
            f"{phases.line(out['podkit_phases'])}")
    return out
