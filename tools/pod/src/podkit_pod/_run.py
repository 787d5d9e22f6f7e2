"""`pod run`: the same stage functions a shell pipeline runs, composed in-process.

    pod-image-pull REF | pod-storage import | pod-storage create
        | pod-runtime bundle | pod-netsetup attach | pod-runtime run
"""

from __future__ import annotations

import contextlib

from podkit_common import errors
from podkit_common.progress import NULL, Progress
from podkit_common.records import field, record
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


@record(frozen=True)
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
    from podkit_runtime._timings import mark
    from podkit_storage import create_container

    mark("run-imports")
    from podkit_runtime._conmon_cgroup import warm

    warm()  # conmon's cgroup move, after storage and bundle: its lock's wait starts now
    doc = image_document(roots, opts.image, platform=opts.platform, progress=progress,
                         **opts.pull_options)
    mark("image")
    doc = create_container(doc, roots, name=opts.name)
    mark("storage-create")
    cid = doc["container"]["id"]
    net: OverlappedNetwork | None = None
    storage = _StorageRelease(roots, cid, opts.remove)
    try:
        doc = write_bundle(doc, roots, bundle_opts)
        mark("bundle")
        net = OverlappedNetwork(doc, roots, opts.network)
        doc = net.doc
        mark("network-begin")
        doc = run_bundle(doc, roots, stdio, before_start=net.before_start,
                         on_exit=_both(net.on_exit, storage.start),
                         **run_options(roots, opts, cid))
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
                storage.finish()
            else:
                storage.finish()
        finally:
            if net is not None:  # after the removals: a DEL under way ran alongside them
                net.release(keep=running_on)
            mark("remove")
    return doc


def _both(first: Any, second: Any) -> Any:
    def hook() -> None:
        first()
        second()
    return hook


class _StorageRelease:
    """The storage half of `pod run`'s teardown (--rm: remove the container, else
    unmount its rootfs), started by the runtime's ``on_exit`` hook as soon as the
    container exited, in a thread of its own: the overlay's unmount and the deletion
    then run alongside ``runc delete`` and the runtime's removals instead of after
    them (``runc delete`` of an exited container needs only runc's state, not the
    rootfs). Not when the bundle has poststop hooks, which may look at the rootfs
    (podman unmounts after them): then, and after any failure, :meth:`finish` does it
    in the caller's thread, in the old order."""

    def __init__(self, roots: Roots, cid: str, remove: bool) -> None:
        self._roots, self._cid, self._remove = roots, cid, remove
        self._thread: Any = None
        self._done = False
        self._error: BaseException | None = None

    def start(self) -> None:
        import threading

        if _has_poststop_hooks(self._roots, self._cid):
            return
        self._thread = threading.Thread(target=self._early, name="podkit-storage-release")
        self._thread.start()

    def _early(self) -> None:
        try:
            self._release()
            self._done = True
        except BaseException as exc:  # handed to finish(), in the caller's thread
            self._error = exc

    def _release(self) -> None:
        from podkit_storage import remove_container, unmount_container

        if self._remove:
            remove_container(self._roots, self._cid)
        else:
            with contextlib.suppress(errors.PodkitError):
                unmount_container(self._roots, self._cid)

    def finish(self) -> None:
        """Wait for the early release, or release now; raises what it raised."""
        if self._thread is not None:
            self._thread.join()
            if self._error is not None:
                raise self._error
            if self._done:
                return
        self._release()


def _has_poststop_hooks(roots: Roots, cid: str) -> bool:
    from podkit_common import atomic
    from podkit_runtime._layout import RuntimeLayout

    try:
        config = atomic.read_json(RuntimeLayout(roots).bundle(cid) / "config.json")
    except (OSError, errors.PodkitError):
        return True  # unknown: keep the old order
    return bool((config.get("hooks") or {}).get("poststop"))
