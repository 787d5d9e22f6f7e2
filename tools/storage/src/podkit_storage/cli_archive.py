"""Moving images and filesystems in and out of the store, like podman's:

    pod-storage save [-o FILE|-] [--format docker-archive|oci-archive] [-m] IMAGE...
    pod-storage export [-o FILE|-] CONTAINER
    pod-storage import-tarball [--change INSTR=VALUE]... [--message TEXT] FILE|- [REFERENCE]

``save`` and ``export`` write to FILE atomically and print one document (``archive`` or
``export``); with ``-o -`` (the default, as in podman) the tar itself goes to stdout and
no document is printed at all, as ``podman save`` and ``tar -cf -`` do: the exit status
says whether it worked, errors still go to stderr. Both refuse to write a tar to a
terminal. Loading an archive is a pipeline of stages that verifies every digest:
``pod-image-pull docker-archive:FILE | pod-storage import`` (``pod load`` does it for
every image of the archive). ``import-tarball`` prints the stored-image document, like
``import``.
"""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import binary_output, emit

_OUTPUT = typer.Option("-", "--output", "-o", metavar="FILE|-",
                       help="where to write the tar (default: stdout, never a terminal)")


_sink = binary_output


def save_command(ctx: typer.Context,
                 refs: list[str] = typer.Argument(..., metavar="IMAGE..."),
                 output: str = _OUTPUT,
                 fmt: str = typer.Option("docker-archive", "--format",
                                         metavar="docker-archive|oci-archive"),
                 multi_image: bool = typer.Option(
                     False, "--multi-image-archive", "-m",
                     help="every IMAGE is an image of the (docker) archive; without it "
                          "further names are more tags of the first image")) -> None:
    """Write images from the store to a docker-archive or oci-archive (same ids)."""
    from podkit_storage._archive_save import save_images

    sink = _sink(output)
    doc = save_images(ctx.obj.roots, refs, sink, fmt=fmt, multi_image=multi_image,
                      progress=ctx.obj.progress())
    if isinstance(sink, str):
        emit(doc)


def export_command(ctx: typer.Context,
                   ref: str = typer.Argument(..., metavar="CONTAINER",
                                             help="container id or name"),
                   output: str = _OUTPUT) -> None:
    """Write a container's filesystem as a tar (owners, modes, links, devices, xattrs)."""
    from podkit_storage._export import export_container

    sink = _sink(output)
    doc = export_container(ctx.obj.roots, ref, sink, progress=ctx.obj.progress())
    if isinstance(sink, str):
        emit(doc)


def import_tarball_command(
        ctx: typer.Context,
        source: str = typer.Argument(..., metavar="FILE|-",
                                     help="a tar (plain, gzip, zstd, bzip2, xz); - for stdin"),
        reference: str | None = typer.Argument(None, metavar="[REFERENCE]",
                                               help="name for the image (localhost/NAME:latest)"),
        change: list[str] | None = typer.Option(None, "--change", "-c",
                                                metavar="INSTR=VALUE",
                                                help="CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
                                                     "STOPSIGNAL, USER, VOLUME, WORKDIR"),
        message: str | None = typer.Option(None, "--message", "-m",
                                           help="the history comment")) -> None:
    """Make a one-layer image from a tar of a filesystem, like podman import."""
    from podkit_storage._import_tarball import import_tarball

    emit(import_tarball(ctx.obj.roots, sys.stdin.buffer if source == "-" else source,
                        reference, changes=change or [], message=message,
                        progress=ctx.obj.progress()))


def add_archive_commands(app: typer.Typer) -> None:
    """Register save, export and import-tarball on the pod-storage app."""
    app.command("save")(save_command)
    app.command("export")(export_command)
    app.command("import-tarball")(import_tarball_command)
