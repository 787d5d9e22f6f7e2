"""A typer-free argv parser for a tool's hot commands, driven by a spec generated from
the typer app (:mod:`podkit_common.argspec`), so typer stays the one declaration.

Importing typer and building a command costs ~100 ms per start; ``pod run`` pays it on
every container. This parser reads the committed spec (JSON) instead and produces the
same keyword arguments typer would pass the command. It answers only what it fully
understands: on any doubt (an unknown option, ``--help``, a missing value, a value that
does not convert, shell completion) :func:`parse` returns None and the caller runs the
normal typer path, so help, completion and every usage error still come from typer.

Spec shape (one command)::

    {"interspersed": false,                       # false: the first positional ends options
     "options": {"--name": ["name", "value", "str"], "-e": ["env", "multi", "str"],
                 "--rm": ["rm", "const", true], "--no-tls-verify": ["tls_verify", "const", false]},
     "arguments": [["image", 1, true], ["command", -1, false]],   # [dest, nargs, required]
     "defaults": {"name": null, "env": null, "rm": false, ...}}  # what typer passes

An option is ``[dest, kind, type]`` (kind ``value``, ``multi`` or ``const``; type ``str``,
``int``, or ``typer`` for one this parser leaves to typer) or ``[dest, "const", VALUE]``.
:class:`FastPath` bundles a tool's spec file with the bodies of its fast commands. A
group's verb is a command named by both words (``"pod create"``: the ``create`` of the
``pod`` sub-app), so ``pod pod create ...`` takes the fast path too.
"""

from __future__ import annotations

import os

from podkit_common.cli_base import GLOBAL_FLAGS, GLOBAL_WITH_VALUE, Globals
from podkit_common.progress import MODES as PROGRESS_MODES

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


class Parsed:
    """A command line the fast path understood: the command, the global options and the
    command's keyword arguments exactly as typer would pass them (without ``ctx``).
    (Plain classes here: a dataclass costs ~1 ms of every start to build.)"""

    __slots__ = ("command", "globals", "params")

    def __init__(self, command: str, globals: Globals, params: dict[str, Any]) -> None:
        self.command, self.globals, self.params = command, globals, params


def completion_requested() -> bool:
    """Shell completion (click's ``_<PROG>_COMPLETE``, typer's ``_TYPER_COMPLETE_*``)."""
    return any((k.startswith("_") and k.endswith("_COMPLETE"))
               or k.startswith("_TYPER_COMPLETE") for k in os.environ)


def parse(spec: dict[str, Any], tool: str, argv: list[str]) -> Parsed | None:
    """``argv`` (after podkit_common.cli_base.rewrite_argv: global options first, then
    the command) parsed with ``spec``; None whenever typer should handle it."""
    if completion_requested():
        return None
    glob = Globals(tool=tool)
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, value = a.partition("=")
        if a in GLOBAL_FLAGS:
            glob.quiet = True
            i += 1
            continue
        if name in GLOBAL_WITH_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                value, i = argv[i + 1], i + 1
            setattr(glob, "progress_mode" if name == "--progress" else name[2:], value)
            i += 1
            continue
        break
    if glob.progress_mode not in PROGRESS_MODES or i >= len(argv):
        return None
    name = argv[i]
    if i + 1 < len(argv) and f"{name} {argv[i + 1]}" in spec["commands"]:
        name, i = f"{name} {argv[i + 1]}", i + 1  # a group's verb: "pod create"
    command = spec["commands"].get(name)
    if command is None:
        return None
    params = _parse_command(command, argv[i + 1:])
    return None if params is None else Parsed(name, glob, params)


