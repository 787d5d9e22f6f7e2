"""pod-storage: the layer store and container root filesystems (thin typer glue)."""

from __future__ import annotations

import podkit_common.fast_version  # noqa: F401  (--version before typer: exits there)

# isort: split
import sys

import typer

from podkit_common.cli import emit, emit_lines, make_app, read_input, run_app
from podkit_storage import __version__
from podkit_storage.cli_archive import add_archive_commands
from podkit_storage.cli_check import add_check_commands
from podkit_storage.cli_images import add_image_commands
from podkit_storage.cli_rootfs import add_rootfs_commands

TOOL = "pod-storage"
app = make_app(TOOL, __version__, "Store image layers and make container root filesystems "
               "on overlayfs.", ["podkit_storage"])


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_storage"])


@app.command("import")
def import_(ctx: typer.Context,
            input_path: str = typer.Option("-", "--input", metavar="FILE",
                                           help="image document (default: stdin)")) -> None:
    """Unpack an image's layers (each once, verified against its diff_id) and record it."""
    from podkit_storage import import_image

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:storage:import-input")
    emit(import_image(doc, ctx.obj.roots, ctx.obj.progress()))


@app.command()
def create(ctx: typer.Context,
           name: str | None = typer.Option(None, "--name", help="container name"),
           image: str | None = typer.Option(None, "--image", metavar="REF",
                                            help="an image already in the store, instead of "
                                                 "a document on stdin"),
           no_mount: bool = typer.Option(False, "--no-mount", help="do not mount the rootfs"),
           driver: str | None = typer.Option(None, "--driver", metavar="overlay|vfs",
                                             help="overlay (default; falls back to vfs when "
                                                  "it cannot mount) or vfs (a plain copy)"),
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Make a container root filesystem (overlay) over an imported image and mount it."""
    from podkit_storage import create_container, find_image

    if image is not None:
        doc = {"changed": False, "image": find_image(ctx.obj.roots, image)}
    else:
        doc = read_input(input_path)
        _schemas().validate(doc, "urn:podkit:storage:create-input")
    emit(create_container(doc, ctx.obj.roots, name=name, mount=not no_mount, driver=driver))


def _container_ref(ref: str | None) -> str:
    if ref is not None:
        return ref
    doc = read_input("-")
    container = doc.get("container")
    ref = container.get("id") if isinstance(container, dict) else None
    if not isinstance(ref, str) or not ref:
        from podkit_common.errors import InvalidDocument

        raise InvalidDocument("input document has no container.id (a string)")
    return ref


@app.command()
def rm(ctx: typer.Context,
       ref: str | None = typer.Argument(None, help="container id or name (default: the "
                                                    "container in the document on stdin)")) -> None:
    """Unmount and remove a container's root filesystem."""
    from podkit_storage import remove_container

    emit(remove_container(ctx.obj.roots, _container_ref(ref)))


@app.command()
def mount(ctx: typer.Context, ref: str | None = typer.Argument(None)) -> None:
    """Mount a container's root filesystem (if it is not mounted) and print it."""
    from podkit_storage import mount_container

    emit({"changed": False, "container": mount_container(ctx.obj.roots, _container_ref(ref))})


@app.command()
def umount(ctx: typer.Context, ref: str | None = typer.Argument(None),
           force: bool = typer.Option(False, "--force", "-f",
                                      help="unmount even if other users still count on it")
           ) -> None:
    """Count one user of the mount less; unmount when none is left."""
    from podkit_storage import unmount_container

    emit({"changed": True, "container": unmount_container(ctx.obj.roots, _container_ref(ref),
                                                          force=force)})


@app.command()
def image(ctx: typer.Context, ref: str = typer.Argument(..., help="name, id or id prefix")) -> None:
    """Print the document of an image in the store (feeds `create`)."""
    from podkit_storage import find_image

    emit({"changed": False, "image": find_image(ctx.obj.roots, ref)})


@app.command()
def containers(ctx: typer.Context) -> None:
    """List container root filesystems, one JSON document per line."""
    from podkit_storage import list_containers

    emit_lines(list_containers(ctx.obj.roots))


add_check_commands(app)  # check, reset: cli_check.py
add_image_commands(app)  # images, inspect, tag, untag, rmi, prune: cli_images.py
add_rootfs_commands(app)  # diff, changes: cli_rootfs.py
add_archive_commands(app)  # save, export, import-tarball: cli_archive.py


def main() -> None:
    run_app(app, TOOL)


if __name__ == "__main__":
    sys.exit(main())
