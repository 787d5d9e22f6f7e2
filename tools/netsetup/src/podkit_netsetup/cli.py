"""pod-netsetup: container networks through CNI plugins (thin typer glue)."""

from __future__ import annotations

import podkit_common.fast_version  # noqa: F401  (--version before typer: exits there)

# isort: split
import sys

import typer

from podkit_common.cli import composed, emit, emit_lines, make_app, read_input, run_app
from podkit_netsetup import __version__
from podkit_netsetup.cli_network_options import DECLARATION as NETWORK_OPTIONS

TOOL = "pod-netsetup"
app = make_app(TOOL, __version__, "Wire container networks through CNI plugins.",
               ["podkit_netsetup"])
network_app = typer.Typer(help="Manage networks (CNI conflists in podkit's config dir).",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(network_app, name="network")

CONFIG_DIR_HELP = "network config dir [env PODKIT_NETWORK_CONFIG_DIR; <root>/networks]"


def _schemas():
    from podkit_common.schemas import SchemaSet

    return SchemaSet(["podkit_netsetup"])


def _roots(ctx: typer.Context):
    return ctx.find_root().obj.roots


def _store(ctx: typer.Context, config_dir: str | None):
    from podkit_netsetup._networks import NetworkStore

    return NetworkStore(_roots(ctx), config_dir)


def _doc(input_path: str):
    doc = read_input(input_path)
    _schemas().validate(doc, "urn:podkit:netsetup:attach-input")
    return doc


def _config_dir_option():
    return typer.Option(None, "--network-config-dir", metavar="DIR", help=CONFIG_DIR_HELP)


@app.command()
def attach(ctx: typer.Context,
           network: str = typer.Option("none", "--network", "--net",
                                       help="none | host | NAME[,NAME] | container:ID | ns:PATH"),
           ip: list[str] = typer.Option([], "--ip", help="static address (repeatable)"),
           mac: str | None = typer.Option(None, "--mac-address", help="static MAC address"),
           publish: list[str] = typer.Option([], "--publish", "-p",
                                             help="[hostIP:][hostPort:]containerPort[/proto]"),
           publish_all: bool = typer.Option(False, "--publish-all", "-P",
                                            help="publish the image's exposed ports"),
           add_host: list[str] = typer.Option([], "--add-host", help="HOST:IP for /etc/hosts"),
           dns: list[str] = typer.Option([], "--dns", help="name server for resolv.conf"),
           dns_search: list[str] = typer.Option([], "--dns-search"),
           dns_option: list[str] = typer.Option([], "--dns-option"),
           config_dir: str | None = _config_dir_option(),
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Attach the container in the input document to a network."""
    from podkit_netsetup import AttachOptions
    from podkit_netsetup import attach as attach_network

    doc = _doc(input_path)
    opts = AttachOptions(network=network, ips=tuple(ip), mac=mac, publish=tuple(publish),
                         publish_all=publish_all, add_hosts=tuple(add_host), dns=tuple(dns),
                         dns_search=tuple(dns_search), dns_options=tuple(dns_option),
                         config_dir=config_dir)
    local = network in ("none", "host")
    emit(attach_network(doc, opts, roots=None if local else _roots(ctx)))


@app.command()
def detach(ctx: typer.Context,
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Detach the container in the input document from its networks (DEL, netns removed)."""
    from podkit_netsetup import detach as detach_network

    doc = _doc(input_path)
    local = (doc.get("network") or {}).get("mode") in (None, "none", "host")
    emit(detach_network(doc, roots=None if local else _roots(ctx)))


@app.command()
def check(ctx: typer.Context,
          input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Run CNI CHECK for every network of the container; exit 10 when one fails."""
    from podkit_netsetup import check_networks

    doc = _doc(input_path)
    emit(check_networks(doc, roots=_roots(ctx)))


@app.command()
def status(ctx: typer.Context,
           input_path: str = typer.Option("-", "--input", metavar="FILE")) -> None:
    """Print what the container is attached to (from podkit's attachment record)."""
    from podkit_netsetup import network_status

    doc = _doc(input_path)
    emit(network_status(doc, roots=_roots(ctx)))


@app.command()
def cleanup(ctx: typer.Context, config_dir: str | None = _config_dir_option()) -> None:
    """Release namespaces, CNI state and leases of containers that are gone."""
    from podkit_netsetup import cleanup as run_cleanup

    emit(run_cleanup(_roots(ctx), config_dir))


def _network_create_head(ctx: typer.Context) -> None:
    raise NotImplementedError  # only the signature is used


def _network_create_tail(config_dir: str | None = _config_dir_option()) -> None:
    raise NotImplementedError  # only the signature is used


def _network_create(ctx: typer.Context, config_dir: str | None, **values: object) -> None:
    """Create a network (ensure-style: the same config again is changed:false)."""
    from podkit_netsetup.cli_network_options import spec

    report, changed = _store(ctx, config_dir).create(spec(values))
    emit({"changed": changed, "network": report})


network_app.command("create")(composed(_network_create, _network_create_head,
                                       NETWORK_OPTIONS, _network_create_tail,
                                       name="network_create"))


@network_app.command("ls")
def network_ls(ctx: typer.Context,
               fmt: str = typer.Option("json", "--format", help="json (lines) | table"),
               config_dir: str | None = _config_dir_option()) -> None:
    """List networks, one JSON document per line."""
    store = _store(ctx, config_dir)
    reports = store.each(store.report)
    if fmt == "table":
        rows = [("NAME", "DRIVER", "SUBNET", "INTERFACE", "CONTAINERS")]
        rows += [(r["name"], r["driver"], r["subnets"][0]["subnet"] or "",
                  r["network_interface"] or "", str(r["containers"])) for r in reports]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
            sys.stdout.write("  ".join(cells).rstrip() + "\n")
        return
    emit_lines(reports)


@network_app.command("inspect")
def network_inspect(ctx: typer.Context, name: str = typer.Argument(...),
                    config_dir: str | None = _config_dir_option()) -> None:
    """Print one network: its podkit description and its conflist."""
    store = _store(ctx, config_dir)
    emit({"changed": False, "network": store.report(name), "conflist": store.load(name),
          "members": store.members(name)})


@network_app.command("rm")
def network_rm(ctx: typer.Context, names: list[str] = typer.Argument(...),
               force: bool = typer.Option(False, "--force", "-f",
                                          help="detach attached containers first"),
               config_dir: str | None = _config_dir_option()) -> None:
    """Remove networks (and their bridges); refuses while containers are attached."""
    store = _store(ctx, config_dir)
    removed = [store.remove(n, force=force) for n in names]
    emit({"changed": True, "removed": removed})


@network_app.command("prune")
def network_prune(ctx: typer.Context, config_dir: str | None = _config_dir_option()) -> None:
    """Remove every network no container is attached to (except the default)."""
    removed = _store(ctx, config_dir).prune()
    emit({"changed": bool(removed), "removed": removed})


@network_app.command("exists")
def network_exists(ctx: typer.Context, name: str = typer.Argument(...),
                   config_dir: str | None = _config_dir_option()) -> int:
    """Exit 0 if the network exists, 1 if not (like podman)."""
    found = _store(ctx, config_dir).exists(name)
    emit({"changed": False, "name": name, "exists": found})
    return 0 if found else 1


def main() -> None:
    run_app(app, TOOL)
