"""`pod kube play` and `pod kube down`: Kubernetes YAML run as podkit pods.

    plan_play(docs, options) -> PlayPlan       pure: what to make, and the notes
    play(roots, text, options) -> report       volumes, then per pod: pod pod create,
                                               pod create --pod for each container,
                                               pod pod start (unless start=False)
    (`kube down` is podkit_pod._kube_down)

Kinds: Pod; Deployment (one pod ``<name>-pod``: more replicas are reported and one is
run); PersistentVolumeClaim (a named volume, labelled as play's so that `down` removes
it, unless it was there before); ConfigMap (env from ``configMapKeyRef`` and
``envFrom.configMapRef``); Service (reported, not run: hostPort publishes the ports).
A container is named ``<pod>-<container>`` as podman names it. Every field outside
``_kube_model.SUPPORTED`` is a note ("unsupported field PATH (ignored)") and every
accepted field without a local effect a note saying why: nothing is dropped silently.

Report (``urn:podkit:pod:kube-play``)::

    {"changed": true, "pods": [{"id", "name", "containers": [ID, ...]}],
     "volumes": [{"name", "changed"}], "notes": ["...", ...]}
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from podkit_common import errors, jsonio
from podkit_common.progress import NULL, Progress
from podkit_common.records import field, record
from podkit_common.roots import Roots
from podkit_pod import _kube_model as M

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: The label on a volume `kube play` made for a PersistentVolumeClaim (`down` removes it).
PLAY_LABEL = "io.podkit.kube.play"
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
_HOST_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
               "CharDevice", "BlockDevice")


@record(frozen=True)
class PlayOptions:
    replace: bool = False
    network: str | None = None  # None: the default network (PODKIT_NETWORK or podkit)
    start: bool = True
    configmaps: tuple[str, ...] = ()  # texts of extra ConfigMap YAML (--configmap)
    #: podkit_image_pull.pull keyword arguments (tls_verify, credentials, ...)
    pull_options: dict[str, Any] = field(default_factory=dict)


@record
class ContainerPlan:
    name: str
    image: str
    pull_policy: str
    params: dict[str, Any]  # `pod create`'s parameters by name (cli_run's declaration)


@record
class PodPlan:
    name: str
    values: dict[str, Any]  # `pod pod create`'s parameters by name
    containers: list[ContainerPlan]
    host_paths: list[tuple[str, str]]  # (path, hostPath type) to check or make


@record
class PlayPlan:
    pods: list[PodPlan]
    volumes: list[str]
    notes: list[str]


# -- plan (pure) ---------------------------------------------------------------------------------


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.InvalidDocument(f"{what}: must be a list of strings")
    return [str(v) for v in value]


def _configmaps(docs: list[dict[str, Any]], source: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            data = doc.get("data") or {}
            if not isinstance(data, dict):
                raise errors.InvalidDocument(f"{source}: ConfigMap data must be a mapping")
            out[M.object_name(doc, source)] = {str(k): str(v) for k, v in data.items()}
    return out


def _env(ctr: dict[str, Any], maps: dict[str, dict[str, str]], where: str) -> list[str]:
    """``envFrom`` first, then ``env`` (which wins, as in Kubernetes)."""
    out: list[str] = []
    for i, src in enumerate(ctr.get("envFrom") or []):
        ref = src.get("configMapRef") or {}
        if not ref:
            continue
        data = maps.get(str(ref.get("name")))
        if data is None:
            if ref.get("optional"):
                continue
            raise errors.NotFound(f"{where}.envFrom[{i}]: no ConfigMap {ref.get('name')!r}",
                                  hint="add it to the YAML or pass --configmap FILE")
        out += [f"{src.get('prefix') or ''}{k}={v}" for k, v in data.items()]
    for i, item in enumerate(ctr.get("env") or []):
        name = item.get("name")
        if not name:
            raise errors.InvalidDocument(f"{where}.env[{i}]: no name")
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            data = maps.get(str(ref.get("name")))
            if data is None or str(ref.get("key")) not in data:
                if ref.get("optional"):
                    continue
                what = (f"no ConfigMap {ref.get('name')!r}" if data is None
                        else f"ConfigMap {ref.get('name')!r} has no key {ref.get('key')!r}")
                raise errors.NotFound(f"{where}.env[{i}] ({name}): {what}",
                                      hint="add it to the YAML or pass --configmap FILE")
            out.append(f"{name}={data[str(ref.get('key'))]}")
        else:
            value = item.get("value")
            out.append(f"{name}={'' if value is None else value}")
    return out


def _mounts(ctr: dict[str, Any], volumes: dict[str, dict[str, Any]], where: str,
            notes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"volume": [], "tmpfs": []}
    for i, m in enumerate(ctr.get("volumeMounts") or []):
        vol = volumes.get(str(m.get("name")))
        dest = m.get("mountPath")
        if vol is None:
            raise errors.InvalidDocument(f"{where}.volumeMounts[{i}]: no volume named "
                                         f"{m.get('name')!r} in spec.volumes")
        if not isinstance(dest, str) or not dest.startswith("/"):
            raise errors.InvalidDocument(f"{where}.volumeMounts[{i}].mountPath: must be an "
                                         "absolute path")
        ro = ":ro" if m.get("readOnly") else ""
        if "hostPath" in vol:
            out["volume"].append(f"{vol['hostPath']['path']}:{dest}{ro}")
        elif "persistentVolumeClaim" in vol:
            pvc = vol["persistentVolumeClaim"]
            ro = ":ro" if m.get("readOnly") or pvc.get("readOnly") else ""
            out["volume"].append(f"{pvc['claimName']}:{dest}{ro}")
        elif "emptyDir" in vol:
            out["tmpfs"].append(dest)
        else:
            notes.append(f"{where}.volumeMounts[{i}]: volume {m.get('name')!r} is of an "
                         "unsupported type: not mounted")
    return out


def _security(ctr: dict[str, Any], where: str) -> dict[str, Any]:
    sc = ctr.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    out: dict[str, Any] = {
        "cap_add": [M.cap_name(c) for c in _str_list(caps.get("add"), where)],
        "cap_drop": [M.cap_name(c) for c in _str_list(caps.get("drop"), where)],
        "privileged": bool(sc.get("privileged")),
        "read_only": bool(sc.get("readOnlyRootFilesystem")),
    }
    uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
    if uid is not None or gid is not None:
        out["user"] = f"{int(uid or 0)}" + (f":{int(gid)}" if gid is not None else "")
    return out


def _resources(ctr: dict[str, Any], where: str) -> dict[str, Any]:
    limits = (ctr.get("resources") or {}).get("limits") or {}
    out: dict[str, Any] = {}
    if limits.get("memory") is not None:
        out["memory"] = str(M.parse_memory(limits["memory"], f"{where}.resources.limits"
                                                             ".memory"))
    if limits.get("cpu") is not None:
        out["cpus"] = M.parse_cpu(limits["cpu"], f"{where}.resources.limits.cpu")
    return out


def _ports(ctr: dict[str, Any], where: str) -> list[str]:
    out = []
    for i, p in enumerate(ctr.get("ports") or []):
        if p.get("containerPort") is None:
            raise errors.InvalidDocument(f"{where}.ports[{i}]: no containerPort")
        if not p.get("hostPort"):
            continue  # not published: only reachable inside the pod, as in Kubernetes
        proto = str(p.get("protocol") or "TCP").lower()
        host_ip = f"{p['hostIP']}:" if p.get("hostIP") else ""
        out.append(f"{host_ip}{int(p['hostPort'])}:{int(p['containerPort'])}/{proto}")
    return out


def _container(pod: str, ctr: dict[str, Any], spec: dict[str, Any], meta: dict[str, Any],
               volumes: dict[str, dict[str, Any]], maps: dict[str, dict[str, str]],
               options: PlayOptions, notes: list[str], where: str) -> ContainerPlan:
    name, image = ctr.get("name"), ctr.get("image")
    if not name or not image:
        raise errors.InvalidDocument(f"{where}: a container needs a name and an image")
    command = _str_list(ctr.get("command"), f"{where}.command")
    args = _str_list(ctr.get("args"), f"{where}.args")
    policy = spec.get("restartPolicy") or "Always"  # Kubernetes' default, and podman's
    if policy not in _RESTART:
        raise errors.InvalidDocument(f"{where.rsplit('.containers', 1)[0]}.restartPolicy: "
                                     f"{policy!r} is not Always, OnFailure or Never")
    params: dict[str, Any] = {
        "image": str(image), "name": f"{pod}-{name}", "pod": pod,
        # command replaces the entrypoint (and with it the image's Cmd), args the Cmd
        "entrypoint": jsonio.dumps(command).decode() if command else None,
        "command": args,
        "env": _env(ctr, maps, where), "workdir": ctr.get("workingDir") or None,
        "tty": bool(ctr.get("tty")), "interactive": bool(ctr.get("stdin")),
        "restart": _RESTART[policy],
        # the pod's annotations become each container's OCI annotations (podman's too)
        "annotation": [f"{k}={v}" for k, v in (meta.get("annotations") or {}).items()],
        **_mounts(ctr, volumes, where, notes), **_security(ctr, where),
        **_resources(ctr, where), **options.pull_options,
    }
    policy_pull = str(ctr.get("imagePullPolicy") or "IfNotPresent")
    if policy_pull not in ("Always", "IfNotPresent", "Never"):
        raise errors.InvalidDocument(f"{where}.imagePullPolicy: {policy_pull!r} is not "
                                     "Always, IfNotPresent or Never")
    return ContainerPlan(name=str(name), image=str(image), pull_policy=policy_pull,
                         params=params)


def _pod(doc: dict[str, Any], maps: dict[str, dict[str, str]], options: PlayOptions,
         notes: list[str], source: str) -> PodPlan:
    name, meta, spec = M.pod_documents(doc, source)
    base = "spec.template.spec" if doc["kind"] == "Deployment" else "spec"
    if doc["kind"] == "Deployment":
        replicas = (doc.get("spec") or {}).get("replicas", 1)
        if replicas not in (None, 1):
            notes.append(f"Deployment {doc['metadata']['name']}: spec.replicas is "
                         f"{replicas}: podkit runs one pod per Deployment (one replica)")
    containers = spec.get("containers") or []
    if not containers:
        raise errors.InvalidDocument(f"{source}: {doc['kind']} {name} has no containers")
    volumes: dict[str, dict[str, Any]] = {}
    host_paths: list[tuple[str, str]] = []
    for i, vol in enumerate(spec.get("volumes") or []):
        volumes[str(vol.get("name"))] = vol
        if "hostPath" in vol:
            path, kind = vol["hostPath"].get("path"), vol["hostPath"].get("type") or ""
            if not isinstance(path, str) or not path.startswith("/") or kind not in _HOST_TYPES:
                raise errors.InvalidDocument(f"{base}.volumes[{i}].hostPath: needs an "
                                             f"absolute path and a known type ({kind!r})")
            host_paths.append((path, kind))
    network = "host" if spec.get("hostNetwork") else options.network
    publish = [p for c in containers for p in _ports(c, f"{base}.containers")]
    labels = meta.get("labels") or {}
    values = {"name": name, "hostname": spec.get("hostname") or None,
              "label": [f"{k}={v}" for k, v in labels.items()], "network": network,
              "publish": [] if network == "host" else publish}
    if network == "host" and publish:
        notes.append(f"Pod {name}: hostPort with hostNetwork: the ports are the host's own")
    plans = [_container(name, c, spec, meta, volumes, maps, options, notes,
                        f"{base}.containers[{i}]") for i, c in enumerate(containers)]
    seen = set()
    for p in plans:
        if p.name in seen:
            raise errors.InvalidDocument(f"{source}: two containers named {p.name!r} in "
                                         f"{name}")
        seen.add(p.name)
    return PodPlan(name=name, values=values, containers=plans, host_paths=host_paths)


def plan_play(docs: list[dict[str, Any]], options: PlayOptions, source: str = "YAML",
              configmap_docs: list[dict[str, Any]] | None = None) -> PlayPlan:
    """What `kube play` will make for these documents (pure; checks shapes and refs)."""
    notes: list[str] = []
    for doc in docs:
        kind = doc["kind"]
        label = f"{kind} {(doc.get('metadata') or {}).get('name', '?')}"
        if kind not in M.SUPPORTED:
            notes.append(f"{label}: kind {kind} is not supported (ignored)")
            continue
        notes += [f"{label}: unsupported field {p} (ignored)"
                  for p in M.unsupported_fields(doc, M.SUPPORTED[kind])]
        notes += [f"{label}: {why}" for why in M.ignored_fields(kind, doc)]
    maps = _configmaps([*(configmap_docs or []), *docs], source)
    pods = []
    for doc in docs:
        if doc["kind"] not in ("Pod", "Deployment"):
            continue
        try:
            pods.append(_pod(doc, maps, options, notes, source))
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # a field of the wrong shape (a string where a list goes, "x" as a port...)
            raise errors.InvalidDocument(
                f"{source}: {doc['kind']} {(doc.get('metadata') or {}).get('name', '?')}: "
                f"a field has the wrong type ({type(exc).__name__}: {exc})",
                hint="check it against the Kubernetes API reference") from None
    names = [p.name for p in pods]
    if len(set(names)) != len(names):
        raise errors.InvalidDocument(f"{source}: two pods named alike: {names}")
    volumes = [M.object_name(d, source) for d in docs if d["kind"] == "PersistentVolumeClaim"]
    if not pods and not volumes:
        raise errors.InvalidDocument(f"{source}: no Pod, Deployment or "
                                     "PersistentVolumeClaim to play",
                                     hint="kube play runs Pods, Deployments and PVCs")
    return PlayPlan(pods=pods, volumes=volumes, notes=notes)


# -- apply ----------------------------------------------------------------------------------------


def _prepare_host_path(path: str, kind: str) -> None:
    p = Path(path)
    if kind == "DirectoryOrCreate":
        p.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate":
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        p.touch(exist_ok=True)
    elif kind == "Directory" and not p.is_dir():
        raise errors.NotFound(f"hostPath {path}: not a directory", hint="create it first")
    elif kind == "File" and not p.is_file():
        raise errors.NotFound(f"hostPath {path}: not a file", hint="create it first")
    elif kind and not p.exists():
        raise errors.NotFound(f"hostPath {path} ({kind}): does not exist")


def _image(roots: Roots, ctr: ContainerPlan, options: PlayOptions,
           progress: Progress) -> None:
    """The image by the container's imagePullPolicy (create pulls a missing one)."""
    from podkit_pod._run import pull_and_import

    if ctr.pull_policy == "Always":
        pull_and_import(roots, ctr.image, progress=progress, **options.pull_options)
    elif ctr.pull_policy == "Never":
        from podkit_storage import find_image

        try:
            find_image(roots, ctr.image)
        except errors.NotFound:
            raise errors.NotFound(f"image {ctr.image} is not stored and its "
                                  "imagePullPolicy is Never",
                                  hint="pod pull it first") from None


