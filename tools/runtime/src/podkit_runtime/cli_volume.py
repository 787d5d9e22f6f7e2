"""``pod-runtime volume``: named volumes like ``podman volume`` (thin typer glue).

    pod-runtime volume create [NAME] [--label K=V] [--ignore]  -> {"changed", "volume"}
    pod-runtime volume inspect NAME                           -> {"changed": false, "volume"}
    pod-runtime volume ls                                     -> one volume per line
    pod-runtime volume rm NAME... [--force]                   -> {"changed", "removed"}
    pod-runtime volume prune                                  -> {"changed", "removed"}
    pod-runtime volume exists NAME      exit 0 if it exists, 1 if not (like podman)
"""

from __future__ import annotations

import typer

from podkit_common.cli import emit, emit_lines

app = typer.Typer(name="volume", help="Manage named volumes (<root>/volumes/NAME/_data).",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _labels(items: list[str] | None) -> dict[str, str]:
    from podkit_common.keyvalues import key_values

    return key_values(items, "--label")


@app.command()
def create(ctx: typer.Context, name: str | None = typer.Argument(None),
           label: list[str] | None = typer.Option(None, "--label", "-l", help="KEY=VALUE"),
           ignore: bool = typer.Option(False, "--ignore",
                                       help="no error if the volume exists")) -> None:
    """Create a volume (a random name when none is given)."""
    from podkit_runtime._volumes import create_volume

    rec, made = create_volume(ctx.obj.roots, name, labels=_labels(label), ignore=ignore)
    emit({"changed": made, "volume": rec})


@app.command()
def inspect(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Print a volume's record."""
    from podkit_runtime._volumes import inspect_volume

    emit({"changed": False, "volume": inspect_volume(ctx.obj.roots, name)})


@app.command("ls")
def ls(ctx: typer.Context) -> None:
    """List volumes, one JSON record per line."""
    from podkit_runtime._volumes import list_volumes

    emit_lines(list_volumes(ctx.obj.roots))


@app.command()
def rm(ctx: typer.Context, names: list[str] = typer.Argument(...),
       force: bool = typer.Option(False, "--force", "-f",
                                  help="remove even if containers use it")) -> None:
    """Remove volumes; one in use is refused unless --force."""
    from podkit_runtime._volumes import remove_volume

    removed = []
    for name in names:
        remove_volume(ctx.obj.roots, name, force=force)
        removed.append(name)
    emit({"changed": bool(removed), "removed": removed})


@app.command()
def prune(ctx: typer.Context,
          force: bool = typer.Option(False, "--force", "-f", help="accepted like podman")) -> None:
    """Remove every volume no container uses."""
    from podkit_runtime._volumes import prune_volumes

    removed = prune_volumes(ctx.obj.roots)
    emit({"changed": bool(removed), "removed": removed})


@app.command()
def exists(ctx: typer.Context, name: str = typer.Argument(...)) -> int:
    """Exit 0 if the volume exists, 1 if not (podman's convention)."""
    from podkit_runtime._volumes import volume_exists

    found = volume_exists(ctx.obj.roots, name)
    emit({"changed": False, "name": name, "exists": found})
    return 0 if found else 1
