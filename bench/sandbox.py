"""Keep the bench off everyone's real state: a private mount namespace and tmpfs dirs.

The whole bench runs in its own mount namespace (`unshare --mount`, entered by
re-executing itself once). There, podman's host-wide defaults that no flag moves —
/var/lib/containers (its blob-info cache), /run/containers (network run dir) and
/run/runc (runc's state for podman's containers) — are covered by bind mounts of
directories in the bench's scratch dir on /dev/shm, so podman writes nothing outside
it. Every mount either side makes stays in this namespace and is undone before exit.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from pathlib import Path

from tests.testbed.env import mounts_under, unmount_all_under
from tests.testbed.procs import cmdline, is_alive, stop_pid

from .runner import BenchFailure

NS_MARKER = "PODKIT_BENCH_NAMESPACE"
#: Host paths podman writes to whatever --root/--runroot say.
SHADOWED = ("/var/lib/containers", "/run/containers", "/run/runc")
MS_BIND = 0x1000


def ensure_namespace(argv: list[str]) -> None:
    """Re-exec this command in a new private mount namespace unless already in one."""
    if os.environ.get(NS_MARKER) == str(os.getpid()):
        return
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SystemExit("bench: needs unshare(1) from util-linux")
    os.environ[NS_MARKER] = str(os.getpid())  # exec keeps the pid
    os.execv(unshare, [unshare, "--mount", "--propagation", "private", "--",
                       sys.executable, "-m", "bench", *argv])


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _bind(source: Path, target: Path) -> None:
    if _libc().mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind mount {source} on {target}: {os.strerror(err)}")


class Sandbox:
    """The bench's scratch dir on /dev/shm, with the host paths podman uses shadowed."""

    def __init__(self, parent: Path) -> None:
        self.base = parent / f"podkit-bench-{os.getpid()}"
        self._created: list[Path] = []  # host dirs we had to create as mount points
        self._bound: list[Path] = []

    def __enter__(self) -> Sandbox:
        if os.environ.get(NS_MARKER) != str(os.getpid()):
            raise RuntimeError("the sandbox needs the bench's own mount namespace")
        self.base.mkdir(parents=True)
        try:
            for host in map(Path, SHADOWED):
                if not host.exists():
                    host.mkdir()
                    self._created.append(host)
                shadow = self.base / "shadow" / host.relative_to("/").as_posix().replace("/", "_")
                shadow.mkdir(parents=True)
                _bind(shadow, host)
                self._bound.append(host)
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def remove_stale(parent: Path) -> None:
        """Remove scratch dirs of earlier benches whose process is gone (killed)."""
        for old in parent.glob("podkit-bench-*"):
            pid = old.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                unmount_all_under(old)
                shutil.rmtree(old, ignore_errors=True)

    def dir(self, *parts: str) -> Path:
        """A directory under the scratch dir (created)."""
        path = self.base.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> list[str]:
        """Stop what is left in the namespace, unmount everything under the scratch dir
        and the shadows, remove what we made. Returns problems (never raises)."""
        problems = _stop_namespace_stragglers()
        if self.base.exists():
            problems += unmount_all_under(self.base)
        for host in reversed(self._bound):
            problems += unmount_all_under(host)
        self._bound.clear()
        shutil.rmtree(self.base, ignore_errors=True)
        for host in reversed(self._created):
            try:
                host.rmdir()  # only if still empty on the host
            except OSError as e:
                problems.append(f"could not remove {host}, which the bench created: {e}")
        self._created.clear()
        problems.extend(f"still mounted: {p}" for p in mounts_under(self.base))
        if self.base.exists():
            problems.append(f"could not remove {self.base}")
        return problems

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        problems = self.close()
        if problems:
            print("bench: cleanup problems:\n  " + "\n  ".join(problems), file=sys.stderr)
            if exc_type is None:
                raise BenchFailure("the bench could not clean up after itself (see above)")


def _stop_namespace_stragglers() -> list[str]:
    """Stop processes left in this mount namespace (a conmon the bench's commands left
    behind would keep the namespace, and its mounts, alive after the bench exits)."""
    me = os.getpid()
    try:
        ours = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if os.readlink(entry / "ns" / "mnt") != ours:
                continue
        except OSError:
            continue
        pid = int(entry.name)
        if pid == os.getppid() or not is_alive(pid):
            continue
        found.append(f"stopped pid {pid} left in the bench's namespace: {' '.join(cmdline(pid))}")
        stop_pid(pid, timeout=2.0)
    return found
