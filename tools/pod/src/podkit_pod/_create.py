"""`pod create`: `pod run`'s stages up to a created container, which `pod start` runs.

    pod-image-pull REF | pod-storage import | pod-storage create
        | pod-runtime bundle | pod-netsetup attach | pod-runtime create

The container is created under conmon (``runc create``: its process waits for ``runc
start``), so `pod start`, `wait`, `logs`, `attach` and `rm` work on it as on a detached
`pod run`; conmon's exit command (`pod cleanup [--rm]`) releases it once it exits.
podman's create makes no process until start; `ps` shows both as Created.
"""

from __future__ import annotations

import contextlib
from typing import Any

from podkit_common import errors
from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots


def create(roots: Roots, opts: Any, bundle_opts: Any, *,
           progress: Progress = NULL) -> dict[str, Any]:
    """Pull if needed, create the rootfs, bundle, attach the network and create the
    container under conmon; ``opts`` is podkit_pod._run.RunOptions. On failure nothing
    is left behind."""
    from podkit_pod._containers import discard_runtime, exit_command
    from podkit_pod._network import attach_network, release_network
    from podkit_pod._run import image_document
    from podkit_runtime import CreateOptions, remove_bundle, write_bundle
    from podkit_runtime import create_container as create_runtime
    from podkit_storage import create_container, remove_container

    doc = image_document(roots, opts.image, platform=opts.platform, progress=progress,
                         **opts.pull_options)
    doc = create_container(doc, roots, name=opts.name)
    cid = doc["container"]["id"]
    try:
        doc = write_bundle(doc, roots, bundle_opts)
        doc = attach_network(doc, roots, opts.network)
        created = CreateOptions(stdin=opts.interactive, remove=opts.remove,
                                exit_command=exit_command(roots, cid, opts.remove),
                                **opts.create_extras)
        return create_runtime(doc, roots, created)
    except BaseException:
        release_network(doc, roots)
        discard_runtime(roots, cid)
        with contextlib.suppress(errors.PodkitError):
            remove_bundle(roots, cid, remove_volumes=True)
        with contextlib.suppress(errors.PodkitError):
            remove_container(roots, cid)
        raise
