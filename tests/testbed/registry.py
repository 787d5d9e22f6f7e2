"""A throwaway distribution registry (Debian's docker-registry) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .procs import cmdline, is_alive, stop_pid

__all__ = ["LocalRegistry", "RegistryError", "free_port", "is_registry_process",
           "registry_answers", "stop_pid"]

REGISTRY_BIN = Path("/usr/bin/docker-registry")


class RegistryError(RuntimeError):
    """The registry did not start or did not stop."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_answers(url: str, timeout: float = 1.0, *, scheme: str = "http",
                     statuses: tuple[int, ...] = (200,)) -> bool:
    """True if GET SCHEME://URL/v2/ returns one of statuses (200; 401 too for auth)."""
    try:
        resp = httpx.get(f"{scheme}://{url}/v2/", timeout=timeout, trust_env=False,
                         verify=False)
    except httpx.HTTPError:
        return False
    return resp.status_code in statuses


def is_registry_process(pid: int, config: Path | None = None) -> bool:
    """True if pid is a live docker-registry (serving config, if given); guards pid reuse."""
    argv = cmdline(pid)
    if not argv or not is_alive(pid) or "docker-registry" not in argv[0]:
        return False
    return config is None or str(config) in argv


class LocalRegistry:
    """docker-registry serving plain HTTP on 127.0.0.1 with its own storage.

    Use as a context manager or call start()/stop(). With state_dir=None a temporary
    directory is created and removed by stop(); a given state_dir is kept. detach=True
    starts the registry in its own session so it outlives this process.
    extra_config is merged into the generated config.yml (e.g. {"auth": {"htpasswd":
    {...}}, "http": {"tls": {...}}}); with http.tls the registry speaks HTTPS. probe(url)
    replaces the readiness check (GET /v2/ answers) where that cannot work (client certs).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        detach: bool = False,
        startup_timeout: float = 20.0,
        extra_config: dict | None = None,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        self.extra_config = extra_config or {}
        self._probe = probe
        self._owns_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="podkit-registry-")).resolve()
        self.storage_dir = self.state_dir / "storage"
        self.config_path = self.state_dir / "config.yml"
        self.log_path = self.state_dir / "registry.log"
        self._fixed_port = port
        self._detach = detach
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """"127.0.0.1:PORT" (no scheme), as image references want it."""
        if self.port is None:
            raise RegistryError("registry not started")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The registry process id, or None when not running."""
        return self._proc.pid if self._proc else None

    def _write_config(self, port: int) -> None:
        # JSON is valid YAML, so no YAML writer is needed.
        config = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{port}", "secret": "podkit-testbed"},
        }
        _merge_config(config, self.extra_config)
        self.config_path.write_text(json.dumps(config, indent=2))

    @property
    def scheme(self) -> str:
        """"https" when extra_config configures TLS, else "http"."""
        return "https" if self.extra_config.get("http", {}).get("tls") else "http"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the registry log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> LocalRegistry:
        """Start the registry and wait until /v2/ answers; retries a lost port race."""
        if self._proc is not None:
            return self
        if not REGISTRY_BIN.exists():
            raise RegistryError(f"{REGISTRY_BIN} not found: install the docker-registry package")
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else 5
        for _ in range(attempts):
            port = self._fixed_port or free_port()
            if self._try_start(port):
                self.port = port
                return self
            if "address already in use" not in self.log_tail().lower():
                break
        raise RegistryError(
            f"docker-registry did not answer on 127.0.0.1:{port}/v2/ within "
            f"{self._startup_timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
        )

    def _try_start(self, port: int) -> bool:
        self._write_config(port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(REGISTRY_BIN), "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.state_dir, start_new_session=self._detach,
            )
        self._proc = proc
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if self._probe(f"127.0.0.1:{port}") if self._probe else registry_answers(
                    f"127.0.0.1:{port}", timeout=0.5, scheme=self.scheme,
                    statuses=(200, 401) if "auth" in self.extra_config else (200,)):
                return True
            time.sleep(0.05)
        self._terminate()
        return False

    def _terminate(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop our registry process (by pid only) and remove the state dir if we made it."""
        self._terminate(timeout)
        self.port = None
        if self._owns_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _merge_config(base: dict, extra: dict) -> None:
    """Merge extra into base in place, recursing into nested dicts."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_config(base[key], value)
        else:
            base[key] = value
