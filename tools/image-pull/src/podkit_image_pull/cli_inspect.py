"""``pod-image-pull inspect`` and ``pod-image-pull tags``: look at an image without pulling it.

    pod-image-pull inspect [--tls-verify=false] [--platform OS/ARCH] [--no-tags] REF
    pod-image-pull inspect --raw REF        the manifest (or list) bytes exactly as served
    pod-image-pull inspect --config REF     the image config bytes exactly as stored
    pod-image-pull tags [--tls-verify=false] REF

Registries are reached as ``pull`` reaches them, with the same options (--tls-verify,
--creds, --authfile, --cert-dir, --registries-conf[-dir], see cli_registry.py).

REF is any reference ``pull`` takes (docker://, oci:, oci-archive:, docker-archive:).
Each command prints one JSON document (``pod-image-pull schema inspect``, ``schema
tags``); ``--raw`` and ``--config`` print the verified bytes themselves, so
``pod-image-pull inspect --raw REF | sha256sum`` is the digest.
"""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import emit
from podkit_image_pull import cli_registry as reg

_REF_HELP = ("docker://HOST[:PORT]/REPO[:TAG][@DIGEST], oci:PATH[:REF], oci-archive:PATH[:REF] "
             "or docker-archive:PATH[:NAME:TAG|:@INDEX]")


def inspect_command(
    reference: str = typer.Argument(..., metavar="REF", help=_REF_HELP),
    tls_verify: bool | None = reg.TLS_VERIFY,
    creds: str | None = reg.CREDS,
    authfile: str | None = reg.AUTHFILE,
    cert_dir: str | None = reg.CERT_DIR,
    registries_conf: str | None = reg.REGISTRIES_CONF,
    registries_conf_dir: str | None = reg.REGISTRIES_CONF_DIR,
    platform: str | None = typer.Option(
        None, "--platform", metavar="OS/ARCH[/VARIANT]",
        help="which image of a multi-platform list to describe [default: this machine]"),
    raw: bool = typer.Option(False, "--raw", help="print the manifest bytes as served"),
    config: bool = typer.Option(False, "--config", help="print the image config bytes"),
    no_tags: bool = typer.Option(False, "--no-tags", "-n",
                                 help="do not list the repository's tags (repo_tags is [])"),
) -> None:
    """Describe REF from its manifest and config, like skopeo inspect.

    No layer is downloaded and nothing is stored.
    """
    from podkit_image_pull._inspect import inspect, inspect_raw

    options = reg.registry_options(creds=creds, authfile=authfile, cert_dir=cert_dir,
                                   registries_conf=registries_conf,
                                   registries_conf_dir=registries_conf_dir)
    if raw or config:
        data = inspect_raw(reference, "config" if config else "manifest",
                           tls_verify=tls_verify, platform=platform, **options)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    emit(inspect(reference, tls_verify=tls_verify, platform=platform, repo_tags=not no_tags,
                 **options))


def tags_command(
    reference: str = typer.Argument(..., metavar="REF", help=_REF_HELP),
    tls_verify: bool | None = reg.TLS_VERIFY,
    creds: str | None = reg.CREDS,
    authfile: str | None = reg.AUTHFILE,
    cert_dir: str | None = reg.CERT_DIR,
    registries_conf: str | None = reg.REGISTRIES_CONF,
    registries_conf_dir: str | None = reg.REGISTRIES_CONF_DIR,
) -> None:
    """List the tags of REF's repository (a registry), or the image names an archive or
    layout holds, like skopeo list-tags."""
    from podkit_image_pull._inspect import list_tags

    emit(list_tags(reference, tls_verify=tls_verify,
                   **reg.registry_options(creds=creds, authfile=authfile, cert_dir=cert_dir,
                                          registries_conf=registries_conf,
                                          registries_conf_dir=registries_conf_dir)))


def add_inspect_commands(app: typer.Typer) -> None:
    """Register ``inspect`` and ``tags`` on the pod-image-pull app."""
    app.command("inspect")(inspect_command)
    app.command("tags")(tags_command)
