"""pod: the podman-compatible command line over the podkit stage libraries."""

from __future__ import annotations

import os
import sys

import typer

from podkit_common import errors
from podkit_common.cli import emit, emit_lines, make_app, run_app
from podkit_image_pull import cli_registry as reg
from podkit_pod import __version__
from podkit_pod.cli_images_io import add_images_io_commands
from podkit_runtime import cli_health as _H
from podkit_runtime import cli_inspecting as _I

TOOL = "pod"
app = make_app(TOOL, __version__, "Manage images and containers like podman, built from the "
               "podkit stages.", ["podkit_pod"])


SIGNATURE_POLICY = typer.Option(None, "--signature-policy", metavar="PATH",
                                help="containers-policy.json(5) to enforce on pulls")


def _pull_options(tls_verify: bool | None, creds: str | None, authfile: str | None,
                  cert_dir: str | None, signature_policy: str | None) -> dict:
    """podman's registry flags as podkit_image_pull.pull keyword arguments."""
    options = reg.registry_options(creds=creds, authfile=authfile, cert_dir=cert_dir,
                                   registries_conf=None, registries_conf_dir=None)
    return {**options, "tls_verify": tls_verify, "signature_policy": signature_policy}


def _own_error_code(exc: BaseException, code: int) -> int:
    """podman's convention: 125 for the engine's own errors."""
    from podkit_runtime import ContainerCannotStart

    if isinstance(exc, ContainerCannotStart):
        return exc.run_exit_code
    return errors.EXIT_RUN_OWN_ERROR


@app.command(context_settings={"allow_interspersed_args": False})
def run(ctx: typer.Context,
        image: str = typer.Argument(..., help="image reference"),
        command: list[str] | None = typer.Argument(None, help="command and arguments"),
        name: str | None = typer.Option(None, "--name"),
        rm: bool = typer.Option(False, "--rm", help="remove the container when it exits"),
        env: list[str] | None = typer.Option(None, "--env", "-e"),
        workdir: str | None = typer.Option(None, "--workdir", "-w"),
        user: str | None = typer.Option(None, "--user", "-u"),
        entrypoint: str | None = typer.Option(None, "--entrypoint"),
        hostname: str | None = typer.Option(None, "--hostname"),
        interactive: bool = typer.Option(False, "--interactive", "-i"),
        tty: bool = typer.Option(False, "--tty", "-t"),
        env_file: list[str] | None = typer.Option(None, "--env-file", metavar="FILE"),
        group_add: list[str] | None = typer.Option(None, "--group-add"),
        init: bool = typer.Option(False, "--init"),
        init_path: str | None = typer.Option(None, "--init-path"),
        shm_size: str | None = typer.Option(None, "--shm-size"),
        volume: list[str] | None = typer.Option(None, "--volume", "-v"),
        mount: list[str] | None = typer.Option(None, "--mount"),
        tmpfs: list[str] | None = typer.Option(None, "--tmpfs"),
        image_volume: str = typer.Option("bind", "--image-volume"),
        read_only: bool = typer.Option(False, "--read-only"),
        read_only_tmpfs: str = typer.Option("true", "--read-only-tmpfs"),
        pid: str | None = typer.Option(None, "--pid"),
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
        ulimit: list[str] | None = typer.Option(None, "--ulimit"),
        sysctl: list[str] | None = typer.Option(None, "--sysctl"),
        device: list[str] | None = typer.Option(None, "--device"),
        cgroup_parent: str | None = typer.Option(None, "--cgroup-parent"),
        hooks_dir: list[str] | None = typer.Option(None, "--hooks-dir",
                                                   help="podman's global --hooks-dir"),
        label: list[str] | None = typer.Option(None, "--label", "-l"),
        annotation: list[str] | None = typer.Option(None, "--annotation"),
        network: str | None = typer.Option(None, "--network", "--net",
                                           help="podkit (default) | NAME[,NAME] | none | host"),
        publish: list[str] | None = typer.Option(None, "--publish", "-p"),
        publish_all: bool = typer.Option(False, "--publish-all", "-P"),
        ip: list[str] | None = typer.Option(None, "--ip"),
        mac_address: str | None = typer.Option(None, "--mac-address"),
        add_host: list[str] | None = typer.Option(None, "--add-host"),
        dns: list[str] | None = typer.Option(None, "--dns"),
        dns_search: list[str] | None = typer.Option(None, "--dns-search"),
        dns_option: list[str] | None = typer.Option(None, "--dns-option"),
        platform: str | None = typer.Option(None, "--platform"),
        detach: bool = typer.Option(False, "--detach", "-d"),
        restart: str | None = _H.RESTART, health_cmd: str | None = _H.HEALTH_CMD,
        health_interval: str = _H.HEALTH_INTERVAL, health_retries: int = _H.HEALTH_RETRIES,
        health_start_period: str = _H.HEALTH_START_PERIOD,
        health_timeout: str = _H.HEALTH_TIMEOUT, health_on_failure: str = _H.HEALTH_ON_FAILURE,
        log_driver: str | None = _I.LOG_DRIVER, log_opt: list[str] | None = _I.LOG_OPT,
        tls_verify: bool | None = reg.TLS_VERIFY, creds: str | None = reg.CREDS,
        authfile: str | None = reg.AUTHFILE, cert_dir: str | None = reg.CERT_DIR,
        signature_policy: str | None = SIGNATURE_POLICY) -> int:
    """Run a command in a new container (pulling the image if it is missing)."""
    from podkit_pod._network import network_options
    from podkit_pod._run import RunOptions
    from podkit_pod._run import run as run_container
    from podkit_runtime._cli_values import bundle_options

    if tty and not sys.stdin.isatty():
        raise errors.UsageError("--tty needs a terminal on stdin")
    bundle_opts = bundle_options(locals())
    opts = RunOptions(image=image, command=tuple(command or ()), name=name, remove=rm,
                      network=network_options(network, publish=publish,
                                              publish_all=publish_all, ip=ip, mac=mac_address,
                                              add_host=add_host, dns=dns, dns_search=dns_search,
                                              dns_option=dns_option),
                      platform=platform, interactive=interactive,
                      detach=detach, create_extras={**_H.create_extras(locals()),
                                                    **_I.log_extras(locals())},
                      pull_options=_pull_options(tls_verify, creds, authfile, cert_dir,
                                                 signature_policy))
    stdin = 0 if interactive or tty else os.open(os.devnull, os.O_RDONLY)
    doc = run_container(ctx.obj.roots, opts, bundle_opts, stdio=(stdin, 1, 2),
                        progress=ctx.obj.progress())
    if detach:
        sys.stdout.write(doc["container"]["id"] + "\n")  # podman run -d prints the id
        return 0
    return int(doc["state"]["exit_code"])


