"""`network create`'s options, declared once: `pod-netsetup network create` and
`pod network create` (podkit_pod.cli_network) take the very same ones, with podman's
names and defaults.

Only the signature of :func:`_declaration` is used; :func:`podkit_common.cli.composed`
splices it into each command's own. :func:`spec` turns the values into a NetworkSpec.
"""

from __future__ import annotations

from typing import Any

import typer


def _declaration(
    name: str = typer.Argument(..., metavar="NAME"),
    subnet: str | None = typer.Option(None, "--subnet", metavar="CIDR"),
    gateway: str | None = typer.Option(None, "--gateway", metavar="IP"),
    ip_range: str | None = typer.Option(None, "--ip-range", metavar="CIDR"),
    internal: bool = typer.Option(False, "--internal", help="no default route, no masquerading"),
    disable_dns: bool = typer.Option(False, "--disable-dns"),
    driver: str = typer.Option("bridge", "--driver", "-d", help="bridge | macvlan | ipvlan"),
    opt: list[str] | None = typer.Option(None, "--opt", "-o", metavar="KEY=VALUE"),
) -> None:
    """The options of `network create` (a signature, never called)."""


DECLARATION = _declaration


def spec(values: dict[str, Any]) -> Any:
    """The NetworkSpec that the declared options in ``values`` describe."""
    from podkit_netsetup._networks import NetworkSpec, parse_options

    return NetworkSpec(name=values["name"], subnet=values["subnet"],
                       gateway=values["gateway"], ip_range=values["ip_range"],
                       internal=values["internal"], disable_dns=values["disable_dns"],
                       driver=values["driver"], options=parse_options(values["opt"] or []))
