"""pod-netsetup: container networks through CNI plugins (filled in by the network issue)."""

from __future__ import annotations

import typer

from podkit_common import errors
from podkit_common.cli import make_app, read_input, run_app
from podkit_netsetup import __version__

TOOL = "pod-netsetup"
app = make_app(TOOL, __version__, "Wire container networks through CNI plugins.",
               ["podkit_netsetup"])

_NOT_YET = "pod-netsetup {verb} is not implemented yet"
_HINT = "use --network none for now (pod-runtime bundle runs without a network namespace setup)"


@app.command()
def attach(ctx: typer.Context,
           network: str = typer.Option("podkit", "--network", help="network name(s)")) -> None:
    """Attach the container in the input document to a network (not implemented yet)."""
    read_input()
    raise errors.NotImplementedYet(_NOT_YET.format(verb="attach"), hint=_HINT)


@app.command()
def detach(ctx: typer.Context) -> None:
    """Detach the container in the input document from its networks (not implemented yet)."""
    read_input()
    raise errors.NotImplementedYet(_NOT_YET.format(verb="detach"), hint=_HINT)


def main() -> None:
    run_app(app, TOOL)
