"""Image management commands, like podman's:

    pod-storage images [--format json|table]     one JSON line per image, or podman's table
    pod-storage inspect IMAGE                    podman-shaped description
    pod-storage tag IMAGE NAME...                add names (a name moves from any other image)
    pod-storage untag IMAGE [NAME...]            remove names (all when none given)
    pod-storage rmi [--force] IMAGE...           remove images, their unshared layers and blobs
    pod-storage prune [--all]                    remove dangling (or all unused) images

IMAGE is a name (``busybox``, ``host/repo:tag``, ``docker://…``), an id or an id prefix.
``rmi --force`` removes the containers using the image too, as ``podman rmi -f`` does.
"""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import emit, emit_lines

_IMAGE_HELP = "image name, id or id prefix"


def images_command(ctx: typer.Context,
                   fmt: str = typer.Option("json", "--format",
                                           help="json (one document per line) or table")) -> None:
    """List images, one JSON document per line (--format table: like podman images)."""
    from podkit_common.errors import UsageError
    from podkit_storage._image_report import image_rows, images_table

    if fmt not in ("json", "table"):
        raise UsageError(f"--format must be json or table, not {fmt!r}")
    rows = image_rows(ctx.obj.roots)
    if fmt == "table":
        sys.stdout.write(images_table(rows))
        sys.stdout.flush()
        return
    emit_lines(rows)


def inspect_command(ctx: typer.Context,
                    ref: str = typer.Argument(..., metavar="IMAGE", help=_IMAGE_HELP)) -> None:
    """Describe an image in the store as podman image inspect does."""
    from podkit_storage._image_report import inspect_image

    emit(inspect_image(ctx.obj.roots, ref))


def tag_command(ctx: typer.Context,
                ref: str = typer.Argument(..., metavar="IMAGE", help=_IMAGE_HELP),
                names: list[str] = typer.Argument(..., metavar="NAME...")) -> None:
    """Add names to an image; a name another image has moves to this one."""
    from podkit_storage._image_tags import tag_image

    emit(tag_image(ctx.obj.roots, ref, names))


def untag_command(ctx: typer.Context,
                  ref: str = typer.Argument(..., metavar="IMAGE", help=_IMAGE_HELP),
                  names: list[str] = typer.Argument(None, metavar="[NAME...]")) -> None:
    """Remove names from an image (all of them when none are given)."""
    from podkit_storage._image_tags import untag_image

    emit(untag_image(ctx.obj.roots, ref, names or None))


def rmi_command(ctx: typer.Context,
                refs: list[str] = typer.Argument(..., metavar="IMAGE..."),
                force: bool = typer.Option(False, "--force", "-f",
                                           help="also remove containers using the image")) -> None:
    """Remove images, and the layers and blobs no other image uses."""
    from podkit_storage._image_remove import remove_images

    emit(remove_images(ctx.obj.roots, refs, force=force))


def prune_command(ctx: typer.Context,
                  all_: bool = typer.Option(False, "--all", "-a",
                                            help="every image no container uses, not only "
                                                 "dangling ones")) -> None:
    """Remove dangling images (no names); report the bytes really freed."""
    from podkit_storage._image_remove import prune_images

    emit(prune_images(ctx.obj.roots, all_unused=all_))


def add_image_commands(app: typer.Typer) -> None:
    """Register images, inspect, tag, untag, rmi and prune on ``app``."""
    app.command("images")(images_command)
    app.command("inspect")(inspect_command)
    app.command("tag")(tag_command)
    app.command("untag")(untag_command)
    app.command("rmi")(rmi_command)
    app.command("prune")(prune_command)
