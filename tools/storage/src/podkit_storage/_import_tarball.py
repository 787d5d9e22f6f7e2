"""``pod-storage import-tarball``: a one-layer image from a tar of a filesystem, as
``podman import`` makes one.

    the tar (plain or gzip/zstd, kept as is; bzip2/xz decompressed)  -> blobs/sha256/<digest>
    an OCI config (rootfs.diff_ids = the tar's sha256, --change applied) -> blobs/sha256/<id>
    an OCI manifest naming both                                          -> blobs/sha256/<digest>
    then the ordinary import: the layer is unpacked by the safe extractor (a hostile tar is
    refused there, UnsafeContent) and checked against its diff_id; the image is recorded

A failed import removes the blobs it wrote (never ones that were there before).
``--change`` takes Dockerfile instructions like podman: ``CMD``, ``ENTRYPOINT`` (a JSON
array, else run by ``/bin/sh -c``), ``ENV``, ``WORKDIR``, ``USER``, ``EXPOSE``,
``LABEL``, ``VOLUME``, ``STOPSIGNAL``, written ``INSTR VALUE`` or ``INSTR=VALUE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any, BinaryIO

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER_TYPES = {"none": "application/vnd.oci.image.layer.v1.tar",
                "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_CHANGE_RE = re.compile(r"\s*([A-Za-z]+)(?:=|\s+)(.*)", re.DOTALL)
_CHUNK = 1024 * 1024


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """``config`` (an OCI config's ``config`` object) with the ``--change`` instructions
    applied in order (pure; UsageError for an instruction podman would refuse)."""
    import shlex

    out = json.loads(json.dumps(config))
    for change in changes:
        match = _CHANGE_RE.fullmatch(change)
        if match is None:
            raise errors.UsageError(f"--change {change!r}: expected INSTRUCTION VALUE",
                                    hint="e.g. --change 'CMD [\"/bin/sh\"]' or "
                                         "--change ENV=PATH=/bin")
        instr, value = match.group(1).upper(), match.group(2).strip()
        if instr in ("CMD", "ENTRYPOINT"):
            out["Cmd" if instr == "CMD" else "Entrypoint"] = _command(value)
        elif instr == "ENV":
            key, sep, val = value.partition("=")
            if not sep:
                key, _, val = value.partition(" ")
            if not key.strip():
                raise errors.UsageError(f"--change {change!r}: ENV needs NAME=VALUE")
            env = [e for e in out.get("Env") or [] if e.partition("=")[0] != key.strip()]
            out["Env"] = [*env, f"{key.strip()}={val.strip()}"]
        elif instr == "WORKDIR":
            out["WorkingDir"] = value
        elif instr == "USER":
            out["User"] = value
        elif instr == "STOPSIGNAL":
            out["StopSignal"] = value
        elif instr == "EXPOSE":
            ports = out.setdefault("ExposedPorts", {}) or {}
            for port in value.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            out["ExposedPorts"] = ports
        elif instr == "LABEL":
            labels = out.get("Labels") or {}
            for item in shlex.split(value):
                key, sep, val = item.partition("=")
                if not sep:
                    raise errors.UsageError(f"--change {change!r}: LABEL needs KEY=VALUE")
                labels[key] = val
            out["Labels"] = labels
        elif instr == "VOLUME":
            volumes = out.get("Volumes") or {}
            for path in _list(value):
                volumes[path] = {}
            out["Volumes"] = volumes
        else:
            raise errors.UsageError(f"--change {change!r}: {instr} is not supported",
                                    hint="use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
                                         "STOPSIGNAL, USER, VOLUME or WORKDIR")
    return out


def _command(value: str) -> list[str]:
    if value.startswith("["):
        parsed = _list(value)
        if parsed:
            return parsed
    return ["/bin/sh", "-c", value]


def _list(value: str) -> list[str]:
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return value.split()


def image_config(diff_id: str, changes: list[str], message: str | None,
                 created: str) -> dict[str, Any]:
    """The OCI config of the imported image (pure)."""
    import platform

    history: dict[str, Any] = {"created": created, "created_by": "/bin/sh -c #(nop) ADD file:"
                               f"{diff_id.split(':', 1)[1]} in / "}
    if message:
        history["comment"] = message
    return {"created": created,
            "architecture": _ARCH.get(platform.machine(), platform.machine()),
            "os": "linux",
            "config": apply_changes({}, changes),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [history]}


def import_tarball(roots: Roots, source: str | BinaryIO, reference: str | None = None, *,
                   changes: list[str] | tuple[str, ...] = (), message: str | None = None,
                   progress: Progress = NULL) -> dict[str, Any]:
    """Make a one-layer image from the tar ``source`` (a path or an open binary stream),
    named ``reference`` if given; return the stored-image document."""
    from podkit_storage._archive_save import normalise_tag
    from podkit_storage._images import import_image

    changes = list(changes)
    apply_changes({}, changes)  # a bad --change fails before anything is written
    name = normalise_tag(reference) if reference else None
    blobs = roots.root / "blobs" / "sha256"
    created_blobs: list[Path] = []
    try:
        layer = _store_layer(roots, source, created_blobs, progress)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config = image_config(layer["diff_id"], changes, message, now)
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = _put_blob(blobs, config_bytes, created_blobs)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": [{"mediaType": layer["media_type"], "digest": layer["digest"],
                        "size": layer["size"]}]}, separators=(",", ":")).encode()
        digest = _put_blob(blobs, manifest, created_blobs)
        doc = {"changed": True, "image": {
            "reference": name, "transport": "tarball",
            "path": source if isinstance(source, str) else None,
            "name": name, "digest": digest, "index_digest": None,
            "media_type": OCI_MANIFEST, "id": config_digest.split(":", 1)[1],
            "config_digest": config_digest, "root": str(roots.root),
            "platform": {"os": config["os"], "architecture": config["architecture"]},
            "manifest_path": str(blobs / digest.split(":", 1)[1]),
            "config_path": str(blobs / config_digest.split(":", 1)[1]),
            "config": config, "layers": [layer]}}
        out = import_image(doc, roots, progress)
    except BaseException:
        for path in created_blobs:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    from podkit_common.events import record as event

    event(roots, "image", "import", id=out["image"]["id"], name=name or out["image"]["id"])
    return {**out, "changed": True}


def _store_layer(roots: Roots, source: str | BinaryIO, created: list[Path],
                 progress: Progress) -> dict[str, Any]:
    """Copy the tar into the blob store; its digest, diff_id, size and media type."""
    import hashlib

    blobs = roots.root / "blobs" / "sha256"
    tmp_dir = roots.root / "blobs" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    blobs.mkdir(parents=True, exist_ok=True)
    what = f"import {source}" if isinstance(source, str) else "import stdin"
    try:
        src = open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115
    except OSError as exc:
        raise errors.from_os_error(exc, what) from None
    # ``.tmp-import.<pid>.<rand>``: `check` leaves dot names to their writers (it would
    # take any other name for a killed pull's leftover), the pid says when the writer is
    # gone, and then the next import-tarball removes it (as old pulls' temps are swept).
    for entry in os.scandir(tmp_dir):
        if entry.name.startswith(f"{atomic.TMP_PREFIX}import.") and atomic.abandoned(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    tmp = tmp_dir / f"{atomic.TMP_PREFIX}import.{os.getpid()}.r{os.urandom(4).hex()}"
    task = progress.task("import tarball", None)
    try:
        with src if isinstance(source, str) else contextlib.nullcontext(src):
            head = src.read(6)
            compression = ("gzip" if head.startswith(b"\x1f\x8b") else
                           "zstd" if head.startswith(b"\x28\xb5\x2f\xfd") else "none")
            stream = _Prepended(head, src)
            reader: Any = stream
            if head.startswith(b"BZh"):
                import bz2

                reader = bz2.BZ2File(stream)
            elif head.startswith(b"\xfd7zXZ\x00"):
                import lzma

                reader = lzma.LZMAFile(stream)  # noqa: SIM115 - reads the stream we close
            digest, size = hashlib.sha256(), 0
            with open(tmp, "xb") as out:
                while data := reader.read(_CHUNK):
                    digest.update(data)
                    out.write(data)
                    size += len(data)
                    task.advance(len(data))
                out.flush()
                os.fsync(out.fileno())
        diff_id = refuse_breakouts(tmp, compression, what)
        final = blobs / digest.hexdigest()
        if final.exists():
            tmp.unlink()
        else:
            os.rename(tmp, final)
            created.append(final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise errors.from_os_error(exc, what) from None
        if isinstance(exc, EOFError | ValueError):
            raise errors.VerificationFailed(f"{what}: corrupt compressed stream: {exc}") from None
        raise
    finally:
        task.finish()
    return {"digest": "sha256:" + digest.hexdigest(), "size": size, "diff_id": diff_id,
            "media_type": _LAYER_TYPES[compression], "path": str(final)}


def refuse_breakouts(path: Path, compression: str, what: str) -> str:
    """Read the tar's headers; UnsafeContent for a name, hard-link target or relative
    symlink target that climbs out of the root, as podman import (containers/storage's
    breakout check) refuses them. Returns the uncompressed stream's diff_id.

    The extractor alone would clamp such names inside the layer (as umoci does for image
    layers); a tarball handed to import is refused outright instead, like podman does."""
    from podkit_storage._decompress import LayerSource
    from podkit_storage._extract import UnpackOptions
    from podkit_storage._tar import LNK, SYM, TarReader, show

    limits = UnpackOptions()
    with open(path, "rb") as fh, LayerSource(fh, compression, limits.max_bytes) as source:
        for entry in TarReader(source, limits.max_entries):
            parts = [p for p in entry.name.split(b"/") if p not in (b"", b".")]
            if _climbs([], parts):
                raise errors.UnsafeContent(f"{what}: member {show(entry.name)} points "
                                           "outside the root", hint="the tar is hostile "
                                           "or broken; nothing was stored")
            target = entry.linkname or b""
            if (entry.kind == LNK and _climbs([], target.split(b"/"))) or (
                    entry.kind == SYM and not target.startswith(b"/")
                    and _climbs(parts[:-1], target.split(b"/"))):
                raise errors.UnsafeContent(f"{what}: link {show(entry.name)} -> "
                                           f"{show(target)} points outside the root",
                                           hint="the tar is hostile or broken; nothing "
                                                "was stored")
        source.drain()
        return source.diff_id


def _climbs(start: list[bytes], parts: list[bytes]) -> bool:
    """Whether walking ``parts`` from the directory ``start`` leaves the root lexically."""
    depth = len(start)
    for part in parts:
        if part == b"..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in (b"", b"."):
            depth += 1
    return False


def _put_blob(blobs: Path, data: bytes, created: list[Path]) -> str:
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    path = blobs / digest
    if not path.exists():
        atomic.write_bytes(path, data)
        created.append(path)
    return f"sha256:{digest}"


class _Prepended:
    """``head`` (already read to sniff the format) followed by the rest of ``src``."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head, self._src = head, src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._src.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._src.read(n)

    def readable(self) -> bool:
        return True
