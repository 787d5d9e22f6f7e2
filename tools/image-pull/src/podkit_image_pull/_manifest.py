"""Manifests, manifest lists / OCI indexes, image configs, and platform selection.

Everything here is pure: bytes or parsed JSON in, validated descriptors out. A registry
answer that does not have the expected shape is a :class:`VerificationFailed` (we cannot
trust it to describe the content), never a crash.
"""

from __future__ import annotations

import platform as _platform
from typing import Any

from podkit_common.errors import NotFound, NotImplementedYet, UsageError, VerificationFailed
from podkit_common.jsonio import loads
from podkit_common.records import record
from podkit_image_pull._digest import parse_digest

DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_V2S1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V2S1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

MANIFEST_TYPES = (DOCKER_V2S2, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
SCHEMA1_TYPES = (DOCKER_V2S1, DOCKER_V2S1_SIGNED)
#: What we ask for; order is preference (registries mostly ignore it).
ACCEPT_ALL = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_V2S2)

#: Manifests and configs are read into memory; refuse anything bigger (containers/image's limit).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024


@record(frozen=True)
class Descriptor:
    """A validated content descriptor from a manifest or index."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    #: Where else the blob may be fetched from (foreign layers; see _foreign).
    urls: tuple[str, ...] = ()


@record(frozen=True)
class Platform:
    """An ``os/architecture[/variant]`` triple."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.variant}" if self.variant else ""
        return f"{self.os}/{self.architecture}{tail}"

    def as_dict(self) -> dict[str, str]:
        out = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            out["variant"] = self.variant
        return out


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """Parse ``body`` as a JSON object or raise VerificationFailed naming ``what``."""
    try:
        doc = loads(body, what=what)
    except Exception as exc:  # InvalidDocument: but it is the registry that is wrong here
        raise VerificationFailed(f"{what} is not valid JSON: {exc}",
                                 hint="the registry sent something that is not an image") from None
    if not isinstance(doc, dict):
        raise VerificationFailed(f"{what} is not a JSON object")
    return doc


def media_type_of(doc: dict[str, Any], content_type: str | None) -> str:
    """The manifest's media type: its own ``mediaType`` field, else the Content-Type, else
    guessed from its shape (old OCI documents may omit ``mediaType``)."""
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if doc.get("schemaVersion") == 1:
        return DOCKER_V2S1_SIGNED if "signatures" in doc else DOCKER_V2S1
    if content_type in (*MANIFEST_TYPES, *INDEX_TYPES, *SCHEMA1_TYPES):
        return content_type
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    raise VerificationFailed(f"cannot tell what kind of manifest this is "
                             f"(Content-Type {content_type or 'missing'})")


def check_supported(media_type: str) -> None:
    """Refuse manifest formats the puller cannot handle, with a message saying why."""
    if media_type in SCHEMA1_TYPES:
        raise NotImplementedYet(
            "the image has a Docker schema 1 manifest, which is deprecated and not supported",
            hint="push the image again with a current tool (it gets a schema 2 or OCI manifest)")
    if media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
        raise VerificationFailed(f"unsupported manifest media type {media_type!r}")


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise VerificationFailed(f"{what} is not an object")
    digest = str(parse_digest(raw.get("digest"), error=VerificationFailed,
                              what=f"digest of {what}"))
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise VerificationFailed(f"{what} {digest}: size must be a non-negative integer")
    media_type = raw.get("mediaType")
    if not isinstance(media_type, str):
        raise VerificationFailed(f"{what} {digest}: mediaType missing")
    plat = raw.get("platform")
    urls = raw.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise VerificationFailed(f"{what} {digest}: urls must be an array of strings")
    return Descriptor(media_type, digest, size, plat if isinstance(plat, dict) else None,
                      tuple(urls))


def parse_index(doc: dict[str, Any]) -> list[Descriptor]:
    """The child manifests of a Docker manifest list or OCI index."""
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise VerificationFailed("manifest list has no 'manifests' array")
    return [_descriptor(e, f"manifest list entry {i}") for i, e in enumerate(entries)]


def parse_manifest(doc: dict[str, Any]) -> tuple[Descriptor, list[Descriptor]]:
    """The config descriptor and the layer descriptors of an image manifest."""
    if doc.get("schemaVersion") != 2:
        raise VerificationFailed("manifest schemaVersion must be 2")
    config = _descriptor(doc.get("config"), "config descriptor")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise VerificationFailed("manifest has no 'layers' array")
    return config, [_descriptor(layer, f"layer {i}") for i, layer in enumerate(layers)]


