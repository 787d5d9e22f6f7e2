"""`pod info`, `pod version` and `pod system df|prune|reset|check|info`: glue over _system
and _system_space with podman's output (info as YAML, or `--format json` / a template;
version as podman's aligned lines)."""

from __future__ import annotations

import sys

import typer

from podkit_common import errors

system_app = typer.Typer(name="system", help="Manage podkit's storage and state like "
                         "podman system.", no_args_is_help=True, add_completion=False,
                         rich_markup_mode=None)


def _json(doc: object) -> str:
    from podkit_common.jsonio import dumps

    return dumps(doc, pretty=True).decode() + "\n"


def info_command(ctx: typer.Context,
                 fmt: str | None = typer.Option(None, "--format", "-f",
                                                help="json, or a Go template such as "
                                                "'{{.Host.Kernel}}'")) -> None:
    """Display podkit's view of the host and its store (podman info's document).

    Examples:

    \b
        pod info
        pod info --format json | jq .store.containerStore
        pod info --format '{{.host.ociRuntime.path}} {{.store.graphRoot}}'
    """
    from podkit_pod._system import info, to_yaml

    doc = info(ctx.obj.roots)
    if fmt in (None, ""):
        sys.stdout.write(to_yaml(doc))
    elif fmt.strip().lower() == "json":
        sys.stdout.write(_json(doc))
    else:
        from podkit_common.gotemplate import render_one

        sys.stdout.write(render_one(fmt, go_view(doc), name="info"))


#: podman's Go field names where they are not the JSON key with a capital letter.
_GO_NAMES = {"ociRuntime": "OCIRuntime", "cpus": "CPUs", "idMappings": "IDMappings",
             "cpuUtilization": "CPUUtilization", "memFree": "MemFree"}


def go_view(value: object) -> object:
    """The info document with each key also under podman's Go name ({{.Host.Kernel}}
    as well as {{.host.kernel}})."""
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            inner = go_view(v)
            out[key] = inner
            out.setdefault(_GO_NAMES.get(key, key[:1].upper() + key[1:]), inner)
        return out
    if isinstance(value, list):
        return [go_view(v) for v in value]
    return value


def version_command(ctx: typer.Context,
                    fmt: str | None = typer.Option(None, "--format", "-f",
                                                   help="json, or a Go template such as "
                                                   "'{{.Client.Version}}'")) -> None:
    """Display podkit's version (podman version's fields; Python instead of Go).

    Examples:

    \b
        pod version
        pod version --format '{{.Client.Version}}'
    """
    from podkit_pod._system import version

    doc = version()
    if fmt in (None, ""):
        c = doc["Client"]
        lines = [("Client:", "podkit"), ("Version:", c["Version"]),
                 ("API Version:", c["APIVersion"]), ("Python Version:", c["PythonVersion"]),
                 ("Built:", c["BuiltTime"]), ("OS/Arch:", c["OsArch"])]
        sys.stdout.write("".join(f"{k:<16}{v}\n" for k, v in lines))
    elif fmt.strip().lower() == "json":
        from podkit_common.jsonio import dumps

        sys.stdout.write(dumps(doc).decode() + "\n")
    else:
        from podkit_common.gotemplate import render_one

        sys.stdout.write(render_one(fmt, doc, name="version"))


@system_app.command("df")
def df_command(ctx: typer.Context,
               verbose: bool = typer.Option(False, "--verbose", "-v", help="every image, "
                                            "container and volume"),
               fmt: str | None = typer.Option(None, "--format",
                                              help="json, or a Go template over Type, Total, "
                                              "Active, Size, Reclaimable")) -> None:
    """Show podkit's disk usage: images, containers, local volumes.

    Examples:

    \b
        pod system df
        pod system df -v
        pod system df --format '{{.Type}} {{.Size}}'
    """
    from podkit_pod._ps_format import tabwriter
    from podkit_pod._system_space import df_summary, disk_usage, human

    usage = disk_usage(ctx.obj.roots)
    rows = df_summary(usage)
    if verbose:
        sys.stdout.write(_verbose_df(usage))
        return
    if fmt is not None and fmt.strip().lower() == "json":
        sys.stdout.write(_json(rows))
        return
    shown = [{**r, "Size": human(r["Size"]),
              "Reclaimable": f"{human(r['Reclaimable'])} ({r['ReclaimablePercent']}%)"}
             for r in rows]
    if fmt:
        from podkit_common.gotemplate import render_rows

        sys.stdout.write(render_rows(fmt, shown, name="df"))
        return
    cells = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]]
    cells += [[r["Type"], str(r["Total"]), str(r["Active"]), r["Size"], r["Reclaimable"]]
              for r in shown]
    sys.stdout.write(tabwriter(cells))


