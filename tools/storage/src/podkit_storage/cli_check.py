"""``pod-storage check [--repair [--prune-orphans]]`` and ``pod-storage reset --force``.

    pod-storage check                      verify layers, images, containers; find leftovers
    pod-storage check --repair             also fix what can be fixed without losing data
    pod-storage check --repair --prune-orphans   and remove layers no image uses
    pod-storage reset --force              unmount and delete everything podkit stored

``check`` prints one document (``schema check``): ``{"changed", "clean", "problems":
[{"kind", "object", "detail", "repairable", "repaired"}]}`` (plus ``"unverified":
[{"object", "reason"}]`` for layers whose content nothing could vouch for) and exits 0 when clean, 6
(VerificationFailed) when content is damaged, else 5 (Conflict) while problems are left.
``reset`` prints ``{"changed", "removed", "unmounted"}`` (``schema reset``).
"""

from __future__ import annotations

import typer

from podkit_common.cli import emit


def check_command(
    ctx: typer.Context,
    repair: bool = typer.Option(False, "--repair",
                                help="fix what can be fixed without destroying good data"),
    prune_orphans: bool = typer.Option(False, "--prune-orphans",
                                       help="with --repair: remove layers no image uses"),
) -> int:
    """Verify every layer, image and container; report (and --repair) leftovers.

    Exit 0 when clean, 6 when content is damaged, 5 when other problems remain.
    """
    from podkit_common.errors import UsageError
    from podkit_storage._check import check_store, exit_code_of

    if prune_orphans and not repair:
        raise UsageError("--prune-orphans only goes with --repair")
    report = check_store(ctx.obj.roots, repair=repair, prune_orphans=prune_orphans)
    emit(report)
    return exit_code_of(report)


def reset_command(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", "-f",
                               help="really delete every image, layer and container"),
) -> None:
    """Unmount and delete everything pod-storage keeps under the root and runroot."""
    from podkit_common.errors import UsageError
    from podkit_storage._reset import reset_store

    if not force:
        raise UsageError("reset deletes every image, layer and container",
                         hint="add --force to do it")
    emit(reset_store(ctx.obj.roots))


def add_check_commands(app: typer.Typer) -> None:
    app.command("check")(check_command)
    app.command("reset")(reset_command)
