"""The `images-N` scenario's side work (issue #9): `pod images` against `podman images`
with N distinct images in each store (N=300; 100 with --quick).

The images are made untimed in set-up from N tiny tars (one file each, different
contents, so N different layers and image ids): podman's with `podman import` (4 at a
time), podkit's with the storage library in one helper process (`python -m
bench.image_listing populate DIR`, a subprocess like every podkit command: the bench
itself imports no podkit package).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from . import REPO_ROOT, VENV_BIN
from .runner import BenchFailure, Sample

SIZES = {"quick": 100, "full": 300}
_state: dict[str, int] = {}


def argv(side: Any) -> list[str]:
    if side.name == "podkit":
        return [side.exe("pod"), "images"]
    return side.cmd("images")


def _tars(where: Path, n: int) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        data = f"image {i}\n".encode()
        info = tarfile.TarInfo("id")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        with tarfile.open(where / f"{i}.tar", "w") as tar:
            tar.addfile(info, io.BytesIO(data))
    return where


def setup(ctx: Any, quick: bool) -> None:
    """Both stores emptied, then N distinct images in each (untimed)."""
    n = SIZES["quick" if quick else "full"]
    _state["n"] = n
    tars = _tars(ctx.logs / "images-tars", n)
    for side in ctx.sides:
        side.reset()
    res = subprocess.run([str(VENV_BIN / "python"), "-m", "bench.image_listing", "populate",
                          str(tars), str(n)], env=ctx.podkit.env, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=1800, check=False)
    if res.returncode != 0:
        raise BenchFailure(f"podkit: import {n} images: {res.stderr.strip()[-2000:]}")
    imp = " ".join(ctx.podman.cmd("import", "-q", f"{tars}/{{}}.tar",
                                  "localhost/bench-img{}:latest"))
    script = f"seq 0 {n - 1} | xargs -P 4 -I{{}} {imp} >/dev/null"
    res = subprocess.run(["/bin/bash", "-o", "pipefail", "-c", script], env=ctx.podman.env,
                         capture_output=True, text=True, timeout=3600, check=False)
    if res.returncode != 0:
        raise BenchFailure(f"podman: import {n} images: {res.stderr.strip()[-2000:]}")


def verify(side: Any, sample: Sample) -> None:
    """The listing shows every image: a header and N rows."""
    n = _state["n"]
    lines = [ln for ln in sample.stdout.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) != n + 1:
        raise BenchFailure(f"{side.name}: {' '.join(sample.argv)} printed {len(lines)} "
                           f"lines, wanted {n + 1}\n{sample.tail()}")


def populate(tars: str, n: int) -> None:
    """Import ``n`` tars of ``tars`` into PODKIT_ROOT with the storage library."""
    from podkit_common.roots import resolve_roots
    from podkit_storage import import_tarball

    roots = resolve_roots()
    for i in range(n):
        import_tarball(roots, f"{tars}/{i}.tar", f"localhost/bench-img{i}:latest")


if __name__ == "__main__":
    if sys.argv[1:2] != ["populate"] or len(sys.argv) != 4:
        sys.exit("usage: python -m bench.image_listing populate DIR N")
    populate(sys.argv[2], int(sys.argv[3]))
