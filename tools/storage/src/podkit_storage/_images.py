"""Images in the store: import (unpack layers once, keyed by chain id) and records."""

from __future__ import annotations

import contextlib
import os
import time

from podkit_common import atomic, errors
from podkit_common.locks import object_lock
from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots
from podkit_storage._layout import StoreLayout

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

#: How many layers unpack at once.
PARALLEL_LAYERS = 4


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainIDs: chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n])."""
    import hashlib

    out: list[str] = []
    for diff in diff_ids:
        if not out:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def compression_of(media_type: str) -> str:
    if media_type.endswith(("+gzip", ".gzip")):
        return "gzip"
    if media_type.endswith(("+zstd", ".zstd")):
        return "zstd"
    if media_type.endswith((".tar", "+tar")) or media_type.endswith("layer.v1.tar"):
        return "none"
    return "auto"


def _sweep_staging(layout: StoreLayout, folders: tuple[Path, ...] = ()) -> None:
    """Remove what a killed import left half-made: staging layer dirs and image records
    (``.tmp-<name>.<pid>...``) whose process is gone will never be finished; ``folders``
    instead of layers/ and images/ when given (container create: containers/, names/)."""
    for folder in folders or (layout.layers, layout.images):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if atomic.abandoned(entry.name):
                if entry.is_dir(follow_symlinks=False):
                    import shutil  # only then: its import (bz2, lzma) costs ms per create

                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def _unpack_layer(layout: StoreLayout, layer: dict[str, Any], chain: str,
                  progress: Progress) -> bool:
    """Unpack one layer into ``layers/<chain-hex>`` unless it is there; True if unpacked."""
    import shutil

    from podkit_storage._extract import UnpackOptions, apply_layer

    final = layout.layer_dir(_hex(chain))
    if (final / "layer.json").exists():
        return False
    with object_lock(layout.locks, "layer", _hex(chain)):
        if (final / "layer.json").exists():
            return False
        if final.exists():
            # A directory without layer.json is a leftover of a crash: rebuild it.
            shutil.rmtree(final)
        staging = layout.layers / f"{atomic.TMP_PREFIX}{_hex(chain)}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        task = progress.task(f"unpack {layer['digest'][:19]}", layer.get("size"))
        try:
            (staging / "diff").mkdir(parents=True)
            with open(layer["path"], "rb") as src:
                stats = apply_layer(_Counting(src, task), staging / "diff",
                                    compression=compression_of(layer.get("media_type", "")),
                                    expected_diff_id=layer["diff_id"],
                                    options=UnpackOptions(same_owner=os.geteuid() == 0))
            atomic.write_json(staging / "layer.json", {
                "chain_id": chain, "diff_id": stats.diff_id, "digest": layer["digest"],
                "size": stats.size, "entries": stats.entries,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                # What `check` re-unpacks to verify the diff: no extra work at import.
                "blob": str(layer["path"]), "media_type": layer.get("media_type", ""),
            })
            os.rename(staging, final)
            atomic.fsync_dir(layout.layers)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, FileNotFoundError) and exc.filename == layer["path"]:
                raise errors.NotFound(f"import layer {layer['digest']}: blob {layer['path']} "
                                      "is missing", hint="pull the image again") from None
            if isinstance(exc, OSError):
                raise errors.from_os_error(exc, f"import layer {layer['digest']}") from None
            raise
        finally:
            task.finish()
    return True


class _Counting:
    """A read-only stream wrapper that reports bytes read to a progress task."""

    def __init__(self, raw: Any, task: Any) -> None:
        self._raw = raw
        self._task = task

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._task.advance(len(data))
        return data

    def readinto(self, buf: Any) -> int:
        n = self._raw.readinto(buf)
        self._task.advance(n or 0)
        return n


def import_image(doc: dict[str, Any], roots: Roots, progress: Progress = NULL) -> dict[str, Any]:
    """Unpack the image's layers (each once) and record the image; return the document."""
    # Shared with other imports, exclusive with rmi/prune (_image_remove): a layer found
    # present here cannot be reclaimed before this image's record names it.
    with object_lock(StoreLayout(roots).locks, "images", "gc", shared=True):
        return _import_image(doc, roots, progress)


def _import_image(doc: dict[str, Any], roots: Roots, progress: Progress) -> dict[str, Any]:
    layout = StoreLayout(roots)
    image = dict(doc["image"])
    layers = [dict(layer) for layer in image.get("layers", [])]
    diff_ids = [layer["diff_id"] for layer in layers]
    chains = chain_ids(diff_ids)
    layout.layers.mkdir(parents=True, exist_ok=True)
    _sweep_staging(layout)
    from concurrent.futures import ThreadPoolExecutor  # only imports need it (and logging)

    with ThreadPoolExecutor(max_workers=PARALLEL_LAYERS) as pool:
        futures = [pool.submit(_unpack_layer, layout, layer, chain, progress)
                   for layer, chain in zip(layers, chains, strict=True)]
        unpacked = [f.result() for f in futures]

    for layer, chain in zip(layers, chains, strict=True):
        layer["chain_id"] = chain
        layer["diff_path"] = str(layout.layer_dir(_hex(chain)) / "diff")
    image["layers"] = layers
    image["top_layer"] = chains[-1] if chains else None
    changed = record_image(layout, image) or any(unpacked)
    return {**doc, "changed": bool(doc.get("changed")) or changed, "image": image}


def record_image(layout: StoreLayout, image: dict[str, Any]) -> bool:
    """Write or update the image record; a name moves from any other image (like a tag)."""
    layout.images.mkdir(parents=True, exist_ok=True)
    name = image.get("name")
    with object_lock(layout.locks, "images", "index"):
        path = layout.image_record(image["id"])
        old = atomic.read_json(path) if path.exists() else None
        names = list(old.get("names", [])) if old else []
        if name and name not in names:
            names.append(name)
        record = {k: v for k, v in image.items() if k not in ("names", "reference")}
        record["names"] = names
        if old is not None:
            record["stored_at"] = old.get("stored_at")
        else:
            record["stored_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if name:
            _untag_others(layout, name, keep=image["id"])
        if record == old:
            return False
        atomic.write_json(path, record)
        return True


def _untag_others(layout: StoreLayout, name: str, keep: str) -> None:
    for other in list_images(layout.roots):
        if other["id"] != keep and name in other.get("names", []):
            other["names"] = [n for n in other["names"] if n != name]
            atomic.write_json(layout.image_record(other["id"]), other)


def list_images(roots: Roots) -> list[dict[str, Any]]:
    """Every image record, oldest first."""
    layout = StoreLayout(roots)
    records = []
    try:
        entries = sorted(os.scandir(layout.images), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.endswith(".json") and not entry.name.startswith(atomic.TMP_PREFIX):
            try:
                records.append(atomic.read_json(entry.path))
            except FileNotFoundError:
                continue
    records.sort(key=lambda r: r.get("stored_at") or "")
    return records


def find_image(roots: Roots, ref: str) -> dict[str, Any]:
    """An image record by id, id prefix (>= 3 chars), or name (also without ``docker://``)."""
    want = ref.removeprefix("docker://").removeprefix("sha256:")
    images = list_images(roots)
    for record in images:
        names = record.get("names", [])
        if want in names or any(n.endswith("/" + want) or n == want + ":latest"
                                or n.endswith("/" + want + ":latest") for n in names):
            return record
    if len(want) >= 3 and all(c in "0123456789abcdef" for c in want):
        matches = [r for r in images if r["id"].startswith(want)]
        if len(matches) == 1:
            return matches[0]
    raise errors.NotFound(f"image not known: {ref}", hint="pull it first")
