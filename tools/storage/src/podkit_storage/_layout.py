"""Where pod-storage keeps things under the roots (one place, so nothing else guesses).

    <root>/layers/<chain-hex>/diff          unpacked layer, overlay form
    <root>/layers/<chain-hex>/layer.json    written last: its presence means "complete"
    <root>/layers/<chain-hex>/verified.json the summary `check` last verified against the blob
    <root>/layers/.tmp-*                    half-made layers, removed by the next import
    <root>/images/<id>.json                 image records (id = config digest hex)
    <root>/containers/<id>/container.json   container records, written last
    <root>/containers/<id>/{upper,work}     the container's writable overlay layer
    <root>/containers/names/<name>          name reservations (created with O_EXCL)
    <root>/locks/                           per-object flock files
    <root>/containers/<id>/rootfs           the vfs driver's rootfs (a plain copy)
    <root>/overlay/l/<26 chars>             short links to layer diff dirs (deep images)
    <runroot>/mounts/<id>                   the container's merged rootfs mount point
    <runroot>/storage/<id>.json             the container's mount count
"""

from __future__ import annotations

from pathlib import Path

from podkit_common.records import record
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from podkit_common.locks import FileLock


@record(frozen=True)
class StoreLayout:
    roots: Roots

    @property
    def layers(self) -> Path:
        return self.roots.root / "layers"

    def layer_dir(self, chain_hex: str) -> Path:
        return self.layers / chain_hex

    @property
    def images(self) -> Path:
        return self.roots.root / "images"

    def image_record(self, image_id: str) -> Path:
        return self.images / f"{image_id}.json"

    @property
    def containers(self) -> Path:
        return self.roots.root / "containers"

    def container_dir(self, cid: str) -> Path:
        return self.containers / cid

    @property
    def names(self) -> Path:
        return self.containers / "names"

    @property
    def locks(self) -> Path:
        return self.roots.root / "locks"

    def container_lock(self, cid: str, timeout: float | None = None) -> FileLock:
        """The container's lock; a late comer that finds the container gone (its
        directory removed meanwhile) does not leave the lock file behind."""
        from podkit_common.locks import object_lock

        return object_lock(self.locks, "container", cid, timeout=timeout,
                           keep_while=(self.container_dir(cid),))

    def mountpoint(self, cid: str) -> Path:
        return self.roots.runroot / "mounts" / cid

    def mount_state(self, cid: str) -> Path:
        """The container's mount count (runtime state: gone after a reboot, like mounts)."""
        return self.roots.runroot / "storage" / f"{cid}.json"

    def vfs_rootfs(self, cid: str) -> Path:
        return self.container_dir(cid) / "rootfs"

    @property
    def overlay_links(self) -> Path:
        """Short symlinks to layer diff dirs, for mount options that fit one page."""
        return self.roots.root / "overlay" / "l"

    @property
    def empty_layer(self) -> Path:
        """An empty lower dir for images without layers (overlay needs one lower)."""
        return self.layers / "empty"
