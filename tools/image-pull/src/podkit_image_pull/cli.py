"""pod-image-pull: pull an image from a registry and print the image document.

    pod-image-pull [--root DIR] [--progress MODE] [--tls-verify=false] [--platform OS/ARCH]
                   [--max-parallel N] [--retry N] [--retry-delay D] [--stall-timeout D]
                   [--signature-policy PATH] [--registries-d DIR] REF
    pod-image-pull schema [NAME]
    pod-image-pull inspect [--raw|--config] REF     pod-image-pull tags REF   (cli_inspect.py)

``pull`` is the default command, so ``pod-image-pull docker://127.0.0.1:5000/busybox``
works. The output document is described by ``pod-image-pull schema image``.
"""

from __future__ import annotations

import podkit_common.fast_version  # noqa: F401  (--version before typer: exits there)

# isort: split
import typer

from podkit_common.cli import emit, make_app, run_app
from podkit_image_pull import __version__
from podkit_image_pull import cli_registry as reg
from podkit_image_pull.cli_inspect import add_inspect_commands

TOOL = "pod-image-pull"
app = make_app(TOOL, __version__, "Pull container images from registries, verifying every byte.",
               ["podkit_image_pull"])


@app.command()
def pull(
    ctx: typer.Context,
    reference: str = typer.Argument(
        ..., metavar="REF",
        help="[docker://][HOST[:PORT]/]REPO[:TAG][@DIGEST]; short names resolve through "
             "registries.conf (docker.io without one); or oci:PATH[:REF], "
             "oci-archive:PATH[:REF], docker-archive:PATH[:NAME:TAG|:@INDEX]"),
    tls_verify: bool | None = reg.TLS_VERIFY,
    creds: str | None = reg.CREDS,
    authfile: str | None = reg.AUTHFILE,
    cert_dir: str | None = reg.CERT_DIR,
    registries_conf: str | None = reg.REGISTRIES_CONF,
    registries_conf_dir: str | None = reg.REGISTRIES_CONF_DIR,
    platform: str | None = typer.Option(
        None, "--platform", metavar="OS/ARCH[/VARIANT]",
        help="which image of a multi-platform list to pull [default: this machine]"),
    max_parallel: int = typer.Option(
        6, "--max-parallel", min=1, metavar="N", help="download at most N blobs at once"),
    retry: int = typer.Option(
        3, "--retry", min=0, metavar="N",
        help="retry a failed request N times (5xx, 429, resets, stalls; downloads resume)"),
    retry_delay: str | None = typer.Option(
        None, "--retry-delay", metavar="DURATION",
        help="wait this long between retries (e.g. 2s, 500ms) [default: exponential backoff]"),
    stall_timeout: str = typer.Option(
        "30s", "--stall-timeout", metavar="DURATION",
        help="give up on a connection that delivers no data for this long (then retry)"),
    signature_policy: str | None = typer.Option(
        None, "--signature-policy", metavar="PATH",
        help="containers-policy.json(5) to enforce [default: ~/.config/containers/policy.json, "
             "else /etc/containers/policy.json]"),
    registries_d: str | None = typer.Option(
        None, "--registries-d", metavar="DIR",
        help="where signatures are kept, containers-registries.d(5) [default: "
             "~/.config/containers/registries.d, else /etc/containers/registries.d]"),
) -> None:
    """Pull REF into the blob store under --root and print the image document."""
    from podkit_image_pull._pull import pull as pull_image
    from podkit_image_pull._retry import RetryPolicy, parse_duration

    policy = RetryPolicy.from_options(
        retry, parse_duration(retry_delay, "--retry-delay") if retry_delay else None,
        parse_duration(stall_timeout, "--stall-timeout"))
    emit(pull_image(reference, root=ctx.obj.roots.root, tls_verify=tls_verify,
                    platform=platform, progress=ctx.obj.progress(),
                    max_workers=max_parallel, retry=policy,
                    signature_policy=signature_policy, registries_d=registries_d,
                    **reg.registry_options(creds=creds, authfile=authfile, cert_dir=cert_dir,
                                           registries_conf=registries_conf,
                                           registries_conf_dir=registries_conf_dir)))


add_inspect_commands(app)  # inspect, tags: cli_inspect.py


def main() -> None:
    # bool_flags: podman spells it --tls-verify=false, typer --no-tls-verify.
    run_app(app, TOOL, default_command="pull", bool_flags=["tls-verify"])
