"""``pod-runtime pod``: pods in the runtime (thin typer glue over ``_pods``).

    pod-runtime pod create [--name N] [--share ipc,net,uts] [--hostname H] [--label K=V]
        [--infra-name N] [--infra-command JSON|CMD] [--cpus N] [--memory M]
        [--cgroup-parent /P] [--exit-policy continue|stop] [--network N] [-p ...]
                                            -> {"changed", "pod"}
    ... | pod-runtime pod bundle-infra POD  -> the infra's document (bundle + pod)
    pod-runtime pod start|stop|restart|kill|pause|unpause POD  -> {"changed", "pod"}
    pod-runtime pod rm POD [-f]             -> {"changed", "pod", "removed", "container",
                                                "network"}  (pipe to pod-netsetup detach)
    pod-runtime pod ps                      -> one podman-shaped line per pod
    pod-runtime pod inspect POD             -> podman's pod inspect fields
    pod-runtime pod exists POD              exit 0 if it exists, 1 if not
    pod-runtime pod prune | top POD | stats POD | logs POD

A member is bundled with ``pod-runtime bundle --pod POD``; ``pod-runtime create`` then
starts the infra if it must and joins its namespaces.
"""

from __future__ import annotations

from typing import Any

import typer

from podkit_common.cli import composed, emit, emit_lines, read_input

app = typer.Typer(name="pod", help="Manage pods: an infra container holding namespaces that "
                  "member containers join.", no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None)


def _ctx_only(ctx: typer.Context) -> None:
    raise NotImplementedError  # only the signature is used


def _roots(ctx: typer.Context):
    return ctx.find_root().obj.roots


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_runtime"])


def pod_options(values: dict) -> object:
    """PodOptions from a command's raw parameters (shared with ``pod pod create``)."""
    from podkit_runtime._pod_options import pod_options as options

    return options(values)


def create_options(
        name: str | None = typer.Option(None, "--name", "-n"),
        share: str | None = typer.Option(None, "--share", help="ipc,net,uts (default); "
                                         "+ns adds; none"),
        hostname: str | None = typer.Option(None, "--hostname"),
        label: list[str] | None = typer.Option(None, "--label", "-l"),
        infra: str = typer.Option("true", "--infra", help="true|false: an infra "
                                  "container holds the shared namespaces"),
        infra_image: str | None = typer.Option(None, "--infra-image"),
        infra_command: str | None = typer.Option(None, "--infra-command"),
        infra_name: str | None = typer.Option(None, "--infra-name"),
        cgroup_parent: str | None = typer.Option(None, "--cgroup-parent"),
        cpus: str | None = typer.Option(None, "--cpus"),
        memory: str | None = typer.Option(None, "--memory", "-m"),
        exit_policy: str = typer.Option("continue", "--exit-policy",
                                        help="continue | stop (when the last member exits)"),
        network: str | None = typer.Option(None, "--network", "--net"),
        publish: list[str] | None = typer.Option(None, "--publish", "-p"),
        add_host: list[str] | None = typer.Option(None, "--add-host"),
        dns: list[str] | None = typer.Option(None, "--dns"),
        dns_search: list[str] | None = typer.Option(None, "--dns-search"),
        dns_option: list[str] | None = typer.Option(None, "--dns-option"),
) -> None:
    """`pod-runtime pod create`'s options, declared once: `pod pod create` (podkit_pod.
    cli_pod) takes the very same ones. Only the signature is used."""
    raise NotImplementedError


def _create(ctx: typer.Context, **values: Any) -> None:
    """Make a pod record and its cgroup. The network flags are kept for the infra's
    pod-netsetup attach."""
    from podkit_runtime._pods import create_pod

    emit(create_pod(_roots(ctx), pod_options(values)))


app.command("create")(composed(_create, _ctx_only, create_options))


