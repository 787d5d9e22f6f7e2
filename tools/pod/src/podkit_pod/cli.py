"""pod: the podman-compatible command line over the podkit stage libraries."""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import emit, make_app, run_app
from podkit_image_pull import cli_registry as reg
from podkit_pod import __version__
from podkit_pod.cli_images_io import add_images_io_commands
from podkit_pod.cli_run import SIGNATURE_POLICY, add_run_commands
from podkit_pod.fast_path import BOOL_FLAGS, POSITIONAL_ENDS_OPTIONS
from podkit_runtime import cli_health as _H

TOOL = "pod"
app = make_app(TOOL, __version__, "Manage images and containers like podman, built from the "
               "podkit stages.", ["podkit_pod"])


def _pull_options(tls_verify: bool | None, creds: str | None, authfile: str | None,
                  cert_dir: str | None, signature_policy: str | None) -> dict:
    """podman's registry flags as podkit_image_pull.pull keyword arguments."""
    options = reg.registry_options(creds=creds, authfile=authfile, cert_dir=cert_dir,
                                   registries_conf=None, registries_conf_dir=None)
    return {**options, "tls_verify": tls_verify, "signature_policy": signature_policy}


add_run_commands(app)  # run, create: one declaration in cli_run.py, body in _run_command.py


@app.command()
def pull(ctx: typer.Context, image: str = typer.Argument(...),
         platform: str | None = typer.Option(None, "--platform"),
         quiet: bool = typer.Option(False, "--quiet", "-q"),
         tls_verify: bool | None = reg.TLS_VERIFY, creds: str | None = reg.CREDS,
         authfile: str | None = reg.AUTHFILE, cert_dir: str | None = reg.CERT_DIR,
         signature_policy: str | None = SIGNATURE_POLICY) -> None:
    """Pull an image and store it; prints the image id like podman.

    \b
    Example:
      pod pull --tls-verify=false 127.0.0.1:5000/busybox:latest
    """
    from podkit_pod._run import pull_and_import

    progress = ctx.obj.progress()
    doc = pull_and_import(ctx.obj.roots, image, platform=platform, progress=progress,
                          **_pull_options(tls_verify, creds, authfile, cert_dir,
                                          signature_policy))
    sys.stdout.write(doc["image"]["id"] + "\n")


add_images_io_commands(app)  # load, save, import, export: cli_images_io.py
from podkit_pod.cli_image import add_image_commands  # noqa: E402

add_image_commands(app, pull)  # images, rmi, tag, untag, image ...: cli_image.py
from podkit_pod.cli_network import app as _network_app  # noqa: E402

app.add_typer(_network_app, name="network")  # create, ls, inspect, rm, prune, exists

from podkit_pod.cli_containers import add_container_commands  # noqa: E402

add_container_commands(app)  # logs, stop, kill, wait, inspect, start, pause, cleanup
from podkit_pod.cli_inspecting import add_inspecting_commands  # noqa: E402

add_inspecting_commands(app)  # cp, top, stats, port, rename: cli_inspecting.py

from podkit_pod.cli_volume import app as _volume_app  # noqa: E402

app.add_typer(_volume_app, name="volume")  # create, ls, inspect, rm, prune, exists
from podkit_pod.cli_pod import app as _pod_app  # noqa: E402

app.add_typer(_pod_app, name="pod")  # create, start, stop, rm, ps, inspect...: cli_pod.py
app.add_typer(_H.health_app(podman_output=True), name="healthcheck")  # cli_health.py
from podkit_pod.cli_container_admin import add_container_admin_commands  # noqa: E402
from podkit_pod.cli_ps import add_ps_command  # noqa: E402

add_ps_command(app)  # ps: cli_ps.py
add_container_admin_commands(app)  # rm, restart, diff, mount, umount: cli_container_admin.py
from podkit_pod.cli_system import add_system_commands  # noqa: E402

add_system_commands(app)  # info, version, system df|prune|reset|check: cli_system.py
from podkit_pod.cli_events import add_events_command  # noqa: E402

add_events_command(app)  # events: cli_events.py
from podkit_pod import cli_kube as _kube  # noqa: E402

app.add_typer(_kube.app, name="kube")  # generate, play, down: cli_kube.py
app.add_typer(_kube.generate_app, name="generate", hidden=True)  # podman's `generate kube`
app.add_typer(_kube.play_app, name="play", hidden=True)  # podman's `play kube`
from podkit_pod.cli_container_group import fill_container_group  # noqa: E402

app.add_typer(fill_container_group(app), name="container")  # last: mirrors the above

def main() -> None:
    if _wants_completion(sys.argv[1:]):
        app._add_completion = True  # typer's completion options, only when they are used
    run_app(app, TOOL, positional_ends_options=POSITIONAL_ENDS_OPTIONS,
            bool_flags=BOOL_FLAGS, error_code=_own_error_code)


def _wants_completion(argv: list[str]) -> bool:
    """``--show-completion``/``--install-completion``, or the shell asking at a TAB
    (typer's script sets _POD_COMPLETE). make_app leaves completion off otherwise: its
    options cost a full build of the command tree on every start."""
    import os

    return bool(os.environ.get("_POD_COMPLETE")) or any(
        a.split("=", 1)[0] in ("--show-completion", "--install-completion") for a in argv[:2])


def _own_error_code(exc: BaseException, code: int) -> int:
    from podkit_pod._run_command import own_error_code  # podman's 125/126/127

    return own_error_code(exc, code)


__all__ = ["app", "emit", "main"]
