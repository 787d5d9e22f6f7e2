"""podkit, measured through its installed executables (never imported).

PODKIT_ROOT and PODKIT_RUNROOT point into the bench's scratch dir on tmpfs. podkit
has one storage driver: layers unpacked to directories, container root filesystems
mounted with kernel overlayfs — the same as podman's overlay driver.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.testbed.env import cleanup as testbed_cleanup
from tests.testbed.env import make_env

from . import REPO_ROOT, VENV_BIN
from .runner import BenchFailure, base_env, check_output, count_files

TOOLS = ("pod-image-pull", "pod-storage", "pod-runtime", "pod-netsetup", "pod")


def compile_sources() -> None:
    """Bytecode for the workspace's own (editable) sources, as a wheel install has it:
    otherwise every timed start compiles each module changed since the last import that
    could write __pycache__ (never, under PYTHONDONTWRITEBYTECODE)."""
    import compileall

    for src in sorted(REPO_ROOT.glob("libs/*/src")) + sorted(REPO_ROOT.glob("tools/*/src")):
        compileall.compile_dir(src, quiet=1)


class Podkit:
    """The podkit side: command lines, store reset, listings, versions."""

    name = "podkit"

    def __init__(self, base: Path, registries_conf: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.runroot = base / "runroot"
        self.env = make_env(self.root, self.runroot,
                            base_env(CONTAINERS_REGISTRIES_CONF=str(registries_conf)))
        missing = [t for t in TOOLS if not (VENV_BIN / t).is_file()]
        if missing:
            raise BenchFailure(f"not installed in {VENV_BIN}: {', '.join(missing)} "
                               "(run scripts/install.sh)")
        compile_sources()

    def exe(self, tool: str) -> str:
        return str(VENV_BIN / tool)

    def version_argv(self, tool: str) -> list[str]:
        return [self.exe(tool), "--version"]

    def pull_argv(self, ref: str) -> list[str]:
        return [self.exe("pod"), "pull", "--tls-verify=false", ref]

    def pipeline_pull_argv(self, ref: str) -> list[str]:
        """The stage executables through a real shell pipe, as a CI job would run them."""
        pull = shlex.join([self.exe("pod-image-pull"), "--tls-verify=false", f"docker://{ref}"])
        return ["/bin/bash", "-o", "pipefail", "-c",
                f"{pull} | {shlex.quote(self.exe('pod-storage'))} import >/dev/null"]

    def run_argv(self, ref: str, command: list[str]) -> list[str]:
        return [self.exe("pod"), "run", "--rm", "--network", "none", "--tls-verify=false",
                ref, *command]

    def reset(self) -> None:
        """Empty the store (blobs, layers, images) and initialise a fresh one, untimed."""
        problems = self.cleanup()
        if problems:
            raise BenchFailure("podkit store cleanup: " + "; ".join(problems))
        for d in (self.root, self.runroot):
            shutil.rmtree(d, ignore_errors=True)
            if d.exists():
                raise BenchFailure(f"could not empty {d}")
            d.mkdir(parents=True)
        self.images()  # the first command creates the store layout

    def cleanup(self) -> list[str]:
        """runc containers, conmon/runc processes, mounts, netns left under our dirs."""
        return testbed_cleanup(self.base, self.runroot)

    def images(self) -> dict[str, str]:
        """Image names in the store and their manifest digests (`pod-storage images`)."""
        out = check_output([self.exe("pod-storage"), "images"], self.env, "pod-storage images")
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {n: r.get("digest", "") for r in records for n in r.get("names") or []}

    def unpacked_files(self) -> int:
        """Regular files in the unpacked layers (<root>/layers/<chain>/diff)."""
        return count_files(sorted((self.root / "layers").glob("*/diff")))

    def containers(self) -> list[str]:
        """Ids of all container root filesystems (`pod-storage containers`)."""
        out = check_output([self.exe("pod-storage"), "containers"], self.env,
                           "pod-storage containers")
        return [json.loads(line)["id"] for line in out.splitlines() if line.strip()]

    def describe(self) -> dict[str, Any]:
        """The storage setup, for the results file."""
        return {"driver": "overlay", "note": "podkit's only driver: directory layers, "
                "kernel overlayfs for container root filesystems", "root": str(self.root)}


def versions() -> dict[str, str]:
    """`--version` of each podkit executable."""
    out = {}
    for tool in TOOLS:
        res = subprocess.run([str(VENV_BIN / tool), "--version"], capture_output=True,
                             text=True, timeout=30)
        out[tool] = res.stdout.strip() or f"exit {res.returncode}"
    return out
