"""The infra container and pod members: their bundles, and joining the infra at create.

    infra bundle   ordinary bundle with the pod's hostname and cgroup parent; the pod
                   record learns its id (``write_infra_bundle``)
    member bundle  the pod's hostname, cgroup parent, the infra's /etc/hosts,
                   /etc/resolv.conf and /dev/shm bind-mounted, ``127.0.0.1 NAME`` added
                   to the shared hosts file (``write_member_bundle``)
    create         the infra is started first if need be, then each shared namespace is
                   joined by path, ``/proc/<infra pid>/ns/<ns>`` (``join_pod``), as podman
                   does at init; the member runs no CNI: its network section says
                   ``container`` mode with that path
    rm             the hosts line goes again (``leave_pod``, from ``remove_bundle``)

A member's bundle holds ``pod-member.json`` ({"id", "name"}), so removing the bundle
alone (a container never started) still finds its pod.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.records import replace
from podkit_common.roots import Roots
from podkit_runtime import _pod_record as R

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

    from podkit_common.locks import FileLock

MEMBER_FILE = "pod-member.json"
#: podman's OCI type names for the namespaces --share names
OCI_TYPE = {"net": "network", "ipc": "ipc", "uts": "uts", "pid": "pid", "cgroup": "cgroup"}


def _bundle_dir(roots: Roots, cid: str) -> Path:
    return roots.runroot / "bundles" / cid


def pod_section(pod: dict[str, Any], *, infra: bool = False) -> dict[str, Any]:
    return {"id": pod["id"], "name": pod["name"], **({"infra": True} if infra else {})}


def write_infra_bundle(doc: dict[str, Any], roots: Roots, pod_ref: str,
                       opts: Any = None) -> dict[str, Any]:
    """The infra container's bundle (``doc`` holds its storage container) for the pod;
    the pod record takes its id. The image's entrypoint runs unless --infra-command."""
    from podkit_runtime._bundle import write_bundle
    from podkit_runtime._spec import BundleOptions

    pod_id = R.resolve(roots, pod_ref)
    with R.lock(roots, pod_id):
        pod = R.load(roots, pod_id)
        if not pod["infra"]["enabled"]:
            raise errors.Conflict(f"pod {pod['name']} was created without an infra container")
        if pod["infra"]["id"] and pod["infra"]["id"] != doc["container"]["id"]:
            raise errors.Conflict(f"pod {pod['name']} already has an infra container "
                                  f"{pod['infra']['id'][:12]}", hint="pod pod rm it first")
        base = opts or BundleOptions()
        command = pod["infra"].get("command")
        opts = replace(base, hostname=pod["hostname"], cgroup_parent=pod["cgroup_path"],
                       **({"entrypoint": tuple(command), "command": ()} if command else {}),
                       labels={**base.labels})
        out = write_bundle(doc, roots, opts)
        section = pod_section(pod, infra=True)
        out = {**out, "pod": section, "bundle": {**out["bundle"], "pod": section}}
        pod["infra"].update(id=doc["container"]["id"], name=doc["container"].get("name"),
                            doc=_kept(out))
        R.save(roots, pod)
    return out


def _kept(doc: dict[str, Any]) -> dict[str, Any]:
    """What of the infra's document the pod keeps, to create it again later."""
    image = doc.get("image") or {}
    return {"container": doc["container"], "bundle": doc["bundle"], "pod": doc.get("pod"),
            "image": {k: image[k] for k in ("id", "names", "config") if k in image}}


#: podman's wrapping of a member's invalid settings (specgen, define.ErrInvalidArg)
INVALID = "invalid config provided: "
SHARED_NET = ": network cannot be configured when it is shared with a pod"


def validate_member(pod: dict[str, Any], opts: Any) -> None:
    """podman's refusals for a container joining a pod (specgen container_validate)."""
    if "uts" in pod["share"] and opts.hostname:
        raise errors.UsageError(INVALID + "cannot set hostname when joining the pod UTS "
                                "namespace: invalid configuration",
                                hint="the pod's hostname applies")


