"""`pod kube generate`: Kubernetes YAML for pods or containers, in podman's shape.

Two halves: ``_kube_facts.gather`` reads what podkit knows about each container (its
inspect document, its OCI config.json, its record and its image's config) into "facts";
:func:`pod_object`, :func:`deployment_object` and :func:`service_object` turn facts into
Kubernetes objects without touching anything (the unit tests drive them directly).

What a container contributes (podman 4.3's libpod/kube.go rules, our own code):

- ``command``: the process args when they are not the image's own (entrypoint + cmd);
  when the image has an entrypoint the args keep, only the rest, as ``args``;
- ``env``: what differs from the image's env, without the variables every container
  gets (TERM, container, HOSTNAME, HOME);
- ``workingDir`` when it is not the image's; ``ports`` from the published ports;
- ``volumeMounts``/``volumes``: bind mounts as ``hostPath``, named volumes as
  ``persistentVolumeClaim`` (``<name>-pvc``), extra tmpfs as ``emptyDir: Memory``;
- ``resources.limits`` from the cgroup settings (memory, cpu quota/period);
- ``securityContext``: capabilities added/dropped against the default set, privileged,
  runAsUser/runAsGroup when a user was asked for, readOnlyRootFilesystem.

The pod's infra container is not a container of the YAML; a container named
``<pod>-<name>`` (what `kube play` makes) is written back as ``<name>``, so generate ->
play -> generate gives the same YAML.
"""

from __future__ import annotations

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_pod._kube_model import cap_name, cpu_quantity, host_volume_names, memory_quantity

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

HEADER = ("# Save the output of this file and use kubectl create -f to import\n"
          "# it into Kubernetes.\n#\n# Created with podkit-{version}\n")
#: Variables every container gets (podkit_runtime._spec.merge_env): never the user's own.
_IMPLIED_ENV = ("TERM", "container", "HOSTNAME", "HOME")
#: tmpfs mounts that come with every container, or with --read-only.
_DEFAULT_TMPFS = ("/dev",)
_READ_ONLY_TMPFS = ("/tmp", "/var/tmp", "/run")
_RESTART = {"no": "Never", "always": "Always", "on-failure": "OnFailure",
            "unless-stopped": "Always"}


# -- facts -> Kubernetes objects (pure) -----------------------------------------------------------


