"""The typer glue every podkit executable shares.

A tool builds its app with :func:`make_app`, declares commands that read a document,
call one library function and :func:`emit` the result, and hands control to
:func:`run_app`, which turns every failure into the JSON error envelope and the
documented exit code. This is the only podkit_common module that imports typer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer

from podkit_common import errors
from podkit_common.jsonio import dumps, read_document, write_document, write_lines
from podkit_common.progress import MODES, Progress
from podkit_common.roots import Roots, resolve_roots

#: Global options that may also be written after the subcommand; value-taking ones first.
_GLOBAL_WITH_VALUE = ("--root", "--runroot", "--progress")
_GLOBAL_FLAGS = ("--quiet", "-q")


@dataclass
class Globals:
    """What the global options resolved to; commands find it as ``ctx.obj``."""

    tool: str
    root: str | None = None
    runroot: str | None = None
    progress_mode: str = "auto"
    quiet: bool = False
    _roots: Roots | None = field(default=None, repr=False)

    @property
    def roots(self) -> Roots:
        if self._roots is None:
            self._roots = resolve_roots(self.root, self.runroot)
        return self._roots

    def progress(self) -> Progress:
        return Progress(self.tool, "none" if self.quiet else self.progress_mode)


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

    @app.command("schema")
    def _schema(name: str | None = typer.Argument(None, help="schema $id or short name")) -> None:
        """Print this tool's JSON Schemas (all of them, or the one named)."""
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


def read_input(path: str | None = "-") -> dict[str, Any]:
    """Read the input document (stdin by default)."""
    return read_document(path)


def emit(doc: Any) -> None:
    """Write the one output document to stdout."""
    write_document(doc)


def emit_lines(docs: Any) -> None:
    """Write one document per line (listings)."""
    write_lines(docs)


def _rewrite_argv(argv: list[str], commands: set[str], default_command: str | None,
                  positional_ends_options: set[str]) -> list[str]:
    """Insert the default command where none is given, and move global options that
    follow the subcommand in front of it (``pod-storage create --root X`` works like
    podman's persistent flags). Arguments after ``--`` are never touched."""
    head: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_WITH_VALUE and i + 1 < len(argv):
            head += argv[i:i + 2]
            i += 2
        elif a.startswith(tuple(o + "=" for o in _GLOBAL_WITH_VALUE)) or a in _GLOBAL_FLAGS:
            head.append(a)
            i += 1
        else:
            break
    rest = argv[i:]
    if not rest or rest[0] in ("--help", "--version", "-h"):
        return argv
    if rest[0] not in commands:
        if default_command is None:
            return argv
        rest = [default_command, *rest]
    cmd, tail = rest[0], rest[1:]
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(tail):
        a = tail[j]
        if a == "--":
            kept += tail[j:]
            break
        if a in _GLOBAL_WITH_VALUE and j + 1 < len(tail):
            moved += tail[j:j + 2]
            j += 2
            continue
        if a.startswith(tuple(o + "=" for o in _GLOBAL_WITH_VALUE)) or a in _GLOBAL_FLAGS:
            moved.append(a)
            j += 1
            continue
        if not a.startswith("-") and cmd in positional_ends_options:
            kept += tail[j:]
            break
        kept.append(a)
        j += 1
    return [*head, *moved, cmd, *kept]


def fail(tool: str, exc: BaseException) -> int:
    """Write the error envelope for ``exc`` on stderr; return the exit code."""
    if os.environ.get("PODKIT_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)
    try:
        sys.stderr.write(dumps(errors.envelope(tool, exc)).decode() + "\n")
        sys.stderr.flush()
    except OSError:
        pass
    return errors.exit_code_of(exc)


def normalize_bool_flags(argv: list[str], flags: Sequence[str]) -> list[str]:
    """Accept podman's ``--tls-verify=false`` spelling for typer's ``--no-tls-verify``."""
    out = []
    for a in argv:
        if a == "--":
            out += argv[len(out):]
            break
        name, eq, value = a.partition("=")
        if eq and name.startswith("--") and name[2:] in flags:
            if value.lower() in ("false", "0", "no"):
                out.append(f"--no-{name[2:]}")
                continue
            if value.lower() in ("true", "1", "yes"):
                out.append(name)
                continue
        out.append(a)
    return out


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
    failure: BaseException | None = None
    try:
        result = command.main(args=args, prog_name=tool, standalone_mode=False)
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:
        failure = errors.UsageError(exc.format_message())
        fail(tool, failure)
        code = getattr(exc, "exit_code", 2) or 2
    except (KeyboardInterrupt, typer.Abort):
        failure = errors.PodkitError("interrupted", hint="")
        fail(tool, failure)
        code = errors.EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); that is not an error worth a traceback.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except Exception as exc:
        failure = exc
        code = fail(tool, exc)
    if failure is not None and error_code is not None:
        code = error_code(failure, code)
    sys.exit(code)


def binary_output(output: str):  # -> str | BinaryIO
    """Where a command writes a tar: the FILE itself, or our stdout for "-" (refused
    when stdout is a terminal, as podman does)."""
    if output != "-":
        return output
    if sys.stdout.isatty():
        raise errors.UsageError("refusing to write a tar to a terminal",
                                hint="use -o FILE or redirect stdout")
    return sys.stdout.buffer


def sibling_executable(name: str, env_var: str | None = None) -> str:
    """The absolute path of podkit's executable ``name`` (conmon's exit commands): $env_var,
    else next to this interpreter, else on PATH."""
    import shutil
    from pathlib import Path

    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    sibling = Path(sys.executable).parent / name
    if sibling.exists():
        return str(sibling)
    found = shutil.which(name)
    if not found:
        raise errors.NotFound(f"{name} not found for conmon's exit command",
                              hint="install podkit" + (f" or set {env_var}" if env_var else ""))
    return os.path.abspath(found)
