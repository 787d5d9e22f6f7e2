"""`pod run` and `pod create`: one declaration of podman's container options for both.

The options are declared once: the container options are pod-runtime bundle's
(podkit_runtime.cli_bundle_options), pod's own are the signatures of :func:`_head` and
:func:`_declaration`; each command splices them (``create`` without ``--detach``) over
the typer-free body in ``_run_command``. The same body runs when ``fast_path`` parses
a command line without typer, from ``_argspec.json``, which is generated from these
commands (see podkit_common.argspec; tests/pod/test_fast_argv.py keeps the two equal).
"""

from __future__ import annotations

from typing import Any

import typer

from podkit_common.cli import composed
from podkit_image_pull import cli_registry as reg
from podkit_runtime import cli_health as _H
from podkit_runtime import cli_inspecting as _I
from podkit_runtime.cli_bundle_options import DECLARATION as BUNDLE_OPTIONS

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


def _head(
        ctx: typer.Context,
        image: str = typer.Argument(..., help="image reference"),
        command: list[str] | None = typer.Argument(None, help="command and arguments"),
        name: str | None = typer.Option(None, "--name"),
        rm: bool = typer.Option(False, "--rm", help="remove the container when it exits"),
) -> int:
    raise NotImplementedError  # only the signature is used


def _declaration(
        interactive: bool = typer.Option(False, "--interactive", "-i"),
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
    raise NotImplementedError  # only the signature is used


def _command(verb: str) -> Any:
    """The typer callback of ``verb``: the image and name, pod-runtime bundle's options
    (one declaration for both tools), pod's own; the shared typer-free body."""

    def body(ctx: typer.Context, **values: Any) -> int:
        from podkit_pod._run_command import run_command

        return run_command(verb, ctx.obj, values)

    return composed(body, _head, BUNDLE_OPTIONS, _declaration,
                    drop=() if verb == "run" else RUN_ONLY, name=verb, doc=HELP[verb])


def add_run_commands(app: typer.Typer) -> None:
    """Register `run` and `create` on pod's app (options end at the image: podman's
    ``pod run IMAGE ls -l``)."""
    for verb in ("run", "create"):
        app.command(verb, context_settings={"allow_interspersed_args": False})(_command(verb))
