"""`pod pod ...`: podman's pod commands over podkit_pod._pods (thin typer glue).

Output is podman 4.3.1's: `create` prints the pod id; start/stop/restart/kill/pause/
unpause/rm print the id of each pod; `ps` a table (or `--format json`, a Go template,
`-q`); `inspect` one JSON object; `exists` says it with its exit code; `logs` prefixes
each line with the container's short id.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from podkit_common.cli import composed
from podkit_runtime.cli_pod import create_options

app = typer.Typer(name="pod", help="Manage pods (an infra container holding the namespaces "
                  "its members join).\n\nExample: pod pod create --name web && pod run -d "
                  "--pod web IMAGE", no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None)

def _ctx_only(ctx: typer.Context) -> None:
    raise NotImplementedError  # only the signature is used


def _roots(ctx: typer.Context):
    return ctx.find_root().obj.roots


def _ids(ids: list[str]) -> None:
    sys.stdout.write("".join(i + "\n" for i in ids))


def _create(ctx: typer.Context, **values: Any) -> None:
    """Create a pod (its infra container created, not started); prints the pod id.

    Example: pod pod create --name web -p 127.0.0.1:8080:80 && pod run -d --pod web IMAGE
    """
    from podkit_pod._pod_commands import create_body

    create_body(ctx.find_root().obj, values)


app.command("create")(composed(_create, _ctx_only, create_options))


def _each(ctx: typer.Context, pods: list[str], fn: Any) -> None:
    for ref in pods:
        out = fn(_roots(ctx), ref)
        _ids([out["pod"]["id"]])


@app.command()
def start(ctx: typer.Context, pods: list[str] = typer.Argument(...)) -> None:
    """Start pods: the infra, then the members. Example: pod pod start web"""
    from podkit_pod._pod_commands import start_body

    start_body(ctx.find_root().obj, {"pods": pods})


@app.command()
def stop(ctx: typer.Context, pods: list[str] = typer.Argument(...),
         time_: int | None = typer.Option(None, "--time", "-t")) -> None:
    """Stop pods: the members, then the infra. Example: pod pod stop -t 2 web"""
    from podkit_pod._pod_commands import stop_body

    stop_body(ctx.find_root().obj, {"pods": pods, "time_": time_})


@app.command()
def restart(ctx: typer.Context, pods: list[str] = typer.Argument(...)) -> None:
    """Stop and start pods. Example: pod pod restart web"""
    from podkit_pod._pods import restart as restart_pod

    _each(ctx, pods, restart_pod)


@app.command()
def kill(ctx: typer.Context, pods: list[str] = typer.Argument(...),
         signal: str = typer.Option("SIGKILL", "--signal", "-s")) -> None:
    """Signal every running container of pods. Example: pod pod kill -s TERM web"""
    from podkit_runtime._pods import kill_pod

    _each(ctx, pods, lambda roots, ref: kill_pod(roots, ref, signal))


@app.command()
def pause(ctx: typer.Context, pods: list[str] = typer.Argument(...)) -> None:
    """Freeze pods. Example: pod pod pause web"""
    from podkit_runtime._pods import pause_pod

    _each(ctx, pods, lambda roots, ref: pause_pod(roots, ref, pause=True))


@app.command()
def unpause(ctx: typer.Context, pods: list[str] = typer.Argument(...)) -> None:
    """Thaw pods. Example: pod pod unpause web"""
    from podkit_runtime._pods import pause_pod

    _each(ctx, pods, lambda roots, ref: pause_pod(roots, ref, pause=False))


@app.command()
def rm(ctx: typer.Context, pods: list[str] = typer.Argument(...),
       force: bool = typer.Option(False, "--force", "-f"),
       time_: int | None = typer.Option(None, "--time", "-t")) -> None:
    """Remove pods with their containers (-f stops running ones first).
    Example: pod pod rm -f web"""
    from podkit_pod._pod_commands import rm_body

    rm_body(ctx.find_root().obj, {"pods": pods, "force": force, "time_": time_})


@app.command("ps")
def ps(ctx: typer.Context,
       fmt: str | None = typer.Option(None, "--format", help="json | Go template | table"),
       quiet: bool = typer.Option(False, "--quiet", "-q"),
       no_trunc: bool = typer.Option(False, "--no-trunc"),
       noheading: bool = typer.Option(False, "--noheading", "-n"),
       filter_: list[str] | None = typer.Option(None, "--filter", "-f",
                                                help="KEY=VALUE: id, name, label, status, "
                                                     "network, ctr-names, ctr-ids, "
                                                     "ctr-status, ctr-number")) -> None:
    """List pods. Example: pod pod ps --format '{{.Name}} {{.Status}}'"""
    from podkit_pod._pod_commands import ps_body

    ps_body(ctx.find_root().obj, {"fmt": fmt, "quiet": quiet, "no_trunc": no_trunc,
                                  "noheading": noheading, "filter_": filter_})


app.command("ls", help="List pods (an alias of ps). Example: pod pod ls -q")(ps)
app.command("list", hidden=True)(ps)


@app.command()
def inspect(ctx: typer.Context, pod: str = typer.Argument(...),
            fmt: str | None = typer.Option(None, "--format", "-f")) -> None:
    """Show a pod as podman's pod inspect does. Example: pod pod inspect web"""
    from podkit_pod._pod_commands import inspect_body

    inspect_body(ctx.find_root().obj, {"pod": pod, "fmt": fmt})


