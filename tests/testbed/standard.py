"""The standard image set that tests and the demo registry serve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from .images import BuiltImage, BuiltIndex, busybox_image, multiarch_index
from .push import push

# name -> builder. The first three are the demo images; the rest are extra test cases.
STANDARD: dict[str, Callable[[], BuiltImage | BuiltIndex]] = {
    "busybox:latest": lambda: busybox_image(1, fmt="docker"),
    "busybox:oci": lambda: busybox_image(2, fmt="oci"),
    "busybox:multiarch": lambda: multiarch_index("oci"),
    "busybox:multiarch-docker": lambda: multiarch_index("docker"),
    "busybox:zstd": lambda: busybox_image(3, fmt="oci", compression=["gzip", "zstd", "none"]),
}


@dataclass(frozen=True)
class PushedImage:
    """One image in a registry: its name, full reference, digest and the built object."""

    name: str  # "busybox:latest"
    ref: str  # "docker://127.0.0.1:PORT/busybox:latest"
    digest: str  # manifest (or index) digest
    image: BuiltImage | BuiltIndex

    @property
    def ref_by_digest(self) -> str:
        """"docker://127.0.0.1:PORT/busybox@sha256:..."."""
        return self.ref.rsplit(":", 1)[0] + "@" + self.digest


@dataclass(frozen=True)
class StandardImages:
    """The standard set as pushed to one registry; index it by name ("busybox:oci")."""

    registry_url: str
    pushed: dict[str, PushedImage]

    def __getitem__(self, name: str) -> PushedImage:
        return self.pushed[name]

    def ref(self, name: str) -> str:
        """The docker:// reference of a standard image."""
        return self.pushed[name].ref

    @property
    def digests(self) -> dict[str, str]:
        """name -> manifest digest."""
        return {n: p.digest for n, p in self.pushed.items()}


def push_standard(registry_url: str, names: list[str] | None = None) -> StandardImages:
    """Build (cached) and push the standard images to registry_url ("127.0.0.1:PORT")."""
    pushed: dict[str, PushedImage] = {}
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        for name in names or list(STANDARD):
            image = STANDARD[name]()
            repo, tag = name.split(":", 1)
            digest = push(registry_url, repo, tag, image, client=client)
            pushed[name] = PushedImage(name, f"docker://{registry_url}/{name}", digest, image)
    return StandardImages(registry_url, pushed)
