"""Command-line options for reaching registries, podman's spelling: shared by commands.

    --tls-verify=BOOL            default: registries.conf decides (insecure = true)
    --creds USER[:PASSWORD]      asks for the password on the terminal when it is left out
    --authfile PATH              [env REGISTRY_AUTH_FILE]
    --cert-dir DIR               *.crt CAs, *.cert/*.key client certificates
    --registries-conf PATH       [env CONTAINERS_REGISTRIES_CONF]
    --registries-conf-dir DIR    drop-ins instead of the registries.conf.d directories

A command declares ``name: type = OPTION`` and passes :func:`registry_options` of the
values to the library call.
"""

from __future__ import annotations

import os
from typing import Any

import typer

from podkit_common.errors import UsageError

TLS_VERIFY = typer.Option(
    None, "--tls-verify/--no-tls-verify",
    help="require HTTPS with a trusted certificate; --tls-verify=false also tries unverified "
         "HTTPS, then plain HTTP [default: registries.conf decides, else true]")
CREDS = typer.Option(
    None, "--creds", metavar="USER[:PASSWORD]",
    help="credentials for the registry; without :PASSWORD it is asked for on the terminal")
AUTHFILE = typer.Option(
    None, "--authfile", metavar="PATH",
    help="auth file to read credentials from, containers-auth.json(5) [env REGISTRY_AUTH_FILE; "
         "default: $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, "
         "~/.docker/config.json]")
CERT_DIR = typer.Option(
    None, "--cert-dir", metavar="DIR",
    help="TLS certificates: *.crt CAs, *.cert/*.key client certificates [default: "
         "/etc/containers/certs.d/HOST:PORT]")
REGISTRIES_CONF = typer.Option(
    None, "--registries-conf", metavar="PATH",
    help="containers-registries.conf(5) [env CONTAINERS_REGISTRIES_CONF; default: "
         "~/.config/containers/registries.conf, else /etc/containers/registries.conf]")
REGISTRIES_CONF_DIR = typer.Option(
    None, "--registries-conf-dir", metavar="DIR",
    help="registries.conf drop-in directory [default: /etc/containers/registries.conf.d and "
         "~/.config/containers/registries.conf.d]")


def registry_options(*, creds: str | None, authfile: str | None, cert_dir: str | None,
                     registries_conf: str | None,
                     registries_conf_dir: str | None) -> dict[str, Any]:
    """The library keyword arguments for these option values."""
    credentials = None
    if creds is not None:
        from podkit_image_pull._auth import parse_credentials

        if ":" not in creds and creds:
            creds = f"{creds}:{_ask_password(creds)}"
        credentials = parse_credentials(creds)
    return {"credentials": credentials, "authfile": authfile, "cert_dir": cert_dir,
            "registries_conf": registries_conf, "registries_conf_dir": registries_conf_dir}


def _ask_password(user: str) -> str:
    """Ask on the controlling terminal, like podman; never read the document channel."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise UsageError(f"--creds {user}: no password given and no terminal to ask on",
                         hint="use --creds USER:PASSWORD, or an auth file") from None
    os.close(fd)
    import getpass

    return getpass.getpass(f"Password for {user}: ")
