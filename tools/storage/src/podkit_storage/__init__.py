"""podkit_storage: the layer store and container root filesystems on overlayfs.

Library API (plain dicts in, plain dicts out; no typer, no stdin/stdout)::

    import_image(doc, roots, progress) -> doc      unpack layers once, record the image
    create_container(doc, roots, name=) -> doc     writable layer + overlay mount
    remove_container(roots, ref) -> doc
    mount_container / unmount_container(roots, ref) -> container   (counted mounts)
    container_changes(container) -> [{"path", "kind"}]  like podman diff
    find_image(roots, ref) / list_images(roots) / list_containers(roots)
    inspect_image(roots, ref) / tag_image, untag_image(roots, ref, names)
    remove_images(roots, refs, force=) / prune_images(roots, all_unused=)
    load_container(roots, ref)
    apply_layer(stream, dest, ...) -> LayerStats   the safe extractor
    save_images(roots, refs, output, fmt=) / export_container(roots, ref, output)
    import_tarball(roots, source, reference, changes=)   (save, export, import-tarball)

Names load lazily so that ``pod-storage --version`` imports none of it.
"""

from __future__ import annotations

from podkit_common.lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start

__version__ = "0.1.0"

__all__ = [
    "LayerStats",
    "UnpackOptions",
    "apply_layer",
    "chain_ids",
    "container_changes",
    "create_container",
    "export_container",
    "find_image",
    "import_image",
    "import_tarball",
    "inspect_image",
    "list_containers",
    "list_images",
    "load_container",
    "mount_container",
    "prune_images",
    "remove_container",
    "remove_images",
    "save_images",
    "tag_image",
    "unmount_container",
    "untag_image",
]

_HOMES = {
    "LayerStats": "_extract",
    "UnpackOptions": "_extract",
    "apply_layer": "_extract",
    "chain_ids": "_images",
    "container_changes": "_rootfs",
    "create_container": "_containers",
    "export_container": "_export",
    "find_image": "_images",
    "import_image": "_images",
    "import_tarball": "_import_tarball",
    "inspect_image": "_image_report",
    "list_containers": "_containers",
    "list_images": "_images",
    "load_container": "_containers",
    "mount_container": "_containers",
    "prune_images": "_image_remove",
    "remove_images": "_image_remove",
    "remove_container": "_containers",
    "save_images": "_archive_save",
    "tag_image": "_image_tags",
    "unmount_container": "_containers",
    "untag_image": "_image_tags",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)

if TYPE_CHECKING:
    from podkit_storage._archive_save import save_images
    from podkit_storage._containers import (
        create_container,
        list_containers,
        load_container,
        mount_container,
        remove_container,
        unmount_container,
    )
    from podkit_storage._export import export_container
    from podkit_storage._extract import LayerStats, UnpackOptions, apply_layer
    from podkit_storage._image_remove import prune_images, remove_images
    from podkit_storage._image_report import inspect_image
    from podkit_storage._image_tags import tag_image, untag_image
    from podkit_storage._images import chain_ids, find_image, import_image, list_images
    from podkit_storage._import_tarball import import_tarball
    from podkit_storage._rootfs import container_changes
