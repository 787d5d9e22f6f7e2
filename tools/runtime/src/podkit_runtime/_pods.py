"""Pods: create, start, stop, restart, kill, pause, unpause, rm, ps, inspect, exists,
prune, top, stats, logs — the runtime half (records, cgroup, containers under conmon).

What needs other stages (the pause image in pod-storage, the infra's network in
pod-netsetup) is composed by ``pod`` (podkit_pod._pods) or by a shell pipeline that
passes the documents; these functions take hooks for it (``prepare``: called before an
exited container runs again, may return a new network section).

Status of a pod, podman's rules (libpod/pod_status.go) over the infra and members::

    no containers -> Created;  any running -> Running if all are, else Degraded;
    all paused -> Paused;  all exited -> Exited;  else Created
"""

from __future__ import annotations

import contextlib

from podkit_common import errors
from podkit_common.roots import Roots
from podkit_runtime import _pod_record as R

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Prepare = Callable[[str, dict[str, Any]], dict[str, Any] | None]


# -- create ---------------------------------------------------------------------------------

def create_pod(roots: Roots, opts: R.PodOptions) -> dict[str, Any]:
    """A new pod record and its cgroup (no containers yet: the infra is bundled next)."""
    from podkit_common.locks import object_lock
    from podkit_runtime import _pod_cgroup

    with object_lock(roots.root / "locks", "pod-names", "all", timeout=60.0):
        taken = {r["name"] for r in R.all_records(roots)}
        record = R.new_record(opts, taken)
        _pod_cgroup.create(record["cgroup_path"], opts.cpus, opts.memory)
        try:
            R.save(roots, record)
        except BaseException:
            with contextlib.suppress(errors.PodkitError):
                _pod_cgroup.remove(record["cgroup_path"])
            raise
    from podkit_common.events import pod_event

    pod_event(roots, "create", record)
    return {"changed": True, "pod": R.public(record)}


# -- containers of a pod --------------------------------------------------------------------

def container_ids(pod: dict[str, Any]) -> list[str]:
    """Infra first, then the members (podman's start order)."""
    infra = [pod["infra"]["id"]] if pod["infra"].get("id") else []
    return infra + list(pod["members"])


def _observed(roots: Roots, cid: str) -> tuple[dict[str, Any] | None, Any]:
    """(record, Observed) of a container; (None, None) if it was never created under
    conmon (bundle only)."""
    from podkit_runtime._lifecycle import sync

    try:
        return sync(roots, cid)
    except errors.NotFound:
        return None, None


def statuses(roots: Roots, pod: dict[str, Any]) -> dict[str, str]:
    """{cid: podman status} for the infra and members ("configured" for bundle-only)."""
    out = {}
    for cid in container_ids(pod):
        _record, seen = _observed(roots, cid)
        out[cid] = "configured" if seen is None else seen.status
    return out


def pod_status(states: list[str]) -> str:
    """podman's pod status from its containers' statuses (pure)."""
    if not states:
        return "Created"
    running = sum(s == "running" for s in states)
    if running:
        return "Running" if running == len(states) else "Degraded"
    if all(s == "paused" for s in states):
        return "Paused"
    if all(s in ("exited", "stopped") for s in states):
        return "Exited"
    if all(s == "stopped" for s in states):
        return "Stopped"
    return "Created"


def revive(roots: Roots, cid: str, network: dict[str, Any] | None = None) -> None:
    """Run an exited container again with the same bundle (podman's start of an exited
    container): a new conmon, runc create, runc start. A member rejoins the infra's
    namespaces first; ``network`` replaces the recorded network section."""
    from podkit_runtime import _state
    from podkit_runtime._lifecycle import sync
    from podkit_runtime._pod_members import join_pod
    from podkit_runtime._restart import _restart_now
    from podkit_runtime._run import prepare_bundle

    with _state.lock(roots, cid):
        record, seen = sync(roots, cid)
        if seen.status != "exited":
            return
        doc = dict(record.get("doc") or {})
        if network is not None:
            doc["network"] = network
        doc = join_pod(roots, doc)
        if doc.get("network"):
            prepare_bundle(doc)
        record["doc"] = {**record.get("doc", {}), **{k: doc[k] for k in ("network",)
                                                     if k in doc}}
        record["stopped_by_user"] = False
        count = record.get("restart_count") or 0
        _restart_now(roots, record)
        record = _state.load_record(roots, cid)
        record["restart_count"] = count  # a start is no policy restart
        _state.save_record(roots, record)