def _env_map(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _command(facts: dict[str, Any]) -> dict[str, Any]:
    args = list(facts["process"].get("args") or [])
    image = facts["image_config"]
    entry, cmd = list(image.get("Entrypoint") or []), list(image.get("Cmd") or [])
    if entry and args[:len(entry)] == entry:
        rest = args[len(entry):]
        return {"args": rest} if rest != cmd else {}
    if (not entry and args == cmd) or not args:
        return {}
    return {"command": args}


def _env(facts: dict[str, Any]) -> list[dict[str, str]]:
    image = _env_map(list(facts["image_config"].get("Env") or []))
    out = []
    for key, value in _env_map(list(facts["process"].get("env") or [])).items():
        if key in _IMPLIED_ENV or image.get(key) == value:
            continue
        if key == "PATH" and "PATH" not in image:
            from podkit_runtime._spec import DEFAULT_PATH

            if value == DEFAULT_PATH:
                continue
        out.append({"name": key, "value": value})
    return out


def _mounts(facts: dict[str, Any], prefix: str) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """(volumeMounts, volumes) of one container; volume names unique in the pod by the
    caller's ``prefix`` counting (hostPath names are counted per pod)."""
    mounts, volumes = [], []
    binds: list[tuple[dict[str, Any], str]] = []
    vol_root, bundles = facts["volumes_dir"] + "/", facts["bundles_dir"] + "/"
    for m in facts["mounts"]:
        dest, source, kind = m.get("destination", ""), m.get("source", ""), m.get("type")
        ro = "ro" in (m.get("options") or [])
        if kind == "bind" and source.startswith(bundles):
            continue  # /etc/hosts, resolv.conf, hostname, /dev/shm: every container's
        if kind == "bind" and source.startswith(vol_root):
            name = source[len(vol_root):].split("/", 1)[0]
            entry: dict[str, Any] = {"mountPath": dest, "name": f"{name}-pvc"}
            mounts.append({**entry, **({"readOnly": True} if ro else {})})
            volumes.append({"name": f"{name}-pvc",
                            "persistentVolumeClaim": {"claimName": name}})
        elif kind == "bind":
            binds.append((m, m.get("host_type") or "Directory"))
            mounts.append({"mountPath": dest, "name": source,
                           **({"readOnly": True} if ro else {})})
        elif kind == "tmpfs" and dest not in _DEFAULT_TMPFS and not (
                facts["read_only"] and dest in _READ_ONLY_TMPFS):
            name = f"{prefix}tmpfs-{len([v for v in volumes if 'emptyDir' in v])}"
            mounts.append({"mountPath": dest, "name": name})
            volumes.append({"name": name, "emptyDir": {"medium": "Memory"}})
    for m, kind in binds:
        volumes.append({"name": m["source"], "hostPath": {"path": m["source"], "type": kind}})
    return mounts, volumes


def _resources(facts: dict[str, Any]) -> dict[str, Any]:
    res = facts["resources"]
    limits: dict[str, str] = {}
    cpu = res.get("cpu") or {}
    if cpu.get("quota") and cpu.get("quota") > 0 and cpu.get("period"):
        limits["cpu"] = cpu_quantity(int(cpu["quota"]), int(cpu["period"]))
    memory = (res.get("memory") or {}).get("limit")
    if memory and memory > 0:
        limits["memory"] = memory_quantity(int(memory))
    return {"limits": limits} if limits else {}


def _security(facts: dict[str, Any]) -> dict[str, Any]:
    from podkit_runtime._spec import DEFAULT_CAPABILITIES

    out: dict[str, Any] = {}
    bounding = set((facts["process"].get("capabilities") or {}).get("bounding") or [])
    if facts["privileged"]:
        out["privileged"] = True
    elif facts["process"]:
        caps: dict[str, list[str]] = {}
        added = sorted(bounding - set(DEFAULT_CAPABILITIES))
        dropped = sorted(set(DEFAULT_CAPABILITIES) - bounding)
        if added:
            caps["add"] = [cap_name(c) for c in added]
        if dropped:
            caps["drop"] = [cap_name(c) for c in dropped]
        if caps:
            out["capabilities"] = caps
    if facts["read_only"]:
        out["readOnlyRootFilesystem"] = True
    user = facts["process"].get("user") or {}
    if facts["user_given"]:
        out["runAsUser"] = int(user.get("uid", 0))
        out["runAsGroup"] = int(user.get("gid", 0))
    return out


def kube_name(name: str, pod_name: str) -> str:
    """A member's name in the YAML: `kube play`'s ``<pod>-<container>`` back to
    ``<container>``."""
    if name.startswith(f"{pod_name}-") and len(name) > len(pod_name) + 1:
        return name[len(pod_name) + 1:]
    return name


def container_object(facts: dict[str, Any], pod_name: str,
                     ports: list[dict[str, Any]]) -> tuple[dict[str, Any],
                                                           list[dict[str, Any]]]:
    """One container of the pod spec, and the volumes it needs."""
    name = kube_name(facts["name"], pod_name)
    out: dict[str, Any] = {"name": name, "image": facts["image"], **_command(facts)}
    env = _env(facts)
    if env:
        out["env"] = env
    cwd = facts["process"].get("cwd") or "/"
    if cwd != (facts["image_config"].get("WorkingDir") or "/"):
        out["workingDir"] = cwd
    if ports:
        out["ports"] = [{k: v for k, v in p.items() if v not in ("", None)}
                        | {"protocol": p.get("protocol", "tcp").upper()} for p in ports]
    resources = _resources(facts)
    if resources:
        out["resources"] = resources
    security = _security(facts)
    if security:
        out["securityContext"] = security
    if facts["tty"]:
        out["tty"] = True
    mounts, volumes = _mounts(facts, f"{name}-")
    if mounts:
        out["volumeMounts"] = mounts
    return out, volumes


def _annotations(members: list[dict[str, Any]], pod_name: str) -> dict[str, str]:
    """podman's per-container annotations (the sandbox id left out: it is not portable)."""
    out: dict[str, str] = {}
    for m in members:
        privileged = m["privileged"]
        n = kube_name(m["name"], pod_name)
        out[f"io.kubernetes.cri-o.ContainerType/{n}"] = "container"
        out[f"io.kubernetes.cri-o.TTY/{n}"] = "true" if m["tty"] else "false"
        out[f"io.podman.annotations.autoremove/{n}"] = "TRUE" if m["auto_remove"] else "FALSE"
        out[f"io.podman.annotations.privileged/{n}"] = "TRUE" if privileged else "FALSE"
    return dict(sorted(out.items()))


def pod_spec(pod: dict[str, Any]) -> dict[str, Any]:
    """The spec of a Pod (or a Deployment's template) for pod facts."""
    containers, volumes = [], []
    for i, member in enumerate(pod["containers"]):
        # podman puts the pod's published ports on its first container
        ctr, vols = container_object(member, pod["name"], pod["ports"] if i == 0 else [])
        containers.append(ctr)
        volumes += [v for v in vols if v not in volumes]
    # hostPath volumes get podman's names, counted in the pod
    paths = [v["hostPath"]["path"] for v in volumes if "hostPath" in v]
    renamed = dict(zip(paths, host_volume_names(paths), strict=True))
    for v in volumes:
        if "hostPath" in v:
            v["name"] = renamed[v["hostPath"]["path"]]
    for ctr in containers:
        for m in ctr.get("volumeMounts", []):
            m["name"] = renamed.get(m["name"], m["name"])
    restart = {m["restart"] for m in pod["containers"]}
    spec: dict[str, Any] = {"containers": containers}
    if pod["hostname"]:
        spec["hostname"] = pod["hostname"]
    if pod["host_network"]:
        spec["hostNetwork"] = True
    spec["restartPolicy"] = _RESTART.get(restart.pop() if len(restart) == 1 else "no", "Never")
    if volumes:
        spec["volumes"] = volumes
    return spec


def _metadata(pod: dict[str, Any], name: str) -> dict[str, Any]:
    labels = dict(pod["labels"])
    labels.setdefault("app", pod["name"])
    meta: dict[str, Any] = {"name": name, "labels": labels}
    annotations = _annotations(pod["containers"], pod["name"])
    if annotations:
        meta["annotations"] = annotations
    if pod.get("created"):
        meta["creationTimestamp"] = pod["created"].split(".")[0].rstrip("Z") + "Z"
    return meta


def pod_object(pod: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(pod, pod["name"]),
            "spec": pod_spec(pod)}


def deployment_object(pod: dict[str, Any]) -> dict[str, Any]:
    """A Deployment of one replica whose template is the pod (``<pod>-deployment``)."""
    meta = _metadata(pod, pod["name"])
    template_meta = {k: v for k, v in meta.items() if k != "creationTimestamp"}
    out_meta = {"name": f"{pod['name']}-deployment", "labels": meta["labels"]}
    if "creationTimestamp" in meta:
        out_meta["creationTimestamp"] = meta["creationTimestamp"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": out_meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": meta["labels"]["app"]}},
                     "template": {"metadata": template_meta, "spec": pod_spec(pod)}}}


