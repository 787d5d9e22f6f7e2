"""Write an OCI bundle: config.json plus the generated /etc files it bind-mounts."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from podkit_common import atomic, errors
from podkit_common.roots import Roots
from podkit_runtime._layout import RuntimeLayout
from podkit_runtime._spec import BundleOptions, build_config
from podkit_runtime._users import resolve_user

CGROUP_PARENT = "/podkit"


def hosts_file(hostname: str, name: str) -> str:
    names = hostname if name in ("", hostname) else f"{hostname} {name}"
    return ("127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n"
            "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n"
            f"127.0.1.1\t{names}\n")


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without loopback name servers (they mean nothing inside)."""
    out = []
    for line in host_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                if ipaddress.ip_address(fields[1].split("%")[0]).is_loopback:
                    continue
            except ValueError:
                continue
        out.append(line)
    return "\n".join(out) + "\n"


def write_bundle(doc: dict[str, Any], roots: Roots, opts: BundleOptions) -> dict[str, Any]:
    """Write config.json for the container in ``doc``; return the document with ``bundle``."""
    container = doc["container"]
    image_config = (doc.get("image") or {}).get("config", {}).get("config") or {}
    rootfs = Path(container["rootfs"])
    if not rootfs.is_dir():
        raise errors.NotFound(f"container rootfs {rootfs} does not exist",
                              hint="is the container mounted? (pod-storage mount ID)")
    user = resolve_user(rootfs, opts.user or image_config.get("User") or None)
    layout = RuntimeLayout(roots)
    bdir = layout.bundle(container["id"])
    bdir.mkdir(parents=True, exist_ok=True)
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
        path = bdir / dest.rsplit("/", 1)[1]
        atomic.write_bytes(path, text.encode(), durable=False)
        bundle_files[dest] = str(path)
    config = build_config(image_config, container, user, opts, bundle_files=bundle_files,
                          cgroups_path=f"{CGROUP_PARENT}/podkit-{container['id']}")
    atomic.write_json(bdir / "config.json", config)
    bundle = {"path": str(bdir), "config_path": str(bdir / "config.json"),
              "args": config["process"]["args"], "hostname": hostname,
              "tty": opts.tty, "user": f"{user.uid}:{user.gid}"}
    return {**doc, "changed": True, "bundle": bundle}


def remove_bundle(roots: Roots, cid: str) -> bool:
    """Delete the container's bundle directory; False if there was none."""
    import shutil

    bdir = RuntimeLayout(roots).bundle(cid)
    if not bdir.exists():
        return False
    shutil.rmtree(bdir)
    return True
