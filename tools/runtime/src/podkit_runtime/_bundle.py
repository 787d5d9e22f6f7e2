"""Write an OCI bundle: config.json plus the generated /etc files it bind-mounts."""

from __future__ import annotations

from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.roots import Roots
from podkit_runtime import _bundle_prep
from podkit_runtime._layout import RuntimeLayout
from podkit_runtime._spec import BundleOptions, build_config
from podkit_runtime._users import resolve_user

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

CGROUP_PARENT = "/podkit"


def hosts_file(hostname: str, name: str) -> str:
    names = hostname if name in ("", hostname) else f"{hostname} {name}"
    return ("127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n"
            "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n"
            f"127.0.1.1\t{names}\n")


def _unusable_inside(server: str) -> bool:
    """A loopback or invalid name server address (``ipaddress``'s verdict; a plain IPv4
    address is read here, as ipaddress reads it, to keep its import off every create)."""
    parts = server.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3
                               and (p == "0" or not p.startswith("0")) and int(p) <= 255
                               for p in parts):
        return parts[0] == "127"
    import ipaddress

    try:
        return ipaddress.ip_address(server.split("%")[0]).is_loopback
    except ValueError:
        return True


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without loopback name servers (they mean nothing inside)."""
    out = []
    for line in host_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and _unusable_inside(fields[1]):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def write_bundle(doc: dict[str, Any], roots: Roots, opts: BundleOptions) -> dict[str, Any]:
    """Write config.json for the container in ``doc``; return the document with ``bundle``."""
    from podkit_runtime._image_config import check_image_config

    check_image_config(doc)  # an image's config is outside input: typed fields checked
    if opts.pod:  # a pod member: the pod's hostname and cgroup, the infra's files
        from podkit_runtime._pod_members import write_member_bundle

        return write_member_bundle(doc, roots, opts, opts.pod)
    container = doc["container"]
    image_config = (doc.get("image") or {}).get("config", {}).get("config") or {}
    rootfs = Path(container["rootfs"])
    if not rootfs.is_dir():
        raise errors.NotFound(f"container rootfs {rootfs} does not exist",
                              hint="is the container mounted? (pod-storage mount ID)")
    from podkit_runtime._isolation import validate

    validate(opts)  # the isolation options' syntax, before anything is written
    user = resolve_user(rootfs, opts.user or image_config.get("User") or None)
    layout = RuntimeLayout(roots)
    bdir = layout.bundle(container["id"])
    # Built under a temporary name and renamed at the end: a bundle that fails (bad
    # option, missing source, unknown user) leaves no directory and no volume behind.
    work = _bundle_prep.start_bundle_dir(bdir)
    prepared = None
    try:
        prepared = _bundle_prep.prepare(roots, str(rootfs), container["id"], image_config,
                                        opts, user)
        _bundle_prep.add_shm(prepared, work, bdir)
        opts, user = prepared.opts, prepared.user
        from podkit_runtime._hostfacts import gather_host_facts

        host = gather_host_facts(opts, roots.runroot, user.uid)
        config, hostname = _write_config(work, bdir, container, image_config, user, opts,
                                         prepared.mounts, host=host)
        _bundle_prep.finish_bundle_dir(roots, container["id"], work, bdir, prepared)
    except BaseException:
        _bundle_prep.abandon_bundle_dir(roots, container["id"], work, prepared)
        raise
    bundle = {"path": str(bdir), "config_path": str(bdir / "config.json"),
              "args": config["process"]["args"], "hostname": hostname,
              "tty": opts.tty, "user": f"{user.uid}:{user.gid}",
              "volumes": list(prepared.volumes),
              **({"labels": dict(opts.labels)} if opts.labels else {})}
    return {**doc, "changed": True, "bundle": bundle}


def _write_config(work: Path, bdir: Path, container: dict[str, Any],
                  image_config: dict[str, Any], user: Any, opts: BundleOptions,
                  user_mounts: list[dict[str, Any]],
                  host: Any = None) -> tuple[dict[str, Any], str]:
    """Write the /etc files and config.json into ``work``; paths in the config name
    their final place under ``bdir``."""
    hostname = opts.hostname or container["id"][:12]
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    files = {"/etc/hosts": hosts_file(hostname, container.get("name", "")),
             "/etc/hostname": hostname + "\n",
             "/etc/resolv.conf": resolv_conf(host_resolv)}
    bundle_files = {}
    for dest, text in files.items():
        name = dest.rsplit("/", 1)[1]
        atomic.write_bytes(work / name, text.encode(), durable=False)
        bundle_files[dest] = str(bdir / name)
    config = build_config(image_config, container, user, opts, bundle_files=bundle_files,
                          cgroups_path=f"{CGROUP_PARENT}/podkit-{container['id']}",
                          user_mounts=user_mounts, host=host)
    config = _bundle_prep.place_mounts(container["rootfs"], config)
    write_config(work / "config.json", config)
    return config, hostname


def write_config(path: Path, config: dict[str, Any]) -> None:
    """config.json, compact like podman's (the indented form is written by the pure-Python
    encoder: ~5x slower for a config with its seccomp rules); the runroot dies with a
    reboot: no fsync (a crash still leaves the old or the new file, never half of one)."""
    from podkit_common.jsonio import dumps

    atomic.write_bytes(path, dumps(config) + b"\n", durable=False)


def _abandon_unrecorded(roots: Roots, cid: str) -> None:
    """A create killed between conmon's start and its record (chaos suite) leaves conmon
    and runc's created container with no record: nothing else would stop them, and they
    hold the pod's cgroup. Cheap when there is no such run dir."""
    import shutil

    from podkit_runtime._state import ContainerPaths

    paths = ContainerPaths(roots, cid)
    if paths.record.exists() or not paths.run_dir.exists():
        return
    from podkit_runtime._lifecycle import _abandon

    _abandon(paths)
    shutil.rmtree(paths.run_dir, ignore_errors=True)


def remove_bundle(roots: Roots, cid: str, *, remove_volumes: bool = False) -> bool:
    """Delete the container's bundle directory, releasing its volumes (and deleting its
    anonymous ones with ``remove_volumes``, podman's ``rm --volumes``); False if there
    was none."""
    import shutil

    _abandon_unrecorded(roots, cid)
    bdir = RuntimeLayout(roots).bundle(cid)
    if not bdir.exists():
        return False
    _bundle_prep.release_bundle_volumes(roots, cid, bdir, remove_anonymous=remove_volumes)
    if (bdir / "pod-member.json").exists():  # its hosts line and pod membership go too
        from podkit_runtime._pod_members import leave_pod

        leave_pod(roots, cid, bdir)
    shutil.rmtree(bdir)
    return True
