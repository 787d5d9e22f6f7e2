"""`pod network ...`: podman 4.3's network commands over pod-netsetup's NetworkStore.

    create NAME        prints the name (exit 125 if it exists, unless --ignore)
    ls                 NETWORK ID  NAME  DRIVER; --format, -q, --noheading, --filter
    inspect NAME...    podman's JSON array (5-space indent) or --format per network
    rm NAME...         prints each name; exit 1 for an unknown network, 2 when in use
                       (-f removes the containers using it)
    prune [-f]         prints the removed names
    exists NAME        exit 0 / 1
    connect NET CTR    one more network (the next ethN) for an attached container
    disconnect NET CTR DEL of that one network
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from podkit_common.cli import composed
from podkit_netsetup.cli_network_options import DECLARATION as NETWORK_OPTIONS

HELP = """Manage networks like podman network.

\b
Examples:
  pod network create --internal backend
  pod network ls"""

app = typer.Typer(name="network", help=HELP,
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _store(ctx: typer.Context) -> Any:
    from podkit_pod._network_report import store

    return store(ctx.obj.roots)


def _create_head(ctx: typer.Context) -> None:
    raise NotImplementedError  # only the signature is used


def _create_tail(
        label: list[str] | None = typer.Option(None, "--label", metavar="KEY=VALUE"),
        ignore: bool = typer.Option(False, "--ignore", help="no error when the network exists"),
        ipv6: bool = typer.Option(False, "--ipv6")) -> None:
    raise NotImplementedError  # only the signature is used


def _create(ctx: typer.Context, label: list[str] | None, ignore: bool, ipv6: bool,
            **values: Any) -> None:
    """Create a network; prints its name.

    \b
    Example:
      pod network create --internal --subnet 10.99.42.0/24 backend
    """
    from podkit_common import errors
    from podkit_common.keyvalues import key_values
    from podkit_netsetup.cli_network_options import spec
    from podkit_pod._network_report import set_labels

    if ipv6:
        raise errors.NotImplementedYet("pod network create --ipv6 is not built yet")
    network = spec(values)
    labels = key_values(label, "--label")
    name = network.name
    store = _store(ctx)
    if store.exists(name):
        if ignore:
            sys.stdout.write(name + "\n")
            return
        raise errors.Conflict(f"network name {name} already used: network already exists",
                              hint="use --ignore, or remove it first")
    store.create(network)
    if labels:
        set_labels(store, name, labels)
    sys.stdout.write(name + "\n")


app.command("create")(composed(_create, _create_head, NETWORK_OPTIONS, _create_tail,
                               name="create"))


@app.command("ls")
def ls(ctx: typer.Context,
       fmt: str | None = typer.Option(None, "--format", metavar="FORMAT",
                                      help="json, table, or a Go template ('{{.Name}}')"),
       filter_: list[str] | None = typer.Option(None, "--filter", "-f",
                                                metavar="KEY=VALUE",
                                                help="name, id, driver, label"),
       noheading: bool = typer.Option(False, "--noheading", help="no header line"),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="full network ids"),
       quiet: bool = typer.Option(False, "--quiet", "-q", help="names only")) -> None:
    """List networks.

    \b
    Examples:
      pod network ls
      pod network ls --filter driver=bridge --format '{{.Name}} {{.NetworkInterface}}'
    """
    from podkit_common.gotemplate import go_json, is_json, render_rows
    from podkit_pod import _network_report as R

    store = _store(ctx)
    docs = R.matches(store.each(lambda n: R.inspect_doc(store, n)), list(filter_ or []))
    if quiet or getattr(ctx.obj, "quiet", False):
        sys.stdout.write("".join(d["name"] + "\n" for d in docs))
        return
    if is_json(fmt):
        sys.stdout.write(go_json(docs, indent=2))  # podman: two spaces here
        return
    sys.stdout.write(render_rows(fmt, R.ls_rows(docs, no_trunc=no_trunc), noheading=noheading,
                                 default=R.TABLE, headers=R.HEADERS, name="network",
                                 type_name=R.TYPE_NAME))


app.command("list", hidden=True)(ls)  # podman accepts both names


@app.command("inspect")
def inspect(ctx: typer.Context, names: list[str] = typer.Argument(..., metavar="NETWORK..."),
            fmt: str | None = typer.Option(None, "--format", "-f", metavar="FORMAT",
                                           help="json or a Go template")) -> None:
    """Display networks as podman does (a JSON array).

    \b
    Example:
      pod network inspect --format '{{range .Subnets}}{{.Subnet}}{{end}}' backend
    """
    from podkit_pod._network_report import inspect_doc
    from podkit_pod.cli_image import write_inspected

    store = _store(ctx)
    write_inspected([lambda n=n: inspect_doc(store, n) for n in names], fmt)


@app.command("rm")
def rm(ctx: typer.Context, names: list[str] = typer.Argument(..., metavar="NETWORK..."),
       force: bool = typer.Option(False, "--force", "-f",
                                  help="remove the containers using it first")) -> int:
    """Remove networks; prints each name. Exit 1 when a network does not exist, 2 when
    containers use it (--force removes them, like podman).

    \b
    Example:
      pod network rm backend
    """
    from podkit_common import errors
    from podkit_common.cli_base import fail

    store = _store(ctx)
    code = 0
    for name in names:
        if not store.exists(name):
            fail("pod", errors.NotFound(f"unable to find network with name or ID {name}: "
                                        "network not found"))
            code = code or 1
            continue
        members = store.members(name)
        if members and not force:
            fail("pod", errors.Conflict(
                f'"{name}" has associated containers with it. Use -f to forcibly delete '
                "containers and pods: network is being used"))
            code = code or 2
            continue
        if members:
            from podkit_pod._containers import remove

            for cid in members:
                try:
                    remove(ctx.obj.roots, cid, force=True)
                except errors.NotFound:
                    continue  # a member record left by a container already gone
        store.remove(name, force=force)
        sys.stdout.write(name + "\n")
    return code


@app.command("prune")
def prune(ctx: typer.Context,
          force: bool = typer.Option(False, "--force", "-f",
                                     help="do not ask for confirmation")) -> None:
    """Remove every network no container uses (never the default); prints their names.

    \b
    Example:
      pod network prune -f
    """
    if not force:
        sys.stdout.write("WARNING! This will remove all networks not used by at least one "
                         "container.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    for name in _store(ctx).prune():
        sys.stdout.write(name + "\n")


@app.command("exists")
def exists(ctx: typer.Context, name: str = typer.Argument(..., metavar="NETWORK")) -> int:
    """Exit 0 when the network exists, 1 when it does not.

    \b
    Example:
      pod network exists backend || pod network create --internal backend
    """
    from podkit_common.names import valid_name

    return 0 if valid_name(name) and _store(ctx).exists(name) else 1


@app.command("connect")
def connect(ctx: typer.Context, network: str = typer.Argument(..., metavar="NETWORK"),
            container: str = typer.Argument(..., metavar="CONTAINER")) -> None:
    """Connect a container (attached to a network already) to one more network.

    \b
    Example:
      pod network connect backend web
    """
    from podkit_pod._network_connect import connect as connect_network

    connect_network(ctx.obj.roots, network, container)


@app.command("disconnect")
def disconnect(ctx: typer.Context, network: str = typer.Argument(..., metavar="NETWORK"),
               container: str = typer.Argument(..., metavar="CONTAINER")) -> None:
    """Disconnect a container from one of its networks.

    \b
    Example:
      pod network disconnect backend web
    """
    from podkit_pod._network_connect import disconnect as disconnect_network

    disconnect_network(ctx.obj.roots, network, container)
