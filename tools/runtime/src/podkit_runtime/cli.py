"""pod-runtime: OCI bundles and the container lifecycle (thin typer glue)."""

from __future__ import annotations

from typing import Any

import typer

from podkit_common.cli import composed, emit, make_app, read_input, run_app
from podkit_runtime import __version__
from podkit_runtime import cli_health as _H
from podkit_runtime import cli_inspecting as _I
from podkit_runtime.cli_bundle_options import DECLARATION as BUNDLE_OPTIONS

TOOL = "pod-runtime"
app = make_app(TOOL, __version__, "Generate OCI bundles and run them with runc.",
               ["podkit_runtime"])


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_runtime"])


def _bundle_head(ctx: typer.Context,
                 command: list[str] | None = typer.Argument(None,
                                                            help="command and arguments")
                 ) -> None:
    raise NotImplementedError  # only the signature is used


def _bundle_tail(input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    raise NotImplementedError  # only the signature is used


def _bundle(ctx: typer.Context, **values: Any) -> None:
    """Write the OCI bundle (config.json) for the container in the input document."""
    from podkit_runtime import write_bundle
    from podkit_runtime._cli_values import bundle_options

    opts = bundle_options(values)
    doc = read_input(values["input_path"])
    _schemas().validate(doc, "urn:podkit:runtime:bundle-input")
    emit(write_bundle(doc, ctx.obj.roots, opts))


app.command("bundle", context_settings={"allow_interspersed_args": False})(
    composed(_bundle, _bundle_head, BUNDLE_OPTIONS, _bundle_tail))


@app.command()
def run(ctx: typer.Context,
        interactive: bool = typer.Option(False, "--interactive", "-i", help="pass stdin through"),
        detach: bool = typer.Option(False, "--detach", "-d", help="return once it runs"),
        rm: bool = typer.Option(False, "--rm", help="remove it when it exits"),
        restart: str | None = _H.RESTART, health_cmd: str | None = _H.HEALTH_CMD,
        health_interval: str = _H.HEALTH_INTERVAL, health_retries: int = _H.HEALTH_RETRIES,
        health_start_period: str = _H.HEALTH_START_PERIOD,
        health_timeout: str = _H.HEALTH_TIMEOUT, health_on_failure: str = _H.HEALTH_ON_FAILURE,
        log_driver: str | None = _I.LOG_DRIVER, log_opt: list[str] | None = _I.LOG_OPT,
        input_path: str = typer.Option("-", "--input", metavar="FILE")) -> int:
    """Run the bundle in the input document under conmon (create + start), attached
    unless --detach.

    The container's stdout and stderr go to this command's stderr (stdout carries the
    JSON document); the exit status is the container's, like `podman run`.
    """
    from podkit_runtime import ContainerCannotStart, run_bundle
    from podkit_runtime._run import stdio_for_cli

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:runtime:run-input")
    try:
        result = run_bundle(doc, ctx.obj.roots, stdio_for_cli(interactive and not detach),
                            options=_lifecycle_options(interactive, rm,
                                                       {**_H.create_extras(locals()),
                                                        **_I.log_extras(locals())}),
                            detach=detach)
    except ContainerCannotStart as exc:
        from podkit_common.cli import fail

        fail(TOOL, exc)
        return exc.run_exit_code
    emit(result)
    return 0 if detach else int(result["state"]["exit_code"])


from podkit_runtime.cli_volume import app as _volume_app  # noqa: E402

app.add_typer(_volume_app, name="volume")

from podkit_runtime.cli_lifecycle import options as _lifecycle_options  # noqa: E402
from podkit_runtime.cli_lifecycle import register as _register_lifecycle  # noqa: E402

_register_lifecycle(app)
app.add_typer(_H.health_app(), name="healthcheck")  # run, loop: cli_health.py
_I.register(app)  # cp, top, stats, port, rename: cli_inspecting.py
from podkit_runtime.cli_pod import app as _pod_app  # noqa: E402

app.add_typer(_pod_app, name="pod")  # create, start, stop, rm, ps, inspect...: cli_pod.py


def main() -> None:
    from podkit_runtime.fast_path import POSITIONAL_ENDS_OPTIONS

    run_app(app, TOOL, positional_ends_options=POSITIONAL_ENDS_OPTIONS)