@app.command("bundle-infra")
def bundle_infra(ctx: typer.Context, pod: str = typer.Argument(...),
                 input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Write the infra container's bundle (the storage container on stdin) for POD."""
    from podkit_runtime._pod_members import write_infra_bundle

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:runtime:bundle-input")
    emit(write_infra_bundle(doc, _roots(ctx), pod))


@app.command()
def start(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """Start the infra, then the members."""
    from podkit_runtime._pods import start_pod

    emit(start_pod(_roots(ctx), pod))


@app.command()
def stop(ctx: typer.Context, pod: str = typer.Argument(...),
         time_: int | None = typer.Option(None, "--time", "-t")) -> None:
    """Stop the members, then the infra."""
    from podkit_runtime._pods import stop_pod

    emit(stop_pod(_roots(ctx), pod, time_))


@app.command()
def restart(ctx: typer.Context, pod: str = typer.Argument(...),
            time_: int | None = typer.Option(None, "--time", "-t")) -> None:
    """Stop, then start the pod."""
    from podkit_runtime._pods import restart_pod

    emit(restart_pod(_roots(ctx), pod, timeout=time_))


@app.command()
def kill(ctx: typer.Context, pod: str = typer.Argument(...),
         signal: str = typer.Option("SIGKILL", "--signal", "-s")) -> None:
    """Send a signal to every running container of the pod."""
    from podkit_runtime._pods import kill_pod

    emit(kill_pod(_roots(ctx), pod, signal))


@app.command()
def pause(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """Freeze every running container of the pod."""
    from podkit_runtime._pods import pause_pod

    emit(pause_pod(_roots(ctx), pod, pause=True))


@app.command()
def unpause(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """Thaw the pod's paused containers."""
    from podkit_runtime._pods import pause_pod

    emit(pause_pod(_roots(ctx), pod, pause=False))


@app.command()
def rm(ctx: typer.Context, pod: str = typer.Argument(...),
       force: bool = typer.Option(False, "--force", "-f"),
       time_: int | None = typer.Option(None, "--time", "-t")) -> None:
    """Remove the pod: members, infra, cgroup, record. Pipe the output to
    `pod-netsetup detach` to release the infra's network."""
    from podkit_runtime._pods import remove_pod

    emit(remove_pod(_roots(ctx), pod, force=force, timeout=time_))


@app.command()
def ps(ctx: typer.Context,
       filter_: list[str] | None = typer.Option(None, "--filter", "-f",
                                                help="KEY=VALUE (podman's pod filters)")
       ) -> None:
    """One line per pod (podman pod ps --format json's keys)."""
    from podkit_runtime._pod_filter import filter_pods
    from podkit_runtime._pod_reports import list_pods

    emit_lines(filter_pods(list_pods(_roots(ctx)), filter_))


@app.command()
def inspect(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """The pod as podman's pod inspect shows it."""
    from podkit_runtime._pod_reports import inspect_pod

    emit(inspect_pod(_roots(ctx), pod))


@app.command()
def exists(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """Exit 0 if the pod exists, 1 if not."""
    from podkit_runtime._pod_reports import pod_exists

    raise typer.Exit(0 if pod_exists(_roots(ctx), pod) else 1)


@app.command()
def prune(ctx: typer.Context) -> None:
    """Remove every stopped pod (Exited or Stopped)."""
    from podkit_runtime._pods import prune_pods

    emit(prune_pods(_roots(ctx)))


@app.command()
def top(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """The processes of the pod's running containers."""
    from podkit_runtime._pod_reports import top_pod

    emit(top_pod(_roots(ctx), pod))


@app.command()
def stats(ctx: typer.Context, pod: str = typer.Argument(...)) -> None:
    """One stats line per container of the pod."""
    from podkit_runtime._pod_reports import stats_pod

    emit_lines(stats_pod(_roots(ctx), pod))


@app.command()
def logs(ctx: typer.Context, pod: str = typer.Argument(...),
         tail: int = typer.Option(-1, "--tail"),
         container: str | None = typer.Option(None, "--container", "-c")) -> None:
    """The members' logs in time order, one JSON line per log line (podman's pod logs
    prefixes each with the container id; `pod pod logs` prints it that way)."""
    from podkit_runtime._pod_reports import pod_logs

    emit_lines({"ContainerID": cid, "Name": name, "Stream": entry.stream,
                "Message": entry.message.decode(errors="replace"), "Time": entry.time_ns}
               for cid, name, entry in pod_logs(_roots(ctx), pod,
                                                tail=None if tail < 0 else tail,
                                                container=container))
