"""`pod inspect NAME...`: whatever the name is, like `podman inspect`.

``--type all`` (the default) tries a container, an image, a volume, a network and a
pod, in podman's order; ``--type container|image|volume|network|pod`` looks only there.
Each kind's document is the one its own inspect command prints.
"""

from __future__ import annotations

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

TYPES = ("all", "container", "image", "volume", "network", "pod")


def _container(roots: Roots, ref: str) -> dict[str, Any]:
    from podkit_runtime import inspect_container

    return inspect_container(roots, ref)


def _image(roots: Roots, ref: str) -> dict[str, Any]:
    from podkit_pod._image_inspect import inspect_document

    return inspect_document(roots, ref)


def _volume(roots: Roots, ref: str) -> dict[str, Any]:
    from podkit_runtime import inspect_volume

    try:
        return inspect_volume(roots, ref)
    except errors.UsageError:  # not a valid volume name: not a volume
        raise errors.NotFound(f"no such volume {ref}") from None


def _network(roots: Roots, ref: str) -> dict[str, Any]:
    from podkit_pod._network_report import inspect_doc, store

    return inspect_doc(store(roots), ref)


def _pod(roots: Roots, ref: str) -> dict[str, Any]:
    from podkit_runtime._pods import inspect_pod

    return inspect_pod(roots, ref)


_LOOKUPS: dict[str, Callable[[Roots, str], dict[str, Any]]] = {
    "container": _container, "image": _image, "volume": _volume, "network": _network,
    "pod": _pod,
}


def inspect_object(roots: Roots, ref: str, type_: str = "all") -> dict[str, Any]:
    """The inspect document of ``ref`` (NotFound: ``no such object``)."""
    if type_ not in TYPES:
        raise errors.UsageError(f"invalid type {type_!r}: must be one of {', '.join(TYPES)}")
    kinds = list(_LOOKUPS) if type_ == "all" else [type_]
    for kind in kinds:
        try:
            return _LOOKUPS[kind](roots, ref)
        except errors.NotFound as exc:
            if type_ != "all":
                raise errors.NotFound(f"inspecting object: {exc.message}",
                                      hint=exc.hint) from None
        except ImportError:
            continue
    raise errors.NotFound(f'inspecting object: no such object: "{ref}"',
                          hint="give a container, image, volume, network or pod name")


def inspect_makers(roots: Roots, refs: list[str], type_: str = "all"
                   ) -> list[Callable[[], dict[str, Any]]]:
    """One call per name, for podkit_pod.cli_image.write_inspected."""
    return [lambda r=r: inspect_object(roots, r, type_) for r in refs]
