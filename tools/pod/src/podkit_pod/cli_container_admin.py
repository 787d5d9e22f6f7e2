"""`pod rm`, `restart`, `diff`, `mount`, `umount` and the `container`-only `prune`,
`exists`, `cleanup`: glue over _container_admin with podman's output and exit codes
(ids or names on stdout; `exists` only an exit code, 0 or 1; `rm` of a missing container
exits 1 like podman)."""

from __future__ import annotations

import sys

import typer

from podkit_common import errors


def rm_command(
    ctx: typer.Context,
    containers: list[str] | None = typer.Argument(None, metavar="CONTAINER..."),
    all_: bool = typer.Option(False, "--all", "-a", help="remove every container"),
    force: bool = typer.Option(False, "--force", "-f", help="stop running ones first"),
    ignore: bool = typer.Option(False, "--ignore", "-i", help="a missing container is no error"),
    time_: int | None = typer.Option(None, "--time", "-t", help="seconds to wait before "
                                     "killing a running container (with --force)"),
    volumes: bool = typer.Option(False, "--volumes", "-v",
                                 help="also remove the container's anonymous volumes"),
) -> int:
    """Remove containers (--force stops running ones first); prints each one as given.
    Exit 1 when one does not exist, 2 when one is running (without --force), as podman.

    Examples:

    \b
        pod rm web
        pod rm -f -t 0 web db
        pod rm --all --force
    """
    from podkit_common.cli import fail
    from podkit_pod._containers import remove

    if all_:
        from podkit_pod._ps import all_rows

        refs = [r["Id"] for r in all_rows(ctx.obj.roots) if not r["IsInfra"]]
    elif containers:
        refs = list(containers)
    else:
        raise errors.UsageError("rm needs at least one container name or id, or --all")
    code = 0
    for ref in refs:
        try:
            remove(ctx.obj.roots, ref, force=force, remove_volumes=volumes, timeout=time_)
        except errors.NotFound as exc:
            if ignore:
                continue
            fail("pod", errors.NotFound(f'no container with name or ID "{ref}" found: '
                                        "no such container", hint=exc.hint))
            code = 1  # podman rm's code for a missing container
            continue
        except errors.Conflict as exc:
            fail("pod", exc)
            code = 2  # podman rm's code for a running container without --force
            continue
        sys.stdout.write(ref + "\n")  # as given, like podman (--all: the full ids)
    return code


def restart_command(
    ctx: typer.Context,
    containers: list[str] = typer.Argument(..., metavar="CONTAINER..."),
    time_: int | None = typer.Option(None, "--time", "-t", help="seconds to wait for the "
                                     "stop signal before SIGKILL"),
) -> None:
    """Restart containers: stop (if running) and start them again; prints each name.

    Examples:

    \b
        pod restart web
        pod restart -t 0 web db
    """
    from podkit_pod._container_admin import restart

    for ref in containers:
        restart(ctx.obj.roots, ref, time_)
        sys.stdout.write(ref + "\n")


def diff_command(
    ctx: typer.Context,
    container: str = typer.Argument(..., metavar="CONTAINER"),
    fmt: str | None = typer.Option(None, "--format", help="json"),
) -> None:
    """Show what a container changed in its filesystem (A added, C changed, D deleted).

    Examples:

    \b
        pod diff web
        pod container diff --format json web
    """
    from podkit_pod._container_admin import diff

    changes = diff(ctx.obj.roots, container)
    if fmt == "json":
        import json

        kinds = (("changed", "C"), ("added", "A"), ("deleted", "D"))
        doc = {key: [c["path"] for c in changes if c["kind"] == k] for key, k in kinds}
        sys.stdout.write(json.dumps({k: v for k, v in doc.items() if v}, indent=5) + "\n")
        return
    if fmt not in (None, ""):
        raise errors.UsageError(f"--format {fmt!r}: only json is supported")
    sys.stdout.write("".join(f"{c['kind']} {c['path']}\n" for c in changes))


