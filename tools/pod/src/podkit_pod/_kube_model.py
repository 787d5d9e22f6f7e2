"""Kubernetes YAML for `pod kube generate|play|down`: the pure parts both directions share.

    quantities        memory_quantity/parse_memory, cpu_quantity/parse_cpu
    names             host_volume_names (podman's ``tmp-data-host-0``), capability names
    field coverage    SUPPORTED trees: what `kube play` acts on; :func:`unsupported_fields`
                      names every other field of a document by its path, so play reports
                      it instead of dropping it silently
    documents         :func:`load_documents` (multi-document YAML, checked shapes)

No I/O here beyond parsing the text it is given.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

#: Binary then decimal suffixes of a Kubernetes quantity.
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
            "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


def parse_quantity(value: Any, what: str) -> Decimal:
    """A Kubernetes quantity ("64Mi", "500m", "1.5", 2) as a number of units."""
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise errors.InvalidDocument(f"{what}: {value!r} is not a Kubernetes quantity",
                                     hint='e.g. "64Mi", "500m", "2"')
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        raise errors.InvalidDocument(f"{what}: {value!r} is not a number") from None
    suffix = m.group(2)
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def memory_quantity(limit: int) -> str:
    """Bytes as Kubernetes writes them: the largest binary suffix that divides exactly."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if limit and limit % _BINARY[suffix] == 0:
            return f"{limit // _BINARY[suffix]}{suffix}"
    return str(limit)


def parse_memory(value: Any, what: str) -> int:
    """A memory quantity as bytes (for --memory)."""
    return int(parse_quantity(value, what))


def cpu_quantity(quota: int, period: int) -> str:
    """A CFS quota/period as CPUs: whole numbers plain, else millicores ("500m")."""
    millis = quota * 1000 // period
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def parse_cpu(value: Any, what: str) -> str:
    """A CPU quantity as --cpus' decimal number ("500m" -> "0.5")."""
    cpus = parse_quantity(value, what)
    if cpus <= 0:
        raise errors.InvalidDocument(f"{what}: {value!r} must be more than zero")
    return format(cpus.normalize(), "f")


def cap_name(name: str) -> str:
    """A capability as podman writes it in YAML: upper case with the CAP_ prefix."""
    name = name.strip().upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def host_volume_names(paths: list[str]) -> list[str]:
    """podman's volume names for host paths: the path's parts joined with "-", then
    "-host-N", N counting the paths that gave the same base ("/tmp/data" ->
    "tmp-data-host-0"); the root directory is "root"."""
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        base = re.sub(r"[^a-z0-9-]+", "-", path.strip("/").lower()).strip("-") or "root"
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(f"{base[:50]}-host-{n}")
    return out


# -- what `kube play` acts on -----------------------------------------------------------------
#
# A tree per document kind. ``True``: the field is used as a whole. A dict: its keys are
# the fields of a mapping. A one-element list: every item of a sequence has that shape.
# :data:`IGNORED` names fields with no local meaning: reported as ignored, with why.

_META: dict[str, Any] = {"name": True, "labels": True, "annotations": True,
                         "creationTimestamp": True}
