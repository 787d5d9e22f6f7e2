"""``pod volume``: podman's volume commands over podkit_runtime's volume store. Output
is podman's: names on stdout, ``ls`` a table (or ``--format json``), ``inspect`` a JSON
array, ``exists`` only an exit code (0 yes, 1 no)."""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import emit

app = typer.Typer(name="volume", help="Manage volumes like podman volume.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)


@app.command()
def create(ctx: typer.Context, name: str | None = typer.Argument(None),
           label: list[str] | None = typer.Option(None, "--label", "-l", help="KEY=VALUE"),
           ignore: bool = typer.Option(False, "--ignore")) -> None:
    """Create a volume; prints its name.

    Examples:

    \b
        pod volume create data
        pod volume create --label app=web data
    """
    from podkit_common.keyvalues import key_values
    from podkit_runtime import create_volume

    labels = key_values(label, "--label")
    rec, _ = create_volume(ctx.obj.roots, name, labels=labels, ignore=ignore)
    sys.stdout.write(rec["Name"] + "\n")


@app.command("ls")
def ls(ctx: typer.Context,
       fmt: str = typer.Option("table", "--format", help="table|json|names")) -> None:
    """List volumes (pod's -q is its global --quiet: use --format names).

    Examples:

    \b
        pod volume ls
        pod volume ls --format json
    """
    from podkit_runtime import list_volumes

    records = list_volumes(ctx.obj.roots)
    if fmt == "json":
        emit(records)
    elif fmt == "names":
        sys.stdout.write("".join(r["Name"] + "\n" for r in records))
    else:
        sys.stdout.write(f"{'DRIVER':<10} VOLUME NAME\n")
        sys.stdout.write("".join(f"{r['Driver']:<10} {r['Name']}\n" for r in records))


@app.command()
def inspect(ctx: typer.Context, names: list[str] = typer.Argument(...)) -> None:
    """Print volumes' records as a JSON array.

    Examples:

    \b
        pod volume inspect data
    """
    from podkit_runtime import inspect_volume

    emit([inspect_volume(ctx.obj.roots, n) for n in names])


@app.command()
def rm(ctx: typer.Context, names: list[str] = typer.Argument(...),
       force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Remove volumes (one in use only with --force); prints each name.

    Examples:

    \b
        pod volume rm data
        pod volume rm -f data
    """
    from podkit_runtime import remove_volume

    for name in names:
        remove_volume(ctx.obj.roots, name, force=force)
        sys.stdout.write(name + "\n")


@app.command()
def prune(ctx: typer.Context, force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Remove every volume no container uses; prints each name.

    Examples:

    \b
        pod volume prune -f
    """
    from podkit_runtime import prune_volumes

    sys.stdout.write("".join(n + "\n" for n in prune_volumes(ctx.obj.roots)))


@app.command()
def exists(ctx: typer.Context, name: str = typer.Argument(...)) -> int:
    """Exit 0 if the volume exists, 1 if not.

    Examples:

    \b
        pod volume exists data && echo there
    """
    from podkit_runtime import volume_exists

    return 0 if volume_exists(ctx.obj.roots, name) else 1
