"""`pod cp/top/stats/port/rename`: the runtime's
inspection libraries with podman's output. `pod cp` mounts the container's rootfs through
pod-storage for the copy (a stopped container's too) and releases it after."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer


@contextlib.contextmanager
def _mounted_rootfs(roots, refs: list[str]) -> Iterator:
    """A ``rootfs_of`` for ``_cp.copy`` that mounts through pod-storage (counted) and
    unmounts what it mounted on the way out."""
    from podkit_pod._containers import container_id
    from podkit_storage import mount_container, unmount_container

    mounted: list[str] = []

    def rootfs_of(ref: str) -> Path:
        cid = container_id(roots, ref)
        doc = mount_container(roots, cid)
        mounted.append(cid)
        return Path(doc["rootfs"])

    try:
        yield rootfs_of
    finally:
        for cid in mounted:
            with contextlib.suppress(Exception):
                unmount_container(roots, cid)


def add_inspecting_commands(app: typer.Typer) -> None:
    """Register cp, top, stats, port and rename on pod's app."""

    @app.command()
    def cp(ctx: typer.Context, src: str = typer.Argument(..., help="CTR:PATH, PATH or -"),
           dest: str = typer.Argument(..., help="CTR:PATH, PATH or -")) -> None:
        """Copy files between a container and the host (paths resolve inside the
        container's rootfs only; - is a tar stream).

        Examples:

        \b
            pod cp web:/etc/hostname .
            pod cp ./index.html web:/www/
            pod cp web:/var/log - | tar t
        """
        from podkit_runtime._cp import copy

        with _mounted_rootfs(ctx.obj.roots, [src, dest]) as rootfs_of:
            copy(ctx.obj.roots, src, dest, rootfs_of, stdin=sys.stdin.buffer,
                 stdout=sys.stdout.buffer)
        sys.stdout.flush()

    @app.command()
    def top(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """Display the running processes of a container.

        Examples:

        \b
            pod top web
        """
        from podkit_runtime._top import top as top_doc
        from podkit_runtime._top import top_table

        sys.stdout.write(top_table(top_doc(ctx.obj.roots, container)))

    @app.command()
    def stats(ctx: typer.Context, containers: list[str] = typer.Argument(None),
              all_: bool = typer.Option(False, "--all", "-a"),
              no_stream: bool = typer.Option(False, "--no-stream"),
              interval: int = typer.Option(5, "--interval", "-i"),
              no_reset: bool = typer.Option(False, "--no-reset"),
              no_trunc: bool = typer.Option(False, "--no-trunc"),
              fmt: str = typer.Option("table", "--format", help="table | json")) -> None:
        """Display a live stream of container resource usage statistics.

        Examples:

        \b
            pod stats --no-stream web
            pod stats --no-stream --format json web
        """
        from podkit_runtime.cli_stats import write_stats

        write_stats(ctx.obj.roots, containers or [], all_=all_, stream=not no_stream,
                    interval=interval, fmt=fmt, reset=not no_reset, no_trunc=no_trunc,
                    podman_shapes=True)

    @app.command()
    def port(ctx: typer.Context, container: str = typer.Argument(None),
             spec: str = typer.Argument(None, metavar="[PORT[/PROTO]]"),
             all_: bool = typer.Option(False, "--all", "-a")) -> None:
        """List the container's published ports (80/tcp -> 0.0.0.0:8080).

        Examples:

        \b
            pod port web
            pod port web 80/tcp
        """
        from podkit_runtime._top import port as port_lines

        for line in port_lines(ctx.obj.roots, container, spec, all_=all_):
            sys.stdout.write(line + "\n")

    @app.command()
    def rename(ctx: typer.Context, container: str = typer.Argument(...),
               new_name: str = typer.Argument(...)) -> None:
        """Rename a container (both its runtime record and its storage name).

        Examples:

        \b
            pod rename web frontend
        """
        from podkit_pod._rename import rename as rename_container

        rename_container(ctx.obj.roots, container, new_name)
