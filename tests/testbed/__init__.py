"""podkit's test bed: a local registry, real busybox images, probes and cleanup.

Independent of podkit's own packages by design: it is the oracle the product is
tested against, so it must never import podkit_*.
"""

from .env import podkit_environment
from .images import BuiltImage, BuiltIndex, Layer, build_image, build_index, busybox_image
from .probes import is_root, netns_works, overlay_works, probe, runc_works
from .push import push
from .registry import LocalRegistry
from .shell import sh
from .standard import PushedImage, StandardImages, push_standard

__all__ = [
    "BuiltImage",
    "BuiltIndex",
    "Layer",
    "LocalRegistry",
    "PushedImage",
    "StandardImages",
    "build_image",
    "build_index",
    "busybox_image",
    "is_root",
    "netns_works",
    "overlay_works",
    "podkit_environment",
    "probe",
    "push",
    "push_standard",
    "runc_works",
    "sh",
]
