"""`pod container ...`: podman's container group. Every subcommand is the very command
registered at the top level (the same typer CommandInfo and callback, under its podman
name), plus `prune`, `exists` and `cleanup`, which podman has only in the group.

The group is filled by :func:`fill_container_group` once every top-level command is
registered (the end of cli.py), so commands other modules add (run, create, ...) are
picked up by name without this module knowing where they live.
"""

from __future__ import annotations

import copy

import typer

#: Group name -> the top-level command it is (podman's `container` subcommands).
MIRRORED = {
    "ls": "ps", "list": "ps", "ps": "ps", "run": "run", "create": "create",
    "start": "start", "stop": "stop", "restart": "restart", "kill": "kill", "rm": "rm",
    "logs": "logs", "exec": "exec", "attach": "attach", "wait": "wait",
    "inspect": "inspect", "pause": "pause", "unpause": "unpause", "top": "top",
    "stats": "stats", "cp": "cp", "diff": "diff", "port": "port", "rename": "rename",
    "export": "export", "mount": "mount", "umount": "umount", "unmount": "umount",
    "init": "init", "commit": "commit", "checkpoint": "checkpoint", "restore": "restore",
}

container_app = typer.Typer(name="container", help="Manage containers like podman container.",
                            no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def command_name(info: typer.models.CommandInfo) -> str:
    """The name a registered command answers to."""
    from typer.main import get_command_name

    return info.name or get_command_name(info.callback.__name__)


def register_alias(target: typer.Typer, info: typer.models.CommandInfo, name: str) -> None:
    """Register one command (the same callback and settings) under another app and name."""
    alias = copy.copy(info)
    alias.name = name
    alias.hidden = info.hidden or name in ("list", "unmount")
    target.registered_commands.append(alias)


def fill_container_group(app: typer.Typer) -> typer.Typer:
    """Put the top-level commands podman also has under `container` into the group."""
    from podkit_pod.cli_container_admin import CONTAINER_ONLY

    if container_app.registered_commands:
        return container_app
    by_name = {command_name(info): info for info in app.registered_commands}
    for name, source in MIRRORED.items():
        if source in by_name:
            register_alias(container_app, by_name[source], name)
    for name, func in CONTAINER_ONLY.items():
        container_app.command(name)(func)
    return container_app
