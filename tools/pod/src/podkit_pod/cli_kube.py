"""`pod kube generate|play|down` (and podman's older `pod generate kube`, `pod play
kube`): thin typer glue over podkit_pod._kube_generate and _kube_play.

Output is podman 4.3.1's: generate prints the YAML (or writes --filename); play prints
``Pod:``/``Container(s):`` blocks of ids, down ``Pods stopped:``/``Pods removed:``; notes
about fields that are not supported go to stderr, one line each.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from podkit_image_pull import cli_registry as reg

app = typer.Typer(name="kube", help="Generate Kubernetes YAML from pods and containers, and "
                  "run such YAML locally.\n\nExample: pod kube generate web > web.yaml && "
                  "pod kube play web.yaml", no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None)


def _roots(ctx: typer.Context) -> Any:
    return ctx.find_root().obj.roots


def _read(path: str) -> str:
    from podkit_pod._kube_down import read_text

    return sys.stdin.read() if path == "-" else read_text(path)


def _note(note: str) -> None:
    sys.stderr.write(f"kube play: {note}\n")


@app.command()
def generate(ctx: typer.Context, refs: list[str] = typer.Argument(..., metavar="POD|CTR..."),
             service: bool = typer.Option(False, "--service", "-s",
                                          help="add a Service (NodePort) for the ports"),
             kind: str = typer.Option("pod", "--type", "-t", help="pod | deployment"),
             filename: str | None = typer.Option(None, "--filename", "-f",
                                                 help="write the YAML to this new file")
             ) -> None:
    """Write Kubernetes YAML (a Pod, or a Deployment) for pods or containers.

    Examples:

    \b
        pod kube generate web > web.yaml
        pod kube generate --service --type deployment -f web.yaml web
    """
    import os

    from podkit_common import errors
    from podkit_pod._kube_generate import generate as generate_yaml

    text = generate_yaml(_roots(ctx), refs, service=service, kind=kind)
    if filename is None:
        sys.stdout.write(text)
        return
    try:
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise errors.Conflict(f"cannot write to {filename!r}: file exists",
                              hint="choose a new file name, or remove it") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


@app.command()
def play(ctx: typer.Context, file: str = typer.Argument(..., metavar="FILE|-"),
         replace: bool = typer.Option(False, "--replace",
                                      help="remove pods of the same names first"),
         network: str | None = typer.Option(None, "--network", "--net",
                                            help="the pods' network (default: podkit)"),
         start: str = typer.Option("true", "--start", help="true|false: start the pods"),
         configmap: list[str] | None = typer.Option(None, "--configmap", metavar="FILE",
                                                    help="YAML with more ConfigMaps"),
         down_: bool = typer.Option(False, "--down", help="remove what the YAML made "
                                    "instead (pod kube down)"),
         tls_verify: bool | None = reg.TLS_VERIFY, creds: str | None = reg.CREDS,
         authfile: str | None = reg.AUTHFILE, cert_dir: str | None = reg.CERT_DIR) -> None:
    """Run the Pods, Deployments, PersistentVolumeClaims and ConfigMaps of a YAML file
    as pods, pulling images as needed; prints the ids.

    Examples:

    \b
        pod kube play web.yaml
        pod kube play --replace --network none --start=false web.yaml
        pod kube play --down web.yaml
    """
    if down_:
        down(ctx, file)
        return
    from podkit_pod._kube_play import PlayOptions
    from podkit_pod._kube_play import play as play_yaml
    from podkit_pod._run_command import pull_options
    from podkit_runtime._isolation import bool_word

    pulls = {k: v for k, v in pull_options({"tls_verify": tls_verify, "creds": creds,
                                            "authfile": authfile,
                                            "cert_dir": cert_dir}).items()
             if v is not None}
    options = PlayOptions(replace=replace, network=network, start=bool_word(start, "--start"),
                          configmaps=tuple(_read(f) for f in configmap or ()),
                          pull_options=pulls)
    report = play_yaml(_roots(ctx), _read(file), options, source=file,
                       progress=ctx.find_root().obj.progress(), notify=_note)
    sys.stdout.write(play_text(report))


def play_text(report: dict[str, Any]) -> str:
    """podman's output of kube play: volumes, then per pod its id and its containers'."""
    out = []
    if report["volumes"]:
        out.append("Volumes:" if len(report["volumes"]) > 1 else "Volume:")
        out += [v["name"] for v in report["volumes"]]
    for pod in report["pods"]:
        out += ["Pod:", pod["id"]]
        if pod["containers"]:
            out.append("Containers:" if len(pod["containers"]) > 1 else "Container:")
            out += pod["containers"]
        out.append("")
    return "".join(line + "\n" for line in out)


@app.command()
def down(ctx: typer.Context, file: str = typer.Argument(..., metavar="FILE|-")) -> None:
    """Remove the pods a YAML file describes (stopping them) and the volumes kube play
    made for its claims.

    Examples:

    \b
        pod kube down web.yaml
    """
    from podkit_pod._kube_down import down as down_yaml

    report = down_yaml(_roots(ctx), _read(file), source=file)
    for note in report["notes"]:
        sys.stderr.write(f"kube down: {note}\n")
    ids = [p["id"] for p in report["pods"]]
    out = ["Pods stopped:", *ids, "Pods removed:", *ids] if ids else []
    if report["volumes"]:
        out += ["Volumes removed:", *report["volumes"]]
    sys.stdout.write("".join(line + "\n" for line in out))


def _alias(name: str, command: Any) -> typer.Typer:
    """podman's older spelling: `pod generate kube`, `pod play kube`."""
    group = typer.Typer(name=name, help=f"podman's older `{name} kube`: see pod kube {name}.",
                        no_args_is_help=True, add_completion=False, rich_markup_mode=None)
    group.command("kube")(command)
    return group


generate_app = _alias("generate", generate)
play_app = _alias("play", play)
