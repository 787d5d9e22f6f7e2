"""The `pod-3` scenario (issue #9): `pod create` of a pod, three members created in it,
then `pod start` of the pod, against podman doing the same, --network none pods.

One timed run is the whole sequence as a user types it (five commands through bash);
before each run (untimed) the previous round's pod is removed, and after each run the
pod must be Running with its infra and three members.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

from .runner import BenchFailure, Sample

MEMBERS = 3
_round: dict[str, int] = {}


def _cmd(side: Any, *args: str) -> list[str]:
    return [side.exe("pod"), *args] if side.name == "podkit" else side.cmd(*args)


def _name(side: Any) -> str:
    return f"bench-pod-{_round.get(side.name, 0)}"


def argv(side: Any, ref: str) -> list[str]:
    pod = _name(side)
    steps = [_cmd(side, "pod", "create", "--name", pod, "--network", "none")]
    steps += [_cmd(side, "create", "--tls-verify=false", "--pod", pod, "--name",
                   f"{pod}-{i}", ref, "sleep", "1000") for i in range(MEMBERS)]
    steps += [_cmd(side, "pod", "start", pod)]
    script = " && ".join(" ".join(shlex.quote(a) for a in step) + " >/dev/null"
                         for step in steps)
    return ["bash", "-c", script]


def _rm(side: Any, pod: str) -> None:
    subprocess.run(_cmd(side, "pod", "rm", "-f", "-t", "0", pod), env=side.env,
                   capture_output=True, timeout=300, check=False)


def before_each(side: Any) -> None:
    """Untimed: remove the previous round's pod; the next one gets a new name."""
    previous = _round.get(side.name)
    if previous is not None:
        _rm(side, _name(side))
    _round[side.name] = (previous or 0) + 1


def verify(side: Any, sample: Sample) -> None:
    proc = subprocess.run(_cmd(side, "pod", "inspect", _name(side)), env=side.env,
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise BenchFailure(f"{side.name}: pod inspect: {proc.stderr.strip()}")
    info = json.loads(proc.stdout)
    info = info[0] if isinstance(info, list) else info
    states = sorted(c["State"] for c in info["Containers"])
    if info["State"] != "Running" or states != ["running"] * (MEMBERS + 1):
        raise BenchFailure(f"{side.name}: pod {info['State']}, containers {states}\n"
                           f"{sample.tail()}")


def teardown(ctx: Any) -> None:
    for side in ctx.sides:
        if side.name in _round:
            _rm(side, _name(side))
    _round.clear()
