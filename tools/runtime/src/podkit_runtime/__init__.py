"""podkit_runtime: OCI bundles and running them with runc.

Library API (plain dicts in, plain dicts out; no typer, no stdin/stdout)::

    build_config(image_config, container, user, opts, ...) -> config   (pure)
    write_bundle(doc, roots, BundleOptions) -> doc
    run_bundle(doc, roots, stdio) -> doc with "state"
    remove_bundle(roots, container_id)

Names load lazily so that ``pod-runtime --version`` imports none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from podkit_common.lazy import lazy_exports

__version__ = "0.1.0"

__all__ = [
    "BundleOptions",
    "ContainerCannotStart",
    "User",
    "build_config",
    "process_args",
    "remove_bundle",
    "run_bundle",
    "write_bundle",
]

_HOMES = {
    "BundleOptions": "_spec",
    "ContainerCannotStart": "_run",
    "User": "_spec",
    "build_config": "_spec",
    "process_args": "_spec",
    "remove_bundle": "_bundle",
    "run_bundle": "_run",
    "write_bundle": "_bundle",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)

if TYPE_CHECKING:
    from podkit_runtime._bundle import remove_bundle, write_bundle
    from podkit_runtime._run import ContainerCannotStart, run_bundle
    from podkit_runtime._spec import BundleOptions, User, build_config, process_args
