"""pod-runtime's log options and inspection commands (thin typer glue over
``_log_options``, ``_cp``, ``_top``, ``_stats``): ``--log-driver``/``--log-opt`` for
create and run; ``cp``, ``top``, ``stats``, ``port``, ``rename``; registered by
:func:`register`."""

from __future__ import annotations

from typing import Any

import typer

LOG_DRIVER = typer.Option(None, "--log-driver",
                          help="k8s-file (default) | json-file | none | passthrough")
LOG_OPT = typer.Option(None, "--log-opt", help="max-size=N (conmon truncates the log)")


def log_extras(values: dict[str, Any]) -> dict[str, Any]:
    """``CreateOptions`` keywords from a command's ``--log-driver``/``--log-opt``."""
    from podkit_runtime._cli_values import log_extras as typer_free

    return typer_free(values)


def register(app: typer.Typer) -> None:
    """Add cp, top, stats, port and rename to pod-runtime's app."""

    @app.command()
    def cp(ctx: typer.Context, src: str = typer.Argument(..., help="CTR:PATH, PATH or -"),
           dest: str = typer.Argument(..., help="CTR:PATH, PATH or -")) -> None:
        """Copy files between a container's filesystem and the host (podman cp): paths
        in the container resolve inside its rootfs only; - is a tar stream."""
        import sys

        from podkit_common.cli import emit
        from podkit_runtime._cp import copy, runtime_rootfs

        doc = copy(ctx.obj.roots, src, dest, lambda ref: runtime_rootfs(ctx.obj.roots, ref),
                   stdin=sys.stdin.buffer, stdout=sys.stdout.buffer)
        if dest != "-":
            emit(doc)

    @app.command()
    def top(ctx: typer.Context, container: str = typer.Argument(...),
            fmt: str = typer.Option("json", "--format", help="json | table")) -> None:
        """The container's processes (podman top's default columns)."""
        import sys

        from podkit_common.cli import emit
        from podkit_runtime._top import top as top_doc
        from podkit_runtime._top import top_table

        doc = top_doc(ctx.obj.roots, container)
        if fmt == "table":
            sys.stdout.write(top_table(doc))
            return
        emit(doc)

    @app.command()
    def stats(ctx: typer.Context,
              containers: list[str] = typer.Argument(None, help="default: all running"),
              all_: bool = typer.Option(False, "--all", "-a", help="accepted, as podman 4.3"),
              no_stream: bool = typer.Option(False, "--no-stream", help="one round only"),
              interval: int = typer.Option(5, "--interval", "-i", help="seconds between rounds"),
              no_reset: bool = typer.Option(False, "--no-reset",
                                            help="table: do not clear the screen each round"),
              no_trunc: bool = typer.Option(False, "--no-trunc"),
              fmt: str = typer.Option("json", "--format", help="json (JSON lines) | table")
              ) -> None:
        """The containers' cgroup figures, a round every --interval seconds until
        interrupted (podman stats); --no-stream: one round."""
        from podkit_runtime.cli_stats import write_stats

        write_stats(ctx.obj.roots, containers or [], all_=all_, stream=not no_stream,
                    interval=interval, fmt=fmt, reset=not no_reset, no_trunc=no_trunc)

    @app.command()
    def port(ctx: typer.Context, container: str = typer.Argument(None),
             spec: str = typer.Argument(None, metavar="[PORT[/PROTO]]"),
             all_: bool = typer.Option(False, "--all", "-a")) -> None:
        """The container's published ports, podman's way: 80/tcp -> 0.0.0.0:8080; with
        PORT only the host address it is published on."""
        import sys

        from podkit_runtime._top import port as port_lines

        for line in port_lines(ctx.obj.roots, container, spec, all_=all_):
            sys.stdout.write(line + "\n")

    @app.command()
    def rename(ctx: typer.Context, container: str = typer.Argument(...),
               new_name: str = typer.Argument(...)) -> None:
        """Give a container a new name."""
        from podkit_common.cli import emit
        from podkit_runtime._rename import rename as rename_container

        emit(rename_container(ctx.obj.roots, container, new_name))
