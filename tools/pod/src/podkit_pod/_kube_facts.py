"""`pod kube generate`'s facts: what podkit knows about pods and containers, read from
their inspect documents, OCI config.json, records and image configs into plain dicts
that podkit_pod._kube_generate turns into Kubernetes objects (reads only).

A container's facts::

    {"id", "name", "image", "created", "image_config", "process" (config.json's),
     "read_only", "resources" (linux.resources), "privileged", "mounts" (binds carry
     "host_type"), "named_volumes", "volumes_dir", "bundles_dir", "user_given", "tty",
     "auto_remove", "restart", "hostname", "ports", "labels"}

A pod's: {"id", "name", "created", "labels", "hostname", "ports", "containers",
"host_network"}.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from podkit_common import errors
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


def container_facts(roots: Roots, ref: str) -> dict[str, Any]:
    """Everything :func:`container_object` needs about one container (reads only)."""
    from podkit_common import atomic
    from podkit_runtime import inspect_container
    from podkit_storage import find_image

    info = inspect_container(roots, ref)
    try:
        config = atomic.read_json(Path(info["OCIConfigPath"]))
    except (FileNotFoundError, errors.InvalidDocument):
        # without it the YAML would silently lose the command, env, limits...
        raise errors.NotFound(f"kube generate {info['Name']}: its OCI config "
                              f"{info['OCIConfigPath']} is gone (a cleared runroot?)",
                              hint="start the container once to write it again") from None
    record: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, errors.PodkitError):
        record = atomic.read_json(Path(info["StaticDir"]) / "record.json")
    image_config: dict[str, Any] = {}
    with contextlib.suppress(errors.PodkitError):
        image_config = (find_image(roots, info["Image"]).get("config") or {}).get(
            "config") or {}
    bundle = (record.get("doc") or {}).get("bundle") or {}
    linux = config.get("linux") or {}
    bounding = ((config.get("process") or {}).get("capabilities") or {}).get("bounding") or []
    user = (config.get("process") or {}).get("user") or {}
    network = (record.get("doc") or {}).get("network") or {}
    return {
        "id": info["Id"], "name": info["Name"], "image": info["ImageName"],
        "created": info["Created"], "image_config": image_config,
        "process": config.get("process") or {},
        "read_only": bool((config.get("root") or {}).get("readonly")),
        "resources": linux.get("resources") or {},
        # --privileged: every capability, no seccomp filter, nothing masked
        "privileged": bool(linux) and "seccomp" not in linux
        and not linux.get("maskedPaths") and "CAP_SYS_ADMIN" in bounding,
        # a bind mount's hostPath type: what its source is now
        "mounts": [{**m, "host_type": "Directory" if Path(m.get("source", "")).is_dir()
                    else "File"} if m.get("type") == "bind" else m
                   for m in config.get("mounts") or []],
        "named_volumes": list(bundle.get("volumes") or []),
        "volumes_dir": str(roots.root / "volumes"),
        "bundles_dir": str(roots.runroot / "bundles"),
        # a user was asked for when it is not the image's default, root
        "user_given": bool(image_config.get("User")) or bool(user.get("uid"))
        or bool(user.get("gid")),
        "tty": bool(info["Config"].get("Tty")),
        "auto_remove": bool(info["HostConfig"].get("AutoRemove")),
        "restart": info["HostConfig"]["RestartPolicy"]["Name"],
        "hostname": config.get("hostname") or "",
        "ports": list(network.get("ports") or []) if network.get("mode") != "container"
        else [],
        "labels": dict(info["Config"].get("Labels") or {}),
    }


def pod_facts(roots: Roots, ref: str) -> dict[str, Any]:
    """The pod's own facts and its members' (the infra left out)."""
    from podkit_runtime._pod_reports import inspect_pod

    pod = inspect_pod(roots, ref)
    members = [container_facts(roots, c["Id"]) for c in pod["Containers"]
               if c["Id"] != pod.get("InfraContainerID")]
    ports = []
    for key, bindings in sorted((pod.get("InfraConfig") or {}).get("PortBindings",
                                                                   {}).items()):
        port, _, proto = key.partition("/")
        for b in bindings or []:
            ports.append({"containerPort": int(port), "hostPort": int(b["HostPort"]),
                          "hostIP": b.get("HostIp") or "", "protocol": proto or "tcp"})
    hostname = pod.get("Hostname") or next((m["hostname"] for m in members), "") or pod["Name"]
    return {"id": pod["Id"], "name": pod["Name"], "created": pod["Created"],
            "labels": dict(pod.get("Labels") or {}), "hostname": hostname,
            "ports": ports, "containers": members,
            "host_network": bool((pod.get("InfraConfig") or {}).get("HostNetwork"))}


def gather(roots: Roots, refs: list[str]) -> list[dict[str, Any]]:
    """Pod facts for each pod named, or one pod of the containers named (podman's
    ``<first container>-pod``); a mix is refused as podman refuses it."""
    from podkit_runtime._pod_reports import pod_exists

    if not refs:
        raise errors.UsageError("kube generate needs at least one pod or container",
                                hint="pod kube generate POD|CONTAINER...")
    pods = [r for r in refs if pod_exists(roots, r)]
    if pods and len(pods) != len(refs):
        raise errors.UsageError("kube generate takes pods or containers, not both",
                                hint="generate the pods and the containers separately")
    if pods:
        return [pod_facts(roots, r) for r in pods]
    members = [container_facts(roots, r) for r in refs]
    ports = [p for m in members for p in m["ports"]]
    name = members[0]["name"].replace("_", "") + "-pod"
    hostname = members[0]["hostname"]
    if hostname == members[0]["id"][:12]:
        hostname = ""  # the default, the container's short id: not worth keeping
    return [{"id": "", "name": name, "created": members[0]["created"], "labels": {},
             "hostname": hostname, "ports": ports, "containers": members,
             "host_network": False}]
