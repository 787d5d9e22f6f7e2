"""`pod pod ...`: pods composed in-process from the stages, the same calls a pipeline makes:

    create:  pod-runtime pod create
             | (pause image: tar of catatonit | pod-storage import-tarball, once)
             pod-storage create --image PAUSE --name <podid[:12]>-infra
             | pod-runtime pod bundle-infra POD | pod-netsetup attach ... | pod-runtime create
    start:   pod-runtime pod start      (infra first; rootfs mounted again where needed)
    rm:      pod-runtime pod rm | pod-netsetup detach ; pod-storage rm each container

The infra is configured at `pod pod create` (status Created, like podman's: no conmon
or runc before `pod pod start`, podkit_runtime._configured) with its network attached
then, and keeps it until the pod is removed: its exit command is pod-runtime's cleanup,
which leaves the network alone, so a stopped pod starts again without the network stage.
(podman attaches at infra start and detaches at stop.)

The infra image is ``localhost/podkit-pause:<podkit version>-<catatonit digest[:12]>``:
podman's pattern (a one-layer image holding a static catatonit at /catatonit, entrypoint
``["/catatonit", "-P"]``, made locally) under podkit's own name, so that it never passes
for podman's image; the digest part makes a new image when Debian ships a new
catatonit, as podman's build time does for a new podman. Its name is remembered next
to the catatonit's identity (path, inode, size, times) in ``<root>/pod/pause-image.json``,
so later pods look the image up without reading and hashing the binary again.
"""

from __future__ import annotations

import contextlib
import os

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

PAUSE_REPO = "localhost/podkit-pause"
PAUSE_ENTRYPOINT = 'ENTRYPOINT ["/catatonit", "-P"]'


def catatonit_path() -> str:
    from podkit_common.spawn import which  # shutil's import pulls in bz2 and lzma

    path = os.environ.get("PODKIT_CATATONIT") or which("catatonit") or "/usr/bin/catatonit"
    if not os.access(path, os.X_OK):
        raise errors.NotFound("catatonit not found: the pod's infra image is made from it",
                              hint="apt-get install catatonit")
    return path


def pause_image_name(binary: bytes) -> str:
    import hashlib

    from podkit_pod import __version__

    return f"{PAUSE_REPO}:{__version__}-{hashlib.sha256(binary).hexdigest()[:12]}"