def check_member_network(pod: dict[str, Any], network: str | None, publish: Any,
                         publish_all: bool, add_host: Any) -> None:
    """The network flags a pod member may not have when the pod shares net (podman's
    messages)."""
    if "net" not in pod["share"]:
        return
    if network not in (None, "", "container", "pod"):
        raise errors.UsageError(INVALID + "networks must be defined when the pod is created"
                                + SHARED_NET, hint="give --network to pod pod create")
    if publish or publish_all:
        raise errors.UsageError(INVALID + "published or exposed ports must be defined when "
                                "the pod is created" + SHARED_NET,
                                hint="give -p to pod pod create")
    if add_host:
        raise errors.UsageError(INVALID + "extra host entries must be specified on the pod"
                                + SHARED_NET, hint="give --add-host to pod pod create")


def write_member_bundle(doc: dict[str, Any], roots: Roots, opts: Any, pod_ref: str
                        ) -> dict[str, Any]:
    """A member's bundle: the pod's hostname and cgroup, the infra's /etc files and
    /dev/shm; the pod record lists it and the shared hosts file names it."""
    from podkit_runtime._bundle import write_bundle

    pod_id = R.resolve(roots, pod_ref)
    pod = R.load(roots, pod_id)
    validate_member(pod, opts)
    infra_id = pod["infra"].get("id")
    shares = pod["share"]
    if shares and not infra_id:
        raise errors.Conflict(f"pod {pod['name']} has no infra container yet",
                              hint="make it first: pod-runtime pod bundle-infra")
    changes: dict[str, Any] = {"cgroup_parent": pod["cgroup_path"], "pod": None}
    if "uts" in shares:
        changes["hostname"] = pod["hostname"]
    for share in ("ipc", "uts", "pid"):
        if share in shares:  # joined by path at create (join_pod); private meanwhile
            changes[share] = None
    if "cgroup" in shares:
        changes["cgroupns"] = None
    out = write_bundle(doc, roots, replace(opts, **changes))
    cid = doc["container"]["id"]
    bdir = Path(out["bundle"]["path"])
    try:
        _use_infra_files(bdir, _bundle_dir(roots, infra_id) if infra_id else None, shares)
        section = pod_section(pod)
        atomic.write_json(bdir / MEMBER_FILE, section, durable=False)  # runroot: tmpfs
        with R.lock(roots, pod_id):
            pod = R.load(roots, pod_id)
            if cid not in pod["members"]:
                pod["members"].append(cid)
                R.save(roots, pod)
        if "net" in shares and infra_id:
            add_host_entry(roots, pod, infra_id, out["container"].get("name") or cid[:12])
    except BaseException:
        from podkit_runtime._bundle import remove_bundle

        with contextlib.suppress(errors.PodkitError, OSError):
            remove_bundle(roots, cid)
        raise
    return {**out, "pod": section, "bundle": {**out["bundle"], "pod": section}}


