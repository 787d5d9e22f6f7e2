"""podkit_runtime: OCI bundles and running them with runc.

Library API (plain dicts in, plain dicts out; no typer, no stdin/stdout)::

    build_config(image_config, container, user, opts, ...) -> config   (pure)
    write_bundle(doc, roots, BundleOptions) -> doc
    run_bundle(doc, roots, stdio) -> doc with "state"
    remove_bundle(roots, container_id, remove_volumes=)
    create_volume / inspect_volume / list_volumes / remove_volume / prune_volumes /
    volume_exists: named volumes under <root>/volumes (``_volumes``)

    The lifecycle under conmon (``_lifecycle``, ``_inspect``, ``_logs``):
    create_container(doc, roots, CreateOptions) / start_container(roots, ref)
    run_container(doc, roots, opts, stdio=, detach=) -> doc with "state"
    wait_container / kill_container / stop_container / remove_runtime / cleanup_container
    attach_container(roots, ref, stdio=, detach_keys=) / pause_container / unpause_container
    exec_container(roots, ref, ExecOptions, stdio=) -> doc with "exec"
    list_containers(roots, all_=) -> ps lines; inspect_container(roots, ref)
    container_log(roots, ref, follow=, tail=, since_ns=, until_ns=) -> LogEntry...

Names load lazily so that ``pod-runtime --version`` imports none of it.
"""

from __future__ import annotations

from podkit_common.lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start

__version__ = "0.1.0"

__all__ = [
    "BundleOptions",
    "ContainerCannotStart",
    "CreateOptions",
    "ExecOptions",
    "User",
    "attach_container",
    "build_config",
    "cleanup_container",
    "container_log",
    "container_namespaces",
    "create_container",
    "create_volume",
    "exec_container",
    "inspect_container",
    "inspect_volume",
    "isolation_options",
    "kill_container",
    "list_containers",
    "list_volumes",
    "pause_container",
    "process_args",
    "prune_volumes",
    "remove_bundle",
    "remove_runtime",
    "remove_volume",
    "run_bundle",
    "run_container",
    "start_container",
    "stop_container",
    "unpause_container",
    "volume_exists",
    "wait_container",
    "write_bundle",
]

_HOMES = {
    "BundleOptions": "_spec",
    "ContainerCannotStart": "_run",
    "CreateOptions": "_lifecycle",
    "ExecOptions": "_exec",
    "exec_container": "_exec",
    "attach_container": "_attach",
    "pause_container": "_freezer",
    "unpause_container": "_freezer",
    "cleanup_container": "_lifecycle",
    "container_log": "_logs",
    "container_namespaces": "_namespaces",
    "isolation_options": "_isolation",
    "create_container": "_lifecycle",
    "inspect_container": "_inspect",
    "kill_container": "_lifecycle",
    "list_containers": "_inspect",
    "remove_runtime": "_lifecycle",
    "run_container": "_lifecycle",
    "start_container": "_lifecycle",
    "stop_container": "_lifecycle",
    "wait_container": "_lifecycle",
    "User": "_spec",
    "build_config": "_spec",
    "process_args": "_spec",
    "remove_bundle": "_bundle",
    "run_bundle": "_run",
    "write_bundle": "_bundle",
    "create_volume": "_volumes",
    "inspect_volume": "_volumes",
    "list_volumes": "_volumes",
    "prune_volumes": "_volumes",
    "remove_volume": "_volumes",
    "volume_exists": "_volumes",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)

if TYPE_CHECKING:
    from podkit_runtime._attach import attach_container
    from podkit_runtime._bundle import remove_bundle, write_bundle
    from podkit_runtime._exec import ExecOptions, exec_container
    from podkit_runtime._freezer import pause_container, unpause_container
    from podkit_runtime._inspect import inspect_container, list_containers
    from podkit_runtime._isolation import isolation_options
    from podkit_runtime._lifecycle import (
        CreateOptions,
        cleanup_container,
        create_container,
        kill_container,
        remove_runtime,
        run_container,
        start_container,
        stop_container,
        wait_container,
    )
    from podkit_runtime._logs import container_log
    from podkit_runtime._namespaces import container_namespaces
    from podkit_runtime._run import ContainerCannotStart, run_bundle
    from podkit_runtime._spec import BundleOptions, User, build_config, process_args
    from podkit_runtime._volumes import (
        create_volume,
        inspect_volume,
        list_volumes,
        prune_volumes,
        remove_volume,
        volume_exists,
    )
