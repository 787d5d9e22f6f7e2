"""Build a typer app's click command with each subcommand made on first use.

``typer.main.get_command`` inspects the signature and type hints of every registered
command on every start (~60 ms for pod's ~30 commands), although one invocation runs
one command. :func:`lazy_group` builds the group and its global options only; the
group's ``commands`` mapping knows every name up front (so ``--help``, suggestions and
argv rewriting see them all) and builds a command the first time it is looked up.
"""

from __future__ import annotations

from collections.abc import MutableMapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any


class LazyCommands(MutableMapping):
    """Command name -> click command, each built by its factory on first access."""

    def __init__(self, factories: dict[str, Callable[[], Any]]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            factory = self._factories[name]  # KeyError for an unknown name, like a dict
            self._built[name] = factory()
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._factories.pop(name, None)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        found = self._factories.pop(name, None) is not None
        found = self._built.pop(name, None) is not None or found
        if not found:
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._factories, *self._built]))

    def __len__(self) -> int:
        return len(set(self._factories) | set(self._built))

    def __contains__(self, name: object) -> bool:
        return name in self._factories or name in self._built


def lazy_group(app: Any) -> Any:
    """The click command of typer ``app``, its subcommands built lazily.

    Falls back to ``typer.main.get_command`` for shapes this does not cover (no group
    callback, shell completion options, ``add_typer`` without a name)."""
    import typer.main as tm

    groups_named = all(_group_name(g) for g in app.registered_groups)
    if not (app.registered_callback and groups_named) or app._add_completion:
        return tm.get_command(app)
    commands, groups = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = [], []
    try:
        group = tm.get_group(app)  # only the callback's (global) options are built here
    finally:
        app.registered_commands, app.registered_groups = commands, groups
    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    factories: dict[str, Callable[[], Any]] = {}
    for info in commands:
        name = info.name or tm.get_command_name(info.callback.__name__)
        factories[name] = _command_factory(tm, info, short, markup)
    for info in groups:
        factories[_group_name(info)] = _group_factory(tm, info, short, markup,
                                                      app.suggest_commands)
    group.commands = LazyCommands(factories)
    return group


def _group_name(info: Any) -> str | None:
    import typer.main as tm

    return tm.solve_typer_info_defaults(info).name or None


def _command_factory(tm: Any, info: Any, short: bool, markup: Any) -> Callable[[], Any]:
    return lambda: tm.get_command_from_info(info, pretty_exceptions_short=short,
                                            rich_markup_mode=markup)


def _group_factory(tm: Any, info: Any, short: bool, markup: Any,
                   suggest: bool) -> Callable[[], Any]:
    return lambda: tm.get_group_from_info(info, pretty_exceptions_short=short,
                                          rich_markup_mode=markup, suggest_commands=suggest)
