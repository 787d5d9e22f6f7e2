"""``pod-storage save``: images from the store written as a docker-archive or oci-archive.

Both archives are written from the blobs the pull verified and stored, so the config
(and with it the image id) is byte-for-byte what was pulled:

    docker-archive (podman's default, what ``docker save`` and ``podman save`` write)
        manifest.json                  [{"Config", "RepoTags", "Layers"}], one per image
        <config-hex>.json              the config blob
        <diff_id-hex>.tar              each layer uncompressed (written once per archive)
    oci-archive (a tar of an OCI image layout)
        oci-layout, index.json         org.opencontainers.image.ref.name = the image name
        blobs/sha256/<hex>             manifest, config and layers as stored

A Docker manifest is converted to an OCI one for the oci-archive (media types only: the
config and layer blobs, and so the image id and diff_ids, stay the same). Layers are
decompressed for the docker-archive and checked against the config's diff_ids on the way.
The legacy ``<id>/layer.tar`` + ``repositories`` files of docker < 1.10 are not written:
podman, docker and pod-image-pull read ``manifest.json``.

Names follow podman: an image given by name is written with that name (RepoTags, or the
ref-name annotation); one given by id gets none. Without ``multi_image`` every further
argument is another name for the first image (docker-archive only), as ``podman save
IMAGE TAG...`` does. Every tar member has mtime 0 and owner 0:0, so saving the same
images twice gives the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.progress import NULL, Progress
from podkit_common.records import field, record
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

FORMATS = ("docker-archive", "oci-archive")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
_OCI_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip":
        "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
_CHUNK = 1024 * 1024


@record
class SavedImage:
    """One image to write: its store record and the names it gets in the archive."""

    record: dict[str, Any]
    names: list[str] = field(default_factory=list)


def resolve_images(roots: Roots, refs: list[str], *, fmt: str,
                   multi_image: bool) -> list[SavedImage]:
    """The images ``refs`` name (plan only: nothing is read but the records)."""
    from podkit_storage._images import find_image

    if fmt not in FORMATS:
        raise errors.UsageError(f"unknown archive format {fmt!r}",
                                hint="use docker-archive (the default) or oci-archive")
    if not refs:
        raise errors.UsageError("save needs at least one image")
    if multi_image and fmt != "docker-archive":
        raise errors.UsageError("--multi-image-archive works only with docker-archive",
                                hint="save one image per oci-archive")
    if multi_image:
        picked: dict[str, SavedImage] = {}
        for ref in refs:
            record = find_image(roots, ref)
            entry = picked.setdefault(record["id"], SavedImage(record))
            name = matched_name(record, ref)
            if name and name not in entry.names:
                entry.names.append(name)
        return list(picked.values())
    record = find_image(roots, refs[0])
    first = matched_name(record, refs[0])
    names = [first] if first else []
    if len(refs) > 1 and fmt != "docker-archive":
        raise errors.UsageError("more than one name works only with docker-archive")
    names += [n for n in (normalise_tag(r) for r in refs[1:]) if n not in names]
    return [SavedImage(record, names)]


def matched_name(record: dict[str, Any], ref: str) -> str | None:
    """The name of ``record`` that ``ref`` picked (find_image's rules); None for an id or
    a digest name (an archive names images by tag only)."""
    want = ref.removeprefix("docker://")
    names = [n for n in record.get("names", []) if "@" not in n]
    for name in names:
        if name == want or name == f"{want}:latest":
            return name
    for name in names:
        if name.endswith(("/" + want, "/" + want + ":latest")):
            return name
    return None


def normalise_tag(name: str) -> str:
    """A tag for the archive as podman writes one: ``localhost/`` before a name without a
    registry, ``:latest`` when it has no tag."""
    first, slash, _ = name.partition("/")
    if not (slash and (any(c in first for c in ".:") or first == "localhost")):
        name = f"localhost/{name}"
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        name += ":latest"
    return name


def save_images(roots: Roots, refs: list[str], output: str | BinaryIO, *,
                fmt: str = "docker-archive", multi_image: bool = False,
                progress: Progress = NULL) -> dict[str, Any]:
    """Write the images ``refs`` name to ``output`` (a path, written atomically, or an
    open binary stream) and return the ``{"changed", "archive"}`` document."""
    from podkit_common.locks import object_lock
    from podkit_storage._layout import StoreLayout

    # Shared with imports and other saves, exclusive with rmi/prune: the blobs being
    # written cannot be reclaimed half-way through.
    with object_lock(StoreLayout(roots).locks, "images", "gc", shared=True):
        return _save_images(roots, refs, output, fmt, multi_image, progress)


def _save_images(roots: Roots, refs: list[str], output: str | BinaryIO, fmt: str,
                 multi_image: bool, progress: Progress) -> dict[str, Any]:
    import tempfile

    if isinstance(output, str) and os.path.isdir(output):
        raise errors.UsageError(f"save: {output} is a directory",
                                hint="name the archive file to write, e.g. -o image.tar")
    images = resolve_images(roots, refs, fmt=fmt, multi_image=multi_image)
    write = _write_docker if fmt == "docker-archive" else _write_oci
    if not isinstance(output, str):
        with tempfile.TemporaryDirectory(prefix="pod-storage-save-") as scratch:
            size = write_tar_stream(
                output, lambda out: write(images, out, Path(scratch), progress))
        path = None
    else:
        path = os.path.abspath(output)
        size = write_tar_file(path, lambda out, scratch: write(images, out, scratch, progress))
    from podkit_common.events import record as event

    for i in images:
        event(roots, "image", "save", id=i.record["id"], name=(i.names or [i.record["id"]])[0])
    return {"changed": True, "archive": {
        "path": path, "format": fmt, "size": size,
        "images": [{"id": i.record["id"], "names": i.names,
                    "layers": [layer["diff_id"] for layer in i.record.get("layers", [])]}
                   for i in images]}}


def write_tar_file(path: str, write: Any) -> int:
    """Write a tar to ``path``: ``write(tar, scratch_dir)`` adds the members to a temporary
    sibling, which is fsynced and renamed into place; returns the bytes written."""
    import tempfile

    tmp = atomic.temp_path_for(path)
    try:
        fh = open(tmp, "xb")  # noqa: SIM115 - closed below, before the rename
    except OSError as exc:
        raise errors.from_os_error(exc, f"save: create {path}") from None
    try:
        with fh, tempfile.TemporaryDirectory(prefix=".tmp-save-", dir=tmp.parent) as scratch:
            size = write_tar_stream(fh, lambda out: write(out, Path(scratch)))
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise errors.from_os_error(exc, f"save: write {path}") from None
        raise
    atomic.fsync_dir(Path(path).parent)
    return size


class _Counter:
    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size = raw, 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.size += len(data)
        return len(data)


def write_tar_stream(raw: BinaryIO, write: Any) -> int:
    """Write a tar to the open stream ``raw``: ``write(tar)`` adds the members; returns
    the bytes written."""
    counter = _Counter(raw)
    # Stream mode: never seeks, so a pipe works as well as a file.
    with tarfile.open(fileobj=counter, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      bufsize=_CHUNK) as tar:
        write(tar)
    with contextlib.suppress(AttributeError, OSError):
        raw.flush()
    return counter.size


# -- docker-archive -------------------------------------------------------------------


def _write_docker(images: list[SavedImage], tar: tarfile.TarFile, scratch: Path,
                  progress: Progress) -> None:
    manifest, written = [], set()
    for image in images:
        record = image.record
        config = _read_config(record)
        config_name = f"{record['id']}.json"
        if config_name not in written:
            _add_bytes(tar, config_name, config)
            written.add(config_name)
        layer_names = []
        for layer in record.get("layers", []):
            name = f"{_hex(layer['diff_id'])}.tar"
            if name not in written:
                _add_uncompressed_layer(tar, name, layer, scratch, progress)
                written.add(name)
            layer_names.append(name)
        manifest.append({"Config": config_name, "RepoTags": image.names, "Layers": layer_names})
    from podkit_common.jsonio import dumps

    _add_bytes(tar, "manifest.json", dumps(manifest))


def _add_uncompressed_layer(tar: tarfile.TarFile, name: str, layer: dict[str, Any],
                            scratch: Path, progress: Progress) -> None:
    """Add the layer as a plain tar: its blob when it is one, else decompressed into a
    scratch file first (a tar header needs the size before the data)."""
    from podkit_storage._decompress import uncompressed_chunks
    from podkit_storage._images import compression_of

    blob = _blob_path(layer)
    task = progress.task(f"save {layer['diff_id'][:19]}", layer.get("size"))
    try:
        with _open_blob(blob, layer["digest"]) as src:
            target = scratch / name
            digest = hashlib.sha256()
            with open(target, "wb") as out:
                for chunk in uncompressed_chunks(src, compression_of(layer.get("media_type", ""))):
                    digest.update(chunk)
                    out.write(chunk)
                    task.advance(len(chunk))
        if f"sha256:{digest.hexdigest()}" != layer["diff_id"]:
            raise errors.VerificationFailed(
                f"save layer {layer['digest']}: its content hashes to sha256:"
                f"{digest.hexdigest()}, not the diff_id {layer['diff_id']}",
                hint="the stored blob is damaged; run `pod-storage check`, pull the image again")
        with open(target, "rb") as data:
            _add_file(tar, name, data, os.fstat(data.fileno()).st_size)
        target.unlink()
    finally:
        task.finish()


# -- oci-archive ----------------------------------------------------------------------


def _write_oci(images: list[SavedImage], tar: tarfile.TarFile, scratch: Path,
               progress: Progress) -> None:
    from podkit_common.jsonio import dumps

    _add_dir(tar, "blobs")
    _add_dir(tar, "blobs/sha256")
    written: set[str] = set()
    entries = []
    for image in images:
        record = image.record
        config = _read_config(record)
        manifest = oci_manifest(record, config)
        manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        _add_blob_bytes(tar, written, record["config_digest"], config)
        for layer in record.get("layers", []):
            if layer["digest"] in written:
                continue
            task = progress.task(f"save {layer['digest'][:19]}", layer.get("size"))
            try:
                with _open_blob(_blob_path(layer), layer["digest"]) as data:
                    _add_file(tar, f"blobs/sha256/{_hex(layer['digest'])}", data,
                              os.fstat(data.fileno()).st_size)
                    task.advance(layer.get("size") or 0)
            finally:
                task.finish()
            written.add(layer["digest"])
        _add_blob_bytes(tar, written, manifest_digest, manifest)
        entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": manifest_digest,
                                 "size": len(manifest)}
        if image.names:
            entry["annotations"] = {REF_NAME: image.names[0]}
        entries.append(entry)
    _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    _add_bytes(tar, "index.json", dumps({"schemaVersion": 2, "manifests": entries}))


def oci_manifest(record: dict[str, Any], config: bytes) -> bytes:
    """The image's OCI manifest: the stored one when it is OCI, else the Docker one with
    OCI media types (same config and layer blobs, so the same image id)."""
    from podkit_common.jsonio import dumps

    if record.get("media_type") == OCI_MANIFEST and record.get("manifest_path"):
        with contextlib.suppress(FileNotFoundError):
            with open(record["manifest_path"], "rb") as fh:
                body = fh.read()
            if "sha256:" + hashlib.sha256(body).hexdigest() == record.get("digest"):
                return body
    layers = []
    for layer in record.get("layers", []):
        media_type = layer.get("media_type") or "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append({"mediaType": _OCI_LAYER_TYPES.get(media_type, media_type),
                       "digest": layer["digest"], "size": _blob_size(layer)})
    return dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": OCI_CONFIG, "digest": record["config_digest"],
                             "size": len(config)},
                  "layers": layers})


# -- reading the store, writing members -------------------------------------------------


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise errors.VerificationFailed(f"save: {digest!r} is not a sha256 digest",
                                        hint="the image record is damaged; run `pod-storage check`")
    return value


def _blob_path(layer: dict[str, Any]) -> str:
    path = layer.get("path")
    if not path:
        raise errors.NotFound(f"save layer {layer.get('digest')}: the record names no blob",
                              hint="pull the image again")
    return str(path)


def _blob_size(layer: dict[str, Any]) -> int:
    try:
        return os.stat(_blob_path(layer)).st_size
    except OSError as exc:
        raise errors.from_os_error(exc, f"save layer {layer['digest']}") from None


@contextlib.contextmanager
def _open_blob(path: str, digest: str) -> Iterator[BinaryIO]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise errors.NotFound(f"save: blob {digest} is missing ({path})",
                              hint="pull the image again; `pod-storage check` lists the damage"
                              ) from None
    with fh:
        yield fh


def _read_config(record: dict[str, Any]) -> bytes:
    digest = record.get("config_digest") or f"sha256:{record['id']}"
    path = record.get("config_path")
    if not path:
        raise errors.NotFound(f"save image {record['id'][:12]}: its record names no config "
                              "blob", hint="pull the image again")
    with _open_blob(path, digest) as fh:
        config = fh.read()
    if "sha256:" + hashlib.sha256(config).hexdigest() != digest:
        raise errors.VerificationFailed(f"save image {record['id'][:12]}: config blob {path} "
                                        f"does not hash to {digest}",
                                        hint="run `pod-storage check`; pull the image again")
    return config


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, mode: int = 0o644
          ) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, mode, 0
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, kind=tarfile.DIRTYPE, mode=0o755))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, data: BinaryIO, size: int) -> None:
    tar.addfile(_info(name, size), data)


def _add_blob_bytes(tar: tarfile.TarFile, written: set[str], digest: str, data: bytes) -> None:
    if digest not in written:
        _add_bytes(tar, f"blobs/sha256/{_hex(digest)}", data)
        written.add(digest)
