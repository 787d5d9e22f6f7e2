"""Where podkit keeps its state: ``--root`` (persistent) and ``--runroot`` (dies with a reboot).

Precedence: the command-line flag, then PODKIT_ROOT / PODKIT_RUNROOT, then the defaults
/var/lib/podkit and /run/podkit.
"""

from __future__ import annotations

import os
from pathlib import Path

from podkit_common.records import record

DEFAULT_ROOT = "/var/lib/podkit"
DEFAULT_RUNROOT = "/run/podkit"


@record(frozen=True)
class Roots:
    root: Path
    runroot: Path

    def as_dict(self) -> dict[str, str]:
        return {"root": str(self.root), "runroot": str(self.runroot)}


def resolve_roots(root: str | os.PathLike[str] | None = None,
                  runroot: str | os.PathLike[str] | None = None,
                  env: dict[str, str] | None = None) -> Roots:
    env = os.environ if env is None else env
    r = root or env.get("PODKIT_ROOT") or DEFAULT_ROOT
    rr = runroot or env.get("PODKIT_RUNROOT") or DEFAULT_RUNROOT
    return Roots(Path(os.path.abspath(r)), Path(os.path.abspath(rr)))


def make_private(roots: Roots) -> None:
    """Root and runroot hold private state (records, logs, container filesystems):
    create them 0700 when missing, and take group and other access away from ones we
    own (podman's graphroot and runroot are 0700 too). Two ``stat`` calls on the hot
    path; never raises (the command that needs a root says what is wrong with it)."""
    for path in (roots.root, roots.runroot):
        try:
            st = os.stat(path)
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(path, 0o700)
        except FileNotFoundError:
            try:
                os.makedirs(path, mode=0o700, exist_ok=True)
            except OSError:
                continue
        except OSError:
            continue
