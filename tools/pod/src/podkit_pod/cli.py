"""pod: the podman-compatible command line over the podkit stage libraries."""

from __future__ import annotations

import os
import sys

import typer

from podkit_common import errors
from podkit_common.cli import emit, emit_lines, make_app, run_app
from podkit_image_pull import cli_registry as reg
from podkit_pod import __version__

TOOL = "pod"
app = make_app(TOOL, __version__, "Manage images and containers like podman, built from the "
               "podkit stages.", ["podkit_pod"])


SIGNATURE_POLICY = typer.Option(None, "--signature-policy", metavar="PATH",
                                help="containers-policy.json(5) to enforce on pulls")


def _pull_options(tls_verify: bool | None, creds: str | None, authfile: str | None,
                  cert_dir: str | None, signature_policy: str | None) -> dict:
    """podman's registry flags as podkit_image_pull.pull keyword arguments."""
    options = reg.registry_options(creds=creds, authfile=authfile, cert_dir=cert_dir,
                                   registries_conf=None, registries_conf_dir=None)
    return {**options, "tls_verify": tls_verify, "signature_policy": signature_policy}


def _own_error_code(exc: BaseException, code: int) -> int:
    """podman's convention: 125 for the engine's own errors."""
    from podkit_runtime import ContainerCannotStart

    if isinstance(exc, ContainerCannotStart):
        return exc.run_exit_code
    return errors.EXIT_RUN_OWN_ERROR


@app.command(context_settings={"allow_interspersed_args": False})
def run(ctx: typer.Context,
        image: str = typer.Argument(..., help="image reference"),
        command: list[str] | None = typer.Argument(None, help="command and arguments"),
        name: str | None = typer.Option(None, "--name"),
        rm: bool = typer.Option(False, "--rm", help="remove the container when it exits"),
        env: list[str] | None = typer.Option(None, "--env", "-e"),
        workdir: str | None = typer.Option(None, "--workdir", "-w"),
        user: str | None = typer.Option(None, "--user", "-u"),
        entrypoint: str | None = typer.Option(None, "--entrypoint"),
        hostname: str | None = typer.Option(None, "--hostname"),
        interactive: bool = typer.Option(False, "--interactive", "-i"),
        tty: bool = typer.Option(False, "--tty", "-t"),
        read_only: bool = typer.Option(False, "--read-only"),
        network: str = typer.Option("none", "--network", "--net"),
        platform: str | None = typer.Option(None, "--platform"),
        detach: bool = typer.Option(False, "--detach", "-d"),
        tls_verify: bool | None = reg.TLS_VERIFY, creds: str | None = reg.CREDS,
        authfile: str | None = reg.AUTHFILE, cert_dir: str | None = reg.CERT_DIR,
        signature_policy: str | None = SIGNATURE_POLICY) -> int:
    """Run a command in a new container (pulling the image if it is missing)."""
    from podkit_pod._run import RunOptions
    from podkit_pod._run import run as run_container
    from podkit_runtime import BundleOptions
    from podkit_runtime.cli import parse_entrypoint

    if detach:
        raise errors.NotImplementedYet("pod run --detach needs conmon (the lifecycle issue)")
    if tty and not sys.stdin.isatty():
        raise errors.UsageError("--tty needs a terminal on stdin")
    env_items = [e if "=" in e else f"{e}={os.environ[e]}" for e in env or []
                 if "=" in e or e in os.environ]
    bundle_opts = BundleOptions(command=tuple(command or ()),
                                entrypoint=parse_entrypoint(entrypoint), env=tuple(env_items),
                                workdir=workdir, user=user, hostname=hostname, tty=tty,
                                read_only=read_only)
    opts = RunOptions(image=image, command=tuple(command or ()), name=name, remove=rm,
                      network=network, platform=platform, interactive=interactive,
                      pull_options=_pull_options(tls_verify, creds, authfile, cert_dir,
                                                 signature_policy))
    stdin = 0 if interactive or tty else os.open(os.devnull, os.O_RDONLY)
    doc = run_container(ctx.obj.roots, opts, bundle_opts, stdio=(stdin, 1, 2),
                        progress=ctx.obj.progress())
    return int(doc["state"]["exit_code"])


@app.command()
def pull(ctx: typer.Context, image: str = typer.Argument(...),
         platform: str | None = typer.Option(None, "--platform"),
         quiet: bool = typer.Option(False, "--quiet", "-q"),
         tls_verify: bool | None = reg.TLS_VERIFY, creds: str | None = reg.CREDS,
         authfile: str | None = reg.AUTHFILE, cert_dir: str | None = reg.CERT_DIR,
         signature_policy: str | None = SIGNATURE_POLICY) -> None:
    """Pull an image and store it; prints the image id like podman."""
    from podkit_pod._run import pull_and_import

    progress = ctx.obj.progress()
    doc = pull_and_import(ctx.obj.roots, image, platform=platform, progress=progress,
                          **_pull_options(tls_verify, creds, authfile, cert_dir,
                                          signature_policy))
    sys.stdout.write(doc["image"]["id"] + "\n")


@app.command()
def images(ctx: typer.Context,
           fmt: str = typer.Option("table", "--format", help="table|json")) -> None:
    """List images."""
    from podkit_storage import list_images

    records = list_images(ctx.obj.roots)
    if fmt == "json":
        emit([{"Id": r["id"], "Names": r.get("names", []), "Digest": r.get("digest")}
              for r in records])
        return
    sys.stdout.write(f"{'REPOSITORY':<40} {'TAG':<12} {'IMAGE ID':<14}\n")
    for r in records:
        for n in r.get("names") or ["<none>:<none>"]:
            repo, _, tag = n.rpartition(":") if ":" in n.rsplit("/", 1)[-1] else (n, "", "")
            sys.stdout.write(f"{repo:<40} {tag or '<none>':<12} {r['id'][:12]:<14}\n")


@app.command()
def ps(ctx: typer.Context, all_: bool = typer.Option(False, "--all", "-a"),
       fmt: str = typer.Option("table", "--format", help="table|json")) -> None:
    """List containers (only exited ones exist until the lifecycle issue)."""
    from podkit_storage import list_containers

    rows = list_containers(ctx.obj.roots) if all_ else []
    if fmt == "json":
        emit_lines({"Id": c["id"], "Names": [c["name"]], "Image": c.get("image_name"),
                    "Created": c.get("created")} for c in rows)
        return
    sys.stdout.write(f"{'CONTAINER ID':<14} {'IMAGE':<40} {'NAMES'}\n")
    for c in rows:
        sys.stdout.write(f"{c['id'][:12]:<14} {c.get('image_name') or '':<40} {c['name']}\n")


@app.command()
def rm(ctx: typer.Context, containers: list[str] = typer.Argument(...),
       force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Remove containers; prints each removed id like podman."""
    from podkit_runtime import remove_bundle
    from podkit_storage import load_container, remove_container

    for ref in containers:
        c = load_container(ctx.obj.roots, ref)
        remove_bundle(ctx.obj.roots, c["id"])
        remove_container(ctx.obj.roots, c["id"])
        sys.stdout.write(c["id"] + "\n")


def main() -> None:
    run_app(app, TOOL, positional_ends_options=("run",), bool_flags=("tls-verify",),
            error_code=_own_error_code)


__all__ = ["app", "emit", "main"]
