"""Where an image comes from: the seam between a pull (or an inspect) and its transport.

An :class:`ImageSource` hands out manifests and blobs of one image, whatever holds them:

    RegistrySource        docker://       a repository of a registry (distribution API v2)
    OCILayoutSource       oci:            an OCI image layout directory           (_layout)
                          oci-archive:    a tar of an OCI image layout            (_layout)
    DockerArchiveSource   docker-archive: ``docker save`` / ``podman save`` output (_archive)

A source only delivers bytes; the caller verifies them (a manifest's digest is computed
from its bytes here, a blob's by the blob store while it is written), so every transport
is checked exactly like a registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from podkit_common.errors import NotImplementedYet
from podkit_common.records import record

if TYPE_CHECKING:
    import httpx

    from podkit_image_pull._manifest import Platform
    from podkit_image_pull._reference import ImageReference
    from podkit_image_pull._registry import RegistryClient

T = TypeVar("T")


@record
class BlobStream:
    """An open blob: ``size`` if the transport knows it (else None) and the byte chunks.

    ``start`` is the blob offset of the first chunk: the offset asked for when the
    registry honoured a range request, 0 when it sent the whole blob.
    """

    size: int | None
    chunks: Iterator[bytes]
    start: int = 0


class ImageSource(Protocol):
    """One image's manifests and blobs, from a registry, a layout or an archive."""

    #: Where the image comes from, for messages ("127.0.0.1:5000/busybox", "OCI layout /x").
    description: str
    #: What :meth:`get_manifest` takes for the image the source was opened on (tag or digest).
    reference: str

    def get_manifest(self, reference: str, accept: Sequence[str]) -> tuple[bytes, str, str]:
        """(bytes, content type or '', digest computed from the bytes) of a manifest.

        Asked for by digest, the bytes must have that digest (VerificationFailed if not).
        """
        ...

    def open_blob(self, digest: str, *, offset: int = 0) -> AbstractContextManager[BlobStream]:
        """Open a blob for streaming, from byte ``offset`` if the source can (the stream's
        ``start`` says where it starts); the caller verifies size and digest."""
        ...

    def describe(self) -> dict[str, Any]:
        """Image document fields this source adds or overrides (an archive's path and the
        name its tags give the image); a registry adds none."""
        ...

    def tags(self) -> list[str]:
        """The tags (registry) or image names (archive, layout) the source holds."""
        ...

    def close(self) -> None:
        """Release what the source holds open (files, connections)."""
        ...


class RegistrySource:
    """A repository of a registry, through a :class:`RegistryClient` (not closed here)."""

    def __init__(self, client: RegistryClient, repository: str, reference: str) -> None:
        self.client = client
        self.repository = repository
        self.reference = reference
        self.description = f"{client.registry}/{repository}"

    def get_manifest(self, reference: str, accept: Sequence[str]) -> tuple[bytes, str, str]:
        return self.client.get_manifest(self.repository, reference, accept)

    def open_blob(self, digest: str, *, offset: int = 0, urls: Sequence[str] = (),
                  size: int | None = None) -> AbstractContextManager[BlobStream]:
        """``offset`` > 0 asks for the rest of the blob (a range request; see ``start``).

        ``urls`` and ``size`` come from the blob's descriptor: a foreign layer's URLs are
        tried before the registry (_foreign), and none is read past ``size``.
        """
        if urls and size is not None:
            from podkit_image_pull._foreign import open_foreign_blob

            return open_foreign_blob(self.client, self.repository, digest, size, urls,
                                     offset=offset)
        return self.client.open_blob(self.repository, digest, offset=offset)

    def describe(self) -> dict[str, Any]:
        return {}

    def tags(self, page_size: int | None = None) -> list[str]:
        """``GET /v2/<name>/tags/list``, following ``Link: <...>; rel="next"`` pages.

        ``page_size`` asks for pages of that many tags (the ``n`` parameter).
        """
        from podkit_image_pull._tags import list_registry_tags

        return list_registry_tags(self.client, self.repository, page_size)

    def close(self) -> None:
        pass


