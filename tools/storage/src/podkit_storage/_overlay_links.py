"""Short names for lower layers, so a deep image still fits one page of mount data.

The kernel copies overlay's mount options into a single page (4096 bytes).  With
``lowerdir=/var/lib/podkit/layers/<64 hex>/diff:...`` each lower costs ~90 bytes, so an
image of ~45 layers no longer mounts, and relative paths from a common parent only shave
the root off.  containers/storage solves this by giving every layer a 26-character
link, ``<home>/l/<ID> -> ../<layer>/diff``, and mounting from inside ``<home>`` with
``lowerdir=l/ID1:l/ID2:...``: ~29 bytes a layer whatever the root's length or the
layer ids, which is room for ~130 layers.  Overlay resolves each lower once at mount
time, so the symlinks cost nothing afterwards.  We do the same under
``<root>/overlay/l``.

The link name is derived from the layer directory (not random): two processes making
the same link agree on it, no record of it is needed, and a link left by a crash is
simply reused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from pathlib import Path

#: containers/storage's link length: 26 base32 characters (130 bits).
LINK_LENGTH = 26


def link_name(diff_dir: Path) -> str:
    """The short link name for a layer's ``diff`` directory (pure)."""
    digest = hashlib.sha256(os.fsencode(diff_dir.parent.name)).digest()
    return base64.b32encode(digest).decode()[:LINK_LENGTH]


def link_target(links_dir: Path, diff_dir: Path) -> str:
    """What the link holds: a path relative to ``links_dir``, so the root can move."""
    return os.path.relpath(diff_dir, links_dir)


def ensure_links(links_dir: Path, lower: list[Path]) -> list[Path]:
    """Make (or reuse) a short link for each lower dir; return the links in order."""
    links_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for diff_dir in lower:
        link = links_dir / link_name(diff_dir)
        target = link_target(links_dir, diff_dir)
        try:
            current = os.readlink(link)
        except FileNotFoundError:
            current = None
        if current != target:
            # Made at a temporary name and renamed over: a reader never sees a half link.
            tmp = links_dir / f".tmp-{link.name}.{os.getpid()}.{os.urandom(4).hex()}"
            os.symlink(target, tmp)
            try:
                os.rename(tmp, link)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        out.append(link)
    return out