def _use_infra_files(bdir: Path, infra_bundle: Path | None, shares: list[str]) -> None:
    """Point the member's /etc/hosts, /etc/resolv.conf (shared net), /etc/hostname
    (shared uts) and /dev/shm (shared ipc) at the infra's."""
    if infra_bundle is None:
        return
    config = atomic.read_json(bdir / "config.json")
    sources = {}
    if "net" in shares:
        sources["/etc/hosts"] = str(infra_bundle / "hosts")
        sources["/etc/resolv.conf"] = str(infra_bundle / "resolv.conf")
    if "uts" in shares:
        sources["/etc/hostname"] = str(infra_bundle / "hostname")
        config.pop("hostname", None)  # runc cannot set it in a namespace it joins
    shm = None
    if "ipc" in shares:
        with contextlib.suppress(OSError, errors.PodkitError):
            infra_config = atomic.read_json(infra_bundle / "config.json")
            shm = next((m["source"] for m in infra_config.get("mounts") or []
                        if m.get("destination") == "/dev/shm" and m.get("type") == "bind"),
                       None)
    mounts = []
    for m in config.get("mounts") or []:
        dest = m.get("destination")
        if dest in sources and m.get("type") == "bind":
            m = {**m, "source": sources[dest]}
        elif dest == "/dev/shm" and shm:
            m = {"destination": "/dev/shm", "type": "bind", "source": shm,
                 "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]}
        mounts.append(m)
    config["mounts"] = mounts
    atomic.write_json(bdir / "config.json", config, durable=False)  # runroot: no fsync


# -- the shared hosts file -----------------------------------------------------------------

def host_line(hostname: str, name: str) -> str:
    """podman 4.3.1's line for a member: ``127.0.0.1<TAB><pod hostname> <name>``."""
    return f"127.0.0.1\t{hostname} {name}" if hostname and hostname != name \
        else f"127.0.0.1\t{name}"


def hosts_lock(roots: Roots, pod_id: str) -> FileLock:
    """The lock of the pod's hosts file; its file goes at the release that finds the
    pod gone (``remove_pod`` takes it once after the pod's record went)."""
    from podkit_common.locks import object_lock

    return object_lock(roots.root / "locks", "pod-hosts", pod_id, timeout=60.0,
                       keep_while=(R.pods_dir(roots) / pod_id,))


def add_host_entry(roots: Roots, pod: dict[str, Any], infra_id: str, name: str) -> None:
    """podman: ``127.0.0.1 HOSTNAME NAME`` in the infra's hosts file, under the pod's
    hosts lock."""
    from podkit_common.inplace import rewrite_in_place

    line = host_line(pod.get("hostname", ""), name)

    def add(text: str) -> str:
        if line in text.splitlines():
            return text
        return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"

    with hosts_lock(roots, pod["id"]):
        rewrite_in_place(_bundle_dir(roots, infra_id) / "hosts", add)


def remove_host_entry(roots: Roots, pod_id: str, infra_id: str, name: str) -> None:
    from podkit_common.inplace import rewrite_in_place

    def mine(line: str) -> bool:
        fields = line.split()
        return len(fields) >= 2 and fields[0] == "127.0.0.1" and fields[-1] == name \
            and "\t" in line

    def drop(text: str) -> str:
        kept = [x for x in text.splitlines() if not mine(x)]
        return "\n".join(kept) + ("\n" if kept else "")

    with hosts_lock(roots, pod_id):
        rewrite_in_place(_bundle_dir(roots, infra_id) / "hosts", drop)


def leave_pod(roots: Roots, cid: str, bdir: Path) -> None:
    """A member's bundle is going: its hosts line and its place in the pod record too.
    Never raises (the pod may be gone already)."""
    try:
        section = atomic.read_json(bdir / MEMBER_FILE)
    except (OSError, errors.PodkitError):
        return
    with contextlib.suppress(OSError, errors.PodkitError):
        with R.lock(roots, section["id"]):
            pod = R.load(roots, section["id"])
            if cid in pod["members"]:
                pod["members"].remove(cid)
                R.save(roots, pod)
        name = _member_name(bdir, cid)
        if pod["infra"].get("id"):
            remove_host_entry(roots, pod["id"], pod["infra"]["id"], name)


def _member_name(bdir: Path, cid: str) -> str:
    with contextlib.suppress(OSError, errors.PodkitError):
        config = atomic.read_json(bdir / "config.json")
        name = (config.get("annotations") or {}).get("io.podkit.container.name")
        if name:
            return name
    return cid[:12]


# -- create: join the running infra -------------------------------------------------------

def join_pod(roots: Roots, doc: dict[str, Any]) -> dict[str, Any]:
    """Before ``runc create`` of a member: start the infra if need be, and join its
    namespaces by /proc/<pid>/ns path (config.json rewritten); the document's network
    section becomes the infra's (``container`` mode). The infra itself passes through."""
    section = doc.get("pod") or (doc.get("bundle") or {}).get("pod") or {}
    if not section or section.get("infra"):
        return doc
    pod = R.load(roots, section["id"])
    if not pod["share"]:
        return doc
    pid = ensure_infra_running(roots, pod)
    bdir = Path(doc["bundle"]["path"])
    point_namespaces(bdir, pod["share"], pid)
    if "net" in pod["share"]:
        infra_net = _infra_network(roots, pod)
        doc = {**doc, "network": {
            "mode": "container", "netns": f"/proc/{pid}/ns/net",
            "container": pod["infra"]["id"], "networks": infra_net.get("networks", []),
            "ports": infra_net.get("ports", []), "hosts": [],
            "dns": {"servers": [], "search": [], "options": []}}}
    return doc


def point_namespaces(bdir: Path, shares: list[str], pid: int) -> None:
    """config.json's shared namespaces joined at /proc/<pid>/ns/* (in place)."""
    config = atomic.read_json(bdir / "config.json")
    wanted = {OCI_TYPE[s]: f"/proc/{pid}/ns/{s}" for s in shares}
    namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] not in wanted]
    namespaces += [{"type": t, "path": p} for t, p in wanted.items()]
    config["linux"]["namespaces"] = namespaces
    if "uts" in shares:
        config.pop("hostname", None)
    atomic.write_json(bdir / "config.json", config, durable=False)  # runroot: no fsync