def check_image_config(config: Descriptor) -> None:
    """Refuse OCI artifacts (Helm charts, signatures, ...): they are not container images."""
    if config.media_type not in (DOCKER_CONFIG, OCI_CONFIG):
        raise NotImplementedYet(
            f"not a container image: its config has media type {config.media_type!r}",
            hint="pod-image-pull pulls container images; OCI artifacts are not supported")
    if not config.digest.startswith("sha256:"):
        raise NotImplementedYet(f"config digest {config.digest}: only sha256 image configs "
                                "are supported (the image ID is its hex)")


def diff_ids_of(config: dict[str, Any]) -> list[str]:
    """The validated ``rootfs.diff_ids`` of an image config."""
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise VerificationFailed("image config has no rootfs of type 'layers'")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list):
        raise VerificationFailed("image config has no rootfs.diff_ids array")
    return [str(parse_digest(d, error=VerificationFailed, what=f"config diff_id {i}"))
            for i, d in enumerate(diff_ids)]


# --- platforms ------------------------------------------------------------------------

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386",
                 "i686": "386", "armhf": "arm", "armel": "arm"}
_MACHINE = {"x86_64": ("amd64", None), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
            "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"),
            "i386": ("386", None), "i686": ("386", None)}
#: Variants a machine of the key variant can also run, best first (containers/image's table).
_ARM_COMPATIBLE = {"v8": ("v8", "v7", "v6", "v5"), "v7": ("v7", "v6", "v5"),
                   "v6": ("v6", "v5"), "v5": ("v5",)}


def host_platform() -> Platform:
    """This machine's platform, in OCI terms (linux/amd64, linux/arm64/v8, linux/arm/v7...)."""
    machine = _platform.machine()
    arch, variant = _MACHINE.get(machine, (machine.lower(), None))
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (podman's ``--platform``); UsageError if malformed."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(p and p.strip() == p for p in parts):
        raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant]",
                         hint="for example --platform linux/arm64/v8")
    os_name = parts[0].lower()
    arch = _ARCH_ALIASES.get(parts[1].lower(), parts[1].lower())
    variant = parts[2].lower() if len(parts) == 3 else None
    if parts[1].lower() == "armel" and variant is None:
        variant = "v6"
    if arch == "arm" and variant is None:
        variant = "v7"
    return Platform(os_name, arch, variant)


def _wanted_variants(want: Platform) -> tuple[str | None, ...]:
    if want.architecture == "arm64":
        return (want.variant, None) if want.variant not in (None, "v8") else ("v8", None)
    if want.architecture == "arm":
        return _ARM_COMPATIBLE.get(want.variant or "v7", (want.variant,))
    return (want.variant,) if want.variant else (None,)


def select_platform(entries: list[Descriptor], want: Platform) -> Descriptor:
    """The index entry for ``want``: same os and architecture, best compatible variant.

    A wanted variant matches an entry without one only where that is the default
    (arm64 without a variant is v8); otherwise the first matching entry wins.
    """
    candidates = [e for e in entries if e.platform
                  and str(e.platform.get("os", "")).lower() == want.os
                  and _ARCH_ALIASES.get(str(e.platform.get("architecture", "")).lower(),
                                        str(e.platform.get("architecture", "")).lower())
                  == want.architecture]
    variants = _wanted_variants(want)
    for variant in variants:
        for entry in candidates:
            have = (entry.platform or {}).get("variant") or None
            if have == variant:
                return entry
    if candidates and want.architecture not in ("arm", "arm64") and want.variant is None:
        return candidates[0]
    available = sorted({str(platform_of(e.platform, None)) for e in entries if e.platform})
    raise NotFound(f"no image found in the manifest list for platform {want}",
                   hint=f"available: {', '.join(available) or 'none'}; choose with --platform")


def platform_of(config: dict[str, Any], fallback: Platform | None) -> Platform:
    """The platform an image config (or index entry platform object) declares."""
    os_name = config.get("os")
    arch = config.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        if fallback is None:
            return Platform(str(os_name or "unknown"), str(arch or "unknown"))
        return fallback
    variant = config.get("variant")
    return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)


def image_platform(config: dict[str, Any], entry: Platform | None) -> Platform:
    """The platform an image config declares, completed by the variant of the index entry
    it was chosen by (configs often omit the variant)."""
    found = platform_of(config, entry)
    if found.variant is None and entry is not None and entry.variant \
            and entry.architecture == found.architecture:
        found = Platform(found.os, found.architecture, entry.variant)
    return found