def _verbose_df(usage: dict) -> str:
    import time

    from podkit_common.humanize import human_duration as ago
    from podkit_pod._ps_format import tabwriter
    from podkit_pod._system_space import human

    now = time.time()
    images = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
               "UNIQUE SIZE", "CONTAINERS"]]
    for i in usage["Images"]:
        for name in i["names"] or ["<none>:<none>"]:
            repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] \
                else (name, "", "<none>")
            images.append([repo, tag, i["id"][:12], _since(i["created"], now), human(i["size"]),
                           "0B", human(i["size"]), str(i["containers"])])
    containers = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                   "STATUS", "NAMES"]]
    for c in usage["Containers"]:
        containers.append([c["id"][:12], c["image_id"][:12], c["command"], str(c["volumes"]),
                           human(c["size"]), ago(now - c["created"]), c["state"],
                           ",".join(c["names"])])
    volumes = [["VOLUME NAME", "LINKS", "SIZE"]]
    volumes += [[v["name"], str(v["links"]), human(v["size"])] for v in usage["Volumes"]]
    return (f"Images space usage:\n\n{tabwriter(images)}\nContainers space usage:\n\n"
            f"{tabwriter(containers)}\nLocal Volumes space usage:\n\n{tabwriter(volumes)}")


def _since(created: str | None, now: float) -> str:
    from podkit_common.humanize import human_duration as ago
    from podkit_runtime._inspect import _ts

    t = _ts(created) if created else None
    return ago(now - t) if t else ""


@system_app.command("prune")
def prune_command(ctx: typer.Context,
                  all_: bool = typer.Option(False, "--all", "-a", help="every unused image, "
                                            "not only dangling ones"),
                  force: bool = typer.Option(False, "--force", "-f", help="do not ask"),
                  volumes: bool = typer.Option(False, "--volumes", help="unused volumes too"),
                  ) -> None:
    """Remove stopped containers, unused networks, dangling (or with --all unused)
    images, and with --volumes unused volumes.

    Examples:

    \b
        pod system prune -f
        pod system prune --all --volumes --force
    """
    from podkit_pod._system_space import human, prune

    if not force:
        items = ["all stopped containers", "all networks not used by at least one container"]
        if volumes:
            items.append("all volumes not used by at least one container")
        items.append("all images without at least one container associated to them"
                     if all_ else "all dangling images")
        items.append("all dangling build cache" if not all_ else "all build cache")
        _confirm("WARNING! This command removes:\n" + "".join(f"\t- {i}\n" for i in items)
                 + "\nAre you sure you want to continue? [y/N] ")
    out = prune(ctx.obj.roots, all_images=all_, volumes=volumes)
    for title, key in (("Deleted Pods", "pods"), ("Deleted Containers", "containers"),
                       ("Deleted Networks", "networks"),
                       ("Deleted Volumes", "volumes"), ("Deleted Images", "images")):
        if out[key]:
            sys.stdout.write(title + "\n" + "".join(x + "\n" for x in out[key]))
    sys.stdout.write(f"Total reclaimed space: {human(out['bytes_freed'])}\n")


@system_app.command("reset")
def reset_command(ctx: typer.Context,
                  force: bool = typer.Option(False, "--force", "-f", help="do not ask")) -> None:
    """Remove every container, image, volume and network podkit made, and podkit's
    state under its --root and --runroot (nothing else there is touched).

    Examples:

    \b
        pod system reset --force
        pod --root /tmp/pk/root --runroot /tmp/pk/run system reset -f
    """
    from podkit_pod._system_space import reset

    roots = ctx.obj.roots
    if not force:
        _confirm("WARNING! This will remove:\n        - all containers\n        - all pods\n"
                 "        - all images\n        - all networks\n        - all volumes\n"
                 f'        - the graphRoot directory: "{roots.root}"\n'
                 f'        - the runRoot directory: "{roots.runroot}"\n'
                 "Are you sure you want to continue? [y/N] ")
    reset(roots)


@system_app.command("check")
def check_command(ctx: typer.Context,
                  repair: bool = typer.Option(False, "--repair", "-r",
                                              help="fix what can be fixed without losing "
                                              "good data")) -> int:
    """Check the store (every layer against its blob), the containers' runtime state,
    network leftovers and lock files of containers that are gone; prints a JSON report
    (each problem with its kind); exit 0 clean, 5 problems left, 6 damaged content.

    Examples:

    \b
        pod system check
        pod system check --repair
    """
    from podkit_common.cli import emit
    from podkit_pod._system_space import check

    report = check(ctx.obj.roots, repair=repair)
    code = report.pop("exit_code")
    emit(report)
    return code


def _confirm(prompt: str) -> None:
    """podman's y/N question on stderr; without a terminal, refuse (exit 125)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    if not sys.stdin.isatty():
        sys.stderr.write("\n")
        raise errors.UsageError("not a terminal: refusing to go on without --force",
                                hint="add --force")
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise typer.Exit(0)


def add_system_commands(app: typer.Typer) -> None:
    """Register info, version and the system group on pod's app."""
    app.command("info")(info_command)
    app.command("version")(version_command)
    system_app.command("info")(info_command)
    app.add_typer(system_app, name="system")
