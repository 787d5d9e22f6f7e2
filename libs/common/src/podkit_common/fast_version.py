"""Answer ``TOOL --version`` before typer is imported (a stage's cold start is paid in
every pipeline: typer alone costs ~100 ms, the answer ~0).

Each tool's ``cli`` module imports this module first. It acts only when this process
is that tool's console script (``__main__`` is the installed script named like the
tool) and the whole command line is ``--version``; it then prints what typer's
``--version`` prints (podkit_common.cli.make_app) and exits. Importing it anywhere else
does nothing.
"""

from __future__ import annotations

import os
import sys


def is_console_script(tool: str) -> bool:
    """Whether this process is the installed ``tool`` script (not a test importing it)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return (os.path.basename(main_file) == tool and bool(sys.argv)
            and os.path.basename(sys.argv[0]) == tool)


def package_of(tool: str) -> str:
    """``pod-image-pull`` -> ``podkit_image_pull``; ``pod`` -> ``podkit_pod``."""
    return "podkit_pod" if tool == "pod" else "podkit_" + tool[4:].replace("-", "_")


def version_line(tool: str) -> str:
    import importlib

    return f"{tool} version {importlib.import_module(package_of(tool)).__version__}\n"


def _answer_version() -> None:
    tool = os.path.basename(sys.argv[0]) if sys.argv else ""
    if sys.argv[1:] == ["--version"] and tool.startswith("pod") and is_console_script(tool):
        sys.stdout.write(version_line(tool))
        sys.exit(0)


_answer_version()
