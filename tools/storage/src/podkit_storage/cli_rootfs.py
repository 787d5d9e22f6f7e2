"""pod-storage diff / changes: what a container changed (glue; the work is in _changes)."""

from __future__ import annotations

import typer


def add_rootfs_commands(app: typer.Typer) -> None:
    """Register ``diff`` and its alias ``changes`` on the pod-storage app."""

    def diff(ctx: typer.Context,
             ref: str | None = typer.Argument(None, help="container id or name (default: the "
                                                         "container in the document on stdin)"),
             ) -> None:
        """List what the container added (A), changed (C) or deleted (D), like podman
        diff: one JSON document per line, sorted by path."""
        from podkit_common.cli import emit_lines
        from podkit_storage import container_changes, load_container
        from podkit_storage.cli import _container_ref

        emit_lines(container_changes(load_container(ctx.obj.roots, _container_ref(ref))))

    app.command("diff")(diff)
    app.command("changes", help="Same as diff.")(diff)
