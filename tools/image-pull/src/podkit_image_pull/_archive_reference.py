"""References to images on disk, as containers-transports(5) writes them::

    oci:PATH[:REF]                                  an OCI image layout directory
    oci-archive:PATH[:REF]                          a tar of an OCI image layout
    docker-archive:PATH[:NAME[:TAG]|:@INDEX]        ``docker save`` / ``podman save`` output

Like containers/image, PATH ends at the first ``:`` (so it cannot contain one) and is
made absolute without touching the filesystem. An OCI REF is matched against the
``org.opencontainers.image.ref.name`` annotations of the layout's index.json; a
docker-archive NAME is normalised like a registry name (``busybox`` is
``docker.io/library/busybox:latest``) and matched against the archive's RepoTags, and
``@INDEX`` picks the INDEX-th image of its manifest.json (from 0).
"""

from __future__ import annotations

import os
import re
from typing import Any

from podkit_common.errors import UsageError
from podkit_common.records import record
from podkit_image_pull._reference import ImageReference, _parse_docker_name

ARCHIVE_TRANSPORTS = ("oci", "oci-archive", "docker-archive")

#: The OCI image-spec grammar of ``org.opencontainers.image.ref.name``.
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_OCI_REF_RE = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")
_INDEX_RE = re.compile(r"@([0-9]{1,9})")
_HINTS = {
    "oci": "expected oci:PATH[:REF], e.g. oci:/tmp/layout:latest",
    "oci-archive": "expected oci-archive:PATH[:REF], e.g. oci-archive:/tmp/image.tar:latest",
    "docker-archive": "expected docker-archive:PATH[:NAME:TAG|:@INDEX], "
                      "e.g. docker-archive:/tmp/image.tar:busybox:latest",
}


@record(frozen=True)
class ArchiveReference(ImageReference):
    """An image in a local layout or archive: ``path`` and what picks it there.

    ``within`` is the OCI ref name, or the normalised ``registry/repo:tag`` of a
    docker-archive image; ``index`` is a docker-archive ``@INDEX``. The registry fields
    are empty: what the image is called comes from the archive once it is read.
    """

    path: str = ""
    within: str | None = None
    index: int | None = None

    @property
    def name(self) -> str:
        """The reference itself (an archive image has no registry name until read)."""
        return self.reference

    @property
    def reference(self) -> str:
        """The canonical form, e.g. ``oci:/abs/layout:latest``."""
        if self.index is not None:
            return f"{self.transport}:{self.path}:@{self.index}"
        tail = f":{self.within}" if self.within else ""
        return f"{self.transport}:{self.path}{tail}"

    @property
    def remote_ref(self) -> str:
        return self.within or (f"@{self.index}" if self.index is not None else "")

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "transport": self.transport, "path": self.path,
                "name": None, "registry": None, "repository": None, "tag": None}


def parse_archive_reference(transport: str, rest: str, given: str) -> ArchiveReference:
    """Parse what follows ``transport:``; UsageError (exit 2) if it is malformed."""
    def bad(why: str) -> UsageError:
        return UsageError(f"invalid image reference {given!r}: {why}", hint=_HINTS[transport])

    path, sep, within = rest.partition(":")
    if not path:
        raise bad("no path")
    if "\0" in path:
        raise bad("the path contains a NUL byte")
    path = os.path.abspath(path)
    if not sep or not within:
        return ArchiveReference(transport, "", "", None, None, path=path)
    if transport != "docker-archive":
        if len(within) > 255 or not _OCI_REF_RE.fullmatch(within):
            raise bad(f"ref name {within!r} must be letters and digits separated by one of "
                      "'-._:@+' or '--', in '/'-separated components")
        return ArchiveReference(transport, "", "", None, None, path=path, within=within)
    index = _INDEX_RE.fullmatch(within)
    if index is not None:
        return ArchiveReference(transport, "", "", None, None, path=path,
                                index=int(index.group(1)))
    if within.startswith("@"):
        raise bad(f"{within!r}: expected @INDEX, a non-negative number")
    named = _parse_docker_name(within, given)
    if named.digest is not None:
        raise bad("a docker-archive image is named NAME:TAG, not by digest")
    return ArchiveReference(transport, "", "", None, None, path=path, within=named.name)


def local_name(ref_name: str | None) -> ImageReference | None:
    """The image name podman gives an OCI ref name: ``localhost/`` in front of a name
    without a registry (``busybox:1`` is ``localhost/busybox:1``), ``:latest`` added.
    None if ``ref_name`` is not a valid image name (e.g. just a digest)."""
    if not ref_name:
        return None
    first, slash, _ = ref_name.partition("/")
    qualified = slash and (any(c in first for c in ".:") or first == "localhost")
    try:
        parsed = _parse_docker_name(ref_name if qualified else f"localhost/{ref_name}",
                                    ref_name)
    except UsageError:
        return None
    return parsed


def repo_tag_name(repo_tag: str) -> ImageReference | None:
    """A docker-archive RepoTag normalised like docker does (``busybox:1`` is
    ``docker.io/library/busybox:1``); None if it is not a valid ``name:tag``."""
    try:
        parsed = _parse_docker_name(repo_tag, repo_tag)
    except UsageError:
        return None
    return parsed if parsed.digest is None else None