@app.command()
def pull(ctx: typer.Context, image: str = typer.Argument(...),
         platform: str | None = typer.Option(None, "--platform"),
         quiet: bool = typer.Option(False, "--quiet", "-q"),
         tls_verify: bool | None = reg.TLS_VERIFY, creds: str | None = reg.CREDS,
         authfile: str | None = reg.AUTHFILE, cert_dir: str | None = reg.CERT_DIR,
         signature_policy: str | None = SIGNATURE_POLICY) -> None:
    """Pull an image and store it; prints the image id like podman."""
    from podkit_pod._run import pull_and_import

    progress = ctx.obj.progress()
    doc = pull_and_import(ctx.obj.roots, image, platform=platform, progress=progress,
                          **_pull_options(tls_verify, creds, authfile, cert_dir,
                                          signature_policy))
    sys.stdout.write(doc["image"]["id"] + "\n")


@app.command()
def images(ctx: typer.Context,
           fmt: str = typer.Option("table", "--format", help="table|json")) -> None:
    """List images."""
    from podkit_storage import list_images

    records = list_images(ctx.obj.roots)
    if fmt == "json":
        emit([{"Id": r["id"], "Names": r.get("names", []), "Digest": r.get("digest")}
              for r in records])
        return
    sys.stdout.write(f"{'REPOSITORY':<40} {'TAG':<12} {'IMAGE ID':<14}\n")
    for r in records:
        for n in r.get("names") or ["<none>:<none>"]:
            repo, _, tag = n.rpartition(":") if ":" in n.rsplit("/", 1)[-1] else (n, "", "")
            sys.stdout.write(f"{repo:<40} {tag or '<none>':<12} {r['id'][:12]:<14}\n")


@app.command()
def ps(ctx: typer.Context, all_: bool = typer.Option(False, "--all", "-a"),
       fmt: str = typer.Option("table", "--format", help="table|json|Go template"),
       filter_: list[str] | None = typer.Option(None, "--filter", "-f", help="KEY=VALUE")
       ) -> None:
    """List containers: the running ones, or all with --all (like podman ps)."""
    from podkit_pod._containers import ps as ps_lines
    from podkit_runtime._inspect import table
    from podkit_runtime._ps_filter import ps_output, wants_all

    rows, text = ps_output(ctx.obj.roots, ps_lines(ctx.obj.roots, all_=wants_all(all_, filter_)),
                           filter_, fmt)
    if text is not None:
        sys.stdout.write(text)
        return
    if fmt == "json":
        emit_lines(rows)
        return
    sys.stdout.write(table(rows))


@app.command()
def rm(ctx: typer.Context, containers: list[str] = typer.Argument(...),
       force: bool = typer.Option(False, "--force", "-f"),
       volumes: bool = typer.Option(False, "--volumes", "-v",
                                    help="also remove the container's anonymous volumes")
       ) -> None:
    """Remove containers (--force stops running ones first); prints each removed id."""
    from podkit_pod._containers import remove

    for ref in containers:
        cid = remove(ctx.obj.roots, ref, force=force, remove_volumes=volumes)
        sys.stdout.write(cid + "\n")


add_images_io_commands(app)  # load, save, import, export: cli_images_io.py

from podkit_pod.cli_containers import add_container_commands  # noqa: E402

add_container_commands(app)  # logs, stop, kill, wait, inspect, start, pause, cleanup
from podkit_pod.cli_inspecting import add_inspecting_commands  # noqa: E402

add_inspecting_commands(app)  # cp, top, stats, port, rename: cli_inspecting.py

from podkit_pod.cli_volume import app as _volume_app  # noqa: E402

app.add_typer(_volume_app, name="volume")  # create, ls, inspect, rm, prune, exists
app.add_typer(_H.health_app(podman_output=True), name="healthcheck")  # cli_health.py

def main() -> None:
    run_app(app, TOOL, positional_ends_options=("run", "exec"), bool_flags=("tls-verify",),
            error_code=_own_error_code)


__all__ = ["app", "emit", "main"]
