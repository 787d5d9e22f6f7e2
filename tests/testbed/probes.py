"""Capability probes: each tries the real thing once per process and caches the outcome.

The boolean functions answer "can this machine do X"; probe(marker) also says why not,
for skip reasons.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .bundle import make_busybox_bundle
from .registry import REGISTRY_BIN


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of a probe: ok, what was tried, and what failed (empty when ok)."""

    ok: bool
    probed: str
    failure: str = ""

    @property
    def reason(self) -> str:
        """A skip reason: "probed <what>: <failure>"."""
        return f"probed {self.probed}: {self.failure or 'ok'}"


def _run(args: list[str], timeout: float = 20) -> tuple[bool, str]:
    try:
        res = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{args[0]}: {e}"
    if res.returncode != 0:
        err = (res.stderr or res.stdout).decode(errors="replace").strip()[-300:]
        return False, f"`{' '.join(args)}` exited {res.returncode}: {err}"
    return True, ""


@functools.cache
def _root() -> ProbeResult:
    ok = os.geteuid() == 0
    return ProbeResult(ok, "os.geteuid() == 0", "" if ok else f"euid is {os.geteuid()}")


@functools.cache
def _overlay() -> ProbeResult:
    probed = f"mount -t overlay in {tempfile.gettempdir()}"
    if not _root().ok:
        return ProbeResult(False, probed, "not root")
    with tempfile.TemporaryDirectory(prefix="podkit-probe-overlay-") as tmp:
        t = Path(tmp)
        for d in ("lower", "upper", "work", "merged"):
            (t / d).mkdir()
        (t / "lower" / "f").write_text("x")
        opts = f"lowerdir={t}/lower,upperdir={t}/upper,workdir={t}/work"
        ok, err = _run(["mount", "-t", "overlay", "overlay", "-o", opts, str(t / "merged")])
        if not ok:
            return ProbeResult(False, probed, err)
        try:
            if not (t / "merged" / "f").exists():
                return ProbeResult(False, probed, "mounted, but the lower file is not visible")
        finally:
            _run(["umount", str(t / "merged")])
    return ProbeResult(True, probed)


@functools.cache
def _runc() -> ProbeResult:
    probed = "`runc run` of a busybox `true` bundle"
    if not _root().ok:
        return ProbeResult(False, probed, "not root")
    runc = shutil.which("runc")
    if runc is None:
        return ProbeResult(False, probed, "runc not on PATH")
    with tempfile.TemporaryDirectory(prefix="podkit-probe-runc-") as tmp:
        state, bundle = Path(tmp) / "state", Path(tmp) / "bundle"
        cid = f"podkit-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            make_busybox_bundle(bundle, ["/bin/busybox", "true"])
            ok, err = _run([runc, "--root", str(state), "run", "--bundle", str(bundle), cid])
        except (OSError, subprocess.CalledProcessError) as e:
            ok, err = False, f"could not make the bundle: {e}"
        finally:
            if state.exists():
                _run([runc, "--root", str(state), "delete", "--force", cid])
    return ProbeResult(ok, probed, err)


@functools.cache
def _netns() -> ProbeResult:
    ok, err = _run(["unshare", "--net", "true"])
    return ProbeResult(ok, "`unshare --net true`", err)


@functools.cache
def _registry() -> ProbeResult:
    ok = REGISTRY_BIN.exists()
    return ProbeResult(ok, f"{REGISTRY_BIN} exists", "" if ok else "not installed")


@functools.cache
def _bash() -> ProbeResult:
    ok = shutil.which("bash") is not None
    return ProbeResult(ok, "bash on PATH", "" if ok else "not found")


# marker name -> probe
PROBES: dict[str, Callable[[], ProbeResult]] = {
    "root": _root,
    "overlay": _overlay,
    "runc": _runc,
    "netns": _netns,
    "registry": _registry,
    "e2e": _bash,
}


def probe(marker: str) -> ProbeResult:
    """Run (once) the probe behind a pytest marker name; KeyError for unknown markers."""
    return PROBES[marker]()


def is_root() -> bool:
    """True when running as euid 0."""
    return _root().ok


def overlay_works() -> bool:
    """True when an overlay of two temp dirs can be mounted and unmounted."""
    return _overlay().ok


def runc_works() -> bool:
    """True when runc can run a busybox `true` container here."""
    return _runc().ok


def netns_works() -> bool:
    """True when `unshare --net true` succeeds."""
    return _netns().ok


def registry_available() -> bool:
    """True when Debian's docker-registry binary is installed."""
    return _registry().ok
