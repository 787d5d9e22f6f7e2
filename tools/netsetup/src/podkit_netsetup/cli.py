"""pod-netsetup: container networks through CNI plugins (thin typer glue)."""

from __future__ import annotations

import typer

from podkit_common.cli import emit, make_app, read_input, run_app
from podkit_netsetup import __version__

TOOL = "pod-netsetup"
app = make_app(TOOL, __version__, "Wire container networks through CNI plugins.",
               ["podkit_netsetup"])


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_netsetup"])


@app.command()
def attach(ctx: typer.Context,
           network: str = typer.Option("none", "--network", "--net",
                                       help="none | host (CNI networks: not implemented yet)"),
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Attach the container in the input document to a network."""
    from podkit_netsetup import attach as attach_network

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:netsetup:attach-input")
    emit(attach_network(doc, network))


@app.command()
def detach(ctx: typer.Context,
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Detach the container in the input document from its networks."""
    from podkit_netsetup import detach as detach_network

    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:netsetup:attach-input")
    emit(detach_network(doc))


def main() -> None:
    run_app(app, TOOL)
