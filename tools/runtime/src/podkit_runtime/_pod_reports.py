"""Pod reports: `pod ps` lines, `pod inspect`, `top`, `stats` and `logs` across members
(podman 4.3.1's field names). The lifecycle is in ``_pods``."""

from __future__ import annotations

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_runtime import _pod_record as R
from podkit_runtime._pods import _member_rows, _observed, container_ids, pod_status

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


def ps_line(roots: Roots, pod: dict[str, Any]) -> dict[str, Any]:
    """One line of ``pod ps --format json`` (podman's keys)."""
    rows = _member_rows(roots, pod)
    networks = _networks(roots, pod)
    return {"Cgroup": pod["cgroup_parent"], "Containers": rows,
            "Created": pod["created_at"], "Id": pod["id"],
            "InfraId": pod["infra"].get("id") or "", "Name": pod["name"],
            "Namespace": "", "Networks": networks,
            "Status": pod_status([r["Status"] for r in rows]), "Labels": pod["labels"]}


def _networks(roots: Roots, pod: dict[str, Any]) -> list[str]:
    from podkit_runtime._pod_members import _infra_network

    net = _infra_network(roots, pod)
    names = [n.get("name") for n in net.get("networks") or [] if n.get("name")]
    if names:
        return names
    wanted = pod["network"].get("network")
    return [n for n in (wanted or "").split(",") if n and n not in ("none", "host")]


def list_pods(roots: Roots) -> list[dict[str, Any]]:
    return [ps_line(roots, pod) for pod in R.all_records(roots)]


def inspect_pod(roots: Roots, ref: str) -> dict[str, Any]:
    """podman's ``pod inspect`` fields."""
    from podkit_runtime import _pod_cgroup

    pod = R.load(roots, R.resolve(roots, ref))
    rows = _member_rows(roots, pod)
    infra_id = pod["infra"].get("id") or ""
    infra_net = {}
    if infra_id:
        from podkit_runtime._pod_members import _infra_network

        infra_net = _infra_network(roots, pod)
    ports: dict[str, list[dict[str, str]]] = {}
    for p in infra_net.get("ports") or []:
        ports.setdefault(f"{p['containerPort']}/{p['protocol']}", []).append(
            {"HostIp": p.get("hostIP") or "", "HostPort": str(p["hostPort"])})
    net = pod["network"]
    mode = (net.get("network") or "bridge")
    resources = pod.get("resources") or {}
    out: dict[str, Any] = {
        "Id": pod["id"], "Name": pod["name"], "Created": pod["created_at"],
        "CreateCommand": pod.get("create_command") or [],
        "ExitPolicy": pod["exit_policy"],
        "State": pod_status([r["Status"] for r in rows]),
        # podman shows the --hostname given (the infra's name defaults to the pod's)
        "Hostname": pod.get("hostname_given") or "",
        **({"Labels": pod["labels"]} if pod["labels"] else {}), "CreateCgroup": True,
        "CgroupParent": pod["cgroup_parent"],
        "CgroupPath": pod["cgroup_path"], "CreateInfra": pod["infra"]["enabled"],
        "InfraContainerID": infra_id, "SharedNamespaces": list(pod["share"]),
        "NumContainers": len(rows),
        "Containers": [{"Id": r["Id"], "Name": r["Names"], "State": r["Status"]}
                       for r in rows],
    }
    if pod["infra"]["enabled"]:
        out["InfraConfig"] = {
            "PortBindings": ports, "HostNetwork": mode == "host",
            "StaticIP": "", "StaticMAC": "", "NoManageResolvConf": False,
            "DNSServer": net.get("dns") or None, "DNSSearch": net.get("dns_search") or None,
            "DNSOption": net.get("dns_option") or None, "NoManageHosts": False,
            "HostAdd": net.get("add_host") or None,
            "Networks": _networks(roots, pod) or None,
            "NetworkOptions": None, "pid_ns": "private", "userns": "host",
            "uts_ns": "private"}
    if resources.get("cpus"):
        from podkit_runtime._parse_units import parse_cpus

        quota, period = parse_cpus(resources["cpus"])
        out.update(CPUPeriod=period, CPUQuota=quota)
    if resources.get("memory"):
        out["MemoryLimit"] = _pod_cgroup.memory_limit(pod["cgroup_path"]) or 0
    return out


def pod_exists(roots: Roots, ref: str) -> bool:
    try:
        R.resolve(roots, ref)
    except errors.NotFound:
        return False
    return True


def top_pod(roots: Roots, ref: str) -> dict[str, Any]:
    """The processes of every running container of the pod, each row naming its
    container (podman's pod top)."""
    from podkit_runtime._top import top

    pod = R.load(roots, R.resolve(roots, ref))
    processes = []
    for cid in container_ids(pod):
        _record, seen = _observed(roots, cid)
        if seen is None or seen.status not in ("running", "paused"):
            continue
        doc = top(roots, cid)
        processes += [{**p, "Container": doc["container"]["name"]}
                      for p in doc["processes"]]
    if not processes:
        raise errors.Conflict(f"pod {pod['name']} has no running containers: top needs "
                              "one", hint="pod pod start it first")
    return {"changed": False, "pod": {"id": pod["id"], "name": pod["name"]},
            "processes": processes}


def stats_pod(roots: Roots, ref: str) -> list[dict[str, Any]]:
    """One stats row per container of the pod, with the pod's id and name."""
    from podkit_runtime._stats import stats

    pod = R.load(roots, R.resolve(roots, ref))
    rows = []
    for cid in container_ids(pod):
        _record, seen = _observed(roots, cid)
        if seen is None:
            continue
        row = stats(roots, cid)
        rows.append({**row, "Pod": pod["id"][:12], "PodName": pod["name"]})
    return rows


def pod_logs(roots: Roots, ref: str, *, tail: int | None = None,
             container: str | None = None) -> list[tuple[str, str, Any]]:
    """(container name, LogEntry) for every member's log, in time order (podman's pod
    logs: infra excluded)."""
    from podkit_runtime._logs import container_log

    pod = R.load(roots, R.resolve(roots, ref))
    entries = []
    for cid in pod["members"]:
        record, seen = _observed(roots, cid)
        if seen is None:
            continue
        if container and container not in (cid, record["name"]) \
                and not cid.startswith(container):
            continue
        for entry in container_log(roots, cid, tail=tail):
            entries.append((cid, record["name"], entry))
    entries.sort(key=lambda e: getattr(e[2], "time_ns", 0))
    return [(cid, name, e) for cid, name, e in entries]


def follow_pod_logs(roots: Roots, ref: str, *, tail: int | None = None
                    ) -> Iterator[tuple[str, str, Any]]:
    """(cid, name, LogEntry) from every member's log as they come (podman's pod logs
    -f), until every member followed has exited."""
    import queue
    import threading

    from podkit_runtime._logs import container_log

    pod = R.load(roots, R.resolve(roots, ref))
    found: queue.Queue = queue.Queue()
    members = []
    for cid in pod["members"]:
        record, seen = _observed(roots, cid)
        if seen is not None:
            members.append((cid, record["name"]))

    def pump(cid: str, name: str) -> None:
        try:
            for entry in container_log(roots, cid, follow=True, tail=tail):
                found.put((cid, name, entry))
        except errors.PodkitError:
            pass  # removed while followed
        finally:
            found.put(None)

    for cid, name in members:
        threading.Thread(target=pump, args=(cid, name), daemon=True).start()
    running = len(members)
    while running:
        item = found.get()
        if item is None:
            running -= 1
        else:
            yield item
