"""``healthcheck run`` and the timer ``healthcheck loop`` (thin glue over ``_health``).

``pod-runtime healthcheck run ID`` prints the document; ``pod healthcheck run ID``
prints like podman (nothing when healthy, else ``unhealthy``). Both exit 0 when this
run passed and 1 when it failed, like podman.
"""

from __future__ import annotations

import sys

import typer


def health_app(podman_output: bool = False) -> typer.Typer:
    """The ``healthcheck`` sub-app (``podman_output`` for pod's plain text)."""
    app = typer.Typer(help="Run a container's healthcheck.", no_args_is_help=True,
                      add_completion=False, rich_markup_mode=None)

    @app.command("run")
    def run(ctx: typer.Context, container: str = typer.Argument(...)) -> int:
        """Run the container's healthcheck once; exit 0 healthy, 1 unhealthy.

        Example: pod healthcheck run web && echo healthy
        """
        from podkit_runtime._health import run_check

        doc = run_check(ctx.obj.roots, container)
        if podman_output:
            if not doc["healthy"]:
                sys.stdout.write("unhealthy\n")
        else:
            from podkit_common.cli import emit

            emit(doc)
        return 0 if doc["healthy"] else 1

    @app.command("loop", hidden=True)
    def loop(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """The per-container timer started by start: a check every interval."""
        from podkit_runtime._health import loop as health_loop

        health_loop(ctx.obj.roots, container)

    return app


# The options create/run take (pod-runtime's and pod's), declared once.
RESTART = typer.Option(None, "--restart", help="no|on-failure[:N]|always|unless-stopped")
HEALTH_CMD = typer.Option(None, "--health-cmd", help="CMD, '[\"CMD\",\"arg\"]' or none")
HEALTH_INTERVAL = typer.Option("30s", "--health-interval", help="duration or disable")
HEALTH_RETRIES = typer.Option(3, "--health-retries")
HEALTH_START_PERIOD = typer.Option("0s", "--health-start-period")
HEALTH_TIMEOUT = typer.Option("30s", "--health-timeout")
HEALTH_ON_FAILURE = typer.Option("none", "--health-on-failure",
                                 help="none|kill|restart|stop")


def create_extras(values: dict) -> dict:
    """CreateOptions' restart_policy and health from a command's locals()."""
    from podkit_runtime._cli_values import create_extras as typer_free

    return typer_free(values)