def _start_one(roots: Roots, cid: str, prepare: Prepare | None) -> bool:
    from podkit_runtime._lifecycle import start

    record, seen = _observed(roots, cid)
    if seen is None:
        return False  # bundle only: whoever made it creates it
    if seen.status == "created":
        start(roots, cid)
        return True
    if seen.status == "exited":
        network = prepare(cid, record) if prepare else None
        revive(roots, cid, network)
        return True
    return False


def start_pod(roots: Roots, ref: str, prepare: Prepare | None = None) -> dict[str, Any]:
    """Start the infra, then every member (created or exited ones) at once, each in its
    own thread (runc and conmon do the work: the members' starts overlap), and wait for
    all. podman's errors: ``starting container ID: ...`` for each container that failed,
    and when the infra fails, each member's ``a dependency ... failed to start``."""
    pod = R.load(roots, R.resolve(roots, ref))
    changed = False
    failures: list[str] = []
    infra = pod["infra"].get("id")
    from podkit_runtime._conmon_cgroup import warm
    from podkit_runtime._timings import mark

    warm(len(pod["members"]) + bool(infra))  # their conmons' cgroup moves: see there

    if infra:  # first: the members join its namespaces
        try:
            changed = _start_one(roots, infra, prepare)
        except errors.PodkitError as exc:
            failures.append(f"starting container {infra}: {exc}")
        mark("infra-start")
    members = list(pod["members"])
    if failures:
        failures += [f"starting container {cid}: a dependency of container {cid} failed to "
                     "start: container state improper" for cid in members]
    elif members:
        changed |= _start_members(roots, members, prepare, failures)
        mark("members-start")
    if failures:
        raise errors.RuntimeFailure("; ".join(failures),
                                    hint=f"pod pod inspect {pod['name']} shows each "
                                         "container's state; pod logs CONTAINER")
    from podkit_common.events import pod_event

    pod_event(roots, "start", pod)
    return report(roots, pod, changed)


def _start_members(roots: Roots, members: list[str], prepare: Prepare | None,
                   failures: list[str]) -> bool:
    """Start ``members`` concurrently (one thread each; the last in this one); their
    failures are appended in member order. Whether any started."""
    from podkit_common.threads import start  # threading's import: a cold start's ms

    results: list[bool | str | BaseException] = [False] * len(members)

    def one(i: int) -> None:
        try:
            results[i] = _start_one(roots, members[i], prepare)
        except errors.PodkitError as exc:
            results[i] = f"starting container {members[i]}: {exc}"
        except Exception as exc:  # a bug: raised below, after every thread is done
            results[i] = exc

    joins = [start(one, i) for i in range(len(members) - 1)]
    one(len(members) - 1)
    for join in joins:
        join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    failures += [r for r in results if isinstance(r, str)]
    return any(r is True for r in results)


def _members_then_infra(pod: dict[str, Any]) -> list[str]:
    ids = container_ids(pod)
    return ids[1:] + ids[:1] if pod["infra"].get("id") else ids


