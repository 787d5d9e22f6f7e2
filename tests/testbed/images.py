"""Image, manifest and index assembly for the test images (Docker v2s2 and OCI).

Manifests are serialized with a 3-space indent, as Docker does, so their digest only
matches the raw bytes: a puller that re-serializes before hashing will notice.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import platform as _platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import layers as L

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

_LAYER_TYPES = {
    ("docker", "gzip"): DOCKER_LAYER_GZIP,
    ("oci", "gzip"): OCI_LAYER_GZIP,
    ("oci", "zstd"): OCI_LAYER_ZSTD,
    ("oci", "none"): OCI_LAYER,
}

DEFAULT_CONFIG: dict[str, Any] = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["sh"],
    "WorkingDir": "/",
}
CONFIG_FIELDS = frozenset(
    {"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts",
     "StopSignal", "Volumes"}
)

_MACHINE_TO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
                    "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def sha256_digest(data: bytes) -> str:
    """Return "sha256:<hex>" of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def host_platform() -> dict[str, str]:
    """This machine's platform as an OCI platform object (variant only for arm64/arm)."""
    machine = _platform.machine()
    arch = _MACHINE_TO_ARCH.get(machine, machine)
    plat = {"architecture": arch, "os": "linux"}
    if arch == "arm64":
        plat["variant"] = "v8"
    elif arch == "arm":
        plat["variant"] = "v7"
    return plat


def platform_string(plat: Mapping[str, str]) -> str:
    """"linux/arm64/v8"-style name of a platform object."""
    parts = [plat["os"], plat["architecture"]]
    if plat.get("variant"):
        parts.append(plat["variant"])
    return "/".join(parts)


@dataclass(frozen=True)
class Layer:
    """One layer blob: digest/size/data are of the compressed blob, diff_id of the tar."""

    digest: str
    diff_id: str
    size: int
    media_type: str
    data: bytes = field(repr=False)
    tar: bytes = field(repr=False)

    def descriptor(self) -> dict[str, Any]:
        """The manifest descriptor of this layer."""
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image: manifest, config and layers, all as registry blobs."""

    manifest: bytes = field(repr=False)
    manifest_media_type: str
    manifest_digest: str
    config: bytes = field(repr=False)
    config_digest: str
    config_media_type: str
    layers: list[Layer]
    platform: dict[str, str]

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every blob the manifest references (config and layers), by digest."""
        out = {self.config_digest: self.config}
        out.update((layer.digest, layer.data) for layer in self.layers)
        return out

    @property
    def config_json(self) -> dict[str, Any]:
        """The image config document, parsed."""
        return json.loads(self.config)

    def descriptor(self) -> dict[str, Any]:
        """An index entry for this image (with its platform)."""
        return {
            "mediaType": self.manifest_media_type,
            "size": len(self.manifest),
            "digest": self.manifest_digest,
            "platform": dict(self.platform),
        }


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform image: an OCI index or a Docker manifest list over child images."""

    manifest: bytes = field(repr=False)
    manifest_media_type: str
    manifest_digest: str
    children: list[BuiltImage]

    @property
    def blobs(self) -> dict[str, bytes]:
        """The blobs of all children, by digest."""
        out: dict[str, bytes] = {}
        for child in self.children:
            out.update(child.blobs)
        return out

    def child_for(self, architecture: str, variant: str | None = None) -> BuiltImage:
        """The child for a linux platform; KeyError if there is none."""
        for child in self.children:
            p = child.platform
            if p["architecture"] != architecture:
                continue
            if variant is None or p.get("variant") == variant:
                return child
        raise KeyError(f"no child for linux/{architecture}/{variant or ''}")

    @property
    def native(self) -> BuiltImage:
        """The child this machine would select."""
        host = host_platform()
        return self.child_for(host["architecture"], host.get("variant"))


def _dump(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=3).encode()


def make_layer(tar: bytes, fmt: str = "oci", compression: str = "gzip") -> Layer:
    """Wrap an uncompressed layer tar as a blob of the given format and compression."""
    try:
        media_type = _LAYER_TYPES[(fmt, compression)]
    except KeyError:
        raise ValueError(f"no {compression!r} layers in the {fmt!r} format") from None
    data = L.compress(tar, compression)
    return Layer(sha256_digest(data), sha256_digest(tar), len(data), media_type, data, tar)


def make_config(
    diff_ids: Sequence[str],
    *,
    plat: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    history: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An image config document; config overrides DEFAULT_CONFIG (a None value drops a key)."""
    plat = dict(plat or host_platform())
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    for key, value in (config or {}).items():
        if key not in CONFIG_FIELDS:
            raise ValueError(f"unknown config field {key!r}; known: {sorted(CONFIG_FIELDS)}")
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = copy.deepcopy(value)
    created_by = list(history or [f"podkit testbed layer {i + 1}" for i in range(len(diff_ids))])
    doc: dict[str, Any] = {
        "created": L.CREATED,
        "architecture": plat["architecture"],
        "os": plat["os"],
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": L.CREATED, "created_by": c} for c in created_by],
    }
    if plat.get("variant"):
        doc["variant"] = plat["variant"]
    return doc