def _parse_command(cmd: dict[str, Any], args: list[str]) -> dict[str, Any] | None:
    options: dict[str, list[Any]] = cmd["options"]
    given: dict[str, Any] = {}
    positionals: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            positionals += args[i:]
            break
        if a[:1] != "-" or a == "-":
            positionals.append(a)
            if not cmd["interspersed"]:
                positionals += args[i:]
                break
            continue
        if a.startswith("--"):
            name, eq, inline = a.partition("=")
            decl = options.get(name)
            if decl is None:
                return None  # unknown, --help, a typo: typer explains
            if decl[1] == "const":
                if eq:
                    return None
                given[decl[0]] = decl[2]
                continue
            if not eq:
                if i >= len(args):
                    return None
                inline, i = args[i], i + 1
            if not _store(given, decl, inline):
                return None
            continue
        # A group of short options (-it, -eFOO, -e FOO): click's rules.
        j = 1
        while j < len(a):
            decl = options.get("-" + a[j])
            if decl is None:
                return None
            j += 1
            if decl[1] == "const":
                given[decl[0]] = decl[2]
                continue
            if j < len(a):
                value = a[j:]
            elif i < len(args):
                value, i = args[i], i + 1
            else:
                return None
            if not _store(given, decl, value):
                return None
            break
    if not _assign_arguments(cmd["arguments"], positionals, given):
        return None
    return {**cmd["defaults"], **given}


def _store(given: dict[str, Any], decl: list[Any], raw: str) -> bool:
    dest, kind, typ = decl
    if typ == "int":
        try:
            value: Any = int(raw)
        except ValueError:
            return False
    elif typ == "str":
        value = raw
    else:
        return False  # a type the spec does not describe: typer converts it
    if kind == "multi":
        given.setdefault(dest, []).append(value)
    else:
        given[dest] = value
    return True


def _assign_arguments(arguments: list[list[Any]], positionals: list[str],
                      given: dict[str, Any]) -> bool:
    rest = list(positionals)
    for dest, nargs, required in arguments:
        if nargs == -1:
            if rest:
                given[dest] = rest
            elif required:
                return False
            rest = []
        else:
            if not rest:
                if required:
                    return False
                continue
            given[dest] = rest.pop(0)
    return not rest


if TYPE_CHECKING:
    Body = Callable[[Globals, dict[str, Any]], Any]


class FastPath:
    """A tool's fast path: its spec file, the bodies of the commands it describes, and
    the argv rewriting its typer path does (run_app's ``bool_flags`` and
    ``positional_ends_options``; the tool's ``main`` passes these same values)."""

    def __init__(self, tool: str, spec_file: str, bodies: Mapping[str, Body], *,
                 bool_flags: tuple[str, ...] = (),
                 positional_ends_options: tuple[str, ...] = (),
                 error_code: Callable[[BaseException, int], int] | None = None) -> None:
        self.tool, self.spec_file, self.bodies = tool, spec_file, bodies
        self.bool_flags, self.positional_ends_options = bool_flags, positional_ends_options
        self.error_code = error_code

    def spec(self) -> dict[str, Any]:
        from podkit_common.jsonio import loads

        with open(self.spec_file, "rb") as fh:
            return loads(fh.read(), what=self.spec_file)

    def parse(self, argv: list[str]) -> Parsed | None:
        """The fast parse of ``argv``, or None (typer's turn)."""
        from podkit_common.cli_base import normalize_bool_flags, rewrite_argv

        spec = self.spec()
        args = normalize_bool_flags(list(argv), self.bool_flags)
        args = rewrite_argv(args, {c.split(" ")[0] for c in spec["commands"]}, None,
                            set(self.positional_ends_options))
        return parse(spec, self.tool, args)

    def main(self, argv: list[str]) -> int | None:
        """Run ``argv`` and return the exit code; None when typer should run it."""
        parsed = self.parse(argv)
        if parsed is None or parsed.command not in self.bodies:
            return None
        from podkit_common.cli_base import run_guarded

        body = self.bodies[parsed.command]
        return run_guarded(self.tool, lambda: body(parsed.globals, parsed.params),
                           error_code=self.error_code)
