"""`pod create`: `pod run`'s stages up to a created container, which `pod start` runs.

    pod-image-pull REF | pod-storage import | pod-storage create
        | pod-runtime bundle | pod-netsetup attach | pod-runtime create

The container is left configured, as podman's create leaves it: record, bundle and
rootfs, but no conmon and no runc state (podkit_runtime._configured); `pod start` runs
conmon + ``runc create`` + ``runc start``, and from then on it is a detached `pod run`'s
container; conmon's exit command (`pod cleanup [--rm]`) releases it once it exits.
`ps` and `inspect` show it as podman does: created.
"""

from __future__ import annotations

import contextlib

from podkit_common import errors
from podkit_common.progress import NULL, Progress
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def create(roots: Roots, opts: Any, bundle_opts: Any, *,
           progress: Progress = NULL) -> dict[str, Any]:
    """Pull if needed, create the rootfs, bundle, attach the network and record the
    configured container (conmon and runc wait for start); ``opts`` is
    podkit_pod._run.RunOptions. On failure nothing is left behind."""
    from podkit_pod._containers import discard_runtime, exit_command
    from podkit_pod._network import attach_network, release_network
    from podkit_pod._run import image_document
    from podkit_runtime import CreateOptions, remove_bundle, write_bundle
    from podkit_runtime import create_container as create_runtime
    from podkit_runtime._timings import mark
    from podkit_storage import create_container, remove_container

    mark("create-imports")
    doc = image_document(roots, opts.image, platform=opts.platform, progress=progress,
                         **opts.pull_options)
    mark("image")
    doc = create_container(doc, roots, name=opts.name)
    mark("storage-create")
    cid = doc["container"]["id"]
    try:
        doc = write_bundle(doc, roots, bundle_opts)
        mark("bundle")
        doc = attach_network(doc, roots, opts.network)
        mark("network-begin")
        created = CreateOptions(stdin=opts.interactive, remove=opts.remove,
                                exit_command=exit_command(roots, cid, opts.remove),
                                **opts.create_extras)
        created = create_runtime(doc, roots, created, configure_only=True)  # conmon at start
        mark("configure")
        return created
    except BaseException:
        release_network(doc, roots)
        discard_runtime(roots, cid)
        with contextlib.suppress(errors.PodkitError):
            remove_bundle(roots, cid, remove_volumes=True)
        with contextlib.suppress(errors.PodkitError):
            remove_container(roots, cid)
        raise
