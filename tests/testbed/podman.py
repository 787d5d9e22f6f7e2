"""podman as a test oracle: Debian's podman with its own roots, config and namespace.

``PodmanOracle(base)`` keeps a private mount namespace alive (a holder process made
with ``unshare --mount``) in which the host paths podman writes whatever its flags say
— /var/lib/containers (blob-info cache), /run/containers, /run/runc — are covered by
directories under ``base``. Every podman command runs in that namespace (``nsenter``),
with --root/--runroot/--tmpdir under ``base`` and a containers.conf for this host
(runc + cgroupfs, no default ulimits, file events; see MACHINE-NOTES). Containers get
``--network none`` from the tests that create them: podman's own networks are never
used. ``close()`` removes podman's containers, stops what is left in the namespace and
lets the namespace (and every mount podman made in it) go away.

podman is an oracle in tests only, never a dependency of podkit; tests that need it
are skipped with a reason when it is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.testbed.procs import is_alive, stop_pid

#: Host paths podman uses regardless of --root/--runroot, covered in its namespace.
SHADOWED = ("/var/lib/containers", "/run/containers", "/run/runc")


def available() -> str | None:
    """None if podman can be used as an oracle here, else the reason it cannot."""
    for tool in ("podman", "unshare", "nsenter", "runc", "conmon"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install.sh installs it)"
    return None


def containers_conf(base: Path) -> str:
    """containers.conf for this host: runc + cgroupfs, no ulimits, file events and locks."""
    return f"""\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
image_copy_tmp_dir = "{base / "image-copy"}"

[network]
network_config_dir = "{base / "networks"}"
"""


def storage_conf(root: Path, runroot: Path) -> str:
    """storage.conf: the overlay driver (what podkit uses) on our own roots."""
    return f"""\
[storage]
driver = "overlay"
graphroot = "{root}"
runroot = "{runroot}"
"""


def registries_conf(insecure: list[str]) -> str:
    """registries.conf with no search registries and the given plain-HTTP registries."""
    text = "unqualified-search-registries = []\n"
    for loc in insecure:
        text += f'\n[[registry]]\nlocation = "{loc}"\ninsecure = true\n'
    return text


class PodmanOracle:
    """podman in its own namespace and roots under ``base`` (see the module doc)."""

    def __init__(self, base: Path, *, insecure_registries: list[str] | None = None) -> None:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        self.base = base
        self.root = base / "root"
        # podman refuses a runroot longer than 50 characters: a short one in /tmp
        self.runroot = Path(tempfile.mkdtemp(prefix="pko-", dir="/tmp"))
        self.tmpdir = base / "tmp"
        conf = base / "conf"
        for d in (conf, base / "image-copy", base / "networks", self.tmpdir,
                  *(self._shadow(h) for h in SHADOWED)):
            d.mkdir(parents=True, exist_ok=True)
        (conf / "containers.conf").write_text(containers_conf(base))
        (conf / "storage.conf").write_text(storage_conf(self.root, self.runroot))
        (conf / "registries.conf").write_text(registries_conf(insecure_registries or []))
        (conf / "policy.json").write_text(
            '{"default": [{"type": "insecureAcceptAnything"}]}\n')
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(base), "XDG_RUNTIME_DIR": str(base / "xdg"),
            "XDG_CONFIG_HOME": str(base / "xdg-config"),
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
        }
        self.policy = conf / "policy.json"
        self._holder = self._start_holder()

    def _shadow(self, host: str) -> Path:
        return self.base / "shadow" / host.strip("/").replace("/", "_")

    def _start_holder(self) -> subprocess.Popen[bytes]:
        binds = []
        for host in SHADOWED:
            binds.append(f"mkdir -p {host} && mount --bind {self._shadow(host)} {host}")
        script = " && ".join(binds) + " && echo ready && exec sleep infinity"
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            proc.kill()
            proc.wait()
            raise RuntimeError(f"podman oracle namespace did not start: {err}")
        return proc

    def argv(self, *args: str) -> list[str]:
        """The command line of ``podman ARGS`` in the oracle's namespace and roots."""
        return ["nsenter", "-t", str(self._holder.pid), "-m", "--",
                "podman", "--root", str(self.root), "--runroot", str(self.runroot),
                "--tmpdir", str(self.tmpdir), "--storage-driver", "overlay", *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run podman; raise with its stderr when it fails and ``check``."""
        res = subprocess.run(self.argv(*args), env=self.env, capture_output=True,
                             timeout=timeout, input=input.decode() if input else None,
                             text=True)
        if check and res.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stderr}")
        return res

    def json(self, *args: str) -> Any:
        """Run a podman command that prints JSON and parse it."""
        return json.loads(self.run(*args).stdout or "null")

    def pull(self, ref: str) -> str:
        """Pull ``ref`` (plain HTTP allowed) and return the image id."""
        self.run("pull", "--tls-verify=false", "--signature-policy", str(self.policy),
                 "-q", ref)
        return self.json("image", "inspect", ref)[0]["Id"]

    def bundle_config(self, container: str) -> dict[str, Any]:
        """The OCI config.json podman wrote for ``container`` (after `podman init`)."""
        info = self.json("container", "inspect", container)[0]
        return json.loads(Path(info["StaticDir"], "config.json").read_text())

    def close(self) -> list[str]:
        """Remove podman's containers, stop the namespace; returns problems (never raises)."""
        problems: list[str] = []
        try:
            res = self.run("rm", "--all", "--force", "--time", "0", check=False, timeout=60)
            if res.returncode != 0:
                problems.append(f"podman rm --all: {res.stderr.strip()}")
        except (OSError, subprocess.SubprocessError) as e:
            problems.append(f"podman rm --all: {e}")
        problems += self._stop_namespace_members()
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
        shutil.rmtree(self.runroot, ignore_errors=True)
        return problems

    def _stop_namespace_members(self) -> list[str]:
        """Stop processes (conmon, containers) left in the oracle's mount namespace."""
        try:
            ns = os.readlink(f"/proc/{self._holder.pid}/ns/mnt")
        except OSError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self._holder.pid:
                continue
            try:
                if os.readlink(entry / "ns" / "mnt") != ns:
                    continue
            except OSError:
                continue
            pid = int(entry.name)
            if is_alive(pid):
                found.append(f"stopped pid {pid} left in podman's namespace")
                stop_pid(pid, timeout=2.0)
        return found

    def __enter__(self) -> PodmanOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
