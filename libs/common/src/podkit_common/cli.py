"""The typer glue every podkit executable shares.

A tool builds its app with :func:`make_app`, declares commands that read a document,
call one library function and :func:`emit` the result, and hands control to
:func:`run_app`, which turns every failure into the JSON error envelope and the
documented exit code. This is the only podkit_common module that imports typer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer

from podkit_common import errors
from podkit_common.cli_base import (  # the typer-free half, shared with fastargs
    Globals,
    binary_output,
    fail,
    normalize_bool_flags,
    run_guarded,
    sibling_executable,
)
from podkit_common.cli_base import rewrite_argv as _rewrite_argv
from podkit_common.jsonio import read_document, write_document, write_lines
from podkit_common.progress import MODES


def make_app(tool: str, version: str, help_text: str,
             schema_packages: Sequence[str]) -> typer.Typer:
    """A typer app with podkit's global options, ``--version`` and a ``schema`` command."""
    app = typer.Typer(name=tool, help=help_text, add_completion=False, no_args_is_help=True,
                      pretty_exceptions_enable=False, rich_markup_mode=None)

    def _version(value: bool) -> None:
        if value:
            sys.stdout.write(f"{tool} version {version}\n")
            raise typer.Exit(0)

    @app.callback()
    def _globals(
        ctx: typer.Context,
        root: str | None = typer.Option(None, "--root", metavar="DIR",
                                        help="persistent state [env PODKIT_ROOT; /var/lib/podkit]"),
        runroot: str | None = typer.Option(None, "--runroot", metavar="DIR",
                                           help="runtime state [env PODKIT_RUNROOT; /run/podkit]"),
        progress: str = typer.Option("auto", "--progress", metavar="MODE",
                                     help="progress on stderr: auto|bar|json|none"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
        _v: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                help="print the version and exit"),
    ) -> None:
        if progress not in MODES:
            raise errors.UsageError(f"--progress must be one of {', '.join(MODES)}")
        ctx.obj = Globals(tool=tool, root=root, runroot=runroot, progress_mode=progress,
                          quiet=quiet)

    @app.command("schema", help="Print this tool's JSON Schemas (all of them, or the one "
                 f"named).\n\nExample: {tool} schema | jq 'keys'")
    def _schema(name: str | None = typer.Argument(None, help="schema $id or short name")) -> None:
        from podkit_common.schemas import SchemaSet

        schemas = SchemaSet(schema_packages)
        if name is None:
            write_document(schemas.schemas, pretty=True)
            return
        try:
            write_document(schemas.schemas[schemas.resolve_name(name)], pretty=True)
        except KeyError:
            raise errors.NotFound(f"no schema named {name!r}",
                                  hint=f"`{tool} schema` lists them all") from None

    return app


def composed(body: Callable[..., Any], *declarations: Callable[..., Any],
             drop: Sequence[str] = (), name: str | None = None,
             doc: str | None = None) -> Callable[..., Any]:
    """A typer callback: ``body(**values)`` under the parameters of ``declarations``
    spliced in order (functions whose signature is all they are for), less ``drop``.
    One declaration of a set of options can so serve several commands and tools
    (pod-runtime bundle, pod run, pod create) with no copied option lists."""
    import functools
    import inspect
    import typing

    params: list[inspect.Parameter] = []
    hints: dict[str, Any] = {}
    for declaration in declarations:
        hints.update(typing.get_type_hints(declaration))
        params += [p for p in inspect.signature(declaration, eval_str=True).parameters.values()
                   if p.name not in drop and p.name not in {q.name for q in params}]

    @functools.wraps(body)
    def command(*args: Any, **values: Any) -> Any:
        return body(*args, **values)

    del command.__wrapped__  # typer must see the composed signature, not body's
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: hints[p.name] for p in params if p.name in hints}
    command.__name__ = command.__qualname__ = name or body.__name__.lstrip("_")
    command.__doc__ = doc if doc is not None else body.__doc__
    return command


def read_input(path: str | None = "-") -> dict[str, Any]:
    """Read the input document (stdin by default)."""
    return read_document(path)


def emit(doc: Any) -> None:
    """Write the one output document to stdout."""
    write_document(doc)


def emit_lines(docs: Any) -> None:
    """Write one document per line (listings)."""
    write_lines(docs)


def run_app(app: typer.Typer, tool: str, *, argv: Sequence[str] | None = None,
            default_command: str | None = None,
            positional_ends_options: Sequence[str] = (),
            bool_flags: Sequence[str] = (),
            error_code: Callable[[BaseException, int], int] | None = None) -> None:
    """Run ``app`` and exit: 0, the command's own int result, or the error's exit code.

    ``error_code`` lets ``pod`` remap codes podman's way (125 for its own errors).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    from podkit_common.lazy_commands import lazy_group

    command = lazy_group(app)  # subcommands built on first use: cheap starts
    names = set(getattr(command, "commands", {}) or {})
    args = normalize_bool_flags(args, bool_flags)
    args = _rewrite_argv(args, names, default_command, set(positional_ends_options))
    sys.exit(run_guarded(tool, lambda: command.main(args=args, prog_name=tool,
                                                    standalone_mode=False),
                         error_code=error_code,
                         translate=lambda exc: _typer_failure(tool, exc)))


def _typer_failure(tool: str, exc: BaseException) -> tuple[int, BaseException | None] | None:
    """typer's own exceptions: its Exit, usage errors (envelope + exit 2), Abort."""
    if isinstance(exc, typer.Exit):
        return exc.exit_code, None
    if isinstance(exc, typer.TyperException):
        failure: BaseException = errors.UsageError(exc.format_message())
        fail(tool, failure)
        return getattr(exc, "exit_code", 2) or 2, failure
    if isinstance(exc, typer.Abort):
        failure = errors.PodkitError("interrupted", hint="")
        fail(tool, failure)
        return errors.EXIT_INTERRUPTED, failure
    return None


__all__ = ["Globals", "binary_output", "emit", "emit_lines", "fail", "make_app",
           "normalize_bool_flags", "read_input", "run_app", "sibling_executable"]
