"""pod-runtime: OCI bundles and the container lifecycle (thin typer glue)."""

from __future__ import annotations

import typer

from podkit_common.cli import emit, make_app, read_input, run_app
from podkit_runtime import __version__
from podkit_runtime import cli_health as _H
from podkit_runtime import cli_inspecting as _I

TOOL = "pod-runtime"
app = make_app(TOOL, __version__, "Generate OCI bundles and run them with runc.",
               ["podkit_runtime"])


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_runtime"])


@app.command(context_settings={"allow_interspersed_args": False})
def bundle(ctx: typer.Context,
           command: list[str] | None = typer.Argument(None, help="command and arguments"),
           env: list[str] | None = typer.Option(None, "--env", "-e", help="KEY=VALUE"),
           workdir: str | None = typer.Option(None, "--workdir", "-w"),
           user: str | None = typer.Option(None, "--user", "-u", help="name|uid[:gid]"),
           entrypoint: str | None = typer.Option(None, "--entrypoint"),
           hostname: str | None = typer.Option(None, "--hostname"),
           tty: bool = typer.Option(False, "--tty", "-t"),
           env_file: list[str] | None = typer.Option(None, "--env-file", metavar="FILE"),
           group_add: list[str] | None = typer.Option(None, "--group-add"),
           init: bool = typer.Option(False, "--init", help="catatonit as pid 1"),
           init_path: str | None = typer.Option(None, "--init-path", metavar="PATH"),
           shm_size: str | None = typer.Option(None, "--shm-size"),
           volume: list[str] | None = typer.Option(None, "--volume", "-v",
                                                   help="SRC:DST[:OPTS] or NAME:DST"),
           mount: list[str] | None = typer.Option(None, "--mount", help="type=...,..."),
           tmpfs: list[str] | None = typer.Option(None, "--tmpfs", help="DST[:OPTS]"),
           image_volume: str = typer.Option("bind", "--image-volume",
                                            help="bind|tmpfs|ignore"),
           read_only: bool = typer.Option(False, "--read-only"),
           read_only_tmpfs: str = typer.Option("true", "--read-only-tmpfs"),
           pid: str | None = typer.Option(None, "--pid", help="host|private|container:ID|ns:PATH"),
           ipc: str | None = typer.Option(None, "--ipc"),
           uts: str | None = typer.Option(None, "--uts"),
           cgroupns: str | None = typer.Option(None, "--cgroupns"),
           cap_add: list[str] | None = typer.Option(None, "--cap-add"),
           cap_drop: list[str] | None = typer.Option(None, "--cap-drop"),
           privileged: bool = typer.Option(False, "--privileged"),
           security_opt: list[str] | None = typer.Option(None, "--security-opt"),
           memory: str | None = typer.Option(None, "--memory", "-m"),
           memory_swap: str | None = typer.Option(None, "--memory-swap"),
           memory_reservation: str | None = typer.Option(None, "--memory-reservation"),
           cpus: str | None = typer.Option(None, "--cpus"),
           cpu_shares: str | None = typer.Option(None, "--cpu-shares", "-c"),
           cpu_period: str | None = typer.Option(None, "--cpu-period"),
           cpu_quota: str | None = typer.Option(None, "--cpu-quota"),
           cpuset_cpus: str | None = typer.Option(None, "--cpuset-cpus"),
           cpuset_mems: str | None = typer.Option(None, "--cpuset-mems"),
           pids_limit: str | None = typer.Option(None, "--pids-limit"),
           blkio_weight: str | None = typer.Option(None, "--blkio-weight"),
           oom_score_adj: str | None = typer.Option(None, "--oom-score-adj"),
           ulimit: list[str] | None = typer.Option(None, "--ulimit", help="NAME=SOFT[:HARD]"),
           sysctl: list[str] | None = typer.Option(None, "--sysctl"),
           device: list[str] | None = typer.Option(None, "--device",
                                                   help="HOST[:CTR[:PERMS]]"),
           cgroup_parent: str | None = typer.Option(None, "--cgroup-parent"),
           hooks_dir: list[str] | None = typer.Option(None, "--hooks-dir"),
           label: list[str] | None = typer.Option(None, "--label", "-l"),
           annotation: list[str] | None = typer.Option(None, "--annotation"),
           pod: str | None = typer.Option(None, "--pod", help="join this pod (cli_pod.py)"),
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Write the OCI bundle (config.json) for the container in the input document."""
    from podkit_runtime import write_bundle
    from podkit_runtime._cli_values import bundle_options

    opts = bundle_options(locals())
    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:runtime:bundle-input")
    emit(write_bundle(doc, ctx.obj.roots, opts))


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
