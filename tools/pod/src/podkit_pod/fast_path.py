"""`pod`'s fast path: hot commands (run, create, ps, start, cleanup, images, and `pod pod
create|start|stop|rm|ps|ls|inspect`) parsed without typer.

:data:`FAST` parses the command line with ``_argspec.json`` (generated from the typer
commands: podkit_common.argspec) and runs the same body the typer command runs; it
gives up (None) on anything it does not fully understand, and the typer app
(podkit_pod.cli.main) then runs, which gives help, completion and every usage error.
Importing this module loads no typer; its main() is the console script.

Regenerate the spec after changing a hot command's options::

    python -m podkit_common.argspec podkit_pod.cli:app run create ps start cleanup images \\
        "pod create" "pod start" "pod stop" "pod rm" "pod ps" "pod ls" "pod inspect" \\
        > tools/pod/src/podkit_pod/_argspec.json

(`rm` is not on it yet: its body is still inside its typer command; moving a body to a
typer-free module is what puts a command here.)
"""

from __future__ import annotations

import os
import sys

from podkit_common import deferred

deferred.install()  # before anything imports pathlib: ~7 ms of each start (see there)

from podkit_common.fastargs import FastPath  # noqa: E402

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

TOOL = "pod"
#: pod's options where podman spells ``--tls-verify=false`` (typer's path too: cli.main)
BOOL_FLAGS = ("tls-verify", "human", "stream")
#: commands whose first positional ends their options (typer's path too: cli.main)
POSITIONAL_ENDS_OPTIONS = ("run", "create", "exec", "container run", "container create",
                           "container exec")


def _run(obj: Any, params: dict[str, Any]) -> int:
    from podkit_pod._run_command import run_command
    from podkit_runtime._timings import mark

    mark("start")  # the interpreter, our imports and the argv parse
    return run_command("run", obj, params)


def _create(obj: Any, params: dict[str, Any]) -> int:
    from podkit_pod._run_command import run_command
    from podkit_runtime._timings import mark

    mark("start")  # PODKIT_TRACE_TIMINGS: as for run
    return run_command("create", obj, params)


def _ps(obj: Any, params: dict[str, Any]) -> None:
    from podkit_pod._command_bodies import ps_body

    ps_body(obj, params)


def _start(obj: Any, params: dict[str, Any]) -> int:
    from podkit_pod._command_bodies import start_body

    return start_body(obj, params)


def _images(obj: Any, params: dict[str, Any]) -> None:
    from podkit_pod._command_bodies import images_body

    images_body(obj, params)


def _cleanup(obj: Any, params: dict[str, Any]) -> None:
    from podkit_pod._command_bodies import cleanup_body

    cleanup_body(obj, params)


# -- pods (PODFAST): `pod pod VERB`, bodies in podkit_pod._pod_commands ---------------------

def _pod_body(name: str) -> Any:
    def body(obj: Any, params: dict[str, Any]) -> None:
        from podkit_pod import _pod_commands

        getattr(_pod_commands, name)(obj, params)

    return body


POD_BODIES = {"pod create": _pod_body("create_body"), "pod start": _pod_body("start_body"),
              "pod stop": _pod_body("stop_body"), "pod rm": _pod_body("rm_body"),
              "pod ps": _pod_body("ps_body"), "pod ls": _pod_body("ps_body"),
              "pod inspect": _pod_body("inspect_body")}


def _own_error_code(exc: BaseException, code: int) -> int:
    from podkit_pod._run_command import own_error_code

    return own_error_code(exc, code)


FAST = FastPath(TOOL, os.path.join(os.path.dirname(__file__), "_argspec.json"),
                {"run": _run, "create": _create, "ps": _ps, "start": _start,
                 "cleanup": _cleanup, "images": _images, **POD_BODIES},
                bool_flags=BOOL_FLAGS, positional_ends_options=POSITIONAL_ENDS_OPTIONS,
                error_code=_own_error_code)


def load_spec() -> dict[str, Any]:
    return FAST.spec()


def parse(argv: list[str]) -> Any:
    """The fast parse of ``argv`` (podkit_common.fastargs.Parsed), or None."""
    return FAST.parse(argv)


def fast_main(argv: list[str]) -> int | None:
    """Run ``argv`` on the fast path and return the exit code; None: use typer."""
    if argv == ["--version"]:
        from podkit_common.fast_version import version_line

        sys.stdout.write(version_line(TOOL))
        return 0
    return FAST.main(argv)


def main() -> None:
    """The console entry point (pyproject.toml): the fast path first, then typer's
    (cli.main) for everything it does not take."""
    code = fast_main(sys.argv[1:])
    if code is not None:
        from podkit_common.cli_base import exit_now

        exit_now(code)
    from podkit_pod.cli import main as typer_main

    typer_main()
