"""Image references, parsed the way containers/image (and so podman) parses them.

Accepted forms::

    docker://HOST[:PORT]/REPO[:TAG][@DIGEST]     explicit transport
    HOST[:PORT]/REPO[:TAG][@DIGEST]              first component has "." or ":" or is localhost
    [NAMESPACE/]REPO[:TAG][@DIGEST]              docker.io (library/ added to a single component)
    oci:PATH[:REF], oci-archive:PATH[:REF],      images on disk: an ArchiveReference with
    docker-archive:PATH[:NAME:TAG|:@INDEX]       a path (see _archive_reference)

Normalisation follows github.com/distribution/reference: ``index.docker.io`` becomes
``docker.io``, a name with neither tag nor digest gets ``:latest``, and (like podman's
libimage) a name with both a tag and a digest is pulled by digest, the tag dropped.
Unqualified names resolve to docker.io, podman's default without registries.conf search
registries; ``short_name`` marks them so registries.conf resolution can take over later.
"""

from __future__ import annotations

import re
from typing import Any

from podkit_common.errors import NotImplementedYet, UsageError
from podkit_common.records import record
from podkit_image_pull._digest import parse_digest

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
#: Longest registry/repository name distribution accepts.
NAME_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ID_RE = re.compile(r"[a-f0-9]{64}")

#: containers/image transports podman accepts that are not built (oci:, oci-archive: and
#: docker-archive: are, in _archive_reference).
_OTHER_TRANSPORTS = ("dir", "containers-storage", "docker-daemon", "tarball", "sif")


@record(frozen=True)
class ImageReference:
    """A parsed, normalised image reference."""

    transport: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    #: True when the registry was not written but defaulted (docker.io).
    short_name: bool = False

    @property
    def name(self) -> str:
        """``registry/repository@digest`` when pulled by digest, else ``registry/repo:tag``."""
        base = f"{self.registry}/{self.repository}"
        return f"{base}@{self.digest}" if self.digest else f"{base}:{self.tag}"

    @property
    def reference(self) -> str:
        """The canonical transport:reference string, e.g. ``docker://docker.io/library/x:1``."""
        return f"{self.transport}://{self.name}"

    @property
    def remote_ref(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "transport": self.transport, "name": self.name,
                "registry": self.registry, "repository": self.repository, "tag": self.tag}


def parse_reference(text: str) -> ImageReference:
    """Parse and validate ``text``; raise UsageError (exit 2) on anything malformed.

    No network and no filesystem access happen here, so a bad reference fails before any
    request is made.
    """
    if not isinstance(text, str) or not text:
        raise UsageError("empty image reference")
    transport, sep, rest = text.partition(":")
    if sep and transport == "docker" and rest.startswith("//"):
        return _parse_docker_name(rest[2:], text)
    if sep and transport in ("oci", "oci-archive", "docker-archive"):
        from podkit_image_pull._archive_reference import parse_archive_reference

        return parse_archive_reference(transport, rest, text)
    if sep and transport in _OTHER_TRANSPORTS:
        raise NotImplementedYet(f"the {transport}: transport is not supported yet",
                                hint="pull from a registry with docker://HOST/REPO:TAG")
    # Like podman: anything else (including "docker:latest", an image named docker) is a
    # registry name.
    return _parse_docker_name(text, text)


def _parse_docker_name(name: str, given: str) -> ImageReference:
    def bad(why: str) -> UsageError:
        return UsageError(f"invalid image reference {given!r}: {why}",
                          hint="expected [docker://][HOST[:PORT]/]REPO[:TAG][@DIGEST]")

    if not name:
        raise bad("no name")
    if _ID_RE.fullmatch(name):
        raise bad("cannot pull a 64-hex image ID; name a repository")
    name, at, digest_text = name.partition("@")
    digest = None
    if at:
        digest = str(parse_digest(digest_text, what=f"digest in image reference {given!r}"))

    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash < 0 or not (any(c in first for c in ".:") or first == "localhost"
                         or first.lower() != first):
        registry, remainder, short = DEFAULT_REGISTRY, name, True
    else:
        registry, remainder, short = first, name[slash + 1:], False
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY

    tag = None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise bad(f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    if registry == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = f"library/{remainder}"

    if not _DOMAIN_RE.fullmatch(registry):
        raise bad(f"registry {registry!r} is not a valid host[:port]")
    if remainder.lower() != remainder:
        raise bad("repository name must be lowercase")
    for component in remainder.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise bad(f"repository component {component!r} must be lowercase letters and "
                      "digits separated by '.', '_', '__' or '-'")
    if len(registry) + 1 + len(remainder) > NAME_MAX:
        raise bad(f"name longer than {NAME_MAX} characters")
    if digest is not None:
        tag = None
    elif tag is None:
        tag = DEFAULT_TAG
    return ImageReference("docker", registry, remainder, tag, digest, short)


def check_repository(repository: str) -> None:
    """Raise UsageError unless ``repository`` is a valid repository path (safe in a URL)."""
    if not isinstance(repository, str) or not repository or not all(
            _PATH_COMPONENT_RE.fullmatch(c) for c in repository.split("/")):
        raise UsageError(f"invalid repository name {repository!r}")


def check_tag(tag: str) -> None:
    """Raise UsageError unless ``tag`` is a valid tag (safe in a URL)."""
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise UsageError(f"invalid tag {tag!r}")
