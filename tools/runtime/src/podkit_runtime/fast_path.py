"""`pod-runtime`'s fast path: conmon's exit command (`cleanup`), which runs after every
container exit, parsed without typer (see podkit_common.fastargs; pod's fast_path has
the same shape). Anything it does not fully understand goes to the typer app.

Regenerate the spec after changing `cleanup`'s options::

    python -m podkit_common.argspec podkit_runtime.cli:app cleanup \\
        > tools/runtime/src/podkit_runtime/_argspec.json
"""

from __future__ import annotations

import os

from podkit_common import deferred

deferred.install()  # before anything imports pathlib: ~7 ms of each start (see there)

from podkit_common.fastargs import FastPath  # noqa: E402

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

TOOL = "pod-runtime"
#: commands whose first positional ends their options (typer's path too: cli.main)
POSITIONAL_ENDS_OPTIONS = ("bundle", "exec")


def _cleanup(obj: Any, params: dict[str, Any]) -> None:
    from podkit_runtime._command_bodies import cleanup_body

    cleanup_body(obj, params)


FAST = FastPath(TOOL, os.path.join(os.path.dirname(__file__), "_argspec.json"),
                {"cleanup": _cleanup}, positional_ends_options=POSITIONAL_ENDS_OPTIONS)


def main() -> None:
    """The console entry point (pyproject.toml): the fast path first, then typer's
    (cli.main) for everything it does not take."""
    import sys

    if sys.argv[1:] == ["--version"]:
        from podkit_common.fast_version import version_line

        sys.stdout.write(version_line(TOOL))
        sys.exit(0)
    code = FAST.main(sys.argv[1:])
    if code is not None:
        from podkit_common.cli_base import exit_now

        exit_now(code)
    from podkit_runtime.cli import main as typer_main

    typer_main()
