"""`pod ps` (also `pod container ls|list|ps`): glue over _ps (rows) and _ps_format (text)."""

from __future__ import annotations

import typer


def ps_command(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", "-a", help="show all containers, not only "
                              "running ones"),
    fmt: str | None = typer.Option(None, "--format", help="json, table, or a Go template "
                                   "such as '{{.ID}} {{.Names}}'"),
    filter_: list[str] | None = typer.Option(None, "--filter", "-f", metavar="KEY=VALUE",
                                             help="id, name, label, status, exited, ancestor, "
                                             "before, since, pod, network, health, volume"),
    last: int = typer.Option(-1, "--last", "-n", help="the N most recently created"),
    latest: bool = typer.Option(False, "--latest", "-l", help="the latest created only"),
    no_trunc: bool = typer.Option(False, "--no-trunc", help="full ids and commands"),
    noheading: bool = typer.Option(False, "--noheading", help="no header line"),
    pod: bool = typer.Option(False, "--pod", "-p", help="add POD ID and PODNAME columns"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print the ids only"),
    size: bool = typer.Option(False, "--size", "-s", help="add the SIZE column (what the "
                              "container wrote, and its whole root filesystem)"),
    sort: str = typer.Option("created", "--sort", help="command, created, id, image, "
                             "names, runningfor, status"),
    watch: int = typer.Option(0, "--watch", "-w", help="redraw every N seconds until "
                              "interrupted"),
) -> None:
    """List containers: the running ones, or all of them with --all (podman ps).

    Examples:

    \b
        pod ps -a
        pod ps -a --format json | jq '.[].Names'
        pod ps --filter status=exited --format '{{.ID}} {{.Status}}'
        pod ps -aq --filter label=app=web
        pod ps -a --watch 2
    """
    params = {k: v for k, v in locals().items() if k != "ctx"}
    from podkit_pod._command_bodies import ps_body  # typer-free: also the fast path

    ps_body(ctx.obj, params)


def add_ps_command(app: typer.Typer) -> None:
    """Register `ps` on pod's app."""
    app.command("ps")(ps_command)
