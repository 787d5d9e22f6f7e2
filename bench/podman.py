"""podman, the reference: Debian's package, run with its own roots and config files.

podman gets its own --root/--runroot/--tmpdir on tmpfs, the overlay driver, and a
containers.conf suited to this host (runc, cgroupfs, no default ulimits above the hard
limit, file events). Its lock files, image-copy temp dir and network config dir are
moved into the bench's scratch dir too, so it shares nothing with a real podman.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.testbed.env import delete_runc_containers, kill_pidfile_processes, unmount_all_under
from tests.testbed.podman import containers_conf, storage_conf

from .runner import BenchFailure, base_env, check_output, count_files

PODMAN = "podman"
RUNC_STATE = Path("/run/runc")  # shadowed by the sandbox: only the bench's containers


class Podman:
    """The podman side: command lines, store reset, listings, versions."""

    name = "podman"

    def __init__(self, base: Path, registries_conf: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.runroot = base / "runroot"
        self.tmpdir = base / "tmp"
        self.exe = shutil.which(PODMAN) or PODMAN
        conf = base / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        for d in ("image-copy", "networks"):
            (base / d).mkdir(exist_ok=True)
        (conf / "containers.conf").write_text(containers_conf(base))
        (conf / "storage.conf").write_text(storage_conf(self.root, self.runroot))
        self.env = base_env(CONTAINERS_CONF=str(conf / "containers.conf"),
                            CONTAINERS_STORAGE_CONF=str(conf / "storage.conf"),
                            CONTAINERS_REGISTRIES_CONF=str(registries_conf))

    def cmd(self, *args: str) -> list[str]:
        """podman with the bench's global options."""
        return [self.exe, "--root", str(self.root), "--runroot", str(self.runroot),
                "--tmpdir", str(self.tmpdir), "--storage-driver", "overlay", *args]

    def version_argv(self, _tool: str) -> list[str]:
        """`podman --version` (the same for every podkit stage it is compared with)."""
        return [self.exe, "--version"]

    def pull_argv(self, ref: str) -> list[str]:
        return self.cmd("pull", "--tls-verify=false", ref)

    def run_argv(self, ref: str, command: list[str]) -> list[str]:
        return self.cmd("run", "--rm", "--network", "none", "--tls-verify=false", ref, *command)

    def reset(self) -> None:
        """Empty the store (image cache included) and initialise a fresh one, untimed."""
        problems = self.cleanup()
        if problems:
            raise BenchFailure("podman store cleanup: " + "; ".join(problems))
        for d in (self.root, self.runroot, self.tmpdir, self.base / "image-copy"):
            shutil.rmtree(d, ignore_errors=True)
            if d.exists():
                raise BenchFailure(f"could not empty {d}")
        (self.base / "image-copy").mkdir()
        self.images()  # creates the store and its database, like any first command

    def cleanup(self) -> list[str]:
        """Remove leftover containers, conmon processes and mounts; returns problems."""
        problems = delete_runc_containers(RUNC_STATE)
        problems += kill_pidfile_processes(self.runroot) + kill_pidfile_processes(self.tmpdir)
        problems += unmount_all_under(self.base)
        return problems

    def images(self) -> dict[str, str]:
        """Image names in the store and their manifest digests (`podman images`)."""
        out = check_output(self.cmd("images", "--format", "json"), self.env, "podman images")
        return {n: img.get("Digest", "") for img in json.loads(out or "[]")
                for n in img.get("Names") or []}

    def unpacked_files(self) -> int:
        """Regular files in the unpacked layers (<root>/overlay/<layer>/diff)."""
        return count_files(sorted((self.root / "overlay").glob("*/diff")))

    def containers(self) -> list[str]:
        """Ids of all containers (running or not)."""
        out = check_output(self.cmd("ps", "-a", "--format", "json"), self.env, "podman ps")
        return [c["Id"] for c in json.loads(out or "[]")]

    def describe(self) -> dict[str, Any]:
        """What `podman info` says about driver, runtime and cgroups; checks the setup."""
        info = json.loads(check_output(self.cmd("info", "--format", "json"), self.env,
                                       "podman info"))
        store, host = info["store"], info["host"]
        desc = {
            "driver": store["graphDriverName"],
            "graph_options": store.get("graphOptions") or {},
            "runtime": host["ociRuntime"]["name"],
            "runtime_path": host["ociRuntime"]["path"],
            "conmon": host["conmon"]["path"],
            "cgroup_manager": host["cgroupManager"],
            "cgroup_version": host.get("cgroupVersion"),
            "root": store["graphRoot"],
        }
        wrong = [k for k, want in (("driver", "overlay"), ("runtime", "runc"),
                                   ("cgroup_manager", "cgroupfs")) if desc[k] != want]
        if wrong or any("mount_program" in k for k in desc["graph_options"]):
            raise BenchFailure(f"podman is not set up as the bench needs: {desc}")
        return desc


def versions() -> dict[str, str]:
    """Versions of podman, runc and conmon (first line of each --version)."""
    out: dict[str, str] = {}
    for name in ("podman", "runc", "conmon"):
        try:
            res = subprocess.run([name, "--version"], capture_output=True, text=True, timeout=10)
            out[name] = res.stdout.strip().splitlines()[0] if res.stdout.strip() else "?"
        except OSError:
            out[name] = "missing"
    return out
