"""OCI image layouts as image sources: ``oci:DIR[:REF]`` and ``oci-archive:FILE[:REF]``.

A layout (OCI image-spec, image-layout.md) is an ``oci-layout`` file, an ``index.json``
and content-addressed ``blobs/<algorithm>/<hex>``. The index's entries are the images;
``org.opencontainers.image.ref.name`` names them. Without a REF the index must hold a
single entry. An oci-archive is a tar of such a layout, read in place (:mod:`_tarindex`).

Paths inside the layout are built only from the three fixed names and from digests that
passed :func:`parse_digest`; every manifest is hashed here and every blob by the blob
store, exactly as if a registry had sent them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, Protocol

from podkit_common.errors import NotFound, UsageError, VerificationFailed, from_os_error
from podkit_image_pull._archive_reference import ArchiveReference, local_name
from podkit_image_pull._digest import digest_of, parse_digest
from podkit_image_pull._manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    parse_index,
    parse_json_object,
)
from podkit_image_pull._source import BlobStream
from podkit_image_pull._tarindex import CHUNK, TarIndex

REF_NAME = "org.opencontainers.image.ref.name"
#: The oci-layout file is a few bytes of JSON.
_MAX_LAYOUT_FILE = 64 * 1024


class LayoutFiles(Protocol):
    """Read access to the files of a layout, by their name inside it."""

    def read(self, name: str, limit: int) -> bytes: ...

    def open(self, name: str,
             offset: int = 0) -> contextlib.AbstractContextManager[BlobStream]: ...

    def close(self) -> None: ...


class DirectoryFiles:
    """The files of a layout directory."""

    def __init__(self, root: str, what: str) -> None:
        self.root = root
        self.what = what
        try:
            mode = os.stat(root).st_mode
        except OSError as exc:
            raise from_os_error(exc, f"open {what}") from None
        if not stat.S_ISDIR(mode):
            raise NotFound(f"{what}: {root} is not a directory",
                           hint="oci: names a layout directory; use oci-archive: for a tar")

    def read(self, name: str, limit: int) -> bytes:
        fd = self._open(name)
        try:
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise from_os_error(exc, f"read {name} of {self.what}") from None
        finally:
            os.close(fd)
        if len(data) > limit:
            raise VerificationFailed(f"{self.what}: {name} is larger than the {limit} bytes "
                                     "it may have")
        return data

    @contextlib.contextmanager
    def open(self, name: str, offset: int = 0) -> Iterator[BlobStream]:
        fd = self._open(name)
        try:
            size = os.fstat(fd).st_size
            offset = min(max(offset, 0), size)
            os.lseek(fd, offset, os.SEEK_SET)
            yield BlobStream(size - offset, self._chunks(fd, name), offset)
        finally:
            os.close(fd)

    def close(self) -> None:
        pass

    def _open(self, name: str) -> int:
        # O_NONBLOCK: a FIFO planted in the layout must not hang the read; it is then
        # refused as not a regular file.
        try:
            fd = os.open(os.path.join(self.root, name),
                         os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NotFound(f"{self.what}: no {name}") from None
        except OSError as exc:
            raise from_os_error(exc, f"open {name} of {self.what}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise VerificationFailed(f"{self.what}: {name} is not a regular file")
        return fd

    def _chunks(self, fd: int, name: str) -> Iterator[bytes]:
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except OSError as exc:
                raise from_os_error(exc, f"read {name} of {self.what}") from None
            if not chunk:
                return
            yield chunk


class OCILayoutSource:
    """One image of an OCI layout, chosen by ref name (or the only one)."""

    def __init__(self, files: LayoutFiles, ref: ArchiveReference, what: str) -> None:
        self.files = files
        self.ref = ref
        self.description = what
        self._check_layout_file()
        index = parse_json_object(files.read("index.json", MAX_MANIFEST_BYTES),
                                  f"index.json of {what}")
        self.entries = parse_index(index)
        self.ref_names = [_ref_name(raw) for raw in index["manifests"]]
        #: Declared media type and size of every descriptor seen, by digest.
        self._known: dict[str, Descriptor] = {e.digest: e for e in self.entries}

    @cached_property
    def chosen(self) -> tuple[Descriptor, str | None]:
        """The index entry the reference picks, and its ref name (chosen when first needed,
        so ``tags`` works on a layout holding several images)."""
        return self._select(self.entries)

    @property
    def reference(self) -> str:
        return self.chosen[0].digest

    def get_manifest(self, reference: str, accept: Sequence[str]) -> tuple[bytes, str, str]:
        wanted = parse_digest(reference, error=NotFound,
                              what=f"manifest reference in {self.description} (a digest)")
        what = f"manifest {wanted} in {self.description}"
        body = self.files.read(_blob_name(reference), MAX_MANIFEST_BYTES)
        digest = digest_of(body, wanted.algorithm)
        if digest != str(wanted):
            raise VerificationFailed(f"{what}: the content has digest {digest}")
        known = self._known.get(digest)
        if known is not None and known.size != len(body):
            raise VerificationFailed(f"{what}: {len(body)} bytes, the index declares "
                                     f"{known.size}")
        return body, known.media_type if known is not None else "", digest

    def open_blob(self, digest: str, *,
                  offset: int = 0) -> contextlib.AbstractContextManager[BlobStream]:
        return self.files.open(_blob_name(digest), offset)

    def describe(self) -> dict[str, Any]:
        named = local_name(self.chosen[1])
        return {"path": self.ref.path,
                "name": named.name if named else None,
                "registry": named.registry if named else None,
                "repository": named.repository if named else None,
                "tag": named.tag if named else None}

    def tags(self) -> list[str]:
        return list(dict.fromkeys(n for n in self.ref_names if n))

    def close(self) -> None:
        self.files.close()

    def _check_layout_file(self) -> None:
        try:
            raw = self.files.read("oci-layout", _MAX_LAYOUT_FILE)
        except NotFound:
            raise NotFound(f"{self.description}: no oci-layout file; this is not an OCI "
                           "image layout", hint="check the path (and the transport: "
                           "oci: for a directory, oci-archive: for a tar)") from None
        doc = parse_json_object(raw, f"oci-layout of {self.description}")
        version = doc.get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise VerificationFailed(f"{self.description}: unsupported imageLayoutVersion "
                                     f"{version!r} (expected 1.x)")

    def _select(self, entries: list[Descriptor]) -> tuple[Descriptor, str | None]:
        wanted = self.ref.within
        named = [n for n in self.ref_names if n]
        if wanted is None:
            if len(entries) == 1:
                return entries[0], self.ref_names[0]
            if not entries:
                raise NotFound(f"{self.description}: index.json lists no image")
            raise UsageError(
                f"{self.description} holds {len(entries)} images; name one",
                hint=f"use {self.ref.transport}:{self.ref.path}:REF with REF one of: "
                     + (", ".join(named) or "(none has a ref name)"))
        matches = [e for e, n in zip(entries, self.ref_names, strict=True) if n == wanted]
        if not matches:
            raise NotFound(f"{self.description}: no image named {wanted!r}",
                           hint=f"ref names there: {', '.join(named) or 'none'}")
        if len({m.digest for m in matches}) > 1:
            raise VerificationFailed(f"{self.description}: more than one image is named "
                                     f"{wanted!r}")
        return matches[0], wanted


def open_layout(ref: ArchiveReference) -> OCILayoutSource:
    """Open the ``oci:`` directory or ``oci-archive:`` tar ``ref`` names."""
    if ref.transport == "oci":
        what = f"OCI layout {ref.path}"
        return OCILayoutSource(DirectoryFiles(ref.path, what), ref, what)
    what = f"OCI archive {ref.path}"
    tar = TarIndex(ref.path, what)
    try:
        return OCILayoutSource(tar, ref, what)
    except BaseException:
        tar.close()
        raise


def _blob_name(digest: str) -> str:
    d = parse_digest(digest, error=VerificationFailed, what="blob digest")
    return f"blobs/{d.algorithm}/{d.hex}"


def _ref_name(raw: Any) -> str | None:
    annotations = raw.get("annotations") if isinstance(raw, dict) else None
    name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return name if isinstance(name, str) and name else None
