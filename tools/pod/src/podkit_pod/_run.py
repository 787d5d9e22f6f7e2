"""`pod run`: the same stage functions a shell pipeline runs, composed in-process.

    pod-image-pull REF | pod-storage import | pod-storage create
        | pod-runtime bundle | pod-netsetup attach | pod-runtime run
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from podkit_common import errors
from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots


@dataclass(frozen=True)
class RunOptions:
    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    remove: bool = False
    network: Any = "none"  # a mode, or podkit_netsetup.AttachOptions (pod run's flags)
    platform: str | None = None
    interactive: bool = False
    detach: bool = False
    #: keyword arguments for podkit_image_pull.pull (tls_verify, credentials, ...)
    pull_options: dict[str, Any] = field(default_factory=dict)
    #: CreateOptions' restart_policy and health (podkit_runtime.cli_health.create_extras)
    create_extras: dict[str, Any] = field(default_factory=dict)


def pull_and_import(roots: Roots, ref: str, *, platform: str | None = None,
                    progress: Progress = NULL, **pull_options: Any) -> dict[str, Any]:
    """pod-image-pull REF | pod-storage import, in-process."""
    from podkit_image_pull import pull
    from podkit_storage import import_image

    doc = pull(ref, root=roots.root, platform=platform, progress=progress, **pull_options)
    return import_image(doc, roots, progress)


def image_document(roots: Roots, ref: str, *, platform: str | None = None,
                   progress: Progress = NULL, **pull_options: Any) -> dict[str, Any]:
    """The stored image for ``ref``, pulling and importing it when missing (podman's
    default pull policy, "missing")."""
    from podkit_storage import find_image

    with contextlib.suppress(errors.NotFound):
        return {"changed": False, "image": find_image(roots, ref)}
    return pull_and_import(roots, ref, platform=platform, progress=progress, **pull_options)


def run(roots: Roots, opts: RunOptions, bundle_opts: Any, *,
        stdio: tuple[int, int, int] = (0, 1, 2), progress: Progress = NULL) -> dict[str, Any]:
    """Pull if needed, create, bundle and run; return the final document.

    The network's plugins run while conmon runs ``runc create``, and its DEL while the
    runtime and storage halves are removed (``_run_network``)."""
    from podkit_pod._containers import discard_runtime, run_options
    from podkit_pod._run_network import OverlappedNetwork
    from podkit_runtime import remove_bundle, run_bundle, write_bundle
    from podkit_storage import create_container, remove_container, unmount_container

    doc = image_document(roots, opts.image, platform=opts.platform, progress=progress,
                         **opts.pull_options)
    doc = create_container(doc, roots, name=opts.name)
    cid = doc["container"]["id"]
    net: OverlappedNetwork | None = None
    try:
        doc = write_bundle(doc, roots, bundle_opts)
        net = OverlappedNetwork(doc, roots, opts.network)
        doc = net.doc
        doc = run_bundle(doc, roots, stdio, before_start=net.before_start,
                         on_exit=net.on_exit, **run_options(roots, opts, cid))
    finally:
        # Detached: conmon's exit command (`pod cleanup`) releases or removes it.
        running_on = bool(opts.detach and doc.get("state"))
        try:
            if net is not None and net.failed:  # created for a network that failed
                discard_runtime(roots, cid)
            if running_on:
                pass
            elif opts.remove:
                discard_runtime(roots, cid)
                remove_bundle(roots, cid, remove_volumes=True)  # podman --rm: anonymous too
                remove_container(roots, cid)
            else:
                with contextlib.suppress(errors.PodkitError):
                    unmount_container(roots, cid)
        finally:
            if net is not None:  # after the removals: a DEL under way ran alongside them
                net.release(keep=running_on)
    return doc
