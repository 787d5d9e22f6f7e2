"""`pod kube down`: remove what `pod kube play` made for a YAML file: its pods (running
ones stopped first, with their stop timeout, as podman's kube down does) and the
volumes play made for its PersistentVolumeClaims (those carrying ``PLAY_LABEL``; a
volume that was there before play is left alone).

Report (``urn:podkit:pod:kube-down``)::

    {"changed", "pods": [{"id", "name"}], "volumes": [NAME, ...], "notes": [...]}
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_pod import _kube_model as M
from podkit_pod._kube_play import PLAY_LABEL

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def down(roots: Roots, text: str, *, source: str = "YAML") -> dict[str, Any]:
    """`pod kube down`: remove the pods the YAML names (running ones are stopped) and
    the volumes `kube play` made for its claims. No pod of the YAML left is NotFound."""
    from podkit_pod import _pods
    from podkit_runtime import inspect_volume, remove_volume
    from podkit_runtime._pod_reports import pod_exists

    docs = M.load_documents(text, source)
    names = [M.pod_documents(d, source)[0] for d in docs if d["kind"] in ("Pod", "Deployment")]
    claims = [M.object_name(d, source) for d in docs if d["kind"] == "PersistentVolumeClaim"]
    removed, notes = [], []
    for name in names:
        if not pod_exists(roots, name):
            notes.append(f"no pod {name}: nothing to remove")
            continue
        out = _pods.remove(roots, name, force=True, timeout=None)
        removed.append({"id": out["pod"]["id"], "name": name})
    if names and not removed:
        raise errors.NotFound(f"no pod with name or ID {names[0]} found: no such pod",
                              hint="pod pod ps lists the pods")
    gone = []
    for claim in claims:
        with contextlib.suppress(errors.NotFound, errors.UsageError):
            if (inspect_volume(roots, claim).get("Labels") or {}).get(PLAY_LABEL):
                remove_volume(roots, claim)
                gone.append(claim)
    return {"changed": bool(removed or gone), "pods": removed, "volumes": gone,
            "notes": notes}


def read_text(path: str) -> str:
    """A YAML file's text ("-": stdin is the CLI's business, not this)."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise errors.NotFound(f"reading {path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise errors.InvalidDocument(f"reading {path}: {exc}") from None