_CONTAINER: dict[str, Any] = {
    "name": True, "image": True, "imagePullPolicy": True, "command": True, "args": True,
    "workingDir": True, "tty": True, "stdin": True,
    "env": [{"name": True, "value": True,
             "valueFrom": {"configMapKeyRef": {"name": True, "key": True,
                                               "optional": True}}}],
    "envFrom": [{"prefix": True, "configMapRef": {"name": True, "optional": True}}],
    "ports": [{"containerPort": True, "hostPort": True, "hostIP": True, "protocol": True,
               "name": True}],
    "volumeMounts": [{"name": True, "mountPath": True, "readOnly": True}],
    "resources": {"limits": {"memory": True, "cpu": True}},
    "securityContext": {"capabilities": {"add": True, "drop": True}, "privileged": True,
                        "runAsUser": True, "runAsGroup": True,
                        "readOnlyRootFilesystem": True},
}
_POD_SPEC: dict[str, Any] = {
    "containers": [_CONTAINER],
    "volumes": [{"name": True, "hostPath": {"path": True, "type": True},
                 "persistentVolumeClaim": {"claimName": True, "readOnly": True},
                 "emptyDir": {"medium": True}}],
    "hostname": True, "restartPolicy": True, "hostNetwork": True,
    "automountServiceAccountToken": True, "enableServiceLinks": True,
}
SUPPORTED: dict[str, dict[str, Any]] = {
    "Pod": {"apiVersion": True, "kind": True, "metadata": _META, "spec": _POD_SPEC,
            "status": {}},
    "Deployment": {"apiVersion": True, "kind": True, "metadata": _META, "status": {},
                   "spec": {"replicas": True, "selector": True,
                            "template": {"metadata": _META, "spec": _POD_SPEC}}},
    "PersistentVolumeClaim": {"apiVersion": True, "kind": True, "metadata": _META,
                              "status": {},
                              "spec": {"accessModes": True, "resources": True}},
    "ConfigMap": {"apiVersion": True, "kind": True, "metadata": _META, "data": True},
    "Service": {"apiVersion": True, "kind": True, "metadata": _META, "spec": True,
                "status": {}},
}

#: Fields accepted without effect, and why (each is still reported, as "ignored").
IGNORED: dict[str, str] = {
    "automountServiceAccountToken": "no service accounts locally",
    "enableServiceLinks": "no service environment variables locally",
    "accessModes": "a local volume is shared by whoever mounts it",
    "resources": "a local volume has no size",
    "selector": "one local pod is the deployment's only replica",
    "spec": "a Service is not run locally; hostPort publishes the ports",
}


def unsupported_fields(doc: Any, shape: Any, path: str = "") -> Iterator[str]:
    """The path of every field of ``doc`` outside ``shape`` (see :data:`SUPPORTED`):
    ``spec.containers[0].livenessProbe``."""
    if shape is True:
        return
    if isinstance(shape, list):
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                yield from unsupported_fields(item, shape[0], f"{path}[{i}]")
        return
    if not isinstance(doc, dict):
        return
    for key, value in doc.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in shape:
            if value not in (None, {}, [], ""):
                yield sub
            continue
        yield from unsupported_fields(value, shape[key], sub)


def ignored_fields(kind: str, doc: dict[str, Any]) -> Iterator[str]:
    """Supported-but-ignored fields that are set, as "path: why"."""
    spec = doc.get("spec") or {}
    if kind == "PersistentVolumeClaim":
        for key in ("accessModes", "resources"):
            if spec.get(key):
                yield f"spec.{key}: {IGNORED[key]}"
    elif kind == "Service":
        if spec:
            yield f"spec: {IGNORED['spec']}"
    elif kind == "Deployment" and spec.get("selector"):
        yield f"spec.selector: {IGNORED['selector']}"


KINDS = tuple(SUPPORTED)


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The documents of a (multi-document) YAML text, each a mapping with a kind."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.InvalidDocument(f"reading {source}: not valid YAML: {exc}",
                                     hint="check the file with a YAML linter") from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
            raise errors.InvalidDocument(f"reading {source}: document {i + 1} is not a "
                                         "Kubernetes object (no kind)",
                                         hint="each document needs apiVersion, kind, "
                                              "metadata")
    return docs


def object_name(doc: dict[str, Any], source: str) -> str:
    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise errors.InvalidDocument(f"reading {source}: a {doc.get('kind')} has no "
                                     "metadata.name", hint="every object needs a name")
    return name


def pod_documents(doc: dict[str, Any], source: str) -> tuple[str, dict[str, Any],
                                                              dict[str, Any]]:
    """(pod name, metadata, pod spec) of a Pod or a Deployment (podman's name for a
    deployment's pod: ``<deployment>-pod``)."""
    name = object_name(doc, source)
    if doc["kind"] == "Pod":
        return name, doc.get("metadata") or {}, doc.get("spec") or {}
    template = (doc.get("spec") or {}).get("template") or {}
    meta = dict(template.get("metadata") or {})
    meta.setdefault("labels", (doc.get("metadata") or {}).get("labels") or {})
    return f"{name}-pod", meta, template.get("spec") or {}
