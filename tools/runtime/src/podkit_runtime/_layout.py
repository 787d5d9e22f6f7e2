"""Where pod-runtime keeps things.

    <runroot>/bundles/<id>/config.json       the OCI bundle (rootfs is the storage mount)
    <runroot>/bundles/<id>/{hosts,hostname,resolv.conf}   generated, bind-mounted
    <runroot>/runc/                          runc's own state root (--root)
"""

from __future__ import annotations

from pathlib import Path

from podkit_common.records import record
from podkit_common.roots import Roots


@record(frozen=True)
class RuntimeLayout:
    roots: Roots

    def bundle(self, cid: str) -> Path:
        return self.roots.runroot / "bundles" / cid

    @property
    def runc_root(self) -> Path:
        return self.roots.runroot / "runc"
