"""The bodies of `pod pod create|start|stop|rm|ps|inspect`, without typer.

Both parsers run them: the typer commands (podkit_pod.cli_pod) and the fast path
(podkit_pod.fast_path), which reads these command lines from ``_argspec.json`` and
never loads typer. A body takes the global options (``obj``: podkit_common.cli_base.
Globals) and the command's keyword arguments by their typer names; it writes podman's
output (pod ids, one per line; a table or JSON for ps and inspect) and returns None.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

PS_DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t"
              "{{.NumberOfContainers}}")
PS_HEADERS = {"ID": "POD ID", "Id": "POD ID", "Name": "NAME", "Status": "STATUS",
              "Created": "CREATED", "InfraID": "INFRA ID", "InfraId": "INFRA ID",
              "NumberOfContainers": "# OF CONTAINERS", "Labels": "LABELS",
              "Networks": "NETWORKS", "Cgroup": "CGROUP", "Namespace": "NAMESPACE",
              "Containers": "CONTAINERS"}


def _ids(ids: list[str]) -> None:
    sys.stdout.write("".join(i + "\n" for i in ids))


def _each(obj: Any, pods: list[str], fn: Any) -> None:
    """podman's loop: every pod looked up first (an unknown one: nothing is done), then
    each in turn, its id printed once done; a pod that fails does not stop the others,
    and the command fails at the end with the errors."""
    from podkit_common import errors
    from podkit_runtime._pod_record import resolve

    ids = [resolve(obj.roots, ref) for ref in pods]
    failed: list[errors.PodkitError] = []
    for pod_id in ids:
        try:
            out = fn(obj.roots, pod_id)
        except errors.PodkitError as exc:
            failed.append(exc)
            continue
        _ids([out["pod"]["id"]])
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise errors.RuntimeFailure("; ".join(str(e) for e in failed),
                                    hint=failed[0].hint)


def create_body(obj: Any, params: dict[str, Any]) -> None:
    from podkit_pod._pods import create as create_pod
    from podkit_runtime._pod_options import pod_options
    from podkit_runtime._timings import mark, report

    mark("start")  # PODKIT_TRACE_TIMINGS: the phases on stderr, as for run
    try:
        out = create_pod(obj.roots, pod_options(params))
    finally:
        report()
    _ids([out["pod"]["id"]])


def start_body(obj: Any, params: dict[str, Any]) -> None:
    from podkit_pod._pods import start as start_pod
    from podkit_runtime._timings import mark, report

    mark("start")
    try:
        _each(obj, params["pods"], start_pod)
    finally:
        report()


def stop_body(obj: Any, params: dict[str, Any]) -> None:
    from podkit_runtime._pods import stop_pod

    _each(obj, params["pods"], lambda roots, ref: stop_pod(roots, ref, params.get("time_")))


def rm_body(obj: Any, params: dict[str, Any]) -> None:
    from podkit_pod._pods import remove

    _each(obj, params["pods"], lambda roots, ref: remove(
        roots, ref, force=bool(params.get("force")), timeout=params.get("time_")))


def _ago(created: str) -> str:
    from podkit_common.humanize import human_duration as ago
    from podkit_runtime._logs import parse_time_filter

    return ago(time.time() - parse_time_filter(created) / 1e9) + " ago"


def display_row(line: dict[str, Any], no_trunc: bool = False) -> dict[str, Any]:
    """A `pod ps` line with the fields podman's templates use (ID, InfraID, ...)."""
    short = (lambda s: s) if no_trunc else (lambda s: s[:12])
    return {**line, "ID": short(line["Id"]), "Id": short(line["Id"]),
            "InfraID": short(line["InfraId"]), "InfraId": short(line["InfraId"]),
            "Created": _ago(line["Created"]),
            "NumberOfContainers": len(line["Containers"])}


def ps_body(obj: Any, params: dict[str, Any]) -> None:
    from podkit_common.gotemplate import is_json, render_rows
    from podkit_runtime._pod_filter import filter_pods
    from podkit_runtime._pod_reports import list_pods

    fmt, no_trunc = params.get("fmt"), bool(params.get("no_trunc"))
    lines = filter_pods(list_pods(obj.roots), params.get("filter_"))
    if params.get("quiet") or obj.quiet:  # -q reads as the global --quiet: podman's -q
        _ids([line["Id"] if no_trunc else line["Id"][:12] for line in lines])
        return
    if is_json(fmt):
        sys.stdout.write(render_rows("json", lines))
        return
    rows = [display_row(line, no_trunc) for line in lines]
    sys.stdout.write(render_rows(fmt, rows, noheading=bool(params.get("noheading")),
                                 default=PS_DEFAULT, headers=PS_HEADERS, name="pod ps"))


def inspect_body(obj: Any, params: dict[str, Any]) -> None:
    from podkit_common.gotemplate import render_one
    from podkit_runtime._pod_reports import inspect_pod

    sys.stdout.write(render_one(params.get("fmt") or "json",
                                inspect_pod(obj.roots, params["pod"])))
