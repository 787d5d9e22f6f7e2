"""The listing scenarios' side work: N containers in each store, then time the listing.

`list-containers` times `pod-storage containers` and `list-containers-ps` times
`pod ps -a`, both against `podman ps -a`, with N containers (created, never started) in
each store: N=200 with --quick, 1000 in a full run; `ps-500` is `pod ps -a` with
exactly 500 in either mode (issue #7's figure). The containers are made untimed in
set-up: podman's with `podman create --network none IMAGE true` (4 at a time), podkit's
with the storage library in one helper process (`python -m bench.listing populate`,
run as a subprocess like every podkit command: the bench itself imports no podkit
package), created then left unmounted like podman's.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from . import REPO_ROOT, VENV_BIN
from .runner import BenchFailure, Sample, run_timed

#: Containers per store, by mode; scenarios with a fixed N.
SIZES = {"quick": 200, "full": 1000}
FIXED_SIZES = {"ps-500": 500}
#: Scenarios that time `pod ps -a` (the others time `pod-storage containers`).
POD_PS = ("list-containers-ps", "ps-500")
_state: dict[str, int] = {}  # scenario -> N; "ready:<ref>" -> N of the stores as made


def argv(side: Any, scenario: str) -> list[str]:
    if side.name == "podkit":
        if scenario in POD_PS:
            return [side.exe("pod"), "ps", "-a"]
        return [side.exe("pod-storage"), "containers"]
    return side.cmd("ps", "-a")


def setup(ctx: Any, scenario: str, label: str, quick: bool) -> None:
    """Both stores emptied, the image pulled, N containers created (all untimed)."""
    from .scenarios import _verify_pull

    n = FIXED_SIZES.get(scenario) or SIZES["quick" if quick else "full"]
    _state[scenario] = n
    ref = ctx.ref(label)
    if _state.get(f"ready:{ref}") == n and all(len(s.containers()) == n for s in ctx.sides):
        return  # the other listing scenario just made the same stores
    for side in ctx.sides:
        side.reset()
        sample = run_timed(side.pull_argv(ref), side.env,
                           ctx.logs / f"{scenario}-{side.name}-setup")
        _verify_pull(side, ref, ctx.images[label].digest, sample)
    _populate_podkit(ctx.podkit, ref, n)
    _populate_podman(ctx.podman, ref, n)
    for side in ctx.sides:
        have = len(side.containers())
        if have != n:
            raise BenchFailure(f"{side.name}: {have} containers after set-up, wanted {n}")
    _state[f"ready:{ref}"] = n


def _populate_podkit(side: Any, ref: str, n: int) -> None:
    res = subprocess.run([str(VENV_BIN / "python"), "-m", "bench.listing", "populate", ref,
                          str(n)], env=side.env, cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=1800, check=False)
    if res.returncode != 0:
        raise BenchFailure(f"podkit: populate {n} containers: {res.stderr.strip()[-2000:]}")


def _populate_podman(side: Any, ref: str, n: int) -> None:
    create = " ".join(side.cmd("create", "--network", "none", ref, "true"))
    script = f"seq {n} | xargs -P 4 -I{{}} {create} >/dev/null"
    res = subprocess.run(["/bin/bash", "-o", "pipefail", "-c", script], env=side.env,
                         capture_output=True, text=True, timeout=3600, check=False)
    if res.returncode != 0:
        raise BenchFailure(f"podman: create {n} containers: {res.stderr.strip()[-2000:]}")


def verify(side: Any, scenario: str, sample: Sample) -> None:
    """The listing shows every container: N JSON lines, or a header and N rows."""
    n = _state[scenario]
    lines = [ln for ln in sample.stdout.read_text(errors="replace").splitlines() if ln.strip()]
    json_lines = side.name == "podkit" and scenario == "list-containers"
    want = n if json_lines else n + 1
    if len(lines) != want:
        raise BenchFailure(f"{side.name}: {' '.join(sample.argv)} printed {len(lines)} "
                           f"lines, wanted {want}\n{sample.tail()}")


def populate(ref: str, n: int) -> None:
    """Create ``n`` unmounted containers of ``ref`` in PODKIT_ROOT with the library."""
    from podkit_common.roots import resolve_roots
    from podkit_storage import create_container, find_image

    roots = resolve_roots()
    doc = {"changed": False, "image": find_image(roots, ref)}
    for i in range(n):
        create_container(doc, roots, name=f"bench{i}", mount=False)


if __name__ == "__main__":
    if sys.argv[1:2] != ["populate"] or len(sys.argv) != 4:
        sys.exit("usage: python -m bench.listing populate IMAGE N")
    populate(sys.argv[2], int(sys.argv[3]))