def mount_command(
    ctx: typer.Context,
    containers: list[str] | None = typer.Argument(None, metavar="[CONTAINER...]"),
    fmt: str | None = typer.Option(None, "--format", help="json (with no CONTAINER)"),
    no_trunc: bool = typer.Option(False, "--no-trunc", help="full ids in the listing"),
) -> None:
    """Mount containers' root filesystems and print where; with no CONTAINER, list the
    mounted ones.

    Examples:

    \b
        pod mount web
        ls $(pod mount web)/etc
        pod mount --format json
    """
    from podkit_pod._container_admin import mount, mounted
    from podkit_pod._ps_format import tabwriter

    if containers:
        for ref in containers:
            sys.stdout.write(mount(ctx.obj.roots, ref)["rootfs"] + "\n")
        return
    listed = mounted(ctx.obj.roots)
    if fmt == "json":
        from podkit_common.jsonio import dumps

        sys.stdout.write(dumps(listed, pretty=True).decode() + "\n")
        return
    sys.stdout.write(tabwriter([[m["id"] if no_trunc else m["id"][:12], m["mountpoint"]]
                                for m in listed]))


def umount_command(
    ctx: typer.Context,
    containers: list[str] | None = typer.Argument(None, metavar="CONTAINER..."),
    all_: bool = typer.Option(False, "--all", "-a", help="unmount every mounted container"),
    force: bool = typer.Option(False, "--force", "-f", help="unmount whatever the count"),
) -> None:
    """Unmount containers' root filesystems (one mount count less; --force: now).

    Examples:

    \b
        pod umount web
        pod umount --all
    """
    from podkit_pod._container_admin import umount

    if not containers and not all_:
        raise errors.UsageError("umount needs a container name or id, or --all")
    done = umount(ctx.obj.roots, list(containers or ()), all_=all_, force=force)
    sys.stdout.write("".join(ref + "\n" for ref in done))  # --all: the full ids


def prune_command(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", "-f", help="do not ask for confirmation"),
) -> None:
    """Remove every stopped container; prints each removed id.

    Examples:

    \b
        pod container prune -f
    """
    from podkit_pod._container_admin import prune

    if not force and not _confirm("WARNING! This will remove all non running containers.\n"
                                  "Are you sure you want to continue? [y/N] "):
        return
    sys.stdout.write("".join(cid + "\n" for cid in prune(ctx.obj.roots)))


def exists_command(ctx: typer.Context,
                   container: str = typer.Argument(..., metavar="CONTAINER")) -> int:
    """Exit 0 if the container exists, 1 if it does not (nothing is printed).

    Examples:

    \b
        pod container exists web && echo there
    """
    from podkit_pod._container_admin import exists

    return 0 if exists(ctx.obj.roots, container) else 1


def cleanup_command(
    ctx: typer.Context,
    containers: list[str] | None = typer.Argument(None, metavar="CONTAINER..."),
    all_: bool = typer.Option(False, "--all", "-a", help="clean up every exited container"),
    rm: bool = typer.Option(False, "--rm", help="then remove the container"),
) -> None:
    """Release the network and mounts of exited containers; prints each id.

    Examples:

    \b
        pod container cleanup web
        pod container cleanup --all
    """
    from podkit_pod._container_admin import cleanup_containers

    if not containers and not all_:
        raise errors.UsageError("cleanup needs a container name or id, or --all")
    done = cleanup_containers(ctx.obj.roots, list(containers or ()), all_=all_,
                              remove_after=rm)
    sys.stdout.write("".join(cid + "\n" for cid in done))


def _confirm(prompt: str) -> bool:
    """podman's y/N question on stderr; no terminal means no."""
    if not sys.stdin.isatty():
        raise errors.UsageError("refusing to ask for confirmation without a terminal",
                                hint="add --force")
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def add_container_admin_commands(app: typer.Typer) -> None:
    """Register rm, restart, diff, mount and umount on pod's app."""
    app.command("rm")(rm_command)
    app.command("restart")(restart_command)
    app.command("diff")(diff_command)
    app.command("mount")(mount_command)
    app.command("umount")(umount_command)
    app.command("unmount", hidden=True)(umount_command)  # podman's alias


#: Commands only the `container` group has (podman has no top-level ones).
CONTAINER_ONLY = {"prune": prune_command, "exists": exists_command, "cleanup": cleanup_command}