@app.command()
def exists(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """Exit 0 if the pod exists, 1 if not. Example: pod pod exists web && echo yes"""
    from podkit_runtime._pod_reports import pod_exists

    raise typer.Exit(0 if pod_exists(_roots(ctx), pod) else 1)


@app.command()
def prune(ctx: typer.Context, force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Remove every stopped pod with its containers; prints their ids.
    Example: pod pod prune -f"""
    from podkit_pod._pods import prune as prune_pods

    _ids(prune_pods(_roots(ctx)))


@app.command()
def top(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """The processes of a pod's running containers. Example: pod pod top web"""
    from podkit_runtime._pod_reports import top_pod
    from podkit_runtime._top import COLUMNS

    doc = top_pod(_roots(ctx), pod)
    cols = COLUMNS
    rows = [cols] + [tuple(str(p.get(c, "")) for c in cols) for p in doc["processes"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols) - 1)]
    sys.stdout.write("".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True))
                             + "  " + r[-1] + "\n" for r in rows))


@app.command()
def stats(ctx: typer.Context, pod: str = typer.Argument(...),
          fmt: str | None = typer.Option(None, "--format"),
          no_stream: bool = typer.Option(True, "--no-stream")) -> None:
    """One stats line per container of the pod. Example: pod pod stats --no-stream web"""
    from podkit_common.gotemplate import is_json, render_rows
    from podkit_runtime._pod_reports import stats_pod
    from podkit_runtime._stats import stats_table

    rows = stats_pod(_roots(ctx), pod)
    if is_json(fmt):
        sys.stdout.write(render_rows("json", rows))
    elif fmt:
        sys.stdout.write(render_rows(fmt, rows))
    else:
        sys.stdout.write(stats_table(rows))


@app.command()
def logs(ctx: typer.Context, pod: str = typer.Argument(...),
         tail: int = typer.Option(-1, "--tail"),
         container: str | None = typer.Option(None, "--container", "-c"),
         timestamps: bool = typer.Option(False, "--timestamps", "-t"),
         follow: bool = typer.Option(False, "--follow", "-f")) -> None:
    """The members' logs, each line prefixed with its container's short id.
    Example: pod pod logs --tail 10 web"""
    from podkit_runtime._pod_reports import follow_pod_logs, pod_logs

    limit = None if tail < 0 else tail
    entries = follow_pod_logs(_roots(ctx), pod, tail=limit) if follow and not container \
        else pod_logs(_roots(ctx), pod, tail=limit, container=container)
    for cid, _name, entry in entries:
        stream = sys.stderr if entry.stream == "stderr" else sys.stdout
        stream.buffer.write(cid[:12].encode() + b" " + entry.render(timestamps))
        if follow:
            stream.flush()
    sys.stdout.flush()
