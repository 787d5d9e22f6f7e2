"""Generate the fast-path spec (:mod:`podkit_common.fastargs`) of a typer app's hot
commands, from the typer declarations themselves, so the two cannot disagree.

    python -m podkit_common.argspec podkit_pod.cli:app run create ps start > _argspec.json

The spec is committed next to the app; a test regenerates it and compares, so a changed
declaration without a regenerated spec fails the suite. :func:`typer_params` runs
typer's own parse of a command line and returns the keyword arguments it would pass,
which is how the spec's defaults are taken and how tests compare the two parsers.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
import typing

import typer
import typer.main as tm
from typer import _click as click

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any


class UnsupportedCommand(ValueError):
    """The command declares something the fast parser does not reproduce."""


def _info(app: typer.Typer, name: str) -> Any:
    group, _, verb = name.partition(" ")
    if verb:  # a group's command, "pod create": its sub-app's
        for sub in app.registered_groups:
            if sub.name == group and sub.typer_instance is not None:
                return _info(sub.typer_instance, verb)
        raise KeyError(f"no group {group!r} in the app")
    for info in app.registered_commands:
        if (info.name or tm.get_command_name(info.callback.__name__)) == name:
            return info
    raise KeyError(f"no command {name!r} in the app")


def _click_command(info: Any) -> Any:
    return tm.get_command_from_info(info, pretty_exceptions_short=True, rich_markup_mode=None)


def typer_params(app: typer.Typer, name: str, args: list[str]) -> dict[str, Any]:
    """The keyword arguments (``ctx`` left out) typer passes command ``name`` for
    ``args``; typer's exceptions propagate for a command line it refuses."""
    info = _info(app, name)
    real = info.callback
    captured: dict[str, Any] = {}

    def capture(**kwargs: Any) -> None:
        captured.update(kwargs)

    capture.__signature__ = inspect.signature(real, eval_str=True)  # type: ignore[attr-defined]
    capture.__annotations__ = typing.get_type_hints(real, include_extras=True)
    stand_in = copy.copy(info)
    stand_in.callback = capture
    command = _click_command(stand_in)
    with command.make_context(name, list(args)) as ctx:
        command.invoke(ctx)
    return {k: v for k, v in captured.items() if not isinstance(v, click.Context)}


def _option_kind(p: Any) -> list[Any] | None:
    if isinstance(p.type, click.types.IntParamType) and type(p.type) is click.types.IntParamType:
        return ["int"]
    if type(p.type) is click.types.StringParamType:
        return ["str"]
    return None


def command_spec(app: typer.Typer, name: str) -> dict[str, Any]:
    """The spec of one command (see podkit_common.fastargs for its shape)."""
    info = _info(app, name)
    command = _click_command(info)
    options: dict[str, list[Any]] = {}
    arguments: list[list[Any]] = []
    placeholders: list[str] = []
    for p in command.params:
        if p.callback is not None or p.is_eager or p.envvar or getattr(p, "prompt", None):
            raise UnsupportedCommand(f"{name}: {p.name} has a callback, envvar or prompt")
        if p.param_type_name == "argument":
            kind = _option_kind(p)
            if kind is None or p.nargs not in (1, -1):
                raise UnsupportedCommand(f"{name}: argument {p.name} of type {p.type}")
            arguments.append([p.name, p.nargs, bool(p.required)])
            if p.required:
                placeholders.append("x")
            continue
        if p.count or p.nargs != 1:
            raise UnsupportedCommand(f"{name}: option {p.name} (count, nargs)")
        if p.is_flag:  # typer's: --x (True), and --no-x (False) for a bool pair
            for opt in p.opts:
                options[opt] = [p.name, "const", True]
            for opt in p.secondary_opts:
                options[opt] = [p.name, "const", False]
            continue
        kind = _option_kind(p)
        for opt in p.opts:
            # An option of a type the spec does not describe stays typer's: the fast
            # parser gives up when it meets it.
            options[opt] = [p.name, "multi" if p.multiple else "value",
                            kind[0] if kind else "typer"]
    defaults = typer_params(app, name, placeholders)
    for dest, _nargs, required in arguments:
        if required:
            defaults.pop(dest, None)
    interspersed = (info.context_settings or {}).get("allow_interspersed_args", True)
    return {"interspersed": bool(interspersed), "options": dict(sorted(options.items())),
            "arguments": arguments, "defaults": defaults}


def app_spec(app: typer.Typer, tool: str, commands: list[str]) -> dict[str, Any]:
    """The spec of ``commands`` of ``app``."""
    return {"tool": tool,
            "generated_by": "python -m podkit_common.argspec MODULE:APP COMMAND...",
            "commands": {name: command_spec(app, name) for name in commands}}


def render(spec: dict[str, Any]) -> str:
    """The committed file's text (stable: sorted keys, 1 command option per line)."""
    import json

    return json.dumps(spec, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    target, *commands = argv
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr or "app")
    tool = app.info.name or module.split(".")[0]
    sys.stdout.write(render(app_spec(app, tool, commands)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