def stop_pod(roots: Roots, ref: str, timeout: int | None = None) -> dict[str, Any]:
    """Stop the members (all at once: each may wait out its timeout), then the infra as
    soon as they have exited: conmon's exit commands of both run alongside."""
    from concurrent.futures import ThreadPoolExecutor

    from podkit_runtime._lifecycle import _exited, _wait_until, stop

    pod = R.load(roots, R.resolve(roots, ref))

    def live(cid: str) -> bool:
        _record, seen = _observed(roots, cid)
        return seen is not None and seen.status in ("created", "running", "paused")

    def stop_one(cid: str) -> None:
        with contextlib.suppress(errors.NotFound):  # a --rm member may be gone already
            stop(roots, cid, timeout)

    members = [cid for cid in pod["members"] if live(cid)]
    infra = pod["infra"].get("id")
    with ThreadPoolExecutor(max_workers=min(8, len(members) + 1)) as pool:
        futures = [pool.submit(stop_one, cid) for cid in members]
        _wait_until(lambda: all(f.done() or _exited(roots, cid)
                                for f, cid in zip(futures, members, strict=True)), None)
        infra_stop = pool.submit(stop_one, infra) if infra and live(infra) else None
        for future in [*futures, *([infra_stop] if infra_stop else [])]:
            future.result()
    from podkit_common.events import pod_event

    pod_event(roots, "stop", pod)
    return report(roots, pod, bool(members) or infra_stop is not None)


def kill_pod(roots: Roots, ref: str, signal: str = "SIGKILL") -> dict[str, Any]:
    from podkit_runtime._lifecycle import kill

    pod = R.load(roots, R.resolve(roots, ref))
    done = 0
    for cid in _members_then_infra(pod):
        _record, seen = _observed(roots, cid)
        if seen is not None and seen.status in ("running", "paused"):
            kill(roots, cid, signal)
            done += 1
    if not done:
        raise errors.Conflict(f"no containers in pod {pod['name']} are running: container "
                              "state improper", hint="pod pod start it first")
    from podkit_common.events import pod_event

    pod_event(roots, "kill", pod)
    return report(roots, pod, True)


def pause_pod(roots: Roots, ref: str, *, pause: bool = True) -> dict[str, Any]:
    from podkit_runtime._freezer import pause as freeze
    from podkit_runtime._freezer import unpause as thaw

    pod = R.load(roots, R.resolve(roots, ref))
    need = "running" if pause else "paused"
    changed = False
    for cid in container_ids(pod):
        _record, seen = _observed(roots, cid)
        if seen is not None and seen.status == need:
            (freeze if pause else thaw)(roots, cid)
            changed = True
    from podkit_common.events import pod_event

    pod_event(roots, "pause" if pause else "unpause", pod)
    return report(roots, pod, changed)


def restart_pod(roots: Roots, ref: str, prepare: Prepare | None = None,
                timeout: int | None = None) -> dict[str, Any]:
    stop_pod(roots, ref, timeout)
    return {**start_pod(roots, ref, prepare), "changed": True}


