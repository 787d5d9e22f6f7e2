"""The loopback registry for the bench: Debian's docker-registry over a storage dir that
persists in the cache, so images pushed once are only checked (HEAD) on later runs."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.testbed.registry import LocalRegistry, is_registry_process, stop_pid


class Registry:
    """Start a LocalRegistry on a kept state dir; stop a stale one a killed bench left.

    fresh=True empties its storage first (after the large image was rebuilt, so old
    blobs do not pile up). Callers hold the bench lock, so a live registry recorded in
    the pid file can only be one an earlier bench started and did not stop.
    """

    def __init__(self, state_dir: Path, *, fresh: bool = False) -> None:
        self.state_dir = state_dir
        self.fresh = fresh
        self.pid_file = state_dir / "registry.pid"
        self._reg: LocalRegistry | None = None

    @property
    def url(self) -> str:
        assert self._reg is not None
        return self._reg.url

    def __enter__(self) -> Registry:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            stale = int(self.pid_file.read_text())
        except (OSError, ValueError):
            stale = 0
        if stale and is_registry_process(stale, self.state_dir / "config.yml"):
            stop_pid(stale)
        if self.fresh:
            shutil.rmtree(self.state_dir / "storage", ignore_errors=True)
        self._reg = LocalRegistry(self.state_dir).start()
        self.pid_file.write_text(f"{self._reg.pid}\n")
        return self

    def prime(self, digests: tuple[str, ...]) -> int:
        """Read these blobs' files once so every timed pull finds them in the page cache
        (the registry's storage is on disk); returns the bytes read."""
        blobs = self.state_dir / "storage" / "docker" / "registry" / "v2" / "blobs"
        total = 0
        for digest in digests:
            algo, hexd = digest.split(":", 1)
            with open(blobs / algo / hexd[:2] / hexd / "data", "rb") as fh:
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
        return total

    def __exit__(self, *exc: object) -> None:
        if self._reg is not None:
            self._reg.stop()
            self._reg = None
        self.pid_file.unlink(missing_ok=True)