def _play_pod(roots: Roots, plan: PodPlan, options: PlayOptions,
              progress: Progress) -> dict[str, Any]:
    from podkit_pod import _pods
    from podkit_pod._create import create
    from podkit_pod._run_command import run_options
    from podkit_runtime._cli_values import bundle_options
    from podkit_runtime._pod_options import pod_options

    for path, kind in plan.host_paths:
        _prepare_host_path(path, kind)
    for ctr in plan.containers:
        _image(roots, ctr, options, progress)
    pod_id = _pods.create(roots, pod_options(plan.values))["pod"]["id"]
    ids = []
    try:
        for ctr in plan.containers:
            doc = create(roots, run_options("create", ctr.params),
                         bundle_options(ctr.params), progress=progress)
            ids.append(doc["container"]["id"])
        if options.start:
            _pods.start(roots, pod_id)
    except BaseException:
        with contextlib.suppress(errors.PodkitError, OSError):
            _pods.remove(roots, pod_id, force=True, timeout=0)
        raise
    return {"id": pod_id, "name": plan.name, "containers": ids}


def play(roots: Roots, text: str, options: PlayOptions, *, source: str = "YAML",
         progress: Progress = NULL,
         notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """`pod kube play`: the plan's volumes, then its pods; a pod that fails is removed
    whole (pods made before it stay, as with podman). ``notify`` hears each note
    before anything is made."""
    from podkit_pod import _pods
    from podkit_runtime import create_volume
    from podkit_runtime._pod_reports import pod_exists

    docs = M.load_documents(text, source)
    extra = [d for t in options.configmaps for d in M.load_documents(t, "--configmap")]
    plan = plan_play(docs, options, source, extra)
    for note in plan.notes if notify else ():
        notify(note)
    for pod in plan.pods:
        if pod_exists(roots, pod.name):
            if not options.replace:
                raise errors.Conflict(f"adding pod to state: name \"{pod.name}\" is in use: "
                                      "pod already exists",
                                      hint="pass --replace, or pod kube down the YAML first")
            _pods.remove(roots, pod.name, force=True, timeout=0)
    volumes = []
    for name in plan.volumes:
        _, made = create_volume(roots, name, labels={PLAY_LABEL: "true"}, ignore=True)
        volumes.append({"name": name, "changed": made})
    pods = [_play_pod(roots, pod, options, progress) for pod in plan.pods]
    return {"changed": True, "pods": pods, "volumes": volumes, "notes": plan.notes}


__all__ = ["PLAY_LABEL", "PlayOptions", "PlayPlan", "plan_play", "play"]
