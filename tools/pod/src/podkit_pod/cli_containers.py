"""pod's container commands over the runtime lifecycle: logs, stop, kill, wait, inspect,
start, and cleanup (conmon's exit command for containers `pod run -d` made). Output is
podman's: ids and names on stdout, inspect as a JSON array, logs as the raw bytes."""

from __future__ import annotations

import sys

import typer


def add_container_commands(app: typer.Typer) -> None:
    """Register the commands on pod's app."""

    @app.command()
    def logs(ctx: typer.Context, container: str = typer.Argument(...),
             follow: bool = typer.Option(False, "--follow", "-f"),
             tail: int = typer.Option(-1, "--tail"),
             since: str | None = typer.Option(None, "--since"),
             until: str | None = typer.Option(None, "--until"),
             timestamps: bool = typer.Option(False, "--timestamps", "-t")) -> None:
        """Print a container's log (its stdout on stdout, its stderr on stderr).

        Examples:

        \b
            pod logs web
            pod logs -f --tail 10 web
            pod logs --since 10m -t web
        """
        from podkit_runtime import container_log
        from podkit_runtime._logs import parse_time_filter

        for entry in container_log(ctx.obj.roots, container, follow=follow,
                                   tail=None if tail < 0 else tail,
                                   since_ns=parse_time_filter(since) if since else None,
                                   until_ns=parse_time_filter(until) if until else None):
            stream = sys.stderr if entry.stream == "stderr" else sys.stdout
            stream.buffer.write(entry.render(timestamps))
            if follow:
                stream.flush()

    @app.command()
    def stop(ctx: typer.Context, containers: list[str] = typer.Argument(...),
             time_: int | None = typer.Option(None, "--time", "-t"),
             stop_signal: str | None = typer.Option(None, "--stop-signal")) -> None:
        """Stop containers: the stop signal, then SIGKILL after --time seconds.

        Examples:

        \b
            pod stop web
            pod stop -t 0 web db
        """
        from podkit_runtime import stop_container

        for ref in containers:
            doc = stop_container(ctx.obj.roots, ref, time_, stop_signal)
            for line in doc.get("warnings", []):
                sys.stderr.write(f"WARN[0000] {line}\n")
            sys.stdout.write(ref + "\n")

    @app.command()
    def kill(ctx: typer.Context, containers: list[str] = typer.Argument(...),
             signal: str = typer.Option("SIGKILL", "--signal", "-s")) -> None:
        """Send a signal to containers.

        Examples:

        \b
            pod kill web
            pod kill -s SIGHUP web
        """
        from podkit_runtime import kill_container

        for ref in containers:
            kill_container(ctx.obj.roots, ref, signal)
            sys.stdout.write(ref + "\n")

    @app.command()
    def wait(ctx: typer.Context, containers: list[str] = typer.Argument(...),
             condition: list[str] | None = typer.Option(None, "--condition")) -> None:
        """Wait for containers to exit; prints each exit code.

        Examples:

        \b
            pod wait web
            pod wait --condition running web
        """
        from podkit_runtime import wait_container

        for ref in containers:
            _, seen = wait_container(ctx.obj.roots, ref, condition or ("exited",))
            sys.stdout.write(f"{seen.exit_code if seen.exit_code is not None else -1}\n")

    @app.command()
    def inspect(ctx: typer.Context, containers: list[str] = typer.Argument(...),
                fmt: str | None = typer.Option(None, "--format", "-f"),
                type_: str = typer.Option("all", "--type", "-t",
                                          help="all|container|image|volume|network|pod")
                ) -> None:
        """podman inspect's JSON (an array) for containers, images, volumes, networks,
        pods. Example: pod inspect --format '{{.State.Status}}' web"""
        from podkit_pod._inspect_any import inspect_makers  # CLII's: every object kind
        from podkit_pod.cli_image import write_inspected

        write_inspected(inspect_makers(ctx.obj.roots, containers, type_), fmt)

    @app.command()
    def start(ctx: typer.Context, containers: list[str] = typer.Argument(...),
              attach: bool = typer.Option(False, "--attach", "-a",
                                          help="Show the container's output until it "
                                               "exits, and exit with its code")) -> None:
        """Start containers: created ones, and stopped ones again (like podman start).

        Examples:

        \b
            pod start web
            pod stop web && pod start web db
            pod create --name job busybox sh -c 'echo hi; exit 3'; pod start -a job
        """
        from podkit_pod._command_bodies import start_body  # typer-free: also the fast path

        code = start_body(ctx.obj, {"containers": containers, "attach": attach})
        if code:
            raise typer.Exit(code)

    @app.command()
    def attach(ctx: typer.Context, container: str = typer.Argument(...),
               no_stdin: bool = typer.Option(False, "--no-stdin"),
               detach_keys: str | None = typer.Option(None, "--detach-keys")) -> int:
        """Attach to a running container (detach with ctrl-p ctrl-q).

        Examples:

        \b
            pod attach web
            pod attach --detach-keys ctrl-x web
        """
        from podkit_runtime import attach_container

        doc = attach_container(ctx.obj.roots, container, stdio=(0, 1, 2),
                               stdin=not no_stdin, detach_keys=detach_keys)
        return 0 if doc["detached"] else int(doc["state"]["exit_code"] or 0)

    @app.command("exec", context_settings={"allow_interspersed_args": False})
    def exec_(ctx: typer.Context, container: str = typer.Argument(...),
              command: list[str] = typer.Argument(...),
              interactive: bool = typer.Option(False, "--interactive", "-i"),
              tty: bool = typer.Option(False, "--tty", "-t"),
              detach: bool = typer.Option(False, "--detach", "-d"),
              env: list[str] | None = typer.Option(None, "--env", "-e"),
              workdir: str | None = typer.Option(None, "--workdir", "-w"),
              user: str | None = typer.Option(None, "--user", "-u")) -> int:
        """Run a command in a running container; exits with its code (126/127 when it
        cannot run).

        Examples:

        \b
            pod exec web cat /etc/hostname
            pod exec -it web sh
            pod exec -e A=1 -w /tmp web env
        """
        from podkit_runtime import ExecOptions, exec_container

        doc = exec_container(ctx.obj.roots, container,
                      ExecOptions(command=tuple(command), env=tuple(env or ()),
                                  workdir=workdir, user=user, stdin=interactive,
                                  detach=detach, tty=tty), stdio=(0, 1, 2))
        code = doc["exec"]["exit_code"]
        if detach:
            sys.stdout.write(doc["exec"]["id"] + "\n")
        return 0 if code is None else int(code)

    @app.command()
    def pause(ctx: typer.Context, containers: list[str] = typer.Argument(...)) -> None:
        """Pause containers (cgroup freezer).

        Examples:

        \b
            pod pause web
        """
        from podkit_runtime import pause_container

        for ref in containers:
            pause_container(ctx.obj.roots, ref)
            sys.stdout.write(ref + "\n")

    @app.command()
    def unpause(ctx: typer.Context, containers: list[str] = typer.Argument(...)) -> None:
        """Unpause containers.

        Examples:

        \b
            pod unpause web
        """
        from podkit_runtime import unpause_container

        for ref in containers:
            unpause_container(ctx.obj.roots, ref)
            sys.stdout.write(ref + "\n")

    @app.command(hidden=True)
    def cleanup(ctx: typer.Context, container: str = typer.Argument(...),
                rm: bool = typer.Option(False, "--rm")) -> None:
        """conmon's exit command: record the exit, release (or with --rm remove) it.

        Examples:

        \b
            pod cleanup --rm web
        """
        from podkit_pod._command_bodies import cleanup_body  # typer-free: the fast path too

        cleanup_body(ctx.obj, {"container": container, "rm": rm})
