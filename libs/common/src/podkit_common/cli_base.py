"""The typer-free half of the CLI glue: global options, argv rewriting, the error
envelope and exit codes, and the paths commands write to.

:mod:`podkit_common.cli` (typer) and :mod:`podkit_common.fastargs` (the fast argv path
of hot commands) both build on this module, so a command behaves the same whichever
parser read its command line. Library code that needs a CLI fact (the path of a sibling
executable for conmon's exit command) imports it from here, never from ``cli``: that
would load typer on the container's run path.
"""

from __future__ import annotations

import os
import sys

from podkit_common import errors
from podkit_common.progress import Progress

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from podkit_common.roots import Roots

#: Global options that may also be written after the subcommand; value-taking ones first.
GLOBAL_WITH_VALUE = ("--root", "--runroot", "--progress")
GLOBAL_FLAGS = ("--quiet", "-q")


class Globals:
    """What the global options resolved to; commands find it as ``ctx.obj``. (A plain
    class: building a dataclass costs ~1 ms of every start.)"""

    def __init__(self, tool: str, root: str | None = None, runroot: str | None = None,
                 progress_mode: str = "auto", quiet: bool = False) -> None:
        self.tool, self.root, self.runroot = tool, root, runroot
        self.progress_mode, self.quiet = progress_mode, quiet
        self._roots: Roots | None = None

    def __repr__(self) -> str:
        return (f"Globals(tool={self.tool!r}, root={self.root!r}, runroot={self.runroot!r}, "
                f"progress_mode={self.progress_mode!r}, quiet={self.quiet!r})")

    @property
    def roots(self) -> Roots:
        if self._roots is None:
            # pathlib (and re, enum, urllib.parse) only when a command needs its roots:
            # `pod --version` does not
            from podkit_common.roots import make_private, resolve_roots

            self._roots = resolve_roots(self.root, self.runroot)
            make_private(self._roots)  # 0700: see podkit_common.roots
        return self._roots

    def progress(self) -> Progress:
        return Progress(self.tool, "none" if self.quiet else self.progress_mode)


def rewrite_argv(argv: list[str], commands: set[str], default_command: str | None,
                 positional_ends_options: set[str]) -> list[str]:
    """Insert the default command where none is given, and move global options that
    follow the subcommand in front of it (``pod-storage create --root X`` works like
    podman's persistent flags). Arguments after ``--`` are never touched."""
    head: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            head += argv[i:i + 2]
            i += 2
        elif a.startswith(tuple(o + "=" for o in GLOBAL_WITH_VALUE)) or a in GLOBAL_FLAGS:
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
    ends = cmd in positional_ends_options
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(tail):
        a = tail[j]
        if a == "--":
            kept += tail[j:]
            break
        if a in GLOBAL_WITH_VALUE and j + 1 < len(tail):
            moved += tail[j:j + 2]
            j += 2
            continue
        if a.startswith(tuple(o + "=" for o in GLOBAL_WITH_VALUE)) or a in GLOBAL_FLAGS:
            moved.append(a)
            j += 1
            continue
        if not a.startswith("-") and ends:
            kept += tail[j:]
            break
        if not a.startswith("-") and f"{cmd} {a}" in positional_ends_options:
            ends = True  # a group's verb ("container run"): its first positional ends them
        kept.append(a)
        j += 1
    return [*head, *moved, cmd, *kept]


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


def fail(tool: str, exc: BaseException) -> int:
    """Write the error envelope for ``exc`` on stderr; return the exit code."""
    if os.environ.get("PODKIT_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    try:
        from podkit_common.jsonio import dumps

        sys.stderr.write(dumps(errors.envelope(tool, exc)).decode() + "\n")
        sys.stderr.flush()
    except OSError:
        pass
    return errors.exit_code_of(exc)


#: (exit code, failure or None) for an exception a parser owns (typer's Exit, usage
#: errors), or None to treat it as any other failure.
if TYPE_CHECKING:
    Translate = Callable[[BaseException], "tuple[int, BaseException | None] | None"]


def run_guarded(tool: str, call: Callable[[], Any], *,
                error_code: Callable[[BaseException, int], int] | None = None,
                translate: Translate | None = None) -> int:
    """Run a command body; its exit code: 0, its own int result, or the error's code
    (the error envelope written on stderr). ``error_code`` remaps the codes of failures
    (``pod``: podman's 125); ``translate`` handles a parser's own exceptions first."""
    failure: BaseException | None = None
    try:
        result = call()
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    except KeyboardInterrupt:
        failure = errors.PodkitError("interrupted", hint="")
        fail(tool, failure)
        code = errors.EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); that is not an error worth a traceback.
        import contextlib

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except Exception as exc:
        translated = translate(exc) if translate is not None else None
        if translated is None:
            failure = _disk_full(exc)
            code = fail(tool, failure)
        else:
            code, failure = translated
    if failure is not None and error_code is not None:
        code = error_code(failure, code)
    return code


def _disk_full(exc: Exception) -> Exception:
    """A full disk can strike at any write, deep in any library: it is the user's to
    act on (exit 11), never an internal error."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        failure = errors.from_os_error(exc, "write")
        failure.__cause__ = exc  # PODKIT_DEBUG's traceback shows where
        return failure
    return exc


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
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    sibling = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(sibling):
        return sibling
    import shutil

    found = shutil.which(name)
    if not found:
        raise errors.NotFound(f"{name} not found for conmon's exit command",
                              hint="install podkit" + (f" or set {env_var}" if env_var else ""))
    return os.path.abspath(found)


def exit_now(code: int) -> None:
    """End a finished command as ``sys.exit(code)`` would, without the interpreter's
    teardown: freeing every module's objects and the final collections cost ~20 ms of
    each `pod run` here (measured: wall time less the last trace mark), for nothing the
    process still needs. What a normal exit does that matters is kept, in its order:
    non-daemon threads joined, atexit handlers run, stdout and stderr flushed (a failed
    flush of stdout exits 120, as Python's own exit does)."""
    threading = sys.modules.get("threading")
    if threading is not None:
        current = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not current and not thread.daemon:
                thread.join()
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 120
    try:  # noqa: SIM105 (contextlib is not loaded on every path that ends here)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
