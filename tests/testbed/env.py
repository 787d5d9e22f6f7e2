"""Per-test podkit roots and the teardown that leaves the host as it was.

Teardown order matters: containers first (runc delete kills their processes), then
monitors, then mounts (a live container could hold them), then network namespaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from .procs import cmdline, is_alive, stop_pid

MNT_DETACH = 2
REPO_ROOT = Path(__file__).resolve().parents[2]


def venv_bin() -> Path:
    """The bin dir of the workspace venv holding the pod-* executables."""
    candidate = REPO_ROOT / ".venv" / "bin"
    # sys.executable is not resolved: a venv's python is a symlink out of the venv.
    return candidate if candidate.is_dir() else Path(sys.executable).parent


def make_env(root: Path, runroot: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """base (default os.environ) plus PODKIT_ROOT, PODKIT_RUNROOT and the venv first on PATH."""
    env = dict(os.environ if base is None else base)
    env["PODKIT_ROOT"] = str(root)
    env["PODKIT_RUNROOT"] = str(runroot)
    env["PATH"] = os.pathsep.join([str(venv_bin()), env.get("PATH", os.defpath)])
    # `pod run` defaults to the bridge network (a route outside): tests ask for it explicitly.
    env["PODKIT_NETWORK"] = "none"
    # One host-wide subnet registry for every test (tests/netsetup/conftest.TEST_NET_STATE):
    # with the default /run/podkit-net, tests that make networks there and tests using
    # this one got the same subnets at once (chaos suite), and wrote outside tmp.
    env.setdefault("PODKIT_NET_STATE_DIR", "/tmp/podkit-net-tests")
    # runc 1.1.5 here has unfixed CVEs: its one-line warning is tested in tests/security.
    env.setdefault("PODKIT_RUNTIME_CVE_ACK", "all")
    return env


def _unescape(field: bytes) -> bytes:
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)


def mounts_under(base: Path) -> list[Path]:
    """Mount points at or below base from /proc/self/mountinfo, deepest first."""
    prefix = os.fsencode(os.path.realpath(base))
    found = []
    for line in Path("/proc/self/mountinfo").read_bytes().splitlines():
        point = _unescape(line.split(b" ")[4])
        if point == prefix or point.startswith(prefix + b"/"):
            found.append(point)
    # Later mounts stack on earlier ones: reverse first, then a stable sort by depth.
    found.reverse()
    found.sort(key=lambda p: p.count(b"/"), reverse=True)
    return [Path(os.fsdecode(p)) for p in found]


def unmount_all_under(base: Path) -> list[str]:
    """Lazily unmount (MNT_DETACH) every mount under base; returns the errors."""
    libc = ctypes.CDLL(None, use_errno=True)
    errors: list[str] = []
    for _ in range(20):  # stacked mounts need several passes
        points = mounts_under(base)
        if not points:
            return errors
        progress = False
        for point in points:
            if libc.umount2(os.fsencode(point), MNT_DETACH) == 0:
                progress = True
            else:
                errors.append(f"umount2 {point}: {os.strerror(ctypes.get_errno())}")
        if not progress:
            break
    errors.extend(f"still mounted: {p}" for p in mounts_under(base))
    return errors


def delete_runc_containers(state_dir: Path) -> list[str]:
    """`runc --root state_dir delete --force` every container listed there."""
    runc = shutil.which("runc")
    if not state_dir.is_dir() or runc is None:
        return []
    res = subprocess.run([runc, "--root", str(state_dir), "list", "-q"],
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        return [f"runc list: {res.stderr.strip()}"]
    errors = []
    for cid in res.stdout.split():
        rm = subprocess.run([runc, "--root", str(state_dir), "delete", "--force", cid],
                            capture_output=True, text=True, timeout=30)
        if rm.returncode != 0:
            errors.append(f"runc delete {cid}: {rm.stderr.strip()}")
    return errors


def kill_pidfile_processes(runroot: Path, names: tuple[str, ...] = ("conmon", "runc")) -> list[str]:
    """Kill live processes named in runroot/**/*.pid whose argv[0] mentions one of names."""
    errors = []
    for pidfile in sorted(runroot.rglob("*.pid")) if runroot.is_dir() else []:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        argv = cmdline(pid)
        if pid <= 1 or not argv or not is_alive(pid):
            continue
        if any(n in os.path.basename(argv[0]) for n in names) and not stop_pid(pid, timeout=2.0):
            errors.append(f"pid {pid} from {pidfile} survived SIGKILL")
    return errors


def delete_netns(names_file: Path) -> list[str]:
    """`ip netns delete` every name listed (one per line) in names_file, if it exists."""
    if not names_file.is_file():
        return []
    errors = []
    for name in names_file.read_text().split():
        if not Path("/run/netns", name).exists():
            continue
        res = subprocess.run(["ip", "netns", "delete", name], capture_output=True, text=True)
        if res.returncode != 0:
            errors.append(f"ip netns delete {name}: {res.stderr.strip()}")
    return errors


def remove_container_cgroups(runroot: Path, cgroup_root: Path = Path("/sys/fs/cgroup")
                             ) -> list[str]:
    """rmdir the (empty) cgroups of the bundles under runroot in every hierarchy, then
    their parent's shared ``conmon`` cgroup and a pod's cgroup (a parent below the top
    level) when empty: a test whose containers were killed rather than removed would
    leave them until reboot. A cgroup still in use is left (EBUSY)."""
    import json

    paths: set[str] = set()
    for config in (runroot / "bundles").glob("*/config.json"):
        with contextlib.suppress(OSError, ValueError):
            path = (json.loads(config.read_text()).get("linux") or {}).get("cgroupsPath")
            if isinstance(path, str) and path.startswith("/") and ":" not in path:
                paths.add(path.strip("/"))
    hierarchies: list[Path] = []
    with contextlib.suppress(OSError):
        hierarchies = [h for h in cgroup_root.iterdir() if h.is_dir()]
    for path in sorted(paths):
        parent = os.path.dirname(path)
        candidates = [path, os.path.join(parent, "conmon")]
        if "/" in parent:  # /podkit/<pod id>: a pod's cgroup, not a shared top level
            candidates.append(parent)
        for hierarchy in hierarchies:
            for candidate in candidates:
                with contextlib.suppress(OSError):
                    os.rmdir(hierarchy / candidate)
    return []


def cleanup(base: Path, runroot: Path) -> list[str]:
    """Undo what podkit may have left under base/runroot; returns problems, never raises."""
    steps = [
        lambda: delete_runc_containers(runroot / "runc"),
        lambda: kill_pidfile_processes(runroot),
        lambda: remove_container_cgroups(runroot),
        lambda: unmount_all_under(base),
        lambda: delete_netns(runroot / "netns-names"),
    ]
    problems: list[str] = []
    for step in steps:
        try:
            problems.extend(step())
        except Exception as e:  # one failed step must not skip the others
            problems.append(f"{type(e).__name__}: {e}")
    return problems


@contextlib.contextmanager
def podkit_environment(base: Path) -> Iterator[dict[str, str]]:
    """Make base/root and base/runroot, yield the env for podkit tools, clean up after.

    Cleanup runs even when the body raises; problems are reported as warnings.
    """
    root, runroot = base / "root", base / "runroot"
    root.mkdir(parents=True, exist_ok=True)
    runroot.mkdir(parents=True, exist_ok=True)
    try:
        yield make_env(root, runroot)
    finally:
        problems = cleanup(base, runroot)
        if problems:
            warnings.warn("podkit_env cleanup: " + "; ".join(problems), stacklevel=2)
