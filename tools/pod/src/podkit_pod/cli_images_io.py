"""pod load / save / import / export: podman's command lines and output (glue only; the
work is in _images_io and the stage libraries).

    pod load [-i FILE] [-q]                            "Loaded image: NAME" per name
    pod save [-o FILE] [--format F] [-m] [-q] IMAGE... nothing printed (the tar on stdout
                                                       without -o)
    pod import [-c INSTR=V]... [-m MSG] [-q] FILE|- [REFERENCE]   prints the image id
    pod export [-o FILE] CONTAINER                     nothing printed
"""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import binary_output

_sink = binary_output


def load_command(ctx: typer.Context,
                 input_path: str | None = typer.Option(None, "--input", "-i", metavar="FILE",
                                                       help="archive to load (default: stdin)"),
                 quiet: bool = typer.Option(False, "--quiet", "-q"),
                 signature_policy: str | None = typer.Option(None, "--signature-policy",
                                                             metavar="PATH")) -> None:
    """Load the images of a docker-archive or oci-archive (podman save output).

    \b
    Example:
      pod load -i busybox.tar
    """
    from podkit_pod._images_io import load_images, loaded_names

    if input_path is None and sys.stdin.isatty():
        from podkit_common.errors import UsageError

        raise UsageError("no archive: stdin is a terminal", hint="use -i FILE or redirect stdin")
    docs = load_images(ctx.obj.roots, input_path if input_path is not None else sys.stdin.buffer,
                       progress=ctx.obj.progress(), signature_policy=signature_policy)
    if not quiet:
        for name in loaded_names(docs):
            sys.stdout.write(f"Loaded image: {name}\n")


def save_command(ctx: typer.Context, refs: list[str] = typer.Argument(..., metavar="IMAGE..."),
                 output: str = typer.Option("-", "--output", "-o", metavar="FILE"),
                 fmt: str = typer.Option("docker-archive", "--format"),
                 multi_image: bool = typer.Option(False, "--multi-image-archive", "-m"),
                 quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Save images to a docker-archive (default) or oci-archive.

    \b
    Example:
      pod save -o busybox.tar busybox
    """
    from podkit_storage import save_images

    save_images(ctx.obj.roots, refs, _sink(output), fmt=fmt, multi_image=multi_image,
                progress=ctx.obj.progress())


def import_command(ctx: typer.Context, source: str = typer.Argument(..., metavar="FILE|-"),
                   reference: str | None = typer.Argument(None, metavar="[REFERENCE]"),
                   change: list[str] | None = typer.Option(None, "--change", "-c"),
                   message: str | None = typer.Option(None, "--message", "-m"),
                   quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Make an image from a tar of a filesystem; prints its id like podman import.

    \b
    Example:
      pod import rootfs.tar localhost/myimage:1
    """
    from podkit_storage import import_tarball

    doc = import_tarball(ctx.obj.roots, sys.stdin.buffer if source == "-" else source,
                         reference, changes=change or [], message=message,
                         progress=ctx.obj.progress())
    sys.stdout.write(f"sha256:{doc['image']['id']}\n")


def export_command(ctx: typer.Context, ref: str = typer.Argument(..., metavar="CONTAINER"),
                   output: str = typer.Option("-", "--output", "-o", metavar="FILE")) -> None:
    """Export a container's filesystem as a tar.

    \b
    Example:
      pod export -o web.tar web
    """
    from podkit_storage import export_container

    export_container(ctx.obj.roots, ref, _sink(output), progress=ctx.obj.progress())


def add_images_io_commands(app: typer.Typer) -> None:
    """Register load, save, import and export on the pod app."""
    app.command("load")(load_command)
    app.command("save")(save_command)
    app.command("import")(import_command)
    app.command("export")(export_command)