def remove_pod(roots: Roots, ref: str, *, force: bool = False, timeout: int | None = None,
               release: Any = None) -> dict[str, Any]:
    """Remove the members, the infra, the cgroup and the record. Running containers need
    ``force`` (stopped first). The result lists every removed container with the
    document it ran with, and carries the infra's ``container``/``network`` sections on
    top so that ``| pod-netsetup detach`` releases the pod's network.

    ``release(removed)``, if given, runs once the containers are gone but while the pod
    record still exists: a removal killed before it ends is found again by the next
    `pod rm`, which then releases what the first one could not."""
    from podkit_runtime import _pod_cgroup
    from podkit_runtime._lifecycle import forget, remove

    pod_id = R.resolve(roots, ref)
    pod = R.load(roots, pod_id)
    running = [cid for cid, s in statuses(roots, pod).items()
               if s in ("running", "paused")]
    if running and not force:
        raise errors.Conflict(
            f"pod {pod_id} has containers that are not ready to be removed: cannot remove "
            f"container {running[0]} as it is running - running or paused containers cannot "
            "be removed without force: container state improper",
            hint="pod pod stop it first, or use --force")
    if force:
        stop_pod(roots, pod_id, timeout)
    with R.lock(roots, pod_id):  # from here on its infra may go (refuse_infra_removal)
        pod = R.load(roots, pod_id)
        pod["removing"] = True
        # The members this removal takes stay named in the record to its end: a member
        # leaves "members" with its bundle, before `release` removes its storage, so a
        # removal killed in between is finished by the next one (chaos seed 20261130).
        pod["removing_members"] = sorted({*(pod.get("removing_members") or ()),
                                          *pod["members"]})
        R.save(roots, pod)
    removed = []
    infra_doc: dict[str, Any] = {}

    def remove_one(cid: str) -> dict[str, Any]:
        record, seen = _observed(roots, cid)
        # NotFound: a --rm member's exit command removed it meanwhile
        with contextlib.suppress(errors.NotFound):
            if seen is not None:
                remove(roots, cid, force=True, timeout=timeout)
            else:  # an earlier pod rm, killed after the record: what it left
                forget(roots, cid)
        return {"id": cid, "doc": (record or {}).get("doc") or {},
                "infra": cid == pod["infra"].get("id")}

    from concurrent.futures import ThreadPoolExecutor

    order = _members_then_infra(pod)
    members = [cid for cid in order if cid != pod["infra"].get("id")]
    members += [cid for cid in pod["removing_members"] if cid not in members]
    if members:
        with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
            removed = list(pool.map(remove_one, members))
    if pod["infra"].get("id"):  # last: the members' hosts lines are in its bundle
        removed.append(remove_one(pod["infra"]["id"]))
        infra_doc = removed[-1]["doc"] or (pod["infra"].get("doc") or {})
    if release is not None:
        release(removed)
    _pod_cgroup.remove(pod["cgroup_path"])
    with R.lock(roots, pod_id):   # its file goes at this release: the pod is gone
        import shutil

        shutil.rmtree(R.record_path(roots, pod_id).parent, ignore_errors=True)
    from podkit_runtime._pod_members import hosts_lock

    with hosts_lock(roots, pod_id):  # and so does this one's
        pass
    from podkit_common.events import pod_event

    pod_event(roots, "remove", pod)
    out: dict[str, Any] = {"changed": True, "pod": {"id": pod_id, "name": pod["name"]},
                           "removed": removed}
    for key in ("container", "network"):
        if infra_doc.get(key):
            out[key] = infra_doc[key]
    return out


def prune_pods(roots: Roots) -> dict[str, Any]:
    """Remove every stopped pod (Exited or Stopped: podman pod prune's states)."""
    removed = []
    for pod in R.all_records(roots):
        if pod_status(list(statuses(roots, pod).values())) in ("Exited", "Stopped"):
            with contextlib.suppress(errors.NotFound):
                removed.append(remove_pod(roots, pod["id"]))
    return {"changed": bool(removed), "removed": removed}


# -- reports --------------------------------------------------------------------------------

def _member_rows(roots: Roots, pod: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for cid in container_ids(pod):
        record, seen = _observed(roots, cid)
        name = (record or {}).get("name") or (
            pod["infra"]["name"] if cid == pod["infra"].get("id") else cid[:12])
        rows.append({"Id": cid, "Names": name,
                     "Status": "configured" if seen is None else seen.status})
    return rows


def report(roots: Roots, pod: dict[str, Any], changed: bool) -> dict[str, Any]:
    """The document lifecycle commands print: the pod, its status and containers."""
    rows = _member_rows(roots, pod)
    return {"changed": changed, "pod": {**R.public(pod),
                                        "status": pod_status([r["Status"] for r in rows]),
                                        "containers": rows}}


# -- --exit-policy stop ---------------------------------------------------------------------

def after_member_exit(roots: Roots, record: dict[str, Any]) -> None:
    """From a member's exit command: with ``--exit-policy stop``, the last member to exit
    stops the pod (its infra). Never raises."""
    section = ((record.get("doc") or {}).get("bundle") or {}).get("pod") or {}
    if not section or section.get("infra"):
        return
    with contextlib.suppress(errors.PodkitError, OSError):
        pod = R.load(roots, section["id"])
        if pod.get("exit_policy") != "stop" or not pod["infra"].get("id"):
            return
        for cid in pod["members"]:
            _rec, seen = _observed(roots, cid)
            if seen is not None and seen.status in ("running", "paused", "created") \
                    and cid != record["id"]:
                return
        from podkit_runtime._lifecycle import stop

        stop(roots, pod["infra"]["id"])
