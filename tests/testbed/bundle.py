"""Minimal OCI bundles with busybox, for probing runc (no podkit code involved)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .layers import busybox_binary


def make_busybox_bundle(bundle: Path, args: list[str]) -> Path:
    """Write bundle/config.json (from `runc spec`) and a rootfs holding only busybox.

    The process runs args (e.g. ["/bin/busybox", "true"]) without a terminal.
    """
    rootfs = bundle / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    busybox = rootfs / "bin" / "busybox"
    busybox.write_bytes(busybox_binary())
    busybox.chmod(0o755)
    subprocess.run(
        [_runc(), "spec", "--bundle", str(bundle)], check=True, capture_output=True
    )
    config_path = bundle / "config.json"
    spec = json.loads(config_path.read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = list(args)
    spec["root"] = {"path": "rootfs", "readonly": True}
    config_path.write_text(json.dumps(spec, indent=2))
    return bundle


def _runc() -> str:
    path = shutil.which("runc")
    if path is None:
        raise FileNotFoundError("runc not on PATH")
    return path