def pause_tar(binary: bytes) -> bytes:
    """A tar whose only file is /catatonit (root-owned, 0755, a fixed time): the same
    bytes every time, so the layer is the same blob every time (pure)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("catatonit")
        info.size, info.mode, info.mtime = len(binary), 0o755, 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(binary))
    return buf.getvalue()


def ensure_pause_image(roots: Roots) -> dict[str, Any]:
    """The infra image, made on first use (one maker at a time: two concurrent pod
    creates make one image)."""
    import io

    from podkit_common.locks import object_lock
    from podkit_storage import find_image

    path = catatonit_path()
    known = _known_pause_name(roots, path)
    if known:
        with contextlib.suppress(errors.NotFound):
            return {"changed": False, "image": find_image(roots, known)}
    with open(path, "rb") as fh:
        binary = fh.read()
    name = pause_image_name(binary)
    with contextlib.suppress(errors.NotFound):
        image = find_image(roots, name)
        _remember_pause_name(roots, path, name)
        return {"changed": False, "image": image}
    with object_lock(roots.root / "locks", "pod", "pause-image", timeout=120.0):
        with contextlib.suppress(errors.NotFound):
            return {"changed": False, "image": find_image(roots, name)}
        from podkit_storage import import_tarball  # the first pod only: json, tarfile

        import_tarball(roots, io.BytesIO(pause_tar(binary)), name,
                       changes=[PAUSE_ENTRYPOINT])
        image = find_image(roots, name)
        _remember_pause_name(roots, path, name)
        return {"changed": True, "image": image}


def _pause_cache(roots: Roots) -> Any:
    return roots.root / "pod" / "pause-image.json"


def _identity(path: str) -> list[Any]:
    """What tells a catatonit binary apart without reading it, and podkit's version (a
    new podkit names a new image)."""
    from podkit_pod import __version__

    st = os.stat(path)
    return [os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns, __version__]


def _known_pause_name(roots: Roots, path: str) -> str | None:
    """The pause image name remembered for this very catatonit, or None."""
    from podkit_common import atomic

    try:
        cached = atomic.read_json(_pause_cache(roots))
        if cached.get("identity") == _identity(path) and \
                str(cached.get("name", "")).startswith(PAUSE_REPO + ":"):
            return cached["name"]
    except (OSError, errors.PodkitError, AttributeError):
        pass
    return None


def _remember_pause_name(roots: Roots, path: str, name: str) -> None:
    """A hint for the next pod (losing it costs one hash): never fails the pod create."""
    from podkit_common import atomic

    with contextlib.suppress(OSError):
        _pause_cache(roots).parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(_pause_cache(roots), {"identity": _identity(path), "name": name},
                          durable=False)


def infra_network_options(pod: dict[str, Any]) -> Any:
    """The pod's network flags as pod-netsetup's AttachOptions."""
    from podkit_pod._network import network_options

    net = pod["network"]
    return network_options(net.get("network"), publish=net.get("publish"),
                           add_host=net.get("add_host"), dns=net.get("dns"),
                           dns_search=net.get("dns_search"), dns_option=net.get("dns_option"))


def create(roots: Roots, opts: Any, *, progress: Any = None) -> dict[str, Any]:
    """A pod and its infra container (created, not started); nothing left on failure."""
    from podkit_runtime import create_container as create_runtime
    from podkit_runtime._pod_members import write_infra_bundle
    from podkit_runtime._pod_record import load
    from podkit_runtime._pods import create_pod, report
    from podkit_runtime._timings import mark

    out = create_pod(roots, opts)
    mark("pod-record")
    pod_id = out["pod"]["id"]
    if not opts.infra:
        return out
    doc: dict[str, Any] = {}
    try:
        net_opts = infra_network_options(out["pod"])
        if opts.infra_image:
            from podkit_pod._run import image_document

            image = image_document(roots, opts.infra_image)
        else:
            image = ensure_pause_image(roots)
        mark("infra-image")
        from podkit_storage import create_container

        doc = create_container(image, roots, name=out["pod"]["infra"]["name"])
        mark("storage-create")
        doc = write_infra_bundle(doc, roots, pod_id)
        mark("bundle")
        doc = _attach(doc, roots, net_opts)
        mark("network-begin")
        create_runtime(doc, roots, configure_only=True)  # conmon + runc at pod start
        mark("configure")
    except BaseException:
        with contextlib.suppress(errors.PodkitError, OSError):
            remove(roots, pod_id, force=True, extra_docs=[doc] if doc else [])
        raise
    return report(roots, load(roots, pod_id), True)


def _attach(doc: dict[str, Any], roots: Roots, net_opts: Any) -> dict[str, Any]:
    from podkit_pod._network import attach_network

    return attach_network(doc, roots, net_opts)


def _remount(roots: Roots) -> Any:
    """pod-runtime pod start's hook: a container `pod cleanup` released comes back with
    its rootfs mounted again."""
    def prepare(cid: str, record: dict[str, Any]) -> None:
        from podkit_storage import mount_container

        with contextlib.suppress(errors.NotFound):
            mount_container(roots, cid)
        return None

    return prepare


def start(roots: Roots, ref: str) -> dict[str, Any]:
    from podkit_runtime._pods import start_pod

    return start_pod(roots, ref, _remount(roots))


def restart(roots: Roots, ref: str, timeout: int | None = None) -> dict[str, Any]:
    from podkit_runtime._pods import restart_pod

    return restart_pod(roots, ref, _remount(roots), timeout)


def remove(roots: Roots, ref: str, *, force: bool = False, timeout: int | None = None,
           extra_docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """pod-runtime pod rm, then each container's network released and its storage
    container removed."""
    from podkit_pod._network import release_network
    from podkit_runtime._pods import remove_pod
    from podkit_storage import remove_container

    def release(removed: list[dict[str, Any]]) -> None:
        docs = [item["doc"] for item in removed] + list(extra_docs or [])
        for item, doc in zip([*removed, *[{"id": None}] * len(extra_docs or [])], docs,
                             strict=True):
            cid = item["id"] or (doc.get("container") or {}).get("id")
            # An infra whose record is gone (its create or an earlier rm was killed)
            # has no doc: DEL it by id.
            release_network(doc if doc or not cid else
                            {"container": {"id": cid}, "network": {"mode": "bridge"}}, roots)
            if cid:
                with contextlib.suppress(errors.NotFound):
                    remove_container(roots, cid)

    return remove_pod(roots, ref, force=force, timeout=timeout, release=release)


def prune(roots: Roots) -> list[str]:
    """Remove every stopped pod (Exited or Stopped, as podman's pod prune); their ids."""
    from podkit_runtime._pod_record import all_records
    from podkit_runtime._pods import pod_status, statuses

    removed = []
    for pod in all_records(roots):
        if pod_status(list(statuses(roots, pod).values())) in ("Exited", "Stopped"):
            with contextlib.suppress(errors.NotFound):
                remove(roots, pod["id"])
                removed.append(pod["id"])
    return removed


def member_network_options(params: dict[str, Any]) -> Any:
    """`pod run/create --pod`: the member uses the infra's network (joined at create), so
    its own network flags are refused with podman's messages; no network stage runs."""
    from podkit_pod._network import network_options
    from podkit_runtime._pod_members import check_member_network

    check_member_network({"share": ["net"]}, params.get("network"), params.get("publish"),
                         bool(params.get("publish_all")), params.get("add_host"))
    return network_options("none", dns=params.get("dns"),
                           dns_search=params.get("dns_search"),
                           dns_option=params.get("dns_option"))


def remove_all_pods(roots: Roots) -> list[str]:
    """Every pod removed with its containers, running or not (`pod system reset`); the
    removed container ids."""
    from podkit_runtime._pod_record import all_records

    removed: list[str] = []
    for pod in all_records(roots):
        with contextlib.suppress(errors.NotFound):
            out = remove(roots, pod["id"], force=True, timeout=0)
            removed += [item["id"] for item in out["removed"]]
    return removed