def service_object(pod: dict[str, Any]) -> dict[str, Any]:
    """podman's Service for a pod: NodePort, one port per published port."""
    ports = [{"name": f"{p['containerPort']}-{p['protocol'].lower()}",
              "port": p["containerPort"], "protocol": p["protocol"].upper(),
              "targetPort": p["containerPort"]} for p in pod["ports"]]
    app = pod["labels"].get("app", pod["name"])
    spec: dict[str, Any] = {"selector": {"app": app}, "type": "NodePort"}
    if ports:
        spec["ports"] = ports
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": pod["name"], "labels": {"app": app}}, "spec": spec}


def objects(pods: list[dict[str, Any]], *, service: bool = False,
            kind: str = "pod") -> list[dict[str, Any]]:
    """The Kubernetes objects for pod facts: per pod its Service first (podman's order)
    when asked, then the Pod or Deployment."""
    if kind not in ("pod", "deployment"):
        raise errors.UsageError(f"--type {kind!r}: must be pod or deployment")
    out = []
    for pod in pods:
        if service:
            out.append(service_object(pod))
        out.append(deployment_object(pod) if kind == "deployment" else pod_object(pod))
    return out


def render(docs: list[dict[str, Any]]) -> str:
    """YAML text with podman's header, documents separated by ``---``."""
    import yaml

    from podkit_pod import __version__

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: plain YAML
            return True

    body = "---\n".join(yaml.dump(d, Dumper=Dumper, default_flow_style=False,
                                  sort_keys=True) for d in docs)
    return HEADER.format(version=__version__) + body


def generate(roots: Roots, refs: list[str], *, service: bool = False,
             kind: str = "pod") -> str:
    """`pod kube generate`: the YAML text for pods or containers."""
    from podkit_pod._kube_facts import gather

    return render(objects(gather(roots, refs), service=service, kind=kind))
