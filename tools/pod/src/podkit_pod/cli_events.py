"""`pod events` (also `pod system events`): glue over _events."""

from __future__ import annotations

import typer


def events_command(
    ctx: typer.Context,
    filter_: list[str] | None = typer.Option(
        None, "--filter", "-f", metavar="KEY=VALUE",
        help="container, image, pod, event (status), label, type, volume, network; the "
             "same key given twice matches either value, different keys must all match"),
    since: str | None = typer.Option(None, "--since", help="only events after this time: "
                                     "RFC3339, Unix seconds, or a duration back (10m)"),
    until: str | None = typer.Option(None, "--until", help="only events before this "
                                     "time (same forms; a duration counts forward)"),
    fmt: str | None = typer.Option(None, "--format", help="json, or a Go template such "
                                   "as '{{.Status}} {{.Name}}'"),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="go on printing new "
                                "events until interrupted (default); --stream=false "
                                "prints the events kept and exits"),
    no_trunc: bool = typer.Option(True, "--no-trunc/--trunc", help="full ids (default)"),
) -> None:
    """Show the event log: what happened to containers, images, pods and networks
    (podman events). Events are kept under the root, 1 MB of the newest
    (PODKIT_EVENTS_MAX_SIZE); PODKIT_EVENTS=none stops recording them.

    Examples:

    \b
        pod events --stream=false
        pod events --since 10m --filter event=died --format '{{.Name}} {{.ContainerExitCode}}'
        pod events --filter container=web --filter type=container --format json
    """
    import signal
    import sys

    from podkit_pod._events import EventsOptions, check_format, format_event, select_events

    opts = EventsOptions(filter_ or (), since, until, stream, fmt, no_trunc)
    check_format(fmt)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    if stream:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
    out = sys.stdout
    try:
        for event in select_events(ctx.obj.roots, opts, stop=lambda: bool(stopping)):
            out.write(format_event(event, fmt, no_trunc=no_trunc))
            out.flush()
            if stopping:
                break
    except BrokenPipeError:  # `pod events | head`: the reader is gone, so are we
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def add_events_command(app: typer.Typer) -> None:
    """Register `events` on pod's app."""
    app.command("events")(events_command)