def with_source(reference: str, run: Callable[[ImageReference, ImageSource], T], *,
                tls_verify: bool | None = None, client: httpx.Client | None = None,
                **registry_options: Any) -> T:
    """``run(ref, source)`` on the source ``reference`` names, closed afterwards.

    A registry is reached the way a pull reaches it (``_resolve``): short names, mirrors,
    credentials and certificates from registries.conf and the auth files, the first
    candidate that has the image wins. ``registry_options`` are pull's ``credentials``,
    ``authfile``, ``cert_dir``, ``registries_conf``, ``registries_conf_dir``. A layout or
    archive is opened and its index read, so a missing or malformed one fails here.
    """
    from podkit_image_pull._reference import parse_reference

    ref = parse_reference(reference)
    if ref.transport != "docker":
        with closing(open_local_source(ref)) as source:
            return run(ref, source)
    from podkit_image_pull._resolve import pull_from_registries

    def on_registry(candidate: ImageReference, registry: RegistryClient, repository: str) -> T:
        return run(candidate, RegistrySource(registry, repository, candidate.remote_ref))

    return pull_from_registries(reference, ref, on_registry, tls_verify=tls_verify,
                                client_options={"client": client}, **registry_options)


def open_local_source(ref: ImageReference) -> ImageSource:
    """Open the layout or archive of an ``oci:``, ``oci-archive:`` or ``docker-archive:``
    reference; the caller closes it."""
    from podkit_image_pull._archive_reference import ArchiveReference

    if isinstance(ref, ArchiveReference) and ref.transport in ("oci", "oci-archive"):
        from podkit_image_pull._layout import open_layout

        return open_layout(ref)
    if isinstance(ref, ArchiveReference) and ref.transport == "docker-archive":
        from podkit_image_pull._archive import DockerArchiveSource

        return DockerArchiveSource.open(ref)
    raise NotImplementedYet(f"the {ref.transport}: transport is not supported yet")


@record(frozen=True)
class ChosenManifest:
    """The manifest a source was opened on, or the child a list/index chose for ``want``."""

    top: bytes                      # what the reference named (the list, or the manifest)
    top_digest: str
    index_digest: str | None        # set when ``top`` is a list/index
    body: bytes                     # the image manifest
    digest: str
    media_type: str
    doc: dict[str, Any]
    entry_platform: Platform | None  # the platform the index entry declared


def fetch_manifest(source: ImageSource, reference: str,
                   accept: tuple[str, ...]) -> tuple[bytes, str, str, dict[str, Any]]:
    """One manifest: its bytes (digest-checked by the source), digest, media type, parsed."""
    from podkit_image_pull._manifest import check_supported, media_type_of, parse_json_object

    body, content_type, digest = source.get_manifest(reference, accept)
    doc = parse_json_object(body, f"manifest {source.description}@{digest}")
    media_type = media_type_of(doc, content_type)
    check_supported(media_type)
    return body, digest, media_type, doc


def choose_manifest(source: ImageSource, want: Platform) -> ChosenManifest:
    """Fetch what the source was opened on; from a list/index, the child for ``want``."""
    from podkit_image_pull._manifest import (
        ACCEPT_ALL,
        INDEX_TYPES,
        MANIFEST_TYPES,
        parse_index,
        platform_of,
        select_platform,
    )

    top, top_digest, media_type, doc = fetch_manifest(source, source.reference, ACCEPT_ALL)
    if media_type not in INDEX_TYPES:
        return ChosenManifest(top, top_digest, None, top, top_digest, media_type, doc, None)
    entry = select_platform(parse_index(doc), want)
    body, digest, media_type, doc = fetch_manifest(source, entry.digest, MANIFEST_TYPES)
    if media_type in INDEX_TYPES:
        raise NotImplementedYet(f"manifest list {top_digest} nests another index "
                                f"({digest}); that is not supported yet")
    return ChosenManifest(top, top_digest, top_digest, body, digest, media_type, doc,
                          platform_of(entry.platform or {}, None))