def build_image(
    layer_tars: Sequence[bytes],
    *,
    fmt: str = "oci",
    compression: str | Sequence[str] = "gzip",
    config: Mapping[str, Any] | None = None,
    plat: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> BuiltImage:
    """Build an image from uncompressed layer tars.

    fmt is "docker" (v2 schema 2, gzip only) or "oci"; compression is one value for all
    layers or one per layer ("gzip", "zstd", "none"). config overrides the container
    config fields (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts,
    StopSignal, Volumes); plat defaults to this machine.
    """
    if fmt not in ("docker", "oci"):
        raise ValueError(f"fmt must be 'docker' or 'oci', not {fmt!r}")
    comps = [compression] * len(layer_tars) if isinstance(compression, str) else list(compression)
    if len(comps) != len(layer_tars):
        raise ValueError("one compression per layer, or a single one for all")
    plat = dict(plat or host_platform())
    layers = [make_layer(t, fmt, c) for t, c in zip(layer_tars, comps, strict=True)]
    config_bytes = _dump(make_config([la.diff_id for la in layers], plat=plat, config=config))
    config_type = DOCKER_CONFIG if fmt == "docker" else OCI_CONFIG
    manifest_type = DOCKER_MANIFEST if fmt == "docker" else OCI_MANIFEST
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "size": len(config_bytes),
            "digest": sha256_digest(config_bytes),
        },
        "layers": [la.descriptor() for la in layers],
    }
    if annotations:
        if fmt == "docker":
            raise ValueError("docker v2s2 manifests have no annotations")
        manifest["annotations"] = dict(annotations)
    raw = _dump(manifest)
    return BuiltImage(
        manifest=raw,
        manifest_media_type=manifest_type,
        manifest_digest=sha256_digest(raw),
        config=config_bytes,
        config_digest=sha256_digest(config_bytes),
        config_media_type=config_type,
        layers=layers,
        platform=plat,
    )


def build_index(children: Sequence[BuiltImage], *, fmt: str = "oci") -> BuiltIndex:
    """Build an OCI index (fmt="oci") or a Docker manifest list (fmt="docker") over children."""
    index_type = OCI_INDEX if fmt == "oci" else DOCKER_MANIFEST_LIST
    raw = _dump(
        {
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": [c.descriptor() for c in children],
        }
    )
    return BuiltIndex(raw, index_type, sha256_digest(raw), list(children))


# Fake platforms for multi-arch images; the host's own platform is skipped.
FAKE_PLATFORMS: tuple[dict[str, str], ...] = (
    {"architecture": "arm64", "os": "linux", "variant": "v8"},
    {"architecture": "arm", "os": "linux", "variant": "v7"},
    {"architecture": "amd64", "os": "linux"},
)


def busybox_image(
    layers: int = 1,
    *,
    fmt: str = "docker",
    compression: str | Sequence[str] = "gzip",
    config: Mapping[str, Any] | None = None,
) -> BuiltImage:
    """This machine's busybox image with 1, 2 or 3 layers (see tests.testbed.layers)."""
    tars = [L.base_layer_tar, L.second_layer_tar, L.third_layer_tar]
    if not 1 <= layers <= len(tars):
        raise ValueError("layers must be 1, 2 or 3")
    return build_image(
        [make() for make in tars[:layers]], fmt=fmt, compression=compression, config=config
    )


def fake_platform_image(plat: Mapping[str, str], *, fmt: str = "oci") -> BuiltImage:
    """A tiny image for a foreign platform: one layer holding /etc/podkit-platform."""
    return build_image(
        [L.platform_marker_tar(platform_string(plat))], fmt=fmt, plat=plat,
        config={"Cmd": ["cat", L.PLATFORM_MARKER]},
    )


@functools.cache
def multiarch_index(fmt: str = "oci", fakes: int = 2) -> BuiltIndex:
    """An index whose first child is the real busybox and then `fakes` foreign platforms."""
    host = host_platform()
    foreign = [p for p in FAKE_PLATFORMS if platform_string(p) != platform_string(host)]
    children = [busybox_image(1, fmt=fmt)] + [fake_platform_image(p, fmt=fmt)
                                               for p in foreign[:fakes]]
    return build_index(children, fmt=fmt)
