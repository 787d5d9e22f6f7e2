"""``docker-archive:FILE[:NAME:TAG|:@INDEX]``: images saved by ``docker save`` / ``podman save``.

The archive is a tar (read in place, :mod:`_tarindex`) whose ``manifest.json`` lists its
images as ``{"Config": PATH, "RepoTags": [...], "Layers": [PATH, ...]}``. The layer files
may be ``<id>/layer.tar`` (old docker), ``<diff_id>.tar`` reached through
``<id>/layer.tar`` symlinks (containers/image) or ``blobs/sha256/<hex>`` (docker 25+).

Such an archive has no registry manifest, so one is made: a Docker v2 schema 2 manifest
whose config digest is the config file's sha256 (which a name holding a 64-hex digest
must match) and whose layer digests are computed from the layer files as stored;
uncompressed layers are then ``application/vnd.docker.image.rootfs.diff.tar`` and their
digest must equal the config's diff_id. The pull stores and verifies every blob again.

Paths in manifest.json are archive member names: they are checked (relative, no ``..``)
before any lookup, and never used on the host filesystem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any

from podkit_common import jsonio
from podkit_common.errors import (
    InvalidDocument,
    NotFound,
    NotImplementedYet,
    UnsafeContent,
    UsageError,
    VerificationFailed,
)
from podkit_image_pull._archive_reference import ArchiveReference, repo_tag_name
from podkit_image_pull._digest import DigestHasher, digest_of
from podkit_image_pull._manifest import (
    DOCKER_CONFIG,
    DOCKER_V2S2,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    diff_ids_of,
    parse_json_object,
)
from podkit_image_pull._source import BlobStream
from podkit_image_pull._tarindex import TarIndex, clean_member_name

LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
#: A member name that embeds a digest: ``<hex>.json``, ``<hex>.tar``, ``blobs/sha256/<hex>``.
_NAMED_DIGEST_RE = re.compile(r"(?:^|/)(?:sha256/)?([a-f0-9]{64})(?:\.json|\.tar)?$")


class ArchiveImage:
    """One entry of manifest.json, its paths checked."""

    def __init__(self, raw: Any, position: int, what: str) -> None:
        where = f"{what}: manifest.json entry {position}"
        if not isinstance(raw, dict):
            raise VerificationFailed(f"{where} is not an object")
        self.position = position
        self.config = archive_path(raw.get("Config"), f"{where}: Config", what)
        layers = raw.get("Layers")
        if not isinstance(layers, list):
            raise VerificationFailed(f"{where}: Layers is not a list")
        self.layers = [archive_path(p, f"{where}: layer {i}", what)
                       for i, p in enumerate(layers)]
        tags = raw.get("RepoTags")
        if tags is None:
            tags = []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise VerificationFailed(f"{where}: RepoTags is not a list of strings")
        self.repo_tags: list[str] = tags

    def matches(self, normalised: str) -> bool:
        """Whether one of the RepoTags normalises to ``normalised`` (``docker.io/...:tag``)."""
        return any((n := repo_tag_name(t)) is not None and n.name == normalised
                   for t in self.repo_tags)


def archive_path(value: Any, what: str, archive: str) -> str:
    """``value`` as a member name, refused unless it stays inside the archive."""
    if not isinstance(value, str) or not value:
        raise VerificationFailed(f"{what} is not a path")
    cleaned = clean_member_name(value)
    if not cleaned:
        raise UnsafeContent(f"{what} is {value!r}, which points outside {archive}",
                            hint="the archive is hostile or broken; nothing was stored")
    return cleaned


class DockerArchiveSource:
    """One image of a docker archive, with its manifest made from the files."""

    def __init__(self, tar: TarIndex, ref: ArchiveReference) -> None:
        self.tar = tar
        self.ref = ref
        self.description = f"docker archive {ref.path}"
        raw = tar.read("manifest.json", MAX_MANIFEST_BYTES)
        try:
            entries = jsonio.loads(raw, what="manifest.json")
        except InvalidDocument as exc:
            raise VerificationFailed(f"{self.description}: {exc.message}") from None
        if not isinstance(entries, list):
            raise VerificationFailed(f"{self.description}: manifest.json is not a list")
        self.images = [ArchiveImage(e, i, self.description) for i, e in enumerate(entries)]
        #: digest -> member name of every blob of the chosen image.
        self._blobs: dict[str, str] = {}

    @cached_property
    def image(self) -> ArchiveImage:
        """The image the reference picks (when first needed: ``tags`` needs none)."""
        return self._select()

    @cached_property
    def manifest(self) -> bytes:
        """The made-up manifest of :attr:`image` (its layers are hashed for it)."""
        return self._make_manifest()

    @property
    def reference(self) -> str:
        return digest_of(self.manifest)

    @classmethod
    def open(cls, ref: ArchiveReference) -> DockerArchiveSource:
        """Index the archive ``ref`` names and pick its image."""
        tar = TarIndex(ref.path, f"docker archive {ref.path}")
        try:
            return cls(tar, ref)
        except BaseException:
            tar.close()
            raise

    def get_manifest(self, reference: str, accept: Sequence[str]) -> tuple[bytes, str, str]:
        if reference != self.reference:
            raise NotFound(f"{self.description}: no manifest {reference} (the archive's "
                           f"image has the made-up manifest {self.reference})")
        return self.manifest, DOCKER_V2S2, self.reference

    def open_blob(self, digest: str, *, offset: int = 0) -> AbstractContextManager[BlobStream]:
        member = self._blobs.get(digest) if self.manifest else None
        if member is None:
            raise NotFound(f"{self.description}: no blob {digest} in the chosen image")
        return self.tar.open(member, offset)

    def describe(self) -> dict[str, Any]:
        named = None
        if self.ref.within is not None:
            named = repo_tag_name(self.ref.within)
        else:
            for tag in self.image.repo_tags:
                named = repo_tag_name(tag)
                if named is not None:
                    break
        return {"path": self.ref.path,
                "name": named.name if named else None,
                "registry": named.registry if named else None,
                "repository": named.repository if named else None,
                "tag": named.tag if named else None}

    def tags(self) -> list[str]:
        return list(dict.fromkeys(t for image in self.images for t in image.repo_tags))

    def close(self) -> None:
        self.tar.close()

    # --- choosing the image and describing it -----------------------------------------

    def _select(self) -> ArchiveImage:
        ref, images = self.ref, self.images
        if ref.index is not None:
            if ref.index >= len(images):
                raise NotFound(f"{self.description}: no image @{ref.index}; it holds "
                               f"{len(images)}")
            return images[ref.index]
        if ref.within is not None:
            for image in images:
                if image.matches(ref.within):
                    return image
            raise NotFound(f"{self.description}: no image tagged {ref.within}",
                           hint=f"its tags: {', '.join(self.tags()) or 'none'}")
        if len(images) == 1:
            return images[0]
        if not images:
            raise NotFound(f"{self.description}: manifest.json lists no image")
        raise UsageError(f"{self.description} holds {len(images)} images; name one",
                         hint=f"use docker-archive:{ref.path}:NAME:TAG or :@INDEX (0 to "
                              f"{len(images) - 1}); tags: {', '.join(self.tags()) or 'none'}")

    def _make_manifest(self) -> bytes:
        image = self.image
        config = self.tar.read(image.config, MAX_CONFIG_BYTES)
        config_digest = digest_of(config)
        _check_named_digest(image.config, config_digest, f"{self.description}: config")
        self._blobs[config_digest] = image.config
        diff_ids = diff_ids_of(parse_json_object(
            config, f"{self.description}: config {image.config}"))
        layers = []
        for i, member in enumerate(image.layers):
            digest, size, media_type = self._hash_layer(member)
            if media_type == LAYER_TAR and i < len(diff_ids) and digest != diff_ids[i]:
                raise VerificationFailed(
                    f"{self.description}: layer {i} ({member}) has digest {digest}, the "
                    f"config's diff_id is {diff_ids[i]}")
            self._blobs[digest] = member
            layers.append({"mediaType": media_type, "size": size, "digest": digest})
        return jsonio.dumps({
            "schemaVersion": 2,
            "mediaType": DOCKER_V2S2,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
            "layers": layers,
        })

    def _hash_layer(self, member: str) -> tuple[str, int, str]:
        hasher = DigestHasher()
        head = b""
        with self.tar.open(member) as blob:
            for chunk in blob.chunks:
                if len(head) < 4:
                    head += chunk[:4]
                hasher.update(chunk)
        if head.startswith(b"\x1f\x8b"):
            media_type = LAYER_GZIP
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            raise NotImplementedYet(f"{self.description}: layer {member} is zstd-compressed; "
                                    "a docker archive layer must be a tar or a gzip'd tar")
        else:
            media_type = LAYER_TAR
        _check_named_digest(member, hasher.digest, f"{self.description}: layer",
                            only_blobs=True)
        return hasher.digest, hasher.size, media_type


def _check_named_digest(member: str, digest: str, what: str, *, only_blobs: bool = False) -> None:
    """A member named by a digest must have it. (``<hex>.tar`` names a layer by its diff_id,
    which for a compressed layer is not its digest, so only ``blobs/`` names count there.)"""
    if only_blobs and not member.startswith("blobs/"):
        return
    match = _NAMED_DIGEST_RE.search(member)
    if match is not None and f"sha256:{match.group(1)}" != digest:
        raise VerificationFailed(f"{what} {member} has digest {digest}, not the one its "
                                 "name says")
