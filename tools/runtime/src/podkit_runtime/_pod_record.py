"""Pod records: what a pod is, kept like container records (atomic JSON, per-pod lock).

    <root>/runtime/pods/<podid>/pod.json     the record (this module)
    <root>/locks/pod-<podid>.lock            the pod's lock
    <root>/locks/pod-names-all.lock          held while a name is checked and taken

A record (podman's names in comments)::

    {"id": 64 hex, "name", "created_at", "created_ts", "labels": {},
     "share": ["ipc", "net", "uts"],            # --share (SharedNamespaces)
     "hostname",                                # the pod name unless --hostname
     "cgroup_parent": "/podkit", "cgroup_path": "/podkit/<podid>",
     "resources": {"cpus": "0.5"|None, "memory": "64m"|None},
     "exit_policy": "continue"|"stop",
     "infra": {"enabled", "name", "id"|None, "image"|None, "command"|None, "doc"|None},
     "network": {"network", "publish", "add_host", "dns", "dns_search", "dns_option"},
     "members": [container ids]}                # not the infra

The network settings are podman's pod-level ones: they belong to the infra container,
and pod-runtime only keeps them for whoever attaches the infra (``pod-netsetup
attach``, or ``pod pod start`` in-process).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from podkit_common import atomic, errors, records
from podkit_common.names import valid_name
from podkit_common.roots import Roots

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

SHAREABLE = ("cgroup", "ipc", "net", "pid", "uts")
DEFAULT_SHARE = ("ipc", "net", "uts")
#: podman's name rule (libpod/define: NameRegex)
CGROUP_PARENT = "/podkit"
EXIT_POLICIES = ("continue", "stop")


@records.record(frozen=True)
class PodOptions:
    """``pod create``'s options (podman's flag names in comments)."""

    name: str | None = None                  # --name
    share: str | None = None                 # --share (None: ipc,net,uts)
    hostname: str | None = None              # --hostname
    labels: dict[str, str] = records.field(default_factory=dict)  # --label
    infra: bool = True                       # --infra
    infra_image: str | None = None           # --infra-image
    infra_command: tuple[str, ...] | None = None  # --infra-command
    infra_name: str | None = None            # --infra-name
    cgroup_parent: str | None = None         # --cgroup-parent
    cpus: str | None = None                  # --cpus
    memory: str | None = None                # --memory
    exit_policy: str = "continue"            # --exit-policy
    network: str | None = None               # --network
    publish: tuple[str, ...] = ()            # -p
    add_host: tuple[str, ...] = ()           # --add-host
    dns: tuple[str, ...] = ()                # --dns
    dns_search: tuple[str, ...] = ()         # --dns-search
    dns_option: tuple[str, ...] = ()         # --dns-option


def parse_share(value: str | None) -> list[str]:
    """--share: a list of namespaces, ``+ns`` adds to the default, ``none`` shares none
    (pure; podman's error text)."""
    if value is None:
        return list(DEFAULT_SHARE)
    text = value.strip()
    out: list[str] = list(DEFAULT_SHARE) if text.startswith("+") else []
    for part in text.lstrip("+").split(","):
        part = part.strip()
        if part == "none":
            continue
        if part == "user":  # podman ignores it for a rootful pod
            continue
        if part not in SHAREABLE:
            raise errors.UsageError(
                f"invalid kernel namespace to share: {part}. Options are: cgroup, ipc, net, "
                "pid, uts or none", hint="e.g. --share ipc,net,uts or --share +pid")
        if part not in out:
            out.append(part)
    return out


def check_name(name: str) -> None:
    if not valid_name(name):
        raise errors.UsageError(f"names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument"
                                f" ({name!r})", hint="choose another pod name")


def pods_dir(roots: Roots) -> Path:
    return roots.root / "runtime" / "pods"


def record_path(roots: Roots, pod_id: str) -> Path:
    return pods_dir(roots) / pod_id / "pod.json"


@contextlib.contextmanager
def lock(roots: Roots, pod_id: str) -> Iterator[None]:
    """The pod's lock; its file goes at the release that finds the pod gone."""
    from podkit_common.locks import object_lock

    with object_lock(roots.root / "locks", "pod", pod_id, timeout=60.0,
                     keep_while=(pods_dir(roots) / pod_id,)):
        yield


def load(roots: Roots, pod_id: str) -> dict[str, Any]:
    try:
        return atomic.read_json(record_path(roots, pod_id))
    except FileNotFoundError:
        raise errors.NotFound(f"no such pod {pod_id}", hint="pod pod ps lists the pods") from None


def save(roots: Roots, record: dict[str, Any]) -> None:
    path = record_path(roots, record["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, record)


def all_records(roots: Roots) -> list[dict[str, Any]]:
    out = []
    try:
        entries = list(os.scandir(pods_dir(roots)))
    except FileNotFoundError:
        return []
    for entry in entries:
        if len(entry.name) == 64:
            with contextlib.suppress(FileNotFoundError):
                out.append(atomic.read_json(Path(entry.path) / "pod.json"))
    out.sort(key=lambda r: r.get("created_ts", 0))
    return out


def resolve(roots: Roots, ref: str) -> str:
    """A pod id from a name, an id or a unique id prefix (podman's lookup order)."""
    if len(ref) == 64 and record_path(roots, ref).exists():
        return ref
    records = all_records(roots)
    for r in records:
        if r.get("name") == ref:
            return r["id"]
    found = [r["id"] for r in records if ref and r["id"].startswith(ref)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise errors.Conflict(f"more than one result for pod ID {ref}",
                              hint="give more digits of the id")
    raise errors.NotFound(f"no pod with name or ID {ref} found: no such pod",
                          hint="pod pod ps lists the pods")


def new_record(opts: PodOptions, taken: set[str]) -> dict[str, Any]:
    """The record for a new pod (pure but for the random id and the clock)."""
    from podkit_runtime._pod_cgroup import check_limits

    share = parse_share(opts.share)
    if opts.exit_policy not in EXIT_POLICIES:
        raise errors.UsageError(f"invalid pod exit policy: \"{opts.exit_policy}\"",
                                hint="use continue or stop")
    if not opts.infra:
        if "net" in share or "uts" in share or "ipc" in share or "pid" in share \
                or "cgroup" in share:
            if opts.share is not None and share:
                raise errors.UsageError("you must have an infra container to share "
                                        "namespaces", hint="drop --infra=false or --share")
            share = []
        if opts.publish or opts.network:
            raise errors.UsageError("you must have an infra container to publish port "
                                    "bindings to the host")
    check_limits(opts.cpus, opts.memory)
    pod_id = os.urandom(32).hex()  # secrets' token_hex, without importing secrets
    name = opts.name
    if name is None:
        name = generated_name(taken)
    check_name(name)
    if name in taken:
        raise errors.Conflict(f"error adding pod to state: name {name} is in use: pod already "
                              "exists", hint="choose another name, or pod pod rm it")
    if opts.hostname is not None and opts.hostname and "uts" not in share:
        pass  # podman keeps it for the infra container all the same
    parent = (opts.cgroup_parent or CGROUP_PARENT).rstrip("/") or CGROUP_PARENT
    if not parent.startswith("/") or ".." in parent.split("/"):
        raise errors.UsageError(f"invalid --cgroup-parent {opts.cgroup_parent!r}",
                                hint="with the cgroupfs manager give an absolute path")
    now = time.time()
    from podkit_runtime._state import iso_time

    infra_name = opts.infra_name or f"{pod_id[:12]}-infra"
    return {
        "id": pod_id, "name": name, "created_at": iso_time(now), "created_ts": now,
        "labels": dict(opts.labels), "share": share,
        "hostname": opts.hostname or name, "hostname_given": opts.hostname or "",
        "cgroup_parent": parent, "cgroup_path": f"{parent}/{pod_id}",
        "resources": {"cpus": opts.cpus, "memory": opts.memory},
        "exit_policy": opts.exit_policy,
        "infra": {"enabled": opts.infra, "name": infra_name if opts.infra else None,
                  "id": None, "image": opts.infra_image,
                  "command": list(opts.infra_command) if opts.infra_command else None,
                  "doc": None},
        "network": {"network": opts.network, "publish": list(opts.publish),
                    "add_host": list(opts.add_host), "dns": list(opts.dns),
                    "dns_search": list(opts.dns_search),
                    "dns_option": list(opts.dns_option)},
        "members": [],
    }


_ADJECTIVES = ("admiring", "brave", "calm", "eager", "gifted", "happy", "jolly", "keen",
               "loving", "nice", "quirky", "serene", "sharp", "vibrant", "zealous")
_NOUNS = ("turing", "hopper", "lovelace", "ritchie", "thompson", "knuth", "liskov",
          "hamilton", "shannon", "dijkstra", "torvalds", "wozniak", "babbage", "noether")


def generated_name(taken: set[str]) -> str:
    """A podman-style adjective_noun name not in ``taken``."""
    for _ in range(50):
        name = f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}"
        if name not in taken:
            return name
    return f"pod_{os.urandom(6).hex()}"


def _pick(words: tuple[str, ...]) -> str:
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record as documents show it (without the infra's stored document)."""
    infra = {k: v for k, v in record["infra"].items() if k != "doc"}
    return {**record, "infra": infra}
