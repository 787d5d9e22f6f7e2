"""`pod run` and `pod create`: one declaration of podman's container options for both.

The options are declared once, as the signature of :func:`_declaration`; each command
is that signature (``create`` without ``--detach``) over the typer-free body in
``_run_command``. The same body runs when ``fast_path`` parses a command line without
typer, from ``_argspec.json``, which is generated from these commands (see
podkit_common.argspec; tests/pod/test_fast_argv.py keeps the two equal).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import typer

from podkit_image_pull import cli_registry as reg
from podkit_runtime import cli_health as _H
from podkit_runtime import cli_inspecting as _I

SIGNATURE_POLICY = typer.Option(None, "--signature-policy", metavar="PATH",
                                help="containers-policy.json(5) to enforce on pulls")

#: What `create` does not take: a created container is started by `pod start`.
RUN_ONLY = ("detach",)

HELP = {
    "run": """Run a command in a new container (pulling the image if it is missing).

    Examples:

    \b
        pod run --rm --network none busybox echo hello
        pod run -d --name web -p 127.0.0.1:8080:80 busybox httpd -f -p 80
        pod run -it --rm busybox sh
    """,
    "create": """Create a container without starting it; prints its id (pod start runs it).

    Examples:

    \b
        pod create --name web -p 127.0.0.1:8080:80 busybox httpd -f -p 80
        pod start web
    """,
}


def _declaration(
        ctx: typer.Context,
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
        pod: str | None = typer.Option(None, "--pod", help="join this pod (pod pod create)"),
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
    raise NotImplementedError  # only the signature is used


def _command(verb: str) -> Any:
    """The typer callback of ``verb``: the declaration's parameters, the shared body."""

    def command(ctx: typer.Context, **values: Any) -> int:
        from podkit_pod._run_command import run_command

        return run_command(verb, ctx.obj, values)

    signature = inspect.signature(_declaration, eval_str=True)
    hints = typing.get_type_hints(_declaration)
    keep = [p for p in signature.parameters.values()
            if verb == "run" or p.name not in RUN_ONLY]
    command.__signature__ = signature.replace(parameters=keep)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: hints[p.name] for p in keep if p.name in hints}
    command.__name__ = command.__qualname__ = verb
    command.__doc__ = HELP[verb]
    return command


def add_run_commands(app: typer.Typer) -> None:
    """Register `run` and `create` on pod's app (options end at the image: podman's
    ``pod run IMAGE ls -l``)."""
    for verb in ("run", "create"):
        app.command(verb, context_settings={"allow_interspersed_args": False})(_command(verb))
