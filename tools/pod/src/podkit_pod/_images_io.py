"""`pod load` / `pod save` / `pod import` / `pod export`: the stage functions, in-process.

    pod load -i FILE    for each image of the archive:
                            pod-image-pull docker-archive:FILE:@N | pod-storage import
                        (oci-archive:FILE[:REF] for an OCI archive), then its other names
                        as tags, like podman load
    pod save            pod-storage save
    pod import          pod-storage import-tarball
    pod export          pod-storage export

Loading never reads an archive itself: the puller lists the archive's images
(``archive_images``) and pulls each one, verifying every digest as it does for a
registry, and the store imports the verified blobs.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any, BinaryIO


def load_images(roots: Roots, source: str | BinaryIO, *, progress: Progress = NULL,
                signature_policy: str | None = None) -> list[dict[str, Any]]:
    """Pull and import every image of the docker-archive or oci-archive ``source`` (a path,
    or a stream copied to a temporary file first); return the stored-image documents."""
    if isinstance(source, str):
        return _load_file(roots, os.path.abspath(source), progress, signature_policy)
    roots.runroot.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=roots.runroot, prefix=".tmp-load-",
                                     suffix=".tar") as tmp:
        shutil.copyfileobj(source, tmp, 1024 * 1024)
        tmp.flush()
        return _load_file(roots, tmp.name, progress, signature_policy)


def _load_file(roots: Roots, path: str, progress: Progress,
               signature_policy: str | None) -> list[dict[str, Any]]:
    opener = _decompressor(path)
    if opener is None:
        return _load_tar(roots, path, progress, signature_policy)
    # podman load takes compressed archives too; the puller reads tars in place, so a
    # compressed one is inflated to a temporary file first.
    roots.runroot.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=roots.runroot, prefix=".tmp-load-",
                                     suffix=".tar") as tmp:
        try:
            with opener(path) as src:
                shutil.copyfileobj(src, tmp, 1024 * 1024)
        except (OSError, EOFError, ValueError) as exc:
            from podkit_common.errors import VerificationFailed

            raise VerificationFailed(f"load {path}: cannot decompress it: {exc}",
                                     hint="the archive is truncated or corrupt") from None
        tmp.flush()
        return _load_tar(roots, tmp.name, progress, signature_policy)


def _decompressor(path: str) -> Any:
    """How to open ``path`` decompressed, or None when it is not compressed."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        from podkit_common.errors import from_os_error

        raise from_os_error(exc, "load") from None
    if head.startswith(b"\x1f\x8b"):
        import gzip

        return gzip.open
    if head.startswith(b"BZh"):
        import bz2

        return bz2.open
    if head.startswith(b"\xfd7zXZ\x00"):
        import lzma

        return lzma.open
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard

        return lambda p: zstandard.open(p, "rb")
    return None


def _load_tar(roots: Roots, path: str, progress: Progress,
              signature_policy: str | None) -> list[dict[str, Any]]:
    from podkit_image_pull import archive_images, pull
    from podkit_storage import import_image, tag_image

    docs = []
    for entry in archive_images(path):
        doc = pull(entry["reference"], root=roots.root, progress=progress,
                   signature_policy=signature_policy)
        doc = import_image(doc, roots, progress)
        more = [n for n in entry["names"] if n != doc["image"].get("name")]
        if more:
            tag_image(roots, doc["image"]["id"], more)
        docs.append({**doc, "loaded": {"reference": entry["reference"],
                                       "names": entry["names"]}})
    return docs


def loaded_names(docs: list[dict[str, Any]]) -> list[str]:
    """What podman load prints after "Loaded image: ": the names the archive gave each
    image, or ``sha256:<id>`` for an image without one."""
    out: list[str] = []
    for doc in docs:
        out.extend(doc["loaded"]["names"] or [f"sha256:{doc['image']['id']}"])
    return list(dict.fromkeys(out))
