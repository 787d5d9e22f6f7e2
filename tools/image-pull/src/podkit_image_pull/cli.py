"""pod-image-pull: pull an image from a registry and print the image document.

    pod-image-pull [--root DIR] [--progress MODE] [--tls-verify=false] [--platform OS/ARCH] REF
    pod-image-pull schema [NAME]

``pull`` is the default command, so ``pod-image-pull docker://127.0.0.1:5000/busybox``
works. The output document is described by ``pod-image-pull schema image``.
"""

from __future__ import annotations

import typer

from podkit_common.cli import emit, make_app, run_app
from podkit_image_pull import __version__

TOOL = "pod-image-pull"
app = make_app(TOOL, __version__, "Pull container images from registries, verifying every byte.",
               ["podkit_image_pull"])


@app.command()
def pull(
    ctx: typer.Context,
    reference: str = typer.Argument(
        ..., metavar="REF",
        help="[docker://][HOST[:PORT]/]REPO[:TAG][@DIGEST]; unqualified names are docker.io"),
    tls_verify: bool = typer.Option(
        True, "--tls-verify/--no-tls-verify",
        help="require HTTPS with a trusted certificate; --tls-verify=false also tries "
             "unverified HTTPS, then plain HTTP"),
    platform: str | None = typer.Option(
        None, "--platform", metavar="OS/ARCH[/VARIANT]",
        help="which image of a multi-platform list to pull [default: this machine]"),
) -> None:
    """Pull REF into the blob store under --root and print the image document."""
    from podkit_image_pull._pull import pull as pull_image

    emit(pull_image(reference, root=ctx.obj.roots.root, tls_verify=tls_verify,
                    platform=platform, progress=ctx.obj.progress()))


def main() -> None:
    # bool_flags: podman spells it --tls-verify=false, typer --no-tls-verify.
    run_app(app, TOOL, default_command="pull", bool_flags=["tls-verify"])
