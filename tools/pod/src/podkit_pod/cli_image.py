"""pod's image commands with podman 4.3's command lines, output and exit codes.

    pod images | image ls | image list   the table, --format, -q, -a, --digests, ...
    pod image inspect IMAGE...           podman's JSON (5-space indent) or --format
    pod rmi | image rm IMAGE...          "Untagged: NAME" / "Deleted: ID"; exit 1 unknown
                                         image, 2 image in use, 125 otherwise
    pod tag | image tag IMAGE NAME...    (no output)
    pod untag | image untag IMAGE [NAME...]
    pod image exists IMAGE               exit 0 / 1, no output
    pod image prune [-a] [-f]            the removed ids
    pod image history IMAGE              ID CREATED CREATED BY SIZE COMMENT
    pod image tree IMAGE                 the layers and the images they top
    pod image save|load|import|pull      the top-level commands, registered again

Each command is one function registered under both of its names.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

IMAGE_HELP = """Manage images like podman image.

\b
Examples:
  pod image ls
  pod image inspect --format '{{.Id}}' busybox"""

image_app = typer.Typer(name="image", help=IMAGE_HELP, no_args_is_help=True,
                        add_completion=False, rich_markup_mode=None)

FORMAT = typer.Option(None, "--format", metavar="FORMAT",
                      help="json, table, or a Go template ('{{.ID}} {{.Repository}}')")


def _quiet(ctx: typer.Context, quiet: bool) -> bool:
    # pod's argv rewriting moves -q/--quiet in front of the command as the global flag
    return quiet or bool(getattr(ctx.obj, "quiet", False))


def images_command(
        ctx: typer.Context,
        image: str | None = typer.Argument(None, metavar="[IMAGE]",
                                           help="list only images matching this reference"),
        all_: bool = typer.Option(False, "--all", "-a", help="also intermediate images"),
        digests: bool = typer.Option(False, "--digests", help="show a DIGEST column"),
        filter_: list[str] | None = typer.Option(
            None, "--filter", "-f", metavar="KEY=VALUE",
            help="reference, dangling, label, before, since, id, containers, intermediate"),
        fmt: str | None = FORMAT,
        noheading: bool = typer.Option(False, "--noheading", "-n", help="no header line"),
        no_trunc: bool = typer.Option(False, "--no-trunc", help="full image ids"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="image ids only"),
        sort: str = typer.Option("created", "--sort",
                                 help="created | id | repository | size | tag"),
) -> None:
    """List images in local storage.

    \b
    Examples:
      pod images
      pod images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
      pod images --filter dangling=true -q
    """
    from podkit_pod._command_bodies import images_body

    images_body(ctx.obj, {"image": image, "all_": all_, "digests": digests,
                          "filter_": filter_, "fmt": fmt, "noheading": noheading,
                          "no_trunc": no_trunc, "quiet": quiet, "sort": sort})


def inspect_command(ctx: typer.Context,
                    refs: list[str] = typer.Argument(..., metavar="IMAGE..."),
                    fmt: str | None = typer.Option(None, "--format", "-f", metavar="FORMAT",
                                                   help="json or a Go template")) -> None:
    """Display the configuration of images as podman does (a JSON array).

    \b
    Examples:
      pod image inspect busybox
      pod image inspect --format '{{.Id}} {{.Config.Cmd}}' busybox
    """
    from podkit_pod._image_inspect import inspect_document

    write_inspected([lambda r=r: inspect_document(ctx.obj.roots, r) for r in refs], fmt)


def write_inspected(makers: list[Callable[[], dict[str, Any]]], fmt: str | None) -> None:
    """podman inspect's output for the objects ``makers`` produce: the JSON array (5
    spaces), or each object through the template; the objects found are printed even
    when a later one is missing, then the first error is raised (exit 125)."""
    from podkit_common import errors
    from podkit_common.gotemplate import go_json, is_json, render_one

    docs: list[dict[str, Any]] = []
    failure: errors.PodkitError | None = None
    for make in makers:
        try:
            docs.append(make())
        except errors.NotFound as exc:
            failure = failure or exc
    if fmt and not is_json(fmt):
        sys.stdout.write("".join(render_one(fmt, d) for d in docs))
    else:
        sys.stdout.write(go_json(docs, indent=5))
    if failure is not None:
        raise failure


def rmi_command(ctx: typer.Context,
                refs: list[str] | None = typer.Argument(None, metavar="IMAGE..."),
                all_: bool = typer.Option(False, "--all", "-a", help="remove every image"),
                force: bool = typer.Option(False, "--force", "-f",
                                           help="also remove the containers using them"),
                ignore: bool = typer.Option(False, "--ignore", "-i",
                                            help="ignore images that do not exist")) -> int:
    """Remove images; prints "Untagged: NAME" and "Deleted: ID" lines like podman.

    Exit 1 when an image is not known, 2 when one is in use, 125 for other errors.

    \b
    Examples:
      pod rmi busybox
      pod rmi -f $(pod images -q)
    """
    from podkit_common import errors
    from podkit_common.cli_base import fail
    from podkit_storage import list_images, remove_images

    roots = ctx.obj.roots
    if all_:
        if refs:
            raise errors.UsageError("when using the --all switch, you may not pass any "
                                    "images names or IDs")
        targets = [r["id"] for r in list_images(roots)]
    elif not refs:
        raise errors.UsageError("image name or ID must be specified")
    else:
        targets = list(refs)
    from podkit_pod._image_list import summaries

    # podman removes a parent image (its layers stay for the child) but prints only
    # its "Untagged:" lines
    parents = {s["ParentId"] for s in summaries(roots, all_=True) if s["ParentId"]}
    code = 0
    for ref in targets:
        try:
            if force:
                _remove_users(roots, ref)
            report = remove_images(roots, [ref], force=force)
        except errors.NotFound as exc:
            if ignore:
                continue
            fail("pod", exc)
            code = code or 1
            continue
        except errors.Conflict as exc:
            fail("pod", exc)
            code = code or (2 if "in use" in exc.message else 125)
            continue
        for name in report.get("untagged", []):
            sys.stdout.write(f"Untagged: {name}\n")
        for ident in report.get("deleted", []):
            if ident not in parents:
                sys.stdout.write(f"Deleted: {ident}\n")
    return code


def _remove_users(roots: Any, ref: str) -> None:
    """``rmi -f``: remove the containers using the image whole (runtime, network and
    storage halves, stopping running ones), as ``podman rmi -f`` does."""
    from podkit_pod._containers import remove
    from podkit_storage import find_image, list_containers

    image_id = find_image(roots, ref)["id"]
    for c in list_containers(roots):
        if c.get("image_id") == image_id:
            remove(roots, c["id"], force=True)


def tag_command(ctx: typer.Context, image: str = typer.Argument(..., metavar="IMAGE"),
                names: list[str] = typer.Argument(..., metavar="TARGET_NAME...")) -> None:
    """Add names to an image.

    \b
    Example:
      pod tag busybox localhost/mybox:1.0
    """
    from podkit_storage import tag_image

    tag_image(ctx.obj.roots, image, names)


def untag_command(ctx: typer.Context, image: str = typer.Argument(..., metavar="IMAGE"),
                  names: list[str] | None = typer.Argument(None, metavar="[NAME...]")) -> None:
    """Remove names from an image (all of them when none are given).

    \b
    Example:
      pod untag busybox localhost/mybox:1.0
    """
    from podkit_storage import untag_image

    untag_image(ctx.obj.roots, image, list(names or []))


def exists_command(ctx: typer.Context,
                   image: str = typer.Argument(..., metavar="IMAGE")) -> int:
    """Exit 0 when the image is in local storage, 1 when it is not.

    \b
    Example:
      pod image exists busybox || pod pull busybox
    """
    from podkit_pod._image_inspect import image_exists

    return 0 if image_exists(ctx.obj.roots, image) else 1


def prune_command(ctx: typer.Context,
                  all_: bool = typer.Option(False, "--all", "-a",
                                            help="every image no container uses"),
                  force: bool = typer.Option(False, "--force", "-f",
                                             help="do not ask for confirmation"),
                  filter_: list[str] | None = typer.Option(
                      None, "--filter", metavar="KEY=VALUE",
                      help="label=K[=V], until=24h|TIME, ... (as pod images)")) -> None:
    """Remove dangling images (with --all: every unused image); prints their ids.

    \b
    Example:
      pod image prune -a -f
    """
    from podkit_storage import prune_images

    if not force:
        what = ("all images not used by any container" if all_
                else "all dangling images")
        sys.stdout.write(f"WARNING! This command removes {what}.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    if filter_:
        from podkit_pod._image_list import summaries
        from podkit_storage import remove_images

        # the images the filters select, of those prune would take: unused, and
        # dangling unless --all
        for s in summaries(ctx.obj.roots, all_=True, filters=list(filter_)):
            if s["Containers"] == 0 and (all_ or s.get("Dangling")):
                # force: by id despite several names (no container uses it: checked)
                report = remove_images(ctx.obj.roots, [s["Id"]], force=True)
                for ident in report.get("deleted", []):
                    sys.stdout.write(ident + "\n")
        return
    report = prune_images(ctx.obj.roots, all_unused=all_)
    for ident in report.get("deleted", []):
        sys.stdout.write(ident + "\n")


def history_command(ctx: typer.Context, image: str = typer.Argument(..., metavar="IMAGE"),
                    fmt: str | None = FORMAT,
                    human: bool = typer.Option(True, "--human/--no-human", "-H",
                                               help="human sizes and times"),
                    no_trunc: bool = typer.Option(False, "--no-trunc"),
                    quiet: bool = typer.Option(False, "--quiet", "-q",
                                               help="ids only")) -> None:
    """Show the history of an image (newest layer first).

    \b
    Example:
      pod image history --format '{{.CreatedBy}} {{.Size}}' busybox
    """
    from podkit_common.gotemplate import is_json, render_rows
    from podkit_pod import _image_list as L

    entries = L.history(ctx.obj.roots, image)
    if _quiet(ctx, quiet):
        sys.stdout.write("".join((e["ID"] if no_trunc else e["ID"][:12]) + "\n"
                                 for e in entries))
        return
    if is_json(fmt):
        from podkit_common.jsonio import dumps

        sys.stdout.write(dumps(L.history_json(entries)).decode() + "\n")
        return
    rows = L.history_rows(entries, no_trunc=no_trunc, human=human)
    sys.stdout.write(render_rows(fmt, rows, default=L.HISTORY_TABLE,
                                 headers=L.HISTORY_HEADERS, name="history",
                                 type_name="images.historyReporter"))


def tree_command(ctx: typer.Context, image: str = typer.Argument(..., metavar="IMAGE"),
                 whatrequires: bool = typer.Option(False, "--whatrequires")) -> None:
    """Print the layers of an image as a tree, with the images each layer tops
    (--whatrequires: the layers of the images built on it).

    \b
    Examples:
      pod image tree busybox
      pod image tree --whatrequires busybox
    """
    from podkit_pod._image_list import tree

    sys.stdout.write(tree(ctx.obj.roots, image, whatrequires=whatrequires))


def add_image_commands(app: typer.Typer, pull: Callable[..., Any]) -> None:
    """Register the image commands on pod's app: top-level names and the ``image``
    group (which also carries pull, save, load and import)."""
    from podkit_pod.cli_images_io import import_command, load_command, save_command

    app.command("images")(images_command)
    app.command("rmi")(rmi_command)
    app.command("tag")(tag_command)
    app.command("untag")(untag_command)
    for name, fn in (("ls", images_command), ("list", images_command),
                     ("inspect", inspect_command), ("rm", rmi_command),
                     ("tag", tag_command), ("untag", untag_command),
                     ("exists", exists_command), ("prune", prune_command),
                     ("history", history_command), ("tree", tree_command),
                     ("pull", pull), ("save", save_command), ("load", load_command),
                     ("import", import_command)):
        image_app.command(name)(fn)
    app.add_typer(image_app, name="image")
