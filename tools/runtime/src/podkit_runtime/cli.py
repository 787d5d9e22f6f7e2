"""pod-runtime: OCI bundles and the container lifecycle (thin typer glue)."""

from __future__ import annotations

import typer

from podkit_common import errors
from podkit_common.cli import emit, make_app, read_input, run_app
from podkit_runtime import __version__

TOOL = "pod-runtime"
app = make_app(TOOL, __version__, "Generate OCI bundles and run them with runc.",
               ["podkit_runtime"])


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_runtime"])


def parse_entrypoint(value: str | None) -> tuple[str, ...] | None:
    """podman's --entrypoint: a JSON array, a single string, or "" to clear it."""
    if value is None:
        return None
    if value.strip().startswith("["):
        from podkit_common.jsonio import loads

        parsed = loads(value, what="--entrypoint")
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise errors.UsageError("--entrypoint JSON must be an array of strings")
        return tuple(parsed)
    return () if value == "" else (value,)


@app.command(context_settings={"allow_interspersed_args": False})
def bundle(ctx: typer.Context,
           command: list[str] | None = typer.Argument(None, help="command and arguments"),
           env: list[str] | None = typer.Option(None, "--env", "-e", help="KEY=VALUE"),
           workdir: str | None = typer.Option(None, "--workdir", "-w"),
           user: str | None = typer.Option(None, "--user", "-u", help="name|uid[:gid]"),
           entrypoint: str | None = typer.Option(None, "--entrypoint"),
           hostname: str | None = typer.Option(None, "--hostname"),
           tty: bool = typer.Option(False, "--tty", "-t"),
           read_only: bool = typer.Option(False, "--read-only"),
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Write the OCI bundle (config.json) for the container in the input document."""
    import os

    from podkit_runtime import BundleOptions, write_bundle

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:runtime:bundle-input")
    env_items = []
    for item in env or []:
        if "=" not in item:
            if item in os.environ:
                env_items.append(f"{item}={os.environ[item]}")
            continue
        env_items.append(item)
    opts = BundleOptions(command=tuple(command or ()), entrypoint=parse_entrypoint(entrypoint),
                         env=tuple(env_items), workdir=workdir, user=user, hostname=hostname,
                         tty=tty, read_only=read_only)
    emit(write_bundle(doc, ctx.obj.roots, opts))


@app.command()
def run(ctx: typer.Context,
        interactive: bool = typer.Option(False, "--interactive", "-i", help="pass stdin through"),
        input_path: str = typer.Option("-", "--input", metavar="FILE")) -> int:
    """Run the bundle in the input document to completion.

    The container's stdout and stderr go to this command's stderr (stdout carries the
    JSON document); the exit status is the container's, like `podman run`.
    """
    from podkit_runtime import ContainerCannotStart, run_bundle
    from podkit_runtime._run import stdio_for_cli

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:runtime:run-input")
    try:
        result = run_bundle(doc, ctx.obj.roots, stdio_for_cli(interactive))
    except ContainerCannotStart as exc:
        from podkit_common.cli import fail

        fail(TOOL, exc)
        return exc.run_exit_code
    emit(result)
    return int(result["state"]["exit_code"])




def main() -> None:
    run_app(app, TOOL, positional_ends_options=("bundle",))
