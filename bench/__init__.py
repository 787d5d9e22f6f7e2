"""Side-by-side benchmarks of podkit against podman: every figure is a measured ratio.

Run ``python -m bench --help`` (or ``scripts/bench``). Each scenario runs podkit and
podman alternately on the same image, command and storage driver (overlay), with both
stores on tmpfs, and reports medians, the ratio podkit/podman, min–max and peak memory.
Nothing here imports podkit's own packages: podkit is measured through its executables,
and the images are built with the test bed (``tests.testbed``).
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
DOCS_DIR = REPO_ROOT / "docs" / "bench"
#: Built images and the registry's storage, reused across runs (keyed by content).
CACHE_DIR = Path("/var/tmp/podkit-bench")
#: Stores of both sides live on tmpfs: the shared disk adds 3x noise to pulls.
SCRATCH_PARENT = Path("/dev/shm")
