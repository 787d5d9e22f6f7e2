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
        container's rootfs only; - is a tar stream)."""
        from podkit_runtime._cp import copy

        with _mounted_rootfs(ctx.obj.roots, [src, dest]) as rootfs_of:
            copy(ctx.obj.roots, src, dest, rootfs_of, stdin=sys.stdin.buffer,
                 stdout=sys.stdout.buffer)
        sys.stdout.flush()

    @app.command()
    def top(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """Display the running processes of a container."""
        from podkit_runtime._top import top as top_doc
        from podkit_runtime._top import top_table

        sys.stdout.write(top_table(top_doc(ctx.obj.roots, container)))

    @app.command()
    def stats(ctx: typer.Context, containers: list[str] = typer.Argument(...),
              no_stream: bool = typer.Option(False, "--no-stream"),
              fmt: str = typer.Option("table", "--format", help="table | json")) -> None:
        """One sample of the containers' resource usage (only --no-stream for now)."""
        from podkit_common.cli import emit
        from podkit_runtime._stats import stats as stats_doc
        from podkit_runtime._stats import stats_table

        if not no_stream:
            from podkit_common import errors

            raise errors.NotImplementedYet("pod stats streams no samples yet",
                                           hint="use --no-stream")
        rows = [stats_doc(ctx.obj.roots, ref) for ref in containers]
        if fmt == "json":
            emit([{k: v for k, v in r.items() if k != "changed"} for r in rows])
            return
        sys.stdout.write(stats_table(rows))

    @app.command()
    def port(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """List the container's published ports (80/tcp -> 0.0.0.0:8080)."""
        from podkit_runtime._top import port as port_lines

        for line in port_lines(ctx.obj.roots, container):
            sys.stdout.write(line + "\n")

    @app.command()
    def rename(ctx: typer.Context, container: str = typer.Argument(...),
               new_name: str = typer.Argument(...)) -> None:
        """Rename a container (both its runtime record and its storage name)."""
        from podkit_pod._rename import rename as rename_container

        rename_container(ctx.obj.roots, container, new_name)