def _infra_network(roots: Roots, pod: dict[str, Any]) -> dict[str, Any]:
    from podkit_runtime._state import load_record

    if not pod["infra"].get("id"):
        return {}
    with contextlib.suppress(errors.NotFound):
        return (load_record(roots, pod["infra"]["id"]).get("doc") or {}).get("network") or {}
    return {}


def ensure_infra_running(roots: Roots, pod: dict[str, Any]) -> int:
    """The infra's pid, starting it (created) or running it again (exited, its network
    still there) first. Conflict when it cannot run without the network stage."""
    from podkit_runtime._lifecycle import start, sync

    infra_id = pod["infra"].get("id")
    if not infra_id:
        raise errors.Conflict(f"pod {pod['name']} has no infra container",
                              hint="pod-runtime pod bundle-infra makes one")
    try:
        _record, seen = sync(roots, infra_id)
    except errors.NotFound:
        raise errors.Conflict(f"the infra container of pod {pod['name']} was never created",
                              hint="start the pod (pod pod start), or pod-runtime create "
                                   "the infra's document") from None
    if seen.status == "created":
        start(roots, infra_id)
    elif seen.status == "exited":
        from podkit_runtime._pods import revive

        revive(roots, infra_id)
    elif seen.status == "paused":
        raise errors.Conflict(f"the infra container of pod {pod['name']} is paused",
                              hint="pod pod unpause it first")
    _record, seen = sync(roots, infra_id)
    if seen.status != "running" or not seen.pid:
        raise errors.Conflict(f"the infra container of pod {pod['name']} is {seen.status}",
                              hint="see pod-runtime inspect " + infra_id[:12])
    return seen.pid


def refuse_infra_removal(roots: Roots, record: dict[str, Any]) -> None:
    """An infra container goes only with its pod (podman's rule); ``pod rm`` marks the pod
    as going first."""
    with contextlib.suppress(errors.NotFound):
        pod = R.load(roots, record["pod"]["id"])
        if pod["infra"].get("id") == record["id"] and not pod.get("removing"):
            raise errors.Conflict(
                f"container {record['id']} is the infra container of pod {pod['id']} and "
                "cannot be removed without removing the pod",
                hint=f"pod pod rm {pod['name']}")
